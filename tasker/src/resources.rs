//! What a step reaches besides its task's context: shared [`Resources`]
//! registered on the worker, and the configuration values
//! ([`HandlerConfigs`]) read for its handler and itself at start-up.

use std::any::{type_name, Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Shared resources (HTTP clients, pools, configuration) registered on a
/// worker or runner and reachable from every step through
/// [`StepContext::resource`](crate::StepContext::resource). One value per type.
///
/// ```
/// use tasker::Resources;
///
/// struct ApiBase(String);
/// let resources = Resources::new().with(ApiBase("https://example.test".into()));
/// assert_eq!(resources.get::<ApiBase>().unwrap().0, "https://example.test");
/// assert!(resources.get::<u32>().is_none());
/// ```
#[derive(Clone, Default)]
pub struct Resources {
    values: Arc<HashMap<TypeId, Resource>>,
}

/// One resource and its type name (for `Debug` and error messages).
type Resource = (&'static str, Arc<dyn Any + Send + Sync>);

impl Resources {
    /// No resources.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the resource of type `T`.
    #[must_use]
    pub fn with<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        Arc::make_mut(&mut self.values)
            .insert(TypeId::of::<T>(), (type_name::<T>(), Arc::new(value)));
        self
    }

    /// The resource of type `T`, if registered.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.values
            .get(&TypeId::of::<T>())
            .and_then(|(_, value)| value.downcast_ref::<T>())
    }

    /// Type names of the registered resources.
    pub fn type_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.values.values().map(|(name, _)| *name)
    }
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.type_names()).finish()
    }
}

/// A decoded configuration value (of the type a
/// [`ConfigType`](crate::ConfigType) names).
pub type ConfigValue = Arc<dyn Any + Send + Sync>;

/// The configuration values a step can read with
/// [`StepContext::handler_config`](crate::StepContext::handler_config): its own (`#[step(config = T)]`) and its
/// handler's (`#[task_handler(config = T)]`), read from the configuration
/// once at start-up.
#[derive(Clone, Default)]
pub struct HandlerConfigs {
    step: Option<(&'static str, ConfigValue)>,
    handler: Option<(&'static str, ConfigValue)>,
}

impl HandlerConfigs {
    /// The step's and the handler's values, each with its type's name.
    pub(crate) fn new(
        step: Option<(&'static str, ConfigValue)>,
        handler: Option<(&'static str, ConfigValue)>,
    ) -> Self {
        HandlerConfigs { step, handler }
    }

    /// Sets the step's own value (unit tests calling a step directly).
    pub(crate) fn set_step<T: Send + Sync + 'static>(&mut self, value: T) {
        self.step = Some((type_name::<T>(), Arc::new(value)));
    }

    /// The step's value if it is a `T`, else the handler's.
    pub(crate) fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        [&self.step, &self.handler]
            .into_iter()
            .flatten()
            .find_map(|(_, value)| value.downcast_ref::<T>())
    }

    pub(crate) fn declared(&self) -> Vec<&'static str> {
        [&self.step, &self.handler]
            .into_iter()
            .flatten()
            .map(|(name, _)| *name)
            .collect()
    }
}

impl fmt::Debug for HandlerConfigs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerConfigs")
            .field("types", &self.declared())
            .finish()
    }
}
