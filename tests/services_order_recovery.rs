//! order-service when things go wrong: a dependency down (503, nothing left behind,
//! compensation), a crash between reserving and finishing (start-up repair), cancelling
//! while inventory is down, and SIGKILL right after a 201.

mod services_support;

use serde_json::json;
use services_support::stack::Stack;
use services_support::{eventually, get, json};

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
