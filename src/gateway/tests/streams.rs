//! Protocol behaviour in process: h2c clients, responses streamed chunk by chunk (never
//! buffered whole), upgrades tunnelled both ways, a shutdown that lets a request in flight
//! finish while refusing new connections, and a port that can be bound again right after.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use bytes::Bytes;
use http::{Method, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc};

use super::support::{Harness, PATIENCE, call, h2c, http1, route, upstream};
use crate::manifest::Balance;

/// A response body fed chunk by chunk by the test.
struct Chunks(mpsc::UnboundedReceiver<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_clients_are_served_by_http1_instances() {
    let gw = Harness::start(vec![route("/svc", "svc", Balance::LeastRequest)], |_| {}).await;
    let instance =
        upstream(Router::new().fallback(|version: Version| async move { format!("{version:?}") }))
            .await;
    gw.publish("svc", &[("one", instance)]);
    let (status, headers, body) = call(&h2c(), Method::GET, &gw.url("/svc/x"), b"").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "HTTP/1.1", "instances always get HTTP/1.1");
    assert!(headers.contains_key("x-request-id"));
    gw.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_stream_through_chunk_by_chunk() {
    let gw = Harness::start(vec![route("/svc", "svc", Balance::LeastRequest)], |_| {}).await;
    let (feed, chunks) = mpsc::unbounded_channel::<Bytes>();
    let chunks = Arc::new(std::sync::Mutex::new(Some(chunks)));
    let instance = upstream(Router::new().fallback(move || {
        let taken = chunks.lock().ok().and_then(|mut c| c.take());
        async move {
            match taken {
                Some(rx) => axum::body::Body::new(Chunks(rx)),
                None => axum::body::Body::from("only once"),
            }
        }
    }))
    .await;
    gw.publish("svc", &[("one", instance)]);
    let request = Request::get(gw.url("/svc/stream"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    feed.send(Bytes::from_static(b"first")).expect("feed");
    let response = tokio::time::timeout(PATIENCE, http1().request(request))
        .await
        .expect("headers in time")
        .expect("a response");
    let mut body = response.into_body();
    let first = tokio::time::timeout(PATIENCE, body.frame())
        .await
        .expect("the first chunk arrives before the second exists");
    let first = first.and_then(|f| f.ok()).and_then(|f| f.into_data().ok());
    assert_eq!(first.as_deref(), Some(&b"first"[..]));
    feed.send(Bytes::from_static(b"second")).expect("feed");
    drop(feed);
    let rest = tokio::time::timeout(PATIENCE, body.collect())
        .await
        .expect("the rest in time")
        .expect("the rest");
    assert_eq!(rest.to_bytes(), "second");
    gw.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_tunnel_bytes_both_ways() {
    let gw = Harness::start(vec![route("/ws", "ws", Balance::LeastRequest)], |_| {}).await;
    // An instance that switches to an echo protocol.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let instance = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read_exact(&mut byte).await.is_ok() {
            head.push(byte[0]);
        }
        let upgrade = String::from_utf8_lossy(&head).to_ascii_lowercase();
        assert!(upgrade.contains("upgrade: echo"), "{upgrade}");
        let _ = stream
            .write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
            )
            .await;
        let mut buffer = [0u8; 64];
        while let Ok(n) = stream.read(&mut buffer).await {
            if n == 0 || stream.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
    });
    gw.publish("ws", &[("echo", instance)]);
    let mut client = tokio::net::TcpStream::connect(gw.addr)
        .await
        .expect("connect");
    client
        .write_all(b"GET /ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = tokio::time::timeout(PATIENCE, client.read_exact(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(_))), "the 101 arrives: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: echo"), "{head}");
    client.write_all(b"ping").await.expect("write");
    let mut echoed = [0u8; 4];
    tokio::time::timeout(PATIENCE, client.read_exact(&mut echoed))
        .await
        .expect("the echo in time")
        .expect("the echo");
    assert_eq!(&echoed, b"ping");
    gw.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_the_request_in_flight_finish_and_refuses_new_ones() {
    let gw = Harness::start(vec![route("/svc", "svc", Balance::LeastRequest)], |_| {}).await;
    let release = Arc::new(Semaphore::new(0));
    let (arrived, mut arrivals) = mpsc::unbounded_channel::<()>();
    let held = release.clone();
    let instance = upstream(Router::new().fallback(move || {
        let (held, arrived) = (held.clone(), arrived.clone());
        async move {
            let _ = arrived.send(());
            let _permit = held.acquire().await;
            "done"
        }
    }))
    .await;
    gw.publish("svc", &[("one", instance)]);
    let url = gw.url("/svc/slow");
    let in_flight = tokio::spawn(async move { call(&http1(), Method::GET, &url, b"").await });
    arrivals
        .recv()
        .await
        .expect("the request reached the instance");

    let addr = gw.addr;
    let stopping = tokio::spawn(gw.shut_down());
    // The listener closes at once...
    let refused = tokio::time::timeout(PATIENCE, async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(refused.is_ok(), "the gateway kept accepting");
    // ...and the request in flight still gets its answer.
    release.add_permits(1);
    let (status, _, body) = in_flight.await.expect("the request");
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"done"[..]));
    stopping.await.expect("shut down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_gateway_s_port_can_be_bound_again_at_once() {
    let first = Harness::start(vec![route("/svc", "svc", Balance::LeastRequest)], |_| {}).await;
    let port = first.addr.port();
    // Connections the gateway closes first leave TIME_WAIT sockets on its port.
    for _ in 0..3 {
        let mut client = tokio::net::TcpStream::connect(first.addr)
            .await
            .expect("connect");
        let request = b"GET /nowhere HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n";
        client.write_all(request).await.expect("write");
        let mut answer = Vec::new();
        tokio::time::timeout(PATIENCE, client.read_to_end(&mut answer))
            .await
            .expect("the gateway closes in time")
            .expect("read");
        assert!(answer.starts_with(b"HTTP/1.1 404"));
    }
    first.shut_down().await;
    let config = crate::manifest::Gateway::default();
    let (_, view) = tokio::sync::watch::channel(Arc::default());
    let stop = tokio_util::sync::CancellationToken::new();
    let (second, task) = crate::gateway::Gateway::start(config, port, view, stop.clone())
        .await
        .expect("the port is free again");
    assert_eq!(second.addr().port(), port);
    stop.cancel();
    let _ = tokio::time::timeout(PATIENCE, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_gateway_cannot_share_a_port_in_use() {
    let first = Harness::start(vec![route("/svc", "svc", Balance::LeastRequest)], |_| {}).await;
    let config = crate::manifest::Gateway::default();
    let (_, view) = tokio::sync::watch::channel(Arc::default());
    let stop = tokio_util::sync::CancellationToken::new();
    let second = crate::gateway::Gateway::start(config, first.addr.port(), view, stop).await;
    let error = second.expect_err("the port is taken");
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse, "{error}");
    first.shut_down().await;
}
