//! A channel for one value: [`channel`] gives a [`Sender`] that sends it
//! once and a [`Receiver`] that is a future of it.
//!
//! ```
//! use waitrt::sync::oneshot;
//!
//! let rt = waitrt::Builder::new_current_thread().build().unwrap();
//! rt.block_on(async {
//!     let (tx, rx) = oneshot::channel();
//!     waitrt::spawn(async move {
//!         tx.send(6 * 7).unwrap();
//!     });
//!     assert_eq!(rx.await, Ok(42));
//! });
//! ```
//!
//! Kernel: `struct completion`. [`Sender::send`] is `complete()` (with a
//! value), awaiting the [`Receiver`] is `wait_for_completion()`, and its
//! [`recv_interruptible`](Receiver::recv_interruptible),
//! [`recv_killable`](Receiver::recv_killable) and
//! [`recv_timeout`](Receiver::recv_timeout) are
//! `wait_for_completion_interruptible`, `_killable` and `_timeout`. The
//! API is otherwise tokio's (`tokio::sync::oneshot`).
//!
//! # Contract
//!
//! - The receiver gets the value, or [`RecvError`] if the sender was
//!   dropped without sending.
//! - [`Sender::send`] gives the value back if the receiver is gone
//!   (dropped or [`close`](Receiver::close)d); [`Sender::closed`]
//!   completes then.
//! - **Cancel safety.** The receiver is its own future: polling it and
//!   dropping the poll loses nothing, and the kernel-family methods borrow
//!   it, so a dropped wait leaves the value to the next one.
//! - **Budget.** A receive that completes at once spends a unit of the
//!   task's cooperative budget.
//!
//! # Internals
//!
//! One allocation: an `Arc` of the value's cell, the receiver's waker
//! cell and one state word, as tokio's oneshot (and the kernel's
//! `completion`, whose `done` count is the one word a wake and a wait
//! meet on). The word's bits: `RX_WAKER` (the receiver stored a waker),
//! `COMPLETE` (the sender sent or was dropped), `CLOSED` (the receiver
//! closed or was dropped) and `QUEUE_USED` (a wait on the queue began).
//! A send and a receive that sleeps once are two read-modify-writes of
//! that word, where a lock around the state took six locked
//! instructions (a lock and an unlock per hold, three holds).
//!
//! Who may touch a cell is decided by the word, never by a lock:
//!
//! - **The value** is the sender's until its one read-modify-write sets
//!   `COMPLETE` (release), and then the receiver's, who reads it after an
//!   acquire that saw `COMPLETE`. A sender that finds `CLOSED` instead
//!   never sets `COMPLETE` and takes its value back.
//! - **The waker** is the receiver's while `RX_WAKER` is clear. It writes
//!   it, then sets `RX_WAKER` (release). To replace it, it first clears
//!   `RX_WAKER`; if that read-modify-write finds `COMPLETE`, the sender
//!   owns the waker now and the receiver leaves it. A sender whose
//!   `COMPLETE` read-modify-write found `RX_WAKER` set takes the waker
//!   and wakes it; one that found it clear never touches it.
//!
//! Both parties' read-modify-writes are ordered on the one word, so
//! exactly one of "the sender saw the waker" and "the receiver saw
//! `COMPLETE` after storing its waker" holds: no wake is lost (the
//! receiver re-checks after its store, as every wait does).
//!
//! Every other wait (the kernel-family and blocking receives, a sender
//! in `closed()`) sleeps on a wait queue, made (boxed) by the first of
//! them, which first sets `QUEUE_USED`. A state change that finds
//! `QUEUE_USED` in its read-modify-write's result wakes the queue after a
//! `SeqCst` fence; such a waiter links its entry, then a `SeqCst` fence,
//! then reads the word (the kernel's `wq_has_sleeper` pairing). A waiter
//! that set `QUEUE_USED` after the change reads the change.
//!
//! **Observed mode.** While a test hook is installed or the whole wait
//! registry is on (the hung-task and lost-grant detectors), the
//! receiver's own poll also sleeps on the queue (a [`PollWaiter`]), so
//! the test toolkit sees its decision points and probes, and the
//! registry lists the sleep; a send then always reports its wake on the
//! queue. A poll picks its path each time; a send wakes both, so a
//! receiver that changed path is woken either way. With only the
//! registry's task slots on (`Builder::wait_registry`, task dumps), the
//! fast path writes its sleep into the task's slot itself
//! (`registry::note_sleep`) and clears it when it runs again: on the
//! queue instead, a receive took 2.08x as long (`oneshot/ct`, against
//! `SYNC_BENCH_WAIT_REGISTRY=0`). A receiver whose task's slot is taken
//! (a second sleep at once) or that runs outside a task sleeps on the
//! queue as well, where the registry lists it (its waker stays in its
//! cell: a send wakes both). Only a poll that sleeps asks for the slot,
//! and only a receiver that listed a sleep clears it (callgrind,
//! `oneshot/ct`: 1,165 -> 1,139 instructions per receive; 1,053 with the
//! registry off, tokio's oneshot 1,080; on a later build, with the sleep's
//! kind packed at compile time: 1,066, 978 off, tokio's 982).
//!
//! The two cells are the crate's audited `unsafe` (see the crate docs):
//! without them a send and a receive took three holds of a mutex, and
//! `oneshot/ct` ran at 0.76x tokio's (`cargo bench --bench sync`).

