//! Retrying only what is safe, after a short jittered backoff, within a budget that keeps
//! retries from multiplying an outage (Envoy's retry budget: concurrent retries at most a
//! fraction of the requests in flight, but always at least a few).

use std::time::Duration;

use http::Method;

use super::outcome::Outcome;

/// GET, HEAD, OPTIONS, PUT and DELETE: sending them twice has the effect of sending them once.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    )
}

/// Whether a failed attempt may be tried again on another instance: always when nothing was
/// sent, otherwise only for idempotent requests (see [`is_idempotent`], or a POST made
/// idempotent by a key). Answers other than 502/503/504 are never retried.
pub fn may_retry(idempotent: bool, sent: bool, outcome: &Outcome) -> bool {
    outcome.is_failure() && (!sent || idempotent)
}

/// How one try ended, with everything [`next`] needs to decide what follows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TryEnd {
    pub outcome: Outcome,
    /// The request may be sent twice (see [`is_idempotent`]).
    pub idempotent: bool,
    /// The whole request can still be sent again (its body was kept).
    pub replayable: bool,
    /// Retries taken so far, and the most allowed.
    pub retries: u32,
    pub max_retries: u32,
    /// A healthy instance not tried yet exists.
    pub untried: bool,
    /// Until the whole request's deadline.
    pub time_left: Duration,
}

/// What follows a try.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// The try's answer (or failure) is the request's.
    Stop,
    /// Try another instance after `after`; `budgeted` retries need the budget's grant.
    Retry { after: Duration, budgeted: bool },
}

/// Decides what follows a try: the one retry policy of the gateway and the service client.
/// A try that never reached its instance (nothing sent: the connection was refused) moves
/// to another instance at once and outside the budget: it adds no load anywhere, it only
/// routes around an instance that is gone. Anything sent is retried only when
/// [`may_retry`] allows, after the jittered backoff (`unit` picks the jitter, see
/// [`RetryConfig::backoff_with`]), with the budget's grant, and only if the backoff ends
/// before the deadline.
pub fn next(end: &TryEnd, config: &RetryConfig, unit: f64) -> Next {
    let sent = end.outcome.was_sent();
    let allowed = end.retries < end.max_retries
        && may_retry(end.idempotent, sent, &end.outcome)
        && end.replayable
        && end.untried;
    if !allowed {
        return Next::Stop;
    }
    let after = if sent {
        config.backoff_with(end.retries.saturating_add(1), unit)
    } else {
        Duration::ZERO
    };
    if after >= end.time_left {
        return Next::Stop;
    }
    Next::Retry {
        after,
        budgeted: sent,
    }
}

/// Backoff between attempts and the retry budget of one service.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryConfig {
    /// The wait before the first retry (default 25 ms); doubles with each further retry.
    pub backoff_base: Duration,
    /// The longest wait (default 250 ms).
    pub backoff_max: Duration,
    /// Concurrent retries may be this fraction of the requests in flight (default 0.2).
    pub budget_ratio: f64,
    /// ...but at least this many concurrent retries are always allowed (default 3).
    pub min_concurrent_retries: usize,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            backoff_base: Duration::from_millis(25),
            backoff_max: Duration::from_millis(250),
            budget_ratio: 0.2,
            min_concurrent_retries: 3,
        }
    }
}

impl RetryConfig {
    /// The wait before retry number `retry` (1-based), with `unit` in 0.0..1.0 choosing the
    /// jitter: somewhere between half the nominal wait and all of it.
    pub fn backoff_with(&self, retry: u32, unit: f64) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let nominal = self
            .backoff_base
            .checked_mul(factor)
            .unwrap_or(self.backoff_max)
            .min(self.backoff_max);
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        super::breaker::scale(nominal, 0.5 + 0.5 * unit)
    }

    /// How many retries may be in flight while `active` requests are.
    pub fn allowance(&self, active: usize) -> usize {
        let ratio = if self.budget_ratio.is_finite() {
            self.budget_ratio.max(0.0)
        } else {
            0.0
        };
        let share = (active as f64 * ratio) as usize;
        share.max(self.min_concurrent_retries)
    }
}
