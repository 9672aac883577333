//! menu-service: the menu items of each venue (name, price in cents, category,
//! availability). The order service reads them to validate and price orders.
//!
//! Routes: `POST /menu-items`, `GET /menu-items` (filters `venueId`, `available`, `id`
//! repeatable for batch lookups, plus `limit`/`cursor`), `GET|PATCH|DELETE
//! /menu-items/{id}`, and the shared `/health` and `/openapi.json`.

pub mod model;
mod openapi;
pub mod store;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use self::model::{MenuItem, MenuItemPatch, NewMenuItem};
use super::common::{self, Identity};
use super::db::Db;
use super::http::{ApiError, JsonBody, PathId};
use super::params::{Listing, QueryParams};
use super::validate;

pub use self::store::MIGRATIONS;

/// Most ids one batch lookup (`?id=a&id=b...`) may name.
pub const MAX_BATCH_IDS: usize = 100;

/// The menu service's router over `db`.
pub fn app(db: Db, identity: Identity) -> Router {
    let doc = openapi::document(&identity.version);
    let routes = Router::new()
        .route("/menu-items", post(create).get(list))
        .route("/menu-items/{id}", get(fetch).patch(update).delete(remove))
        .with_state(db.clone());
    common::finish(routes, db, identity, doc)
}

async fn create(
    State(db): State<Db>,
    JsonBody(new): JsonBody<NewMenuItem>,
) -> Result<(StatusCode, Json<MenuItem>), ApiError> {
    new.validate()?;
    let item = db.write(move |tx| store::insert(tx, new)).await?;
    Ok((StatusCode::CREATED, Json(item)))
}

async fn fetch(State(db): State<Db>, PathId(id): PathId) -> Result<Json<MenuItem>, ApiError> {
    Ok(Json(db.lookup(move |conn| store::get(conn, &id)).await?))
}

async fn update(
    State(db): State<Db>,
    PathId(id): PathId,
    JsonBody(patch): JsonBody<MenuItemPatch>,
) -> Result<Json<MenuItem>, ApiError> {
    let changes = patch.validate()?;
    Ok(Json(
        db.write(move |tx| store::update(tx, &id, changes)).await?,
    ))
}

async fn remove(State(db): State<Db>, PathId(id): PathId) -> Result<StatusCode, ApiError> {
    db.write(move |tx| store::delete(tx, &id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list(
    State(db): State<Db>,
    mut query: QueryParams,
) -> Result<Json<Listing<MenuItem>>, ApiError> {
    let filter = store::Filter {
        venue_id: query.take_id("venueId")?,
        available: query.take_bool("available")?,
        ids: query.take_all("id"),
    };
    let page = query.take_page()?;
    query.finish()?;
    if filter.ids.len() > MAX_BATCH_IDS {
        return Err(ApiError::validation(
            "id",
            format!("may be given at most {MAX_BATCH_IDS} times"),
        ));
    }
    for id in &filter.ids {
        validate::id("id", id)?;
    }
    let batch = !filter.ids.is_empty();
    let rows = {
        let page = page.clone();
        let read = move |conn: &rusqlite::Connection| store::list(conn, &filter, &page);
        if batch {
            // At most MAX_BATCH_IDS rows by primary key: the lookup order makes per order.
            db.lookup(read).await?
        } else {
            db.read(read).await?
        }
    };
    Ok(Json(page.finish(rows, |item| &item.id)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::services::common::call;

    #[tokio::test]
    async fn handlers_answer_without_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(
            &dir.path().join("menu.db"),
            MIGRATIONS,
            crate::services::db::Durability::ProcessCrash,
        )
        .unwrap();
        let app = app(db, Identity::local("menu-service"));
        let body = json!({ "venueId": "v", "name": "Tea", "priceCents": 300 });
        let (status, item) = call(&app, "POST", "/menu-items", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED);
        let path = format!("/menu-items/{}", item["id"].as_str().unwrap());
        assert_eq!(call(&app, "GET", &path, None).await, (StatusCode::OK, item));
        let (status, health) = call(&app, "GET", "/health", None).await;
        assert_eq!(
            (status, &health["service"]),
            (StatusCode::OK, &json!("menu-service"))
        );
    }
}
