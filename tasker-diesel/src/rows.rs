//! Row types shared by both backends, and conversions into `tasker`'s
//! types. Every query selects JSON as text and times as epoch
//! milliseconds, so one set of row types serves PostgreSQL and SQLite.

use chrono::{DateTime, TimeZone, Utc};
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};
use diesel::QueryableByName;
use serde_json::Value;
use tasker::store::{Checkpoint, ClaimedStep, StepRecord, StoreError, TaskRecord, Transition};
use tasker::{StepError, StepId, StepState, TaskAnnotation, TaskId, TaskState};

pub(crate) fn json(text: &str, what: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::database(format!("reading {what}"), e))
}

/// A stored JSON value for *reading* (API, CLI): one that cannot be decoded
/// (written behind tasker's back, or deeper than the parser reads) does not
/// fail the read of its task or of a whole list, but shows as
/// `{"tasker_unreadable": "<why>"}`.
pub(crate) fn json_for_reading(text: &str, what: &str) -> Value {
    json(text, what).unwrap_or_else(|e| {
        tracing::warn!("{e}");
        serde_json::json!({ "tasker_unreadable": e.to_string() })
    })
}

pub(crate) fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// The counts of one task's steps that decide its state (`$1`/`?1`: the
/// task id); same text on both backends.
pub(crate) const STEP_COUNTS_SQL: &str = "
SELECT CAST(t.unfinished_steps AS BIGINT) AS unfinished,
       (SELECT count(*) FROM tasker_workflow_steps s WHERE s.task_id = t.task_id AND s.state = 'cancelled') AS cancelled,
       (SELECT count(*) FROM tasker_workflow_steps s WHERE s.task_id = t.task_id AND s.state = 'error'
         AND s.results IS NULL) AS errors
FROM tasker_tasks t WHERE t.task_id = $1";

/// How many dependencies of a step (`$1`/`?1`) completed or were resolved
/// by hand; same text on both backends.
pub(crate) const SATISFIED_SQL: &str = "
SELECT count(*) AS count FROM tasker_workflow_step_edges e
JOIN tasker_workflow_steps p ON p.workflow_step_id = e.from_step_id
WHERE e.to_step_id = $1 AND p.state IN ('complete', 'resolved_manually')";

#[derive(QueryableByName)]
pub(crate) struct StepCountsRow {
    #[diesel(sql_type = BigInt)]
    unfinished: i64,
    #[diesel(sql_type = BigInt)]
    cancelled: i64,
    #[diesel(sql_type = BigInt)]
    errors: i64,
}

impl From<StepCountsRow> for crate::operator::StepCounts {
    fn from(row: StepCountsRow) -> Self {
        crate::operator::StepCounts {
            unfinished: row.unfinished,
            cancelled: row.cancelled,
            errors: row.errors,
        }
    }
}

/// A stored state name as its enum.
pub(crate) fn parse_state<T: std::str::FromStr<Err = tasker::UnknownState>>(
    text: &str,
) -> Result<T, StoreError> {
    state(text)
}

fn state<T: std::str::FromStr<Err = tasker::UnknownState>>(text: &str) -> Result<T, StoreError> {
    text.parse()
        .map_err(|e| StoreError::database("reading a state", e))
}

#[derive(QueryableByName)]
pub(crate) struct IdRow {
    #[diesel(sql_type = BigInt)]
    pub(crate) id: i64,
}

/// A step by id and name (skipping a decision's branches).
#[derive(QueryableByName)]
pub(crate) struct StepNameRow {
    #[diesel(sql_type = BigInt)]
    pub(crate) workflow_step_id: i64,
    #[diesel(sql_type = Text)]
    pub(crate) name: String,
}

/// A child of a skipped step after its decrement.
#[derive(QueryableByName)]
pub(crate) struct ChildRow {
    #[diesel(sql_type = BigInt)]
    pub(crate) workflow_step_id: i64,
    #[diesel(sql_type = Text)]
    pub(crate) name: String,
    #[diesel(sql_type = Integer)]
    pub(crate) pending_parents: i32,
    #[diesel(sql_type = Text)]
    pub(crate) state: String,
    #[diesel(sql_type = Integer)]
    pub(crate) position: i32,
}

