//! The admin API on 127.0.0.1 only: the registry (list, read, blocking watch, register and
//! deregister outside instances) and Prometheus metrics (the registry's and the gateway's).
//! Never serves an environment.
//!
//! Locked down ([`guard`]): a request whose `Host` is not this loopback address and port
//! (`127.0.0.1`, `localhost` or `[::1]`) is refused with 403, so a web page cannot reach the
//! API through DNS rebinding; a request that changes anything (any method but GET, HEAD and
//! OPTIONS) needs `Authorization: Bearer <token>`, the token the daemon writes to
//! `.servio/admin.token` (0600) at start, or gets 401; so does reading the services' logs.
//! No CORS header is ever sent.
//!
//! The web dashboard ([`super::dashboard`]) is served here too, under the same guard.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde_json::json;

use super::Daemon;
use super::supervisor::DeregisterError;
use crate::protocol::{Health, RegisterInstance};
use crate::registry::Filter;

const INDEX_HEADER: HeaderName = HeaderName::from_static("x-servio-index");
const MAX_WAIT: Duration = Duration::from_secs(300);

pub fn router(daemon: Arc<Daemon>) -> Router {
    let guard_state = daemon.clone();
    Router::new()
        .route(
            "/health",
            get(|| async { Json(json!({"status": "ok", "service": "servio-admin"})) }),
        )
        .route("/v1/services", get(list_services))
        .route("/v1/services/{name}", get(read_service))
        .route(
            "/v1/services/{name}/instances",
            get(read_service).post(register_instance),
        )
        .route(
            "/v1/services/{name}/instances/{id}",
            delete(deregister_instance),
        )
        .route("/metrics", get(metrics))
        .merge(super::dashboard::routes())
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint".into(),
            )
        })
        .layer(axum::middleware::from_fn_with_state(guard_state, guard))
        .with_state(daemon)
}

/// Who may ask what: see the module docs.
async fn guard(
    State(daemon): State<Arc<Daemon>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = request.headers();
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok());
    if !host.is_some_and(|h| is_loopback_host(h, daemon.admin_port)) {
        return error(
            StatusCode::FORBIDDEN,
            "foreign_host",
            "the admin API answers only requests addressed to 127.0.0.1, localhost or [::1]".into(),
        );
    }
    if needs_token(request.method(), request.uri().path()) {
        let presented = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "));
        if !presented.is_some_and(|token| same_secret(token, &daemon.admin_token)) {
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "changes need `Authorization: Bearer <token>`, the token in .servio/admin.token"
                    .into(),
            );
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
            return response;
        }
    }
    next.run(request).await
}

/// Changes (any method but GET, HEAD and OPTIONS) and the services' logs need the token.
pub fn needs_token(method: &axum::http::Method, path: &str) -> bool {
    use axum::http::Method;
    let reads = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    !reads || path == "/v1/logs" || path.starts_with("/v1/logs/")
}

/// `127.0.0.1:PORT`, `localhost:PORT` or `[::1]:PORT` (names compared without case).
pub fn is_loopback_host(host: &str, port: u16) -> bool {
    let Some((name, given)) = host.rsplit_once(':') else {
        return false;
    };
    given.parse::<u16>() == Ok(port)
        && ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .any(|allowed| name.eq_ignore_ascii_case(allowed))
}

/// Compares a presented token with the secret in time that does not depend on where they
/// differ.
fn same_secret(presented: &str, secret: &str) -> bool {
    presented.len() == secret.len()
        && presented
            .bytes()
            .zip(secret.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

pub fn error(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn with_index(index: u64, body: serde_json::Value) -> Response {
    let mut response = Json(body).into_response();
    if let Ok(value) = HeaderValue::from_str(&index.to_string()) {
        response.headers_mut().insert(INDEX_HEADER, value);
    }
    response
}

/// `?healthy=true&index=N&wait=30s`
#[derive(Debug)]
struct ViewQuery {
    filter: Filter,
    watch: Option<(u64, Duration)>,
}

fn parse_query(query: &HashMap<String, String>) -> Result<ViewQuery, Box<Response>> {
    let bad = |message: String| Box::new(error(StatusCode::BAD_REQUEST, "bad_query", message));
    let filter = match query.get("healthy").map(String::as_str) {
        None | Some("false") => Filter::Live,
        Some("true") | Some("") => Filter::Healthy,
        Some(other) => return Err(bad(format!("healthy must be true or false, not `{other}`"))),
    };
    let watch = match query.get("index") {
        None => None,
        Some(text) => {
            let index = text
                .parse::<u64>()
                .map_err(|_| bad(format!("index must be a whole number, not `{text}`")))?;
            let wait = match query.get("wait") {
                None => Duration::from_secs(30),
                Some(text) => humantime::parse_duration(text).map_err(|_| {
                    bad(format!(
                        "wait must be a duration like \"30s\", not `{text}`"
                    ))
                })?,
            };
            Some((index, wait.min(MAX_WAIT)))
        }
    };
    Ok(ViewQuery { filter, watch })
}

/// Reads `?healthy=&index=&wait=`; for a watch, holds the request until the registry (or,
/// with `service`, that one service) moves past the given index. Returns which instances to
/// answer with.
async fn settle(
    daemon: &Daemon,
    query: &HashMap<String, String>,
    service: Option<&str>,
) -> Result<Filter, Box<Response>> {
    let query = parse_query(query)?;
    match (query.watch, service) {
        (Some((after, wait)), Some(service)) => {
            daemon.registry.wait_past_in(service, after, wait).await
        }
        (Some((after, wait)), None) => {
            daemon.registry.wait_past(after, wait).await;
        }
        (None, _) => {}
    }
    Ok(query.filter)
}

async fn list_services(
    State(daemon): State<Arc<Daemon>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let filter = match settle(&daemon, &query, None).await {
        Ok(filter) => filter,
        Err(response) => return *response,
    };
    let (index, services) = daemon.registry.services(filter);
    with_index(index, json!({"index": index, "services": services}))
}

async fn read_service(
    State(daemon): State<Arc<Daemon>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let filter = match settle(&daemon, &query, Some(&name)).await {
        Ok(filter) => filter,
        Err(response) => return *response,
    };
    match daemon.registry.service(&name, filter) {
        Some(view) => with_index(view.index, serde_json::to_value(&view).unwrap_or_default()),
        None => error(
            StatusCode::NOT_FOUND,
            "service_not_found",
            format!("no service `{name}` in the registry"),
        ),
    }
}

async fn register_instance(
    State(daemon): State<Arc<Daemon>>,
    Path(name): Path<String>,
    body: Result<Json<RegisterInstance>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => {
            return error(rejection.status(), "bad_request", rejection.body_text());
        }
    };
    if !crate::manifest::is_valid_name(&name) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_service_name",
            format!("`{name}` is not a valid service name (lowercase letters, digits and '-')"),
        );
    }
    match daemon.supervisor.register(&name, request) {
        Ok(id) => {
            let view = daemon.registry.service(&name, Filter::All);
            match view.and_then(|v| v.instances.into_iter().find(|i| i.id == id)) {
                Some(instance) => (StatusCode::CREATED, Json(instance)).into_response(),
                None => error(StatusCode::CONFLICT, "conflict", "instance vanished".into()),
            }
        }
        Err(message) => error(StatusCode::CONFLICT, "conflict", message),
    }
}

