//! The general path, on hyper: every request the HTTP/1.1 fast path ([`super::h1`]) hands
//! over with its connection: h2c, HTTP/1.0, upgrades (WebSocket and the like), chunked or
//! large request bodies, `Expect`. Bodies stream both ways; small bodies of idempotent
//! requests are kept so a retry can send them again. The tries run through the same
//! [`super::forward`] loop as the fast path, over this worker's hyper connections.
//!
//! Framing on a connection hyper serves is hyper's (RFC 9112 section 6.3): Transfer-Encoding
//! wins over Content-Length, and such a connection closes after its answer; the fast path
//! refuses those heads outright before any handoff.

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Incoming};
use hyper::upgrade::OnUpgrade;

use super::REPLAYABLE_BODY_BYTES;
use super::body::{Hold, ReplyBody, RequestBody, UpstreamBody};
use super::forward::{self, Answered, Exchange, Transport, TryError};
use super::headers;
use super::openapi;
use super::proxy::Proxy;
use super::reply::{self, Failure};
use super::routes;
use super::upstream::{SendError, Upstream};
use crate::balance::Outcome;
use crate::registry::Endpoint;

/// Serves one request through `client` (the calling worker's connections); never fails:
/// every problem is an HTTP answer.
pub async fn handle(
    proxy: &Proxy,
    client: &Upstream,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<ReplyBody>, Infallible> {
    let started = Instant::now();
    let request_id = headers::request_id(request.headers());
    let method = request.method().clone();
    let uri = request.uri().clone();
    let mut exchange = Exchange::default();
    let response = dispatch(proxy, client, request, peer, &request_id, &mut exchange).await;
    let status = response.status().as_u16();
    proxy.finish(
        method.as_str(),
        uri.path(),
        status,
        &exchange,
        started,
        &request_id,
    );
    Ok(response)
}

async fn dispatch(
    proxy: &Proxy,
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
    if openapi::is_own_document(request.method(), path) {
        return openapi::answer(proxy, client, request_id).await;
    }
    let target = routes::check_target(request.method(), request.uri(), request.version());
    let declared = content_length(&request);
    let route = match proxy.route_request(
        request.method(),
        path,
        target,
        declared,
        request_id,
        exchange,
    ) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let service = Some(&*route.service);
    let upgrade = headers::is_upgrade(request.headers());
    let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let target = match (route.rewrite(path, uri.query()), uri.path_and_query()) {
        // Nothing stripped: the client's target as it is, without a copy.
        (Cow::Borrowed(same), Some(original)) if same == original.as_str() => original.clone(),
        (rewritten, _) => {
            match PathAndQuery::from_maybe_shared(Bytes::from(rewritten.into_owned())) {
                Ok(target) => target,
                Err(_) => return own(&Failure::BadTarget("the path cannot be sent on"), service),
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
    let limit = proxy.config.max_body;
    // The whole request, a body kept for retries included, has request_timeout.
    let deadline = tokio::time::Instant::now() + proxy.config.request_timeout;
    let read = request_body(body, declared, idempotent, limit);
    let body = match tokio::time::timeout_at(deadline, read).await {
        Ok(Ok(body)) => body,
        Ok(Err(failure)) => return own(&failure, service),
        Err(_) => return own(&Failure::BodyTimeout, service),
    };
    let mut outgoing = Outgoing {
        parts,
        target,
        body,
        limit,
        client,
    };
    let tried = forward::run(proxy, &route, &mut outgoing, idempotent, deadline, exchange).await;
    match tried {
        Ok(Answered { reply, hold }) => answer(reply, hold, on_upgrade, request_id),
        Err(failure) => own(&failure, service),
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

/// A request ready to go to an instance, through this worker's hyper connections.
pub(super) struct Outgoing<'a> {
    /// Method and headers as they go upstream; `uri` is the client's.
    parts: http::request::Parts,
    /// The path and query upstream (prefix stripped).
    target: PathAndQuery,
    body: RequestBody,
    limit: u64,
    client: &'a Upstream,
}

impl Transport for Outgoing<'_> {
    type Reply = Response<Incoming>;

    async fn send(&mut self, endpoint: &Endpoint) -> Result<Self::Reply, TryError> {
        let Some(body) = self.body.for_try() else {
            return Err(TryError::ClientFault(Failure::BodyBroken));
        };
        let request = self.upstream_request(endpoint.addr, body);
        self.client
            .send(endpoint.addr, request)
            .await
            .map_err(|error| self.classify(error, endpoint))
    }

    fn status(reply: &Self::Reply) -> StatusCode {
        reply.status()
    }

    fn replayable(&self) -> bool {
        self.body.replayable()
    }
}

impl<'a> Outgoing<'a> {
    /// A GET of `target` without a body that the gateway sends for itself (its own
    /// /openapi.json asks each service for theirs), carrying the client's request id.
    pub(super) fn own_get(
        client: &'a Upstream,
        target: &'static str,
        request_id: &HeaderValue,
    ) -> Self {
        let mut request = Request::new(());
        *request.uri_mut() = Uri::from_static(target);
        let headers = request.headers_mut();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(&headers::X_REQUEST_ID, request_id.clone());
        Outgoing {
            parts: request.into_parts().0,
            target: PathAndQuery::from_static(target),
            body: RequestBody::Empty,
            limit: 0,
            client,
        }
    }

    /// The request as an instance gets it: origin-form target, HTTP/1.1, the prepared
    /// headers (with a Host: the client's, or the instance's address for an HTTP/1.0 client
    /// without one).
    fn upstream_request(&self, addr: SocketAddr, body: UpstreamBody) -> Request<UpstreamBody> {
        let mut upstream = Request::new(body);
        *upstream.method_mut() = self.parts.method.clone();
        *upstream.uri_mut() = Uri::from(self.target.clone());
        *upstream.version_mut() = Version::HTTP_11;
        *upstream.headers_mut() = self.parts.headers.clone();
        if !upstream.headers().contains_key(header::HOST)
            && let Ok(host) = HeaderValue::from_str(&addr.to_string())
        {
            upstream.headers_mut().insert(header::HOST, host);
        }
        upstream
    }

    fn classify(&self, error: SendError, endpoint: &Endpoint) -> TryError {
        if self.body.over_limit() {
            return TryError::ClientFault(Failure::TooLarge { limit: self.limit });
        }
        match error {
            SendError::Connect(_) | SendError::Gone(_) => TryError::Failed(
                Outcome::ConnectFailed,
                forward::upstream_failure(endpoint, error),
            ),
            // The client's body failed while being sent: not the instance's fault.
            SendError::Exchange(error) if error.is_user() => {
                TryError::ClientFault(Failure::BodyBroken)
            }
            SendError::Exchange(_) => {
                TryError::Failed(Outcome::Broken, forward::upstream_failure(endpoint, error))
            }
        }
    }
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
