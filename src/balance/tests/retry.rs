//! What may be retried, how long to wait, and how many retries the budget allows.

use std::time::Duration;

use http::{Method, StatusCode};

use crate::balance::{Outcome, RetryConfig, is_idempotent, may_retry};

#[test]
fn idempotent_methods() {
    let table = [
        (Method::GET, true),
        (Method::HEAD, true),
        (Method::OPTIONS, true),
        (Method::PUT, true),
        (Method::DELETE, true),
        (Method::POST, false),
        (Method::PATCH, false),
        (Method::CONNECT, false),
        (Method::TRACE, false),
        (Method::from_bytes(b"PURGE").expect("a method"), false),
    ];
    for (method, want) in table {
        assert_eq!(is_idempotent(&method), want, "{method}");
    }
}

#[test]
fn retry_decisions() {
    let status = |code: u16| Outcome::Status(StatusCode::from_u16(code).expect("a status"));
    // (idempotent, sent, outcome, may retry)
    let table = [
        (true, true, status(200), false),
        (true, true, status(404), false),
        (true, true, status(500), false),
        (true, true, status(502), true),
        (true, true, status(503), true),
        (true, true, status(504), true),
        (true, true, Outcome::Timeout, true),
        (true, true, Outcome::Broken, true),
        (true, false, Outcome::ConnectFailed, true),
        (false, true, status(503), false),
        (false, true, Outcome::Timeout, false),
        (false, true, Outcome::Broken, false),
        (false, false, Outcome::ConnectFailed, true),
        (false, false, status(200), false),
    ];
    for (idempotent, sent, outcome, want) in table {
        assert_eq!(
            may_retry(idempotent, sent, &outcome),
            want,
            "{idempotent} {sent} {outcome:?}"
        );
        assert_eq!(
            may_retry(idempotent, outcome.was_sent(), &outcome),
            want || (!idempotent && outcome == Outcome::ConnectFailed)
        );
    }
}

#[test]
fn backoff_grows_and_stays_within_bounds() {
    let config = RetryConfig::default();
    // (retry, shortest ms, longest ms)
    let table = [
        (0, 12.5, 25.0),
        (1, 12.5, 25.0),
        (2, 25.0, 50.0),
        (3, 50.0, 100.0),
        (4, 100.0, 200.0),
        (5, 125.0, 250.0),
        (30, 125.0, 250.0),
        (u32::MAX, 125.0, 250.0),
    ];
    for (retry, low, high) in table {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        assert!(
            (ms(config.backoff_with(retry, 0.0)) - low).abs() < 1e-6,
            "retry {retry}"
        );
        assert!(
            (ms(config.backoff_with(retry, 1.0)) - high).abs() < 1e-6,
            "retry {retry}"
        );
        for _ in 0..100 {
            let got = ms(config.backoff_with(retry, fastrand::f64()));
            assert!(
                got >= low - 1e-6 && got <= high + 1e-6,
                "retry {retry}: {got}"
            );
        }
    }
}

#[test]
fn budget_allowance() {
    let config = RetryConfig::default();
    let table = [
        (0, 3),
        (1, 3),
        (10, 3),
        (19, 3),
        (20, 4),
        (100, 20),
        (1024, 204),
    ];
    for (active, want) in table {
        let got = config.allowance(active);
        assert!(
            got.abs_diff(want) <= 1,
            "{active} active: {got}, want {want}"
        );
    }
    assert!(config.allowance(usize::MAX) > usize::MAX / 6);
    let odd = RetryConfig {
        budget_ratio: f64::NAN,
        min_concurrent_retries: 0,
        ..config
    };
    assert_eq!(odd.allowance(100), 0);
}

#[test]
fn what_follows_a_try() {
    use crate::balance::retry::{Next, TryEnd, next};
    let config = RetryConfig::default();
    let ms = Duration::from_millis;
    let status = |code: u16| Outcome::Status(StatusCode::from_u16(code).expect("a status"));
    let end = TryEnd {
        outcome: Outcome::Broken,
        idempotent: true,
        replayable: true,
        retries: 0,
        max_retries: 1,
        untried: true,
        time_left: ms(10_000),
    };
    let retry = |after| Next::Retry {
        after,
        budgeted: true,
    };
    // (the try's end, what follows; jitter unit 1.0: the first backoff is 25 ms)
    let table = [
        (end, retry(ms(25))),
        (
            TryEnd {
                outcome: status(503),
                ..end
            },
            retry(ms(25)),
        ),
        (
            TryEnd {
                outcome: Outcome::Timeout,
                ..end
            },
            retry(ms(25)),
        ),
        // Nothing sent: at once, and outside the budget, whatever the method.
        (
            TryEnd {
                outcome: Outcome::ConnectFailed,
                idempotent: false,
                ..end
            },
            Next::Retry {
                after: Duration::ZERO,
                budgeted: false,
            },
        ),
        // Answers the caller asked for are never retried.
        (
            TryEnd {
                outcome: status(200),
                ..end
            },
            Next::Stop,
        ),
        (
            TryEnd {
                outcome: status(500),
                ..end
            },
            Next::Stop,
        ),
        // A POST that reached its instance is not sent again.
        (
            TryEnd {
                idempotent: false,
                ..end
            },
            Next::Stop,
        ),
        (
            TryEnd {
                outcome: status(503),
                idempotent: false,
                ..end
            },
            Next::Stop,
        ),
        // A body that was streamed away cannot be sent again.
        (
            TryEnd {
                replayable: false,
                ..end
            },
            Next::Stop,
        ),
        // Out of retries, of other instances, or of time.
        (TryEnd { retries: 1, ..end }, Next::Stop),
        (
            TryEnd {
                max_retries: 0,
                outcome: Outcome::ConnectFailed,
                ..end
            },
            Next::Stop,
        ),
        (
            TryEnd {
                untried: false,
                ..end
            },
            Next::Stop,
        ),
        (
            TryEnd {
                time_left: ms(25),
                ..end
            },
            Next::Stop,
        ),
        (
            TryEnd {
                time_left: ms(26),
                ..end
            },
            retry(ms(25)),
        ),
        (
            TryEnd {
                outcome: Outcome::ConnectFailed,
                time_left: Duration::ZERO,
                ..end
            },
            Next::Stop,
        ),
        // The second retry waits twice as long.
        (
            TryEnd {
                retries: 1,
                max_retries: 3,
                ..end
            },
            retry(ms(50)),
        ),
    ];
    for (end, want) in table {
        assert_eq!(next(&end, &config, 1.0), want, "{end:?}");
    }
}
