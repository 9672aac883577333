//! order-service: orders of a venue, validated against menu-service, holding stock in
//! inventory-service, with prices snapshotted when placed.
//!
//! Routes: `POST /orders` (optional `Idempotency-Key` header, scoped per venue),
//! `GET /orders/{id}`, `GET /orders?venueId=&status=&limit=&cursor=`,
//! `PATCH /orders/{id}` `{status}` along the machine in [`model`]; cancelling releases the
//! stock. Placement is in [`place`], crash repair in [`repair`], outbound calls in `deps`.
//! A placement answers with a `Server-Timing` header naming how long each stage took
//! ([`timing`]).

mod deps;
pub mod model;
mod openapi;
pub mod place;
mod pricing;
pub mod repair;
pub mod store;
pub mod timing;

use std::time::Duration;

use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use self::deps::Deps;
use self::model::{NewOrder, Order, Status, StatusChange};
use super::common::{self, Identity};
use super::db::Db;
use super::http::{ApiError, JsonBody, PathId};
use super::params::{Listing, QueryParams};

pub use self::store::MIGRATIONS;

/// Everything the order handlers share.
#[derive(Clone)]
pub struct State {
    pub db: Db,
    deps: Deps,
    /// How long an order may stay `placing` before repair rolls it back.
    pub grace: Duration,
}

impl State {
    /// Reads the dependency names, the service client's settings and
    /// `SERVIO_ORDER_REPAIR_GRACE` (like "30s").
    pub fn from_env(db: Db) -> anyhow::Result<State> {
        let grace = match std::env::var("SERVIO_ORDER_REPAIR_GRACE") {
            Ok(text) => humantime::parse_duration(text.trim()).map_err(|e| {
                anyhow::anyhow!("SERVIO_ORDER_REPAIR_GRACE=`{text}` is not a duration ({e})")
            })?,
            Err(_) => repair::DEFAULT_GRACE,
        };
        Ok(State {
            db,
            deps: Deps::from_env(),
            grace,
        })
    }
}

/// The order service's router.
pub fn app(state: State, identity: Identity) -> Router {
    let doc = openapi::document(&identity.version);
    let db = state.db.clone();
    let routes = Router::new()
        .route("/orders", post(create).get(list))
        .route("/orders/{id}", get(fetch).patch(update))
        .with_state(state);
    common::finish(routes, db, identity, doc)
}

async fn create(
    AxumState(state): AxumState<State>,
    headers: HeaderMap,
    JsonBody(new): JsonBody<NewOrder>,
) -> Result<Response, ApiError> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(value) => {
            let key = value.to_str().unwrap_or("");
            model::check_key(key)?;
            Some(key.to_string())
        }
    };
    let placed = place::place(&state, new, key).await?;
    let mut response = (StatusCode::CREATED, Json(placed.order)).into_response();
    let timing = placed.timing.header();
    if let (false, Ok(value)) = (timing.is_empty(), HeaderValue::from_str(&timing)) {
        response.headers_mut().insert("server-timing", value);
    }
    if !placed.created {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

async fn fetch(
    AxumState(state): AxumState<State>,
    PathId(id): PathId,
) -> Result<Json<Order>, ApiError> {
    Ok(Json(
        state.db.lookup(move |conn| store::get(conn, &id)).await?,
    ))
}

async fn list(
    AxumState(state): AxumState<State>,
    mut query: QueryParams,
) -> Result<Json<Listing<Order>>, ApiError> {
    let filter = store::Filter {
        venue_id: query.take_id("venueId")?,
        status: match query.take("status")? {
            Some(text) => Some(Status::parse_public("status", &text)?),
            None => None,
        },
    };
    let page = query.take_page()?;
    query.finish()?;
    let rows = {
        let page = page.clone();
        state
            .db
            .read(move |conn| store::list(conn, &filter, &page))
            .await?
    };
    Ok(Json(page.finish(rows, |order| &order.id)))
}

/// Moves an order along its status machine; cancelling gives its stock back.
async fn update(
    AxumState(state): AxumState<State>,
    PathId(id): PathId,
    JsonBody(change): JsonBody<StatusChange>,
) -> Result<Json<Order>, ApiError> {
    let to = Status::parse_public("status", &change.status)?;
    let owned = id.clone();
    let order = state
        .db
        .write(move |tx| {
            let order = store::get(tx, &owned)?;
            let from = order.status;
            if !from.can_move_to(to) || !store::transition(tx, &owned, from, to)? {
                return Err(ApiError::conflict(
                    "invalid_transition",
                    format!(
                        "order `{owned}` is {}; it cannot become {}",
                        from.as_str(),
                        to.as_str()
                    ),
                )
                .with_details(serde_json::json!({ "from": from, "to": to })));
            }
            store::get(tx, &owned)
        })
        .await?;
    if to == Status::Cancelled {
        match state.deps.release(&id).await {
            Ok(()) => {
                let owned = id.clone();
                state
                    .db
                    .write(move |tx| Ok(store::mark_released(tx, &owned)?))
                    .await?;
            }
            Err(error) => tracing::warn!(
                order = %id, %error,
                "cancelled, but {} could not release the stock yet; repair will retry",
                state.deps.inventory_name()
            ),
        }
    }
    Ok(Json(order))
}
