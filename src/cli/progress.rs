//! What every lifecycle verb shows while it waits: a stage per service (waiting → starting
//! → checking → healthy, or restarting / scaling / stopping), judged from the daemon's
//! status by pure functions, and drawn as indicatif bars on a TTY or as plain lines
//! otherwise.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::protocol::{Action, Health, ServiceStatus, StackStatus, Step};

/// Where one service is on its way up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    Waiting,
    Starting,
    Checking,
    Healthy,
    /// A restart, scale or stop in progress, with what it is doing.
    Busy(String),
    Stopped,
    Failed(String),
}

impl Stage {
    fn label(&self) -> String {
        match self {
            Stage::Waiting => "waiting".into(),
            Stage::Starting => "starting".into(),
            Stage::Checking => "checking".into(),
            Stage::Healthy => "healthy".into(),
            Stage::Busy(what) => what.clone(),
            Stage::Stopped => "stopped".into(),
            Stage::Failed(why) => format!("failed: {why}"),
        }
    }
}

/// Judges a service's stage from the daemon's view. `deps` are its direct dependencies.
pub fn stage_of(status: &StackStatus, name: &str, deps: &[String]) -> Stage {
    let Some(service) = find(status, name) else {
        return Stage::Waiting;
    };
    if service.instances.is_empty() {
        return Stage::Waiting;
    }
    for instance in &service.instances {
        match instance.health {
            Health::Restarting | Health::CrashLooping | Health::Failed | Health::Exited => {
                let why = instance
                    .last_exit
                    .clone()
                    .unwrap_or_else(|| instance.health.to_string());
                return Stage::Failed(format!("{} {why}", instance.id));
            }
            Health::Stopping | Health::Stopped => {
                return Stage::Failed(format!("{} was stopped", instance.id));
            }
            _ => {}
        }
    }
    if service
        .instances
        .iter()
        .all(|i| i.health == Health::Healthy)
    {
        return Stage::Healthy;
    }
    if service
        .instances
        .iter()
        .any(|i| i.health == Health::Waiting)
    {
        for dep in deps {
            if let Some(Stage::Failed(_)) = find(status, dep).map(|_| stage_of(status, dep, &[])) {
                return Stage::Failed(format!("dependency `{dep}` failed"));
            }
        }
        return Stage::Waiting;
    }
    if service
        .instances
        .iter()
        .any(|i| i.pid.is_some() || !i.managed)
    {
        Stage::Checking
    } else {
        Stage::Starting
    }
}

/// The stage of a service a plan `step` is changing. `deps` are its direct dependencies.
pub fn step_stage(status: &StackStatus, step: &Step, deps: &[String]) -> Stage {
    let instances = find(status, &step.service).map_or(&[][..], |s| &s.instances[..]);
    let settling: Vec<&str> = instances
        .iter()
        .filter(|i| i.health != Health::Healthy)
        .map(|i| i.id.as_str())
        .collect();
    let doing = |verb: &str| {
        if settling.is_empty() {
            Stage::Busy(verb.to_string())
        } else {
            let healthy = instances.len() - settling.len();
            Stage::Busy(format!(
                "{verb}: {healthy} of {} instances healthy",
                instances.len()
            ))
        }
    };
    match &step.action {
        Action::Keep | Action::Start { .. } => stage_of(status, &step.service, deps),
        Action::Restart { .. } => doing("restarting"),
        Action::Scale { from, to } => doing(&format!("scaling {from} → {to}")),
        Action::Stop if instances.iter().all(|i| i.health == Health::Stopped) => Stage::Stopped,
        Action::Stop => Stage::Busy("stopping".to_string()),
    }
}

fn find<'a>(status: &'a StackStatus, name: &str) -> Option<&'a ServiceStatus> {
    status.services.iter().find(|s| s.name == name)
}

/// The display: bars, plain lines, or nothing (`--quiet`).
pub struct ProgressView {
    bars: Option<(MultiProgress, HashMap<String, ProgressBar>)>,
    plain: bool,
    shown: BTreeMap<String, Stage>,
    began: Instant,
}

