//! The per-service cache of healthy instances, kept fresh by one background task per service.
//!
//! The first call to a service starts its task and waits for the first answer. A service
//! with static endpoints (`SERVIO_ENDPOINTS_*`, see [`super::endpoints`]) is resolved through
//! DNS at every refresh; any other is watched in the registry: the task holds a blocking watch
//! query open and publishes every new view. When the registry or DNS cannot be read it backs
//! off and tries again; a view already published stays in use meanwhile, because the
//! instances it lists are likely still there.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::ClientError;
use super::endpoints::{self, HostPort};
use super::registry::{self, ADMIN_URL_ENV, Lookup};
use super::transport::HttpClient;
use crate::balance::ServiceBalancer;
use crate::protocol::Instance;

/// Extra time the client gives a watch query beyond the wait it asked the server for.
const WATCH_GRACE: Duration = Duration::from_secs(5);
/// A watch answered faster than this without a change is treated as a server that does not
/// hold queries, and the next one waits the difference (no busy loop).
const MIN_WATCH_PERIOD: Duration = Duration::from_millis(500);

/// The healthy instances of a service as the registry last listed them.
#[derive(Debug)]
pub(super) struct Resolved {
    pub instances: Vec<Instance>,
}

/// What the cache knows about a service.
#[derive(Debug, Clone)]
pub(super) enum Cached {
    /// Nothing yet: the first lookup is under way.
    Pending,
    Ready(Arc<Resolved>),
    /// The registry has no such service.
    Missing,
    /// The registry could not be read and nothing was ever cached.
    Failed(String),
    /// The static endpoints could not be resolved and nothing was ever cached.
    Unresolved(String),
}

/// Everything a watch task needs, and nothing that keeps the client alive.
#[derive(Clone)]
pub(super) struct Watcher {
    pub http: HttpClient,
    /// The registry API; `None` outside servio, where only static endpoints exist.
    pub admin: Option<Arc<str>>,
    /// Static endpoints by variable name (`SERVIO_ENDPOINTS_MENU_SERVICE`).
    pub statics: Arc<BTreeMap<String, Vec<HostPort>>>,
    pub registry_timeout: Duration,
    pub wait: Duration,
    /// How often static endpoints are resolved again.
    pub dns_refresh: Duration,
    pub shutdown: CancellationToken,
}

/// Where a service's instances come from.
enum Source<'a> {
    Static(&'a [HostPort]),
    Registry(&'a Arc<str>),
}

impl Watcher {
    /// Static endpoints win over the registry; neither is a configuration error.
    fn source(&self, service: &str) -> Result<Source<'_>, ClientError> {
        if let Some(endpoints) = self.statics.get(&endpoints::env_var(service)) {
            return Ok(Source::Static(endpoints));
        }
        match &self.admin {
            Some(admin) => Ok(Source::Registry(admin)),
            None => Err(ClientError::Config(format!(
                "no {} and no {ADMIN_URL_ENV}: set {} to `host:port[,host:port]`, or run \
                 under `servio up`",
                endpoints::env_var(service),
                endpoints::env_var(service),
            ))),
        }
    }
}

/// The cache of every service this client has called.
pub(super) struct Discovery {
    watcher: Watcher,
    services: Mutex<HashMap<String, watch::Receiver<Cached>>>,
}

impl Discovery {
    pub fn new(watcher: Watcher) -> Self {
        Discovery {
            watcher,
            services: Mutex::new(HashMap::new()),
        }
    }

    /// Stops every watch task.
    pub fn shutdown(&self) {
        self.watcher.shutdown.cancel();
    }

    /// The healthy instances of `service`, waiting for the registry on first use.
    pub async fn resolve(
        &self,
        service: &str,
        balancer: &Arc<ServiceBalancer>,
    ) -> Result<Arc<Resolved>, ClientError> {
        let mut receiver = self.receiver(service, balancer)?;
        let waited = tokio::time::timeout(
            self.watcher.registry_timeout,
            receiver.wait_for(|cached| !matches!(cached, Cached::Pending)),
        )
        .await;
        let cached = match waited {
            Ok(Ok(cached)) => cached.clone(),
            Ok(Err(_)) => return Err(registry_error("the service client is shutting down")),
            Err(_) => {
                let asked = match self.watcher.source(service)? {
                    Source::Static(_) => endpoints::env_var(service),
                    Source::Registry(admin) => admin.to_string(),
                };
                return Err(registry_error(&format!(
                    "{asked} did not answer within {:?}",
                    self.watcher.registry_timeout
                )));
            }
        };
        match cached {
            Cached::Ready(resolved) => Ok(resolved),
            Cached::Missing => Err(registry_error(&format!(
                "it lists no service named `{service}`; check services.toml"
            ))),
            Cached::Failed(reason) => Err(registry_error(&reason)),
            Cached::Unresolved(reason) => Err(ClientError::Unresolved {
                service: service.to_owned(),
                variable: endpoints::env_var(service),
                reason,
            }),
            Cached::Pending => Err(registry_error("no answer yet")),
        }
    }

