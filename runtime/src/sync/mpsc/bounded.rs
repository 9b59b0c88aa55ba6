//! The bounded channel: [`Sender`], [`Receiver`], [`Permit`],
//! [`PermitIterator`], [`OwnedPermit`], [`WeakSender`].

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use waitq::{Interrupted, Killed, TimedOut};

use super::chan::{Chan, SlotFail};
use super::error::{SendError, SendInterruptError, SendTimeoutError, TryRecvError, TrySendError};
use super::rx::{Recv, Rx};

/// Creates a bounded channel of `buffer` slots: a message sent waits
/// while every slot is taken (buffered messages and reserved permits).
///
/// # Panics
///
/// If `buffer` is 0.
///
/// # Examples
///
/// ```
/// use waitrt::sync::mpsc;
/// let rt = waitrt::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {
///     let (tx, mut rx) = mpsc::channel(16);
///     waitrt::spawn(async move {
///         for i in 0..3 {
///             tx.send(i).await.unwrap();
///         }
///     });
///     let mut got = Vec::new();
///     while let Some(i) = rx.recv().await {
///         got.push(i);
///     }
///     assert_eq!(got, [0, 1, 2]);
/// });
/// ```
#[track_caller]
pub fn channel<T>(buffer: usize) -> (Sender<T>, Receiver<T>) {
    assert!(buffer > 0, "mpsc bounded channel requires buffer > 0");
    assert!(buffer < usize::MAX, "mpsc bounded channel buffer too large");
    let chan = Chan::new(buffer);
    (
        Sender { chan: chan.clone() },
        Receiver { rx: Rx::new(chan) },
    )
}

/// Sends values to the [`Receiver`] of a bounded channel. Cloning it adds
/// a sender; the channel ends for the receiver when the last one is
/// dropped.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// A sender that does not keep the channel open; see
/// [`Sender::downgrade`].
pub struct WeakSender<T> {
    chan: Arc<Chan<T>>,
}

/// A slot reserved by [`Sender::reserve`]: sending through it cannot fail
/// or wait. Dropping it unused frees the slot (and wakes a waiting sender).
pub struct Permit<'a, T> {
    chan: &'a Chan<T>,
}

/// Slots reserved together by [`Sender::reserve_many`] or
/// [`Sender::try_reserve_many`]: each [`next`](Iterator::next) hands out
/// one as a [`Permit`]. Dropping it frees the slots not yet handed out.
pub struct PermitIterator<'a, T> {
    chan: &'a Chan<T>,
    n: usize,
}

/// A slot reserved by [`Sender::reserve_owned`], owning its sender.
/// Dropping it unused frees the slot.
pub struct OwnedPermit<T> {
    sender: Option<Sender<T>>,
}

/// Receives the values of a bounded channel; see [`channel`].
///
/// Also a [`Stream`](futures_core::Stream) of them, ending when every
/// sender is gone and the buffer is drained.
pub struct Receiver<T> {
    rx: Rx<T>,
}

// ===== impl Sender =====

