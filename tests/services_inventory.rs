//! inventory-service through the real binary: setting stock, listing, all-or-nothing
//! reservations, idempotent reserve and release, the bad-input table, concurrent
//! reservations on the last units, and durability across SIGKILL.

mod services_support;

use serde_json::{Value, json};
use services_support::{Case, Service, check_cases, delete, get, json};

fn set(inventory: &Service, item: &str, quantity: i64) {
    let (status, body) = json(
        "PUT",
        &inventory.url(&format!("/inventory/{item}")),
        &json!({ "quantity": quantity }),
    );
    assert_eq!(status, 200, "{body}");
}

fn stock(inventory: &Service, item: &str) -> i64 {
    let (status, body) = get(&inventory.url(&format!("/inventory/{item}")));
    assert_eq!(status, 200, "{body}");
    body["quantity"].as_i64().unwrap()
}

fn reserve(inventory: &Service, order: &str, items: &[(&str, i64)]) -> (u16, Value) {
    let items: Vec<Value> = items
        .iter()
        .map(|(id, q)| json!({ "menuItemId": id, "quantity": q }))
        .collect();
    json(
        "POST",
        &inventory.url("/inventory/reservations"),
        &json!({ "orderId": order, "items": items }),
    )
}

#[test]
fn set_get_and_list_stock() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = Service::start("inventory", dir.path());
    set(&inventory, "a", 5);
    let (status, body) = json(
        "POST",
        &inventory.url("/inventory"),
        &json!({ "menuItemId": "b", "quantity": 7 }),
    );
    assert_eq!((status, &body["quantity"]), (200, &json!(7)));
    set(&inventory, "c", 0);
    set(&inventory, "a", 6);
    assert_eq!(stock(&inventory, "a"), 6);

    let (_, page) = get(&inventory.url("/inventory?limit=2"));
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["nextCursor"].as_str().unwrap().to_string();
    let (_, rest) = get(&inventory.url(&format!("/inventory?limit=2&cursor={cursor}")));
    assert_eq!(rest["items"][0]["menuItemId"], "c");
    assert_eq!(rest["nextCursor"], Value::Null);

    let (_, some) = get(&inventory.url("/inventory?menuItemId=c&menuItemId=a"));
    let ids: Vec<&str> = some["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["menuItemId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "c"]);
}

#[test]
fn reservations_are_all_or_nothing_and_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = Service::start("inventory", dir.path());
    set(&inventory, "a", 5);
    set(&inventory, "b", 1);

    // Short on b and on the never-stocked c: 409 names both, nothing is taken.
    let (status, body) = reserve(&inventory, "o1", &[("a", 2), ("b", 2), ("c", 1)]);
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "insufficient_stock");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("b (requested 2, available 1)"),
        "{message}"
    );
    assert!(
        message.contains("c (requested 1, available 0)"),
        "{message}"
    );
    assert!(!message.contains("a ("), "{message}");
    assert_eq!((stock(&inventory, "a"), stock(&inventory, "b")), (5, 1));

    // Repeated lines are merged; a repeat of the same order returns the reservation.
    let (status, first) = reserve(&inventory, "o2", &[("a", 1), ("b", 1), ("a", 1)]);
    assert_eq!(status, 201, "{first}");
    let (status, again) = reserve(&inventory, "o2", &[("a", 2), ("b", 1)]);
    assert_eq!((status, &again), (200, &first));
    assert_eq!((stock(&inventory, "a"), stock(&inventory, "b")), (3, 0));
    let (status, body) = reserve(&inventory, "o2", &[("a", 1)]);
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("reservation_mismatch"))
    );

    // Release gives stock back exactly once, however often it is called.
    let url = inventory.url("/inventory/reservations/o2");
    assert_eq!(delete(&url).0, 204);
    assert_eq!(delete(&url).0, 204);
    assert_eq!((stock(&inventory, "a"), stock(&inventory, "b")), (5, 1));
    assert_eq!(get(&url).1["status"], "released");
    // A late repeat of a released order cannot take stock again.
    let (status, body) = reserve(&inventory, "o2", &[("a", 2), ("b", 1)]);
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("reservation_released"))
    );

    // Releasing an order that never reserved succeeds and blocks a late reservation.
    assert_eq!(delete(&inventory.url("/inventory/reservations/o3")).0, 204);
    assert_eq!(reserve(&inventory, "o3", &[("a", 1)]).0, 409);
    assert_eq!(stock(&inventory, "a"), 5);
    assert_eq!(get(&inventory.url("/inventory/reservations/o9")).0, 404);
}

