//! Fan-out (`#[step(for_each = source, concurrency = n)]`) in the stores,
//! written once for both backends over [`FanOutPrimitives`].
//!
//! The mapped step's static row is its **group**. Once its parents are
//! done it is claimed like any step, and the engine answers with
//! [`Outcome::FanOut`](tasker::store::Outcome::FanOut) instead of running
//! a body. [`fan_out`] then inserts one **instance** row per item at the
//! group's position (its `item_index` and `item`), the first `concurrency`
//! ready and the rest pending, and the group stays `in_progress` without a
//! lease. Each instance's success runs [`item_finished`] in its own
//! completion's transaction: it counts the instance off the group's row in
//! `tasker_step_fan_outs` (whose row lock serializes siblings), releases
//! the next pending instance, and after the last one completes the group
//! with the instances' outputs in item order, with the store's usual
//! success statement (so its children are released as after any step).
//! An operator resolving an instance runs the same; cancelling a group
//! cancels its instances, and a single instance cannot be cancelled (its
//! group would wait for it for ever).
//!
//! A group opened with `on_item_error = "collect"` (`collect_errors` on its
//! fan-out row) also counts off an instance that fails for good
//! ([`item_failed`]): the instance ends `error` with `{"Err": error}` as its
//! result and its task is not failed, and the group's output wraps every
//! other instance's output as `{"Ok": output}`. **A step in `error` that has
//! a result is such a collected item, and finished**: operator retries, task
//! cancels and resolves, the task's error count and the dead letters leave
//! it alone (each of those statements says `results IS NULL`).

use std::future::Future;

use tasker::fan_out::OnItemError;
use tasker::store::{Completed, StoreError};
use tasker::StepError;

use crate::operator::{Tx, TxError};

/// What [`item_finished`] did.
#[derive(Debug, Default)]
pub(crate) struct ItemFinished {
    /// Instances released in its place (1 or 0): workers need waking.
    pub(crate) released: u32,
    /// When this was the group's last unfinished instance: the group, its
    /// attempt, and what completing it did.
    pub(crate) group: Option<(i64, u32, Completed)>,
}

impl ItemFinished {
    /// Adds what it did to the instance's own completion.
    pub(crate) fn add_to(self, completed: &mut Completed) {
        completed.released += self.released;
        if let Some((group, attempt, group_completed)) = self.group {
            if group_completed.applied {
                completed.group_completed = Some((tasker::StepId(group), attempt));
                completed.released += group_completed.released;
                completed.task_state = group_completed.task_state;
                completed.task_duration = group_completed.task_duration;
            }
        }
    }
}

/// What a step is to a fan-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Not part of one (or a mapped step not expanded yet).
    Plain,
    /// A mapped step's group row, expanded into instances.
    Group,
    /// One item's instance.
    Instance,
}

/// Whether the instance `$1`'s group collects its instances' failures (1)
/// or not (0; also for a step that is no instance): the same statement on
/// both stores.
pub(crate) const COLLECTS_SQL: &str =
    "SELECT CAST(CASE WHEN f.collect_errors THEN 1 ELSE 0 END AS BIGINT) AS count
     FROM tasker_workflow_steps s
     JOIN tasker_step_fan_outs f ON f.task_id = s.task_id AND f.position = s.position
     WHERE s.workflow_step_id = $1 AND s.item_index IS NOT NULL";

/// Whether step `$1` is a collected item (1; `error` with a result) or not
/// (0): the same statement on both stores.
pub(crate) const COLLECTED_SQL: &str = "SELECT count(*) AS count FROM tasker_workflow_steps
     WHERE workflow_step_id = $1 AND state = 'error' AND results IS NOT NULL";

/// A step's [`Role`] as one number (0 plain, 1 group, 2 instance): the
/// same statement on both stores.
pub(crate) const ROLE_SQL: &str = "SELECT CAST(CASE WHEN s.item_index IS NOT NULL THEN 2
         WHEN EXISTS (SELECT 1 FROM tasker_step_fan_outs f
                      WHERE f.workflow_step_id = s.workflow_step_id) THEN 1
         ELSE 0 END AS BIGINT) AS count
     FROM tasker_workflow_steps s WHERE s.workflow_step_id = $1";

