//! A real gateway in the test process: [`Harness`] starts it on 127.0.0.1:0 over a healthy
//! view the test publishes (the registry's own type and channel), in front of real upstream
//! servers on loopback ports; plus a client for HTTP/1.1 and h2c.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::gateway::{Gateway, GatewayConfig};
use crate::manifest::{self, Balance, Route};
use crate::registry::{Endpoint, HealthyView};

/// Long enough for a loaded machine; only failures ever wait this long.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub struct Harness {
    pub addr: SocketAddr,
    pub gateway: Gateway,
    view: watch::Sender<Arc<HealthyView>>,
    pub stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Harness {
    /// A gateway with `routes` and the manifest's defaults, changed by `tweak`.
    pub async fn start(routes: Vec<Route>, tweak: impl FnOnce(&mut GatewayConfig)) -> Harness {
        let mut config = manifest::Gateway {
            routes,
            ..Default::default()
        };
        tweak(&mut config);
        let (view, receiver) = watch::channel(Arc::new(HealthyView::new()));
        let stop = CancellationToken::new();
        let (gateway, task) = Gateway::start(config, 0, receiver, stop.clone())
            .await
            .expect("the gateway starts");
        Harness {
            addr: gateway.addr(),
            gateway,
            view,
            stop,
            task,
        }
    }

    /// Publishes `service`'s healthy instances, as the registry does on every change.
    pub fn publish(&self, service: &str, instances: &[(&str, SocketAddr)]) {
        let endpoints: Vec<Endpoint> = instances
            .iter()
            .map(|(id, addr)| Endpoint {
                id: Arc::from(*id),
                addr: *addr,
            })
            .collect();
        self.view.send_modify(|view| {
            let mut next = HealthyView::clone(view);
            next.insert(service.to_string(), Arc::from(endpoints));
            *view = Arc::new(next);
        });
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the gateway and waits until it has drained.
    pub async fn shut_down(mut self) {
        self.stop.cancel();
        let task = std::mem::replace(&mut self.task, tokio::spawn(async {}));
        tokio::time::timeout(PATIENCE, task)
            .await
            .expect("the gateway stops")
            .expect("the gateway task ends cleanly");
    }
}

impl Drop for Harness {
    /// A test that failed half-way still stops its gateway's worker threads.
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub fn route(prefix: &str, service: &str, balance: Balance) -> Route {
    Route {
        prefix: prefix.to_string(),
        service: service.to_string(),
        strip_prefix: None,
        balance,
    }
}

/// Serves `router` on a free loopback port for the rest of the test process.
pub async fn upstream(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// An address nothing listens on: connecting is refused.
pub fn dead() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local address")
}

pub type TestClient = Client<HttpConnector, Full<Bytes>>;

pub fn http1() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

pub fn h2c() -> TestClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// Sends a request and reads the whole answer.
pub async fn call(
    client: &TestClient,
    method: Method,
    url: &str,
    body: &[u8],
) -> (StatusCode, HeaderMap, Bytes) {
    let request = Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("a request");
    let exchange = async {
        let response = client.request(request).await.expect("an answer");
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("the body").to_bytes();
        (parts.status, parts.headers, bytes)
    };
    tokio::time::timeout(PATIENCE, exchange)
        .await
        .expect("answered in time")
}
