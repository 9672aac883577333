//! `servio status`: the stack as the daemon sees it, as a table or as stable JSON.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::ManifestArg;
use super::connection::{DaemonConnection, not_running};
use crate::daemon::state;
use crate::error::{CliError, CliResult};
use crate::manifest;
use crate::paths::StatePaths;
use crate::protocol::{Health, Instance, Request, Response, ServiceStatus};

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// Print JSON: {"running","services":[{"name","watching","instances":[{"id","pid","port","health","restarts","uptime_ms","breaker"?,"cpu_ms"?,"rss_bytes"?}]}],"routes":[...]}
    #[arg(long, conflicts_with = "watch")]
    pub json: bool,
    /// Keep redrawing on every change (and each second): CPU %, memory, route rates too
    #[arg(short, long)]
    pub watch: bool,
}

/// The `--json` document. Fields are only ever added, never renamed.
#[derive(Debug, Serialize)]
struct StatusJson<'a> {
    running: bool,
    project: Option<&'a str>,
    daemon_pid: Option<u32>,
    admin_url: Option<&'a str>,
    gateway_url: Option<&'a str>,
    services: &'a [ServiceStatus],
    /// Set when the daemon died and left instances running (`up` adopts them).
    #[serde(skip_serializing_if = "Option::is_none")]
    daemon_gone: Option<DaemonGone>,
}

/// What a crashed daemon left behind.
#[derive(Debug, Serialize)]
struct DaemonGone {
    pid: Option<u32>,
    orphans: Vec<Orphan>,
}

#[derive(Debug, Serialize)]
struct Orphan {
    service: String,
    id: String,
    pid: u32,
    port: u16,
}

pub fn run(args: StatusArgs) -> CliResult<ExitCode> {
    // Only the location is needed: status works even while the manifest has errors.
    let path = manifest::locate(args.manifest.file.as_deref())?;
    let root = path.parent().unwrap_or(std::path::Path::new("."));
    let paths = StatePaths::for_project(root);
    let mut out = std::io::stdout().lock();
    let Some(mut connection) = DaemonConnection::connect(&paths) else {
        return not_running_report(&paths, args.json, &mut out);
    };
    if args.watch {
        drop(out);
        return super::status_live::run(connection);
    }
    let status =
        match connection.request(Request::Status, Some(std::time::Duration::from_secs(10)))? {
            Response::Status(status) => status,
            other => return Err(CliError::failure(format!("unexpected answer: {other:?}"))),
        };
    if args.json {
        let doc = StatusJson {
            running: true,
            project: Some(&status.project),
            daemon_pid: Some(status.daemon_pid),
            admin_url: Some(&status.admin_url),
            gateway_url: status.gateway_url.as_deref(),
            services: &status.services,
            daemon_gone: None,
        };
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let color = crate::term::stdout_color();
    let _ = write!(out, "{}", table(&status.services, color, None));
    let _ = writeln!(out);
    if let Some(gateway) = &status.gateway_url {
        let _ = writeln!(out, "gateway  {gateway}");
    }
    let _ = writeln!(out, "admin    {}", status.admin_url);
    Ok(ExitCode::SUCCESS)
}

const HEADERS: [&str; 7] = [
    "SERVICE", "INSTANCE", "PID", "PORT", "HEALTH", "RESTARTS", "UPTIME",
];
/// Columns `status --watch` adds.
const LIVE_HEADERS: [&str; 2] = ["CPU", "MEM"];
/// Where HEALTH is, to paint it.
const HEALTH_COLUMN: usize = 4;

/// Renders the status table; `color` paints the HEALTH column. With `live` (CPU % per
/// instance id, from `status --watch`) it adds CPU and memory columns.
pub fn table(
    services: &[ServiceStatus],
    color: bool,
    live: Option<&std::collections::BTreeMap<String, f64>>,
) -> String {
    let mut headers: Vec<String> = HEADERS.map(String::from).to_vec();
    if live.is_some() {
        headers.extend(LIVE_HEADERS.map(String::from));
    }
    let rows: Vec<(Vec<String>, Health)> = services
        .iter()
        .flat_map(|s| {
            s.instances.iter().map(move |i| {
                let mut cells = row(s, i).to_vec();
                if let Some(cpu) = live {
                    cells.push(cpu.get(&i.id).map_or("-".into(), |p| format!("{p:.1}%")));
                    cells.push(i.rss_bytes.map_or("-".into(), format_bytes));
                }
                (cells, i.health)
            })
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for (cells, _) in &rows {
        for (w, cell) in widths.iter_mut().zip(cells) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let line = |cells: &[String], health: Option<Health>| {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let padded = if i + 1 == cells.len() {
                cell.clone()
            } else {
                format!("{cell:<width$}  ", width = widths[i])
            };
            match (i, health) {
                (HEALTH_COLUMN, Some(h)) => {
                    line.push_str(&crate::term::paint(color, health_color(h), &padded))
                }
                _ => line.push_str(&padded),
            }
        }
        line.trim_end().to_string() + "\n"
    };
    text.push_str(&line(&headers, None));
    for (cells, health) in &rows {
        text.push_str(&line(cells, Some(*health)));
    }
    text
}

fn row(service: &ServiceStatus, i: &Instance) -> [String; 7] {
    let health = match (&i.last_exit, i.health) {
        (
            Some(why),
            Health::CrashLooping | Health::Failed | Health::Exited | Health::Restarting,
        ) => {
            format!("{} ({why})", i.health)
        }
        _ => i.health.to_string(),
    };
    let health = match &i.breaker {
        Some(breaker) => format!("{health}, breaker {breaker}"),
        None => health,
    };
    let name = if service.watching {
        format!("{} (watching)", service.name)
    } else {
        service.name.clone()
    };
    [
        name,
        i.id.clone(),
        i.pid.map_or("-".into(), |p| p.to_string()),
        if i.port == 0 {
            "-".into()
        } else {
            i.port.to_string()
        },
        health,
        i.restarts.to_string(),
        i.uptime_ms.map_or("-".into(), format_uptime),
    ]
}

/// "812K", "23.4M", "1.2G".
pub fn format_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1_048_576 => format!("{:.0}K", b / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1}M", b / 1_048_576.0),
        _ => format!("{:.1}G", b / 1_073_741_824.0),
    }
}

fn health_color(health: Health) -> &'static str {
    match health {
        Health::Healthy => "32",
        Health::Starting | Health::Waiting | Health::Restarting | Health::Stopping => "33",
        Health::Unhealthy | Health::CrashLooping | Health::Failed => "31",
        Health::Exited | Health::Stopped => "2",
    }
}

