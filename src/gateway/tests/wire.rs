//! The fast path's wire pieces as pure code: request and response heads read in place, the
//! head an instance gets (hop-by-hop fields dropped, those Connection names too,
//! X-Forwarded-* and X-Request-Id set) and the head a client gets; and mangled input never
//! makes any of it panic.

use http::header::HeaderValue;

use crate::gateway::h1::head::{Facts, parse_request, parse_response};
use crate::gateway::h1::write::{Delimit, chunk, client_head, upstream_head};

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("ASCII")
}

#[test]
fn a_request_head_is_read_in_place_with_its_framing_and_connection_facts() {
    let wire = b"POST /api/x?y=1 HTTP/1.1\r\nHost: shop\r\nContent-Length: 5\r\n\
Connection: keep-alive, X-Private\r\nX-Request-Id: abc\r\n\r\nhello";
    let head = parse_request(wire).expect("valid").expect("complete");
    assert_eq!(head.len, wire.len() - 5);
    assert_eq!(head.method.text(wire), "POST");
    assert_eq!(head.target.text(wire), "/api/x?y=1");
    assert_eq!(head.minor_version, 1);
    let facts = Facts::read(wire, &head.fields);
    assert_eq!(facts.content_length, Some(5));
    assert!(facts.keep_alive && facts.names_fields && !facts.close);
    assert_eq!(facts.hosts, 1);
    assert_eq!(facts.request_id.map(|id| id.of(wire)), Some(&b"abc"[..]));

    assert!(
        parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n")
            .expect("valid")
            .is_none()
    );
    assert!(parse_request(b"GET / HTTP/1.1\r\nBad Name: a\r\n\r\n").is_err());
}

#[test]
fn lengths_that_disagree_or_are_not_numbers_are_flagged() {
    for fields in [
        "Content-Length: 5\r\nContent-Length: 6",
        "Content-Length: +5",
        "Content-Length: 5, 5",
        "Content-Length: 0x5",
    ] {
        let wire = format!("POST / HTTP/1.1\r\nHost: a\r\n{fields}\r\n\r\n");
        let head = parse_request(wire.as_bytes())
            .expect("valid")
            .expect("complete");
        let facts = Facts::read(wire.as_bytes(), &head.fields);
        assert!(facts.bad_length, "{fields}");
    }
    let wire = b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n";
    let head = parse_request(wire).expect("valid").expect("complete");
    let facts = Facts::read(wire, &head.fields);
    assert_eq!((facts.content_length, facts.bad_length), (Some(5), false));
}

#[test]
fn a_body_must_be_framed_one_way_only() {
    let both = Some("the request has both Content-Length and Transfer-Encoding");
    let length = Some("Content-Length must be one decimal number");
    let old = Some("an HTTP/1.0 request cannot use Transfer-Encoding");
    let coding = Some("the only transfer coding accepted is `chunked`");
    let table: [(&str, &str, Option<&str>); 16] = [
        ("1.1", "", None),
        ("1.1", "Content-Length: 5", None),
        ("1.1", "Content-Length: 5\r\nContent-Length: 5", None),
        ("1.1", "Transfer-Encoding: chunked", None),
        ("1.1", "Transfer-Encoding: CHUNKED", None),
        ("1.0", "Content-Length: 5", None),
        (
            "1.1",
            "Content-Length: 5\r\nTransfer-Encoding: chunked",
            both,
        ),
        (
            "1.1",
            "Transfer-Encoding: chunked\r\nContent-Length: 5",
            both,
        ),
        (
            "1.1",
            "Transfer-Encoding: chunked\r\nContent-Length: x",
            both,
        ),
        ("1.1", "Content-Length: 5\r\nContent-Length: 6", length),
        ("1.1", "Content-Length: -1", length),
        ("1.0", "Transfer-Encoding: chunked", old),
        ("1.1", "Transfer-Encoding: xchunked", coding),
        ("1.1", "Transfer-Encoding: gzip, chunked", coding),
        (
            "1.1",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            coding,
        ),
        (
            "1.1",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity",
            coding,
        ),
    ];
    for (version, fields, problem) in table {
        let wire = format!("POST / HTTP/{version}\r\nHost: a\r\n{fields}\r\n\r\n");
        let head = parse_request(wire.as_bytes())
            .expect("valid")
            .expect("complete");
        let facts = Facts::read(wire.as_bytes(), &head.fields);
        assert_eq!(facts.framing_problem(head.minor_version), problem, "{wire}");
    }
}

