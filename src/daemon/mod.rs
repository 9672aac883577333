//! The control-plane daemon: one per stack, started by `servio up`. It holds the lock,
//! serves the control socket and the loopback admin API, and owns the supervisor whose
//! instances and probes write the registry.
//!
//! - [`supervisor`]: manifest → running instances, dependency order, ports, stop order.
//! - [`instance`]: one actor per instance (spawn, capture, restart, stop).
//! - [`restart`]: the restart policy as a pure function.
//! - [`health`]: probes and the start-up / readiness / liveness rules.
//! - [`registry`]: the single source of truth, with a change index for watches.
//! - [`control`]: the CLI's Unix socket.  [`admin`]: the HTTP admin API.
//! - the [`crate::gateway`] runs here too, on the registry's healthy view.
//! - [`state`]: state.json, so processes can be stopped after a daemon crash.

pub mod admin;
pub mod control;
pub mod health;
pub mod instance;
pub mod registry;
pub mod restart;
pub mod state;
pub mod supervisor;

use std::fs::File;
use std::sync::Arc;

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};
use tokio_util::sync::CancellationToken;

use crate::balance::ServiceStats;
use crate::gateway::Gateway;
use crate::manifest::Manifest;
use crate::paths::StatePaths;
use crate::process;
use crate::protocol::{ServiceStatus, StackStatus};
use instance::Shared;
use registry::Registry;
use state::{ProcessRecord, StateFile, StateStore};
use supervisor::Supervisor;

/// What the control socket and admin API handlers reach.
#[derive(Debug)]
pub struct Daemon {
    pub project: String,
    pub registry: Arc<Registry>,
    pub supervisor: Arc<Supervisor>,
    pub admin_url: String,
    pub gateway_url: Option<String>,
    /// The gateway, when the manifest declares one.
    pub gateway: Option<Gateway>,
    /// Cancelled to make the daemon exit (after `down`, or on SIGTERM/SIGINT).
    pub shutdown: CancellationToken,
}

impl Daemon {
    pub fn status(&self) -> StackStatus {
        let (index, mut services) = self.registry.status();
        if let Some(gateway) = &self.gateway {
            show_breakers(&mut services, &gateway.balancing());
        }
        StackStatus {
            index,
            project: self.project.clone(),
            daemon_pid: std::process::id(),
            admin_url: self.admin_url.clone(),
            gateway_url: self.gateway_url.clone(),
            services,
        }
    }
}

/// Fills each instance's `breaker` from the gateway's balancer state (closed ones stay empty).
fn show_breakers(services: &mut [ServiceStatus], balancing: &[ServiceStats]) {
    let now = std::time::Instant::now();
    for service in services {
        let Some(stats) = balancing.iter().find(|s| s.service == service.name) else {
            continue;
        };
        for instance in &mut service.instances {
            instance.breaker = stats
                .instances
                .iter()
                .find(|i| i.id == instance.id)
                .and_then(|i| crate::gateway::metrics::breaker_text(i.state, now));
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

    // A daemon that died without `down` may have left its instances running: stop them first.
    let leftover = state::read(&paths.state_file());
    let stopped = state::stop_leftovers(&leftover, None);
    if !stopped.is_empty() {
        tracing::warn!(
            ?stopped,
            "stopped instances left behind by a previous daemon"
        );
    }

    let pid = std::process::id();
    std::fs::write(paths.daemon_pid(), format!("{pid}\n"))
        .with_context(|| format!("cannot write {}", paths.daemon_pid().display()))?;

    let admin_listener = tokio::net::TcpListener::bind(("127.0.0.1", manifest.admin.port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on 127.0.0.1:{} (admin API)",
                manifest.admin.port
            )
        })?;
    let admin_port = admin_listener.local_addr()?.port();
    let admin_url = format!("http://127.0.0.1:{admin_port}");

    let store = Arc::new(StateStore::new(
        paths.state_file(),
        StateFile {
            daemon: Some(ProcessRecord {
                pid,
                start_time: process::start_time(pid).unwrap_or(0),
            }),
            admin_port,
            gateway_port: None,
            instances: Vec::new(),
        },
    ));
    let registry = Arc::new(Registry::default());
    let shared = Arc::new(Shared {
        registry: registry.clone(),
        state: store.clone(),
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
        let port = manifest.gateway.port;
        let (gateway, task) = Gateway::start(config, port, view, gateway_stop.clone())
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{port} (gateway)"))?;
        store.set_gateway_port(Some(gateway.addr().port()));
        tracing::info!(addr = %gateway.addr(), "gateway ready");
        (Some(gateway), Some(task))
    } else {
        (None, None)
    };
    let supervisor = Supervisor::new(shared, paths.clone(), manifest);
    let daemon = Arc::new(Daemon {
        project,
        registry,
        supervisor: supervisor.clone(),
        admin_url: admin_url.clone(),
        gateway_url: gateway.as_ref().map(|g| format!("http://{}", g.addr())),
        gateway,
        shutdown: shutdown.clone(),
    });

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
    store.remove_file();
    tracing::info!("daemon stopped");
    Ok(())
}