/// "45s", "3m12s", "2h5m", "3d4h".
pub fn format_uptime(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

/// No daemon answers. Plain "not running" (exit 0) when nothing of the stack runs; when a
/// crashed daemon left instances running, says so, lists them and what to do (exit 1: the
/// control plane is down while services still run).
fn not_running_report(paths: &StatePaths, json: bool, out: &mut impl Write) -> CliResult<ExitCode> {
    let recorded = state::read(&paths.state_file());
    let orphans: Vec<Orphan> = state::still_running(&recorded)
        .into_iter()
        .map(|r| Orphan {
            service: r.service,
            id: r.id,
            pid: r.pid,
            port: r.port,
        })
        .collect();
    let gone = (!orphans.is_empty()).then(|| DaemonGone {
        pid: recorded.daemon.as_ref().map(|d| d.pid),
        orphans,
    });
    if json {
        let doc = StatusJson {
            running: false,
            project: None,
            daemon_pid: None,
            admin_url: None,
            gateway_url: None,
            services: &[],
            daemon_gone: gone,
        };
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        let _ = writeln!(out, "{text}");
        return Ok(if doc.daemon_gone.is_some() {
            ExitCode::from(crate::error::EXIT_FAILURE)
        } else {
            ExitCode::SUCCESS
        });
    }
    let Some(gone) = gone else {
        let _ = writeln!(out, "{}", not_running(paths));
        return Ok(ExitCode::SUCCESS);
    };
    let who = gone
        .pid
        .map(|pid| format!(" (pid {pid})"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "The servio daemon{who} is gone: it was killed or crashed. These instances it started still run:"
    );
    let _ = writeln!(out, "  {:<24} {:>7}  {:>5}", "INSTANCE", "PID", "PORT");
    for orphan in &gone.orphans {
        let _ = writeln!(
            out,
            "  {:<24} {:>7}  {:>5}",
            orphan.id, orphan.pid, orphan.port
        );
    }
    let _ = writeln!(
        out,
        "Run `servio up` to adopt them (no restart), or `servio down` to stop them."
    );
    Ok(ExitCode::from(crate::error::EXIT_FAILURE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptimes_read_naturally() {
        for (ms, text) in [
            (999, "0s"),
            (45_000, "45s"),
            (192_000, "3m12s"),
            (7_500_000, "2h5m"),
            (273_600_000, "3d4h"),
        ] {
            assert_eq!(format_uptime(ms), text);
        }
    }
}
