//! Calls over real HTTP: answers, retries only where safe and on another instance, timeouts,
//! the breaker and the concurrency cap. Upstreams and the registry are real servers on
//! loopback; round robin makes the first pick deterministic where a test needs it.

use std::time::Duration;

use http::StatusCode;
use serde_json::Value;

use super::support::{Behaviour, Registry, Upstream, dead_port, instance};
use super::{client, eventually};
use crate::balance::{BalanceConfig, BreakerState, Strategy};
use crate::client::{Call, ClientError, ClientOptions};
use crate::protocol::Health;

const MENU: &str = "menu-service";

fn round_robin() -> ClientOptions {
    ClientOptions {
        balance: BalanceConfig {
            strategy: Strategy::RoundRobin,
            ..BalanceConfig::default()
        },
        ..ClientOptions::default()
    }
}

async fn stack(behaviours: &[Behaviour]) -> (Registry, Vec<Upstream>) {
    let registry = Registry::start().await;
    let mut upstreams = Vec::new();
    for (n, behaviour) in behaviours.iter().enumerate() {
        upstreams.push(Upstream::start(MENU, &format!("menu-{}", n + 1), *behaviour).await);
    }
    registry.set(MENU, upstreams.iter().map(|u| u.instance.clone()).collect());
    (registry, upstreams)
}

