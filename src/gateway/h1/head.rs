//! HTTP/1.1 message heads as the fast path sees them: parsed in place by httparse and kept
//! as offsets into the bytes they arrived in (no copy, no header map), with the few facts
//! the proxy acts on (framing, connection options) read off in one pass.

use std::mem::MaybeUninit;

use super::chunked::Chunked;

/// More header fields than this in one head is refused (431), as hyper does.
pub const MAX_FIELDS: usize = 100;

/// A part of a head, as offsets into the head's bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// Where `part` lies in `base`. httparse hands back sub-slices of what it parsed, except
    /// for an empty reason phrase (a `""` of its own): anything not inside `base` is empty.
    fn within(base: &[u8], part: &[u8]) -> Span {
        let start = (part.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
        if part.is_empty() || start > base.len() || base.len() - start < part.len() {
            return Span::default();
        }
        Span {
            start: start as u32,
            end: (start + part.len()) as u32,
        }
    }

    pub fn of<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        &bytes[self.start as usize..self.end as usize]
    }

    /// The span as text: httparse only lets visible ASCII through where this is used.
    pub fn text<'a>(&self, bytes: &'a [u8]) -> &'a str {
        std::str::from_utf8(self.of(bytes)).unwrap_or_default()
    }
}

/// One header field line.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: Span,
    pub value: Span,
}

/// Why a head cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// More than [`MAX_FIELDS`] fields (431).
    TooManyFields,
    /// Not HTTP/1.x (400).
    Malformed,
}

impl From<httparse::Error> for HeadError {
    fn from(error: httparse::Error) -> Self {
        match error {
            httparse::Error::TooManyHeaders => HeadError::TooManyFields,
            _ => HeadError::Malformed,
        }
    }
}

/// A request head: request line and fields, `len` bytes long.
#[derive(Debug)]
pub struct RequestHead {
    pub method: Span,
    pub target: Span,
    /// 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub minor_version: u8,
    pub fields: Vec<Field>,
    pub len: usize,
}

/// A response head: status line and fields, `len` bytes long.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: u16,
    pub reason: Span,
    pub minor_version: u8,
    pub fields: Vec<Field>,
    pub len: usize,
}

/// The request head at the start of `bytes`, or `None` while it is incomplete.
pub fn parse_request(bytes: &[u8]) -> Result<Option<RequestHead>, HeadError> {
    let mut slots = [MaybeUninit::<httparse::Header>::uninit(); MAX_FIELDS];
    let mut request = httparse::Request::new(&mut []);
    let httparse::Status::Complete(len) = request.parse_with_uninit_headers(bytes, &mut slots)?
    else {
        return Ok(None);
    };
    let (Some(method), Some(target), Some(minor_version)) =
        (request.method, request.path, request.version)
    else {
        return Err(HeadError::Malformed);
    };
    Ok(Some(RequestHead {
        method: Span::within(bytes, method.as_bytes()),
        target: Span::within(bytes, target.as_bytes()),
        minor_version,
        fields: fields(bytes, request.headers),
        len,
    }))
}

/// The response head at the start of `bytes`, or `None` while it is incomplete.
pub fn parse_response(bytes: &[u8]) -> Result<Option<ResponseHead>, HeadError> {
    let mut slots = [MaybeUninit::<httparse::Header>::uninit(); MAX_FIELDS];
    let mut response = httparse::Response::new(&mut []);
    let config = httparse::ParserConfig::default();
    let httparse::Status::Complete(len) =
        config.parse_response_with_uninit_headers(&mut response, bytes, &mut slots)?
    else {
        return Ok(None);
    };
    let (Some(status), Some(minor_version)) = (response.code, response.version) else {
        return Err(HeadError::Malformed);
    };
    Ok(Some(ResponseHead {
        status,
        reason: Span::within(bytes, response.reason.unwrap_or_default().as_bytes()),
        minor_version,
        fields: fields(bytes, response.headers),
        len,
    }))
}

fn fields(bytes: &[u8], headers: &[httparse::Header]) -> Vec<Field> {
    headers
        .iter()
        .map(|header| Field {
            name: Span::within(bytes, header.name.as_bytes()),
            value: Span::within(bytes, header.value),
        })
        .collect()
}

/// How a message's body is delimited (RFC 9112 section 6).
#[derive(Debug)]
pub enum Framing {
    /// No body at all.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding, passed through as it is.
    Chunked(Chunked),
    /// Everything until the sender closes (responses only).
    UntilClose,
}

