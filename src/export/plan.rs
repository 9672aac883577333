//! The resolved manifest → what both exports render: per service its container (image,
//! argv, port, environment, probes in whole seconds, the dependencies to wait for, the stop
//! grace), external services with their addresses, and the gateway's routes. Pure: every
//! rule that turns a servio setting into an orchestrator setting is decided here, once.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::ExportError;
use super::names;
use crate::client::endpoints;
use crate::manifest::{Launch, Manifest, ProbeKind, RestartMode, Service};
use crate::services::settings::BIND_ENV;

/// Where the image keeps the servio binary; a leading `servio` in a command runs it.
pub const IMAGE_BINARY: &str = "/usr/local/bin/servio";
/// The image's working folder (the user owns it): each service's `.servio/data` goes here.
pub const IMAGE_WORKDIR: &str = "/var/lib/servio";
/// The non-root user and group the image runs as (distroless's `nonroot`).
pub const IMAGE_UID: u32 = 65532;
/// A service without a `port` key listens here: each container has its own network.
pub const DEFAULT_PORT: u16 = 8080;
/// The least an init container waits for a dependency (as `servio up` waits by default).
const MIN_DEPENDENCY_WAIT: Duration = Duration::from_secs(60);

/// What the user chose on the command line.
#[derive(Debug, Clone)]
pub struct Options {
    pub image: String,
    pub namespace: Option<String>,
    pub gateway_api: bool,
    pub secret_values: bool,
}

/// The whole stack, ready for a template.
#[derive(Debug, Clone, Serialize)]
pub struct Stack {
    /// The project's name as a DNS label (labels, the Ingress, the gateway).
    pub project: String,
    pub namespace: Option<String>,
    pub image: String,
    pub workloads: Vec<Workload>,
    pub externals: Vec<External>,
    pub gateway: Option<GatewayPlan>,
    /// Things the target cannot express, for stderr.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// A service servio starts: a Deployment or a compose service.
#[derive(Debug, Clone, Serialize)]
pub struct Workload {
    pub name: String,
    pub version: String,
    /// `app.kubernetes.io/version`, when the version is a valid label value.
    pub version_label: Option<String>,
    pub replicas: u32,
    /// argv; a leading `servio` is [`IMAGE_BINARY`].
    pub command: Vec<String>,
    /// Whether the command runs the image's servio (else the image must hold the program).
    pub runs_servio: bool,
    pub port: u16,
    /// `http` or `tcp`, after the health check's kind.
    pub port_name: &'static str,
    /// What servio itself gives each instance, plus where its dependencies are.
    pub env: Vec<EnvVar>,
    /// The manifest's `env` (secret): Secret data, or compose `environment`.
    pub secret_env: Vec<EnvVar>,
    /// The Secret holding `secret_env`, when there is any.
    pub secret_name: Option<String>,
    pub probe: Probe,
    /// One per `depends_on`, in order.
    pub waits: Vec<Wait>,
    /// The stop timeout, rounded up to seconds.
    pub grace_seconds: u64,
    /// Like "SIGTERM".
    pub stop_signal: &'static str,
    /// "always", "on-failure" or "never".
    pub restart_policy: &'static str,
    pub max_restarts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

/// The health check in the units orchestrators take: whole seconds, at least 1.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub http: bool,
    pub path: String,
    pub period: u64,
    pub timeout: u64,
    /// `unhealthy_threshold`: failures that take the instance out of rotation.
    pub failure_threshold: u32,
    /// `liveness_threshold`: failures that restart it; 0 never.
    pub liveness_threshold: u32,
    /// `start_period`, rounded up to seconds.
    pub start_period: u64,
    /// Probes at one per second before the startup probe gives up: the start period, then
    /// the liveness budget servio grants after it (`liveness_threshold` × period).
    pub startup_failure_threshold: u64,
    /// The same check against the container itself, for `servio probe`.
    pub local_url: String,
}

/// A dependency an init container (or compose's `depends_on`) waits for.
#[derive(Debug, Clone, Serialize)]
pub struct Wait {
    pub service: String,
    /// The init container's name: `wait-for-<service>`, within 63 characters.
    pub container: String,
    /// The dependency's health check through its DNS name.
    pub url: String,
    /// Like "60s".
    pub timeout: String,
    /// Whether compose can wait for it (external services have no compose service).
    pub managed: bool,
}

/// A service with `instances`: a selector-less Service plus EndpointSlices.
#[derive(Debug, Clone, Serialize)]
pub struct External {
    pub name: String,
    /// The Service's port: the first instance's.
    pub port: u16,
    pub port_name: &'static str,
    /// One EndpointSlice per address family and port.
    pub slices: Vec<Slice>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Slice {
    /// "IPv4" or "IPv6".
    pub address_type: &'static str,
    pub port: u16,
    pub addresses: Vec<String>,
    /// The object's name: `<service>-<n>`.
    pub name: String,
}

/// The gateway: Ingress or HTTPRoute rules, or its own compose service.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayPlan {
    pub port: u16,
    pub routes: Vec<super::routes::RoutePlan>,
    /// Whether any route strips a prefix (the Ingress then uses regex paths).
    pub rewrites: bool,
    /// The gateway's `SERVIO_ENDPOINTS_*` for every routed service.
    pub env: Vec<EnvVar>,
}

/// Builds the stack, or says which part of the manifest the target cannot take.
pub fn plan(
    manifest: &Manifest,
    options: &Options,
    servio_exe: Option<&Path>,
) -> Result<Stack, ExportError> {
    let mut warnings = Vec::new();
    for service in manifest.services.values() {
        names::check_service_name(&service.name)?;
        for key in service.env.keys() {
            names::check_env_name(&service.name, key)?;
        }
    }
    let mut workloads = Vec::new();
    let mut externals = Vec::new();
    for service in manifest.services.values() {
        match &service.launch {
            Launch::Command(argv) => {
                workloads.push(workload(manifest, service, argv, servio_exe, options));
                let workload = workloads.last().expect("just pushed");
                if !workload.runs_servio {
                    warnings.push(format!(
                        "{}: its command is not `servio`: the image must hold `{}` (build one \
from the servio image, or change its `image`)",
                        service.name,
                        workload.command.first().map_or("", String::as_str)
                    ));
                }
            }
            Launch::External(addresses) => {
                if addresses.iter().any(|a| a.ip().is_loopback()) {
                    warnings.push(format!(
                        "{}: a loopback address in `instances` means the pod or container \
itself elsewhere: list addresses reachable from the cluster",
                        service.name
                    ));
                }
                externals.push(external(service, addresses));
            }
        }
    }
    let gateway = manifest.gateway_enabled().then(|| gateway(manifest));
    Ok(Stack {
        project: names::dns_label(&manifest.project),
        namespace: options.namespace.clone(),
        image: options.image.clone(),
        workloads,
        externals,
        gateway,
        warnings,
    })
}

/// Whole seconds, rounded up, at least `min`.
pub fn seconds(duration: Duration, min: u64) -> u64 {
    let whole = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    whole.max(min)
}

/// The port a service listens on in its container (and its Service's port).
pub fn container_port(service: &Service) -> u16 {
    match &service.launch {
        Launch::External(addresses) => addresses.first().map_or(DEFAULT_PORT, |a| a.port()),
        Launch::Command(_) => service.port.unwrap_or(DEFAULT_PORT),
    }
}

/// The `host:port` other services use for `service`: its DNS name and port.
pub fn dns_endpoint(service: &Service) -> String {
    format!("{}:{}", service.name, container_port(service))
}

fn port_name(service: &Service) -> &'static str {
    match service.health_check.kind {
        ProbeKind::Http => "http",
        ProbeKind::Tcp => "tcp",
    }
}

