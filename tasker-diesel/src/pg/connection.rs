//! Connections: the `LISTEN` task that wakes workers.

use std::sync::Arc;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use futures_util::StreamExt;
use tokio::sync::Notify;

/// Listens for wake-up notifications, reconnecting on failure.
pub(super) async fn listen(url: String, channel: String, wakeups: Arc<Notify>) {
    loop {
        match AsyncPgConnection::establish(&url).await {
            Ok(mut conn) => {
                if let Err(e) = conn.batch_execute(&format!("LISTEN \"{channel}\"")).await {
                    tracing::warn!("LISTEN failed: {e}; relying on polling");
                } else {
                    let mut stream = std::pin::pin!(conn.notifications_stream());
                    while let Some(notification) = stream.next().await {
                        match notification {
                            Ok(_) => wakeups.notify_one(),
                            Err(e) => {
                                tracing::warn!("notification listener failed: {e}; reconnecting");
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!("notification listener cannot connect: {e}; relying on polling")
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
