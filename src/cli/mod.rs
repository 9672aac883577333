//! The `servio` command line: clap definitions, then one file per subcommand.

mod apply;
mod completions;
mod config;
mod connection;
mod daemon_cmd;
mod dashboard;
mod down;
mod export;
mod init;
mod logs;
mod probe;
mod progress;
mod restart;
mod scale;
mod serve;
mod start;
mod status;
pub mod status_live;
mod stop;
mod up;
mod wait_for;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::error::{CliError, CliResult};
use crate::manifest::{self, Manifest};

/// servio: run, supervise and route to your microservices on one machine.
#[derive(Debug, Parser)]
#[command(
    name = "servio",
    version,
    about = "A local control plane for microservices",
    long_about = "servio reads services.toml, starts each service on its port in dependency order, \
health-checks every instance, restarts what crashes, keeps a registry of healthy instances and \
routes gateway traffic to them.\n\nStart with `servio init`, then `servio up`.",
    after_help = "Exit codes: 0 success, 1 runtime failure, 2 usage or manifest error."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a starter services.toml in the current folder (never overwrites)
    Init(init::InitArgs),
    /// Start the stack (or SERVICE... with their dependencies), applying services.toml edits, and wait until healthy
    Up(up::UpArgs),
    /// Show every service and instance: pid, port, health, restarts, uptime
    #[command(alias = "ps")]
    Status(status::StatusArgs),
    /// Print (and with --open, open) the live web dashboard's address
    Dashboard(dashboard::DashboardArgs),
    /// Show captured service output (works after `down` too)
    Logs(logs::LogsArgs),
    /// Rolling restart of SERVICE... (or all) with no failed gateway request
    Restart(restart::RestartArgs),
    /// Stop SERVICE... (or all), drained first; the daemon keeps running
    Stop(stop::StopArgs),
    /// Start SERVICE... (or all) that do not run, with their dependencies
    Start(start::StartArgs),
    /// Run N instances of a service: servio scale order-service=3
    Scale(scale::ScaleArgs),
    /// Stop every service in reverse dependency order, then the daemon
    Down(down::DownArgs),
    /// Validate services.toml and print it resolved, with defaults
    Config(config::ConfigArgs),
    /// Render the stack for Kubernetes or Docker Compose, and the image's Dockerfile
    Export(export::ExportArgs),
    /// Run a Servio platform service (menu, inventory or order) on $PORT
    Serve(serve::ServeArgs),
    /// Probe a URL once (http:// GET wants 2xx/3xx, tcp:// connects): for container health checks
    Probe(probe::ProbeArgs),
    /// Probe a URL until it is healthy or the timeout passes: for init containers and scripts
    WaitFor(wait_for::WaitForArgs),
    /// Print a shell completion script: servio completions bash|zsh|fish
    Completions(completions::CompletionsArgs),
    /// Run the control-plane daemon (started for you by `servio up`)
    #[command(hide = true)]
    Daemon(daemon_cmd::DaemonArgs),
}

/// `-f/--file`, shared by every subcommand that reads the manifest.
#[derive(Debug, Clone, Args)]
pub struct ManifestArg {
    /// Path to the manifest [default: services.toml in this folder or the nearest parent]
    #[arg(short = 'f', long = "file", value_name = "PATH", env = "SERVIO_FILE")]
    pub file: Option<PathBuf>,
}

impl ManifestArg {
    /// Locates and loads the manifest; errors exit 2.
    pub fn load(&self) -> CliResult<Manifest> {
        let path = manifest::locate(self.file.as_deref())?;
        Ok(manifest::load(&path)?)
    }

    /// The manifest and a connection to its running daemon (exit 1, saying what to do,
    /// when none runs).
    pub fn connect(&self) -> CliResult<(Manifest, connection::DaemonConnection)> {
        let manifest = self.load()?;
        let paths = crate::paths::StatePaths::for_project(&manifest.root);
        let connection = connection::require(&paths)?;
        Ok((manifest, connection))
    }
}

/// Parses "500ms", "2s", "1m" for duration flags.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| {
        format!("`{text}` is not a duration ({e}); write e.g. \"500ms\", \"30s\", \"2m\"")
    })
}

/// Entry point of the binary: parse, run, map the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            let prefix = crate::term::paint(crate::term::stderr_color(), "31;1", "error:");
            let text = error.to_string();
            // Manifest errors already carry their own "error:" prefixes.
            if text.starts_with("error: ") {
                eprintln!("{text}");
            } else {
                eprintln!("{prefix} {text}");
            }
            error.exit_code()
        }
    }
}

fn run(cli: Cli) -> CliResult<ExitCode> {
    match cli.command {
        Command::Init(args) => init::run(args),
        Command::Up(args) => up::run(args),
        Command::Status(args) => status::run(args),
        Command::Dashboard(args) => dashboard::run(args),
        Command::Logs(args) => logs::run(args),
        Command::Restart(args) => restart::run(args),
        Command::Stop(args) => stop::run(args),
        Command::Start(args) => start::run(args),
        Command::Scale(args) => scale::run(args),
        Command::Down(args) => down::run(args),
        Command::Config(args) => config::run(args),
        Command::Export(args) => export::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Probe(args) => probe::run(args),
        Command::WaitFor(args) => wait_for::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Daemon(args) => daemon_cmd::run(args),
    }
}

/// A multi-threaded tokio runtime for commands that need one.
pub fn runtime() -> CliResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))
}