impl<T> Sender<T> {
    /// Sends `value`, waiting for a free slot while the channel is full.
    ///
    /// Senders waiting for a slot are served in FIFO order (exclusive
    /// waiters): each slot a receive frees wakes the oldest.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if the receiver is gone (dropped or
    /// [`close`](Receiver::close)d), before or while waiting.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes sends nothing (the value is
    /// dropped with it) and gives up its place in line; if a freed slot had
    /// been announced to it, the next waiting sender gets it.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = waitrt::sync::mpsc::channel(1);
    ///     tx.send("hello").await.unwrap();
    ///     assert_eq!(rx.recv().await, Some("hello"));
    /// });
    /// ```
    #[track_caller]
    pub fn send(&self, value: T) -> impl Future<Output = Result<(), SendError<T>>> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let value = match self.chan.send_now(value).await {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(value)) => return Err(SendError(value)),
                Err(TrySendError::Full(value)) => value,
            };
            match self.chan.reserve(site).await {
                Ok(()) => {
                    self.chan.send_reserved(value);
                    Ok(())
                }
                Err(_) => Err(SendError(value)),
            }
        }
    }

    /// [`send`](Self::send), ending early if the task is interrupted or
    /// killed (kernel: a `wait_event_interruptible_exclusive` sender).
    ///
    /// # Errors
    ///
    /// [`SendInterruptError`] with the value: `Interrupted` or `Killed` if
    /// a signal came while the channel was full, `Closed` if the receiver
    /// is gone. A slot that comes free together with the signal wins.
    ///
    /// # Cancel safety
    ///
    /// As [`send`](Self::send).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = waitrt::sync::mpsc::channel(1);
    ///     tx.send_interruptible(1).await.unwrap();
    ///     assert_eq!(rx.recv().await, Some(1));
    /// });
    /// ```
    #[track_caller]
    pub fn send_interruptible(
        &self,
        value: T,
    ) -> impl Future<Output = Result<(), SendInterruptError<T>>> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let value = match self.chan.send_now(value).await {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(value)) => return Err(SendInterruptError::Closed(value)),
                Err(TrySendError::Full(value)) => value,
            };
            match self.chan.reserve_interruptible(site).await {
                Ok(()) => {
                    self.chan.send_reserved(value);
                    Ok(())
                }
                Err(SlotFail::Closed) => Err(SendInterruptError::Closed(value)),
                Err(SlotFail::Ended(err)) if err.is_fatal() => {
                    Err(SendInterruptError::Killed(value))
                }
                Err(SlotFail::Ended(_)) => Err(SendInterruptError::Interrupted(value)),
            }
        }
    }

    /// [`send`](Self::send), ending early only if the task is killed
    /// (kernel: `wait_event_killable_exclusive`).
    ///
    /// # Errors
    ///
    /// [`SendInterruptError::Killed`] or [`SendInterruptError::Closed`],
    /// with the value.
    ///
    /// # Cancel safety
    ///
    /// As [`send`](Self::send).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = waitrt::sync::mpsc::channel(1);
    ///     tx.send_killable(1).await.unwrap();
    ///     assert_eq!(rx.recv().await, Some(1));
    /// });
    /// ```
    #[track_caller]
    pub fn send_killable(
        &self,
        value: T,
    ) -> impl Future<Output = Result<(), SendInterruptError<T>>> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let value = match self.chan.send_now(value).await {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(value)) => return Err(SendInterruptError::Closed(value)),
                Err(TrySendError::Full(value)) => value,
            };
            match self.chan.reserve_killable(site).await {
                Ok(()) => {
                    self.chan.send_reserved(value);
                    Ok(())
                }
                Err(SlotFail::Closed) => Err(SendInterruptError::Closed(value)),
                Err(SlotFail::Ended(_)) => Err(SendInterruptError::Killed(value)),
            }
        }
    }

    /// [`send`](Self::send), giving up after `timeout` on the runtime's
    /// clock (kernel: `wait_event_exclusive_timeout`).
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError`] with the value: `Timeout` if no slot came free
    /// in time, `Closed` if the receiver is gone.
    ///
    /// # Panics
    ///
    /// Outside a runtime, or on one built without timers, when it has to wait.
    ///
    /// # Cancel safety
    ///
    /// As [`send`](Self::send).
    ///
    /// # Examples
    ///
    /// See [`SendTimeoutError`].
    #[track_caller]
    pub fn send_timeout(
        &self,
        value: T,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), SendTimeoutError<T>>> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let value = match self.chan.send_now(value).await {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(value)) => return Err(SendTimeoutError::Closed(value)),
                Err(TrySendError::Full(value)) => value,
            };
            match self.chan.reserve_timeout(timeout, site).await {
                Ok(()) => {
                    self.chan.send_reserved(value);
                    Ok(())
                }
                Err(SlotFail::Closed) => Err(SendTimeoutError::Closed(value)),
                Err(SlotFail::Ended(_)) => Err(SendTimeoutError::Timeout(value)),
            }
        }
    }

    /// Sends from a plain thread, blocking it while the channel is full
    /// (waitq's blocking wait).
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if the receiver is gone.
    ///
    /// # Panics
    ///
    /// On a thread that drives a runtime's tasks (it would stall them).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = waitrt::sync::mpsc::channel(1);
    /// let thread = std::thread::spawn(move || {
    ///     tx.blocking_send(1).unwrap();
    ///     tx.blocking_send(2).unwrap(); // waits for the first to be received
    /// });
    /// assert_eq!(rx.blocking_recv(), Some(1));
    /// assert_eq!(rx.blocking_recv(), Some(2));
    /// thread.join().unwrap();
    /// ```
    #[track_caller]
    pub fn blocking_send(&self, value: T) -> Result<(), SendError<T>> {
        crate::sync::assert_blocking_allowed("blocking_send");
        let value = match self.chan.try_send(value) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed(value)) => return Err(SendError(value)),
            Err(TrySendError::Full(value)) => value,
        };
        match self.chan.blocking_reserve() {
            Ok(()) => {
                self.chan.send_reserved(value);
                Ok(())
            }
            Err(_) => Err(SendError(value)),
        }
    }

    /// Sends if a slot is free now.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] or [`TrySendError::Closed`], with the value.
    ///
    /// # Examples
    ///
    /// See [`TrySendError`].
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(value)
    }

    /// Waits for a slot and reserves it: a [`Permit`] then sends without
    /// waiting or failing.
    ///
    /// # Errors
    ///
    /// [`SendError`] if the receiver is gone.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes reserves nothing and hands
    /// an announced slot to the next waiting sender; dropping the permit
    /// frees its slot.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = waitrt::sync::mpsc::channel(1);
    ///     let permit = tx.reserve().await.unwrap();
    ///     assert!(tx.try_send(2).is_err()); // the slot is taken
    ///     permit.send(1);
    ///     assert_eq!(rx.recv().await, Some(1));
    /// });
    /// ```
    #[track_caller]
    pub fn reserve(&self) -> impl Future<Output = Result<Permit<'_, T>, SendError<()>>> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            match self.chan.reserve(site).await {
                Ok(()) => Ok(Permit { chan: &self.chan }),
                Err(_) => Err(SendError(())),
            }
        }
    }

    /// [`reserve`](Self::reserve), ending early if the task is interrupted
    /// or killed (kernel: a `wait_event_interruptible_exclusive` sender).
    ///
    /// # Errors
    ///
    /// [`SendInterruptError`] (with `()`): `Interrupted` or `Killed` if a
    /// signal came while the channel was full, `Closed` if the receiver is
    /// gone. A slot that comes free together with the signal wins.
    ///
    /// # Cancel safety
    ///
    /// As [`reserve`](Self::reserve).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = waitrt::sync::mpsc::channel(1);
    ///     tx.reserve_interruptible().await.unwrap().send(1);
    ///     assert_eq!(rx.recv().await, Some(1));
    /// });
    /// ```
    #[track_caller]
    pub fn reserve_interruptible(
        &self,
    ) -> impl Future<Output = Result<Permit<'_, T>, SendInterruptError<()>>> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            match self.chan.reserve_interruptible(site).await {
                Ok(()) => Ok(Permit { chan: &self.chan }),
                Err(SlotFail::Closed) => Err(SendInterruptError::Closed(())),
                Err(SlotFail::Ended(err)) if err.is_fatal() => Err(SendInterruptError::Killed(())),
                Err(SlotFail::Ended(_)) => Err(SendInterruptError::Interrupted(())),
            }
        }
    }

    /// [`reserve`](Self::reserve), ending early only if the task is killed
    /// (kernel: `wait_event_killable_exclusive`).
    ///
    /// # Errors
    ///
    /// [`SendInterruptError::Killed`] or [`SendInterruptError::Closed`]
    /// (with `()`).
    ///
    /// # Cancel safety
    ///
    /// As [`reserve`](Self::reserve).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = waitrt::sync::mpsc::channel(1);
    ///     tx.reserve_killable().await.unwrap().send(1);
    ///     assert_eq!(rx.recv().await, Some(1));
    /// });
    /// ```
    #[track_caller]
    pub fn reserve_killable(
        &self,
    ) -> impl Future<Output = Result<Permit<'_, T>, SendInterruptError<()>>> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            match self.chan.reserve_killable(site).await {
                Ok(()) => Ok(Permit { chan: &self.chan }),
                Err(SlotFail::Closed) => Err(SendInterruptError::Closed(())),
                Err(SlotFail::Ended(_)) => Err(SendInterruptError::Killed(())),
            }
        }
    }

    /// [`reserve`](Self::reserve), giving up after `timeout` on the
    /// runtime's clock.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`] or [`SendTimeoutError::Closed`].
    ///
    /// # Panics
    ///
    /// Outside a runtime, or on one built without timers.
    ///
    /// # Cancel safety
    ///
    /// As [`reserve`](Self::reserve).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = waitrt::Builder::new_current_thread().enable_time().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, _rx) = waitrt::sync::mpsc::channel::<u8>(1);
    ///     let _held = tx.reserve().await.unwrap();
    ///     assert!(tx.reserve_timeout(Duration::from_millis(1)).await.is_err());
    /// });
    /// ```
    #[track_caller]
    pub fn reserve_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Permit<'_, T>, SendTimeoutError<()>>> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            match self.chan.reserve_timeout(timeout, site).await {
                Ok(()) => Ok(Permit { chan: &self.chan }),
                Err(SlotFail::Closed) => Err(SendTimeoutError::Closed(())),
                Err(SlotFail::Ended(_)) => Err(SendTimeoutError::Timeout(())),
            }
        }
    }

    /// Waits for `n` slots and reserves them together: the
    /// [`PermitIterator`] then hands out `n` [`Permit`]s. As tokio's.
    ///
    /// Fair with the other senders: it waits for a turn as any sender
    /// does (FIFO), and if fewer than `n` slots are free then, it joins a
    /// line of such reservations that the slots freed from then on go to
    /// first (the oldest first, each slot to the front until it has all
    /// it asked for), so neither a later `send` nor a later `reserve_many`
    /// overtakes it. `n == 0` completes at once with no permit.
    ///
    /// # Errors
    ///
    /// [`SendError`] if the receiver is gone, or if `n` exceeds
    /// [`max_capacity`](Self::max_capacity) (it could never be served;
    /// tokio's behaviour).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes reserves nothing: the slots
    /// it had taken in line are given back (to the next in line and the
    /// other senders), and a turn announced to it goes to the next waiting
    /// sender. Dropping the iterator frees the slots not yet handed out.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = waitrt::sync::mpsc::channel(2);
    ///     let mut permits = tx.reserve_many(2).await.unwrap();
    ///     assert!(tx.try_send(0).is_err()); // both slots are taken
    ///     permits.next().unwrap().send(1);
    ///     permits.next().unwrap().send(2);
    ///     assert!(permits.next().is_none());
    ///     assert_eq!(rx.recv().await, Some(1));
    ///     assert_eq!(rx.recv().await, Some(2));
    ///     assert!(tx.reserve_many(3).await.is_err()); // more than the channel has
    /// });
    /// ```
    #[track_caller]
    pub fn reserve_many(
        &self,
        n: usize,
    ) -> impl Future<Output = Result<PermitIterator<'_, T>, SendError<()>>> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            if n > self.max_capacity() {
                return Err(SendError(()));
            }
            if n == 0 {
                if self.is_closed() {
                    return Err(SendError(()));
                }
                return Ok(PermitIterator {
                    chan: &self.chan,
                    n,
                });
            }
            match self.chan.reserve_many(n, site).await {
                Ok(()) => Ok(PermitIterator {
                    chan: &self.chan,
                    n,
                }),
                Err(_) => Err(SendError(())),
            }
        }
    }

    /// Reserves `n` slots together if that many are free for a sender now
    /// (slots owed to a [`reserve_many`](Self::reserve_many) waiting in
    /// line are not). As tokio's.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if fewer are free, or if `n` exceeds
    /// [`max_capacity`](Self::max_capacity); [`TrySendError::Closed`] if
    /// the receiver is gone (for `n == 0` too).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::mpsc::channel::<u8>(3);
    /// let permits = tx.try_reserve_many(2).unwrap();
    /// assert_eq!(permits.len(), 2);
    /// assert!(tx.try_reserve_many(2).is_err()); // one slot left
    /// drop(permits); // frees both
    /// assert!(tx.try_reserve_many(3).is_ok());
    /// assert!(tx.try_reserve_many(4).is_err()); // more than the channel has
    /// ```
    pub fn try_reserve_many(&self, n: usize) -> Result<PermitIterator<'_, T>, TrySendError<()>> {
        if n > self.max_capacity() {
            return Err(TrySendError::Full(()));
        }
        self.chan.try_reserve_many(n)?;
        Ok(PermitIterator {
            chan: &self.chan,
            n,
        })
    }

    /// [`reserve`](Self::reserve) with a permit that owns the sender (for
    /// moving into another task).
    ///
    /// # Errors
    ///
    /// [`SendError`] with the sender if the receiver is gone.
    ///
    /// # Cancel safety
    ///
    /// As [`reserve`](Self::reserve) (the sender is dropped with the future).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = waitrt::sync::mpsc::channel(1);
    ///     let permit = tx.reserve_owned().await.unwrap();
    ///     let tx = permit.send(3);
    ///     assert_eq!(rx.recv().await, Some(3));
    ///     drop(tx);
    ///     assert_eq!(rx.recv().await, None);
    /// });
    /// ```
    #[track_caller]
    pub fn reserve_owned(self) -> impl Future<Output = Result<OwnedPermit<T>, SendError<Self>>> {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            match self.chan.reserve(site).await {
                Ok(()) => Ok(OwnedPermit { sender: Some(self) }),
                Err(_) => Err(SendError(self)),
            }
        }
    }

    /// Reserves a slot if one is free now.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] or [`TrySendError::Closed`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::mpsc::channel::<u8>(1);
    /// let permit = tx.try_reserve().unwrap();
    /// assert!(tx.try_reserve().is_err());
    /// drop(permit);
    /// assert!(tx.try_reserve().is_ok());
    /// ```
    pub fn try_reserve(&self) -> Result<Permit<'_, T>, TrySendError<()>> {
        self.chan.try_reserve()?;
        Ok(Permit { chan: &self.chan })
    }

    /// [`try_reserve`](Self::try_reserve) with a permit that owns the sender.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] or [`TrySendError::Closed`], with the sender.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::mpsc::channel::<u8>(1);
    /// let permit = tx.try_reserve_owned().unwrap();
    /// let _tx = permit.release();
    /// ```
    pub fn try_reserve_owned(self) -> Result<OwnedPermit<T>, TrySendError<Self>> {
        match self.chan.try_reserve() {
            Ok(()) => Ok(OwnedPermit { sender: Some(self) }),
            Err(TrySendError::Full(())) => Err(TrySendError::Full(self)),
            Err(TrySendError::Closed(())) => Err(TrySendError::Closed(self)),
        }
    }

    /// Completes once the receiver is gone (dropped or closed).
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
    ///     let (tx, rx) = waitrt::sync::mpsc::channel::<u8>(1);
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
            self.chan.closed(site).await;
        }
    }

    /// Whether the receiver is gone (dropped or closed).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = waitrt::sync::mpsc::channel::<u8>(1);
    /// rx.close();
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.is_rx_closed()
    }

    /// Free slots a sender arriving now can take: those owed to senders
    /// asleep on the full channel (one each) or to a waiting
    /// [`reserve_many`](Self::reserve_many) are not counted (see the
    /// module's fairness contract).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::mpsc::channel(4);
    /// tx.try_send(1).unwrap();
    /// assert_eq!((tx.capacity(), tx.max_capacity()), (3, 4));
    /// ```
    pub fn capacity(&self) -> usize {
        self.chan.capacity()
    }

    /// The slots the channel was created with.
    pub fn max_capacity(&self) -> usize {
        self.chan.max_capacity()
    }

    /// Whether both senders send to the same channel.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::mpsc::channel::<u8>(1);
    /// assert!(tx.same_channel(&tx.clone()));
    /// ```
    pub fn same_channel(&self, other: &Self) -> bool {
        Chan::same(&self.chan, &other.chan)
    }

    /// A [`WeakSender`]: it does not keep the channel open for the
    /// receiver, and can become a sender again while one still exists.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::mpsc::channel::<u8>(1);
    /// let weak = tx.downgrade();
    /// assert!(weak.upgrade().is_some());
    /// drop(tx);
    /// assert!(weak.upgrade().is_none());
    /// ```
    pub fn downgrade(&self) -> WeakSender<T> {
        WeakSender {
            chan: self.chan.add_weak(),
        }
    }

    /// Live senders of this channel (weak ones not counted).
    pub fn strong_count(&self) -> usize {
        self.chan.strong_count()
    }

    /// Live weak senders of this channel. As tokio's.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::mpsc::channel::<u8>(1);
    /// let weak = tx.downgrade();
    /// let other = weak.clone();
    /// assert_eq!((tx.weak_count(), weak.strong_count()), (2, 1));
    /// drop((weak, other));
    /// assert_eq!(tx.weak_count(), 0);
    /// ```
    pub fn weak_count(&self) -> usize {
        self.chan.weak_count()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.add_sender();
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").field("chan", &self.chan).finish()
    }
}

