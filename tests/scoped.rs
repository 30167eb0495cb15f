//! Permissions that see the resource: a permission scoped to a namespace
//! (`tasker.task:retry@payments`) or a handler (`...@payments/refund`)
//! covers that handler's tasks, steps and definition only, over REST and
//! GraphQL, and never an operation that is not a handler's.

#[path = "common/http.rs"]
mod http;

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use tasker::api::{ApiConfig, StaticTokens, OPERATIONS};
use tasker::prelude::*;

/// The admin's token.
const ADMIN: &str = "scoped-admin-0123456789abcdef";

/// A refund: one step.
pub struct Refund;

#[task_handler(namespace = "payments", version = "1.0.0")]
impl Refund {
    /// Refunds.
    #[step]
    async fn refund() -> StepResult<u32> {
        Ok(1)
    }
}

/// A charge: one step, beside the refund in `payments`.
pub struct Charge;

#[task_handler(namespace = "payments", version = "1.0.0")]
impl Charge {
    /// Charges.
    #[step]
    async fn charge() -> StepResult<u32> {
        Ok(3)
    }
}

/// A shipment: one step.
pub struct Ship;

#[task_handler(namespace = "shipping", version = "1.0.0")]
impl Ship {
    /// Ships.
    #[step]
    async fn ship() -> StepResult<u32> {
        Ok(2)
    }
}

/// Every permission of an operation that touches one handler.
fn handler_permissions() -> Vec<&'static str> {
    let mut all: Vec<&str> = OPERATIONS
        .iter()
        .filter_map(|op| op.permission())
        .filter(|p| {
            [
                "tasker.task:",
                "tasker.workflow_step:",
                "tasker.handler:",
                "tasker.analytics:",
            ]
            .iter()
            .any(|r| p.starts_with(r))
        })
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// The token holding `permission` scoped to `scope`.
fn scoped_token(permission: &str, scope: &str) -> String {
    format!(
        "scoped-{}-{}-0123456789abcdef",
        permission.replace([':', '.'], "-"),
        scope.replace('/', "-")
    )
}

fn tokens() -> StaticTokens {
    let mut tokens = StaticTokens::new()
        .token("admin", ADMIN, ["*"])
        .token(
            "payments-ops",
            "payments-ops-0123456789abcdef",
            handler_permissions()
                .into_iter()
                .map(|p| format!("{p}@payments"))
                .chain(["tasker.health_status:index@payments".to_owned()]),
        )
        .token(
            "refund-oncall",
            "refund-oncall-0123456789abcdef",
            ["tasker.task:show", "tasker.task:cancel@payments/refund"],
        );
    for permission in handler_permissions() {
        for scope in ["payments", "shipping", "shipping/ship"] {
            tokens = tokens.token(
                format!(
                    "{}@{}",
                    permission.replace(':', "."),
                    scope.replace('/', ".")
                ),
                scoped_token(permission, scope),
                [format!("{permission}@{scope}")],
            );
        }
    }
    tokens
}

