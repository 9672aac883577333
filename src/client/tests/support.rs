//! Real servers on 127.0.0.1:0 for the client's tests: a stand-in registry serving the
//! registry API contract (plain reads and blocking watches) until the daemon's admin API is
//! merged, and upstream instances that answer, fail with a status, or hang.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::protocol::{Health, Instance, ServiceView};

/// Starts `router` on a free loopback port; it stops when `stop` is cancelled.
async fn serve(router: Router, stop: CancellationToken) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local address").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    });
    port
}

/// An instance record as the registry publishes it.
pub fn instance(service: &str, id: &str, port: u16, health: Health) -> Instance {
    Instance {
        service: service.to_owned(),
        version: "1.0.0".to_owned(),
        port,
        since: "2025-01-01T00:00:00Z".to_owned(),
        managed: false,
        ..Instance::for_test(id, health)
    }
}

/// A port nothing listens on.
pub fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// The stand-in registry.
pub struct Registry {
    pub url: String,
    views: Arc<watch::Sender<HashMap<String, ServiceView>>>,
    stop: CancellationToken,
}

#[derive(Deserialize)]
struct ViewQuery {
    healthy: Option<bool>,
    index: Option<u64>,
    wait: Option<String>,
}

impl Registry {
    pub async fn start() -> Registry {
        let views = Arc::new(watch::Sender::new(HashMap::new()));
        let stop = CancellationToken::new();
        let router = Router::new()
            .route("/v1/services/{name}", axum::routing::get(view))
            .with_state((Arc::clone(&views), stop.clone()));
        let port = serve(router, stop.clone()).await;
        Registry {
            url: format!("http://127.0.0.1:{port}"),
            views,
            stop,
        }
    }

    /// Publishes `instances` as the service's view, at the next registry index.
    pub fn set(&self, service: &str, instances: Vec<Instance>) {
        self.views.send_modify(|views| {
            let index = views.values().map(|v| v.index).max().unwrap_or(0) + 1;
            let view = ServiceView {
                index,
                name: service.to_owned(),
                version: "1.0.0".to_owned(),
                instances,
            };
            views.insert(service.to_owned(), view);
        });
    }

    /// Stops answering: held watches end with 503, new connections are refused.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

type RegistryState = (
    Arc<watch::Sender<HashMap<String, ServiceView>>>,
    CancellationToken,
);

async fn view(
    State((views, stop)): State<RegistryState>,
    Path(name): Path<String>,
    Query(query): Query<ViewQuery>,
) -> Response {
    let mut changes = views.subscribe();
    if let Some(index) = query.index {
        let wait = query
            .wait
            .as_deref()
            .and_then(|w| humantime::parse_duration(w).ok())
            .unwrap_or(Duration::from_secs(30));
        let changed =
            changes.wait_for(|views| views.get(&name).is_none_or(|view| view.index > index));
        tokio::select! {
            _ = tokio::time::timeout(wait, changed) => {}
            () = stop.cancelled() => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
        }
    }
    let Some(mut view) = changes.borrow().get(&name).cloned() else {
        let error = serde_json::json!({"error": {"code": "service_not_found", "message": format!("no service named {name}")}});
        return (StatusCode::NOT_FOUND, axum::Json(error)).into_response();
    };
    if query.healthy == Some(true) {
        view.instances.retain(|i| i.health == Health::Healthy);
    }
    (
        [("x-servio-index", view.index.to_string())],
        axum::Json(view),
    )
        .into_response()
}

/// How an upstream instance answers every request.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// 200 with `{"instance": id, "method": .., "path": .., "body": ..}`.
    Echo,
    /// This status, with the same JSON body.
    Status(u16),
    /// Never answers.
    Hang,
}

/// An upstream instance of a service.
pub struct Upstream {
    pub instance: Instance,
    hits: Arc<AtomicUsize>,
}

impl Upstream {
    pub async fn start(service: &str, id: &str, behaviour: Behaviour) -> Upstream {
        let hits = Arc::new(AtomicUsize::new(0));
        let state = (id.to_owned(), behaviour, Arc::clone(&hits));
        let router = Router::new().fallback(answer).with_state(state);
        let port = serve(router, CancellationToken::new()).await;
        Upstream {
            instance: instance(service, id, port, Health::Healthy),
            hits,
        }
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn answer(
    State((id, behaviour, hits)): State<(String, Behaviour, Arc<AtomicUsize>)>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    hits.fetch_add(1, Ordering::SeqCst);
    let echo = serde_json::json!({
        "instance": id,
        "method": method.as_str(),
        "path": uri.path_and_query().map_or("/", |p| p.as_str()),
        "body": String::from_utf8_lossy(&body),
    });
    let status = match behaviour {
        Behaviour::Echo => StatusCode::OK,
        Behaviour::Status(code) => {
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Behaviour::Hang => std::future::pending().await,
    };
    (status, axum::Json(echo)).into_response()
}
