//! The resolved manifest as `servio config` shows it: every default filled in, durations and
//! sizes written the way the manifest accepts them, and environment values replaced by
//! `<redacted>` (environments hold secrets and are never printed).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Gateway, Launch, Manifest, ProbeKind, RestartMode, Service, format_size};

/// What an environment value prints as.
pub const REDACTED: &str = "<redacted>";

/// Shaped like `services.toml` itself, so the output reads (and loads) as a manifest.
#[derive(Debug, Serialize)]
pub struct ResolvedView {
    pub project: ProjectView,
    pub gateway: GatewayView,
    pub admin: AdminView,
    pub logs: LogsView,
    pub services: BTreeMap<String, ServiceView>,
}

#[derive(Debug, Serialize)]
pub struct ProjectView {
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct GatewayView {
    pub port: u16,
    pub connect_timeout: String,
    pub per_try_timeout: String,
    pub request_timeout: String,
    pub header_read_timeout: String,
    pub idle_timeout: String,
    pub max_body: String,
    pub max_connections: u32,
    pub max_concurrent: u32,
    pub retries: u32,
    pub routes: Vec<RouteView>,
}

#[derive(Debug, Serialize)]
pub struct RouteView {
    pub prefix: String,
    pub service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strip_prefix: Option<String>,
    pub balance: &'static str,
}

#[derive(Debug, Serialize)]
pub struct AdminView {
    pub port: u16,
}

#[derive(Debug, Serialize)]
pub struct LogsView {
    pub max_size: String,
    pub max_files: u32,
}

#[derive(Debug, Serialize)]
pub struct ServiceView {
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<Vec<String>>,
    /// Absent: servio picks free ports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub replicas: u32,
    pub cwd: String,
    pub depends_on: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<String>,
    /// Names only; every value is `<redacted>`.
    pub env: BTreeMap<String, String>,
    pub health_check: HealthView,
    pub restart: RestartView,
    pub stop: StopView,
}

#[derive(Debug, Serialize)]
pub struct HealthView {
    pub kind: &'static str,
    pub path: String,
    pub interval: String,
    pub timeout: String,
    pub start_period: String,
    pub unhealthy_threshold: u32,
    pub liveness_threshold: u32,
}

#[derive(Debug, Serialize)]
pub struct RestartView {
    pub policy: &'static str,
    pub max_restarts: u32,
    pub within: String,
    pub backoff: String,
    pub max_backoff: String,
}

#[derive(Debug, Serialize)]
pub struct StopView {
    pub signal: &'static str,
    pub timeout: String,
}

impl ResolvedView {
    pub fn new(manifest: &Manifest) -> Self {
        ResolvedView {
            project: ProjectView {
                name: manifest.project.clone(),
            },
            gateway: gateway_view(&manifest.gateway),
            admin: AdminView {
                port: manifest.admin.port,
            },
            logs: LogsView {
                max_size: format_size(manifest.logs.max_size),
                max_files: manifest.logs.max_files,
            },
            services: (manifest.services.iter())
                .map(|(name, service)| (name.clone(), service_view(service)))
                .collect(),
        }
    }
}

fn gateway_view(gateway: &Gateway) -> GatewayView {
    GatewayView {
        port: gateway.port,
        connect_timeout: duration(gateway.connect_timeout),
        per_try_timeout: duration(gateway.per_try_timeout),
        request_timeout: duration(gateway.request_timeout),
        header_read_timeout: duration(gateway.header_read_timeout),
        idle_timeout: duration(gateway.idle_timeout),
        max_body: format_size(gateway.max_body),
        max_connections: gateway.max_connections,
        max_concurrent: gateway.max_concurrent,
        retries: gateway.retries,
        routes: (gateway.routes.iter())
            .map(|r| RouteView {
                prefix: r.prefix.clone(),
                service: r.service.clone(),
                strip_prefix: r.strip_prefix.clone(),
                balance: r.balance.as_str(),
            })
            .collect(),
    }
}

fn service_view(service: &Service) -> ServiceView {
    let (command, instances) = match &service.launch {
        Launch::Command(argv) => (Some(argv.clone()), None),
        Launch::External(addresses) => (
            None,
            Some(addresses.iter().map(|a| a.to_string()).collect()),
        ),
    };
    let health = &service.health_check;
    let restart = &service.restart;
    ServiceView {
        version: service.version.clone(),
        command,
        instances,
        port: service.port,
        replicas: service.replicas,
        cwd: service.cwd.display().to_string(),
        depends_on: service.depends_on.clone(),
        watch: service.watch.clone(),
        env: (service.env.keys())
            .map(|key| (key.clone(), REDACTED.to_string()))
            .collect(),
        health_check: HealthView {
            kind: match health.kind {
                ProbeKind::Http => "http",
                ProbeKind::Tcp => "tcp",
            },
            path: health.path.clone(),
            interval: duration(health.interval),
            timeout: duration(health.timeout),
            start_period: duration(health.start_period),
            unhealthy_threshold: health.unhealthy_threshold,
            liveness_threshold: health.liveness_threshold,
        },
        restart: RestartView {
            policy: match restart.mode {
                RestartMode::Always => "always",
                RestartMode::OnFailure => "on-failure",
                RestartMode::Never => "never",
            },
            max_restarts: restart.max_restarts,
            within: duration(restart.within),
            backoff: duration(restart.backoff),
            max_backoff: duration(restart.max_backoff),
        },
        stop: StopView {
            signal: service.stop.signal.as_str(),
            timeout: duration(service.stop.timeout),
        },
    }
}

fn duration(value: std::time::Duration) -> String {
    if value.is_zero() {
        "0s".to_string()
    } else {
        humantime::format_duration(value).to_string()
    }
}