impl Framing {
    /// Takes what belongs to the body from the front of `available`: how many bytes, and
    /// whether the body is complete with them. Malformed chunking is an error.
    pub fn take(&mut self, available: &[u8]) -> Result<(usize, bool), super::chunked::BadChunk> {
        match self {
            Framing::Empty => Ok((0, true)),
            Framing::Length(left) => {
                let taken = (*left).min(available.len() as u64);
                *left -= taken;
                Ok((taken as usize, *left == 0))
            }
            Framing::Chunked(chunked) => {
                let taken = chunked.feed(available)?;
                Ok((taken, chunked.is_done()))
            }
            Framing::UntilClose => Ok((available.len(), false)),
        }
    }
}

/// What the proxy needs to know of a head's fields, read in one pass.
#[derive(Debug, Default)]
pub struct Facts {
    /// The Content-Length, when every one given agrees.
    pub content_length: Option<u64>,
    /// A Content-Length that is not a number, or two that disagree.
    pub bad_length: bool,
    /// The last transfer coding named, lowercased `chunked` or not.
    pub transfer_encoding: Option<bool>,
    /// How many transfer codings all Transfer-Encoding fields name together.
    pub transfer_codings: u32,
    /// `Connection: close`.
    pub close: bool,
    /// `Connection: keep-alive` (what an HTTP/1.0 peer needs to keep a connection).
    pub keep_alive: bool,
    /// The Connection header names other fields (hop-by-hop): they must be found one by one.
    pub names_fields: bool,
    /// An Upgrade field, and Connection naming it: a protocol switch is asked for.
    pub upgrade: bool,
    pub connection_upgrade: bool,
    pub expect: bool,
    pub hosts: u32,
    pub host: Option<Span>,
    pub request_id: Option<Span>,
}

impl Facts {
    pub fn read(bytes: &[u8], fields: &[Field]) -> Facts {
        let mut facts = Facts::default();
        for field in fields {
            let name = field.name.of(bytes);
            let value = field.value.of(bytes);
            // Dispatch on length first: most fields are none of these.
            match name.len() {
                4 if name.eq_ignore_ascii_case(b"host") => {
                    facts.hosts += 1;
                    facts.host = Some(field.value);
                }
                6 if name.eq_ignore_ascii_case(b"expect") => facts.expect = true,
                7 if name.eq_ignore_ascii_case(b"upgrade") => facts.upgrade = true,
                10 if name.eq_ignore_ascii_case(b"connection") => {
                    for token in tokens(value) {
                        if token.eq_ignore_ascii_case(b"close") {
                            facts.close = true;
                        } else if token.eq_ignore_ascii_case(b"keep-alive") {
                            facts.keep_alive = true;
                        } else {
                            if token.eq_ignore_ascii_case(b"upgrade") {
                                facts.connection_upgrade = true;
                            }
                            facts.names_fields = true;
                        }
                    }
                }
                12 if name.eq_ignore_ascii_case(b"x-request-id") => {
                    facts.request_id = Some(field.value);
                }
                14 if name.eq_ignore_ascii_case(b"content-length") => {
                    match (parse_length(value), facts.content_length) {
                        (Some(length), None) => facts.content_length = Some(length),
                        (Some(length), Some(earlier)) if length == earlier => {}
                        _ => facts.bad_length = true,
                    }
                }
                17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                    let mut last: &[u8] = &[];
                    for token in tokens(value) {
                        facts.transfer_codings += 1;
                        last = token;
                    }
                    facts.transfer_encoding = Some(last.eq_ignore_ascii_case(b"chunked"));
                }
                _ => {}
            }
        }
        facts
    }

    /// Why a request with these fields cannot be framed one way only (a 400), or `None`.
    /// Where a client, the gateway and an instance could disagree on where the body ends,
    /// a request could be smuggled past the gateway: so the body must be framed by one
    /// valid Content-Length, or by `Transfer-Encoding: chunked` alone on HTTP/1.1.
    pub fn framing_problem(&self, minor_version: u8) -> Option<&'static str> {
        let chunked_only = self.transfer_encoding == Some(true) && self.transfer_codings == 1;
        if self.transfer_encoding.is_some() && (self.content_length.is_some() || self.bad_length) {
            Some("the request has both Content-Length and Transfer-Encoding")
        } else if self.bad_length {
            Some("Content-Length must be one decimal number")
        } else if self.transfer_encoding.is_some() && minor_version == 0 {
            Some("an HTTP/1.0 request cannot use Transfer-Encoding")
        } else if self.transfer_encoding.is_some() && !chunked_only {
            Some("the only transfer coding accepted is `chunked`")
        } else {
            None
        }
    }
}

/// The comma-separated tokens of a field value, trimmed, empty ones skipped.
pub fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(|token| token.trim_ascii())
        .filter(|token| !token.is_empty())
}

/// A Content-Length value: digits only (no sign, no spaces inside), at most 18 of them.
fn parse_length(value: &[u8]) -> Option<u64> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        value
            .iter()
            .fold(0u64, |n, digit| n * 10 + u64::from(digit - b'0')),
    )
}
