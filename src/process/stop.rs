//! The one way servio stops a process group, for every caller (an instance actor, `down`
//! after a daemon crash): the stop signal to the whole group, up to `grace` for it to end,
//! then SIGKILL to whatever is left. Async, so no runtime thread ever blocks on it.

use std::future::Future;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::{group_alive, signal_group};

/// How a stop went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// The group was already gone.
    AlreadyGone,
    /// Everything ended within the grace period.
    Stopped,
    /// Something outlived the grace period and was killed.
    Killed,
}

/// How often a group whose leader has ended is checked for stragglers.
const GROUP_CHECK: Duration = Duration::from_millis(20);
/// How long SIGKILLed processes get to disappear before we stop waiting.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Sends `signal` to group `pgid`, waits for `leader_gone` (the leader's exit, however the
/// caller learns it) and for the rest of the group, at most `grace` in all, then SIGKILLs
/// whatever is left and waits (bounded) until it is gone.
pub async fn stop_group(
    pgid: u32,
    signal: Signal,
    grace: Duration,
    leader_gone: impl Future<Output = ()>,
) -> StopOutcome {
    if pgid == 0 || !matches!(signal_group(pgid, signal), Ok(true)) {
        return StopOutcome::AlreadyGone;
    }
    let deadline = tokio::time::Instant::now() + grace;
    let _ = tokio::time::timeout_at(deadline, leader_gone).await;
    while group_alive(pgid) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(GROUP_CHECK).await;
    }
    if !group_alive(pgid) {
        return StopOutcome::Stopped;
    }
    tracing::warn!(pgid, "did not stop within {grace:?}; sending SIGKILL");
    let _ = signal_group(pgid, Signal::SIGKILL);
    let deadline = tokio::time::Instant::now() + KILL_WAIT;
    while group_alive(pgid) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(GROUP_CHECK / 2).await;
    }
    StopOutcome::Killed
}
