//! The CLI end of the daemon's one executor, shared by `up`, `start`, `stop`, `restart` and
//! `scale`: send the verb's intent, print the plan, draw progress from the daemon's status
//! while it carries the plan out, then report: a summary, or for each failed service why
//! and its last log lines (exit 1). `--json` prints the results as one object instead.

use std::io::Write;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Args;

use super::ManifestArg;
use super::connection::DaemonConnection;
use super::progress::{ProgressView, Stage, step_stage};
use crate::error::{CliError, CliResult};
use crate::manifest::Manifest;
use crate::paths::StatePaths;
use crate::protocol::{
    Action, AdoptedInstance, Intent, Request, Response, StackStatus, Step, StepResult,
};

/// The output flags every lifecycle verb shares, meaning the same on each.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Print only errors (no plan, no progress)
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the plan's results as JSON on stdout (no progress)
    #[arg(long)]
    pub json: bool,
}

/// The flags of the verbs that start instances (`up`, `start`, `restart`, `scale`).
/// `-t/--timeout` is how long the command waits, as on `stop` and `down`, where it is the
/// grace before SIGKILL.
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// Give up waiting for new instances to become healthy after this long
    #[arg(short = 't', long, default_value = "60s", value_name = "DURATION", value_parser = super::parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub output: OutputArgs,
}

impl WaitArgs {
    /// For verbs that start nothing (`stop`): no health wait of their own.
    pub fn output_only(output: OutputArgs) -> Self {
        WaitArgs {
            timeout: Duration::from_secs(60),
            output,
        }
    }
}

/// How many of a failed service's last log lines are printed.
const FAILURE_LOG_LINES: usize = 15;

/// What the verb says when it is done.
pub enum Summary {
    /// `up`/`start`: "✔ N services healthy in T", then the gateway and admin addresses.
    Healthy,
    /// Any other verb: "✔ {verb} {services} in T", `verb` in the past tense.
    Done(&'static str),
}

/// A verb that needs a running daemon (`restart`, `stop`, `start`, `scale`): connects, then
/// [`run`]s `intent`.
pub fn run_verb(
    manifest: &ManifestArg,
    intent: Intent,
    wait: &WaitArgs,
    summary: Summary,
) -> CliResult<ExitCode> {
    let began = Instant::now();
    let (manifest, connection) = manifest.connect()?;
    run(connection, &manifest, intent, wait, summary, began)
}

/// Sends `intent` over `connection`, shows the plan and progress, and reports the result.
/// `began` is when the command started (the summary's time counts from it).
pub fn run(
    mut connection: DaemonConnection,
    manifest: &Manifest,
    intent: Intent,
    wait: &WaitArgs,
    summary: Summary,
    began: Instant,
) -> CliResult<ExitCode> {
    let paths = StatePaths::for_project(&manifest.root);
    connection.send(Request::Apply {
        intent,
        dry_run: false,
        timeout_ms: wait.timeout.as_millis() as u64,
    })?;
    let (steps, adopted) = match connection.answer(None)? {
        Response::Plan { steps, adopted } => (steps, adopted),
        other => return Err(unexpected(other)),
    };
    let (quiet, json) = (wait.output.quiet, wait.output.json);
    let talk = !quiet && !json;
    if talk {
        announce(&steps, &adopted);
    }

    // The results arrive on this connection; progress comes from watches on another one.
    let (events, inbox) = mpsc::channel();
    let results = events.clone();
    std::thread::spawn(move || {
        let _ = results.send(Event::Done(connection.answer(None)));
    });
    if talk {
        if let Some(watcher) = DaemonConnection::connect(&paths) {
            std::thread::spawn(move || watch_status(watcher, events));
        }
    }
    let shown: Vec<String> = steps.iter().map(|s| s.service.clone()).collect();
    let mut view = ProgressView::new(&shown, crate::term::progress_bars(), !talk);
    let mut last_status = None;
    let results = loop {
        match inbox.recv() {
            Ok(Event::Status(status)) => {
                for step in &steps {
                    let deps = depends_on(manifest, &step.service);
                    view.update(&step.service, &step_stage(&status, step, &deps));
                }
                last_status = Some(status);
            }
            Ok(Event::Done(answer)) => match answer? {
                Response::Applied { steps } => break steps,
                other => return Err(unexpected(other)),
            },
            Err(_) => {
                return Err(CliError::failure(
                    "lost the connection to the servio daemon",
                ));
            }
        }
    };
    for result in &results {
        let stage = match (&result.error, &result.action) {
            (Some(why), _) => Stage::Failed(why.clone()),
            (None, Action::Stop) => Stage::Stopped,
            (None, _) => Stage::Healthy,
        };
        view.update(&result.service, &stage);
    }
    view.finish();
    let failed = results.iter().any(|r| r.error.is_some());
    if json {
        print_json(&results, &adopted, began.elapsed());
    } else if !failed && !quiet {
        let status = last_status.or_else(|| current_status(&paths));
        print_summary(&summary, &results, status.as_ref(), began.elapsed());
    }
    if !failed {
        return Ok(ExitCode::SUCCESS);
    }
    let mut report = String::new();
    for result in &results {
        let Some(why) = &result.error else { continue };
        let what = match result.action {
            Action::Stop => "did not stop",
            _ => "did not become healthy",
        };
        report.push_str(&format!("`{}` {what}: {why}\n", result.service));
        report.push_str(&last_log_lines(&paths, &result.service));
    }
    report.push_str(
        "the daemon keeps running: see `servio status`, `servio logs`, or stop it with `servio down`",
    );
    Err(CliError::failure(report))
}

enum Event {
    Status(StackStatus),
    Done(CliResult<Response>),
}

/// Sends every change of the daemon's status until the receiver is gone.
fn watch_status(mut connection: DaemonConnection, events: mpsc::Sender<Event>) {
    let mut after = 0;
    loop {
        let request = Request::Watch {
            after,
            wait_ms: 1000,
        };
        let Ok(Response::Status(status)) =
            connection.request(request, Some(Duration::from_secs(10)))
        else {
            return;
        };
        after = status.index;
        if events.send(Event::Status(status)).is_err() {
            return;
        }
    }
}

fn current_status(paths: &StatePaths) -> Option<StackStatus> {
    let mut connection = DaemonConnection::connect(paths)?;
    match connection.request(Request::Status, Some(Duration::from_secs(5))) {
        Ok(Response::Status(status)) => Some(status),
        _ => None,
    }
}

fn depends_on(manifest: &Manifest, service: &str) -> Vec<String> {
    manifest
        .services
        .get(service)
        .map(|s| s.depends_on.clone())
        .unwrap_or_default()
}

fn unexpected(answer: Response) -> CliError {
    CliError::failure(format!("unexpected answer from the daemon: {answer:?}"))
}

/// Prints what the plan changes (starting services show as progress instead) and what a
/// crashed daemon left that this one adopted.
fn announce(steps: &[Step], adopted: &[AdoptedInstance]) {
    let mut err = std::io::stderr().lock();
    if !adopted.is_empty() {
        let list: Vec<String> = adopted
            .iter()
            .map(|a| format!("{} (pid {}, port {})", a.id, a.pid, a.port))
            .collect();
        let _ = writeln!(
            err,
            "adopted {} instance(s) a crashed daemon left running: {}",
            adopted.len(),
            list.join(", ")
        );
    }
    for step in steps {
        if matches!(
            step.action,
            Action::Restart { .. } | Action::Scale { .. } | Action::Stop
        ) {
            let _ = writeln!(err, "{}: {}", step.service, step.action);
        }
    }
}

/// `--dry-run`: the plan, one line per service (or JSON), and nothing changes.
pub fn print_plan(steps: &[Step], json: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        let value = serde_json::json!({ "dry_run": true, "steps": steps });
        let _ = writeln!(out, "{value}");
        return;
    }
    let width = steps.iter().map(|s| s.service.len()).max().unwrap_or(0);
    for step in steps {
        let _ = writeln!(out, "{:width$}  {}", step.service, step.action);
    }
}

