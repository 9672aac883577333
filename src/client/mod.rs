//! The discovery-aware service client: finds instances through the registry API and calls
//! them through [`crate::balance`].
//!
//! TEMPORARY: replaced by the balance branch. A minimal stand-in with exactly the public
//! API of the real client, so the order service compiles and runs before it lands: it asks
//! the registry (`$SERVIO_ADMIN_URL/v1/services/{name}?healthy=true`) for healthy instances
//! on every call, picks one at random and sends one request, without breakers or retries.

// TEMPORARY: replaced by the balance branch

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::protocol::{Health, ServiceView};

const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct ServiceClient {
    admin: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

pub struct Call {
    pub method: http::Method,
    pub path: String,
    pub body: Option<Bytes>,
    pub idempotent: Option<bool>,
}

impl Call {
    fn new(method: http::Method, path: impl Into<String>, body: Option<Bytes>) -> Self {
        Call {
            method,
            path: path.into(),
            body,
            idempotent: None,
        }
    }
    pub fn get(path: impl Into<String>) -> Self {
        Call::new(http::Method::GET, path, None)
    }
    pub fn post_json(path: impl Into<String>, body: &impl Serialize) -> Self {
        let body = serde_json::to_vec(body).unwrap_or_default();
        Call::new(http::Method::POST, path, Some(body.into()))
    }
    pub fn put_json(path: impl Into<String>, body: &impl Serialize) -> Self {
        let body = serde_json::to_vec(body).unwrap_or_default();
        Call::new(http::Method::PUT, path, Some(body.into()))
    }
    pub fn delete(path: impl Into<String>) -> Self {
        Call::new(http::Method::DELETE, path, None)
    }
    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = Some(yes);
        self
    }
}

pub struct Reply {
    pub status: http::StatusCode,
    pub body: Bytes,
}

impl Reply {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| ClientError::Decode {
            service: String::new(),
            reason: e.to_string(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no healthy instance of {service}")]
    NoHealthyInstance { service: String },
    #[error("{service} is unavailable: {reason}")]
    Unavailable { service: String, reason: String },
    #[error("{service} did not answer in time")]
    Timeout { service: String },
    #[error("the registry is unavailable: {reason}")]
    Registry { reason: String },
    #[error("cannot decode the answer of {service}: {reason}")]
    Decode { service: String, reason: String },
    #[error("service client configuration: {0}")]
    Config(String),
}

impl ClientError {
    pub fn service(&self) -> Option<&str> {
        match self {
            ClientError::NoHealthyInstance { service }
            | ClientError::Unavailable { service, .. }
            | ClientError::Timeout { service }
            | ClientError::Decode { service, .. } => Some(service),
            ClientError::Registry { .. } | ClientError::Config(_) => None,
        }
    }
}

impl ServiceClient {
    pub fn from_env() -> Result<Self, ClientError> {
        let admin = std::env::var("SERVIO_ADMIN_URL")
            .map_err(|_| ClientError::Config("SERVIO_ADMIN_URL is not set".into()))?;
        Ok(ServiceClient {
            admin: admin.trim_end_matches('/').to_string(),
            http: {
                let mut connector = HttpConnector::new();
                connector.set_nodelay(true);
                Client::builder(TokioExecutor::new()).build(connector)
            },
        })
    }

    pub async fn call(&self, service: &str, request: Call) -> Result<Reply, ClientError> {
        let registry = |reason: String| ClientError::Registry { reason };
        let url = format!("{}/v1/services/{service}?healthy=true", self.admin);
        let view = self
            .send(http::Method::GET, &url, None)
            .await
            .map_err(registry)?;
        let view: ServiceView = match view {
            Some(reply) if reply.status.is_success() => {
                serde_json::from_slice(&reply.body).map_err(|e| registry(e.to_string()))?
            }
            Some(reply) if reply.status == http::StatusCode::NOT_FOUND => {
                return Err(ClientError::NoHealthyInstance {
                    service: service.into(),
                });
            }
            Some(reply) => return Err(registry(format!("answered {}", reply.status))),
            None => return Err(registry("did not answer in time".into())),
        };
        let healthy: Vec<_> = view
            .instances
            .iter()
            .filter(|i| i.health == Health::Healthy)
            .collect();
        let Some(instance) = fastrand::choice(healthy) else {
            return Err(ClientError::NoHealthyInstance {
                service: service.into(),
            });
        };
        let url = format!(
            "http://{}:{}{}",
            instance.address, instance.port, request.path
        );
        match self.send(request.method, &url, request.body).await {
            Ok(Some(reply)) => Ok(reply),
            Ok(None) => Err(ClientError::Timeout {
                service: service.into(),
            }),
            Err(reason) => Err(ClientError::Unavailable {
                service: service.into(),
                reason,
            }),
        }
    }

    /// `Ok(None)` on timeout.
    async fn send(
        &self,
        method: http::Method,
        url: &str,
        body: Option<Bytes>,
    ) -> Result<Option<Reply>, String> {
        let mut builder = http::Request::builder().method(method).uri(url);
        if body.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>(Reply { status, body })
        };
        match tokio::time::timeout(TIMEOUT, exchange).await {
            Ok(result) => result.map(Some),
            Err(_) => Ok(None),
        }
    }
}
