//! One gateway worker's connections to instances, counted per instance: at most a limit open
//! to one instance at once, the idle ones kept for reuse (the most recently returned first).
//! A request that finds none idle and the instance at its limit waits in line for the next
//! connection returned, or for the place of the next one closed, as Envoy's pending requests
//! do, instead of dialling past the limit. So a burst of thousands of clients reuses a
//! bounded set of connections rather than opening and closing thousands, each of which would
//! leave a loopback port in TIME_WAIT for a minute until connecting fails.
//!
//! An open connection holds a [`Slot`]; dropping the connection gives its place back (to the
//! first one waiting, if any). Nothing here does I/O: the connection type says whether an
//! idle connection is still usable ([`Reusable`]), the caller dials.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// A connection the pool can keep.
pub trait Reusable: Sized {
    /// Still open and with nothing unasked to read: fit for the next request.
    fn is_open_and_idle(&self) -> bool;

    /// The connection's place under its instance's limit.
    fn slot(&self) -> &Slot<Self>;
}

/// What a request gets from the pool: an idle connection, or a place to dial a new one in.
#[derive(Debug)]
pub enum Grant<C> {
    Reuse(C),
    Dial(Slot<C>),
}

/// The instance left the registry, or the gateway worker stopped, while a request waited.
#[derive(Debug, thiserror::Error)]
#[error("the instance is gone")]
pub struct Gone;

type Instances<C> = Mutex<HashMap<SocketAddr, Instance<C>>>;

struct Instance<C> {
    /// Connections open (idle, in use or being dialled), each with its slot.
    open: usize,
    idle: Vec<(C, Instant)>,
    waiting: VecDeque<oneshot::Sender<Grant<C>>>,
}

impl<C> Default for Instance<C> {
    fn default() -> Self {
        Instance {
            open: 0,
            idle: Vec::new(),
            waiting: VecDeque::new(),
        }
    }
}

/// One connection's place under its instance's limit; given back when dropped.
pub struct Slot<C> {
    instances: Weak<Instances<C>>,
    addr: SocketAddr,
    armed: bool,
}

impl<C> std::fmt::Debug for Slot<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").field("addr", &self.addr).finish()
    }
}

impl<C> Slot<C> {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl<C> Drop for Slot<C> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Some(instances) = self.instances.upgrade() else {
            return;
        };
        // The place passes to the first request still waiting, or is given back.
        loop {
            let mut map = lock(&instances);
            let Some(instance) = map.get_mut(&self.addr) else {
                return;
            };
            let Some(waiter) = instance.waiting.pop_front() else {
                instance.open -= 1;
                return;
            };
            drop(map);
            let slot = Slot {
                instances: self.instances.clone(),
                addr: self.addr,
                armed: true,
            };
            match waiter.send(Grant::Dial(slot)) {
                Ok(()) => return,
                // That request gave up waiting: its place is still ours to pass on.
                Err(Grant::Dial(mut slot)) => slot.armed = false,
                Err(Grant::Reuse(_)) => unreachable!("a place was sent"),
            }
        }
    }
}

fn lock<C>(instances: &Instances<C>) -> MutexGuard<'_, HashMap<SocketAddr, Instance<C>>> {
    instances.lock().unwrap_or_else(|p| p.into_inner())
}

/// One worker's connections to every instance. Idle connections hold only a weak reference
/// back, so dropping the last handle closes them.
pub struct Pool<C> {
    limit: usize,
    instances: Arc<Instances<C>>,
}

/// A handle on the same connections (for a task that puts one back later).
impl<C> Clone for Pool<C> {
    fn clone(&self) -> Self {
        Pool {
            limit: self.limit,
            instances: self.instances.clone(),
        }
    }
}

impl<C> std::fmt::Debug for Pool<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("limit", &self.limit).finish()
    }
}

