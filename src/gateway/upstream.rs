//! Keep-alive HTTP/1.1 connections to instances, one pool per gateway worker (so a request
//! and its upstream connection share a thread): hyper's connection API over TCP_NODELAY
//! sockets, with the connect timeout. Counted and shared per instance like the fast path's
//! ([`super::pool`]): a connection goes back to the pool once hyper reports it ready for the
//! next request (its response body fully read); closed connections are dropped when met,
//! idle ones after [`super::POOL_IDLE_TIMEOUT`], below the services' own idle timeouts.
//!
//! A request that a pooled connection never started sending (it was closing) is sent again
//! on the next connection; anything else is the caller's to judge.

use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};

use super::POOL_IDLE_TIMEOUT;
use super::body::UpstreamBody;
use super::pool::{self, Reusable, Slot};

/// Connections one worker keeps open to one instance for hyper at most.
const MAX_CONNECTIONS_PER_INSTANCE: usize = 512;

/// No connection to the instance: nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect: {0}")]
    Refused(std::io::Error),
    #[error("cannot connect within {0:?}")]
    TimedOut(Duration),
}

/// A TCP connection to an instance, as both upstream pools make them: TCP_NODELAY (requests
/// are written whole), keep-alive probes, within `timeout`.
pub async fn dial(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, ConnectError> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(ConnectError::Refused)?;
    socket.set_nodelay(true).map_err(ConnectError::Refused)?;
    socket.set_keepalive(true).map_err(ConnectError::Refused)?;
    tokio::time::timeout(timeout, socket.connect(addr))
        .await
        .map_err(|_| ConnectError::TimedOut(timeout))?
        .map_err(ConnectError::Refused)
}

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The exchange failed after the connection was made (the request may have been sent).
    #[error(transparent)]
    Exchange(#[from] hyper::Error),
    /// The instance left while the request waited for a connection to it.
    #[error(transparent)]
    Gone(#[from] pool::Gone),
}

/// One worker's connections to every instance.
#[derive(Debug)]
pub struct Upstream {
    connect_timeout: Duration,
    connections: pool::Pool<Pooled>,
}

/// A hyper connection under its instance's limit.
#[derive(Debug)]
struct Pooled {
    sender: SendRequest<UpstreamBody>,
    slot: Slot<Pooled>,
}

impl Reusable for Pooled {
    fn is_open_and_idle(&self) -> bool {
        self.sender.is_ready()
    }

    fn slot(&self) -> &Slot<Self> {
        &self.slot
    }
}

impl Upstream {
    pub fn new(connect_timeout: Duration) -> Self {
        Upstream {
            connect_timeout,
            connections: pool::Pool::new(MAX_CONNECTIONS_PER_INSTANCE),
        }
    }

    /// Sends `request` (origin-form URI, Host set) to `addr` and waits for the response
    /// headers. Dropping the future cancels the exchange and closes its connection.
    pub async fn send(
        &self,
        addr: SocketAddr,
        mut request: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, SendError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut pooled = self
                .connections
                .get(addr, |slot| self.connect(slot))
                .await?;
            match pooled.sender.try_send_request(request).await {
                Ok(response) => {
                    self.put_back_when_ready(pooled);
                    return Ok(response);
                }
                Err(mut error) => match error.take_message() {
                    // The connection closed before the request left: once more.
                    Some(unsent) if attempts < 2 => request = unsent,
                    _ => return Err(SendError::Exchange(error.into_error())),
                },
            }
        }
    }

    /// Back into the pool once the response's body was read to the end; an upgraded or
    /// closed connection just gives its place back.
    fn put_back_when_ready(&self, mut pooled: Pooled) {
        let connections = self.connections.clone();
        tokio::spawn(async move {
            if pooled.sender.ready().await.is_ok() {
                connections.put_back(pooled);
            }
        });
    }

    async fn connect(&self, slot: Slot<Pooled>) -> Result<Pooled, SendError> {
        let addr = slot.addr();
        let stream = dial(addr, self.connect_timeout).await?;
        let (sender, connection) = http1::Builder::new()
            .handshake::<_, UpstreamBody>(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%addr, %error, "upstream connection ended");
            }
        });
        Ok(Pooled { sender, slot })
    }

    /// Drops closed connections, those idle longer than the pool's idle timeout, and every
    /// one to an address that is not `live`.
    pub fn sweep(&self, live: impl Fn(&SocketAddr) -> bool) {
        self.connections.sweep(POOL_IDLE_TIMEOUT, live);
    }
}
