//! Handlers the integration tests run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tasker::prelude::*;

/// A diamond, `a -> {b, c} -> d`, that adds up numbers along the way.
pub struct Diamond;

/// Context of [`Diamond`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seed {
    /// Starting value.
    pub value: i64,
}

#[task_handler(
    namespace = "tests",
    version = "1.0.0",
    context = Seed,
    dependent_systems = ["ledger"],
    metadata = { owner = "tests-team", runbook = "https://runbooks.example/diamond" }
)]
impl Diamond {
    /// The root.
    #[step]
    async fn a(ctx: &StepContext<Seed>) -> StepResult<i64> {
        Ok(ctx.context().value)
    }

    /// One branch.
    #[step(depends_on = a)]
    async fn b(a: i64) -> StepResult<i64> {
        Ok(a + 1)
    }

    /// The other branch.
    #[step(depends_on = a, dependent_systems = ["fx-rates", "ledger"])]
    async fn c(a: i64) -> StepResult<i64> {
        Ok(a * 10)
    }

    /// The join.
    #[step(depends_on = [b, c])]
    async fn d(b: i64, c: i64) -> StepResult<i64> {
        Ok(b + c)
    }
}

/// Instructions for [`Flaky`]: how each step should behave, by step name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Script {
    /// Fail this many attempts (retryably) before succeeding.
    #[serde(default)]
    pub fail_times: u32,
    /// Fail permanently while the `Switch` resource is off.
    #[serde(default)]
    pub permanent_until_switched: bool,
    /// Sleep this long in `work` (milliseconds).
    #[serde(default)]
    pub sleep_ms: u64,
    /// Ask for this retry delay (milliseconds) on planned failures.
    #[serde(default)]
    pub retry_after_ms: Option<u64>,
    /// Distinguishes tasks in the shared attempt counters.
    pub key: String,
}

/// Counts attempts per task key, shared through an `Arc<Attempts>` resource.
#[derive(Debug, Default)]
pub struct Attempts(pub Mutex<HashMap<String, u32>>);

impl Attempts {
    /// Attempts recorded for `key`.
    pub fn get(&self, key: &str) -> u32 {
        self.0.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

/// A switch tests flip to make a permanently failing step succeed; an
/// `Arc<Switch>` resource.
#[derive(Debug, Default)]
pub struct Switch(pub AtomicU32);

/// A two-step workflow whose first step fails on command.
pub struct Flaky;

#[task_handler(namespace = "tests", version = "1.0.0", context = Script)]
impl Flaky {
    /// Fails as the script says, then succeeds.
    #[step(retry_limit = 3)]
    async fn work(ctx: &StepContext<Script>) -> StepResult<u32> {
        let script = ctx.context();
        let n = {
            let attempts = ctx.resource::<Arc<Attempts>>()?;
            let mut map = attempts.0.lock().unwrap();
            let n = map.entry(script.key.clone()).or_default();
            *n += 1;
            *n
        };
        if script.sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(script.sleep_ms)).await;
        }
        if script.permanent_until_switched
            && ctx.resource::<Arc<Switch>>()?.0.load(Ordering::SeqCst) == 0
        {
            return Err(StepError::permanent("the switch is off").with_class("SwitchOff"));
        }
        if n <= script.fail_times {
            let error = StepError::retryable(format!("planned failure {n}"));
            return Err(match script.retry_after_ms {
                Some(ms) => error.with_retry_after(Duration::from_millis(ms)),
                None => error,
            });
        }
        Ok(n)
    }

    /// Runs after `work`.
    #[step(depends_on = work)]
    async fn after(work: u32) -> StepResult<String> {
        Ok(format!("work took {work} attempt(s)"))
    }
}

/// What [`Announcer`] should publish.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Announcement {
    /// The event name to publish.
    pub event: String,
    /// The amount to report.
    pub amount_cents: i64,
}

/// Publishes a custom event from its step.
pub struct Announcer;

#[task_handler(namespace = "tests", version = "1.0.0", context = Announcement)]
impl Announcer {
    /// Publishes `payment.processed` (declared) or whatever the context says.
    #[step(events = ["payment.processed", "payment.risk_flagged"], retryable = false)]
    async fn announce(ctx: &StepContext<Announcement>) -> StepResult<()> {
        let a = ctx.context();
        ctx.publish(
            &a.event,
            serde_json::json!({ "amount_cents": a.amount_cents }),
        )
    }
}

/// Context of [`SlowJob`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// How long `work` sleeps.
    pub sleep_ms: u64,
}

/// A two-step job with a slow first step, for the crash test.
pub struct SlowJob;

