//! A real server and a real client for the API tests (included by
//! `api.rs` and `api_hostile.rs`).

use reqwest::{Client, Method, StatusCode};
use tasker::api::ApiConfig;
use tasker::{Store, Tasker};

/// Serves the API with `tasker::api::serve` on a free loopback port;
/// returns its base URL (`http://addr/tasker`) and the bare address.
pub(crate) async fn serve<S: Store>(tasker: Tasker<S>, config: ApiConfig) -> (String, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = config.limits.clone();
    let app = tasker::api::router(tasker, config);
    tokio::spawn(async move {
        tasker::api::serve(listener, app, &limits, std::future::pending())
            .await
            .unwrap()
    });
    (format!("http://{addr}/tasker"), addr.to_string())
}

/// Sends one request, with a bearer token and a JSON body when given;
/// returns the status and the body text.
pub(crate) async fn send(
    client: &Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, String) {
    let mut request = client.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// A query of GraphQL field `field` on task `task_id` and step `step_id`
/// (`createTask` with `create`'s `{namespace: .., name: .., context: ..}`).
#[allow(
    dead_code,
    reason = "not every test that includes this file uses GraphQL"
)]
pub(crate) fn graphql_query(field: &str, task_id: i64, step_id: i64, create: &str) -> String {
    match field {
        "tasks" => "{ tasks { taskId namespace } }".to_owned(),
        "task" => format!("{{ task(id: {task_id}) {{ taskId }} }}"),
        "step" => format!("{{ step(id: {step_id}) {{ name }} }}"),
        "handlers" => "{ handlers { namespace name } }".to_owned(),
        "createTask" => format!("mutation {{ createTask(input: {create}) {{ taskId }} }}"),
        "cancelTask" => format!("mutation {{ cancelTask(id: {task_id}) {{ state }} }}"),
        "retryTask" => format!("mutation {{ retryTask(id: {task_id}) {{ state }} }}"),
        "resolveTask" => format!("mutation {{ resolveTask(id: {task_id}) {{ state }} }}"),
        "retryStep" => format!("mutation {{ retryStep(id: {step_id}) }}"),
        "cancelStep" => format!("mutation {{ cancelStep(id: {step_id}) }}"),
        "resolveStep" => format!("mutation {{ resolveStep(id: {step_id}, output: 1) }}"),
        other => panic!("no query for {other}: add one"),
    }
}
