//! The pages: overview, tasks, a task, handlers, a handler, dead letters.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Extension;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use maud::{html, Markup};

use super::super::operations::{
    CANCEL_STEP, CANCEL_TASK, LIST_HANDLERS, LIST_TASKS, RESOLVE_STEP, RESOLVE_TASK, RETRY_STEP,
    RETRY_TASK, SHOW_HANDLER, SHOW_TASK, STATUS,
};
use super::super::{may_on, Api, ApiError};
use super::graph::{self, StepMark};
use super::session::{Form, Session};
use super::view::{self, badge, count, json, step_badge, task_badge, time};
use super::{PageError, PageResult};
use crate::analysis::{analyze_with_history, History};
use crate::state::{StepState, TaskState};
use crate::store::{DeadLetterFilter, ItemWindow, Store, TaskFilter, TaskRecord};
use crate::TaskId;

type Shared<S> = State<Arc<Api<S>>>;

/// Tasks a page of the task list shows by default, and at most.
const PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;
/// Transitions the audit trail of a task page lists at most (the newest).
const AUDIT_ROWS: usize = 500;
/// Dead letters read for the dead-letter page at most.
const DEAD_LETTERS: u32 = 500;
/// Complete tasks whose audit trails give a handler's typical durations.
const HISTORY_TASKS: u32 = 10;

pub(super) fn forbidden(session: &Session, what: &str) -> PageError {
    PageError(ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("`{}` may not {what}", session.who.subject),
    ))
}

fn bad_request(message: impl Into<String>) -> PageError {
    PageError(ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        message,
    ))
}

/// Refuses unless the caller may use `operation` at all.
fn require<S: Store>(
    api: &Api<S>,
    session: &Session,
    operation: &super::super::Operation,
    what: &str,
) -> Result<(), PageError> {
    if view::may(api, session, operation) {
        Ok(())
    } else {
        Err(forbidden(session, what))
    }
}

pub(super) fn parse_id(raw: &str, what: &str) -> Result<i64, PageError> {
    raw.parse::<i64>()
        .map_err(|_| bad_request(format!("{what} must be a number, not {raw:?}")))
}

