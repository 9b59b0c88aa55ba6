//! [`HandoffQueue`]: a FIFO of waiters whose lock also guards their
//! owner's state, where a waker hands what the oldest waiter waits for
//! straight to it (kernel: `struct semaphore`'s `wait_list` and `__up()`).
//! The type's docs hold the contract.

use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::task::{Context, Poll, Waker};

use crate::coop;
use crate::error::{Closed, Reason};
use crate::hook::{self, PointKind, QueueId, WakeKind};
use crate::registry::{self, WaitApi, WaitKind};
use crate::sync::{AtomicBool, AtomicU64, Mutex, MutexGuard, Ordering, PoisonError};
use crate::wake_batch;
use crate::TaskState;

/// A FIFO of waiters under one lock with their owner's state `S`; each
/// waiter carries a payload `W` (what it asks for, what it was given so
/// far) that the owner reads and writes under the same lock.
///
/// Kernel: `struct semaphore` (`kernel/locking/semaphore.c`): `lock`,
/// `count` and `wait_list` in one structure; `__down_common()` tests the
/// count and links its `semaphore_waiter` in one lock hold, and `__up()`
/// unlinks the first waiter, sets its `up` and wakes it. Here the owner's
/// `count` is `S`, `semaphore_waiter` is `W`, and "`up` set" is "no longer
/// linked".
///
/// A waiter calls [`poll_wait`](Self::poll_wait) with a [`HandoffEntry`]:
/// the first call runs `try_now` on the state under the lock, which either
/// completes at once or returns the payload to link; later calls complete
/// once a waker has handed the entry off. A waker [`lock`](Self::lock)s the
/// queue, changes the state, looks at the oldest waiter's payload
/// ([`HandoffGuard::front`]) and unlinks it with
/// [`hand_off_front`](HandoffGuard::hand_off_front); its waker is called
/// after the lock is released.
///
/// # Contract
///
/// - **FIFO.** Waiters are linked at the tail; only the oldest can be
///   handed off. The owner decides what a hand-off gives (the payload is
///   its record of it).
/// - **No lost wake-ups, and no window:** a waiter's test and its link are
///   one lock hold, and so are a waker's change and its hand-off. A waiter
///   is never woken to re-test: unlinked means served.
/// - **Giving up.** A waiter that stops waiting (dropped, signalled, timed
///   out, or told the queue closed) unlinks itself with
///   [`HandoffGuard::unlink`], which returns its payload if it was still
///   linked, or `None` if a hand-off came first: then what it waited for
///   is its own, and it must give it back.
/// - **Close** wakes every waiter; their next poll returns [`Closed`]
///   (unless handed off first) and leaves them linked, to unlink as above.
/// - Wakers are called, cloned and dropped outside the lock; `try_now` and
///   the owner's code under a guard run under it, and must not touch the
///   queue.
/// - A wait spends the task's [`coop`] budget, reports the test toolkit's
///   decision points ([`hook`]) and lists its sleep in the
///   [wait registry](crate::registry) when that is on.
///
/// # Examples
///
/// A counter whose waiters are served in order, one unit each:
///
/// ```
/// use std::task::{Context, Poll, Waker};
/// use waitq::{HandoffEntry, HandoffQueue, TaskState};
///
/// let queue = HandoffQueue::with_state(Some("units"), 0u32);
/// let mut cx = Context::from_waker(Waker::noop());
/// let mut entry = HandoffEntry::new();
/// // Nothing free: link, asking for one unit.
/// let take = |free: &mut u32| if *free > 0 { *free -= 1; Ok(()) } else { Err(1u32) };
/// assert!(queue.poll_wait(&mut cx, &mut entry, TaskState::Uninterruptible, take).is_pending());
/// // A release hands its unit to the oldest waiter instead of freeing it.
/// let mut guard = queue.lock();
/// assert_eq!(guard.front().copied(), Some(1));
/// guard.hand_off_front();
/// drop(guard); // wakes the waiter
/// assert_eq!(
///     queue.poll_wait(&mut cx, &mut entry, TaskState::Uninterruptible, take),
///     Poll::Ready(Ok(None)),
/// );
/// ```
pub struct HandoffQueue<S, W> {
    inner: Mutex<Inner<S, W>>,
    /// The sequence number of the newest node handed off (0: none yet),
    /// stored under the lock by [`HandoffGuard::hand_off_front`]. Nodes are
    /// handed off only from the head, in the order they were linked, so a
    /// linked entry whose number is at most this one has been served: its
    /// owner's next poll learns it without the lock (see `poll_queued`).
    served_to: AtomicU64,
    closed: AtomicBool,
    name: Option<&'static str>,
}

