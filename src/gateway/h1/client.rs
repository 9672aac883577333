//! The fast path's connections to instances: plain keep-alive HTTP/1.1 over TCP_NODELAY
//! sockets, one pool per gateway worker. A request goes out as one prepared buffer (head and
//! body) in one write; the response head is parsed in the connection's read buffer, and the
//! body stays there for the caller to relay. A connection goes back to the pool only after
//! its response was read to the end, with nothing left over.
//!
//! The connections are counted per instance ([`crate::gateway::pool`]): past
//! [`MAX_CONNECTIONS_PER_INSTANCE`] a request waits for one to come back. A pooled
//! connection that the instance closed while idle shows as readable: it is dropped at
//! checkout without a system call. One that closes in the instant between checkout and
//! send answers nothing; an idempotent request is then sent once more on a new connection.
//!
//! [`Tries`] carries the fast path's requests through the shared try loop
//! ([`crate::gateway::forward`]).

use std::net::SocketAddr;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use http::StatusCode;

use super::head::{self, Facts, Framing, ResponseHead};
use crate::balance::Outcome;
use crate::gateway::forward::{self, Transport, TryError};
use crate::gateway::pool::{self, Grant, Reusable, Slot};
use crate::gateway::upstream::{ConnectError, dial};
use crate::gateway::{MAX_HEADER_BYTES, POOL_IDLE_TIMEOUT};
use crate::registry::Endpoint;

/// Connections one worker keeps open to one instance at most, all of them kept for reuse
/// once idle; more requests wait for one of them.
pub const MAX_CONNECTIONS_PER_INSTANCE: usize = 512;

/// Read buffers start at this size and grow as a message needs.
pub const READ_CHUNK: usize = 8 << 10;

/// Why a request got no (usable) response.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The connection failed after the request may have been sent.
    #[error("{0}")]
    Broken(std::io::Error),
    #[error("the connection closed before a response")]
    Closed,
    #[error("the response head is not valid HTTP/1.1")]
    Malformed,
    #[error(transparent)]
    Gone(#[from] pool::Gone),
}

/// One keep-alive connection to an instance.
#[derive(Debug)]
pub struct Connection {
    slot: Slot<Connection>,
    stream: TcpStream,
    /// What was read and not used yet: the response head, then the start of its body.
    pub buf: BytesMut,
}

impl Reusable for Connection {
    /// False when the instance closed the connection (or sent something unasked) while it
    /// was idle: readable, by the runtime's last readiness event, then confirmed.
    fn is_open_and_idle(&self) -> bool {
        let mut context = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut context) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            }
        }
    }

    fn slot(&self) -> &Slot<Self> {
        &self.slot
    }
}

impl Connection {
    /// Reads more of the response into `buf`; `Ok(0)` when the instance closed.
    pub async fn read_more(&mut self) -> std::io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 2 {
            self.buf.reserve(READ_CHUNK);
        }
        self.stream.read_buf(&mut self.buf).await
    }

    /// Sends `request` and reads up to the final response head (1xx heads are skipped).
    async fn round_trip(
        mut self,
        request: &[u8],
        head_only: bool,
    ) -> Result<Response, (ExchangeError, bool)> {
        self.buf.clear();
        if let Err(error) = self.stream.write_all(request).await {
            return Err((ExchangeError::Broken(error), false));
        }
        let mut received = false;
        loop {
            if !self.buf.is_empty() {
                received = true;
                match head::parse_response(&self.buf) {
                    // The fast path never asks to switch protocols.
                    Ok(Some(head)) if head.status == 101 => {
                        return Err((ExchangeError::Malformed, true));
                    }
                    Ok(Some(head)) if head.status < 200 => {
                        self.buf.advance(head.len);
                        continue;
                    }
                    Ok(Some(head)) => return Response::new(self, head, head_only),
                    Ok(None) if self.buf.len() >= MAX_HEADER_BYTES => {
                        return Err((ExchangeError::Malformed, true));
                    }
                    Ok(None) => {}
                    Err(_) => return Err((ExchangeError::Malformed, true)),
                }
            }
            match self.read_more().await {
                Ok(0) => return Err((ExchangeError::Closed, received)),
                Ok(_) => {}
                Err(error) => return Err((ExchangeError::Broken(error), received)),
            }
        }
    }
}

/// An instance's response, its head parsed; the body follows in `connection.buf`.
#[derive(Debug)]
pub struct Response {
    pub connection: Connection,
    pub head: ResponseHead,
    pub facts: Facts,
    pub framing: Framing,
    /// The connection may serve another request once the body is read.
    pub reusable: bool,
}

