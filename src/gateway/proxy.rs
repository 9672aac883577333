//! The gateway's shared state, [`Proxy`]: routes with their balancers, the registry's
//! healthy view, the metrics; and what every request goes through on either path (the
//! HTTP/1.1 fast path in [`super::h1`], hyper in [`super::general`]): the first decisions
//! (own `GET /health`, target check, route, declared body size) and, whatever its fate, one
//! access-log line and the metrics. The own `GET /openapi.json` is decided before these, by
//! each path ([`super::openapi::is_own_document`]).

use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use http::header::HeaderValue;
use http::{Method, Response};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::GatewayConfig;
use super::body::ReplyBody;
use super::forward::Exchange;
use super::metrics::Metrics;
use super::reply::{self, Failure};
use super::routes::{CompiledRoute, RouteTable};
use crate::balance::{BalanceConfig, RetryConfig, ServiceBalancer, ServiceStats, Strategy};
use crate::manifest::{Balance, Route};
use crate::registry::HealthyView;

/// The gateway's shared state: every connection's requests run through it.
#[derive(Debug)]
pub struct Proxy {
    /// The settings the gateway started with. Its routes live in `table`, which follows the
    /// manifest on every `servio up`.
    pub config: GatewayConfig,
    table: RwLock<Arc<RouteTable>>,
    /// The manifest's routes `table` was compiled from.
    configured: Mutex<Vec<Route>>,
    /// The registry's healthy view: read per try, never copied.
    pub view: watch::Receiver<Arc<HealthyView>>,
    pub metrics: Metrics,
}

impl Proxy {
    pub fn new(config: GatewayConfig, view: watch::Receiver<Arc<HealthyView>>) -> Self {
        let proxy = Proxy {
            table: RwLock::default(),
            configured: Mutex::default(),
            view,
            metrics: Metrics::default(),
            config,
        };
        proxy.set_routes(&proxy.config.routes);
        proxy
    }

    /// The routes as they are now.
    pub fn table(&self) -> Arc<RouteTable> {
        self.table.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Serves `routes` from now on. A service that keeps its balancing strategy keeps its
    /// balancer (breakers, in-flight counts); a route that stays (same prefix and service)
    /// keeps its counters. Requests already routed finish on the routes they took. False
    /// when the routes are the ones served already.
    pub fn set_routes(&self, routes: &[Route]) -> bool {
        let mut configured = self.configured.lock().unwrap_or_else(|p| p.into_inner());
        if *configured == routes {
            return false;
        }
        let old = self.table();
        let mut balancers: Vec<Arc<ServiceBalancer>> = Vec::new();
        let compiled: Vec<CompiledRoute> = routes
            .iter()
            .map(|route| {
                let config = balance_config(&self.config, route.balance);
                let earlier = old.routes().iter().map(|r| &r.balancer);
                let balancer = balancers
                    .iter()
                    .chain(earlier)
                    .find(|b| b.name() == route.service && *b.config() == config)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(ServiceBalancer::new(&route.service, config)));
                if !balancers.iter().any(|b| Arc::ptr_eq(b, &balancer)) {
                    balancers.push(balancer.clone());
                }
                let metrics = old
                    .routes()
                    .iter()
                    .find(|r| *r.label == route.prefix && *r.service == route.service)
                    .map(|r| r.metrics.clone());
                let strip = route.strip_prefix.as_deref();
                CompiledRoute::new(&route.prefix, strip, &route.service, balancer, metrics)
            })
            .collect();
        let table = RouteTable::new(compiled);
        self.metrics
            .set_routes(table.routes().iter().map(|r| r.metrics.clone()).collect());
        *self.table.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(table);
        *configured = routes.to_vec();
        true
    }

    /// Every routed service's balancer, once each.
    pub(crate) fn balancers(&self) -> Vec<Arc<ServiceBalancer>> {
        let mut seen: Vec<Arc<ServiceBalancer>> = Vec::new();
        for route in self.table().routes() {
            if !seen.iter().any(|b| Arc::ptr_eq(b, &route.balancer)) {
                seen.push(route.balancer.clone());
            }
        }
        seen
    }

    pub fn balancing(&self) -> Vec<ServiceStats> {
        let now = Instant::now();
        let mut stats: Vec<ServiceStats> = self
            .balancers()
            .iter()
            .map(|b| b.snapshot_at(now))
            .collect();
        stats.sort_by(|a, b| a.service.cmp(&b.service));
        stats
    }

    pub fn render_metrics(&self, out: &mut String) {
        let view = self.view.borrow().clone();
        self.metrics.render(out, &self.balancing(), &view);
    }

    /// The first decisions about a request, the same on every path: the gateway's own
    /// `GET /health`, a target that may not be proxied (`target`, checked by the caller for
    /// its protocol), the route, a declared body past `max_body`. `Ok` is the route to
    /// forward to; `Err` the gateway's own answer (boxed: it is the rare case).
    pub fn route_request(
        &self,
        method: &Method,
        path: &str,
        target: Result<(), &'static str>,
        declared: Option<u64>,
        request_id: &HeaderValue,
        exchange: &mut Exchange,
    ) -> Result<Arc<CompiledRoute>, Box<Response<ReplyBody>>> {
        if path == "/health" && matches!(*method, Method::GET | Method::HEAD) {
            return Err(Box::new(reply::health(request_id)));
        }
        let own = |failure: &Failure, service: Option<&str>| {
            Box::new(reply::failure(failure, service, path, request_id))
        };
        if let Err(why) = target {
            return Err(own(&Failure::BadTarget(why), None));
        }
        let Some(route) = self.table().find(path).cloned() else {
            return Err(own(&Failure::NoRoute, None));
        };
        exchange.route = Some(route.clone());
        let limit = self.config.max_body;
        if declared.is_some_and(|length| length > limit) {
            return Err(own(&Failure::TooLarge { limit }, Some(&route.service)));
        }
        Ok(route)
    }

    /// Counts a request that has its answer's head and writes its access-log line.
    pub fn finish(
        &self,
        method: &str,
        path: &str,
        status: u16,
        exchange: &Exchange,
        started: Instant,
        request_id: &HeaderValue,
    ) {
        let took = started.elapsed();
        let route = exchange.route.as_deref();
        self.metrics
            .request(route.map(|r| &*r.metrics), status, took);
        tracing::info!(
            target: "servio::gateway::access",
            %method,
            %path,
            status,
            service = route.map_or("-", |r| &*r.service),
            instance = exchange.instance.as_deref().unwrap_or("-"),
            duration_ms = took.as_secs_f64() * 1000.0,
            request_id = request_id.to_str().unwrap_or("-"),
            retries = exchange.retries,
        );
    }
}

fn balance_config(config: &GatewayConfig, balance: Balance) -> BalanceConfig {
    BalanceConfig {
        strategy: match balance {
            Balance::LeastRequest => Strategy::PowerOfTwoChoices,
            Balance::RoundRobin => Strategy::RoundRobin,
        },
        max_concurrent: config.max_concurrent as usize,
        retry: RetryConfig::default(),
        ..BalanceConfig::default()
    }
}

/// Forgets the breaker state of instances that left the healthy view, whenever it changes.
pub async fn forget_departed(proxy: Arc<Proxy>, shutdown: CancellationToken) {
    let mut view = proxy.view.clone();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = view.changed() => if changed.is_err() { return },
        }
        let current = view.borrow_and_update().clone();
        for balancer in proxy.balancers() {
            match current.get(balancer.name()) {
                Some(endpoints) => balancer.retain(endpoints),
                None => balancer.retain::<String>(&[]),
            }
        }
    }
}
