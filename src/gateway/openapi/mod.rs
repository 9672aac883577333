//! The gateway's own `GET /openapi.json` (like its `/health`, never proxied): one OpenAPI
//! document for every route, each service's paths under the prefix clients use.
//!
//! Each routed service's `/openapi.json` is fetched, all at once, from one of its healthy
//! instances through the same tries as a proxied GET ([`crate::gateway::forward`]: the
//! balancer's pick, breakers, a retry on another instance, `request_timeout`), over the
//! calling worker's upstream connections. [`merge`] makes one document of them.
//!
//! The answer: `200` with the document; a service whose document could not be had (no
//! healthy instance, an error answer, not JSON) is left out and named under
//! `x-servio-missing` with why. When every routed service is missing: `503
//! openapi_unavailable` naming each. No routes: a document with no paths.
//!
//! The fast path hands these requests to hyper ([`crate::gateway::general`]), which owns the
//! upstream connections this needs; they are rare.

pub mod merge;

use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde_json::Value;

use self::merge::Fetched;
use super::body::ReplyBody;
use super::forward::{self, Answered, Exchange};
use super::general::Outgoing;
use super::headers::X_REQUEST_ID;
use super::proxy::Proxy;
use super::reply::{self, Failure};
use super::routes::CompiledRoute;
use super::upstream::Upstream;

/// Where the gateway serves its document, and where it asks each service for theirs.
pub const DOCUMENT_PATH: &str = "/openapi.json";

/// A service's document larger than this is not read (and that service is missing).
pub const MAX_DOCUMENT_BYTES: usize = 4 << 20;

/// Whether the gateway answers this request with its own document.
pub fn is_own_document(method: &Method, path: &str) -> bool {
    path == DOCUMENT_PATH && matches!(*method, Method::GET | Method::HEAD)
}

/// The merged document of every routed service, as an HTTP answer.
pub async fn answer(
    proxy: &Proxy,
    client: &Upstream,
    request_id: &HeaderValue,
) -> Response<ReplyBody> {
    let table = proxy.table();
    let mut first_routes: Vec<&CompiledRoute> = Vec::new();
    for route in table.routes() {
        if !first_routes.iter().any(|r| r.service == route.service) {
            first_routes.push(route);
        }
    }
    let deadline = tokio::time::Instant::now() + proxy.config.request_timeout;
    let fetches = first_routes
        .iter()
        .map(|route| fetch(proxy, client, route, request_id, deadline));
    let fetched: Vec<Fetched> = futures_util::future::join_all(fetches).await;
    match merge::merge(&table, &fetched, env!("CARGO_PKG_VERSION")) {
        Some(document) => document_response(&document, request_id),
        None => {
            let why: Vec<String> = fetched
                .iter()
                .filter_map(|f| Some(format!("{}: {}", f.service, f.document.as_ref().err()?)))
                .collect();
            let failure = Failure::NoDocuments(why.join("; "));
            reply::failure(&failure, None, DOCUMENT_PATH, request_id)
        }
    }
}

/// `route`'s service's document, or why there is none.
async fn fetch(
    proxy: &Proxy,
    client: &Upstream,
    route: &CompiledRoute,
    request_id: &HeaderValue,
    deadline: tokio::time::Instant,
) -> Fetched {
    let service = route.service.to_string();
    let document = fetch_document(proxy, client, route, request_id, deadline).await;
    if let Err(reason) = &document {
        tracing::warn!(%service, %reason, "no OpenAPI document for the gateway's /openapi.json");
    }
    Fetched { service, document }
}

async fn fetch_document(
    proxy: &Proxy,
    client: &Upstream,
    route: &CompiledRoute,
    request_id: &HeaderValue,
    deadline: tokio::time::Instant,
) -> Result<Value, String> {
    let mut outgoing = Outgoing::own_get(client, DOCUMENT_PATH, request_id);
    let mut exchange = Exchange::default();
    let tried = forward::run(proxy, route, &mut outgoing, true, deadline, &mut exchange).await;
    let Answered { reply, hold } =
        tried.map_err(|failure| failure.message(Some(&route.service), DOCUMENT_PATH))?;
    let status = reply.status();
    if status != StatusCode::OK {
        return Err(format!("{DOCUMENT_PATH} answered {status}"));
    }
    let read = Limited::new(reply.into_body(), MAX_DOCUMENT_BYTES).collect();
    let body = match tokio::time::timeout_at(deadline, read).await {
        Ok(Ok(body)) => body.to_bytes(),
        Ok(Err(error)) => return Err(format!("{DOCUMENT_PATH} could not be read: {error}")),
        Err(_) => return Err(format!("{DOCUMENT_PATH} did not arrive in time")),
    };
    drop(hold);
    match serde_json::from_slice::<Value>(&body) {
        Ok(document) if document.get("paths").is_some_and(Value::is_object) => Ok(document),
        Ok(_) => Err(format!("{DOCUMENT_PATH} is not an OpenAPI document")),
        Err(error) => Err(format!("{DOCUMENT_PATH} is not JSON: {error}")),
    }
}

fn document_response(document: &Value, request_id: &HeaderValue) -> Response<ReplyBody> {
    let mut response = reply::json_response(StatusCode::OK, document);
    let headers = response.headers_mut();
    // Assembled from the instances as they are now: never from a cache.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(&X_REQUEST_ID, request_id.clone());
    response
}