fn print_json(results: &[StepResult], adopted: &[AdoptedInstance], took: Duration) {
    let value = serde_json::json!({
        "ok": results.iter().all(|r| r.error.is_none()),
        "took_ms": took.as_millis() as u64,
        "steps": results,
        "adopted": adopted,
    });
    let _ = writeln!(std::io::stdout().lock(), "{value}");
}

fn print_summary(
    summary: &Summary,
    results: &[StepResult],
    status: Option<&StackStatus>,
    took: Duration,
) {
    let color = crate::term::stdout_color();
    let mut out = std::io::stdout().lock();
    let check = crate::term::paint(color, "32", "✔");
    let seconds = took.as_secs_f64();
    match summary {
        Summary::Healthy => {
            let count = results.iter().filter(|r| r.action != Action::Stop).count();
            let noun = if count == 1 { "service" } else { "services" };
            let _ = writeln!(out, "{check} {count} {noun} healthy in {seconds:.2}s");
            if let Some(status) = status {
                if let Some(gateway) = &status.gateway_url {
                    let _ = writeln!(out, "  gateway  {gateway}");
                }
                let _ = writeln!(out, "  admin    {}", status.admin_url);
            }
        }
        Summary::Done(verb) => {
            let changed: Vec<&str> = results
                .iter()
                .filter(|r| r.action != Action::Keep)
                .map(|r| r.service.as_str())
                .collect();
            if changed.is_empty() {
                let _ = writeln!(out, "{check} nothing changed");
            } else {
                let _ = writeln!(
                    out,
                    "{check} {verb} {} in {seconds:.2}s",
                    changed.join(", ")
                );
            }
        }
    }
}

fn last_log_lines(paths: &StatePaths, service: &str) -> String {
    let records = crate::logs::read_records(&paths.service_log(service)).unwrap_or_default();
    if records.is_empty() {
        return format!("  (no output from {service})\n");
    }
    let start = records.len().saturating_sub(FAILURE_LOG_LINES);
    let mut text = format!("  last lines of {service}'s log:\n");
    for record in &records[start..] {
        text.push_str(&format!("    {} | {}\n", record.instance, record.message));
    }
    text
}