async fn call(
    client: &Client,
    method: Method,
    url: &str,
    token: &str,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let (status, text) = http::send(client, method, url, Some(token), body).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn create(client: &Client, base: &str, namespace: &str, name: &str) -> (i64, i64) {
    let body = json!({ "namespace": namespace, "name": name, "context": {} }).to_string();
    let (status, created) = call(
        client,
        Method::POST,
        &format!("{base}/tasks"),
        ADMIN,
        Some(&body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    (
        created["task"]["task_id"].as_i64().unwrap(),
        created["task"]["steps"][0]["step_id"].as_i64().unwrap(),
    )
}

/// Every operation of a handler, with only its permission scoped to
/// another namespace or handler, is refused on a shipping task, step or
/// handler; scoped to shipping (or to `shipping/ship`), it is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_permission_covers_its_handlers_only_on_every_route() {
    let tasker = tasker_diesel::testing::embedded(|b| b).await.unwrap();
    let (base, _) = http::serve(tasker.clone(), ApiConfig::new(tokens())).await;
    let client = Client::new();
    let (task_id, step_id) = create(&client, &base, "shipping", "ship").await;
    let create_body = r#"{"namespace": "shipping", "name": "ship", "context": {}}"#;
    let mut checked = 0;
    for op in OPERATIONS {
        let (Some(rest), Some(permission)) = (op.rest, op.permission()) else {
            continue;
        };
        if !handler_permissions().contains(&permission) {
            continue;
        }
        let url = format!(
            "{base}{}",
            rest.path
                .replace("{task_id}", &task_id.to_string())
                .replace("{step_id}", &step_id.to_string())
                .replace("{namespace}", "shipping")
                .replace("{name}", "ship")
        );
        let method = Method::from_bytes(rest.method.as_bytes()).unwrap();
        let body = (op.id == "create_task").then_some(create_body);
        let (status, refused) = call(
            &client,
            method.clone(),
            &url,
            &scoped_token(permission, "payments"),
            body,
        )
        .await;
        let listed = |body: &Value| -> bool { body.to_string().contains("shipping") };
        if op.id == "list_tasks" || op.id == "list_handlers" {
            // A list answers, without what the caller may not see.
            assert_eq!(status, 200, "{}: {refused}", op.id);
            assert!(!listed(&refused), "{}: {refused}", op.id);
        } else {
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{} {}: {refused}",
                rest.method,
                rest.path
            );
            assert!(
                refused["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("shipping/ship"),
                "{refused}"
            );
        }
        for scope in ["shipping", "shipping/ship"] {
            let (status, allowed) = call(
                &client,
                method.clone(),
                &url,
                &scoped_token(permission, scope),
                body,
            )
            .await;
            assert_ne!(
                status,
                StatusCode::FORBIDDEN,
                "{} @{scope}: {allowed}",
                op.id
            );
            assert_ne!(
                status,
                StatusCode::UNAUTHORIZED,
                "{} @{scope}: {allowed}",
                op.id
            );
            if op.id == "list_tasks" || op.id == "list_handlers" {
                assert!(listed(&allowed), "{} @{scope}: {allowed}", op.id);
            }
        }
        checked += 1;
    }
    assert!(checked >= 14, "{checked} routes checked");
}

/// A namespace's operator sees and acts on its tasks only; a scoped
/// permission never opens an operation that is not a handler's; one
/// scoped to a handler covers no other handler of the namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespaces_operator_sees_and_acts_on_its_tasks_only() {
    let tasker = tasker_diesel::testing::embedded(|b| b).await.unwrap();
    let (base, _) = http::serve(tasker.clone(), ApiConfig::new(tokens())).await;
    let client = Client::new();
    let ops = "payments-ops-0123456789abcdef";
    let (refund, _) = create(&client, &base, "payments", "refund").await;
    let (ship, _) = create(&client, &base, "shipping", "ship").await;

    let (status, page) = call(&client, Method::GET, &format!("{base}/tasks"), ops, None).await;
    assert_eq!(status, 200);
    let ids: Vec<i64> = page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [refund]);
    let (status, _) = call(
        &client,
        Method::POST,
        &format!("{base}/tasks/{ship}/cancel"),
        ops,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, task) = call(
        &client,
        Method::GET,
        &format!("{base}/tasks/{ship}"),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(
        task["task"]["state"], "pending",
        "the refused cancel changed nothing"
    );
    let (status, _) = call(
        &client,
        Method::POST,
        &format!("{base}/tasks/{refund}/cancel"),
        ops,
        None,
    )
    .await;
    assert_eq!(status, 200);
    // `tasker.health_status:index@payments` opens no global operation.
    let (status, _) = call(
        &client,
        Method::GET,
        &format!("{base}/health/status"),
        ops,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The same over GraphQL.
    let graphql = |token: &'static str, query: String| {
        let (client, url) = (client.clone(), format!("{base}/graphql"));
        async move {
            let body = json!({ "query": query }).to_string();
            call(&client, Method::POST, &url, token, Some(&body))
                .await
                .1
        }
    };
    let body = graphql(
        ops,
        "{ tasks { taskId namespace } handlers { namespace name } }".to_owned(),
    )
    .await;
    assert_eq!(
        body["data"]["tasks"],
        json!([{ "taskId": refund, "namespace": "payments" }]),
        "{body}"
    );
    assert_eq!(
        body["data"]["handlers"],
        json!([{ "namespace": "payments", "name": "charge" }, { "namespace": "payments", "name": "refund" }]),
        "{body}"
    );
    let body = graphql(
        ops,
        format!("mutation {{ cancelTask(id: {ship}) {{ state }} }}"),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    let body = graphql(ops, format!("{{ task(id: {ship}) {{ state }} }}")).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    let body = graphql(ops, format!("{{ task(id: {refund}) {{ state }} }}")).await;
    assert_eq!(body["data"]["task"]["state"], "cancelled", "{body}");
    let body = graphql(
        ops,
        r#"mutation { createTask(input: {namespace: "shipping", name: "ship", context: {}}) { taskId } }"#.to_owned(),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );

    // Scoped to one handler: not the others of its namespace.
    let oncall = "refund-oncall-0123456789abcdef";
    let (other_refund, _) = create(&client, &base, "payments", "refund").await;
    let (charge, _) = create(&client, &base, "payments", "charge").await;
    let (status, _) = call(
        &client,
        Method::POST,
        &format!("{base}/tasks/{other_refund}/cancel"),
        oncall,
        None,
    )
    .await;
    assert_eq!(status, 200);
    for other in [charge, ship] {
        let (status, body) = call(
            &client,
            Method::POST,
            &format!("{base}/tasks/{other}/cancel"),
            oncall,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    // Unscoped `tasker.task:show` still shows every task.
    let (status, _) = call(
        &client,
        Method::GET,
        &format!("{base}/tasks/{ship}"),
        oncall,
        None,
    )
    .await;
    assert_eq!(status, 200);
}

/// The same over GraphQL: every field of a handler, with only its
/// permission scoped elsewhere, is refused on a shipping task or step (or
/// leaves shipping out of its list), and allowed with it scoped there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_permission_covers_its_handlers_only_in_every_graphql_field() {
    let tasker = tasker_diesel::testing::embedded(|b| b).await.unwrap();
    let (base, _) = http::serve(tasker.clone(), ApiConfig::new(tokens())).await;
    let client = Client::new();
    let (task_id, step_id) = create(&client, &base, "shipping", "ship").await;
    let query_for = |field: &str| {
        http::graphql_query(
            field,
            task_id,
            step_id,
            r#"{namespace: "shipping", name: "ship", context: {}}"#,
        )
    };
    let mut checked = 0;
    for op in OPERATIONS {
        let (Some(field), Some(permission)) = (op.graphql, op.permission()) else {
            continue;
        };
        if !handler_permissions().contains(&permission) {
            continue;
        }
        let query = json!({ "query": query_for(field) }).to_string();
        let url = format!("{base}/graphql");
        let (_, refused) = call(
            &client,
            Method::POST,
            &url,
            &scoped_token(permission, "payments"),
            Some(&query),
        )
        .await;
        if field == "tasks" || field == "handlers" {
            assert!(refused["data"][field].is_array(), "{field}: {refused}");
            assert!(
                !refused.to_string().contains("shipping"),
                "{field}: {refused}"
            );
        } else {
            assert_eq!(
                refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
                "{field}: {refused}"
            );
        }
        let (_, allowed) = call(
            &client,
            Method::POST,
            &url,
            &scoped_token(permission, "shipping"),
            Some(&query),
        )
        .await;
        assert_ne!(
            allowed["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{field}: {allowed}"
        );
        if field == "tasks" || field == "handlers" {
            assert!(
                allowed.to_string().contains("shipping"),
                "{field}: {allowed}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 11, "{checked} fields checked");
}
