//! Headers between the client and an instance: hop-by-hop headers are removed both ways
//! (Connection and every header it names, Keep-Alive, Proxy-Connection, TE,
//! Transfer-Encoding, Upgrade), except that an upgrade keeps `Connection: upgrade` and
//! `Upgrade`; X-Forwarded-For is appended to, X-Forwarded-Proto and X-Forwarded-Host are set,
//! Host is kept, Expect is answered by the gateway itself; and every request carries an
//! X-Request-Id: the client's when it sent a sane one, else a fresh one.

use std::net::IpAddr;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// A client's request id longer than this is replaced.
const MAX_REQUEST_ID: usize = 128;

/// True for a request asking to switch protocols (WebSocket and the like). `h2c` is not
/// passed on: the gateway speaks h2c itself and instances get HTTP/1.1.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    let Some(upgrade) = headers.get(header::UPGRADE) else {
        return false;
    };
    let h2c = upgrade
        .to_str()
        .is_ok_and(|value| value.trim().eq_ignore_ascii_case("h2c"));
    !h2c && connection_tokens(headers).any(|token| token.eq_ignore_ascii_case("upgrade"))
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// Removes hop-by-hop headers; for an upgrade, leaves exactly `Connection: upgrade` and the
/// `Upgrade` header.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    // Usually there are none: one pass over the names beats a lookup per kind.
    if !headers.keys().any(is_hop_by_hop) {
        if upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
        return;
    }
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = connection_tokens(headers)
            .filter(|token| !(upgrade && token.eq_ignore_ascii_case("upgrade")))
            .filter_map(|token| HeaderName::from_bytes(token.as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
        headers.remove(header::CONNECTION);
    }
    for name in [
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::TE,
        &header::TRANSFER_ENCODING,
    ] {
        headers.remove(name);
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// The hop-by-hop header names (lowercase), besides those a Connection header lists.
pub const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
];

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// [`HOP_BY_HOP`] for a name as it came off the wire, in any case.
pub fn is_hop_by_hop_bytes(name: &[u8]) -> bool {
    HOP_BY_HOP
        .iter()
        .any(|hop| hop.len() == name.len() && hop.as_bytes().eq_ignore_ascii_case(name))
}

/// Prepares a client's request headers for an instance. `authority` is the request URI's
/// authority (HTTP/2 carries Host there); `peer` is the client's address.
pub fn forward_request(
    headers: &mut HeaderMap,
    upgrade: bool,
    authority: Option<&str>,
    peer: IpAddr,
    request_id: &HeaderValue,
) {
    strip_hop_by_hop(headers, upgrade);
    // The gateway reads the client's body itself (hyper answers its 100-continue); the
    // instance gets the body without having to ask for it.
    headers.remove(header::EXPECT);
    let host = match headers.get(header::HOST) {
        Some(host) => Some(host.clone()),
        None => authority.and_then(|a| HeaderValue::from_str(a).ok()),
    };
    let forwarded_for = {
        let earlier: Vec<&str> = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        if earlier.is_empty() {
            peer.to_string()
        } else {
            format!("{}, {peer}", earlier.join(", "))
        }
    };
    if let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(forwarded_for)) {
        headers.insert(&X_FORWARDED_FOR, value);
    }
    headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    match host {
        Some(host) => {
            headers.insert(&X_FORWARDED_HOST, host.clone());
            headers.insert(header::HOST, host);
        }
        None => {
            headers.remove(&X_FORWARDED_HOST);
        }
    }
    headers.insert(&X_REQUEST_ID, request_id.clone());
}

/// Prepares an instance's response headers for the client.
pub fn forward_response(headers: &mut HeaderMap, upgrade: bool, request_id: &HeaderValue) {
    strip_hop_by_hop(headers, upgrade);
    headers.insert(&X_REQUEST_ID, request_id.clone());
}

/// The client's X-Request-Id when it is 1 to 128 visible ASCII characters, else a new
/// random (v4) UUID.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    match headers.get(&X_REQUEST_ID) {
        Some(id) if is_sane_request_id(id.as_bytes()) => id.clone(),
        _ => new_request_id(),
    }
}

/// [`request_id`] for the client's X-Request-Id as it came off the wire, if it sent one.
pub fn request_id_from(client: Option<&[u8]>) -> HeaderValue {
    match client {
        Some(id) if is_sane_request_id(id) => {
            HeaderValue::from_bytes(id).unwrap_or_else(|_| new_request_id())
        }
        _ => new_request_id(),
    }
}

fn is_sane_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len()) && id.iter().all(u8::is_ascii_graphic)
}

/// A random v4 UUID, without a system call per request (fastrand's thread-local generator).
pub fn new_request_id() -> HeaderValue {
    let uuid = uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid();
    let mut buffer = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid.hyphenated().encode_lower(&mut buffer);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("-"))
}