// ===== impl WeakSender =====

impl<T> WeakSender<T> {
    /// A sender again, unless every sender is gone.
    pub fn upgrade(&self) -> Option<Sender<T>> {
        self.chan.upgrade_sender().then(|| Sender {
            chan: self.chan.clone(),
        })
    }

    /// Live senders of the channel (weak ones not counted).
    pub fn strong_count(&self) -> usize {
        self.chan.strong_count()
    }

    /// Live weak senders of the channel, this one included.
    pub fn weak_count(&self) -> usize {
        self.chan.weak_count()
    }
}

impl<T> Clone for WeakSender<T> {
    fn clone(&self) -> Self {
        WeakSender {
            chan: self.chan.add_weak(),
        }
    }
}

impl<T> Drop for WeakSender<T> {
    fn drop(&mut self) {
        self.chan.drop_weak();
    }
}

impl<T> fmt::Debug for WeakSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakSender").finish_non_exhaustive()
    }
}

// ===== impl Permit =====

impl<T> Permit<'_, T> {
    /// Sends `value` into the reserved slot. After the receiver closed it
    /// is still received; after the receiver was dropped it is dropped.
    pub fn send(self, value: T) {
        self.chan.send_reserved(value);
        // The slot now holds the message: no release on drop.
        std::mem::forget(self);
    }
}

