//! Accepting clients: HTTP/1.1 with keep-alive and h2c (prior knowledge) on one port, with
//! upgrades, on a few worker threads (one per core, like nginx's workers): each runs its own
//! single-threaded runtime, listening socket (SO_REUSEPORT) and upstream pool, so a request,
//! its client connection and its upstream connection never change threads.
//!
//! Limits: at most `max_connections` connections in all (the rest wait in the listen backlog),
//! request headers within `header_read_timeout` (slowloris; between keep-alive requests too)
//! and within 64 KiB (431), and a connection with no bytes moving either way for
//! `idle_timeout` is closed (checked once per period, so after one to two periods). On
//! shutdown the listener closes at once and open connections finish their requests for up to
//! [`super::DRAIN_TIMEOUT`].

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::proxy::Proxy;
use super::upstream::{Upstream, sweep_forever};
use super::{DRAIN_TIMEOUT, MAX_HEADER_BYTES};

/// Starts `workers` threads serving `127.0.0.1:port` until `shutdown`; returns the address
/// and a task that ends when every worker has drained. Each worker has its own listening
/// socket on the port (SO_REUSEPORT), so the kernel spreads connections over the workers.
pub fn start(
    port: u16,
    proxy: Arc<Proxy>,
    workers: usize,
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
        socket.bind(addr)?;
        // The first bind picks the port when it is 0; the others join it.
        addr = socket.local_addr()?;
        let listener = {
            let _context = runtime.enter();
            socket.listen(1024)?
        };
        bound.push((runtime, listener));
    }
    let slots = Arc::new(Semaphore::new(proxy.config.max_connections as usize));
    let mut finished = Vec::new();
    for (worker, (runtime, listener)) in bound.into_iter().enumerate() {
        let (proxy, slots, shutdown) = (proxy.clone(), slots.clone(), shutdown.clone());
        let (done, waiter) = tokio::sync::oneshot::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name(format!("gateway-{worker}"))
            .spawn(move || {
                runtime.block_on(serve(listener, proxy, slots, shutdown));
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

/// One worker: accepts until `shutdown`, then drains its connections.
async fn serve(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    slots: Arc<Semaphore>,
    shutdown: CancellationToken,
) {
    let client = Arc::new(Upstream::new(proxy.config.connect_timeout));
    tokio::spawn(sweep_forever(client.clone()));
    let builder = Arc::new(builder(&proxy));
    let graceful = GracefulShutdown::new();
    loop {
        let slot = tokio::select! {
            _ = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
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
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(AtomicBool::new(true));
        let io = TokioIo::new(Watched {
            stream,
            activity: activity.clone(),
        });
        let service = {
            let (proxy, client) = (proxy.clone(), client.clone());
            service_fn(move |request| {
                let (proxy, client) = (proxy.clone(), client.clone());
                async move { proxy.handle(&client, request, peer).await }
            })
        };
        let watcher = graceful.watcher();
        let (builder, proxy, idle) = (builder.clone(), proxy.clone(), proxy.config.idle_timeout);
        tokio::spawn(async move {
            proxy
                .metrics
                .connections_open
                .fetch_add(1, Ordering::Relaxed);
            proxy
                .metrics
                .connections_total
                .fetch_add(1, Ordering::Relaxed);
            let connection = watcher.watch(builder.serve_connection_with_upgrades(io, service));
            tokio::select! {
                served = connection => if let Err(error) = served {
                    tracing::debug!(%peer, %error, "client connection ended");
                },
                _ = idle_for(&activity, idle) => tracing::debug!(%peer, "idle connection closed"),
            }
            proxy
                .metrics
                .connections_open
                .fetch_sub(1, Ordering::Relaxed);
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("gateway connections still open after {DRAIN_TIMEOUT:?}; closing them");
    }
}

fn builder(proxy: &Proxy) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
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

/// Resolves once a whole `period` passed without a byte read or written.
async fn idle_for(activity: &AtomicBool, period: Duration) {
    loop {
        tokio::time::sleep(period).await;
        if !activity.swap(false, Ordering::Relaxed) {
            return;
        }
    }
}

/// The client's TCP stream, noting that bytes moved.
struct Watched {
    stream: TcpStream,
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
