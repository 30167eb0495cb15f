//! The handlers this binary links, and one handler's graph, steps and
//! bottlenecks.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Extension;
use maud::html;

use super::super::super::operations::{LIST_HANDLERS, SHOW_HANDLER, SHOW_TASK};
use super::super::super::{may_on, ApiError};
use super::super::graph;
use super::super::session::Session;
use super::super::view::{self, task_badge};
use super::super::{PageError, PageResult};
use super::{forbidden, require, Shared};
use crate::analysis::{analyze_with_history, History};
use crate::store::{ItemWindow, Store, TaskFilter};

/// Complete tasks whose audit trails give a handler's typical durations.
const HISTORY_TASKS: u32 = 10;

/// `GET /handlers`.
pub(in crate::api::dashboard) async fn handlers<S: Store>(
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
pub(in crate::api::dashboard) async fn handler<S: Store>(
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