impl ChildRow {
    /// Whether the child waits for nothing more and has not started.
    pub(crate) fn unblocked(&self) -> bool {
        self.pending_parents == 0 && self.state == "pending"
    }
}

/// A row of diesel's migrations table.
#[derive(QueryableByName)]
pub(crate) struct VersionRow {
    #[diesel(sql_type = Text)]
    pub(crate) version: String,
}

#[derive(QueryableByName)]
pub(crate) struct CountRow {
    #[diesel(sql_type = BigInt)]
    pub(crate) count: i64,
}

/// A limit's token bucket, locked for a claim.
#[derive(QueryableByName)]
pub(crate) struct BucketRow {
    #[diesel(sql_type = diesel::sql_types::Double)]
    pub(crate) tokens: f64,
    /// Seconds since it was written, by the database's clock.
    #[diesel(sql_type = diesel::sql_types::Double)]
    pub(crate) elapsed: f64,
}

impl BucketRow {
    pub(crate) fn bucket(&self) -> tasker::Bucket {
        tasker::Bucket {
            tokens: self.tokens,
            elapsed: std::time::Duration::try_from_secs_f64(self.elapsed.max(0.0))
                .unwrap_or(std::time::Duration::MAX),
        }
    }
}

#[derive(QueryableByName)]
pub(crate) struct ClaimRow {
    #[diesel(sql_type = BigInt)]
    pub(crate) workflow_step_id: i64,
    #[diesel(sql_type = BigInt)]
    pub(crate) task_id: i64,
    #[diesel(sql_type = BigInt)]
    pub(crate) named_task_id: i64,
    #[diesel(sql_type = Text)]
    pub(crate) name: String,
    #[diesel(sql_type = Integer)]
    pub(crate) position: i32,
    #[diesel(sql_type = Integer)]
    pub(crate) attempts: i32,
    #[diesel(sql_type = Integer)]
    pub(crate) max_attempts: i32,
    #[diesel(sql_type = Text)]
    pub(crate) context: String,
    /// JSON array of `[name, output]` pairs.
    #[diesel(sql_type = Text)]
    pub(crate) inputs: String,
    #[diesel(sql_type = Bool)]
    pub(crate) task_started: bool,
    /// A fan-out instance's place and item (NULL for other steps).
    #[diesel(sql_type = Nullable<Integer>)]
    pub(crate) item_index: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) item: Option<String>,
}

impl ClaimRow {
    /// The claimed step. A context or inputs that cannot be decoded do not
    /// fail the claim (which has committed, with other steps in it): the
    /// step carries the reason in `unreadable` and the engine fails it alone.
    pub(crate) fn into_claimed(self) -> ClaimedStep {
        let decoded = json(&self.context, "the task context").and_then(|context| {
            let inputs = serde_json::from_str::<Vec<(String, Value)>>(&self.inputs)
                .map_err(|e| StoreError::database("reading the step's inputs", e))?;
            let item = self
                .item
                .as_deref()
                .map(|item| json(item, "the fan-out item"))
                .transpose()?;
            Ok((context, inputs, item))
        });
        let (context, inputs, item, unreadable) = match decoded {
            Ok((context, inputs, item)) => (context, inputs, item, None),
            Err(e) => (
                Value::Null,
                Vec::new(),
                None,
                Some(format!(
                    "the stored context or inputs of this step cannot be read ({e}); \
                     the step cannot run"
                )),
            ),
        };
        ClaimedStep {
            step_id: StepId(self.workflow_step_id),
            task_id: TaskId(self.task_id),
            handler_id: self.named_task_id,
            task_started: self.task_started,
            name: self.name,
            index: self.position as u32,
            attempt: self.attempts as u32,
            max_attempts: self.max_attempts as u32,
            context,
            inputs,
            item_index: self.item_index.map(|i| i as u32),
            item,
            unreadable,
        }
    }
}

