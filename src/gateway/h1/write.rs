//! Heads as they leave the fast path, written straight into a byte buffer: the request an
//! instance gets (hop-by-hop fields dropped, X-Forwarded-*, X-Request-Id), the response the
//! client gets (hop-by-hop fields dropped, X-Request-Id, the framing the relay uses), and the
//! gateway's own answers.

use http::Response;
use http::header::HeaderValue;

use super::head::{Facts, Field, RequestHead, ResponseHead, tokens};
use crate::gateway::body::ReplyBody;
use crate::gateway::headers::is_hop_by_hop_bytes;

/// Fields the gateway sets itself on the way to an instance: the client's are dropped
/// (X-Forwarded-For is appended to). Content-Length is written once, as a plain number,
/// whatever spelling the client used: the instance cannot frame the body differently.
const SET_UPSTREAM: [&[u8]; 5] = [
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"x-request-id",
    b"expect",
    b"content-length",
];

fn is_any(name: &[u8], names: &[&[u8]]) -> bool {
    names.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// The fields a Connection header names, which are hop-by-hop too.
fn named_by_connection<'a>(bytes: &'a [u8], fields: &[Field], facts: &Facts) -> Vec<&'a [u8]> {
    if !facts.names_fields {
        return Vec::new();
    }
    fields
        .iter()
        .filter(|field| field.name.of(bytes).eq_ignore_ascii_case(b"connection"))
        .flat_map(|field| tokens(field.value.of(bytes)))
        .collect()
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The request head an instance gets: `method target HTTP/1.1`, the client's fields less
/// hop-by-hop ones and those the gateway sets, Host kept, then Content-Length (when the
/// client sent one), X-Forwarded-For (earlier hops and `peer`), X-Forwarded-Proto,
/// X-Forwarded-Host and X-Request-Id.
#[allow(clippy::too_many_arguments)]
pub fn upstream_head(
    out: &mut Vec<u8>,
    bytes: &[u8],
    head: &RequestHead,
    facts: &Facts,
    target: &str,
    peer: &str,
    request_id: &HeaderValue,
) {
    out.extend_from_slice(head.method.of(bytes));
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let named = named_by_connection(bytes, &head.fields, facts);
    let mut forwarded_for: Vec<&[u8]> = Vec::new();
    for f in &head.fields {
        let (name, value) = (f.name.of(bytes), f.value.of(bytes));
        if name.eq_ignore_ascii_case(b"x-forwarded-for") {
            forwarded_for.push(value);
        } else if !(is_hop_by_hop_bytes(name)
            || is_any(name, &SET_UPSTREAM)
            || is_any(name, &named))
        {
            field(out, name, value);
        }
    }
    if let Some(length) = facts.content_length {
        let mut digits = [0; 20];
        field(out, b"content-length", decimal(&mut digits, length));
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    for earlier in forwarded_for {
        out.extend_from_slice(earlier);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(peer.as_bytes());
    out.extend_from_slice(b"\r\nx-forwarded-proto: http\r\n");
    if let Some(host) = facts.host {
        field(out, b"x-forwarded-host", host.of(bytes));
    }
    field(out, b"x-request-id", request_id.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// How the client's response is delimited, besides Content-Length passed through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimit {
    /// The body goes out chunked: the instance's chunks as they are, or a body that ends
    /// when the instance closes, chunked by [`chunk`].
    pub chunked: bool,
    /// The connection closes after this response.
    pub close: bool,
}

/// The response head the client gets: the instance's status and fields less hop-by-hop
/// ones (and Content-Length beside chunking), then X-Request-Id and the framing fields.
pub fn client_head(
    out: &mut Vec<u8>,
    bytes: &[u8],
    head: &ResponseHead,
    facts: &Facts,
    delimit: Delimit,
    request_id: &HeaderValue,
) {
    status_line(out, head.status, head.reason.of(bytes));
    let named = named_by_connection(bytes, &head.fields, facts);
    for f in &head.fields {
        let name = f.name.of(bytes);
        let skip = is_hop_by_hop_bytes(name)
            || name.eq_ignore_ascii_case(b"x-request-id")
            || (delimit.chunked && name.eq_ignore_ascii_case(b"content-length"))
            || is_any(name, &named);
        if !skip {
            field(out, name, f.value.of(bytes));
        }
    }
    field(out, b"x-request-id", request_id.as_bytes());
    end_head(out, delimit);
}

/// The gateway's own answer, whole: status, its fields, Content-Length, the body unless the
/// request was a HEAD.
pub fn own_response(
    out: &mut Vec<u8>,
    response: Response<ReplyBody>,
    close: bool,
    head_only: bool,
) {
    let (parts, body) = response.into_parts();
    let reason = parts.status.canonical_reason().unwrap_or("");
    status_line(out, parts.status.as_u16(), reason.as_bytes());
    for (name, value) in &parts.headers {
        field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    let body = match body {
        ReplyBody::Full(Some(bytes)) => bytes,
        _ => bytes::Bytes::new(),
    };
    let mut digits = [0; 20];
    field(
        out,
        b"content-length",
        decimal(&mut digits, body.len() as u64),
    );
    end_head(
        out,
        Delimit {
            chunked: false,
            close,
        },
    );
    if !head_only {
        out.extend_from_slice(&body);
    }
}

fn status_line(out: &mut Vec<u8>, status: u16, reason: &[u8]) {
    let digits = [
        b'0' + (status / 100 % 10) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ];
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(&digits);
    out.push(b' ');
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\r\n");
}

fn end_head(out: &mut Vec<u8>, delimit: Delimit) {
    if delimit.chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if delimit.close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// `data` as one chunk of a chunked body; empty `data` is the last chunk.
pub fn chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        out.extend_from_slice(b"0\r\n\r\n");
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

fn decimal(buffer: &mut [u8; 20], mut value: u64) -> &[u8] {
    let mut at = buffer.len();
    loop {
        at -= 1;
        buffer[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return &buffer[at..];
        }
    }
}
