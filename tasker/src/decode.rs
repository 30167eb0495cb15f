//! JSON into typed values with the failing field's path in the error: the
//! one decoder behind step inputs, contexts and handler configuration.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ContextError;
use crate::step::ConfigValue;

/// Deserializes with the failing field's path in the error.
pub(crate) fn decode<T: DeserializeOwned>(value: &Value) -> Result<T, PathError> {
    serde_path_to_error::deserialize(value).map_err(|e| PathError {
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

/// A deserialization error at a field path.
#[derive(Debug, Clone)]
pub(crate) struct PathError {
    pub(crate) path: String,
    pub(crate) message: String,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path == "." {
            write!(f, "{}", self.message)
        } else {
            write!(f, "at `{}`: {}", self.path, self.message)
        }
    }
}

/// Reads a configuration value into `T`; the error is the field path
/// and what is wrong there.
pub fn decode_config<T: DeserializeOwned + Send + Sync + 'static>(
    value: &Value,
) -> Result<ConfigValue, (String, String)> {
    decode::<T>(value)
        .map(|config| Arc::new(config) as ConfigValue)
        .map_err(|e| (e.path, e.message))
}

/// `TypeId::of::<T>()` as a function pointer.
pub fn type_id_of<T: 'static>() -> std::any::TypeId {
    std::any::TypeId::of::<T>()
}

/// Reads a JSON context into the context type `C`.
pub fn decode_context<C: DeserializeOwned>(context: &Value) -> Result<C, ContextError> {
    decode::<C>(context).map_err(|e| ContextError {
        context_type: std::any::type_name::<C>(),
        path: e.path.clone(),
        detail: e.to_string(),
    })
}

/// Checks a JSON context against the context type `C`.
pub fn check_context<C: DeserializeOwned>(context: &Value) -> Result<(), ContextError> {
    decode::<C>(context).map(drop).map_err(|e| ContextError {
        context_type: std::any::type_name::<C>(),
        path: e.path.clone(),
        detail: e.to_string(),
    })
}
