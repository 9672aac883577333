//! Choosing among instances: the pure strategies, then picks through a service's state with
//! exclusion, open breakers, half-open probes and panic mode.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use super::at;
use crate::balance::pick::{power_of_two, round_robin};
use crate::balance::{BalanceConfig, BreakerConfig, Outcome, PickError, ServiceBalancer, Strategy};

fn service(strategy: Strategy, failure_threshold: u32) -> Arc<ServiceBalancer> {
    let breaker = BreakerConfig {
        failure_threshold,
        jitter: 0.0,
        ..BreakerConfig::default()
    };
    Arc::new(ServiceBalancer::new(
        "menu-service",
        BalanceConfig {
            strategy,
            breaker,
            ..BalanceConfig::default()
        },
    ))
}

#[test]
fn power_of_two_prefers_the_lower_load() {
    // (loads, positions that may win, positions that never win)
    let table: [(&[usize], &[usize], &[usize]); 5] = [
        (&[], &[], &[]),
        (&[7], &[0], &[]),
        (&[5, 0], &[1], &[0]),
        (&[0, 9, 9], &[0, 1, 2], &[]),
        (&[3, 1, 2, 9], &[0, 1, 2], &[3]),
    ];
    let mut rng = fastrand::Rng::with_seed(42);
    for (loads, may, never) in table {
        let mut seen = vec![0usize; loads.len()];
        for _ in 0..2000 {
            match power_of_two(loads, &mut rng) {
                Some(position) => seen[position] += 1,
                None => assert!(loads.is_empty()),
            }
        }
        for &position in never {
            assert_eq!(seen[position], 0, "{loads:?}: position {position} won");
        }
        for &position in may {
            assert!(
                seen[position] > 0,
                "{loads:?}: position {position} never won"
            );
        }
    }
    // The least loaded of three wins whenever it is drawn: two times in three.
    let mut wins = 0;
    for _ in 0..3000 {
        wins += usize::from(power_of_two(&[0, 9, 9], &mut rng) == Some(0));
    }
    assert!((1800..2200).contains(&wins), "{wins}");
}

#[test]
fn round_robin_cycles() {
    let counter = AtomicUsize::new(0);
    let picks: Vec<Option<usize>> = (0..7).map(|_| round_robin(3, &counter)).collect();
    assert_eq!(picks, [0, 1, 2, 0, 1, 2, 0].map(Some));
    assert_eq!(round_robin(0, &counter), None);
    let service = service(Strategy::RoundRobin, 5);
    let permit = service.admit().expect("admitted");
    let ids: Vec<String> = (0..6)
        .map(|_| {
            permit
                .pick(&["a", "b", "c"], &[])
                .expect("picked")
                .id()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, ["a", "b", "c", "a", "b", "c"]);
}

#[test]
fn picks_follow_in_flight_requests() {
    let service = service(Strategy::PowerOfTwoChoices, 5);
    let permit = service.admit().expect("admitted");
    let held: Vec<_> = (0..3)
        .map(|_| permit.pick(&["a"], &[]).expect("picked"))
        .collect();
    for _ in 0..50 {
        let attempt = permit.pick(&["a", "b"], &[]).expect("picked");
        assert_eq!((attempt.id(), attempt.index()), ("b", 1));
    }
    drop(held);
    let mut seen_a = false;
    for _ in 0..200 {
        seen_a |= permit.pick(&["a", "b"], &[]).expect("picked").id() == "a";
    }
    assert!(seen_a, "a is back in rotation once its requests finished");
}

#[test]
fn exclusion() {
    let service = service(Strategy::PowerOfTwoChoices, 5);
    let permit = service.admit().expect("admitted");
    // (candidates, excluded, ids that may be picked or the error)
    type Row<'a> = (
        &'a [&'a str],
        &'a [&'a str],
        Result<&'a [&'a str], PickError>,
    );
    let table: [Row; 5] = [
        (&[], &[], Err(PickError::NoInstance)),
        (&["a", "b", "c"], &["a"], Ok(&["b", "c"])),
        (&["a", "b", "c"], &["a", "c"], Ok(&["b"])),
        (&["a", "b"], &["a", "b"], Err(PickError::AllExcluded)),
        (&["a"], &["x"], Ok(&["a"])),
    ];
    for (candidates, exclude, want) in table {
        for _ in 0..100 {
            let got = permit
                .pick(candidates, exclude)
                .map(|attempt| attempt.id().to_owned());
            match (want, got) {
                (Ok(allowed), Ok(id)) => assert!(
                    allowed.contains(&id.as_str()),
                    "{candidates:?} - {exclude:?}: {id}"
                ),
                (Err(want), Err(got)) => assert_eq!(want, got),
                (want, got) => panic!("{candidates:?} - {exclude:?}: want {want:?}, got {got:?}"),
            }
        }
    }
}