fn served_by(reply: &crate::client::Reply) -> String {
    let echo: Value = reply.json().expect("an echo");
    echo["instance"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn answers_from_a_healthy_instance() {
    let (registry, _upstreams) = stack(&[Behaviour::Echo]).await;
    let client = client(&registry.url, ClientOptions::default());
    let reply = client
        .call(MENU, Call::get("/items?available=true"))
        .await
        .expect("a reply");
    let echo: Value = reply.json().expect("json");
    assert_eq!(
        (reply.status, echo["path"].as_str()),
        (StatusCode::OK, Some("/items?available=true"))
    );
    let reply = client
        .call(
            MENU,
            Call::post_json("/items", &serde_json::json!({"name": "tea"})),
        )
        .await
        .expect("a reply");
    let echo: Value = reply.json().expect("json");
    assert_eq!(
        (echo["method"].as_str(), echo["body"].as_str()),
        (Some("POST"), Some(r#"{"name":"tea"}"#))
    );
}

#[tokio::test]
async fn retries_only_what_is_safe_on_another_instance() {
    let (registry, upstreams) = stack(&[Behaviour::Status(503), Behaviour::Echo]).await;
    let client = client(&registry.url, round_robin());
    // Turn 0 picks the failing instance: a plain POST reached it, so it is not sent again.
    let error = client
        .call(MENU, Call::post_json("/orders", &1))
        .await
        .expect_err("503");
    assert_eq!(
        error.to_string(),
        "menu-service is unavailable: menu-1 answered 503 Service Unavailable"
    );
    assert_eq!((upstreams[0].hits(), upstreams[1].hits()), (1, 0));
    // Turn 1 picks the healthy one.
    assert_eq!(
        served_by(&client.call(MENU, Call::get("/")).await.expect("a reply")),
        "menu-2"
    );
    // Turn 2 picks the failing one again; a keyed POST may be retried, on the other instance.
    let reply = client
        .call(MENU, Call::post_json("/orders", &1).idempotent(true))
        .await
        .expect("retried");
    assert_eq!(served_by(&reply), "menu-2");
    assert_eq!((upstreams[0].hits(), upstreams[1].hits()), (2, 2));
}

#[tokio::test]
async fn a_connect_failure_is_retried_for_any_method() {
    let registry = Registry::start().await;
    let good = Upstream::start(MENU, "menu-2", Behaviour::Echo).await;
    registry.set(
        MENU,
        vec![
            instance(MENU, "menu-1", dead_port(), Health::Healthy),
            good.instance.clone(),
        ],
    );
    let client = client(&registry.url, round_robin());
    let reply = client
        .call(MENU, Call::post_json("/orders", &1))
        .await
        .expect("retried");
    assert_eq!((served_by(&reply), good.hits()), ("menu-2".to_owned(), 1));
}

#[tokio::test]
async fn exhausted_retries_and_other_server_errors() {
    let (registry, upstreams) = stack(&[Behaviour::Status(502), Behaviour::Status(504)]).await;
    let client = client(&registry.url, round_robin());
    let error = client
        .call(MENU, Call::get("/"))
        .await
        .expect_err("both fail");
    assert!(
        matches!(&error, ClientError::Unavailable { service, reason } if service == MENU && reason.ends_with("(tried 2 instances)")),
        "{error}"
    );
    assert_eq!((upstreams[0].hits(), upstreams[1].hits()), (1, 1));

    let (registry, upstreams) = stack(&[Behaviour::Status(500), Behaviour::Echo]).await;
    let client = super::client(&registry.url, round_robin());
    let reply = client
        .call(MENU, Call::get("/"))
        .await
        .expect("500 is a reply");
    assert_eq!(
        (reply.status, upstreams[0].hits(), upstreams[1].hits()),
        (StatusCode::INTERNAL_SERVER_ERROR, 1, 0)
    );
}

#[tokio::test]
async fn a_hanging_instance_times_out() {
    let (registry, upstreams) = stack(&[Behaviour::Hang, Behaviour::Echo]).await;
    let options = ClientOptions {
        per_try_timeout: Duration::from_millis(500),
        ..round_robin()
    };
    let client = client(&registry.url, options);
    assert_eq!(
        served_by(&client.call(MENU, Call::get("/")).await.expect("retried")),
        "menu-2"
    );
    assert_eq!(
        client
            .call(MENU, Call::get("/"))
            .await
            .map(|r| served_by(&r))
            .ok()
            .as_deref(),
        Some("menu-2")
    );
    let error = client
        .call(MENU, Call::post_json("/orders", &1))
        .await
        .expect_err("not retried");
    assert_eq!(
        error,
        ClientError::Timeout {
            service: MENU.to_owned()
        }
    );
    // Every pick takes a turn, retries included: all three calls went to the hanging one first.
    assert_eq!(upstreams[0].hits(), 3);
}

#[tokio::test]
async fn the_breaker_ejects_a_failing_instance() {
    let (registry, upstreams) = stack(&[Behaviour::Status(503), Behaviour::Echo]).await;
    let mut options = ClientOptions::default();
    options.balance.breaker.base_ejection = Duration::from_secs(60);
    let client = client(&registry.url, options);
    for _ in 0..40 {
        assert_eq!(
            served_by(&client.call(MENU, Call::get("/")).await.expect("a reply")),
            "menu-2"
        );
    }
    assert!(
        upstreams[0].hits() <= 5,
        "{} requests reached the ejected instance",
        upstreams[0].hits()
    );
    let stats = client.stats();
    let bad = &stats[0].instances[0];
    assert!(
        bad.id == "menu-1" && bad.ejections == 1 && matches!(bad.state, BreakerState::Open { .. }),
        "{bad:?}"
    );
}

#[tokio::test]
async fn no_healthy_instance() {
    let registry = Registry::start().await;
    registry.set(
        MENU,
        vec![instance(MENU, "menu-1", dead_port(), Health::Unhealthy)],
    );
    let error = client(&registry.url, ClientOptions::default())
        .call(MENU, Call::get("/"))
        .await
        .expect_err("none");
    assert_eq!(
        error.to_string(),
        "menu-service is unavailable: no healthy instance"
    );
}

#[tokio::test]
async fn calls_past_the_concurrency_cap_are_refused_at_once() {
    let (registry, _upstreams) = stack(&[Behaviour::Hang]).await;
    let mut options = ClientOptions {
        per_try_timeout: Duration::from_secs(2),
        ..ClientOptions::default()
    };
    options.balance.max_concurrent = 1;
    let client = client(&registry.url, options);
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.call(MENU, Call::get("/")).await }
    });
    assert!(
        eventually(Duration::from_secs(5), || async {
            client.stats().first().is_some_and(|s| s.active == 1)
        })
        .await
    );
    let error = client
        .call(MENU, Call::get("/"))
        .await
        .expect_err("over the cap");
    assert!(
        error
            .to_string()
            .starts_with("menu-service is unavailable: too many requests in flight"),
        "{error}"
    );
    first.abort();
}
