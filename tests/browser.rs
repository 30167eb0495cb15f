//! The dashboard in a real headless Chromium, driven over WebDriver
//! (ChromeDriver): sign in, watch a task's graph turn green without a
//! reload, retry a failed task from the dead-letter page, filter the task
//! list, see that a read-only token has no buttons and that its forced POST
//! is refused, use the keyboard, and fit a phone's width. Screenshots of
//! each page go to `<target dir>/dashboard-screenshots/`.
//!
//! Needs `chromium` and `chromedriver` on the PATH (Debian: `apt-get
//! install chromium chromium-driver`); run with `cargo test -p
//! tasker-tests --features browser --test browser` (`.ci/run` does).

#[path = "common/http.rs"]
mod http;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tasker::api::{ApiConfig, StaticTokens};
use tasker::prelude::*;
use tasker::{Store, TaskId, TaskRequest, TaskState, Tasker};

const ADMIN: &str = "browser-admin-0123456789abcdef";
const VIEWER: &str = "browser-viewer-0123456789abcdef";

static LEDGER_OPEN: AtomicBool = AtomicBool::new(false);

/// Three steps of ~0.7 s each, so the page can watch them.
pub struct Slow;

#[task_handler(namespace = "demo", version = "1.0.0")]
impl Slow {
    /// First.
    #[step]
    async fn fetch() -> StepResult<u32> {
        tokio::time::sleep(Duration::from_millis(700)).await;
        Ok(1)
    }

    /// Second.
    #[step(depends_on = fetch)]
    async fn transform(fetch: u32) -> StepResult<u32> {
        tokio::time::sleep(Duration::from_millis(700)).await;
        Ok(fetch + 1)
    }

    /// Third.
    #[step(depends_on = transform)]
    async fn load(transform: u32) -> StepResult<u32> {
        tokio::time::sleep(Duration::from_millis(700)).await;
        Ok(transform + 1)
    }
}

/// Fails for good until [`LEDGER_OPEN`] is set.
pub struct Invoice;

#[task_handler(namespace = "billing", version = "1.0.0")]
impl Invoice {
    /// Bills.
    #[step]
    async fn bill() -> StepResult<u32> {
        if LEDGER_OPEN.load(Ordering::SeqCst) {
            Ok(1)
        } else {
            Err(StepError::permanent("the ledger is closed").with_class("LedgerClosed"))
        }
    }
}

/// ChromeDriver on a free port, stopped when dropped.
struct Driver {
    child: tokio::process::Child,
    url: String,
}

impl Driver {
    async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect(
                "chromedriver runs (install Chromium and its driver: `apt-get install chromium \
                 chromium-driver`)",
            );
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Driver { child, url };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not listen on {port} within 10 s");
    }

    async fn browser(&self) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"] }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Where screenshots go: `<target dir>/dashboard-screenshots/`.
fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shoot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

async fn script(browser: &Client, source: &str) -> serde_json::Value {
    browser.execute(source, Vec::new()).await.unwrap()
}

