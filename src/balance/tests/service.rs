//! A service's shared state through its guards: the concurrency cap, the retry budget,
//! in-flight counting, snapshots and forgetting instances that left.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::balance::{BalanceConfig, Balancer, BreakerState, Outcome, Overloaded, ServiceBalancer};

fn service(max_concurrent: usize) -> Arc<ServiceBalancer> {
    Arc::new(ServiceBalancer::new(
        "inventory-service",
        BalanceConfig {
            max_concurrent,
            ..BalanceConfig::default()
        },
    ))
}

#[test]
fn concurrency_cap_rejects_at_once() {
    for limit in [0, 1, 3, 16] {
        let service = service(limit);
        let permits: Vec<_> = (0..limit)
            .map(|_| service.admit().expect("under the cap"))
            .collect();
        assert_eq!(service.admit().err(), Some(Overloaded { limit }));
        assert_eq!(service.admit().err(), Some(Overloaded { limit }));
        let stats = service.snapshot();
        assert_eq!((stats.active, stats.rejected), (limit, 2));
        drop(permits);
        if limit > 0 {
            let _again = service.admit().expect("a place was freed");
        }
        assert_eq!(service.snapshot().active, 0);
    }
}

#[test]
fn retry_budget_allows_a_share_of_active_requests() {
    // (requests admitted, retries the budget grants)
    let table = [(1, 3), (10, 3), (20, 4), (50, 10)];
    for (active, want) in table {
        let service = service(1024);
        let permits: Vec<_> = (0..active)
            .map(|_| service.admit().expect("admitted"))
            .collect();
        let mut tokens: Vec<_> = std::iter::from_fn(|| permits[0].try_retry())
            .take(1000)
            .collect();
        assert_eq!(tokens.len(), want, "{active} active");
        tokens.pop();
        assert!(
            permits[0].try_retry().is_some(),
            "a finished retry frees its place"
        );
        let stats = service.snapshot();
        assert_eq!((stats.retries, stats.retries_denied), (want as u64 + 1, 1));
    }
}

#[test]
fn snapshot_shows_in_flight_and_breaker_state() {
    let service = service(1024);
    let permit = service.admit().expect("admitted");
    let now = Instant::now();
    let held = [
        permit.pick_at(&["b"], &[], now).expect("picked"),
        permit.pick_at(&["b"], &[], now).expect("picked"),
    ];
    for _ in 0..5 {
        permit
            .pick_at(&["a"], &[], now)
            .expect("picked")
            .record_at(&Outcome::Broken, now);
    }
    let stats = service.snapshot_at(now);
    assert_eq!(stats.service, "inventory-service");
    let [a, b] = &stats.instances[..] else {
        panic!("two instances: {stats:?}")
    };
    assert_eq!(
        (
            a.id.as_str(),
            a.in_flight,
            a.consecutive_failures,
            a.ejections
        ),
        ("a", 0, 5, 1)
    );
    let BreakerState::Open { until } = a.state else {
        panic!("a is open: {a:?}")
    };
    assert!(until > now && until <= now + Duration::from_secs(1));
    assert_eq!(a.ejected_for(now), until - now);
    assert_eq!(
        (b.id.as_str(), b.in_flight, b.state, b.ejected_for(now)),
        ("b", 2, BreakerState::Closed, Duration::ZERO)
    );
    drop(held);
    assert_eq!(service.snapshot_at(now).instances[1].in_flight, 0);
}

#[test]
fn retain_forgets_instances_that_left_once_idle() {
    let service = service(1024);
    let permit = service.admit().expect("admitted");
    drop([permit.pick(&["a"], &[]), permit.pick(&["c"], &[])]);
    let busy = permit.pick(&["b"], &[]).expect("picked");
    let ids = |s: &ServiceBalancer| {
        s.snapshot()
            .instances
            .into_iter()
            .map(|i| (i.id, i.in_flight))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&service),
        [("a".into(), 0), ("b".into(), 1), ("c".into(), 0)]
    );
    service.retain(&["a"]);
    // A departed instance with a request in flight stays visible until it drains.
    assert_eq!(ids(&service), [("a".into(), 0), ("b".into(), 1)]);
    assert_eq!((service.in_flight("b"), service.in_flight("c")), (1, 0));
    drop(busy);
    service.retain(&["a"]);
    assert_eq!(ids(&service), [("a".into(), 0)]);
    assert_eq!(service.in_flight("b"), 0);
    // An instance that comes back starts afresh.
    service.retain(&["a", "b"]);
    let _again = permit.pick(&["b"], &[]).expect("picked");
    assert_eq!(ids(&service), [("a".into(), 0), ("b".into(), 1)]);
}

#[test]
fn balancer_shares_state_per_service() {
    let balancer = Balancer::default();
    let clone = balancer.clone();
    assert!(Arc::ptr_eq(
        &balancer.service("menu-service"),
        &clone.service("menu-service")
    ));
    let _permit = balancer.service("menu-service").admit().expect("admitted");
    let _other = balancer.service("order-service").admit().expect("admitted");
    let stats = clone.snapshot();
    let names: Vec<(&str, usize)> = stats
        .iter()
        .map(|s| (s.service.as_str(), s.active))
        .collect();
    assert_eq!(names, [("menu-service", 1), ("order-service", 1)]);
}
