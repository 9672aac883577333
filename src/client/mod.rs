//! The discovery-aware service client: finds instances through the registry API and calls
//! them through [`crate::balance`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), servio::client::ClientError> {
//! use servio::client::{Call, ServiceClient};
//!
//! let client = ServiceClient::from_env()?; // SERVIO_ADMIN_URL, set by `servio up`
//! let reply = client.call("menu-service", Call::get("/items/7")).await?;
//! let item: serde_json::Value = reply.json()?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`call`]: [`Call`] and [`Reply`]. [`error`]: [`ClientError`]. [`options`]: [`ClientOptions`].
//! - `registry`: the registry API (URLs, answers); `discovery`: the per-service cache and its
//!   watch tasks; `transport`: the pooled HTTP/1.1 client and one try on one instance.
//! - `attempts`: one call end to end: pick, send, report to the breaker, retry, map the result.

mod attempts;
pub mod call;
mod discovery;
pub mod error;
pub mod options;
mod registry;
mod transport;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use call::{Call, Reply};
pub use error::ClientError;
pub use options::ClientOptions;
pub use registry::ADMIN_URL_ENV;

use crate::balance::{Balancer, ServiceStats};
use discovery::{Discovery, Watcher};
use transport::HttpClient;

/// Calls other services by name. Cheap to clone; clones share connections, the instance cache
/// and the balancer. The background watches stop when the last clone is dropped.
#[derive(Clone)]
pub struct ServiceClient {
    inner: Arc<Inner>,
}

struct Inner {
    admin: Arc<str>,
    options: ClientOptions,
    http: HttpClient,
    balancer: Balancer,
    discovery: Discovery,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.discovery.shutdown();
    }
}

impl fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceClient")
            .field("admin", &self.inner.admin)
            .finish_non_exhaustive()
    }
}

impl ServiceClient {
    /// Reads SERVIO_ADMIN_URL (e.g. "http://127.0.0.1:2999"); error if unset/invalid.
    pub fn from_env() -> Result<Self, ClientError> {
        match std::env::var(ADMIN_URL_ENV) {
            Ok(url) => ServiceClient::new(&url, ClientOptions::default()),
            Err(_) => Err(ClientError::Config(format!(
                "{ADMIN_URL_ENV} is not set; run the service with `servio up`, or set it to the \
                 admin API address like http://127.0.0.1:2999"
            ))),
        }
    }

    /// A client of the registry at `admin_url`. Needs no runtime until the first call.
    pub fn new(admin_url: &str, options: ClientOptions) -> Result<Self, ClientError> {
        let admin: Arc<str> = registry::parse_admin_url(admin_url)?.into();
        let http = transport::http_client(&options);
        let discovery = Discovery::new(Watcher {
            http: http.clone(),
            admin: Arc::clone(&admin),
            registry_timeout: options.registry_timeout,
            wait: options.watch_wait,
            shutdown: CancellationToken::new(),
        });
        let balancer = Balancer::new(options.balance);
        Ok(ServiceClient {
            inner: Arc::new(Inner {
                admin,
                options,
                http,
                balancer,
                discovery,
            }),
        })
    }

    /// Sends one call to a healthy instance of `service`, with retries where safe.
    pub async fn call(&self, service: &str, request: Call) -> Result<Reply, ClientError> {
        attempts::call(&self.inner, service, &request).await
    }

    /// The balancer's view of every service called so far (in flight, breakers, retries).
    pub fn stats(&self) -> Vec<ServiceStats> {
        self.inner.balancer.snapshot()
    }
}
