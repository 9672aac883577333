//! `servio down`: stops the stack in reverse dependency order through the daemon; when the
//! daemon is gone (killed), stops every process state.json records whose start time still
//! matches. Idempotent.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::ManifestArg;
use super::connection::{DaemonConnection, wait_for_daemon_exit};
use crate::daemon::state;
use crate::error::CliResult;
use crate::manifest;
use crate::paths::StatePaths;
use crate::process;
use crate::protocol::{Request, Response};

#[derive(Debug, Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// Grace period before SIGKILL [default: each service's stop.timeout]
    #[arg(short, long, value_name = "DURATION", value_parser = super::parse_duration)]
    pub timeout: Option<Duration>,
    /// Print only errors
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(args: DownArgs) -> CliResult<ExitCode> {
    // Only the location is needed: down works even while the manifest has errors.
    let path = manifest::locate(args.manifest.file.as_deref())?;
    let root = path.parent().unwrap_or(std::path::Path::new("."));
    let paths = StatePaths::for_project(root);
    let mut stdout = std::io::stdout().lock();
    let mut sink = std::io::sink();
    let out: &mut dyn Write = if args.quiet { &mut sink } else { &mut stdout };

    if let Some(mut connection) = DaemonConnection::connect(&paths) {
        let daemon = state::read(&paths.state_file()).daemon;
        let request = Request::Down {
            timeout_ms: args.timeout.map(|t| t.as_millis() as u64),
        };
        match connection.request(request, None) {
            Ok(Response::Stopped { services }) => {
                // After `Stopped` the daemon removes its socket and exits: when `down`
                // returns, nothing of the stack runs any more.
                wait_for_daemon_exit(&paths, daemon, Duration::from_secs(10));
                let _ = writeln!(
                    out,
                    "stopped {} service(s): {}",
                    services.len(),
                    services.join(", ")
                );
                return Ok(ExitCode::SUCCESS);
            }
            Ok(other) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "unexpected answer from the daemon: {other:?}; cleaning up from state.json"
                );
            }
            Err(error) => {
                let _ = writeln!(std::io::stderr(), "{error}; cleaning up from state.json");
            }
        }
    }

    // No daemon answers: clean up after it from state.json.
    let recorded = state::read(&paths.state_file());
    if let Some(daemon) = &recorded.daemon {
        if process::is_same_process(daemon.pid, daemon.start_time) {
            // A daemon that does not answer must not restart what we are about to stop.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(daemon.pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    let stopped = super::runtime()?.block_on(state::stop_leftovers(&recorded, args.timeout));
    for file in [
        paths.control_socket(),
        paths.daemon_pid(),
        paths.state_file(),
    ] {
        let _ = std::fs::remove_file(file);
    }
    let _ = std::fs::remove_dir_all(paths.root().join("pipes"));
    if stopped.is_empty() {
        let _ = writeln!(out, "nothing is running");
    } else {
        let _ = writeln!(
            out,
            "the daemon was gone; stopped {} leftover instance(s): {}",
            stopped.len(),
            stopped.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