struct Inner<S, W> {
    state: S,
    /// The waiters in link order, which is sequence-number order (see
    /// [`Nodes`]).
    nodes: Nodes<W>,
    /// The last sequence number given out (0: none yet; entries start at 1).
    seq: u64,
}

struct Node<W> {
    seq: u64,
    waker: Option<Waker>,
    /// The sleep is listed in the wait registry under `(address, seq)`.
    recorded: bool,
    /// `None`: the waiter unlinked itself (a tombstone, see [`Nodes`]).
    payload: Option<W>,
}

/// The waiter list: the oldest waiter inline, the rest in a ring in link
/// order. Linking is a push at the back and a hand-off a pop at the
/// front, where a slab and a doubly linked list took a free-list update
/// and four link writes each way (`benches/sync.rs` under callgrind:
/// semaphore_64x8/ct 1,834 -> 1,799 instructions per acquire and release,
/// mutex_16/ct 1,342 -> 1,315 per lock). The inline node spares a queue's
/// first sleep an allocation (a lock or a semaphore rarely has two
/// waiters at once); the ring keeps its capacity.
///
/// The inline node, when there is one, is the oldest: a node goes inline
/// only into an empty list. A waiter that gives up in the ring leaves a
/// tombstone (its payload taken), so that nothing moves: a node's place
/// is its sequence number less the ring front's. The oldest node is never
/// a tombstone (they are dropped as they reach the front), and once
/// tombstones outnumber the live nodes the ring is compacted, so it holds
/// at most about twice the waiters; after a compaction a node is found by
/// a binary search on its number (the ring stays in order).
struct Nodes<W> {
    inline: Option<Node<W>>,
    ring: VecDeque<Node<W>>,
    /// Nodes that are not tombstones, the inline one included.
    live: usize,
}

/// Where a linked node is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum At {
    Inline,
    Ring(usize),
}

impl<W> Nodes<W> {
    const fn new() -> Self {
        Nodes {
            inline: None,
            ring: VecDeque::new(),
            live: 0,
        }
    }

    fn len(&self) -> usize {
        self.live
    }

    fn is_empty(&self) -> bool {
        self.live == 0
    }

    #[inline]
    fn push_back(&mut self, node: Node<W>) {
        if self.live == 0 {
            self.inline = Some(node);
        } else {
            self.ring.push_back(node);
        }
        self.live += 1;
    }

    /// The oldest waiter (never a tombstone).
    #[inline]
    fn front_mut(&mut self) -> Option<&mut Node<W>> {
        match self.inline {
            Some(ref mut node) => Some(node),
            None => self.ring.front_mut(),
        }
    }

    /// Where the live node numbered `seq` is, if it is linked.
    fn position(&self, seq: u64) -> Option<At> {
        if self.inline.as_ref().is_some_and(|node| node.seq == seq) {
            return Some(At::Inline);
        }
        let front = self.ring.front()?.seq;
        let guess = usize::try_from(seq.checked_sub(front)?).ok()?;
        let at = match self.ring.get(guess) {
            Some(node) if node.seq == seq => guess,
            // Moved down by a compaction (or not here at all).
            _ => self.ring.binary_search_by_key(&seq, |node| node.seq).ok()?,
        };
        self.ring[at].payload.is_some().then_some(At::Ring(at))
    }

