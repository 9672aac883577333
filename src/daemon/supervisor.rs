//! The supervisor: turns the manifest into running instances. Starts services in dependency
//! order once everything they depend on is healthy, assigns ports, registers external
//! instances, and stops everything in reverse dependency order.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::health::{ProbeTarget, run_prober};
use super::instance::{InstanceHandle, Port, Shared};
use super::registry::{Filter, InstanceEntry};
use crate::logs::ServiceLog;
use crate::manifest::{self, Launch, Manifest, Service};
use crate::paths::StatePaths;
use crate::process::ports::{pick_free_port, port_in_use};
use crate::protocol::{Health, RegisterInstance};

/// One service the supervisor has taken on.
#[derive(Debug, Default)]
struct ServiceRun {
    /// Filled once its dependencies are healthy and the instances are spawned.
    instances: Vec<Arc<InstanceHandle>>,
    stop_timeout: Duration,
}

#[derive(Debug)]
pub struct Supervisor {
    shared: Arc<Shared>,
    paths: StatePaths,
    manifest_path: PathBuf,
    manifest: Mutex<Arc<Manifest>>,
    services: Mutex<BTreeMap<String, ServiceRun>>,
    /// Probers of external instances, by (service, id).
    external: Mutex<HashMap<(String, String), CancellationToken>>,
    /// Ports handed out by this daemon (so replicas never collide with other services).
    claimed: Mutex<BTreeSet<u16>>,
    /// Cancels service starters still waiting for dependencies.
    shutdown: CancellationToken,
}

impl Supervisor {
    pub fn new(shared: Arc<Shared>, paths: StatePaths, manifest: Manifest) -> Arc<Self> {
        Arc::new(Supervisor {
            shared,
            paths,
            manifest_path: manifest.path.clone(),
            manifest: Mutex::new(Arc::new(manifest)),
            services: Mutex::default(),
            external: Mutex::default(),
            claimed: Mutex::default(),
            shutdown: CancellationToken::new(),
        })
    }

