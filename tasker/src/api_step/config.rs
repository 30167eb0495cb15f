//! What an API step is configured with, and its checks.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::config::Secret;

/// How an [`ApiClient`](super::ApiClient) reaches one service: read from a
/// handler's `handler_config` (YAML) or built in code.
///
/// Every field but `base_url` has a default:
///
/// ```yaml
/// base_url: https://payments.example.com/v1   # http or https, no credentials, no query
/// auth: { bearer: "${PAYMENTS_TOKEN}" }       # or basic: {username, password}, or header: {name, value}
/// connect_timeout: 5s
/// timeout: 30s               # the whole exchange, body included
/// retry_after_cap: 5m        # the longest `Retry-After` honoured
/// max_error_body: 4096       # bytes of an error answer kept in the step error
/// max_response_body: 10485760
/// headers: { Accept-Language: en }
/// idempotency: per_step      # per_step | per_attempt | off
/// idempotency_header: Idempotency-Key
/// idempotency_prefix: tasker-
/// ```
///
/// ```
/// use std::time::Duration;
/// use tasker::api_step::ApiConfig;
///
/// let mut config = ApiConfig::new("https://payments.example.com/v1");
/// config.timeout = Duration::from_secs(10);
/// assert_eq!(config.connect_timeout, Duration::from_secs(5));
/// ```
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// The address every request path is relative to.
    pub base_url: String,
    /// The credentials sent with every request (never logged or shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<ApiAuth>,
    /// How long connecting may take (default 5s).
    #[serde(
        default = "defaults::connect_timeout",
        with = "crate::config::duration::required"
    )]
    pub connect_timeout: Duration,
    /// How long a whole exchange may take, reading the body included
    /// (default 30s); a request may ask for another.
    #[serde(
        default = "defaults::timeout",
        with = "crate::config::duration::required"
    )]
    pub timeout: Duration,
    /// The longest wait a `Retry-After` answer is honoured with (default 5m).
    #[serde(
        default = "defaults::retry_after_cap",
        with = "crate::config::duration::required"
    )]
    pub retry_after_cap: Duration,
    /// Bytes of an error answer's body kept in the step error (default 4096).
    #[serde(default = "defaults::max_error_body")]
    pub max_error_body: usize,
    /// The largest success body read (default 10 MiB); a larger one fails
    /// the step (`ApiResponseTooLarge`).
    #[serde(default = "defaults::max_response_body")]
    pub max_response_body: usize,
    /// Headers sent with every request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Which idempotency key unsafe requests (POST, PUT, PATCH, DELETE) carry.
    #[serde(default)]
    pub idempotency: Idempotency,
    /// The header the idempotency key goes in (default `Idempotency-Key`).
    #[serde(default = "defaults::idempotency_header")]
    pub idempotency_header: String,
    /// What the idempotency key starts with (default `tasker-`).
    #[serde(default = "defaults::idempotency_prefix")]
    pub idempotency_prefix: String,
}

impl ApiConfig {
    /// A configuration with every default, for `base_url`.
    pub fn new(base_url: impl Into<String>) -> Self {
        ApiConfig {
            base_url: base_url.into(),
            auth: None,
            connect_timeout: defaults::connect_timeout(),
            timeout: defaults::timeout(),
            retry_after_cap: defaults::retry_after_cap(),
            max_error_body: defaults::max_error_body(),
            max_response_body: defaults::max_response_body(),
            headers: BTreeMap::new(),
            idempotency: Idempotency::default(),
            idempotency_header: defaults::idempotency_header(),
            idempotency_prefix: defaults::idempotency_prefix(),
        }
    }
}

mod defaults {
    use std::time::Duration;

    pub(super) fn connect_timeout() -> Duration {
        Duration::from_secs(5)
    }
    pub(super) fn timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub(super) fn retry_after_cap() -> Duration {
        Duration::from_secs(300)
    }
    pub(super) fn max_error_body() -> usize {
        4096
    }
    pub(super) fn max_response_body() -> usize {
        10 * 1024 * 1024
    }
    pub(super) fn idempotency_header() -> String {
        "Idempotency-Key".to_owned()
    }
    pub(super) fn idempotency_prefix() -> String {
        "tasker-".to_owned()
    }
}

/// The credentials of an API, written as one of
/// `{bearer: TOKEN}`, `{basic: {username, password}}` or
/// `{header: {name, value}}`; the secret parts are [`Secret`]s, and the
/// header they become is marked sensitive (never printed by the client).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ApiAuth {
    /// `Authorization: Bearer TOKEN`.
    Bearer(Secret),
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        /// The user.
        username: String,
        /// The password.
        password: Secret,
    },
    /// A header of the API's own, e.g. `X-Api-Key`.
    Header {
        /// The header's name.
        name: String,
        /// Its value.
        value: Secret,
    },
}