impl<T> Drop for Permit<'_, T> {
    fn drop(&mut self) {
        self.chan.release();
    }
}

impl<T> fmt::Debug for Permit<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}

// ===== impl PermitIterator =====

impl<'a, T> Iterator for PermitIterator<'a, T> {
    type Item = Permit<'a, T>;

    fn next(&mut self) -> Option<Permit<'a, T>> {
        if self.n == 0 {
            return None;
        }
        self.n -= 1;
        Some(Permit { chan: self.chan })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.n, Some(self.n))
    }
}

impl<T> ExactSizeIterator for PermitIterator<'_, T> {}

impl<T> std::iter::FusedIterator for PermitIterator<'_, T> {}

impl<T> Drop for PermitIterator<'_, T> {
    fn drop(&mut self) {
        self.chan.release_many(self.n);
    }
}

impl<T> fmt::Debug for PermitIterator<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PermitIterator")
            .field("remaining", &self.n)
            .finish_non_exhaustive()
    }
}

// ===== impl OwnedPermit =====

impl<T> OwnedPermit<T> {
    /// Sends `value` into the reserved slot and gives the sender back.
    pub fn send(mut self, value: T) -> Sender<T> {
        let sender = self.sender.take().expect("permit used twice");
        sender.chan.send_reserved(value);
        sender
    }

