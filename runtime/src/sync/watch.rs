//! A single value, versioned: senders replace it, receivers see the latest
//! one and wait for the next change (tokio's `sync::watch`).
//!
//! ```
//! use waitrt::sync::watch;
//!
//! let rt = waitrt::Builder::new_multi_thread().worker_threads(2).build().unwrap();
//! rt.block_on(async {
//!     let (tx, mut rx) = watch::channel("starting");
//!     let reader = waitrt::spawn(async move {
//!         while rx.changed().await.is_ok() {
//!             if *rx.borrow_and_update() == "done" {
//!                 return true;
//!             }
//!         }
//!         false
//!     });
//!     tx.send("working").unwrap();
//!     tx.send("done").unwrap();
//!     assert!(reader.await.unwrap()); // the last value is never missed
//! });
//! ```
//!
//! # The contract
//!
//! - **Latest value only.** A receiver sees the value as it is when it
//!   looks; intermediate values may be skipped, the *last* one never is:
//!   after a send, every receiver's [`changed`](Receiver::changed) returns
//!   (at once if it was not waiting), and a
//!   [`borrow_and_update`](Receiver::borrow_and_update) then shows that value
//!   or a newer one.
//! - **Seen, per receiver.** Each receiver remembers the version it last
//!   marked seen: `changed` and `borrow_and_update` mark it,
//!   [`borrow`](Receiver::borrow) does not; a new receiver has seen the
//!   current value.
//! - **Closing.** When the last [`Sender`] drops, `changed` still reports a
//!   change not yet seen, then fails with [`RecvError`].
//!   [`Sender::send`] fails when no receiver is left (the other send forms
//!   store the value anyway).
//! - **Waiting.** `changed` sleeps on one of the channel's wait queues
//!   (see the internals) as a non-exclusive waiter (every receiver must see the change), in the
//!   kernel's forms ([`changed_interruptible`](Receiver::changed_interruptible),
//!   [`changed_killable`](Receiver::changed_killable),
//!   [`changed_timeout`](Receiver::changed_timeout),
//!   [`blocking_changed`](Receiver::blocking_changed)); a `changed` (or a
//!   [`wait_for`](Receiver::wait_for)) that returns at once spends a unit
//!   of the task's cooperative budget.
//!
//! Kernel counterpart: a value published under a lock with a sequence
//! count (`seqcount_t`), readers sleeping in
//! `wait_event(wq, read_seqcount(&seq) != seen)`.
//!
//! # Internals
//!
//! The value sits behind a `std::sync::RwLock`; the version is an atomic
//! (`state`: version in steps of 2, bit 0 = closed) bumped *while the
//! write lock is still held*, after the write. A reader that reads the
//! version under the read lock therefore gets exactly the version of the
//! value it sees (reading them separately is the classic lost-update bug:
//! a reader marks seen a version whose value it never saw), and a reader
//! that sees a new version without the lock (`changed`) then waits for the
//! writer's lock to be released before it can look at the value. A send
//! wakes a wait queue only if someone sleeps there (a full fence, then
//! `waitqueue_active`, pairing with the fence in the receivers' re-check).
//!
//! Receivers sleep on one of 8 wait queues, the one of the thread
//! that polls them (each thread is given one, in turn), made on first use;
//! a send wakes every queue that has sleepers. Shards belong to threads,
//! process-wide: a ninth thread shares the first one's. With one queue, 16 readers
//! on 2 workers spent a third of their time waiting for its lock, each
//! worker's readers linking their entries while the other's walked it
//! (`perf`, `watch_1w16r/2wk`: 0.85x tokio's watch, which spreads its
//! waiters over 8 `Notify`s). A channel polled from one thread (a
//! current-thread runtime's) uses one queue.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::panic::Location;
use std::sync::atomic::AtomicU8;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, OnceLock, PoisonError, RwLock, RwLockReadGuard};

use waitq::WaitQueue;

pub mod error;
mod recv;

use error::{RecvError, SendError};

