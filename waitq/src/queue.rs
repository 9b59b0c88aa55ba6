//! The wait queue head: a mutex-protected [`WaitList`] plus a lock-free
//! waiter count, and the wake walk.
//!
//! # Locking and ownership
//!
//! - `inner` (the mutex) protects the list and the `closed` flag. It is held
//!   only to link, unlink and walk entries (and taken with a short spin
//!   first, as the kernel's spinlock would be: see [`WaitQueue::lock`]): no condition, no waker (call,
//!   clone or drop) and no user `Drop` ever runs under it. The one exception
//!   is a custom wake function, which the walk must call under the lock; it
//!   is documented to not touch the queue.
//! - `waiters` mirrors `list.len()` and `low_water` each list's
//!   [`WaitList::low_water`] mark as of the last unlink (a link leaves the
//!   marks: see [`WaitQueue::publish_linked`]). They are written only
//!   under the lock ([`WaitQueue::publish`]) and read without it: `waiters` by
//!   [`WaitQueue::waitqueue_active`] and [`WaitQueue::len`] (hints), and
//!   `low_water` by a waiter asking whether its entry is gone.
//! - `closed` mirrors `inner.closed` for [`WaitQueue::is_closed`]; it only
//!   ever goes from false to true, under the lock.
//!
//! # No lost wake-ups
//!
//! A waiter links its entry under the lock and only then re-checks its
//! condition. A waker changes the state the condition reads and then takes
//! the same lock to walk the list. The lock orders the two: if the waker's
//! critical section comes second, it finds the entry; if it comes first,
//! its state change happens-before the waiter's critical section and so
//! before the re-check, which sees it. (In the kernel, `set_current_state`'s
//! `smp_mb()` plays this part.) Every wake takes the lock, even on an empty
//! queue: no lock-free "anyone waiting?" shortcut, which is where peers have
//! lost wake-ups, and a full fence per registration cost more than the lock
//! it would save (see the `wake` benchmark).
//!
//! The one lock-free read that decides anything is the low-water mark: a
//! list's head sequence number (or the next one, when empty) never
//! decreases, lists are sorted by sequence number and a handle is never
//! linked twice, so a handle below its list's mark is certainly unlinked.
//! The mark is stored with `Release` after the unlink and loaded with
//! `Acquire`, so a waiter that sees it also sees what the waker wrote
//! before its wake.
//!
//! # The wake walk
//!
//! A wake snapshots the list's sequence counter, then walks the non-exclusive
//! list and then the exclusive list, oldest first, considering only entries
//! older than the snapshot. Each entry's mode, poll key or custom function
//! decides: wake (unlink it and take its waker into a [`WakeBatch`]), skip
//! (leave it), or stop the walk. Non-exclusive entries never use up the
//! budget; each woken exclusive entry uses one of `nr` (`nr == 0` = no
//! limit). When the batch is full the lock is dropped, the batch woken, and
//! the walk resumes after the last skipped entry, or at the head since woken
//! entries are gone. Entries evaluated by this walk carry its id in
//! `visited`, so a restart never asks a custom function twice. Because the
//! snapshot excludes newer entries, a broadcast is atomic: waiters that
//! register while it runs (including one re-registering from inside a
//! woken waker) are not woken by it.
//!
//! # Cancellation hand-off
//!
//! A woken entry is unlinked by the wake itself (kernel:
//! `autoremove_wake_function`), so its owner learns it was woken by finding
//! its handle gone. An exclusive owner that then ends without success
//! (dropped, timed out, interrupted, its condition false) calls
//! [`WaitQueue::hand_off`], which wakes the next exclusive waiter, so a
//! wake is never swallowed by a waiter that does not act on it. It passes
//! on the wake that picked the entry: a wake with a mode or a key
//! (`wake_up_interruptible`, `wake_up_poll`) is remembered for the entry it
//! picked (the queue keeps the last 64 such picks), so its hand-off goes
//! only to a waiter that wake could have woken; a plain `wake_up`'s goes to
//! the next exclusive waiter.

use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe, Location};
use std::task::Waker;

use crate::entry::{Entry, Notifier, WakeDecision, WakeInfo, WakeMode};
use crate::error::Closed;
use crate::hook::{self, PointKind, WakeKind};
use crate::list::{Class, Handle, WaitList};
use crate::registry;
use crate::sync::{AtomicU64, AtomicUsize, Mutex, MutexGuard, Ordering, PoisonError, TryLockError};
use crate::wake_batch::WakeBatch;