    /// Frees the slot unused and gives the sender back.
    pub fn release(mut self) -> Sender<T> {
        let sender = self.sender.take().expect("permit used twice");
        sender.chan.release();
        sender
    }

    /// Whether both permits reserve slots of the same channel. As tokio's.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::mpsc::channel::<u8>(2);
    /// let a = tx.clone().try_reserve_owned().unwrap();
    /// let b = tx.clone().try_reserve_owned().unwrap();
    /// assert!(a.same_channel(&b));
    /// ```
    pub fn same_channel(&self, other: &Self) -> bool {
        match (&self.sender, &other.sender) {
            (Some(a), Some(b)) => a.same_channel(b),
            _ => false,
        }
    }

    /// Whether this permit reserves a slot of `sender`'s channel. As
    /// tokio's.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::mpsc::channel::<u8>(1);
    /// let (other, _other_rx) = waitrt::sync::mpsc::channel::<u8>(1);
    /// let permit = tx.clone().try_reserve_owned().unwrap();
    /// assert!(permit.same_channel_as_sender(&tx));
    /// assert!(!permit.same_channel_as_sender(&other));
    /// ```
    pub fn same_channel_as_sender(&self, sender: &Sender<T>) -> bool {
        self.sender.as_ref().is_some_and(|s| s.same_channel(sender))
    }
}

