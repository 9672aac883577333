//! The gateway's /openapi.json: the merge as a pure function, one table row per rule, then
//! the whole answer from a real gateway in front of real loopback instances (both request
//! paths, a service down, every service down).

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{Harness, call, dead, h2c, http1, upstream};
use crate::balance::{BalanceConfig, ServiceBalancer};
use crate::gateway::openapi::merge::{
    Fetched, GATEWAY_ERROR, GATEWAY_RESPONSES, merge, unique_operation_id,
};
use crate::gateway::reply::Failure;
use crate::gateway::routes::{CompiledRoute, RouteTable};
use crate::manifest::{Balance, Route};

fn compiled(prefix: &str, strip: Option<&str>, service: &str) -> CompiledRoute {
    let balancer = Arc::new(ServiceBalancer::new(service, BalanceConfig::default()));
    CompiledRoute::new(prefix, strip, service, balancer, None)
}

/// A service document with an `Error` schema (every service has one: they must not clash),
/// `paths` each with one GET named `id` answering 200 with `schema` and 404 with `Error`.
fn document(paths: &[(&str, &str, &str)]) -> Value {
    let mut all = serde_json::Map::new();
    for (path, id, schema) in paths {
        all.insert(
            path.to_string(),
            json!({ "get": { "operationId": id, "responses": {
                "200": { "description": "ok", "content": { "application/json": {
                    "schema": { "$ref": format!("#/components/schemas/{schema}") } } } },
                "404": { "description": "unknown", "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/Error" } } } },
            } } }),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "t", "version": "1", "description": "what it does" },
        "paths": all,
        "components": { "schemas": {
            "Error": { "type": "object" },
            "Item": { "type": "object",
                      "properties": { "owner": { "$ref": "#/components/schemas/Error" } } },
        } },
    })
}

fn fetched(service: &str, document: Result<Value, &str>) -> Fetched {
    Fetched {
        service: service.to_string(),
        document: document.map_err(str::to_string),
    }
}

/// Routes of both kinds, and a service reached by two routes.
fn table() -> RouteTable {
    RouteTable::new(vec![
        compiled("/api/orders", Some("/api"), "orders"),
        compiled("/menu", None, "menu"),
        compiled("/catalog", Some("/catalog"), "menu"),
    ])
}

fn both() -> Vec<Fetched> {
    let orders = document(&[
        ("/orders", "listOrders", "Item"),
        ("/orders/{id}", "getOrder", "Item"),
        ("/health", "health", "Item"),
        ("/openapi.json", "openapi", "Item"),
        ("/elsewhere", "elsewhere", "Item"),
    ]);
    let menu = document(&[
        ("/menu/items", "listItems", "Item"),
        ("/", "root", "Item"),
        ("/health", "health", "Item"),
    ]);
    vec![fetched("orders", Ok(orders)), fetched("menu", Ok(menu))]
}

