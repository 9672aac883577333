//! Balancer state as Prometheus text: per service, healthy instances (from the registry's
//! view), in flight, cap rejections, retries and panic picks; per instance, ejections and the
//! breaker's state. Also the breaker as `servio status` writes it.

use std::fmt::Write;
use std::time::Instant;

use super::help;
use crate::balance::{BreakerState, ServiceStats};
use crate::registry::HealthyView;

/// A per-service series: name, type, help, value.
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ServiceStats) -> u64,
);

/// Per service: healthy instances, in flight, cap rejections, retries; per instance: the
/// breaker's state and ejections.
pub(super) fn render_balancing(out: &mut String, balancing: &[ServiceStats], view: &HealthyView) {
    let per_service: [Series; 5] = [
        (
            "servio_gateway_in_flight",
            "gauge",
            "Requests in flight per service.",
            |s| s.active as u64,
        ),
        (
            "servio_gateway_rejected_total",
            "counter",
            "Refused past max_concurrent (503).",
            |s| s.rejected,
        ),
        (
            "servio_gateway_retries_total",
            "counter",
            "Retries granted by the budget.",
            |s| s.retries,
        ),
        (
            "servio_gateway_retries_denied_total",
            "counter",
            "Retries the budget refused.",
            |s| s.retries_denied,
        ),
        (
            "servio_gateway_panic_picks_total",
            "counter",
            "Picks made with every instance ejected.",
            |s| s.panic_picks,
        ),
    ];
    help(
        out,
        "servio_gateway_healthy_instances",
        "gauge",
        "Instances receiving traffic.",
    );
    for stats in balancing {
        let healthy = view.get(&stats.service).map_or(0, |e| e.len());
        let _ = writeln!(
            out,
            "servio_gateway_healthy_instances{{service=\"{}\"}} {healthy}",
            stats.service
        );
    }
    for (name, kind, text, value) in per_service {
        help(out, name, kind, text);
        for stats in balancing {
            let _ = writeln!(
                out,
                "{name}{{service=\"{}\"}} {}",
                stats.service,
                value(stats)
            );
        }
    }
    help(
        out,
        "servio_gateway_ejections_total",
        "counter",
        "Times an instance's breaker opened.",
    );
    for stats in balancing {
        for i in &stats.instances {
            let id = escape(&i.id);
            let _ = writeln!(
                out,
                "servio_gateway_ejections_total{{service=\"{}\",instance=\"{id}\"}} {}",
                stats.service, i.ejections
            );
        }
    }
    help(
        out,
        "servio_gateway_breaker_state",
        "gauge",
        "1 for the breaker's current state.",
    );
    for stats in balancing {
        for i in &stats.instances {
            let id = escape(&i.id);
            for state in ["closed", "open", "half-open"] {
                let on = u8::from(i.state.as_str() == state);
                let _ = writeln!(
                    out,
                    "servio_gateway_breaker_state{{service=\"{}\",instance=\"{id}\",state=\"{state}\"}} {on}",
                    stats.service
                );
            }
        }
    }
}

/// A label value with `\`, `"` and newlines escaped (instance ids come from the API).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The breaker as `servio status` shows it: `None` when closed.
pub fn breaker_text(state: BreakerState, now: Instant) -> Option<String> {
    match state {
        BreakerState::Closed => None,
        BreakerState::HalfOpen => Some("half-open".to_string()),
        BreakerState::Open { until } => {
            let left = until.saturating_duration_since(now);
            Some(format!(
                "open {}s",
                left.as_secs() + u64::from(left.subsec_nanos() > 0)
            ))
        }
    }
}