#[test]
fn two_replicas_on_one_database_never_oversell() {
    let dir = tempfile::tempdir().unwrap();
    // Same folder, so both replicas use the same inventory.db.
    let replicas = [
        Service::start("inventory", dir.path()),
        Service::start("inventory", dir.path()),
    ];
    set(&replicas[0], "last", 10);
    let replicas = &replicas;
    let granted: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let inventory = &replicas[t % 2];
                scope.spawn(move || {
                    (0..4)
                        .filter(|n| {
                            reserve(inventory, &format!("o{t}-{n}"), &[("last", 1)]).0 == 201
                        })
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(granted, 10);
    assert_eq!(stock(&replicas[1], "last"), 0);
}

#[test]
fn bad_input_table() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = Service::start("inventory", dir.path());
    set(&inventory, "a", 3);
    let long = "x".repeat(200);
    let long_path = format!("/inventory/{long}");
    let cases: Vec<Case> = vec![
        (
            "PUT",
            "/inventory/a".into(),
            Some(br#"{"quantity":-1}"#),
            422,
            "validation_failed",
        ),
        (
            "PUT",
            "/inventory/a".into(),
            Some(br#"{"quantity":"3"}"#),
            422,
            "invalid_body",
        ),
        (
            "PUT",
            "/inventory/a".into(),
            Some(br#"{"quantity":1,"extra":1}"#),
            422,
            "invalid_body",
        ),
        (
            "PUT",
            "/inventory/a".into(),
            Some(br#"{}"#),
            422,
            "invalid_body",
        ),
        (
            "PUT",
            "/inventory/a".into(),
            Some(b"{"),
            400,
            "malformed_json",
        ),
        (
            "PUT",
            long_path,
            Some(br#"{"quantity":1}"#),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/inventory".into(),
            Some(br#"{"menuItemId":"","quantity":1}"#),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/inventory".into(),
            Some(br#"{"menuItemId":"a"}"#),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/inventory".into(),
            Some(br#"{"menuItemId":"a","quantity":2000000000}"#),
            422,
            "validation_failed",
        ),
        ("GET", "/inventory/none".into(), None, 404, "not_found"),
        (
            "GET",
            "/inventory?limit=-3".into(),
            None,
            422,
            "validation_failed",
        ),
        (
            "GET",
            "/inventory?menuItem=a".into(),
            None,
            422,
            "unknown_parameter",
        ),
        (
            "POST",
            "/inventory/reservations".into(),
            Some(br#"{"orderId":"o","items":[]}"#),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/inventory/reservations".into(),
            Some(br#"{"orderId":"o","items":[{"menuItemId":"a","quantity":0}]}"#),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/inventory/reservations".into(),
            Some(br#"{"orderId":"o","items":[{"menuItemId":"a","quantity":-2}]}"#),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/inventory/reservations".into(),
            Some(br#"{"orderId":"","items":[{"menuItemId":"a","quantity":1}]}"#),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/inventory/reservations".into(),
            Some(br#"{"orderId":"o","items":{"menuItemId":"a"}}"#),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/inventory/reservations".into(),
            Some(br#"{"orderId":"o"}"#),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/inventory/reservations".into(),
            Some(b"[]"),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/inventory/reservations".into(),
            Some(b"\"x\""),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/inventory/reservations".into(),
            Some(b"nul"),
            400,
            "malformed_json",
        ),
        (
            "GET",
            "/inventory/reservations/nobody".into(),
            None,
            404,
            "not_found",
        ),
        (
            "PUT",
            "/inventory/reservations".into(),
            Some(b"{}"),
            405,
            "method_not_allowed",
        ),
    ];
    check_cases(&inventory, &cases);
    assert_eq!(stock(&inventory, "a"), 3);
}

#[test]
fn acknowledged_reservation_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut inventory = Service::start("inventory", dir.path());
    set(&inventory, "a", 4);
    assert_eq!(reserve(&inventory, "o1", &[("a", 3)]).0, 201);
    inventory.kill_and_restart();
    assert_eq!(stock(&inventory, "a"), 1);
    let (status, body) = get(&inventory.url("/inventory/reservations/o1"));
    assert_eq!((status, &body["status"]), (200, &json!("held")));
}

/// JSON Schema's `"type": "integer"` (what the document says) counts `3.0` as 3: so does
/// the service, in every quantity; `2.5` stays refused.
#[test]
fn whole_quantities_written_with_a_fraction_part_of_zero() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = Service::start("inventory", dir.path());
    let (status, body) = json(
        "PUT",
        &inventory.url("/inventory/a"),
        &json!({ "quantity": 3.0 }),
    );
    assert_eq!((status, &body["quantity"]), (200, &json!(3)), "{body}");
    let (status, held) = json(
        "POST",
        &inventory.url("/inventory/reservations"),
        &json!({ "orderId": "o1", "items": [{ "menuItemId": "a", "quantity": 2.0 }] }),
    );
    assert_eq!(
        (status, &held["items"][0]["quantity"]),
        (201, &json!(2)),
        "{held}"
    );
    assert_eq!(stock(&inventory, "a"), 1);
    let (status, body) = json(
        "PUT",
        &inventory.url("/inventory/a"),
        &json!({ "quantity": 2.5 }),
    );
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("invalid_body"))
    );
}
