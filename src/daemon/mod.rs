//! The control-plane daemon: one per stack, started by `servio up`. It holds the lock,
//! serves the control socket and the loopback admin API, and owns the supervisor whose
//! controllers, instances and probes write the [`crate::registry`].
//!
//! - [`supervisor`]: the lifecycle hub: manifest, controllers, plans one at a time,
//!   adoption after a crash, instances registered through the API.
//! - [`planner`]: pure: what a verb means for each service (keep / start / stop / restart /
//!   scale), from the manifest and what runs.  [`executor`]: carries plans out.
//! - [`controller`]: one actor per service owning its instances (start, roll, scale, stop,
//!   adopt; health-gated starts, drained stops).
//! - [`instance`]: one actor per instance (spawn or adopt, capture, restart, stop).
//! - [`restart`]: the restart policy as a pure function.
//! - [`health`]: probes and the start-up / readiness / liveness rules.
//! - [`control`]: the CLI's Unix socket.  [`admin`]: the HTTP admin API.  [`dashboard`]:
//!   the web dashboard served on it.
//! - the [`crate::gateway`] runs here too, on the registry's healthy view.
//! - [`state`]: state.json, so processes can be adopted or stopped after a daemon crash.
//! - [`watch`]: watch mode: file changes → rolling restarts, debounced.

pub mod admin;
pub mod control;
pub mod controller;
pub mod dashboard;
pub mod executor;
pub mod health;
pub mod instance;
pub mod planner;
pub mod restart;
pub mod state;
pub mod supervisor;
pub mod watch;

use std::collections::HashMap;
use std::fs::File;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};
use tokio_util::sync::CancellationToken;

use crate::balance::ServiceStats;
use crate::gateway::Gateway;
use crate::manifest::Manifest;
use crate::paths::StatePaths;
use crate::process;
use crate::protocol::{ServiceStatus, StackStatus};
use crate::registry::Registry;
use instance::Shared;
use state::{ProcessRecord, StateFile, StateStore};
use supervisor::Supervisor;

/// What the control socket and admin API handlers reach.
#[derive(Debug)]
pub struct Daemon {
    pub project: String,
    pub registry: Arc<Registry>,
    pub supervisor: Arc<Supervisor>,
    pub admin_url: String,
    pub admin_port: u16,
    /// Writes to the admin API need it (`.servio/admin.token`).
    pub admin_token: String,
    pub gateway_url: Option<String>,
    /// The gateway, when the manifest declares one.
    pub gateway: Option<Gateway>,
    /// Cancelled to make the daemon exit (after `down`, or on SIGTERM/SIGINT).
    pub shutdown: CancellationToken,
    /// The routes' last five minutes, for the dashboard's charts.
    pub route_history: dashboard::RouteHistory,
    /// Instances' CPU and memory for `status`.
    pub usage: process::UsageReader,
}

impl Daemon {
    pub fn status(&self) -> StackStatus {
        let (index, mut services) = self.registry.status();
        if let Some(gateway) = &self.gateway {
            show_breakers(&mut services, &gateway.balancing());
        }
        let watched = self.supervisor.watched();
        let pids: Vec<u32> = services
            .iter()
            .flat_map(|s| &s.instances)
            .filter_map(|i| i.pid)
            .collect();
        let mut usages = self.usage.sample(&pids).into_iter();
        let running = services.iter_mut().flat_map(|s| &mut s.instances);
        for instance in running.filter(|i| i.pid.is_some()) {
            if let Some(usage) = usages.next().flatten() {
                instance.cpu_ms = Some(usage.cpu_ms);
                instance.rss_bytes = Some(usage.rss_bytes);
            }
        }
        for service in &mut services {
            service.watching = watched.contains(&service.name);
            service.depends_on = self.supervisor.depends_on(&service.name);
        }
        StackStatus {
            index,
            project: self.project.clone(),
            daemon_pid: std::process::id(),
            admin_url: self.admin_url.clone(),
            gateway_url: self.gateway_url.clone(),
            services,
            routes: self
                .gateway
                .as_ref()
                .map(Gateway::route_totals)
                .unwrap_or_default(),
            gateway: self.gateway.as_ref().map(Gateway::figures),
        }
    }
}