/// `GET /`: tasks by state, the last hour's activity, the ready queue and
/// the workers seen.
pub(super) async fn overview<S: Store>(
    State(api): Shared<S>,
    Extension(session): Extension<Session>,
) -> PageResult {
    require(&api, &session, &STATUS, "see the overview")?;
    let now = Utc::now();
    let overview = api.sessions.overview(api.tasker.store(), now).await?;
    let by_state: BTreeMap<&str, (i64, bool)> = overview
        .counts
        .iter()
        .map(|c| (c.state.as_str(), (c.count, c.exact)))
        .collect();
    let estimated = overview.counts.iter().any(|c| !c.exact);
    let activity = &overview.activity;
    let completed = activity.completed();
    let base = &session.base;
    let may_list = view::may(&api, &session, &LIST_TASKS);
    let content = html! {
        h1 { "Overview" }
        section aria-labelledby="states" {
            h2 #states { "Tasks by state" }
            ul.tiles {
                @for state in TaskState::ALL {
                    li.tile {
                        @let (n, exact) = by_state.get(state.as_str()).copied().unwrap_or((0, true));
                        @let shown = html! {
                            span.big { @if !exact { abbr title="estimated from the database's statistics" { "≈" } } (count(n)) }
                            (task_badge(*state))
                        };
                        @if may_list {
                            a href={ (base) "/tasks?state=" (state.as_str()) } { (shown) }
                        } @else {
                            (shown)
                        }
                    }
                }
                li.tile { span.big #ready-depth { (count(overview.ready)) } span.label { "steps ready to run" } }
            }
        }
        section aria-labelledby="activity" {
            h2 #activity { "The last hour" }
            p {
                (count(completed)) " steps completed ("
                (format!("{:.2}", completed as f64 / 3600.0)) " steps/s), "
                (count(activity.failed())) " failed attempts."
            }
            (graph::activity_chart(&activity.minutes, now))
            p.legend { span.key.done {} " completed " span.key.failed {} " failed" }
        }
        section aria-labelledby="workers" {
            h2 #workers { "Workers seen in the last hour" }
            @if activity.workers.is_empty() {
                p { "No worker claimed a step in the last hour." }
            } @else {
                table {
                    thead { tr { th scope="col" { "Worker" } th scope="col" { "Last claim" } th scope="col" { "Steps claimed" } } }
                    tbody {
                        @for w in &activity.workers {
                            tr { td { code { (w.worker_id) } } td { (time(w.last_claim)) } td.num { (count(w.claims)) } }
                        }
                    }
                }
            }
        }
        p.hint {
            "Figures are at most " (super::session::OVERVIEW_SECONDS) " s old."
            @if estimated { " ≈: finished tasks are estimated from the database's statistics on a table this large; unfinished ones are counted." }
        }
    };
    Ok(view::page(&api, &session, "overview", "Overview", content))
}

/// The task list's filters, from its query string.
#[derive(Default)]
struct ListFilter {
    namespace: Option<String>,
    name: Option<String>,
    version: Option<String>,
    state: Option<TaskState>,
    annotation_type: Option<String>,
    created_after: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
    after: Option<TaskId>,
    limit: u32,
    /// The raw values, to fill the form back in.
    raw: Vec<(String, String)>,
}

/// A time from a filter field: `2026-12-07`, `2026-12-07T14:30` (as
/// `datetime-local` sends it) or RFC 3339; UTC unless it says otherwise.
fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(raw, format) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

impl ListFilter {
    fn parse(query: Option<&str>) -> Result<ListFilter, String> {
        let form = Form::parse_str(query.unwrap_or(""));
        let text = |key: &str| -> Result<Option<String>, String> {
            match form.get(key).map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) if v.len() > 200 || v.contains('\0') => Err(format!(
                    "`{key}` must be at most 200 characters, without NUL"
                )),
                Some(v) => Ok(Some(v.to_owned())),
            }
        };
        let mut filter = ListFilter {
            namespace: text("namespace")?,
            name: text("name")?,
            version: text("version")?,
            annotation_type: text("annotation_type")?,
            limit: PAGE,
            ..ListFilter::default()
        };
        if let Some(kind) = &filter.annotation_type {
            crate::annotation::check_annotation_type(kind)
                .map_err(|e| format!("`annotation_type`: {e}"))?;
        }
        if let Some(state) = text("state")? {
            filter.state = Some(state.parse::<TaskState>().map_err(|e| e.to_string())?);
        }
        for (key, slot) in [
            ("created_after", &mut filter.created_after),
            ("created_before", &mut filter.created_before),
        ] {
            if let Some(raw) = text(key)? {
                *slot = Some(parse_time(&raw).ok_or_else(|| {
                    format!("`{key}` must be a date (2026-12-07), a date and time (2026-12-07T14:30) or RFC 3339, not {raw:?}")
                })?);
            }
        }
        if let Some(after) = text("after")? {
            filter.after =
                Some(TaskId(after.parse().map_err(|_| {
                    format!("`after` must be a task id, not {after:?}")
                })?));
        }
        if let Some(limit) = text("limit")? {
            filter.limit = limit
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| format!("`limit` must be a number from 1 to {MAX_PAGE}"))?;
        }
        filter.raw = form
            .0
            .into_iter()
            .filter(|(k, v)| k != "after" && !v.is_empty())
            .collect();
        Ok(filter)
    }

    fn value(&self, key: &str) -> &str {
        self.raw
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The query string of the filters, from after the task `last`.
    fn page_query(&self, last: Option<TaskId>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.raw {
            query.append_pair(k, v);
        }
        if let Some(last) = last {
            query.append_pair("after", &last.0.to_string());
        }
        query.finish()
    }

    fn store_filter(&self) -> TaskFilter {
        TaskFilter {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            version: self.version.clone(),
            state: self.state,
            annotation_type: self.annotation_type.clone(),
            created_after: self.created_after,
            created_before: self.created_before,
            after_task: self.after,
            limit: self.limit,
            offset: 0,
        }
    }
}