/// Bit 0 of `state`: every sender is gone.
const CLOSED: u64 = 1;
/// One version step (bit 0 is the closed flag).
const STEP: u64 = 2;

/// Creates a watch channel holding `init`, and its first receiver (which
/// has seen `init`).
///
/// # Examples
///
/// ```
/// let (tx, rx) = waitrt::sync::watch::channel(1);
/// tx.send(2).unwrap();
/// assert_eq!(*rx.borrow(), 2);
/// ```
pub fn channel<T>(init: T) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        value: RwLock::new(init),
        state: AtomicU64::new(0),
        senders: AtomicUsize::new(1),
        receivers: AtomicUsize::new(1),
        queues: Shards::default(),
        rx_gone: WaitQueue::named("watch_closed"),
    });
    let rx = Receiver {
        shared: shared.clone(),
        version: 0,
    };
    (Sender { shared }, rx)
}

/// The sending half; cloning it adds a sender. The channel closes when the
/// last one drops.
///
/// # Examples
///
/// ```
/// let (tx, rx) = waitrt::sync::watch::channel(0);
/// tx.send_modify(|v| *v += 1);
/// assert_eq!(*rx.borrow(), 1);
/// ```
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving half: cloning it gives a receiver that has seen what this
/// one has.
///
/// # Examples
///
/// ```
/// let (tx, mut rx) = waitrt::sync::watch::channel(0);
/// tx.send(1).unwrap();
/// let rx2 = rx.clone();
/// assert!(rx2.has_changed().unwrap());
/// assert_eq!(*rx.borrow_and_update(), 1);
/// assert!(!rx.has_changed().unwrap());
/// ```
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// The version this receiver last marked seen.
    version: u64,
}

/// A read guard on the value ([`Sender::borrow`], [`Receiver::borrow`],
/// ...): senders wait while it lives, so keep it short and never hold it
/// across an `.await`.
///
/// # Examples
///
/// ```
/// let (tx, rx) = waitrt::sync::watch::channel(String::from("a"));
/// tx.send_replace("b".into());
/// let value = rx.borrow();
/// assert_eq!(*value, "b");
/// assert!(value.has_changed()); // `borrow` does not mark it seen
/// ```
pub struct Ref<'a, T> {
    inner: RwLockReadGuard<'a, T>,
    has_changed: bool,
}

struct Shared<T> {
    value: RwLock<T>,
    /// The version (in steps of [`STEP`]) and [`CLOSED`]; the version is
    /// bumped under `value`'s write lock, after the write.
    state: AtomicU64,
    senders: AtomicUsize,
    receivers: AtomicUsize,
    /// Receivers sleep here (non-exclusive), each on its thread's queue.
    queues: Shards,
    /// [`Sender::closed`] sleeps here until no receiver is left.
    rx_gone: WaitQueue,
}

// ===== impl Sender =====

impl<T> Sender<T> {
    /// A sender on a new channel with no receiver yet ([`subscribe`](Self::subscribe) makes one).
    ///
    /// # Examples
    ///
    /// ```
    /// let tx = waitrt::sync::watch::Sender::new(0);
    /// assert!(tx.send(1).is_err()); // nobody to see it
    /// let rx = tx.subscribe();
    /// assert!(tx.send(2).is_ok());
    /// assert_eq!(*rx.borrow(), 2);
    /// ```
    pub fn new(init: T) -> Self {
        let (tx, _) = channel(init);
        tx
    }