pub mod error;

use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;

use waitq::{coop, hook, registry, Interrupted, Killed, PollWaiter, TimedOut, WaitQueue};

pub use error::{RecvError, TryRecvError};

use crate::sync::signals;

/// Creates a one-value channel.
///
/// # Examples
///
/// ```
/// let (tx, rx) = waitrt::sync::oneshot::channel();
/// tx.send("done").unwrap();
/// assert_eq!(rx.blocking_recv(), Ok("done"));
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(Inner {
        state: AtomicUsize::new(0),
        value: UnsafeCell::new(None),
        rx_waker: UnsafeCell::new(None),
        queue: OnceLock::new(),
    });
    (
        Sender {
            inner: Some(inner.clone()),
            closed_waiter: None,
        },
        Receiver {
            inner,
            wait: RxWait::Idle,
        },
    )
}

/// Sends the one value; see [`channel`].
pub struct Sender<T> {
    /// `None` once sent.
    inner: Option<Arc<Inner<T>>>,
    /// Made on the first `poll_closed` (boxed: a sender that never
    /// calls it stays two words).
    closed_waiter: Option<Box<PollWaiter<QueueOf<T>>>>,
}

/// The future of the one value; see [`channel`].
///
/// Resolves to the value, or [`RecvError`] if the sender was dropped
/// without sending. Polled again after it resolved (or after
/// [`try_recv`](Self::try_recv) took the value or found the channel
/// closed), it resolves to `Err(RecvError)` again, whatever it gave the
/// first time (tokio's panics): [`is_terminated`](Self::is_terminated)
/// says whether it has.
#[must_use = "futures do nothing unless polled"]
pub struct Receiver<T> {
    inner: Arc<Inner<T>>,
    /// How it waits, and whether it is done.
    wait: RxWait<T>,
}

/// A [`Receiver`]'s wait (one enum: 16 bytes where three fields took as
/// many, with a slot record in).
enum RxWait<T> {
    /// No sleep listed (none yet, or the registry is off).
    Idle,
    /// A fast-path sleep of this receiver is listed in a task's slot
    /// (see "Observed mode"), the one `at` names: the next poll or the
    /// drop unlists it, from there if the receiver moved to another task
    /// since.
    Listed(registry::SlotRecord),
    /// The receiver's own poll on the queue, in observed mode (made by
    /// the first such poll; the receiver stays in it).
    Observed(Box<PollWaiter<QueueOf<T>>>),
    /// The value (or the error) was handed out.
    Done,
}

struct Inner<T> {
    /// `RX_WAKER`, `COMPLETE`, `CLOSED`, `QUEUE_USED`: who owns which
    /// cell (see "Internals").
    state: AtomicUsize,
    /// The value: the sender's until it sets `COMPLETE`, the receiver's
    /// after.
    value: UnsafeCell<Option<T>>,
    /// The receiver's waker: the receiver's while `RX_WAKER` is clear,
    /// the sender's once its `COMPLETE` found `RX_WAKER` set.
    rx_waker: UnsafeCell<Option<Waker>>,
    /// Every other wait: the receiver's kernel-family and blocking waits
    /// (and its own poll in observed mode), and the sender in `closed()`.
    /// Made by the first of them, boxed so that a channel that never
    /// needs it stays small (no 232-byte copy).
    queue: OnceLock<Box<WaitQueue>>,
}

