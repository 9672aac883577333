//! The typed protocol between the CLI and the daemon, and the instance records both the
//! control socket and the admin API serve. One module, every caller.
//!
//! Transport: one JSON [`Request`] per line on `.servio/control.sock`, answered by one JSON
//! [`Response`] line.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Bumped whenever a request or response changes shape; the daemon refuses other versions.
pub const PROTOCOL_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub protocol: u32,
    pub request: Request,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Plan `intent` against what runs and carry the plan out; the daemon answers
    /// [`Response::Plan`] at once, then [`Response::Applied`] when it is done. With `dry_run`
    /// the plan is the only answer and nothing changes.
    Apply {
        intent: Intent,
        dry_run: bool,
        /// How long new instances get to become healthy.
        timeout_ms: u64,
    },
    /// The stack as it is now.
    Status,
    /// Blocks until the stack's state index passes `after` or `wait_ms` elapses, then answers
    /// like [`Request::Status`].
    Watch { after: u64, wait_ms: u64 },
    /// Stop every service in reverse dependency order, then the daemon exits.
    Down { timeout_ms: Option<u64> },
}

/// What a lifecycle verb asks for; the daemon's planner turns it into a [`Plan`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verb", rename_all = "snake_case")]
pub enum Intent {
    /// Re-read the manifest and make the stack match it (these services and their
    /// dependencies, or everything, also stopping services the manifest no longer has).
    Up {
        services: Vec<String>,
        /// Also watch the services without `watch` globs (`up --watch`).
        #[serde(default)]
        watch: bool,
    },
    /// Start these services (all when empty) and their dependencies where they do not run.
    Start { services: Vec<String> },
    /// Rolling restart of these services (all when empty).
    Restart { services: Vec<String> },
    /// Stop these services (all when empty); refused while running services depend on them,
    /// unless `with_dependents`.
    Stop {
        services: Vec<String>,
        with_dependents: bool,
        timeout_ms: Option<u64>,
    },
    /// Run this many instances of each service.
    Scale { counts: BTreeMap<String, u32> },
}

/// What the executor does to one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Runs as the manifest says: left alone (same processes).
    Keep,
    /// Not running: start `replicas` instances.
    Start { replicas: u32 },
    /// Stop every instance.
    Stop,
    /// Replace every instance, one at a time, health-gated; `reasons` say why.
    Restart { reasons: Vec<String>, replicas: u32 },
    /// Add (health-gated) or remove (newest first, drained) instances.
    Scale { from: u32, to: u32 },
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Keep => f.write_str("keep"),
            Action::Start { replicas: 1 } => f.write_str("start"),
            Action::Start { replicas } => write!(f, "start ({replicas} instances)"),
            Action::Stop => f.write_str("stop"),
            Action::Restart { reasons, .. } => write!(f, "restart ({})", reasons.join(", ")),
            Action::Scale { from, to } => write!(f, "scale {from} → {to}"),
        }
    }
}

/// One service's part of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub service: String,
    #[serde(flatten)]
    pub action: Action,
}

/// An instance a daemon took over from its crashed predecessor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdoptedInstance {
    pub id: String,
    pub pid: u32,
    pub port: u16,
}

/// How one step went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepResult {
    pub service: String,
    #[serde(flatten)]
    pub action: Action,
    /// `None` when it succeeded; otherwise why it failed.
    pub error: Option<String>,
    pub took_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// The plan for an `Apply`, in execution order, and the instances the daemon adopted
    /// from a crashed predecessor since it started (reported once).
    Plan {
        steps: Vec<Step>,
        #[serde(default)]
        adopted: Vec<AdoptedInstance>,
    },
    /// The plan has been carried out (each step with its outcome).
    Applied {
        steps: Vec<StepResult>,
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
    /// The gateway's routes with their counters (empty without a gateway).
    #[serde(default)]
    pub routes: Vec<RouteStatus>,
    /// The gateway's own counters, when it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayFigures>,
}

/// The gateway's own counters, ever (rates are their differences).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayFigures {
    /// Client connections open now.
    pub connections_open: u64,
    /// Client connections accepted.
    pub connections_total: u64,
    /// Retries the balancers granted, over every service.
    pub retries: u64,
    /// Answers by status, over every route (including requests no route took).
    pub bad_gateway: u64,
    pub unavailable: u64,
    pub gateway_timeout: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    pub version: String,
    /// A change under its watched paths restarts it (watch mode).
    #[serde(default)]
    pub watching: bool,
    /// The services it was started depending on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
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
    /// CPU time (user + system) its process has used, in ms; read at each status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<u64>,
    /// Its process's resident memory, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
}

#[cfg(test)]
impl Instance {
    /// An instance of service "web" for tests: managed, on 127.0.0.1:1, nothing else known.
    pub fn for_test(id: &str, health: Health) -> Instance {
        Instance {
            id: id.to_owned(),
            service: "web".to_owned(),
            version: "1".to_owned(),
            address: "127.0.0.1".to_owned(),
            port: 1,
            health,
            pid: None,
            since: String::new(),
            restarts: 0,
            uptime_ms: None,
            last_exit: None,
            managed: true,
            breaker: None,
            cpu_ms: None,
            rss_bytes: None,
        }
    }
}

/// One gateway route's counters, for `status --watch` (rates are their differences).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStatus {
    pub prefix: String,
    pub service: String,
    /// Requests answered, ever.
    pub requests: u64,
    /// Of those, answered 5xx.
    pub errors: u64,
    /// Requests by time to the response headers, one count per bucket of
    /// `gateway::metrics::BUCKETS` and a last one for slower (not cumulative).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency_buckets: Vec<u64>,
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