#[test]
fn paths_go_where_clients_reach_them() {
    let merged = merge(&table(), &both(), "9.9.9").expect("a document");
    let paths: Vec<&str> = merged["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    // /api/health, /api/openapi.json and /api/elsewhere are not under /api/orders; menu's
    // /health is the gateway's own, but /catalog/health reaches it; menu's paths appear
    // under each of its routes.
    let mut expected = vec![
        "/api/orders",
        "/api/orders/{id}",
        "/menu/items",
        "/catalog/menu/items",
        "/catalog",
        "/catalog/health",
    ];
    expected.sort_unstable();
    assert_eq!(paths, expected);
    assert_eq!(merged["openapi"], "3.1.0");
    assert_eq!(merged["info"]["version"], "9.9.9");
    assert_eq!(merged["x-servio-missing"], json!([]));
    let tags: Vec<&Value> = merged["tags"].as_array().unwrap().iter().collect();
    assert_eq!(
        tags,
        [
            &json!({ "name": "orders", "description": "what it does" }),
            &json!({ "name": "menu", "description": "what it does" })
        ]
    );
}

#[test]
fn components_are_named_per_service_and_refs_follow() {
    let merged = merge(&table(), &both(), "1").unwrap();
    let schemas = merged["components"]["schemas"].as_object().unwrap();
    let mut names: Vec<&str> = schemas.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "menu.Error",
            "menu.Item",
            "orders.Error",
            "orders.Item",
            GATEWAY_ERROR
        ]
    );
    assert_eq!(
        schemas["menu.Item"]["properties"]["owner"]["$ref"],
        "#/components/schemas/menu.Error"
    );
    let get = &merged["paths"]["/api/orders/{id}"]["get"];
    assert_eq!(
        get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/orders.Item"
    );
    assert_eq!(get["tags"], json!(["orders"]));
    // Every $ref of the merged document resolves.
    let text = merged.to_string();
    for target in text.split("\"$ref\":\"").skip(1) {
        let name = target.split('"').next().unwrap();
        let name = name.trim_start_matches("#/components/schemas/");
        assert!(schemas.contains_key(name), "dangling {name}");
    }
}

#[test]
fn operation_ids_stay_unless_taken() {
    let merged = merge(&table(), &both(), "1").unwrap();
    let id = |path: &str| merged["paths"][path]["get"]["operationId"].clone();
    assert_eq!(id("/api/orders"), "listOrders");
    assert_eq!(id("/menu/items"), "listItems");
    assert_eq!(id("/catalog/menu/items"), "menu.listItems");
    let mut taken = Default::default();
    for expected in ["get", "svc.get", "svc.get.2", "svc.get.3"] {
        assert_eq!(unique_operation_id("get", "svc", &mut taken), expected);
    }
}