// SAFETY: the cells are reached only as the state word allows (see
// "Internals"): the value moves from the sender's thread to the
// receiver's (so `T: Send`, as for any channel), and never both at once;
// the waker is `Send + Sync`. Every other field is `Sync` already.
#[allow(unsafe_code)]
unsafe impl<T: Send> Send for Inner<T> {}
// SAFETY: as for `Send`: shared `&Inner` reaches a cell only through the
// ownership the state word hands out, one party at a time.
#[allow(unsafe_code)]
unsafe impl<T: Send> Sync for Inner<T> {}

/// The receiver stored a waker in `rx_waker`.
const RX_WAKER: usize = 1;
/// The sender sent (the value is in its cell) or was dropped (it is not).
const COMPLETE: usize = 2;
/// The receiver closed or was dropped.
const CLOSED: usize = 4;
/// A wait on `queue` began: a state change must look there too.
const QUEUE_USED: usize = 8;

/// `PollWaiter`'s handle on the queue.
struct QueueOf<T>(Arc<Inner<T>>);

impl<T> Deref for QueueOf<T> {
    type Target = WaitQueue;
    fn deref(&self) -> &WaitQueue {
        self.0.queue.get_or_init(new_queue)
    }
}

fn new_queue() -> Box<WaitQueue> {
    Box::new(WaitQueue::named(QUEUE_NAME))
}

/// Whether the receiver's own poll sleeps on the queue, where the test
/// toolkit and the whole wait registry see it (two relaxed loads). With
/// the registry's task slots alone, the fast path lists its sleep in the
/// task's slot itself (`Receiver::poll`).
#[inline]
fn observed() -> bool {
    hook::is_enabled() || registry::is_enabled()
}

/// The name a oneshot's sleeps are listed under.
const QUEUE_NAME: &str = "oneshot";

// ===== impl Inner =====

impl<T> Inner<T> {
    /// The queue for every wait but the receiver's own fast poll, marked
    /// used before the caller links an entry on it.
    fn queue(&self) -> &WaitQueue {
        self.state.fetch_or(QUEUE_USED, Ordering::AcqRel);
        self.queue.get_or_init(new_queue)
    }

    /// Sets `COMPLETE` unless the receiver closed first; returns the word
    /// before (with `CLOSED` in it if nothing was set).
    fn complete(&self) -> usize {
        let mut cur = self.state.load(Ordering::Relaxed);
        loop {
            if cur & CLOSED != 0 {
                return cur;
            }
            match self.state.compare_exchange_weak(
                cur,
                cur | COMPLETE,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return cur,
                Err(now) => cur = now,
            }
        }
    }

    /// After a `COMPLETE` that found `prev`: wakes the receiver's stored
    /// waker (taking it) and the queue's sleepers.
    fn wake_rx(&self, prev: usize) {
        if prev & RX_WAKER != 0 {
            // SAFETY: our read-modify-write set `COMPLETE` with `RX_WAKER`
            // set: the receiver stored the waker before (release, seen by
            // our acquire) and will not touch the cell again (it does
            // only after clearing `RX_WAKER` finds `COMPLETE` unset).
            #[allow(unsafe_code)]
            let waker = unsafe { (*self.rx_waker.get()).take() };
            if let Some(waker) = waker {
                waker.wake();
            }
        }
        self.wake_queue(prev);
    }

    /// Wakes the queue's sleepers if a wait on it began before the change
    /// that returned `prev` (after a fence that pairs with the one in
    /// `seen`), or always while a test hook watches.
    #[inline]
    fn wake_queue(&self, prev: usize) {
        if prev & QUEUE_USED != 0 || hook::is_enabled() {
            self.wake_queue_slow();
        }
    }

    #[cold]
    #[inline(never)]
    fn wake_queue_slow(&self) {
        fence(Ordering::SeqCst);
        let queue = self.queue.get_or_init(new_queue);
        if hook::is_enabled() || queue.waitqueue_active_after_barrier() {
            queue.wake_up();
        }
    }

    /// A waiter's condition: any of `flags` set. The fence orders the
    /// waiter's link before the read (see "Internals").
    fn seen(&self, flags: usize) -> bool {
        fence(Ordering::SeqCst);
        self.state.load(Ordering::Relaxed) & flags != 0
    }

    /// The receiver's condition: something to hand out.
    fn rx_ready(&self) -> bool {
        self.seen(COMPLETE | CLOSED)
    }

