//! inventory-service: the stock of each menu item and all-or-nothing reservations that
//! hold stock for an order until it is cancelled.
//!
//! Routes: `PUT /inventory/{menuItemId}` and `POST /inventory` set stock;
//! `GET /inventory/{menuItemId}`; `GET /inventory?menuItemId=..&limit=&cursor=`;
//! `POST /inventory/reservations` (201 new, 200 repeat of the same orderId, 409 naming each
//! short item); `GET` and `DELETE /inventory/reservations/{orderId}` (DELETE is idempotent).
//!
//! Inventory cannot see the order service's database (database per service), so it never
//! decides on its own that a reservation is orphaned: the order service repairs its own
//! half-placed orders by releasing their reservations (see `order::repair`).

pub mod model;
mod openapi;
pub mod store;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};

use self::model::{Reservation, ReservationRequest, SetQuantity, SetStock, Stock};
use super::common::{self, Identity};
use super::db::Db;
use super::http::{ApiError, JsonBody, PathId};
use super::params::{Listing, QueryParams};
use super::validate;

pub use self::store::MIGRATIONS;

/// Most ids one list call may filter on.
pub const MAX_FILTER_IDS: usize = 100;

/// The inventory service's router over `db`.
pub fn app(db: Db, identity: Identity) -> Router {
    let doc = openapi::document(&identity.version);
    let routes = Router::new()
        .route("/inventory", post(set_stock).get(list))
        .route("/inventory/{menuItemId}", put(put_stock).get(fetch))
        .route("/inventory/reservations", post(reserve))
        .route(
            "/inventory/reservations/{orderId}",
            get(fetch_reservation).delete(release),
        )
        .with_state(db.clone());
    common::finish(routes, db, identity, doc)
}

async fn put_stock(
    State(db): State<Db>,
    PathId(id): PathId,
    JsonBody(body): JsonBody<SetQuantity>,
) -> Result<Json<Stock>, ApiError> {
    validate::id("menuItemId", &id)?;
    model::check_quantity(body.quantity)?;
    Ok(Json(
        db.write(move |tx| store::set(tx, &id, body.quantity))
            .await?,
    ))
}

async fn set_stock(
    State(db): State<Db>,
    JsonBody(body): JsonBody<SetStock>,
) -> Result<Json<Stock>, ApiError> {
    validate::id("menuItemId", &body.menu_item_id)?;
    model::check_quantity(body.quantity)?;
    Ok(Json(
        db.write(move |tx| store::set(tx, &body.menu_item_id, body.quantity))
            .await?,
    ))
}

async fn fetch(State(db): State<Db>, PathId(id): PathId) -> Result<Json<Stock>, ApiError> {
    Ok(Json(db.lookup(move |conn| store::get(conn, &id)).await?))
}

async fn list(
    State(db): State<Db>,
    mut query: QueryParams,
) -> Result<Json<Listing<Stock>>, ApiError> {
    let ids = query.take_all("menuItemId");
    let page = query.take_page()?;
    query.finish()?;
    if ids.len() > MAX_FILTER_IDS {
        return Err(ApiError::validation(
            "menuItemId",
            format!("may be given at most {MAX_FILTER_IDS} times"),
        ));
    }
    for id in &ids {
        validate::id("menuItemId", id)?;
    }
    let rows = {
        let page = page.clone();
        let batch = !ids.is_empty();
        let read = move |conn: &rusqlite::Connection| store::list(conn, &ids, &page);
        if batch {
            // At most MAX_FILTER_IDS rows by primary key.
            db.lookup(read).await?
        } else {
            db.read(read).await?
        }
    };
    Ok(Json(page.finish(rows, |s| &s.menu_item_id)))
}

async fn reserve(
    State(db): State<Db>,
    JsonBody(request): JsonBody<ReservationRequest>,
) -> Result<(StatusCode, Json<Reservation>), ApiError> {
    let (order_id, lines) = request.validate()?;
    let (reservation, created) = db
        .write(move |tx| store::reserve(tx, &order_id, lines))
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(reservation)))
}

async fn fetch_reservation(
    State(db): State<Db>,
    PathId(order_id): PathId,
) -> Result<Json<Reservation>, ApiError> {
    let found = {
        let order_id = order_id.clone();
        db.lookup(move |conn| store::reservation(conn, &order_id))
            .await?
    };
    found
        .map(Json)
        .ok_or_else(|| ApiError::not_found("reservation of order", &order_id))
}

async fn release(State(db): State<Db>, PathId(order_id): PathId) -> Result<StatusCode, ApiError> {
    validate::id("orderId", &order_id)?;
    db.write(move |tx| store::release(tx, &order_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
