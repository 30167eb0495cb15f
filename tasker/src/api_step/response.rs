//! Reading answers: success bodies up to their cap, error bodies up to
//! theirs, JSON into the step's type.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use super::classify::{class, transport_error, BodyPrefix};
use crate::{StepError, StepResult};

/// A success answer, with its body read.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    target: String,
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl ApiResponse {
    /// The status (2xx, or one the request accepted).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The answer's headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body's bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as UTF-8 text; other bytes fail the step permanently.
    pub fn text(&self) -> StepResult<&str> {
        std::str::from_utf8(&self.body).map_err(|e| {
            StepError::permanent(format!(
                "{} answered {} with a body that is not UTF-8 text ({e})",
                self.target,
                self.status.as_u16()
            ))
            .with_class(class::RESPONSE_INVALID)
        })
    }

    /// The body as JSON read into `T`; an empty body reads as `null`. A
    /// body that does not fit `T` fails the step permanently, naming the
    /// field and showing the body's start.
    pub fn json<T: DeserializeOwned>(&self) -> StepResult<T> {
        let decoded: Result<T, (String, String)> = if self.body.iter().all(u8::is_ascii_whitespace)
        {
            serde_path_to_error::deserialize(serde_json::Value::Null)
                .map_err(|e| (e.path().to_string(), e.into_inner().to_string()))
        } else {
            let mut reader = serde_json::Deserializer::from_slice(&self.body);
            serde_path_to_error::deserialize(&mut reader)
                .map_err(|e| (e.path().to_string(), e.into_inner().to_string()))
                // Trailing bytes after the value are not JSON either.
                .and_then(|value| {
                    reader.end().map_err(|e| (".".to_owned(), e.to_string()))?;
                    Ok(value)
                })
        };
        decoded.map_err(|(path, message)| {
            let at = if path == "." {
                String::new()
            } else {
                format!(" at `{path}`")
            };
            const SHOWN: usize = 256;
            let start = BodyPrefix {
                bytes: &self.body[..self.body.len().min(SHOWN)],
                truncated: self.body.len() > SHOWN,
            };
            StepError::permanent(format!(
                "{} answered {} with a body that does not fit `{}`{at}: {}; the body: {start}",
                self.target,
                self.status.as_u16(),
                std::any::type_name::<T>(),
                message
            ))
            .with_class(class::RESPONSE_INVALID)
        })
    }
}

/// A body read up to a cap.
pub(super) struct Prefix {
    bytes: Vec<u8>,
    truncated: bool,
}

impl Prefix {
    pub(super) fn as_prefix(&self) -> BodyPrefix<'_> {
        BodyPrefix {
            bytes: &self.bytes,
            truncated: self.truncated,
        }
    }
}

/// Reads at most `cap` bytes of an error answer's body. A body that breaks
/// off is shown as far as it came: the status already says what happened.
pub(super) async fn read_prefix(mut response: reqwest::Response, cap: usize) -> Prefix {
    let mut bytes = Vec::new();
    let mut truncated = false;
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = cap - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            truncated = true;
            break;
        }
        bytes.extend_from_slice(&chunk);
    }
    Prefix { bytes, truncated }
}

/// Reads a success answer's whole body, refusing one over `cap` bytes
/// before reading it when its length is announced, else once it passes.
pub(super) async fn read(
    target: String,
    mut response: reqwest::Response,
    cap: usize,
    timeout: Duration,
) -> StepResult<ApiResponse> {
    let too_large = |target: &str, seen: String| {
        StepError::permanent(format!(
            "{target} answered with a body of {seen}, over `max_response_body` ({cap} bytes); \
             raise it in the API's configuration if that is expected"
        ))
        .with_class(class::RESPONSE_TOO_LARGE)
    };
    if let Some(length) = response.content_length() {
        if length > cap as u64 {
            return Err(too_large(&target, format!("{length} bytes")));
        }
    }
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if chunk.len() > cap - body.len() {
                    return Err(too_large(&target, format!("more than {cap} bytes")));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(transport_error(&target, timeout, e)),
        }
    }
    Ok(ApiResponse {
        target,
        status,
        headers,
        body,
    })
}
