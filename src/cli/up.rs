//! `servio up [SERVICE...]`: starts the daemon when none runs (detached unless
//! `--foreground`), asks it to start the services, and waits until every one is healthy.
//! On failure it names the service, says why, shows its last log lines and exits 1.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Args;

use super::ManifestArg;
use super::connection::DaemonConnection;
use super::progress::{ProgressView, Stage, stage_of};
use crate::error::{CliError, CliResult};
use crate::manifest::Manifest;
use crate::paths::StatePaths;
use crate::protocol::{Request, Response, StackStatus};

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
    /// Give up waiting for health after this long
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = super::parse_duration)]
    pub timeout: Duration,
    /// Print only errors (no progress)
    #[arg(short, long)]
    pub quiet: bool,
}

/// How many of a failed service's last log lines `up` prints.
const FAILURE_LOG_LINES: usize = 15;

pub fn run(args: UpArgs) -> CliResult<ExitCode> {
    let manifest = args.manifest.load()?;
    let order = manifest
        .start_order(&args.services)
        .map_err(CliError::Usage)?;
    let paths = StatePaths::for_project(&manifest.root);
    let began = Instant::now();

    if args.foreground {
        return run_foreground(args, manifest, order, began);
    }
    let connection = match DaemonConnection::connect(&paths) {
        Some(connection) => connection,
        None => {
            manifest.check_ports(&|_| false)?;
            start_daemon(&manifest, &paths)?
        }
    };
    wait_until_healthy(connection, &args, &manifest, &order, began)
}

/// `--foreground`: the daemon runs in this process; this thread drives the progress display.
fn run_foreground(
    args: UpArgs,
    manifest: Manifest,
    order: Vec<String>,
    began: Instant,
) -> CliResult<ExitCode> {
    let paths = StatePaths::for_project(&manifest.root);
    if DaemonConnection::connect(&paths).is_some() {
        return Err(CliError::failure(
            "a servio daemon already runs for this project; run `servio down` first to run it in the foreground",
        ));
    }
    manifest.check_ports(&|_| false)?;
    super::daemon_cmd::init_tracing();
    let runtime = super::runtime()?;
    let daemon = runtime.spawn(crate::daemon::run(manifest.clone()));
    let connection = wait_for_socket(&paths, None)?;
    let outcome = wait_until_healthy(connection, &args, &manifest, &order, began);
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
    use std::os::unix::process::CommandExt;
    paths
        .create()
        .map_err(|e| CliError::failure(format!("cannot create {}: {e}", paths.root().display())))?;
    let log = std::fs::OpenOptions::new()
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

/// Sends `Up` and follows the daemon's state until every service is healthy, one fails,
/// or the timeout passes.
fn wait_until_healthy(
    mut connection: DaemonConnection,
    args: &UpArgs,
    manifest: &Manifest,
    order: &[String],
    began: Instant,
) -> CliResult<ExitCode> {
    let order = match connection.request(
        Request::Up {
            services: args.services.clone(),
        },
        None,
    )? {
        Response::Starting { services } => services,
        _ => order.to_vec(),
    };
    let mut view = ProgressView::new(&order, crate::term::progress_bars(), args.quiet);
    let deadline = began + args.timeout;
    let mut stages: BTreeMap<String, Stage> = BTreeMap::new();
    let mut after = 0;
    let status = loop {
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_secs(1));
        let status = match connection.request(
            Request::Watch {
                after,
                wait_ms: wait.as_millis() as u64,
            },
            Some(wait + Duration::from_secs(10)),
        )? {
            Response::Status(status) => status,
            other => return Err(CliError::failure(format!("unexpected answer: {other:?}"))),
        };
        after = status.index;
        for name in &order {
            if stages.get(name) == Some(&Stage::Healthy) {
                continue;
            }
            let deps = manifest
                .services
                .get(name)
                .map(|s| s.depends_on.clone())
                .unwrap_or_default();
            let stage = stage_of(&status, name, &deps);
            view.update(name, &stage);
            stages.insert(name.clone(), stage);
        }
        let all_healthy = order.iter().all(|n| stages.get(n) == Some(&Stage::Healthy));
        let failed = stages.values().any(|s| matches!(s, Stage::Failed(_)));
        if all_healthy || failed || Instant::now() >= deadline {
            break status;
        }
    };
    view.finish();

    let failures: Vec<(String, String)> = order
        .iter()
        .filter_map(|name| match stages.get(name) {
            Some(Stage::Healthy) => None,
            Some(Stage::Failed(why)) => Some((name.clone(), why.clone())),
            other => Some((
                name.clone(),
                format!(
                    "not healthy after {} (still {})",
                    humantime::format_duration(args.timeout),
                    match other {
                        Some(Stage::Waiting) | None => "waiting for its dependencies",
                        Some(Stage::Starting) => "starting",
                        _ => "failing its health check",
                    }
                ),
            )),
        })
        .collect();
    if failures.is_empty() {
        print_ready(&status, order.len(), began.elapsed(), args.quiet);
        return Ok(ExitCode::SUCCESS);
    }
    let paths = StatePaths::for_project(&manifest.root);
    let mut report = String::new();
    for (name, why) in &failures {
        report.push_str(&format!("`{name}` did not become healthy: {why}\n"));
        report.push_str(&last_log_lines(&paths, name));
    }
    report.push_str("the daemon keeps running: see `servio status`, `servio logs`, or stop it with `servio down`");
    Err(CliError::failure(report))
}

fn last_log_lines(paths: &StatePaths, service: &str) -> String {
    let records = crate::logs::read_records(&paths.service_log(service)).unwrap_or_default();
    if records.is_empty() {
        return format!("  (no output from {service})\n");
    }
    let start = records.len().saturating_sub(FAILURE_LOG_LINES);
    let mut text = format!("  last lines of {service}'s log:\n");
    for record in &records[start..] {
        text.push_str(&format!("    {} | {}\n", record.instance, record.message));
    }
    text
}

fn print_ready(status: &StackStatus, count: usize, took: Duration, quiet: bool) {
    if quiet {
        return;
    }
    let color = crate::term::stdout_color();
    let mut out = std::io::stdout().lock();
    let check = crate::term::paint(color, "32", "✔");
    let noun = if count == 1 { "service" } else { "services" };
    let _ = writeln!(
        out,
        "{check} {count} {noun} healthy in {:.2}s",
        took.as_secs_f64()
    );
    if let Some(gateway) = &status.gateway_url {
        let _ = writeln!(out, "  gateway  {gateway}");
    }
    let _ = writeln!(out, "  admin    {}", status.admin_url);
}