#[test]
fn every_operation_lists_the_gateways_own_answers() {
    let merged = merge(&table(), &both(), "1").unwrap();
    let responses = &merged["paths"]["/api/orders"]["get"]["responses"];
    let gateway = json!({ "$ref": format!("#/components/schemas/{GATEWAY_ERROR}") });
    for (status, _) in GATEWAY_RESPONSES {
        let schema = &responses[status.to_string()]["content"]["application/json"]["schema"];
        assert_eq!(schema, &gateway, "{status}");
    }
    // A status the service lists too: either schema answers, both descriptions stay.
    let mut orders = both().remove(0);
    let doc = orders.document.as_mut().unwrap();
    doc["paths"]["/orders"]["get"]["responses"]["503"] = json!({ "description": "Busy",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    let merged = merge(&table(), &[orders], "1").unwrap();
    let busy = &merged["paths"]["/api/orders"]["get"]["responses"]["503"];
    assert_eq!(
        busy["content"]["application/json"]["schema"]["anyOf"],
        json!([{ "$ref": "#/components/schemas/orders.Error" }, gateway])
    );
    assert!(
        busy["description"]
            .as_str()
            .unwrap()
            .starts_with("Busy. From the gateway")
    );
    assert_eq!(responses["200"]["description"], "ok");
}

/// Each answer the gateway may give a routed request has its status in the documents.
#[test]
fn the_gateways_statuses_are_all_listed() {
    let upstream = Failure::Upstream {
        instance: String::new(),
        reason: String::new(),
    };
    for failure in [
        Failure::BadTarget(""),
        Failure::Malformed,
        Failure::HeadersTooLarge,
        Failure::TooLarge { limit: 1 },
        Failure::BodyBroken,
        Failure::BodyTimeout,
        Failure::NoInstance,
        Failure::Overloaded { limit: 1 },
        upstream,
        Failure::Timeout,
    ] {
        let status = failure.status().as_u16();
        assert!(
            GATEWAY_RESPONSES
                .iter()
                .any(|(listed, _)| *listed == status),
            "{failure:?}"
        );
    }
}

#[test]
fn missing_services_are_named_and_none_means_no_document() {
    let mut some = both();
    some[1] = fetched("menu", Err("menu has no healthy instance"));
    let merged = merge(&table(), &some, "1").unwrap();
    assert_eq!(
        merged["x-servio-missing"],
        json!([{ "service": "menu", "reason": "menu has no healthy instance" }])
    );
    assert!(merged["paths"].get("/menu/items").is_none());
    let description = merged["info"]["description"].as_str().unwrap();
    assert!(
        description.contains("menu (menu has no healthy instance)"),
        "{description}"
    );

    let none = vec![fetched("orders", Err("down")), fetched("menu", Err("down"))];
    assert_eq!(merge(&table(), &none, "1"), None);
    let empty = merge(&RouteTable::default(), &[], "1").unwrap();
    assert_eq!(empty["paths"], json!({}));
}

#[test]
fn security_and_servers_follow_the_service() {
    let mut doc = document(&[("/orders", "listOrders", "Item")]);
    doc["security"] = json!([{ "token": [] }]);
    doc["components"]["securitySchemes"] =
        json!({ "token": { "type": "http", "scheme": "bearer" } });
    doc["paths"]["/orders"]["servers"] = json!([{ "url": "http://127.0.0.1:9" }]);
    let merged = merge(&table(), &[fetched("orders", Ok(doc))], "1").unwrap();
    let item = &merged["paths"]["/api/orders"];
    assert!(item.get("servers").is_none());
    assert_eq!(item["get"]["security"], json!([{ "orders.token": [] }]));
    assert!(merged["components"]["securitySchemes"]["orders.token"].is_object());
}

/// An instance serving `document` at /openapi.json.
async fn service_with(document: Value) -> std::net::SocketAddr {
    upstream(Router::new().route(
        "/openapi.json",
        get(move || async move { axum::Json(document) }),
    ))
    .await
}

fn stripped(prefix: &str, strip: &str, service: &str) -> Route {
    Route {
        prefix: prefix.to_string(),
        service: service.to_string(),
        strip_prefix: Some(strip.to_string()),
        balance: Balance::RoundRobin,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_answers_with_every_routed_service_and_names_the_missing() {
    let routes = vec![
        stripped("/api/orders", "/api", "orders"),
        stripped("/api/menu", "/api", "menu"),
    ];
    let gw = Harness::start(routes, |_| {}).await;
    let orders = service_with(document(&[("/orders", "listOrders", "Item")])).await;
    let menu = service_with(document(&[("/menu", "listMenu", "Item")])).await;
    // A dead instance first: the fetch retries on the live one, as a proxied GET would.
    gw.publish("orders", &[("dead", dead()), ("orders-1", orders)]);
    gw.publish("menu", &[("menu-1", menu)]);
    let url = gw.url("/openapi.json");
    for client in [http1(), h2c()] {
        let (status, headers, body) = call(&client, Method::GET, &url, b"").await;
        assert_eq!(status, StatusCode::OK, "{body:?}");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["cache-control"], "no-store");
        let doc: Value = serde_json::from_slice(&body).unwrap();
        let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
        assert_eq!(paths, ["/api/menu", "/api/orders"]);
    }

    gw.publish("menu", &[]);
    let (status, _, body) = call(&http1(), Method::GET, &url, b"").await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["x-servio-missing"][0]["service"], "menu");
    assert_eq!(
        doc["x-servio-missing"][0]["reason"],
        "menu has no healthy instance"
    );

    gw.publish("orders", &[("dead", dead())]);
    let (status, headers, body) = call(&http1(), Method::GET, &url, b"").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "1");
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"]["code"], "openapi_unavailable");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("orders: orders could not answer: dead"),
        "{message}"
    );
    assert!(
        message.contains("menu: menu has no healthy instance"),
        "{message}"
    );

    // Only GET and HEAD are the gateway's: anything else is routed (here, nowhere).
    let (status, _, _) = call(&http1(), Method::POST, &url, b"{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    gw.shut_down().await;
}
