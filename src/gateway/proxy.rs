//! One request end to end: the gateway's own `GET /health`, the target check, the route,
//! the body limit, then [`super::forward`] to an instance; and for every request, whatever
//! its fate, one access-log line and the metrics.

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Incoming};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::body::{ReplyBody, RequestBody};
use super::forward::{self, Exchange};
use super::headers;
use super::metrics::Metrics;
use super::reply::{self, Failure};
use super::routes::{self, CompiledRoute, RouteTable};
use super::upstream::Upstream;
use super::{GatewayConfig, REPLAYABLE_BODY_BYTES};
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

    /// Serves one request through `client` (the calling worker's connections); never fails:
    /// every problem is an HTTP answer.
    pub async fn handle(
        &self,
        client: &Upstream,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<ReplyBody>, Infallible> {
        let started = Instant::now();
        let request_id = headers::request_id(request.headers());
        let method = request.method().clone();
        let uri = request.uri().clone();
        let mut exchange = Exchange::default();
        let response = self
            .dispatch(client, request, peer, &request_id, &mut exchange)
            .await;
        let took = started.elapsed();
        let status = response.status().as_u16();
        self.metrics.request(exchange.route, status, took);
        tracing::info!(
            target: "servio::gateway::access",
            method = %method,
            path = %uri.path(),
            status,
            service = exchange.service.as_deref().unwrap_or("-"),
            instance = exchange.instance.as_deref().unwrap_or("-"),
            duration_ms = took.as_secs_f64() * 1000.0,
            request_id = request_id.to_str().unwrap_or("-"),
            retries = exchange.retries,
        );
        Ok(response)
    }

    async fn dispatch(
        &self,
        client: &Upstream,
        mut request: Request<Incoming>,
        peer: SocketAddr,
        request_id: &HeaderValue,
        exchange: &mut Exchange,
    ) -> Response<ReplyBody> {
        let uri = request.uri().clone();
        let path = uri.path();
        let own = |failure: &Failure, service: Option<&str>| {
            reply::failure(failure, service, path, request_id)
        };
        if path == "/health" && matches!(*request.method(), Method::GET | Method::HEAD) {
            return reply::health(request_id);
        }
        if let Err(why) = routes::check_target(request.method(), request.uri(), request.version()) {
            return own(&Failure::BadTarget(why), None);
        }
        let Some((index, route)) = self.routes.find(path) else {
            return own(&Failure::NoRoute, None);
        };
        exchange.route = Some(index);
        exchange.service = Some(route.service.clone());
        let service = Some(&*route.service);
        let limit = self.config.max_body;
        let declared = content_length(&request);
        if declared.is_some_and(|length| length > limit) {
            return own(&Failure::TooLarge { limit }, service);
        }

        let upgrade = headers::is_upgrade(request.headers());
        let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
        let target = match (route.rewrite(path, uri.query()), uri.path_and_query()) {
            // Nothing stripped: the client's target as it is, without a copy.
            (Cow::Borrowed(same), Some(original)) if same == original.as_str() => original.clone(),
            (rewritten, _) => {
                match PathAndQuery::from_maybe_shared(Bytes::from(rewritten.into_owned())) {
                    Ok(target) => target,
                    Err(_) => {
                        return own(&Failure::BadTarget("the path cannot be sent on"), service);
                    }
                }
            }
        };
        let (mut parts, body) = request.into_parts();
        let authority = parts.uri.authority().map(|a| a.as_str().to_owned());
        headers::forward_request(
            &mut parts.headers,
            upgrade,
            authority.as_deref(),
            peer.ip(),
            request_id,
        );
        let idempotent = crate::balance::is_idempotent(&parts.method);
        // The whole request, a body kept for retries included, has request_timeout.
        let deadline = tokio::time::Instant::now() + self.config.request_timeout;
        let read = request_body(body, declared, idempotent, limit);
        let body = match tokio::time::timeout_at(deadline, read).await {
            Ok(Ok(body)) => body,
            Ok(Err(failure)) => return own(&failure, service),
            Err(_) => return own(&Failure::BodyTimeout, service),
        };
        let request = forward::Outgoing {
            parts,
            target,
            body,
            idempotent,
            on_upgrade,
            deadline,
        };
        forward::run(self, client, index, route, request, request_id, exchange).await
    }
}

/// The Content-Length the client declared, when it did.
fn content_length(request: &Request<Incoming>) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok())
        .or_else(|| request.body().size_hint().exact().filter(|n| *n > 0))
}

/// Empty bodies and small bodies of idempotent requests can be sent again; others stream
/// once, counted against `limit`.
async fn request_body(
    body: Incoming,
    declared: Option<u64>,
    idempotent: bool,
    limit: u64,
) -> Result<RequestBody, Failure> {
    if body.is_end_stream() {
        return Ok(RequestBody::Empty);
    }
    let small = declared.is_some_and(|length| length <= REPLAYABLE_BODY_BYTES.min(limit));
    if !(idempotent && small) {
        return Ok(RequestBody::once(body, limit));
    }
    let cap = usize::try_from(REPLAYABLE_BODY_BYTES.min(limit)).unwrap_or(usize::MAX);
    match Limited::new(body, cap).collect().await {
        Ok(collected) => Ok(RequestBody::Buffered(collected.to_bytes())),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(Failure::TooLarge { limit })
        }
        Err(_) => Err(Failure::BodyBroken),
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
