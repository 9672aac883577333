//! Accepting clients on a few worker threads (one per core, like nginx's workers): each runs
//! its own single-threaded runtime, listening socket (SO_REUSEPORT) and upstream pools, so a
//! request, its client connection and its upstream connection never change threads. Every
//! connection starts on the HTTP/1.1 fast path ([`super::h1`]); one it hands over (h2c,
//! upgrades, HTTP/1.0, streamed bodies) is served by hyper ([`super::general`]) from the
//! bytes already read.
//!
//! Limits: at most `max_connections` connections in all (the rest wait in the listen backlog;
//! when all are taken, the fast-path connection idle longest makes room for a new one),
//! request headers within `header_read_timeout` (slowloris; between keep-alive requests too)
//! and within 64 KiB (431), and a connection with no bytes moving either way for
//! `idle_timeout` is closed. On shutdown the listener closes at once and open connections
//! finish their requests for up to [`super::DRAIN_TIMEOUT`].

use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{AcquireError, Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::h1::{self, Handoff};
use super::proxy::Proxy;
use super::upstream::Upstream;
use super::{DRAIN_TIMEOUT, MAX_HEADER_BYTES, POOL_IDLE_TIMEOUT, general};

/// Starts `workers` threads serving `127.0.0.1:port` until `shutdown`; returns the address
/// and a task that ends when every worker has drained. Each worker has its own listening
/// socket on the port (SO_REUSEPORT), so the kernel spreads connections over the workers.
/// Nothing is accepted until `opened` reads true: connections wait in the listen backlog.
pub fn start(
    port: u16,
    proxy: Arc<Proxy>,
    workers: usize,
    opened: watch::Receiver<bool>,
    shutdown: CancellationToken,
) -> io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    // Every socket is bound before any thread starts: a failure leaves nothing running.
    let mut addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    if port != 0 {
        // SO_REUSEPORT would let this gateway share the port with another stack's (same
        // user): a plain bind first fails if anything listens there already.
        drop(std::net::TcpListener::bind(addr)?);
    }
    let mut bound = Vec::new();
    for _ in 0..workers.max(1) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseport(true)?;
        // As std and tokio's `bind` do: connections this gateway closed first linger in
        // TIME_WAIT, and without it they would keep the port from being bound again (the
        // next `servio up`) for a minute.
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        // The first bind picks the port when it is 0; the others join it.
        addr = socket.local_addr()?;
        let listener = {
            let _context = runtime.enter();
            socket.listen(1024)?
        };
        bound.push((runtime, listener));
    }
    let capacity = Arc::new(Capacity {
        slots: Arc::new(Semaphore::new(proxy.config.max_connections as usize)),
        room: Notify::new(),
    });
    let mut finished = Vec::new();
    for (worker, (runtime, listener)) in bound.into_iter().enumerate() {
        let (proxy, capacity, shutdown) = (proxy.clone(), capacity.clone(), shutdown.clone());
        let opened = opened.clone();
        let (done, waiter) = tokio::sync::oneshot::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name(format!("gateway-{worker}"))
            .spawn(move || {
                runtime.block_on(serve(listener, proxy, capacity, opened, shutdown));
                let _ = done.send(());
            });
        match spawned {
            Ok(_) => finished.push(waiter),
            // The workers already running still serve; they stop with `shutdown`.
            Err(error) => tracing::error!(%error, "cannot start gateway worker {worker}"),
        }
    }
    if finished.is_empty() {
        return Err(io::Error::other("no gateway worker thread could start"));
    }
    // An async wait (never a blocking join): a runtime shutting down is never held up by it.
    let drained = tokio::spawn(async move {
        for waiter in finished {
            let _ = waiter.await;
        }
    });
    Ok((addr, drained))
}

/// The connection slots every worker takes from (`max_connections`), and the call for room
/// when they are all taken.
struct Capacity {
    slots: Arc<Semaphore>,
    /// Notified once for each new connection that finds every slot taken: the fast-path
    /// connection waiting longest for a request, with nothing of one read, closes and frees
    /// its slot (nginx reuses idle connections the same way), so idle connections cannot
    /// lock everyone else out. With none waiting, the next connection to go idle closes.
    room: Notify,
}

impl Capacity {
    /// A slot for a connection just accepted: a free one at once, else the first one freed
    /// after asking an idle connection to make room.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, AcquireError> {
        let acquire = self.slots.clone().acquire_owned();
        tokio::pin!(acquire);
        // Queued first, then the call for room: the slot that frees goes to this waiter,
        // never to a connection another worker accepts meanwhile (which would leave this one
        // waiting with its call for room spent).
        let mut asked = false;
        std::future::poll_fn(|context| {
            let polled = acquire.as_mut().poll(context);
            if polled.is_pending() && !asked {
                asked = true;
                self.room.notify_one();
            }
            polled
        })
        .await
    }
}

/// What one worker thread's connections share.
struct Worker {
    proxy: Arc<Proxy>,
    /// The fast path's connections to instances.
    pool: h1::Pool,
    /// hyper's connections to instances, for the requests it serves.
    hyper: Upstream,
    builder: auto::Builder<TokioExecutor>,
    /// Raised once `shutdown` is cancelled, for the fast path to read per request.
    stopping: AtomicBool,
    shutdown: CancellationToken,
    capacity: Arc<Capacity>,
}

