//! One service's balancing state, shared by every request to it: per-instance in-flight
//! counters and breakers keyed by instance id, the concurrency cap and the retry budget.
//! Requests use it through the guards in [`super::guard`].

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Instant;

use super::BalanceConfig;
use super::breaker::{Breaker, BreakerConfig};
use super::guard::{Attempt, Permit};
use super::stats::{InstanceStats, ServiceStats};

/// Anything in the candidate list that has an instance id (registry instances, test strings).
pub trait Endpoint {
    fn id(&self) -> &str;
}

impl Endpoint for crate::protocol::Instance {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Endpoint for String {
    fn id(&self) -> &str {
        self
    }
}

impl Endpoint for &str {
    fn id(&self) -> &str {
        self
    }
}

/// The service already has its maximum of requests in flight: answer 503 right away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many requests in flight (limit {limit})")]
pub struct Overloaded {
    pub limit: usize,
}

/// Why no instance could be picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    #[error("no healthy instance")]
    NoInstance,
    /// Every candidate is in the exclusion list (each was tried already).
    #[error("every healthy instance was already tried")]
    AllExcluded,
}

/// The balancing state of one service.
#[derive(Debug)]
pub struct ServiceBalancer {
    name: String,
    pub(super) config: BalanceConfig,
    instances: RwLock<HashMap<Arc<str>, Arc<Slot>>>,
    pub(super) active: AtomicUsize,
    pub(super) active_retries: AtomicUsize,
    turn: AtomicUsize,
    rejected: AtomicU64,
    pub(super) retries: AtomicU64,
    pub(super) retries_denied: AtomicU64,
    panic_picks: AtomicU64,
}

#[derive(Debug)]
pub(super) struct Slot {
    pub(super) id: Arc<str>,
    pub(super) in_flight: AtomicUsize,
    /// Left the registry's view while requests were in flight: shown only until they end.
    departed: AtomicBool,
    breaker: Mutex<Breaker>,
    pub(super) config: BreakerConfig,
}