    fn is_rx_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// What the receiver gets for a word `state` read with acquire: the
    /// value, the error, or `None` while the sender may still send. Call
    /// it from the receiver only, and once a `Some` came, never again.
    fn take(&self, state: usize) -> Option<Result<T, RecvError>> {
        if state & COMPLETE != 0 {
            // SAFETY: `COMPLETE` was read with acquire, so the sender's
            // write of the value happened before, and the sender never
            // touches the cell again; the receiver (through `&mut`) takes
            // it once and then marks itself done.
            #[allow(unsafe_code)]
            let value = unsafe { (*self.value.get()).take() };
            return Some(value.ok_or(RecvError(())));
        }
        if state & CLOSED != 0 {
            return Some(Err(RecvError(())));
        }
        None
    }

    /// Whether a value is there for the receiver to take.
    fn has_value(&self) -> bool {
        if self.state.load(Ordering::Acquire) & COMPLETE == 0 {
            return false;
        }
        // SAFETY: as in `take`: `COMPLETE` was read with acquire and the
        // sender never touches the cell again; the receiver takes the
        // value only through `&mut`, so nothing writes it during this read
        // (made through `&Receiver`).
        #[allow(unsafe_code)]
        let there = unsafe { (*self.value.get()).is_some() };
        there
    }

    /// [`take`](Self::take) on the word now.
    fn try_take(&self) -> Option<Result<T, RecvError>> {
        self.take(self.state.load(Ordering::Acquire))
    }

    /// Stores `waker` for the sender (the receiver's fast poll); returns
    /// the word if the sender completed meanwhile (then nothing will wake
    /// the stored waker: the receiver takes what is there).
    fn register(&self, waker: &Waker, state: usize) -> Option<usize> {
        if state & RX_WAKER != 0 {
            // An earlier poll stored one: take the cell back first.
            let prev = self.state.fetch_and(!RX_WAKER, Ordering::AcqRel);
            if prev & COMPLETE != 0 {
                return Some(prev);
            }
            // SAFETY: `RX_WAKER` is clear and `COMPLETE` was not set when
            // we cleared it, so the sender will not touch the cell (its
            // `COMPLETE` will find `RX_WAKER` clear).
            #[allow(unsafe_code)]
            let slot = unsafe { &mut *self.rx_waker.get() };
            if !slot.as_ref().is_some_and(|stored| stored.will_wake(waker)) {
                *slot = Some(waker.clone());
            }
        } else {
            let waker = waker.clone();
            // SAFETY: `RX_WAKER` is clear (only the receiver sets it, and
            // it read it clear): the sender does not touch the cell.
            #[allow(unsafe_code)]
            let old = unsafe { (*self.rx_waker.get()).replace(waker) };
            drop(old);
        }
        // Publish the waker (release), and see a completion (acquire).
        let prev = self.state.fetch_or(RX_WAKER, Ordering::AcqRel);
        (prev & COMPLETE != 0).then_some(prev)
    }

    /// Sets `CLOSED` (once), taking back a stored waker the sender can
    /// no longer use, and wakes the queue's sleepers (a sender in
    /// `closed()`).
    fn close_rx(&self) {
        let mut cur = self.state.load(Ordering::Relaxed);
        loop {
            if cur & CLOSED != 0 {
                return;
            }
            let mut new = cur | CLOSED;
            if cur & COMPLETE == 0 {
                new &= !RX_WAKER;
            }
            match self
                .state
                .compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        if cur & (RX_WAKER | COMPLETE) == RX_WAKER {
            // SAFETY: we cleared `RX_WAKER` before any `COMPLETE`, so the
            // sender will not touch the cell (and, `CLOSED` now set, it
            // never sets `COMPLETE`).
            #[allow(unsafe_code)]
            let waker = unsafe { (*self.rx_waker.get()).take() };
            drop(waker);
        }
        self.wake_queue(cur);
    }
}

// ===== impl Sender =====

impl<T> Sender<T> {
    /// Sends the value (kernel: `complete()`), waking the receiver.
    ///
    /// # Errors
    ///
    /// The value, if the receiver is gone (dropped or closed).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = waitrt::sync::oneshot::channel();
    /// drop(rx);
    /// assert_eq!(tx.send(1), Err(1));
    /// ```
    pub fn send(mut self, value: T) -> Result<(), T> {
        let inner = self.inner.take().expect("sender used after send");
        // SAFETY: the value's cell is the sender's until its `COMPLETE`
        // below (the receiver reads it only after seeing `COMPLETE`).
        #[allow(unsafe_code)]
        let old = unsafe { (*inner.value.get()).replace(value) };
        debug_assert!(old.is_none());
        let prev = inner.complete();
        if prev & CLOSED != 0 {
            // SAFETY: `COMPLETE` was not set, so the cell is still ours.
            #[allow(unsafe_code)]
            let value = unsafe { (*inner.value.get()).take() };
            return Err(value.expect("the value just stored"));
        }
        inner.wake_rx(prev);
        Ok(())
    }

