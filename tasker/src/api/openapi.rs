//! The OpenAPI 3.0 document, built from [`OPERATIONS`] and, for every
//! request and response body, from the Rust types the handlers use
//! (schemars), so the document and the server cannot disagree.

use axum::extract::State;
use axum::Json;
use schemars::generate::{Contract, SchemaGenerator, SchemaSettings};
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use super::operations::{Access, Operation, GRAPHQL, OPERATIONS};
use super::responses::{
    AnalysisBody, CreatedBody, HandlerDetail, HandlerIndex, Probe, Status, StepBody, StepChanged,
    TaskBody, TaskPage,
};
use super::tasks::{GRAPHVIZ, MERMAID};
use super::Shared;
use crate::request::TaskRequest;
use crate::state::TaskState;
use crate::store::Store;

pub(super) async fn endpoint<S: Store>(State(api): Shared<S>) -> Json<Value> {
    Json(openapi_document(&api.config.prefix))
}

/// Schemas of bodies: responses as they serialize, requests as they
/// deserialize, all under `#/components/schemas`.
struct Schemas {
    responses: SchemaGenerator,
    requests: SchemaGenerator,
}

impl Schemas {
    fn new() -> Self {
        let settings = SchemaSettings::openapi3();
        Schemas {
            responses: settings
                .clone()
                .with(|s| s.contract = Contract::Serialize)
                .into_generator(),
            requests: settings.into_generator(),
        }
    }

    fn response<T: JsonSchema>(&mut self) -> Value {
        self.responses.subschema_for::<T>().to_value()
    }

    fn request<T: JsonSchema>(&mut self) -> Value {
        self.requests.subschema_for::<T>().to_value()
    }

    fn components(mut self) -> Map<String, Value> {
        let mut all = self.responses.take_definitions(true);
        let mut requests = self.requests.take_definitions(true);
        // Over REST the initiator is the authenticated caller: a body that
        // sets it is refused.
        if let Some(properties) = requests
            .get_mut("TaskRequest")
            .and_then(|r| r.get_mut("properties"))
            .and_then(Value::as_object_mut)
        {
            properties.remove("initiator");
        }
        for schema in requests.values_mut() {
            no_nul_in_strings(schema);
        }
        all.extend(requests);
        all
    }
}

/// Adds [`NO_NUL`] to every string schema of a request body.
fn no_nul_in_strings(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            let is_string = object.get("type") == Some(&Value::from("string"));
            if is_string && !object.contains_key("pattern") && !object.contains_key("enum") {
                object.insert("pattern".to_owned(), Value::from(NO_NUL));
            }
            object.values_mut().for_each(no_nul_in_strings);
        }
        Value::Array(items) => items.iter_mut().for_each(no_nul_in_strings),
        _ => {}
    }
}

/// What one operation takes and answers, beyond the errors every route
/// shares.
struct Shape {
    parameters: Vec<Value>,
    body: Option<(bool, Value)>,
    ok: Vec<(&'static str, Value)>,
    errors: &'static [&'static str],
}

/// Strings the API accepts hold no NUL character (see `tasker::payload`).
const NO_NUL: &str = "^[^\\u0000]*$";

fn text() -> Value {
    json!({ "type": "string", "pattern": NO_NUL })
}

fn json_body(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

fn text_body(types: &[&str]) -> Value {
    let mut content = Map::new();
    for t in types {
        content.insert((*t).to_owned(), json!({ "schema": { "type": "string" } }));
    }
    Value::Object(content)
}

fn path_id(name: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true,
            "schema": { "type": "integer", "format": "int64" } })
}

fn path_name(name: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "schema": text() })
}

fn query(name: &str, schema: Value, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "schema": schema,
            "description": description })
}

fn version_query() -> Value {
    query(
        "version",
        text(),
        "an exact version, a semver requirement (`^2`), or `latest` (the default)",
    )
}

fn format_query() -> Value {
    query(
        "format",
        json!({ "type": "string", "enum": ["mermaid", "dot"], "default": "mermaid" }),
        "the diagram's language",
    )
}