impl Slot {
    pub(super) fn breaker(&self) -> MutexGuard<'_, Breaker> {
        // A panic elsewhere cannot leave a breaker half-updated in a harmful way.
        self.breaker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ServiceBalancer {
    pub fn new(name: &str, config: BalanceConfig) -> Self {
        ServiceBalancer {
            name: name.to_owned(),
            config,
            instances: RwLock::new(HashMap::new()),
            active: AtomicUsize::new(0),
            active_retries: AtomicUsize::new(0),
            turn: AtomicUsize::new(0),
            rejected: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            retries_denied: AtomicU64::new(0),
            panic_picks: AtomicU64::new(0),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &BalanceConfig {
        &self.config
    }

    /// Admits one request, or refuses it when `max_concurrent` are already in flight.
    pub fn admit(self: &Arc<Self>) -> Result<Permit, Overloaded> {
        let limit = self.config.max_concurrent;
        if self.active.fetch_add(1, Ordering::AcqRel) >= limit {
            self.active.fetch_sub(1, Ordering::AcqRel);
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(Overloaded { limit });
        }
        Ok(Permit::new(Arc::clone(self)))
    }

    /// Forgets the state of instances no longer among `live`. Call it when the registry's view
    /// of the service changes. An instance that left with requests still in flight is kept
    /// until a later change finds it idle, so that its drain can be watched
    /// ([`ServiceBalancer::in_flight`]); picks only ever choose among `live`.
    pub fn retain<E: Endpoint>(&self, live: &[E]) {
        let keep: HashSet<&str> = live.iter().map(Endpoint::id).collect();
        let mut instances = self.instances.write().unwrap_or_else(|p| p.into_inner());
        instances.retain(|id, slot| {
            let live = keep.contains(&**id);
            slot.departed.store(!live, Ordering::Release);
            live || slot.in_flight.load(Ordering::Acquire) > 0
        });
    }

    /// Requests in flight to instance `id` now (0 for an instance it does not know).
    pub fn in_flight(&self, id: &str) -> usize {
        let instances = self.instances.read().unwrap_or_else(|p| p.into_inner());
        instances
            .get(id)
            .map_or(0, |slot| slot.in_flight.load(Ordering::Acquire))
    }

    /// What `servio status` and /metrics show, read at `now`.
    pub fn snapshot_at(&self, now: Instant) -> ServiceStats {
        let slots: Vec<Arc<Slot>> = {
            let instances = self.instances.read().unwrap_or_else(|p| p.into_inner());
            instances.values().cloned().collect()
        };
        let mut instances: Vec<InstanceStats> = slots
            .iter()
            .filter(|slot| {
                !slot.departed.load(Ordering::Acquire) || slot.in_flight.load(Ordering::Acquire) > 0
            })
            .map(|slot| {
                let breaker = slot.breaker();
                InstanceStats {
                    id: slot.id.to_string(),
                    in_flight: slot.in_flight.load(Ordering::Relaxed),
                    state: breaker.state(now),
                    consecutive_failures: breaker.consecutive_failures(),
                    ejections: breaker.ejections(),
                }
            })
            .collect();
        instances.sort_by(|a, b| a.id.cmp(&b.id));
        ServiceStats {
            service: self.name.clone(),
            active: self.active.load(Ordering::Relaxed),
            active_retries: self.active_retries.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            retries_denied: self.retries_denied.load(Ordering::Relaxed),
            panic_picks: self.panic_picks.load(Ordering::Relaxed),
            instances,
        }
    }

    pub fn snapshot(&self) -> ServiceStats {
        self.snapshot_at(Instant::now())
    }

    fn slot(&self, id: &str) -> Arc<Slot> {
        if let Some(slot) = self
            .instances
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
        {
            return Arc::clone(slot);
        }
        let mut instances = self.instances.write().unwrap_or_else(|p| p.into_inner());
        let slot = instances.entry(Arc::from(id)).or_insert_with(|| {
            Arc::new(Slot {
                id: Arc::from(id),
                in_flight: AtomicUsize::new(0),
                departed: AtomicBool::new(false),
                breaker: Mutex::new(Breaker::new()),
                config: self.config.breaker,
            })
        });
        Arc::clone(slot)
    }

    pub(super) fn pick_at<E: Endpoint>(
        &self,
        candidates: &[E],
        exclude: &[&str],
        now: Instant,
    ) -> Result<Attempt, PickError> {
        if candidates.is_empty() {
            return Err(PickError::NoInstance);
        }
        let eligible: Vec<(usize, Arc<Slot>)> = candidates
            .iter()
            .enumerate()
            .filter(|(_, candidate)| !exclude.contains(&candidate.id()))
            .map(|(index, candidate)| (index, self.slot(candidate.id())))
            .collect();
        if eligible.is_empty() {
            return Err(PickError::AllExcluded);
        }
        let mut rng = fastrand::Rng::new();
        let mut open: Vec<&(usize, Arc<Slot>)> = eligible
            .iter()
            .filter(|(_, slot)| slot.breaker().available(now))
            .collect();
        while !open.is_empty() {
            let loads: Vec<usize> = open
                .iter()
                .map(|(_, s)| s.in_flight.load(Ordering::Relaxed))
                .collect();
            let Some(chosen) = self.config.strategy.choose(&loads, &self.turn, &mut rng) else {
                break;
            };
            let (index, slot) = open[chosen];
            let ticket = slot.breaker().allow(now);
            match ticket {
                Some(ticket) => return Ok(Attempt::start(*index, slot, ticket)),
                // Another request took the half-open probe in the meantime.
                None => {
                    open.swap_remove(chosen);
                }
            }
        }
        // Panic mode: every eligible instance is ejected. Sending to one of them beats failing
        // every request until a penalty ends.
        let loads: Vec<usize> = eligible
            .iter()
            .map(|(_, s)| s.in_flight.load(Ordering::Relaxed))
            .collect();
        let chosen = self
            .config
            .strategy
            .choose(&loads, &self.turn, &mut rng)
            .unwrap_or(0);
        let (index, slot) = eligible.get(chosen).unwrap_or(&eligible[0]);
        self.panic_picks.fetch_add(1, Ordering::Relaxed);
        let ticket = slot.breaker().force();
        Ok(Attempt::start(*index, slot, ticket))
    }
}
