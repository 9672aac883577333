//! Start-up and periodic repair of what a crash or an unreachable inventory left behind.
//!
//! Database per service means inventory cannot tell whether a reservation's order exists,
//! so repair lives here, where the outbox rows are:
//! - orders stuck in `placing` for longer than the grace period (the process died between
//!   reserving and finishing) and `aborted` ones (compensation could not reach inventory):
//!   release their reservation (idempotent, and it blocks a reservation still in flight),
//!   then delete them;
//! - cancelled orders whose stock was not given back yet: release, then mark them.
//!
//! The grace period (`SERVIO_ORDER_REPAIR_GRACE`, default 30s) is far longer than any
//! placement takes, so repair never races a placement that is still running. Replicas may
//! repair concurrently: every step is idempotent.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::State;
use super::store;
use crate::services::db::now_ms;
use crate::services::http::ApiError;

/// How long an order may stay `placing` before repair rolls it back.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// Runs one pass at start-up, then one every half grace period (1s to 30s) until `stop`.
pub async fn run(state: State, stop: CancellationToken) {
    let every = (state.grace / 2).clamp(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        if let Err(error) = pass(&state).await {
            tracing::warn!(%error, "order repair pass failed; will retry");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// One repair pass; returns how many orders it fixed. An order that cannot be fixed yet is
/// logged and left for the next pass without holding up the others.
pub async fn pass(state: &State) -> Result<usize, ApiError> {
    let grace_ms = i64::try_from(state.grace.as_millis()).unwrap_or(i64::MAX);
    let cutoff = now_ms().saturating_sub(grace_ms);
    let stuck = state
        .db
        .read(move |conn| Ok(store::stuck_placing(conn, cutoff)?))
        .await?;
    let cancelled = state
        .db
        .read(|conn| Ok(store::unreleased_cancelled(conn)?))
        .await?;
    let mut fixed = 0;
    for id in stuck {
        match roll_back(state, &id).await {
            Ok(()) => {
                tracing::info!(order = %id, "rolled back a placement that did not finish");
                fixed += 1;
            }
            Err(error) => tracing::warn!(order = %id, %error, "cannot roll back yet"),
        }
    }
    for id in cancelled {
        match give_back(state, &id).await {
            Ok(()) => {
                tracing::info!(order = %id, "released the stock of a cancelled order");
                fixed += 1;
            }
            Err(error) => tracing::warn!(order = %id, %error, "cannot release stock yet"),
        }
    }
    Ok(fixed)
}

/// Releases an unfinished placement's reservation, then deletes it.
async fn roll_back(state: &State, id: &str) -> Result<(), ApiError> {
    state.deps.release(id).await?;
    let owned = id.to_string();
    state
        .db
        .write(move |tx| Ok(store::discard_placing(tx, &owned)?))
        .await
}

/// Releases a cancelled order's stock, then records it.
async fn give_back(state: &State, id: &str) -> Result<(), ApiError> {
    state.deps.release(id).await?;
    let owned = id.to_string();
    state
        .db
        .write(move |tx| Ok(store::mark_released(tx, &owned)?))
        .await
}
