//! The one executor that carries out every plan (`up`, `start`, `stop`, `restart`, `scale`,
//! watch-triggered restarts, `down`): each step goes to its service's controller once the
//! steps it depends on are done; independent steps run at once. A service starts only
//! after its dependencies' steps have succeeded (so after a dependency's rolling restart,
//! not just while its old instances are healthy); a stop waits for its dependents' stops.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::controller::Deadline;
use super::supervisor::Supervisor;
use crate::manifest::Manifest;
use crate::protocol::{Action, Step, StepResult};

/// How a plan is carried out.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// New instances must be healthy by then.
    pub deadline: Deadline,
    /// Grace before SIGKILL for stops (`None`: each service's `stop.timeout`).
    pub stop_grace: Option<Duration>,
    /// Kept services must be healthy too (`up`, `start`), not just left alone (`stop`).
    pub settle_kept: bool,
}

/// Carries out `plan` (from [`super::planner::plan`] against `manifest`); one result per
/// step, in plan order.
pub async fn execute(
    supervisor: &Arc<Supervisor>,
    manifest: &Arc<Manifest>,
    plan: &[Step],
    run: Run,
) -> Vec<StepResult> {
    // What status shows at once: every service about to start, waiting.
    for step in plan {
        if let Action::Start { replicas } = step.action {
            if let Some(controller) = supervisor.controller_for(&step.service) {
                controller.reserve(replicas).await;
            }
        }
    }
    let done: BTreeMap<String, watch::Sender<Option<bool>>> = plan
        .iter()
        .map(|s| (s.service.clone(), watch::Sender::new(None)))
        .collect();
    let stopping_dependents = stopping_dependents(plan, supervisor);
    let mut tasks = tokio::task::JoinSet::new();
    for (position, step) in plan.iter().enumerate() {
        let after: Vec<(String, watch::Receiver<Option<bool>>)> =
            prerequisites(step, manifest, &stopping_dependents)
                .into_iter()
                .filter_map(|name| done.get(&name).map(|tx| (name, tx.subscribe())))
                .collect();
        let finished = done[&step.service].clone();
        let supervisor = supervisor.clone();
        let manifest = manifest.clone();
        let step = step.clone();
        tasks.spawn(async move {
            let began = Instant::now();
            // Stops are bounded by their grace periods, not by the health deadline.
            let patience = match step.action {
                Action::Stop => Deadline::after(Duration::from_secs(24 * 3600)),
                _ => run.deadline,
            };
            let error = match wait_for(after, patience).await {
                Err(why) => Some(why),
                Ok(()) => supervisor.carry_out(&manifest, &step, run).await.err(),
            };
            finished.send_replace(Some(error.is_none()));
            let result = StepResult {
                service: step.service,
                action: step.action,
                error,
                took_ms: began.elapsed().as_millis() as u64,
            };
            (position, result)
        });
    }
    let mut results: Vec<(usize, StepResult)> = tasks.join_all().await.into_iter().collect();
    results.sort_by_key(|(position, _)| *position);
    results.into_iter().map(|(_, r)| r).collect()
}

/// For each service, the services with a stop step in `plan` that depend on it: once over
/// the plan, so a plan of N stops costs N lookups, not N².
fn stopping_dependents(plan: &[Step], supervisor: &Supervisor) -> BTreeMap<String, Vec<String>> {
    let mut dependents: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for step in plan.iter().filter(|s| s.action == Action::Stop) {
        for dependency in supervisor.depends_on(&step.service) {
            if dependency != step.service {
                dependents
                    .entry(dependency)
                    .or_default()
                    .push(step.service.clone());
            }
        }
    }
    dependents
}

/// The services whose steps must be done before `step` runs: its dependents' stops before
/// a stop, its dependencies' steps before anything else.
fn prerequisites(
    step: &Step,
    manifest: &Manifest,
    stopping_dependents: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    if step.action == Action::Stop {
        return stopping_dependents
            .get(&step.service)
            .cloned()
            .unwrap_or_default();
    }
    manifest
        .services
        .get(&step.service)
        .map(|s| s.depends_on.clone())
        .unwrap_or_default()
}

/// Waits until every prerequisite step is done; an error names the first that failed.
async fn wait_for(
    after: Vec<(String, watch::Receiver<Option<bool>>)>,
    deadline: Deadline,
) -> Result<(), String> {
    for (name, mut done) in after {
        let outcome = tokio::time::timeout_at(deadline.at, done.wait_for(Option::is_some)).await;
        let timed_out = || {
            format!(
                "not healthy after {} (still waiting for its dependencies)",
                humantime::format_duration(deadline.after)
            )
        };
        match outcome {
            Ok(Ok(state)) if *state == Some(true) => {}
            // A dependency that ran out of time fails at the deadline: so did its dependents.
            Ok(_) if tokio::time::Instant::now() >= deadline.at => return Err(timed_out()),
            Ok(_) => return Err(format!("dependency `{name}` failed")),
            Err(_) => return Err(timed_out()),
        }
    }
    Ok(())
}
