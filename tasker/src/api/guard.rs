//! The gate every API request passes before its handler runs, in this
//! order (so the cheap refusals come first and no unauthenticated caller
//! costs more than its headers):
//!
//! 1. header limits (count and total size) → 431;
//! 2. authentication from the headers alone → 401;
//! 3. the route's permission → 403;
//! 4. the body, read under `body_timeout` and `body_limit` → 408 / 413;
//! 5. a permit of the API's own concurrency limit, waited for at most
//!    `queue_timeout` → 503 with `Retry-After` (so API load cannot take
//!    the database connections the workers need; a slow body holds no
//!    permit);
//! 6. the handler, under `request_timeout` → 503.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::{Access, ApiError, Authenticator, Authorizer, Resource};

/// Bounds on what one request, and all of them together, may cost.
///
/// The defaults suit an API beside workers on a pool of 10 connections:
/// at most 4 requests touch the database at once.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ApiLimits {
    /// Largest request body, in bytes (default 64 KiB).
    pub body_limit: usize,
    /// Time to receive the whole body once the headers are in (default 10 s).
    pub body_timeout: Duration,
    /// Time to handle a request once its body is in (default 30 s).
    pub request_timeout: Duration,
    /// Time for a client to send the request headers; an idle keep-alive
    /// connection is closed after it too (default 10 s). Used by
    /// [`serve`](super::serve).
    pub header_read_timeout: Duration,
    /// Open connections at most; further clients wait in the listen
    /// backlog (default 256). Used by [`serve`](super::serve).
    pub max_connections: usize,
    /// Requests handled at once (default 4); each may hold one database
    /// connection.
    pub max_concurrent_requests: usize,
    /// How long a request waits for its turn before a 503 (default 2 s).
    pub queue_timeout: Duration,
    /// Request headers at most (default 64).
    pub max_headers: usize,
    /// Total size of the request headers, names and values (default 16 KiB).
    pub max_header_bytes: usize,
    /// Rows (tasks) one GraphQL request may return in all, over every
    /// list field and alias (default 1,000).
    pub max_rows_per_request: usize,
    /// GraphQL query complexity at most; list fields count their items
    /// (`tasks(limit: 100) { taskId }` costs about 100) (default 2,000).
    pub max_complexity: usize,
    /// GraphQL query depth at most (default 16; the standard introspection
    /// query needs 13).
    pub max_depth: usize,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            body_limit: 64 * 1024,
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 256,
            max_concurrent_requests: 4,
            queue_timeout: Duration::from_secs(2),
            max_headers: 64,
            max_header_bytes: 16 * 1024,
            max_rows_per_request: 1_000,
            max_complexity: 2_000,
            max_depth: 16,
        }
    }
}

impl ApiLimits {
    /// Lays a configuration's `api.limits:` section over these limits
    /// (what it leaves out stays).
    ///
    /// ```
    /// use tasker::api::ApiLimits;
    /// use tasker::config::Config;
    ///
    /// let config = Config::from_yaml_str("api:\n  limits:\n    body_limit: 1024\n", "t.yaml", |_| None).unwrap();
    /// let mut limits = ApiLimits::default();
    /// limits.apply(&config.settings().api.limits);
    /// assert_eq!(limits.body_limit, 1024);
    /// assert_eq!(limits.max_depth, ApiLimits::default().max_depth);
    /// ```
    pub fn apply(&mut self, settings: &crate::config::ApiLimitSettings) {
        fn set<T: Copy>(target: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *target = value;
            }
        }
        set(&mut self.body_limit, settings.body_limit);
        set(&mut self.body_timeout, settings.body_timeout);
        set(&mut self.request_timeout, settings.request_timeout);
        set(&mut self.header_read_timeout, settings.header_read_timeout);
        set(&mut self.max_connections, settings.max_connections);
        set(
            &mut self.max_concurrent_requests,
            settings.max_concurrent_requests,
        );
        set(&mut self.queue_timeout, settings.queue_timeout);
        set(&mut self.max_headers, settings.max_headers);
        set(&mut self.max_header_bytes, settings.max_header_bytes);
        set(
            &mut self.max_rows_per_request,
            settings.max_rows_per_request,
        );
        set(&mut self.max_complexity, settings.max_complexity);
        set(&mut self.max_depth, settings.max_depth);
    }
}