/// The text of the element `css` once `ready` holds for it: waits out a
/// navigation a click started, where the old page's element may still be
/// found, or go stale between finding and reading it.
async fn text_when(browser: &Client, css: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    while std::time::Instant::now() < deadline {
        if let Ok(element) = browser.find(Locator::Css(css)).await {
            if let Ok(text) = element.text().await {
                if ready(&text) {
                    return text;
                }
                seen = text;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{css} never became ready; last seen: {seen:?}");
}

async fn sign_in(browser: &Client, dashboard: &str, token: &str) {
    browser.goto(dashboard).await.unwrap();
    // Not signed in: the sign-in page.
    let field = browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("input[name=token]"))
        .await
        .unwrap();
    field.send_keys(token).await.unwrap();
    browser
        .find(Locator::Css("form.login button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("header.top"))
        .await
        .unwrap();
}

async fn create<S: Store>(tasker: &Tasker<S>, namespace: &str, name: &str) -> TaskId {
    tasker
        .create_task(TaskRequest::new(namespace, name, json!({"order": 7})))
        .await
        .unwrap()
        .task_id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_real_browser() {
    let tasker = tasker_diesel::testing::embedded(|b| b).await.unwrap();
    let worker = tasker.start_worker();
    let tokens = StaticTokens::new().token("admin", ADMIN, ["*"]).token(
        "viewer",
        VIEWER,
        [
            "tasker.task:index",
            "tasker.task:show",
            "tasker.handler:index",
            "tasker.handler:show",
            "tasker.health_status:index",
        ],
    );
    let (base, _) = http::serve(tasker.clone(), ApiConfig::new(tokens)).await;
    let dashboard = format!("{base}/dashboard");
    let driver = Driver::start().await;
    let browser = driver.browser().await;

    // Signing in lands on the overview.
    sign_in(&browser, &dashboard, ADMIN).await;
    assert!(browser
        .current_url()
        .await
        .unwrap()
        .as_str()
        .ends_with("/tasker/dashboard"));
    let heading = browser
        .find(Locator::Css("main h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(heading, "Overview");

    // A task created over the API: its graph turns green live, without a
    // reload (the marker set on the page survives), the state written in
    // each box.
    let (status, created) = http::send(
        &reqwest::Client::new(),
        reqwest::Method::POST,
        &format!("{base}/tasks"),
        Some(ADMIN),
        Some(r#"{"namespace": "demo", "name": "slow", "context": {"order": 7}}"#),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let created: serde_json::Value = serde_json::from_str(&created).unwrap();
    let slow = TaskId(created["task"]["task_id"].as_i64().unwrap());
    browser
        .goto(&format!("{dashboard}/tasks/{}", slow.0))
        .await
        .unwrap();
    script(&browser, "window.__loadedOnce = 42;").await;
    let first = script(
        &browser,
        "return document.querySelector('#graph').textContent",
    )
    .await;
    assert!(
        first.as_str().unwrap().matches("✔ complete").count() < 3,
        "the task is not done when the page opens: {first}"
    );
    let mut states_seen = std::collections::BTreeSet::new();
    let mut done = false;
    for _ in 0..200 {
        let states = script(
            &browser,
            "return Array.from(document.querySelectorAll('#graph g.node')).map(n => n.getAttribute('class'))",
        )
        .await;
        let states: Vec<String> = serde_json::from_value(states).unwrap();
        states_seen.extend(states.iter().cloned());
        if states.len() == 3 && states.iter().all(|c| c == "node state-complete") {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(done, "the graph turned green: {states_seen:?}");
    assert!(
        states_seen.contains("node state-in_progress"),
        "a step was seen running on the way: {states_seen:?}"
    );
    assert_eq!(
        script(&browser, "return window.__loadedOnce").await,
        json!(42),
        "no reload"
    );
    let badge = browser
        .find(Locator::Css("#task-state"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(badge.contains("complete"), "{badge}");
    let text = browser
        .find(Locator::Css("#graph"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("✔ complete"), "states in words: {text}");
    shoot(&browser, "task").await;

    // A failed task, retried from the dead-letter page.
    let failed = create(&tasker, "billing", "invoice").await;
    assert_eq!(
        tasker
            .wait_for_task(failed, Duration::from_secs(20))
            .await
            .unwrap()
            .state,
        TaskState::Error
    );
    browser
        .goto(&format!("{dashboard}/dead-letters"))
        .await
        .unwrap();
    shoot(&browser, "dead-letters").await;
    browser
        .find(Locator::Css(&format!(
            "input[type=checkbox][value='{}']",
            failed.0
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .find(Locator::Css("button[name=action][value=retry]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_when(&browser, "main h1", |h| h.starts_with("Confirm:")).await;
    let confirm = browser.find(Locator::Css("button.danger")).await.unwrap();
    assert_eq!(confirm.text().await.unwrap(), "Yes, retry 1 tasks");
    shoot(&browser, "confirm").await;
    LEDGER_OPEN.store(true, Ordering::SeqCst);
    confirm.click().await.unwrap();
    let outcome = text_when(&browser, "main h1", |h| !h.starts_with("Confirm:")).await;
    assert!(outcome.contains("1 of 1"), "{outcome}");
    assert_eq!(
        tasker
            .wait_for_task(failed, Duration::from_secs(20))
            .await
            .unwrap()
            .state,
        TaskState::Complete
    );
    let trail = tasker.transitions(failed).await.unwrap();
    assert!(
        trail.iter().any(|t| t.actor.as_deref() == Some("admin")),
        "{trail:#?}"
    );

    // The task list, filtered with its form.
    browser.goto(&format!("{dashboard}/tasks")).await.unwrap();
    browser
        .find(Locator::Css("select[name=state]"))
        .await
        .unwrap()
        .select_by_value("complete")
        .await
        .unwrap();
    browser
        .find(Locator::Css("form.filters button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_url(&format!("{dashboard}/tasks?namespace=&name=&version=&state=complete&annotation_type=&created_after=&created_before=").parse().unwrap())
        .await
        .unwrap();
    let rows = browser
        .find_all(Locator::Css("table.tasks tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "the slow task and the retried invoice");
    shoot(&browser, "tasks").await;

    browser
        .goto(&format!("{dashboard}/handlers/demo/slow/1.0.0"))
        .await
        .unwrap();
    let nodes = browser
        .find_all(Locator::Css("svg.graph g.node"))
        .await
        .unwrap();
    assert_eq!(nodes.len(), 3);
    shoot(&browser, "handler").await;
    browser.goto(&dashboard).await.unwrap();
    shoot(&browser, "overview").await;

    // The keyboard: the first Tab reaches the skip link, Enter follows it.
    browser
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("\u{E004}")
        .await
        .unwrap();
    let focused = script(&browser, "return document.activeElement.textContent").await;
    assert_eq!(focused, json!("Skip to content"));

    // A phone's width: nothing wider than the screen but the scrolling
    // boxes of graphs and tables.
    browser.set_window_size(390, 844).await.unwrap();
    browser
        .goto(&format!("{dashboard}/tasks/{}", slow.0))
        .await
        .unwrap();
    let overflow = script(
        &browser,
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
    )
    .await;
    assert!(
        overflow.as_i64().unwrap() <= 1,
        "the page scrolls sideways by {overflow} px"
    );
    shoot(&browser, "task-phone").await;
    browser.set_window_size(1280, 1000).await.unwrap();

    // A read-only token: no action buttons, no check boxes, and a forced
    // POST with its own valid form token is refused.
    browser.goto(&dashboard).await.unwrap();
    browser
        .find(Locator::Css(".who button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Signed out: the sign-in page (before the next navigation, which
    // would otherwise cancel the sign-out's).
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("input[name=token]"))
        .await
        .unwrap();
    let still_failed = {
        LEDGER_OPEN.store(false, Ordering::SeqCst);
        let id = create(&tasker, "billing", "invoice").await;
        tasker
            .wait_for_task(id, Duration::from_secs(20))
            .await
            .unwrap();
        id
    };
    sign_in(
        &browser,
        &format!("{dashboard}/tasks/{}", still_failed.0),
        VIEWER,
    )
    .await;
    assert!(browser
        .current_url()
        .await
        .unwrap()
        .as_str()
        .ends_with(&format!("/tasks/{}", still_failed.0)));
    assert!(browser
        .find_all(Locator::Css("a.button, button.danger"))
        .await
        .unwrap()
        .is_empty());
    shoot(&browser, "task-read-only").await;
    browser
        .goto(&format!("{dashboard}/dead-letters"))
        .await
        .unwrap();
    assert!(browser
        .find_all(Locator::Css("input[type=checkbox]"))
        .await
        .unwrap()
        .is_empty());
    let status = browser
        .execute_async(
            &format!(
                "const done = arguments[arguments.length - 1];
                 const token = document.querySelector('meta[name=tasker-form-token]').content;
                 fetch('{dashboard}/tasks/{}/retry', {{method: 'POST', headers: {{'content-type': 'application/x-www-form-urlencoded'}}, body: 'form_token=' + token}})
                   .then(r => done(r.status));",
                still_failed.0
            ),
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(status, json!(403));
    let task = tasker.task(still_failed).await.unwrap();
    assert_eq!(task.state, TaskState::Error);
    assert_eq!(task.steps[0].attempts, 1);

    browser.close().await.unwrap();
    worker.shutdown().await;
}