impl Response {
    fn new(
        connection: Connection,
        head: ResponseHead,
        head_only: bool,
    ) -> Result<Response, (ExchangeError, bool)> {
        let facts = Facts::read(&connection.buf, &head.fields);
        let no_body = head_only || head.status == 204 || head.status == 304;
        let framing = match facts.transfer_encoding {
            _ if no_body => Framing::Empty,
            Some(true) => Framing::Chunked(Default::default()),
            Some(false) => Framing::UntilClose,
            None if facts.bad_length => return Err((ExchangeError::Malformed, true)),
            None => match facts.content_length {
                Some(length) => Framing::Length(length),
                None => Framing::UntilClose,
            },
        };
        let reusable = !facts.close
            && (head.minor_version == 1 || facts.keep_alive)
            && !matches!(framing, Framing::UntilClose);
        Ok(Response {
            connection,
            head,
            facts,
            framing,
            reusable,
        })
    }

    pub fn status(&self) -> u16 {
        self.head.status
    }
}

/// One worker's connections to every instance.
#[derive(Debug)]
pub struct Pool {
    connect_timeout: Duration,
    connections: pool::Pool<Connection>,
}

impl Pool {
    pub fn new(connect_timeout: Duration) -> Self {
        Pool {
            connect_timeout,
            connections: pool::Pool::new(MAX_CONNECTIONS_PER_INSTANCE),
        }
    }

    /// Sends `request` (a whole HTTP/1.1 request: head and body) to `addr` and reads the
    /// response head. `head_only` for HEAD requests, whose responses have no body.
    pub async fn exchange(
        &self,
        addr: SocketAddr,
        request: &[u8],
        head_only: bool,
        idempotent: bool,
    ) -> Result<Response, ExchangeError> {
        let connection = match self.connections.acquire(addr).await? {
            Grant::Dial(slot) => self.connect(slot).await?,
            Grant::Reuse(connection) => match connection.round_trip(request, head_only).await {
                Ok(response) => return Ok(response),
                // Closed under our feet before answering anything: once more, on whatever
                // the pool gives next (the closed one gave its place back).
                Err((ExchangeError::Closed | ExchangeError::Broken(_), false)) if idempotent => {
                    self.connections
                        .get(addr, |slot| self.connect(slot))
                        .await?
                }
                Err((error, _)) => return Err(error),
            },
        };
        connection
            .round_trip(request, head_only)
            .await
            .map_err(|(error, _)| error)
    }

    /// Takes a connection back after its response was read to the end.
    pub fn put_back(&self, connection: Connection) {
        if !connection.buf.is_empty() {
            return; // bytes after the response: the instance is not speaking HTTP/1.1
        }
        self.connections.put_back(connection);
    }

    async fn connect(&self, slot: Slot<Connection>) -> Result<Connection, ExchangeError> {
        let stream = dial(slot.addr(), self.connect_timeout).await?;
        Ok(Connection {
            slot,
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
        })
    }

    /// Drops connections the instance closed, those idle past the pool's idle timeout, and
    /// every one to an address that is not `live`.
    pub fn sweep(&self, live: impl Fn(&SocketAddr) -> bool) {
        self.connections.sweep(POOL_IDLE_TIMEOUT, live);
    }
}

/// The fast path's tries: the prepared request, sent whole to each instance tried.
pub struct Tries<'a> {
    pub pool: &'a Pool,
    pub request: &'a [u8],
    pub head_only: bool,
    pub idempotent: bool,
}

impl Transport for Tries<'_> {
    type Reply = Response;

    async fn send(&mut self, endpoint: &Endpoint) -> Result<Self::Reply, TryError> {
        let exchanged = self
            .pool
            .exchange(endpoint.addr, self.request, self.head_only, self.idempotent)
            .await;
        exchanged.map_err(|error| {
            let outcome = match error {
                // Nothing was sent.
                ExchangeError::Connect(_) | ExchangeError::Gone(_) => Outcome::ConnectFailed,
                _ => Outcome::Broken,
            };
            TryError::Failed(outcome, forward::upstream_failure(endpoint, error))
        })
    }

    fn status(reply: &Self::Reply) -> StatusCode {
        StatusCode::from_u16(reply.status()).unwrap_or(StatusCode::BAD_GATEWAY)
    }

    fn replayable(&self) -> bool {
        true
    }
}
