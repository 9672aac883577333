//! One client connection on the fast path: read a request head (within
//! `header_read_timeout`, 64 KiB and 100 fields), refuse one whose body could be framed two
//! ways (400, closed: see [`Facts::framing_problem`]), take the shared first decisions, read the
//! body (at most 64 KiB, within `request_timeout`), run the tries through
//! [`crate::gateway::forward`], relay the answer, and go again while the connection is kept
//! alive. A request this path does not take ends the loop with a [`Handoff`]; so does an
//! h2c preface. Once the gateway stops, an idle connection closes at once and a busy one
//! after its answer (`connection: close`).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http::header::HeaderValue;
use http::{Method, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;
use tokio::time::Sleep;

use super::client::{self, Pool, READ_CHUNK};
use super::head::{self, Facts, Framing, HeadError, RequestHead};
use super::write::{self, Delimit};
use crate::balance::is_idempotent;
use crate::gateway::body::{Hold, ReplyBody};
use crate::gateway::forward::{self, Answered, Exchange};
use crate::gateway::openapi;
use crate::gateway::proxy::Proxy;
use crate::gateway::reply::{self, Failure};
use crate::gateway::{MAX_HEADER_BYTES, REPLAYABLE_BODY_BYTES, headers, routes};

/// An HTTP/2 connection starts with this (prior knowledge h2c).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a head on its way out (to the instance or the client) usually fits in.
const HEAD_ROOM: usize = 1 << 10;

/// A connection for hyper to serve from here on: the socket and what was read of it.
#[derive(Debug)]
pub struct Handoff {
    pub stream: TcpStream,
    pub read: Bytes,
}

/// What became of one request.
enum Next {
    KeepAlive,
    Close,
    Handoff,
}

/// How reading a request's body ended.
enum Filled {
    Whole,
    /// The client closed or failed.
    Gone,
    /// Not all of it within `request_timeout`.
    Late,
}

/// How waiting for a request head ended.
enum Waited {
    Head(RequestHead),
    /// Nothing (more) to read for now: the connection is idle.
    Idle,
    /// Not for this path: hyper takes the connection.
    Handoff,
    /// Closed, or timed out before the head was whole.
    Gone,
    Refused(Failure),
}

/// How a busy spell of a connection ended.
enum Busy {
    /// Idle again, with the socket back; `served` when a request was answered.
    Idle {
        stream: TcpStream,
        served: bool,
    },
    Closed,
    Handoff(Handoff),
}

/// A connection while it has work: its buffers and the request in flight. Made when the
/// socket turns readable and dropped when the connection is idle again, so an idle
/// keep-alive connection holds only its socket, a timer and one notification.
struct Connection<'a> {
    stream: TcpStream,
    /// The client's address, as X-Forwarded-For gets it (asked of the socket once busy).
    peer: String,
    /// Read from the client and not used yet.
    buf: BytesMut,
    /// To the client: heads and bodies gathered for one write.
    out: Vec<u8>,
    /// To an instance: the request being forwarded.
    upstream: Vec<u8>,
    proxy: &'a Proxy,
    pool: &'a Pool,
    /// Raised once the gateway stops: cheaper to read per request than the token.
    stopping: &'a AtomicBool,
}

