//! Serving the API with connection-level limits that `axum::serve` does
//! not offer: a header-read timeout (which also closes idle keep-alive
//! connections), a cap on open connections, and a graceful shutdown that
//! waits a bounded time for requests in flight.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::ApiLimits;

/// Serves `app` (e.g. [`router`](super::router)) on `listener` until
/// `shutdown` completes, then waits up to `limits.request_timeout` for the
/// requests in flight.
///
/// Uses `limits.header_read_timeout` and `limits.max_connections`; the
/// other limits are applied by the router itself.
///
/// ```no_run
/// # async fn demo(tasker: tasker::Tasker<impl tasker::Store>) -> std::io::Result<()> {
/// use tasker::api::{ApiConfig, StaticTokens};
///
/// let auth = StaticTokens::new()
///     .token("ops", "a-long-random-secret-token-0123456789", ["tasker.task:*"]);
/// let config = ApiConfig::new(auth);
/// let limits = config.limits.clone();
/// let app = tasker::api::router(tasker, config);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// tasker::api::serve(listener, app, &limits, async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await
/// # }
/// ```
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &ApiLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Wait for a free connection slot before accepting: excess clients
        // wait in the kernel's backlog instead of costing us a task each.
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off a little.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            // A hard ceiling well above the router's own header limits, so
            // ordinary oversized headers get the router's JSON 431.
            .max_buf_size((limits.max_header_bytes * 4).max(64 * 1024))
            .max_headers(limits.max_headers.saturating_mul(2).max(100));
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection ended: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.request_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight at shutdown were dropped");
    }
    Ok(())
}