async fn deregister_instance(
    State(daemon): State<Arc<Daemon>>,
    Path((name, id)): Path<(String, String)>,
) -> Response {
    match daemon.supervisor.deregister(&name, &id) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(DeregisterError::NotFound) => error(
            StatusCode::NOT_FOUND,
            "instance_not_found",
            format!("no instance `{id}` of `{name}`"),
        ),
        Err(DeregisterError::Managed) => error(
            StatusCode::CONFLICT,
            "managed_instance",
            format!("`{id}` is run by servio; stop it with `servio down`"),
        ),
    }
}

/// Prometheus text format: instances per service and health, then the gateway's metrics.
async fn metrics(State(daemon): State<Arc<Daemon>>) -> Response {
    use std::fmt::Write;
    let (_, services) = daemon.registry.status();
    let mut out = String::new();
    out.push_str("# HELP servio_instances Instances per service and health state.\n");
    out.push_str("# TYPE servio_instances gauge\n");
    for service in &services {
        let mut counts: HashMap<Health, usize> = HashMap::new();
        for instance in &service.instances {
            *counts.entry(instance.health).or_default() += 1;
        }
        let mut counts: Vec<_> = counts.into_iter().collect();
        counts.sort_by_key(|(h, _)| h.as_str());
        for (health, count) in counts {
            let _ = writeln!(
                out,
                "servio_instances{{service=\"{}\",health=\"{}\"}} {count}",
                service.name,
                health.as_str()
            );
        }
    }
    out.push_str("# HELP servio_instance_restarts_total Restarts per instance.\n");
    out.push_str("# TYPE servio_instance_restarts_total counter\n");
    for service in &services {
        for instance in &service.instances {
            let _ = writeln!(
                out,
                "servio_instance_restarts_total{{service=\"{}\",instance=\"{}\"}} {}",
                service.name, instance.id, instance.restarts
            );
        }
    }
    if let Some(gateway) = &daemon.gateway {
        gateway.render_metrics(&mut out);
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_with_the_admin_port_pass() {
        #[rustfmt::skip]
        let table = [
            ("127.0.0.1:2999", true),
            ("localhost:2999", true),
            ("LOCALHOST:2999", true),
            ("[::1]:2999", true),
            ("127.0.0.1", false),
            ("127.0.0.1:3000", false),
            ("evil.example:2999", false),
            ("127.0.0.1.evil.example:2999", false),
            ("localhost.:2999", false),
            ("", false),
            ("[::1]", false),
        ];
        for (host, allowed) in table {
            assert_eq!(is_loopback_host(host, 2999), allowed, "{host:?}");
        }
    }

    #[test]
    fn changes_and_logs_need_the_token() {
        use axum::http::Method;
        #[rustfmt::skip]
        let table = [
            (Method::GET, "/", false),
            (Method::GET, "/v1/events", false),
            (Method::GET, "/v1/services", false),
            (Method::HEAD, "/metrics", false),
            (Method::GET, "/v1/logs", true),
            (Method::GET, "/v1/logs/x", true),
            (Method::GET, "/v1/logsx", false),
            (Method::POST, "/v1/services/a/restart", true),
            (Method::DELETE, "/v1/services/a/instances/b", true),
            (Method::PUT, "/", true),
        ];
        for (method, path, needed) in table {
            assert_eq!(needs_token(&method, path), needed, "{method} {path}");
        }
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("", "abc"));
    }
}
