//! The OpenAPI document, generated from [`OPERATIONS`](super::OPERATIONS).

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::operations::{GRAPHQL, OPERATIONS};
use super::Shared;
use crate::store::Store;

pub(super) async fn endpoint<S: Store>(State(api): Shared<S>) -> Json<Value> {
    Json(openapi_document(&api.config.prefix))
}

/// The OpenAPI 3 document of the API under `prefix`.
pub fn openapi_document(prefix: &str) -> Value {
    let prefix = prefix.trim_end_matches('/');
    let error = json!({"$ref": "#/components/schemas/Error"});
    let mut paths = serde_json::Map::new();
    for operation in OPERATIONS {
        let Some(route) = operation.rest else {
            continue;
        };
        if operation.id == GRAPHQL.id {
            continue;
        }
        let mut parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        if route.path == "/tasks" && route.method == "GET" {
            for q in ["namespace", "name", "version", "state"] {
                parameters.push(json!({ "name": q, "in": "query", "required": false, "schema": { "type": "string" } }));
            }
            for q in ["limit", "offset"] {
                parameters.push(json!({ "name": q, "in": "query", "required": false, "schema": { "type": "integer", "minimum": 0 } }));
            }
        }
        if route.path.ends_with("/diagram") || route.path.starts_with("/handlers/") {
            parameters.push(json!({ "name": "format", "in": "query", "required": false, "schema": { "type": "string", "enum": ["mermaid", "dot"] } }));
            parameters.push(json!({ "name": "version", "in": "query", "required": false, "schema": { "type": "string" } }));
        }
        let mut responses = serde_json::Map::new();
        responses.insert("200".into(), json!({ "description": "OK", "content": { "application/json": { "schema": { "type": "object" } } } }));
        let content = |status: &str, what: &str| json!({ "description": format!("{status}: {what}"), "content": { "application/json": { "schema": error.clone() } } });
        for (status, what) in [
            ("400", "malformed request"),
            ("404", "not found"),
            ("500", "internal error"),
        ] {
            responses.insert(status.into(), content(status, what));
        }
        let mut item = json!({
            "summary": operation.summary,
            "operationId": operation.id,
            "parameters": parameters,
        });
        if let Some(permission) = operation.permission() {
            responses.insert(
                "401".into(),
                content("401", "missing or invalid credentials"),
            );
            responses.insert(
                "403".into(),
                content("403", &format!("lacks `{permission}`")),
            );
            item["security"] = json!([{ "bearer": [] }]);
            item["x-permission"] = json!(permission);
        } else {
            item["security"] = json!([]);
        }
        if route.method == "POST" {
            responses.insert(
                "409".into(),
                content("409", "not allowed in the current state"),
            );
            responses.insert("413".into(), content("413", "body too large"));
            responses.insert(
                "422".into(),
                content("422", "unknown handler or invalid context"),
            );
            if route.path == "/tasks" {
                responses.insert("201".into(), json!({ "description": "Created", "content": { "application/json": { "schema": { "type": "object" } } } }));
                item["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/TaskRequest" } } } });
            }
            if route.path.ends_with("/resolve") {
                item["requestBody"] = json!({ "required": false, "content": { "application/json": { "schema": { "type": "object", "properties": { "output": {} } } } } });
            }
        }
        item["responses"] = Value::Object(responses);
        let entry = paths
            .entry(format!("{prefix}{}", route.path))
            .or_insert_with(|| json!({}));
        entry[route.method.to_lowercase()] = item;
    }
    #[cfg(feature = "graphql")]
    paths.insert(
        format!("{prefix}{}", GRAPHQL.rest.map_or("/graphql", |r| r.path)),
        json!({ "post": {
            "summary": GRAPHQL.summary,
            "operationId": GRAPHQL.id,
            "security": [{ "bearer": [] }],
            "x-permission": "per operation",
            "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["query"], "properties": { "query": { "type": "string" }, "variables": { "type": "object" }, "operationName": { "type": "string" } } } } } },
            "responses": {
                "200": { "description": "GraphQL response (data and errors with extensions.code)", "content": { "application/json": { "schema": { "type": "object" } } } },
                "400": { "description": "malformed request", "content": { "application/json": { "schema": error.clone() } } },
                "401": { "description": "missing or invalid credentials", "content": { "application/json": { "schema": error.clone() } } },
                "403": { "description": "every error is a missing permission", "content": { "application/json": { "schema": { "type": "object" } } } }
            }
        } }),
    );
    json!({
        "openapi": "3.0.3",
        "info": { "title": "tasker", "version": env!("CARGO_PKG_VERSION"), "description": "Tasks, steps, handlers, diagrams, analysis and health of a tasker deployment. Every operation names its permission in `x-permission`." },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT or API token" } },
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } } },
                "TaskRequest": { "type": "object", "required": ["name"], "properties": {
                    "namespace": { "type": "string", "default": "default" }, "name": { "type": "string" },
                    "version": { "type": "string", "description": "exact version, semver requirement, or latest" },
                    "context": { "type": "object" }, "identity_key": { "type": "string" },
                    "source_system": { "type": "string" }, "reason": { "type": "string" },
                    "tags": { "type": "array", "items": { "type": "string" } } } }
            }
        }
    })
}
