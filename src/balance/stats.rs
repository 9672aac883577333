//! Read-only snapshots of balancing state, for `servio status` and Prometheus metrics.

use std::time::{Duration, Instant};

use super::breaker::BreakerState;

/// One service's balancing state at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStats {
    pub service: String,
    /// Requests admitted and not yet finished.
    pub active: usize,
    /// Retries granted by the budget and not yet finished.
    pub active_retries: usize,
    /// Requests refused by the concurrency cap, ever.
    pub rejected: u64,
    /// Retries granted, ever.
    pub retries: u64,
    /// Retries refused by the budget, ever.
    pub retries_denied: u64,
    /// Picks made in panic mode (every instance ejected), ever.
    pub panic_picks: u64,
    /// Sorted by id.
    pub instances: Vec<InstanceStats>,
}

/// One instance's balancing state at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceStats {
    pub id: String,
    pub in_flight: usize,
    pub state: BreakerState,
    pub consecutive_failures: u32,
    /// Times the breaker opened, ever.
    pub ejections: u64,
}

impl InstanceStats {
    /// How long the instance stays ejected after `now` (zero unless the breaker is open).
    pub fn ejected_for(&self, now: Instant) -> Duration {
        match self.state {
            BreakerState::Open { until } => until.saturating_duration_since(now),
            BreakerState::Closed | BreakerState::HalfOpen => Duration::ZERO,
        }
    }
}