    fn get_mut(&mut self, seq: u64) -> Option<&mut Node<W>> {
        match self.position(seq)? {
            At::Inline => self.inline.as_mut(),
            At::Ring(at) => Some(&mut self.ring[at]),
        }
    }

    /// Takes the waiter out of the list (its node, or what a tombstone
    /// keeps of it: the payload and the waker).
    fn remove(&mut self, seq: u64) -> Option<Node<W>> {
        let at = match self.position(seq)? {
            At::Inline => return self.pop_front(),
            At::Ring(0) if self.inline.is_none() => return self.pop_front(),
            At::Ring(at) => at,
        };
        let node = &mut self.ring[at];
        let taken = Node {
            seq,
            waker: node.waker.take(),
            recorded: node.recorded,
            payload: Some(node.payload.take()?),
        };
        self.live -= 1;
        if self.ring.len() > 2 * self.live + 8 {
            self.ring.retain(|node| node.payload.is_some());
        }
        Some(taken)
    }

    /// Takes the oldest waiter out (and the tombstones behind it): never
    /// a tombstone itself.
    #[inline(always)]
    fn pop_front(&mut self) -> Option<Node<W>> {
        let node = match self.inline.take() {
            Some(node) => node,
            None => self.ring.pop_front()?,
        };
        while self.ring.front().is_some_and(|node| node.payload.is_none()) {
            self.ring.pop_front();
        }
        self.live -= 1;
        Some(node)
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Node<W>> {
        self.inline
            .iter_mut()
            .chain(self.ring.iter_mut())
            .filter(|node| node.payload.is_some())
    }
}

/// A waiter's place in a [`HandoffQueue`]: empty until its first
/// [`poll_wait`](HandoffQueue::poll_wait) links it, and empty again once a
/// hand-off or [`HandoffGuard::unlink`] takes it out.
///
/// The entry is the node's sequence number, unique in its queue, so an
/// entry never touches another waiter's node (a stale copy is harmless).
///
/// An entry is plain data: dropping it while it is queued leaves its node
/// linked, and as the oldest it would block everyone behind it. A future
/// that owns one unlinks it in its `Drop` ([`HandoffGuard::unlink`]), as
/// the runtime's semaphore does.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HandoffEntry {
    /// The sleep is listed in the wait registry under `(address, seq)`,
    /// until its owner sees it served or unlinks it.
    recorded: bool,
    /// 0: not linked.
    seq: u64,
}

impl HandoffEntry {
    /// An entry that is not linked.
    pub const fn new() -> Self {
        HandoffEntry {
            recorded: false,
            seq: 0,
        }
    }

    /// Whether the entry was linked by a `poll_wait` and nothing has taken
    /// it out since, as far as its owner knows (a hand-off clears it on
    /// the owner's next poll).
    pub fn is_queued(&self) -> bool {
        self.seq != 0
    }
}

/// The state of a [`HandoffQueue`], locked (see [`HandoffQueue::lock`]).
/// Derefs to the state; the waiters handed off in this hold are woken
/// when it is dropped, after the lock is released.
#[must_use = "the lock is released when the guard is dropped"]
pub struct HandoffGuard<'a, S, W> {
    // Fields drop in their order: the lock is released before `woken`'s
    // drop wakes anybody.
    inner: MutexGuard<'a, Inner<S, W>>,
    woken: Woken<'a, S, W>,
}

/// The wakers a [`HandoffGuard`]'s hold collected: called (or dropped)
/// when it drops, after the lock.
struct Woken<'a, S, W> {
    queue: &'a HandoffQueue<S, W>,
    site: &'static Location<'static>,
    /// The wakers of the waiters handed off in this hold.
    first: Option<Waker>,
    rest: Vec<Waker>,
    /// Wakers of waiters that unlinked themselves: dropped, not called.
    unlinked: Vec<Waker>,
}

// ===== impl HandoffQueue =====

