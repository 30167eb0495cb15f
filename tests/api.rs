//! The REST API over a real loopback server and a real HTTP client:
//! create and watch a task, diagrams and analysis, the permission matrix of
//! every route, authentication failures, bad input, and the OpenAPI
//! document.

#[path = "common/http.rs"]
mod http;

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use tasker::api::{Access, ApiConfig, JwtAuthenticator, StaticTokens, OPERATIONS};
use tasker::{Store, Tasker};
use tasker_diesel::SqliteStore;
use tasker_tests::handlers::{Attempts, Switch};

/// The admin's token (its principal is named `admin`).
const ALL: &str = "all-permissions-0123456789abcdef";

/// The token of a principal holding only `permission`.
fn only(permission: &str) -> String {
    format!("only:{permission}:0123456789abcdef")
}

/// The token of a principal holding every permission but `permission`.
fn all_but(permission: &str) -> String {
    format!("all-but:{permission}:0123456789abcdef")
}

/// A REST route of the operation table.
struct Route {
    method: &'static str,
    path: &'static str,
    permission: Option<&'static str>,
}

/// Every REST route but the GraphQL endpoint (tested on its own).
fn routes() -> Vec<Route> {
    OPERATIONS
        .iter()
        .filter(|op| op.access != Access::Authenticated)
        .filter_map(|op| {
            op.rest.map(|rest| Route {
                method: rest.method,
                path: rest.path,
                permission: op.permission(),
            })
        })
        .collect()
}

/// Every GraphQL field or mutation with its permission (introspection,
/// which answers null instead of refusing, is tested on its own).
fn graphql_operations() -> Vec<(&'static str, &'static str)> {
    OPERATIONS
        .iter()
        .filter_map(|op| Some((op.graphql?, op.permission()?)))
        .filter(|(field, _)| !field.starts_with("__"))
        .collect()
}

/// Every permission some operation needs.
fn permissions() -> Vec<&'static str> {
    let mut all: Vec<&str> = OPERATIONS.iter().filter_map(|op| op.permission()).collect();
    all.sort_unstable();
    all.dedup();
    all
}

fn tokens() -> StaticTokens {
    let mut tokens = StaticTokens::new().token("admin", ALL, ["*"]);
    for permission in permissions() {
        let name = permission.replace(':', ".");
        tokens = tokens
            .token(format!("only-{name}"), only(permission), [permission])
            .token(
                format!("all-but-{name}"),
                all_but(permission),
                permissions().into_iter().filter(|p| *p != permission),
            );
    }
    tokens
}

async fn engine() -> Tasker<SqliteStore> {
    tasker_diesel::testing::embedded(|b| {
        b.resource(Arc::new(Attempts::default()))
            .resource(Arc::new(Switch::default()))
            .configure(|c| c.backoff.base = Duration::from_millis(10))
    })
    .await
    .unwrap()
}

/// Serves the API on a free loopback port; returns its base URL.
async fn serve(tasker: Tasker<SqliteStore>, config: ApiConfig) -> String {
    http::serve(tasker, config).await.0
}