#[task_handler(namespace = "tests", version = "1.0.0", context = Job)]
impl SlowJob {
    /// Sleeps.
    #[step]
    async fn work(ctx: &StepContext<Job>) -> StepResult<u64> {
        tokio::time::sleep(Duration::from_millis(ctx.context().sleep_ms)).await;
        Ok(ctx.context().sleep_ms)
    }

    /// Runs after `work`.
    #[step(depends_on = work)]
    async fn done(work: u64) -> StepResult<u64> {
        Ok(work)
    }
}

/// Context of [`Hostile`]: what its first step does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mischief {
    /// `nul`, `deep`, `nul_error`, `huge_error`, or anything else for a
    /// plain output.
    pub mode: String,
}

/// A step that returns what no store can keep, for the hostile-input
/// tests.
pub struct Hostile;

#[task_handler(namespace = "tests", version = "1.0.0", context = Mischief)]
impl Hostile {
    /// Returns or fails as the context says.
    #[step(retry_limit = 0)]
    async fn emit(ctx: &StepContext<Mischief>) -> StepResult<serde_json::Value> {
        match ctx.context().mode.as_str() {
            "nul" => Ok(serde_json::json!({ "text": "a\u{0}b" })),
            "deep" => {
                let mut value = serde_json::json!(1);
                for _ in 0..200 {
                    value = serde_json::Value::Array(vec![value]);
                }
                Ok(value)
            }
            "nul_error" => Err(StepError::permanent("bad\u{0}thing")),
            "huge_error" => Err(StepError::permanent("x".repeat(100_000))),
            _ => Ok(serde_json::json!("fine")),
        }
    }

    /// Reads `emit`'s output.
    #[step(depends_on = emit)]
    async fn after(emit: serde_json::Value) -> StepResult<bool> {
        Ok(emit.is_string())
    }
}

/// Context of [`Ledger`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// The effect's key: one row per task is the whole point.
    pub key: String,
    /// Sleep this long after the write, before returning (the window in
    /// which a crash or a freeze hits).
    #[serde(default)]
    pub sleep_ms: u64,
    /// Fail (retryably) on the first attempt, after the write.
    #[serde(default)]
    pub fail_first: bool,
}

/// A transactional step writing one row into the application's own table
/// `ledger_effects (key TEXT, attempt INT)` (created by the test), for the
/// exactly-once tests on PostgreSQL. Not served on SQLite.
pub struct Ledger;

#[task_handler(namespace = "tests", version = "1.0.0", context = Entry)]
impl Ledger {
    /// Writes the effect in the step's transaction, then sleeps, then
    /// fails on the first attempt when asked.
    #[step(transactional, retry_limit = 5)]
    async fn record(ctx: &StepContext<Entry>) -> StepResult<u32> {
        use diesel_async::RunQueryDsl;
        use tasker_diesel::StepDb;
        let entry = ctx.context();
        {
            let mut conn = ctx.db().await?;
            diesel::sql_query("INSERT INTO ledger_effects (key, attempt) VALUES ($1, $2)")
                .bind::<diesel::sql_types::Text, _>(&entry.key)
                .bind::<diesel::sql_types::Integer, _>(ctx.attempt() as i32)
                .execute(&mut *conn)
                .await
                .map_err(|e| StepError::retryable(format!("writing the effect: {e}")))?;
        }
        if entry.sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(entry.sleep_ms)).await;
        }
        if entry.fail_first && ctx.attempt() == 1 {
            return Err(StepError::retryable("planned failure after the write"));
        }
        Ok(ctx.attempt())
    }

    /// Runs after `record`.
    #[step(depends_on = record)]
    async fn after(record: u32) -> StepResult<u32> {
        Ok(record)
    }
}

/// Context of [`Ordered`]: a label to record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Label {
    /// What `record` appends to the [`RunOrder`].
    pub label: String,
}

/// The labels of [`Ordered`] tasks in the order their step ran; an
/// `Arc<RunOrder>` resource.
#[derive(Debug, Default)]
pub struct RunOrder(pub Mutex<Vec<String>>);