    /// Completes once the receiver is gone (dropped or closed): for a
    /// producer to stop computing a value nobody wants.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (mut tx, rx) = waitrt::sync::oneshot::channel::<u8>();
    ///     waitrt::spawn(async move { drop(rx) });
    ///     tx.closed().await;
    ///     assert!(tx.is_closed());
    /// });
    /// ```
    #[track_caller]
    pub fn closed(&mut self) -> impl Future<Output = ()> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let inner = self.inner.as_ref().expect("sender used after send");
            let _ = inner
                .queue()
                .wait_event(|| inner.seen(CLOSED))
                .at(site)
                .await;
        }
    }

    /// [`closed`](Self::closed) as a poll function, for hand-written
    /// futures (as tokio's): `Ready` once the receiver is gone. The
    /// registration lives in the sender, so only the waker of the last
    /// call is woken.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::poll_fn;
    /// waitrt::block_on(async {
    ///     let (mut tx, rx) = waitrt::sync::oneshot::channel::<u8>();
    ///     let task = waitrt::spawn(async move {
    ///         poll_fn(|cx| tx.poll_closed(cx)).await;
    ///         tx.is_closed()
    ///     });
    ///     drop(rx);
    ///     assert!(task.await.unwrap());
    /// });
    /// ```
    pub fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let inner = self.inner.as_ref().expect("sender used after send");
        let waiter = self.closed_waiter.get_or_insert_with(|| {
            inner.queue(); // marks the queue used before a wait links
            Box::new(PollWaiter::new(QueueOf(inner.clone())))
        });
        // The queue is never closed: `Ready` means the receiver is gone.
        waiter
            .poll_wait_event(cx, || inner.seen(CLOSED))
            .map(|_| ())
    }

    /// Whether the receiver is gone (dropped or closed).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = waitrt::sync::oneshot::channel::<u8>();
    /// rx.close();
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.as_ref().is_none_or(|inner| inner.is_rx_closed())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            let prev = inner.complete();
            if prev & CLOSED == 0 {
                inner.wake_rx(prev);
            }
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("sent", &self.inner.is_none())
            .finish()
    }
}

// ===== impl Receiver =====