/// The health check URL of `service` at `host`.
fn health_url(service: &Service, host: &str) -> String {
    let port = container_port(service);
    match service.health_check.kind {
        ProbeKind::Http => format!("http://{host}:{port}{}", service.health_check.path),
        ProbeKind::Tcp => format!("tcp://{host}:{port}"),
    }
}

fn workload(
    manifest: &Manifest,
    service: &Service,
    argv: &[String],
    servio_exe: Option<&Path>,
    options: &Options,
) -> Workload {
    let (command, runs_servio) = image_command(argv, servio_exe);
    let port = container_port(service);
    let mut env = vec![
        var("PORT", port.to_string()),
        var(BIND_ENV, "0.0.0.0".to_string()),
        var("SERVIO_SERVICE", service.name.clone()),
        var("SERVIO_VERSION", service.version.clone()),
    ];
    for dependency in &service.depends_on {
        if let Some(other) = manifest.services.get(dependency) {
            env.push(var(&endpoints::env_var(dependency), dns_endpoint(other)));
        }
    }
    let secret_env: Vec<EnvVar> = service
        .env
        .iter()
        .map(|(name, value)| {
            let value = if options.secret_values {
                value.clone()
            } else {
                String::new()
            };
            var(name, value)
        })
        .collect();
    let check = &service.health_check;
    let period = seconds(check.interval, 1);
    let start_period = seconds(check.start_period, 1);
    let liveness_budget = u64::from(check.liveness_threshold) * period;
    let waits = service
        .depends_on
        .iter()
        .filter_map(|name| manifest.services.get(name))
        .enumerate()
        .map(|(index, dependency)| Wait {
            service: dependency.name.clone(),
            container: names::init_container(&dependency.name, index),
            url: health_url(dependency, &dependency.name),
            timeout: format!(
                "{}s",
                seconds(
                    dependency
                        .health_check
                        .start_period
                        .max(MIN_DEPENDENCY_WAIT),
                    1
                )
            ),
            managed: matches!(dependency.launch, Launch::Command(_)),
        })
        .collect();
    Workload {
        name: service.name.clone(),
        version: service.version.clone(),
        version_label: names::label_value(&service.version),
        replicas: service.replicas,
        command,
        runs_servio,
        port,
        port_name: port_name(service),
        env,
        secret_name: (!secret_env.is_empty()).then(|| format!("{}-env", service.name)),
        secret_env,
        probe: Probe {
            http: check.kind == ProbeKind::Http,
            path: check.path.clone(),
            period,
            timeout: seconds(check.timeout, 1),
            failure_threshold: check.unhealthy_threshold.max(1),
            liveness_threshold: check.liveness_threshold,
            start_period,
            startup_failure_threshold: start_period + liveness_budget,
            local_url: health_url(service, "127.0.0.1"),
        },
        waits,
        grace_seconds: seconds(service.stop.timeout, 0),
        stop_signal: service.stop.signal.as_str(),
        restart_policy: match service.restart.mode {
            RestartMode::Always => "always",
            RestartMode::OnFailure => "on-failure",
            RestartMode::Never => "never",
        },
        max_restarts: service.restart.max_restarts,
    }
}