impl Role {
    pub(crate) fn from_code(code: i64) -> Role {
        match code {
            1 => Role::Group,
            2 => Role::Instance,
            _ => Role::Plain,
        }
    }
}

/// A fan-out group's row, as an instance's completion counted it off.
#[derive(Debug)]
pub(crate) struct FanOutCount {
    pub(crate) group: i64,
    pub(crate) task_id: i64,
    pub(crate) position: i32,
    pub(crate) items: i32,
    pub(crate) concurrency: i32,
    /// Instances not finished, after this one.
    pub(crate) unfinished: i32,
    /// `on_item_error = "collect"`: failed instances are results.
    pub(crate) collect: bool,
}

/// The primitive statements of a fan-out, inside the completion's
/// transaction.
pub(crate) trait FanOutPrimitives {
    /// Locks the step and returns its task and position, when it is
    /// `in_progress` in this attempt (`None` otherwise: a stale attempt).
    fn lock_running(
        &mut self,
        step_id: i64,
        attempt: u32,
    ) -> impl Future<Output = Tx<Option<(i64, i32)>>>;
    /// Inserts the group's instances (`items` as JSON text, in order): the
    /// group's name, position and attempt settings, `item_index` 0.., the
    /// first `ready` ones ready and the others pending, audited as created;
    /// each depends on the group's parents other than `source` (already
    /// complete, so they wait for nothing).
    fn insert_instances(
        &mut self,
        group: i64,
        items: &[String],
        ready: u32,
        source: &str,
        actor: &str,
    ) -> impl Future<Output = Tx<()>>;
    /// Writes the group's fan-out row (`collect`: its instances' failures
    /// are results), takes the group's lease away (it stays `in_progress`
    /// until its last instance finishes) and counts the instances among the
    /// task's unfinished steps.
    fn open_fan_out(
        &mut self,
        group: i64,
        place: (i64, i32),
        items_and_concurrency: (u32, u32),
        collect: bool,
    ) -> impl Future<Output = Tx<()>>;
    /// Whether the instance's group collects its instances' failures
    /// ([`COLLECTS_SQL`]); `false` for a step that is no instance.
    fn collects(&mut self, step_id: i64) -> impl Future<Output = Tx<bool>>;
    /// Whether the step is a collected item ([`COLLECTED_SQL`]).
    fn collected(&mut self, step_id: i64) -> impl Future<Output = Tx<bool>>;
    /// The instance in `attempt` goes `in_progress -> error` with `error`
    /// (audited with it) and `result` as its result, and is counted off its
    /// task's unfinished steps; its task's state is left alone. `false`
    /// when the attempt is no longer the step's (nothing changes then).
    fn collect_failure(
        &mut self,
        step_and_attempt: (i64, u32),
        error: &StepError,
        result: &serde_json::Value,
        actor: &str,
    ) -> impl Future<Output = Tx<bool>>;
    /// Counts the instances `step_ids` off their groups' fan-out rows
    /// (locking them, in group order): per group, its row after, how many
    /// of `step_ids` it counted off, and one of them. Steps that are no
    /// instances are left out.
    fn count_off_items(
        &mut self,
        step_ids: &[i64],
    ) -> impl Future<Output = Tx<Vec<(FanOutCount, i32, i64)>>>;
    /// The pending instances `from..to` (by index) of the group at
    /// `(task, position)` go `pending -> ready`, audited; returns how many.
    fn release_items(
        &mut self,
        place: (i64, i32),
        from: i32,
        to: i32,
        actor: &str,
    ) -> impl Future<Output = Tx<u32>>;
    /// The group's attempt, and the results of its instances in item
    /// order: JSON text (`None` for an instance without one) and whether
    /// the instance is in `error` (a collected failure).
    fn instance_outputs(
        &mut self,
        group: i64,
        place: (i64, i32),
    ) -> impl Future<Output = Tx<(u32, Vec<OutputRow>)>>;
    /// Completes the group in `attempt` with `output`, as the store
    /// records any success: its children released, its task perhaps
    /// finished.
    fn complete_group(
        &mut self,
        group: i64,
        attempt: u32,
        output: serde_json::Value,
        actor: &str,
    ) -> impl Future<Output = Tx<Completed>>;
    /// Up to 1,000 instances of collecting groups that are `in_progress`
    /// with an expired lease (`all`: with any lease, at start-up) and no
    /// attempts left, each with its attempt; locked, skipping those locked
    /// by others.
    fn expired_collected_items(&mut self, all: bool) -> impl Future<Output = Tx<Vec<(i64, u32)>>>;
    /// What the step is to a fan-out.
    fn role(&mut self, step_id: i64) -> impl Future<Output = Tx<Role>>;
    /// The group's unfinished instances go to `cancelled`, audited, and are
    /// counted off the task.
    fn cancel_instances(&mut self, group: i64, actor: &str) -> impl Future<Output = Tx<()>>;
}