impl ApiAuth {
    fn kind(&self) -> &'static str {
        match self {
            ApiAuth::Bearer(_) => "bearer",
            ApiAuth::Basic { .. } => "basic",
            ApiAuth::Header { .. } => "header",
        }
    }
}

/// Which idempotency key an unsafe request (POST, PUT, PATCH, DELETE)
/// carries, so that the API can recognise a request it has already done.
///
/// The key is `{prefix}{task id}-{step name}` (`per_step`) or
/// `{prefix}{task id}-{step name}-{attempt}` (`per_attempt`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Idempotency {
    /// One key for every attempt of the step (the default): a retry after a
    /// timeout or a crash — when the first request may have been done —
    /// is recognised by the API, so a charge is not made twice.
    #[default]
    PerStep,
    /// A new key for each attempt: for APIs that remember a failed answer
    /// under its key and would repeat it to every retry.
    PerAttempt,
    /// No key.
    Off,
}

/// A configuration that cannot be used: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfigError {
    field: String,
    message: String,
}

impl ApiConfigError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiConfigError {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The field at fault, e.g. `base_url` or `headers.X-Trace`.
    pub fn field(&self) -> &str {
        &self.field
    }
}

impl fmt::Display for ApiConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for ApiConfigError {}

/// A checked configuration, in the client's own types.
pub(super) struct Checked {
    pub(super) base: Url,
    pub(super) headers: HeaderMap,
    pub(super) idempotency_header: HeaderName,
    pub(super) auth_kind: Option<&'static str>,
}

/// Headers a configuration may not set: the client or `auth` owns them.
const RESERVED: &[&str] = &[
    "authorization",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
];

