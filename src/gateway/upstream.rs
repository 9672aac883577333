//! Keep-alive HTTP/1.1 connections to instances, one pool per gateway worker (so a request
//! and its upstream connection share a thread): hyper's connection API over TCP_NODELAY
//! sockets, with the connect timeout. A connection goes back to the pool as soon as its
//! response headers arrive and is reused once hyper reports it ready (its response body
//! fully read); closed connections are dropped when met, idle ones after
//! [`super::POOL_IDLE_TIMEOUT`], below the services' own idle timeouts.
//!
//! A request that a pooled connection never started sending (it was closing) is sent again
//! on a fresh connection; anything else is the caller's to judge.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};

use super::POOL_IDLE_TIMEOUT;
use super::body::UpstreamBody;

/// Idle connections kept per instance; more are closed once their exchange is done.
const MAX_IDLE_PER_INSTANCE: usize = 512;

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
}

/// One worker's connections to every instance.
#[derive(Debug)]
pub struct Upstream {
    connect_timeout: Duration,
    idle: Mutex<HashMap<SocketAddr, Vec<Pooled>>>,
}

#[derive(Debug)]
struct Pooled {
    sender: SendRequest<UpstreamBody>,
    returned: Instant,
}

impl Upstream {
    pub fn new(connect_timeout: Duration) -> Self {
        Upstream {
            connect_timeout,
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// Sends `request` (origin-form URI, Host set) to `addr` and waits for the response
    /// headers. Dropping the future cancels the exchange and closes its connection.
    pub async fn send(
        &self,
        addr: SocketAddr,
        mut request: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, SendError> {
        if let Some(mut sender) = self.checkout(addr) {
            match sender.try_send_request(request).await {
                Ok(response) => {
                    self.put_back(addr, sender);
                    return Ok(response);
                }
                Err(mut error) => match error.take_message() {
                    // The connection closed before the request left: try a fresh one.
                    Some(unsent) => request = unsent,
                    None => return Err(SendError::Exchange(error.into_error())),
                },
            }
        }
        let mut sender = self.connect(addr).await?;
        let response = sender.send_request(request).await?;
        self.put_back(addr, sender);
        Ok(response)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Vec<Pooled>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently used connection to `addr` that is ready for a request.
    fn checkout(&self, addr: SocketAddr) -> Option<SendRequest<UpstreamBody>> {
        let mut idle = self.lock();
        let pooled = idle.get_mut(&addr)?;
        pooled.retain(|p| !p.sender.is_closed());
        let ready = pooled.iter().rposition(|p| p.sender.is_ready())?;
        Some(pooled.swap_remove(ready).sender)
    }

    fn put_back(&self, addr: SocketAddr, sender: SendRequest<UpstreamBody>) {
        let mut idle = self.lock();
        let pooled = idle.entry(addr).or_default();
        if pooled.len() < MAX_IDLE_PER_INSTANCE {
            pooled.push(Pooled {
                sender,
                returned: Instant::now(),
            });
        }
    }

    async fn connect(&self, addr: SocketAddr) -> Result<SendRequest<UpstreamBody>, SendError> {
        let stream = dial(addr, self.connect_timeout).await?;
        let (sender, connection) = http1::Builder::new()
            .handshake::<_, UpstreamBody>(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%addr, %error, "upstream connection ended");
            }
        });
        Ok(sender)
    }

    /// Drops closed connections, those idle longer than the pool's idle timeout, and every
    /// one to an address that is not `live`.
    pub fn sweep(&self, live: impl Fn(&SocketAddr) -> bool) {
        let mut idle = self.lock();
        idle.retain(|addr, _| live(addr));
        for pooled in idle.values_mut() {
            pooled.retain(|p| !p.sender.is_closed() && p.returned.elapsed() < POOL_IDLE_TIMEOUT);
        }
        idle.retain(|_, pooled| !pooled.is_empty());
    }
}