impl RunOrder {
    /// The labels recorded so far.
    pub fn labels(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// A single-step workflow that records when it ran, for the claim-order
/// tests.
pub struct Ordered;

#[task_handler(namespace = "tests", version = "1.0.0", context = Label)]
impl Ordered {
    /// Appends the label to the run order.
    #[step]
    async fn record(ctx: &StepContext<Label>) -> StepResult<()> {
        let order = ctx.resource::<Arc<RunOrder>>()?;
        order.0.lock().unwrap().push(ctx.context().label.clone());
        Ok(())
    }
}

/// Context of [`Throttled`]: how long the call takes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiCall {
    /// How long `call_api` sleeps.
    pub sleep_ms: u64,
}

/// Steps of [`Throttled`] running in this process: now and the most seen;
/// an optional `Arc<Gauge>` resource.
#[derive(Debug, Default)]
pub struct Gauge {
    now: std::sync::atomic::AtomicUsize,
    /// The most `call_api` steps seen running at once.
    pub most: std::sync::atomic::AtomicUsize,
}

/// A call to a fragile API between two quick steps, for the limit tests:
/// `prepare -> call_api -> record`. A limit holds `call_api`; `prepare`'s
/// worker must not take it along when it completes.
pub struct Throttled;

#[task_handler(namespace = "tests", version = "1.0.0", context = ApiCall)]
impl Throttled {
    /// Quick.
    #[step]
    async fn prepare(ctx: &StepContext<ApiCall>) -> StepResult<u64> {
        Ok(ctx.context().sleep_ms)
    }

    /// Sleeps, counted by the [`Gauge`] when there is one.
    #[step(depends_on = prepare)]
    async fn call_api(ctx: &StepContext<ApiCall>, prepare: u64) -> StepResult<u64> {
        let gauge = ctx.resource::<Arc<Gauge>>().ok();
        if let Some(gauge) = &gauge {
            let now = gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
            gauge.most.fetch_max(now, Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(prepare)).await;
        if let Some(gauge) = &gauge {
            gauge.now.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(prepare)
    }

    /// Quick.
    #[step(depends_on = call_api)]
    async fn record(call_api: u64) -> StepResult<u64> {
        Ok(call_api)
    }
}

/// Context of [`Bounded`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Quantity {
    /// 1 to 1,000.
    pub count: i64,
    /// Not blank.
    pub label: String,
}

/// A handler whose context is checked beyond its type.
pub struct Bounded;

#[task_handler(namespace = "tests", version = "1.0.0", context = Quantity, validate = Self::check)]
impl Bounded {
    /// Doubles the count.
    #[step]
    async fn double(ctx: &StepContext<Quantity>) -> StepResult<i64> {
        Ok(ctx.context().count * 2)
    }

    fn check(q: &Quantity, problems: &mut tasker::Violations) {
        if !(1..=1000).contains(&q.count) {
            problems.at("count", format!("is {}; give 1 to 1000", q.count));
        }
        if q.label.trim().is_empty() {
            problems.at("label", "must not be blank");
        }
    }
}

/// Context of [`Batch`]: rows `0..rows` in chunks of `chunk`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rows {
    /// How many rows.
    pub rows: u64,
    /// Rows per chunk.
    pub chunk: u64,
    /// A file each processed chunk appends a line `start end` to: the
    /// chunk's side effect, outside the store, as a user's own writes are.
    pub log: String,
    /// How long one chunk's work takes.
    pub chunk_ms: u64,
    /// Attempt 1 fails (retryably) once it has saved a checkpoint at or past
    /// this row.
    pub fail_after: Option<u64>,
}

/// What [`Batch`] checkpoints and returns.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The first row not yet processed.
    pub next: u64,
    /// The sum of the rows processed.
    pub sum: u64,
}

impl Rows {
    /// The rows a chunk log names, each line `start end`, in order.
    pub fn logged(log: &str) -> Vec<(u64, u64)> {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(|line| {
                let (start, end) = line.split_once(' ').expect("a `start end` line");
                (start.parse().unwrap(), end.parse().unwrap())
            })
            .collect()
    }
}

/// One chunk of [`Batch`]'s work: its side effect first (a line appended
/// to the log), then the rest of its time, so a crash before the step saves
/// its checkpoint has done the chunk's effect: the case that redoes a chunk.
pub async fn process_chunk(rows: &Rows, start: u64, end: u64) -> StepResult<u64> {
    use std::io::Write;
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&rows.log)
        .retryable()?;
    log.write_all(format!("{start} {end}\n").as_bytes())
        .retryable()?;
    tokio::time::sleep(Duration::from_millis(rows.chunk_ms)).await;
    Ok((start..end).sum())
}

/// A resumable batch: one step works through the rows chunk by chunk and
/// saves its progress after each, so an attempt after a crash or a failure
/// resumes at the last checkpoint.
pub struct Batch;

#[task_handler(namespace = "tests", version = "1.0.0", context = Rows)]
impl Batch {
    /// Processes the rows from the last checkpoint on.
    #[step(retry_limit = 3)]
    async fn import(ctx: &StepContext<Rows>) -> StepResult<Progress> {
        let rows = ctx.context();
        let mut progress: Progress = ctx.checkpoint().await?.unwrap_or_default();
        while progress.next < rows.rows {
            let end = (progress.next + rows.chunk).min(rows.rows);
            progress.sum += process_chunk(rows, progress.next, end).await?;
            progress.next = end;
            ctx.save_checkpoint(&progress).await?;
            if ctx.attempt() == 1 && rows.fail_after.is_some_and(|row| progress.next >= row) {
                return Err(StepError::retryable("the source went away"));
            }
        }
        Ok(progress)
    }
}

