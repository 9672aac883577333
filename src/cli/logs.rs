//! `servio logs`: reads the captured log files, so it works after `down` too.
//!
//! Without `-f` every requested log is read whole, merged by time, cut by `--since` and
//! `--tail`, printed, done. With `-f` the live files are read through a [`Follower`] each
//! (so nothing falls between the first read and the following), then polled whenever
//! [`LogChanges`] says a file changed (at least every second) until Ctrl-C or until stdout
//! is closed (a closed pipe ends the command quietly, exit 0).

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Args;

use crate::error::{CliError, CliResult};
use crate::logs::{self, Follower, LogChanges, LogRecord, Renderer};
use crate::manifest::{self, Manifest};
use crate::paths::StatePaths;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Services to show [default: all]
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Keep printing new lines as they are written (across rotation and new instances)
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show only the last N lines
    #[arg(short = 'n', long = "tail", value_name = "N")]
    pub lines: Option<usize>,
    /// Show only lines newer than this, like "10m" or "30s"
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    pub since: Option<Duration>,
    /// Prefix each line with its timestamp
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Path to the manifest [default: services.toml in this folder or the nearest parent]
    #[arg(long = "file", value_name = "PATH", env = "SERVIO_FILE")]
    pub file: Option<PathBuf>,
}

pub fn run(args: LogsArgs) -> CliResult<ExitCode> {
    let path = manifest::locate(args.file.as_deref())?;
    let manifest = manifest::load(&path)?;
    let services = choose_services(&manifest, &args.services)?;
    let state = StatePaths::for_project(&manifest.root);
    let paths: Vec<PathBuf> = services.iter().map(|s| state.service_log(s)).collect();

    let cutoff = logs::cutoff(SystemTime::now(), args.since);
    let color = crate::term::stdout_color();
    let mut renderer = Renderer::new(color, args.timestamps, services.len() > 1);
    let mut out = BufWriter::new(io::stdout().lock());

    let result = if args.follow {
        follow(&paths, cutoff, args.lines, &mut renderer, &mut out)
    } else {
        let logs = paths
            .iter()
            .map(|path| logs::read_records(path).map_err(|e| read_error(path, e)))
            .collect::<CliResult<Vec<_>>>()?;
        let records = logs::select(logs::merge(logs), cutoff, args.lines);
        print(&mut renderer, &records, &mut out).map_err(CliError::from)
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // Whoever reads our output has gone (`servio logs | head`): that is not a failure.
        Err(CliError::Failure(e)) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e),
    }
}

/// The services to show, in manifest order when none are named; unknown names exit 2.
fn choose_services(manifest: &Manifest, wanted: &[String]) -> CliResult<Vec<String>> {
    if wanted.is_empty() {
        return Ok(manifest.services.keys().cloned().collect());
    }
    let unknown: Vec<&String> = wanted
        .iter()
        .filter(|name| !manifest.services.contains_key(name.as_str()))
        .collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = manifest.services.keys().map(String::as_str).collect();
        let names: Vec<String> = unknown.iter().map(|name| format!("`{name}`")).collect();
        let noun = if unknown.len() == 1 {
            "service"
        } else {
            "services"
        };
        return Err(CliError::usage(format!(
            "unknown {noun} {}; known services: {}",
            names.join(", "),
            known.join(", ")
        )));
    }
    let mut chosen: Vec<String> = Vec::with_capacity(wanted.len());
    for name in wanted {
        if !chosen.contains(name) {
            chosen.push(name.clone());
        }
    }
    Ok(chosen)
}

/// Prints what is there, then every new line, until stdout closes or the process is killed.
fn follow(
    paths: &[PathBuf],
    cutoff: Option<SystemTime>,
    lines: Option<usize>,
    renderer: &mut Renderer,
    out: &mut impl Write,
) -> CliResult<()> {
    // Watching starts before the first read, so no change falls in between.
    let mut changes = LogChanges::watch(paths);
    let mut followers: Vec<Follower> = paths.iter().map(|p| Follower::new(p)).collect();
    let mut logs = Vec::with_capacity(followers.len());
    for follower in &mut followers {
        let path = follower.path().to_path_buf();
        let mut records = logs::read_rotated(&path).map_err(|e| read_error(&path, e))?;
        records.extend(follower.poll().map_err(|e| read_error(&path, e))?);
        logs.push(records);
    }
    print(
        renderer,
        &logs::select(logs::merge(logs), cutoff, lines),
        out,
    )?;

    // One warning per follower and distinct error, not one per wake.
    let mut last_errors: Vec<Option<String>> = vec![None; followers.len()];
    loop {
        changes.wait();
        let mut batch = Vec::with_capacity(followers.len());
        for (follower, last_error) in followers.iter_mut().zip(&mut last_errors) {
            match follower.poll() {
                Ok(records) => {
                    *last_error = None;
                    batch.push(records);
                }
                Err(e) => {
                    let text = read_error(follower.path(), e).to_string();
                    if last_error.as_deref() != Some(text.as_str()) {
                        warn(&text);
                        *last_error = Some(text);
                    }
                }
            }
        }
        print(
            renderer,
            &logs::select(logs::merge(batch), cutoff, None),
            out,
        )?;
    }
}

/// Renders `records` to `out` and flushes.
fn print(renderer: &mut Renderer, records: &[LogRecord], out: &mut impl Write) -> io::Result<()> {
    renderer.observe(records);
    for record in records {
        out.write_all(renderer.render(record).as_bytes())?;
    }
    out.flush()
}

fn read_error(path: &Path, error: io::Error) -> CliError {
    CliError::failure(format!("cannot read `{}`: {error}", path.display()))
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

/// A warning on stderr that does not stop `-f` (and never panics if stderr is gone).
fn warn(text: &str) {
    let prefix = crate::term::paint(crate::term::stderr_color(), "33;1", "warning:");
    let _ = writeln!(io::stderr(), "{prefix} {text}");
}