/// `GET /tasks`: filtered, newest first, paged by keyset (the same cost
/// on every page).
pub(super) async fn tasks<S: Store>(
    State(api): Shared<S>,
    Extension(session): Extension<Session>,
    RawQuery(query): RawQuery,
) -> PageResult {
    require(&api, &session, &LIST_TASKS, "list tasks")?;
    let filter = ListFilter::parse(query.as_deref()).map_err(bad_request)?;
    let listed = api.tasker.tasks(&filter.store_filter()).await?;
    let last = listed.last().map(|t| t.task_id);
    let full_page = listed.len() as u32 == filter.limit;
    let tasks: Vec<&TaskRecord> = listed
        .iter()
        .filter(|t| {
            may_on(
                &api,
                &session.who,
                &LIST_TASKS,
                (&t.namespace, &t.name),
                Some(t.task_id),
            )
        })
        .collect();
    let base = &session.base;
    let field = |key: &'static str, label: &'static str, kind: &'static str| {
        html! {
            label {
                span { (label) }
                input type=(kind) name=(key) value=(filter.value(key));
            }
        }
    };
    let content = html! {
        h1 { "Tasks" }
        form.filters method="get" action={ (base) "/tasks" } aria-label="Filter tasks" {
            (field("namespace", "Namespace", "text"))
            (field("name", "Handler", "text"))
            (field("version", "Version", "text"))
            label {
                span { "State" }
                select name="state" {
                    option value="" { "any" }
                    @for state in TaskState::ALL {
                        option value=(state.as_str()) selected[filter.state == Some(*state)] { (state.as_str()) }
                    }
                }
            }
            (field("annotation_type", "Annotation", "text"))
            (field("created_after", "Created after (UTC)", "datetime-local"))
            (field("created_before", "Created before (UTC)", "datetime-local"))
            button type="submit" { "Filter" }
            a href={ (base) "/tasks" } { "Clear" }
        }
        @if tasks.is_empty() {
            p #no-tasks { "No tasks match." }
        } @else {
            (task_table(base, &tasks))
        }
        nav.pager aria-label="Pages" {
            @if filter.after.is_some() {
                a href={ (base) "/tasks?" (filter.page_query(None)) } { "← First page" }
            }
            @if let (true, Some(last)) = (full_page, last) {
                a rel="next" href={ (base) "/tasks?" (filter.page_query(Some(last))) } { "Next page →" }
            }
        }
    };
    Ok(view::page(&api, &session, "tasks", "Tasks", content))
}

