//! The tries of one proxied request, through the shared balancer: take a place under the
//! service's cap, pick an instance from the healthy view as it is now, send, report the
//! outcome to the instance's breaker, and retry on another instance only when that is safe:
//! any method when nothing was sent (connect failure), 502/503/504, timeouts and broken
//! connections only for idempotent methods whose body can be sent again; within the retry
//! count, the budget and the whole-request deadline, after a jittered backoff.

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use tokio::time::Instant;

use super::body::{Hold, ReplyBody, RequestBody, UpstreamBody};
use super::headers;
use super::metrics::UpstreamError;
use super::proxy::Proxy;
use super::reply::{self, Failure};
use super::routes::CompiledRoute;
use super::upstream::{SendError, Upstream};
use crate::balance::{Outcome, RetryToken, is_unavailable_status, may_retry};
use crate::daemon::registry::Endpoint;

/// What the access log says about a request.
#[derive(Debug, Default)]
pub struct Exchange {
    pub route: Option<usize>,
    pub service: Option<Arc<str>>,
    /// The instance of the last try.
    pub instance: Option<Arc<str>>,
    pub retries: u32,
}

/// A request ready to go to an instance.
#[derive(Debug)]
pub struct Outgoing {
    /// Method and headers as they go upstream; `uri` is the client's.
    pub parts: http::request::Parts,
    /// The path and query upstream (prefix stripped).
    pub target: PathAndQuery,
    pub body: RequestBody,
    pub idempotent: bool,
    /// The client's side of an upgrade, when it asked for one.
    pub on_upgrade: Option<OnUpgrade>,
    /// When the whole request (every try and backoff) must have its response headers.
    pub deadline: Instant,
}

/// How one try ended.
enum Tried {
    Answered(Response<Incoming>),
    /// The instance failed: counts against its breaker.
    Failed(Outcome, Failure),
    /// The client's body was too large or broke off: nobody else's fault.
    ClientFault(Failure),
}

