//! order-service through the real binaries: menu, inventory and order processes, found
//! through a registry, placing, idempotency, compensation, cancel, repair and durability.

mod services_support;

use serde_json::{Value, json};
use services_support::registry::Registry;
use services_support::{Case, Service, check_cases, eventually, get, json, send};

/// A registry, menu, inventory and order service, each in the same temp folder.
struct Stack {
    _dir: tempfile::TempDir,
    _registry: Registry,
    menu: Service,
    inventory: Service,
    order: Service,
}

impl Stack {
    fn start() -> Stack {
        Stack::start_with(&[])
    }

    fn start_with(order_env: &[(&str, &str)]) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::start();
        let menu = Service::start("menu", dir.path());
        let inventory = Service::start("inventory", dir.path());
        registry.add("menu-service", menu.port);
        registry.add("inventory-service", inventory.port);
        let mut env = vec![("SERVIO_ADMIN_URL", registry.url.as_str())];
        env.extend_from_slice(order_env);
        let order = Service::start_with("order", dir.path(), &env);
        Stack {
            _dir: dir,
            _registry: registry,
            menu,
            inventory,
            order,
        }
    }

    /// A menu item of `venue` priced `cents` with `stock` units in inventory; its id.
    fn item(&self, venue: &str, name: &str, cents: i64, stock: i64) -> String {
        let (status, item) = json(
            "POST",
            &self.menu.url("/menu-items"),
            &json!({ "venueId": venue, "name": name, "priceCents": cents }),
        );
        assert_eq!(status, 201, "{item}");
        let id = item["id"].as_str().unwrap().to_string();
        let (status, body) = json(
            "PUT",
            &self.inventory.url(&format!("/inventory/{id}")),
            &json!({ "quantity": stock }),
        );
        assert_eq!(status, 200, "{body}");
        id
    }

    fn stock(&self, id: &str) -> i64 {
        get(&self.inventory.url(&format!("/inventory/{id}"))).1["quantity"]
            .as_i64()
            .unwrap()
    }

    fn place(&self, venue: &str, items: &[(&str, i64)], key: Option<&str>) -> (u16, Value) {
        let items: Vec<Value> = items
            .iter()
            .map(|(id, q)| json!({ "menuItemId": id, "quantity": q }))
            .collect();
        let body = json!({ "venueId": venue, "items": items }).to_string();
        let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
        send(
            "POST",
            &self.order.url("/orders"),
            Some(body.as_bytes()),
            &headers,
        )
    }

    fn orders(&self, venue: &str) -> Vec<Value> {
        let (_, page) = get(&self.order.url(&format!("/orders?venueId={venue}")));
        page["items"].as_array().cloned().unwrap_or_default()
    }

    fn set_status(&self, id: &str, status: &str) -> (u16, Value) {
        json(
            "PATCH",
            &self.order.url(&format!("/orders/{id}")),
            &json!({ "status": status }),
        )
    }
}

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
fn unavailable_dependency_is_503_and_leaves_nothing() {
    let mut stack = Stack::start_with(&[("SERVIO_ORDER_REPAIR_GRACE", "1s")]);
    let tea = stack.item("v1", "Tea", 300, 10);
    stack.inventory.stop_with(nix::sys::signal::Signal::SIGKILL);
    let (status, body) = stack.place("v1", &[(&tea, 1)], Some("k"));
    assert_eq!(
        (status, &body["error"]["code"]),
        (503, &json!("dependency_unavailable"))
    );
    assert_eq!(body["error"]["details"]["service"], "inventory-service");
    assert!(stack.orders("v1").is_empty());
    // Compensation could not reach inventory: the attempt is kept as an outbox row.
    let db = rusqlite::Connection::open(&stack.order.db_path).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    let aborted: i64 = db
        .query_row(
            "SELECT count(*) FROM orders WHERE status = 'aborted' AND idempotency_key IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(aborted, 1);

    stack.inventory.start_again();
    assert_eq!(stack.stock(&tea), 10);
    // Repair releases and drops it once inventory is back.
    eventually("repair to drop the aborted placement", || {
        let n: i64 = db
            .query_row("SELECT count(*) FROM orders", [], |r| r.get(0))
            .unwrap();
        (n == 0).then_some(())
    });
    // The retry with the same key goes through once inventory is back.
    let (status, order) = stack.place("v1", &[(&tea, 1)], Some("k"));
    assert_eq!(status, 201, "{order}");
    assert_eq!(stack.stock(&tea), 9);

    stack.menu.stop_with(nix::sys::signal::Signal::SIGKILL);
    let (status, body) = stack.place("v1", &[(&tea, 1)], None);
    assert_eq!(
        (status, &body["error"]["details"]["service"]),
        (503, &json!("menu-service"))
    );
    assert_eq!(stack.stock(&tea), 9);
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
fn repair_releases_reservations_of_orders_stuck_while_placing() {
    let stack = Stack::start_with(&[("SERVIO_ORDER_REPAIR_GRACE", "1s")]);
    let tea = stack.item("v1", "Tea", 300, 10);
    // A crash between "reserved" and "pending": the outbox row and the held stock.
    let (status, _) = json(
        "POST",
        &stack.inventory.url("/inventory/reservations"),
        &json!({ "orderId": "crashed", "items": [{ "menuItemId": tea, "quantity": 3 }] }),
    );
    assert_eq!(status, 201);
    let db = rusqlite::Connection::open(&stack.order.db_path).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    db.execute(
        "INSERT INTO orders (id, venue_id, status, total_cents, fingerprint, placing_since_ms,
                             created_at, updated_at)
         VALUES ('crashed', 'v1', 'placing', 900, '{}', 0, 'then', 'then')",
        [],
    )
    .unwrap();
    assert_eq!(stack.stock(&tea), 7);
    eventually("repair to release the stuck reservation", || {
        (stack.stock(&tea) == 10).then_some(())
    });
    eventually("repair to drop the stuck order", || {
        let n: i64 = db
            .query_row("SELECT count(*) FROM orders", [], |r| r.get(0))
            .unwrap();
        (n == 0).then_some(())
    });
    assert_eq!(get(&stack.order.url("/orders/crashed")).0, 404);
}

#[test]
fn acknowledged_order_survives_sigkill() {
    let mut stack = Stack::start();
    let tea = stack.item("v1", "Tea", 300, 10);
    let (status, order) = stack.place("v1", &[(&tea, 1)], Some("durable"));
    assert_eq!(status, 201);
    stack.order.kill_and_restart();
    let id = order["id"].as_str().unwrap();
    assert_eq!(
        get(&stack.order.url(&format!("/orders/{id}"))),
        (200, order.clone())
    );
    // The key is remembered too.
    assert_eq!(
        stack.place("v1", &[(&tea, 1)], Some("durable")),
        (201, order)
    );
    assert_eq!(stack.stock(&tea), 9);
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

#[test]
fn cancel_while_inventory_is_down_releases_stock_once_it_is_back() {
    let mut stack = Stack::start_with(&[("SERVIO_ORDER_REPAIR_GRACE", "1s")]);
    let tea = stack.item("v1", "Tea", 300, 10);
    let (_, order) = stack.place("v1", &[(&tea, 4)], None);
    stack.inventory.stop_with(nix::sys::signal::Signal::SIGKILL);
    let (status, body) = stack.set_status(order["id"].as_str().unwrap(), "cancelled");
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("cancelled")),
        "{body}"
    );
    stack.inventory.start_again();
    eventually("repair to give the stock back", || {
        (stack.stock(&tea) == 10).then_some(())
    });
}