/// One request; the body as JSON when it is JSON, as a string otherwise.
async fn call(
    client: &Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let (status, text) = http::send(client, method, url, token, body).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn wait_complete(client: &Client, base: &str, id: i64) -> Value {
    for _ in 0..500 {
        let (status, body) = call(
            client,
            Method::GET,
            &format!("{base}/tasks/{id}"),
            Some(ALL),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        if body["task"]["state"] == "complete" || body["task"]["state"] == "error" {
            return body["task"].clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("task {id} did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_a_task_over_rest_watch_it_complete_and_draw_it() {
    let tasker = engine().await;
    let worker = tasker.start_worker();
    let base = serve(tasker.clone(), ApiConfig::new(tokens())).await;
    let client = Client::new();

    let body = r#"{"namespace": "tests", "name": "diamond", "version": "^1", "context": {"value": 3}, "identity_key": "rest-1", "priority": "high", "max_execution_time": "10m"}"#;
    let (status, created) = call(
        &client,
        Method::POST,
        &format!("{base}/tasks"),
        Some(ALL),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["created"], true);
    let id = created["task"]["task_id"].as_i64().unwrap();
    assert_eq!(
        created["task"]["initiator"], "admin",
        "the caller is recorded"
    );
    assert_eq!(created["task"]["priority"], "high", "{created}");
    assert_eq!(created["task"]["steps"][0]["priority"], "high", "{created}");
    let deadline: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(created["task"]["deadline"].clone()).unwrap();
    let created_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(created["task"]["created_at"].clone()).unwrap();
    assert_eq!((deadline - created_at).num_seconds(), 600, "{created}");
    // The same identity key: the existing task, 200.
    let (status, again) = call(
        &client,
        Method::POST,
        &format!("{base}/tasks"),
        Some(ALL),
        Some(body),
    )
    .await;
    assert_eq!(
        (
            status,
            again["created"].clone(),
            again["task"]["task_id"].as_i64()
        ),
        (StatusCode::OK, json!(false), Some(id))
    );

    let task = wait_complete(&client, &base, id).await;
    assert_eq!(task["state"], "complete");
    let d = task["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "d")
        .unwrap();
    assert_eq!(d["output"], json!(3 + 1 + 30));

    let response = client
        .get(format!("{base}/tasks/{id}/diagram?format=mermaid"))
        .bearer_auth(ALL)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/vnd.mermaid"));
    let mermaid = response.text().await.unwrap();
    assert!(mermaid.starts_with("flowchart TD"), "{mermaid}");
    assert!(mermaid.contains("class s3 complete"), "{mermaid}");
    let dot = client
        .get(format!("{base}/tasks/{id}/diagram?format=dot"))
        .bearer_auth(ALL)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        dot.contains(
            "\"d\" [style=\"rounded,filled\", fillcolor=\"#c8e6c9\", xlabel=\"complete\"];"
        ),
        "{dot}"
    );

    let (status, analysis) = call(
        &client,
        Method::GET,
        &format!("{base}/tasks/{id}/analysis"),
        Some(ALL),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        analysis["analysis"]["critical_path"],
        json!(["a", "b", "d"])
    );
    assert_eq!(analysis["analysis"]["completion"], json!(1.0));
    assert_eq!(analysis["analysis"]["bottlenecks"], json!([]));

    let (status, list) = call(
        &client,
        Method::GET,
        &format!("{base}/tasks?namespace=tests&name=diamond&state=complete&limit=10"),
        Some(ALL),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["tasks"].as_array().unwrap().len(), 1);
    let (_, handlers) = call(
        &client,
        Method::GET,
        &format!("{base}/handlers"),
        Some(ALL),
        None,
    )
    .await;
    assert!(handlers["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["namespace"] == "tests"));
    let (status, handler) = call(
        &client,
        Method::GET,
        &format!("{base}/handlers/tests/diamond?version=1.0.0"),
        Some(ALL),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(handler["levels"], json!([["a"], ["b", "c"], ["d"]]));
    assert_eq!(handler["dependent_systems"], json!(["ledger", "fx-rates"]));
    assert_eq!(
        handler["metadata"],
        json!({"owner": "tests-team", "runbook": "https://runbooks.example/diamond"})
    );
    assert_eq!(
        handler["steps"][2]["dependent_systems"],
        json!(["fx-rates", "ledger"])
    );
    assert_eq!(handler["steps"][0]["dependent_systems"], json!([]));
    let (status, dot) = call(
        &client,
        Method::GET,
        &format!("{base}/handlers/tests/diamond/diagram?format=dot"),
        Some(ALL),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        dot.as_str()
            .unwrap()
            .contains("\"c\" [label=\"c\\nfx-rates, ledger\"];"),
        "{dot}"
    );
    let (_, mermaid) = call(
        &client,
        Method::GET,
        &format!("{base}/handlers/tests/diamond/diagram"),
        Some(ALL),
        None,
    )
    .await;
    assert!(
        mermaid
            .as_str()
            .unwrap()
            .contains("[\"c<br/><small>fx-rates, ledger</small>\"]"),
        "{mermaid}"
    );
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_needs_its_permission() {
    let tasker = engine().await;
    let base = serve(tasker.clone(), ApiConfig::new(tokens())).await;
    let client = Client::new();
    // A task and a step to address.
    let body = r#"{"namespace": "tests", "name": "diamond", "context": {"value": 1}}"#;
    let (_, created) = call(
        &client,
        Method::POST,
        &format!("{base}/tasks"),
        Some(ALL),
        Some(body),
    )
    .await;
    let task_id = created["task"]["task_id"].as_i64().unwrap();
    let step_id = created["task"]["steps"][0]["step_id"].as_i64().unwrap();

    for route in routes() {
        let url = format!(
            "{base}{}",
            route
                .path
                .replace("{task_id}", &task_id.to_string())
                .replace("{step_id}", &step_id.to_string())
                .replace("{namespace}", "tests")
                .replace("{name}", "diamond")
        );
        let method = Method::from_bytes(route.method.as_bytes()).unwrap();
        let body = (route.path == "/tasks" && route.method == "POST").then_some(body);
        let Some(permission) = route.permission else {
            let (status, _) = call(&client, method, &url, None, None).await;
            assert_eq!(
                status, 200,
                "{} {} needs no credentials",
                route.method, route.path
            );
            continue;
        };
        let (status, error) = call(
            &client,
            method.clone(),
            &url,
            Some(&all_but(permission)),
            body,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{} {} without {permission}: {error}",
            route.method,
            route.path
        );
        assert_eq!(error["error"]["code"], "forbidden");
        assert!(error["error"]["message"]
            .as_str()
            .unwrap()
            .contains(permission));
        let (status, response) =
            call(&client, method.clone(), &url, Some(&only(permission)), body).await;
        assert!(
            status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
            "{} {} with {permission} got {status}: {response}",
            route.method,
            route.path
        );
        let (status, error) = call(&client, method.clone(), &url, None, body).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{} {} without credentials",
            route.method,
            route.path
        );
        assert_eq!(error["error"]["code"], "unauthorized");
        let (status, _) = call(&client, method, &url, Some("not-a-token"), body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // A malformed Authorization header.
    let response = client
        .get(format!("{base}/tasks"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iss: &'a str,
    aud: &'a str,
    exp: u64,
    permissions: Vec<&'a str>,
}

fn jwt(secret: &[u8], iss: &str, aud: &str, exp_offset: i64, permissions: Vec<&str>) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = Claims {
        sub: "svc-billing",
        iss,
        aud,
        exp: (now + exp_offset) as u64,
        permissions,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_tokens_are_checked_for_signature_expiry_issuer_and_audience() {
    let tasker = engine().await;
    let secret = b"a-long-enough-test-secret-for-hs256";
    let base = serve(
        tasker,
        ApiConfig::new(JwtAuthenticator::hs256(secret, "auth.example", "tasker").unwrap()),
    )
    .await;
    let client = Client::new();
    let url = format!("{base}/tasks");
    let get = |token: String| {
        let client = client.clone();
        let url = url.clone();
        async move { call(&client, Method::GET, &url, Some(&token), None).await }
    };
    let (status, _) = get(jwt(
        secret,
        "auth.example",
        "tasker",
        300,
        vec!["tasker.task:index"],
    ))
    .await;
    assert_eq!(status, 200);
    let (status, body) = get(jwt(
        secret,
        "auth.example",
        "tasker",
        -120,
        vec!["tasker.task:index"],
    ))
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
    let (status, body) = get(jwt(
        b"some-other-secret-of-enough-length",
        "auth.example",
        "tasker",
        300,
        vec!["tasker.task:index"],
    ))
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "{body}"
    );
    let (status, _) = get(jwt(
        secret,
        "evil.example",
        "tasker",
        300,
        vec!["tasker.task:index"],
    ))
    .await;
    assert_eq!(status, 401);
    let (status, _) = get(jwt(
        secret,
        "auth.example",
        "other-service",
        300,
        vec!["tasker.task:index"],
    ))
    .await;
    assert_eq!(status, 401);
    let (status, body) = get("not.a.jwt".to_owned()).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("malformed"),
        "{body}"
    );
    let (status, _) = get(jwt(
        secret,
        "auth.example",
        "tasker",
        300,
        vec!["tasker.handler:index"],
    ))
    .await;
    assert_eq!(status, 403, "valid token, wrong permission");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_4xx_and_writes_nothing() {
    let tasker = engine().await;
    let mut config = ApiConfig::new(tokens());
    config.limits.body_limit = 4096;
    let base = serve(tasker.clone(), config).await;
    let client = Client::new();
    let post = |body: String| {
        let client = client.clone();
        let url = format!("{base}/tasks");
        async move { call(&client, Method::POST, &url, Some(ALL), Some(&body)).await }
    };
    let (status, body) =
        post(r#"{"namespace": "tests", "name": "diamond", "context": {"value": 1}"#.into()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("malformed task request"),
        "{body}"
    );
    let (status, body) =
        post(r#"{"namespace": "tests", "name": "diamond", "context": {"value": "three"}}"#.into())
            .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_context")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at `value`"),
        "{body}"
    );
    for (field, body, message) in [
        (
            "priority",
            r#"{"namespace": "tests", "name": "diamond", "context": {"value": 1}, "priority": "urgent"}"#,
            "unknown variant `urgent`, expected one of `low`, `normal`, `high`, `critical`",
        ),
        (
            "max_execution_time",
            r#"{"namespace": "tests", "name": "diamond", "context": {"value": 1}, "max_execution_time": "0s"}"#,
            "`max_execution_time` is 0s, out of range: give between 1ms and 366 days",
        ),
        (
            "max_execution_time",
            r#"{"namespace": "tests", "name": "diamond", "context": {"value": 1}, "max_execution_time": "forever"}"#,
            "invalid duration \"forever\"",
        ),
    ] {
        let (status, body) = post(body.into()).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{field}: {body}"
        );
        assert!(
            body["error"]["message"].as_str().unwrap().contains(message),
            "{field}: {body}"
        );
    }
    // Beyond the type: the handler's `validate` names every field.
    let (status, body) = post(
        r#"{"namespace": "tests", "name": "bounded", "context": {"count": 5000, "label": ""}}"#
            .into(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_context")),
        "{body}"
    );
    assert_eq!(
        body["error"]["message"],
        "the task context is invalid: `count` is 5000; give 1 to 1000; `label` must not be blank"
    );
    let (status, body) =
        post(r#"{"namespace": "tests", "name": "no_such_handler", "context": {}}"#.into()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_handler")),
        "{body}"
    );
    let huge = format!(
        r#"{{"namespace": "tests", "name": "diamond", "context": {{"value": 1, "pad": "{}"}}}}"#,
        "x".repeat(10_000)
    );
    let (status, body) = post(huge).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")),
        "{body}"
    );
    assert!(
        tasker.store().task_counts().await.unwrap().is_empty(),
        "nothing was written"
    );

    let (status, body) = call(
        &client,
        Method::GET,
        &format!("{base}/tasks/999999"),
        Some(ALL),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found")),
        "{body}"
    );
    let (status, _) = call(
        &client,
        Method::GET,
        &format!("{base}/tasks/abc"),
        Some(ALL),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(
        &client,
        Method::GET,
        &format!("{base}/steps/424242"),
        Some(ALL),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &client,
        Method::GET,
        &format!("{base}/handlers/tests/nope"),
        Some(ALL),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &client,
        Method::GET,
        &format!("{base}/no/such/route"),
        Some(ALL),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A state conflict: retrying a task that is not in error.
    let (_, created) =
        post(r#"{"namespace": "tests", "name": "diamond", "context": {"value": 1}}"#.into()).await;
    let id = created["task"]["task_id"].as_i64().unwrap();
    let (status, body) = call(
        &client,
        Method::POST,
        &format!("{base}/tasks/{id}/retry"),
        Some(ALL),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict")),
        "{body}"
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("only a task in `error` can be retried"));
    // Errors never carry SQL or internals.
    assert!(!body.to_string().to_lowercase().contains("sql"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_validates_and_lists_every_route() {
    let tasker = engine().await;
    let base = serve(tasker, ApiConfig::new(tokens())).await;
    let client = Client::new();
    let (status, doc) = call(
        &client,
        Method::GET,
        &format!("{base}/openapi.json"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let parsed: openapiv3::OpenAPI =
        serde_json::from_value(doc.clone()).expect("a valid OpenAPI 3 document");
    assert_eq!(parsed.openapi, "3.0.3");
    for route in routes() {
        let item = parsed
            .paths
            .paths
            .get(&format!("/tasker{}", route.path))
            .unwrap_or_else(|| panic!("{} missing", route.path))
            .as_item()
            .unwrap();
        let operation = match route.method {
            "GET" => item.get.as_ref(),
            "POST" => item.post.as_ref(),
            _ => None,
        }
        .unwrap_or_else(|| panic!("{} {} missing", route.method, route.path));
        assert_eq!(
            operation
                .extensions
                .get("x-permission")
                .and_then(Value::as_str),
            route.permission,
            "{} {}",
            route.method,
            route.path
        );
    }
    assert_eq!(doc, tasker::api::openapi_document("/tasker"));
}

async fn graphql(
    client: &Client,
    base: &str,
    token: Option<&str>,
    query: &str,
) -> (StatusCode, Value) {
    let body = json!({ "query": query }).to_string();
    call(
        client,
        Method::POST,
        &format!("{base}/graphql"),
        token,
        Some(&body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_through_graphql() {
    let tasker = engine().await;
    let worker = tasker.start_worker();
    let base = serve(tasker.clone(), ApiConfig::new(tokens())).await;
    let client = Client::new();
    let (status, body) = graphql(
        &client,
        &base,
        Some(ALL),
        r#"mutation { createTask(input: {namespace: "tests", name: "diamond", context: {value: 5}, priority: "critical", maxExecutionTime: "1h"}) { created taskId task { state namespace priority deadline steps { priority } } } }"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["createTask"]["created"], true, "{body}");
    assert_eq!(
        body["data"]["createTask"]["task"]["namespace"], "tests",
        "{body}"
    );
    let created = &body["data"]["createTask"]["task"];
    assert_eq!(created["priority"], "critical", "{body}");
    assert_eq!(created["steps"][0]["priority"], "critical", "{body}");
    assert!(created["deadline"].is_string(), "{body}");
    let id = body["data"]["createTask"]["taskId"].as_i64().unwrap();
    let mut state = String::new();
    for _ in 0..500 {
        let (_, body) = graphql(
            &client,
            &base,
            Some(ALL),
            &format!("{{ task(id: {id}) {{ state steps {{ name state output }} }} }}"),
        )
        .await;
        state = body["data"]["task"]["state"].as_str().unwrap().to_owned();
        if state == "complete" {
            let d = body["data"]["task"]["steps"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == "d")
                .unwrap()
                .clone();
            assert_eq!(d["output"], json!(5 + 1 + 50));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(state, "complete");
    let (_, body) = graphql(
        &client,
        &base,
        Some(ALL),
        "{ handlers { namespace name levels } }",
    )
    .await;
    assert!(body["data"]["handlers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["name"] == "diamond" && h["levels"] == json!([["a"], ["b", "c"], ["d"]])));
    // Errors carry a code and say what to fix.
    let (status, body) = graphql(&client, &base, Some(ALL), r#"mutation { createTask(input: {namespace: "tests", name: "diamond", context: {value: "x"}}) { taskId } }"#).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "INVALID_CONTEXT",
        "{body}"
    );
    for (input, message) in [
        (
            r#"priority: "urgent""#,
            "unknown priority `urgent`; use low, normal, high or critical",
        ),
        (r#"maxExecutionTime: "0s""#, "out of range"),
        (r#"maxExecutionTime: "soon""#, "invalid duration"),
    ] {
        let query = format!(
            r#"mutation {{ createTask(input: {{namespace: "tests", name: "diamond", context: {{value: 1}}, {input}}}) {{ taskId }} }}"#
        );
        let (_, body) = graphql(&client, &base, Some(ALL), &query).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "INVALID_REQUEST",
            "{input}: {body}"
        );
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(message),
            "{input}: {body}"
        );
    }
    let (status, body) = graphql(
        &client,
        &base,
        Some(ALL),
        &format!("mutation {{ retryTask(id: {id}) {{ state }} }}"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "CONFLICT",
        "{body}"
    );
    let (status, _) = call(
        &client,
        Method::POST,
        &format!("{base}/graphql"),
        Some(ALL),
        Some("{not json"),
    )
    .await;
    assert_eq!(status, 400);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_graphql_operation_needs_its_permission() {
    let tasker = engine().await;
    let base = serve(tasker.clone(), ApiConfig::new(tokens())).await;
    let client = Client::new();
    let (_, created) = call(
        &client,
        Method::POST,
        &format!("{base}/tasks"),
        Some(ALL),
        Some(r#"{"namespace": "tests", "name": "diamond", "context": {"value": 1}}"#),
    )
    .await;
    let task_id = created["task"]["task_id"].as_i64().unwrap();
    let step_id = created["task"]["steps"][0]["step_id"].as_i64().unwrap();
    let query_for = |operation: &str| {
        http::graphql_query(
            operation,
            task_id,
            step_id,
            r#"{namespace: "tests", name: "diamond", context: {value: 2}}"#,
        )
    };
    for (operation, permission) in graphql_operations() {
        let query = query_for(operation);
        let (status, body) = graphql(&client, &base, Some(&all_but(permission)), &query).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{operation} without {permission}: {body}"
        );
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{body}"
        );
        let (status, body) = graphql(&client, &base, Some(&only(permission)), &query).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{operation} with {permission}: {body}"
        );
        let codes: Vec<&Value> = body["errors"]
            .as_array()
            .map(|e| e.iter().map(|x| &x["extensions"]["code"]).collect())
            .unwrap_or_default();
        assert!(!codes.contains(&&json!("FORBIDDEN")), "{operation}: {body}");
        let (status, _) = graphql(&client, &base, None, &query).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{operation} without credentials"
        );
    }
    // The schema lists exactly these operations.
    let sdl = tasker::api::graphql_sdl();
    for (operation, _) in graphql_operations() {
        assert!(
            sdl.contains(&format!("{operation}(")) || sdl.contains(&format!("{operation}:")),
            "{operation} not in\n{sdl}"
        );
    }
}

/// What standard GraphQL clients send and expect: the full introspection
/// query of graphql-js (GraphiQL, Apollo, gql) passes the depth and cost
/// limits for a caller allowed to introspect, and request errors follow
/// the GraphQL-over-HTTP spec (no `data`, a code on every error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_graphql_clients_are_served_by_the_spec() {
    let tasker = engine().await;
    let base = serve(tasker.clone(), ApiConfig::new(tokens())).await;
    let client = Client::new();
    let introspection = include_str!("fixtures/introspection.graphql");

    let (status, body) = graphql(&client, &base, Some(ALL), introspection).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    let types = body["data"]["__schema"]["types"].as_array().unwrap();
    for name in [
        "Query",
        "Mutation",
        "Task",
        "Step",
        "Handler",
        "CreatedTask",
    ] {
        assert!(
            types.iter().any(|t| t["name"] == name),
            "{name} not introspected"
        );
    }
    // Every field's type can be named by walking `ofType`.
    for t in types {
        for field in t["fields"].as_array().into_iter().flatten() {
            let mut ty = &field["type"];
            while ty["name"].is_null() {
                assert!(
                    !ty["ofType"].is_null(),
                    "{}.{} has a type that cannot be introspected: {ty}",
                    t["name"],
                    field["name"]
                );
                ty = &ty["ofType"];
            }
        }
    }
    // Without the permission the same query is answered, with nulls.
    let (status, body) = graphql(
        &client,
        &base,
        Some(&only("tasker.task:index")),
        introspection,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["__schema"].is_null(), "{body}");

    for (query, code) in [
        ("{ tasks { ", "GRAPHQL_PARSE_FAILED"),
        ("{ tasks { noSuchField } }", "GRAPHQL_VALIDATION_FAILED"),
    ] {
        let (status, body) = graphql(&client, &base, Some(ALL), query).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert!(
            body.get("data").is_none(),
            "a request error has no data: {body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["code"], code, "{body}");
    }
    // A body without a query is not a GraphQL request.
    for body in [
        r#"{}"#,
        r#"{"query": ""}"#,
        r#"{"query": 5}"#,
        r#"{"variables": {}}"#,
    ] {
        let (status, answer) = call(
            &client,
            Method::POST,
            &format!("{base}/graphql"),
            Some(ALL),
            Some(body),
        )
        .await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_request", "{answer}");
    }
}

/// A decision's skipped branch and a batch step's checkpoint, as REST and
/// GraphQL show them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipped_steps_and_checkpoints_show_in_rest_and_graphql() {
    let tasker = engine().await;
    let worker = tasker.start_worker();
    let base = serve(tasker.clone(), ApiConfig::new(tokens())).await;
    let client = Client::new();
    let create = |body: Value| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let (status, created) = call(
                &client,
                Method::POST,
                &format!("{base}/tasks"),
                Some(ALL),
                Some(&body.to_string()),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{created}");
            created["task"]["task_id"].as_i64().unwrap()
        }
    };
    let triage =
        create(json!({"namespace": "tests", "name": "triage", "context": {"value": 4}})).await;
    let log = std::env::temp_dir().join(format!("tasker-api-batch-{}.log", std::process::id()));
    let batch = create(json!({"namespace": "tests", "name": "batch", "context": {
        "rows": 50, "chunk": 10, "log": log.to_string_lossy(), "chunk_ms": 0, "fail_after": null
    }}))
    .await;

    let task = wait_complete(&client, &base, triage).await;
    assert_eq!(task["state"], "complete", "{task}");
    let states: Vec<(&str, &str)> = task["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("pick", "complete"),
            ("left", "complete"),
            ("right", "skipped"),
            ("join", "complete")
        ]
    );
    let task = wait_complete(&client, &base, batch).await;
    assert_eq!(task["state"], "complete", "{task}");
    let checkpoint = &task["steps"][0]["checkpoint"];
    assert_eq!(
        checkpoint["value"],
        json!({"next": 50, "sum": 1225}),
        "{task}"
    );
    assert_eq!(checkpoint["attempt"], 1, "{task}");
    assert!(checkpoint["saved_at"].is_string(), "{task}");
    // A step that saved none has none.
    let (_, triage_task) = call(
        &client,
        Method::GET,
        &format!("{base}/tasks/{triage}"),
        Some(ALL),
        None,
    )
    .await;
    assert!(
        triage_task["task"]["steps"][0]["checkpoint"].is_null(),
        "{triage_task}"
    );

    let (status, body) = graphql(
        &client,
        &base,
        Some(ALL),
        &format!(
            "{{ a: task(id: {triage}) {{ steps {{ name state }} }} b: task(id: {batch}) {{ steps {{ checkpoint }} }} }}"
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(
        body["data"]["a"]["steps"][2],
        json!({"name": "right", "state": "skipped"}),
        "{body}"
    );
    assert_eq!(
        body["data"]["b"]["steps"][0]["checkpoint"],
        json!({"next": 50, "sum": 1225}),
        "{body}"
    );
    worker.shutdown().await;
    let _ = std::fs::remove_file(&log);
}

/// A fan-out's items through the API: each task read holds a window of
/// them (`items_offset`, `items_limit`) and every group counts them all,
/// over REST, GraphQL and in the diagrams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_outs_items_are_shown_through_a_window() {
    let tasker = engine().await;
    let worker = tasker.start_worker();
    let base = serve(tasker.clone(), ApiConfig::new(tokens())).await;
    let client = Client::new();
    let log = std::env::temp_dir().join(format!("tasker-api-items-{}.log", std::process::id()));
    let body = json!({
        "namespace": "tests", "name": "fan_out",
        "context": { "items": 5, "item_ms": 0, "log": log.display().to_string() },
    })
    .to_string();
    let (status, created) = call(
        &client,
        Method::POST,
        &format!("{base}/tasks"),
        Some(ALL),
        Some(&body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["task_id"].as_i64().unwrap();
    wait_complete(&client, &base, id).await;
    worker.shutdown().await;
    let show = |query: &'static str| {
        let (client, url) = (client.clone(), format!("{base}/tasks/{id}{query}"));
        async move { call(&client, Method::GET, &url, Some(ALL), None).await }
    };
    let items_of = |task: &Value| -> Vec<i64> {
        task["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["name"] == "work" && !s["item_index"].is_null())
            .map(|s| s["item_index"].as_i64().unwrap())
            .collect()
    };
    let group_of = |task: &Value| -> Value {
        task["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "work" && s["item_index"].is_null())
            .unwrap()
            .clone()
    };
    let counts =
        json!({ "total": 5, "waiting": 0, "running": 0, "done": 5, "failed": 0, "cancelled": 0 });
    for (query, expected) in [
        ("", vec![0, 1, 2, 3, 4]),
        ("?items_limit=2", vec![0, 1]),
        ("?items_offset=3&items_limit=100", vec![3, 4]),
        ("?items_limit=0", vec![]),
        ("?items_limit=999999999", vec![0, 1, 2, 3, 4]),
    ] {
        let (status, body) = show(query).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(items_of(&body["task"]), expected, "{query}");
        let group = group_of(&body["task"]);
        assert_eq!(group["items"], counts, "{query}");
        // The group's output (every item's) is left out of a task read.
        assert!(group["output"].is_null(), "{query}: {group}");
        // Steps that are not fan-outs have no counts.
        let sum = body["task"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "sum")
            .unwrap()
            .clone();
        assert!(
            sum["items"].is_null() && sum["output"] == json!([0, 2, 4, 6, 8]),
            "{sum}"
        );
    }
    for bad in [
        "?items_limit=-1",
        "?items_offset=x",
        "?items_limit=4294967296",
    ] {
        let (status, body) = show(bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    // One item, and the group with its output, read alone.
    let (_, body) = show("").await;
    let item = body["task"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["item_index"] == 3)
        .unwrap()
        .clone();
    let (status, alone) = call(
        &client,
        Method::GET,
        &format!("{base}/steps/{}", item["step_id"]),
        Some(ALL),
        None,
    )
    .await;
    assert_eq!(status, 200, "{alone}");
    assert_eq!(
        (
            alone["task_id"].as_i64(),
            alone["step"]["item_index"].as_i64()
        ),
        (Some(id), Some(3))
    );
    let group = group_of(&body["task"]);
    let (_, alone) = call(
        &client,
        Method::GET,
        &format!("{base}/steps/{}", group["step_id"]),
        Some(ALL),
        None,
    )
    .await;
    assert_eq!(alone["step"]["items"], counts);
    assert_eq!(alone["step"]["output"], json!([0, 2, 4, 6, 8]));
    // The diagrams label the fan-out with its progress.
    for (format, wanted) in [
        ("dot", "complete 5/5 items done"),
        ("mermaid", "complete 5/5 items done"),
    ] {
        let text = client
            .get(format!("{base}/tasks/{id}/diagram?format={format}"))
            .bearer_auth(ALL)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains(wanted), "{format}: {text}");
    }
    // GraphQL: the same window, and each item shown counts as a row.
    let (status, body) = graphql(
        &client,
        &base,
        Some(ALL),
        &format!("{{ task(id: {id}, itemsOffset: 1, itemsLimit: 2) {{ steps {{ name itemIndex items {{ total done failed }} }} }} }}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let steps = body["data"]["task"]["steps"].as_array().unwrap();
    let shown: Vec<_> = steps
        .iter()
        .filter(|s| !s["itemIndex"].is_null())
        .map(|s| s["itemIndex"].as_i64().unwrap())
        .collect();
    assert_eq!(shown, [1, 2], "{body}");
    let group = steps
        .iter()
        .find(|s| s["name"] == "work" && s["itemIndex"].is_null())
        .unwrap();
    assert_eq!(
        group["items"],
        json!({ "total": 5, "done": 5, "failed": 0 })
    );
    let _ = std::fs::remove_file(&log);
}
