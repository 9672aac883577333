//! `servio up [SERVICE...]`: starts the daemon when none runs (detached unless
//! `--foreground`), then has it reconcile the stack with the manifest (start what is
//! missing, roll what changed, stop what was removed, keep the rest) and waits until every
//! service is healthy. On failure it names the service, says why, shows its last log lines
//! and exits 1. `--dry-run` prints the plan and changes nothing.

use std::io::Write;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Args;

use super::ManifestArg;
use super::apply::{self, Summary, WaitArgs};
use super::connection::DaemonConnection;
use crate::daemon::{planner, state};
use crate::error::{CliError, CliResult};
use crate::manifest::Manifest;
use crate::paths::StatePaths;
use crate::protocol::{Intent, Request, Response};

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Services to start, with their dependencies [default: all]
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// Run the daemon in this terminal; Ctrl-C stops the stack
    #[arg(long)]
    pub foreground: bool,
    /// Print what would change (keep / start / stop / restart, with reasons) and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Restart a service (rolling) when files under its cwd change, also for services
    /// without `watch` globs in the manifest
    #[arg(long)]
    pub watch: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
}

pub fn run(args: UpArgs) -> CliResult<ExitCode> {
    let manifest = args.manifest.load()?;
    manifest
        .start_order(&args.services)
        .map_err(CliError::Usage)?;
    let paths = StatePaths::for_project(&manifest.root);
    let began = Instant::now();
    let intent = Intent::Up {
        services: args.services.clone(),
        watch: args.watch,
    };

    if args.dry_run {
        return dry_run(&paths, &manifest, intent, args.wait.output.json);
    }
    if args.foreground {
        return run_foreground(args, manifest, intent, began);
    }
    let connection = match DaemonConnection::connect_answering(&paths) {
        Some(connection) => connection,
        None => {
            let adopting = !state::still_running(&state::read(&paths.state_file())).is_empty();
            if !adopting {
                manifest.check_ports(&|_| false)?;
            }
            start_daemon(&manifest, &paths)?
        }
    };
    apply::run(
        connection,
        &manifest,
        intent,
        &args.wait,
        Summary::Healthy,
        began,
    )
}

/// `--dry-run`: the daemon plans against what runs; with no daemon, everything would start.
fn dry_run(
    paths: &StatePaths,
    manifest: &Manifest,
    intent: Intent,
    json: bool,
) -> CliResult<ExitCode> {
    let steps = match DaemonConnection::connect(paths) {
        Some(mut connection) => {
            let request = Request::Apply {
                intent,
                dry_run: true,
                timeout_ms: 0,
            };
            match connection.request(request, Some(Duration::from_secs(30)))? {
                Response::Plan { steps, .. } => steps,
                other => {
                    return Err(CliError::failure(format!(
                        "unexpected answer from the daemon: {other:?}"
                    )));
                }
            }
        }
        None => planner::plan(&intent, manifest, &planner::Snapshot::default())
            .map_err(|e| CliError::Usage(e.to_string()))?,
    };
    apply::print_plan(&steps, json);
    Ok(ExitCode::SUCCESS)
}

/// `--foreground`: the daemon runs in this process; this thread drives the progress display.
fn run_foreground(
    args: UpArgs,
    manifest: Manifest,
    intent: Intent,
    began: Instant,
) -> CliResult<ExitCode> {
    let paths = StatePaths::for_project(&manifest.root);
    if DaemonConnection::connect(&paths).is_some() {
        return Err(CliError::failure(
            "a servio daemon already runs for this project; run `servio down` first to run it in the foreground",
        ));
    }
    if state::still_running(&state::read(&paths.state_file())).is_empty() {
        manifest.check_ports(&|_| false)?;
    }
    super::daemon_cmd::init_tracing();
    let runtime = super::runtime()?;
    let daemon = runtime.spawn(crate::daemon::run(manifest.clone()));
    let connection = wait_for_socket(&paths, None)?;
    let outcome = apply::run(
        connection,
        &manifest,
        intent,
        &args.wait,
        Summary::Healthy,
        began,
    );
    if let Err(error) = &outcome {
        eprintln!("error: {error}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "servio runs in the foreground; Ctrl-C stops the stack"
    );
    match runtime.block_on(daemon) {
        Ok(Ok(())) => Ok(ExitCode::SUCCESS),
        Ok(Err(error)) => Err(CliError::Failure(error)),
        Err(join) => Err(CliError::failure(format!("the daemon failed: {join}"))),
    }
}

/// Starts `servio daemon` detached (own session, output to .servio/daemon.log) and waits
/// for its control socket.
fn start_daemon(manifest: &Manifest, paths: &StatePaths) -> CliResult<DaemonConnection> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::process::CommandExt;
    paths
        .create()
        .map_err(|e| CliError::failure(format!("cannot create {}: {e}", paths.root().display())))?;
    let log = std::fs::OpenOptions::new()
        .mode(0o600)
        .create(true)
        .append(true)
        .open(paths.daemon_log())?;
    let exe = std::env::current_exe()?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("daemon")
        .arg("--file")
        .arg(&manifest.path)
        .current_dir(&manifest.root)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    // The daemon starts as this command was started: it declines huge pages itself, and
    // what it was given is what its services get.
    crate::process::limits::restore_for_child(&mut command);
    let mut child = command.spawn()?;
    let connection = wait_for_socket(paths, Some(&mut child));
    // Dropping the handle neither kills nor waits: the daemon lives on in its own session.
    drop(child);
    connection
}

/// Polls for the control socket until it answers, the daemon dies, or 15 s pass.
fn wait_for_socket(
    paths: &StatePaths,
    mut child: Option<&mut std::process::Child>,
) -> CliResult<DaemonConnection> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(connection) = DaemonConnection::connect(paths) {
            return Ok(connection);
        }
        if let Some(child) = child.as_deref_mut() {
            // Our daemon exiting is only a failure when no other daemon (a concurrent `up`
            // that won the lock) is starting instead.
            let lost_the_race = || matches!(crate::daemon::try_lock(paths), Ok(None));
            if let Ok(Some(status)) = child.try_wait().map(|s| s.filter(|_| !lost_the_race())) {
                return Err(CliError::failure(format!(
                    "the servio daemon {} before it was ready:\n{}",
                    crate::process::describe_exit(status),
                    tail_file(&paths.daemon_log(), 10)
                )));
            }
        }
        if Instant::now() > deadline {
            return Err(CliError::failure(format!(
                "the servio daemon did not open {} within 15s; see {}",
                paths.control_socket().display(),
                paths.daemon_log().display()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn tail_file(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