/// Context of [`ParallelBatch`]: [`Rows`] split among `partitions`
/// workers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SplitRows {
    /// The rows, their chunks and their log.
    pub rows: Rows,
    /// Workers to split them among.
    pub partitions: u32,
}

/// A parallel batch: the rows split into partitions, one fan-out item per
/// partition working through its share chunk by chunk with checkpoints of
/// its own, converging in `total`.
pub struct ParallelBatch;

#[task_handler(namespace = "tests", version = "1.0.0", context = SplitRows)]
impl ParallelBatch {
    /// The workers' shares.
    #[step]
    async fn split(ctx: &StepContext<SplitRows>) -> StepResult<Vec<tasker::batch::Partition>> {
        let split = ctx.context();
        Ok(tasker::batch::partitions(split.rows.rows, split.partitions))
    }

    /// One share, from its last checkpoint on.
    #[step(depends_on = split, for_each = split, retry_limit = 3)]
    async fn import(
        ctx: &StepContext<SplitRows>,
        split: tasker::batch::Partition,
    ) -> StepResult<Progress> {
        let rows = &ctx.context().rows;
        let mut progress = ctx.checkpoint::<Progress>().await?.unwrap_or(Progress {
            next: split.start,
            sum: 0,
        });
        for chunk in split.chunks_from(progress.next, rows.chunk) {
            progress.sum += process_chunk(rows, chunk.start, chunk.end).await?;
            progress.next = chunk.end;
            ctx.save_checkpoint(&progress).await?;
        }
        Ok(progress)
    }

    /// Where the workers converge: the sum of every row.
    #[step(depends_on = import)]
    async fn total(import: Vec<Progress>) -> StepResult<u64> {
        Ok(import.iter().map(|p| p.sum).sum())
    }
}

/// A decision for the API tests: `pick` chooses `left` when the context's
/// `value` is even, `right` otherwise; `join` runs after either.
pub struct Triage;

#[task_handler(namespace = "tests", version = "1.0.0", context = Seed)]
impl Triage {
    /// Chooses a branch.
    #[step(branches = [left, right])]
    async fn pick(ctx: &StepContext<Seed>) -> StepResult<String> {
        let branch = if ctx.context().value % 2 == 0 {
            "left"
        } else {
            "right"
        };
        Ok(branch.to_owned())
    }

    /// One branch.
    #[step(depends_on = pick)]
    async fn left() -> StepResult<i64> {
        Ok(1)
    }

    /// The other.
    #[step(depends_on = pick)]
    async fn right() -> StepResult<i64> {
        Ok(2)
    }

    /// After whichever ran.
    #[step(depends_on = [left, right])]
    async fn join(left: Option<i64>, right: Option<i64>) -> StepResult<i64> {
        Ok(left.or(right).unwrap_or_default())
    }
}

/// Context of [`Spread`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spread {
    /// How many items `items` returns (0, 1, ...).
    pub items: u32,
    /// How long each item's run sleeps.
    pub item_ms: u64,
    /// A file each item's run appends its number to (its side effect),
    /// before it sleeps.
    pub log: String,
}

/// items -> work (once per item, 8 at a time) -> sum, for the fan-out
/// crash test.
pub struct FanOut;

#[task_handler(namespace = "tests", version = "1.0.0", context = Spread)]
impl FanOut {
    /// The items: 0..n.
    #[step]
    async fn items(ctx: &StepContext<Spread>) -> StepResult<Vec<u32>> {
        Ok((0..ctx.context().items).collect())
    }

    /// One item: logged, then slept on; outputs twice the item.
    #[step(depends_on = items, for_each = items, concurrency = 8)]
    async fn work(ctx: &StepContext<Spread>, items: u32) -> StepResult<u64> {
        use std::io::Write;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&ctx.context().log)
            .map_err(|e| StepError::permanent(e.to_string()))?;
        // One write of the whole line: concurrent items append whole lines.
        log.write_all(format!("{items}\n").as_bytes())
            .map_err(|e| StepError::permanent(e.to_string()))?;
        tokio::time::sleep(Duration::from_millis(ctx.context().item_ms)).await;
        Ok(u64::from(items) * 2)
    }

    /// Every item's output, in item order.
    #[step(depends_on = work)]
    async fn sum(work: Vec<u64>) -> StepResult<Vec<u64>> {
        Ok(work)
    }
}
