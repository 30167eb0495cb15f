//! Annotations: what a step records about its task for people and tools
//! to find later (the guide's `update_annotations`), e.g. which payment
//! provider took the charge or why a review was needed.
//!
//! A step calls [`StepContext::annotate`](crate::StepContext::annotate);
//! the annotations are written with the step's success, in the same
//! transaction, so they exist exactly when the step's result does: an
//! attempt that fails leaves none behind, and a retry does not write them
//! twice.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::StepError;

/// The most annotations one attempt of a step may record.
pub const MAX_ANNOTATIONS_PER_STEP: usize = 32;

/// The most bytes one annotation's value may take, as JSON.
pub const MAX_ANNOTATION_BYTES: usize = 64 * 1024;

/// An annotation a step recorded, before it is stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Annotation {
    /// What kind of annotation: `payment_provider`, `review.reason`.
    pub annotation_type: String,
    /// Its value.
    pub annotation: Value,
}

/// An annotation as stored with its task.
#[cfg_attr(feature = "http", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskAnnotation {
    /// What kind of annotation.
    pub annotation_type: String,
    /// Its value.
    pub annotation: Value,
    /// The step that recorded it.
    pub step: Option<String>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// Checks an annotation type: 1 to 64 ASCII letters, digits, `_`, `.`
/// and `-`, starting with a letter (they are filter values in URLs and
/// command lines).
pub fn check_annotation_type(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the annotation type {name:?} is not 1 to 64 ASCII letters, digits, `_`, `.` or `-` \
             starting with a letter, e.g. `payment_provider`"
        ))
    }
}

/// The annotations one attempt has recorded so far: shared between the
/// step's context (and its clones) and the engine that stores them.
#[derive(Debug, Clone, Default)]
#[doc(hidden)]
pub struct Annotations(Arc<Mutex<Vec<Annotation>>>);

impl Annotations {
    /// Records one, within the limits.
    pub(crate) fn add(&self, annotation_type: &str, value: Value) -> Result<(), StepError> {
        let refuse =
            |message: String| StepError::permanent(message).with_class("AnnotationRefused");
        check_annotation_type(annotation_type).map_err(refuse)?;
        crate::payload::check(&value, "annotation").map_err(|e| refuse(e.to_string()))?;
        let bytes = value.to_string().len();
        if bytes > MAX_ANNOTATION_BYTES {
            return Err(refuse(format!(
                "the annotation {annotation_type:?} takes {bytes} bytes as JSON, over the \
                 {MAX_ANNOTATION_BYTES} allowed; annotate with a summary or a reference"
            )));
        }
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if list.len() >= MAX_ANNOTATIONS_PER_STEP {
            return Err(refuse(format!(
                "a step may record at most {MAX_ANNOTATIONS_PER_STEP} annotations per attempt"
            )));
        }
        list.push(Annotation {
            annotation_type: annotation_type.to_owned(),
            annotation: value,
        });
        Ok(())
    }

    /// What was recorded, in order.
    pub(crate) fn snapshot(&self) -> Vec<Annotation> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Takes what was recorded, leaving none.
    pub(crate) fn take(&self) -> Vec<Annotation> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn types_and_values_are_checked_and_counted() {
        let a = Annotations::default();
        a.add("payment_provider", json!("stripe")).unwrap();
        for bad in ["", "9lives", "has space", "a/b", &"x".repeat(65)] {
            let e = a.add(bad, json!(1)).unwrap_err();
            assert!(!e.is_retryable());
            assert_eq!(e.class(), "AnnotationRefused");
        }
        let e = a
            .add("big", json!("y".repeat(MAX_ANNOTATION_BYTES)))
            .unwrap_err();
        assert!(
            e.message().contains("over the 65536 allowed"),
            "{}",
            e.message()
        );
        let e = a.add("nul", json!({"k": "a\u{0}"})).unwrap_err();
        assert!(
            e.message().starts_with("annotation.k contains a NUL"),
            "{}",
            e.message()
        );
        for i in 1..MAX_ANNOTATIONS_PER_STEP {
            a.add("n", json!(i)).unwrap();
        }
        assert!(a.add("n", json!(0)).is_err());
        assert_eq!(a.snapshot().len(), MAX_ANNOTATIONS_PER_STEP);
        assert_eq!(a.take().len(), MAX_ANNOTATIONS_PER_STEP);
        assert!(a.snapshot().is_empty());
    }
}