#[test]
fn ejected_instances_are_skipped_and_one_probe_goes_through() {
    let service = service(Strategy::PowerOfTwoChoices, 2);
    let permit = service.admit().expect("admitted");
    let start = Instant::now();
    for _ in 0..2 {
        let mut attempt = permit.pick_at(&["a"], &[], start).expect("picked");
        attempt.record_at(&Outcome::ConnectFailed, start);
    }
    for _ in 0..50 {
        assert_eq!(
            permit
                .pick_at(&["a", "b"], &[], at(start, 999))
                .expect("picked")
                .id(),
            "b"
        );
    }
    // Penalty over: b is kept busy so p2c prefers a, which gets the single probe.
    let busy: Vec<_> = (0..3)
        .map(|_| permit.pick_at(&["b"], &[], start).expect("picked"))
        .collect();
    let mut probe = permit
        .pick_at(&["a", "b"], &[], at(start, 1000))
        .expect("picked");
    assert!(probe.id() == "a" && probe.is_probe());
    for _ in 0..20 {
        let other = permit
            .pick_at(&["a", "b"], &[], at(start, 1001))
            .expect("picked");
        assert!(other.id() == "b" && !other.is_probe() && !other.is_panic());
    }
    probe.record_at(&Outcome::Status(http::StatusCode::OK), at(start, 1002));
    drop(probe);
    assert_eq!(
        permit
            .pick_at(&["a", "b"], &[], at(start, 1003))
            .expect("picked")
            .id(),
        "a"
    );
    drop(busy);
}

#[test]
fn panic_mode_when_every_instance_is_ejected() {
    let service = service(Strategy::PowerOfTwoChoices, 1);
    let permit = service.admit().expect("admitted");
    let now = Instant::now();
    for id in ["a", "b"] {
        permit
            .pick_at(&[id], &[], now)
            .expect("picked")
            .record_at(&Outcome::Timeout, now);
    }
    let mut seen = Vec::new();
    for _ in 0..100 {
        let attempt = permit
            .pick_at(&["a", "b"], &[], now)
            .expect("panic mode still picks");
        assert!(attempt.is_panic());
        seen.push(attempt.id().to_owned());
    }
    assert!(seen.iter().any(|id| id == "a") && seen.iter().any(|id| id == "b"));
    assert_eq!(service.snapshot_at(now).panic_picks, 100);
    // Exclusion still holds in panic mode.
    assert_eq!(
        permit
            .pick_at(&["a", "b"], &["a"], now)
            .expect("picked")
            .id(),
        "b"
    );
    // A panic-mode success closes that instance's breaker; it leaves panic mode.
    permit
        .pick_at(&["a", "b"], &["b"], now)
        .expect("picked")
        .record_at(&Outcome::Status(http::StatusCode::OK), now);
    let attempt = permit.pick_at(&["a", "b"], &[], now).expect("picked");
    assert_eq!((attempt.id(), attempt.is_panic()), ("a", false));
}
