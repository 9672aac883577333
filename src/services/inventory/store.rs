//! SQL for stock and reservations on the inventory service's own database.
//!
//! Every change runs inside the caller's `BEGIN IMMEDIATE` transaction (see
//! [`crate::services::db`]), so checking stock and taking it is one atomic step even with
//! several replicas on the same file: a reservation is all or nothing, and two concurrent
//! reservations can never both take the last unit.

use rusqlite::{Connection, OptionalExtension, params};

use super::model::{Line, Reservation, Shortage, Stock, insufficient};
use crate::services::db::{Where, now_rfc3339};
use crate::services::http::ApiError;
use crate::services::params::Page;

/// Schema versions, oldest first.
pub const MIGRATIONS: &[&str] = &["
    CREATE TABLE stock (
        menu_item_id TEXT PRIMARY KEY,
        quantity     INTEGER NOT NULL CHECK (quantity >= 0),
        updated_at   TEXT NOT NULL
    ) STRICT;
    CREATE TABLE reservations (
        order_id   TEXT PRIMARY KEY,
        status     TEXT NOT NULL CHECK (status IN ('held', 'released')),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    ) STRICT;
    CREATE TABLE reservation_items (
        order_id     TEXT NOT NULL REFERENCES reservations (order_id),
        menu_item_id TEXT NOT NULL,
        quantity     INTEGER NOT NULL CHECK (quantity > 0),
        PRIMARY KEY (order_id, menu_item_id)
    ) STRICT, WITHOUT ROWID;
"];

/// Sets the stock of `menu_item_id` to `quantity`, creating the record if needed.
pub fn set(conn: &Connection, menu_item_id: &str, quantity: i64) -> Result<Stock, ApiError> {
    let stock = Stock {
        menu_item_id: menu_item_id.to_string(),
        quantity,
        updated_at: now_rfc3339(),
    };
    conn.prepare_cached(
        "INSERT INTO stock (menu_item_id, quantity, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (menu_item_id) DO UPDATE SET quantity = ?2, updated_at = ?3",
    )?
    .execute(params![
        stock.menu_item_id,
        stock.quantity,
        stock.updated_at
    ])?;
    Ok(stock)
}

pub fn get(conn: &Connection, menu_item_id: &str) -> Result<Stock, ApiError> {
    conn.prepare_cached(
        "SELECT menu_item_id, quantity, updated_at FROM stock WHERE menu_item_id = ?1",
    )?
    .query_row([menu_item_id], |r| {
        Ok(Stock {
            menu_item_id: r.get(0)?,
            quantity: r.get(1)?,
            updated_at: r.get(2)?,
        })
    })
    .optional()?
    .ok_or_else(|| ApiError::not_found("stock for menu item", menu_item_id))
}

/// One page of stock records, optionally only for `ids`.
pub fn list(conn: &Connection, ids: &[String], page: &Page) -> Result<Vec<Stock>, ApiError> {
    let mut query = Where::default();
    if !ids.is_empty() {
        let json = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
        query.and("menu_item_id IN (SELECT value FROM json_each(?))", json);
    }
    let sql = query.page_sql(
        "SELECT menu_item_id, quantity, updated_at FROM stock",
        "menu_item_id",
        page,
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(query.args()), |r| {
        Ok(Stock {
            menu_item_id: r.get(0)?,
            quantity: r.get(1)?,
            updated_at: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn reservation(conn: &Connection, order_id: &str) -> Result<Option<Reservation>, ApiError> {
    let head = conn
        .prepare_cached(
            "SELECT status, created_at, updated_at FROM reservations WHERE order_id = ?1",
        )?
        .query_row([order_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((status, created_at, updated_at)) = head else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT menu_item_id, quantity FROM reservation_items WHERE order_id = ?1
         ORDER BY menu_item_id",
    )?;
    let items = stmt
        .query_map([order_id], |r| {
            Ok(Line {
                menu_item_id: r.get(0)?,
                quantity: r.get(1)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(Some(Reservation {
        order_id: order_id.to_string(),
        status,
        items,
        created_at,
        updated_at,
    }))
}

/// Takes stock for every line or none. A repeat of a held reservation with the same lines
/// returns it (`created == false`): reserving is idempotent by `orderId`.
pub fn reserve(
    conn: &Connection,
    order_id: &str,
    lines: Vec<Line>,
) -> Result<(Reservation, bool), ApiError> {
    if let Some(existing) = reservation(conn, order_id)? {
        return match existing.status.as_str() {
            "held" if existing.items == lines => Ok((existing, false)),
            "held" => Err(ApiError::conflict(
                "reservation_mismatch",
                format!("order `{order_id}` already holds a reservation with other items"),
            )),
            _ => Err(ApiError::conflict(
                "reservation_released",
                format!("the reservation of order `{order_id}` was released; use a new orderId"),
            )),
        };
    }
    let mut shortages = Vec::new();
    for line in &lines {
        let available: i64 = conn
            .prepare_cached("SELECT quantity FROM stock WHERE menu_item_id = ?1")?
            .query_row([&line.menu_item_id], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        if available < line.quantity {
            shortages.push(Shortage {
                menu_item_id: line.menu_item_id.clone(),
                requested: line.quantity,
                available,
            });
        }
    }
    if !shortages.is_empty() {
        return Err(insufficient(&shortages));
    }
    let now = now_rfc3339();
    conn.prepare_cached(
        "INSERT INTO reservations (order_id, status, created_at, updated_at)
         VALUES (?1, 'held', ?2, ?2)",
    )?
    .execute(params![order_id, now])?;
    for line in &lines {
        conn.prepare_cached(
            "UPDATE stock SET quantity = quantity - ?2, updated_at = ?3 WHERE menu_item_id = ?1",
        )?
        .execute(params![line.menu_item_id, line.quantity, now])?;
        conn.prepare_cached(
            "INSERT INTO reservation_items (order_id, menu_item_id, quantity) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![order_id, line.menu_item_id, line.quantity])?;
    }
    let reservation = Reservation {
        order_id: order_id.to_string(),
        status: "held".into(),
        items: lines,
        created_at: now.clone(),
        updated_at: now,
    };
    Ok((reservation, true))
}

/// Gives a held reservation's stock back. Idempotent: releasing twice, or releasing an
/// order that never reserved, succeeds; the latter records a `released` tombstone so a
/// reservation arriving late (after its order gave up) cannot take stock.
pub fn release(conn: &Connection, order_id: &str) -> Result<(), ApiError> {
    let now = now_rfc3339();
    let status: Option<String> = conn
        .prepare_cached("SELECT status FROM reservations WHERE order_id = ?1")?
        .query_row([order_id], |r| r.get(0))
        .optional()?;
    match status.as_deref() {
        Some("released") => return Ok(()),
        Some(_) => {
            conn.prepare_cached(
                "INSERT INTO stock (menu_item_id, quantity, updated_at)
                 SELECT menu_item_id, quantity, ?2 FROM reservation_items WHERE order_id = ?1
                 ON CONFLICT (menu_item_id)
                 DO UPDATE SET quantity = quantity + excluded.quantity, updated_at = ?2",
            )?
            .execute(params![order_id, now])?;
            conn.prepare_cached(
                "UPDATE reservations SET status = 'released', updated_at = ?2 WHERE order_id = ?1",
            )?
            .execute(params![order_id, now])?;
        }
        None => {
            conn.prepare_cached(
                "INSERT INTO reservations (order_id, status, created_at, updated_at)
                 VALUES (?1, 'released', ?2, ?2)",
            )?
            .execute(params![order_id, now])?;
        }
    }
    Ok(())
}