impl<S, W> HandoffQueue<S, W> {
    /// An empty queue whose lock guards `state`. `const`. `name` is what
    /// task dumps and the wait registry report for its sleepers.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue: waitq::HandoffQueue<u32, u32> = waitq::HandoffQueue::with_state(None, 3);
    /// assert_eq!(*queue.lock(), 3);
    /// ```
    pub const fn with_state(name: Option<&'static str>, state: S) -> Self {
        HandoffQueue {
            inner: Mutex::new(Inner {
                state,
                nodes: Nodes::new(),
                seq: 0,
            }),
            served_to: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            name,
        }
    }

    /// The name given at creation.
    pub fn name(&self) -> Option<&'static str> {
        self.name
    }

    /// The queue's id for the test toolkit and the wait registry: its
    /// address.
    pub fn id(&self) -> QueueId {
        QueueId::of_addr(self as *const Self as usize)
    }

    /// Locks the state and the waiter list. Waiters handed off under the
    /// guard are woken when it is dropped.
    ///
    /// Kernel: `raw_spin_lock_irqsave(&sem->lock, flags)`.
    #[track_caller]
    pub fn lock(&self) -> HandoffGuard<'_, S, W> {
        HandoffGuard {
            inner: self.lock_inner(),
            woken: Woken {
                queue: self,
                site: Location::caller(),
                first: None,
                rest: Vec::new(),
                unlinked: Vec::new(),
            },
        }
    }

    /// How many waiters are linked (a snapshot).
    pub fn len(&self) -> usize {
        self.lock_inner().nodes.len()
    }

    /// Whether nobody waits (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Closes the queue: every waiter is woken, and its poll (and every
    /// later first poll whose `try_now` does not complete) returns
    /// [`Closed`]. Returns how many were woken.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue: waitq::HandoffQueue<(), u32> = waitq::HandoffQueue::with_state(None, ());
    /// assert_eq!(queue.close(), 0);
    /// assert!(queue.is_closed());
    /// ```
    #[track_caller]
    pub fn close(&self) -> usize {
        let mut guard = self.lock();
        self.closed.store(true, Ordering::Release);
        let nodes = &mut guard.inner.nodes;
        let mut wakers = Vec::with_capacity(nodes.len());
        for node in nodes.iter_mut() {
            wakers.extend(node.waker.take());
        }
        drop(guard);
        let woken = wakers.len();
        let panic = wake_batch::wake_each(wakers);
        hook::woke_on(
            self.id(),
            self.name,
            Location::caller(),
            woken,
            WakeKind::Close,
        );
        wake_batch::resume(panic);
        woken
    }

    /// One step of a wait for a hand-off.
    ///
    /// - First call (`entry` not queued): `try_now` runs on the state under
    ///   the lock. `Ok(r)` completes at once: `Ready(Ok(Some(r)))`.
    ///   `Err(payload)` links the entry at the tail with the payload and
    ///   `cx`'s waker, in the same hold: `Pending`. On a closed queue the
    ///   entry is not linked: `Ready(Err(Closed))`.
    /// - Later calls: `Ready(Ok(None))` once a waker has handed the entry
    ///   off (it is then empty again), `Ready(Err(Closed))` if the queue
    ///   closed first (the entry stays linked: unlink it), else `Pending`
    ///   with the stored waker refreshed.
    ///
    /// Spends one unit of the [`coop`] budget (refunded when `Pending`).
    /// `state` is how the waiter sleeps, for dumps and the toolkit; a
    /// signal or deadline is the caller's to watch.
    ///
    /// Kernel: one pass of `__down_common()`'s loop.
    ///
    /// # Errors
    ///
    /// [`Closed`] as above.
    #[track_caller]
    pub fn poll_wait<R>(
        &self,
        cx: &mut Context<'_>,
        entry: &mut HandoffEntry,
        state: TaskState,
        try_now: impl FnOnce(&mut S) -> Result<R, W>,
    ) -> Poll<Result<Option<R>, Closed>> {
        if hook::is_probing() {
            self.probe_entry(Location::caller(), entry, state);
            return Poll::Pending;
        }
        if coop::poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        let poll = self.poll_wait_spent(cx, entry, state, try_now);
        if poll.is_pending() {
            coop::refund();
        }
        poll
    }

    /// [`poll_wait`](Self::poll_wait) for a caller that has spent this
    /// poll's [`coop`] budget unit itself (and refunds it when the poll
    /// ends `Pending`) and has handled the test toolkit's probe mode
    /// ([`hook::is_probing`]; see [`probe_entry`](Self::probe_entry)): a
    /// semaphore whose lock-free fast path failed goes on here without a
    /// second budget check.
    ///
    /// # Errors
    ///
    /// [`Closed`] as [`poll_wait`](Self::poll_wait).
    #[track_caller]
    pub fn poll_wait_spent<R>(
        &self,
        cx: &mut Context<'_>,
        entry: &mut HandoffEntry,
        state: TaskState,
        try_now: impl FnOnce(&mut S) -> Result<R, W>,
    ) -> Poll<Result<Option<R>, Closed>> {
        self.poll_wait_at(cx, entry, state, None, Location::caller(), try_now)
    }

    /// [`poll_wait_spent`](Self::poll_wait_spent) with the wait site
    /// given, and the deadline of a wait that ends at one (the caller
    /// watches it): an owner whose wait future is made in one place and
    /// polled in another (a lock's `lock()`) names where its user called
    /// it, and a timed wait is listed with its deadline, so that dumps show
    /// it and the hung-task detector, which leaves timed waits alone, leaves
    /// this one alone.
    ///
    /// # Errors
    ///
    /// [`Closed`] as [`poll_wait`](Self::poll_wait).
    pub fn poll_wait_at<R>(
        &self,
        cx: &mut Context<'_>,
        entry: &mut HandoffEntry,
        state: TaskState,
        deadline: Option<std::time::Instant>,
        site: &'static Location<'static>,
        try_now: impl FnOnce(&mut S) -> Result<R, W>,
    ) -> Poll<Result<Option<R>, Closed>> {
        if entry.is_queued() {
            self.poll_queued(cx.waker(), entry)
        } else {
            self.poll_first(cx.waker(), entry, state, deadline, site, try_now)
        }
    }

    /// Probe mode ([`hook::is_probing`]): reports the waiter behind
    /// `entry` to the test toolkit and changes nothing (a wait in probe
    /// mode returns `Pending`).
    pub fn probe_entry(
        &self,
        site: &'static Location<'static>,
        entry: &HandoffEntry,
        state: TaskState,
    ) {
        let linked = entry.is_queued() && self.lock_inner().find(entry).is_some();
        self.probe(site, state, linked, None);
    }

    /// The first step: test, and link if not done, in one hold.
    fn poll_first<R>(
        &self,
        waker: &Waker,
        entry: &mut HandoffEntry,
        state: TaskState,
        deadline: Option<std::time::Instant>,
        site: &'static Location<'static>,
        try_now: impl FnOnce(&mut S) -> Result<R, W>,
    ) -> Poll<Result<Option<R>, Closed>> {
        hook::decide_on(PointKind::BeforeLink, self.id(), self.name, site);
        let waker = waker.clone();
        let mut inner = self.lock_inner();
        let payload = match try_now(&mut inner.state) {
            Ok(done) => return Poll::Ready(Ok(Some(done))),
            Err(payload) => payload,
        };
        if self.closed.load(Ordering::Relaxed) {
            drop(inner);
            return Poll::Ready(Err(Closed::new(Reason::Closed)));
        }
        // Listed under the number the node is about to get, so that the
        // node is written once (a lookup after the link cost ~15
        // instructions per contended acquire).
        let recorded = registry::is_recording() && {
            let kind = WaitKind::new(WaitApi::Handoff, state, true, deadline);
            let seq = inner.seq + 1;
            let listed = registry::record_on(self.id(), self.name, seq, site, kind).any();
            if listed && deadline.is_some() {
                // A task's slot takes the deadline apart from the kind.
                registry::set_deadline_on(self.id(), seq, deadline);
            }
            listed
        };
        *entry = inner.push_back(payload, waker, recorded);
        Poll::Pending
    }

    /// A later step: served, closed, or still waiting.
    fn poll_queued<R>(
        &self,
        waker: &Waker,
        entry: &mut HandoffEntry,
    ) -> Poll<Result<Option<R>, Closed>> {
        // Served (the common case: a waiter is polled because a hand-off
        // woke it) is known without the lock; see `served_to`. The
        // Acquire pairs with the hand-off's Release, so whatever the
        // waker did before it (the data a lock guards) is visible.
        if self.served_to.load(Ordering::Acquire) >= entry.seq {
            return self.served(entry);
        }
        let mut inner = self.lock_inner();
        let Some(node) = inner.find(entry) else {
            drop(inner);
            return self.served(entry);
        };
        if self.closed.load(Ordering::Relaxed) {
            return Poll::Ready(Err(Closed::new(Reason::Closed)));
        }
        if node.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            return Poll::Pending;
        }
        drop(inner);
        // Cloned, and the old one dropped, outside the lock.
        let new = waker.clone();
        let mut inner = self.lock_inner();
        let old = match inner.find(entry) {
            Some(node) => node.waker.replace(new),
            None => {
                drop(inner);
                return self.served(entry);
            }
        };
        drop(inner);
        drop(old);
        Poll::Pending
    }

    /// A poll found `entry` unlinked by a hand-off: it is served, and its
    /// sleep (listed as picked since the hand-off) is unlisted.
    fn served<R>(&self, entry: &mut HandoffEntry) -> Poll<Result<Option<R>, Closed>> {
        let taken = std::mem::take(entry);
        if taken.recorded {
            registry::remove_on(self.id(), taken.seq);
        }
        hook::claimed_on(self.id());
        Poll::Ready(Ok(None))
    }

    /// Reports the waiter to the test toolkit's probe.
    fn probe(
        &self,
        site: &'static Location<'static>,
        state: TaskState,
        linked: bool,
        condition: Option<bool>,
    ) {
        hook::probed(hook::Sleeper {
            queue: self.id(),
            site,
            exclusive: true,
            state,
            linked,
            condition,
            kind: WaitKind::new(WaitApi::Handoff, state, true, None),
        });
    }

    fn lock_inner(&self) -> MutexGuard<'_, Inner<S, W>> {
        // Only the owner's code under a guard can panic under the lock; the
        // list itself is never left half-written.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S: fmt::Debug, W> fmt::Debug for HandoffQueue<S, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock_inner();
        f.debug_struct("HandoffQueue")
            .field("name", &self.name)
            .field("state", &inner.state)
            .field("waiters", &inner.nodes.len())
            .field("closed", &self.is_closed())
            .finish()
    }
}

