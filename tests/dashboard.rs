//! The dashboard over real HTTP (the browser tests are in browser.rs):
//! sign-in, permissions that hide and refuse, forged and foreign forms,
//! bulk actions with the operator as actor, keyset paging, the live
//! stream; and the store reads it needs, on both stores.

#[path = "common/http.rs"]
mod http;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::{redirect, Client, StatusCode};
use serde_json::json;
use tasker::api::{ApiConfig, StaticTokens};
use tasker::prelude::*;
use tasker::store::{TaskFilter, TaskRecord, Transition};
use tasker::{Store, TaskId, TaskRequest, TaskState, Tasker};
use tasker_tests::{on_both_stores, tasker};

const ADMIN: &str = "dashboard-admin-0123456789abcdef";
const VIEWER: &str = "dashboard-viewer-0123456789abcdef";
const PAYMENTS_OPS: &str = "dashboard-payments-0123456789abcdef";

static BILLING_WORKS: AtomicBool = AtomicBool::new(false);

/// Fails for good until [`BILLING_WORKS`] is set.
pub struct Invoice;

#[task_handler(namespace = "billing", version = "1.0.0")]
impl Invoice {
    /// Bills.
    #[step]
    async fn bill() -> StepResult<u32> {
        if BILLING_WORKS.load(Ordering::SeqCst) {
            Ok(1)
        } else {
            Err(StepError::permanent("the ledger is closed").with_class("LedgerClosed"))
        }
    }
}

/// Always fails for good.
pub struct Dunning;

#[task_handler(namespace = "billing", version = "1.0.0")]
impl Dunning {
    /// Reminds.
    #[step]
    async fn remind() -> StepResult<u32> {
        Err(StepError::permanent("no address").with_class("NoAddress"))
    }
}

/// Fails for good, in another namespace.
pub struct Refund;

#[task_handler(namespace = "payments", version = "1.0.0")]
impl Refund {
    /// Refunds.
    #[step]
    async fn refund() -> StepResult<u32> {
        Err(StepError::permanent("no such card").with_class("CardMissing"))
    }
}

/// Two quick steps.
pub struct Greet;

#[task_handler(namespace = "demo", version = "1.0.0")]
impl Greet {
    /// Says hello.
    #[step]
    async fn hello() -> StepResult<String> {
        Ok("hello".into())
    }

    /// Says goodbye.
    #[step(depends_on = hello)]
    async fn goodbye(hello: String) -> StepResult<String> {
        Ok(format!("{hello}, goodbye"))
    }
}

fn tokens() -> StaticTokens {
    StaticTokens::new()
        .token("admin", ADMIN, ["*"])
        .token(
            "viewer",
            VIEWER,
            [
                "tasker.task:index",
                "tasker.task:show",
                "tasker.handler:index",
                "tasker.handler:show",
                "tasker.health_status:index",
            ],
        )
        .token(
            "payments-ops",
            PAYMENTS_OPS,
            [
                "tasker.task:index",
                "tasker.task:show",
                "tasker.task:retry@payments",
                "tasker.task:resolve@payments",
            ],
        )
}

/// A client that does not follow redirects (the tests look at them).
fn client() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

async fn page(client: &Client, url: &str, token: &str) -> (StatusCode, String) {
    http::send(client, reqwest::Method::GET, url, Some(token), None).await
}

/// The form token of a page (every page has it, forms or not).
fn form_token(html: &str) -> String {
    let marker = "name=\"tasker-form-token\" content=\"";
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no form token on the page: {html}"));
    let start = at + marker.len();
    html[start..start + 32].to_owned()
}

async fn post(
    client: &Client,
    url: &str,
    token: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String, Option<String>) {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let response = client
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let location = response
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status(), response.text().await.unwrap(), location)
}

async fn settled<S: Store>(tasker: &Tasker<S>, id: TaskId) -> TaskRecord {
    tasker
        .wait_for_task(id, Duration::from_secs(20))
        .await
        .unwrap()
}

