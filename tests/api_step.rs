//! API steps against a real local HTTP server that misbehaves on purpose:
//! how each answer (and each missing answer) is classified, what reaches
//! the server (credentials, idempotency keys), caps on bodies, and a
//! handler whose step calls the API, run by the engine on both stores.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tasker::api_step::{ApiClient, ApiConfig, Idempotency};
use tasker::config::{Config, Secret};
use tasker::prelude::*;
use tasker::{Registry, StepState, TaskId, TaskState, Tasker};
use tokio::io::AsyncWriteExt;

/// A request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    at: Instant,
}

/// The misbehaving server: what it saw, by arrival.
#[derive(Clone, Default)]
struct Server {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    /// Serves on a free local port.
    async fn start() -> (Server, String) {
        let server = Server::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(server.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (server, format!("http://{addr}"))
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }
}

fn header(headers: &HeaderMap, name: &str) -> Value {
    headers
        .get(name)
        .map_or(Value::Null, |v| json!(v.to_str().unwrap()))
}

async fn answer(
    axum::extract::State(server): axum::extract::State<Server>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let earlier = server.seen_at(&path).len();
    server.seen.lock().unwrap().push(Seen {
        method: method.clone(),
        path: path.clone(),
        headers: headers.clone(),
        at: Instant::now(),
    });
    let text = |status: StatusCode, body: String| (status, body).into_response();
    match path.as_str() {
        "/v1/echo" => axum::Json(json!({
            "method": method.as_str(),
            "query": uri.query(),
            "authorization": header(&headers, "authorization"),
            "idempotency_key": header(&headers, "idempotency-key"),
            "custom": header(&headers, "x-custom"),
            "body": serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
        }))
        .into_response(),
        "/v1/rate" => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "7")],
            "slow down",
        )
            .into_response(),
        "/v1/unavailable" => {
            let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [("retry-after", at)],
                "maintenance",
            )
                .into_response()
        }
        "/v1/boom" => text(StatusCode::INTERNAL_SERVER_ERROR, "database on fire".into()),
        "/v1/bad" => text(
            StatusCode::BAD_REQUEST,
            format!("{{\"error\":\"amount missing\"}}{}", "x".repeat(100_000)),
        ),
        "/v1/slow" => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            text(StatusCode::OK, "{}".into())
        }
        "/v1/redirect" => (
            StatusCode::FOUND,
            [("location", "https://elsewhere.test/login?token=s3cret")],
        )
            .into_response(),
        "/v1/big" => text(StatusCode::OK, format!("\"{}\"", "y".repeat(2 << 20))),
        "/v1/html" => text(StatusCode::OK, "<html>gateway says hi</html>".into()),
        "/v1/shape" => axum::Json(json!({"id": 5})).into_response(),
        "/v1/nothing" => StatusCode::NO_CONTENT.into_response(),
        "/v1/missing" => text(StatusCode::NOT_FOUND, "{\"gone\":true}".into()),
        "/v1/charges/flaky" if earlier < 2 => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "1")],
            "warming up",
        )
            .into_response(),
        "/v1/charges/flaky" => axum::Json(json!({
            "id": "ch_1",
            "key": header(&headers, "idempotency-key"),
        }))
        .into_response(),
        "/v1/charges/declined" => text(
            StatusCode::BAD_REQUEST,
            "{\"error\":\"card declined\"}".into(),
        ),
        _ => text(StatusCode::NOT_FOUND, format!("no route {path}")),
    }
}

