//! `services.toml`: the resolved manifest types every other module reads, plus loading
//! (parse → defaults → validation). Errors name file:line:col, the key and the fix.
//!
//! # Layout
//!
//! - `load`: finding the file, TOML syntax, one serde pass per section (`raw` structs).
//! - `resolve`, `service`, `policy`, `gateway`: defaults and per-value checks → [`Manifest`].
//! - `checks`: rules across values (dependencies, cycles, routes, port clashes);
//!   `diagnostics`: byte offsets → line:col and the error collector.
//! - `graph`: [`Manifest::start_order`]; `ports`: [`Manifest::check_ports`] at start time.
//! - [`view`]: the resolved manifest as `servio config` prints it (environment redacted).

mod checks;
mod diagnostics;
mod gateway;
mod graph;
mod load;
mod policy;
mod ports;
mod raw;
mod resolve;
mod service;
pub mod view;

pub use load::FILE_NAME;
pub use resolve::{DEFAULT_ADMIN_PORT, DEFAULT_GATEWAY_PORT, format_size, parse_size};
pub use service::is_valid_name;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

/// A manifest after parsing, defaults and validation: everything here is usable as is.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Absolute path of the manifest file.
    pub path: PathBuf,
    /// The folder holding it: relative `cwd`s resolve here and `.servio/` lives here.
    pub root: PathBuf,
    pub project: String,
    pub gateway: Gateway,
    pub admin: Admin,
    pub logs: LogPolicy,
    /// Keyed by service name.
    pub services: BTreeMap<String, Service>,
    /// Where port values are written, for errors found after loading (`check_ports`).
    pub(crate) positions: ports::Positions,
}

/// `[gateway]`: the reverse proxy in front of the services. Defaults in `gateway.rs`.
#[derive(Debug, Clone, PartialEq)]
pub struct Gateway {
    /// 0 picks a free port.
    pub port: u16,
    pub routes: Vec<Route>,
    /// Opening a connection to an instance (default 2 s).
    pub connect_timeout: Duration,
    /// One try on one instance, until its response headers (default: `request_timeout`).
    pub per_try_timeout: Duration,
    /// The whole request, retries included, until response headers (default 15 s).
    pub request_timeout: Duration,
    /// A client must send a request's headers within this (default 10 s; slowloris).
    pub header_read_timeout: Duration,
    /// A connection with no bytes moving either way is closed after this (default 60 s).
    pub idle_timeout: Duration,
    /// Largest request body in bytes; larger ones get 413 (default 10 MiB).
    pub max_body: u64,
    /// Client connections served at once; further ones wait to be accepted (default 4096).
    pub max_connections: u32,
    /// Requests in flight to one service; past it, an immediate 503 (default 1024).
    pub max_concurrent: u32,
    /// Extra tries on another instance, when safe (default 1).
    pub retries: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub prefix: String,
    pub service: String,
    pub strip_prefix: Option<String>,
    /// How the route's service is balanced. Routes to one service agree (checked).
    pub balance: Balance,
}

/// How the gateway chooses among a service's healthy instances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Balance {
    /// Power of two choices over requests in flight (Envoy's least-request).
    #[default]
    LeastRequest,
    RoundRobin,
}

impl Balance {
    pub fn as_str(self) -> &'static str {
        match self {
            Balance::LeastRequest => "least_request",
            Balance::RoundRobin => "round_robin",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Admin {
    /// Always bound on 127.0.0.1; 0 picks a free port.
    pub port: u16,
}

/// Size-based rotation of `.servio/logs/<service>.log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPolicy {
    /// Rotate when the file would grow past this many bytes.
    pub max_size: u64,
    /// Rotated files kept beside the live one (`.1` newest).
    pub max_files: u32,
}

impl Default for LogPolicy {
    fn default() -> Self {
        LogPolicy {
            max_size: 10 * 1024 * 1024,
            max_files: 3,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub version: String,
    pub launch: Launch,
    /// Port of the first replica; further replicas take free ports servio picks. `None`: servio
    /// picks free ports.
    pub port: Option<u16>,
    pub replicas: u32,
    /// Extra environment. Secret: never printed, logged or served.
    pub env: BTreeMap<String, String>,
    /// Working directory, absolute (relative ones resolve against the manifest's folder).
    pub cwd: PathBuf,
    pub depends_on: Vec<String>,
    /// Globs (relative to `cwd`) whose changes restart the service (rolling); empty: none.
    pub watch: Vec<String>,
    pub health_check: HealthCheck,
    pub restart: RestartPolicy,
    pub stop: StopPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// argv to spawn; a leading "servio" is already replaced by the running binary's path.
    /// `run = "..."` becomes `["/bin/sh", "-c", "..."]`.
    Command(Vec<String>),
    /// Runs elsewhere: servio probes and publishes these addresses but spawns nothing.
    External(Vec<SocketAddr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    Http,
    Tcp,
}

#[derive(Debug, Clone)]
pub struct HealthCheck {
    pub kind: ProbeKind,
    /// Path of the HTTP probe (ignored by tcp).
    pub path: String,
    /// Between probes once the instance has been healthy.
    pub interval: Duration,
    /// One probe's deadline.
    pub timeout: Duration,
    /// Grace after spawn: probes run every 100 ms and failures do not count.
    pub start_period: Duration,
    /// Consecutive failures → unhealthy (out of the healthy view: readiness).
    pub unhealthy_threshold: u32,
    /// Consecutive failures → the instance is restarted (liveness). 0 disables.
    pub liveness_threshold: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartMode {
    Always,
    OnFailure,
    Never,
}

#[derive(Debug, Clone)]
pub struct RestartPolicy {
    pub mode: RestartMode,
    /// Give up after this many restarts within `within`.
    pub max_restarts: u32,
    pub within: Duration,
    /// First backoff; doubles per consecutive failure up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

#[derive(Debug, Clone)]
pub struct StopPolicy {
    pub signal: Signal,
    /// After this, SIGKILL to the process group.
    pub timeout: Duration,
}

/// Every problem found in a manifest; displayed one per line, `file:line:col: ...`.
#[derive(Debug, Clone, Default)]
pub struct ManifestErrors(pub Vec<ManifestError>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub file: PathBuf,
    /// 1-based; 0 when the error has no position (the file is missing).
    pub line: usize,
    pub column: usize,
    /// Dotted key, like `services.order-service.depends_on`.
    pub key: String,
    pub message: String,
    /// What to write instead.
    pub fix: String,
}

impl std::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        } else {
            write!(f, "{}: ", self.file.display())?;
        }
        if self.key.is_empty() {
            write!(f, "{}", self.message)?;
        } else {
            write!(f, "`{}`: {}", self.key, self.message)?;
        }
        if !self.fix.is_empty() {
            write!(f, "\n  fix: {}", self.fix)?;
        }
        Ok(())
    }
}

impl std::fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestErrors {}

/// The manifest to use: `explicit` when given (a folder means its services.toml), else
/// `services.toml` in the current folder or the nearest parent. Always an absolute path.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ManifestErrors> {
    load::locate(explicit)
}

/// Reads, parses and validates the manifest at `path`, collecting every error.
pub fn load(path: &Path) -> Result<Manifest, ManifestErrors> {
    load::load(path)
}

#[cfg(test)]
mod tests;
