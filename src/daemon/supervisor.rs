//! The supervisor: the daemon's lifecycle hub. It keeps the manifest the last `up` applied
//! and one controller per service, turns each verb into a plan (planner), carries plans out
//! one at a time (executor), adopts what a crashed daemon left running, and registers
//! instances announced through the admin API.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::controller::{Context, Deadline, ServiceController, Spec};
use super::executor::{self, Run};
use super::health::{ProbeTarget, run_prober};
use super::planner::{self, Fingerprint, Plan, Running, Snapshot};
use super::state::{InstanceRecord, StateFile};
use super::watch::{self, WatchTarget, Watching};
use crate::logs::ServiceLog;
use crate::manifest::{self, Launch, Manifest, Service};
use crate::protocol::{
    Action, AdoptedInstance, Health, Intent, RegisterInstance, Step, StepResult,
};
use crate::registry::InstanceEntry;

#[derive(Debug)]
pub struct Supervisor {
    ctx: Arc<Context>,
    manifest_path: PathBuf,
    manifest: Mutex<Arc<Manifest>>,
    controllers: Mutex<BTreeMap<String, ServiceController>>,
    /// Probers of instances registered through the admin API, by (service, id).
    registered: Mutex<HashMap<(String, String), CancellationToken>>,
    /// Instances adopted at start that no `up` has reported yet.
    adopted: Mutex<Vec<AdoptedInstance>>,
    /// One plan at a time: verbs queue behind each other.
    applying: tokio::sync::Mutex<()>,
    /// Cancelled by `down`: waits in progress give up.
    shutdown: CancellationToken,
    /// Watch mode, as the last `up` asked for it.
    watching: Mutex<Option<Watching>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Supervisor {
    pub fn new(ctx: Arc<Context>, manifest: Manifest) -> Arc<Self> {
        ctx.ports.set_configured(configured_ports(&manifest));
        Arc::new(Supervisor {
            ctx,
            manifest_path: manifest.path.clone(),
            manifest: Mutex::new(Arc::new(manifest)),
            controllers: Mutex::default(),
            registered: Mutex::default(),
            adopted: Mutex::default(),
            applying: tokio::sync::Mutex::new(()),
            shutdown: CancellationToken::new(),
            watching: Mutex::default(),
        })
    }

    /// The manifest as the last `up` applied it.
    pub fn manifest(&self) -> Arc<Manifest> {
        lock(&self.manifest).clone()
    }

    /// The controller of `name`, created on first use; `None` once the daemon is stopping.
    pub fn controller_for(&self, name: &str) -> Option<ServiceController> {
        if self.shutdown.is_cancelled() {
            return lock(&self.controllers).get(name).cloned();
        }
        let mut controllers = lock(&self.controllers);
        let controller = controllers.entry(name.to_string()).or_insert_with(|| {
            ServiceController::spawn(name, self.ctx.clone(), self.shutdown.child_token())
        });
        Some(controller.clone())
    }

    /// What each service was started with and whether it still runs, for the planner.
    pub fn snapshot(&self) -> Snapshot {
        let controllers = lock(&self.controllers).clone();
        let registry = &self.ctx.shared.registry;
        controllers
            .into_iter()
            .filter_map(|(name, controller)| {
                let published = controller.published();
                let spec = published.spec?;
                let alive = registry
                    .service(&name, crate::registry::Filter::All)
                    .is_some_and(|view| {
                        view.instances.iter().any(|i| {
                            !matches!(i.health, Health::Exited | Health::Failed | Health::Stopped)
                        })
                    });
                let running = Running {
                    fingerprint: spec.fingerprint.clone(),
                    replicas: published.replicas,
                    active: published.started && (alive || published.replicas == 0),
                    depends_on: spec.service.depends_on.clone(),
                    external: matches!(spec.service.launch, Launch::External(_)),
                };
                Some((name, running))
            })
            .collect()
    }

    /// The services `name` was started depending on.
    pub fn depends_on(&self, name: &str) -> Vec<String> {
        lock(&self.controllers)
            .get(name)
            .map(|c| c.depends_on())
            .unwrap_or_default()
    }

    /// Plans `intent`: `up` re-reads the manifest from disk, other verbs use the one the
    /// last `up` applied (as `docker compose restart` does). Nothing changes yet.
    pub fn plan(&self, intent: &Intent) -> Result<(Arc<Manifest>, Plan), String> {
        let manifest = match intent {
            Intent::Up { .. } => {
                Arc::new(manifest::load(&self.manifest_path).map_err(|e| e.to_string())?)
            }
            _ => self.manifest(),
        };
        let plan = planner::plan(intent, &manifest, &self.snapshot()).map_err(|e| e.to_string())?;
        Ok((manifest, plan))
    }

    /// Plans `intent` and carries the plan out; `on_plan` sees the plan (and any instances
    /// adopted at start) before anything changes. Plans run one at a time.
    pub async fn apply(
        self: &Arc<Self>,
        intent: &Intent,
        timeout: Duration,
        on_plan: impl AsyncFnOnce(&Plan, Vec<AdoptedInstance>),
    ) -> Result<Vec<StepResult>, String> {
        let _one_at_a_time = self.applying.lock().await;
        let (manifest, plan) = self.plan(intent)?;
        let adopted = std::mem::take(&mut *lock(&self.adopted));
        on_plan(&plan, adopted).await;
        if matches!(intent, Intent::Up { .. }) {
            self.ctx.ports.set_configured(configured_ports(&manifest));
            *lock(&self.manifest) = manifest.clone();
        }
        let run = Run {
            deadline: Deadline::after(timeout),
            stop_grace: match intent {
                Intent::Stop { timeout_ms, .. } => timeout_ms.map(Duration::from_millis),
                _ => None,
            },
            settle_kept: !matches!(intent, Intent::Stop { .. }),
        };
        let results = executor::execute(self, &manifest, &plan, run).await;
        if let Intent::Up { watch, .. } = intent {
            self.watch(&manifest, *watch);
        }
        Ok(results)
    }

    /// Replaces one running instance of `service` (the step a rolling restart takes for
    /// each instance), queued behind any plan in progress like every verb.
    pub async fn restart_instance(
        &self,
        service: &str,
        id: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        let _one_at_a_time = self.applying.lock().await;
        let controller = lock(&self.controllers).get(service).cloned();
        let Some(controller) = controller else {
            return Err(format!("`{service}` is not a service this daemon runs"));
        };
        controller
            .replace(id.to_string(), Deadline::after(timeout))
            .await
    }

    /// (Re)starts watch mode for the services `manifest` watches (every service it runs,
    /// with `all`).
    fn watch(self: &Arc<Self>, manifest: &Manifest, all: bool) {
        let targets = WatchTarget::from_manifest(manifest, all);
        let logs: BTreeMap<String, ServiceLog> = lock(&self.controllers)
            .iter()
            .filter_map(|(name, c)| Some((name.clone(), c.published().log?)))
            .collect();
        let mut watching = lock(&self.watching);
        // The old watch stops before the new one starts: one restart per change.
        *watching = None;
        *watching = watch::start(targets, Arc::downgrade(self), &logs);
    }

    /// The services watch mode restarts on changes.
    pub fn watched(&self) -> Vec<String> {
        lock(&self.watching)
            .as_ref()
            .map(|w| w.services().to_vec())
            .unwrap_or_default()
    }

    /// Carries out one step through the service's controller.
    pub async fn carry_out(
        &self,
        manifest: &Manifest,
        step: &Step,
        run: Run,
    ) -> Result<(), String> {
        let Some(controller) = self.controller_for(&step.service) else {
            return Err("the daemon is stopping".to_string());
        };
        let spec = || {
            manifest
                .services
                .get(&step.service)
                .map(|service| Spec {
                    service: Arc::new(service.clone()),
                    fingerprint: Fingerprint::of(service),
                    logs: manifest.logs,
                })
                .ok_or_else(|| format!("`{}` is not in the manifest", step.service))
        };
        match &step.action {
            Action::Keep if run.settle_kept => controller.settle(run.deadline).await,
            Action::Keep => Ok(()),
            Action::Start { replicas } => controller.start(spec()?, *replicas, run.deadline).await,
            Action::Restart { replicas, .. } => {
                controller.roll(spec()?, *replicas, run.deadline).await
            }
            Action::Scale { to, .. } => controller.scale(*to, run.deadline).await,
            Action::Stop => {
                controller.stop(run.stop_grace).await;
                Ok(())
            }
        }
    }

    /// Takes over the instances a crashed daemon recorded (`leftover.instances`, already
    /// narrowed to those still running): each service's controller supervises them from now
    /// on. Services the
    /// manifest no longer has are adopted too, so that the next `up` stops them.
    pub async fn adopt(&self, leftover: &StateFile) {
        let manifest = self.manifest();
        let mut by_service: BTreeMap<String, Vec<InstanceRecord>> = BTreeMap::new();
        for record in leftover.instances.iter().cloned() {
            by_service
                .entry(record.service.clone())
                .or_default()
                .push(record);
        }
        for (name, records) in by_service {
            let service = match manifest.services.get(&name) {
                Some(service) => service.clone(),
                None => leftover_service(&name, &manifest.root, &records[0]),
            };
            let fingerprint = leftover
                .fingerprints
                .get(&name)
                .cloned()
                .unwrap_or_else(|| Fingerprint::of(&service));
            let spec = Spec {
                service: Arc::new(service),
                fingerprint,
                logs: manifest.logs,
            };
            lock(&self.adopted).extend(records.iter().map(|r| AdoptedInstance {
                id: r.id.clone(),
                pid: r.pid,
                port: r.port,
            }));
            tracing::info!(service = %name, instances = records.len(), "adopting instances a previous daemon left running");
            if let Some(controller) = self.controller_for(&name) {
                controller.adopt(spec, records).await;
            }
        }
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
        let registry = &self.ctx.shared.registry;
        if registry.get(service, &id).is_some() {
            return Err(format!("instance `{id}` is already registered"));
        }
        registry.ensure_service(service, &version);
        registry.put(
            service,
            InstanceEntry::external(id.clone(), address.clone(), request.port),
        );
        let cancel = self.shutdown.child_token();
        lock(&self.registered).insert((service.to_string(), id.clone()), cancel.clone());
        tokio::spawn(run_prober(
            ProbeTarget {
                registry: registry.clone(),
                service: service.to_string(),
                instance: id.clone(),
                address,
                port: request.port,
                check: template.health_check.clone(),
                owner: None,
            },
            cancel,
            None,
        ));
        Ok(id)
    }

    /// `DELETE /v1/services/{name}/instances/{id}`: only instances registered through the API.
    pub fn deregister(&self, service: &str, id: &str) -> Result<(), DeregisterError> {
        let key = (service.to_string(), id.to_string());
        let registry = &self.ctx.shared.registry;
        match registry.get(service, id) {
            None => Err(DeregisterError::NotFound),
            Some(_) => match lock(&self.registered).remove(&key) {
                Some(cancel) => {
                    cancel.cancel();
                    registry.remove(service, id);
                    Ok(())
                }
                None => Err(DeregisterError::Managed),
            },
        }
    }

    /// Stops every service (dependents first) through the executor, after making any plan
    /// in progress give up; returns the stopped services in stop order.
    pub async fn stop_all(self: &Arc<Self>, timeout: Option<Duration>) -> Vec<String> {
        self.shutdown.cancel();
        *lock(&self.watching) = None;
        let _one_at_a_time = self.applying.lock().await;
        let manifest = self.manifest();
        let intent = Intent::Stop {
            services: Vec::new(),
            with_dependents: true,
            timeout_ms: None,
        };
        let plan = planner::plan(&intent, &manifest, &self.snapshot()).unwrap_or_default();
        let run = Run {
            deadline: Deadline::after(Duration::ZERO),
            stop_grace: timeout,
            settle_kept: false,
        };
        let results = executor::execute(self, &manifest, &plan, run).await;
        // Services that never got going (still waiting) are marked stopped as well.
        let controllers = lock(&self.controllers).clone();
        for (name, controller) in &controllers {
            if !results.iter().any(|r| &r.service == name) {
                controller.stop(Some(Duration::ZERO)).await;
            }
        }
        for (_, cancel) in lock(&self.registered).drain() {
            cancel.cancel();
        }
        results.into_iter().map(|r| r.service).collect()
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum DeregisterError {
    NotFound,
    Managed,
}

/// Every service's configured port.
fn configured_ports(manifest: &Manifest) -> BTreeSet<u16> {
    manifest.services.values().filter_map(|s| s.port).collect()
}

/// How an instance of a service the manifest does not declare is probed: the defaults,
/// without liveness restarts (servio cannot restart what it did not start).
pub fn outside_service(name: &str, root: &Path) -> Service {
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
        watch: Vec::new(),
        health_check: HealthCheck::default(),
        restart: RestartPolicy::default(),
        stop: StopPolicy::default(),
    }
}

/// Settings for adopted instances of a service the manifest no longer has: enough to
/// supervise and stop them the way they were started (the next `up` stops them).
fn leftover_service(name: &str, root: &Path, record: &InstanceRecord) -> Service {
    use crate::manifest::{HealthCheck, ProbeKind, RestartMode, RestartPolicy, StopPolicy};
    Service {
        launch: Launch::Command(Vec::new()),
        health_check: HealthCheck {
            kind: ProbeKind::Tcp,
            liveness_threshold: 0,
            ..HealthCheck::default()
        },
        restart: RestartPolicy {
            mode: RestartMode::Never,
            ..RestartPolicy::default()
        },
        stop: StopPolicy {
            signal: crate::process::parse_signal(&record.stop_signal)
                .unwrap_or(nix::sys::signal::Signal::SIGTERM),
            timeout: Duration::from_millis(record.stop_timeout_ms),
        },
        ..outside_service(name, root)
    }
}
