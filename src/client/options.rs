//! How a [`super::ServiceClient`] times out, retries, pools connections and balances.

use std::time::Duration;

use crate::balance::BalanceConfig;

/// Tuning of a service client; [`ClientOptions::default`] suits calls between local services.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientOptions {
    /// How long one try may take, connecting and reading the whole reply included (2 s).
    pub per_try_timeout: Duration,
    /// How long connecting to an instance may take (1 s).
    pub connect_timeout: Duration,
    /// Further tries after the first, each on another instance, where retrying is safe (1).
    pub retries: u32,
    /// The whole call, every try and backoff included (5 s).
    pub timeout: Duration,
    /// How long the first call to a service waits for the registry's answer (5 s).
    pub registry_timeout: Duration,
    /// How long the registry holds a watch query open before answering "no change" (30 s).
    pub watch_wait: Duration,
    /// How often static endpoints (`SERVIO_ENDPOINTS_*`) are resolved through DNS again (5 s).
    pub dns_refresh: Duration,
    /// How long an unused keep-alive connection stays in the pool (30 s).
    pub pool_idle_timeout: Duration,
    /// Picking, breakers, concurrency cap and retry budget.
    pub balance: BalanceConfig,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            per_try_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            retries: 1,
            timeout: Duration::from_secs(5),
            registry_timeout: Duration::from_secs(5),
            watch_wait: Duration::from_secs(30),
            dns_refresh: Duration::from_secs(5),
            pool_idle_timeout: Duration::from_secs(30),
            balance: BalanceConfig::default(),
        }
    }
}
