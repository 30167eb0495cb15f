//! A worker process for tests: `tasker-test-worker <database-url>` runs the
//! test handlers until killed or sent Ctrl-C. It prints `ready` once the
//! worker runs.

use std::time::Duration;

use tasker::Tasker;

#[tokio::main]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .expect("usage: tasker-test-worker <database-url>");
    // Link the handlers.
    let _ = tasker_tests::handlers::SlowJob;
    let store = tasker_diesel::connect(&url).await.expect("connect");
    let tasker = Tasker::builder(store)
        .configure(|c| {
            tasker_tests::fast_config(c);
            c.lease = Duration::from_secs(1);
            c.worker_id = format!("doomed:{}", std::process::id());
        })
        .build()
        .await
        .expect("engine starts");
    let worker = tasker.start_worker();
    println!("ready");
    tokio::signal::ctrl_c().await.expect("signal handler");
    worker.shutdown().await;
}
