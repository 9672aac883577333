//! The HTTP/1.1 fast path over raw TCP, against a real gateway: keep-alive and pipelining on
//! one connection (a small body the gateway answers itself is drained, not a reason to close), what it hands to hyper (HTTP/1.0, `Expect`, chunked bodies), bodies that
//! end when the instance closes (re-chunked, the client's connection kept), bodies larger
//! than any buffer both ways, and an instance that answers 101 unasked (502).

use std::net::SocketAddr;

use axum::Router;
use bytes::Bytes;
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::support::{Harness, PATIENCE, call, http1, route, upstream};
use crate::manifest::Balance;

/// An instance that answers every request on a connection with `answer`, after reading
/// each request head (and a Content-Length body); it closes after an answer when `close`.
async fn scripted(answer: &'static str, close: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    let mut buf = [0u8; 4096];
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                    while let Some(end) = request_end(&seen) {
                        seen.drain(..end);
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                        if close {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Where the first whole request in `bytes` ends (Content-Length bodies only).
fn request_end(bytes: &[u8]) -> Option<usize> {
    let head = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = String::from_utf8_lossy(&bytes[..head]).to_ascii_lowercase();
    let length = text
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    (bytes.len() >= head + length).then_some(head + length)
}

/// Reads from `stream` until `done` says the text so far is complete.
async fn read_until(stream: &mut TcpStream, done: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    let reading = async {
        let mut buf = [0u8; 4096];
        while !done(&text) {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    };
    tokio::time::timeout(PATIENCE, reading)
        .await
        .expect("answered in time");
    text
}

/// Sends `request` on `stream`, then reads until `done`.
async fn ask(stream: &mut TcpStream, request: &[u8], done: impl Fn(&str) -> bool) -> String {
    stream.write_all(request).await.expect("write");
    read_until(stream, done).await
}

async fn gateway_with(instance: SocketAddr) -> Harness {
    let gw = Harness::start(vec![route("/svc", "svc", Balance::LeastRequest)], |_| {}).await;
    gw.publish("svc", &[("one", instance)]);
    gw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_on_one_connection_are_answered_in_order() {
    let instance = scripted("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false).await;
    let gw = gateway_with(instance).await;
    let mut client = TcpStream::connect(gw.addr).await.expect("connect");
    // The unrouted POST's body is read and dropped: the connection goes on after its 404.
    let requests = "GET /svc/1 HTTP/1.1\r\nHost: gw\r\n\r\n\
POST /nowhere HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\n\r\nxyz\
POST /svc/2 HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\n\r\nabc\
GET /health HTTP/1.1\r\nHost: gw\r\n\r\n";
    let text = ask(&mut client, requests.as_bytes(), |t| {
        t.contains("servio-gateway")
    })
    .await;
    let statuses: Vec<&str> = text.matches("HTTP/1.1 200 OK").collect();
    assert_eq!(statuses.len(), 3, "{text}");
    assert_eq!(text.matches("HTTP/1.1 404 Not Found").count(), 1, "{text}");
    assert!(
        text.find("404").unwrap_or(0) < text.rfind("\r\n\r\nok").unwrap_or(0),
        "{text}"
    );
    assert_eq!(text.matches("\r\n\r\nok").count(), 2, "{text}");
    assert!(!text.contains("connection: close"), "{text}");
    gw.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_ending_at_close_goes_out_chunked_and_the_client_stays_connected() {
    let instance = scripted(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close",
        true,
    )
    .await;
    let gw = gateway_with(instance).await;
    let mut client = TcpStream::connect(gw.addr).await.expect("connect");
    for _ in 0..2 {
        let text = ask(
            &mut client,
            b"GET /svc/x HTTP/1.1\r\nHost: gw\r\n\r\n",
            |t| t.ends_with("0\r\n\r\n"),
        )
        .await;
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("transfer-encoding: chunked\r\n"), "{text}");
        assert!(
            text.ends_with("\r\n\r\nb\r\nuntil close\r\n0\r\n\r\n"),
            "{text}"
        );
    }
    gw.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_the_fast_path_does_not_take_are_served_by_hyper_on_the_same_connection() {
    let instance = scripted("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false).await;
    let gw = gateway_with(instance).await;
    // HTTP/1.0 first, then the connection carries on.
    let mut client = TcpStream::connect(gw.addr).await.expect("connect");
    let text = ask(
        &mut client,
        b"GET /svc/a HTTP/1.0\r\nHost: gw\r\nConnection: keep-alive\r\n\r\n",
        |t| t.ends_with("ok"),
    )
    .await;
    assert!(text.starts_with("HTTP/1.0 200 OK\r\n"), "{text}");
    // A chunked body and Expect: 100-continue.
    let mut client = TcpStream::connect(gw.addr).await.expect("connect");
    let chunked = "POST /svc/b HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n\
3\r\nabc\r\n0\r\n\r\nGET /svc/c HTTP/1.1\r\nHost: gw\r\n\r\n";
    let text = ask(&mut client, chunked.as_bytes(), |t| {
        t.matches("ok").count() == 2
    })
    .await;
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    let mut client = TcpStream::connect(gw.addr).await.expect("connect");
    let expect =
        b"PUT /svc/d HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n";
    let text = ask(&mut client, expect, |t| t.contains("100 Continue")).await;
    assert!(text.starts_with("HTTP/1.1 100 Continue"), "{text}");
    let text = ask(&mut client, b"hi", |t| t.ends_with("ok")).await;
    assert!(text.contains("HTTP/1.1 200 OK"), "{text}");
    gw.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_switching_protocols_unasked_is_a_502_and_heads_past_100_fields_a_431() {
    let instance = scripted(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
        false,
    )
    .await;
    let gw = gateway_with(instance).await;
    let mut client = TcpStream::connect(gw.addr).await.expect("connect");
    let text = ask(
        &mut client,
        b"GET /svc/x HTTP/1.1\r\nHost: gw\r\n\r\n",
        |t| t.contains("}\n"),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{text}");
    assert!(text.contains("\"upstream_unavailable\""), "{text}");

    let mut client = TcpStream::connect(gw.addr).await.expect("connect");
    let fields: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    let request = format!("GET /svc/x HTTP/1.1\r\nHost: gw\r\n{fields}\r\n");
    let text = ask(&mut client, request.as_bytes(), |t| t.contains("}\n")).await;
    assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
    assert!(text.contains("\"headers_too_large\""), "{text}");
    gw.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_larger_than_any_buffer_arrive_whole_both_ways() {
    let gw = Harness::start(vec![route("/svc", "svc", Balance::LeastRequest)], |_| {}).await;
    let instance = upstream(Router::new().fallback(|body: Bytes| async move {
        // Echoes the request body, then a megabyte of its own.
        let mut answer = body.to_vec();
        answer.extend((0..1 << 20).map(|i: u32| (i % 251) as u8));
        answer
    }))
    .await;
    gw.publish("svc", &[("one", instance)]);
    let sent: Vec<u8> = (0..60_000u32).map(|i| (i % 253) as u8).collect();
    let client = http1();
    for _ in 0..2 {
        let (status, _, body) = call(&client, Method::PUT, &gw.url("/svc/big"), &sent).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body.len(), sent.len() + (1 << 20));
        assert_eq!(
            &body[..sent.len()],
            &sent[..],
            "the request body, unchanged"
        );
        let tail = (0..1 << 20).map(|i: u32| (i % 251) as u8);
        assert!(
            body[sent.len()..].iter().copied().eq(tail),
            "the answer, unchanged"
        );
    }
    gw.shut_down().await;
}
