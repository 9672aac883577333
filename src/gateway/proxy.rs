//! The gateway's shared state, [`Proxy`]: routes with their balancers, the registry's
//! healthy view, the metrics; and what every request goes through on either path (the
//! HTTP/1.1 fast path in [`super::h1`], hyper in [`super::general`]): the first decisions
//! (own `GET /health`, target check, route, declared body size) and, whatever its fate, one
//! access-log line and the metrics.

use std::sync::Arc;
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
use crate::daemon::registry::HealthyView;
use crate::manifest::Balance;

/// The gateway's shared state: every connection's requests run through it.
#[derive(Debug)]
pub struct Proxy {
    pub config: GatewayConfig,
    pub routes: RouteTable,
    /// The registry's healthy view: read per try, never copied.
    pub view: watch::Receiver<Arc<HealthyView>>,
    pub metrics: Metrics,
}

impl Proxy {
    pub fn new(config: GatewayConfig, view: watch::Receiver<Arc<HealthyView>>) -> Self {
        let mut balancers: Vec<Arc<ServiceBalancer>> = Vec::new();
        let compiled: Vec<CompiledRoute> = config
            .routes
            .iter()
            .map(|route| {
                let balancer = match balancers.iter().find(|b| b.name() == route.service) {
                    Some(existing) => existing.clone(),
                    None => {
                        let created = Arc::new(ServiceBalancer::new(
                            &route.service,
                            balance_config(&config, route.balance),
                        ));
                        balancers.push(created.clone());
                        created
                    }
                };
                let strip = route.strip_prefix.as_deref();
                CompiledRoute::new(&route.prefix, strip, &route.service, balancer)
            })
            .collect();
        let metrics = Metrics::new(
            compiled
                .iter()
                .map(|route| (route.label.clone(), route.service.clone())),
        );
        Proxy {
            routes: RouteTable::new(compiled),
            view,
            metrics,
            config,
        }
    }

    /// Every routed service's balancer, once each.
    fn balancers(&self) -> Vec<&Arc<ServiceBalancer>> {
        let mut seen: Vec<&Arc<ServiceBalancer>> = Vec::new();
        for route in self.routes.routes() {
            if !seen.iter().any(|b| Arc::ptr_eq(b, &route.balancer)) {
                seen.push(&route.balancer);
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
    ) -> Result<(usize, &CompiledRoute), Box<Response<ReplyBody>>> {
        if path == "/health" && matches!(*method, Method::GET | Method::HEAD) {
            return Err(Box::new(reply::health(request_id)));
        }
        let own = |failure: &Failure, service: Option<&str>| {
            Box::new(reply::failure(failure, service, path, request_id))
        };
        if let Err(why) = target {
            return Err(own(&Failure::BadTarget(why), None));
        }
        let Some((index, route)) = self.routes.find(path) else {
            return Err(own(&Failure::NoRoute, None));
        };
        exchange.route = Some(index);
        exchange.service = Some(route.service.clone());
        let limit = self.config.max_body;
        if declared.is_some_and(|length| length > limit) {
            return Err(own(&Failure::TooLarge { limit }, Some(&route.service)));
        }
        Ok((index, route))
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
        self.metrics.request(exchange.route, status, took);
        tracing::info!(
            target: "servio::gateway::access",
            %method,
            %path,
            status,
            service = exchange.service.as_deref().unwrap_or("-"),
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