#[test]
fn the_instance_gets_no_hop_by_hop_field_one_content_length_and_the_forwarding_fields() {
    let wire = b"GET /api/orders/7 HTTP/1.1\r\nHost: shop.example\r\n\
Connection: keep-alive, X-Private\r\nX-Private: 1\r\nKeep-Alive: timeout=5\r\n\
Proxy-Connection: keep-alive\r\nTE: trailers\r\nX-Forwarded-For: 1.2.3.4\r\n\
X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\nX-Request-Id: client-id\r\n\
Content-Length: 002\r\nAccept: */*\r\nContent-Length: 2\r\n\r\n";
    let head = parse_request(wire).expect("valid").expect("complete");
    let facts = Facts::read(wire, &head.fields);
    let mut out = Vec::new();
    let id = HeaderValue::from_static("id-1");
    upstream_head(&mut out, wire, &head, &facts, "/orders/7", "10.0.0.9", &id);
    assert_eq!(
        text(&out),
        "GET /orders/7 HTTP/1.1\r\nHost: shop.example\r\nAccept: */*\r\ncontent-length: 2\r\n\
x-forwarded-for: 1.2.3.4, 10.0.0.9\r\nx-forwarded-proto: http\r\n\
x-forwarded-host: shop.example\r\nx-request-id: id-1\r\n\r\n"
    );
}

#[test]
fn the_client_gets_the_instance_s_fields_less_hop_by_hop_ones_and_the_request_id() {
    let wire = b"HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nConnection: X-Secret\r\n\
X-Secret: s\r\nKeep-Alive: timeout=5\r\nX-Request-Id: other\r\nContent-Length: 2\r\n\r\nok";
    let head = parse_response(wire).expect("valid").expect("complete");
    assert_eq!(head.status, 201);
    let facts = Facts::read(wire, &head.fields);
    let id = HeaderValue::from_static("id-1");
    let mut out = Vec::new();
    let plain = Delimit {
        chunked: false,
        close: false,
    };
    client_head(&mut out, wire, &head, &facts, plain, &id);
    assert_eq!(
        text(&out),
        "HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\
x-request-id: id-1\r\n\r\n"
    );
    // Chunked on the way out: the instance's Content-Length cannot stand beside it.
    out.clear();
    let chunked = Delimit {
        chunked: true,
        close: true,
    };
    client_head(&mut out, wire, &head, &facts, chunked, &id);
    assert_eq!(
        text(&out),
        "HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nx-request-id: id-1\r\n\
transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
}

#[test]
fn a_status_line_without_a_reason_phrase_is_read_and_passed_on() {
    for wire in [&b"HTTP/1.1 204\r\n\r\n"[..], b"HTTP/1.1 204 \r\n\r\n"] {
        let head = parse_response(wire).expect("valid").expect("complete");
        let facts = Facts::read(wire, &head.fields);
        let mut out = Vec::new();
        let plain = Delimit {
            chunked: false,
            close: false,
        };
        client_head(
            &mut out,
            wire,
            &head,
            &facts,
            plain,
            &HeaderValue::from_static("i"),
        );
        assert_eq!(text(&out), "HTTP/1.1 204 \r\nx-request-id: i\r\n\r\n");
    }
}

#[test]
fn chunks_carry_their_hex_length_and_the_last_one_is_empty() {
    let mut out = Vec::new();
    chunk(&mut out, &[b'a'; 26]);
    chunk(&mut out, b"");
    assert_eq!(text(&out), format!("1a\r\n{}\r\n0\r\n\r\n", "a".repeat(26)));
}

#[test]
fn no_input_makes_the_wire_code_panic() {
    let seeds: [&[u8]; 3] = [
        b"POST /api/x?y=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close, X\r\n\
Transfer-Encoding: gzip, chunked\r\nX-Request-Id: id\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-A\r\nX-A: 1\r\n\r\nok",
        b"5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n",
    ];
    let mut rng = fastrand::Rng::with_seed(7);
    let id = HeaderValue::from_static("id");
    for round in 0..30_000 {
        let mut bytes = seeds[round % seeds.len()].to_vec();
        for _ in 0..rng.usize(1..6) {
            let at = rng.usize(..=bytes.len());
            match rng.u8(..4) {
                0 if at < bytes.len() => bytes[at] = rng.u8(..),
                1 => bytes.insert(at, *rng.choice(b"\r\n:;, \t0aF%".iter()).unwrap_or(&b'x')),
                2 => bytes.truncate(at),
                _ => bytes.insert(at, rng.u8(..)),
            }
        }
        if let Ok(Some(head)) = parse_request(&bytes) {
            let facts = Facts::read(&bytes, &head.fields);
            let mut out = Vec::new();
            upstream_head(&mut out, &bytes, &head, &facts, "/", "127.0.0.1", &id);
        }
        if let Ok(Some(head)) = parse_response(&bytes) {
            let facts = Facts::read(&bytes, &head.fields);
            let mut out = Vec::new();
            let delimit = Delimit {
                chunked: true,
                close: false,
            };
            client_head(&mut out, &bytes, &head, &facts, delimit, &id);
        }
        let mut scanner = crate::gateway::h1::chunked::Chunked::default();
        let cut = rng.usize(..=bytes.len());
        if scanner.feed(&bytes[..cut]).is_ok() {
            let _ = scanner.feed(&bytes[cut..]);
        }
    }
}
