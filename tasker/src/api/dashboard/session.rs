//! Who is looking: the dashboard's gate (the API's authentication, with
//! the token also taken from the login cookie), its login and logout, and
//! the token every changing form carries.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use sha2::{Digest, Sha256};

use super::super::guard::{header_limits, read_body, within_time};
use super::super::{Api, Principal};
use super::{view, PageResult, PATH};
use crate::store::Store;

/// The cookie that holds a signed-in browser's token.
const COOKIE: &str = "tasker_session";
/// How long a sign-in lasts.
const SESSION_SECONDS: u32 = 12 * 3600;

/// How old the overview's figures may be: however many people look, the
/// database counts at most once per this many seconds.
pub(super) const OVERVIEW_SECONDS: u64 = 5;
/// Live task streams open at once, in all.
pub(super) const MAX_STREAMS: usize = 32;

/// What the dashboard keeps across requests: the secret behind the form
/// tokens, the overview's last figures, the live streams' permits.
pub(in crate::api) struct Sessions {
    secret: [u8; 32],
    overview: tokio::sync::Mutex<Option<(std::time::Instant, Arc<Overview>)>>,
    pub(super) streams: Arc<tokio::sync::Semaphore>,
}

/// The overview's figures.
pub(super) struct Overview {
    pub(super) counts: Vec<crate::store::StateCount>,
    pub(super) ready: i64,
    pub(super) activity: crate::store::Activity,
}

impl Sessions {
    pub(in crate::api) fn new() -> Self {
        let mut secret = [0u8; 32];
        // Without the system's randomness the forms would be forgeable;
        // no server should start like that.
        getrandom::fill(&mut secret).expect("the system's random number generator is available");
        Sessions {
            secret,
            overview: tokio::sync::Mutex::new(None),
            streams: Arc::new(tokio::sync::Semaphore::new(MAX_STREAMS)),
        }
    }