    /// Replaces the value and notifies every receiver.
    ///
    /// # Errors
    ///
    /// [`SendError`], with the value (not stored), when no receiver exists.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = waitrt::sync::watch::channel(0);
    /// assert!(tx.send(1).is_ok());
    /// drop(rx);
    /// assert!(tx.send(2).is_err());
    /// ```
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.receiver_count() == 0 {
            return Err(SendError(value));
        }
        self.send_replace(value);
        Ok(())
    }

    /// Replaces the value (even with no receiver), notifies every receiver,
    /// and returns the old value.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::watch::channel(1);
    /// assert_eq!(tx.send_replace(2), 1);
    /// ```
    pub fn send_replace(&self, value: T) -> T {
        let mut old = None;
        self.send_if_modified(|current| {
            old = Some(std::mem::replace(current, value));
            true
        });
        old.expect("the closure ran")
    }

    /// Modifies the value in place (even with no receiver) and notifies
    /// every receiver.
    ///
    /// # Panics
    ///
    /// If `modify` panics: the panic propagates and nobody is notified
    /// (the value may be partly modified, as `modify` left it).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = waitrt::sync::watch::channel(vec![1]);
    /// tx.send_modify(|v| v.push(2));
    /// assert_eq!(*rx.borrow(), [1, 2]);
    /// ```
    pub fn send_modify(&self, modify: impl FnOnce(&mut T)) {
        self.send_if_modified(|value| {
            modify(value);
            true
        });
    }

    /// Lets `modify` change the value in place; if it returns `true`, the
    /// change is published and every receiver notified. Returns what
    /// `modify` returned.
    ///
    /// # Panics
    ///
    /// If `modify` panics: as [`send_modify`](Self::send_modify).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = waitrt::sync::watch::channel(5);
    /// assert!(!tx.send_if_modified(|v| std::mem::replace(v, 5) != 5)); // same value: quiet
    /// assert!(!rx.has_changed().unwrap());
    /// assert!(tx.send_if_modified(|v| std::mem::replace(v, 6) != 6));
    /// assert!(rx.has_changed().unwrap());
    /// ```
    pub fn send_if_modified(&self, modify: impl FnOnce(&mut T) -> bool) -> bool {
        let shared = &*self.shared;
        let mut value = shared.value.write().unwrap_or_else(PoisonError::into_inner);
        if !modify(&mut value) {
            return false;
        }
        // Still under the write lock: a reader that takes the read lock
        // sees this version with this value, never one without the other.
        shared.state.fetch_add(STEP, SeqCst);
        drop(value);
        // Pairs with the fence in `Shared::poll_changed` (kernel:
        // `smp_mb(); if (waitqueue_active(wq)) wake_up(wq);`).
        fence(SeqCst);
        shared.queues.wake_sleepers();
        true
    }

    /// A read guard on the current value (its
    /// [`has_changed`](Ref::has_changed) is `false`).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::watch::channel(3);
    /// assert_eq!(*tx.borrow(), 3);
    /// ```
    pub fn borrow(&self) -> Ref<'_, T> {
        Ref {
            inner: self.shared.read(),
            has_changed: false,
        }
    }

    /// A new receiver, which has seen the current value.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::watch::channel(0);
    /// let rx = tx.subscribe();
    /// assert!(!rx.has_changed().unwrap());
    /// ```
    pub fn subscribe(&self) -> Receiver<T> {
        let version = self.shared.state.load(SeqCst) & !CLOSED;
        self.shared.receivers.fetch_add(1, SeqCst);
        Receiver {
            shared: self.shared.clone(),
            version,
        }
    }

    /// How many receivers exist.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = waitrt::sync::watch::channel(0);
    /// assert_eq!(tx.receiver_count(), 1);
    /// drop(rx);
    /// assert_eq!(tx.receiver_count(), 0);
    /// ```
    pub fn receiver_count(&self) -> usize {
        self.shared.receivers.load(SeqCst)
    }

    /// How many senders exist, this one included. As tokio's.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::watch::channel(0);
    /// let other = tx.clone();
    /// assert_eq!((tx.sender_count(), other.sender_count()), (2, 2));
    /// drop(other);
    /// assert_eq!(tx.sender_count(), 1);
    /// ```
    pub fn sender_count(&self) -> usize {
        self.shared.senders.load(SeqCst)
    }

    /// Whether no receiver is left.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = waitrt::sync::watch::channel(0);
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.receiver_count() == 0
    }

    /// Waits until no receiver is left.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, rx) = waitrt::sync::watch::channel(0);
    ///     waitrt::spawn(async move { drop(rx) });
    ///     tx.closed().await;
    ///     assert!(tx.is_closed());
    /// });
    /// ```
    #[track_caller]
    pub fn closed(&self) -> impl Future<Output = ()> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let shared = &*self.shared;
            // The queue is never closed, so the wait ends only on its condition.
            let _ = shared
                .rx_gone
                .wait_event(|| shared.receivers.load(SeqCst) == 0)
                .at(site)
                .await;
        }
    }

    /// Whether `other` sends on the same channel.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::watch::channel(0);
    /// assert!(tx.same_channel(&tx.clone()));
    /// ```
    pub fn same_channel(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, SeqCst);
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, SeqCst) == 1 {
            self.shared.state.fetch_or(CLOSED, SeqCst);
            // As a send's: a queue made after this look is made by a
            // receiver that then sees `CLOSED` in its re-check.
            fence(SeqCst);
            self.shared.queues.wake_sleepers();
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("watch::Sender")
            .field("value", &*self.borrow())
            .finish()
    }
}

