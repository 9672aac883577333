//! `GET /v1/events`: the dashboard's one live stream (Server-Sent Events). First a
//! `history` event with the routes' chart points, then a `status` event at once and again
//! whenever the registry's index moves (a blocking [`crate::registry::Registry::wait_past`],
//! the mechanism `servio status --watch` uses) or a second has passed, so CPU, uptime and
//! rates move. The stream ends when the daemon stops; the browser's EventSource reconnects
//! by itself (told to retry after a second).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Serialize;

use super::TICK;
use super::series::RouteSeries;
use crate::cli::status_live::cpu_percent;
use crate::daemon::Daemon;
use crate::protocol::StackStatus;

/// What each `status` event carries.
#[derive(Debug, Serialize)]
struct StatusEvent<'a> {
    status: &'a StackStatus,
    /// CPU % per instance id since the previous event (100 % is one core).
    cpu_percent: BTreeMap<String, f64>,
    /// Each route's newest chart point.
    routes: Vec<RouteSeries>,
}

#[derive(Debug, Serialize)]
struct HistoryEvent {
    routes: Vec<RouteSeries>,
}

/// Where one stream is.
struct Cursor {
    daemon: Arc<Daemon>,
    /// `None` before the first status: it goes out without waiting.
    after: Option<u64>,
    previous: Option<(Instant, StackStatus)>,
}

pub async fn stream(
    State(daemon): State<Arc<Daemon>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let history = HistoryEvent {
        routes: lock(&daemon).series(),
    };
    let first = Event::default()
        .event("history")
        .retry(TICK)
        .json_data(&history)
        .unwrap_or_default();
    let cursor = Cursor {
        daemon,
        after: None,
        previous: None,
    };
    let statuses = futures_util::stream::unfold(cursor, next_status);
    let all = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok(first) }),
        statuses,
    );
    Sse::new(all).keep_alive(KeepAlive::default())
}

fn lock(daemon: &Daemon) -> std::sync::MutexGuard<'_, super::series::History> {
    daemon
        .route_history
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Waits for a change (or a tick) and answers the stack's status; `None` once the daemon
/// stops.
async fn next_status(mut cursor: Cursor) -> Option<(Result<Event, Infallible>, Cursor)> {
    let daemon = cursor.daemon.clone();
    if daemon.shutdown.is_cancelled() {
        return None;
    }
    if let Some(after) = cursor.after {
        tokio::select! {
            _ = daemon.shutdown.cancelled() => return None,
            _ = daemon.registry.wait_past(after, TICK) => {}
        }
    }
    let now = Instant::now();
    let status = daemon.status();
    let cpu = match &cursor.previous {
        Some((then, before)) => cpu_percent(before, &status, now.duration_since(*then)),
        None => BTreeMap::new(),
    };
    let payload = StatusEvent {
        status: &status,
        cpu_percent: cpu,
        routes: lock(&daemon).latest(),
    };
    let event = Event::default()
        .event("status")
        .json_data(&payload)
        .unwrap_or_default();
    cursor.after = Some(status.index);
    cursor.previous = Some((now, status));
    Some((Ok(event), cursor))
}
