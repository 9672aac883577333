//! A fixed registry for the order tests until the daemon lands: serves the admin API's
//! `GET /v1/services/{name}` contract (`servio::protocol::ServiceView`) for the instances a
//! test registers, so the order service finds menu and inventory through its real client.
//! Replace with a `servio up` fixture once the daemon is merged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use servio::protocol::{Health, Instance, ServiceView};

type Table = Arc<Mutex<HashMap<String, Vec<u16>>>>;

pub struct Registry {
    pub url: String,
    table: Table,
}

impl Registry {
    /// Serves on a free loopback port from a background thread for the rest of the test.
    pub fn start() -> Registry {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind registry");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let table: Table = Arc::default();
        let app = axum::Router::new()
            .route("/v1/services/{name}", get(view))
            .with_state(table.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let _ = axum::serve(listener, app).await;
            });
        });
        Registry { url, table }
    }

    /// Lists an instance of `service` on `port` as healthy.
    pub fn add(&self, service: &str, port: u16) {
        let mut table = self.table.lock().expect("registry table");
        table.entry(service.to_string()).or_default().push(port);
    }
}

async fn view(State(table): State<Table>, Path(name): Path<String>) -> Response {
    let ports = table
        .lock()
        .map(|t| t.get(&name).cloned())
        .unwrap_or_default();
    let Some(ports) = ports else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let instances = ports
        .iter()
        .enumerate()
        .map(|(n, port)| Instance {
            id: format!("{name}-{}", n + 1),
            service: name.clone(),
            version: "test".into(),
            address: "127.0.0.1".into(),
            port: *port,
            health: Health::Healthy,
            pid: None,
            since: "1970-01-01T00:00:00Z".into(),
            restarts: 0,
            uptime_ms: None,
            last_exit: None,
            managed: false,
        })
        .collect();
    axum::Json(ServiceView {
        index: 1,
        name,
        version: "test".into(),
        instances,
    })
    .into_response()
}
