//! MAP's measures shared with MAP_SQLITE, and MAP_SQLITE itself: the
//! fan-out on the embedded store.

use std::time::{Duration, Instant};

use tasker::prelude::*;
use tasker::Tasker;

use crate::handlers::{MapSize, Mapped, MAP_CLOCK, MAP_ITEMS};
use crate::probe::peak_rss_mib;
use crate::{registry, Args};

/// MAP_SQLITE: MAP on the embedded store (a SQLite file of its own, one
/// worker as SQLite allows), wall clock only.
pub(crate) async fn map_sqlite(args: &Args) -> String {
    let items = if args.quick {
        MAP_ITEMS / 10
    } else {
        MAP_ITEMS
    };
    let file = std::env::temp_dir().join(format!("tasker-bench-map-{}.sqlite", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let store = tasker_diesel::SqliteStore::open(&file)
        .await
        .expect("a SQLite file");
    tasker::Store::migrate(&store).await.expect("migrate");
    let tasker = Tasker::builder(store)
        .registry(registry())
        .without_registered_subscribers()
        .configure(|c| {
            c.concurrency = args.concurrency;
            c.claim_batch = args.batch;
            c.poll_interval = Duration::from_millis(200);
        })
        .build()
        .await
        .expect("engine");
    tasker
        .create_task(Mapped::request(MapSize { items }))
        .await
        .expect("the task");
    let started = Instant::now();
    let worker = tasker.start_worker();
    let expected = u64::from(items) + 2;
    while worker.counts().completed < expected {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let drained_in = started.elapsed();
    worker.shutdown().await;
    let wall = map_join_wall_ms();
    drop(tasker);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    format!(
        "scenario=MAP_SQLITE items={items} concurrency={} batch={} items_per_s={:.0} drain_s={:.3} \
         join_wall_ms={} peak_rss_mib={:.1}",
        args.concurrency,
        args.batch,
        f64::from(items) / drained_in.as_secs_f64(),
        drained_in.as_secs_f64(),
        wall.map_or("n/a".to_owned(), |v| format!("{v:.2}")),
        peak_rss_mib(),
    )
}

/// MAP's headline: from the last item's body to the join's, wall clock.
pub(crate) fn map_join_wall_ms() -> Option<f64> {
    let (last_item, join) = *MAP_CLOCK.lock().unwrap_or_else(|e| e.into_inner());
    last_item
        .zip(join)
        .map(|(last, join)| join.saturating_duration_since(last).as_secs_f64() * 1000.0)
}
