//! The registry: the single source of truth for which instances exist and how healthy they
//! are. Instance actors, controllers and health probers write it by sending [`Event`]s
//! (their effect on health is the pure [`health::transition`]); the admin API, the control
//! socket (status), the CLI's progress and the gateway only read it. Every change bumps an
//! index and wakes watchers; the traffic path reads a healthy view rebuilt on each change.

pub mod health;

pub use health::{AfterExit, Event};

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::protocol::{Health, Instance, ServiceStatus, ServiceView};

/// One instance as the daemon keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceEntry {
    pub id: String,
    pub address: String,
    /// 0 until a port is assigned.
    pub port: u16,
    pub health: Health,
    pub pid: Option<u32>,
    /// When the instance entered its current run (spawn, registration or exit).
    pub since: SystemTime,
    /// When the running process started; `None` when none runs.
    pub started: Option<SystemTime>,
    pub restarts: u32,
    pub last_exit: Option<String>,
    pub managed: bool,
}

impl InstanceEntry {
    /// A managed instance that has not been spawned yet.
    pub fn waiting(id: String) -> Self {
        InstanceEntry {
            id,
            address: "127.0.0.1".to_string(),
            port: 0,
            health: Health::Waiting,
            pid: None,
            since: SystemTime::now(),
            started: None,
            restarts: 0,
            last_exit: None,
            managed: true,
        }
    }

    /// An instance servio probes but did not start.
    pub fn external(id: String, address: String, port: u16) -> Self {
        InstanceEntry {
            address,
            port,
            health: Health::Starting,
            managed: false,
            ..InstanceEntry::waiting(id)
        }
    }

    /// Moves this instance's health as `event` says and records the facts it carries;
    /// false when the event does not apply (see [`health::transition`]).
    fn record(&mut self, event: Event) -> bool {
        let Some(next) = health::transition(self.health, &event) else {
            return false;
        };
        let now = SystemTime::now();
        self.health = next;
        match event {
            Event::Started { pid, port, at } => {
                self.pid = pid;
                self.port = port;
                self.since = now;
                self.started = pid.map(|_| at);
            }
            Event::Ended { why, .. } | Event::StartFailed { why } => {
                self.pid = None;
                self.started = None;
                self.since = now;
                self.last_exit = Some(why);
            }
            Event::Stopped => {
                self.pid = None;
                self.started = None;
                self.since = now;
            }
            Event::ProbePassed | Event::ProbesFailed | Event::Draining => {}
        }
        true
    }

    fn to_instance(&self, service: &str, version: &str, now: SystemTime) -> Instance {
        Instance {
            id: self.id.clone(),
            service: service.to_string(),
            version: version.to_string(),
            address: self.address.clone(),
            port: self.port,
            health: self.health,
            pid: self.pid,
            since: humantime::format_rfc3339_millis(self.since).to_string(),
            restarts: self.restarts,
            uptime_ms: self
                .started
                .map(|t| now.duration_since(t).unwrap_or_default().as_millis() as u64),
            last_exit: self.last_exit.clone(),
            managed: self.managed,
            breaker: None,
            cpu_ms: None,
            rss_bytes: None,
        }
    }
}

#[derive(Debug)]
struct ServiceEntry {
    version: String,
    instances: BTreeMap<String, InstanceEntry>,
    /// The registry's index at this service's last change: what its watchers wait past.
    index: watch::Sender<u64>,
}

impl ServiceEntry {
    fn new(index: u64) -> Self {
        ServiceEntry {
            version: String::new(),
            instances: BTreeMap::new(),
            index: watch::Sender::new(index),
        }
    }

    fn index(&self) -> u64 {
        *self.index.borrow()
    }

    /// The healthy instances as the traffic path wants them.
    fn endpoints(&self) -> Arc<[Endpoint]> {
        self.instances
            .values()
            .filter(|i| i.health == Health::Healthy)
            .filter_map(|i| {
                let ip: IpAddr = i.address.parse().ok()?;
                Some(Endpoint {
                    id: Arc::from(i.id.as_str()),
                    addr: SocketAddr::new(ip, i.port),
                })
            })
            .collect()
    }
}

#[derive(Debug, Default)]
struct Inner {
    services: BTreeMap<String, ServiceEntry>,
}

