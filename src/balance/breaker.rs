//! The per-instance circuit breaker as a pure state machine: no clock, no locks, no I/O.
//!
//! Closed → Open after `failure_threshold` consecutive failures, or at once when the instance
//! could not be reached at all (a refused connection: nothing listens there, typically a
//! process that just died; nginx's `max_fails=1` for the same reason). Open ejects the instance for a
//! penalty of `base_ejection · 2^(streak-1)` capped at `max_ejection`, shortened by up to
//! `jitter` of itself so ejected instances do not all come back at once. When the penalty is
//! over the breaker is HalfOpen: exactly one probe goes through; its success closes the breaker
//! (and resets the streak), its failure opens it again with the next, longer penalty.
//!
//! Every request carries a [`Ticket`] from the moment it was let through. The ticket's epoch
//! (the ejection count at that moment) keeps outcomes of requests started before an ejection
//! from counting against the state that followed it.

use std::time::{Duration, Instant};

/// How a try ended, as the breaker counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Any answer the caller asked for.
    Served,
    /// 502/503/504, a timeout or a broken connection: ejects after `failure_threshold` in a row.
    Failed,
    /// No connection could be made: ejects at once.
    Unreachable,
}

impl From<&super::Outcome> for Verdict {
    fn from(outcome: &super::Outcome) -> Self {
        match outcome {
            super::Outcome::ConnectFailed => Verdict::Unreachable,
            failure if failure.is_failure() => Verdict::Failed,
            _ => Verdict::Served,
        }
    }
}

impl From<bool> for Verdict {
    /// `true`: a counted failure.
    fn from(failed: bool) -> Self {
        if failed {
            Verdict::Failed
        } else {
            Verdict::Served
        }
    }
}

/// How the breakers of one service behave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Consecutive failures that eject an instance (default 5).
    pub failure_threshold: u32,
    /// The first ejection's penalty (default 1 s); doubles with every ejection in a row.
    pub base_ejection: Duration,
    /// The longest penalty (default 60 s).
    pub max_ejection: Duration,
    /// Up to this fraction of a penalty is taken off at random (default 0.2, clamped to 0..=1).
    pub jitter: f64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            base_ejection: Duration::from_secs(1),
            max_ejection: Duration::from_secs(60),
            jitter: 0.2,
        }
    }
}

impl BreakerConfig {
    /// The penalty before jitter for the `streak`-th ejection in a row (1-based).
    pub fn nominal_penalty(&self, streak: u32) -> Duration {
        let doublings = streak.saturating_sub(1);
        let factor = 1u32.checked_shl(doublings).unwrap_or(u32::MAX);
        self.base_ejection
            .checked_mul(factor)
            .unwrap_or(self.max_ejection)
            .min(self.max_ejection)
    }

    /// The penalty for the `streak`-th ejection, with `unit` in `0.0..1.0` choosing the jitter.
    pub fn penalty(&self, streak: u32, unit: f64) -> Duration {
        let nominal = self.nominal_penalty(streak);
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        scale(nominal, 1.0 - jitter * unit)
    }
}

/// `duration · factor` for a factor in 0..=1, without the panic `Duration::mul_f64` has when
/// float rounding pushes a huge duration past `Duration::MAX`.
pub(super) fn scale(duration: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(duration.as_secs_f64() * factor)
        .map_or(duration, |scaled| scaled.min(duration))
}

/// What a caller can see of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Traffic flows.
    Closed,
    /// Ejected until this moment.
    Open { until: Instant },
    /// The penalty is over: the next request is the single probe (or it is in flight).
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(&self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open { .. } => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }
}

/// Why a request was let through, remembered until its outcome is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub kind: TicketKind,
    epoch: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketKind {
    /// The breaker was closed.
    Normal,
    /// The single half-open probe.
    Probe,
    /// Sent although the breaker is open, because every instance was ejected (panic mode).
    Panic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// One instance's breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    state: State,
    consecutive_failures: u32,
    /// Ejections since the breaker last closed: the penalty's exponent.
    streak: u32,
    /// Ejections ever; also the epoch of tickets.
    ejections: u64,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker::new()
    }
}

