//! Placing an order: a small saga over menu-service and inventory-service that never
//! leaves half an order behind.
//!
//! 1. Validate; with an `Idempotency-Key`, answer a retry with the order it already made.
//! 2. Read the items from menu-service in one batch: they must exist, belong to the venue
//!    and be available; prices are snapshotted.
//! 3. Insert the order as `placing` (the outbox record: a reservation may exist for it).
//!    The UNIQUE (venue, key) index makes a concurrent duplicate lose here.
//! 4. Reserve the stock, all or nothing, keyed by the order id (safe to repeat).
//! 5. Flip the order to `pending`.
//!
//! Any failure after step 3 releases the reservation (compensation; release is idempotent
//! and blocks a late reserve) and deletes the `placing` row. If the release itself fails,
//! the row becomes `aborted` (its idempotency key freed so the client can retry at once) and
//! [`super::repair`] releases it, as it does after a grace period for a crash between steps.

use std::collections::HashMap;

use axum::http::StatusCode;
use serde_json::json;

use super::State;
use super::deps::{MenuItem, ReserveError};
use super::model::{NewOrder, Order, Status};
use super::pricing::{reservation_lines, snapshot};
use super::store;
use super::timing::Timing;
use crate::services::db::{is_unique_violation, now_rfc3339};
use crate::services::http::ApiError;

/// A placed order, whether it was made by this request (false: an idempotent replay) and
/// how long each stage took.
pub struct Placed {
    pub order: Order,
    pub created: bool,
    pub timing: Timing,
}

pub async fn place(state: &State, new: NewOrder, key: Option<String>) -> Result<Placed, ApiError> {
    new.validate()?;
    let mut timing = Timing::default();
    let fingerprint = new.fingerprint();
    if let Some(key) = &key {
        let (venue, key) = (new.venue_id.clone(), key.clone());
        let existing = timing
            .time(
                "key",
                state
                    .db
                    .lookup(move |conn| Ok(store::find_by_key(conn, &venue, &key)?)),
            )
            .await?;
        if let Some(stored) = existing {
            return replay(stored, &fingerprint, timing);
        }
    }
    let order = timing.time("menu", price_order(state, &new, key)).await?;

    let insert = {
        let (order, fingerprint) = (order.clone(), fingerprint.clone());
        state.db.write(
            move |tx| match store::insert_placing(tx, &order, &fingerprint) {
                Ok(()) => Ok(None),
                Err(e) if is_unique_violation(&e) => Ok(store::find_by_key(
                    tx,
                    &order.venue_id,
                    order.idempotency_key.as_deref().unwrap_or_default(),
                )?),
                Err(e) => Err(e.into()),
            },
        )
    };
    if let Some(stored) = timing.time("insert", insert).await? {
        return replay(stored, &fingerprint, timing);
    }

    let lines = reservation_lines(&new);
    match timing
        .time("reserve", state.deps.reserve(&order.id, &lines))
        .await
    {
        Ok(()) => {}
        Err(ReserveError::Refused(error)) => {
            discard(state, &order.id).await;
            return Err(error);
        }
        Err(ReserveError::Unknown(error)) => {
            compensate(state, &order.id).await;
            return Err(error);
        }
    }

    let id = order.id.clone();
    let finish = state
        .db
        .write(move |tx| Ok(store::finish_placing(tx, &id)?));
    match timing.time("finish", finish).await {
        Ok(true) => Ok(Placed {
            order: Order {
                status: Status::Pending,
                ..order
            },
            created: true,
            timing,
        }),
        Ok(false) => {
            // Repair judged it stuck and released it meanwhile: report the order as failed.
            compensate(state, &order.id).await;
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "order_aborted",
                "placing the order took too long and it was rolled back; retry",
            ))
        }
        Err(error) => {
            compensate(state, &order.id).await;
            Err(error)
        }
    }
}

/// Answers a request whose `Idempotency-Key` already made an order.
fn replay(stored: store::Stored, fingerprint: &str, timing: Timing) -> Result<Placed, ApiError> {
    if stored.fingerprint != fingerprint {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was already used for a different order; use a new key",
        )
        .with_details(json!({ "orderId": stored.order.id })));
    }
    if stored.order.status == Status::Placing {
        return Err(ApiError::conflict(
            "order_in_progress",
            "an order with this Idempotency-Key is still being placed; retry shortly",
        )
        .with_details(json!({ "orderId": stored.order.id })));
    }
    Ok(Placed {
        order: stored.order,
        created: false,
        timing,
    })
}

/// Checks every item against menu-service and builds the order with snapshotted prices.
async fn price_order(
    state: &State,
    new: &NewOrder,
    key: Option<String>,
) -> Result<Order, ApiError> {
    let mut ids: Vec<&str> = new.items.iter().map(|i| i.menu_item_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let menu: HashMap<String, MenuItem> = state
        .deps
        .menu_items(&ids)
        .await?
        .into_iter()
        .map(|item| (item.id.clone(), item))
        .collect();
    let (items, total_cents) = snapshot(new, &menu)?;
    let now = now_rfc3339();
    Ok(Order {
        id: uuid::Uuid::now_v7().to_string(),
        venue_id: new.venue_id.clone(),
        status: Status::Placing,
        items,
        total_cents,
        idempotency_key: key,
        created_at: now.clone(),
        updated_at: now,
    })
}

/// Releases whatever the order may hold, then forgets it. If the release fails the row
/// becomes `aborted` (freeing its idempotency key for the client's retry) and repair
/// releases it later.
pub async fn compensate(state: &State, id: &str) {
    match state.deps.release(id).await {
        Ok(()) => discard(state, id).await,
        Err(error) => {
            tracing::warn!(order = id, %error, "could not release the reservation; repair will");
            let owned = id.to_string();
            if let Err(error) = state
                .db
                .write(move |tx| Ok(store::abort_placing(tx, &owned)?))
                .await
            {
                tracing::warn!(order = id, %error, "could not mark the order aborted");
            }
        }
    }
}

async fn discard(state: &State, id: &str) {
    let owned = id.to_string();
    if let Err(error) = state
        .db
        .write(move |tx| Ok(store::discard_placing(tx, &owned)?))
        .await
    {
        tracing::warn!(order = id, %error, "could not discard a failed order; repair will");
    }
}
