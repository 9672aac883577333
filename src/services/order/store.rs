//! SQL for orders on the order service's own database.
//!
//! An order row is written in state `placing` *before* its stock is reserved, so it doubles
//! as the outbox of the placement: whatever happens after (crash, failure), the row says a
//! reservation may exist for this id and [`super::repair`] can release it.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::model::{Order, OrderLine, Status};
use crate::services::db::{Where, now_ms, now_rfc3339};
use crate::services::http::ApiError;
use crate::services::params::Page;

/// Schema versions, oldest first.
pub const MIGRATIONS: &[&str] = &["
    CREATE TABLE orders (
        id               TEXT PRIMARY KEY,
        venue_id         TEXT NOT NULL,
        status           TEXT NOT NULL,
        total_cents      INTEGER NOT NULL,
        idempotency_key  TEXT,
        fingerprint      TEXT NOT NULL,
        -- 0 while a cancelled order's stock has not been given back yet (repair retries).
        stock_released   INTEGER NOT NULL DEFAULT 0,
        -- When placement started: repair releases orders stuck in 'placing' past a grace.
        placing_since_ms INTEGER,
        created_at       TEXT NOT NULL,
        updated_at       TEXT NOT NULL
    ) STRICT;
    CREATE UNIQUE INDEX orders_by_key ON orders (venue_id, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE INDEX orders_by_venue ON orders (venue_id, id);
    CREATE INDEX orders_by_status ON orders (status, id);
    CREATE TABLE order_items (
        order_id         TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
        line             INTEGER NOT NULL,
        menu_item_id     TEXT NOT NULL,
        name             TEXT NOT NULL,
        unit_price_cents INTEGER NOT NULL,
        quantity         INTEGER NOT NULL,
        PRIMARY KEY (order_id, line)
    ) STRICT, WITHOUT ROWID;
"];

const COLUMNS: &str =
    "id, venue_id, status, total_cents, idempotency_key, created_at, updated_at, fingerprint";

/// An order row with the request fingerprint it was placed with.
pub struct Stored {
    pub order: Order,
    pub fingerprint: String,
}

fn status_from(text: &str) -> Status {
    serde_json::from_value(serde_json::Value::String(text.into())).unwrap_or(Status::Placing)
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Stored> {
    let status: String = row.get(2)?;
    Ok(Stored {
        order: Order {
            id: row.get(0)?,
            venue_id: row.get(1)?,
            status: status_from(&status),
            items: Vec::new(),
            total_cents: row.get(3)?,
            idempotency_key: row.get(4)?,
            created_at: row.get(5)?,
            updated_at: row.get(6)?,
        },
        fingerprint: row.get(7)?,
    })
}

fn load_items(conn: &Connection, order: &mut Order) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT menu_item_id, name, unit_price_cents, quantity FROM order_items
         WHERE order_id = ?1 ORDER BY line",
    )?;
    order.items = stmt
        .query_map([&order.id], |r| {
            let unit: i64 = r.get(2)?;
            let quantity: i64 = r.get(3)?;
            Ok(OrderLine {
                menu_item_id: r.get(0)?,
                name: r.get(1)?,
                unit_price_cents: unit,
                quantity,
                line_total_cents: unit.saturating_mul(quantity),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(())
}

/// Inserts `order` (status `placing`) with its lines. A clash on the idempotency key
/// surfaces as the SQLite UNIQUE error for the caller to resolve.
pub fn insert_placing(conn: &Connection, order: &Order, fingerprint: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO orders (id, venue_id, status, total_cents, idempotency_key, fingerprint,
                             placing_since_ms, created_at, updated_at)
         VALUES (?1, ?2, 'placing', ?3, ?4, ?5, ?6, ?7, ?7)",
    )?
    .execute(params![
        order.id,
        order.venue_id,
        order.total_cents,
        order.idempotency_key,
        fingerprint,
        now_ms(),
        order.created_at
    ])?;
    for (line, item) in order.items.iter().enumerate() {
        conn.prepare_cached(
            "INSERT INTO order_items (order_id, line, menu_item_id, name, unit_price_cents,
                                      quantity) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            order.id,
            i64::try_from(line).unwrap_or(i64::MAX),
            item.menu_item_id,
            item.name,
            item.unit_price_cents,
            item.quantity
        ])?;
    }
    Ok(())
}

/// Moves a `placing` order to `pending`; false when it is no longer placing (repaired).
pub fn finish_placing(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE orders SET status = 'pending', placing_since_ms = NULL
             WHERE id = ?1 AND status = 'placing'",
        )?
        .execute([id])?;
    Ok(changed == 1)
}

/// Marks a failed placement whose reservation could not be released: frees its
/// idempotency key for a retry and leaves the row for repair to release and delete.
pub fn abort_placing(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE orders SET status = 'aborted', idempotency_key = NULL
         WHERE id = ?1 AND status = 'placing'",
    )?
    .execute([id])?;
    Ok(())
}

