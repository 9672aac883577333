//! order-service through the real binaries (menu, inventory and order processes found
//! through a registry): placing, menu checks, idempotency, the status machine and the
//! bad-input table. Failure and recovery paths are in `services_order_recovery.rs`.

mod services_support;

use serde_json::{Value, json};
use services_support::stack::Stack;
use services_support::{Case, check_cases, get, json, send};

#[test]
fn placing_an_order_takes_stock_and_snapshots_prices() {
    let stack = Stack::start();
    let tea = stack.item("v1", "Tea", 300, 10);
    let bun = stack.item("v1", "Bun", 125, 5);
    let (status, order) = stack.place("v1", &[(&tea, 2), (&bun, 3)], None);
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["status"], "pending");
    assert_eq!(order["totalCents"], 975);
    assert_eq!(order["items"][1]["unitPriceCents"], 125);
    assert_eq!((stack.stock(&tea), stack.stock(&bun)), (8, 2));

    // A later price change does not touch the placed order.
    let (status, _) = json(
        "PATCH",
        &stack.menu.url(&format!("/menu-items/{tea}")),
        &json!({ "priceCents": 999 }),
    );
    assert_eq!(status, 200);
    let id = order["id"].as_str().unwrap();
    assert_eq!(
        get(&stack.order.url(&format!("/orders/{id}"))),
        (200, order.clone())
    );
    assert_eq!(stack.orders("v1"), [order]);
}

#[test]
fn insufficient_stock_is_409_and_changes_nothing() {
    let stack = Stack::start();
    let tea = stack.item("v1", "Tea", 300, 10);
    let bun = stack.item("v1", "Bun", 125, 1);
    let (status, body) = stack.place("v1", &[(&tea, 2), (&bun, 3)], None);
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("insufficient_stock")),
        "{body}"
    );
    assert!(body["error"]["message"].as_str().unwrap().contains(&bun));
    assert_eq!((stack.stock(&tea), stack.stock(&bun)), (10, 1));
    assert!(stack.orders("v1").is_empty());
}

#[test]
fn menu_checks_name_the_offending_items() {
    let stack = Stack::start();
    let tea = stack.item("v1", "Tea", 300, 10);
    let other = stack.item("v2", "Pie", 500, 10);
    let (status, body) = stack.place("v1", &[(&tea, 1), ("ghost", 1)], None);
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("unknown_menu_item"))
    );
    assert_eq!(body["error"]["details"]["items"], json!(["ghost"]));
    let (status, body) = stack.place("v1", &[(&other, 1)], None);
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("menu_item_wrong_venue"))
    );
    let (status, _) = json(
        "PATCH",
        &stack.menu.url(&format!("/menu-items/{tea}")),
        &json!({ "available": false }),
    );
    assert_eq!(status, 200);
    let (status, body) = stack.place("v1", &[(&tea, 1)], None);
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("menu_item_unavailable"))
    );
    assert_eq!(stack.stock(&tea), 10);
    assert!(stack.orders("v1").is_empty());
}

#[test]
fn same_idempotency_key_places_one_order() {
    let stack = Stack::start();
    let tea = stack.item("v1", "Tea", 300, 10);
    let (status, first) = stack.place("v1", &[(&tea, 2)], Some("k-1"));
    assert_eq!(status, 201, "{first}");
    let (status, again) = stack.place("v1", &[(&tea, 2)], Some("k-1"));
    assert_eq!((status, &again), (201, &first));
    assert_eq!(stack.stock(&tea), 8);
    assert_eq!(stack.orders("v1").len(), 1);

    let (status, body) = stack.place("v1", &[(&tea, 3)], Some("k-1"));
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("idempotency_key_reused"))
    );

    // Concurrent duplicates still make one order.
    let stack = &stack;
    let tea = tea.as_str();
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| scope.spawn(move || stack.place("v1", &[(tea, 1)], Some("k-2"))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ids: std::collections::BTreeSet<&str> = answers
        .iter()
        .filter(|(status, _)| *status == 201)
        .map(|(_, order)| order["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    for (status, body) in &answers {
        assert!(
            *status == 201 || body["error"]["code"] == "order_in_progress",
            "{body}"
        );
    }
    assert_eq!(stack.stock(tea), 7);
    assert_eq!(stack.orders("v1").len(), 2);
}

#[test]
fn status_moves_along_the_machine_and_cancel_releases_stock() {
    let stack = Stack::start();
    let tea = stack.item("v1", "Tea", 300, 10);
    let (_, order) = stack.place("v1", &[(&tea, 4)], None);
    let id = order["id"].as_str().unwrap();
    let (status, body) = stack.set_status(id, "ready");
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("invalid_transition"))
    );
    for next in ["confirmed", "preparing"] {
        let (status, body) = stack.set_status(id, next);
        assert_eq!((status, &body["status"]), (200, &json!(next)), "{body}");
    }
    assert_eq!(stack.stock(&tea), 6);
    let (status, body) = stack.set_status(id, "cancelled");
    assert_eq!((status, &body["status"]), (200, &json!("cancelled")));
    assert_eq!(stack.stock(&tea), 10);
    let (status, _) = stack.set_status(id, "cancelled");
    assert_eq!(status, 409);
    assert_eq!(stack.stock(&tea), 10);

    let (_, done) = stack.place("v1", &[(&tea, 1)], None);
    let done = done["id"].as_str().unwrap();
    for next in ["confirmed", "preparing", "ready", "completed"] {
        assert_eq!(stack.set_status(done, next).0, 200);
    }
    assert_eq!(stack.set_status(done, "cancelled").0, 409);
    let (_, page) = get(&stack.order.url("/orders?status=completed"));
    assert_eq!(page["items"][0]["id"], done);
}

