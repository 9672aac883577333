//! The RAII guards a request holds: a [`Permit`] (its place under the service's concurrency
//! cap) for its whole life, one [`Attempt`] (in flight on one instance, carrying its breaker
//! ticket) per try, and a [`RetryToken`] while a retry runs. Dropping a guard gives its place
//! back; an attempt dropped without an outcome frees a half-open probe slot.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::breaker::{Ticket, TicketKind};
use super::outcome::Outcome;
use super::service::{Endpoint, PickError, ServiceBalancer, Slot};

/// One admitted request to a service: holds a place under the concurrency cap until dropped.
#[derive(Debug)]
pub struct Permit {
    service: Arc<ServiceBalancer>,
}

impl Permit {
    pub(super) fn new(service: Arc<ServiceBalancer>) -> Permit {
        Permit { service }
    }

    pub fn service(&self) -> &Arc<ServiceBalancer> {
        &self.service
    }

    /// Picks an instance among `candidates` (the healthy instances, as listed now), skipping
    /// the ids in `exclude` (instances this request already tried) and instances whose breaker
    /// is open, unless every one is open (panic mode).
    pub fn pick<E: Endpoint>(
        &self,
        candidates: &[E],
        exclude: &[&str],
    ) -> Result<Attempt, PickError> {
        self.service.pick_at(candidates, exclude, Instant::now())
    }

    /// [`Permit::pick`] at a given moment (for callers and tests that own the clock).
    pub fn pick_at<E: Endpoint>(
        &self,
        candidates: &[E],
        exclude: &[&str],
        now: Instant,
    ) -> Result<Attempt, PickError> {
        self.service.pick_at(candidates, exclude, now)
    }

    /// The service's backoff and budget settings.
    pub fn retry_config(&self) -> super::RetryConfig {
        self.service.config.retry
    }

    /// Counts a try moved to another instance because nothing reached the first (no
    /// budget needed: it adds no load anywhere).
    pub fn reroute(&self) {
        self.service.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Asks the retry budget for one retry; `None` means do not retry. Hold the token for the
    /// duration of the retry.
    pub fn try_retry(&self) -> Option<RetryToken> {
        let service = &self.service;
        let allowance = service
            .config
            .retry
            .allowance(service.active.load(Ordering::Acquire));
        if service.active_retries.fetch_add(1, Ordering::AcqRel) >= allowance {
            service.active_retries.fetch_sub(1, Ordering::AcqRel);
            service.retries_denied.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        service.retries.fetch_add(1, Ordering::Relaxed);
        Some(RetryToken {
            service: Arc::clone(service),
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.service.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A retry granted by the budget; gives its place back when dropped.
#[derive(Debug)]
pub struct RetryToken {
    service: Arc<ServiceBalancer>,
}

impl Drop for RetryToken {
    fn drop(&mut self) {
        self.service.active_retries.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One try on one instance: counts as in flight on it until dropped.
#[derive(Debug)]
pub struct Attempt {
    index: usize,
    slot: Arc<Slot>,
    ticket: Option<Ticket>,
}

impl Attempt {
    pub(super) fn start(index: usize, slot: &Arc<Slot>, ticket: Ticket) -> Attempt {
        slot.in_flight.fetch_add(1, Ordering::AcqRel);
        Attempt {
            index,
            slot: Arc::clone(slot),
            ticket: Some(ticket),
        }
    }

    /// The position of the picked instance in the candidate slice given to `pick`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The picked instance's id.
    pub fn id(&self) -> &str {
        &self.slot.id
    }

    /// True when this try is the breaker's single half-open probe.
    pub fn is_probe(&self) -> bool {
        self.ticket.is_some_and(|t| t.kind == TicketKind::Probe)
    }

    /// True when the instance was picked although its breaker is open (every one was).
    pub fn is_panic(&self) -> bool {
        self.ticket.is_some_and(|t| t.kind == TicketKind::Panic)
    }

    /// Reports the try's outcome to the instance's breaker; only the first report counts.
    /// Keep the attempt alive while the response body streams so it stays counted in flight.
    pub fn record(&mut self, outcome: &Outcome) {
        self.record_at(outcome, Instant::now());
    }

    /// [`Attempt::record`] at a given moment.
    pub fn record_at(&mut self, outcome: &Outcome, now: Instant) {
        if let Some(ticket) = self.ticket.take() {
            let unit = fastrand::f64();
            self.slot
                .breaker()
                .record(ticket, outcome, now, &self.slot.config, unit);
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.slot.breaker().release(ticket);
        }
        self.slot.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
