//! Breaker transitions, penalties and jitter, as tables of steps over an explicit clock.

use std::time::{Duration, Instant};

use super::at;
use crate::balance::breaker::{Breaker, BreakerConfig, BreakerState, Ticket, TicketKind, Verdict};

#[derive(Debug, Clone, Copy)]
enum Act {
    /// A request is let through and ends at once: failed or not.
    Req(bool),
    /// A request is let through and finds nothing listening (connection refused).
    Refused,
    /// A request is refused.
    Denied,
    /// A request is let through with this kind of ticket and kept in flight.
    Take(TicketKind),
    /// The kept request ends: failed or not.
    Finish(bool),
    /// The kept request goes away without an outcome.
    Release,
    /// A panic-mode request ends: failed or not.
    Panic(bool),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Closed(u32),
    /// Open until this many ms after the start.
    Open(u64),
    HalfOpen,
}

use Act::*;
use Expect::*;

/// (ms since start, action, state after it)
type Step = (u64, Act, Expect);

fn run(name: &str, steps: &[Step]) {
    let config = BreakerConfig {
        jitter: 0.0,
        ..BreakerConfig::default()
    };
    let start = Instant::now();
    let mut breaker = Breaker::new();
    let mut held: Option<Ticket> = None;
    for (number, &(ms, act, expect)) in steps.iter().enumerate() {
        let now = at(start, ms);
        match act {
            Req(failed) => {
                let ticket = breaker
                    .allow(now)
                    .unwrap_or_else(|| panic!("{name} step {number}: refused"));
                breaker.record(ticket, failed, now, &config, 0.0);
            }
            Refused => {
                let ticket = breaker
                    .allow(now)
                    .unwrap_or_else(|| panic!("{name} step {number}: refused"));
                breaker.record(ticket, Verdict::Unreachable, now, &config, 0.0);
            }
            Denied => assert_eq!(
                breaker.allow(now),
                None,
                "{name} step {number}: let through"
            ),
            Take(kind) => {
                let ticket = breaker
                    .allow(now)
                    .unwrap_or_else(|| panic!("{name} step {number}: refused"));
                assert_eq!(ticket.kind, kind, "{name} step {number}");
                held = Some(ticket);
            }
            Finish(failed) => {
                let ticket = held.take().expect("a held ticket");
                breaker.record(ticket, failed, now, &config, 0.0);
            }
            Release => breaker.release(held.take().expect("a held ticket")),
            Panic(failed) => {
                let ticket = breaker.force();
                breaker.record(ticket, failed, now, &config, 0.0);
            }
        }
        let want = match expect {
            Closed(_) => BreakerState::Closed,
            Open(until) => BreakerState::Open {
                until: at(start, until),
            },
            HalfOpen => BreakerState::HalfOpen,
        };
        assert_eq!(breaker.state(now), want, "{name} step {number}");
        if let Closed(failures) = expect {
            assert_eq!(
                breaker.consecutive_failures(),
                failures,
                "{name} step {number}"
            );
        }
    }
}

const FIVE_FAILURES: [Step; 5] = [
    (0, Req(true), Closed(1)),
    (0, Req(true), Closed(2)),
    (0, Req(true), Closed(3)),
    (0, Req(true), Closed(4)),
    (0, Req(true), Open(1000)),
];

