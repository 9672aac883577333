//! Picking an instance, per-instance breakers and the retry budget: one mechanism shared by
//! the gateway and the service client.
//!
//! # Using it on a request path
//!
//! ```no_run
//! use servio::balance::{Balancer, Outcome, is_idempotent, may_retry};
//! use servio::protocol::Instance;
//!
//! async fn proxy(balancer: &Balancer, instances: &[Instance], method: &http::Method) -> Outcome {
//!     let service = balancer.service("menu-service"); // or keep this Arc per route
//!     let Ok(permit) = service.admit() else {
//!         return Outcome::Status(http::StatusCode::SERVICE_UNAVAILABLE); // over the cap
//!     };
//!     let mut tried: Vec<String> = Vec::new();
//!     let mut _retry = None; // the budget's token, held while the retry runs
//!     loop {
//!         let exclude: Vec<&str> = tried.iter().map(String::as_str).collect();
//!         let Ok(mut attempt) = permit.pick(instances, &exclude) else {
//!             return Outcome::Status(http::StatusCode::SERVICE_UNAVAILABLE);
//!         };
//!         let outcome = send(&instances[attempt.index()]).await;
//!         attempt.record(&outcome); // keep `attempt` alive while the body streams
//!         let retry = tried.len() as u32 + 1;
//!         if retry > 1 || !may_retry(is_idempotent(method), outcome.was_sent(), &outcome) {
//!             return outcome;
//!         }
//!         let Some(token) = permit.try_retry() else { return outcome };
//!         _retry = Some(token);
//!         tried.push(attempt.id().to_owned());
//!         tokio::time::sleep(service.config().retry.backoff(retry)).await;
//!     }
//! }
//! # async fn send(_: &Instance) -> Outcome { Outcome::Timeout }
//! ```
//!
//! # Layout
//!
//! - [`breaker`]: the breaker as a pure state machine over an explicit `now`.
//! - [`pick`]: power of two choices and round robin as pure functions over loads.
//! - [`service`]: one service's shared state: in-flight counters, breakers, cap, budget.
//! - [`guard`]: what a request holds: [`Permit`], [`Attempt`], [`RetryToken`].
//! - [`retry`]: what may be retried, backoff, budget sizing.
//! - [`outcome`], [`stats`]: what callers report and what they can read back.

pub mod breaker;
pub mod guard;
pub mod outcome;
pub mod pick;
pub mod retry;
pub mod service;
pub mod stats;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub use breaker::{BreakerConfig, BreakerState};
pub use guard::{Attempt, Permit, RetryToken};
pub use outcome::{Outcome, is_unavailable_status};
pub use pick::Strategy;
pub use retry::{RetryConfig, is_idempotent, may_retry};
pub use service::{Endpoint, Overloaded, PickError, ServiceBalancer};
pub use stats::{InstanceStats, ServiceStats};

/// How every service behind one balancer is balanced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BalanceConfig {
    pub strategy: Strategy,
    pub breaker: BreakerConfig,
    /// Requests in flight to one service beyond which new ones are refused (default 1024).
    pub max_concurrent: usize,
    pub retry: RetryConfig,
}

impl Default for BalanceConfig {
    fn default() -> Self {
        BalanceConfig {
            strategy: Strategy::default(),
            breaker: BreakerConfig::default(),
            max_concurrent: 1024,
            retry: RetryConfig::default(),
        }
    }
}

/// The balancing state of every service one process talks to. Cheap to clone; clones share.
#[derive(Debug, Clone, Default)]
pub struct Balancer {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    config: BalanceConfig,
    services: RwLock<HashMap<String, Arc<ServiceBalancer>>>,
}

impl Balancer {
    pub fn new(config: BalanceConfig) -> Self {
        Balancer {
            inner: Arc::new(Inner {
                config,
                services: RwLock::new(HashMap::new()),
            }),
        }
    }

    pub fn config(&self) -> &BalanceConfig {
        &self.inner.config
    }

    /// The state of `service`, created on first use.
    pub fn service(&self, service: &str) -> Arc<ServiceBalancer> {
        if let Some(found) = self
            .inner
            .services
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(service)
        {
            return Arc::clone(found);
        }
        let mut services = self
            .inner
            .services
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let entry = services
            .entry(service.to_owned())
            .or_insert_with(|| Arc::new(ServiceBalancer::new(service, self.inner.config)));
        Arc::clone(entry)
    }

    /// Every known service's state, sorted by name.
    pub fn snapshot(&self) -> Vec<ServiceStats> {
        let services: Vec<Arc<ServiceBalancer>> = self
            .inner
            .services
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        let now = std::time::Instant::now();
        let mut stats: Vec<ServiceStats> = services.iter().map(|s| s.snapshot_at(now)).collect();
        stats.sort_by(|a, b| a.service.cmp(&b.service));
        stats
    }
}