#[derive(QueryableByName)]
pub(crate) struct TaskRow {
    #[diesel(sql_type = BigInt)]
    pub(crate) task_id: i64,
    #[diesel(sql_type = Text)]
    pub(crate) namespace: String,
    #[diesel(sql_type = Text)]
    pub(crate) name: String,
    #[diesel(sql_type = Text)]
    pub(crate) version: String,
    #[diesel(sql_type = Text)]
    pub(crate) state: String,
    #[diesel(sql_type = Text)]
    pub(crate) context: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) identity_key: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) initiator: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) source_system: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) reason: Option<String>,
    #[diesel(sql_type = Text)]
    pub(crate) tags: String,
    #[diesel(sql_type = Integer)]
    pub(crate) priority: i32,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) deadline_ms: Option<i64>,
    #[diesel(sql_type = BigInt)]
    pub(crate) created_ms: i64,
    #[diesel(sql_type = BigInt)]
    pub(crate) updated_ms: i64,
}

impl TaskRow {
    pub(crate) fn into_record(self, steps: Vec<StepRecord>) -> Result<TaskRecord, StoreError> {
        Ok(TaskRecord {
            task_id: TaskId(self.task_id),
            namespace: self.namespace,
            name: self.name,
            version: self.version,
            state: state::<TaskState>(&self.state)?,
            context: json_for_reading(&self.context, "a task context"),
            identity_key: self.identity_key,
            initiator: self.initiator,
            source_system: self.source_system,
            reason: self.reason,
            tags: serde_json::from_str(&self.tags)
                .map_err(|e| StoreError::database("reading task tags", e))?,
            priority: priority(self.priority),
            deadline: self.deadline_ms.map(time),
            created_at: time(self.created_ms),
            updated_at: time(self.updated_ms),
            steps,
            annotations: Vec::new(),
        })
    }
}

#[derive(QueryableByName)]
pub(crate) struct StepRow {
    #[diesel(sql_type = BigInt)]
    pub(crate) workflow_step_id: i64,
    #[diesel(sql_type = Text)]
    pub(crate) name: String,
    #[diesel(sql_type = Text)]
    pub(crate) state: String,
    #[diesel(sql_type = Integer)]
    pub(crate) attempts: i32,
    #[diesel(sql_type = Integer)]
    pub(crate) max_attempts: i32,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) results: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) last_error: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub(crate) run_at_ms: i64,
    #[diesel(sql_type = Integer)]
    pub(crate) priority: i32,
    /// JSON array of parent names.
    #[diesel(sql_type = Text)]
    pub(crate) depends_on: String,
    /// Its checkpoint (`tasker_step_checkpoints`, left-joined), if any.
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) checkpoint: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub(crate) checkpoint_attempt: Option<i32>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) checkpoint_ms: Option<i64>,
    /// A fan-out instance's place and item.
    #[diesel(sql_type = Nullable<Integer>)]
    pub(crate) item_index: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) item: Option<String>,
}

/// A task's fan-out items counted by step and state (`$1`/`?1`: the task
/// id); same text on both backends.
pub(crate) const ITEM_COUNTS_SQL: &str =
    "SELECT name, state, count(*) AS n FROM tasker_workflow_steps
     WHERE task_id = $1 AND item_index IS NOT NULL GROUP BY name, state";

/// A step's `results` (of `s`) in a task read; `windowed`: a fan-out
/// group's (the list of its items' outputs) left out. Same text on both
/// backends.
pub(crate) fn results_column(windowed: bool) -> &'static str {
    if windowed {
        "CASE WHEN s.item_index IS NULL AND EXISTS (
           SELECT 1 FROM tasker_step_fan_outs f WHERE f.workflow_step_id = s.workflow_step_id)
         THEN NULL ELSE s.results END"
    } else {
        "s.results"
    }
}

/// The namespace and name of task `$1`'s handler; same text on both
/// backends.
pub(crate) const HANDLER_OF_TASK_SQL: &str = "SELECT ns.name AS namespace, nt.name
     FROM tasker_tasks t
     JOIN tasker_named_tasks nt ON nt.named_task_id = t.named_task_id
     JOIN tasker_task_namespaces ns ON ns.task_namespace_id = nt.task_namespace_id
     WHERE t.task_id = $1";

