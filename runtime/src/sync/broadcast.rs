//! A multi-producer, multi-consumer broadcast channel: every receiver sees
//! every message (tokio's `sync::broadcast`).
//!
//! ```
//! use waitrt::sync::broadcast;
//!
//! let rt = waitrt::Builder::new_multi_thread().worker_threads(2).build().unwrap();
//! rt.block_on(async {
//!     let (tx, mut rx1) = broadcast::channel(16);
//!     let mut rx2 = tx.subscribe();
//!     let a = waitrt::spawn(async move { (rx1.recv().await, rx1.recv().await) });
//!     let b = waitrt::spawn(async move { (rx2.recv().await, rx2.recv().await) });
//!     tx.send(10).unwrap();
//!     tx.send(20).unwrap();
//!     assert_eq!(a.await.unwrap(), (Ok(10), Ok(20)));
//!     assert_eq!(b.await.unwrap(), (Ok(10), Ok(20)));
//! });
//! ```
//!
//! # The contract
//!
//! - **Bounded, never blocking the sender.** The channel keeps the last
//!   `capacity` messages (rounded up to a power of two). A send always
//!   succeeds while a receiver exists, overwriting the oldest message; a
//!   receiver that fell behind by more than the capacity gets
//!   [`RecvError::Lagged(n)`](error::RecvError::Lagged), `n` being exactly
//!   the number of messages it missed, and then continues with the oldest
//!   message the channel still holds. So `received + lagged == sent` for
//!   every receiver, and what it receives is the sent sequence in order,
//!   with gaps only where it reported a lag.
//! - **Receivers see what was sent after they subscribed**, cloned out to
//!   each of them (the last receiver to read a message moves it out, and a
//!   message every receiver has read is dropped at once).
//! - **Closing.** When the last [`Sender`] drops, receivers first drain
//!   what they have not seen, then get [`RecvError::Closed`].
//! - **Waiting.** [`Receiver::recv`] sleeps on the channel's wait queue as
//!   a non-exclusive waiter (every receiver must see each message), in the
//!   kernel's forms: [`recv_interruptible`](Receiver::recv_interruptible),
//!   [`recv_killable`](Receiver::recv_killable),
//!   [`recv_timeout`](Receiver::recv_timeout), and
//!   [`blocking_recv`](Receiver::blocking_recv) for plain threads. A
//!   dropped `recv` loses no message. A `recv` that finds a message at once
//!   spends a unit of the task's cooperative budget, so a loop over a
//!   channel that is never empty still lets other tasks run.
//!
//! Kernel counterpart: none as such; the closest is a ring buffer read by
//! several consumers, each with its own position (`perf`'s ring, or a
//! `seqcount`-versioned slot array), readers sleeping in `wait_event()`.
//!
//! # Internals
//!
//! A ring of `capacity` slots, each a short `Mutex` holding the message,
//! its position (a `u64` sequence number) and how many receivers still
//! have to read it. A send takes the sender lock (`tail`: the next
//! position and the receiver count), writes the slot, publishes the new
//! tail in the atomic `written`, and wakes the wait queue only if
//! someone sleeps on it (`waitqueue_active`, after a full fence that pairs
//! with the one in the receivers' re-check: the kernel's
//! `smp_mb(); if (waitqueue_active(wq)) wake_up(wq)`). A receiver reads
//! the slot of its position: same position, a message; an older one,
//! nothing yet; a newer one, it lagged, and the tail says by how much.
//! Neither path takes the wait queue's lock or allocates.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use waitq::WaitQueue;

pub mod error;

use error::{RecvError, SendError, TryRecvError};

/// The position of a slot never written.
const NEVER: u64 = u64::MAX;

