//! One actor per managed instance: spawn it in its own process group, capture its output,
//! probe it, and on exit apply the restart policy; a control queue asks it to stop.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::health::{ProbeTarget, run_prober};
use super::registry::Registry;
use super::restart::{self, Decision, History};
use super::state::{InstanceRecord, StateStore};
use crate::logs::{self, ServiceLog, Stream};
use crate::manifest::{Launch, Service};
use crate::process;
use crate::protocol::Health;

/// What every instance actor shares.
#[derive(Debug)]
pub struct Shared {
    pub registry: Arc<Registry>,
    pub state: Arc<StateStore>,
    /// `http://127.0.0.1:PORT` of the admin API, passed as SERVIO_ADMIN_URL.
    pub admin_url: String,
}

/// The port an instance listens on, and whether the user chose it.
#[derive(Debug, Clone, Copy)]
pub struct Port {
    pub number: u16,
    /// A configured port that is taken is an error naming the holder; a port servio picked
    /// itself is simply picked again.
    pub configured: bool,
}

/// A request to an instance actor.
#[derive(Debug)]
pub enum Control {
    /// Stop the process (stop signal, then SIGKILL after `timeout`) and end the actor.
    Stop {
        timeout: Duration,
        done: oneshot::Sender<()>,
    },
}

/// The supervisor's handle on a running actor.
#[derive(Debug)]
pub struct InstanceHandle {
    pub id: String,
    control: mpsc::Sender<Control>,
}

impl InstanceHandle {
    /// Starts the actor for instance `id` of `service` on `port`.
    pub fn spawn(
        shared: Arc<Shared>,
        service: Arc<Service>,
        id: String,
        port: Port,
        log: ServiceLog,
    ) -> Self {
        let (control, inbox) = mpsc::channel(4);
        let actor = Actor {
            shared,
            service,
            id: id.clone(),
            port,
            log,
            inbox,
        };
        tokio::spawn(actor.run());
        InstanceHandle { id, control }
    }

    /// Stops the instance and waits until its process group is gone.
    pub async fn stop(&self, timeout: Duration) {
        let (done, finished) = oneshot::channel();
        if self
            .control
            .send(Control::Stop { timeout, done })
            .await
            .is_ok()
        {
            let _ = finished.await;
        }
    }
}

struct Actor {
    shared: Arc<Shared>,
    service: Arc<Service>,
    id: String,
    port: Port,
    log: ServiceLog,
    inbox: mpsc::Receiver<Control>,
}

/// How one run of the process ended.
enum RunEnd {
    Exited(ExitStatus),
    /// Restarted by the liveness check; the string says why.
    Liveness(String),
    /// Asked to stop; the actor is done.
    Stopped,
}

impl Actor {
    async fn run(mut self) {
        let mut history = History::default();
        loop {
            if process::ports::port_in_use(self.port.number) {
                if !self.port.configured {
                    let taken = self.port.number;
                    self.port.number = process::ports::pick_free_port(&|p| p == taken);
                    tracing::info!(instance = %self.id, taken, port = self.port.number,
                        "the port servio picked was taken; picked another");
                    continue;
                }
                let holder = process::ports::port_holder(self.port.number)
                    .map(|h| format!(" by {h}"))
                    .unwrap_or_else(|| " by another process".to_string());
                self.fail(format!(
                    "port {} is already in use{holder}",
                    self.port.number
                ));
                return self.idle_until_stopped().await;
            }
            let child = match self.spawn() {
                Ok(child) => child,
                Err(error) => {
                    self.fail(error);
                    return self.idle_until_stopped().await;
                }
            };
            let began = Instant::now();
            let end = self.supervise(child).await;
            let (success, why) = match end {
                RunEnd::Stopped => return,
                RunEnd::Exited(status) => (status.success(), process::describe_exit(status)),
                RunEnd::Liveness(reason) => (false, format!("restarted: {reason}")),
            };
            tracing::info!(instance = %self.id, "{why}");
            let decision = restart::decide(
                &self.service.restart,
                success,
                began.elapsed(),
                &mut history,
                Instant::now(),
            );
            let health = match decision {
                Decision::Done => Health::Exited,
                Decision::GiveUp => Health::Failed,
                Decision::Restart {
                    crash_looping: true,
                    ..
                } => Health::CrashLooping,
                Decision::Restart { .. } => Health::Restarting,
            };
            self.shared
                .registry
                .update(&self.service.name, &self.id, |e| {
                    e.health = health;
                    e.pid = None;
                    e.started = None;
                    e.since = SystemTime::now();
                    e.last_exit = Some(why.clone());
                });
            let Decision::Restart { delay, .. } = decision else {
                if decision == Decision::GiveUp {
                    tracing::warn!(instance = %self.id, "gave up after repeated failures");
                }
                return self.idle_until_stopped().await;
            };
            tokio::select! {
                _ = tokio::time::sleep(delay) => {
                    self.shared.registry.update(&self.service.name, &self.id, |e| e.restarts += 1);
                }
                control = self.inbox.recv() => {
                    self.mark_stopped();
                    if let Some(Control::Stop { done, .. }) = control {
                        let _ = done.send(());
                    }
                    return;
                }
            }
        }
    }