impl<T> Drop for OwnedPermit<T> {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            sender.chan.release();
        }
    }
}

impl<T> fmt::Debug for OwnedPermit<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit").finish_non_exhaustive()
    }
}

// ===== impl Receiver =====

impl<T> Receiver<T> {
    /// Receives the next message, waiting while the channel is empty;
    /// `None` once every sender is gone and the buffer is drained (or,
    /// after [`close`](Self::close), once the buffer is drained and no
    /// permit is outstanding).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses no message.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = waitrt::sync::mpsc::channel(2);
    ///     tx.send(1).await.unwrap();
    ///     drop(tx);
    ///     assert_eq!(rx.recv().await, Some(1)); // buffered messages first
    ///     assert_eq!(rx.recv().await, None);
    /// });
    /// ```
    #[track_caller]
    pub fn recv(&mut self) -> Recv<'_, T> {
        self.rx.recv()
    }

    /// Receives up to `limit` messages into `buffer` (appended), waiting
    /// while the channel is empty; how many (0 only when `limit` is 0 or
    /// the channel has ended).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses no message.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = waitrt::sync::mpsc::channel(8);
    ///     for i in 0..5 {
    ///         tx.send(i).await.unwrap();
    ///     }
    ///     let mut got = Vec::new();
    ///     assert_eq!(rx.recv_many(&mut got, 3).await, 3);
    ///     assert_eq!(rx.recv_many(&mut got, 3).await, 2);
    ///     assert_eq!(got, [0, 1, 2, 3, 4]);
    /// });
    /// ```
    #[track_caller]
    pub fn recv_many<'a>(
        &'a mut self,
        buffer: &'a mut Vec<T>,
        limit: usize,
    ) -> impl Future<Output = usize> + 'a {
        self.rx.recv_many(buffer, limit, Location::caller())
    }

    /// [`recv`](Self::recv), ending early if the task is interrupted or
    /// killed (kernel: `wait_event_interruptible`).
    ///
    /// # Errors
    ///
    /// [`Interrupted`] if a signal came while the channel was empty (a
    /// message that arrives together with it wins).
    ///
    /// # Cancel safety
    ///
    /// As [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = waitrt::sync::mpsc::channel(1);
    ///     tx.send(1).await.unwrap();
    ///     assert_eq!(rx.recv_interruptible().await, Ok(Some(1)));
    /// });
    /// ```
    #[track_caller]
    pub fn recv_interruptible(
        &mut self,
    ) -> impl Future<Output = Result<Option<T>, Interrupted>> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move { self.rx.recv_interruptible(site).await }
    }

    /// [`recv`](Self::recv), ending early only if the task is killed
    /// (kernel: `wait_event_killable`).
    ///
    /// # Errors
    ///
    /// [`Killed`] if a fatal signal came while the channel was empty.
    ///
    /// # Cancel safety
    ///
    /// As [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = waitrt::sync::mpsc::channel::<u8>(1);
    ///     drop(tx);
    ///     assert_eq!(rx.recv_killable().await, Ok(None));
    /// });
    /// ```
    #[track_caller]
    pub fn recv_killable(&mut self) -> impl Future<Output = Result<Option<T>, Killed>> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move { self.rx.recv_killable(site).await }
    }

    /// [`recv`](Self::recv), giving up after `timeout` on the runtime's
    /// clock (kernel: `wait_event_timeout`).
    ///
    /// # Errors
    ///
    /// [`TimedOut`] if nothing arrived in time.
    ///
    /// # Panics
    ///
    /// Outside a runtime, or on one built without timers.
    ///
    /// # Cancel safety
    ///
    /// As [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = waitrt::Builder::new_current_thread().enable_time().build().unwrap();
    /// rt.block_on(async {
    ///     let (_tx, mut rx) = waitrt::sync::mpsc::channel::<u8>(1);
    ///     assert!(rx.recv_timeout(Duration::from_millis(1)).await.is_err());
    /// });
    /// ```
    #[track_caller]
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Option<T>, TimedOut>> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move { self.rx.recv_timeout(timeout, site).await }
    }

    /// Receives from a plain thread, blocking it while the channel is empty.
    ///
    /// # Panics
    ///
    /// On a thread that drives a runtime's tasks (it would stall them).
    ///
    /// # Examples
    ///
    /// See [`Sender::blocking_send`].
    #[track_caller]
    pub fn blocking_recv(&mut self) -> Option<T> {
        self.rx.blocking_recv()
    }

    /// [`recv_many`](Self::recv_many) from a plain thread: blocks it while
    /// the channel is empty, then moves up to `limit` messages into
    /// `buffer` (appended); how many (0 only when `limit` is 0 or the
    /// channel has ended). As tokio's.
    ///
    /// # Panics
    ///
    /// On a thread that drives a runtime's tasks (it would stall them).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = waitrt::sync::mpsc::channel(8);
    /// let thread = std::thread::spawn(move || {
    ///     let mut got = Vec::new();
    ///     while rx.blocking_recv_many(&mut got, 2) > 0 {}
    ///     got
    /// });
    /// for i in 0..5 {
    ///     tx.blocking_send(i).unwrap();
    /// }
    /// drop(tx); // the loop ends once the channel has
    /// assert_eq!(thread.join().unwrap(), [0, 1, 2, 3, 4]);
    /// ```
    #[track_caller]
    pub fn blocking_recv_many(&mut self, buffer: &mut Vec<T>, limit: usize) -> usize {
        self.rx.blocking_recv_many(buffer, limit)
    }

    /// Receives a message if one is buffered.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if none is, [`TryRecvError::Disconnected`]
    /// if none ever will be.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = waitrt::sync::mpsc::channel(1);
    /// tx.try_send(1).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.rx.try_recv()
    }

    /// Closes the channel for senders: sends and reserves fail from now
    /// on (waiting senders get their values back), while buffered messages
    /// and those of permits already reserved can still be received.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = waitrt::sync::mpsc::channel(2);
    /// tx.try_send(1).unwrap();
    /// rx.close();
    /// assert!(tx.try_send(2).is_err());
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn close(&mut self) {
        self.rx.close();
    }

    /// Whether the channel has ended or is closed: the receiver closed it,
    /// or every sender is gone.
    pub fn is_closed(&self) -> bool {
        self.rx.is_closed()
    }

    /// Buffered messages.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// Whether no message is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Free slots a sender arriving now can take (see
    /// [`Sender::capacity`]: those owed to sleeping senders or to a
    /// waiting `reserve_many` are not counted).
    pub fn capacity(&self) -> usize {
        self.rx.chan.capacity()
    }

    /// The slots the channel was created with.
    pub fn max_capacity(&self) -> usize {
        self.rx.chan.max_capacity()
    }

    /// Live senders of this channel (weak ones not counted). As tokio's.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = waitrt::sync::mpsc::channel::<u8>(1);
    /// let _weak = tx.downgrade();
    /// let _other = tx.clone();
    /// assert_eq!((rx.sender_strong_count(), rx.sender_weak_count()), (2, 1));
    /// ```
    pub fn sender_strong_count(&self) -> usize {
        self.rx.sender_strong_count()
    }

    /// Live weak senders of this channel. As tokio's.
    ///
    /// # Examples
    ///
    /// See [`sender_strong_count`](Self::sender_strong_count).
    pub fn sender_weak_count(&self) -> usize {
        self.rx.sender_weak_count()
    }

    /// Polls for the next message (for hand-written futures): the
    /// receiver keeps its registration between polls.
    #[track_caller]
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.rx.poll_recv(cx)
    }

    /// Polls for up to `limit` messages; see [`recv_many`](Self::recv_many).
    #[track_caller]
    pub fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        buffer: &mut Vec<T>,
        limit: usize,
    ) -> Poll<usize> {
        self.rx
            .poll_recv_many(cx, buffer, limit, Location::caller())
    }
}

impl<T> futures_core::Stream for Receiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").field("chan", &self.rx).finish()
    }
}
