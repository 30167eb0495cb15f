//! Tasks in error, their failed steps grouped by error class, with bulk
//! retry and resolve.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Extension;
use maud::html;

use super::super::super::may_on;
use super::super::super::operations::{LIST_TASKS, RESOLVE_TASK, RETRY_TASK};
use super::super::session::Session;
use super::super::view::{self, time};
use super::super::PageResult;
use super::{require, Shared};
use crate::store::{DeadLetterFilter, Store};

/// Dead letters read for the dead-letter page at most.
const DEAD_LETTERS: u32 = 500;

/// `GET /dead-letters`: failed steps of failed tasks, grouped by error
/// class, with bulk retry and resolve.
pub(in crate::api::dashboard) async fn dead_letters<S: Store>(
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
