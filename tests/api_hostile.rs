//! The HTTP API against a hostile caller, over a real loopback server
//! (`tasker::api::serve`) and real clients: tokens are secrets and never
//! identities, the audit trail cannot be forged, create-only callers learn
//! nothing of others' tasks, GraphQL cost is bounded, slow or idle
//! connections are cut, bad bytes get 4xx on both stores, and every error
//! is JSON.

#[path = "common/http.rs"]
mod http;

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use tasker::api::{ApiConfig, ApiLimits, JwtAuthenticator, StaticTokens};
use tasker::{Store, Tasker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use http::serve;

const ADMIN: &str = "admin-secret-token-0123456789abcdef";
const READER: &str = "reader-secret-token-0123456789abcdef";
const CREATOR: &str = "creator-secret-token-0123456789abcdef";

fn tokens() -> StaticTokens {
    StaticTokens::parse(&format!(
        "ops:{ADMIN}:*;\n\
         # read-only dashboards\n\
         reader:{READER}:tasker.task:index,tasker.task:show,tasker.workflow_step:show;\
         producer:{CREATOR}:tasker.task:create"
    ))
    .unwrap()
}

/// One request; every answer must be JSON.
async fn call(
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let (status, text) = http::send(&Client::new(), method, url, token, body).await;
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("a {status} response that is not JSON: {text:?}"));
    (status, body)
}

async fn sqlite_engine() -> Tasker<tasker_diesel::SqliteStore> {
    tasker_diesel::testing::embedded(|b| b).await.unwrap()
}