/// One line of [`HANDLER_OF_TASK_SQL`].
#[derive(QueryableByName)]
pub(crate) struct HandlerNameRow {
    #[diesel(sql_type = Text)]
    pub(crate) namespace: String,
    #[diesel(sql_type = Text)]
    pub(crate) name: String,
}

impl HandlerNameRow {
    /// The pair, or `NotFound` for no row.
    pub(crate) fn one(
        rows: Vec<HandlerNameRow>,
        task_id: TaskId,
    ) -> Result<(String, String), StoreError> {
        rows.into_iter()
            .next()
            .map(|r| (r.namespace, r.name))
            .ok_or(StoreError::NotFound {
                what: "task",
                id: task_id.0,
            })
    }
}

/// One line of [`ITEM_COUNTS_SQL`].
#[derive(QueryableByName)]
pub(crate) struct ItemStateRow {
    #[diesel(sql_type = Text)]
    pub(crate) name: String,
    #[diesel(sql_type = Text)]
    pub(crate) state: String,
    #[diesel(sql_type = BigInt)]
    pub(crate) n: i64,
}

/// The step records of `rows`, each fan-out group's with its items'
/// `counts`.
pub(crate) fn step_records(
    rows: Vec<StepRow>,
    counts: &[ItemStateRow],
) -> Result<Vec<StepRecord>, StoreError> {
    let mut by_step: Vec<(&str, tasker::store::ItemCounts)> = Vec::new();
    for count in counts {
        let state = state::<StepState>(&count.state)?;
        let n = u32::try_from(count.n).unwrap_or(u32::MAX);
        match by_step.iter_mut().find(|(name, _)| *name == count.name) {
            Some((_, items)) => items.add(state, n),
            None => {
                let mut items = tasker::store::ItemCounts::default();
                items.add(state, n);
                by_step.push((&count.name, items));
            }
        }
    }
    rows.into_iter()
        .map(|row| {
            let mut record = row.into_record()?;
            if record.item_index.is_none() {
                record.items = by_step
                    .iter()
                    .find(|(name, _)| *name == record.name)
                    .map(|(_, items)| *items);
            }
            Ok(record)
        })
        .collect()
}

impl StepRow {
    pub(crate) fn into_record(self) -> Result<StepRecord, StoreError> {
        let state = state::<StepState>(&self.state)?;
        Ok(StepRecord {
            step_id: StepId(self.workflow_step_id),
            name: self.name,
            state,
            attempts: self.attempts as u32,
            max_attempts: self.max_attempts as u32,
            output: self
                .results
                .as_deref()
                .map(|r| json_for_reading(r, "a step output")),
            last_error: self
                .last_error
                .as_deref()
                .map(|e| {
                    serde_json::from_str::<StepError>(e)
                        .map_err(|e| StoreError::database("reading a step error", e))
                })
                .transpose()?,
            run_at: (state == StepState::Ready).then(|| time(self.run_at_ms)),
            priority: priority(self.priority),
            depends_on: serde_json::from_str(&self.depends_on)
                .map_err(|e| StoreError::database("reading step dependencies", e))?,
            checkpoint: self.checkpoint.map(|value| Checkpoint {
                value: json_for_reading(&value, "a step checkpoint"),
                attempt: self.checkpoint_attempt.unwrap_or(0).max(0) as u32,
                saved_at: time(self.checkpoint_ms.unwrap_or(0)),
            }),
            item_index: self.item_index.map(|i| i.max(0) as u32),
            item: self
                .item
                .as_deref()
                .map(|item| json_for_reading(item, "a fan-out item")),
            items: None,
        })
    }
}

#[derive(QueryableByName)]
pub(crate) struct TransitionRow {
    #[diesel(sql_type = BigInt)]
    pub(crate) task_id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) workflow_step_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) from_state: Option<String>,
    #[diesel(sql_type = Text)]
    pub(crate) to_state: String,
    #[diesel(sql_type = Nullable<Integer>)]
    pub(crate) attempt: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) actor: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) error: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub(crate) at_ms: i64,
    #[diesel(sql_type = BigInt)]
    pub(crate) seq: i64,
}