/// A Linux-kernel-style wait queue for async tasks and plain threads.
///
/// Kernel: `struct wait_queue_head` (`include/linux/wait.h`).
///
/// Tasks sleep on it with the `wait_event*` family until a condition holds;
/// other tasks or threads make the condition true and call a `wake_up*`
/// method. See the [crate documentation](crate) for the full contract.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use waitq::WaitQueue;
///
/// static QUEUE: WaitQueue = WaitQueue::new(); // DECLARE_WAIT_QUEUE_HEAD
/// let ready = Arc::new(AtomicBool::new(false));
///
/// let setter = {
///     let ready = ready.clone();
///     std::thread::spawn(move || {
///         ready.store(true, Ordering::SeqCst); // change the state first,
///         QUEUE.wake_up();                     // then wake
///     })
/// };
/// futures::executor::block_on(QUEUE.wait_event(|| ready.load(Ordering::SeqCst))).unwrap();
/// setter.join().unwrap();
/// ```
pub struct WaitQueue {
    inner: Mutex<Inner>,
    waiters: AtomicUsize,
    /// `WaitList::low_water` of the shared and exclusive lists, published
    /// with `waiters`: a handle below it is known unlinked without the lock.
    low_water: [AtomicU64; 2],
    closed: std::sync::atomic::AtomicBool,
    /// A keyed (or moded) wake has picked an exclusive entry at least once
    /// (`Inner::keyed_picks` exists): only then does a hand-off look its
    /// pick up, under a lock of its own.
    keyed: std::sync::atomic::AtomicBool,
    /// [`set_name`](Self::set_name) was called: the name is `Inner::name`,
    /// read under the lock. Until then it is `const_name`, read without.
    renamed: std::sync::atomic::AtomicBool,
    /// The name given at construction ([`named`](Self::named)): a sleep
    /// on a named queue is listed in its task's slot with no lock taken
    /// (reading `Inner::name` took the lock, and sent every such sleep
    /// the slow way: 7.6 % more instructions on the watch bench's row).
    const_name: Option<&'static str>,
    /// `const_name` as a registry slot stores it (`registry::name_bits_of`),
    /// made with the queue (in its padding: the queue stays 256 bytes).
    const_name_bits: u32,
}

struct Inner {
    list: WaitList,
    closed: bool,
    /// The name the wait registry reports (`named`, `set_name`); read only
    /// when the registry lists a sleep.
    name: Option<&'static str>,
    /// Id of the last wake walk started (see "The wake walk").
    walks: u64,
    /// The recent exclusive picks made by a wake with a mode or key (not
    /// a plain `wake_up`): the picked entry's sequence number and the
    /// wake's info, so that a hand-off passes on *that* wake (see
    /// "Cancellation hand-off"). Allocated at the first such pick; the
    /// oldest goes beyond [`KEYED_PICKS`].
    /// (Boxed: one word in every queue instead of a `VecDeque`'s four.)
    #[allow(clippy::box_collection)]
    keyed_picks: Option<Box<std::collections::VecDeque<(u64, WakeInfo)>>>,
}

/// How many keyed exclusive picks a queue remembers for hand-offs. A
/// waiter that hands off after more than this many newer keyed picks on
/// its queue passes a plain wake on (what every hand-off did before).
const KEYED_PICKS: usize = 64;

/// What one call of the walk should do.
#[derive(Clone, Copy)]
pub(crate) struct WakeSpec {
    pub(crate) info: WakeInfo,
    /// Exclusive waiters to wake; `0` = all.
    pub(crate) nr_exclusive: usize,
    /// Skip the non-exclusive list (a hand-off wakes one exclusive waiter).
    pub(crate) exclusive_only: bool,
}

/// Where a walk stands between batches.
struct Cursor {
    class: Class,
    /// The last entry this walk skipped on `class`'s list, if any.
    after: Option<Handle>,
    budget: usize,
    /// One waiter per batch (under a test hook, see `hook::single_wakes`).
    single: bool,
    /// The exclusive entries this lock hold took, while the wait registry
    /// is on (`None` otherwise): it notes them as picked after the hold.
    picks: Option<Vec<u64>>,
}

impl Cursor {
    /// Notes an exclusive entry the walk took (while the registry is on).
    #[inline]
    fn note(&mut self, taken: Option<Handle>) {
        if let (Some(picks), Some(handle)) = (&mut self.picks, taken) {
            picks.push(handle.seq());
        }
    }

    /// The walk unlinked `entry` (its handle was `handle`) to wake it: into
    /// the batch, counted against the exclusive budget. Returns whether
    /// this batch is over (full, or one wake per batch under a test hook).
    #[inline]
    fn took(&mut self, handle: Handle, entry: Entry, batch: &mut WakeBatch) -> bool {
        batch.push_entry(entry);
        if self.class == Class::Exclusive {
            self.budget -= 1;
            self.note(Some(handle));
        }
        batch.is_full() || self.single
    }
}

/// What a waiter's handle turned out to be on re-poll.
pub(crate) enum Registration {
    /// Still linked: no wake has picked it.
    Linked,
    /// Gone: a wake picked it, or `close()` removed it.
    Gone,
}

// ===== impl WaitQueue =====

impl WaitQueue {
    /// Creates an empty wait queue. `const`, so it can be a `static`.
    ///
    /// Kernel: `DECLARE_WAIT_QUEUE_HEAD()` / `init_waitqueue_head()`.
    ///
    /// # Examples
    ///
    /// ```
    /// static QUEUE: waitq::WaitQueue = waitq::WaitQueue::new();
    /// assert_eq!(QUEUE.len(), 0);
    /// ```
    pub const fn new() -> Self {
        Self::with_name(None)
    }

    /// Creates an empty wait queue with a name, which task dumps and the
    /// [wait registry](crate::registry) report for its sleepers. `const`.
    ///
    /// Kernel: `DECLARE_WAIT_QUEUE_HEAD(name)`.
    ///
    /// # Examples
    ///
    /// ```
    /// static SMBIOD_WAIT: waitq::WaitQueue = waitq::WaitQueue::named("smbiod_wait");
    /// assert_eq!(SMBIOD_WAIT.name(), Some("smbiod_wait"));
    /// ```
    pub const fn named(name: &'static str) -> Self {
        Self::with_name(Some(name))
    }

