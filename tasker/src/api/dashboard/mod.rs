//! The web dashboard (feature `dashboard`): server-rendered pages under
//! `{prefix}/dashboard`, behind the API's authentication and permissions.
//!
//! Pages are HTML from [maud] templates with one small script of our own
//! (`assets/dashboard.js`: the live graph over server-sent events and the
//! bulk-selection helpers); every asset is compiled into the binary. A page
//! or button the caller lacks the permission for is not shown, and the
//! server refuses it when forced.
//!
//! A browser cannot send a bearer token on a link, so the dashboard also
//! accepts the token from an `HttpOnly`, `SameSite=Strict` cookie set by
//! its login form. Every form that changes something carries a token
//! derived from the caller's credential and a secret of the process
//! (checked on the server), and the `Origin` of a POST must be the host's.

mod actions;
mod graph;
mod live;
mod pages;
mod session;
mod view;

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::{Api, ApiError};
use crate::store::Store;

pub(super) use session::Sessions;

/// The dashboard's path under the API's prefix.
pub(super) const PATH: &str = "/dashboard";

/// The dashboard's routes, to nest at [`PATH`] under the API's prefix.
pub(super) fn routes<S: Store>(api: &Arc<Api<S>>) -> Router<Arc<Api<S>>> {
    let pages = Router::new()
        .route("/", get(pages::overview::<S>))
        .route("/tasks", get(pages::tasks::<S>))
        .route("/tasks/{id}", get(pages::task::<S>))
        .route("/tasks/{id}/live", get(live::task_events::<S>))
        .route(
            "/tasks/{id}/{action}",
            get(actions::confirm_task::<S>).post(actions::task_action::<S>),
        )
        .route(
            "/steps/{id}/{action}",
            get(actions::confirm_step::<S>).post(actions::step_action::<S>),
        )
        .route("/handlers", get(pages::handlers::<S>))
        .route(
            "/handlers/{namespace}/{name}/{version}",
            get(pages::handler::<S>),
        )
        .route(
            "/dead-letters",
            get(pages::dead_letters::<S>).post(actions::confirm_bulk::<S>),
        )
        .route("/dead-letters/apply", post(actions::bulk_action::<S>))
        .route("/logout", post(session::logout::<S>))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(api),
            session::gate::<S>,
        ));
    Router::new()
        .merge(pages)
        .route(
            "/login",
            get(session::login_form::<S>).post(session::login::<S>),
        )
        .route("/assets/{file}", get(asset))
        .layer(axum::middleware::from_fn(headers))
}

/// Security headers on every dashboard response: no framing, no
/// third-party anything, no caching of pages that show task data.
async fn headers(request: Request, next: Next) -> Response {
    let asset = request.uri().path().contains("/assets/");
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !asset && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

const CSS: &str = include_str!("assets/dashboard.css");
const JS: &str = include_str!("assets/dashboard.js");

/// The embedded stylesheet and script.
async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "dashboard.css" => (CSS, "text/css; charset=utf-8"),
        "dashboard.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// An error shown as a page: the API's status and message.
pub(super) struct PageError(pub(super) ApiError);

impl<E: Into<ApiError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let ApiError {
            status, message, ..
        } = self.0;
        let page = view::bare(
            &format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ),
            maud::html! {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                p.error role="alert" { (message) }
            },
        );
        (status, page).into_response()
    }
}

type PageResult = Result<Response, PageError>;
