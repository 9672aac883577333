//! Unit tests of the balancer: the pure cores table by table, then the shared state through
//! its guards. Time is passed explicitly; nothing here sleeps.

mod breaker;
mod pick;
mod retry;
mod service;

use std::time::{Duration, Instant};

/// `ms` milliseconds after `start`.
fn at(start: Instant, ms: u64) -> Instant {
    start + Duration::from_millis(ms)
}