    const fn with_name(name: Option<&'static str>) -> Self {
        WaitQueue {
            inner: Mutex::new(Inner {
                list: WaitList::new(),
                closed: false,
                name,
                walks: 0,
                keyed_picks: None,
            }),
            waiters: AtomicUsize::new(0),
            low_water: [AtomicU64::new(0), AtomicU64::new(0)],
            closed: std::sync::atomic::AtomicBool::new(false),
            keyed: std::sync::atomic::AtomicBool::new(false),
            renamed: std::sync::atomic::AtomicBool::new(false),
            const_name: name,
            const_name_bits: crate::registry::name_bits_of(name),
        }
    }

    /// Names (or renames) the queue; waiters that sleep from now on are
    /// reported under the new name.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = std::sync::Arc::new(waitq::WaitQueue::new());
    /// queue.set_name("req_wq");
    /// assert_eq!(queue.name(), Some("req_wq"));
    /// ```
    pub fn set_name(&self, name: &'static str) {
        self.lock().name = Some(name);
        self.renamed
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The queue's name, if it has one.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(waitq::WaitQueue::new().name(), None);
    /// ```
    pub fn name(&self) -> Option<&'static str> {
        match self.slot_name_unlocked() {
            Some((name, _)) => name,
            None => self.lock().name,
        }
    }

    /// The name without the lock, if it was not changed since the queue
    /// was made (one relaxed load), with its bits as a registry slot
    /// stores them (`registry::name_bits_of`); `None`: it was, read it
    /// under the lock.
    #[inline]
    pub(crate) fn slot_name_unlocked(&self) -> Option<crate::registry::SlotName> {
        match self.renamed.load(std::sync::atomic::Ordering::Relaxed) {
            false => Some((self.const_name, self.const_name_bits)),
            true => None,
        }
    }

    /// Whether anybody is waiting, read without the lock: a hint only.
    ///
    /// Kernel: `waitqueue_active()`. Never use it to skip a `wake_up`: a
    /// waiter may be linking itself right now. Use
    /// [`wq_has_sleeper`](Self::wq_has_sleeper) for that.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = waitq::WaitQueue::new();
    /// assert!(!queue.waitqueue_active());
    /// ```
    ///
    /// Under a test hook that models store buffers, a call made while the
    /// task has stores in flight is a decision point after the read (the
    /// toolkit may run a waiter before the caller acts on the answer);
    /// otherwise it costs one more `Relaxed` load.
    #[inline]
    #[track_caller]
    pub fn waitqueue_active(&self) -> bool {
        let active = self.waiters.load(Ordering::Relaxed) != 0;
        crate::hook::peeked(self, Location::caller());
        active
    }

    /// [`waitqueue_active`](Self::waitqueue_active) for a caller that has
    /// passed a full barrier since its last store (it released a lock, or
    /// ran `fence(SeqCst)`: the kernel's `smp_mb(); if
    /// (waitqueue_active(wq)) wake_up(wq);`). The same read; a test hook
    /// that models store buffers is told of the barrier (the task's buffer
    /// drains), and the read is no decision point. The runtime's channels
    /// wake this way after a send.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{fence, AtomicBool, Ordering::SeqCst};
    /// let queue = waitq::WaitQueue::new();
    /// let ready = AtomicBool::new(false);
    /// ready.store(true, SeqCst);
    /// fence(SeqCst);
    /// if queue.waitqueue_active_after_barrier() {
    ///     queue.wake_up();
    /// }
    /// ```
    #[inline]
    pub fn waitqueue_active_after_barrier(&self) -> bool {
        crate::hook::barrier();
        self.waiters.load(Ordering::Relaxed) != 0
    }

    /// Whether anybody is waiting, ordered against the waiters' re-checks:
    /// `cond = true; if queue.wq_has_sleeper() { queue.wake_up(); }` never
    /// loses a wake-up.
    ///
    /// Kernel: `wq_has_sleeper()`. The kernel issues `smp_mb()` here to pair
    /// with the barrier in `set_current_state()`; waiters here pay no barrier
    /// when they link, so this reads the count under the queue lock instead,
    /// which orders it the same way. It therefore costs what a `wake_up` on
    /// an empty queue costs: call `wake_up` directly unless you need the
    /// answer.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = waitq::WaitQueue::new();
    /// if queue.wq_has_sleeper() {
    ///     queue.wake_up();
    /// }
    /// ```
    pub fn wq_has_sleeper(&self) -> bool {
        // The lock orders this against a waiter's link-then-recheck (see
        // "No lost wake-ups").
        let active = self.lock().list.len() != 0;
        crate::hook::barrier();
        active
    }