// ===== impl Inner =====

impl<S, W> Inner<S, W> {
    /// Links a node at the tail with the next sequence number
    /// (`self.seq + 1`), listed in the wait registry or not.
    fn push_back(&mut self, payload: W, waker: Waker, recorded: bool) -> HandoffEntry {
        self.seq += 1;
        let seq = self.seq;
        self.nodes.push_back(Node {
            seq,
            waker: Some(waker),
            recorded,
            payload: Some(payload),
        });
        HandoffEntry { recorded, seq }
    }

    fn find(&mut self, entry: &HandoffEntry) -> Option<&mut Node<W>> {
        self.nodes.get_mut(entry.seq)
    }
}

// ===== impl HandoffGuard =====

impl<S, W> HandoffGuard<'_, S, W> {
    /// The oldest waiter's payload, if anybody waits.
    pub fn front(&mut self) -> Option<&mut W> {
        self.inner.nodes.front_mut()?.payload.as_mut()
    }

    /// Whether nobody waits.
    pub fn is_empty(&self) -> bool {
        self.inner.nodes.is_empty()
    }

    /// How many wait.
    pub fn len(&self) -> usize {
        self.inner.nodes.len()
    }

    /// Unlinks the oldest waiter, which is served: its next poll returns
    /// `Ready(Ok(None))`. Its waker is called when the guard is dropped.
    /// Returns its payload (`None`: nobody waits).
    ///
    /// Kernel: `__up()`: `list_del(&waiter->list); waiter->up = true;
    /// wake_q_add(...)`.
    pub fn hand_off_front(&mut self) -> Option<W> {
        let node = self.inner.nodes.pop_front()?;
        let woken = &mut self.woken;
        // Under the lock, and in link order (the front is the oldest): the
        // watermark `served_to` describes.
        woken.queue.served_to.store(node.seq, Ordering::Release);
        if node.recorded && registry::is_enabled() {
            // Listed until its owner sees it (the lost-grant detector, which
            // turns the whole registry on, looks for hand-offs nobody
            // takes; a task's slot has no place for the mark).
            registry::note_picked_on(woken.queue.id(), &[node.seq]);
        }
        match (&woken.first, node.waker) {
            (None, waker) => woken.first = waker,
            (Some(_), Some(waker)) => woken.rest.push(waker),
            (Some(_), None) => {}
        }
        node.payload
    }

    /// Takes `entry` out of the list if it is still linked, and returns
    /// its payload; `None` if it was handed off (what it waited for is its
    /// owner's, to give back or keep) or never linked. `entry` is empty
    /// afterwards. For a waiter that stops waiting.
    ///
    /// Kernel: `list_del(&waiter.list)` on `__down_common()`'s
    /// interrupted and timed-out paths.
    pub fn unlink(&mut self, entry: &mut HandoffEntry) -> Option<W> {
        let taken = std::mem::take(entry);
        if !taken.is_queued() {
            return None;
        }
        if taken.recorded {
            registry::remove_on(self.woken.queue.id(), taken.seq);
        }
        let node = self.inner.nodes.remove(taken.seq)?;
        // Dropped outside the lock, with the guard's wakers.
        self.woken.unlinked.extend(node.waker);
        node.payload
    }
}

