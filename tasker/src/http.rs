//! HTTP endpoints (feature `http`): the Prometheus metrics endpoint.
//!
//! ```no_run
//! # async fn demo(tasker: tasker::Tasker<impl tasker::Store>) -> std::io::Result<()> {
//! let (addr, _server) = tasker::http::serve_metrics(tasker.metrics().clone(), "127.0.0.1:9464".parse().unwrap()).await?;
//! println!("metrics on http://{addr}/metrics");
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;

/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A router serving `GET /metrics`; merge it into your own axum app.
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let metrics = Arc::clone(&metrics);
            async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.encode()).into_response() }
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