impl From<TransitionRow> for Transition {
    fn from(row: TransitionRow) -> Self {
        Transition {
            task_id: TaskId(row.task_id),
            step_id: row.workflow_step_id.map(StepId),
            from_state: row.from_state,
            to_state: row.to_state,
            attempt: row.attempt.map(|a| a as u32),
            actor: row.actor,
            error: row.error,
            at: time(row.at_ms),
            seq: row.seq,
        }
    }
}

#[derive(QueryableByName)]
pub(crate) struct UnfinishedRow {
    #[diesel(sql_type = Text)]
    pub(crate) namespace: String,
    #[diesel(sql_type = Text)]
    pub(crate) name: String,
    #[diesel(sql_type = Text)]
    pub(crate) version: String,
    #[diesel(sql_type = Text)]
    pub(crate) fingerprint: String,
    #[diesel(sql_type = BigInt)]
    pub(crate) tasks: i64,
}

impl From<UnfinishedRow> for tasker::store::UnfinishedHandler {
    fn from(r: UnfinishedRow) -> Self {
        tasker::store::UnfinishedHandler {
            namespace: r.namespace,
            name: r.name,
            version: r.version,
            fingerprint: r.fingerprint,
            tasks: r.tasks,
        }
    }
}

#[derive(QueryableByName)]
pub(crate) struct StateCountRow {
    #[diesel(sql_type = Text)]
    pub(crate) state: String,
    #[diesel(sql_type = BigInt)]
    pub(crate) count: i64,
}

impl StateCountRow {
    pub(crate) fn into_pair(self) -> Result<(TaskState, i64), StoreError> {
        Ok((state::<TaskState>(&self.state)?, self.count))
    }
}

/// A stored priority level.
fn priority(level: i32) -> tasker::Priority {
    tasker::Priority::from_level(level.clamp(i16::MIN.into(), i16::MAX.into()) as i16)
}

/// The error of a step whose lease expired.
pub(crate) fn lease_expired() -> StepError {
    StepError::retryable(
        "the lease expired: the worker running this attempt stopped or lost its connection",
    )
    .with_class("LeaseExpired")
}

/// [`lease_expired`], as stored.
pub(crate) fn lease_expired_error() -> String {
    serde_json::to_string(&lease_expired()).expect("a StepError serializes")
}

/// An annotation with the name of the step that recorded it.
#[derive(QueryableByName)]
pub(crate) struct AnnotationRow {
    #[diesel(sql_type = Text)]
    pub(crate) annotation_type: String,
    #[diesel(sql_type = Text)]
    pub(crate) annotation: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) step: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub(crate) at_ms: i64,
}

impl From<AnnotationRow> for TaskAnnotation {
    fn from(row: AnnotationRow) -> Self {
        TaskAnnotation {
            annotation: json_for_reading(&row.annotation, "an annotation"),
            annotation_type: row.annotation_type,
            step: row.step,
            created_at: time(row.at_ms),
        }
    }
}

/// The annotations of a task, oldest first: `{}` is the backend's
/// expression for `a.created_at` in epoch milliseconds, `{task}` its first
/// parameter.
pub(crate) const ANNOTATIONS_SQL: &str =
    "SELECT a.annotation_type, a.annotation{text} AS annotation,
        s.name AS step, {ms} AS at_ms
 FROM tasker_task_annotations a
 LEFT JOIN tasker_workflow_steps s ON s.workflow_step_id = a.workflow_step_id
 WHERE a.task_id = {task} ORDER BY a.task_annotation_id";

/// The task-list condition on an annotation type (`{p}`: its parameter);
/// the `(annotation_type, task_id)` index answers it.
pub(crate) const HAS_ANNOTATION_SQL: &str =
    "({p} IS NULL OR EXISTS (SELECT 1 FROM tasker_task_annotations a
   WHERE a.annotation_type = {p} AND a.task_id = t.task_id))";
