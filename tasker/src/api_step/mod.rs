//! Steps that call an HTTP API (feature `api-step`): the guide's API step
//! handler, as a client a step calls.
//!
//! An [`ApiClient`] is built once from an [`ApiConfig`] — usually a handler's
//! `handler_config`, read at start-up by `#[step(config = ApiClient)]` or as a
//! field of the handler's own config type — and turns every answer into what
//! the engine needs:
//!
//! | answer | step error | class |
//! |---|---|---|
//! | 2xx | — (the body, as JSON, into the step's type) | |
//! | 429 | retryable, after `Retry-After` (seconds or HTTP date, at most `retry_after_cap`) | `ApiRateLimited` |
//! | 503 | retryable, after `Retry-After` likewise | `ApiUnavailable` |
//! | 408, other 5xx | retryable | `ApiTimeout`, `ApiServerError` |
//! | no answer in `timeout` | retryable | `ApiTimeout` |
//! | refused, reset, DNS | retryable | `ApiConnection` |
//! | 3xx | permanent: redirects are not followed, they could carry the credentials elsewhere | `ApiRedirect` |
//! | other 4xx | permanent, with the body (first `max_error_body` bytes) | `ApiClientError` |
//! | a 2xx body that is not the step's type | permanent, with the field path | `ApiResponseInvalid` |
//! | a body over `max_response_body` | permanent | `ApiResponseTooLarge` |
//!
//! Messages name the method and the address without its query (which may
//! hold a secret); credentials are never logged or shown. Unsafe requests
//! (POST, PUT, PATCH, DELETE) carry an `Idempotency-Key` derived from the
//! task and the step (and the attempt, if configured: see [`Idempotency`]).
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//! use tasker::api_step::ApiClient;
//! use tasker::{StepContext, StepResult};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Order { id: u64, cents: u64 }
//!
//! #[derive(Serialize, Deserialize)]
//! struct Charge { id: String }
//!
//! // In a step declared with `#[step(config = ApiClient)]`, whose
//! // `handler_config` is e.g. `{base_url: https://pay.example/v1, auth: {bearer: "${PAY_TOKEN}"}}`:
//! async fn charge(ctx: &StepContext<Order>) -> StepResult<Charge> {
//!     let api = ctx.handler_config::<ApiClient>()?;
//!     let order = ctx.context();
//!     api.post("charges")
//!         .json(&serde_json::json!({ "order": order.id, "amount": order.cents }))
//!         .send(ctx)
//!         .await
//! }
//! ```

mod classify;
mod config;
mod response;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::{StepContext, StepError, StepResult};

pub use classify::parse_retry_after;
pub use config::{ApiAuth, ApiConfig, ApiConfigError, Idempotency};
pub use response::ApiResponse;

use classify::{answer_error, class, transport_error, without_query};

/// A client for one HTTP API: cheap to clone (one connection pool), built
/// once and shared by every attempt.
///
/// It deserializes from an [`ApiConfig`], so it can be a step's config type
/// itself or a field of one; a configuration that cannot be used refuses
/// the worker's start, naming the field.
///
/// ```
/// use tasker::api_step::{ApiClient, ApiConfig};
///
/// let api = ApiClient::new(ApiConfig::new("https://pay.example/v1")).unwrap();
/// assert_eq!(api.url("charges").unwrap().as_str(), "https://pay.example/v1/charges");
///
/// let refused = ApiClient::new(ApiConfig::new("https://me:hunter2@pay.example")).unwrap_err();
/// assert_eq!(refused.field(), "base_url");
/// assert!(!refused.to_string().contains("hunter2"));
/// ```
#[derive(Clone)]
pub struct ApiClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: ApiConfig,
    /// `base_url` with one trailing `/`, so paths append to it.
    base: Url,
    idempotency_header: HeaderName,
    auth_kind: Option<&'static str>,
}

