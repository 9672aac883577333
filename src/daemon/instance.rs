//! One actor per managed instance: spawn its process in its own process group (or adopt one
//! a crashed daemon left running), capture its output, probe it, and on exit apply the
//! restart policy; a control queue asks it to stop. It reports to the registry only through
//! events.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::health::{ProbeTarget, run_prober};
use super::restart::{self, Decision, History};
use super::state::{InstanceRecord, StateStore};
use crate::logs::{self, ServiceLog, Stream};
use crate::manifest::{Launch, Service};
use crate::paths::StatePaths;
use crate::process::{self, ExitWatch};
use crate::registry::{AfterExit, Event, Registry};

/// What every instance actor shares.
#[derive(Debug)]
pub struct Shared {
    pub registry: Arc<Registry>,
    pub state: Arc<StateStore>,
    pub paths: StatePaths,
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

/// How an actor begins.
#[derive(Debug)]
pub enum Begin {
    /// Spawn a new process.
    Spawn,
    /// Take over a process a previous daemon started (verified still the same process).
    Adopt(InstanceRecord),
}

/// A request to an instance actor.
#[derive(Debug)]
enum Control {
    /// Stop the process (stop signal, then SIGKILL after `grace`) and end the actor.
    Stop {
        grace: Duration,
        done: oneshot::Sender<()>,
    },
}

/// The controller's handle on a running actor.
#[derive(Debug)]
pub struct InstanceHandle {
    pub id: String,
    control: mpsc::Sender<Control>,
}

impl InstanceHandle {
    /// Starts the actor for instance `id` of `service` on `port`.
    pub fn start(
        shared: Arc<Shared>,
        service: Arc<Service>,
        id: String,
        port: Port,
        log: ServiceLog,
        begin: Begin,
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
        tokio::spawn(actor.run(begin));
        InstanceHandle { id, control }
    }