impl Inner {
    fn entry(&mut self, name: &str) -> &mut ServiceEntry {
        self.services
            .entry(name.to_string())
            .or_insert_with(|| ServiceEntry::new(0))
    }
}

/// Which instances a read returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Everything, including waiting, crashed and stopped instances (for `servio status`).
    All,
    /// Instances that are running or registered: what discovery lists.
    Live,
    /// Healthy instances only: what receives traffic.
    Healthy,
}

impl Filter {
    fn keeps(self, health: Health) -> bool {
        match self {
            Filter::All => true,
            Filter::Live => health.is_live(),
            Filter::Healthy => health == Health::Healthy,
        }
    }
}

/// A healthy instance as the traffic path needs it: no strings to build per request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub id: Arc<str>,
    pub addr: SocketAddr,
}

/// Healthy endpoints per service, rebuilt on every registry change and shared read-only:
/// the gateway and metrics read it without taking the registry lock.
pub type HealthyView = HashMap<String, Arc<[Endpoint]>>;

#[derive(Debug)]
pub struct Registry {
    inner: Mutex<Inner>,
    index: watch::Sender<u64>,
    healthy: watch::Sender<Arc<HealthyView>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            inner: Mutex::default(),
            index: watch::Sender::new(1),
            healthy: watch::Sender::new(Arc::default()),
        }
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing the whole registry, so recover the guard.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a change to `service` (already made under `inner`, held until the view is
    /// published, so two changes cannot publish their views out of order): the index moves
    /// on, the service's watchers wake (only they), and the healthy view is rebuilt for that
    /// service alone when its healthy endpoints changed.
    fn bump(&self, mut inner: std::sync::MutexGuard<'_, Inner>, service: &str) {
        let mut index = 0;
        self.index.send_modify(|i| {
            *i += 1;
            index = *i;
        });
        let Some(entry) = inner.services.get_mut(service) else {
            return;
        };
        entry.index.send_replace(index);
        let endpoints = entry.endpoints();
        self.healthy.send_if_modified(|current| {
            if current.get(service) == Some(&endpoints) {
                return false;
            }
            let mut view = HealthyView::clone(current);
            view.insert(service.to_string(), endpoints);
            *current = Arc::new(view);
            true
        });
        drop(inner);
    }

    /// The live healthy view: `borrow()` it per request; it changes the moment an instance
    /// exits or fails readiness.
    pub fn healthy_view(&self) -> watch::Receiver<Arc<HealthyView>> {
        self.healthy.subscribe()
    }

    /// The current index: grows on every change.
    pub fn index(&self) -> u64 {
        *self.index.borrow()
    }

    /// Waits until the index exceeds `after` or `wait` elapses; returns the index then.
    /// An `after` from the future (a watcher that outlived an earlier daemon) answers at once.
    pub async fn wait_past(&self, after: u64, wait: Duration) -> u64 {
        if after > self.index() {
            return self.index();
        }
        let mut rx = self.index.subscribe();
        let _ = tokio::time::timeout(wait, rx.wait_for(|i| *i > after)).await;
        self.index()
    }

    /// Waits until `service` changes past index `after` (its own index: changes to other
    /// services wake nobody here), or `wait` elapses. Answers at once for an unknown service
    /// or an `after` from the future.
    pub async fn wait_past_in(&self, service: &str, after: u64, wait: Duration) {
        if after > self.index() {
            return;
        }
        let Some(mut rx) = self
            .lock()
            .services
            .get(service)
            .map(|entry| entry.index.subscribe())
        else {
            return;
        };
        let _ = tokio::time::timeout(wait, rx.wait_for(|i| *i > after)).await;
    }

    /// Waits until each of `instances` (service, id) is registered and past its first probe
    /// (no longer waiting or starting), at most `wait`.
    pub async fn wait_until_probed(&self, instances: &[(String, String)], wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let index = self.index();
            let starting = instances.iter().any(|(service, id)| {
                self.get(service, id)
                    .is_none_or(|entry| matches!(entry.health, Health::Waiting | Health::Starting))
            });
            if !starting {
                return;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return;
            }
            self.wait_past(index, left).await;
        }
    }

    /// Declares a service (idempotent); updates its version.
    pub fn ensure_service(&self, name: &str, version: &str) {
        let mut inner = self.lock();
        let entry = inner.entry(name);
        if entry.version != version {
            entry.version = version.to_string();
            self.bump(inner, name);
        }
    }

    /// Adds or replaces an instance.
    pub fn put(&self, service: &str, entry: InstanceEntry) {
        let mut inner = self.lock();
        let svc = inner.entry(service);
        if svc.instances.get(&entry.id) != Some(&entry) {
            svc.instances.insert(entry.id.clone(), entry);
            self.bump(inner, service);
        }
    }

    /// Applies `event` to one instance: its health moves as [`health::transition`] says, and
    /// the facts the event carries (pid, port, exit) are recorded with it. Returns false when
    /// the event changed nothing (unknown instance, or a transition that does not apply).
    pub fn apply(&self, service: &str, id: &str, event: Event) -> bool {
        let mut applied = false;
        self.update(service, id, |entry| applied = entry.record(event));
        applied
    }

    /// Counts one more restart of an instance (its backoff is over and it spawns again).
    pub fn count_restart(&self, service: &str, id: &str) {
        self.update(service, id, |e| e.restarts += 1);
    }

    /// Changes one instance in place; watchers wake only when something changed.
    fn update(&self, service: &str, id: &str, change: impl FnOnce(&mut InstanceEntry)) {
        let mut inner = self.lock();
        let Some(entry) = inner
            .services
            .get_mut(service)
            .and_then(|s| s.instances.get_mut(id))
        else {
            return;
        };
        let before = entry.clone();
        change(entry);
        if *entry != before {
            self.bump(inner, service);
        }
    }

    /// Removes an instance; true when it existed.
    pub fn remove(&self, service: &str, id: &str) -> bool {
        let mut inner = self.lock();
        let removed = inner
            .services
            .get_mut(service)
            .is_some_and(|s| s.instances.remove(id).is_some());
        if removed {
            self.bump(inner, service);
        }
        removed
    }

    pub fn get(&self, service: &str, id: &str) -> Option<InstanceEntry> {
        self.lock()
            .services
            .get(service)
            .and_then(|s| s.instances.get(id).cloned())
    }

    /// One service's instances, or `None` for an unknown service. Its `index` is the
    /// service's own: what [`Registry::wait_past_in`] waits past.
    pub fn service(&self, name: &str, filter: Filter) -> Option<ServiceView> {
        let inner = self.lock();
        let entry = inner.services.get(name)?;
        Some(view(name, entry, filter, entry.index()))
    }

    /// Every service, in name order.
    pub fn services(&self, filter: Filter) -> (u64, Vec<ServiceView>) {
        let index = self.index();
        let inner = self.lock();
        let views = inner
            .services
            .iter()
            .map(|(name, entry)| view(name, entry, filter, entry.index()))
            .collect();
        (index, views)
    }

    /// Every service with every instance, for `servio status`.
    pub fn status(&self) -> (u64, Vec<ServiceStatus>) {
        let (index, views) = self.services(Filter::All);
        let services = views
            .into_iter()
            .map(|v| ServiceStatus {
                name: v.name,
                version: v.version,
                watching: false,
                depends_on: Vec::new(),
                instances: v.instances,
            })
            .collect();
        (index, services)
    }
}

