//! Hop-by-hop stripping both ways, upgrades, X-Forwarded-*, request ids; and the metrics
//! text and breaker wording built from the same state.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use http::header::{HeaderMap, HeaderValue};

use crate::balance::BreakerState;
use crate::gateway::headers::{
    forward_request, forward_response, is_upgrade, new_request_id, request_id,
};
use crate::gateway::metrics::breaker_text;

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_static(value));
    }
    map
}

fn names(map: &HeaderMap) -> Vec<&str> {
    let mut names: Vec<&str> = map.keys().map(|k| k.as_str()).collect();
    names.sort_unstable();
    names
}

const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9));

#[test]
fn hop_by_hop_headers_and_those_connection_names_are_removed() {
    let mut map = headers(&[
        ("connection", "keep-alive, X-Private"),
        ("connection", "x-other"),
        ("x-private", "1"),
        ("x-other", "2"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("te", "trailers"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("expect", "100-continue"),
        ("host", "shop.example"),
        ("accept", "*/*"),
    ]);
    let id = HeaderValue::from_static("id-1");
    assert!(!is_upgrade(&map), "Connection does not say upgrade");
    forward_request(&mut map, false, None, PEER, &id);
    assert_eq!(
        names(&map),
        [
            "accept",
            "host",
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto",
            "x-request-id"
        ]
    );
    assert_eq!(map["x-forwarded-for"], "10.0.0.9");
    assert_eq!(map["x-forwarded-host"], "shop.example");
    assert_eq!(map["x-forwarded-proto"], "http");
    assert_eq!(map["x-request-id"], "id-1");

    let mut response = headers(&[
        ("connection", "close"),
        ("keep-alive", "timeout=5"),
        ("transfer-encoding", "chunked"),
        ("content-type", "text/plain"),
    ]);
    forward_response(&mut response, false, &id);
    assert_eq!(names(&response), ["content-type", "x-request-id"]);
}

#[test]
fn an_upgrade_keeps_connection_upgrade_and_the_upgrade_header() {
    let mut map = headers(&[
        ("connection", "Upgrade, keep-alive"),
        ("upgrade", "websocket"),
        ("keep-alive", "timeout=5"),
        ("sec-websocket-key", "abc"),
    ]);
    assert!(is_upgrade(&map));
    forward_request(&mut map, true, Some("gw:3000"), PEER, &new_request_id());
    assert_eq!(map["connection"], "upgrade");
    assert_eq!(map["upgrade"], "websocket");
    assert_eq!(map["host"], "gw:3000", "HTTP/2's authority becomes Host");
    assert!(!map.contains_key("keep-alive"));
    assert!(map.contains_key("sec-websocket-key"));
    let h2c = headers(&[
        ("connection", "upgrade, http2-settings"),
        ("upgrade", "h2c"),
    ]);
    assert!(!is_upgrade(&h2c), "h2c is not passed on");
}

#[test]
fn forwarded_for_appends_the_peer_to_every_earlier_hop() {
    let mut map = headers(&[
        ("x-forwarded-for", "203.0.113.7"),
        ("x-forwarded-for", "198.51.100.2, 192.0.2.1"),
        ("x-forwarded-host", "spoofed"),
    ]);
    forward_request(&mut map, false, None, PEER, &new_request_id());
    assert_eq!(
        map["x-forwarded-for"],
        "203.0.113.7, 198.51.100.2, 192.0.2.1, 10.0.0.9"
    );
    assert!(
        !map.contains_key("x-forwarded-host"),
        "without Host nothing is claimed"
    );
}

#[test]
fn request_ids_are_kept_when_sane_and_made_otherwise() {
    let kept = request_id(&headers(&[("x-request-id", "abc-123")]));
    assert_eq!(kept, "abc-123");
    let long = "x".repeat(129);
    for bad in [
        HeaderValue::from_static(""),
        HeaderValue::from_static("has space"),
        HeaderValue::from_str(&long).expect("ascii"),
    ] {
        let mut map = HeaderMap::new();
        map.insert("x-request-id", bad.clone());
        let made = request_id(&map);
        assert_ne!(made, bad);
        assert_eq!(made.len(), 36, "{made:?}");
    }
    let (a, b) = (new_request_id(), new_request_id());
    assert_ne!(a, b);
    let text = a.to_str().expect("ascii");
    assert_eq!(text.as_bytes()[14], b'4', "a v4 UUID: {text}");
}

#[test]
fn breakers_read_as_status_shows_them() {
    let now = Instant::now();
    assert_eq!(breaker_text(BreakerState::Closed, now), None);
    assert_eq!(
        breaker_text(BreakerState::HalfOpen, now).as_deref(),
        Some("half-open")
    );
    let until = now + Duration::from_millis(11_200);
    assert_eq!(
        breaker_text(BreakerState::Open { until }, now).as_deref(),
        Some("open 12s")
    );
}
