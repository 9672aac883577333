//! Building blocks of each service's OpenAPI 3.1 document: the envelope, the shared error
//! and health schemas, and small helpers that keep every route's entry short.
//!
//! The documents are data (`serde_json::Value`), written next to each service's routes and
//! kept honest by `tests/services_openapi.rs`, which calls every documented operation on a
//! running service and checks the answer's status is one the document lists.

use serde_json::{Map, Value, json};

use super::http::MAX_ID_LEN;
use super::params::MAX_LIMIT;
use super::validate::{ID_PATTERN, NON_BLANK_PATTERN};

/// The whole document for a service: `paths` plus `/health` and `/openapi.json`.
pub fn document(service: &str, version: &str, summary: &str, paths: Value) -> Value {
    let mut all = match paths {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    all.insert(
        "/health".into(),
        json!({ "get": {
            "operationId": "health",
            "summary": "Liveness and readiness: 503 when the database is unusable",
            "responses": {
                "200": body_ref("Healthy", "Health"),
                "503": body_ref("The database is unusable", "Health"),
            }
        }}),
    );
    all.insert(
        "/openapi.json".into(),
        json!({ "get": {
            "operationId": "openapi",
            "summary": "This document",
            "responses": { "200": { "description": "OpenAPI 3.1 document",
                "content": { "application/json": { "schema": { "type": "object" } } } } }
        }}),
    );
    json!({
        "openapi": "3.1.0",
        "info": { "title": service, "version": version, "description": summary },
        "paths": all,
        "components": { "schemas": common_schemas() },
    })
}

fn common_schemas() -> Value {
    json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": { "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": { "type": "string", "examples": ["validation_failed"] },
                    "message": { "type": "string" },
                    "details": {}
                }
            }}
        },
        "Health": {
            "type": "object",
            "required": ["status", "service", "version"],
            "properties": {
                "status": { "enum": ["ok", "unavailable"] },
                "service": { "type": "string" },
                "version": { "type": "string" },
                "instance": { "type": ["string", "null"] }
            }
        }
    })
}

/// A response whose JSON body is `#/components/schemas/{schema}`.
pub fn body_ref(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": {
            "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

/// The error responses of an operation, by status code.
pub fn errors(codes: &[u16]) -> Map<String, Value> {
    codes
        .iter()
        .map(|code| {
            let what = match code {
                400 => "Malformed JSON or query",
                404 => "Unknown id",
                409 => "Conflicts with the current state",
                413 => "Body larger than 1 MiB",
                415 => "Content-Type is not JSON",
                422 => "Validation failed",
                503 => "Storage or a dependency is unavailable",
                _ => "Error",
            };
            (code.to_string(), body_ref(what, "Error"))
        })
        .collect()
}

/// An operation: `ok` is `(status, description, schema)`; `errors` the failure statuses.
/// `body` is `Some((schema, example))` for operations that take a JSON body.
pub fn operation(
    id: &str,
    summary: &str,
    ok: (u16, &str, Option<&str>),
    error_codes: &[u16],
    body: Option<(&str, Value)>,
) -> Value {
    let mut responses = errors(error_codes);
    let (status, description, schema) = ok;
    let success = match schema {
        Some(schema) => body_ref(description, schema),
        None => json!({ "description": description }),
    };
    responses.insert(status.to_string(), success);
    let mut op = json!({ "operationId": id, "summary": summary, "responses": responses });
    if let Some((schema, example)) = body {
        op["requestBody"] = json!({
            "required": true,
            "content": { "application/json": {
                "schema": { "$ref": format!("#/components/schemas/{schema}") },
                "example": example,
            }}
        });
    }
    op
}

/// An id, as [`crate::services::validate::id`] checks it.
pub fn id_schema() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": MAX_ID_LEN, "pattern": ID_PATTERN })
}

/// Free text of at most `max` characters, as [`crate::services::validate::text`] checks it;
/// `required` text must not be blank.
pub fn text_schema(max: usize, required: bool) -> Value {
    let mut schema = json!({ "type": "string", "maxLength": max });
    if required {
        schema["minLength"] = json!(1);
        schema["pattern"] = json!(NON_BLANK_PATTERN);
    }
    schema
}

/// `schema` (a string schema) that also allows `null`.
pub fn or_null(mut schema: Value) -> Value {
    schema["type"] = json!(["string", "null"]);
    schema
}

/// A path parameter: an id, with the example the contract test substitutes.
pub fn path_param(name: &str, example: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true,
            "schema": id_schema(), "example": example })
}

/// A query parameter that may be repeated (`?id=a&id=b`) up to `max` times, each an id.
pub fn repeated_ids_param(name: &str, max: usize, description: &str) -> Value {
    let mut param = query_param(
        name,
        json!({ "type": "array", "items": id_schema(), "maxItems": max }),
        description,
    );
    param["style"] = json!("form");
    param["explode"] = json!(true);
    param
}

/// An optional query parameter.
pub fn query_param(name: &str, schema: Value, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false,
            "schema": schema, "description": description })
}

/// `limit` and `cursor`, shared by every list route.
pub fn page_params() -> Vec<Value> {
    vec![
        query_param(
            "limit",
            json!({ "type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                    "default": super::params::DEFAULT_LIMIT }),
            "Page size",
        ),
        query_param(
            "cursor",
            json!({ "type": "string", "minLength": 1, "maxLength": MAX_ID_LEN }),
            "Opaque `nextCursor` of the previous page",
        ),
    ]
}

/// Schema of a page of `item` records.
pub fn listing_schema(item: &str) -> Value {
    json!({
        "type": "object",
        "required": ["items", "nextCursor"],
        "properties": {
            "items": { "type": "array", "items": { "$ref": format!("#/components/schemas/{item}") } },
            "nextCursor": { "type": ["string", "null"] }
        }
    })
}

/// Adds a service's own schemas to `document`'s components.
pub fn with_schemas(mut document: Value, schemas: Value) -> Value {
    if let (Some(all), Value::Object(extra)) =
        (document["components"]["schemas"].as_object_mut(), schemas)
    {
        all.extend(extra);
    }
    document
}
