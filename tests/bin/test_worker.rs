//! A worker process for tests: `tasker-test-worker <database-url>
//! [config.yaml]` runs the test handlers (with the configuration file, when
//! given) until killed or sent Ctrl-C. It prints `ready` once the worker
//! runs.

use std::time::Duration;

use tasker::Tasker;

#[tokio::main]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .expect("usage: tasker-test-worker <database-url>");
    // Link the handlers.
    let _ = (
        tasker_tests::handlers::SlowJob,
        tasker_tests::handlers::Batch,
        tasker_tests::handlers::FanOut,
        tasker_tests::handlers::ParallelBatch,
    );
    let settings = std::env::args()
        .nth(2)
        .map(|path| tasker::config::Config::load(&path).expect("a valid configuration file"))
        .unwrap_or_default();
    let store = tasker_diesel::connect(&url).await.expect("connect");
    let tasker = Tasker::builder(store)
        .settings(settings)
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