impl<S, W> Drop for Woken<'_, S, W> {
    fn drop(&mut self) {
        // The unlinked wakers go with the buffer, after this (most holds
        // have none, and at most one woken).
        let Some(first) = self.first.take() else {
            return;
        };
        if !self.rest.is_empty() || std::thread::panicking() {
            // Several, or a hand-off from a destructor run by a panic
            // (a guard dropped while unwinding), where a waker's panic
            // must not escape: it would abort the process.
            return self.wake_many(first);
        }
        hook::handed_on(self.queue.id(), self.queue.name, &first);
        // Nobody after it to strand: a panic goes straight to the caller.
        first.wake();
        hook::woke_on(
            self.queue.id(),
            self.queue.name,
            self.site,
            1,
            WakeKind::WakeUp,
        );
    }
}

impl<S, W> Woken<'_, S, W> {
    /// More than one waiter was handed off: each is woken even if one's
    /// waker panics (see [`wake_batch::wake_each`]). Kept out of line: a hold that
    /// hands off one waiter (most) stays as small as it was (a
    /// `catch_unwind` inlined into every hand-off cost a contended
    /// semaphore about 80 instructions per acquire, through inlining lost
    /// around it).
    #[inline(never)]
    fn wake_many(&mut self, first: Waker) {
        let woken = 1 + self.rest.len();
        if hook::is_enabled() {
            for waker in std::iter::once(&first).chain(&self.rest) {
                hook::handed_on(self.queue.id(), self.queue.name, waker);
            }
        }
        let panic = wake_batch::wake_each(std::iter::once(first).chain(self.rest.drain(..)));
        hook::woke_on(
            self.queue.id(),
            self.queue.name,
            self.site,
            woken,
            WakeKind::WakeUp,
        );
        wake_batch::resume(panic);
    }
}

impl<S, W> Deref for HandoffGuard<'_, S, W> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.inner.state
    }
}

impl<S, W> DerefMut for HandoffGuard<'_, S, W> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.inner.state
    }
}

impl<S: fmt::Debug, W> fmt::Debug for HandoffGuard<'_, S, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandoffGuard")
            .field("state", &**self)
            .field("waiters", &self.len())
            .finish()
    }
}
