//! The planner, as a pure function: what a lifecycle verb ([`Intent`]) means for each
//! service, given the manifest and what runs now ([`Snapshot`]). `up`, `up --dry-run`,
//! `start`, `stop`, `restart`, `scale` and watch-triggered restarts all become a [`Plan`]
//! here; the executor carries plans out.
//!
//! Whether a running service still matches the manifest is decided by [`Fingerprint`]s: one
//! digest per setting that needs new processes to take effect, kept in state.json so that a
//! daemon adopting a crashed one's instances can still tell what changed. Environment values
//! only ever appear there as digests.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::manifest::{Launch, Manifest, Service};
use crate::protocol::{Action, Intent, Step};

/// Per setting, a digest of its value: equal digests, same setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint(BTreeMap<String, u64>);

impl Fingerprint {
    /// The digests of the settings of `service` that only new processes can apply.
    pub fn of(service: &Service) -> Self {
        let command = match &service.launch {
            Launch::Command(argv) => format!("{argv:?}"),
            Launch::External(addresses) => format!("external {addresses:?}"),
        };
        let fields = [
            ("command", command),
            ("env", format!("{:?}", service.env)),
            ("cwd", format!("{:?}", service.cwd)),
            ("port", format!("{:?}", service.port)),
            ("version", service.version.clone()),
            ("health", format!("{:?}", service.health_check)),
            ("restart", format!("{:?}", service.restart)),
            ("stop", format!("{:?}", service.stop)),
        ];
        Fingerprint(
            fields
                .into_iter()
                .map(|(name, text)| (name.to_string(), fnv1a(text.as_bytes())))
                .collect(),
        )
    }

    /// The settings that differ, as restart reasons ("env changed"), in a stable order.
    pub fn changes(&self, desired: &Fingerprint) -> Vec<String> {
        let names: BTreeSet<&String> = self.0.keys().chain(desired.0.keys()).collect();
        names
            .into_iter()
            .filter(|name| self.0.get(*name) != desired.0.get(*name))
            .map(|name| format!("{name} changed"))
            .collect()
    }
}

/// FNV-1a, 64 bits: stable across builds and platforms, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One service as it runs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// What its instances were started with.
    pub fingerprint: Fingerprint,
    /// How many instances it is meant to run now (the manifest's, or the last `scale`).
    pub replicas: u32,
    /// False once every instance has ended (exited, failed or stopped).
    pub active: bool,
    /// Its dependencies when it was started.
    pub depends_on: Vec<String>,
    pub external: bool,
}

/// Every service the daemon runs or ran, by name.
pub type Snapshot = BTreeMap<String, Running>;

/// A plan: one step per service concerned, in an order that may be carried out one step
/// at a time (stops first, dependents before what they depend on; then the rest in start
/// order). The executor runs independent steps at once.
pub type Plan = Vec<Step>;

/// Why a verb cannot be planned: the CLI exits 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Unknown(String),
    #[error(
        "cannot stop {service}: {} depend{} on it; stop {} first, or add --with-dependents",
        .dependents.join(", "),
        if .dependents.len() == 1 { "s" } else { "" },
        if .dependents.len() == 1 { "it" } else { "them" }
    )]
    HasDependents {
        service: String,
        dependents: Vec<String>,
    },
    #[error(
        "cannot scale `{0}`: its instances run outside servio (manifest `instances`); edit that list instead"
    )]
    External(String),
}

/// What `intent` means for each service, given the `manifest` and what runs.
pub fn plan(intent: &Intent, manifest: &Manifest, running: &Snapshot) -> Result<Plan, PlanError> {
    match intent {
        Intent::Up { services, .. } => plan_up(services, manifest, running),
        Intent::Start { services } => {
            let order = manifest.start_order(services).map_err(PlanError::Unknown)?;
            Ok(order
                .into_iter()
                .map(|name| start_or_keep(&name, manifest, running))
                .collect())
        }
        Intent::Restart { services } => plan_restart(services, manifest, running),
        Intent::Stop {
            services,
            with_dependents,
            ..
        } => plan_stop(services, *with_dependents, manifest, running),
        Intent::Scale { counts } => plan_scale(counts, manifest, running),
    }
}

fn is_active(running: &Snapshot, name: &str) -> bool {
    running.get(name).is_some_and(|r| r.active)
}

fn step(service: &str, action: Action) -> Step {
    Step {
        service: service.to_string(),
        action,
    }
}

fn start_or_keep(name: &str, manifest: &Manifest, running: &Snapshot) -> Step {
    if is_active(running, name) {
        step(name, Action::Keep)
    } else {
        let replicas = manifest.services.get(name).map_or(1, |s| s.replicas);
        step(name, Action::Start { replicas })
    }
}

