//! Bodies on both sides of the gateway, streamed frame by frame:
//!
//! - [`Counted`]: the client's body, failing once it passes `max_body` (→ 413).
//! - [`RequestBody`]: that body as tries can send it: `Empty` or `Buffered` (small bodies of
//!   idempotent requests, kept so a retry can send them again) any number of times, or
//!   `Once`: a stream handed to the first try that actually reads it. A try whose connection
//!   failed never read it, so the next try still can: connect failures retry any request.
//! - [`ReplyBody`]: what the client receives: the gateway's own bytes, or the instance's
//!   stream together with the balancer guards, so the request counts as in flight on its
//!   instance until the last byte is through.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The client sent more than the gateway's `max_body`.
#[derive(Debug, thiserror::Error)]
#[error("the request body is larger than {limit} bytes")]
pub struct TooLarge {
    pub limit: u64,
}

/// The client's body, counted against a limit; `over` is raised when it is passed.
#[derive(Debug)]
pub struct Counted {
    inner: Incoming,
    seen: u64,
    limit: u64,
    over: Arc<AtomicBool>,
}

impl Counted {
    pub fn new(inner: Incoming, limit: u64, over: Arc<AtomicBool>) -> Self {
        Counted {
            inner,
            seen: 0,
            limit,
            over,
        }
    }
}

impl Body for Counted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    this.seen = this.seen.saturating_add(data.len() as u64);
                    if this.seen > this.limit {
                        this.over.store(true, Ordering::Release);
                        return Poll::Ready(Some(Err(Box::new(TooLarge { limit: this.limit }))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(error)) => Poll::Ready(Some(Err(Box::new(error)))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The request body as the tries of one request can send it.
#[derive(Debug)]
pub enum RequestBody {
    Empty,
    Buffered(Bytes),
    Once {
        slot: Arc<Mutex<Option<Counted>>>,
        hint: SizeHint,
        /// Raised when the stream passed its limit.
        over: Arc<AtomicBool>,
    },
}

impl RequestBody {
    /// The client's body, streamed to the first try that reads it, counted against `limit`.
    pub fn once(body: Incoming, limit: u64) -> Self {
        let over = Arc::new(AtomicBool::new(false));
        let body = Counted::new(body, limit, over.clone());
        RequestBody::Once {
            hint: body.size_hint(),
            slot: Arc::new(Mutex::new(Some(body))),
            over,
        }
    }

    /// True once the client's body passed the limit (→ 413).
    pub fn over_limit(&self) -> bool {
        match self {
            RequestBody::Once { over, .. } => over.load(Ordering::Acquire),
            RequestBody::Empty | RequestBody::Buffered(_) => false,
        }
    }

    /// Whether another try can still send the whole body.
    pub fn replayable(&self) -> bool {
        match self {
            RequestBody::Empty | RequestBody::Buffered(_) => true,
            RequestBody::Once { slot, .. } => {
                slot.lock().unwrap_or_else(|p| p.into_inner()).is_some()
            }
        }
    }

    /// The body for one more try, or `None` when an earlier try already started sending it.
    pub fn for_try(&self) -> Option<UpstreamBody> {
        match self {
            RequestBody::Empty => Some(UpstreamBody::Full(None)),
            RequestBody::Buffered(bytes) => Some(UpstreamBody::Full(Some(bytes.clone()))),
            RequestBody::Once { slot, hint, .. } => self.replayable().then(|| UpstreamBody::Once {
                slot: slot.clone(),
                taken: None,
                hint: *hint,
            }),
        }
    }
}

/// One try's request body, as the upstream client sends it.
#[derive(Debug)]
pub enum UpstreamBody {
    Full(Option<Bytes>),
    Once {
        slot: Arc<Mutex<Option<Counted>>>,
        taken: Option<Counted>,
        hint: SizeHint,
    },
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            UpstreamBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            UpstreamBody::Once { slot, taken, .. } => {
                if taken.is_none() {
                    *taken = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
                    if taken.is_none() {
                        // Never send half a body: another try has the stream.
                        return Poll::Ready(Some(Err("the request body was already sent".into())));
                    }
                }
                match taken {
                    Some(body) => Pin::new(body).poll_frame(cx),
                    None => Poll::Ready(None),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Full(bytes) => bytes.is_none(),
            UpstreamBody::Once { taken, hint, .. } => match taken {
                Some(body) => body.is_end_stream(),
                None => hint.exact() == Some(0),
            },
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            UpstreamBody::Once { taken, hint, .. } => match taken {
                Some(body) => body.size_hint(),
                None => *hint,
            },
        }
    }
}

pub use crate::balance::Hold;

/// The body of every response the gateway sends.
#[derive(Debug)]
pub enum ReplyBody {
    Full(Option<Bytes>),
    Upstream { body: Incoming, hold: Option<Hold> },
}

impl ReplyBody {
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        ReplyBody::Full(Some(bytes.into()))
    }

    pub fn empty() -> Self {
        ReplyBody::Full(None)
    }
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ReplyBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ReplyBody::Upstream { body, hold } => {
                let frame = ready!(Pin::new(body).poll_frame(cx));
                if frame.is_none() {
                    // Done: the instance no longer serves this request.
                    hold.take();
                }
                Poll::Ready(frame.map(|f| f.map_err(|e| Box::new(e) as BoxError)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReplyBody::Full(bytes) => bytes.is_none(),
            ReplyBody::Upstream { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReplyBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ReplyBody::Upstream { body, .. } => body.size_hint(),
        }
    }
}