// ===== impl Ref =====

impl<T> Ref<'_, T> {
    /// Whether this value is newer than what the receiver had marked seen
    /// when it borrowed it (always `false` from [`Sender::borrow`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = waitrt::sync::watch::channel(0);
    /// tx.send(1).unwrap();
    /// assert!(rx.borrow_and_update().has_changed());
    /// assert!(!rx.borrow_and_update().has_changed());
    /// ```
    pub fn has_changed(&self) -> bool {
        self.has_changed
    }
}

impl<T> Deref for Ref<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: fmt::Debug> fmt::Debug for Ref<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

// ===== impl Shared =====

impl<T> Shared<T> {
    fn read(&self) -> RwLockReadGuard<'_, T> {
        // A panic in `send_modify` poisons the lock; the value is what the
        // closure left, which is what tokio shows too.
        self.value.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value with its version, read consistently (under the lock), and
    /// marked seen.
    fn read_and_mark(&self, seen: &mut u64) -> Ref<'_, T> {
        let inner = self.read();
        let version = self.state.load(SeqCst) & !CLOSED;
        let has_changed = version != *seen;
        *seen = version;
        Ref { inner, has_changed }
    }

    /// `changed`'s condition: `Some` when there is a change to report (it
    /// is then marked seen) or the channel closed with none.
    fn poll_changed(&self, seen: &mut u64) -> Option<Result<(), RecvError>> {
        let check = |seen: &mut u64| {
            let state = self.state.load(SeqCst);
            if state & !CLOSED != *seen {
                *seen = state & !CLOSED;
                Some(Ok(()))
            } else if state & CLOSED != 0 {
                Some(Err(RecvError(())))
            } else {
                None
            }
        };
        check(seen).or_else(|| {
            // Before concluding "sleep", a full fence between our entry's
            // link and this second look, pairing with the one in
            // `send_if_modified` (kernel: `set_current_state()`'s barrier).
            fence(SeqCst);
            check(seen)
        })
    }
}

/// How many wait queues a channel's receivers spread over (tokio's watch
/// spreads its waiters over 8 `Notify`s).
const SHARDS: usize = 8;

/// The receivers' wait queues, made on first use (a channel polled from
/// one thread makes one), and which of them are made, so that a send
/// looks at those only.
#[derive(Default)]
struct Shards {
    queues: [OnceLock<Box<WaitQueue>>; SHARDS],
    /// Bit `i`: `queues[i]` is made (set while it is made, before any
    /// receiver can find it).
    made: AtomicU8,
}

impl Shards {
    /// The queue the calling thread's receivers sleep on.
    #[inline]
    fn mine(&self) -> &WaitQueue {
        let index = thread_shard();
        match self.queues[index].get() {
            Some(queue) => queue,
            None => self.make(index),
        }
    }