/// Creates a broadcast channel holding the last `capacity` messages
/// (rounded up to a power of two), and its first receiver.
///
/// # Panics
///
/// If `capacity` is 0 or above `usize::MAX / 2`.
///
/// # Examples
///
/// ```
/// let (tx, mut rx) = waitrt::sync::broadcast::channel(2);
/// tx.send("hello").unwrap();
/// assert_eq!(rx.try_recv(), Ok("hello"));
/// ```
#[track_caller]
pub fn channel<T: Clone>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Shared::new(capacity, 1);
    let rx = Receiver {
        shared: shared.clone(),
        next: 0,
    };
    (Sender { shared }, rx)
}

impl<T> Shared<T> {
    #[track_caller]
    fn new(capacity: usize, rx_cnt: usize) -> Arc<Shared<T>> {
        assert!(capacity > 0, "broadcast channel capacity cannot be zero");
        assert!(
            capacity <= usize::MAX >> 1,
            "broadcast channel capacity exceeded `usize::MAX / 2`"
        );
        let capacity = capacity.next_power_of_two();
        let buffer = (0..capacity)
            .map(|_| {
                Mutex::new(Slot {
                    pos: NEVER,
                    rem: 0,
                    val: None,
                })
            })
            .collect();
        Arc::new(Shared {
            buffer,
            mask: capacity - 1,
            tail: Mutex::new(Tail { pos: 0, rx_cnt }),
            written: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            senders: AtomicUsize::new(1),
            weak_senders: AtomicUsize::new(0),
            queue: WaitQueue::named("broadcast"),
            rx_gone: WaitQueue::named("broadcast_closed"),
        })
    }
}

/// The sending half; cloning it adds a sender. The channel closes when the
/// last one drops.
///
/// # Examples
///
/// ```
/// let (tx, mut rx) = waitrt::sync::broadcast::channel(4);
/// let tx2 = tx.clone();
/// assert_eq!(tx2.send(1), Ok(1)); // one receiver got it
/// assert_eq!(rx.try_recv(), Ok(1));
/// ```
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// A sender that does not keep the channel open (receivers still see it
/// closed once every [`Sender`] is gone); [`upgrade`](Self::upgrade) it to
/// send. See [`Sender::downgrade`].
pub struct WeakSender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving half: reads every message sent after it subscribed, in
/// order. [`Sender::subscribe`] and [`resubscribe`](Receiver::resubscribe)
/// make more.
///
/// # Examples
///
/// ```
/// let (tx, mut rx) = waitrt::sync::broadcast::channel(4);
/// tx.send(1).unwrap();
/// let mut late = rx.resubscribe(); // starts at the tail
/// tx.send(2).unwrap();
/// assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(1), Ok(2)));
/// assert_eq!(late.try_recv(), Ok(2));
/// ```
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// The position of the next message this receiver reads.
    next: u64,
}

struct Shared<T> {
    buffer: Box<[Mutex<Slot<T>>]>,
    mask: usize,
    /// The sender lock: taken by a send, a subscribe, a receiver's drop.
    tail: Mutex<Tail>,
    /// `tail.pos` published after each send: every position below it has
    /// been written (it is stored after the slot's lock was released).
    written: AtomicU64,
    /// Set (under `tail`) when the last sender drops, after the last send.
    closed: AtomicBool,
    senders: AtomicUsize,
    /// [`WeakSender`]s (they keep nothing open; counted for `weak_count`).
    weak_senders: AtomicUsize,
    /// Receivers sleep here (non-exclusive).
    queue: WaitQueue,
    /// [`Sender::closed`] sleeps here until no receiver is left.
    rx_gone: WaitQueue,
}

struct Tail {
    /// The position of the next message sent.
    pos: u64,
    /// Live receivers (each message is counted for each of them).
    rx_cnt: usize,
}

struct Slot<T> {
    pos: u64,
    /// Receivers that have still to read this message.
    rem: usize,
    val: Option<T>,
}

// ===== impl Sender =====

