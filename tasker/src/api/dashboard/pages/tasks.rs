//! The task list: its filters and keyset paging.

use axum::extract::{RawQuery, State};
use axum::Extension;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use maud::{html, Markup};

use super::super::super::may_on;
use super::super::super::operations::LIST_TASKS;
use super::super::session::{Form, Session};
use super::super::view::{self, task_badge, time};
use super::super::PageResult;
use super::{bad_request, require, Shared};
use crate::state::TaskState;
use crate::store::{Store, TaskFilter, TaskRecord};
use crate::TaskId;

/// Tasks a page of the task list shows by default, and at most.
const PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

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
pub(in crate::api::dashboard) async fn tasks<S: Store>(
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
