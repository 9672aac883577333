//! Routes every platform service serves the same way (`/health`, `/openapi.json`) and the
//! finishing layers (JSON fallbacks, body limit) wrapped around each service's own router.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;

use super::db::Db;
use super::http::{self, BODY_LIMIT};

/// Who this process is, as `/health` reports it.
#[derive(Debug, Clone)]
pub struct Identity {
    pub service: String,
    pub instance: Option<String>,
    pub version: String,
}

impl Identity {
    /// An identity for tests and tools: the default name and the crate version.
    pub fn local(service: &str) -> Identity {
        Identity {
            service: service.to_string(),
            instance: None,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

#[derive(Clone)]
struct Base {
    db: Db,
    identity: Arc<Identity>,
    openapi: Arc<Value>,
}

#[derive(Debug, Serialize)]
struct HealthBody<'a> {
    status: &'static str,
    service: &'a str,
    version: &'a str,
    instance: Option<&'a str>,
}

async fn health(State(base): State<Base>) -> Response {
    let ok = base.db.healthy().await;
    let id = &base.identity;
    let body = HealthBody {
        status: if ok { "ok" } else { "unavailable" },
        service: &id.service,
        version: &id.version,
        instance: id.instance.as_deref(),
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn openapi_json(State(base): State<Base>) -> Json<Value> {
    Json(base.openapi.as_ref().clone())
}

/// Logs each request at debug level: when it starts (so a hung request is visible) and
/// when it ends, with its status and duration. Off by default (`RUST_LOG=debug` shows it).
async fn log_requests(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    tracing::debug!(%method, %path, "request started");
    let start = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::debug!(
        %method, %path, status = response.status().as_u16(),
        ms = start.elapsed().as_secs_f64() * 1000.0, "request finished"
    );
    response
}

/// Adds `/health`, `/openapi.json`, JSON 404/405 fallbacks, the body limit and request
/// logging to `routes`.
pub fn finish(routes: Router, db: Db, identity: Identity, openapi: Value) -> Router {
    let base = Base {
        db,
        identity: Arc::new(identity),
        openapi: Arc::new(openapi),
    };
    let shared = Router::new()
        .route("/health", get(health))
        .route("/openapi.json", get(openapi_json))
        .with_state(base);
    routes
        .merge(shared)
        .fallback(http::no_route)
        .method_not_allowed_fallback(http::wrong_method)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(log_requests))
}

/// Calls `app` in-process, without a socket: the seam for handler unit tests.
#[cfg(test)]
pub async fn call(
    app: &Router,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    use http_body_util::BodyExt;
    use hyper::service::Service;
    let request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        ))
        .expect("request");
    let service = hyper_util::service::TowerToHyperService::new(app.clone());
    let response = service.call(request).await.expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}
