//! HTTP/1.1 to instances: one pooled keep-alive client per [`super::ServiceClient`], and one try
//! of a call on one instance.

use std::net::IpAddr;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::ClientOptions;
use super::call::Call;
use super::error::root_cause;
use crate::balance::Outcome;
use crate::protocol::Instance;

/// The pooled client shared by every call and the registry watches.
pub(super) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Replies larger than this are refused.
pub(super) const MAX_REPLY_BYTES: usize = 16 << 20;

pub(super) fn http_client(options: &ClientOptions) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(options.connect_timeout));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(options.pool_idle_timeout)
        .pool_timer(TokioTimer::new())
        .build(connector)
}

/// How one try ended.
#[derive(Debug)]
pub(super) enum Tried {
    Answered {
        status: StatusCode,
        body: Bytes,
    },
    /// The instance answered with a body past [`MAX_REPLY_BYTES`].
    TooLarge {
        status: StatusCode,
    },
    ConnectFailed(String),
    Timeout,
    Broken(String),
}

impl Tried {
    /// What the breaker and the retry policy make of it.
    pub(super) fn outcome(&self) -> Outcome {
        match self {
            Tried::Answered { status, .. } | Tried::TooLarge { status } => Outcome::Status(*status),
            Tried::ConnectFailed(_) => Outcome::ConnectFailed,
            Tried::Timeout => Outcome::Timeout,
            Tried::Broken(_) => Outcome::Broken,
        }
    }
}

/// `host:port` of an instance, bracketing IPv6 addresses.
pub(super) fn authority(instance: &Instance) -> String {
    match instance.address.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]:{}", instance.port),
        _ => format!("{}:{}", instance.address, instance.port),
    }
}

/// Sends `call` to `instance` and reads the whole reply (the caller bounds it in time).
pub(super) async fn send(http: &HttpClient, instance: &Instance, call: &Call) -> Tried {
    let uri = format!("http://{}{}", authority(instance), call.path);
    let mut builder = Request::builder()
        .method(call.method.clone())
        .uri(&uri)
        .header(header::ACCEPT, "application/json");
    if call.body.is_some() {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    let request = match builder.body(Full::new(call.body.clone().unwrap_or_default())) {
        Ok(request) => request,
        // The path was checked before; only a malformed instance address gets here.
        Err(error) => return Tried::ConnectFailed(format!("bad address {uri}: {error}")),
    };
    let response = match http.request(request).await {
        Ok(response) => response,
        Err(error) if error.is_connect() => return Tried::ConnectFailed(root_cause(&error)),
        Err(error) => return Tried::Broken(root_cause(&error)),
    };
    let status = response.status();
    match Limited::new(response.into_body(), MAX_REPLY_BYTES)
        .collect()
        .await
    {
        Ok(body) => Tried::Answered {
            status,
            body: body.to_bytes(),
        },
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Tried::TooLarge { status },
        Err(error) => Tried::Broken(root_cause(&*error)),
    }
}
