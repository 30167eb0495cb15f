//! Limits on the JSON that tasker stores: task contexts, metadata, step
//! outputs and errors.
//!
//! Whatever is accepted when a task is created must be readable when its
//! steps are claimed, on every store. So the engine checks each value
//! before it writes it, with the same limits everywhere:
//!
//! - nesting at most [`MAX_JSON_DEPTH`] arrays/objects deep (the JSON
//!   parser that reads values back refuses deeper ones, and deep values
//!   overflow the stack of code that walks them recursively);
//! - no NUL character (`\u0000`) in any string or object key (PostgreSQL
//!   cannot store it in `jsonb` or `text`).
//!
//! Every function here walks values with an explicit stack, never by
//! recursion, so a value nested a million deep is refused with an error,
//! not a stack overflow.
//!
//! ```
//! use serde_json::json;
//! use tasker::payload::{check, MAX_JSON_DEPTH};
//!
//! assert!(check(&json!({"order": {"items": [1, 2]}}), "context").is_ok());
//!
//! let err = check(&json!({"order": {"note": "a\u{0}b"}}), "context").unwrap_err();
//! assert_eq!(err.path, "context.order.note");
//! assert!(err.to_string().contains("NUL"), "{err}");
//!
//! let mut deep = json!(1);
//! for _ in 0..MAX_JSON_DEPTH + 1 {
//!     deep = json!([deep]);
//! }
//! assert!(check(&deep, "context").unwrap_err().to_string().contains("nested"));
//! ```

use serde_json::Value;

/// How deeply arrays and objects may nest in a stored JSON value.
///
/// Well below the JSON parser's own limit (128), which must also hold
/// for a step's inputs (its parents' outputs, wrapped in two more levels).
pub const MAX_JSON_DEPTH: usize = 64;

/// A value tasker refuses to store, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} {problem}")]
pub struct PayloadError {
    /// Where: `context.items[3].name`, `identity_key`, `output`, ...
    pub path: String,
    /// What is wrong there and what is allowed.
    pub problem: String,
}

impl PayloadError {
    fn nul(path: String) -> Self {
        PayloadError {
            path,
            problem: "contains a NUL character (\\u0000), which the database cannot store; \
                      remove it or encode the data (e.g. base64)"
                .to_owned(),
        }
    }
}

/// One level of the walk: the path segment that leads to it and what is
/// left to visit there.
enum Frame<'a> {
    Array(usize, std::slice::Iter<'a, Value>),
    Object(Option<&'a str>, serde_json::map::Iter<'a>),
}

fn path_of(root: &str, frames: &[Frame<'_>]) -> String {
    let mut path = root.to_owned();
    for frame in frames {
        match frame {
            // The index of the element being visited is one behind.
            Frame::Array(next, _) => path.push_str(&format!("[{}]", next.saturating_sub(1))),
            Frame::Object(Some(key), _) => {
                path.push('.');
                path.push_str(key);
            }
            Frame::Object(None, _) => {}
        }
    }
    path
}

/// Checks `value` against the limits above; `root` names it in errors
/// (`context`, `output`). Iterative: safe for any depth.
pub fn check(value: &Value, root: &str) -> Result<(), PayloadError> {
    let mut frames: Vec<Frame<'_>> = Vec::new();
    let mut current = Some(value);
    loop {
        if let Some(value) = current.take() {
            match value {
                Value::String(s) if s.contains('\0') => {
                    return Err(PayloadError::nul(path_of(root, &frames)));
                }
                Value::Array(_) | Value::Object(_) if frames.len() >= MAX_JSON_DEPTH => {
                    return Err(PayloadError {
                        path: path_of(root, &frames),
                        problem: format!(
                            "is nested more than {MAX_JSON_DEPTH} arrays/objects deep; \
                             flatten the data"
                        ),
                    });
                }
                Value::Array(items) => frames.push(Frame::Array(0, items.iter())),
                Value::Object(map) => frames.push(Frame::Object(None, map.iter())),
                _ => {}
            }
        }
        let Some(frame) = frames.last_mut() else {
            return Ok(());
        };
        match frame {
            Frame::Array(next, items) => match items.next() {
                Some(item) => {
                    *next += 1;
                    current = Some(item);
                }
                None => {
                    frames.pop();
                }
            },
            Frame::Object(key, entries) => match entries.next() {
                Some((k, v)) => {
                    *key = Some(k.as_str());
                    if k.contains('\0') {
                        return Err(PayloadError {
                            problem: "has a key with a NUL character (\\u0000), which the \
                                      database cannot store"
                                .to_owned(),
                            ..PayloadError::nul(path_of(root, &frames))
                        });
                    }
                    current = Some(v);
                }
                None => {
                    frames.pop();
                }
            },
        }
    }
}

/// Checks a text field (identity key, initiator, tag, filter, ...).
pub fn check_text(text: &str, field: &str) -> Result<(), PayloadError> {
    if text.contains('\0') {
        return Err(PayloadError::nul(field.to_owned()));
    }
    Ok(())
}

/// Drops `value` without recursion: `serde_json::Value`'s own `Drop`
/// recurses once per level and overflows the stack on very deep values.
pub fn drop_deep(value: Value) {
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

/// Checks `value`; when it is refused, drops it without recursion (it may
/// be too deep for the ordinary `Drop`) and returns the error.
pub fn check_owned(value: Value, root: &str) -> Result<Value, PayloadError> {
    match check(&value, root) {
        Ok(()) => Ok(value),
        Err(e) => {
            drop_deep(value);
            Err(e)
        }
    }
}

/// Replaces NUL characters in a message to be stored (an error message,
/// a panic message) with U+FFFD, so a step's failure can always be
/// recorded.
pub fn sanitize_text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(depth: usize) -> Value {
        let mut value = json!("leaf");
        for i in 0..depth {
            value = if i % 2 == 0 {
                json!([value])
            } else {
                json!({ "k": value })
            };
        }
        value
    }

    #[test]
    fn depth_limit_is_exact() {
        let ok = nested(MAX_JSON_DEPTH);
        assert!(check(&ok, "context").is_ok());
        let deep = nested(MAX_JSON_DEPTH + 1);
        let err = check(&deep, "context").unwrap_err();
        assert!(err.problem.contains("nested more than 64"), "{err}");
        assert!(err.path.starts_with("context"), "{err}");
    }

    #[test]
    fn a_million_levels_are_refused_without_overflow() {
        // Built, checked and dropped iteratively: the ordinary Drop of
        // this value would overflow the test thread's stack.
        let mut value = json!(null);
        for _ in 0..1_000_000 {
            value = Value::Array(vec![value]);
        }
        let err = check_owned(value, "context").unwrap_err();
        assert!(err.problem.contains("nested"), "{err}");
    }

    #[test]
    fn nul_paths_name_the_field() {
        let value = json!({"a": [1, {"b": "x\u{0}"}]});
        assert_eq!(check(&value, "context").unwrap_err().path, "context.a[1].b");
        let value = json!({"a\u{0}": 1});
        let err = check(&value, "output").unwrap_err();
        assert!(err.problem.contains("key"), "{err}");
        assert_eq!(
            check_text("k\u{0}", "identity_key").unwrap_err().path,
            "identity_key"
        );
        assert_eq!(sanitize_text("a\u{0}b"), "a\u{FFFD}b");
    }
}