impl<T> Sender<T> {
    /// Sends `value` to every receiver and returns how many there are.
    /// Never waits: when the channel is full, the oldest message goes.
    ///
    /// # Errors
    ///
    /// [`SendError`], with the value, when no receiver exists.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = waitrt::sync::broadcast::channel(4);
    /// let _rx2 = tx.subscribe();
    /// assert_eq!(tx.send('a'), Ok(2));
    /// drop((rx, _rx2));
    /// assert!(tx.send('b').is_err());
    /// ```
    pub fn send(&self, value: T) -> Result<usize, SendError<T>> {
        let shared = &*self.shared;
        let mut tail = lock(&shared.tail);
        if tail.rx_cnt == 0 {
            return Err(SendError(value));
        }
        let pos = tail.pos;
        let receivers = tail.rx_cnt;
        let old = {
            let mut slot = lock(&shared.buffer[shared.index(pos)]);
            slot.pos = pos;
            slot.rem = receivers;
            slot.val.replace(value)
        };
        tail.pos = pos + 1;
        shared.written.store(pos + 1, SeqCst);
        drop(tail);
        // Pairs with the fence in `Shared::poll_recv`: either the receiver's
        // re-check sees `written`, or we see its entry (kernel:
        // `smp_mb(); if (waitqueue_active(wq)) wake_up(wq);`).
        fence(SeqCst);
        if shared.queue.waitqueue_active_after_barrier() {
            shared.queue.wake_up_all();
        }
        // An overwritten message is dropped with no lock held.
        drop(old);
        Ok(receivers)
    }

    /// A sender with no receiver yet (as tokio's `Sender::new`): sends fail
    /// until [`subscribe`](Self::subscribe) makes one.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0 or above `usize::MAX / 2`.
    ///
    /// # Examples
    ///
    /// ```
    /// let tx = waitrt::sync::broadcast::Sender::new(4);
    /// assert!(tx.send(1).is_err(), "nobody listens yet");
    /// let mut rx = tx.subscribe();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(2));
    /// ```
    #[track_caller]
    pub fn new(capacity: usize) -> Sender<T> {
        Sender {
            shared: Shared::new(capacity, 0),
        }
    }

    /// A [`WeakSender`]: it does not keep the channel open.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = waitrt::sync::broadcast::channel::<u8>(4);
    /// let weak = tx.downgrade();
    /// weak.upgrade().unwrap().send(1).unwrap();
    /// drop(tx);
    /// assert!(weak.upgrade().is_none(), "the last sender closed it");
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn downgrade(&self) -> WeakSender<T> {
        self.shared.weak_senders.fetch_add(1, SeqCst);
        WeakSender {
            shared: self.shared.clone(),
        }
    }

    /// How many [`Sender`]s exist (this one included).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::broadcast::channel::<u8>(4);
    /// let tx2 = tx.clone();
    /// assert_eq!(tx.sender_count(), 2);
    /// drop(tx2);
    /// assert_eq!(tx.sender_count(), 1);
    /// ```
    pub fn sender_count(&self) -> usize {
        self.shared.senders.load(SeqCst)
    }

    /// How many [`Sender`]s exist (tokio's name for
    /// [`sender_count`](Self::sender_count)).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::broadcast::channel::<u8>(4);
    /// assert_eq!(tx.strong_count(), 1);
    /// ```
    pub fn strong_count(&self) -> usize {
        self.sender_count()
    }

    /// How many [`WeakSender`]s exist.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::broadcast::channel::<u8>(4);
    /// let weak = tx.downgrade();
    /// assert_eq!(tx.weak_count(), 1);
    /// drop(weak);
    /// assert_eq!(tx.weak_count(), 0);
    /// ```
    pub fn weak_count(&self) -> usize {
        self.shared.weak_senders.load(SeqCst)
    }

    /// A new receiver, which sees the messages sent after this call.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::broadcast::channel(4);
    /// tx.send(1).unwrap(); // before: not seen
    /// let mut rx = tx.subscribe();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(2));
    /// ```
    pub fn subscribe(&self) -> Receiver<T> {
        self.shared.clone().new_receiver()
    }