async fn create<S: Store>(tasker: &Tasker<S>, namespace: &str, name: &str) -> TaskId {
    tasker
        .create_task(TaskRequest::new(namespace, name, json!({})))
        .await
        .unwrap()
        .task_id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_with_its_token_and_the_token_stays_out_of_pages() {
    let tasker = tasker_diesel::testing::embedded(|b| b).await.unwrap();
    let (base, addr) = http::serve(tasker.clone(), ApiConfig::new(tokens())).await;
    let dash = format!("{base}/dashboard");
    let client = client();

    // No token: to the sign-in page, remembering where it was going.
    let response = client
        .get(format!("{dash}/tasks?state=error"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/tasker/dashboard/login?reason=required&next="),
        "{location}"
    );
    assert!(
        location.contains("%2Ftasker%2Fdashboard%2Ftasks%3Fstate%3Derror"),
        "{location}"
    );
    let login = client
        .get(format!("http://{addr}{location}"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    assert!(login.text().await.unwrap().contains("type=\"password\""));

    // A wrong token: refused, and not echoed.
    let wrong = client
        .post(format!("{dash}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=not-the-token-0123456789&next=%2Ftasker%2Fdashboard%2Ftasks")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(SET_COOKIE).is_none());
    assert!(!wrong.text().await.unwrap().contains("not-the-token"));

    // The right one: an HttpOnly, SameSite=Strict cookie and back to the page.
    let right = client
        .post(format!("{dash}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(ORIGIN, format!("http://{addr}"))
        .body(format!(
            "token={VIEWER}&next=%2Ftasker%2Fdashboard%2Ftasks%3Fstate%3Derror"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        right.headers()[LOCATION],
        "/tasker/dashboard/tasks?state=error"
    );
    let cookie = right.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/tasker/dashboard",
        "Max-Age=",
    ] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let pair = cookie.split(';').next().unwrap().to_owned();
    let tasks = client
        .get(format!("{dash}/tasks"))
        .header(COOKIE, &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(tasks.status(), 200);
    let html = tasks.text().await.unwrap();
    assert!(
        html.contains("Signed in as <strong>viewer</strong>"),
        "{html}"
    );
    assert!(!html.contains(VIEWER), "the token must never reach a page");

    // Signing out forgets the cookie.
    let token = form_token(&html);
    let out = client
        .post(format!("{dash}/logout"))
        .header(COOKIE, &pair)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("form_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(out.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));

    // A sign-in never sends the browser to another site.
    let away = client
        .post(format!("{dash}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={VIEWER}&next=https%3A%2F%2Fevil.example%2F"))
        .send()
        .await
        .unwrap();
    assert_eq!(away.headers()[LOCATION], "/tasker/dashboard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_token_sees_no_buttons_and_a_forced_post_changes_nothing() {
    let tasker = tasker_diesel::testing::embedded(|b| b).await.unwrap();
    let worker = tasker.start_worker();
    let (base, addr) = http::serve(tasker.clone(), ApiConfig::new(tokens())).await;
    let dash = format!("{base}/dashboard");
    let client = client();
    let failed = create(&tasker, "billing", "invoice").await;
    assert_eq!(settled(&tasker, failed).await.state, TaskState::Error);

    // The admin sees the actions; the viewer sees the task without them.
    let (status, admin) = page(&client, &format!("{dash}/tasks/{}", failed.0), ADMIN).await;
    assert_eq!(status, 200, "{admin}");
    assert!(
        admin.contains(&format!("/tasks/{}/retry", failed.0)),
        "{admin}"
    );
    let (status, viewer) = page(&client, &format!("{dash}/tasks/{}", failed.0), VIEWER).await;
    assert_eq!(status, 200, "{viewer}");
    assert!(viewer.contains("the ledger is closed"), "{viewer}");
    for action in ["/retry", "/resolve", "/cancel"] {
        assert!(
            !viewer.contains(&format!("/tasks/{}{action}", failed.0)),
            "{action}: {viewer}"
        );
    }
    let (_, letters) = page(&client, &format!("{dash}/dead-letters"), VIEWER).await;
    assert!(letters.contains("LedgerClosed"), "{letters}");
    assert!(!letters.contains("Retry selected"), "{letters}");
    assert!(!letters.contains("type=\"checkbox\""), "{letters}");

    // Forced: with the viewer's own valid form token, the server refuses.
    let token = form_token(&viewer);
    let url = format!("{dash}/tasks/{}/retry", failed.0);
    let (status, body, _) = post(&client, &url, VIEWER, &[("form_token", &token)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("viewer"), "{body}");
    let (status, body, _) = post(
        &client,
        &format!("{dash}/dead-letters/apply"),
        VIEWER,
        &[
            ("form_token", &token),
            ("action", "retry"),
            ("task", &failed.0.to_string()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("0 of 1 tasks"), "{body}");
    assert!(body.contains("lacks") || body.contains("may not"), "{body}");
    // Nothing changed: no attempt more, no retry in the audit trail.
    let task = tasker.task(failed).await.unwrap();
    assert_eq!(task.state, TaskState::Error);
    assert_eq!(task.steps[0].attempts, 1);

    // The admin without a form token, with a stale one, or from another
    // site: refused before anything happens.
    let admin_token = form_token(&admin);
    let (status, _, _) = post(&client, &url, ADMIN, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = post(&client, &url, ADMIN, &[("form_token", &token)]).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the viewer's token is not the admin's"
    );
    let foreign = client
        .post(&url)
        .bearer_auth(ADMIN)
        .header(ORIGIN, "http://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("form_token={admin_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert_eq!(tasker.task(failed).await.unwrap().steps[0].attempts, 1);

    // With everything right, the retry happens, audited under the admin.
    BILLING_WORKS.store(true, Ordering::SeqCst);
    let (status, body, location) =
        post(&client, &url, ADMIN, &[("form_token", &admin_token)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(
        location.as_deref(),
        Some(format!("/tasker/dashboard/tasks/{}?done=retried", failed.0).as_str())
    );
    assert_eq!(settled(&tasker, failed).await.state, TaskState::Complete);
    let trail: Vec<Transition> = tasker.transitions(failed).await.unwrap();
    assert!(
        trail.iter().any(|t| t.actor.as_deref() == Some("admin")),
        "{trail:#?}"
    );
    let _ = addr;
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_actions_respect_the_handler_and_record_the_operator() {
    let tasker = tasker_diesel::testing::embedded(|b| b).await.unwrap();
    let worker = tasker.start_worker();
    let (base, _) = http::serve(tasker.clone(), ApiConfig::new(tokens())).await;
    let dash = format!("{base}/dashboard");
    let client = client();
    let refunds = [
        create(&tasker, "payments", "refund").await,
        create(&tasker, "payments", "refund").await,
    ];
    let invoice = create(&tasker, "billing", "dunning").await;
    for id in refunds.iter().chain([&invoice]) {
        settled(&tasker, *id).await;
    }
    let (status, letters) = page(&client, &format!("{dash}/dead-letters"), PAYMENTS_OPS).await;
    assert_eq!(status, 200, "{letters}");
    assert!(letters.contains("CardMissing"), "{letters}");
    assert!(letters.contains("Resolve selected"), "{letters}");
    let token = form_token(&letters);
    let ids: Vec<String> = refunds
        .iter()
        .chain([&invoice])
        .map(|t| t.0.to_string())
        .collect();
    let mut form = vec![("form_token", token.as_str()), ("action", "resolve")];
    form.extend(ids.iter().map(|id| ("task", id.as_str())));

    // The confirmation changes nothing.
    let (status, confirm, _) = post(
        &client,
        &format!("{dash}/dead-letters"),
        ADMIN,
        &[("form_token", "x")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{confirm}");
    let (status, confirm, _) = post(
        &client,
        &format!("{dash}/dead-letters"),
        PAYMENTS_OPS,
        &form,
    )
    .await;
    // One of the three (billing) is not the caller's: the confirmation is refused.
    assert_eq!(status, StatusCode::FORBIDDEN, "{confirm}");
    let only_refunds: Vec<(&str, &str)> = form
        .iter()
        .filter(|(k, v)| *k != "task" || *v != invoice.0.to_string())
        .copied()
        .collect();
    let (status, confirm, _) = post(
        &client,
        &format!("{dash}/dead-letters"),
        PAYMENTS_OPS,
        &only_refunds,
    )
    .await;
    assert_eq!(status, 200, "{confirm}");
    assert!(confirm.contains("Yes, resolve 2 tasks"), "{confirm}");
    assert_eq!(
        tasker.task(refunds[0]).await.unwrap().state,
        TaskState::Error
    );

    // Applied with the billing task slipped in: the refunds are resolved
    // under the operator's name, billing is refused and left alone.
    let (status, done, _) = post(
        &client,
        &format!("{dash}/dead-letters/apply"),
        PAYMENTS_OPS,
        &form,
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("2 of 3 tasks"), "{done}");
    for id in refunds {
        assert_eq!(
            tasker.task(id).await.unwrap().state,
            TaskState::ResolvedManually
        );
        let trail = tasker.transitions(id).await.unwrap();
        assert!(
            trail
                .iter()
                .any(|t| t.actor.as_deref() == Some("payments-ops")),
            "{trail:#?}"
        );
    }
    assert_eq!(tasker.task(invoice).await.unwrap().state, TaskState::Error);

    // More than a hundred at once is refused with a message.
    let many: Vec<String> = (1..=101).map(|i| i.to_string()).collect();
    let mut form = vec![("form_token", token.as_str()), ("action", "retry")];
    form.extend(many.iter().map(|id| ("task", id.as_str())));
    let (status, body, _) = post(
        &client,
        &format!("{dash}/dead-letters"),
        PAYMENTS_OPS,
        &form,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("at most 100"), "{body}");
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_answer_and_hide_what_the_caller_may_not_see() {
    let tasker = tasker_diesel::testing::embedded(|b| b).await.unwrap();
    let worker = tasker.start_worker();
    let (base, _) = http::serve(tasker.clone(), ApiConfig::new(tokens())).await;
    let dash = format!("{base}/dashboard");
    let client = client();
    let greet = create(&tasker, "demo", "greet").await;
    let refund = create(&tasker, "payments", "refund").await;
    settled(&tasker, greet).await;
    settled(&tasker, refund).await;
    for path in [
        "",
        "/tasks",
        "/handlers",
        "/handlers/demo/greet/1.0.0",
        "/dead-letters",
    ] {
        let (status, html) = page(&client, &format!("{dash}{path}"), ADMIN).await;
        assert_eq!(status, 200, "{path}: {html}");
        assert!(html.starts_with("<!DOCTYPE html>"), "{path}");
    }
    let (_, task) = page(&client, &format!("{dash}/tasks/{}", greet.0), ADMIN).await;
    // The graph shows each step's state in words, not only in colour.
    assert!(task.contains("data-step=\"goodbye\""), "{task}");
    assert!(task.contains("✔ complete"), "{task}");
    assert!(task.contains("hello, goodbye"), "the result: {task}");

    // Payments operators hold no health permission: no overview, and no
    // link to it.
    let (status, _) = page(&client, &dash, PAYMENTS_OPS).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, tasks) = page(&client, &format!("{dash}/tasks"), PAYMENTS_OPS).await;
    assert!(!tasks.contains(">Overview<"), "{tasks}");
    assert!(!tasks.contains(">Handlers<"), "{tasks}");
    // The viewer's task page of payments has no buttons; the payments
    // operator's does.
    let (_, ops) = page(&client, &format!("{dash}/tasks/{}", refund.0), PAYMENTS_OPS).await;
    assert!(ops.contains(&format!("/tasks/{}/retry", refund.0)), "{ops}");
    assert!(
        !ops.contains(&format!("/tasks/{}/cancel", refund.0)),
        "no cancel permission: {ops}"
    );

    // Bad input is a page that says what is wrong.
    for (path, says) in [
        ("/tasks/abc", "must be a number"),
        ("/tasks?state=lost", "lost"),
        ("/tasks?limit=100000", "`limit`"),
        ("/tasks/1/explode", "no action"),
        ("/handlers/demo/nope/1.0.0", "nope"),
    ] {
        let (status, html) = page(&client, &format!("{dash}{path}"), ADMIN).await;
        assert!(status.is_client_error(), "{path}: {status}");
        assert!(html.contains(says), "{path}: {html}");
    }
    let (status, _) = page(&client, &format!("{dash}/tasks/999999"), ADMIN).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Security headers on every page.
    let response = client.get(&dash).bearer_auth(ADMIN).send().await.unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_list_pages_by_keyset_and_filters() {
    let tasker = tasker_diesel::testing::embedded(|b| b).await.unwrap();
    let (base, _) = http::serve(tasker.clone(), ApiConfig::new(tokens())).await;
    let dash = format!("{base}/dashboard");
    let client = client();
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(create(&tasker, "demo", "greet").await);
    }
    create(&tasker, "payments", "refund").await;
    let mut seen = Vec::new();
    let mut url = format!("{dash}/tasks?namespace=demo&limit=3");
    for _ in 0..5 {
        let (status, html) = page(&client, &url, ADMIN).await;
        assert_eq!(status, 200, "{html}");
        let found: Vec<i64> = html
            .match_indices("/tasker/dashboard/tasks/")
            .filter_map(|(at, _)| {
                let rest = &html[at + "/tasker/dashboard/tasks/".len()..];
                let end = rest.find('"')?;
                rest[..end].parse().ok()
            })
            .collect();
        seen.extend(found);
        match html.find("rel=\"next\" href=\"") {
            Some(at) => {
                let rest = &html[at + "rel=\"next\" href=\"".len()..];
                let href = &rest[..rest.find('"').unwrap()].replace("&amp;", "&");
                url = format!("{}{href}", base.trim_end_matches("/tasker"));
            }
            None => break,
        }
    }
    let mut expected: Vec<i64> = ids.iter().map(|t| t.0).collect();
    expected.reverse();
    assert_eq!(seen, expected, "newest first, each once, demo only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_stream_sends_the_graph_until_the_task_is_done() {
    let tasker = tasker_diesel::testing::embedded(|b| b).await.unwrap();
    let (base, _) = http::serve(tasker.clone(), ApiConfig::new(tokens())).await;
    let dash = format!("{base}/dashboard");
    let client = client();
    let id = create(&tasker, "demo", "greet").await;
    let response = client
        .get(format!("{dash}/tasks/{}/live", id.0))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let worker = tasker.start_worker();
    // The stream ends by itself once the task is finished.
    let body = tokio::time::timeout(Duration::from_secs(20), response.text())
        .await
        .expect("the stream ends when the task is done")
        .unwrap();
    let events: Vec<serde_json::Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(events.len() >= 2, "{body}");
    assert_eq!(events[0]["state"], "pending", "{body}");
    let last = events.last().unwrap();
    assert_eq!(last["state"], "complete", "{body}");
    assert_eq!(last["finished"], true);
    assert!(
        last["graph"].as_str().unwrap().contains("state-complete"),
        "{body}"
    );
    // Refused without the permission, like the page.
    let (status, _) = page(
        &client,
        &format!("{dash}/tasks/{}/live", id.0),
        "unknown-token-0123456789abcdef",
    )
    .await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "an unknown token goes to sign-in"
    );
    worker.shutdown().await;
}

on_both_stores!(store_reads_for_the_dashboard);

/// `Store::activity` and the task list's time and keyset filters report
/// the same on both stores.
async fn store_reads_for_the_dashboard<S: Store>(store: S) {
    let tasker = tasker(store, |b| b).await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let worker = tasker.start_worker();
    let ok = create(&tasker, "demo", "greet").await;
    let bad = create(&tasker, "billing", "dunning").await;
    settled(&tasker, ok).await;
    settled(&tasker, bad).await;
    let activity = tasker.store().activity(before).await.unwrap();
    // greet: 2 steps completed; dunning: 1 failed attempt.
    assert_eq!(
        (activity.completed(), activity.failed()),
        (2, 1),
        "{activity:#?}"
    );
    assert_eq!(
        activity
            .minutes
            .iter()
            .map(|m| m.minute.timestamp() % 60)
            .max(),
        Some(0)
    );
    assert_eq!(activity.workers.len(), 1, "{activity:#?}");
    assert_eq!(activity.workers[0].worker_id, tasker.config().worker_id);
    assert_eq!(activity.workers[0].claims, 3);
    let later = tasker
        .store()
        .activity(chrono::Utc::now() + chrono::Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(later, tasker::store::Activity::default());

    // A small table is counted exactly, the same as `task_counts`.
    let mut glance: Vec<(TaskState, i64, bool)> = tasker
        .store()
        .task_counts_at_a_glance()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.state, c.count, c.exact))
        .collect();
    glance.sort();
    let mut exact: Vec<(TaskState, i64, bool)> = tasker
        .store()
        .task_counts()
        .await
        .unwrap()
        .into_iter()
        .map(|(state, n)| (state, n, true))
        .collect();
    exact.sort();
    assert_eq!(glance, exact);
    assert_eq!(
        exact,
        [(TaskState::Complete, 1, true), (TaskState::Error, 1, true)]
    );

    let list = |filter: TaskFilter| {
        let tasker = tasker.clone();
        async move {
            tasker
                .tasks(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|t| t.task_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(TaskFilter {
            limit: 10,
            ..TaskFilter::default()
        })
        .await,
        [bad, ok]
    );
    assert_eq!(
        list(TaskFilter {
            limit: 10,
            after_task: Some(bad),
            ..TaskFilter::default()
        })
        .await,
        [ok]
    );
    assert_eq!(
        list(TaskFilter {
            limit: 10,
            after_task: Some(ok),
            ..TaskFilter::default()
        })
        .await,
        Vec::<TaskId>::new()
    );
    assert_eq!(
        list(TaskFilter {
            limit: 10,
            after_task: Some(TaskId(i64::MAX)),
            ..TaskFilter::default()
        })
        .await,
        Vec::<TaskId>::new(),
        "a task that does not exist ends the list"
    );
    assert_eq!(
        list(TaskFilter {
            limit: 10,
            created_after: Some(before),
            ..TaskFilter::default()
        })
        .await,
        [bad, ok]
    );
    assert_eq!(
        list(TaskFilter {
            limit: 10,
            created_before: Some(before),
            ..TaskFilter::default()
        })
        .await,
        Vec::<TaskId>::new()
    );
    worker.shutdown().await;
}