/// How long a daemon that adopted instances holds its gateway's clients for their first probe.
const ADOPTION_PROBE_WAIT: Duration = Duration::from_secs(5);

/// Fills each instance's `breaker` from the gateway's balancer state (closed ones stay empty).
fn show_breakers(services: &mut [ServiceStatus], balancing: &[ServiceStats]) {
    let now = std::time::Instant::now();
    let by_service: HashMap<&str, &ServiceStats> =
        balancing.iter().map(|s| (s.service.as_str(), s)).collect();
    for service in services {
        let Some(stats) = by_service.get(service.name.as_str()) else {
            continue;
        };
        let by_instance: HashMap<&str, _> = stats
            .instances
            .iter()
            .map(|i| (i.id.as_str(), i.state))
            .collect();
        for instance in &mut service.instances {
            instance.breaker = by_instance
                .get(instance.id.as_str())
                .and_then(|state| crate::gateway::metrics::breaker_text(*state, now));
        }
    }
}

/// Takes the daemon lock of a stack: at most one daemon per state folder. `None` when
/// another daemon holds it.
pub fn try_lock(paths: &StatePaths) -> Result<Option<Flock<File>>> {
    paths
        .create()
        .with_context(|| format!("cannot create {}", paths.root().display()))?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(paths.daemon_lock())
        .with_context(|| format!("cannot open {}", paths.daemon_lock().display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(anyhow::anyhow!("cannot lock the daemon lock file: {errno}")),
    }
}

/// Runs the daemon for `manifest` until `down`, SIGTERM or SIGINT; stops every service
/// before returning.
pub async fn run(manifest: Manifest) -> Result<()> {
    let paths = StatePaths::for_project(&manifest.root);
    let Some(_lock) = try_lock(&paths)? else {
        anyhow::bail!(
            "another servio daemon is already running for {}",
            manifest.root.display()
        );
    };

    // A daemon that died without `down` may have left its instances running: they are
    // adopted below, so their records stay in state.json until then.
    let mut leftover = state::read(&paths.state_file());
    // Only what still runs (same pid and start time) is adopted; checked once, here.
    leftover.instances = state::still_running(&leftover);

    match process::limits::raise_open_files() {
        Ok(raised) if raised.to > raised.from => {
            tracing::info!(from = raised.from, to = raised.to, "open-file limit raised");
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot raise the open-file limit"),
    }

    let pid = std::process::id();
    std::fs::write(paths.daemon_pid(), format!("{pid}\n"))
        .with_context(|| format!("cannot write {}", paths.daemon_pid().display()))?;

    // Adopted instances know the admin API by the address they were started with: a port
    // servio picked (`port = 0`) is taken again when it can be.
    let adopting = !leftover.instances.is_empty();
    let earlier = |configured: u16, before: Option<u16>| match before {
        Some(port) if configured == 0 && adopting && !process::ports::port_in_use(port) => port,
        _ => configured,
    };
    let admin_port = earlier(
        manifest.admin.port,
        Some(leftover.admin_port).filter(|p| *p != 0),
    );
    let gateway_port = earlier(manifest.gateway.port, leftover.gateway_port);
    let admin_listener = tokio::net::TcpListener::bind(("127.0.0.1", admin_port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{} (admin API)", admin_port))?;
    let admin_port = admin_listener.local_addr()?.port();
    let admin_url = format!("http://127.0.0.1:{admin_port}");
    let admin_token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    crate::paths::write_atomic(&paths.admin_token(), admin_token.as_bytes(), 0o600)
        .with_context(|| format!("cannot write {}", paths.admin_token().display()))?;

    let store = Arc::new(StateStore::new(
        paths.state_file(),
        StateFile {
            daemon: Some(ProcessRecord {
                pid,
                start_time: process::start_time(pid).unwrap_or(0),
            }),
            admin_port,
            gateway_port: None,
            instances: leftover.instances.clone(),
            fingerprints: leftover.fingerprints.clone(),
        },
    ));
    let registry = Arc::new(Registry::default());
    let shared = Arc::new(Shared {
        registry: registry.clone(),
        state: store.clone(),
        paths: paths.clone(),
        admin_url: admin_url.clone(),
    });
    let project = manifest.project.clone();
    let shutdown = CancellationToken::new();
    // The gateway stops after the services: it drains only once nothing is left to serve.
    let gateway_stop = CancellationToken::new();
    // However `run` ends, the gateway's worker threads stop too.
    let _gateway_stop_guard = gateway_stop.clone().drop_guard();
    let (gateway, gateway_task) = if manifest.gateway_enabled() {
        let config = manifest.gateway.clone();
        let view = registry.healthy_view();
        let port = gateway_port;
        let (gateway, task) = Gateway::start_held(config, port, view, gateway_stop.clone())
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{port} (gateway)"))?;
        store.set_gateway_port(Some(gateway.addr().port())).await;
        tracing::info!(addr = %gateway.addr(), "gateway ready");
        (Some(gateway), Some(task))
    } else {
        (None, None)
    };
    let context = Arc::new(controller::Context {
        shared,
        ports: controller::PortBook::default(),
        gateway: gateway.clone(),
    });
    let supervisor = Supervisor::new(context, manifest);
    supervisor.adopt(&leftover).await;
    if let Some(gateway) = &gateway {
        // Clients that reconnect the moment the port is back wait in the backlog until the
        // adopted instances have been probed once, rather than get "no healthy instance".
        let adopted: Vec<(String, String)> = leftover
            .instances
            .iter()
            .map(|r| (r.service.clone(), r.id.clone()))
            .collect();
        registry
            .wait_until_probed(&adopted, ADOPTION_PROBE_WAIT)
            .await;
        gateway.open();
    }
    let daemon = Arc::new(Daemon {
        project,
        registry,
        supervisor: supervisor.clone(),
        admin_url: admin_url.clone(),
        admin_port,
        admin_token,
        gateway_url: gateway.as_ref().map(|g| format!("http://{}", g.addr())),
        gateway,
        shutdown: shutdown.clone(),
        route_history: dashboard::RouteHistory::default(),
        usage: process::UsageReader::default(),
    });
    if let Some(gateway) = &daemon.gateway {
        tokio::spawn(dashboard::sample_routes(
            gateway.clone(),
            daemon.route_history.clone(),
            shutdown.clone(),
        ));
    }

    let control = control::bind(&paths.control_socket())
        .with_context(|| format!("cannot listen on {}", paths.control_socket().display()))?;
    let control_task = tokio::spawn(control::serve(control, daemon.clone(), shutdown.clone()));
    let admin = admin::router(daemon.clone());
    let admin_stop = shutdown.clone();
    let admin_task = tokio::spawn(async move {
        let served = axum::serve(admin_listener, admin)
            .with_graceful_shutdown(async move { admin_stop.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "admin API stopped");
        }
    });
    tracing::info!(pid, %admin_url, "daemon ready");

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = terminate.recv() => {
            tracing::info!("SIGTERM: stopping the stack");
            supervisor.stop_all(None).await;
        }
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("interrupted: stopping the stack");
            supervisor.stop_all(None).await;
        }
    }
    shutdown.cancel();
    gateway_stop.cancel();
    if let Some(task) = gateway_task {
        let _ = task.await;
    }
    let _ = control_task.await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), admin_task).await;
    let _ = std::fs::remove_file(paths.control_socket());
    let _ = std::fs::remove_file(paths.daemon_pid());
    let _ = std::fs::remove_file(paths.admin_token());
    store.remove_file().await;
    tracing::info!("daemon stopped");
    Ok(())
}
