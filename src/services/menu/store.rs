//! SQL for menu items: the schema migrations and every query, on the service's own database.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::model::{Changes, MenuItem, NewMenuItem};
use crate::services::db::{Where, now_rfc3339};
use crate::services::http::ApiError;
use crate::services::params::Page;

/// Schema versions, oldest first (see [`crate::services::db::Db::open`]).
pub const MIGRATIONS: &[&str] = &["
    CREATE TABLE menu_items (
        id          TEXT PRIMARY KEY,
        venue_id    TEXT NOT NULL,
        name        TEXT NOT NULL,
        description TEXT,
        category    TEXT,
        price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
        available   INTEGER NOT NULL CHECK (available IN (0, 1)),
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    ) STRICT;
    CREATE INDEX menu_items_by_venue ON menu_items (venue_id, id);
"];

const COLUMNS: &str =
    "id, venue_id, name, description, category, price_cents, available, created_at, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<MenuItem> {
    Ok(MenuItem {
        id: row.get(0)?,
        venue_id: row.get(1)?,
        name: row.get(2)?,
        description: row.get(3)?,
        category: row.get(4)?,
        price_cents: row.get(5)?,
        available: row.get(6)?,
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
    })
}

pub fn insert(conn: &Connection, new: NewMenuItem) -> Result<MenuItem, ApiError> {
    let now = now_rfc3339();
    let item = MenuItem {
        id: uuid::Uuid::now_v7().to_string(),
        venue_id: new.venue_id,
        name: new.name,
        description: new.description,
        category: new.category,
        price_cents: new.price_cents,
        available: new.available,
        created_at: now.clone(),
        updated_at: now,
    };
    conn.prepare_cached(&format!(
        "INSERT INTO menu_items ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))?
    .execute(params![
        item.id,
        item.venue_id,
        item.name,
        item.description,
        item.category,
        item.price_cents,
        item.available,
        item.created_at,
        item.updated_at
    ])?;
    Ok(item)
}

pub fn get(conn: &Connection, id: &str) -> Result<MenuItem, ApiError> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM menu_items WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?
        .ok_or_else(|| ApiError::not_found("menu item", id))
}

/// Applies `changes` to item `id` and returns the updated item.
pub fn update(conn: &Connection, id: &str, changes: Changes) -> Result<MenuItem, ApiError> {
    let mut item = get(conn, id)?;
    changes.apply(&mut item);
    item.updated_at = now_rfc3339();
    conn.prepare_cached(
        "UPDATE menu_items SET name = ?2, description = ?3, category = ?4, price_cents = ?5,
         available = ?6, updated_at = ?7 WHERE id = ?1",
    )?
    .execute(params![
        item.id,
        item.name,
        item.description,
        item.category,
        item.price_cents,
        item.available,
        item.updated_at
    ])?;
    Ok(item)
}

pub fn delete(conn: &Connection, id: &str) -> Result<(), ApiError> {
    let gone = conn
        .prepare_cached("DELETE FROM menu_items WHERE id = ?1")?
        .execute([id])?;
    if gone == 0 {
        return Err(ApiError::not_found("menu item", id));
    }
    Ok(())
}

/// Filters of `GET /menu-items`.
#[derive(Debug, Default)]
pub struct Filter {
    pub venue_id: Option<String>,
    pub available: Option<bool>,
    /// Only these ids (the batch lookup the order service uses).
    pub ids: Vec<String>,
}

/// One page of items matching `filter`, ordered by id; fetches `page.fetch()` rows.
pub fn list(conn: &Connection, filter: &Filter, page: &Page) -> Result<Vec<MenuItem>, ApiError> {
    let mut query = Where::default();
    if let Some(venue) = &filter.venue_id {
        query.and("venue_id = ?", venue.clone());
    }
    if let Some(available) = filter.available {
        query.and("available = ?", i64::from(available));
    }
    if !filter.ids.is_empty() {
        let json = serde_json::to_string(&filter.ids).unwrap_or_else(|_| "[]".into());
        query.and("id IN (SELECT value FROM json_each(?))", json);
    }
    let sql = query.page_sql(&format!("SELECT {COLUMNS} FROM menu_items"), "id", page);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(query.args()), from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}
