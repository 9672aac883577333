//! `servio status --watch`: the status table kept current. Each round is one blocking
//! registry watch on the daemon (it answers at once on a change, or after a second so CPU,
//! uptime and rates move): no busy polling. On a TTY the screen is redrawn in place; without
//! one, or with NO_COLOR, a timestamped table is printed whenever the stack changed.
//! CPU % and route rates are differences between two rounds (pure, below; the web
//! dashboard computes its figures with the same functions).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use super::connection::DaemonConnection;
use super::status::table;
use crate::error::CliResult;
use crate::protocol::{Request, Response, RouteStatus, StackStatus};

/// How long one round waits for a change before redrawing anyway.
const TICK: Duration = Duration::from_secs(1);

/// One round's readings, kept to compute the next round's rates.
struct Sample {
    at: Instant,
    status: StackStatus,
}

pub fn run(mut connection: DaemonConnection) -> CliResult<ExitCode> {
    let redraw = crate::term::stdout_color();
    let mut previous: Option<Sample> = None;
    let mut after = 0;
    loop {
        let request = Request::Watch {
            after,
            wait_ms: TICK.as_millis() as u64,
        };
        let status = match connection.request(request, Some(TICK + Duration::from_secs(10))) {
            Ok(Response::Status(status)) => status,
            _ => {
                println!("the servio daemon stopped");
                return Ok(ExitCode::SUCCESS);
            }
        };
        let changed = status.index != after;
        after = status.index;
        let now = Sample {
            at: Instant::now(),
            status,
        };
        if redraw || changed {
            let screen = render(previous.as_ref(), &now, redraw);
            let mut out = std::io::stdout().lock();
            if redraw {
                // Home, clear: the same screen redrawn.
                let _ = write!(out, "\x1b[H\x1b[2J");
            }
            if out
                .write_all(screen.as_bytes())
                .and_then(|_| out.flush())
                .is_err()
            {
                return Ok(ExitCode::SUCCESS);
            }
        }
        previous = Some(now);
    }
}

fn render(previous: Option<&Sample>, now: &Sample, color: bool) -> String {
    let elapsed = previous.map(|p| now.at.duration_since(p.at));
    let cpu = match (previous, elapsed) {
        (Some(p), Some(e)) => cpu_percent(&p.status, &now.status, e),
        _ => BTreeMap::new(),
    };
    let clock = humantime::format_rfc3339_seconds(SystemTime::now());
    let mut text = format!("{} · {clock}\n", now.status.project);
    text.push_str(&table(&now.status.services, color, Some(&cpu)));
    if !now.status.routes.is_empty() {
        let rates = match (previous, elapsed) {
            (Some(p), Some(e)) => route_rates(&p.status.routes, &now.status.routes, e),
            _ => Vec::new(),
        };
        text.push_str("\nROUTE  SERVICE  REQ/S  5XX/S\n");
        for route in &now.status.routes {
            let (rate, errors) = rates
                .iter()
                .find(|(prefix, _, _)| *prefix == route.prefix)
                .map_or(("-".to_string(), "-".to_string()), |(_, r, e)| {
                    (format!("{r:.1}"), format!("{e:.1}"))
                });
            text.push_str(&format!(
                "{}  {}  {rate}  {errors}\n",
                route.prefix, route.service
            ));
        }
    }
    text.push('\n');
    text
}

/// CPU % of each instance between two readings (100 % is one core), by instance id; only
/// instances whose process is the same in both (a restart starts over).
pub fn cpu_percent(
    before: &StackStatus,
    after: &StackStatus,
    elapsed: Duration,
) -> BTreeMap<String, f64> {
    let wall_ms = elapsed.as_secs_f64() * 1000.0;
    let earlier: BTreeMap<(&str, Option<u32>), u64> = before
        .services
        .iter()
        .flat_map(|s| &s.instances)
        .filter_map(|i| Some(((i.id.as_str(), i.pid), i.cpu_ms?)))
        .collect();
    after
        .services
        .iter()
        .flat_map(|s| &s.instances)
        .filter(|_| wall_ms > 0.0)
        .filter_map(|i| {
            let then = earlier.get(&(i.id.as_str(), i.pid))?;
            let used = i.cpu_ms?.saturating_sub(*then) as f64;
            Some((i.id.clone(), used * 100.0 / wall_ms))
        })
        .collect()
}

/// Requests and 5xx answers per second on each route between two readings:
/// (prefix, req/s, 5xx/s).
pub fn route_rates(
    before: &[RouteStatus],
    after: &[RouteStatus],
    elapsed: Duration,
) -> Vec<(String, f64, f64)> {
    let seconds = elapsed.as_secs_f64();
    if seconds <= 0.0 {
        return Vec::new();
    }
    after
        .iter()
        .filter_map(|route| {
            let then = before.iter().find(|r| r.prefix == route.prefix)?;
            let requests = route.requests.saturating_sub(then.requests) as f64 / seconds;
            let errors = route.errors.saturating_sub(then.errors) as f64 / seconds;
            Some((route.prefix.clone(), requests, errors))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Health, Instance, ServiceStatus};

    fn stack(instances: &[(&str, u32, u64)], routes: &[(&str, u64, u64)]) -> StackStatus {
        StackStatus {
            index: 1,
            project: "p".into(),
            daemon_pid: 1,
            admin_url: String::new(),
            gateway_url: None,
            services: vec![ServiceStatus {
                name: "web".into(),
                version: "1".into(),
                watching: false,
                depends_on: Vec::new(),
                instances: instances
                    .iter()
                    .map(|(id, pid, cpu)| Instance {
                        pid: Some(*pid),
                        cpu_ms: Some(*cpu),
                        rss_bytes: Some(1 << 20),
                        ..Instance::for_test(id, Health::Healthy)
                    })
                    .collect(),
            }],
            routes: routes
                .iter()
                .map(|(prefix, requests, errors)| RouteStatus {
                    prefix: prefix.to_string(),
                    service: "web".into(),
                    requests: *requests,
                    errors: *errors,
                    latency_buckets: Vec::new(),
                })
                .collect(),
            gateway: None,
        }
    }

    #[test]
    fn cpu_is_the_share_of_wall_time_per_process() {
        let before = stack(&[("web-1", 10, 1_000), ("web-2", 11, 50)], &[]);
        let after = stack(&[("web-1", 10, 1_500), ("web-2", 12, 60)], &[]);
        let cpu = cpu_percent(&before, &after, Duration::from_secs(1));
        assert_eq!(cpu.get("web-1"), Some(&50.0));
        // web-2 is a new process: no figure until it has two readings.
        assert_eq!(cpu.get("web-2"), None);
        assert!(cpu_percent(&before, &after, Duration::ZERO).is_empty());
    }

    #[test]
    fn route_rates_are_differences_over_time() {
        let before = stack(&[], &[("/a", 100, 1), ("/b", 5, 0)]);
        let after = stack(&[], &[("/a", 300, 5), ("/c", 9, 0)]);
        let rates = route_rates(&before.routes, &after.routes, Duration::from_secs(2));
        assert_eq!(rates, [("/a".to_string(), 100.0, 2.0)]);
    }
}
