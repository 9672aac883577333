//! A service's `health_check`, `restart` and `stop` tables → resolved policies, with the
//! documented defaults for everything left out.

use std::time::Duration;

use nix::sys::signal::Signal;

use super::diagnostics::Diagnostics;
use super::raw::{RawHealth, RawProbeKind, RawRestart, RawRestartMode, RawStop};
use super::resolve::duration;
use super::{HealthCheck, ProbeKind, RestartMode, RestartPolicy, StopPolicy};

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            kind: ProbeKind::Http,
            path: "/health".to_string(),
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            start_period: Duration::from_secs(30),
            unhealthy_threshold: 3,
            liveness_threshold: 10,
        }
    }
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            mode: RestartMode::OnFailure,
            max_restarts: 5,
            within: Duration::from_secs(60),
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl Default for StopPolicy {
    fn default() -> Self {
        StopPolicy {
            signal: Signal::SIGTERM,
            timeout: Duration::from_secs(10),
        }
    }
}

pub(super) fn health(
    raw: Option<&RawHealth>,
    service: &str,
    diag: &mut Diagnostics,
) -> HealthCheck {
    let mut check = HealthCheck::default();
    let Some(raw) = raw else { return check };
    let key = |leaf: &str| format!("{service}.health_check.{leaf}");
    if let Some(kind) = &raw.kind {
        check.kind = match kind.get_ref() {
            RawProbeKind::Http => ProbeKind::Http,
            RawProbeKind::Tcp => ProbeKind::Tcp,
        };
    }
    if let Some(path) = &raw.path {
        if !path.get_ref().starts_with('/') {
            let message = format!(
                "health check path `{}` does not start with '/'",
                path.get_ref()
            );
            diag.at(
                &path.span(),
                &key("path"),
                message,
                "write a path, like \"/health\"",
            );
        }
        check.path = path.get_ref().clone();
    }
    for (leaf, value, slot) in [
        ("interval", &raw.interval, &mut check.interval),
        ("timeout", &raw.timeout, &mut check.timeout),
        ("start_period", &raw.start_period, &mut check.start_period),
    ] {
        *slot = duration(diag, value.as_ref(), &key(leaf), *slot);
        if leaf != "start_period" && slot.is_zero() {
            if let Some(value) = value {
                let message = format!("`{leaf}` must be longer than 0");
                diag.at(
                    &value.span(),
                    &key(leaf),
                    message,
                    "write a duration like \"1s\"",
                );
            }
        }
    }
    if let Some(threshold) = &raw.unhealthy_threshold {
        check.unhealthy_threshold = *threshold.get_ref();
        if check.unhealthy_threshold == 0 {
            let message = "unhealthy_threshold must be at least 1".to_string();
            let fix = "write the number of failed probes that make an instance unhealthy, like 3";
            diag.at(&threshold.span(), &key("unhealthy_threshold"), message, fix);
        }
    }
    if let Some(threshold) = &raw.liveness_threshold {
        check.liveness_threshold = *threshold.get_ref();
    }
    check
}

pub(super) fn restart(
    raw: Option<&RawRestart>,
    service: &str,
    diag: &mut Diagnostics,
) -> RestartPolicy {
    let mut policy = RestartPolicy::default();
    let Some(raw) = raw else { return policy };
    let key = |leaf: &str| format!("{service}.restart.{leaf}");
    if let Some(mode) = &raw.policy {
        policy.mode = match mode.get_ref() {
            RawRestartMode::Always => RestartMode::Always,
            RawRestartMode::OnFailure => RestartMode::OnFailure,
            RawRestartMode::Never => RestartMode::Never,
        };
    }
    if let Some(max) = &raw.max_restarts {
        policy.max_restarts = *max.get_ref();
    }
    policy.within = duration(diag, raw.within.as_ref(), &key("within"), policy.within);
    policy.backoff = duration(diag, raw.backoff.as_ref(), &key("backoff"), policy.backoff);
    let max_backoff = key("max_backoff");
    policy.max_backoff = duration(
        diag,
        raw.max_backoff.as_ref(),
        &max_backoff,
        policy.max_backoff,
    );
    if policy.max_backoff < policy.backoff {
        let span = raw
            .max_backoff
            .as_ref()
            .or(raw.backoff.as_ref())
            .map(|v| v.span());
        let message = format!(
            "max_backoff ({}) is shorter than backoff ({})",
            humantime::format_duration(policy.max_backoff),
            humantime::format_duration(policy.backoff)
        );
        let fix = "make max_backoff at least as long as backoff";
        diag.at_opt(span.as_ref(), &max_backoff, message, fix);
    }
    policy
}

pub(super) fn stop(raw: Option<&RawStop>, service: &str, diag: &mut Diagnostics) -> StopPolicy {
    let mut policy = StopPolicy::default();
    let Some(raw) = raw else { return policy };
    if let Some(signal) = &raw.signal {
        match crate::process::parse_signal(signal.get_ref().trim()) {
            Some(parsed) => policy.signal = parsed,
            None => {
                let message = format!("unknown signal `{}`", signal.get_ref());
                let fix = "write a signal name, like \"SIGTERM\", \"SIGINT\" or \"SIGQUIT\"";
                diag.at(
                    &signal.span(),
                    &format!("{service}.stop.signal"),
                    message,
                    fix,
                );
            }
        }
    }
    let key = format!("{service}.stop.timeout");
    policy.timeout = duration(diag, raw.timeout.as_ref(), &key, policy.timeout);
    policy
}
