//! The gateway: a reverse proxy on `[gateway].port` in front of every service. A request
//! goes to the route with the longest matching prefix, then, through the shared
//! [`crate::balance`] mechanism, to one healthy instance of the route's service, read from the
//! registry's live healthy view at that moment. hyper on both sides, bodies streamed.
//!
//! # Layout
//!
//! - [`server`]: worker threads accepting connections, limits, idle close, drain.
//! - [`h1`]: the HTTP/1.1 fast path most requests take, on plain buffers.
//! - [`general`]: hyper, for what the fast path hands over (h2c, upgrades, HTTP/1.0,
//!   streamed request bodies).
//! - [`proxy`]: the shared state and what both paths do alike: first decisions, access log.
//! - [`forward`]: the tries on instances, for both paths: pick, send, judge, retry when
//!   safe.
//! - [`routes`]: prefix matching, prefix stripping and request-target safety, as pure code.
//! - [`headers`]: hop-by-hop headers, X-Forwarded-*, request ids.
//! - [`body`]: request bodies (counted, replayable when small) and reply bodies.
//! - [`reply`]: the gateway's own JSON answers (404, 413, 502, 503, 504, ...).
//! - [`openapi`]: the gateway's own `GET /openapi.json`: every routed service's document,
//!   merged under the public prefixes.
//! - [`metrics`]: counters and latency histograms in Prometheus text.
//! - [`upstream`]: each worker's hyper connections to instances.
//! - [`pool`]: each worker's connections to instances counted, reused, waited for.
//! - [`upgrade`]: WebSocket and other `Upgrade` tunnels.

pub mod body;
pub mod forward;
pub mod general;
pub mod h1;
pub mod headers;
pub mod metrics;
pub mod openapi;
pub mod pool;
pub mod proxy;
pub mod reply;
pub mod routes;
pub mod server;
pub mod upgrade;
pub mod upstream;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::balance::ServiceStats;
use crate::registry::{Endpoint, HealthyView};

/// Request headers (with the request line) larger than this are refused with 431.
pub const MAX_HEADER_BYTES: usize = 64 << 10;

/// Bodies up to this size are kept in memory when the request may be retried after it was
/// sent (idempotent methods); larger ones stream and are only retried when nothing was sent.
pub const REPLAYABLE_BODY_BYTES: u64 = 64 << 10;

/// Upstream connections idle longer than this are closed: below the services' own idle
/// timeouts, so the gateway never reuses a connection the service is closing.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Worker threads at most, whatever the core count.
pub const MAX_WORKERS: usize = 16;

/// How long open connections get to finish their requests once the gateway stops.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The gateway runs on the manifest's validated `[gateway]` table as is (limits are at
/// least 1, per-try timeouts at most the request timeout).
pub use crate::manifest::Gateway as GatewayConfig;

impl crate::balance::Endpoint for Endpoint {
    fn id(&self) -> &str {
        &self.id
    }
}

/// A running gateway, as the daemon sees it: where it listens, and its state for `servio
/// status` and /metrics. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Gateway {
    proxy: Arc<proxy::Proxy>,
    addr: SocketAddr,
    /// False while a held gateway accepts nothing (see [`Gateway::open`]).
    opened: Arc<watch::Sender<bool>>,
}

impl Gateway {
    /// Binds 127.0.0.1:`port` (0 picks a free port) and serves until `shutdown`, then lets
    /// open requests finish for up to [`DRAIN_TIMEOUT`]. The task ends when the gateway has.
    pub async fn start(
        config: GatewayConfig,
        port: u16,
        view: watch::Receiver<Arc<HealthyView>>,
        shutdown: CancellationToken,
    ) -> std::io::Result<(Gateway, tokio::task::JoinHandle<()>)> {
        let (gateway, task) = Self::start_held(config, port, view, shutdown).await?;
        gateway.open();
        Ok((gateway, task))
    }

    /// Like [`Gateway::start`], but the port only listens: connections wait in the kernel's
    /// backlog, unanswered, until [`Gateway::open`]. A daemon that adopts a crashed one's
    /// instances opens once their health is known, so the first clients back are not told
    /// "no healthy instance" about instances that serve.
    pub async fn start_held(
        config: GatewayConfig,
        port: u16,
        view: watch::Receiver<Arc<HealthyView>>,
        shutdown: CancellationToken,
    ) -> std::io::Result<(Gateway, tokio::task::JoinHandle<()>)> {
        let proxy = Arc::new(proxy::Proxy::new(config, view));
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS));
        let (opened, accepting) = watch::channel(false);
        let (addr, task) =
            server::start(port, proxy.clone(), workers, accepting, shutdown.clone())?;
        tokio::spawn(proxy::forget_departed(proxy.clone(), shutdown));
        let opened = Arc::new(opened);
        Ok((
            Gateway {
                proxy,
                addr,
                opened,
            },
            task,
        ))
    }

    /// Starts accepting client connections (idempotent).
    pub fn open(&self) {
        self.opened.send_replace(true);
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Follows `[gateway]` as `servio up` re-read it: the routes change at once (see
    /// [`proxy::Proxy::set_routes`]); the other settings (port, limits, timeouts, retries)
    /// stay as the gateway started, and a change to them is logged with what to do.
    pub fn reload(&self, config: &GatewayConfig) {
        if self.proxy.set_routes(&config.routes) {
            tracing::info!(routes = config.routes.len(), "gateway routes reloaded");
        }
        let running = &self.proxy.config;
        let others_changed = GatewayConfig {
            routes: config.routes.clone(),
            ..running.clone()
        } != *config;
        if others_changed {
            tracing::warn!(
                "[gateway] settings other than routes changed in the manifest; they apply once \
the daemon restarts (`servio down`, then `servio up`)"
            );
        }
    }

    /// True when a route leads to `service`: only then can the gateway have picked one of
    /// its instances.
    pub fn routes_to(&self, service: &str) -> bool {
        self.proxy.balancers().iter().any(|b| b.name() == service)
    }

    /// Requests in flight from the gateway to instance `id` of `service` right now: a
    /// draining instance is stopped once this reaches 0.
    pub fn in_flight(&self, service: &str, id: &str) -> usize {
        self.proxy
            .balancers()
            .iter()
            .find(|b| b.name() == service)
            .map_or(0, |b| b.in_flight(id))
    }

    /// Breakers, in-flight counts and retry counters of every routed service.
    pub fn balancing(&self) -> Vec<ServiceStats> {
        self.proxy.balancing()
    }

    /// Each route's prefix, service, requests answered, 5xx answers and latency buckets,
    /// ever.
    pub fn route_totals(&self) -> Vec<crate::protocol::RouteStatus> {
        self.proxy.metrics.route_totals()
    }

    /// The gateway's own counters: connections, retries, 502/503/504 answers.
    pub fn figures(&self) -> crate::protocol::GatewayFigures {
        self.proxy.metrics.figures(&self.balancing())
    }

    /// Appends the gateway's metrics in Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        self.proxy.render_metrics(out);
    }
}