/// The contract of each operation with a REST route, by id.
fn contract(operation: &Operation, s: &mut Schemas) -> Shape {
    let ok = |schema: Value| vec![("200", json_body(schema))];
    let task_id = || vec![path_id("task_id")];
    let step_id = || vec![path_id("step_id")];
    let handler = || vec![path_name("namespace"), path_name("name"), version_query()];
    match operation.id {
        "health_live" => Shape {
            parameters: vec![],
            body: None,
            ok: ok(s.response::<Probe>()),
            errors: &[],
        },
        "health_ready" => Shape {
            parameters: vec![],
            body: None,
            ok: ok(s.response::<Probe>()),
            errors: &["503"],
        },
        "health_status" => Shape {
            parameters: vec![],
            body: None,
            ok: ok(s.response::<Status>()),
            errors: &[],
        },
        "metrics" => Shape {
            parameters: vec![],
            body: None,
            ok: vec![(
                "200",
                text_body(&[
                    "text/plain; version=0.0.4; charset=utf-8",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ]),
            )],
            errors: &[],
        },
        "list_tasks" => Shape {
            parameters: vec![
                query("namespace", text(), "only this namespace"),
                query("name", text(), "only this handler"),
                query("version", text(), "only this exact version"),
                query(
                    "state",
                    s.response::<TaskState>(),
                    "only tasks in this state",
                ),
                query(
                    "annotation_type",
                    json!({ "type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_.-]{0,63}$" }),
                    "only tasks with an annotation of this type",
                ),
                query(
                    "limit",
                    json!({ "type": "integer", "minimum": 0, "maximum": 4_294_967_295_u64, "default": 50 }),
                    "page size; 0 counts as 1 and more than 500 as 500",
                ),
                query(
                    "offset",
                    json!({ "type": "integer", "minimum": 0, "maximum": 4_294_967_295_u64, "default": 0 }),
                    "tasks to skip",
                ),
            ],
            body: None,
            ok: ok(s.response::<TaskPage>()),
            errors: &["400"],
        },
        "create_task" => {
            let created = s.response::<CreatedBody>();
            Shape {
                parameters: vec![],
                body: Some((true, s.request::<TaskRequest>())),
                // `initiator` is the caller, never the body (see below).
                ok: vec![
                    ("201", json_body(created.clone())),
                    ("200", json_body(created)),
                ],
                errors: &["400", "408", "413", "422"],
            }
        }
        "show_task" => Shape {
            parameters: vec![
                path_id("task_id"),
                query(
                    "items_offset",
                    json!({ "type": "integer", "minimum": 0, "maximum": 4_294_967_295_u64, "default": 0 }),
                    "of each fan-out step's items, the first one shown (by item index)",
                ),
                query(
                    "items_limit",
                    json!({ "type": "integer", "minimum": 0, "maximum": 4_294_967_295_u64, "default": 100 }),
                    "how many of each fan-out step's items are shown from `items_offset`; more than 1000 counts as 1000, 0 shows none (each group's `items` still counts them all)",
                ),
            ],
            body: None,
            ok: ok(s.response::<TaskBody>()),
            errors: &["400", "404"],
        },
        "cancel_task" | "retry_task" | "resolve_task" => Shape {
            parameters: task_id(),
            body: None,
            ok: ok(s.response::<TaskBody>()),
            errors: &["400", "404", "409"],
        },
        "task_diagram" => Shape {
            parameters: vec![path_id("task_id"), format_query()],
            body: None,
            ok: vec![("200", text_body(&[MERMAID, GRAPHVIZ]))],
            errors: &["400", "404", "409"],
        },
        "task_analysis" => Shape {
            parameters: task_id(),
            body: None,
            ok: ok(s.response::<AnalysisBody>()),
            errors: &["400", "404", "409"],
        },
        "show_step" => Shape {
            parameters: step_id(),
            body: None,
            ok: ok(s.response::<StepBody>()),
            errors: &["400", "404"],
        },
        "retry_step" | "cancel_step" => Shape {
            parameters: step_id(),
            body: None,
            ok: ok(s.response::<StepChanged>()),
            errors: &["400", "404", "409"],
        },
        "resolve_step" => Shape {
            parameters: step_id(),
            body: Some((
                false,
                json!({ "type": "object", "additionalProperties": false,
                        "properties": { "output": { "description": "the step's output, any JSON" } } }),
            )),
            ok: ok(s.response::<StepChanged>()),
            errors: &["400", "404", "408", "409", "413"],
        },
        "list_handlers" => Shape {
            parameters: vec![],
            body: None,
            ok: ok(s.response::<HandlerIndex>()),
            errors: &[],
        },
        "show_handler" => Shape {
            parameters: handler(),
            body: None,
            ok: ok(s.response::<HandlerDetail>()),
            errors: &["400", "404"],
        },
        "handler_diagram" => Shape {
            parameters: {
                let mut p = handler();
                p.push(format_query());
                p
            },
            body: None,
            ok: vec![("200", text_body(&[MERMAID, GRAPHVIZ]))],
            errors: &["400", "404"],
        },
        "openapi" => Shape {
            parameters: vec![],
            body: None,
            ok: ok(json!({ "type": "object", "description": "this document" })),
            errors: &[],
        },
        "graphql" => Shape {
            parameters: vec![],
            body: Some((
                true,
                json!({ "type": "object", "required": ["query"], "properties": {
                    "query": { "type": "string", "minLength": 1 },
                    "variables": { "type": "object", "nullable": true },
                    "operationName": { "type": "string", "nullable": true } } }),
            )),
            ok: ok(json!({ "type": "object", "description":
                "a GraphQL response: `data` (absent on request errors) and `errors`, each with `extensions.code`",
                "properties": { "data": { "nullable": true }, "errors": { "type": "array", "items": { "type": "object" } } } })),
            errors: &["400", "408", "413"],
        },
        other => unreachable!("operation {other} has a route but no contract in openapi.rs"),
    }
}