impl Breaker {
    pub fn new() -> Self {
        Breaker {
            state: State::Closed,
            consecutive_failures: 0,
            streak: 0,
            ejections: 0,
        }
    }

    /// Whether [`Breaker::allow`] would let a request through at `now`. Moves an expired Open
    /// breaker to HalfOpen.
    pub fn available(&mut self, now: Instant) -> bool {
        if let State::Open { until } = self.state
            && now >= until
        {
            self.state = State::HalfOpen { probing: false };
        }
        match self.state {
            State::Closed => true,
            State::Open { .. } => false,
            State::HalfOpen { probing } => !probing,
        }
    }

    /// Lets one request through at `now`, or refuses it. In HalfOpen the one ticket handed out
    /// is the probe; nothing else passes until its outcome is recorded or it is released.
    pub fn allow(&mut self, now: Instant) -> Option<Ticket> {
        if !self.available(now) {
            return None;
        }
        let kind = match self.state {
            State::HalfOpen { .. } => {
                self.state = State::HalfOpen { probing: true };
                TicketKind::Probe
            }
            _ => TicketKind::Normal,
        };
        Some(Ticket {
            kind,
            epoch: self.ejections,
        })
    }

    /// A ticket for a request sent in panic mode, whatever the state.
    pub fn force(&self) -> Ticket {
        Ticket {
            kind: TicketKind::Panic,
            epoch: self.ejections,
        }
    }

    /// The request ended without an outcome worth judging (e.g. the caller went away): a probe
    /// frees its slot so another request can probe.
    pub fn release(&mut self, ticket: Ticket) {
        if ticket.kind == TicketKind::Probe
            && ticket.epoch == self.ejections
            && self.state == (State::HalfOpen { probing: true })
        {
            self.state = State::HalfOpen { probing: false };
        }
    }

    /// Records how a request let through with `ticket` ended. `unit` (0.0..1.0) picks the
    /// jitter should this failure eject the instance.
    pub fn record(
        &mut self,
        ticket: Ticket,
        verdict: impl Into<Verdict>,
        now: Instant,
        config: &BreakerConfig,
        unit: f64,
    ) {
        let verdict = verdict.into();
        let failed = verdict != Verdict::Served;
        match (ticket.kind, self.state) {
            (TicketKind::Probe, State::HalfOpen { probing: true })
                if ticket.epoch == self.ejections =>
            {
                if failed {
                    self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                    self.trip(now, config, unit);
                } else {
                    self.close();
                }
            }
            (TicketKind::Panic, State::Open { .. } | State::HalfOpen { .. }) => {
                if failed {
                    self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                } else {
                    self.close();
                }
            }
            (_, State::Closed) if ticket.epoch == self.ejections => {
                if failed {
                    self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                    if self.consecutive_failures >= config.failure_threshold.max(1)
                        || verdict == Verdict::Unreachable
                    {
                        self.trip(now, config, unit);
                    }
                } else {
                    self.consecutive_failures = 0;
                }
            }
            // Started before the state it would judge: ignored.
            _ => {}
        }
    }

    fn trip(&mut self, now: Instant, config: &BreakerConfig, unit: f64) {
        self.streak = self.streak.saturating_add(1);
        self.ejections = self.ejections.saturating_add(1);
        let penalty = config.penalty(self.streak, unit);
        self.state = State::Open {
            until: now.checked_add(penalty).unwrap_or(now),
        };
    }

    fn close(&mut self) {
        self.state = State::Closed;
        self.consecutive_failures = 0;
        self.streak = 0;
    }

    /// The state as seen at `now` (an Open breaker past its penalty reads HalfOpen).
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.state {
            State::Closed => BreakerState::Closed,
            State::Open { until } if now < until => BreakerState::Open { until },
            State::Open { .. } | State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    pub fn ejections(&self) -> u64 {
        self.ejections
    }
}