/// A server that writes `head` and `body` as they are, then hangs up: for
/// answers axum would not send (a body cut short, chunks without end).
async fn raw_server(head: &'static str, body: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buf).await;
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

fn client(base: &str, configure: impl FnOnce(&mut ApiConfig)) -> ApiClient {
    let mut config = ApiConfig::new(format!("{base}/v1"));
    configure(&mut config);
    ApiClient::new(config).expect("a valid configuration")
}

fn ctx() -> StepContext<()> {
    StepContext::new(())
        .with_task_id(TaskId(42))
        .with_step_name("charge")
        .with_attempt(2)
}

#[tokio::test]
async fn a_success_is_read_into_the_type_with_credentials_and_an_idempotency_key() {
    let (server, base) = Server::start().await;
    let api = client(&base, |c| {
        c.auth = Some(tasker::api_step::ApiAuth::Bearer(Secret::new("tok-123")));
        c.headers.insert("X-Custom".into(), "from-config".into());
    });
    let answer: Value = api
        .post("echo")
        .json(&json!({"amount": 100}))
        .query(&[("currency", "eur")])
        .send(&ctx())
        .await
        .unwrap();
    assert_eq!(
        answer,
        json!({
            "method": "POST",
            "query": "currency=eur",
            "authorization": "Bearer tok-123",
            "idempotency_key": "tasker-42-charge",
            "custom": "from-config",
            "body": {"amount": 100},
        })
    );
    // A GET is safe: no key. A scope and a per-attempt key.
    let answer: Value = api.get("/echo").send(&ctx()).await.unwrap();
    assert_eq!(answer["idempotency_key"], Value::Null);
    let answer: Value = api
        .put("echo")
        .idempotency_scope("refund")
        .header("X-Custom", "per-request")
        .send(&ctx())
        .await
        .unwrap();
    assert_eq!(answer["idempotency_key"], "tasker-42-charge-refund");
    assert_eq!(answer["custom"], "per-request");
    let per_attempt = client(&base, |c| c.idempotency = Idempotency::PerAttempt);
    let answer: Value = per_attempt.delete("echo").send(&ctx()).await.unwrap();
    assert_eq!(answer["idempotency_key"], "tasker-42-charge-2");
    let off = client(&base, |c| c.idempotency = Idempotency::Off);
    let answer: Value = off.post("echo").send(&ctx()).await.unwrap();
    assert_eq!(answer["idempotency_key"], Value::Null);
    assert_eq!(server.seen_at("/v1/echo").len(), 5);
    assert!(server.seen().iter().all(|s| s.method != Method::OPTIONS));
}

#[tokio::test]
async fn rate_limits_and_unavailability_are_retried_after_the_servers_wait_capped() {
    let (_server, base) = Server::start().await;
    let api = client(&base, |_| {});
    let e = api.get("rate").send::<Value, _>(&ctx()).await.unwrap_err();
    assert!(e.is_retryable());
    assert_eq!(e.class(), "ApiRateLimited");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert!(
        e.message().starts_with(&format!(
            "GET {base}/v1/rate answered 429 Too Many Requests: slow down"
        )),
        "{}",
        e.message()
    );

    let e = api
        .get("unavailable")
        .send::<Value, _>(&ctx())
        .await
        .unwrap_err();
    assert!(e.is_retryable());
    assert_eq!(e.class(), "ApiUnavailable");
    let wait = e.retry_after().unwrap();
    assert!(
        wait > Duration::from_secs(110) && wait <= Duration::from_secs(120),
        "{wait:?}"
    );

    let capped = client(&base, |c| c.retry_after_cap = Duration::from_secs(3));
    let e = capped
        .get("unavailable")
        .send::<Value, _>(&ctx())
        .await
        .unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
}

#[tokio::test]
async fn server_errors_retry_and_client_errors_fail_with_the_body_capped() {
    let (_server, base) = Server::start().await;
    let api = client(&base, |_| {});
    let e = api.post("boom").send::<Value, _>(&ctx()).await.unwrap_err();
    assert!(e.is_retryable());
    assert_eq!(e.class(), "ApiServerError");
    assert!(
        e.message()
            .ends_with("answered 500 Internal Server Error: database on fire"),
        "{}",
        e.message()
    );
    assert_eq!(
        e.retry_after(),
        None,
        "no Retry-After: the step's backoff decides"
    );

    let e = api.post("bad").send::<Value, _>(&ctx()).await.unwrap_err();
    assert!(!e.is_retryable());
    assert_eq!(e.class(), "ApiClientError");
    assert!(
        e.message()
            .contains("answered 400 Bad Request: {\"error\":\"amount missing\"}xxx"),
        "{}",
        &e.message()[..200]
    );
    assert!(e.message().ends_with(" [body cut at 4096 bytes]"));
    assert!(e.message().len() < 4096 + 200, "{}", e.message().len());

    let small = client(&base, |c| c.max_error_body = 16);
    let e = small
        .post("bad")
        .send::<Value, _>(&ctx())
        .await
        .unwrap_err();
    assert!(
        e.message()
            .ends_with(": {\"error\":\"amount [body cut at 16 bytes]"),
        "{}",
        e.message()
    );
}

#[tokio::test]
async fn no_answer_in_time_and_no_server_are_retryable() {
    let (_server, base) = Server::start().await;
    let api = client(&base, |c| c.timeout = Duration::from_millis(300));
    let started = Instant::now();
    let e = api.get("slow").send::<Value, _>(&ctx()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(e.is_retryable());
    assert_eq!(e.class(), "ApiTimeout");
    assert!(
        e.message().contains("got no answer within 300ms"),
        "{}",
        e.message()
    );
    // A request's own timeout wins over the client's.
    let e = client(&base, |_| {})
        .get("slow")
        .timeout(Duration::from_millis(200))
        .send::<Value, _>(&ctx())
        .await
        .unwrap_err();
    assert!(e.message().contains("within 200ms"), "{}", e.message());

    // A port nobody listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let nobody = client(&format!("http://127.0.0.1:{port}"), |_| {});
    let e = nobody
        .get("echo")
        .send::<Value, _>(&ctx())
        .await
        .unwrap_err();
    assert!(e.is_retryable());
    assert_eq!(e.class(), "ApiConnection");
    assert!(e.message().contains("could not connect"), "{}", e.message());
    assert!(
        e.message().to_lowercase().contains("refused"),
        "{}",
        e.message()
    );
}

#[tokio::test]
async fn redirects_are_not_followed_and_never_show_their_query() {
    let (server, base) = Server::start().await;
    let api = client(&base, |c| {
        c.auth = Some(tasker::api_step::ApiAuth::Bearer(Secret::new("tok-123")))
    });
    let e = api
        .get("redirect?session=abc")
        .send::<Value, _>(&ctx())
        .await
        .unwrap_err();
    assert!(!e.is_retryable());
    assert_eq!(e.class(), "ApiRedirect");
    assert!(e.message().starts_with(&format!("GET {base}/v1/redirect answered 302 Found, redirecting to https://elsewhere.test/login;")), "{}", e.message());
    for secret in ["s3cret", "session", "tok-123"] {
        assert!(!e.message().contains(secret), "{}", e.message());
    }
    assert_eq!(server.seen().len(), 1, "followed nowhere");
}

#[tokio::test]
async fn bodies_that_are_too_large_or_not_the_type_fail_permanently() {
    let (_server, base) = Server::start().await;
    let api = client(&base, |c| c.max_response_body = 1 << 20);
    let e = api.get("big").send::<String, _>(&ctx()).await.unwrap_err();
    assert!(!e.is_retryable());
    assert_eq!(e.class(), "ApiResponseTooLarge");
    assert!(
        e.message()
            .contains("a body of 2097154 bytes, over `max_response_body` (1048576 bytes)"),
        "{}",
        e.message()
    );
    assert_eq!(
        client(&base, |_| {})
            .get("big")
            .send::<String, _>(&ctx())
            .await
            .unwrap()
            .len(),
        2 << 20
    );

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Charge {
        id: String,
    }
    let e = api
        .get("shape")
        .send::<Charge, _>(&ctx())
        .await
        .unwrap_err();
    assert!(!e.is_retryable());
    assert_eq!(e.class(), "ApiResponseInvalid");
    assert!(
        e.message()
            .contains("answered 200 with a body that does not fit `"),
        "{}",
        e.message()
    );
    assert!(e.message().contains("::Charge` at `id`: invalid type: integer `5`, expected a string at line 1 column 7; the body: {\"id\":5}"), "{}", e.message());
    let e = api.get("html").send::<Value, _>(&ctx()).await.unwrap_err();
    assert_eq!(e.class(), "ApiResponseInvalid");
    assert!(
        e.message().contains("<html>gateway says hi</html>"),
        "{}",
        e.message()
    );

    // An empty body is `null`: `()` and `Option` take it.
    api.delete("nothing").send::<(), _>(&ctx()).await.unwrap();
    assert_eq!(
        api.get("nothing")
            .send::<Option<Charge>, _>(&ctx())
            .await
            .unwrap()
            .map(|c| c.id),
        None
    );
    // A status the step expects is an answer, not an error.
    let gone = api
        .delete("missing")
        .accept_status(reqwest::StatusCode::NOT_FOUND)
        .send_raw(&ctx())
        .await
        .unwrap();
    assert_eq!(gone.status(), reqwest::StatusCode::NOT_FOUND);
    assert_eq!(gone.json::<Value>().unwrap(), json!({"gone": true}));
}

#[tokio::test]
async fn bodies_without_a_length_are_capped_and_a_body_cut_short_is_retryable() {
    let chunk = format!("10000\r\n{}\r\n", "z".repeat(0x10000));
    let endless = raw_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        chunk.repeat(40).into_bytes(),
    )
    .await;
    let api = client(&endless, |c| c.max_response_body = 1 << 20);
    let e = api
        .get("stream")
        .send::<Value, _>(&ctx())
        .await
        .unwrap_err();
    assert_eq!(e.class(), "ApiResponseTooLarge");
    assert!(
        e.message().contains("more than 1048576 bytes"),
        "{}",
        e.message()
    );

    let cut = raw_server(
        "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n",
        b"{\"id\":".to_vec(),
    )
    .await;
    let e = client(&cut, |_| {})
        .get("x")
        .send::<Value, _>(&ctx())
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(e.class(), "ApiConnection");
}

#[tokio::test]
async fn paths_cannot_leave_the_base_url_and_bad_headers_fail_before_sending() {
    let (server, base) = Server::start().await;
    let api = client(&base, |_| {});
    for path in [
        "../admin",
        "..%2f..",
        "//evil.test/x",
        "http://evil.test/v1/x",
    ] {
        match api.url(path) {
            Err(e) => assert!(e.contains("leads outside `base_url`"), "{path}: {e}"),
            // Percent-encoded dots stay one segment under the base.
            Ok(url) => assert!(
                url.as_str().starts_with(&format!("{base}/v1/")),
                "{path}: {url}"
            ),
        }
    }
    let e = api
        .post("../admin")
        .send::<Value, _>(&ctx())
        .await
        .unwrap_err();
    assert!(!e.is_retryable());
    assert_eq!(e.class(), "ApiRequestInvalid");
    assert!(
        e.message().contains("leads outside `base_url`"),
        "{}",
        e.message()
    );
    let e = api
        .post("echo")
        .header("X-Custom", "two\nlines")
        .send::<Value, _>(&ctx())
        .await
        .unwrap_err();
    assert_eq!(e.class(), "ApiRequestInvalid");
    assert!(
        !e.message().contains("two"),
        "the value is not shown: {}",
        e.message()
    );
    assert!(server.seen().is_empty(), "nothing was sent");
}

#[test]
fn a_client_is_configured_from_yaml_and_shows_no_secret() {
    let api: ApiClient = serde_json::from_value(json!({
        "base_url": "https://pay.test/v1/",
        "auth": {"bearer": "tok-123"},
    }))
    .unwrap();
    assert_eq!(
        api.url("charges").unwrap().as_str(),
        "https://pay.test/v1/charges"
    );
    let shown = format!("{api:?}");
    assert!(
        shown.contains("bearer") && !shown.contains("tok-123"),
        "{shown}"
    );
    let e = serde_json::from_value::<ApiClient>(json!({"base_url": "pay.test"}))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("`base_url`: relative URL without a base"),
        "{e}"
    );
}