/// Expands the claimed group `group` (attempt `attempt`) into one instance
/// per item. Returns how many instances are ready, or `None` when the
/// attempt is no longer the group's (nothing is written then).
pub(crate) async fn fan_out<P: FanOutPrimitives>(
    p: &mut P,
    (group, attempt): (i64, u32),
    source: &str,
    items: &[serde_json::Value],
    (concurrency, on_item_error): (u32, OnItemError),
    actor: &str,
) -> Tx<Option<u32>> {
    let Some(place) = p.lock_running(group, attempt).await? else {
        return Ok(None);
    };
    let n = u32::try_from(items.len()).map_err(|_| {
        TxError::Store(StoreError::Invalid(format!(
            "a fan-out over {} items is more than a step can hold",
            items.len()
        )))
    })?;
    let texts: Vec<String> = items.iter().map(ToString::to_string).collect();
    // At most all of them at once; at least one.
    let concurrency = concurrency.clamp(1, n.max(1));
    p.insert_instances(group, &texts, concurrency, source, actor)
        .await?;
    let collect = on_item_error == OnItemError::Collect;
    p.open_fan_out(group, place, (n, concurrency), collect)
        .await?;
    Ok(Some(concurrency.min(n)))
}

/// After instance `step_id` finished (its success applied, or resolved by
/// an operator): [`items_finished`] for one.
pub(crate) async fn item_finished<P: FanOutPrimitives>(
    p: &mut P,
    step_id: i64,
    actor: &str,
) -> Tx<ItemFinished> {
    Ok(items_finished(p, &[step_id], actor)
        .await?
        .pop()
        .map(|(_, finished)| finished)
        .unwrap_or_default())
}

/// After instance `step_id` failed for good in `attempt` with `error`:
/// when its group collects failures, records the failure as its result,
/// counts it off like a success ([`item_finished`]) and returns what that
/// did; `None` when the group does not collect (then it fails as any step,
/// and its task with it), with nothing written.
pub(crate) async fn item_failed<P: FanOutPrimitives>(
    p: &mut P,
    (step_id, attempt): (i64, u32),
    error: &StepError,
    actor: &str,
) -> Tx<Option<Completed>> {
    if !p.collects(step_id).await? {
        return Ok(None);
    }
    let result = tasker::fan_out::collected_err(error);
    if !p
        .collect_failure((step_id, attempt), error, &result, actor)
        .await?
    {
        return Ok(Some(Completed::default()));
    }
    let mut completed = Completed {
        applied: true,
        collected: true,
        ..Completed::default()
    };
    item_finished(p, step_id, actor)
        .await?
        .add_to(&mut completed);
    Ok(Some(completed))
}

/// Lease recovery's part for collecting groups: an instance whose lease
/// expired with no attempts left (its worker died on it each time) is
/// collected with the `LeaseExpired` error, as a failure it returned would
/// be, instead of failing its task. Run before the store's usual recovery
/// statement, which then no longer sees them. Returns how many, and how
/// many instances they released.
pub(crate) async fn collect_expired<P: FanOutPrimitives>(p: &mut P, all: bool) -> Tx<(u64, u32)> {
    let expired = p.expired_collected_items(all).await?;
    let error = crate::rows::lease_expired();
    let (mut collected, mut released) = (0, 0);
    for step in expired {
        if let Some(done) = item_failed(p, step, &error, "lease-recovery").await? {
            collected += u64::from(done.applied);
            released += done.released;
        }
    }
    Ok((collected, released))
}