impl<T> Receiver<T> {
    /// Takes the value if it was sent.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if not yet, [`TryRecvError::Closed`] if it
    /// never will be (or was already taken).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = waitrt::sync::oneshot::channel();
    /// tx.send(3).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(3));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        if self.is_done() {
            return Err(TryRecvError::Closed);
        }
        // Not asleep now, whatever it finds.
        self.end_listed_sleep();
        match self.inner.try_take() {
            Some(res) => {
                self.finish();
                res.map_err(TryRecvError::from)
            }
            None => Err(TryRecvError::Empty),
        }
    }

    /// Closes the channel: a later [`Sender::send`] fails with its value,
    /// [`Sender::closed`] completes. A value sent before still arrives.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = waitrt::sync::oneshot::channel();
    /// rx.close();
    /// assert_eq!(tx.send(1), Err(1));
    /// assert!(rx.try_recv().is_err());
    /// ```
    pub fn close(&mut self) {
        self.inner.close_rx();
    }

    /// Whether the value (or the error) was already handed out.
    pub fn is_terminated(&self) -> bool {
        self.is_done()
    }

    fn is_done(&self) -> bool {
        matches!(self.wait, RxWait::Done)
    }

    /// Whether no value is there to receive: none was sent yet, the sender
    /// was dropped without one, or it was already received. As tokio's:
    /// an empty receiver is not necessarily safe to poll (it may have
    /// handed its value out already; see [`is_terminated`](Self::is_terminated)).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = waitrt::sync::oneshot::channel();
    /// assert!(rx.is_empty());
    /// tx.send(0).unwrap();
    /// assert!(!rx.is_empty());
    /// assert_eq!(rx.try_recv(), Ok(0));
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.is_done() || !self.inner.has_value()
    }

    /// Waits from a plain thread (kernel: `wait_for_completion` in a
    /// kernel thread).
    ///
    /// # Errors
    ///
    /// [`RecvError`] if the sender was dropped without sending.
    ///
    /// # Panics
    ///
    /// On a thread that drives a runtime's tasks (it would stall them).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = waitrt::sync::oneshot::channel();
    /// std::thread::spawn(move || tx.send(5).unwrap());
    /// assert_eq!(rx.blocking_recv(), Ok(5));
    /// ```
    #[track_caller]
    pub fn blocking_recv(mut self) -> Result<T, RecvError> {
        if crate::context::is_driving() {
            panic!(
                "`blocking_recv` called from inside a runtime: it would block the thread \
                 that drives tasks (await the receiver instead)"
            );
        }
        self.end_listed_sleep();
        let inner = &*self.inner;
        let _ = inner.queue().blocking_wait_event(|| inner.rx_ready());
        let res = self.inner.try_take().unwrap_or(Err(RecvError(())));
        self.finish();
        res
    }

    /// Waits for the value, ending early if the task is interrupted or
    /// killed (kernel: `wait_for_completion_interruptible`). The outer
    /// result is the wait's, the inner one the channel's.
    ///
    /// # Errors
    ///
    /// [`Interrupted`] if a signal came first (a value sent together with
    /// it wins); the receiver can be awaited again.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses nothing: the value stays for the next wait.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = waitrt::sync::oneshot::channel();
    ///     tx.send(1).unwrap();
    ///     assert_eq!(rx.recv_interruptible().await, Ok(Ok(1)));
    /// });
    /// ```
    #[track_caller]
    pub fn recv_interruptible(
        &mut self,
    ) -> impl Future<Output = Result<Result<T, RecvError>, Interrupted>> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            self.end_listed_sleep();
            let inner = &*self.inner;
            let res = inner
                .queue()
                .wait_event_interruptible(signals::current(), || inner.rx_ready())
                .at(site)
                .await;
            self.after_wait(res)
        }
    }

    /// Waits for the value, ending early only if the task is killed
    /// (kernel: `wait_for_completion_killable`).
    ///
    /// # Errors
    ///
    /// [`Killed`] if a fatal signal came first.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = waitrt::sync::oneshot::channel::<u8>();
    ///     drop(tx);
    ///     assert!(rx.recv_killable().await.unwrap().is_err());
    /// });
    /// ```
    #[track_caller]
    pub fn recv_killable(
        &mut self,
    ) -> impl Future<Output = Result<Result<T, RecvError>, Killed>> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            self.end_listed_sleep();
            let inner = &*self.inner;
            let res = inner
                .queue()
                .wait_event_killable(signals::current(), || inner.rx_ready())
                .at(site)
                .await;
            self.after_wait(res)
        }
    }

    /// Waits for the value at most `timeout` on the runtime's clock
    /// (kernel: `wait_for_completion_timeout`).
    ///
    /// # Errors
    ///
    /// [`TimedOut`] if nothing came in time; the receiver can be awaited
    /// again.
    ///
    /// # Panics
    ///
    /// Outside a runtime, or on one built without timers.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = waitrt::Builder::new_current_thread().enable_time().build().unwrap();
    /// rt.block_on(async {
    ///     let (_tx, mut rx) = waitrt::sync::oneshot::channel::<u8>();
    ///     assert!(rx.recv_timeout(Duration::from_millis(1)).await.is_err());
    /// });
    /// ```
    #[track_caller]
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Result<T, RecvError>, TimedOut>> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            self.end_listed_sleep();
            let inner = &*self.inner;
            let res = inner
                .queue()
                .wait_event_timeout(crate::time::clock(), timeout, || inner.rx_ready())
                .at(site)
                .await
                .map(drop);
            self.after_wait(res)
        }
    }

    fn after_wait<E>(&mut self, res: Result<(), E>) -> Result<Result<T, RecvError>, E> {
        if self.is_done() {
            return Ok(Err(RecvError(())));
        }
        match self.inner.try_take() {
            // A true condition wins over a signal or a deadline.
            Some(got) => {
                self.finish();
                Ok(got)
            }
            None => match res {
                Err(err) => Err(err),
                // The queue is never closed: `Ok` means something is there.
                Ok(()) => Ok(Err(RecvError(()))),
            },
        }
    }

    /// A fast-path sleep this receiver listed is over (it runs again, or
    /// waits another way: on the queue, from a plain thread): unlisted,
    /// from the slot it was listed in, whichever task runs this.
    #[inline]
    fn end_listed_sleep(&mut self) {
        if let RxWait::Listed(at) = self.wait {
            self.wait = RxWait::Idle;
            registry::forget_sleep_at(at, self.id());
        }
    }

    fn finish(&mut self) {
        // An observed waiter's wait is over (it unlisted itself); a
        // fast-path sleep listed earlier is over too.
        self.end_listed_sleep();
        self.wait = RxWait::Done;
    }

    /// The receiver's own poll on the queue (observed mode; see
    /// "Internals").
    #[cold]
    #[inline(never)]
    fn poll_observed(
        &mut self,
        cx: &mut Context<'_>,
        site: &'static Location<'static>,
    ) -> Poll<Result<T, RecvError>> {
        if !matches!(self.wait, RxWait::Observed(_)) {
            // A fast-path sleep listed earlier is over: this one is listed
            // on the queue.
            self.end_listed_sleep();
            self.inner.queue(); // marks the queue used before a wait links
            let waiter = Box::new(PollWaiter::new(QueueOf(self.inner.clone())).at(site));
            self.wait = RxWait::Observed(waiter);
        }
        let inner = &self.inner;
        let RxWait::Observed(waiter) = &mut self.wait else {
            unreachable!("made above")
        };
        // The queue is never closed: `Ready` means something is there.
        let _ = ready!(waiter.poll_wait_event(cx, || inner.rx_ready()));
        let res = self.inner.try_take().unwrap_or(Err(RecvError(())));
        self.finish();
        Poll::Ready(res)
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    /// `#[track_caller]`: a sleep is listed where the receiver is awaited.
    #[track_caller]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let site = Location::caller();
        let this = self.get_mut();
        if this.is_done() {
            return Poll::Ready(Err(RecvError(())));
        }
        // Once it slept on the queue, the receiver stays there: its waiter
        // is linked and listed, and a fast-path sleep would list the same
        // sleep a second time, in the task's slot (a dump listed the task
        // twice on the oneshot after its slot was freed).
        if observed() || matches!(this.wait, RxWait::Observed(_)) {
            return this.poll_observed(cx, site);
        }
        // The wait registry's task slots are on: an earlier sleep this
        // receiver listed is over (this task runs); a sleep now is listed
        // in the slot, or (no free slot: a second sleep at once, or no
        // task) on the queue as well. A poll that finds the value lists
        // nothing and asks nothing of the slot.
        let listing = registry::is_recording();
        this.end_listed_sleep();
        ready!(coop::poll_proceed(cx));
        let state = this.inner.state.load(Ordering::Acquire);
        let got = match this.inner.take(state) {
            Some(got) => got,
            None => match this.inner.register(cx.waker(), state) {
                Some(state) => this.inner.take(state).expect("complete"),
                None => {
                    // A poll that sleeps spends nothing (the queue's poll
                    // below spends its own).
                    coop::refund();
                    if listing {
                        let listed = this.list_sleep(site);
                        if let Some(at) = listed {
                            this.wait = RxWait::Listed(at);
                        } else {
                            // The waker stays in its cell: a send wakes
                            // both, and a wake too many is harmless.
                            return this.poll_observed(cx, site);
                        }
                    }
                    return Poll::Pending;
                }
            },
        };
        this.finish();
        Poll::Ready(got)
    }
}

impl<T> Receiver<T> {
    /// The id the receiver's sleeps are listed under: the channel's
    /// address.
    fn id(&self) -> hook::QueueId {
        hook::QueueId::of_ptr(Arc::as_ptr(&self.inner))
    }

    /// Lists the fast path's sleep in the task's slot; where, if it did.
    fn list_sleep(&self, site: &'static Location<'static>) -> Option<registry::SlotRecord> {
        let kind = registry::WaitKind::new(
            registry::WaitApi::Poll,
            waitq::TaskState::Uninterruptible,
            false,
            None,
        );
        registry::note_sleep(self.id(), Some(QUEUE_NAME), site, kind)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        match self.wait {
            RxWait::Listed(at) => registry::forget_sleep_at(at, self.id()),
            RxWait::Done => return,
            _ => {}
        }
        self.inner.close_rx();
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("done", &self.is_done())
            .finish()
    }
}