// --- a handler whose step calls the API, run by the engine ----------------

/// What to charge.
#[derive(Debug, Serialize, Deserialize)]
pub struct Order {
    /// Which of the server's behaviours.
    pub order: String,
}

/// The API's answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct Charge {
    /// The charge.
    pub id: String,
    /// The idempotency key the server saw.
    pub key: String,
}

/// Charges through the API from its handler_config.
pub struct Payments;

#[task_handler(namespace = "api_step", version = "1.0.0", context = Order)]
impl Payments {
    /// Posts the charge.
    #[step(config = ApiClient, retry_limit = 3)]
    async fn charge(ctx: &StepContext<Order>) -> StepResult<Charge> {
        let api = ctx.handler_config::<ApiClient>()?;
        api.post(&format!("charges/{}", ctx.context().order))
            .json(&json!({"amount": 100}))
            .send(ctx)
            .await
    }
}

fn engine_config(base: &str, token: &str) -> Config {
    let yaml = format!(
        "handlers:
  api_step/payments:
    steps:
      charge:
        handler_config:
          base_url: {base}/v1
          auth: {{bearer: \"${{PAY_TOKEN}}\"}}
          timeout: 5s
"
    );
    let token = token.to_owned();
    Config::from_yaml_str(&yaml, "payments.yaml", move |name| {
        (name == "PAY_TOKEN").then(|| token.clone())
    })
    .expect("a valid configuration")
}

async fn an_api_step_retries_unavailability_as_asked_and_fails_on_a_decline<S: tasker::Store>(
    store: S,
) {
    let (server, base) = Server::start().await;
    let tasker = Tasker::builder(store)
        .registry(Registry::new().with::<Payments>().unwrap())
        .configure(tasker_tests::fast_config)
        .settings(engine_config(&base, "tok-xyz"))
        .build()
        .await
        .expect("engine starts");

    let task = tasker
        .run_task(
            Payments::request(Order {
                order: "flaky".into(),
            }),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    let charge = &task.steps[0];
    assert_eq!(charge.attempts, 3, "two 503s, then the charge");
    let key = format!("tasker-{}-charge", task.task_id);
    assert_eq!(charge.output, Some(json!({"id": "ch_1", "key": key})));
    let seen = server.seen_at("/v1/charges/flaky");
    assert_eq!(seen.len(), 3);
    for s in &seen {
        assert_eq!(
            header(&s.headers, "idempotency-key"),
            json!(key),
            "one key for every attempt"
        );
        assert_eq!(header(&s.headers, "authorization"), json!("Bearer tok-xyz"));
    }
    for pair in seen.windows(2) {
        let gap = pair[1].at - pair[0].at;
        // `Retry-After: 1` beats the test backoff of 50–400 ms.
        assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
    }

    let task = tasker
        .run_task(
            Payments::request(Order {
                order: "declined".into(),
            }),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Error, "{task:?}");
    let charge = &task.steps[0];
    assert_eq!(charge.state, StepState::Error);
    assert_eq!(charge.attempts, 1, "a 400 is not retried");
    let error = charge.last_error.as_ref().unwrap();
    assert_eq!(error.class(), "ApiClientError");
    assert_eq!(
        error.message(),
        format!("POST {base}/v1/charges/declined answered 400 Bad Request: {{\"error\":\"card declined\"}}")
    );
    assert!(
        !format!("{task:?}").contains("tok-xyz"),
        "the token is nowhere in the task"
    );
}

async fn an_unusable_api_configuration_refuses_to_start<S: tasker::Store>(store: S) {
    let config = Config::from_yaml_str(
        "handlers:
  api_step/payments:
    steps:
      charge:
        handler_config:
          base_url: https://shop:hunter2@pay.test
",
        "payments.yaml",
        |_| None,
    )
    .unwrap();
    let error = Tasker::builder(store)
        .registry(Registry::new().with::<Payments>().unwrap())
        .settings(config)
        .build()
        .await
        .err()
        .expect("the engine refuses to start");
    let text = error.to_string();
    assert!(
        text.contains("payments.yaml:5:9: handlers.api_step/payments.steps.charge.handler_config: does not fit `ApiClient`"),
        "{text}"
    );
    assert!(text.contains("`base_url`: holds credentials"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

tasker_tests::on_both_stores!(
    an_api_step_retries_unavailability_as_asked_and_fails_on_a_decline,
    an_unusable_api_configuration_refuses_to_start,
);
