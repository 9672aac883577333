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

/// Adds `/health`, `/openapi.json`, JSON 404/405 fallbacks and the body limit to `routes`.
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
}