/// Serves `stream` until it closes, or returns it for hyper to serve. `stopping` is raised
/// once the gateway stops; `room` is notified when a new connection needs an idle one's
/// slot (one waiter), and when the gateway stops (every waiter, after `stopping`).
pub async fn serve(
    mut stream: TcpStream,
    proxy: &Proxy,
    pool: &Pool,
    stopping: &AtomicBool,
    room: &Notify,
) -> Option<Handoff> {
    let mut deadline = tokio::time::Instant::now() + patience(proxy);
    let mut first = true;
    loop {
        if !IdleWait::new(&stream, deadline, stopping, room).await {
            return None;
        }
        // Boxed: the busy state (buffers, the request in flight) is allocated while there
        // is work only, not kept in every idle connection's task. Made in a statement of its
        // own, so the task keeps the box's pointer across the await, not the connection.
        let busy = Box::pin(
            Connection {
                stream,
                peer: String::new(),
                // Allocated once there is something to read or write.
                buf: BytesMut::new(),
                out: Vec::new(),
                upstream: Vec::new(),
                proxy,
                pool,
                stopping,
            }
            .serve_while_busy(deadline, first),
        );
        match busy.await {
            Busy::Idle {
                stream: back,
                served,
            } => {
                stream = back;
                if served {
                    first = false;
                    deadline = tokio::time::Instant::now() + patience(proxy);
                }
            }
            Busy::Closed => return None,
            Busy::Handoff(handoff) => return Some(handoff),
        }
    }
}

/// The client's address, asked of the socket (kept nowhere per connection); unspecified
/// once the client is gone.
pub fn peer_of(stream: &TcpStream) -> SocketAddr {
    stream
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// How long a connection may stay without a whole request head, between requests too: a
/// keep-alive connection that sends nothing is closed.
fn patience(proxy: &Proxy) -> Duration {
    let config = &proxy.config;
    config.header_read_timeout.min(config.idle_timeout)
}

pin_project_lite::pin_project! {
    /// Waits until `stream` is readable (bytes, or the client's close, which the read then
    /// sees): true; false when the deadline passes, the gateway stops, or a new connection needs
    /// this one's slot (all slots taken: the connection idle longest goes first). Written out by
    /// hand to hold only what it waits on, since every idle connection's task keeps one: the
    /// socket's readiness is polled in place (no future of its own), and one notification serves
    /// both the stop and the reclaim.
    struct IdleWait<'a> {
        stream: &'a TcpStream,
        // Read once, at the first poll.
        stopping: Option<&'a AtomicBool>,
        #[pin]
        timer: Sleep,
        #[pin]
        reclaimed: Notified<'a>,
    }
}

impl<'a> IdleWait<'a> {
    fn new(
        stream: &'a TcpStream,
        deadline: tokio::time::Instant,
        stopping: &'a AtomicBool,
        room: &'a Notify,
    ) -> Self {
        IdleWait {
            stream,
            stopping: Some(stopping),
            timer: tokio::time::sleep_until(deadline),
            reclaimed: room.notified(),
        }
    }
}

impl Future for IdleWait<'_> {
    type Output = bool;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<bool> {
        let mut this = self.project();
        if let Some(stopping) = this.stopping.take() {
            // Waiting before the flag is read: a stop raised after the read still wakes us.
            this.reclaimed.as_mut().enable();
            if stopping.load(Ordering::Acquire) {
                return Poll::Ready(false);
            }
        }
        if let Poll::Ready(ready) = this.stream.poll_read_ready(context) {
            return Poll::Ready(ready.is_ok());
        }
        if this.timer.poll(context).is_ready() || this.reclaimed.poll(context).is_ready() {
            return Poll::Ready(false);
        }
        Poll::Pending
    }
}

