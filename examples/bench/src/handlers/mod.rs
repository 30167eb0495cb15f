//! The benchmark's workflows: no-op steps in the shapes of the scenarios.
//! Written out in full (generated once) because `#[task_handler]` needs
//! every step as a function.

use tasker::prelude::*;

mod chains;
mod fan_out;
mod mapped;

pub use chains::{Chain10, Chain40};
pub use fan_out::FanOut;
pub use mapped::{MapSize, Mapped, MAP_CLOCK, MAP_ITEMS};

/// S1: one step.
pub struct Single;

#[task_handler(namespace = "bench", version = "1.0.0")]
impl Single {
    /// Does nothing.
    #[step]
    async fn only() -> StepResult<()> {
        Ok(())
    }
}

/// TX: one transactional step writing one row of the application's own
/// (`bench_effects`), committed with its completion.
pub struct TxWrite;

#[task_handler(namespace = "bench", version = "1.0.0")]
impl TxWrite {
    /// Inserts a row in the step's transaction.
    #[step(transactional)]
    async fn write(ctx: &StepContext) -> StepResult<()> {
        use tasker_diesel::StepDb;
        insert_effect(&mut *ctx.db().await?, ctx.task_id()).await
    }
}

/// TX_PLAIN: the same insert from a plain step, on a pool of its own (the
/// way a step writes without transactional steps: at least once).
pub struct PlainWrite;

#[task_handler(namespace = "bench", version = "1.0.0")]
impl PlainWrite {
    /// Inserts a row on its own connection.
    #[step]
    async fn write(ctx: &StepContext) -> StepResult<()> {
        let pool = ctx.resource::<crate::AppPool>()?;
        let mut conn = pool
            .0
            .get()
            .await
            .map_err(|e| StepError::retryable(e.to_string()))?;
        insert_effect(&mut conn, ctx.task_id()).await
    }
}

/// TX and TX_PLAIN's one write.
async fn insert_effect(
    conn: &mut diesel_async::AsyncPgConnection,
    task_id: tasker::TaskId,
) -> StepResult<()> {
    use diesel_async::RunQueryDsl;
    diesel::sql_query("INSERT INTO bench_effects (task_id) VALUES ($1)")
        .bind::<diesel::sql_types::BigInt, _>(task_id.0)
        .execute(conn)
        .await
        .map_err(|e| StepError::retryable(e.to_string()))?;
    Ok(())
}

/// S3: a -> {b, c} -> d.
pub struct Diamond;

#[task_handler(namespace = "bench", version = "1.0.0")]
impl Diamond {
    /// Root.
    #[step]
    async fn a() -> StepResult<()> {
        Ok(())
    }

    /// Branch.
    #[step(depends_on = a)]
    async fn b(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 2);
        Ok(())
    }

    /// Branch.
    #[step(depends_on = a)]
    async fn c(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 3);
        Ok(())
    }

    /// Join.
    #[step(depends_on = [b, c])]
    async fn d(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 4);
        Ok(())
    }
}

/// SOAK: fails its first attempt (retryable, after 100 ms), then succeeds.
pub struct RetryOnce;

#[task_handler(namespace = "bench", version = "1.0.0")]
impl RetryOnce {
    /// Fails once.
    #[step(retry_limit = 2)]
    async fn flaky(ctx: &StepContext<serde_json::Value>) -> StepResult<()> {
        if ctx.attempt() == 1 {
            return Err(StepError::retryable("first attempt fails")
                .with_retry_after(std::time::Duration::from_millis(100)));
        }
        Ok(())
    }

    /// Runs after the retry.
    #[step(depends_on = flaky)]
    async fn after() -> StepResult<()> {
        Ok(())
    }
}

/// SOAK: fails permanently; the task ends in `error`.
pub struct Doomed;

#[task_handler(namespace = "bench", version = "1.0.0")]
impl Doomed {
    /// Always fails.
    #[step]
    async fn fail() -> StepResult<()> {
        Err(StepError::permanent("this step always fails"))
    }

    /// Never runs.
    #[step(depends_on = fail)]
    async fn never() -> StepResult<()> {
        Ok(())
    }
}

/// SOAK: its first attempt overruns a 50 ms timeout; the retry is quick.
pub struct TimesOut;

#[task_handler(namespace = "bench", version = "1.0.0")]
impl TimesOut {
    /// Slow once.
    #[step(timeout = "50ms", retry_limit = 2)]
    async fn slow(ctx: &StepContext<serde_json::Value>) -> StepResult<()> {
        if ctx.attempt() == 1 {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        Ok(())
    }
}

/// DEC: a diamond whose middle is a decision: `score -> route -> {left,
/// right} -> join`, `route` choosing `left`. Four steps complete, one is
/// skipped: next to S3, what a decision's completion (the alone path, with
/// its skip) costs.
pub struct Decision;

#[task_handler(namespace = "bench", version = "1.0.0")]
impl Decision {
    /// Root.
    #[step]
    async fn score() -> StepResult<()> {
        Ok(())
    }

    /// Chooses `left`.
    #[step(depends_on = score, branches = [left, right])]
    async fn route() -> StepResult<String> {
        Ok("left".to_owned())
    }

    /// Chosen.
    #[step(depends_on = route)]
    async fn left() -> StepResult<()> {
        Ok(())
    }

    /// Skipped.
    #[step(depends_on = route)]
    async fn right() -> StepResult<()> {
        Ok(())
    }

    /// After either.
    #[step(depends_on = [left, right])]
    async fn join(left: Option<()>, right: Option<()>) -> StepResult<()> {
        let _ = (left, right);
        Ok(())
    }
}

/// Checkpoints CK saves per task.
pub const CHECKPOINTS_PER_TASK: u64 = 10;

/// CK: one step that saves [`CHECKPOINTS_PER_TASK`] checkpoints (a cursor
/// and a sum, as a batch would) before it completes.
pub struct Checkpointed;

#[task_handler(namespace = "bench", version = "1.0.0")]
impl Checkpointed {
    /// Saves its progress ten times.
    #[step]
    async fn batch(ctx: &StepContext) -> StepResult<u64> {
        let mut next: u64 = ctx.checkpoint().await?.unwrap_or_default();
        while next < CHECKPOINTS_PER_TASK {
            next += 1;
            ctx.save_checkpoint(&next).await?;
        }
        Ok(next)
    }
}