/// Forgets a `placing` (or `aborted`) order whose reservation is known to be released (or never made).
pub fn discard_placing(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM orders WHERE id = ?1 AND status IN ('placing', 'aborted')")?
        .execute([id])?;
    Ok(())
}

/// Any order by id, `placing` included, with its lines.
pub fn find(conn: &Connection, id: &str) -> rusqlite::Result<Option<Stored>> {
    let found = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM orders WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?;
    with_items(conn, found)
}

/// The order a venue placed with `key`, `placing` included.
pub fn find_by_key(conn: &Connection, venue: &str, key: &str) -> rusqlite::Result<Option<Stored>> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM orders WHERE venue_id = ?1 AND idempotency_key = ?2"
        ))?
        .query_row([venue, key], from_row)
        .optional()?;
    with_items(conn, found)
}

fn with_items(conn: &Connection, found: Option<Stored>) -> rusqlite::Result<Option<Stored>> {
    match found {
        Some(mut stored) => {
            load_items(conn, &mut stored.order)?;
            Ok(Some(stored))
        }
        None => Ok(None),
    }
}

/// A placed order (not `placing` nor `aborted`), or 404.
pub fn get(conn: &Connection, id: &str) -> Result<Order, ApiError> {
    match find(conn, id)? {
        Some(stored) if stored.order.status.is_public() => Ok(stored.order),
        _ => Err(ApiError::not_found("order", id)),
    }
}

/// Moves order `id` from `from` to `to` if it is still in `from` (compare-and-set, so
/// replicas racing on one order cannot both win). Cancelling marks the stock as owed back.
pub fn transition(conn: &Connection, id: &str, from: Status, to: Status) -> Result<bool, ApiError> {
    let changed = conn
        .prepare_cached(
            "UPDATE orders SET status = ?3, updated_at = ?4,
                    stock_released = CASE WHEN ?3 = 'cancelled' THEN 0 ELSE stock_released END
             WHERE id = ?1 AND status = ?2",
        )?
        .execute(params![id, from.as_str(), to.as_str(), now_rfc3339()])?;
    Ok(changed == 1)
}

/// Records that a cancelled order's stock is back in inventory.
pub fn mark_released(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE orders SET stock_released = 1 WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Filters of `GET /orders`.
#[derive(Debug, Default)]
pub struct Filter {
    pub venue_id: Option<String>,
    pub status: Option<Status>,
}

pub fn list(conn: &Connection, filter: &Filter, page: &Page) -> Result<Vec<Order>, ApiError> {
    let mut query = Where::default();
    if let Some(venue) = &filter.venue_id {
        query.and("venue_id = ?", venue.clone());
    }
    match filter.status {
        Some(status) => query.and("status = ?", status.as_str().to_string()),
        None => {
            let public: Vec<&str> = Status::PUBLIC.iter().map(|s| s.as_str()).collect();
            let json = serde_json::to_string(&public).unwrap_or_else(|_| "[]".into());
            query.and("status IN (SELECT value FROM json_each(?))", json);
        }
    }
    let sql = query.page_sql(&format!("SELECT {COLUMNS} FROM orders"), "id", page);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(query.args()), from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let mut orders = Vec::with_capacity(rows.len());
    for mut stored in rows {
        load_items(conn, &mut stored.order)?;
        orders.push(stored.order);
    }
    Ok(orders)
}

/// Ids of orders stuck in `placing` since before `older_than_ms`, and of `aborted` ones.
pub fn stuck_placing(conn: &Connection, older_than_ms: i64) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM orders WHERE status = 'aborted'
         UNION ALL
         SELECT id FROM orders WHERE status = 'placing' AND placing_since_ms < ?1 LIMIT 100",
    )?;
    stmt.query_map([older_than_ms], |r| r.get(0))?.collect()
}

/// Ids of cancelled orders whose stock has not been given back yet.
pub fn unreleased_cancelled(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM orders WHERE status = 'cancelled' AND stock_released = 0 LIMIT 100",
    )?;
    stmt.query_map([], |r| r.get(0))?.collect()
}
