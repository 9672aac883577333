//! The restart policy as a pure function: given how an instance ended and its recent
//! history, decide whether to restart, after what backoff, or to give up. The first failure
//! in a row restarts at once (a process that served for a while and was killed is back
//! without waiting); the backoff applies to repeated failures only, doubling from
//! `backoff` up to `max_backoff`, as Kubernetes and pm2 do.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::manifest::{RestartMode, RestartPolicy};

/// An instance that stays up this long is considered stable: its backoff starts over.
pub const STABLE_AFTER: Duration = Duration::from_secs(10);

/// Consecutive failures from which an instance is shown as crash-looping.
pub const CRASH_LOOP_AFTER: u32 = 2;

/// What the supervisor remembers between runs of one instance.
#[derive(Debug, Default, Clone)]
pub struct History {
    /// Failed runs in a row that did not stay up for [`STABLE_AFTER`].
    pub consecutive_failures: u32,
    /// When each restart within the policy window happened.
    restarts: VecDeque<Instant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start again after `delay`.
    Restart {
        delay: Duration,
        crash_looping: bool,
    },
    /// Too many restarts within the window: stop trying.
    GiveUp,
    /// The policy does not restart this exit.
    Done,
}

/// Decides what follows an exit. `success` is a clean exit (code 0) that was not asked for
/// by a liveness failure; `ran_for` is how long the process ran.
pub fn decide(
    policy: &RestartPolicy,
    success: bool,
    ran_for: Duration,
    history: &mut History,
    now: Instant,
) -> Decision {
    match policy.mode {
        RestartMode::Never => return Decision::Done,
        RestartMode::OnFailure if success => return Decision::Done,
        _ => {}
    }
    if ran_for >= STABLE_AFTER {
        history.consecutive_failures = 0;
    }
    while history
        .restarts
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) > policy.within)
    {
        history.restarts.pop_front();
    }
    if history.restarts.len() as u32 >= policy.max_restarts {
        return Decision::GiveUp;
    }
    history.consecutive_failures += 1;
    history.restarts.push_back(now);
    let delay = match history.consecutive_failures {
        0 | 1 => Duration::ZERO,
        repeated => policy
            .backoff
            .saturating_mul(1u32 << (repeated - 2).min(20))
            .min(policy.max_backoff),
    };
    Decision::Restart {
        delay,
        crash_looping: history.consecutive_failures >= CRASH_LOOP_AFTER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: RestartMode, max_restarts: u32) -> RestartPolicy {
        RestartPolicy {
            mode,
            max_restarts,
            within: Duration::from_secs(60),
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        }
    }

    #[test]
    fn modes_decide_whether_to_restart() {
        let quick = Duration::from_millis(5);
        let now = Instant::now();
        let cases = [
            (RestartMode::Never, false, Decision::Done),
            (RestartMode::Never, true, Decision::Done),
            (RestartMode::OnFailure, true, Decision::Done),
            (
                RestartMode::OnFailure,
                false,
                Decision::Restart {
                    delay: Duration::ZERO,
                    crash_looping: false,
                },
            ),
            (
                RestartMode::Always,
                true,
                Decision::Restart {
                    delay: Duration::ZERO,
                    crash_looping: false,
                },
            ),
        ];
        for (mode, success, expected) in cases {
            let mut history = History::default();
            assert_eq!(
                decide(&policy(mode, 5), success, quick, &mut history, now),
                expected,
                "{mode:?} success={success}"
            );
        }
    }

    #[test]
    fn the_first_failure_restarts_at_once_then_backoff_doubles_caps_and_gives_up() {
        let p = policy(RestartMode::Always, 6);
        let mut history = History::default();
        let now = Instant::now();
        let quick = Duration::from_millis(5);
        let delays: Vec<Decision> = (0..7)
            .map(|i| {
                decide(
                    &p,
                    false,
                    quick,
                    &mut history,
                    now + Duration::from_millis(i),
                )
            })
            .collect();
        let ms = Duration::from_millis;
        assert_eq!(
            delays,
            vec![
                Decision::Restart {
                    delay: Duration::ZERO,
                    crash_looping: false
                },
                Decision::Restart {
                    delay: ms(100),
                    crash_looping: true
                },
                Decision::Restart {
                    delay: ms(200),
                    crash_looping: true
                },
                Decision::Restart {
                    delay: ms(400),
                    crash_looping: true
                },
                Decision::Restart {
                    delay: ms(500),
                    crash_looping: true
                },
                Decision::Restart {
                    delay: ms(500),
                    crash_looping: true
                },
                Decision::GiveUp,
            ]
        );
    }

    #[test]
    fn a_stable_run_resets_backoff_and_old_restarts_leave_the_window() {
        let p = policy(RestartMode::Always, 2);
        let mut history = History::default();
        let t0 = Instant::now();
        let quick = Duration::from_millis(5);
        decide(&p, false, quick, &mut history, t0);
        decide(&p, false, quick, &mut history, t0);
        // Two restarts within the window: a third now gives up...
        assert_eq!(decide(&p, false, quick, &mut history, t0), Decision::GiveUp);
        // ...but after the window, after a stable run, it restarts at once, and a quick
        // failure after that waits the first backoff.
        let later = t0 + Duration::from_secs(61);
        assert_eq!(
            decide(&p, false, STABLE_AFTER, &mut history, later),
            Decision::Restart {
                delay: Duration::ZERO,
                crash_looping: false
            }
        );
        assert_eq!(
            decide(&p, false, quick, &mut history, later),
            Decision::Restart {
                delay: Duration::from_millis(100),
                crash_looping: true
            }
        );
    }
}
