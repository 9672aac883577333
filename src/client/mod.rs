//! The discovery-aware service client: finds instances through the registry API, or through
//! static endpoints resolved by DNS where there is no registry (Kubernetes, Compose), and calls
//! them through [`crate::balance`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), servio::client::ClientError> {
//! use servio::client::{Call, ServiceClient};
//!
//! // SERVIO_ADMIN_URL (set by `servio up`) and/or SERVIO_ENDPOINTS_MENU_SERVICE=menu:3002
//! let client = ServiceClient::from_env()?;
//! let reply = client.call("menu-service", Call::get("/items/7")).await?;
//! let item: serde_json::Value = reply.json()?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`call`]: [`Call`] and [`Reply`]. [`error`]: [`ClientError`]. [`options`]: [`ClientOptions`].
//! - `registry`: the registry API (URLs, answers); [`endpoints`]: static endpoints
//!   (`SERVIO_ENDPOINTS_*`) and their DNS refresh; `discovery`: the per-service cache and the
//!   task that keeps each fresh; `transport`: the pooled HTTP/1.1 client and one try on one
//!   instance.
//! - `attempts`: one call end to end: pick, send, report to the breaker, retry, map the result.

mod attempts;
pub mod call;
mod discovery;
pub mod endpoints;
pub mod error;
pub mod options;
mod registry;
mod transport;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use call::{Call, Reply};
pub use error::ClientError;
pub use options::ClientOptions;
pub use registry::ADMIN_URL_ENV;

use crate::balance::{Balancer, ServiceStats};
use discovery::{Discovery, Watcher};
use endpoints::HostPort;
use transport::HttpClient;

/// Calls other services by name. Cheap to clone; clones share connections, the instance cache
/// and the balancer. The background watches stop when the last clone is dropped.
#[derive(Clone)]
pub struct ServiceClient {
    inner: Arc<Inner>,
}

struct Inner {
    admin: Option<Arc<str>>,
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
    /// Reads `SERVIO_ENDPOINTS_*` (static endpoints, used for their services) and
    /// `SERVIO_ADMIN_URL` (the registry, e.g. "http://127.0.0.1:2999", for every other
    /// service); an error when neither is set or a value is invalid.
    pub fn from_env() -> Result<Self, ClientError> {
        let statics = endpoints::from_vars(std::env::vars()).map_err(ClientError::Config)?;
        let admin = std::env::var(ADMIN_URL_ENV).ok();
        if admin.is_none() && statics.is_empty() {
            return Err(ClientError::Config(format!(
                "{ADMIN_URL_ENV} is not set and no {}* variable is: run the service with \
                 `servio up`, or set {} to `host:port[,host:port]` for each service it calls",
                endpoints::ENV_PREFIX,
                endpoints::env_var("menu-service"),
            )));
        }
        ServiceClient::with_sources(admin.as_deref(), statics, ClientOptions::default())
    }

    /// A client of the registry at `admin_url`. Needs no runtime until the first call.
    pub fn new(admin_url: &str, options: ClientOptions) -> Result<Self, ClientError> {
        ServiceClient::with_sources(Some(admin_url), BTreeMap::new(), options)
    }

    /// A client that finds the services in `statics` (keyed by variable name, see
    /// [`endpoints::env_var`]) through DNS and any other through the registry at `admin_url`.
    pub fn with_sources(
        admin_url: Option<&str>,
        statics: BTreeMap<String, Vec<HostPort>>,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        let admin: Option<Arc<str>> = match admin_url {
            Some(url) => Some(registry::parse_admin_url(url)?.into()),
            None => None,
        };
        let http = transport::http_client(&options);
        let discovery = Discovery::new(Watcher {
            http: http.clone(),
            admin: admin.clone(),
            statics: Arc::new(statics),
            registry_timeout: options.registry_timeout,
            wait: options.watch_wait,
            dns_refresh: options.dns_refresh,
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