    /// How many receivers exist.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = waitrt::sync::broadcast::channel::<()>(4);
    /// let rx2 = rx.resubscribe();
    /// assert_eq!(tx.receiver_count(), 2);
    /// drop((rx, rx2));
    /// assert_eq!(tx.receiver_count(), 0);
    /// ```
    pub fn receiver_count(&self) -> usize {
        lock(&self.shared.tail).rx_cnt
    }

    /// How many messages some receiver alive when they were sent has still
    /// to read (tokio's definition: a message stays queued until every such
    /// receiver has seen it, or it is overwritten).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx1) = waitrt::sync::broadcast::channel(4);
    /// let mut rx2 = tx.subscribe();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(tx.len(), 2);
    /// rx1.try_recv().unwrap();
    /// assert_eq!(tx.len(), 2); // rx2 has not read it
    /// rx2.try_recv().unwrap();
    /// assert_eq!(tx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        let shared = &*self.shared;
        let tail = lock(&shared.tail);
        let oldest = tail.pos.saturating_sub(shared.buffer.len() as u64);
        // Messages are read oldest first, so the unread ones are a suffix:
        // find its start.
        let (mut low, mut high) = (oldest, tail.pos);
        while low < high {
            let mid = low + (high - low) / 2;
            let slot = lock(&shared.buffer[shared.index(mid)]);
            if slot.pos == mid && slot.rem > 0 {
                high = mid;
            } else {
                low = mid + 1;
            }
        }
        (tail.pos - low) as usize
    }

    /// Whether [`len`](Self::len) is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = waitrt::sync::broadcast::channel(4);
    /// tx.send(1).unwrap();
    /// assert!(!tx.is_empty());
    /// rx.try_recv().unwrap();
    /// assert!(tx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `other` sends on the same channel.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::broadcast::channel::<()>(4);
    /// let (other, _rx2) = waitrt::sync::broadcast::channel::<()>(4);
    /// assert!(tx.same_channel(&tx.clone()) && !tx.same_channel(&other));
    /// ```
    pub fn same_channel(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
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
    ///     let (tx, rx) = waitrt::sync::broadcast::channel::<u8>(4);
    ///     waitrt::spawn(async move { drop(rx) });
    ///     tx.closed().await;
    ///     assert_eq!(tx.receiver_count(), 0);
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
                .wait_event(|| lock(&shared.tail).rx_cnt == 0)
                .at(site)
                .await;
        }
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
        if self.shared.senders.fetch_sub(1, SeqCst) != 1 {
            return;
        }
        // Under the sender lock, so after the last send's `written`.
        let tail = lock(&self.shared.tail);
        self.shared.closed.store(true, SeqCst);
        drop(tail);
        self.shared.queue.wake_up_all();
    }
}

// ===== impl WeakSender =====

impl<T> WeakSender<T> {
    /// A [`Sender`], unless every sender is gone (the channel is then
    /// closed for good).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::broadcast::channel::<u8>(4);
    /// let weak = tx.downgrade();
    /// assert!(weak.upgrade().is_some());
    /// drop(tx);
    /// assert!(weak.upgrade().is_none());
    /// ```
    pub fn upgrade(&self) -> Option<Sender<T>> {
        // Never from 0: the last sender's drop closed the channel.
        let mut count = self.shared.senders.load(SeqCst);
        loop {
            if count == 0 {
                return None;
            }
            match self
                .shared
                .senders
                .compare_exchange_weak(count, count + 1, SeqCst, SeqCst)
            {
                Ok(_) => {
                    return Some(Sender {
                        shared: self.shared.clone(),
                    })
                }
                Err(actual) => count = actual,
            }
        }
    }