impl Connection<'_> {
    fn handoff(self) -> Handoff {
        Handoff {
            stream: self.stream,
            read: self.buf.freeze(),
        }
    }

    /// Serves requests while they come: until nothing more is there to read (idle), the
    /// connection closes, or hyper takes it. `deadline` is the idle connection's: the first
    /// head must be whole by then.
    async fn serve_while_busy(mut self, deadline: tokio::time::Instant, mut first: bool) -> Busy {
        self.peer = peer_of(&self.stream).ip().to_string();
        let timer = tokio::time::sleep_until(deadline);
        tokio::pin!(timer);
        let mut served = false;
        loop {
            let head = match self.wait_for_head(timer.as_mut(), first).await {
                Waited::Head(head) => head,
                Waited::Idle => {
                    return Busy::Idle {
                        stream: self.stream,
                        served,
                    };
                }
                Waited::Handoff => return Busy::Handoff(self.handoff()),
                Waited::Gone => return Busy::Closed,
                Waited::Refused(failure) => {
                    self.refuse(&failure).await;
                    return Busy::Closed;
                }
            };
            first = false;
            match self.request(head).await {
                Next::KeepAlive => {}
                Next::Close => return Busy::Closed,
                Next::Handoff => return Busy::Handoff(self.handoff()),
            }
            served = true;
            timer
                .as_mut()
                .reset(tokio::time::Instant::now() + patience(self.proxy));
        }
    }

    /// Reads until a whole request head is in `buf`, by `timer`; with nothing read yet and
    /// nothing there to read, the connection is idle.
    async fn wait_for_head(&mut self, mut timer: Pin<&mut Sleep>, first: bool) -> Waited {
        loop {
            if !self.buf.is_empty() {
                let seen = self.buf.len().min(H2_PREFACE.len());
                if first && self.buf[..seen] == H2_PREFACE[..seen] {
                    if seen == H2_PREFACE.len() {
                        return Waited::Handoff;
                    }
                } else {
                    match head::parse_request(&self.buf) {
                        Ok(Some(head)) => return Waited::Head(head),
                        Ok(None) => {}
                        Err(HeadError::TooManyFields) => {
                            return Waited::Refused(Failure::HeadersTooLarge);
                        }
                        Err(HeadError::Malformed) => return Waited::Refused(Failure::Malformed),
                    }
                }
                if self.buf.len() >= MAX_HEADER_BYTES {
                    return Waited::Refused(Failure::HeadersTooLarge);
                }
            }
            reserve(&mut self.buf, READ_CHUNK);
            if self.buf.is_empty() {
                // Between requests: what is there already, without waiting. Readiness can
                // be spurious (a new socket reports it once): nothing there means idle.
                match self.stream.try_read_buf(&mut self.buf) {
                    Ok(0) => return Waited::Gone,
                    Ok(_) => continue,
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                        return Waited::Idle;
                    }
                    Err(_) => return Waited::Gone,
                }
            }
            tokio::select! {
                biased;
                read = self.stream.read_buf(&mut self.buf) => match read {
                    Ok(0) | Err(_) => return Waited::Gone,
                    Ok(_) => {}
                },
                _ = timer.as_mut() => return Waited::Gone,
            }
        }
    }

    /// Answers a request that cannot be read (400, 431) and closes.
    async fn refuse(&mut self, failure: &Failure) {
        let request_id = headers::new_request_id();
        let response = reply::failure(failure, None, "", &request_id);
        let status = response.status().as_u16();
        let exchange = Exchange::default();
        self.proxy
            .finish("-", "-", status, &exchange, Instant::now(), &request_id);
        self.answer_own(response, true, false).await;
    }

    /// Reads until `buf` holds `total` bytes (a head and its body), by `deadline`.
    async fn fill(&mut self, total: usize, deadline: tokio::time::Instant) -> Filled {
        while self.buf.len() < total {
            let missing = total - self.buf.len();
            reserve(&mut self.buf, missing);
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(0) | Err(_)) => return Filled::Gone,
                Ok(Ok(_)) => {}
                Err(_) => return Filled::Late,
            }
        }
        Filled::Whole
    }

    /// Writes the gateway's own answer; the connection goes on unless `close` or the client
    /// is gone.
    async fn answer_own(
        &mut self,
        response: Response<ReplyBody>,
        close: bool,
        head_only: bool,
    ) -> Next {
        clear_for_head(&mut self.out);
        write::own_response(&mut self.out, response, close, head_only);
        let idle = self.proxy.config.idle_timeout;
        let written = flush(&mut self.stream, &mut self.out, idle).await;
        if written && !close {
            Next::KeepAlive
        } else {
            Next::Close
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    async fn request(&mut self, head: RequestHead) -> Next {
        let started = Instant::now();
        let facts = Facts::read(&self.buf, &head.fields);
        if let Some(why) = facts.framing_problem(head.minor_version) {
            // Nothing after this head can be trusted to start a request: answer and close.
            self.refuse(&Failure::BadFraming(why)).await;
            return Next::Close;
        }
        let declared = facts.content_length.unwrap_or(0);
        let config = &self.proxy.config;
        let unusual = head.minor_version != 1
            || (facts.upgrade && facts.connection_upgrade)
            || facts.expect
            || facts.transfer_encoding.is_some()
            || facts.hosts != 1
            || (declared > REPLAYABLE_BODY_BYTES && declared <= config.max_body);
        let Ok(method) = Method::from_bytes(head.method.of(&self.buf)) else {
            return Next::Handoff;
        };
        if unusual {
            return Next::Handoff;
        }
        let close = facts.close || self.stopping();
        let head_only = method == Method::HEAD;
        let request_id = headers::request_id_from(facts.request_id.map(|id| id.of(&self.buf)));
        let mut exchange = Exchange::default();
        let target = head.target.text(&self.buf);
        let checked = routes::check_origin_target(&method, target);
        let (path, query) = checked.unwrap_or((target, None));
        if openapi::is_own_document(&method, path) {
            // Assembled from every routed service, over hyper's upstream connections.
            return Next::Handoff;
        }
        let routed = self.proxy.route_request(
            &method,
            path,
            checked.map(|_| ()),
            facts.content_length,
            &request_id,
            &mut exchange,
        );
        let route = match routed {
            Ok(found) => found,
            Err(response) => {
                let status = response.status().as_u16();
                let method = head.method.text(&self.buf);
                self.proxy
                    .finish(method, path, status, &exchange, started, &request_id);
                // A body small enough to have been forwarded is read and dropped, so the
                // connection goes on; one past max_body is not read, and it closes.
                let total = head.len + declared as usize;
                let deadline = tokio::time::Instant::now() + config.request_timeout;
                let drained = declared <= REPLAYABLE_BODY_BYTES.min(config.max_body)
                    && matches!(self.fill(total, deadline).await, Filled::Whole);
                if drained {
                    self.buf.advance(total);
                }
                return self
                    .answer_own(*response, close || !drained, head_only)
                    .await;
            }
        };
        let rewritten = route.rewrite(path, query);
        clear_for_head(&mut self.upstream);
        write::upstream_head(
            &mut self.upstream,
            &self.buf,
            &head,
            &facts,
            &rewritten,
            &self.peer,
            &request_id,
        );
        drop(rewritten);

        // The whole request, its body and every try, has request_timeout.
        let deadline = tokio::time::Instant::now() + config.request_timeout;
        let total = head.len + declared as usize;
        match self.fill(total, deadline).await {
            Filled::Whole => {}
            Filled::Gone => return Next::Close,
            Filled::Late => {
                let (method, path) = (
                    head.method.text(&self.buf),
                    path_of(head.target.text(&self.buf)),
                );
                let failure = Failure::BodyTimeout;
                let response = reply::failure(&failure, Some(&route.service), path, &request_id);
                self.proxy
                    .finish(method, path, 408, &exchange, started, &request_id);
                return self.answer_own(response, true, head_only).await;
            }
        }
        let request = self.buf.split_to(total).freeze();
        self.upstream.extend_from_slice(&request[head.len..]);
        let method_text = head.method.text(&request);
        let path = path_of(head.target.text(&request));

        let idempotent = is_idempotent(&method);
        let mut tries = client::Tries {
            pool: self.pool,
            request: &self.upstream,
            head_only,
            idempotent,
        };
        let forwarded = forward::run(
            self.proxy,
            &route,
            &mut tries,
            idempotent,
            deadline,
            &mut exchange,
        )
        .await;
        // The gateway may have begun to stop while the request was out.
        let close = close || self.stopping();
        match forwarded {
            Err(failure) => {
                let response = reply::failure(&failure, Some(&route.service), path, &request_id);
                let status = response.status().as_u16();
                self.proxy
                    .finish(method_text, path, status, &exchange, started, &request_id);
                self.answer_own(response, close, head_only).await
            }
            Ok(Answered { reply, hold }) => {
                self.proxy.finish(
                    method_text,
                    path,
                    reply.status(),
                    &exchange,
                    started,
                    &request_id,
                );
                if self.relay(reply, hold, close, &request_id).await {
                    Next::KeepAlive
                } else {
                    Next::Close
                }
            }
        }
    }

    /// Writes the instance's answer to the client, its body as it arrives; true when the
    /// whole answer went out and the connection can stay open.
    async fn relay(
        &mut self,
        response: client::Response,
        hold: Hold,
        close: bool,
        request_id: &HeaderValue,
    ) -> bool {
        let idle = self.proxy.config.idle_timeout;
        let client::Response {
            mut connection,
            head,
            facts,
            mut framing,
            reusable,
        } = response;
        // A body that ends when the instance closes goes out chunked, so the client's
        // connection can stay open.
        let until_close = matches!(framing, Framing::UntilClose);
        let delimit = Delimit {
            chunked: until_close || matches!(framing, Framing::Chunked(_)),
            close,
        };
        clear_for_head(&mut self.out);
        write::client_head(
            &mut self.out,
            &connection.buf,
            &head,
            &facts,
            delimit,
            request_id,
        );
        connection.buf.advance(head.len);
        let complete = loop {
            let Ok((taken, done)) = framing.take(&connection.buf) else {
                break false;
            };
            let data = &connection.buf[..taken];
            if until_close {
                if taken > 0 {
                    write::chunk(&mut self.out, data);
                }
            } else {
                self.out.extend_from_slice(data);
            }
            connection.buf.advance(taken);
            if done {
                break true;
            }
            // Streaming: what arrived goes out before waiting for more.
            if !self.out.is_empty() && !flush(&mut self.stream, &mut self.out, idle).await {
                break false;
            }
            match tokio::time::timeout(idle, connection.read_more()).await {
                Ok(Ok(0)) if until_close => {
                    write::chunk(&mut self.out, b"");
                    break true;
                }
                Ok(Ok(0) | Err(_)) | Err(_) => break false,
                Ok(Ok(_)) => {}
            }
        };
        let sent = complete && flush(&mut self.stream, &mut self.out, idle).await;
        drop(hold);
        if complete && reusable {
            self.pool.put_back(connection);
        }
        sent && !delimit.close
    }
}

/// Empties `head` for a head to be written, with room for the usual one at once (the buffers
/// are given back while the connection is idle, so they start empty for most requests).
fn clear_for_head(head: &mut Vec<u8>) {
    head.clear();
    head.reserve(HEAD_ROOM);
}

/// Room for at least `wanted` more bytes (up to a read chunk at a time).
fn reserve(buf: &mut BytesMut, wanted: usize) {
    let wanted = wanted.clamp(1, READ_CHUNK);
    if buf.capacity() - buf.len() < wanted {
        buf.reserve(wanted.max(READ_CHUNK));
    }
}

fn path_of(target: &str) -> &str {
    target.split_once('?').map_or(target, |(path, _)| path)
}

/// Writes all of `out` (then empties it) within `idle`; false when the client is gone.
async fn flush(stream: &mut TcpStream, out: &mut Vec<u8>, idle: Duration) -> bool {
    if out.is_empty() {
        return true;
    }
    // Most answers fit in the socket's buffer at once: no timer for those.
    match stream.try_write(out) {
        Ok(written) if written == out.len() => {
            out.clear();
            return true;
        }
        Ok(written) => drop(out.drain(..written)),
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(_) => {
            out.clear();
            return false;
        }
    }
    let written = tokio::time::timeout(idle, stream.write_all(out)).await;
    out.clear();
    matches!(written, Ok(Ok(())))
}