fn plan_up(wanted: &[String], manifest: &Manifest, running: &Snapshot) -> Result<Plan, PlanError> {
    let order = manifest.start_order(wanted).map_err(PlanError::Unknown)?;
    let mut plan = Vec::new();
    if wanted.is_empty() {
        let removed: BTreeSet<String> = running
            .iter()
            .filter(|(name, r)| r.active && !manifest.services.contains_key(*name))
            .map(|(name, _)| name.clone())
            .collect();
        plan.extend(stops_in_order(&removed, running));
    }
    for name in order {
        let service = &manifest.services[&name];
        let action = match running.get(&name).filter(|r| r.active) {
            None => Action::Start {
                replicas: service.replicas,
            },
            Some(now) => {
                let reasons = now.fingerprint.changes(&Fingerprint::of(service));
                if !reasons.is_empty() {
                    Action::Restart {
                        reasons,
                        replicas: service.replicas,
                    }
                } else if now.replicas != service.replicas {
                    Action::Scale {
                        from: now.replicas,
                        to: service.replicas,
                    }
                } else {
                    Action::Keep
                }
            }
        };
        plan.push(step(&name, action));
    }
    Ok(plan)
}

fn plan_restart(
    wanted: &[String],
    manifest: &Manifest,
    running: &Snapshot,
) -> Result<Plan, PlanError> {
    let order = manifest.start_order(wanted).map_err(PlanError::Unknown)?;
    let named = |name: &String| wanted.is_empty() || wanted.contains(name);
    Ok(order
        .into_iter()
        .map(|name| match running.get(&name).filter(|r| r.active) {
            Some(now) if named(&name) => step(
                &name,
                Action::Restart {
                    reasons: vec!["restart requested".to_string()],
                    replicas: now.replicas,
                },
            ),
            _ => start_or_keep(&name, manifest, running),
        })
        .collect())
}

fn plan_stop(
    wanted: &[String],
    with_dependents: bool,
    manifest: &Manifest,
    running: &Snapshot,
) -> Result<Plan, PlanError> {
    if let Some(unknown) = wanted.iter().find(|n| !running.contains_key(*n)) {
        manifest
            .start_order(std::slice::from_ref(unknown))
            .map_err(PlanError::Unknown)?;
    }
    let mut chosen: BTreeSet<String> = if wanted.is_empty() {
        running.keys().cloned().collect()
    } else {
        wanted.iter().cloned().collect()
    };
    for name in wanted {
        let dependents: Vec<String> = dependents_of(name, running)
            .into_iter()
            .filter(|d| is_active(running, d) && !chosen.contains(d))
            .collect();
        if dependents.is_empty() {
            continue;
        }
        if !with_dependents {
            return Err(PlanError::HasDependents {
                service: name.clone(),
                dependents,
            });
        }
        chosen.extend(dependents);
    }
    chosen.retain(|name| is_active(running, name));
    let mut plan = stops_in_order(&chosen, running);
    for name in wanted {
        if !chosen.contains(name) {
            plan.push(step(name, Action::Keep));
        }
    }
    Ok(plan)
}

fn plan_scale(
    counts: &BTreeMap<String, u32>,
    manifest: &Manifest,
    running: &Snapshot,
) -> Result<Plan, PlanError> {
    let wanted: Vec<String> = counts.keys().cloned().collect();
    let order = manifest.start_order(&wanted).map_err(PlanError::Unknown)?;
    let mut plan = Vec::new();
    for name in order {
        let Some(&to) = counts.get(&name) else {
            plan.push(start_or_keep(&name, manifest, running));
            continue;
        };
        if matches!(manifest.services[&name].launch, Launch::External(_)) {
            return Err(PlanError::External(name));
        }
        let action = match running.get(&name).filter(|r| r.active) {
            None => Action::Start { replicas: to },
            Some(now) if now.replicas == to => Action::Keep,
            Some(now) => Action::Scale {
                from: now.replicas,
                to,
            },
        };
        plan.push(step(&name, action));
    }
    Ok(plan)
}

/// Every running service that depends on `name`, directly or not.
fn dependents_of(name: &str, running: &Snapshot) -> Vec<String> {
    let mut found: BTreeSet<String> = BTreeSet::new();
    let mut stack = vec![name.to_string()];
    while let Some(current) = stack.pop() {
        for (other, r) in running {
            if r.depends_on.contains(&current) && found.insert(other.clone()) {
                stack.push(other.clone());
            }
        }
    }
    found.into_iter().collect()
}

/// Stop steps for `names`, each after every one of them that depends on it.
fn stops_in_order(names: &BTreeSet<String>, running: &Snapshot) -> Vec<Step> {
    let mut left: Vec<&String> = names.iter().collect();
    let mut plan = Vec::new();
    while !left.is_empty() {
        // A service goes once nothing left depends on it (a cycle cannot run, but would
        // still end: then the first is taken).
        let next = left
            .iter()
            .position(|name| {
                !left
                    .iter()
                    .any(|other| running[*other].depends_on.contains(name))
            })
            .unwrap_or(0);
        plan.push(step(left.remove(next), Action::Stop));
    }
    plan
}

#[cfg(test)]
mod tests;