    fn spawn(&mut self) -> Result<Child, String> {
        let Launch::Command(argv) = &self.service.launch else {
            return Err("an external service has no command to run".to_string());
        };
        let Some((program, args)) = argv.split_first() else {
            return Err("empty command".to_string());
        };
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(&self.service.cwd)
            .envs(&self.service.env)
            .env("PORT", self.port.number.to_string())
            .env("SERVIO_SERVICE", &self.service.name)
            .env("SERVIO_INSTANCE", &self.id)
            .env("SERVIO_VERSION", &self.service.version)
            .env("SERVIO_ADMIN_URL", &self.shared.admin_url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start `{}`: {e}", display_program(program)))?;
        let pid = child.id().unwrap_or(0);
        let start_time = process::start_time(pid).unwrap_or(0);
        self.shared.state.record(InstanceRecord {
            service: self.service.name.clone(),
            id: self.id.clone(),
            pid,
            pgid: pid,
            start_time,
            port: self.port.number,
            stop_signal: self.service.stop.signal.as_str().to_string(),
            stop_timeout_ms: self.service.stop.timeout.as_millis() as u64,
        });
        if let Some(out) = child.stdout.take() {
            tokio::spawn(logs::capture(
                out,
                self.id.clone(),
                Stream::Out,
                self.log.clone(),
            ));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(logs::capture(
                err,
                self.id.clone(),
                Stream::Err,
                self.log.clone(),
            ));
        }
        let now = SystemTime::now();
        let port = self.port.number;
        self.shared
            .registry
            .update(&self.service.name, &self.id, |e| {
                e.pid = Some(pid);
                e.port = port;
                e.health = Health::Starting;
                e.since = now;
                e.started = Some(now);
            });
        tracing::info!(instance = %self.id, pid, port, "started");
        Ok(child)
    }

    /// Waits for the process to end, a liveness failure or a stop request.
    async fn supervise(&mut self, mut child: Child) -> RunEnd {
        let pgid = child.id().unwrap_or(0);
        let probes = CancellationToken::new();
        let (liveness_tx, mut liveness_rx) = mpsc::channel(1);
        tokio::spawn(run_prober(
            ProbeTarget {
                registry: self.shared.registry.clone(),
                service: self.service.name.clone(),
                instance: self.id.clone(),
                address: "127.0.0.1".to_string(),
                port: self.port.number,
                check: self.service.health_check.clone(),
            },
            probes.clone(),
            Some(liveness_tx),
        ));
        let _stop_probes = probes.drop_guard();
        let end = tokio::select! {
            status = child.wait() => match status {
                Ok(status) => RunEnd::Exited(status),
                Err(error) => {
                    tracing::error!(instance = %self.id, %error, "wait failed");
                    RunEnd::Liveness(format!("lost track of the process: {error}"))
                }
            },
            Some(reason) = liveness_rx.recv() => {
                let (signal, timeout) = (self.service.stop.signal, self.service.stop.timeout);
                stop_group(&mut child, pgid, signal, timeout).await;
                RunEnd::Liveness(reason)
            }
            control = self.inbox.recv() => {
                let (timeout, done) = match control {
                    Some(Control::Stop { timeout, done }) => (timeout, Some(done)),
                    None => (self.service.stop.timeout, None),
                };
                self.shared.registry.update(&self.service.name, &self.id, |e| {
                    e.health = Health::Stopping;
                });
                stop_group(&mut child, pgid, self.service.stop.signal, timeout).await;
                self.shared.state.forget(&self.id);
                self.mark_stopped();
                if let Some(done) = done {
                    let _ = done.send(());
                }
                return RunEnd::Stopped;
            }
        };
        // The leader is gone: whatever it left in its group goes too (no orphans).
        let _ = process::signal_group(pgid, Signal::SIGKILL);
        self.shared.state.forget(&self.id);
        end
    }

    fn fail(&self, why: String) {
        tracing::error!(instance = %self.id, "{why}");
        self.log
            .append(&self.id, Stream::Err, format!("servio: {why}").as_bytes());
        self.shared
            .registry
            .update(&self.service.name, &self.id, |e| {
                e.health = Health::Failed;
                e.pid = None;
                e.started = None;
                e.since = SystemTime::now();
                e.last_exit = Some(why.clone());
            });
    }

    fn mark_stopped(&self) {
        self.shared
            .registry
            .update(&self.service.name, &self.id, |e| {
                e.health = Health::Stopped;
                e.pid = None;
                e.started = None;
                e.since = SystemTime::now();
            });
    }

    /// A terminal state (failed, exited): nothing runs, but `down` still expects an answer.
    async fn idle_until_stopped(mut self) {
        if let Some(Control::Stop { done, .. }) = self.inbox.recv().await {
            self.mark_stopped();
            let _ = done.send(());
        }
    }
}

/// Stop signal to the group, wait up to `timeout` for it to empty, then SIGKILL.
async fn stop_group(child: &mut Child, pgid: u32, signal: Signal, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    let _ = process::signal_group(pgid, signal);
    let _ = tokio::time::timeout_at(deadline, child.wait()).await;
    while process::group_alive(pgid) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if process::group_alive(pgid) || child.try_wait().ok().flatten().is_none() {
        tracing::warn!(pgid, "did not stop within {timeout:?}; sending SIGKILL");
        let _ = process::signal_group(pgid, Signal::SIGKILL);
        let _ = child.wait().await;
    }
}

fn display_program(program: &str) -> String {
    let path = PathBuf::from(program);
    match std::env::current_exe() {
        Ok(exe) if exe == path => "servio".to_string(),
        _ => program.to_string(),
    }
}
