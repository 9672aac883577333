//! One OpenAPI document from the routed services' documents, as a client sees the API through
//! the gateway. Pure: the fetched documents and the route table in, the document out.
//!
//! - Paths: each route in manifest order puts its service's paths under the public path
//!   that reaches them ([`RouteTable::public_path`]: `strip_prefix` put back, kept only
//!   when that route is the one taking it). Paths the gateway answers itself
//!   ([`GATEWAY_OWN_PATHS`]) and paths no route reaches are left out; `servers` entries,
//!   which would name the instance, are dropped.
//! - Components: every component of service `S` named `N` becomes `S.N`, and every
//!   `$ref` (and security requirement) of `S` is rewritten to match, so two services'
//!   `Error` schemas cannot clash. Each service's components are added once, however many
//!   routes lead to it.
//! - Operations keep their `operationId` unless another one took it first (then `S.id`,
//!   then `S.id.2`, ...), are tagged with their service, and inherit their document's
//!   top-level `security` when they have none of their own.
//! - Every operation also lists the answers the gateway itself may give on the way
//!   ([`GATEWAY_RESPONSES`]: a refused target, a body too large, no healthy instance, ...),
//!   in the schema `servio-gateway.Error`; where the service lists the same status, either
//!   schema may answer (`anyOf`).
//! - Services whose document could not be had are listed under `x-servio-missing` (and in
//!   `info.description`); when every routed service is missing there is no document.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use crate::gateway::routes::RouteTable;

/// Paths the gateway answers itself: a service's entries for them are not reachable.
pub const GATEWAY_OWN_PATHS: [&str; 2] = ["/health", "/openapi.json"];

/// Where the gateway's own error schema lives among the components.
pub const GATEWAY_ERROR: &str = "servio-gateway.Error";

/// The statuses the gateway itself may answer a routed request with, whatever the operation
/// (see [`crate::gateway::reply::Failure`]).
pub const GATEWAY_RESPONSES: [(u16, &str); 7] = [
    (
        400,
        "From the gateway: a request target it does not pass on ('.' or '..' segments, \
         encoded '/', '\\' or NUL), or a body that broke off",
    ),
    (
        408,
        "From the gateway: the body did not arrive within gateway.request_timeout",
    ),
    (
        413,
        "From the gateway: the body is larger than gateway.max_body",
    ),
    (
        431,
        "From the gateway: the request head is larger than 64 KiB or has more than 100 fields",
    ),
    (
        502,
        "From the gateway: the instance could not be reached or the connection broke",
    ),
    (
        503,
        "From the gateway: no healthy instance, or gateway.max_concurrent requests in flight",
    ),
    (
        504,
        "From the gateway: no answer within the gateway's timeouts",
    ),
];

/// The keys of a path item that are operations.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// One routed service's OpenAPI document, or why the gateway has none.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub service: String,
    pub document: Result<Value, String>,
}

/// The gateway's document for `table`'s routes from the services' `fetched` documents
/// (one per routed service); `None` when there are routes but no document could be had.
pub fn merge(table: &RouteTable, fetched: &[Fetched], version: &str) -> Option<Value> {
    let missing: Vec<&Fetched> = fetched.iter().filter(|f| f.document.is_err()).collect();
    if !fetched.is_empty() && missing.len() == fetched.len() {
        return None;
    }
    let mut merged = Merged::default();
    for route in table.routes() {
        let Some(Ok(document)) = fetched
            .iter()
            .find(|f| f.service == *route.service)
            .map(|f| f.document.as_ref())
        else {
            continue;
        };
        let service = &*route.service;
        merged.components_once(service, document);
        let inherited = document.get("security").cloned();
        let Some(paths) = document.get("paths").and_then(Value::as_object) else {
            continue;
        };
        for (path, item) in paths {
            let Some(public) = table.public_path(route, path) else {
                continue;
            };
            if GATEWAY_OWN_PATHS.contains(&public.as_str()) {
                continue;
            }
            let item = merged.path_item(service, item, inherited.as_ref());
            merged.paths.insert(public, item);
        }
    }
    Some(merged.finish(version, &missing))
}

#[derive(Default)]
struct Merged {
    paths: Map<String, Value>,
    /// Component kind (`schemas`, ...) to its qualified entries.
    components: Map<String, Value>,
    tags: Vec<Value>,
    services: HashSet<String>,
    operation_ids: HashSet<String>,
}

impl Merged {
    /// Adds `service`'s components, qualified, and its tag, unless an earlier route did.
    fn components_once(&mut self, service: &str, document: &Value) {
        if !self.services.insert(service.to_string()) {
            return;
        }
        let description = document["info"]["description"].clone();
        let mut tag = json!({ "name": service });
        if description.is_string() {
            tag["description"] = description;
        }
        self.tags.push(tag);
        let Some(kinds) = document.get("components").and_then(Value::as_object) else {
            return;
        };
        for (kind, entries) in kinds {
            let Some(entries) = entries.as_object() else {
                continue;
            };
            let into = self
                .components
                .entry(kind.clone())
                .or_insert_with(|| json!({}));
            for (name, entry) in entries {
                let mut entry = entry.clone();
                qualify_refs(service, &mut entry);
                into[qualified(service, name)] = entry;
            }
        }
    }