impl ApiClient {
    /// Checks `config` and builds the client.
    pub fn new(config: ApiConfig) -> Result<Self, ApiConfigError> {
        let checked = config::check(&config)?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .default_headers(checked.headers)
            .user_agent(concat!("tasker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| config::client_error(&e))?;
        let mut base = checked.base;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(ApiClient {
            inner: Arc::new(Inner {
                http,
                config,
                base,
                idempotency_header: checked.idempotency_header,
                auth_kind: checked.auth_kind,
            }),
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// The address of `path` (with its query, if any), relative to
    /// `base_url`. A path that would leave `base_url` (`../admin`, another
    /// host) is refused.
    pub fn url(&self, path: &str) -> Result<Url, String> {
        let base = &self.inner.base;
        let url = base.join(path.trim_start_matches('/')).map_err(|e| {
            format!(
                "the path {:?} is not a valid address ({e})",
                without_query(path)
            )
        })?;
        if url.origin() != base.origin() || !url.path().starts_with(base.path()) {
            return Err(format!(
                "the path {:?} leads outside `base_url` ({}); encode path segments taken from data",
                without_query(path),
                base
            ));
        }
        Ok(url)
    }

    /// A `GET` of `path`.
    pub fn get(&self, path: &str) -> ApiRequest {
        self.request(Method::GET, path)
    }

    /// A `POST` to `path`.
    pub fn post(&self, path: &str) -> ApiRequest {
        self.request(Method::POST, path)
    }

    /// A `PUT` to `path`.
    pub fn put(&self, path: &str) -> ApiRequest {
        self.request(Method::PUT, path)
    }

    /// A `PATCH` of `path`.
    pub fn patch(&self, path: &str) -> ApiRequest {
        self.request(Method::PATCH, path)
    }

    /// A `DELETE` of `path`.
    pub fn delete(&self, path: &str) -> ApiRequest {
        self.request(Method::DELETE, path)
    }

    /// A request with any method.
    pub fn request(&self, method: Method, path: &str) -> ApiRequest {
        let inner = &self.inner;
        let (target, builder) = match self.url(path) {
            Ok(url) => (
                format!("{method} {}", without_query(url.as_str())),
                Ok(inner.http.request(method.clone(), url)),
            ),
            Err(e) => (format!("{method} {}", inner.base), Err(e)),
        };
        let key = if is_unsafe(&method) && inner.config.idempotency != Idempotency::Off {
            Key::Derived { scope: None }
        } else {
            Key::None
        };
        ApiRequest {
            client: self.clone(),
            target,
            builder,
            timeout: inner.config.timeout,
            key,
            accepted: Vec::new(),
        }
    }
}

fn is_unsafe(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient")
            .field("base_url", &self.inner.base.as_str())
            .field("auth", &self.inner.auth_kind)
            .finish_non_exhaustive()
    }
}

impl<'de> Deserialize<'de> for ApiClient {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let config = ApiConfig::deserialize(deserializer)?;
        ApiClient::new(config).map_err(serde::de::Error::custom)
    }
}

/// Which idempotency key a request carries.
enum Key {
    None,
    /// Derived from the task, step (and attempt), with an optional suffix.
    Derived {
        scope: Option<String>,
    },
    Explicit(String),
}

/// One request of an [`ApiClient`], sent with [`send`](Self::send) (JSON
/// into a type) or [`send_raw`](Self::send_raw) (the answer itself).
#[must_use = "a request does nothing until it is sent"]
pub struct ApiRequest {
    client: ApiClient,
    /// `METHOD address`, without the query: the start of every message.
    target: String,
    builder: Result<reqwest::RequestBuilder, String>,
    timeout: Duration,
    key: Key,
    accepted: Vec<StatusCode>,
}

impl ApiRequest {
    fn map(mut self, f: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder) -> Self {
        self.builder = self.builder.map(f);
        self
    }

    /// Sends `body` as JSON (`Content-Type: application/json`).
    pub fn json<B: Serialize + ?Sized>(self, body: &B) -> Self {
        self.map(|b| b.json(body))
    }

    /// Adds query parameters, e.g. `&[("page", "2")]` or a struct.
    pub fn query<Q: Serialize + ?Sized>(self, query: &Q) -> Self {
        self.map(|b| b.query(query))
    }

    /// Adds a header; an invalid name or value fails the step permanently
    /// when sent (naming the header, never showing the value).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let header = HeaderName::from_bytes(name.as_bytes())
            .ok()
            .zip(HeaderValue::from_str(value).ok());
        match header {
            Some((name, value)) => self.map(|b| b.header(name, value)),
            None => {
                self.builder = Err(format!(
                    "the header {name:?} has an invalid name or value (visible ASCII only, no line breaks)"
                ));
                self
            }
        }
    }

    /// Waits at most `timeout` for this exchange, in place of the client's.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.map(|b| b.timeout(timeout))
    }

    /// Sends this idempotency key in place of the derived one (on any
    /// method, if the client's `idempotency` is not `off`).
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.key = Key::Explicit(key.into());
        self
    }