fn task_table(base: &str, tasks: &[&TaskRecord]) -> Markup {
    html! {
        div.scroll {
            table.tasks {
                thead {
                    tr {
                        th scope="col" { "Task" } th scope="col" { "Handler" } th scope="col" { "State" }
                        th scope="col" { "Created" } th scope="col" { "Updated" } th scope="col" { "Reason" }
                    }
                }
                tbody {
                    @for t in tasks {
                        tr {
                            td { a href={ (base) "/tasks/" (t.task_id.0) } { "#" (t.task_id.0) } }
                            td { (t.namespace) "/" (t.name) " " span.muted { "v" (t.version) } }
                            td { (task_badge(t.state)) }
                            td { (time(t.created_at)) }
                            td { (time(t.updated_at)) }
                            td { (t.reason.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

/// The marks of the step graph from a task's step records (groups carry
/// their items' counts).
pub(super) fn marks(task: &TaskRecord) -> HashMap<&str, StepMark<'_>> {
    task.steps
        .iter()
        .filter(|s| s.item_index.is_none())
        .map(|s| {
            (
                s.name.as_str(),
                StepMark {
                    state: s.state.as_str(),
                    items: s.items,
                },
            )
        })
        .collect()
}

/// The live part of a task page: its state and graph, also what the live
/// stream sends.
pub(super) fn live_parts<S: Store>(api: &Api<S>, task: &TaskRecord) -> (Markup, Markup) {
    let graph = match api
        .tasker
        .registry()
        .find(&task.namespace, &task.name, Some(&task.version))
    {
        Ok(handler) => graph::step_graph(handler.graph(), &marks(task)),
        Err(_) => html! {
            p.note { "This binary does not link the handler " (task.namespace) "/" (task.name) " v" (task.version) ", so its graph cannot be drawn." }
        },
    };
    (task_badge(task.state), graph)
}

/// Which task actions apply to a task in `state`.
fn task_actions(state: TaskState) -> &'static [(&'static str, &'static str)] {
    match state {
        TaskState::Error => &[
            ("retry", "Retry"),
            ("resolve", "Resolve"),
            ("cancel", "Cancel"),
        ],
        TaskState::Pending | TaskState::InProgress => &[("cancel", "Cancel")],
        _ => &[],
    }
}

pub(super) fn action_operation(action: &str) -> Option<&'static super::super::Operation> {
    match action {
        "retry" => Some(&RETRY_TASK),
        "resolve" => Some(&RESOLVE_TASK),
        "cancel" => Some(&CANCEL_TASK),
        _ => None,
    }
}

pub(super) fn step_operation(action: &str) -> Option<&'static super::super::Operation> {
    match action {
        "retry" => Some(&RETRY_STEP),
        "resolve" => Some(&RESOLVE_STEP),
        "cancel" => Some(&CANCEL_STEP),
        _ => None,
    }
}

/// `GET /tasks/{id}`.
pub(super) async fn task<S: Store>(
    State(api): Shared<S>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> PageResult {
    let id = TaskId(parse_id(&id, "the task id")?);
    let (namespace, name) = api.tasker.store().handler_of_task(id).await?;
    if !may_on(
        &api,
        &session.who,
        &SHOW_TASK,
        (&namespace, &name),
        Some(id),
    ) {
        return Err(forbidden(&session, "see this task"));
    }
    let task = api.tasker.task_view(id, ItemWindow::NONE).await?;
    let transitions = api.tasker.transitions(id).await?;
    let done = Form::parse_str(query.as_deref().unwrap_or(""))
        .get("done")
        .map(str::to_owned);
    let base = &session.base;
    let may = |op| {
        may_on(
            &api,
            &session.who,
            op,
            (&task.namespace, &task.name),
            Some(id),
        )
    };
    let actions: Vec<_> = task_actions(task.state)
        .iter()
        .filter(|(action, _)| action_operation(action).is_some_and(may))
        .collect();
    let steps: Vec<_> = task
        .steps
        .iter()
        .filter(|s| s.item_index.is_none())
        .collect();
    let (state, graph) = live_parts(&api, &task);
    let now = Utc::now();
    let content = html! {
        @if let Some(done) = done {
            p.note role="status" { "Done: " (done.replace('_', " ")) "." }
        }
        h1 { "Task #" (task.task_id.0) " " span.muted { (task.namespace) "/" (task.name) " v" (task.version) } }
        p.summary { span #task-state aria-live="polite" { (state) } " created " (time(task.created_at)) ", updated " (time(task.updated_at)) }
        @if !actions.is_empty() {
            div.actions {
                @for (action, label) in &actions {
                    a.button href={ (base) "/tasks/" (id.0) "/" (action) } { (label) "…" }
                }
            }
        }
        section aria-labelledby="graph-title" {
            h2 #graph-title { "Graph" }
            div #graph.graph-box data-live={ (base) "/tasks/" (id.0) "/live" } { (graph) }
            p.legend {
                @for s in ["pending", "ready", "in_progress", "complete", "error", "skipped", "cancelled", "resolved_manually"] {
                    (badge(s)) " "
                }
            }
        }
        section aria-labelledby="steps-title" {
            h2 #steps-title { "Steps" }
            div.scroll {
                table.steps {
                    thead { tr { th scope="col" { "Step" } th scope="col" { "State" } th scope="col" { "Attempts" } th scope="col" { "Last error" } th scope="col" { "Result" } th scope="col" { "Actions" } } }
                    tbody {
                        @for s in &steps {
                            tr {
                                td { code { (s.name) } }
                                td { (step_badge(s.state)) @if let Some(items) = s.items { " " span.muted { (items.done) "/" (items.total) " items, " (items.failed) " failed" } } }
                                td.num { (s.attempts) "/" (s.max_attempts) }
                                td { @if let Some(e) = &s.last_error { span.error { (e.class()) ": " (e.message()) } } }
                                td { @if let Some(out) = &s.output { details { summary { "show" } (json(out)) } } }
                                td {
                                    @for (action, label) in step_actions(s.state) {
                                        @if step_operation(action).is_some_and(&may) {
                                            a.button.small href={ (base) "/steps/" (s.step_id.0) "/" (action) } { (label) "…" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="timeline-title" {
            h2 #timeline-title { "Timeline" }
            div.scroll { (graph::timeline(&steps, &transitions, task.created_at, now)) }
            p.legend { span.key.wait {} " waiting " span.key.done {} " attempt completed " span.key.failed {} " attempt failed " span.key.running {} " running" }
        }
        section aria-labelledby="context-title" {
            h2 #context-title { "Context" }
            (json(&task.context))
            dl.meta {
                @if let Some(v) = &task.identity_key { dt { "Identity key" } dd { code { (v) } } }
                @if let Some(v) = &task.initiator { dt { "Initiator" } dd { (v) } }
                @if let Some(v) = &task.source_system { dt { "Source system" } dd { (v) } }
                @if let Some(v) = &task.reason { dt { "Reason" } dd { (v) } }
                @if !task.tags.is_empty() { dt { "Tags" } dd { (task.tags.join(", ")) } }
                @if let Some(v) = task.deadline { dt { "Deadline" } dd { (time(v)) } }
            }
        }
        section aria-labelledby="annotations-title" {
            h2 #annotations-title { "Annotations" }
            @if task.annotations.is_empty() { p { "None." } } @else {
                table {
                    thead { tr { th scope="col" { "Type" } th scope="col" { "Step" } th scope="col" { "Value" } th scope="col" { "At" } } }
                    tbody {
                        @for a in &task.annotations {
                            tr { td { code { (a.annotation_type) } } td { (a.step.as_deref().unwrap_or("")) } td { (json(&a.annotation)) } td { (time(a.created_at)) } }
                        }
                    }
                }
            }
        }
        section aria-labelledby="audit-title" {
            h2 #audit-title { "Audit trail" }
            @if transitions.len() > AUDIT_ROWS { p.hint { "The newest " (AUDIT_ROWS) " of " (transitions.len()) " transitions." } }
            div.scroll {
                table.audit {
                    thead { tr { th scope="col" { "At" } th scope="col" { "Step" } th scope="col" { "From" } th scope="col" { "To" } th scope="col" { "Attempt" } th scope="col" { "Actor" } th scope="col" { "Error" } } }
                    tbody {
                        @for t in transitions.iter().skip(transitions.len().saturating_sub(AUDIT_ROWS)) {
                            tr {
                                td { (time(t.at)) }
                                td { @if let Some(step) = t.step_id { (task.steps.iter().find(|s| s.step_id == step).map_or("(item)", |s| s.name.as_str())) } @else { "(task)" } }
                                td { (t.from_state.as_deref().unwrap_or("")) }
                                td { (t.to_state) }
                                td.num { @if let Some(a) = t.attempt { (a) } }
                                td { (t.actor.as_deref().unwrap_or("")) }
                                td { (t.error.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(view::page(
        &api,
        &session,
        "tasks",
        &format!("Task #{}", id.0),
        content,
    ))
}

fn step_actions(state: StepState) -> &'static [(&'static str, &'static str)] {
    match state {
        StepState::Error => &[("retry", "Retry"), ("resolve", "Resolve")],
        StepState::Pending | StepState::Ready => &[("cancel", "Cancel")],
        _ => &[],
    }
}

/// `GET /handlers`.
pub(super) async fn handlers<S: Store>(
    State(api): Shared<S>,
    Extension(session): Extension<Session>,
) -> PageResult {
    require(&api, &session, &LIST_HANDLERS, "list handlers")?;
    let base = &session.base;
    let registry = api.tasker.registry();
    let visible: Vec<_> = registry
        .handlers()
        .filter(|h| {
            may_on(
                &api,
                &session.who,
                &LIST_HANDLERS,
                (h.namespace(), h.name()),
                None,
            )
        })
        .collect();
    let content = html! {
        h1 { "Handlers" }
        @if visible.is_empty() { p { "No handlers you may see." } } @else {
            table {
                thead { tr { th scope="col" { "Namespace" } th scope="col" { "Handler" } th scope="col" { "Version" } th scope="col" { "Steps" } th scope="col" { "Description" } } }
                tbody {
                    @for h in &visible {
                        tr {
                            td { (h.namespace()) }
                            td { a href={ (base) "/handlers/" (h.namespace()) "/" (h.name()) "/" (h.version()) } { (h.name()) } }
                            td { (h.version()) }
                            td.num { (h.steps().len()) }
                            td { (h.description()) }
                        }
                    }
                }
            }
        }
    };
    Ok(view::page(&api, &session, "handlers", "Handlers", content))
}

/// `GET /handlers/{namespace}/{name}/{version}`: the graph, the steps
/// with their typical durations, and the bottlenecks of the newest task.
pub(super) async fn handler<S: Store>(
    State(api): Shared<S>,
    Extension(session): Extension<Session>,
    Path((namespace, name, version)): Path<(String, String, String)>,
) -> PageResult {
    let handler = api
        .tasker
        .registry()
        .find(&namespace, &name, Some(&version))
        .map_err(|e| {
            PageError(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                e.to_string(),
            ))
        })?;
    if !may_on(
        &api,
        &session.who,
        &SHOW_HANDLER,
        (handler.namespace(), handler.name()),
        None,
    ) {
        return Err(forbidden(&session, "see this handler"));
    }
    let newest = api
        .tasker
        .tasks(&TaskFilter {
            namespace: Some(namespace.clone()),
            name: Some(name.clone()),
            version: Some(version.clone()),
            limit: 1,
            ..TaskFilter::default()
        })
        .await?;
    let analysed = match newest.first() {
        Some(t)
            if may_on(
                &api,
                &session.who,
                &SHOW_TASK,
                (&t.namespace, &t.name),
                Some(t.task_id),
            ) =>
        {
            let task = api.tasker.task_view(t.task_id, ItemWindow::NONE).await?;
            let history = History::load(api.tasker.store(), &task, HISTORY_TASKS).await?;
            let analysis =
                analyze_with_history(handler.graph(), &task, &api.config.analysis, &history);
            Some((task, analysis))
        }
        _ => None,
    };
    let base = &session.base;
    let critical = handler.graph().critical_path();
    let content = html! {
        h1 { (handler.namespace()) "/" (handler.name()) " " span.muted { "v" (handler.version()) } }
        p { (handler.description()) }
        section aria-labelledby="graph-title" {
            h2 #graph-title { "Graph" }
            div.graph-box { (graph::step_graph(handler.graph(), &HashMap::new())) }
            p { "Critical path: " (critical.join(" → ")) }
        }
        section aria-labelledby="steps-title" {
            h2 #steps-title { "Steps" }
            div.scroll {
                table {
                    thead { tr { th scope="col" { "Step" } th scope="col" { "Depends on" } th scope="col" { "Retries" } th scope="col" { "Timeout" } th scope="col" { "Typical duration" } th scope="col" { "Description" } } }
                    tbody {
                        @for s in handler.steps() {
                            tr {
                                td { code { (s.name()) } }
                                td { (s.depends_on().join(", ")) }
                                td.num { @if let Some(n) = s.retry_limit() { (n) } @else { "default" } }
                                td { @if let Some(t) = s.timeout() { (graph::human(chrono::Duration::from_std(t).unwrap_or_default())) } }
                                td { @if let Some((_, a)) = &analysed { @if let Some(secs) = a.estimate.typical_step_seconds.get(s.name()) { (format!("{secs:.2} s")) } } }
                                td { (s.description()) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="bottlenecks-title" {
            h2 #bottlenecks-title { "Bottlenecks" }
            @match &analysed {
                None => p { "No task of this version yet." },
                Some((task, analysis)) => {
                    p { "Of the newest task, " a href={ (base) "/tasks/" (task.task_id.0) } { "#" (task.task_id.0) } " (" (task_badge(task.state)) "), with durations from "
                        (analysis.estimate.history_tasks) " complete tasks: "
                        (format!("{:.0}", analysis.completion * 100.0)) "% complete, about "
                        (format!("{:.1}", analysis.estimate.remaining_seconds)) " s to go." }
                    @if analysis.bottlenecks.is_empty() { p { "No bottlenecks." } } @else {
                        table {
                            thead { tr { th scope="col" { "Step" } th scope="col" { "Problem" } th scope="col" { "Severity" } th scope="col" { "Score" } th scope="col" { "Blocked" } th scope="col" { "Error" } } }
                            tbody {
                                @for b in &analysis.bottlenecks {
                                    tr {
                                        td { code { (b.step) } }
                                        td { (format!("{:?}", b.problem).to_lowercase()) }
                                        td { (format!("{:?}", b.severity).to_lowercase()) }
                                        td.num { (format!("{:.1}", b.score)) }
                                        td.num { (b.blocked) }
                                        td { (b.error.as_deref().unwrap_or("")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(view::page(
        &api,
        &session,
        "handlers",
        &handler.key(),
        content,
    ))
}

/// `GET /dead-letters`: failed steps of failed tasks, grouped by error
/// class, with bulk retry and resolve.
pub(super) async fn dead_letters<S: Store>(
    State(api): Shared<S>,
    Extension(session): Extension<Session>,
) -> PageResult {
    require(&api, &session, &LIST_TASKS, "list dead letters")?;
    let letters = api
        .tasker
        .store()
        .dead_letters(&DeadLetterFilter {
            limit: DEAD_LETTERS,
            ..DeadLetterFilter::default()
        })
        .await?;
    let mut groups: BTreeMap<String, Vec<&crate::store::DeadLetter>> = BTreeMap::new();
    for letter in letters.iter().filter(|l| {
        may_on(
            &api,
            &session.who,
            &LIST_TASKS,
            (&l.namespace, &l.name),
            Some(l.task_id),
        )
    }) {
        let class = letter
            .error
            .as_ref()
            .map_or("(no error)".to_owned(), |e| e.class().to_owned());
        groups.entry(class).or_default().push(letter);
    }
    let base = &session.base;
    let may_retry = view::may(&api, &session, &RETRY_TASK);
    let may_resolve = view::may(&api, &session, &RESOLVE_TASK);
    let content = html! {
        h1 { "Dead letters" }
        p { "Failed steps of tasks in error, newest first, grouped by error class." }
        @if groups.is_empty() {
            p #no-dead-letters { "No task is in error." }
        }
        @for (class, letters) in &groups {
            section.group aria-label={ "Error class " (class) } {
                h2 { code { (class) } " " span.muted { (letters.len()) " failed steps" } }
                form method="post" action={ (base) "/dead-letters" } {
                    (view::form_token(&session))
                    div.scroll {
                        table {
                            thead { tr {
                                @if may_retry || may_resolve { th scope="col" { "Select" } }
                                th scope="col" { "Task" } th scope="col" { "Handler" } th scope="col" { "Step" } th scope="col" { "Attempts" } th scope="col" { "Failed" } th scope="col" { "Error" }
                            } }
                            tbody {
                                @for l in letters {
                                    tr {
                                        @if may_retry || may_resolve {
                                            td { input type="checkbox" name="task" value=(l.task_id.0) aria-label={ "Select task " (l.task_id.0) }; }
                                        }
                                        td { a href={ (base) "/tasks/" (l.task_id.0) } { "#" (l.task_id.0) } }
                                        td { (l.namespace) "/" (l.name) }
                                        td { code { (l.step) } }
                                        td.num { (l.attempts) }
                                        td { (time(l.failed_at)) }
                                        td { @if let Some(e) = &l.error { (e.message()) } }
                                    }
                                }
                            }
                        }
                    }
                    @if may_retry || may_resolve {
                        div.actions {
                            button.link type="button" data-select-all { "Select all in this group" }
                            @if may_retry { button type="submit" name="action" value="retry" { "Retry selected…" } }
                            @if may_resolve { button type="submit" name="action" value="resolve" { "Resolve selected…" } }
                        }
                    }
                }
            }
        }
    };
    Ok(view::page(
        &api,
        &session,
        "dead-letters",
        "Dead letters",
        content,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_times_take_the_forms_browsers_send() {
        assert_eq!(
            parse_time("2026-12-07").unwrap().to_rfc3339(),
            "2026-12-07T00:00:00+00:00"
        );
        assert_eq!(
            parse_time("2026-12-07T14:30").unwrap().to_rfc3339(),
            "2026-12-07T14:30:00+00:00"
        );
        assert_eq!(
            parse_time("2026-12-07T14:30:00+01:00")
                .unwrap()
                .to_rfc3339(),
            "2026-12-07T13:30:00+00:00"
        );
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn a_bad_filter_says_which_field() {
        for (query, field) in [
            ("state=lost", "lost"),
            ("limit=0", "`limit`"),
            ("limit=100000", "`limit`"),
            ("after=x", "`after`"),
            ("created_after=soon", "`created_after`"),
            ("annotation_type=%20x%20y", "`annotation_type`"),
        ] {
            let e = ListFilter::parse(Some(query)).err().unwrap_or_default();
            assert!(e.contains(field), "{query}: {e}");
        }
        let f = ListFilter::parse(Some("state=error&namespace=payments&after=42")).unwrap();
        assert_eq!(f.state, Some(TaskState::Error));
        assert_eq!(f.after, Some(TaskId(42)));
        assert_eq!(
            f.page_query(Some(TaskId(7))),
            "state=error&namespace=payments&after=7"
        );
        assert_eq!(f.page_query(None), "state=error&namespace=payments");
    }
}