    /// The number of waiters currently linked (for tests and metrics).
    ///
    /// A waiter is linked from the poll that registers it until a wake picks
    /// it or it finishes; a woken waiter no longer counts.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = waitq::WaitQueue::new();
    /// assert_eq!(queue.len(), 0);
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        self.waiters.load(Ordering::Acquire)
    }

    /// Whether no waiter is linked; see [`len`](Self::len).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(waitq::WaitQueue::new().is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots for waiters the queue has set up (linked or free): the first
    /// waiter's slot lives inline in the queue (counted once it has been
    /// used), the rest in a slab on the heap. It grows only when more
    /// waiters are linked at once than ever before (the slab by `Vec`'s
    /// doubling), so it stays bounded by the peak `len()` rounded up to the
    /// allocation step, and shrinks only when a slab of more than 65,536
    /// slots empties (it is freed then; a smaller one is kept, so a herd
    /// that sleeps and wakes over and over allocates once). A queue that
    /// never has two waiters at once never allocates.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = waitq::WaitQueue::new();
    /// assert_eq!(queue.capacity(), 0); // nothing allocated until a wait registers
    /// ```
    pub fn capacity(&self) -> usize {
        self.lock().list.capacity()
    }

    /// Whether [`close`](Self::close) has been called.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = waitq::WaitQueue::new();
    /// assert!(!queue.is_closed());
    /// queue.close();
    /// assert!(queue.is_closed());
    /// ```
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Wakes every non-exclusive waiter and the oldest exclusive one.
    /// Returns how many waiters it woke.
    ///
    /// Kernel: `wake_up()`. Change the state the waiters' conditions read
    /// *before* calling it; on an empty queue it does nothing (no permit is
    /// stored: the condition is the state).
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = waitq::WaitQueue::new();
    /// assert_eq!(queue.wake_up(), 0); // nobody waiting, nothing stored
    /// ```
    #[doc(alias = "notify_one")]
    #[track_caller]
    #[inline]
    pub fn wake_up(&self) -> usize {
        self.wake(WakeMode::Normal, 1, 0)
    }

    /// Wakes every non-exclusive waiter and the `nr` oldest exclusive ones
    /// (`nr == 0` wakes them all). Returns how many waiters it woke.
    ///
    /// Kernel: `wake_up_nr()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = waitq::WaitQueue::new();
    /// assert_eq!(queue.wake_up_nr(3), 0);
    /// ```
    #[track_caller]
    pub fn wake_up_nr(&self, nr: usize) -> usize {
        self.wake(WakeMode::Normal, nr, 0)
    }

    /// Wakes every waiter, exclusive ones included. Returns how many it woke.
    ///
    /// Kernel: `wake_up_all()`. Atomic: a waiter that registers while it
    /// runs (even from inside a woken waker) is not woken by it.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = waitq::WaitQueue::new();
    /// assert_eq!(queue.wake_up_all(), 0);
    /// ```
    #[doc(alias = "notify_waiters")]
    #[doc(alias = "notify_all")]
    #[track_caller]
    pub fn wake_up_all(&self) -> usize {
        self.wake(WakeMode::Normal, 0, 0)
    }

    /// Like [`wake_up`](Self::wake_up), but only for waiters sleeping in
    /// [`TaskState::Interruptible`](crate::TaskState::Interruptible); others
    /// are skipped and not counted.
    ///
    /// Kernel: `wake_up_interruptible()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = waitq::WaitQueue::new();
    /// assert_eq!(queue.wake_up_interruptible(), 0);
    /// ```
    #[track_caller]
    pub fn wake_up_interruptible(&self) -> usize {
        self.wake(WakeMode::Interruptible, 1, 0)
    }

    /// Like [`wake_up_nr`](Self::wake_up_nr), for interruptible waiters only.
    ///
    /// Kernel: `wake_up_interruptible_nr()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = waitq::WaitQueue::new();
    /// assert_eq!(queue.wake_up_interruptible_nr(2), 0);
    /// ```
    #[track_caller]
    pub fn wake_up_interruptible_nr(&self, nr: usize) -> usize {
        self.wake(WakeMode::Interruptible, nr, 0)
    }

    /// Like [`wake_up_all`](Self::wake_up_all), for interruptible waiters only.
    ///
    /// Kernel: `wake_up_interruptible_all()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = waitq::WaitQueue::new();
    /// assert_eq!(queue.wake_up_interruptible_all(), 0);
    /// ```
    #[track_caller]
    pub fn wake_up_interruptible_all(&self) -> usize {
        self.wake(WakeMode::Interruptible, 0, 0)
    }

    /// Wakes like [`wake_up`](Self::wake_up), but only waiters whose poll
    /// mask shares a bit with `mask` (waiters without a mask always match).
    /// Non-matching waiters are skipped and use up no exclusive slot.
    ///
    /// Kernel: `wake_up_poll()` with `pollwake()`'s key filter.
    ///
    /// # Examples
    ///
    /// ```
    /// const READABLE: u32 = 1;
    /// let queue = waitq::WaitQueue::new();
    /// assert_eq!(queue.wake_up_poll(READABLE), 0);
    /// ```
    #[track_caller]
    pub fn wake_up_poll(&self, mask: u32) -> usize {
        self.wake(WakeMode::Normal, 1, mask)
    }

    /// Like [`wake_up_poll`](Self::wake_up_poll), for interruptible waiters only.
    ///
    /// Kernel: `wake_up_interruptible_poll()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = waitq::WaitQueue::new();
    /// assert_eq!(queue.wake_up_interruptible_poll(1), 0);
    /// ```
    #[track_caller]
    pub fn wake_up_interruptible_poll(&self, mask: u32) -> usize {
        self.wake(WakeMode::Interruptible, 1, mask)
    }

    /// Closes the queue: every current waiter ends with a `Closed` error
    /// (unless its condition is true when it looks), every later wait fails
    /// at once when its condition is false, and wakes become no-ops.
    /// Returns how many waiters it ended. Idempotent.
    ///
    /// Not in `wait.h` (the closest is `wake_up_pollfree()`): it is how a
    /// runtime shuts down without leaving anybody asleep.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = waitq::WaitQueue::new();
    /// queue.close();
    /// assert!(queue.is_closed());
    /// let err = futures::executor::block_on(queue.wait_event(|| false)).unwrap_err();
    /// assert!(err.is_closed());
    /// ```
    #[track_caller]
    pub fn close(&self) -> usize {
        let mut ended = 0;
        let mut batch = WakeBatch::new();
        let mut panic = None;
        let mut inner = self.lock();
        inner.closed = true;
        self.closed.store(true, Ordering::Release);
        loop {
            while !batch.is_full() {
                match inner.list.pop_front() {
                    Some(entry) => batch.push_entry(entry),
                    None => break,
                }
            }
            let done = inner.list.len() == 0;
            self.publish(&inner.list);
            drop(inner);
            ended += batch.len();
            batch.wake_all(&mut panic);
            if done {
                break;
            }
            inner = self.lock();
        }
        hook::woke(self, Location::caller(), ended, WakeKind::Close);
        crate::wake_batch::resume(panic);
        ended
    }

    /// The walk behind every wake (kernel: `__wake_up()`).
    #[track_caller]
    #[inline]
    fn wake(&self, mode: WakeMode, nr_exclusive: usize, key: u32) -> usize {
        let spec = WakeSpec {
            info: WakeInfo { mode, key },
            nr_exclusive,
            exclusive_only: false,
        };
        self.wake_spec(spec, Location::caller())
    }

    /// One wake, reported to the test toolkit's hook afterwards. `site`
    /// travels beside the spec, not in it: a larger spec is copied through
    /// memory and measurably slowed every wake.
    #[inline]
    pub(crate) fn wake_spec(&self, spec: WakeSpec, site: &'static Location<'static>) -> usize {
        let WakeSpec {
            info,
            nr_exclusive,
            exclusive_only,
        } = spec;
        let woken = self.wake_walk(info, nr_exclusive, exclusive_only, site);
        let kind = match exclusive_only {
            true => WakeKind::HandOff,
            false => WakeKind::WakeUp,
        };
        hook::woke(self, site, woken, kind);
        woken
    }

    /// The walk, with the spec's parts as separate arguments: they travel
    /// in registers, where the spec itself (24 bytes) went through memory,
    /// its flag stored as a byte and loaded inside a wider word, a
    /// store-forwarding stall on every wake (`perf annotate` of
    /// ping_pong: two fifths of the walk's samples on that load).
    fn wake_walk(
        &self,
        info: WakeInfo,
        nr_exclusive: usize,
        exclusive_only: bool,
        site: &'static Location<'static>,
    ) -> usize {
        let spec = WakeSpec {
            info,
            nr_exclusive,
            exclusive_only,
        };
        let mut inner = self.lock();
        // Closed, or nobody to wake: the lock hold alone orders this wake
        // against a waiter's link-then-recheck (see "No lost wake-ups").
        if inner.closed || inner.list.len() == 0 {
            return 0;
        }
        // One entry to take at most: the only one linked, or the first
        // exclusive waiter of a `wake_up` with no non-exclusive waiter in
        // front of it (a queue of exclusive waiters: a work queue's
        // consumers, a lock's).
        let one = inner.list.len() == 1
            || (nr_exclusive == 1 && (exclusive_only || inner.list.is_empty_of(Class::Shared)));
        if one {
            if let Some((handle, entry)) = inner.take_lone(&spec) {
                if !info.is_plain() && handle.class() == Class::Exclusive {
                    inner.note_keyed_pick(handle.seq(), info);
                    self.mark_keyed();
                }
                self.publish_unlinked(&inner.list, handle.class());
                drop(inner);
                if handle.class() == Class::Exclusive && registry::is_enabled() {
                    registry::note_picked(self, &[handle.seq()]);
                }
                if let Some(waker) = entry.into_waker() {
                    crate::wake_batch::wake_one(waker);
                }
                return 1;
            }
        }
        self.wake_batches(inner, &spec, site)
    }

    /// The walk proper, for a wake that may take more than one entry:
    /// batches of wakers taken under the lock and called after it. Out of
    /// line, so that the one-waiter wake above does not set up its stack
    /// frame (the batch of 32 wakers) or spill its arguments.
    #[inline(never)]
    fn wake_batches<'a>(
        &'a self,
        mut inner: MutexGuard<'a, Inner>,
        spec: &WakeSpec,
        site: &'static Location<'static>,
    ) -> usize {
        let mut woken = 0;
        let mut panic = None;
        let mut batch = WakeBatch::new();
        let mut cursor = Cursor {
            class: if spec.exclusive_only {
                Class::Exclusive
            } else {
                Class::Shared
            },
            after: None,
            budget: if spec.nr_exclusive == 0 {
                usize::MAX
            } else {
                spec.nr_exclusive
            },
            // Under a test hook: one waiter per lock hold, a decision point between.
            single: hook::single_wakes(),
            picks: registry::is_enabled().then(Vec::new),
        };
        inner.walks += 1;
        let walk = inner.walks;
        let snapshot = inner.list.next_seq();
        loop {
            let done = inner.walk(spec, walk, snapshot, &mut cursor, &mut batch, &mut panic);
            if !spec.info.is_plain() && inner.keyed_picks.is_some() {
                self.mark_keyed();
            }
            self.publish(&inner.list);
            drop(inner);
            if let Some(picks) = cursor.picks.as_mut().filter(|p| !p.is_empty()) {
                registry::note_picked(self, picks);
                picks.clear();
            }
            woken += batch.len();
            batch.wake_all(&mut panic);
            if done {
                break;
            }
            if cursor.single {
                let state = crate::TaskState::Uninterruptible;
                hook::decide(PointKind::BetweenWakes, self, site, false, state);
            }
            inner = self.lock();
        }
        crate::wake_batch::resume(panic);
        woken
    }

    /// Notes, under the lock and before the unlinks are published, that a
    /// keyed pick is kept: a waiter that learns of its pick from the
    /// published state sees this too.
    fn mark_keyed(&self) {
        self.keyed.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Passes an unconsumed exclusive wake on to the next exclusive waiter
    /// (see "Cancellation hand-off"): the wake that picked the entry `seq`,
    /// with its mode and key, so it reaches a waiter that wake could have
    /// woken (a plain wake passed on for a keyed one went to the next
    /// exclusive waiter whatever its mask or state, which re-queued with
    /// its condition false while the waiter meant for it slept on: an
    /// independent probe's lost wake-up).
    #[track_caller]
    pub(crate) fn hand_off(&self, seq: u64) {
        // A queue that never had a keyed pick hands off a plain wake in one
        // lock hold (the wake's), as before keyed picks were kept.
        let info = match self.keyed.load(std::sync::atomic::Ordering::Relaxed) {
            true => self.lock().take_keyed_pick(seq),
            false => None,
        }
        .unwrap_or(WakeInfo::PLAIN);
        let spec = WakeSpec {
            info,
            nr_exclusive: 1,
            exclusive_only: true,
        };
        self.wake_spec(spec, Location::caller());
    }

    /// Links `entry` at the tail of its list; `None`: the queue is closed
    /// (an `Option`, not a `Result` with [`Closed`], so that the handle
    /// comes back in two registers). The caller re-checks its condition
    /// afterwards (see "No lost wake-ups").
    pub(crate) fn register(&self, class: Class, entry: Entry) -> Option<Handle> {
        let mut inner = self.lock();
        if inner.closed {
            drop(inner);
            drop(entry); // its waker is dropped outside the lock
            return None;
        }
        let handle = inner.list.push_back(class, entry);
        self.publish_linked(&inner.list);
        drop(inner);
        Some(handle)
    }

    /// Unlinks `handle`'s entry if it is still linked and returns it, for
    /// the caller to drop outside the lock. `None`: a wake or `close()` took it.
    #[inline]
    pub(crate) fn unregister(&self, handle: Handle) -> Option<Entry> {
        if self.is_gone(handle) {
            return None;
        }
        self.unregister_locked(handle)
    }

    fn unregister_locked(&self, handle: Handle) -> Option<Entry> {
        let mut inner = self.lock();
        let entry = inner.list.remove(handle);
        self.publish_unlinked(&inner.list, handle.class());
        entry
    }

    /// On re-poll: whether `handle` is still linked, making sure its waker
    /// is `waker` (cloned outside the lock, and only if it would not wake
    /// the same task).
    #[inline]
    pub(crate) fn refresh(&self, handle: Handle, waker: &Waker) -> Registration {
        if self.is_gone(handle) {
            return Registration::Gone;
        }
        self.refresh_locked(handle, waker)
    }

    fn refresh_locked(&self, handle: Handle, waker: &Waker) -> Registration {
        let mut inner = self.lock();
        match inner.list.get_mut(handle) {
            None => return Registration::Gone,
            Some(entry) => match &entry.notifier {
                Notifier::Waker(old) if old.will_wake(waker) => return Registration::Linked,
                _ => {}
            },
        }
        drop(inner);
        let new = Notifier::Waker(waker.clone());
        let mut inner = self.lock();
        let old = match inner.list.get_mut(handle) {
            None => return Registration::Gone,
            Some(entry) => std::mem::replace(&mut entry.notifier, new),
        };
        drop(inner);
        drop(old);
        Registration::Linked
    }

    /// Runs `f` on `handle`'s entry if it is still linked, under the lock.
    /// Gives a linked entry that has no waker yet (a fresh
    /// `prepare_to_wait` link) `waker`, in one lock hold: the clone is made
    /// before the lock, and whatever it replaces is dropped after it.
    pub(crate) fn install_waker(&self, handle: Handle, waker: &Waker) -> Registration {
        if self.is_gone(handle) {
            return Registration::Gone;
        }
        let mut new = Notifier::Waker(waker.clone());
        let mut inner = self.lock();
        let linked = match inner.list.get_mut(handle) {
            Some(entry) => {
                std::mem::swap(&mut entry.notifier, &mut new);
                true
            }
            None => false,
        };
        drop(inner);
        // Outside the lock: the old notifier, or the unused new one.
        drop(new);
        match linked {
            true => Registration::Linked,
            false => Registration::Gone,
        }
    }

    pub(crate) fn with_entry<R>(
        &self,
        handle: Handle,
        f: impl FnOnce(&mut Entry) -> R,
    ) -> Option<R> {
        self.lock().list.get_mut(handle).map(f)
    }

    /// Whether the queue had no linked waiter (checked under the lock).
    pub(crate) fn register_checking_empty(
        &self,
        class: Class,
        entry: Entry,
    ) -> Result<(Handle, bool), Closed> {
        let mut inner = self.lock();
        let was_empty = inner.list.len() == 0;
        if inner.closed {
            drop(inner);
            drop(entry);
            return Err(Closed::new(crate::error::Reason::Closed));
        }
        let handle = inner.list.push_back(class, entry);
        self.publish_linked(&inner.list);
        drop(inner);
        Ok((handle, was_empty))
    }

    /// Whether `handle` is still linked.
    pub(crate) fn is_linked(&self, handle: Handle) -> bool {
        self.lock().list.contains(handle)
    }

    /// Mirrors `list`'s length and low-water marks in the lock-free fields.
    /// Called under the lock after every change to the list.
    fn publish(&self, list: &WaitList) {
        self.waiters.store(list.len(), Ordering::Release);
        for class in [Class::Shared, Class::Exclusive] {
            self.low_water[class as usize].store(list.low_water(class), Ordering::Release);
        }
    }

    /// [`publish`](Self::publish) after a link: only the count. A link
    /// unlinks nothing, so every handle below a published mark is still
    /// unlinked, and every handle still linked is still at or above it:
    /// the marks [`is_gone`](Self::is_gone) reads give the same answers.
    /// (The marks' true values may have grown, an empty list's with
    /// every sequence number handed out; the next unlink publishes them.)
    /// Two `low_water` computations and stores less on every sleep.
    fn publish_linked(&self, list: &WaitList) {
        self.waiters.store(list.len(), Ordering::Release);
    }

    /// [`publish`](Self::publish) after unlinks from `class`'s list only:
    /// the other list's mark stays (as after a link, see
    /// [`publish_linked`](Self::publish_linked)).
    fn publish_unlinked(&self, list: &WaitList, class: Class) {
        self.waiters.store(list.len(), Ordering::Release);
        self.low_water[class as usize].store(list.low_water(class), Ordering::Release);
    }

    /// Whether `handle`'s entry is known to be unlinked, without the lock.
    /// `false` means "maybe linked". Sound because a list's low-water mark
    /// only grows and a handle is never linked again.
    #[inline]
    pub(crate) fn is_gone(&self, handle: Handle) -> bool {
        handle.seq() < self.low_water[handle.class() as usize].load(Ordering::Acquire)
    }

    /// Takes the queue lock, spinning briefly before sleeping on it.
    ///
    /// The kernel guards a wait queue with a spinlock: every hold is short
    /// (a link, an unlink, or one batch of a wake walk). `std`'s mutex
    /// spins only a little before it sleeps in the kernel, and with two
    /// cores registering and waking on one queue (a herd re-arming while
    /// the broadcast that woke it is still walking) that sleep, and the
    /// wake that ends it, cost more than the holds themselves. So a few
    /// tries spaced well apart come first (about 3 µs in all, the length of
    /// a 32-waiter wake batch), spaced so a waiting core does not keep
    /// taking the lock's cache line from the holder; only then the
    /// sleeping lock. `wake` benchmark, herd on 2 threads: 0.77-0.86x ->
    /// 1.01-1.06x tokio `Notify`; closer tries (4 pauses) or a longer spin
    /// (12 µs and more) were slower there or on the runtime's own herd.
    #[inline]
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics under the lock (a custom wake function's panic is
        // caught in the walk), so poisoning cannot leave the list inconsistent.
        match self.inner.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => self.lock_contended(),
        }
    }

    /// [`lock`](Self::lock) once the first try failed: spaced tries, then
    /// the sleeping lock. Out of line, so the uncontended path stays small.
    #[cold]
    #[inline(never)]
    fn lock_contended(&self) -> MutexGuard<'_, Inner> {
        for _ in 0..SPIN_TRIES {
            for _ in 0..SPIN_PAUSES {
                std::hint::spin_loop();
            }
            match self.inner.try_lock() {
                Ok(guard) => return guard,
                Err(TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for WaitQueue {
    fn default() -> Self {
        WaitQueue::new()
    }
}

impl fmt::Debug for WaitQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitQueue")
            .field("name", &self.name())
            .field("len", &self.len())
            .field("closed", &self.is_closed())
            .finish()
    }
}

// ===== impl Inner =====

impl Inner {
    /// Remembers that a keyed (or moded) wake picked the exclusive entry
    /// `seq` (see `keyed_picks`).
    #[cold]
    fn note_keyed_pick(&mut self, seq: u64, info: WakeInfo) {
        let picks = self.keyed_picks.get_or_insert_with(Default::default);
        if picks.len() == KEYED_PICKS {
            picks.pop_front();
        }
        picks.push_back((seq, info));
    }

    /// The info of the wake that picked the entry `seq`, if it was keyed
    /// and is still remembered.
    fn take_keyed_pick(&mut self, seq: u64) -> Option<WakeInfo> {
        let picks = self.keyed_picks.as_mut()?;
        let at = picks.iter().position(|&(picked, _)| picked == seq)?;
        picks.remove(at).map(|(_, info)| info)
    }

    /// The entry a wake that takes one at most takes (the one linked, or
    /// the first exclusive waiter of an exclusive wake for one), unlinked,
    /// if `spec` wakes it and it has no custom wake function (the walk
    /// guards those). `None`: use the walk.
    fn take_lone(&mut self, spec: &WakeSpec) -> Option<(Handle, Entry)> {
        let class = match spec.exclusive_only || self.list.is_empty_of(Class::Shared) {
            true => Class::Exclusive,
            false => Class::Shared,
        };
        // The head's handle and entry in one lookup (every entry is older
        // than `u64::MAX`).
        let (handle, entry) = self.list.front_mut(class, u64::MAX)?;
        if entry.func.is_some() || !entry.matches(&spec.info) {
            return None;
        }
        // The head of its list: popped in O(1), and returned without going
        // through an `Option<Entry>` (copying that into the pair stalled:
        // the copy read back in other pieces what the unlink had written).
        Some((handle, self.list.pop_front_of(handle.class())))
    }

    /// Fills `batch` from where `cursor` stands. Returns `true` when the walk
    /// is over, `false` when it stopped because the batch is full.
    fn walk(
        &mut self,
        spec: &WakeSpec,
        walk: u64,
        snapshot: u64,
        cursor: &mut Cursor,
        batch: &mut WakeBatch,
        panic: &mut Option<Box<dyn Any + Send>>,
    ) -> bool {
        // A keyless normal-mode wake matches every entry without a custom
        // function.
        let matches_all = spec.info.mode == WakeMode::Normal && spec.info.key == 0;
        loop {
            // While nothing was skipped, every entry the walk takes is the
            // head of its list: decide it and pop it, one lookup each.
            while cursor.after.is_none() {
                if cursor.class == Class::Exclusive && cursor.budget == 0 {
                    return true;
                }
                let Some((head, entry)) = self.list.front_mut(cursor.class, snapshot) else {
                    break;
                };
                let decision = if matches_all && entry.func.is_none() {
                    WakeDecision::Wake
                } else {
                    decide_once(entry, walk, &spec.info, panic)
                };
                match decision {
                    WakeDecision::Skip => cursor.after = Some(head),
                    WakeDecision::Stop => return true,
                    WakeDecision::Wake => {
                        let entry = self.list.pop_front_of(cursor.class);
                        if !matches_all && cursor.class == Class::Exclusive {
                            self.note_keyed_pick(head.seq(), spec.info);
                        }
                        if cursor.took(head, entry, batch) {
                            return false;
                        }
                    }
                }
            }
            let mut pos = match cursor.after {
                Some(after) if self.list.contains(after) => self.list.next(after),
                _ => self.list.first(cursor.class),
            };
            loop {
                let handle = match pos {
                    Some(handle) if handle.seq() < snapshot => handle,
                    // End of this list, or only entries newer than the wake.
                    _ => break,
                };
                if cursor.class == Class::Exclusive && cursor.budget == 0 {
                    return true;
                }
                let next = self.list.next(handle);
                let entry = self.list.get_mut(handle).expect("walked handle is linked");
                match decide_once(entry, walk, &spec.info, panic) {
                    WakeDecision::Skip => cursor.after = Some(handle),
                    WakeDecision::Stop => return true,
                    WakeDecision::Wake => {
                        let entry = self.list.remove(handle).expect("walked handle is linked");
                        if !matches_all && cursor.class == Class::Exclusive {
                            self.note_keyed_pick(handle.seq(), spec.info);
                        }
                        if cursor.took(handle, entry, batch) {
                            return false;
                        }
                    }
                }
                pos = next;
            }
            if cursor.class == Class::Exclusive {
                return true;
            }
            cursor.class = Class::Exclusive;
            cursor.after = None;
        }
    }
}

/// [`decide`] once per walk: an entry this walk already asked (it skipped
/// it before a batch restart) is skipped again.
#[inline]
fn decide_once(
    entry: &mut Entry,
    walk: u64,
    info: &WakeInfo,
    panic: &mut Option<Box<dyn Any + Send>>,
) -> WakeDecision {
    if entry.visited == walk {
        return WakeDecision::Skip;
    }
    entry.visited = walk;
    decide(entry, info, panic)
}

/// `entry.decide`, with a custom function's panic caught: it counts as
/// "skip", the walk goes on (the batch holds unlinked entries that must be
/// woken), and the caller re-raises it afterwards.
fn decide(entry: &Entry, info: &WakeInfo, panic: &mut Option<Box<dyn Any + Send>>) -> WakeDecision {
    if entry.func.is_none() {
        return entry.decide(info);
    }
    match panic::catch_unwind(AssertUnwindSafe(|| entry.decide(info))) {
        Ok(decision) => decision,
        Err(payload) => {
            panic.get_or_insert(payload);
            WakeDecision::Skip
        }
    }
}

/// Tries at the lock before sleeping on it (see `WaitQueue::lock`).
const SPIN_TRIES: u32 = 4;
/// Pauses between two tries: about 0.7 µs on these machines (AMD EPYC,
/// ~22 ns per pause), longer than most lock holds.
const SPIN_PAUSES: u32 = 32;

#[cfg(test)]
mod tests;
