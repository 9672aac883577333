//! Checks that relate several values: dependencies that name no service, dependency cycles,
//! routes to unknown services or repeated prefixes, and ports claimed twice.

use std::collections::BTreeSet;
use std::ops::Range;

use super::diagnostics::Diagnostics;
use super::raw::RawManifest;
use super::{Launch, Manifest, graph};

pub(super) fn cross_check(raw: &RawManifest, manifest: &Manifest, diag: &mut Diagnostics) {
    let known: BTreeSet<&str> = raw.services.iter().map(|e| e.name.as_str()).collect();
    let known_list = known.iter().copied().collect::<Vec<_>>().join(", ");
    let pick_from = if known.is_empty() {
        "add a [services.NAME] table for it first".to_string()
    } else {
        format!("use one of the known services: {known_list}")
    };

    for entry in &raw.services {
        let deps = entry.service.as_ref().and_then(|s| s.depends_on.as_ref());
        for dep in deps.into_iter().flatten() {
            if !known.contains(dep.get_ref().as_str()) {
                let message = format!("unknown dependency `{}`", dep.get_ref());
                let key = format!("services.{}.depends_on", entry.name);
                diag.at(&dep.span(), &key, message, &pick_from);
            }
        }
    }

    for cycle in graph::cycles(&manifest.graph()) {
        let (first, next) = (&cycle[0], cycle.get(1).unwrap_or(&cycle[0]));
        let span = dependency_span(raw, first, next);
        let mut shown = cycle.clone();
        shown.push(first.clone());
        let message = format!("dependency cycle: {}", shown.join(" → "));
        let key = format!("services.{first}.depends_on");
        let fix = "remove one of these dependencies: services in a cycle can never start";
        diag.at_opt(span.as_ref(), &key, message, fix);
    }

    let routes = raw.gateway.iter().flat_map(|g| g.routes.iter().flatten());
    let mut prefixes: BTreeSet<&str> = BTreeSet::new();
    for (i, route) in routes.enumerate() {
        let route = route.get_ref();
        let service = &route.service;
        if !known.contains(service.get_ref().as_str()) {
            let message = format!("route to unknown service `{}`", service.get_ref());
            diag.at(
                &service.span(),
                &format!("gateway.routes[{i}].service"),
                message,
                &pick_from,
            );
        }
        if !prefixes.insert(route.prefix.get_ref()) {
            let message = format!("prefix `{}` is routed twice", route.prefix.get_ref());
            let fix = "keep one route per prefix";
            diag.at(
                &route.prefix.span(),
                &format!("gateway.routes[{i}].prefix"),
                message,
                fix,
            );
        }
    }

    duplicate_ports(raw, manifest, diag);
}

/// Where `service` lists `dependency` in its `depends_on`.
fn dependency_span(raw: &RawManifest, service: &str, dependency: &str) -> Option<Range<usize>> {
    let entry = raw.services.iter().find(|e| e.name == service)?;
    let deps = entry.service.as_ref()?.depends_on.as_ref()?;
    deps.iter()
        .find(|d| d.get_ref() == dependency)
        .map(|d| d.span())
}

/// One port somebody configured, for clash detection. Only the first replica of a service
/// takes its configured port; further replicas get free ports at start, so they never clash.
struct Claim {
    owner: String,
    key: String,
    port: u16,
    span: Option<Range<usize>>,
}

fn duplicate_ports(raw: &RawManifest, manifest: &Manifest, diag: &mut Diagnostics) {
    let mut claims = Vec::new();
    if manifest.admin.port != 0 {
        let span = raw
            .admin
            .as_ref()
            .and_then(|a| a.port.as_ref())
            .map(|p| p.span());
        claims.push(single(
            "the admin API",
            "admin.port",
            manifest.admin.port,
            span,
        ));
    }
    if manifest.gateway_enabled() && manifest.gateway.port != 0 {
        let span = raw
            .gateway
            .as_ref()
            .and_then(|g| g.port.as_ref())
            .map(|p| p.span());
        claims.push(single(
            "the gateway",
            "gateway.port",
            manifest.gateway.port,
            span,
        ));
    }
    for entry in &raw.services {
        let Some(service) = manifest.services.get(&entry.name) else {
            continue;
        };
        let (Launch::Command(_), Some(port)) = (&service.launch, service.port) else {
            continue;
        };
        let span = entry
            .service
            .as_ref()
            .and_then(|s| s.port.as_ref())
            .map(|p| p.span());
        claims.push(Claim {
            owner: format!("`{}`", entry.name),
            key: format!("services.{}.port", entry.name),
            port,
            span,
        });
    }
    // Report each clash at the value written later; defaults (no position) count as first.
    claims.sort_by_key(|claim| claim.span.as_ref().map(|span| span.start));
    for (i, claim) in claims.iter().enumerate() {
        let Some(other) = claims[..i].iter().find(|o| o.port == claim.port) else {
            continue;
        };
        let message = format!("port {} is already used by {}", claim.port, other.owner);
        let fix =
            "give each its own port, or omit a service's `port` to let servio pick a free one";
        // A default port has no position: point at the explicit one it clashes with.
        let (span, key) = match &claim.span {
            Some(span) => (Some(span), &claim.key),
            None => (other.span.as_ref(), &other.key),
        };
        diag.at_opt(span, key, message, fix);
    }
}

fn single(owner: &str, key: &str, port: u16, span: Option<Range<usize>>) -> Claim {
    Claim {
        owner: owner.to_string(),
        key: key.to_string(),
        port,
        span,
    }
}