    /// The latest cached instances of `service`, without waiting.
    pub fn latest(&self, service: &str) -> Option<Arc<Resolved>> {
        let services = self.services.lock().unwrap_or_else(|p| p.into_inner());
        match &*services.get(service)?.borrow() {
            Cached::Ready(resolved) => Some(Arc::clone(resolved)),
            _ => None,
        }
    }

    fn receiver(
        &self,
        service: &str,
        balancer: &Arc<ServiceBalancer>,
    ) -> Result<watch::Receiver<Cached>, ClientError> {
        let mut services = self.services.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(receiver) = services.get(service) {
            return Ok(receiver.clone());
        }
        let source = self.watcher.source(service)?;
        let (sender, receiver) = watch::channel(Cached::Pending);
        services.insert(service.to_owned(), receiver.clone());
        let balancer = Arc::clone(balancer);
        match source {
            Source::Static(list) => {
                let refresh = endpoints::Refresh {
                    service: service.to_owned(),
                    endpoints: list.to_vec(),
                    every: self.watcher.dns_refresh,
                    timeout: self.watcher.registry_timeout,
                    shutdown: self.watcher.shutdown.clone(),
                };
                tokio::spawn(endpoints::refresh(refresh, sender, balancer));
            }
            Source::Registry(admin) => {
                let admin = Arc::clone(admin);
                let watcher = self.watcher.clone();
                tokio::spawn(watch_service(
                    watcher,
                    admin,
                    service.to_owned(),
                    sender,
                    balancer,
                ));
            }
        }
        Ok(receiver)
    }
}

fn registry_error(reason: &str) -> ClientError {
    ClientError::Registry {
        reason: reason.to_owned(),
    }
}

/// Keeps `sender` up to date with the registry's healthy view of `service` until shutdown.
async fn watch_service(
    watcher: Watcher,
    admin: Arc<str>,
    service: String,
    sender: watch::Sender<Cached>,
    balancer: Arc<ServiceBalancer>,
) {
    let mut index: Option<u64> = None;
    let mut failures: u32 = 0;
    loop {
        let started = Instant::now();
        let (watch, timeout) = match index {
            Some(index) => (Some((index, watcher.wait)), watcher.wait + WATCH_GRACE),
            None => (None, watcher.registry_timeout),
        };
        let fetched = tokio::select! {
            () = watcher.shutdown.cancelled() => return,
            fetched = registry::fetch(&watcher.http, &admin, &service, watch, timeout) => fetched,
        };
        let pause = match fetched {
            Ok(Lookup::Found {
                index: found,
                healthy,
            }) => {
                failures = 0;
                let unchanged = index == Some(found);
                if !unchanged || !matches!(*sender.borrow(), Cached::Ready(_)) {
                    balancer.retain(&healthy);
                    sender.send_replace(Cached::Ready(Arc::new(Resolved { instances: healthy })));
                }
                index = Some(found);
                if unchanged {
                    MIN_WATCH_PERIOD.saturating_sub(started.elapsed())
                } else {
                    Duration::ZERO
                }
            }
            Ok(Lookup::NotFound) => {
                failures = failures.saturating_add(1);
                index = None;
                sender.send_replace(Cached::Missing);
                retry_delay(failures)
            }
            Err(reason) => {
                failures = failures.saturating_add(1);
                // After an error the daemon may have restarted with a lower index: start over
                // with a plain read rather than a watch that would hold until it catches up.
                index = None;
                tracing::debug!(%service, %reason, "registry watch failed");
                sender.send_if_modified(|cached| match cached {
                    Cached::Ready(_) => false,
                    other => {
                        *other = Cached::Failed(reason);
                        true
                    }
                });
                retry_delay(failures)
            }
        };
        if !pause.is_zero() {
            tokio::select! {
                () = watcher.shutdown.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// The pause after `failures` failed reads in a row: 100 ms doubling to 5 s, jittered.
pub(super) fn retry_delay(failures: u32) -> Duration {
    let factor = 1u32
        .checked_shl(failures.saturating_sub(1).min(16))
        .unwrap_or(u32::MAX);
    let nominal = Duration::from_millis(100)
        .saturating_mul(factor)
        .min(Duration::from_secs(5));
    nominal.mul_f64(0.5 + 0.5 * fastrand::f64())
}
