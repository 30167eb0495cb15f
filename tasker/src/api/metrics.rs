//! The Prometheus metrics endpoint: inside the API (`GET {prefix}/metrics`,
//! behind its permission) or on its own port ([`serve_metrics`]).
//!
//! ```no_run
//! # async fn demo(tasker: tasker::Tasker<impl tasker::Store>) -> std::io::Result<()> {
//! let (addr, _server) = tasker::api::serve_metrics(tasker.metrics().clone(), "127.0.0.1:9464".parse().unwrap()).await?;
//! println!("metrics on http://{addr}/metrics");
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::Shared;
use crate::metrics::{Exposition, Metrics};
use crate::store::Store;

/// The metrics as a response, in the format the `Accept` header asks for
/// (see [`Exposition::negotiate`]).
fn exposition(metrics: &Metrics, headers: &HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Exposition::negotiate(accept);
    (
        [
            (header::CONTENT_TYPE, format.content_type()),
            (header::VARY, "Accept"),
        ],
        metrics.encode_as(format),
    )
        .into_response()
}

/// `GET {prefix}/metrics` of the API.
pub(super) async fn endpoint<S: Store>(State(api): Shared<S>, headers: HeaderMap) -> Response {
    exposition(api.tasker.metrics(), &headers)
}

/// A router serving `GET /metrics` without authentication, for a port of
/// its own; merge it into your own axum app.
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        "/metrics",
        get(move |headers: HeaderMap| {
            let metrics = Arc::clone(&metrics);
            async move { exposition(&metrics, &headers) }
        }),
    )
}

/// Serves [`metrics_router`] on `addr` (port 0 picks a free one) until the
/// returned task is aborted. Returns the bound address.
pub async fn serve_metrics(
    metrics: Arc<Metrics>,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, metrics_router(metrics)).await {
            tracing::error!("metrics endpoint stopped: {e}");
        }
    });
    Ok((bound, server))
}
