//! The tries of one proxied request, through the shared balancer, whatever carries them
//! (the HTTP/1.1 fast path or hyper): take a place under the service's cap, pick an instance
//! from the healthy view as it is now, send, report the outcome to the instance's breaker,
//! and retry on another instance only when that is safe: any method when nothing was sent
//! (connect failure), 502/503/504, timeouts and broken connections only for idempotent
//! methods whose body can be sent again; within the retry count, the budget and the
//! whole-request deadline, after a jittered backoff.

use std::sync::Arc;

use http::StatusCode;
use tokio::time::Instant;

use super::body::Hold;
use super::metrics::UpstreamError;
use super::proxy::Proxy;
use super::reply::Failure;
use super::routes::CompiledRoute;
use crate::balance::{Outcome, RetryToken, is_unavailable_status, may_retry};
use crate::registry::Endpoint;

/// What the access log says about a request.
#[derive(Debug, Default)]
pub struct Exchange {
    pub route: Option<Arc<CompiledRoute>>,
    /// The instance of the last try.
    pub instance: Option<Arc<str>>,
    pub retries: u32,
}

/// Why one try got no answer.
#[derive(Debug)]
pub enum TryError {
    /// The instance failed: counts against its breaker.
    Failed(Outcome, Failure),
    /// The client's body was too large or broke off: nobody else's fault.
    ClientFault(Failure),
}

/// How the tries of one request reach an instance.
pub trait Transport {
    /// An instance's answer, up to its head.
    type Reply;

    /// Sends one try to `endpoint` and waits for the answer's head.
    fn send(&mut self, endpoint: &Endpoint) -> impl Future<Output = Result<Self::Reply, TryError>>;

    fn status(reply: &Self::Reply) -> StatusCode;

    /// Whether another try can still send the whole request.
    fn replayable(&self) -> bool;
}

/// An instance's answer with the balancer guards its body holds while it streams.
pub struct Answered<R> {
    pub reply: R,
    pub hold: Hold,
}

/// The tries of one request to `route`'s service: the answer to relay, or the failure to
/// answer with. `deadline` bounds every try and backoff.
pub async fn run<T: Transport>(
    proxy: &Proxy,
    route: &CompiledRoute,
    transport: &mut T,
    idempotent: bool,
    deadline: Instant,
    exchange: &mut Exchange,
) -> Result<Answered<T::Reply>, Failure> {
    let service = &*route.service;
    let permit = route
        .balancer
        .admit()
        .map_err(|overloaded| Failure::Overloaded {
            limit: overloaded.limit,
        })?;
    let config = &proxy.config;
    let mut tried: Vec<Arc<str>> = Vec::new();
    let mut retry: Option<RetryToken> = None;
    let mut last = Failure::NoInstance;
    loop {
        let endpoints = healthy(proxy, service);
        let exclude: Vec<&str> = tried.iter().map(|id| &**id).collect();
        let Ok(mut attempt) = permit.pick(&endpoints, &exclude) else {
            return Err(last);
        };
        let Some(endpoint) = endpoints.get(attempt.index()) else {
            return Err(last);
        };
        exchange.instance = Some(endpoint.id.clone());
        let try_deadline = deadline.min(Instant::now() + config.per_try_timeout);
        let tried_now = match tokio::time::timeout_at(try_deadline, transport.send(endpoint)).await
        {
            Err(_) => Err(TryError::Failed(Outcome::Timeout, Failure::Timeout)),
            Ok(result) => result,
        };
        let replayable = transport.replayable();
        let next = |outcome: &Outcome| {
            let allowed = exchange.retries < config.retries
                && may_retry(idempotent, outcome.was_sent(), outcome)
                && replayable
                && healthy(proxy, service)
                    .iter()
                    .any(|other| other.id != endpoint.id && !tried.contains(&other.id));
            let backoff = allowed
                .then(|| route.balancer.config().retry.backoff(exchange.retries + 1))
                .filter(|backoff| Instant::now() + *backoff < deadline)?;
            // Only a retry the budget grants is taken; else the caller gets this answer.
            permit.try_retry().map(|token| (backoff, token))
        };
        let (backoff, token, failure) = match tried_now {
            Err(TryError::ClientFault(failure)) => return Err(failure),
            Ok(reply) => {
                let status = T::status(&reply);
                let outcome = Outcome::Status(status);
                attempt.record(&outcome);
                let unavailable = is_unavailable_status(status);
                if unavailable {
                    route.metrics.upstream_error(UpstreamError::Unavailable);
                }
                let Some((backoff, token)) = unavailable.then(|| next(&outcome)).flatten() else {
                    let hold = Hold {
                        attempt,
                        permit,
                        retry,
                    };
                    return Ok(Answered { reply, hold });
                };
                let reason = format!("answered {status}");
                (backoff, token, upstream_reason(endpoint, reason))
            }
            Err(TryError::Failed(outcome, failure)) => {
                attempt.record(&outcome);
                let kind = match outcome {
                    Outcome::ConnectFailed => UpstreamError::Connect,
                    Outcome::Timeout => UpstreamError::Timeout,
                    Outcome::Broken | Outcome::Status(_) => UpstreamError::Broken,
                };
                route.metrics.upstream_error(kind);
                match next(&outcome) {
                    Some((backoff, token)) => (backoff, token, failure),
                    None => return Err(failure),
                }
            }
        };
        last = failure;
        tried.push(endpoint.id.clone());
        drop(attempt);
        retry = Some(token);
        exchange.retries += 1;
        tokio::time::sleep(backoff).await;
    }
}

/// The service's healthy instances in the registry's view right now.
fn healthy(proxy: &Proxy, service: &str) -> Arc<[Endpoint]> {
    proxy
        .view
        .borrow()
        .get(service)
        .cloned()
        .unwrap_or_else(|| Arc::from([]))
}

/// A 502 naming the instance and the innermost cause ("Connection refused (os error 111)").
pub fn upstream_failure(endpoint: &Endpoint, error: impl std::error::Error) -> Failure {
    let mut reason = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        reason = cause.to_string();
        source = cause.source();
    }
    upstream_reason(endpoint, reason)
}

fn upstream_reason(endpoint: &Endpoint, reason: String) -> Failure {
    Failure::Upstream {
        instance: endpoint.id.to_string(),
        reason,
    }
}
