//! Choosing one instance among the eligible ones: power of two choices over in-flight
//! requests (the default, like Envoy's least-request and HAProxy's `random(2)`) or round robin.
//! Pure functions over the loads; the caller decides which instances are eligible.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How a service's balancer chooses among eligible instances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Two instances at random; the one with fewer requests in flight wins.
    #[default]
    PowerOfTwoChoices,
    /// Each instance in turn.
    RoundRobin,
}

impl Strategy {
    /// Parses the manifest spelling: `least_request` / `p2c` or `round_robin`.
    pub fn parse(text: &str) -> Option<Strategy> {
        match text {
            "least_request" | "p2c" | "power_of_two_choices" => Some(Strategy::PowerOfTwoChoices),
            "round_robin" => Some(Strategy::RoundRobin),
            _ => None,
        }
    }

    /// The position in `loads` (in-flight counts of the eligible instances) to send to, or
    /// `None` when there is nothing to choose from.
    pub fn choose(
        self,
        loads: &[usize],
        counter: &AtomicUsize,
        rng: &mut fastrand::Rng,
    ) -> Option<usize> {
        match self {
            Strategy::PowerOfTwoChoices => power_of_two(loads, rng),
            Strategy::RoundRobin => round_robin(loads.len(), counter),
        }
    }
}

/// Two distinct positions at random; the lower load wins, the first drawn on a tie.
pub fn power_of_two(loads: &[usize], rng: &mut fastrand::Rng) -> Option<usize> {
    match loads.len() {
        0 => None,
        1 => Some(0),
        n => {
            let first = rng.usize(0..n);
            let mut second = rng.usize(0..n - 1);
            if second >= first {
                second += 1;
            }
            Some(if loads[second] < loads[first] {
                second
            } else {
                first
            })
        }
    }
}

/// The next position of `len` in turn.
pub fn round_robin(len: usize, counter: &AtomicUsize) -> Option<usize> {
    if len == 0 {
        return None;
    }
    Some(counter.fetch_add(1, Ordering::Relaxed) % len)
}
