//! The tries of one proxied request, whatever carries them (the HTTP/1.1 fast path or
//! hyper): a place under the service's cap, then the balancer's one loop of tries
//! ([`crate::balance::tries`]) over the registry's healthy view, with the gateway's
//! failures and per-route upstream metrics.

use std::sync::Arc;

use http::StatusCode;
use tokio::time::Instant;

use super::metrics::UpstreamError;
use super::proxy::Proxy;
use super::reply::Failure;
use super::routes::CompiledRoute;
use crate::balance::{self, Limits, Outcome, is_unavailable_status};
use crate::registry::Endpoint;

pub use crate::balance::Answered;

/// Why one try got no answer: the instance failed, or the client's own request broke.
pub type TryError = balance::TryError<Failure>;

/// What the access log says about a request.
#[derive(Debug, Default)]
pub struct Exchange {
    pub route: Option<Arc<CompiledRoute>>,
    /// The instance of the last try.
    pub instance: Option<Arc<str>>,
    pub retries: u32,
}

/// How the tries of one request reach an instance (the fast path's or hyper's).
pub trait Transport {
    /// An instance's answer, up to its head.
    type Reply;

    /// Sends one try to `endpoint` and waits for the answer's head.
    fn send(&mut self, endpoint: &Endpoint) -> impl Future<Output = Result<Self::Reply, TryError>>;

    fn status(reply: &Self::Reply) -> StatusCode;

    /// Whether another try can still send the whole request.
    fn replayable(&self) -> bool;
}

/// The tries of one request to `route`'s service, through the balancer's one loop
/// ([`balance::tries::run`]): the answer to relay, or the failure to answer with.
/// `deadline` bounds every try and backoff.
pub async fn run<T: Transport>(
    proxy: &Proxy,
    route: &CompiledRoute,
    transport: &mut T,
    idempotent: bool,
    deadline: Instant,
    exchange: &mut Exchange,
) -> Result<Answered<T::Reply>, Failure> {
    let permit = route
        .balancer
        .admit()
        .map_err(|overloaded| Failure::Overloaded {
            limit: overloaded.limit,
        })?;
    let limits = Limits {
        idempotent,
        retries: proxy.config.retries,
        per_try_timeout: proxy.config.per_try_timeout,
        deadline,
    };
    let mut retries = 0;
    let mut routed = Routed {
        proxy,
        route,
        transport,
        instance: None,
    };
    let answered = balance::tries::run(permit, &mut routed, &limits, &mut retries).await;
    exchange.instance = routed.instance;
    exchange.retries = retries;
    answered
}

/// A gateway transport as the balancer's loop sees it: candidates from the registry's
/// healthy view, failures as the gateway answers them, and per-route upstream metrics.
struct Routed<'a, T> {
    proxy: &'a Proxy,
    route: &'a CompiledRoute,
    transport: &'a mut T,
    instance: Option<Arc<str>>,
}

impl<T: Transport> balance::Transport for Routed<'_, T> {
    type Instance = Endpoint;
    type View = Arc<[Endpoint]>;
    type Reply = T::Reply;
    type Failure = Failure;

    fn candidates(&self) -> Arc<[Endpoint]> {
        healthy(self.proxy, &self.route.service)
    }

    async fn send(&mut self, endpoint: &Endpoint) -> Result<T::Reply, TryError> {
        self.instance = Some(endpoint.id.clone());
        self.transport.send(endpoint).await
    }

    fn status(reply: &T::Reply) -> StatusCode {
        T::status(reply)
    }

    fn replayable(&self) -> bool {
        self.transport.replayable()
    }

    fn timed_out(&self, _: &Endpoint) -> Failure {
        Failure::Timeout
    }

    fn unavailable(&self, endpoint: &Endpoint, status: StatusCode) -> Failure {
        upstream_reason(endpoint, format!("answered {status}"))
    }

    fn no_instance(&self) -> Failure {
        Failure::NoInstance
    }

    fn tried(&mut self, _: &Endpoint, outcome: &Outcome) {
        let kind = match outcome {
            Outcome::Status(status) if is_unavailable_status(*status) => UpstreamError::Unavailable,
            Outcome::Status(_) => return,
            Outcome::ConnectFailed => UpstreamError::Connect,
            Outcome::Timeout => UpstreamError::Timeout,
            Outcome::Broken => UpstreamError::Broken,
        };
        self.route.metrics.upstream_error(kind);
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