fn view(name: &str, entry: &ServiceEntry, filter: Filter, index: u64) -> ServiceView {
    let now = SystemTime::now();
    ServiceView {
        index,
        name: name.to_string(),
        version: entry.version.clone(),
        instances: entry
            .instances
            .values()
            .filter(|i| filter.keeps(i.health))
            .map(|i| i.to_instance(name, &entry.version, now))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_bump_the_index_and_filters_apply() {
        let registry = Registry::default();
        registry.ensure_service("menu", "1.0.0");
        let start = registry.index();
        registry.put("menu", InstanceEntry::waiting("menu-1".into()));
        assert!(registry.index() > start);
        let after_put = registry.index();
        registry.update("menu", "menu-1", |i| i.health = Health::Waiting);
        assert_eq!(
            registry.index(),
            after_put,
            "no-op update must not wake watchers"
        );
        assert!(
            registry
                .service("menu", Filter::Live)
                .unwrap()
                .instances
                .is_empty()
        );
        registry.update("menu", "menu-1", |i| i.health = Health::Healthy);
        assert_eq!(
            registry
                .service("menu", Filter::Healthy)
                .unwrap()
                .instances
                .len(),
            1
        );
        registry.update("menu", "menu-1", |i| i.health = Health::Restarting);
        assert!(
            registry
                .service("menu", Filter::Live)
                .unwrap()
                .instances
                .is_empty()
        );
        assert_eq!(
            registry
                .service("menu", Filter::All)
                .unwrap()
                .instances
                .len(),
            1
        );
        assert!(registry.service("nope", Filter::All).is_none());
    }

    #[tokio::test]
    async fn watch_returns_when_the_index_moves() {
        let registry = std::sync::Arc::new(Registry::default());
        let at = registry.index();
        let waiter = {
            let registry = registry.clone();
            tokio::spawn(async move { registry.wait_past(at, Duration::from_secs(30)).await })
        };
        registry.ensure_service("menu", "1.0.0");
        let seen = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("watch woke up")
            .unwrap();
        assert!(seen > at);
        // An index from an earlier daemon answers at once instead of hanging.
        let future = registry.index() + 100;
        let answered = tokio::time::timeout(
            Duration::from_secs(5),
            registry.wait_past(future, Duration::from_secs(30)),
        )
        .await;
        assert!(answered.is_ok());
        // Nothing changes: the wait times out with the same index.
        let now = registry.index();
        assert_eq!(
            registry.wait_past(now, Duration::from_millis(20)).await,
            now
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_wakes_only_the_watchers_of_its_service() {
        let registry = std::sync::Arc::new(Registry::default());
        registry.ensure_service("menu", "1.0.0");
        registry.ensure_service("order", "1.0.0");
        let menu_at = registry.service("menu", Filter::All).unwrap().index;
        let order_at = registry.service("order", Filter::All).unwrap().index;
        let watch = |service: &'static str, at: u64| {
            let registry = registry.clone();
            tokio::spawn(async move {
                registry
                    .wait_past_in(service, at, Duration::from_secs(30))
                    .await;
                tokio::time::Instant::now()
            })
        };
        let started = tokio::time::Instant::now();
        let menu_watch = watch("menu", menu_at);
        let order_watch = watch("order", order_at);
        tokio::task::yield_now().await;
        registry.put("order", InstanceEntry::waiting("order-1".into()));
        let order_woke = order_watch.await.unwrap();
        assert_eq!(order_woke, started, "the order watcher woke at once");
        assert!(registry.index() > order_at);
        // The menu watcher sleeps through the order change: it answers only at its wait's end.
        let menu_woke = menu_watch.await.unwrap();
        assert_eq!(menu_woke - started, Duration::from_secs(30));
        // The service's own index moved; the other's did not.
        assert!(registry.service("order", Filter::All).unwrap().index > order_at);
        assert_eq!(
            registry.service("menu", Filter::All).unwrap().index,
            menu_at
        );
        // Unknown services and indexes from an earlier daemon answer at once.
        registry
            .wait_past_in("nothing", 0, Duration::from_secs(30))
            .await;
        let future = registry.index() + 1;
        registry
            .wait_past_in("menu", future, Duration::from_secs(30))
            .await;
        assert_eq!(
            tokio::time::Instant::now(),
            started + Duration::from_secs(30)
        );
    }

    #[test]
    fn the_healthy_view_is_rebuilt_for_the_changed_service_only() {
        let registry = Registry::default();
        let healthy = |registry: &Registry, service: &str, id: &str, port: u16| {
            let mut entry = InstanceEntry::external(id.into(), "127.0.0.1".into(), port);
            entry.health = Health::Healthy;
            registry.put(service, entry);
        };
        healthy(&registry, "menu", "menu-1", 4001);
        healthy(&registry, "order", "order-1", 4002);
        let view = registry.healthy_view();
        let menu_before = view.borrow()["menu"].clone();
        healthy(&registry, "order", "order-2", 4003);
        let after = view.borrow().clone();
        assert_eq!(after["order"].len(), 2);
        assert!(
            Arc::ptr_eq(&after["menu"], &menu_before),
            "menu's endpoints were rebuilt for a change to order"
        );
        // A change that leaves the healthy endpoints alone publishes no new view.
        let index = registry.index();
        registry.update("order", "order-2", |i| i.restarts += 1);
        assert!(registry.index() > index);
        assert!(Arc::ptr_eq(&view.borrow(), &after));
    }
}
