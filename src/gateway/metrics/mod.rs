//! The gateway's counters, as plain atomics: requests by route and status, a latency
//! histogram per route (fixed buckets), upstream errors by kind, connections. Each route owns
//! its counters ([`RouteMetrics`]), so they follow it when the routes are reloaded. Balancer state
//! (in flight, retries, ejections, breakers) and healthy instances are read when rendering,
//! from the balancer snapshot and the registry's healthy view.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

mod balancing;

pub use balancing::breaker_text;

use crate::balance::ServiceStats;
use crate::protocol::{GatewayFigures, RouteStatus};
use crate::registry::HealthyView;

/// Upper bounds of the latency buckets, in seconds (+Inf is implied).
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Kinds of upstream errors, in label order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamError {
    Connect = 0,
    Timeout = 1,
    Broken = 2,
    /// The instance answered 502, 503 or 504.
    Unavailable = 3,
}

const ERROR_KINDS: [&str; 4] = ["connect", "timeout", "broken", "unavailable_status"];

/// Counters of one route (or of the requests no route took).
#[derive(Debug)]
pub struct RouteMetrics {
    label: Arc<str>,
    service: Arc<str>,
    /// Index `status - 100` for statuses 100..=599.
    statuses: Box<[AtomicU64]>,
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
    errors: [AtomicU64; 4],
}

impl RouteMetrics {
    pub fn new(label: Arc<str>, service: Arc<str>) -> Self {
        RouteMetrics {
            label,
            service,
            statuses: (100..600).map(|_| AtomicU64::new(0)).collect(),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
            errors: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl RouteMetrics {
    /// Counts one finished request.
    fn request(&self, status: u16, took: Duration) {
        if let Some(counter) = self.statuses.get(usize::from(status).wrapping_sub(100)) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let seconds = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Requests answered with a status in `statuses` (within 100..600).
    fn answered(&self, statuses: std::ops::Range<usize>) -> u64 {
        self.statuses[statuses.start - 100..statuses.end - 100]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    pub fn upstream_error(&self, kind: UpstreamError) {
        self.errors[kind as usize].fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug)]
pub struct Metrics {
    /// The counters of the routes configured now, in route order.
    routes: RwLock<Vec<Arc<RouteMetrics>>>,
    unmatched: RouteMetrics,
    pub connections_open: AtomicUsize,
    pub connections_total: AtomicU64,
    started: Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            routes: RwLock::new(Vec::new()),
            unmatched: RouteMetrics::new(Arc::from("-"), Arc::from("")),
            connections_open: AtomicUsize::new(0),
            connections_total: AtomicU64::new(0),
            started: Instant::now(),
        }
    }
}

impl Metrics {
    /// The routes whose counters /metrics shows from now on.
    pub fn set_routes(&self, routes: Vec<Arc<RouteMetrics>>) {
        *self.routes.write().unwrap_or_else(|p| p.into_inner()) = routes;
    }

    /// Counts one finished request, on its route or as unmatched.
    pub fn request(&self, route: Option<&RouteMetrics>, status: u16, took: Duration) {
        route.unwrap_or(&self.unmatched).request(status, took);
    }

    /// Per configured route: its prefix, service, requests answered, of which 5xx, and
    /// requests per latency bucket.
    pub fn route_totals(&self) -> Vec<RouteStatus> {
        let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
        routes
            .iter()
            .map(|r| RouteStatus {
                prefix: r.label.to_string(),
                service: r.service.to_string(),
                requests: r.answered(100..600),
                errors: r.answered(500..600),
                latency_buckets: r
                    .buckets
                    .iter()
                    .map(|c| c.load(Ordering::Relaxed))
                    .collect(),
            })
            .collect()
    }

    /// Connections now and ever, retries granted (from `balancing`) and 502/503/504
    /// answers over every route, the unmatched requests included.
    pub fn figures(&self, balancing: &[ServiceStats]) -> GatewayFigures {
        let configured = self
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let routes = || configured.iter().map(|r| &**r).chain([&self.unmatched]);
        let answered = |status: usize| routes().map(|r| r.answered(status..status + 1)).sum();
        GatewayFigures {
            connections_open: self.connections_open.load(Ordering::Relaxed) as u64,
            connections_total: self.connections_total.load(Ordering::Relaxed),
            retries: balancing.iter().map(|s| s.retries).sum(),
            bad_gateway: answered(502),
            unavailable: answered(503),
            gateway_timeout: answered(504),
        }
    }

    /// Prometheus text for everything the gateway knows.
    pub fn render(&self, out: &mut String, balancing: &[ServiceStats], view: &HealthyView) {
        let configured = self
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let routes: Vec<&RouteMetrics> = configured
            .iter()
            .map(|route| &**route)
            .chain([&self.unmatched])
            .collect();
        help(
            out,
            "servio_gateway_requests_total",
            "counter",
            "Requests by route and status.",
        );
        for r in &routes {
            for (i, count) in r.statuses.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    let (route, service, status) = (&r.label, &r.service, i + 100);
                    let _ = writeln!(
                        out,
                        "servio_gateway_requests_total{{route=\"{route}\",service=\"{service}\",status=\"{status}\"}} {count}"
                    );
                }
            }
        }
        let name = "servio_gateway_request_duration_seconds";
        help(
            out,
            name,
            "histogram",
            "Time to the response headers, by route.",
        );
        for r in &routes {
            let mut cumulative = 0;
            for (i, count) in r.buckets.iter().enumerate() {
                cumulative += count.load(Ordering::Relaxed);
                let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
                let _ = writeln!(
                    out,
                    "{name}_bucket{{route=\"{}\",le=\"{le}\"}} {cumulative}",
                    r.label
                );
            }
            let sum = r.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "{name}_sum{{route=\"{}\"}} {sum}", r.label);
            let _ = writeln!(out, "{name}_count{{route=\"{}\"}} {cumulative}", r.label);
        }
        help(
            out,
            "servio_gateway_upstream_errors_total",
            "counter",
            "Failed tries by kind.",
        );
        for r in routes.iter().filter(|r| !r.service.is_empty()) {
            for (kind, count) in ERROR_KINDS.iter().zip(&r.errors) {
                let _ = writeln!(
                    out,
                    "servio_gateway_upstream_errors_total{{route=\"{}\",service=\"{}\",kind=\"{kind}\"}} {}",
                    r.label,
                    r.service,
                    count.load(Ordering::Relaxed)
                );
            }
        }
        self.render_connections(out);
        balancing::render_balancing(out, balancing, view);
    }

    fn render_connections(&self, out: &mut String) {
        help(
            out,
            "servio_gateway_connections",
            "gauge",
            "Client connections open now.",
        );
        let open = self.connections_open.load(Ordering::Relaxed);
        let _ = writeln!(out, "servio_gateway_connections {open}");
        help(
            out,
            "servio_gateway_connections_total",
            "counter",
            "Client connections accepted.",
        );
        let total = self.connections_total.load(Ordering::Relaxed);
        let _ = writeln!(out, "servio_gateway_connections_total {total}");
        let uptime = self.started.elapsed().as_secs_f64();
        help(
            out,
            "servio_gateway_uptime_seconds",
            "gauge",
            "Since the gateway started.",
        );
        let _ = writeln!(out, "servio_gateway_uptime_seconds {uptime}");
    }
}

pub(super) fn help(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
}