/// After instances `step_ids` finished, in one transaction (their
/// successes applied, or one resolved by an operator): counts them off
/// their groups, releases as many pending instances of each, and after a
/// group's last one completes the group with the instances' outputs in
/// item order. Returns, per group, one of its instances in `step_ids`
/// (whose completion reports it) and what was done. Steps that are no
/// instances are ignored.
pub(crate) async fn items_finished<P: FanOutPrimitives>(
    p: &mut P,
    step_ids: &[i64],
    actor: &str,
) -> Tx<Vec<(i64, ItemFinished)>> {
    let mut done_by_group = Vec::new();
    for (count, n, step) in p.count_off_items(step_ids).await? {
        let place = (count.task_id, count.position);
        let mut finished = ItemFinished::default();
        // Released so far: the first `concurrency`, then one per finished
        // instance, so these `n` release the next `n` (while any are left).
        let done = count.items - count.unfinished;
        let released = |done: i32| count.items.min(count.concurrency + done);
        let (from, to) = (released(done - n), released(done));
        if from < to {
            finished.released = p.release_items(place, from, to, actor).await?;
        }
        if count.unfinished == 0 {
            let (attempt, outputs) = p.instance_outputs(count.group, place).await?;
            let output = outputs_array(&outputs, count.collect)?;
            let completed = p
                .complete_group(count.group, attempt, output, actor)
                .await?;
            finished.group = Some((count.group, attempt, completed));
        }
        done_by_group.push((step, finished));
    }
    Ok(done_by_group)
}

/// The instances' results as one JSON array; for a group that collects
/// failures, a successful instance's output as `{"Ok": output}` (a failed
/// one's result is already `{"Err": error}`).
fn outputs_array(outputs: &[OutputRow], collect: bool) -> Tx<serde_json::Value> {
    let mut text = String::with_capacity(
        outputs
            .iter()
            .map(|o| o.results.as_ref().map_or(4, String::len) + 8)
            .sum::<usize>()
            + 2,
    );
    text.push('[');
    for (i, output) in outputs.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        let result = output.results.as_deref().unwrap_or("null");
        if collect && !output.failed {
            text.push_str("{\"Ok\":");
            text.push_str(result);
            text.push('}');
        } else {
            text.push_str(result);
        }
    }
    text.push(']');
    serde_json::from_str(&text)
        .map_err(|e| TxError::Store(StoreError::database("reading a fan-out's outputs", e)))
}

/// A step and its attempt.
#[derive(diesel::QueryableByName)]
pub(crate) struct AttemptRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub(crate) workflow_step_id: i64,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub(crate) attempts: i32,
}

/// A step's task and position.
#[derive(diesel::QueryableByName)]
pub(crate) struct PlaceRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub(crate) task_id: i64,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub(crate) position: i32,
}

/// A fan-out row after an instance was counted off.
#[derive(diesel::QueryableByName)]
pub(crate) struct FanOutRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub(crate) workflow_step_id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub(crate) task_id: i64,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub(crate) position: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub(crate) items: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub(crate) concurrency: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub(crate) unfinished: i32,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub(crate) collect_errors: bool,
}

impl From<FanOutRow> for FanOutCount {
    fn from(r: FanOutRow) -> Self {
        FanOutCount {
            group: r.workflow_step_id,
            task_id: r.task_id,
            position: r.position,
            items: r.items,
            concurrency: r.concurrency,
            unfinished: r.unfinished,
            collect: r.collect_errors,
        }
    }
}

/// One instance's result, as JSON text, and whether it is in `error`.
#[derive(diesel::QueryableByName)]
pub(crate) struct OutputRow {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub(crate) results: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub(crate) failed: bool,
}