const DIAMOND: &str = r#"{"namespace": "tests", "name": "diamond", "context": {"value": 1}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_a_secret_never_an_identity() {
    let tasker = sqlite_engine().await;
    let (base, _) = serve(tasker.clone(), ApiConfig::new(tokens())).await;
    let (status, created) = call(
        Method::POST,
        &format!("{base}/tasks"),
        Some(ADMIN),
        Some(DIAMOND),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["task_id"].as_i64().unwrap();
    let (_, _) = call(
        Method::POST,
        &format!("{base}/tasks/{id}/cancel"),
        Some(ADMIN),
        None,
    )
    .await;

    // What a read-only caller can see: the name, never the token.
    let (status, list) = call(Method::GET, &format!("{base}/tasks"), Some(READER), None).await;
    assert_eq!(status, 200);
    assert_eq!(list["tasks"][0]["initiator"], "ops");
    let (_, shown) = call(
        Method::GET,
        &format!("{base}/tasks/{id}"),
        Some(READER),
        None,
    )
    .await;
    for text in [list.to_string(), shown.to_string()] {
        assert!(!text.contains(ADMIN), "the admin token leaked: {text}");
    }
    // The audit trail names the principal.
    let trail = tasker.transitions(tasker::TaskId(id)).await.unwrap();
    assert!(
        trail.iter().all(|t| t.actor.as_deref() == Some("ops")),
        "{trail:?}"
    );
    // Errors never echo the token either.
    let (status, body) = call(
        Method::GET,
        &format!("{base}/tasks"),
        Some("wrong-token-of-some-length"),
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert!(!body.to_string().contains("wrong-token"), "{body}");
    // Configuration errors name the entry, not the secret.
    let err = StaticTokens::parse("ops:tooshort:*").unwrap_err();
    assert!(!err.contains("tooshort"), "{err}");
    let err = StaticTokens::parse(&format!("ops:{ADMIN}:*;other:{ADMIN}:*")).unwrap_err();
    assert!(
        !err.contains(ADMIN) && err.contains("another name"),
        "{err}"
    );
    assert!(!format!("{:?}", tokens()).contains(ADMIN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_initiator_is_the_caller_and_cannot_be_forged() {
    let tasker = sqlite_engine().await;
    let (base, _) = serve(tasker.clone(), ApiConfig::new(tokens())).await;
    let forged =
        r#"{"namespace": "tests", "name": "diamond", "context": {"value": 1}, "initiator": "ops"}"#;
    let (status, body) = call(
        Method::POST,
        &format!("{base}/tasks"),
        Some(CREATOR),
        Some(forged),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("initiator"),
        "{body}"
    );
    assert!(
        tasker.tasks(&Default::default()).await.unwrap().is_empty(),
        "nothing written"
    );
    let labelled = r#"{"namespace": "tests", "name": "diamond", "context": {"value": 1}, "source_system": "billing"}"#;
    let (status, body) = call(
        Method::POST,
        &format!("{base}/tasks"),
        Some(CREATOR),
        Some(labelled),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let task = tasker
        .task(tasker::TaskId(body["task_id"].as_i64().unwrap()))
        .await
        .unwrap();
    assert_eq!(task.initiator.as_deref(), Some("producer"));
    assert_eq!(task.source_system.as_deref(), Some("billing"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_only_caller_learns_only_the_id_of_an_existing_task() {
    let tasker = sqlite_engine().await;
    let (base, _) = serve(tasker.clone(), ApiConfig::new(tokens())).await;
    let secret = r#"{"namespace": "tests", "name": "diamond", "context": {"value": 424242}, "identity_key": "order-9"}"#;
    let (status, first) = call(
        Method::POST,
        &format!("{base}/tasks"),
        Some(ADMIN),
        Some(secret),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        first["task"]["context"]["value"], 424242,
        "the admin may see it"
    );
    let again = r#"{"namespace": "tests", "name": "diamond", "context": {"value": 1}, "identity_key": "order-9"}"#;
    let (status, body) = call(
        Method::POST,
        &format!("{base}/tasks"),
        Some(CREATOR),
        Some(again),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "created": false, "task_id": first["task_id"] })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_cost_counts_list_sizes_and_rows_are_capped() {
    let tasker = sqlite_engine().await;
    let (base, _) = serve(tasker.clone(), ApiConfig::new(tokens())).await;
    let graphql = |token: &'static str, query: String| {
        let url = format!("{base}/graphql");
        async move {
            call(
                Method::POST,
                &url,
                Some(token),
                Some(&json!({ "query": query }).to_string()),
            )
            .await
        }
    };
    // 160 aliases of 500 tasks each: refused before anything is read.
    let aliases: String = (0..160)
        .map(|i| format!("a{i}: tasks(limit: 500) {{ context }} "))
        .collect();
    let started = std::time::Instant::now();
    let (status, body) = graphql(ADMIN, format!("{{ {aliases} }}")).await;
    assert_eq!(status, 200);
    assert!(body["data"].is_null(), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("complex"),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // Within the cost limit but over the row cap.
    let (_, body) = graphql(ADMIN, "{ a: tasks(limit: 500) { taskId } b: tasks(limit: 500) { taskId } c: tasks(limit: 500) { taskId } }".into()).await;
    let codes: Vec<&Value> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["extensions"]["code"])
        .collect();
    assert!(codes.contains(&&json!("TOO_MANY_ROWS")), "{body}");
    // An ordinary query passes.
    let (_, body) = graphql(ADMIN, "{ tasks(limit: 10) { taskId state } }".into()).await;
    assert!(body.get("errors").is_none(), "{body}");
    // Introspection needs its permission; with it, a client's standard
    // introspection query works.
    let (_, body) = graphql(READER, "{ __schema { queryType { name } } }".into()).await;
    assert!(
        body["data"]["__schema"].is_null(),
        "introspection without permission: {body}"
    );
    let (_, body) = graphql(ADMIN, INTROSPECTION.into()).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
}

/// The query GraphiQL and most clients send to load a schema.
const INTROSPECTION: &str = "query IntrospectionQuery { __schema { queryType { name } mutationType { name } subscriptionType { name } types { ...FullType } directives { name description locations args { ...InputValue } } } }
fragment FullType on __Type { kind name description fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason } inputFields { ...InputValue } interfaces { ...TypeRef } enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason } possibleTypes { ...TypeRef } }
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_cut_and_their_number_is_bounded() {
    let tasker = sqlite_engine().await;
    let mut config = ApiConfig::new(tokens());
    let mut limits = ApiLimits::default();
    limits.header_read_timeout = Duration::from_millis(500);
    limits.body_timeout = Duration::from_millis(500);
    limits.max_connections = 2;
    config.limits = limits;
    let (base, addr) = serve(tasker.clone(), config).await;

    // Headers that stop half-way: the server hangs up.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /tasker/tasks HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection was not closed");

    // An unauthenticated body that never arrives: 401, never 408 (which
    // would mean the server waited for the body before authenticating).
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"POST /tasker/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        .await
        .unwrap();
    let mut head = vec![0u8; 12];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut head))
        .await
        .expect("answered")
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 401");
    drop(stream);

    // An authenticated body that never arrives: 408 after the body timeout.
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(format!("POST /tasker/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nContent-Length: 1000\r\n\r\n{{").as_bytes())
        .await
        .unwrap();
    let mut head = vec![0u8; 12];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut head))
        .await
        .expect("answered")
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 408");
    drop(stream);
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Two idle connections fill the server; a third client waits until the
    // idle ones are cut.
    let idle_a = TcpStream::connect(&addr).await.unwrap();
    let idle_b = TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let waiting = Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap()
        .get(format!("{base}/health/live"))
        .send()
        .await;
    assert!(waiting.is_err(), "served beyond the connection limit");
    drop((idle_a, idle_b));
    let (status, _) = call(Method::GET, &format!("{base}/health/live"), None, None).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_json() {
    let tasker = sqlite_engine().await;
    let (base, _) = serve(tasker, ApiConfig::new(tokens())).await;
    let (status, body) = call(Method::DELETE, &format!("{base}/tasks"), Some(ADMIN), None).await;
    assert_eq!(status, 405);
    assert_eq!(body["error"]["code"], "method_not_allowed");
    let mut request = Client::new()
        .get(format!("{base}/tasks"))
        .bearer_auth(ADMIN);
    for n in 0..80 {
        request = request.header(format!("x-filler-{n}"), "y");
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 431);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "headers_too_large");
    let (status, body) = call(Method::GET, &format!("{base}/nowhere"), None, None).await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_secrets_must_be_long_and_nbf_is_checked() {
    assert!(JwtAuthenticator::hs256(b"", "iss", "aud").is_err());
    assert!(JwtAuthenticator::hs256(b"31-bytes-is-not-quite-enough!!!", "iss", "aud").is_err());
    let secret = b"a-secret-of-at-least-thirty-two-bytes";
    let tasker = sqlite_engine().await;
    let (base, _) = serve(
        tasker,
        ApiConfig::new(JwtAuthenticator::hs256(secret, "iss", "aud").unwrap()),
    )
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = |nbf: u64| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &json!({ "sub": "svc", "iss": "iss", "aud": "aud", "exp": now + 600, "nbf": nbf, "permissions": ["*"] }),
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap()
    };
    let (status, body) = call(
        Method::GET,
        &format!("{base}/tasks"),
        Some(&token(now + 300)),
        None,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("nbf"),
        "{body}"
    );
    let (status, _) = call(
        Method::GET,
        &format!("{base}/tasks"),
        Some(&token(now - 10)),
        None,
    )
    .await;
    assert_eq!(status, 200);
}

async fn nul_bytes_are_a_4xx_naming_the_field<S: Store>(store: S) {
    let tasker = tasker_tests::tasker(store, |b| b).await;
    let (base, _) = serve(tasker.clone(), ApiConfig::new(tokens())).await;
    let (status, body) = call(
        Method::GET,
        &format!("{base}/tasks?namespace=te%00sts"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("namespace"),
        "{body}"
    );
    let nul =
        r#"{"namespace": "tests", "name": "diamond", "context": {"value": 1, "note": "a\u0000b"}}"#;
    let (status, body) = call(
        Method::POST,
        &format!("{base}/tasks"),
        Some(ADMIN),
        Some(nul),
    )
    .await;
    assert!(status.is_client_error(), "{status}: {body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("note"),
        "{body}"
    );
    let key = r#"{"namespace": "tests", "name": "diamond", "context": {"value": 1}, "identity_key": "k\u0000"}"#;
    let (status, body) = call(
        Method::POST,
        &format!("{base}/tasks"),
        Some(ADMIN),
        Some(key),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("identity_key"),
        "{body}"
    );
    assert!(tasker.tasks(&Default::default()).await.unwrap().is_empty());
    // A resolve output with a NUL, on a real step.
    let (_, created) = call(
        Method::POST,
        &format!("{base}/tasks"),
        Some(ADMIN),
        Some(DIAMOND),
    )
    .await;
    let step = created["task"]["steps"][0]["step_id"].as_i64().unwrap();
    let (status, body) = call(
        Method::POST,
        &format!("{base}/steps/{step}/resolve"),
        Some(ADMIN),
        Some(r#"{"output": {"x": "\u0000"}}"#),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("output.x"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_bytes_are_a_4xx_naming_the_field_on_postgres() {
    let (store, _db) = tasker_tests::postgres().await;
    nul_bytes_are_a_4xx_naming_the_field(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_bytes_are_a_4xx_naming_the_field_on_sqlite() {
    nul_bytes_are_a_4xx_naming_the_field(tasker_tests::sqlite().await).await;
}

/// Heavy API load on a small pool: the API takes at most its share of
/// connections (others wait or get 503), and the workers finish their
/// tasks meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_load_cannot_starve_the_workers() {
    let db = tasker_diesel::testing::TestDatabase::create()
        .await
        .unwrap();
    let options = tasker_diesel::PgOptions {
        pool_size: 4,
        ..Default::default()
    };
    let store = tasker_diesel::PgStore::connect_with(db.url(), options)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let tasker = tasker_tests::tasker(store, |b| b).await;
    let mut config = ApiConfig::new(tokens());
    config.limits.max_concurrent_requests = 2;
    config.limits.queue_timeout = Duration::from_millis(200);
    let (base, _) = serve(tasker.clone(), config).await;
    let mut ids = Vec::new();
    for n in 0..30 {
        let request = tasker::TaskRequest::new("tests", "diamond", json!({ "value": n }));
        ids.push(tasker.create_task(request).await.unwrap().task_id());
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..24 {
        let url = format!("{base}/graphql");
        let stop = Arc::clone(&stop);
        load.push(tokio::spawn(async move {
            let client = Client::new();
            let mut statuses = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let response = client
                    .post(&url)
                    .bearer_auth(ADMIN)
                    .json(&json!({ "query": "{ tasks(limit: 300) { taskId context steps { name state } } }" }))
                    .send()
                    .await
                    .unwrap();
                statuses.push(response.status().as_u16());
            }
            statuses
        }));
    }
    let worker = tasker.start_worker();
    for id in &ids {
        let task = tasker
            .wait_for_task(*id, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(task.state, tasker::TaskState::Complete);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut all = Vec::new();
    for handle in load {
        all.extend(handle.await.unwrap());
    }
    worker.shutdown().await;
    assert!(!all.is_empty());
    assert!(all.iter().all(|s| *s == 200 || *s == 503), "{all:?}");
}
