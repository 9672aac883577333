//! The web dashboard on the admin port: the page itself (HTML, CSS and JS compiled into
//! the binary from `assets/`, no library, no build step) and what it reads and does.
//!
//! - `GET /`, `/dashboard.js`, `/dashboard.css`: the page, with a strict CSP.
//! - `GET /v1/events`: one Server-Sent Events stream ([`events`]): a `history` event (the
//!   routes' last five minutes, [`series`]), then a `status` event whenever the registry's
//!   index moves and at least once a second: the stack as `servio status --json` shows it
//!   (never an environment), CPU % per instance and each route's newest chart point.
//! - `GET /v1/logs` ([`logs`]): the tail of services' logs, then every new line (NDJSON).
//! - `POST /v1/services/{name}/{restart|stop|start|scale}` and
//!   `POST /v1/services/{name}/instances/{id}/restart` ([`actions`]): the CLI's verbs,
//!   through the supervisor's one `apply`.
//!
//! The admin API's guard applies to all of it: loopback Host only, and the token for every
//! change and for the logs.

pub mod actions;
pub mod events;
pub mod logs;
pub mod series;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

use super::Daemon;

/// How often the route charts get a point and the stream sends at least one status.
pub const TICK: Duration = Duration::from_secs(1);

const PAGE: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/dashboard.js");
const STYLE: &str = include_str!("assets/dashboard.css");

/// Only this page's own files, no framing, no referrer.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The dashboard's routes, merged into the admin API (under its guard).
pub fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", PAGE) }),
        )
        .route(
            "/dashboard.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/dashboard.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route("/v1/events", get(events::stream))
        .route("/v1/logs", get(logs::stream))
        .route("/v1/services/{name}/{verb}", post(actions::service))
        .route(
            "/v1/services/{name}/instances/{id}/restart",
            post(actions::restart_instance),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The routes' chart points, shared by the sampler and every stream.
pub type RouteHistory = Arc<Mutex<series::History>>;

/// Reads the gateway's route counters once a second into `history` until `stop`.
pub async fn sample_routes(
    gateway: crate::gateway::Gateway,
    history: RouteHistory,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let routes = gateway.route_totals();
        history.lock().unwrap_or_else(|e| e.into_inner()).record(
            Instant::now(),
            epoch_ms(SystemTime::now()),
            routes,
        );
    }
}

fn epoch_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