    #[cold]
    fn make(&self, index: usize) -> &WaitQueue {
        let queue = self.queues[index].get_or_init(|| {
            // Set before the queue is published: a receiver on another
            // thread of the same shard that finds the queue made (and
            // links on it without coming here) then has this store before
            // its link and fence, so a send that misses its re-check sees
            // the bit. Set after, that receiver could sleep through a send
            // that came between the two (an independent review: a hang
            // after the sender's last drop, 5 of 5 stress runs). A send
            // that sees the bit before the queue is published skips it:
            // nobody can have linked on it yet.
            self.made.fetch_or(1 << index, Release);
            Box::new(WaitQueue::named("watch"))
        });
        #[cfg(test)]
        tests::after_make();
        queue
    }

    /// Wakes every receiver asleep. The caller made its change visible
    /// and then a full fence, which pairs with the one in a receiver's
    /// re-check (`Shared::poll_changed`): a receiver whose re-check missed
    /// the change had linked its entry (and made its queue) before that
    /// fence, so it is seen here (with its queue's bit: see `make`).
    fn wake_sleepers(&self) {
        let mut made = self.made.load(Acquire);
        while made != 0 {
            let index = made.trailing_zeros() as usize;
            made &= made - 1;
            if let Some(queue) = self.queues[index].get() {
                if queue.waitqueue_active_after_barrier() {
                    queue.wake_up_all();
                }
            }
        }
    }
}

thread_local! {
    /// The calling thread's shard ([`thread_shard`]); `u8::MAX`: none yet.
    static SHARD: Cell<u8> = const { Cell::new(u8::MAX) };
}

/// The calling thread's shard: given in turn to each thread that asks.
fn thread_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    SHARD.with(|shard| match shard.get() {
        u8::MAX => {
            let next = NEXT.fetch_add(1, Relaxed) % SHARDS;
            shard.set(next as u8);
            next
        }
        given => usize::from(given),
    })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use super::*;

    thread_local! {
        /// Run once by `Shards::make` on this thread after the queue is
        /// made: where a preemption used to lose a wake.
        static AFTER_MAKE: RefCell<Option<Box<dyn FnOnce()>>> = const { RefCell::new(None) };
    }

    pub(super) fn after_make() {
        if let Some(hook) = AFTER_MAKE.with(|h| h.borrow_mut().take()) {
            hook();
        }
    }

    fn until(what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(start.elapsed() < Duration::from_secs(30), "{what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Two threads of one shard: A makes the channel's queue and is held
    /// right after (as a preemption would); B finds the queue made, links
    /// its entry and sleeps; a send then must wake B.
    #[test]
    fn a_receiver_that_found_its_queue_made_is_woken() {
        let (tx, rx) = channel(0u32);
        let shared = tx.shared.clone();
        let (mut rx_a, mut rx_b) = (rx.clone(), rx);
        let (release_a, held) = mpsc::channel::<()>();
        let a = std::thread::spawn(move || {
            SHARD.with(|s| s.set(3));
            AFTER_MAKE.with(|h| {
                *h.borrow_mut() = Some(Box::new(move || {
                    let _ = held.recv();
                }))
            });
            rx_a.blocking_changed()
        });
        until("A made its queue", || {
            shared.queues.queues[3].get().is_some()
        });
        let (b_done, b_finished) = mpsc::channel();
        let b = std::thread::spawn(move || {
            SHARD.with(|s| s.set(3));
            let got = rx_b.blocking_changed();
            let _ = b_done.send(());
            got
        });
        let queue = shared.queues.queues[3].get().unwrap();
        until("B sleeps on A's queue", || queue.len() == 1);
        tx.send(1).unwrap();
        let woken = b_finished.recv_timeout(Duration::from_secs(10)).is_ok();
        release_a.send(()).unwrap();
        assert!(a.join().unwrap().is_ok());
        if !woken {
            tx.send(2).unwrap(); // A has published the queue: let B go, then fail
        }
        assert!(b.join().unwrap().is_ok());
        assert!(
            woken,
            "the send did not wake a receiver on a queue found made"
        );
    }
}