/// The OpenAPI 3 document of the API under `prefix`.
pub fn openapi_document(prefix: &str) -> Value {
    let prefix = prefix.trim_end_matches('/');
    let error = json!({ "$ref": "#/components/schemas/Error" });
    let error_body =
        |what: &str| json!({ "description": what, "content": json_body(error.clone()) });
    let mut schemas = Schemas::new();
    let mut paths = Map::new();
    for operation in OPERATIONS {
        let Some(route) = operation.rest else {
            continue;
        };
        if operation.id == GRAPHQL.id && !cfg!(feature = "graphql") {
            continue;
        }
        let contract = contract(operation, &mut schemas);
        let mut responses = Map::new();
        for (status, content) in contract.ok {
            responses.insert(
                status.into(),
                json!({ "description": "OK", "content": content }),
            );
        }
        for status in contract.errors {
            let what = match *status {
                "400" => "malformed request (the message names the parameter or field)",
                "404" => "no such task, step or handler",
                "408" => "the body did not arrive in time",
                "409" => "not allowed in the current state, or the handler is not linked here",
                "413" => "body too large",
                "422" => "unknown handler or a context that does not fit it",
                "503" => "not ready",
                other => other,
            };
            responses.insert((*status).into(), error_body(what));
        }
        responses.insert("431".into(), error_body("request headers too large"));
        responses.insert(
            "500".into(),
            error_body("internal error (details in the server log)"),
        );
        if operation.access != Access::Probe {
            responses.insert(
                "503".into(),
                error_body("busy (see Retry-After), timed out, or not ready"),
            );
        }
        let mut item = json!({
            "operationId": operation.id,
            "summary": operation.summary,
            "parameters": contract.parameters,
        });
        match operation.access {
            Access::Permission(permission) => {
                responses.insert("401".into(), error_body("missing or invalid credentials"));
                responses.insert("403".into(), error_body(&format!("lacks `{permission}`")));
                item["security"] = json!([{ "bearer": [] }]);
                item["x-permission"] = json!(permission);
            }
            Access::Authenticated => {
                responses.insert("401".into(), error_body("missing or invalid credentials"));
                responses.insert(
                    "403".into(),
                    json!({ "description": "every error is a missing permission",
                            "content": json_body(json!({ "type": "object" })) }),
                );
                item["security"] = json!([{ "bearer": [] }]);
                item["x-permission"] = json!("per GraphQL field: see the operations table");
            }
            Access::Probe | Access::Open => item["security"] = json!([]),
        }
        if let Some((required, schema)) = contract.body {
            item["requestBody"] = json!({ "required": required, "content": json_body(schema) });
        }
        item["responses"] = Value::Object(responses);
        let entry = paths
            .entry(format!("{prefix}{}", route.path))
            .or_insert_with(|| json!({}));
        entry[route.method.to_lowercase()] = item;
    }
    let mut components = schemas.components();
    components.insert(
        "Error".into(),
        json!({ "type": "object", "required": ["error"], "additionalProperties": false,
                "properties": { "error": { "type": "object", "required": ["code", "message"],
                    "additionalProperties": false,
                    "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } } }),
    );
    json!({
        "openapi": "3.0.3",
        "info": { "title": "tasker", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Tasks, steps, handlers, diagrams, analysis and health of a tasker deployment. Every operation names its permission in `x-permission`." },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT or API token" } },
            "schemas": components,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_a_contract_and_every_ref_resolves() {
        let doc = openapi_document("/tasker");
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &reference[..reference.find('"').unwrap()];
            assert!(
                schemas.contains_key(name),
                "{name} is referenced but not defined"
            );
        }
        for name in [
            "TaskRecord",
            "StepRecord",
            "TaskState",
            "TaskRequest",
            "Error",
        ] {
            assert!(schemas.contains_key(name), "{name} missing");
        }
        assert_eq!(
            doc["components"]["schemas"]["TaskRequest"]["additionalProperties"],
            false
        );
    }
}