impl<C: Reusable> Pool<C> {
    /// At most `limit` (at least 1) connections open to one instance.
    pub fn new(limit: usize) -> Self {
        Pool {
            limit: limit.max(1),
            instances: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The most recently returned usable connection to `addr`; else a place to dial one in;
    /// else, with `addr` at its limit, whichever of the two comes first.
    pub async fn acquire(&self, addr: SocketAddr) -> Result<Grant<C>, Gone> {
        let waiting = {
            // Declared before the guard, so dropped after it: closing a connection takes
            // the lock.
            let mut unusable = Vec::new();
            let mut map = lock(&self.instances);
            let instance = map.entry(addr).or_default();
            while let Some((connection, _)) = instance.idle.pop() {
                if connection.is_open_and_idle() {
                    return Ok(Grant::Reuse(connection));
                }
                unusable.push(connection);
            }
            if instance.open < self.limit {
                instance.open += 1;
                return Ok(Grant::Dial(Slot {
                    instances: Arc::downgrade(&self.instances),
                    addr,
                    armed: true,
                }));
            }
            let (sender, receiver) = oneshot::channel();
            instance.waiting.retain(|waiter| !waiter.is_closed());
            instance.waiting.push_back(sender);
            receiver
        };
        waiting.await.map_err(|_| Gone)
    }

    /// A connection to `addr`: an idle one, or one `dial` makes in the place granted (see
    /// [`Pool::acquire`]).
    pub async fn get<E, Dialled>(
        &self,
        addr: SocketAddr,
        dial: impl FnOnce(Slot<C>) -> Dialled,
    ) -> Result<C, E>
    where
        Dialled: Future<Output = Result<C, E>>,
        E: From<Gone>,
    {
        match self.acquire(addr).await? {
            Grant::Reuse(connection) => Ok(connection),
            Grant::Dial(slot) => dial(slot).await,
        }
    }

    /// Takes a connection back after its exchange, fit for another: to the first request
    /// waiting for its instance, or into the idle list.
    pub fn put_back(&self, mut connection: C) {
        let addr = connection.slot().addr;
        loop {
            let mut map = lock(&self.instances);
            let instance = map.entry(addr).or_default();
            let Some(waiter) = instance.waiting.pop_front() else {
                instance.idle.push((connection, Instant::now()));
                return;
            };
            drop(map);
            match waiter.send(Grant::Reuse(connection)) {
                Ok(()) => return,
                Err(Grant::Reuse(back)) => connection = back,
                Err(Grant::Dial(_)) => unreachable!("a connection was sent"),
            }
        }
    }

    /// Closes idle connections that are unusable or idle longer than `max_idle`, and every
    /// idle one to an address that is not `live`.
    pub fn sweep(&self, max_idle: Duration, live: impl Fn(&SocketAddr) -> bool) {
        let mut closing = Vec::new();
        let mut map = lock(&self.instances);
        map.retain(|addr, instance| {
            if !live(addr) {
                // Requests waiting for it end; connections still in use close uncounted.
                closing.append(&mut instance.idle);
                return false;
            }
            let (keep, close) = std::mem::take(&mut instance.idle).into_iter().partition(
                |(connection, returned)| {
                    returned.elapsed() < max_idle && connection.is_open_and_idle()
                },
            );
            instance.idle = keep;
            closing.extend::<Vec<_>>(close);
            true
        });
        drop(map);
        drop(closing);
    }

    /// Connections open to `addr` and idle among them.
    pub fn counts(&self, addr: SocketAddr) -> (usize, usize) {
        lock(&self.instances)
            .get(&addr)
            .map_or((0, 0), |instance| (instance.open, instance.idle.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Fake {
        slot: Slot<Fake>,
        open: bool,
    }

    impl Reusable for Fake {
        fn is_open_and_idle(&self) -> bool {
            self.open
        }
        fn slot(&self) -> &Slot<Self> {
            &self.slot
        }
    }

    const ADDR: &str = "127.0.0.1:9";

    fn addr() -> SocketAddr {
        ADDR.parse().unwrap()
    }

    async fn dialled(pool: &Pool<Fake>) -> Fake {
        match pool.acquire(addr()).await.unwrap() {
            Grant::Dial(slot) => Fake { slot, open: true },
            Grant::Reuse(_) => panic!("expected a place to dial"),
        }
    }

    fn reused(grant: Result<Grant<Fake>, Gone>) -> Fake {
        match grant.unwrap() {
            Grant::Reuse(connection) => connection,
            Grant::Dial(_) => panic!("expected an idle connection"),
        }
    }

    /// A request for a connection that, polled once, waits in line.
    fn queued(
        pool: &Pool<Fake>,
    ) -> std::pin::Pin<Box<impl Future<Output = Result<Grant<Fake>, Gone>> + '_>> {
        let mut waiting = Box::pin(pool.acquire(addr()));
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(
            waiting.as_mut().poll(&mut context).is_pending(),
            "not waiting"
        );
        waiting
    }

    #[tokio::test]
    async fn past_the_limit_a_request_waits_for_the_next_connection_returned() {
        let pool = Pool::new(2);
        let first = dialled(&pool).await;
        let _second = dialled(&pool).await;
        let third = queued(&pool);
        pool.put_back(first);
        // The returned connection is handed over.
        let handed_over = reused(third.await);
        assert!(handed_over.open);
        assert_eq!(pool.counts(addr()), (2, 0));
    }

    #[tokio::test]
    async fn a_closed_connection_passes_its_place_to_the_first_waiting() {
        let pool = Pool::new(1);
        let only = dialled(&pool).await;
        let gave_up = queued(&pool);
        let next = queued(&pool);
        drop(gave_up);
        drop(only);
        assert!(matches!(next.await.unwrap(), Grant::Dial(_)));
        // The place granted was dropped unused: given back.
        assert_eq!(pool.counts(addr()), (0, 0));
    }

    #[tokio::test]
    async fn idle_connections_are_reused_newest_first_and_unusable_ones_closed() {
        let pool = Pool::new(3);
        let (mut a, b, mut c) = (
            dialled(&pool).await,
            dialled(&pool).await,
            dialled(&pool).await,
        );
        a.open = false;
        c.open = false;
        pool.put_back(b);
        pool.put_back(a);
        pool.put_back(c);
        assert_eq!(pool.counts(addr()), (3, 3));
        // c and a are closed: skipped and closed; b is reused.
        let b = reused(pool.acquire(addr()).await);
        assert!(b.open);
        assert_eq!(pool.counts(addr()), (1, 0));
    }

    #[tokio::test]
    async fn sweep_closes_idle_connections_to_departed_instances_and_expired_ones() {
        let pool = Pool::new(4);
        let (a, b) = (dialled(&pool).await, dialled(&pool).await);
        let in_use = dialled(&pool).await;
        pool.put_back(a);
        pool.put_back(b);
        pool.sweep(Duration::from_secs(60), |_| true);
        assert_eq!(pool.counts(addr()), (3, 2));
        pool.sweep(Duration::ZERO, |_| true);
        assert_eq!(pool.counts(addr()), (1, 0));
        pool.sweep(Duration::from_secs(60), |_| false);
        drop(in_use);
        assert_eq!(pool.counts(addr()), (0, 0));
    }

    #[tokio::test]
    async fn a_dropped_pool_closes_its_idle_connections_and_ends_the_waiting() {
        let pool = Pool::new(1);
        let only = dialled(&pool).await;
        let waiting = queued(&pool);
        pool.put_back(only);
        // Handed over to the one waiting, not kept idle.
        let only = reused(waiting.await);
        pool.put_back(only);
        let watched = Arc::downgrade(&pool.instances);
        drop(pool);
        assert!(
            watched.upgrade().is_none(),
            "idle connections kept the pool alive"
        );
    }
}