    /// Appends `-{scope}` to the derived key: for a step that makes more
    /// than one unsafe request, so that each has its own key.
    pub fn idempotency_scope(mut self, scope: impl Into<String>) -> Self {
        self.key = Key::Derived {
            scope: Some(scope.into()),
        };
        self
    }

    /// Sends no idempotency key.
    pub fn without_idempotency_key(mut self) -> Self {
        self.key = Key::None;
        self
    }

    /// Takes `status` as an answer to use, not an error (e.g. 404 for
    /// "already deleted"); look at [`ApiResponse::status`].
    pub fn accept_status(mut self, status: StatusCode) -> Self {
        self.accepted.push(status);
        self
    }

    /// The idempotency key this request sends in `ctx`'s attempt.
    pub fn idempotency_key_for<C>(&self, ctx: &StepContext<C>) -> Option<String> {
        let config = &self.client.inner.config;
        if config.idempotency == Idempotency::Off {
            return None;
        }
        match &self.key {
            Key::None => None,
            Key::Explicit(key) => Some(key.clone()),
            Key::Derived { scope } => {
                let mut key = format!(
                    "{}{}-{}",
                    config.idempotency_prefix,
                    ctx.task_id(),
                    ctx.step_name()
                );
                if config.idempotency == Idempotency::PerAttempt {
                    key.push_str(&format!("-{}", ctx.attempt()));
                }
                if let Some(scope) = scope {
                    key.push('-');
                    key.push_str(scope);
                }
                Some(key)
            }
        }
    }

    /// Sends the request and reads a success answer's JSON body into `T`
    /// (an empty body reads as `null`: `()` and `Option<T>` take it).
    /// Every other outcome is a classified [`StepError`].
    pub async fn send<T: DeserializeOwned, C>(self, ctx: &StepContext<C>) -> StepResult<T> {
        self.send_raw(ctx).await?.json()
    }

    /// Sends the request and returns a success answer (2xx, or a status
    /// given to [`accept_status`](Self::accept_status)) with its body; every
    /// other outcome is a classified [`StepError`].
    pub async fn send_raw<C>(self, ctx: &StepContext<C>) -> StepResult<ApiResponse> {
        let key = self.idempotency_key_for(ctx);
        let ApiRequest {
            client,
            target,
            builder,
            timeout,
            accepted,
            ..
        } = self;
        let inner = &client.inner;
        let mut builder = builder.map_err(|e| {
            StepError::permanent(format!("{target}: {e}")).with_class(class::REQUEST_INVALID)
        })?;
        if let Some(key) = key {
            builder = builder.header(inner.idempotency_header.clone(), key);
        }
        let started = Instant::now();
        let answer = builder.send().await;
        let response = answer.map_err(|e| {
            let error = transport_error(&target, timeout, e);
            tracing::debug!(target: "tasker::api_step", error = %error.message(), "no answer");
            error
        })?;
        let status = response.status();
        tracing::debug!(
            target: "tasker::api_step",
            request = %target,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "answered"
        );
        if !(status.is_success() || accepted.contains(&status)) {
            let headers = response.headers().clone();
            let body = response::read_prefix(response, inner.config.max_error_body).await;
            return Err(answer_error(
                &target,
                status,
                &headers,
                body.as_prefix(),
                inner.config.retry_after_cap,
                SystemTime::now(),
            ));
        }
        response::read(target, response, inner.config.max_response_body, timeout).await
    }
}
