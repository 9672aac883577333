//! Helpers for the gateway tests: the stack's gateway address, HTTP requests with any
//! method, headers and body (through ureq), raw TCP exchanges for what a well-behaved client
//! never sends, and reading the fixture's JSON echo of a request.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::common::Project;

/// The gateway's `host:port`, from `servio status`.
pub fn gateway_addr(project: &Project) -> SocketAddr {
    let status = project.status_json();
    let url = status["gateway_url"].as_str().expect("the gateway runs");
    url.trim_start_matches("http://")
        .parse()
        .expect("gateway_url is http://IP:PORT")
}

/// What came back.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// A header's value (names compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A client that keeps connections alive and never treats a status as an error.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .new_agent()
}

/// `method url` with `headers` and an optional body; a transport error is status 0.
pub fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let result = match body {
        Some(body) => agent.run(builder.body(body.to_vec()).expect("request")),
        None => agent.run(builder.body(()).expect("request")),
    };
    match result {
        Ok(mut response) => Reply {
            status: response.status().as_u16(),
            headers: response
                .headers()
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string()))
                .collect(),
            body: response.body_mut().read_to_string().unwrap_or_default(),
        },
        Err(error) => Reply {
            status: 0,
            headers: Vec::new(),
            body: error.to_string(),
        },
    }
}

pub fn get(url: &str) -> Reply {
    send(&agent(), "GET", url, &[], None)
}

/// Sends `raw` bytes on a new connection and reads until the server closes it (or 20 s).
pub fn raw(addr: SocketAddr, raw: &[u8]) -> String {
    exchange(addr, raw, false).answer
}

/// What came back on a raw connection.
#[derive(Debug)]
pub struct Exchanged {
    pub answer: String,
    /// The server closed the connection (rather than 20 s passing first).
    pub closed: bool,
}

/// Sends `raw` bytes on a new connection, shuts down the write side when `half_close`, and
/// reads until the server closes the connection or 20 s pass.
pub fn exchange(addr: SocketAddr, raw: &[u8], half_close: bool) -> Exchanged {
    let mut stream = TcpStream::connect(addr).expect("connect to the gateway");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    // The server may close before all of it is read (an early 400): that is its answer.
    let _ = stream.write_all(raw);
    if half_close {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    let mut answer = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    let closed = loop {
        match stream.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            // A reset after the answer (unread bytes at close) is a close too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    Exchanged {
        answer: String::from_utf8_lossy(&answer).into_owned(),
        closed,
    }
}

/// The status code of a raw HTTP/1.1 answer (0 when there is none).
pub fn raw_status(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// The request headers the `headers` fixture saw, as (lowercase name, value) pairs.
pub fn seen_headers(echo: &serde_json::Value) -> Vec<(String, String)> {
    echo["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|pair| {
            (
                pair[0].as_str().unwrap_or_default().to_string(),
                pair[1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The one value of header `name` in a fixture echo.
pub fn seen(echo: &serde_json::Value, name: &str) -> Option<String> {
    seen_headers(echo)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}