    /// How many [`Sender`]s exist.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::broadcast::channel::<u8>(4);
    /// assert_eq!(tx.downgrade().strong_count(), 1);
    /// ```
    pub fn strong_count(&self) -> usize {
        self.shared.senders.load(SeqCst)
    }

    /// How many [`WeakSender`]s exist (this one included).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::broadcast::channel::<u8>(4);
    /// let weak = tx.downgrade();
    /// let _weak2 = weak.clone();
    /// assert_eq!(weak.weak_count(), 2);
    /// ```
    pub fn weak_count(&self) -> usize {
        self.shared.weak_senders.load(SeqCst)
    }
}

impl<T> Clone for WeakSender<T> {
    fn clone(&self) -> Self {
        self.shared.weak_senders.fetch_add(1, SeqCst);
        WeakSender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for WeakSender<T> {
    fn drop(&mut self) {
        self.shared.weak_senders.fetch_sub(1, SeqCst);
    }
}

impl<T> fmt::Debug for WeakSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("broadcast::WeakSender")
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("broadcast::Sender")
    }
}

mod recv;

// ===== impl Shared =====

impl<T> Shared<T> {
    fn index(&self, pos: u64) -> usize {
        pos as usize & self.mask
    }

    /// Registers a receiver starting at the tail.
    fn new_receiver(self: Arc<Self>) -> Receiver<T> {
        let mut tail = lock(&self.tail);
        tail.rx_cnt = tail.rx_cnt.checked_add(1).expect("too many receivers");
        let next = tail.pos;
        drop(tail);
        Receiver { shared: self, next }
    }
}

impl<T: Clone> Shared<T> {
    /// Takes the message at `*next`, if any, advancing `*next`.
    fn try_recv(&self, next: &mut u64) -> Result<T, TryRecvError> {
        let cap = self.buffer.len() as u64;
        loop {
            let mut slot = lock(&self.buffer[self.index(*next)]);
            if slot.pos == *next {
                // The last reader moves the message out (nobody else will
                // read it), the others clone it. Counted after the clone, so
                // a panicking `Clone` changes nothing.
                let value = if slot.rem == 1 {
                    slot.val.take()
                } else {
                    slot.val.clone()
                };
                slot.rem -= 1;
                drop(slot);
                *next += 1;
                return Ok(value.expect("a message counted for this receiver is there"));
            }
            let seen = slot.pos;
            drop(slot);
            // `closed` first: once it is set, `written` is final.
            let closed = self.closed.load(SeqCst);
            let written = self.written.load(SeqCst);
            if written <= *next {
                return Err(if closed {
                    TryRecvError::Closed
                } else {
                    TryRecvError::Empty
                });
            }
            if seen != NEVER && seen > *next {
                // Overwritten (`seen >= *next + cap`). The oldest message
                // still held is `cap` below the tail; `written` may lag the
                // slot we saw, hence the `max`.
                let oldest = written.max(seen + 1) - cap;
                let missed = oldest - *next;
                *next = oldest;
                return Err(TryRecvError::Lagged(missed));
            }
            // The slot was written after we looked at it: look again.
        }
    }

    /// [`try_recv`](Self::try_recv) as a wait condition: `None` when there
    /// is nothing to return yet.
    fn poll_recv(&self, next: &mut u64) -> Option<Result<T, RecvError>> {
        let empty = |res: &Result<T, TryRecvError>| matches!(res, Err(TryRecvError::Empty));
        let mut res = self.try_recv(next);
        if empty(&res) {
            // Before concluding "sleep", a full fence between our entry's
            // link and this second look, pairing with the one in `send`
            // (kernel: `set_current_state()`'s barrier).
            fence(SeqCst);
            res = self.try_recv(next);
        }
        match res {
            Ok(value) => Some(Ok(value)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
            Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
        }
    }
}

/// Locks `mutex`; a panic elsewhere (in a message's `Clone` or `Drop`) left
/// the data consistent, so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