/// The argv in the image: the manifest resolved a leading `servio` to this binary's path;
/// in the image it is [`IMAGE_BINARY`].
pub fn image_command(argv: &[String], servio_exe: Option<&Path>) -> (Vec<String>, bool) {
    let Some(first) = argv.first() else {
        return (Vec::new(), false);
    };
    let is_servio = first == "servio" || servio_exe.is_some_and(|exe| Path::new(first) == exe);
    let mut command = argv.to_vec();
    if is_servio {
        command[0] = IMAGE_BINARY.to_string();
    }
    (command, is_servio)
}

fn external(service: &Service, addresses: &[SocketAddr]) -> External {
    let mut slices: Vec<Slice> = Vec::new();
    for address in addresses {
        let address_type = if address.is_ipv4() { "IPv4" } else { "IPv6" };
        let ip = address.ip().to_string();
        match slices
            .iter_mut()
            .find(|s| s.address_type == address_type && s.port == address.port())
        {
            Some(slice) if !slice.addresses.contains(&ip) => slice.addresses.push(ip),
            Some(_) => {}
            None => slices.push(Slice {
                address_type,
                port: address.port(),
                addresses: vec![ip],
                name: String::new(),
            }),
        }
    }
    for (i, slice) in slices.iter_mut().enumerate() {
        slice.name = format!("{}-{}", service.name, i + 1);
    }
    External {
        name: service.name.clone(),
        port: container_port(service),
        port_name: port_name(service),
        slices,
    }
}

fn gateway(manifest: &Manifest) -> GatewayPlan {
    let mut routes = Vec::new();
    let mut env: Vec<EnvVar> = Vec::new();
    for route in &manifest.gateway.routes {
        let Some(service) = manifest.services.get(&route.service) else {
            continue;
        };
        routes.push(super::routes::plan(
            route,
            container_port(service),
            port_name(service),
        ));
        let name = endpoints::env_var(&service.name);
        if !env.iter().any(|v| v.name == name) {
            env.push(var(&name, dns_endpoint(service)));
        }
    }
    GatewayPlan {
        port: if manifest.gateway.port == 0 {
            crate::manifest::DEFAULT_GATEWAY_PORT
        } else {
            manifest.gateway.port
        },
        rewrites: routes.iter().any(|r| r.strip_prefix.is_some()),
        routes,
        env,
    }
}

fn var(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_up_to_whole_seconds() {
        let table = [
            (Duration::ZERO, 0, 0),
            (Duration::ZERO, 1, 1),
            (Duration::from_millis(1), 0, 1),
            (Duration::from_millis(500), 1, 1),
            (Duration::from_secs(2), 1, 2),
            (Duration::from_millis(2001), 1, 3),
            (Duration::from_secs(30), 1, 30),
        ];
        for (duration, min, want) in table {
            assert_eq!(seconds(duration, min), want, "{duration:?} min {min}");
        }
    }

    #[test]
    fn a_leading_servio_becomes_the_image_binary() {
        let exe = Path::new("/home/me/target/release/servio");
        let argv = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let table = [
            (
                argv(&["/home/me/target/release/servio", "serve", "menu"]),
                true,
            ),
            (argv(&["servio", "serve", "order"]), true),
            (argv(&["python3", "app.py"]), false),
            (argv(&["/bin/sh", "-c", "servio serve menu"]), false),
        ];
        for (input, servio) in table {
            let (command, runs_servio) = image_command(&input, Some(exe));
            assert_eq!(runs_servio, servio, "{input:?}");
            assert_eq!(command[1..], input[1..]);
            if servio {
                assert_eq!(command[0], IMAGE_BINARY);
            } else {
                assert_eq!(command[0], input[0]);
            }
        }
        assert_eq!(image_command(&[], Some(exe)), (Vec::new(), false));
    }
}
