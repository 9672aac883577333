//! The health state machine of one instance, as a pure function: [`transition`] says what
//! an [`Event`] does to a [`Health`], or that it changes nothing (a probe answering after the
//! process exited must not make it healthy again). Writers (instance actors, probers, the
//! controllers) send events; only [`super::Registry::apply`] changes an instance's health.

use crate::protocol::Health;

/// Something that happened to an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A process was spawned or adopted (`pid`, running since `at`), or an outside instance
    /// registered (no pid): probes begin.
    Started {
        pid: Option<u32>,
        port: u16,
        at: std::time::SystemTime,
    },
    /// A probe passed.
    ProbePassed,
    /// `unhealthy_threshold` consecutive probes failed (readiness).
    ProbesFailed,
    /// Taken out of traffic before it is stopped (rolling restart, scale down, stop).
    Draining,
    /// The process ended; the restart policy decided what comes next.
    Ended { next: AfterExit, why: String },
    /// It could not be started (port taken, spawn error) and will not be retried.
    StartFailed { why: String },
    /// Stopped on request; nothing runs.
    Stopped,
}

/// What the restart policy decided after an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterExit {
    /// Restart after the backoff.
    Restart,
    /// Restart after the backoff, but it keeps dying right after starting.
    CrashLoop,
    /// Too many restarts within the window: no more.
    GiveUp,
    /// The policy does not restart it.
    Done,
}

/// The health `event` moves `state` to, or `None` when the event changes nothing.
pub fn transition(state: Health, event: &Event) -> Option<Health> {
    use Health::*;
    let stopping = matches!(state, Stopping | Stopped);
    let next = match event {
        Event::Started { .. } if stopping => return None,
        Event::Started { .. } => Starting,
        Event::ProbePassed => match state {
            Starting | Unhealthy => Healthy,
            _ => return None,
        },
        Event::ProbesFailed => match state {
            Starting | Healthy => Unhealthy,
            _ => return None,
        },
        Event::Draining if stopping => return None,
        Event::Draining => Stopping,
        // An exit while stopping is the stop itself: `Stopped` follows.
        Event::Ended { .. } | Event::StartFailed { .. } if stopping => return None,
        Event::Ended { next, .. } => match next {
            AfterExit::Restart => Restarting,
            AfterExit::CrashLoop => CrashLooping,
            AfterExit::GiveUp => Failed,
            AfterExit::Done => Exited,
        },
        Event::StartFailed { .. } => Failed,
        Event::Stopped => Stopped,
    };
    (next != state || matches!(event, Event::Started { .. } | Event::Ended { .. })).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Health::*;

    fn ended(next: AfterExit) -> Event {
        Event::Ended {
            next,
            why: "exited with code 1".into(),
        }
    }

    #[test]
    fn every_event_from_every_state() {
        let started = Event::Started {
            pid: Some(7),
            port: 3000,
            at: std::time::SystemTime::now(),
        };
        let failed = Event::StartFailed {
            why: "port taken".into(),
        };
        #[rustfmt::skip]
        let table: &[(Health, Event, Option<Health>)] = &[
            (Waiting, started.clone(), Some(Starting)),
            (Restarting, started.clone(), Some(Starting)),
            (CrashLooping, started.clone(), Some(Starting)),
            // A respawn records its new pid even though the health stays `starting`.
            (Starting, started.clone(), Some(Starting)),
            (Stopping, started.clone(), None),
            (Stopped, started.clone(), None),
            (Starting, Event::ProbePassed, Some(Healthy)),
            (Unhealthy, Event::ProbePassed, Some(Healthy)),
            (Healthy, Event::ProbePassed, None),
            // A probe racing an exit or a stop never resurrects the instance.
            (Restarting, Event::ProbePassed, None),
            (Exited, Event::ProbePassed, None),
            (Stopping, Event::ProbePassed, None),
            (Stopped, Event::ProbePassed, None),
            (Healthy, Event::ProbesFailed, Some(Unhealthy)),
            (Starting, Event::ProbesFailed, Some(Unhealthy)),
            (Unhealthy, Event::ProbesFailed, None),
            (Stopping, Event::ProbesFailed, None),
            (Healthy, Event::Draining, Some(Stopping)),
            (Starting, Event::Draining, Some(Stopping)),
            (Waiting, Event::Draining, Some(Stopping)),
            (Stopping, Event::Draining, None),
            (Stopped, Event::Draining, None),
            (Healthy, ended(AfterExit::Restart), Some(Restarting)),
            (Starting, ended(AfterExit::CrashLoop), Some(CrashLooping)),
            (Unhealthy, ended(AfterExit::GiveUp), Some(Failed)),
            (Healthy, ended(AfterExit::Done), Some(Exited)),
            // The same decision again still records the new exit reason.
            (CrashLooping, ended(AfterExit::CrashLoop), Some(CrashLooping)),
            (Stopping, ended(AfterExit::Restart), None),
            (Stopped, ended(AfterExit::Done), None),
            (Waiting, failed.clone(), Some(Failed)),
            (Restarting, failed.clone(), Some(Failed)),
            (Stopping, failed.clone(), None),
            (Healthy, Event::Stopped, Some(Stopped)),
            (Stopping, Event::Stopped, Some(Stopped)),
            (Waiting, Event::Stopped, Some(Stopped)),
            (Stopped, Event::Stopped, None),
        ];
        for (state, event, expected) in table {
            assert_eq!(transition(*state, event), *expected, "{state} + {event:?}");
        }
    }
}
