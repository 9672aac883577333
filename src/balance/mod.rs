//! Picking an instance, per-instance breakers and the retry budget: one mechanism shared by
//! the gateway and the service client.
//!
//! # Using it on a request path
//!
//! A caller admits the request under the service's cap, then hands its [`Transport`] (how a
//! try reaches an instance, and what the caller makes of failures) to the one loop of tries,
//! [`tries::run`]: the gateway's fast path and hyper path and the service client all do.
//!
//! ```no_run
//! use servio::balance::{Balancer, Limits, Transport};
//!
//! async fn call<T: Transport>(balancer: &Balancer, transport: &mut T, limits: &Limits)
//!     -> Option<T::Reply> {
//!     let service = balancer.service("menu-service"); // or keep this Arc per route
//!     let permit = service.admit().ok()?; // over the cap: answer 503 at once
//!     let mut retries = 0;
//!     let answered = servio::balance::tries::run(permit, transport, limits, &mut retries)
//!         .await
//!         .ok()?;
//!     // Keep `answered.hold` while the reply's body streams: the instance stays in flight.
//!     Some(answered.reply)
//! }
//! ```
//!
//! # Layout
//!
//! - [`breaker`]: the breaker as a pure state machine over an explicit `now`.
//! - [`pick`]: power of two choices and round robin as pure functions over loads.
//! - [`service`]: one service's shared state: in-flight counters, breakers, cap, budget.
//! - [`guard`]: what a request holds: [`Permit`], [`Attempt`], [`RetryToken`].
//! - [`retry`]: what may be retried, what follows a try ([`retry::next`]), backoff, budget sizing.
//! - [`tries`]: the one loop of tries every caller runs its requests through.
//! - [`outcome`], [`stats`]: what callers report and what they can read back.

pub mod breaker;
pub mod guard;
pub mod outcome;
pub mod pick;
pub mod retry;
pub mod service;
pub mod stats;
pub mod tries;

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
pub use tries::{Answered, Hold, Limits, Transport, TryError};

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
