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
            let got = ms(config.backoff(retry));
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