    /// The manifest as the last `up` read it.
    pub fn manifest(&self) -> Arc<Manifest> {
        self.manifest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads the manifest and starts `wanted` (all when empty) with their dependencies.
    /// Services already running are left as they are; services whose instances have all
    /// ended (exited, failed, stopped) start again, as `docker compose up` restarts stopped
    /// containers. Returns the start order.
    pub async fn up(self: &Arc<Self>, wanted: &[String]) -> Result<Vec<String>, String> {
        let manifest = manifest::load(&self.manifest_path).map_err(|e| e.to_string())?;
        let order = manifest.start_order(wanted)?;
        let manifest = Arc::new(manifest);
        *self.manifest.lock().unwrap_or_else(|e| e.into_inner()) = manifest.clone();
        for name in &order {
            let service = Arc::new(manifest.services[name].clone());
            if let Some(ended) = self.take_if_ended(name) {
                for handle in ended.instances {
                    handle.stop(Duration::ZERO).await;
                }
            }
            let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
            if services.contains_key(name) {
                continue;
            }
            services.insert(
                name.clone(),
                ServiceRun {
                    instances: Vec::new(),
                    stop_timeout: service.stop.timeout,
                },
            );
            drop(services);
            self.shared.registry.ensure_service(name, &service.version);
            match &service.launch {
                Launch::External(addresses) => {
                    for (i, address) in addresses.iter().enumerate() {
                        let id = format!("{name}-{}", i + 1);
                        self.add_external(&service, id, address.ip().to_string(), address.port());
                    }
                }
                Launch::Command(_) => {
                    for i in 0..service.replicas {
                        let id = format!("{name}-{}", i + 1);
                        self.shared.registry.put(name, InstanceEntry::waiting(id));
                    }
                    let this = self.clone();
                    tokio::spawn(async move { this.start_when_ready(service).await });
                }
            }
        }
        Ok(order)
    }

    /// Removes and returns a managed service whose instances have all ended.
    fn take_if_ended(&self, name: &str) -> Option<ServiceRun> {
        let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        let run = services.get(name)?;
        let view = self.shared.registry.service(name, Filter::All)?;
        let ended = !run.instances.is_empty()
            && view.instances.iter().all(|i| {
                i.managed && matches!(i.health, Health::Exited | Health::Failed | Health::Stopped)
            });
        if !ended {
            return None;
        }
        let mut claimed = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        for instance in &view.instances {
            claimed.remove(&instance.port);
        }
        services.remove(name)
    }

    /// Waits until every dependency is healthy, then spawns the service's instances.
    async fn start_when_ready(self: Arc<Self>, service: Arc<Service>) {
        let registry = &self.shared.registry;
        loop {
            let index = registry.index();
            let ready = service.depends_on.iter().all(|dep| {
                registry.service(dep, Filter::All).is_some_and(|view| {
                    !view.instances.is_empty()
                        && view.instances.iter().all(|i| i.health == Health::Healthy)
                })
            });
            if ready {
                break;
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = registry.wait_past(index, Duration::from_secs(5)) => {}
            }
        }
        let log =
            match ServiceLog::open(&self.paths.service_log(&service.name), self.manifest().logs) {
                Ok(log) => log,
                Err(error) => {
                    tracing::error!(service = %service.name, %error, "cannot open the log file");
                    return;
                }
            };
        let ports = self.assign_ports(&service);
        let handles: Vec<Arc<InstanceHandle>> = ports
            .into_iter()
            .enumerate()
            .map(|(i, number)| {
                let id = format!("{}-{}", service.name, i + 1);
                // Only the configured port is the user's; servio chose every other one and
                // may choose again if something takes it before the spawn.
                let port = Port {
                    number,
                    configured: i == 0 && service.port.is_some(),
                };
                Arc::new(InstanceHandle::spawn(
                    self.shared.clone(),
                    service.clone(),
                    id,
                    port,
                    log.clone(),
                ))
            })
            .collect();
        let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(run) = services.get_mut(&service.name) {
            run.instances = handles;
        }
    }

    /// The first replica gets the configured port; further replicas the next free ports.
    /// Without a configured port every replica gets a free port from the kernel.
    fn assign_ports(&self, service: &Service) -> Vec<u16> {
        let mut claimed = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        let reserved: BTreeSet<u16> = self
            .manifest()
            .services
            .values()
            .filter(|s| s.name != service.name)
            .filter_map(|s| s.port)
            .collect();
        let mut ports = Vec::new();
        let mut next = service.port;
        for i in 0..service.replicas {
            let port = match next {
                Some(first) if i == 0 => first,
                Some(previous) => (previous.saturating_add(1)..=u16::MAX)
                    .find(|p| !claimed.contains(p) && !reserved.contains(p) && !port_in_use(*p))
                    .unwrap_or(previous),
                None => pick_free_port(&|p| claimed.contains(&p)),
            };
            if service.port.is_some() {
                next = Some(port);
            }
            claimed.insert(port);
            ports.push(port);
        }
        ports
    }

    /// Publishes an instance servio does not run and starts probing it.
    fn add_external(&self, service: &Service, id: String, address: String, port: u16) {
        let registry = &self.shared.registry;
        registry.put(
            &service.name,
            InstanceEntry::external(id.clone(), address.clone(), port),
        );
        let cancel = self.shutdown.child_token();
        self.external
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((service.name.clone(), id.clone()), cancel.clone());
        tokio::spawn(run_prober(
            ProbeTarget {
                registry: registry.clone(),
                service: service.name.clone(),
                instance: id,
                address,
                port,
                check: service.health_check.clone(),
            },
            cancel,
            None,
        ));
    }

    /// `POST /v1/services/{name}/instances`: registers and probes an outside instance.
    pub fn register(&self, service: &str, request: RegisterInstance) -> Result<String, String> {
        let manifest = self.manifest();
        let address = request.address.unwrap_or_else(|| "127.0.0.1".to_string());
        if address.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("`{address}` is not an IP address"));
        }
        let template = match manifest.services.get(service) {
            Some(known) => known.clone(),
            None => outside_service(service, &manifest.root),
        };
        let version = request.version.unwrap_or_else(|| template.version.clone());
        let id = request
            .id
            .unwrap_or_else(|| format!("{service}-{address}-{}", request.port));
        if self.shared.registry.get(service, &id).is_some() {
            return Err(format!("instance `{id}` is already registered"));
        }
        self.shared.registry.ensure_service(service, &version);
        self.add_external(&template, id.clone(), address, request.port);
        Ok(id)
    }

    /// `DELETE /v1/services/{name}/instances/{id}`: only instances servio did not start.
    pub fn deregister(&self, service: &str, id: &str) -> Result<(), DeregisterError> {
        match self.shared.registry.get(service, id) {
            None => Err(DeregisterError::NotFound),
            Some(entry) if entry.managed => Err(DeregisterError::Managed),
            Some(_) => {
                let key = (service.to_string(), id.to_string());
                if let Some(cancel) = self
                    .external
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key)
                {
                    cancel.cancel();
                }
                self.shared.registry.remove(service, id);
                Ok(())
            }
        }
    }

    /// Stops every service in reverse dependency order; returns their names in stop order.
    pub async fn stop_all(&self, timeout: Option<Duration>) -> Vec<String> {
        self.shutdown.cancel();
        let manifest = self.manifest();
        let started: Vec<String> = self
            .services
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        let mut order = manifest.start_order(&[]).unwrap_or_default();
        order.retain(|name| started.contains(name));
        for name in &started {
            if !order.contains(name) {
                order.insert(0, name.clone());
            }
        }
        order.reverse();
        for name in &order {
            let (handles, default_timeout) = {
                let services = self.services.lock().unwrap_or_else(|e| e.into_inner());
                match services.get(name) {
                    Some(run) => (run.instances.clone(), run.stop_timeout),
                    None => continue,
                }
            };
            let grace = timeout.unwrap_or(default_timeout);
            tracing::info!(service = %name, "stopping");
            let mut stops = tokio::task::JoinSet::new();
            for handle in handles {
                stops.spawn(async move { handle.stop(grace).await });
            }
            stops.join_all().await;
            // Instances that never started (still waiting) are simply stopped.
            if let Some(view) = self.shared.registry.service(name, Filter::All) {
                for instance in view.instances {
                    self.shared.registry.update(name, &instance.id, |e| {
                        if e.managed {
                            e.health = Health::Stopped;
                            e.pid = None;
                        }
                    });
                }
            }
        }
        order
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum DeregisterError {
    NotFound,
    Managed,
}

/// How an instance of a service the manifest does not declare is probed: the defaults,
/// without liveness restarts (servio cannot restart what it did not start).
fn outside_service(name: &str, root: &std::path::Path) -> Service {
    use crate::manifest::{HealthCheck, RestartPolicy, StopPolicy};
    Service {
        name: name.to_string(),
        version: "0.0.0".to_string(),
        launch: Launch::External(Vec::new()),
        port: None,
        replicas: 1,
        env: BTreeMap::new(),
        cwd: root.to_path_buf(),
        depends_on: Vec::new(),
        health_check: HealthCheck::default(),
        restart: RestartPolicy::default(),
        stop: StopPolicy::default(),
    }
}