pub async fn run(
    proxy: &Proxy,
    client: &Upstream,
    index: usize,
    route: &CompiledRoute,
    mut request: Outgoing,
    request_id: &HeaderValue,
    exchange: &mut Exchange,
) -> Response<ReplyBody> {
    let service = &*route.service;
    let uri = request.parts.uri.clone();
    let fail = |failure: &Failure| reply::failure(failure, Some(service), uri.path(), request_id);
    let permit = match route.balancer.admit() {
        Ok(permit) => permit,
        Err(overloaded) => {
            let limit = overloaded.limit;
            return fail(&Failure::Overloaded { limit });
        }
    };
    let config = &proxy.config;
    let deadline = request.deadline;
    let mut tried: Vec<Arc<str>> = Vec::new();
    let mut retry: Option<RetryToken> = None;
    let mut last = Failure::NoInstance;
    loop {
        let endpoints = healthy(proxy, service);
        let exclude: Vec<&str> = tried.iter().map(|id| &**id).collect();
        let Ok(mut attempt) = permit.pick(&endpoints, &exclude) else {
            return fail(&last);
        };
        let (Some(endpoint), Some(body)) = (endpoints.get(attempt.index()), request.body.for_try())
        else {
            return fail(&last);
        };
        exchange.instance = Some(endpoint.id.clone());
        let try_deadline = deadline.min(Instant::now() + config.per_try_timeout);
        let sent = client.send(
            endpoint.addr,
            upstream_request(&request, endpoint.addr, body),
        );
        let tried_now = match tokio::time::timeout_at(try_deadline, sent).await {
            Err(_) => Tried::Failed(Outcome::Timeout, Failure::Timeout),
            Ok(Ok(response)) => Tried::Answered(response),
            Ok(Err(error)) => classify(error, &request.body, config.max_body, endpoint),
        };
        let next = |outcome: &Outcome| {
            let retries = exchange.retries;
            let backoff = next_retry(proxy, route, &request, &tried, endpoint, retries, outcome)
                .filter(|backoff| Instant::now() + *backoff < deadline)?;
            // Only a retry the budget grants is taken; else the caller gets this answer.
            permit.try_retry().map(|token| (backoff, token))
        };
        let (backoff, token, failure) = match tried_now {
            Tried::ClientFault(failure) => return fail(&failure),
            Tried::Answered(response) => {
                let outcome = Outcome::Status(response.status());
                attempt.record(&outcome);
                let unavailable = is_unavailable_status(response.status());
                if unavailable {
                    proxy
                        .metrics
                        .upstream_error(index, UpstreamError::Unavailable);
                }
                let Some((backoff, token)) = unavailable.then(|| next(&outcome)).flatten() else {
                    let on_upgrade = request.on_upgrade.take();
                    let hold = Hold {
                        attempt,
                        permit,
                        retry,
                    };
                    return answer(response, hold, on_upgrade, request_id);
                };
                let reason = format!("answered {}", response.status());
                (backoff, token, upstream_reason(endpoint, reason))
            }
            Tried::Failed(outcome, failure) => {
                attempt.record(&outcome);
                let kind = match outcome {
                    Outcome::ConnectFailed => UpstreamError::Connect,
                    Outcome::Timeout => UpstreamError::Timeout,
                    Outcome::Broken | Outcome::Status(_) => UpstreamError::Broken,
                };
                proxy.metrics.upstream_error(index, kind);
                match next(&outcome) {
                    Some((backoff, token)) => (backoff, token, failure),
                    None => return fail(&failure),
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

/// The backoff before another try, when one is allowed: retries left, safe for this method
/// and outcome, a body that can be sent again, and a healthy instance not tried yet (neither
/// `current` nor one in `tried`).
fn next_retry(
    proxy: &Proxy,
    route: &CompiledRoute,
    request: &Outgoing,
    tried: &[Arc<str>],
    current: &Endpoint,
    retries: u32,
    outcome: &Outcome,
) -> Option<std::time::Duration> {
    let allowed = retries < proxy.config.retries
        && may_retry(request.idempotent, outcome.was_sent(), outcome)
        && request.body.replayable()
        && healthy(proxy, &route.service)
            .iter()
            .any(|other| other.id != current.id && !tried.contains(&other.id));
    allowed.then(|| route.balancer.config().retry.backoff(retries + 1))
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

/// The request as an instance gets it: origin-form target, HTTP/1.1, the prepared headers
/// (with a Host: the client's, or the instance's address for an HTTP/1.0 client without one).
fn upstream_request(
    request: &Outgoing,
    addr: SocketAddr,
    body: UpstreamBody,
) -> Request<UpstreamBody> {
    let mut upstream = Request::new(body);
    *upstream.method_mut() = request.parts.method.clone();
    *upstream.uri_mut() = Uri::from(request.target.clone());
    *upstream.version_mut() = Version::HTTP_11;
    *upstream.headers_mut() = request.parts.headers.clone();
    if !upstream.headers().contains_key(header::HOST)
        && let Ok(host) = HeaderValue::from_str(&addr.to_string())
    {
        upstream.headers_mut().insert(header::HOST, host);
    }
    upstream
}

/// The instance's response on its way to the client, holding the balancer guards while its
/// body streams; a 101 starts the tunnel and frees them.
fn answer(
    mut response: Response<Incoming>,
    hold: Hold,
    on_upgrade: Option<OnUpgrade>,
    request_id: &HeaderValue,
) -> Response<ReplyBody> {
    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client) = on_upgrade
    {
        let instance = hyper::upgrade::on(&mut response);
        tokio::spawn(super::upgrade::tunnel(client, instance));
        headers::forward_response(response.headers_mut(), true, request_id);
        drop(hold);
        return response.map(|_| ReplyBody::empty());
    }
    headers::forward_response(response.headers_mut(), false, request_id);
    // hyper answers in the client's version; an HTTP/1.0 instance must not downgrade it.
    *response.version_mut() = Version::HTTP_11;
    response.map(|body| ReplyBody::Upstream {
        body,
        hold: Some(hold),
    })
}

fn classify(error: SendError, body: &RequestBody, limit: u64, endpoint: &Endpoint) -> Tried {
    if body.over_limit() {
        return Tried::ClientFault(Failure::TooLarge { limit });
    }
    match error {
        SendError::Connect(_) | SendError::ConnectTimeout(_) => {
            Tried::Failed(Outcome::ConnectFailed, upstream(endpoint, error))
        }
        // The client's body failed while being sent: not the instance's fault.
        SendError::Exchange(error) if error.is_user() => Tried::ClientFault(Failure::BodyBroken),
        SendError::Exchange(_) => Tried::Failed(Outcome::Broken, upstream(endpoint, error)),
    }
}

/// A 502 naming the instance and the innermost cause ("Connection refused (os error 111)").
fn upstream(endpoint: &Endpoint, error: impl std::error::Error) -> Failure {
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
