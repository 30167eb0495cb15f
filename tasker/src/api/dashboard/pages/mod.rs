//! The pages: overview, tasks, a task, handlers, a handler, dead letters.

mod dead_letters;
mod handlers;
mod task;
mod tasks;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use chrono::Utc;
use maud::html;

use super::super::operations::{LIST_TASKS, STATUS};
use super::super::{Api, ApiError};
use super::graph;
use super::session::Session;
use super::view::{self, count, task_badge, time};
use super::{PageError, PageResult};
use crate::state::TaskState;
use crate::store::Store;

pub(super) use dead_letters::dead_letters;
pub(super) use handlers::{handler, handlers};
pub(super) use task::{action_operation, live_parts, step_operation, task};
pub(super) use tasks::tasks;

type Shared<S> = State<Arc<Api<S>>>;

pub(super) fn forbidden(session: &Session, what: &str) -> PageError {
    PageError(ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("`{}` may not {what}", session.who.subject),
    ))
}

pub(super) fn bad_request(message: impl Into<String>) -> PageError {
    PageError(ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        message,
    ))
}

/// Refuses unless the caller may use `operation` at all.
pub(super) fn require<S: Store>(
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