#[test]
fn bad_input_table() {
    let stack = Stack::start();
    let tea = stack.item("v1", "Tea", 300, 10);
    let (_, order) = stack.place("v1", &[(&tea, 1)], None);
    let path = format!("/orders/{}", order["id"].as_str().unwrap());
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/orders".into(),
            Some(br#"{"venueId":"v1","items":[]}"#),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/orders".into(),
            Some(br#"{"venueId":"","items":[{"menuItemId":"a","quantity":1}]}"#),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/orders".into(),
            Some(br#"{"venueId":"v1","items":[{"menuItemId":"a","quantity":0}]}"#),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/orders".into(),
            Some(br#"{"venueId":"v1","items":[{"menuItemId":"a","quantity":-1}]}"#),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/orders".into(),
            Some(br#"{"venueId":"v1","items":[{"menuItemId":"a","quantity":"1"}]}"#),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/orders".into(),
            Some(br#"{"venueId":"v1","items":[{"menuItemId":"a","quantity":1,"note":"x"}]}"#),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/orders".into(),
            Some(br#"{"venueId":"v1"}"#),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/orders".into(),
            Some(b"{\"venueId\""),
            400,
            "malformed_json",
        ),
        ("GET", "/orders/unknown".into(), None, 404, "not_found"),
        (
            "GET",
            "/orders?status=placing".into(),
            None,
            422,
            "validation_failed",
        ),
        (
            "GET",
            "/orders?status=done".into(),
            None,
            422,
            "validation_failed",
        ),
        (
            "GET",
            "/orders?limit=1000".into(),
            None,
            422,
            "validation_failed",
        ),
        (
            "GET",
            "/orders?venue=v1".into(),
            None,
            422,
            "unknown_parameter",
        ),
        (
            "PATCH",
            path.clone(),
            Some(br#"{"status":"shipped"}"#),
            422,
            "validation_failed",
        ),
        (
            "PATCH",
            path.clone(),
            Some(br#"{"status":"placing"}"#),
            422,
            "validation_failed",
        ),
        (
            "PATCH",
            path.clone(),
            Some(br#"{"status":"completed"}"#),
            409,
            "invalid_transition",
        ),
        (
            "PATCH",
            path.clone(),
            Some(br#"{"status":1}"#),
            422,
            "invalid_body",
        ),
        ("PATCH", path.clone(), Some(br#"{}"#), 422, "invalid_body"),
        (
            "PATCH",
            "/orders/unknown".into(),
            Some(br#"{"status":"confirmed"}"#),
            404,
            "not_found",
        ),
        ("DELETE", path.clone(), None, 405, "method_not_allowed"),
    ];
    check_cases(&stack.order, &cases);
    let body = br#"{"venueId":"v1","items":[{"menuItemId":"a","quantity":1}]}"#;
    let bad_key = send(
        "POST",
        &stack.order.url("/orders"),
        Some(body),
        &[("idempotency-key", "")],
    );
    assert_eq!(
        (bad_key.0, &bad_key.1["error"]["code"]),
        (422, &json!("validation_failed"))
    );
    assert_eq!(stack.stock(&tea), 9);
    assert_eq!(get(&stack.order.url(&path)).1["status"], "pending");
}
