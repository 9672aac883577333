//! Static endpoints: where a service runs when no servio registry is there to ask (Kubernetes,
//! Compose). `SERVIO_ENDPOINTS_MENU_SERVICE=menu-service:3002[,host:port...]` names the
//! instances of `menu-service`; the names are resolved through DNS at every refresh, so a
//! Kubernetes Service's address or Compose's per-replica records are followed as they change.
//!
//! The variable's name comes from [`env_var`], which `servio export` also uses: what the
//! export writes is exactly what the client reads.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::discovery::{Cached, Resolved, retry_delay};
use crate::balance::ServiceBalancer;
use crate::protocol::{Health, Instance};

/// The prefix of every static-endpoints variable.
pub const ENV_PREFIX: &str = "SERVIO_ENDPOINTS_";

/// One `host:port` of a static endpoints list; the host is a DNS name or an IP address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `SERVIO_ENDPOINTS_` + the service name in upper snake case: `menu-service` →
/// `SERVIO_ENDPOINTS_MENU_SERVICE`.
pub fn env_var(service: &str) -> String {
    let suffix: String = service
        .chars()
        .map(|c| match c {
            'a'..='z' => c.to_ascii_uppercase(),
            'A'..='Z' | '0'..='9' => c,
            _ => '_',
        })
        .collect();
    format!("{ENV_PREFIX}{suffix}")
}

/// Parses `host:port[,host:port...]` (IPv6 hosts in brackets; blanks around entries ignored).
pub fn parse(text: &str) -> Result<Vec<HostPort>, String> {
    let mut endpoints = Vec::new();
    for entry in text.split(',').map(str::trim) {
        if entry.is_empty() {
            continue;
        }
        endpoints.push(parse_one(entry)?);
    }
    if endpoints.is_empty() {
        return Err("it lists no host:port".to_string());
    }
    Ok(endpoints)
}

fn parse_one(entry: &str) -> Result<HostPort, String> {
    let bad = |why: &str| format!("`{entry}` {why}; write host:port, like menu-service:3002");
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let (host, port) = rest
            .split_once("]:")
            .ok_or_else(|| bad("has no port after the IPv6 address"))?;
        host.parse::<std::net::Ipv6Addr>()
            .map_err(|_| bad("is not an IPv6 address"))?;
        (host, port)
    } else {
        entry.rsplit_once(':').ok_or_else(|| bad("has no port"))?
    };
    let port = match port.parse::<u16>() {
        Ok(port) if port != 0 => port,
        _ => return Err(bad("has no port from 1 to 65535")),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && (host.contains(':')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')));
    if !host_ok {
        return Err(bad("has no valid host name"));
    }
    Ok(HostPort {
        host: host.to_string(),
        port,
    })
}

/// The static endpoints among environment variables, keyed by variable name.
pub fn from_vars(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<BTreeMap<String, Vec<HostPort>>, String> {
    let mut found = BTreeMap::new();
    for (name, value) in vars {
        if !name.starts_with(ENV_PREFIX) || name.len() == ENV_PREFIX.len() {
            continue;
        }
        let parsed = parse(&value).map_err(|why| format!("{name}: {why}"))?;
        found.insert(name, parsed);
    }
    Ok(found)
}

/// The instances `endpoints` stand for, as published to the balancer: one per distinct
/// address the names resolve to, healthy (the breakers judge them by their answers).
pub(super) fn instances(service: &str, resolved: &[(HostPort, Vec<SocketAddr>)]) -> Vec<Instance> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (endpoint, addresses) in resolved {
        for address in addresses {
            if !seen.insert(*address) {
                continue;
            }
            let named = endpoint.host.parse::<IpAddr>().is_err();
            out.push(Instance {
                id: if named {
                    format!("{endpoint} ({})", address.ip())
                } else {
                    address.to_string()
                },
                service: service.to_string(),
                version: String::new(),
                address: address.ip().to_string(),
                port: address.port(),
                health: Health::Healthy,
                pid: None,
                since: String::new(),
                restarts: 0,
                uptime_ms: None,
                last_exit: None,
                managed: false,
                breaker: None,
                cpu_ms: None,
                rss_bytes: None,
            });
        }
    }
    out
}

/// Resolves every endpoint through the system resolver (getaddrinfo: /etc/hosts, then DNS).
async fn resolve(
    endpoints: &[HostPort],
    timeout: Duration,
) -> Result<Vec<(HostPort, Vec<SocketAddr>)>, String> {
    let mut resolved = Vec::with_capacity(endpoints.len());
    let mut failures = Vec::new();
    for endpoint in endpoints {
        let lookup = tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port));
        match tokio::time::timeout(timeout, lookup).await {
            Ok(Ok(addresses)) => resolved.push((endpoint.clone(), addresses.collect::<Vec<_>>())),
            Ok(Err(error)) => failures.push(format!("{endpoint}: {error}")),
            Err(_) => failures.push(format!("{endpoint}: no answer within {timeout:?}")),
        }
    }
    // Some names answering is enough: the others may be scaled to zero for now.
    if resolved.iter().all(|(_, addresses)| addresses.is_empty()) {
        if failures.is_empty() {
            failures.push("no address found".to_string());
        }
        return Err(failures.join("; "));
    }
    Ok(resolved)
}

/// What the refresh task needs.
pub(super) struct Refresh {
    pub service: String,
    pub endpoints: Vec<HostPort>,
    pub every: Duration,
    pub timeout: Duration,
    pub shutdown: CancellationToken,
}

/// Keeps `sender` up to date with the addresses `refresh.endpoints` resolve to, until
/// shutdown. A failed lookup keeps the last good view in use (the instances are likely
/// still there) and is tried again sooner.
pub(super) async fn refresh(
    refresh: Refresh,
    sender: watch::Sender<Cached>,
    balancer: Arc<ServiceBalancer>,
) {
    let mut failures: u32 = 0;
    let mut last: Option<Vec<String>> = None;
    loop {
        let resolved = tokio::select! {
            () = refresh.shutdown.cancelled() => return,
            resolved = resolve(&refresh.endpoints, refresh.timeout) => resolved,
        };
        let pause = match resolved {
            Ok(resolved) => {
                failures = 0;
                let found = instances(&refresh.service, &resolved);
                let ids: Vec<String> = found.iter().map(|i| i.id.clone()).collect();
                if last.as_ref() != Some(&ids) {
                    balancer.retain(&found);
                    sender.send_replace(Cached::Ready(Arc::new(Resolved { instances: found })));
                    last = Some(ids);
                }
                refresh.every
            }
            Err(reason) => {
                failures = failures.saturating_add(1);
                tracing::debug!(service = %refresh.service, %reason, "resolving endpoints failed");
                sender.send_if_modified(|cached| match cached {
                    Cached::Ready(_) => false,
                    other => {
                        *other = Cached::Unresolved(reason);
                        true
                    }
                });
                retry_delay(failures).min(refresh.every)
            }
        };
        tokio::select! {
            () = refresh.shutdown.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}
