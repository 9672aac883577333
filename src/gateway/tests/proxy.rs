//! The proxy in process, against real upstream servers, for what the binary tests cannot
//! arrange on cue: a connect failure retries even a POST with its streamed body, panic mode
//! when every breaker is open, the per-service cap, and instances leaving the view at once.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use bytes::Bytes;
use http::{Method, StatusCode, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc};

use super::support::{Harness, PATIENCE, call, dead, http1, route, upstream};
use crate::manifest::Balance;

/// An instance answering "ID METHOD URI BODY-LENGTH", or always `status` when given.
async fn instance(id: &'static str, status: Option<StatusCode>) -> SocketAddr {
    upstream(
        Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| async move {
            let text = format!("{id} {method} {uri} {}", body.len());
            (status.unwrap_or(StatusCode::OK), text)
        }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_failure_retries_even_a_post_with_its_streamed_body() {
    // Round robin starts at the first instance: the dead one.
    let gw = Harness::start(vec![route("/svc", "svc", Balance::RoundRobin)], |_| {}).await;
    let live = instance("live", None).await;
    gw.publish("svc", &[("dead", dead()), ("live", live)]);
    // Larger than what is kept for replay: the body streams, and the dead instance never
    // read it, so the retry can still send all of it.
    let body = vec![b'x'; 200 << 10];
    let (status, headers, reply) = call(&http1(), Method::POST, &gw.url("/svc/new"), &body).await;
    assert_eq!(status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply, format!("live POST /svc/new {}", body.len()));
    assert!(headers.contains_key("x-request-id"));
    let stats = gw.gateway.balancing();
    assert_eq!(stats[0].retries, 1, "{stats:?}");
    let mut metrics = String::new();
    gw.gateway.render_metrics(&mut metrics);
    assert!(
        metrics.contains(
            "servio_gateway_upstream_errors_total{route=\"/svc\",service=\"svc\",kind=\"connect\"} 1"
        ),
        "{metrics}"
    );
    gw.shut_down().await;
}

/// Found by scripts/soak: an instance SIGKILLed under load left every request that picked
/// it in the moment before the registry noticed needing a retry at once, more than the
/// retry budget's floor; the rest got 502. A refused connection now ejects the instance
/// at once, and moving a request that reached nothing needs no budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_all_route_around_an_instance_that_died() {
    let gw = Harness::start(vec![route("/svc", "svc", Balance::RoundRobin)], |_| {}).await;
    let (a, b) = (instance("a", None).await, instance("b", None).await);
    gw.publish("svc", &[("dead", dead()), ("a", a), ("b", b)]);
    let client = http1();
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..90 {
        let (client, url) = (client.clone(), gw.url(&format!("/svc/{n}")));
        let method = if n % 3 == 0 {
            Method::POST
        } else {
            Method::GET
        };
        requests.spawn(async move { call(&client, method, &url, b"").await });
    }
    while let Some(done) = requests.join_next().await {
        let (status, _, body) = done.expect("the request task ends");
        assert_eq!(status, StatusCode::OK, "{body:?}");
    }
    let stats = &gw.gateway.balancing()[0];
    assert_eq!(stats.retries_denied, 0, "{stats:?}");
    let dead = stats
        .instances
        .iter()
        .find(|i| i.id == "dead")
        .expect("dead");
    assert_eq!(dead.ejections, 1, "{stats:?}");
    gw.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_breaker_open_requests_still_go_somewhere() {
    let gw = Harness::start(vec![route("/svc", "svc", Balance::LeastRequest)], |c| {
        c.retries = 0;
    })
    .await;
    let a = instance("a", Some(StatusCode::BAD_GATEWAY)).await;
    let b = instance("b", Some(StatusCode::BAD_GATEWAY)).await;
    gw.publish("svc", &[("a", a), ("b", b)]);
    let client = http1();
    // Five failures in a row eject an instance; twenty requests eject both.
    for _ in 0..20 {
        let (status, _, body) = call(&client, Method::GET, &gw.url("/svc/x"), b"").await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert!(
            body.ends_with(b"GET /svc/x 0"),
            "the instance answered: {body:?}"
        );
    }
    let stats = &gw.gateway.balancing()[0];
    assert!(
        stats.instances.iter().all(|i| i.ejections >= 1),
        "{stats:?}"
    );
    assert!(stats.panic_picks >= 1, "{stats:?}");
    gw.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_concurrent_a_request_gets_an_immediate_503() {
    let gw = Harness::start(vec![route("/svc", "svc", Balance::LeastRequest)], |c| {
        c.max_concurrent = 1;
    })
    .await;
    let release = Arc::new(Semaphore::new(0));
    let (arrived, mut arrivals) = mpsc::unbounded_channel::<()>();
    let held = release.clone();
    let slow = upstream(Router::new().fallback(move || {
        let (held, arrived) = (held.clone(), arrived.clone());
        async move {
            let _ = arrived.send(());
            let _permit = held.acquire().await;
            "finally"
        }
    }))
    .await;
    gw.publish("svc", &[("slow", slow)]);
    let url = gw.url("/svc/1");
    let first = tokio::spawn(async move { call(&http1(), Method::GET, &url, b"").await });
    arrivals
        .recv()
        .await
        .expect("the first request reached the instance");

    let (status, headers, body) = call(&http1(), Method::GET, &gw.url("/svc/2"), b"").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body:?}");
    assert_eq!(headers["retry-after"], "1");
    let error: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(error["error"]["code"], "service_overloaded");
    assert_eq!(error["error"]["details"]["service"], "svc");

    release.add_permits(1);
    let (status, _, body) = first.await.expect("the first request");
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"finally"[..]));
    assert_eq!(gw.gateway.balancing()[0].rejected, 1);
    gw.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_leaving_the_view_gets_no_more_requests() {
    let gw = Harness::start(vec![route("/svc", "svc", Balance::RoundRobin)], |_| {}).await;
    let (a, b) = (instance("a", None).await, instance("b", None).await);
    gw.publish("svc", &[("a", a), ("b", b)]);
    let client = http1();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let (_, _, body) = call(&client, Method::GET, &gw.url("/svc/x"), b"").await;
        seen.push(body[..1].to_vec());
    }
    assert!(seen.contains(&b"a".to_vec()) && seen.contains(&b"b".to_vec()));
    gw.publish("svc", &[("b", b)]);
    for _ in 0..4 {
        let (_, _, body) = call(&client, Method::GET, &gw.url("/svc/x"), b"").await;
        assert!(body.starts_with(b"b "), "{body:?}");
    }
    gw.publish("svc", &[]);
    let (status, headers, _) = call(&client, Method::GET, &gw.url("/svc/x"), b"").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "1");
    gw.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_gets_408_within_the_request_timeout() {
    let gw = Harness::start(vec![route("/svc", "svc", Balance::LeastRequest)], |c| {
        c.request_timeout = std::time::Duration::from_millis(200);
    })
    .await;
    gw.publish("svc", &[("one", instance("one", None).await)]);
    let mut client = tokio::net::TcpStream::connect(gw.addr)
        .await
        .expect("connect");
    client
        .write_all(b"PUT /svc/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\nonly ten b")
        .await
        .expect("write");
    let mut answer = vec![0u8; 1024];
    let read = tokio::time::timeout(PATIENCE, client.read(&mut answer))
        .await
        .expect("an answer in time")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"body_timeout\""), "{answer}");
    gw.shut_down().await;
}
