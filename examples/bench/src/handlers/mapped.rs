//! MAP: one task fanning out over `MAP_ITEMS` items (`for_each`), then a
//! join that receives every item's output.

use std::sync::Mutex;
use std::time::Instant;

use tasker::prelude::*;

/// Items in MAP's one task (`--quick`: a tenth).
pub const MAP_ITEMS: u32 = 10_000;

/// When the last item's body ended and the join's began (wall clock).
pub static MAP_CLOCK: Mutex<(Option<Instant>, Option<Instant>)> = Mutex::new((None, None));

/// MAP's context: how many items.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MapSize {
    /// Items.
    pub items: u32,
}

/// MAP: `items -> work (once per item) -> join`.
pub struct Mapped;

#[task_handler(namespace = "bench", version = "1.0.0", context = MapSize)]
impl Mapped {
    /// The items.
    #[step]
    async fn items(ctx: &StepContext<MapSize>) -> StepResult<Vec<u32>> {
        Ok((0..ctx.context().items).collect())
    }

    /// One item: a no-op that notes when it ended.
    #[step(depends_on = items, for_each = items)]
    async fn work(items: u32) -> StepResult<u32> {
        let now = Instant::now();
        let mut clock = MAP_CLOCK.lock().unwrap_or_else(|e| e.into_inner());
        if clock.0.is_none_or(|last| now > last) {
            clock.0 = Some(now);
        }
        Ok(items)
    }

    /// Receives every item's output.
    #[step(depends_on = work)]
    async fn join(work: Vec<u32>) -> StepResult<usize> {
        MAP_CLOCK.lock().unwrap_or_else(|e| e.into_inner()).1 = Some(Instant::now());
        Ok(work.len())
    }
}
