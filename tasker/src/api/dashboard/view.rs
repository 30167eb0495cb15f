//! The frame every page shares, and the small pieces pages are made of:
//! state badges (text and icon, never colour alone), times, JSON.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};

use super::super::operations::{LIST_HANDLERS, LIST_TASKS, STATUS};
use super::super::{Api, Operation};
use super::session::Session;
use crate::state::{StepState, TaskState};
use crate::store::Store;

/// Whether `session`'s caller may use `operation` at all (on some
/// handler, for a handler's permission): what the navigation shows.
pub(super) fn may<S: Store>(api: &Api<S>, session: &Session, operation: &Operation) -> bool {
    let Some(permission) = operation.permission() else {
        return true;
    };
    if super::super::operations::handler_scoped(permission) {
        api.config.authorizer.authorize(&session.who, permission)
    } else {
        api.config.authorizer.authorize_on(
            &session.who,
            permission,
            &super::super::Resource::Global,
        )
    }
}

/// A page in the dashboard's frame.
pub(super) fn page<S: Store>(
    api: &Api<S>,
    session: &Session,
    current: &str,
    title: &str,
    content: Markup,
) -> Response {
    let base = &session.base;
    let links = [
        ("overview", "Overview", "", may(api, session, &STATUS)),
        ("tasks", "Tasks", "/tasks", may(api, session, &LIST_TASKS)),
        (
            "dead-letters",
            "Dead letters",
            "/dead-letters",
            may(api, session, &LIST_TASKS),
        ),
        (
            "handlers",
            "Handlers",
            "/handlers",
            may(api, session, &LIST_HANDLERS),
        ),
    ];
    let body = html! {
        a.skip href="#main" { "Skip to content" }
        header.top {
            a.brand href=(base) { "tasker" }
            nav aria-label="Dashboard" {
                ul {
                    @for (id, label, path, shown) in links {
                        @if shown {
                            li {
                                a href={ (base) (path) }
                                    aria-current=[(id == current).then_some("page")] { (label) }
                            }
                        }
                    }
                }
            }
            div.who {
                span { "Signed in as " strong { (session.who.subject) } }
                @if session.signed_in {
                    form method="post" action={ (base) "/logout" } {
                        input type="hidden" name="form_token" value=(session.form_token);
                        button.link type="submit" { "Sign out" }
                    }
                }
            }
        }
        main #main { (content) }
    };
    document(base, title, Some(&session.form_token), body).into_response()
}

fn document(base: &str, title: &str, form_token: Option<&str>, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · tasker" }
                    @if let Some(token) = form_token {
                        meta name="tasker-form-token" content=(token);
                    }
                    link rel="stylesheet" href={ (base) "/assets/dashboard.css" };
                    script src={ (base) "/assets/dashboard.js" } defer {}
                }
                body { (body) }
            }
        }
        .into_string(),
    )
}

/// A page outside the frame (errors, sign-in).
pub(super) fn bare(title: &str, content: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · tasker" }
                }
                body { main #main { (content) } }
            }
        }
        .into_string(),
    )
}

/// A refusal as a short page.
pub(super) fn refused(status: StatusCode, message: &str) -> Response {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    (
        status,
        bare(
            &title,
            html! { h1 { (title) } p role="alert" { (message) } },
        ),
    )
        .into_response()
}

/// The sign-in page.
pub(super) fn login(
    base: &str,
    next: Option<&str>,
    note: Option<&str>,
    status: StatusCode,
) -> Response {
    let body = html! {
        main #main.narrow {
            h1 { "Sign in to tasker" }
            @if let Some(note) = note {
                p.note role="status" { (note) }
            }
            form.login method="post" action={ (base) "/login" } {
                label for="token" { "API token" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                @if let Some(next) = next {
                    input type="hidden" name="next" value=(next);
                }
                button type="submit" { "Sign in" }
            }
            p.hint { "Use the token you call the API with; the dashboard has the same permissions." }
        }
    };
    (status, document(base, "Sign in", None, body)).into_response()
}

/// The icon of a state (shown beside its name).
pub(super) fn state_icon(state: &str) -> &'static str {
    match state {
        "complete" => "✔",
        "error" => "✖",
        "in_progress" => "▶",
        "ready" => "●",
        "pending" => "○",
        "cancelled" => "⊘",
        "resolved_manually" => "✎",
        "skipped" => "↷",
        _ => "·",
    }
}

/// A state as icon, text and colour.
pub(super) fn badge(state: &str) -> Markup {
    html! {
        span class={ "badge state-" (state) } {
            span aria-hidden="true" { (state_icon(state)) } " " (state.replace('_', " "))
        }
    }
}

pub(super) fn task_badge(state: TaskState) -> Markup {
    badge(state.as_str())
}

pub(super) fn step_badge(state: StepState) -> Markup {
    badge(state.as_str())
}

/// A time, readable and exact on hover.
pub(super) fn time(at: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) title=(at.to_rfc3339()) {
            (at.format("%Y-%m-%d %H:%M:%S"))
        }
    }
}

/// JSON, pretty-printed (escaped like any text).
pub(super) fn json(value: &serde_json::Value) -> Markup {
    html! {
        pre.json { (serde_json::to_string_pretty(value).unwrap_or_default()) }
    }
}

/// A hidden field with the form token.
pub(super) fn form_token(session: &Session) -> Markup {
    html! { input type="hidden" name="form_token" value=(session.form_token); }
}

/// A number with thousands separators.
pub(super) fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_have_separators() {
        assert_eq!(super::count(0), "0");
        assert_eq!(super::count(999), "999");
        assert_eq!(super::count(1000), "1,000");
        assert_eq!(super::count(1234567), "1,234,567");
        assert_eq!(super::count(-1234), "-1,234");
    }
}
