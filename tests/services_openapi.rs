//! Each service's `/openapi.json` is true: every documented operation is called on the
//! running service, once with the document's own examples and once with ids that exist,
//! and every answer's status must be one the document lists for that operation.

mod services_support;

use std::collections::HashMap;

use serde_json::{Value, json};
use services_support::stack::Stack;
use services_support::{Service, get, json, send};

/// Checks every `$ref` in `doc` points at a schema it defines.
fn refs_resolve(doc: &Value, node: &Value) {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                let name = target.trim_start_matches("#/components/schemas/");
                assert!(
                    doc["components"]["schemas"].get(name).is_some(),
                    "dangling $ref {target}"
                );
            }
            map.values().for_each(|v| refs_resolve(doc, v));
        }
        Value::Array(items) => items.iter().for_each(|v| refs_resolve(doc, v)),
        _ => {}
    }
}

/// Calls every documented operation of `service`, substituting path parameters from
/// `ids` (or the parameter's example when absent); returns how many calls it made.
fn exercise(service: &Service, ids: &HashMap<&str, String>) -> usize {
    exercise_at(service.kind, &|path| service.url(path), ids)
}

fn exercise_at(kind: &str, url: &dyn Fn(&str) -> String, ids: &HashMap<&str, String>) -> usize {
    let (status, doc) = get(&url("/openapi.json"));
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    refs_resolve(&doc, &doc);
    let mut calls = 0;
    for (template, item) in doc["paths"].as_object().expect("paths") {
        let shared = item["parameters"].as_array().cloned().unwrap_or_default();
        for (method, op) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            let mut params = shared.clone();
            params.extend(op["parameters"].as_array().cloned().unwrap_or_default());
            let mut path = template.clone();
            for param in params.iter().filter(|p| p["in"] == "path") {
                let name = param["name"].as_str().unwrap();
                let value = ids
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| param["example"].as_str().expect("example").into());
                path = path.replace(&format!("{{{name}}}"), &value);
            }
            assert!(
                !path.contains('{'),
                "{method} {template}: unfilled parameter"
            );
            let body = &op["requestBody"]["content"]["application/json"]["example"];
            let body = (!body.is_null()).then(|| body.to_string());
            let (status, answer) = send(
                &method.to_uppercase(),
                &url(&path),
                body.as_deref().map(str::as_bytes),
                &[],
            );
            let listed = op["responses"].as_object().expect("responses");
            assert!(
                listed.contains_key(&status.to_string()),
                "{} {method} {path} answered {status}, not documented ({:?}): {answer}",
                kind,
                listed.keys().collect::<Vec<_>>()
            );
            calls += 1;
        }
    }
    calls
}

#[test]
fn menu_document_matches_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let menu = Service::start("menu", dir.path());
    assert!(exercise(&menu, &HashMap::new()) >= 7);
    let (_, item) = json(
        "POST",
        &menu.url("/menu-items"),
        &json!({ "venueId": "v", "name": "Tea", "priceCents": 1 }),
    );
    let ids = HashMap::from([("id", item["id"].as_str().unwrap().to_string())]);
    exercise(&menu, &ids);
}

#[test]
fn inventory_document_matches_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = Service::start("inventory", dir.path());
    assert!(exercise(&inventory, &HashMap::new()) >= 8);
    let ids = HashMap::from([
        ("menuItemId", "item-example".to_string()),
        ("orderId", "order-example".to_string()),
    ]);
    // Stock for the examples, so the second round takes the success paths.
    json(
        "PUT",
        &inventory.url("/inventory/item-example"),
        &json!({ "quantity": 5 }),
    );
    exercise(&inventory, &ids);
}

#[test]
fn order_document_matches_the_service() {
    let stack = Stack::start();
    let (menu, inventory, order) = (&stack.menu, &stack.inventory, &stack.order);
    let order_url = |path: &str| order.url(path);
    assert!(exercise_at("order", &order_url, &HashMap::new()) >= 6);

    let (_, item) = json(
        "POST",
        &menu.url("/menu-items"),
        &json!({ "venueId": "venue-1", "name": "Tea", "priceCents": 1 }),
    );
    let item = item["id"].as_str().unwrap();
    json(
        "PUT",
        &inventory.url(&format!("/inventory/{item}")),
        &json!({ "quantity": 5 }),
    );
    let (status, placed) = json(
        "POST",
        &order.url("/orders"),
        &json!({ "venueId": "venue-1", "items": [{ "menuItemId": item, "quantity": 1 }] }),
    );
    assert_eq!(status, 201, "{placed}");
    let ids = HashMap::from([("id", placed["id"].as_str().unwrap().to_string())]);
    exercise_at("order", &order_url, &ids);
    assert_eq!(
        get(&order.url(&format!("/orders/{}", ids["id"]))).1["status"],
        "confirmed"
    );
}
