//! The typed protocol between the CLI and the daemon, and the instance records both the
//! control socket and the admin API serve. One module, every caller.
//!
//! Transport: one JSON [`Request`] per line on `.servio/control.sock`, answered by one JSON
//! [`Response`] line.

use serde::{Deserialize, Serialize};

/// Bumped whenever a request or response changes shape; the daemon refuses other versions.
pub const PROTOCOL_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub protocol: u32,
    pub request: Request,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Re-read the manifest and start these services (all when empty) plus their dependencies.
    Up { services: Vec<String> },
    /// The stack as it is now.
    Status,
    /// Blocks until the stack's state index passes `after` or `wait_ms` elapses, then answers
    /// like [`Request::Status`].
    Watch { after: u64, wait_ms: u64 },
    /// Stop every service in reverse dependency order, then the daemon exits.
    Down { timeout_ms: Option<u64> },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// The services `Up` will bring up, in start order.
    Starting {
        services: Vec<String>,
    },
    Status(StackStatus),
    /// Every service is stopped; the daemon exits after this answer.
    Stopped {
        services: Vec<String>,
    },
    Error {
        message: String,
        /// The request was wrong (unknown service, manifest error): the CLI exits 2.
        #[serde(default)]
        usage: bool,
    },
}

/// Everything `servio status` shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StackStatus {
    /// Grows whenever anything in the stack changes (used by watches).
    pub index: u64,
    pub project: String,
    pub daemon_pid: u32,
    /// `http://127.0.0.1:PORT` of the admin API.
    pub admin_url: String,
    /// `http://127.0.0.1:PORT` of the gateway, when it runs.
    pub gateway_url: Option<String>,
    pub services: Vec<ServiceStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    pub version: String,
    pub instances: Vec<Instance>,
}

/// One instance of a service, as the registry publishes it. Never carries the environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    pub service: String,
    pub version: String,
    pub address: String,
    pub port: u16,
    pub health: Health,
    /// The process id while servio's process runs it; `None` for external instances.
    pub pid: Option<u32>,
    /// When the instance entered its current run (RFC 3339).
    pub since: String,
    pub restarts: u32,
    /// Milliseconds since the current process started; `None` when it is not running.
    pub uptime_ms: Option<u64>,
    /// How the last process ended, like "exited with code 1" or "killed by SIGKILL".
    pub last_exit: Option<String>,
    /// False for instances servio did not start (manifest `instances` or registered by API).
    pub managed: bool,
    /// The gateway's breaker for this instance when it is not closed: "open 12s" (ejected for
    /// 12 more seconds) or "half-open" (the next request probes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<String>,
}

/// Where an instance is in its life. Only `Healthy` instances receive traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    /// Not started yet: its dependencies are not healthy.
    Waiting,
    /// Spawned (or registered), no successful probe yet.
    Starting,
    Healthy,
    /// Failed its readiness threshold; out of the healthy view until a probe passes.
    Unhealthy,
    /// Exited unexpectedly and waiting for its backoff before the next restart.
    Restarting,
    /// Keeps dying: exited repeatedly without staying up; restarts continue with backoff.
    CrashLooping,
    /// Gave up: exceeded max_restarts within the window, or its port is taken.
    Failed,
    /// Ended and its restart policy does not restart it.
    Exited,
    Stopping,
    Stopped,
}

impl Health {
    /// True while a process (or external endpoint) is expected to be serving.
    pub fn is_live(self) -> bool {
        matches!(self, Health::Starting | Health::Healthy | Health::Unhealthy)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Health::Waiting => "waiting",
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
            Health::Restarting => "restarting",
            Health::CrashLooping => "crash-looping",
            Health::Failed => "failed",
            Health::Exited => "exited",
            Health::Stopping => "stopping",
            Health::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the admin API answers for `GET /v1/services/{name}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceView {
    /// The registry index this view was read at; pass it back as `?index=` to watch.
    pub index: u64,
    pub name: String,
    pub version: String,
    pub instances: Vec<Instance>,
}

/// Body of `POST /v1/services/{name}/instances`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterInstance {
    /// Defaults to 127.0.0.1.
    pub address: Option<String>,
    pub port: u16,
    /// Defaults to `<service>-ext-<port>`.
    pub id: Option<String>,
    pub version: Option<String>,
}