/// What the gate needs; shared by every route.
pub(crate) struct Gate {
    pub(crate) authenticator: Arc<dyn Authenticator>,
    pub(crate) authorizer: Arc<dyn Authorizer>,
    pub(crate) limits: ApiLimits,
    pub(crate) permits: Semaphore,
}

impl Gate {
    pub(crate) fn new(
        authenticator: Arc<dyn Authenticator>,
        authorizer: Arc<dyn Authorizer>,
        limits: ApiLimits,
    ) -> Self {
        Gate {
            permits: Semaphore::new(limits.max_concurrent_requests.max(1)),
            authenticator,
            authorizer,
            limits,
        }
    }
}

fn refuse(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    ApiError::new(status, code, message).into_response()
}

/// The middleware: see the module docs.
pub(crate) async fn gate(
    State((gate, access)): State<(Arc<Gate>, Access)>,
    request: Request,
    next: Next,
) -> Response {
    let limits = &gate.limits;
    let headers = request.headers();
    if let Some(refused) = header_limits(limits, headers) {
        return refused;
    }
    let principal = match access {
        Access::Probe | Access::Open => None,
        Access::Authenticated | Access::Permission(_) => {
            match gate.authenticator.authenticate(headers).await {
                Ok(principal) => Some(principal),
                Err(e) => {
                    let mut response =
                        refuse(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string());
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                    return response;
                }
            }
        }
    };
    if let (Access::Permission(permission), Some(principal)) = (access, &principal) {
        // A handler's operation checks its handler once it knows it; any
        // other may not be used on the strength of a scoped permission.
        let allowed = if super::operations::handler_scoped(permission) {
            gate.authorizer.authorize(principal, permission)
        } else {
            gate.authorizer
                .authorize_on(principal, permission, &Resource::Global)
        };
        if !allowed {
            return refuse(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "`{}` lacks the permission `{permission}`",
                    principal.subject
                ),
            );
        }
    }
    let (mut parts, body) = request.into_parts();
    let bytes = match read_body(limits, &parts.headers, body).await {
        Ok(bytes) => bytes,
        Err(refused) => return refused,
    };
    // Held until the handler is done.
    let _permit = match access {
        Access::Probe => None,
        _ => match gate.permit().await {
            Ok(permit) => Some(permit),
            Err(refused) => return refused,
        },
    };
    if let Some(principal) = principal {
        parts.extensions.insert(principal);
    }
    let request = Request::from_parts(parts, Body::from(bytes));
    within_time(limits, next.run(request)).await
}

/// The refusal of a request with more or larger headers than `limits`
/// allow.
pub(crate) fn header_limits(limits: &ApiLimits, headers: &HeaderMap) -> Option<Response> {
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > limits.max_headers || header_bytes > limits.max_header_bytes {
        return Some(refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request has {} headers of {header_bytes} bytes; at most {} headers of {} \
                 bytes in all are accepted",
                headers.len(),
                limits.max_headers,
                limits.max_header_bytes
            ),
        ));
    }
    None
}

/// The whole body, read under `body_limit` and `body_timeout`.
pub(crate) async fn read_body(
    limits: &ApiLimits,
    headers: &HeaderMap,
    body: Body,
) -> Result<axum::body::Bytes, Response> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the request body is larger than {} bytes",
                limits.body_limit
            ),
        )
    };
    if declared.is_some_and(|n| n > limits.body_limit as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(
        limits.body_timeout,
        axum::body::to_bytes(body, limits.body_limit),
    )
    .await
    {
        Err(_) => Err(refuse(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within {:?}",
                limits.body_timeout
            ),
        )),
        Ok(Err(e)) if is_length_limit(&e) => Err(too_large()),
        Ok(Err(_)) => Err(refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request body could not be read",
        )),
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

/// `handling` under `request_timeout`.
pub(crate) async fn within_time(
    limits: &ApiLimits,
    handling: impl std::future::Future<Output = Response>,
) -> Response {
    match tokio::time::timeout(limits.request_timeout, handling).await {
        Ok(response) => response,
        Err(_) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the request was not handled within {:?}; try a smaller one",
                limits.request_timeout
            ),
        ),
    }
}

impl Gate {
    /// A permit of the API's concurrency limit, waited for at most
    /// `queue_timeout`; a 503 with `Retry-After` otherwise.
    pub(crate) async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, Response> {
        match tokio::time::timeout(self.limits.queue_timeout, self.permits.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => {
                let mut response = refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "the API is handling as many requests as it may; retry shortly",
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                Err(response)
            }
        }
    }
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}