impl ProgressView {
    pub fn new(services: &[String], fancy: bool, quiet: bool) -> Self {
        let bars = (fancy && !quiet).then(|| {
            let multi = MultiProgress::new();
            let width = services.iter().map(String::len).max().unwrap_or(0);
            let style = ProgressStyle::with_template(&format!(
                "{{spinner:.cyan}} {{prefix:{width}.bold}}  {{msg}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
            let bars = services
                .iter()
                .map(|name| {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(style.clone());
                    bar.set_prefix(name.clone());
                    bar.set_message("waiting");
                    bar.enable_steady_tick(Duration::from_millis(100));
                    (name.clone(), bar)
                })
                .collect();
            (multi, bars)
        });
        ProgressView {
            plain: bars.is_none() && !quiet,
            bars,
            shown: BTreeMap::new(),
            began: Instant::now(),
        }
    }

    /// Shows `stage` for `service` if it changed.
    pub fn update(&mut self, service: &str, stage: &Stage) {
        if self.shown.get(service) == Some(stage) {
            return;
        }
        self.shown.insert(service.to_string(), stage.clone());
        let elapsed = self.began.elapsed().as_secs_f64();
        let text = match stage {
            Stage::Healthy => format!("healthy ({elapsed:.2}s)"),
            other => other.label(),
        };
        if let Some((_, bars)) = &self.bars {
            if let Some(bar) = bars.get(service) {
                match stage {
                    Stage::Healthy | Stage::Stopped => bar.finish_with_message(format!("✔ {text}")),
                    Stage::Failed(_) => bar.finish_with_message(format!("✘ {text}")),
                    _ => bar.set_message(text),
                }
            }
        } else if self.plain {
            let _ = writeln!(std::io::stderr(), "{service}: {text}");
        }
    }

    /// Stops every spinner still running (on timeout).
    pub fn finish(&self) {
        if let Some((_, bars)) = &self.bars {
            for bar in bars.values() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Instance;

    fn instance(id: &str, health: Health, pid: Option<u32>, exit: Option<&str>) -> Instance {
        Instance {
            pid,
            last_exit: exit.map(String::from),
            ..Instance::for_test(id, health)
        }
    }

    fn stack(services: Vec<(&str, Vec<Instance>)>) -> StackStatus {
        StackStatus {
            index: 1,
            project: "p".into(),
            daemon_pid: 1,
            admin_url: String::new(),
            gateway_url: None,
            services: services
                .into_iter()
                .map(|(name, instances)| ServiceStatus {
                    watching: false,
                    depends_on: Vec::new(),
                    name: name.into(),
                    version: "1".into(),
                    instances,
                })
                .collect(),
            routes: Vec::new(),
            gateway: None,
        }
    }

    #[test]
    fn stages_follow_instance_health() {
        let deps = vec!["db".to_string()];
        let cases = vec![
            (stack(vec![]), Stage::Waiting),
            (
                stack(vec![(
                    "api",
                    vec![instance("api-1", Health::Waiting, None, None)],
                )]),
                Stage::Waiting,
            ),
            (
                stack(vec![(
                    "api",
                    vec![instance("api-1", Health::Starting, None, None)],
                )]),
                Stage::Starting,
            ),
            (
                stack(vec![(
                    "api",
                    vec![instance("api-1", Health::Starting, Some(7), None)],
                )]),
                Stage::Checking,
            ),
            (
                stack(vec![(
                    "api",
                    vec![
                        instance("api-1", Health::Healthy, Some(7), None),
                        instance("api-2", Health::Starting, Some(8), None),
                    ],
                )]),
                Stage::Checking,
            ),
            (
                stack(vec![(
                    "api",
                    vec![instance("api-1", Health::Healthy, Some(7), None)],
                )]),
                Stage::Healthy,
            ),
            (
                stack(vec![(
                    "api",
                    vec![instance(
                        "api-1",
                        Health::CrashLooping,
                        None,
                        Some("exited with code 1"),
                    )],
                )]),
                Stage::Failed("api-1 exited with code 1".into()),
            ),
            (
                stack(vec![
                    (
                        "db",
                        vec![instance(
                            "db-1",
                            Health::Failed,
                            None,
                            Some("port 5 is already in use"),
                        )],
                    ),
                    ("api", vec![instance("api-1", Health::Waiting, None, None)]),
                ]),
                Stage::Failed("dependency `db` failed".into()),
            ),
        ];
        for (status, expected) in cases {
            assert_eq!(stage_of(&status, "api", &deps), expected, "{status:?}");
        }
    }
}