pub(super) fn check(config: &ApiConfig) -> Result<Checked, ApiConfigError> {
    let base = check_base_url(&config.base_url)?;
    for (field, value) in [
        ("connect_timeout", config.connect_timeout),
        ("timeout", config.timeout),
    ] {
        if value.is_zero() {
            return Err(ApiConfigError::new(
                field,
                "must be longer than zero, e.g. `5s`",
            ));
        }
    }
    if config.max_response_body == 0 {
        return Err(ApiConfigError::new(
            "max_response_body",
            "must be at least 1 byte",
        ));
    }
    let mut headers = HeaderMap::new();
    for (name, value) in &config.headers {
        let field = format!("headers.{name}");
        let header = header_name(&field, name)?;
        if RESERVED.contains(&header.as_str()) {
            return Err(ApiConfigError::new(
                field,
                "is set by the client or by `auth`; remove it from `headers`",
            ));
        }
        let value = HeaderValue::from_str(value).map_err(|_| {
            ApiConfigError::new(
                &field,
                "is not a valid header value (visible ASCII and spaces only, no line breaks)",
            )
        })?;
        headers.insert(header, value);
    }
    if let Some(auth) = &config.auth {
        let (name, mut value) = auth_header(auth)?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    let idempotency_header = header_name("idempotency_header", &config.idempotency_header)?;
    if config.idempotency != Idempotency::Off
        && HeaderValue::from_str(&config.idempotency_prefix).is_err()
    {
        return Err(ApiConfigError::new(
            "idempotency_prefix",
            "must be visible ASCII (it starts a header value)",
        ));
    }
    Ok(Checked {
        base,
        headers,
        idempotency_header,
        auth_kind: config.auth.as_ref().map(ApiAuth::kind),
    })
}

/// The client could not be built (its TLS set-up failed).
pub(super) fn client_error(error: &reqwest::Error) -> ApiConfigError {
    ApiConfigError::new(
        "base_url",
        format!("the HTTP client could not be set up: {error}"),
    )
}

fn check_base_url(text: &str) -> Result<Url, ApiConfigError> {
    let error = |message: String| ApiConfigError::new("base_url", message);
    let url = Url::parse(text).map_err(|e| {
        error(format!(
            "{e}: write an absolute address such as `https://api.example.com/v1`"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(error(format!(
            "the scheme `{}` is not supported: use `https://` (or `http://`)",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(error("has no host".to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: the address holds a credential.
        return Err(error(
            "holds credentials (`user:password@`): put them in `auth`, where they are kept secret"
                .to_owned(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(error(
            "has a query or fragment: give the query with each request".to_owned(),
        ));
    }
    Ok(url)
}

fn header_name(field: &str, name: &str) -> Result<HeaderName, ApiConfigError> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        ApiConfigError::new(
            field,
            format!("{name:?} is not a valid header name (letters, digits and `-`)"),
        )
    })
}

fn auth_header(auth: &ApiAuth) -> Result<(HeaderName, HeaderValue), ApiConfigError> {
    use base64::Engine as _;
    let invalid = |field: &str| {
        ApiConfigError::new(
            field,
            "is not valid in a header (visible ASCII only, no line breaks)",
        )
    };
    match auth {
        ApiAuth::Bearer(token) => {
            let value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| invalid("auth.bearer"))?;
            Ok((reqwest::header::AUTHORIZATION, value))
        }
        ApiAuth::Basic { username, password } => {
            if username.contains(':') {
                return Err(ApiConfigError::new(
                    "auth.basic.username",
                    "may not contain `:` (Basic authentication separates the password with it)",
                ));
            }
            let pair = format!("{username}:{}", password.expose());
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
            let value = HeaderValue::from_str(&format!("Basic {encoded}"))
                .map_err(|_| invalid("auth.basic"))?;
            Ok((reqwest::header::AUTHORIZATION, value))
        }
        ApiAuth::Header { name, value } => {
            let name = header_name("auth.header.name", name)?;
            if RESERVED[1..].contains(&name.as_str()) {
                return Err(ApiConfigError::new(
                    "auth.header.name",
                    "names a header the client sets itself",
                ));
            }
            let value =
                HeaderValue::from_str(value.expose()).map_err(|_| invalid("auth.header.value"))?;
            Ok((name, value))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(config: ApiConfig) -> String {
        match check(&config) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let config: ApiConfig =
            serde_json::from_value(serde_json::json!({"base_url": "https://api.test/v1"})).unwrap();
        assert_eq!(config.connect_timeout, Duration::from_secs(5));
        assert_eq!(config.timeout, Duration::from_secs(30));
        assert_eq!(config.retry_after_cap, Duration::from_secs(300));
        assert_eq!(config.max_error_body, 4096);
        assert_eq!(config.max_response_body, 10 * 1024 * 1024);
        assert_eq!(config.idempotency, Idempotency::PerStep);
        assert_eq!(config.idempotency_header, "Idempotency-Key");
        assert!(check(&config).is_ok());
    }

    #[test]
    fn auth_is_read_in_each_of_its_forms_and_never_shown() {
        let config: ApiConfig = serde_json::from_value(serde_json::json!({
            "base_url": "https://api.test",
            "auth": {"basic": {"username": "shop", "password": "pa55-word"}},
            "timeout": "2s",
        }))
        .unwrap();
        assert!(!format!("{config:?}").contains("pa55"));
        assert!(!serde_json::to_string(&config).unwrap().contains("pa55"));
        let checked = check(&config).unwrap();
        let value = &checked.headers[reqwest::header::AUTHORIZATION];
        assert!(value.is_sensitive());
        assert_eq!(value, "Basic c2hvcDpwYTU1LXdvcmQ=");
        assert!(!format!("{value:?}").contains("c2hvcD"));

        let config: ApiConfig = serde_json::from_value(serde_json::json!({
            "base_url": "https://api.test",
            "auth": {"header": {"name": "X-Api-Key", "value": "k-123"}},
        }))
        .unwrap();
        assert_eq!(check(&config).unwrap().headers["x-api-key"], "k-123");
        let unknown = serde_json::from_value::<ApiConfig>(serde_json::json!({
            "base_url": "https://api.test",
            "auth": {"token": "x"},
        }))
        .unwrap_err()
        .to_string();
        assert!(unknown.contains("bearer"), "{unknown}");
    }

    #[test]
    fn a_duration_needs_its_unit_and_unknown_keys_are_refused() {
        let e = serde_json::from_value::<ApiConfig>(
            serde_json::json!({"base_url": "https://a.test", "timeout": 30}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("write `30s`"), "{e}");
        let e = serde_json::from_value::<ApiConfig>(
            serde_json::json!({"base_url": "https://a.test", "time_out": "1s"}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `time_out`"), "{e}");
    }

    #[test]
    fn bad_base_urls_say_what_to_write_and_never_echo_a_credential() {
        assert!(error_of(ApiConfig::new("api.test/v1")).contains("write an absolute address"));
        assert!(error_of(ApiConfig::new("ftp://api.test")).contains("`ftp` is not supported"));
        let e = error_of(ApiConfig::new("https://shop:hunter2@api.test"));
        assert!(e.contains("put them in `auth`"), "{e}");
        assert!(!e.contains("hunter2"));
        assert!(error_of(ApiConfig::new("https://api.test/v1?key=1")).contains("query"));
    }

    #[test]
    fn headers_are_checked_by_name_and_value() {
        let mut config = ApiConfig::new("https://api.test");
        config
            .headers
            .insert("Authorization".into(), "Bearer x".into());
        assert_eq!(
            error_of(config.clone()),
            "`headers.Authorization`: is set by the client or by `auth`; remove it from `headers`"
        );
        config.headers.clear();
        config.headers.insert("bad header".into(), "x".into());
        assert!(error_of(config.clone()).starts_with("`headers.bad header`"));
        config.headers.clear();
        config.headers.insert("X-Trace".into(), "a\nb".into());
        assert!(error_of(config.clone()).contains("no line breaks"));
        config.headers.clear();
        config.timeout = Duration::ZERO;
        assert!(error_of(config).starts_with("`timeout`: must be longer than zero"));
    }
}