/// One worker: accepts until `shutdown`, then drains its connections.
async fn serve(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    capacity: Arc<Capacity>,
    mut opened: watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    // A held gateway (see `Gateway::start_held`) accepts nothing until it is opened.
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = opened.wait_for(|open| *open) => {}
    }
    let worker = Arc::new(Worker {
        pool: h1::Pool::new(proxy.config.connect_timeout),
        hyper: Upstream::new(proxy.config.connect_timeout),
        builder: builder(&proxy),
        stopping: AtomicBool::new(false),
        shutdown: shutdown.clone(),
        capacity: capacity.clone(),
        proxy,
    });
    tokio::spawn(sweep_forever(worker.clone()));
    let raise = worker.clone();
    tokio::spawn(async move {
        raise.shutdown.cancelled().await;
        raise.stopping.store(true, Ordering::Release);
        // Idle fast-path connections wait on `room`: each closes.
        raise.capacity.room.notify_waiters();
    });
    let connections = TaskTracker::new();
    loop {
        // The peer's address is asked of the socket where needed: not kept in every
        // connection's task.
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: give the system a moment.
                    tracing::warn!(%error, "gateway accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Past max_connections, one accepted connection per worker waits here for a slot;
        // the rest wait in the listen backlog.
        let slot = tokio::select! {
            _ = shutdown.cancelled() => break,
            slot = capacity.slot() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let _ = stream.set_nodelay(true);
        let worker = worker.clone();
        // Every byte of this task's state is kept for every connection, idle ones too.
        let task = async move {
            {
                // Scoped: not held across the awaits.
                let metrics = &worker.proxy.metrics;
                metrics.connections_open.fetch_add(1, Ordering::Relaxed);
                metrics.connections_total.fetch_add(1, Ordering::Relaxed);
            }
            // Awaited where it is made: a future bound to a name first is kept twice in
            // this task's state (the name and the awaited copy), for every connection.
            let handoff = h1::serve(
                stream,
                &worker.proxy,
                &worker.pool,
                &worker.stopping,
                &worker.capacity.room,
            )
            .await;
            if let Some(handoff) = handoff {
                // Boxed: hyper's connection state is allocated only for the connections
                // handed over, not in every fast-path connection's task.
                Box::pin(serve_general(handoff, &worker)).await;
            }
            let metrics = &worker.proxy.metrics;
            metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
            drop(slot);
        };
        connections.spawn(task);
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("gateway connections still open after {DRAIN_TIMEOUT:?}; closing them");
    }
}

/// Serves a connection the fast path handed over, with hyper, until it closes, idles out, or
/// the gateway stops (then its requests in flight finish first).
async fn serve_general(handoff: Handoff, worker: &Arc<Worker>) {
    let shutdown = &worker.shutdown;
    let peer = h1::peer_of(&handoff.stream);
    let activity = Arc::new(AtomicBool::new(true));
    let io = TokioIo::new(Watched {
        stream: handoff.stream,
        read: handoff.read,
        activity: activity.clone(),
    });
    let service = {
        let worker = worker.clone();
        service_fn(move |request| {
            let worker = worker.clone();
            async move { general::handle(&worker.proxy, &worker.hyper, request, peer).await }
        })
    };
    let connection = worker.builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    let idle = worker.proxy.config.idle_timeout;
    let mut stopping = false;
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(error) = served {
                    tracing::debug!(%peer, %error, "client connection ended");
                }
                return;
            }
            _ = idle_for(&activity, idle) => {
                tracing::debug!(%peer, "idle connection closed");
                return;
            }
            _ = shutdown.cancelled(), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

fn builder(proxy: &Proxy) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        // A client may shut down its side once its request is sent (`shutdown(SHUT_WR)`):
        // it still gets its answer.
        .half_close(true)
        .header_read_timeout(proxy.config.header_read_timeout)
        // Headers past the read buffer are refused with 431.
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_concurrent_streams(256)
        .keep_alive_interval(None);
    builder
}

/// Sweeps the worker's upstream pools every half idle timeout, and at once when the healthy
/// view changes: connections to an instance that left it (stopped, crashed, draining, failing
/// its probes) close then, rather than linger (half-closed, after a restart) until the next
/// tick.
async fn sweep_forever(worker: Arc<Worker>) {
    let mut tick = tokio::time::interval(POOL_IDLE_TIMEOUT / 2);
    let mut view = worker.proxy.view.clone();
    let mut view_open = true;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = view.changed(), if view_open => view_open = changed.is_ok(),
        }
        let live: HashSet<SocketAddr> = view
            .borrow_and_update()
            .values()
            .flat_map(|endpoints| endpoints.iter().map(|endpoint| endpoint.addr))
            .collect();
        worker.pool.sweep(|addr| live.contains(addr));
        worker.hyper.sweep(|addr| live.contains(addr));
    }
}

/// Resolves once a whole `period` passed without a byte read or written.
async fn idle_for(activity: &AtomicBool, period: Duration) {
    loop {
        tokio::time::sleep(period).await;
        if !activity.swap(false, Ordering::Relaxed) {
            return;
        }
    }
}

/// A handed-over client connection: first the bytes the fast path already read, then the
/// socket; noting that bytes moved, for the idle timeout.
struct Watched {
    stream: TcpStream,
    read: Bytes,
    activity: Arc<AtomicBool>,
}

impl Watched {
    fn moved(&self, bytes: usize) {
        if bytes > 0 {
            self.activity.store(true, Ordering::Relaxed);
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.read.is_empty() {
            let n = self.read.len().min(buf.remaining());
            buf.put_slice(&self.read[..n]);
            self.read.advance(n);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        self.moved(buf.filled().len() - before);
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = polled {
            self.moved(written);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(written)) = polled {
            self.moved(written);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