    /// Stops the instance and waits until its process group is gone.
    pub async fn stop(&self, grace: Duration) {
        let (done, finished) = oneshot::channel();
        if self
            .control
            .send(Control::Stop { grace, done })
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

/// The process an actor runs: its own child, or one adopted from a crashed daemon.
struct Process {
    pid: u32,
    kind: Kind,
}

enum Kind {
    Child(Child),
    /// Not our child: its exit is seen through a pidfd and its status cannot be known.
    Adopted(ExitWatch),
}

impl Process {
    /// Waits for the process to end; `None` when its exit status cannot be known.
    async fn wait(&mut self) -> Option<ExitStatus> {
        match &mut self.kind {
            Kind::Child(child) => child.wait().await.ok(),
            Kind::Adopted(watch) => {
                watch.exited().await;
                None
            }
        }
    }
}

/// How one run of the process ended.
enum RunEnd {
    /// The process ended; `None` for an adopted one whose status is unknown.
    Exited(Option<ExitStatus>),
    /// Restarted by the liveness check; the string says why.
    Liveness(String),
    /// Asked to stop; the actor is done.
    Stopped,
}

impl Actor {
    async fn run(mut self, begin: Begin) {
        let mut history = History::default();
        let mut adopt = match begin {
            Begin::Adopt(record) => Some(record),
            Begin::Spawn => None,
        };
        loop {
            let adopted = match adopt.take() {
                Some(record) => self.adopt(record).await,
                None => None,
            };
            let process = match adopted {
                Some(process) => process,
                None => match self.spawn_on_free_port().await {
                    Ok(process) => process,
                    Err(why) => {
                        self.fail(why);
                        return self.idle_until_stopped().await;
                    }
                },
            };
            let began = Instant::now();
            let (success, why) = match self.supervise(process).await {
                RunEnd::Stopped => return,
                RunEnd::Exited(Some(status)) => (status.success(), process::describe_exit(status)),
                RunEnd::Exited(None) => (false, "exited (exit status unknown: adopted)".into()),
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
            let next = match decision {
                Decision::Done => AfterExit::Done,
                Decision::GiveUp => AfterExit::GiveUp,
                Decision::Restart {
                    crash_looping: true,
                    ..
                } => AfterExit::CrashLoop,
                Decision::Restart { .. } => AfterExit::Restart,
            };
            self.report(Event::Ended { next, why });
            let Decision::Restart { delay, .. } = decision else {
                if decision == Decision::GiveUp {
                    tracing::warn!(instance = %self.id, "gave up after repeated failures");
                }
                return self.idle_until_stopped().await;
            };
            tokio::select! {
                _ = tokio::time::sleep(delay) => {
                    self.shared.registry.count_restart(&self.service.name, &self.id);
                }
                control = self.inbox.recv() => {
                    self.report(Event::Stopped);
                    if let Some(Control::Stop { done, .. }) = control {
                        let _ = done.send(());
                    }
                    return;
                }
            }
        }
    }

    fn report(&self, event: Event) {
        self.shared
            .registry
            .apply(&self.service.name, &self.id, event);
    }

    /// Takes over a recorded process that still runs: exit watch, output pipes, registry.
    async fn adopt(&mut self, record: InstanceRecord) -> Option<Process> {
        if !record.is_running() {
            return None;
        }
        let watch = match ExitWatch::new(record.pid) {
            Ok(watch) => watch,
            Err(error) => {
                tracing::warn!(instance = %self.id, %error, "cannot watch the adopted process");
                return None;
            }
        };
        for stream in [Stream::Out, Stream::Err] {
            let path = self.pipe_path(stream);
            match logs::pipe::reopen(&path) {
                Ok(reader) => {
                    tokio::spawn(logs::capture(
                        reader,
                        self.id.clone(),
                        stream,
                        self.log.clone(),
                    ));
                }
                Err(error) => {
                    tracing::warn!(instance = %self.id, %error, "no output pipe to adopt")
                }
            }
        }
        self.port.number = record.port;
        self.shared.state.record(record.clone()).await;
        // Its uptime counts from when the process really started, not from the adoption.
        let at = process::started_at(record.pid).unwrap_or_else(SystemTime::now);
        self.report(Event::Started {
            pid: Some(record.pid),
            port: record.port,
            at,
        });
        tracing::info!(instance = %self.id, pid = record.pid, port = record.port, "adopted");
        Some(Process {
            pid: record.pid,
            kind: Kind::Adopted(watch),
        })
    }

    /// Spawns the process; a port servio picked that has been taken meanwhile is picked
    /// again, a configured one that is taken is an error naming its holder.
    async fn spawn_on_free_port(&mut self) -> Result<Process, String> {
        while process::ports::port_in_use(self.port.number) {
            if self.port.configured {
                let holder = process::ports::port_holder(self.port.number)
                    .map(|h| format!(" by {h}"))
                    .unwrap_or_else(|| " by another process".to_string());
                return Err(format!(
                    "port {} is already in use{holder}",
                    self.port.number
                ));
            }
            let taken = self.port.number;
            self.port.number = process::ports::pick_free_port(&|p| p == taken);
            tracing::info!(instance = %self.id, taken, port = self.port.number,
                "the port servio picked was taken; picked another");
        }
        self.spawn().await
    }

    fn pipe_path(&self, stream: Stream) -> PathBuf {
        self.shared.paths.output_pipe(&self.id, stream.as_str())
    }

    async fn spawn(&mut self) -> Result<Process, String> {
        let Launch::Command(argv) = &self.service.launch else {
            return Err("an external service has no command to run".to_string());
        };
        let Some((program, args)) = argv.split_first() else {
            return Err("empty command".to_string());
        };
        let pipe_error = |e: std::io::Error| format!("cannot create the output pipes: {e}");
        let (out, out_end) =
            logs::pipe::create(&self.pipe_path(Stream::Out)).map_err(pipe_error)?;
        let (err, err_end) =
            logs::pipe::create(&self.pipe_path(Stream::Err)).map_err(pipe_error)?;
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
            .stdout(Stdio::from(out_end))
            .stderr(Stdio::from(err_end))
            .process_group(0)
            .kill_on_drop(false);
        process::limits::restore_for_child(command.as_std_mut());
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start `{}`: {e}", display_program(program)))?;
        // The child holds the only writing ends now: the pipes end when its group does.
        drop(command);
        let pid = child.id().unwrap_or(0);
        let start_time = process::start_time(pid).unwrap_or(0);
        self.shared
            .state
            .record(InstanceRecord {
                service: self.service.name.clone(),
                id: self.id.clone(),
                pid,
                pgid: pid,
                start_time,
                port: self.port.number,
                stop_signal: self.service.stop.signal.as_str().to_string(),
                stop_timeout_ms: self.service.stop.timeout.as_millis() as u64,
            })
            .await;
        for (reader, stream) in [(out, Stream::Out), (err, Stream::Err)] {
            tokio::spawn(logs::capture(
                reader,
                self.id.clone(),
                stream,
                self.log.clone(),
            ));
        }
        self.report(Event::Started {
            pid: Some(pid),
            port: self.port.number,
            at: SystemTime::now(),
        });
        tracing::info!(instance = %self.id, pid, port = self.port.number, "started");
        Ok(Process {
            pid,
            kind: Kind::Child(child),
        })
    }

    /// Waits for the process to end, a liveness failure or a stop request.
    async fn supervise(&mut self, mut process: Process) -> RunEnd {
        let pgid = process.pid;
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
                owner: Some(pgid),
            },
            probes.clone(),
            Some(liveness_tx),
        ));
        let _stop_probes = probes.drop_guard();
        let stop = self.service.stop.clone();
        let end = tokio::select! {
            status = process.wait() => RunEnd::Exited(status),
            Some(reason) = liveness_rx.recv() => {
                process::stop_group(pgid, stop.signal, stop.timeout, async {
                    process.wait().await;
                })
                .await;
                RunEnd::Liveness(reason)
            }
            control = self.inbox.recv() => {
                let (grace, done) = match control {
                    Some(Control::Stop { grace, done }) => (grace, Some(done)),
                    None => (stop.timeout, None),
                };
                self.report(Event::Draining);
                process::stop_group(pgid, stop.signal, grace, async {
                    process.wait().await;
                })
                .await;
                self.forget().await;
                self.report(Event::Stopped);
                if let Some(done) = done {
                    let _ = done.send(());
                }
                return RunEnd::Stopped;
            }
        };
        // The leader is gone: whatever it left in its group goes too (no orphans).
        let _ = process::signal_group(pgid, Signal::SIGKILL);
        self.forget().await;
        end
    }

    /// Nothing of this run is left: drop its state record and output pipes.
    async fn forget(&self) {
        self.shared.state.forget(&self.id).await;
        for stream in [Stream::Out, Stream::Err] {
            logs::pipe::remove(&self.pipe_path(stream));
        }
    }

    fn fail(&self, why: String) {
        tracing::error!(instance = %self.id, "{why}");
        self.log
            .append(&self.id, Stream::Err, format!("servio: {why}").as_bytes());
        self.report(Event::StartFailed { why });
    }

    /// A terminal state (failed, exited): nothing runs, but a stop still expects an answer.
    async fn idle_until_stopped(mut self) {
        if let Some(Control::Stop { done, .. }) = self.inbox.recv().await {
            self.report(Event::Stopped);
            let _ = done.send(());
        }
    }
}

fn display_program(program: &str) -> String {
    let path = PathBuf::from(program);
    match std::env::current_exe() {
        Ok(exe) if exe == path => "servio".to_string(),
        _ => program.to_string(),
    }
}