    /// The overview's figures, read at most every [`OVERVIEW_SECONDS`]
    /// (one reader at a time; the others wait for its figures).
    pub(super) async fn overview<S: Store>(
        &self,
        store: &S,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Arc<Overview>, crate::store::StoreError> {
        let mut cached = self.overview.lock().await;
        if let Some((at, overview)) = cached.as_ref() {
            if at.elapsed() < std::time::Duration::from_secs(OVERVIEW_SECONDS) {
                return Ok(Arc::clone(overview));
            }
        }
        let overview = Arc::new(Overview {
            counts: store.task_counts_at_a_glance().await?,
            ready: store.ready_steps().await?,
            activity: store.activity(now - chrono::Duration::hours(1)).await?,
        });
        *cached = Some((std::time::Instant::now(), Arc::clone(&overview)));
        Ok(overview)
    }

    /// The form token of a caller presenting `credential` ("" for none).
    fn form_token(&self, credential: &str) -> String {
        let digest = Sha256::new()
            .chain_update(self.secret)
            .chain_update(b"tasker-dashboard-form")
            .chain_update(credential.as_bytes())
            .finalize();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What a page knows of its caller.
#[derive(Clone)]
pub(super) struct Session {
    /// The authenticated caller.
    pub(super) who: Principal,
    /// The token the page's forms carry.
    pub(super) form_token: String,
    /// Signed in through the login form (so there is a session to end).
    pub(super) signed_in: bool,
    /// The dashboard's base path, `{prefix}/dashboard`.
    pub(super) base: String,
}

/// The fields of a submitted form, in order (a key may repeat).
#[derive(Clone, Default)]
pub(super) struct Form(pub(super) Vec<(String, String)>);

impl Form {
    /// The fields of a query string.
    pub(super) fn parse_str(query: &str) -> Form {
        Form::parse(query.as_bytes())
    }

    fn parse(body: &[u8]) -> Form {
        Form(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `key`.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub(super) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

pub(super) fn base<S: Store>(api: &Api<S>) -> String {
    format!("{}{PATH}", api.config.prefix.trim_end_matches('/'))
}

/// The token in the session cookie, if the request has one (stored
/// form-encoded, so any token fits a cookie).
fn cookie(headers: &HeaderMap) -> Option<String> {
    let value = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())?;
    form_urlencoded::parse(format!("t={value}").as_bytes())
        .next()
        .map(|(_, token)| token.into_owned())
}

/// The bearer credential of `headers`, if any.
fn credential(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
}

/// The request's headers with the cookie's token as the bearer token when
/// the request has no `Authorization` of its own.
fn with_cookie(headers: &HeaderMap) -> HeaderMap {
    let mut headers = headers.clone();
    if !headers.contains_key(header::AUTHORIZATION) {
        if let Some(value) = cookie(&headers)
            .as_deref()
            .and_then(|token| HeaderValue::from_str(&format!("Bearer {token}")).ok())
        {
            headers.insert(header::AUTHORIZATION, value);
        }
    }
    headers
}

/// Whether a POST comes from a page of this host (`Origin`, or failing
/// that `Referer`, names the request's `Host`); a request with neither is
/// not from a browser and is left to the form token.
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    match (from, host) {
        (None, _) => true,
        (Some(from), Some(host)) => {
            let rest = from
                .strip_prefix("https://")
                .or_else(|| from.strip_prefix("http://"))
                .unwrap_or("");
            rest.split('/').next() == Some(host)
        }
        (Some(_), None) => false,
    }
}

/// The gate of every page: header limits, authentication (a browser
/// without a valid token is sent to the login page), for a POST the
/// origin, the body and its form token, then the API's concurrency limit
/// and request timeout.
pub(super) async fn gate<S: Store>(
    State(api): State<Arc<Api<S>>>,
    request: Request,
    next: Next,
) -> Response {
    let limits = &api.gate.limits;
    if let Some(refused) = header_limits(limits, request.headers()) {
        return refused;
    }
    let base = base(&api);
    let headers = with_cookie(request.headers());
    let who = match api.gate.authenticator.authenticate(&headers).await {
        Ok(who) => who,
        Err(e) if request.method() == Method::GET => {
            // Inside the API's nesting the URI is cut; the original is whole.
            let uri = request
                .extensions()
                .get::<axum::extract::OriginalUri>()
                .map_or_else(|| request.uri().clone(), |o| o.0.clone());
            let next_path = uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            let reason = if cookie(request.headers()).is_some() {
                "expired"
            } else {
                "required"
            };
            tracing::debug!("dashboard sign-in needed: {e}");
            let target = format!(
                "{base}/login?reason={reason}&next={}",
                form_urlencoded::byte_serialize(next_path.as_bytes()).collect::<String>()
            );
            return Redirect::to(&target).into_response();
        }
        Err(e) => {
            return view::refused(StatusCode::UNAUTHORIZED, &e.to_string());
        }
    };
    let session = Session {
        form_token: api.sessions.form_token(credential(&headers)),
        signed_in: cookie(request.headers()).is_some(),
        who,
        base,
    };
    let (mut parts, body) = request.into_parts();
    let form = if parts.method == Method::POST {
        if !same_origin(&parts.headers) {
            return view::refused(
                StatusCode::FORBIDDEN,
                "this form was sent from another site; use the dashboard's own pages",
            );
        }
        let bytes = match read_body(limits, &parts.headers, body).await {
            Ok(bytes) => bytes,
            Err(refused) => return refused,
        };
        let form = Form::parse(&bytes);
        if form.get("form_token") != Some(session.form_token.as_str()) {
            return view::refused(
                StatusCode::FORBIDDEN,
                "the form's token is missing or stale: reload the page and submit it again",
            );
        }
        form
    } else {
        Form::default()
    };
    let _permit = match api.gate.permit().await {
        Ok(permit) => permit,
        Err(refused) => return refused,
    };
    parts.extensions.insert(session);
    parts.extensions.insert(form);
    within_time(limits, next.run(Request::from_parts(parts, Body::empty()))).await
}

/// Where a sign-in goes afterwards: a dashboard path only (never another
/// site).
fn next_target(base: &str, next: Option<&str>) -> String {
    match next {
        Some(next)
            if (next == base || next.starts_with(&format!("{base}/")))
                && !next.contains("//")
                && !next.contains('\\')
                && !next.contains("/login")
                && next.bytes().all(|b| (0x21..0x7f).contains(&b)) =>
        {
            next.to_owned()
        }
        _ => base.to_owned(),
    }
}

/// `GET /login`.
pub(super) async fn login_form<S: Store>(
    State(api): State<Arc<Api<S>>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let form = Form::parse(query.unwrap_or_default().as_bytes());
    let note = match form.get("reason") {
        Some("expired") => Some("Your sign-in is no longer valid; sign in again."),
        Some("required") => Some("Sign in to see the dashboard."),
        Some("out") => Some("Signed out."),
        _ => None,
    };
    view::login(&base(&api), form.get("next"), note, StatusCode::OK)
}

/// `POST /login`: checks the token with the API's authenticator and keeps
/// it in an `HttpOnly` cookie.
pub(super) async fn login<S: Store>(State(api): State<Arc<Api<S>>>, request: Request) -> Response {
    let limits = &api.gate.limits;
    if let Some(refused) = header_limits(limits, request.headers()) {
        return refused;
    }
    let base = base(&api);
    if !same_origin(request.headers()) {
        return view::refused(
            StatusCode::FORBIDDEN,
            "sign in from the dashboard's own page",
        );
    }
    let secure = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| o.starts_with("https://"));
    let (parts, body) = request.into_parts();
    let bytes = match read_body(limits, &parts.headers, body).await {
        Ok(bytes) => bytes,
        Err(refused) => return refused,
    };
    let form = Form::parse(&bytes);
    let next = form.get("next");
    let token = form.get("token").unwrap_or("").trim();
    let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) else {
        return view::login(
            &base,
            next,
            Some("That token is not valid."),
            StatusCode::UNAUTHORIZED,
        );
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, value);
    if token.is_empty() || api.gate.authenticator.authenticate(&headers).await.is_err() {
        return view::login(
            &base,
            next,
            Some("That token is not valid."),
            StatusCode::UNAUTHORIZED,
        );
    }
    let encoded: String = form_urlencoded::byte_serialize(token.as_bytes()).collect();
    let cookie = format!(
        "{COOKIE}={encoded}; Path={base}; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{}",
        if secure { "; Secure" } else { "" }
    );
    let mut response = Redirect::to(&next_target(&base, next)).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST /logout`: forgets the cookie.
pub(super) async fn logout<S: Store>(
    State(api): State<Arc<Api<S>>>,
    Extension(_session): Extension<Session>,
) -> PageResult {
    let base = base(&api);
    let mut response = Redirect::to(&format!("{base}/login?reason=out")).into_response();
    let cookie = format!("{COOKIE}=; Path={base}; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_returns_only_to_dashboard_paths() {
        let base = "/tasker/dashboard";
        assert_eq!(
            next_target(base, Some("/tasker/dashboard/tasks?state=error")),
            "/tasker/dashboard/tasks?state=error"
        );
        for hostile in [
            "https://evil.example/",
            "//evil.example/tasker/dashboard/",
            "/tasker/dashboard//evil.example",
            "/tasker/dashboard/\\evil",
            "/other",
            "/tasker/dashboardx",
            "/tasker/dashboard/\r\nSet-Cookie: x=y",
        ] {
            assert_eq!(
                next_target(base, Some(hostile)),
                "/tasker/dashboard",
                "{hostile}"
            );
        }
    }

    #[test]
    fn form_tokens_depend_on_the_credential_and_the_process() {
        let a = Sessions::new();
        let b = Sessions::new();
        assert_eq!(a.form_token("t"), a.form_token("t"));
        assert_ne!(a.form_token("t"), a.form_token("u"));
        assert_ne!(a.form_token("t"), b.form_token("t"));
        assert_eq!(a.form_token("t").len(), 32);
    }

    #[test]
    fn origins_must_name_the_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
    }
}