    /// `item` of `service` as the merged document has it.
    fn path_item(&mut self, service: &str, item: &Value, inherited: Option<&Value>) -> Value {
        let mut item = item.clone();
        qualify_refs(service, &mut item);
        let Some(fields) = item.as_object_mut() else {
            return item;
        };
        fields.remove("servers");
        for (method, operation) in fields.iter_mut() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let Some(operation) = operation.as_object_mut() else {
                continue;
            };
            operation.remove("servers");
            if let Some(Value::String(id)) = operation.get("operationId") {
                let id = unique_operation_id(id, service, &mut self.operation_ids);
                operation.insert("operationId".into(), Value::String(id));
            }
            let mut tags = vec![json!(service)];
            if let Some(Value::Array(own)) = operation.get("tags") {
                tags.extend(own.iter().filter(|t| t.as_str() != Some(service)).cloned());
            }
            operation.insert("tags".into(), Value::Array(tags));
            if let Some(security) = inherited.filter(|_| !operation.contains_key("security")) {
                operation.insert("security".into(), security.clone());
            }
            if let Some(security) = operation.get_mut("security") {
                qualify_security(service, security);
            }
            let responses = operation.entry("responses").or_insert_with(|| json!({}));
            add_gateway_responses(responses);
        }
        item
    }

    fn finish(mut self, version: &str, missing: &[&Fetched]) -> Value {
        if !self.paths.is_empty() {
            let schemas = self
                .components
                .entry("schemas")
                .or_insert_with(|| json!({}));
            schemas[GATEWAY_ERROR] = gateway_error_schema();
        }
        let mut description = String::from(
            "Every route of the gateway: each routed service's API under the paths clients \
             use (strip_prefix put back). Components are named `<service>.<name>`. The \
             gateway's own GET /health and GET /openapi.json are not listed.",
        );
        let missing: Vec<Value> = missing
            .iter()
            .map(|f| {
                let reason = f.document.as_ref().err().cloned().unwrap_or_default();
                json!({ "service": f.service, "reason": reason })
            })
            .collect();
        if !missing.is_empty() {
            let names: Vec<String> = missing
                .iter()
                .map(|m| format!("{} ({})", string(&m["service"]), string(&m["reason"])))
                .collect();
            description.push_str(&format!(
                " Missing, their documents could not be fetched: {}.",
                names.join(", ")
            ));
        }
        json!({
            "openapi": "3.1.0",
            "info": { "title": "servio gateway", "version": version, "description": description },
            "paths": self.paths,
            "components": self.components,
            "tags": self.tags,
            "x-servio-missing": missing,
        })
    }
}

/// Adds the gateway's own answers to an operation's `responses`.
fn add_gateway_responses(responses: &mut Value) {
    let Some(responses) = responses.as_object_mut() else {
        return;
    };
    let gateway_ref = json!({ "$ref": format!("#/components/schemas/{GATEWAY_ERROR}") });
    for (status, description) in GATEWAY_RESPONSES {
        let response = responses
            .entry(status.to_string())
            .or_insert_with(|| json!({ "description": "" }));
        if response.get("$ref").is_some() {
            // A shared response of the service's: left as it wrote it.
            continue;
        }
        let schema = &mut response["content"]["application/json"]["schema"];
        *schema = match schema.take() {
            Value::Null => gateway_ref.clone(),
            own => json!({ "anyOf": [own, gateway_ref.clone()] }),
        };
        let text = match response["description"].as_str() {
            Some("") | None => description.to_string(),
            Some(own) => format!("{own}. {description}"),
        };
        response["description"] = Value::String(text);
    }
}

/// What [`crate::gateway::reply::failure`] answers.
fn gateway_error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": { "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": { "type": "string", "examples": ["no_healthy_instance"] },
                "message": { "type": "string" },
                "details": {
                    "type": "object",
                    "required": ["service", "requestId"],
                    "properties": {
                        "service": { "type": ["string", "null"] },
                        "requestId": { "type": "string" }
                    }
                }
            }
        }}
    })
}

fn string(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// `name` of `service`'s components in the merged document.
pub fn qualified(service: &str, name: &str) -> String {
    format!("{service}.{name}")
}

/// Rewrites every local component `$ref` in `value` to the qualified name.
pub fn qualify_refs(service: &str, value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                match field {
                    Value::String(target) if key == "$ref" => {
                        if let Some(rewritten) = qualified_ref(service, target) {
                            *target = rewritten;
                        }
                    }
                    _ => qualify_refs(service, field),
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| qualify_refs(service, item)),
        _ => {}
    }
}

/// `#/components/KIND/NAME...` with NAME qualified; `None` for any other reference.
fn qualified_ref(service: &str, target: &str) -> Option<String> {
    let rest = target.strip_prefix("#/components/")?;
    let (kind, name) = rest.split_once('/')?;
    Some(format!("#/components/{kind}/{}", qualified(service, name)))
}

/// Security requirements name security schemes, which are components: qualify the names.
fn qualify_security(service: &str, security: &mut Value) {
    let Value::Array(requirements) = security else {
        return;
    };
    for requirement in requirements {
        if let Value::Object(schemes) = requirement {
            *schemes = std::mem::take(schemes)
                .into_iter()
                .map(|(name, scopes)| (qualified(service, &name), scopes))
                .collect();
        }
    }
}

/// `wanted` if no operation took it yet, else `service.wanted`, else `service.wanted.N`.
pub fn unique_operation_id(wanted: &str, service: &str, taken: &mut HashSet<String>) -> String {
    let mut id = wanted.to_string();
    if taken.contains(&id) {
        id = qualified(service, wanted);
    }
    let mut n = 2;
    while taken.contains(&id) {
        id = format!("{}.{n}", qualified(service, wanted));
        n += 1;
    }
    taken.insert(id.clone());
    id
}