#[test]
fn transitions() {
    let cases: Vec<(&str, Vec<Step>)> = vec![
        (
            "a success resets the count",
            vec![
                (0, Req(true), Closed(1)),
                (0, Req(true), Closed(2)),
                (0, Req(false), Closed(0)),
                (0, Req(true), Closed(1)),
            ],
        ),
        (
            "opens after five consecutive failures",
            FIVE_FAILURES.to_vec(),
        ),
        (
            "an instance nothing listens on is ejected at once",
            vec![
                (0, Req(false), Closed(0)),
                (0, Refused, Open(1000)),
                (999, Denied, Open(1000)),
                (1000, Take(TicketKind::Probe), HalfOpen),
                (1001, Finish(false), Closed(0)),
            ],
        ),
        (
            "a refusal after other failures ejects too",
            vec![
                (0, Req(true), Closed(1)),
                (0, Req(true), Closed(2)),
                (0, Refused, Open(1000)),
            ],
        ),
        (
            "open refuses until the penalty ends",
            [
                &FIVE_FAILURES[..],
                &[
                    (1, Denied, Open(1000)),
                    (999, Denied, Open(1000)),
                    (1000, Take(TicketKind::Probe), HalfOpen),
                ],
            ]
            .concat(),
        ),
        (
            "half-open lets exactly one probe through; its success closes",
            [
                &FIVE_FAILURES[..],
                &[
                    (1000, Take(TicketKind::Probe), HalfOpen),
                    (1001, Denied, HalfOpen),
                    (1500, Denied, HalfOpen),
                    (1600, Finish(false), Closed(0)),
                    (1601, Req(false), Closed(0)),
                ],
            ]
            .concat(),
        ),
        (
            "probe failure reopens with a doubled penalty",
            [
                &FIVE_FAILURES[..],
                &[
                    (1000, Take(TicketKind::Probe), HalfOpen),
                    (1000, Finish(true), Open(3000)),
                    (2999, Denied, Open(3000)),
                    (3000, Take(TicketKind::Probe), HalfOpen),
                    (3000, Finish(true), Open(7000)),
                    (7000, Req(true), Open(15000)),
                ],
            ]
            .concat(),
        ),
        (
            "a released probe frees the slot",
            [
                &FIVE_FAILURES[..],
                &[
                    (1000, Take(TicketKind::Probe), HalfOpen),
                    (1001, Release, HalfOpen),
                    (1002, Take(TicketKind::Probe), HalfOpen),
                    (1003, Finish(false), Closed(0)),
                ],
            ]
            .concat(),
        ),
        (
            "closing resets the penalty to the base",
            [
                &FIVE_FAILURES[..],
                &[(1000, Req(true), Open(3000)), (3000, Req(false), Closed(0))],
                &FIVE_FAILURES.map(|(ms, a, e)| {
                    (
                        ms + 4000,
                        a,
                        match e {
                            Open(u) => Open(u + 4000),
                            e => e,
                        },
                    )
                })[..],
            ]
            .concat(),
        ),
        (
            "outcomes of requests started before an ejection are ignored",
            [
                &[(0, Take(TicketKind::Normal), Closed(0))],
                &FIVE_FAILURES[..],
                &[(10, Finish(false), Open(1000))],
            ]
            .concat(),
        ),
        (
            "a stale failure does not count against the closed breaker that followed",
            [
                &[(0, Take(TicketKind::Normal), Closed(0))],
                &FIVE_FAILURES[..],
                &[
                    (1000, Req(false), Closed(0)),
                    (1001, Finish(true), Closed(0)),
                ],
            ]
            .concat(),
        ),
        (
            "a panic-mode success closes an open breaker",
            [
                &FIVE_FAILURES[..],
                &[(10, Panic(true), Open(1000)), (20, Panic(false), Closed(0))],
            ]
            .concat(),
        ),
        (
            "a panic-mode failure does not extend the penalty",
            [
                &FIVE_FAILURES[..],
                &[
                    (500, Panic(true), Open(1000)),
                    (1000, Take(TicketKind::Probe), HalfOpen),
                ],
            ]
            .concat(),
        ),
    ];
    for (name, steps) in cases {
        run(name, &steps);
    }
}

#[test]
fn penalty_doubles_up_to_the_cap() {
    let config = BreakerConfig::default();
    let table = [
        (0, 1),
        (1, 1),
        (2, 2),
        (3, 4),
        (4, 8),
        (5, 16),
        (6, 32),
        (7, 60),
        (8, 60),
        (40, 60),
        (u32::MAX, 60),
    ];
    for (streak, secs) in table {
        assert_eq!(
            config.nominal_penalty(streak),
            Duration::from_secs(secs),
            "streak {streak}"
        );
    }
}

#[test]
fn jitter_stays_within_bounds() {
    let config = BreakerConfig::default();
    let table = [
        (0.0, 1.0),
        (0.5, 0.9),
        (0.999_999, 0.8),
        (f64::NAN, 1.0),
        (-3.0, 1.0),
        (7.0, 0.8),
    ];
    for (unit, fraction) in table {
        let got = config.penalty(3, unit).as_secs_f64();
        assert!((got - 4.0 * fraction).abs() < 1e-3, "unit {unit}: {got}");
    }
    let mut rng = fastrand::Rng::with_seed(7);
    for streak in 1..12 {
        let nominal = config.nominal_penalty(streak);
        for _ in 0..200 {
            let got = config.penalty(streak, rng.f64());
            assert!(
                got <= nominal && got >= nominal.mul_f64(0.8),
                "streak {streak}: {got:?}"
            );
            assert!(got <= config.max_ejection);
        }
    }
}

#[test]
fn odd_configs_do_not_panic() {
    let now = Instant::now();
    let configs = [
        BreakerConfig {
            failure_threshold: 0,
            ..BreakerConfig::default()
        },
        BreakerConfig {
            max_ejection: Duration::MAX,
            base_ejection: Duration::MAX,
            jitter: f64::INFINITY,
            failure_threshold: 1,
        },
        BreakerConfig {
            base_ejection: Duration::ZERO,
            jitter: -1.0,
            ..BreakerConfig::default()
        },
    ];
    for config in configs {
        let mut breaker = Breaker::new();
        for _ in 0..100 {
            if let Some(ticket) = breaker.allow(now) {
                breaker.record(ticket, true, now, &config, 0.5);
            }
        }
        assert!(breaker.ejections() >= 1, "{config:?}");
    }
}
