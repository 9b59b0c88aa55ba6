//! The state both channel flavours share: a ring of messages under one
//! short `std::sync::Mutex` hold, slot accounting for the bounded flavour,
//! and three wait queues.
//!
//! # State and who changes it
//!
//! `State` (under `Chan::state`) holds the ring (`buf`), the slots
//! reserved by permits not yet used (`reserved`) and three one-way flags:
//! `rx_closed` (the receiver closed or dropped: no new sends or reserves),
//! `rx_dropped` (the receiver is gone: a permit's message is dropped) and
//! `tx_gone` (every sender is gone). A bounded channel has a free slot
//! while `buf.len() + reserved < cap`; the unbounded one has
//! `cap == usize::MAX`.
//!
//! # Sleeping and waking
//!
//! - The receiver sleeps on `rx_wait` (non-exclusive) until
//!   `recv_ready()`: a message is buffered, or nothing will ever come
//!   (`tx_gone`, or `rx_closed` with no permit outstanding).
//! - Senders of a full channel sleep on `tx_wait` as *exclusive* waiters
//!   (FIFO) whose condition takes a slot when one is free, so a wake hands
//!   exactly one slot to exactly one sender; a sender that was picked and
//!   then dropped hands the wake on (waitq rule 5).
//! - [`Sender::closed`](super::Sender::closed) sleeps on `closed_wait`.
//! - The receiver closing closes `tx_wait` and `closed_wait` (every sender
//!   waiting ends with its value back); the last sender leaving closes
//!   `rx_wait`.
//!
//! A message or a freed slot wakes only when somebody sleeps, read with
//! [`WaitQueue::waitqueue_active`] *after* the state change, outside the
//! state lock. No wake-up is lost: a waiter links its entry, then its
//! condition takes the state lock. If the waker's critical section comes
//! after the waiter's, the waiter's link happens-before the waker's read of
//! the waiter count (through the state mutex), so the waker sees it; if it
//! comes before, the waiter's condition sees the change. (The kernel's
//! `wq_has_sleeper` needs an `smp_mb()` for this; here the state lock
//! both sides take is the barrier.)
//!
//! # Conditions with side effects, and the toolkit's probe
//!
//! A sender's condition takes its slot, so that a wake and the slot it
//! announces go to the same waiter. The test toolkit's probe evaluates
//! conditions of sleeping waiters to find lost wake-ups; under
//! [`waitq::hook::is_probing`] the condition only looks.

use std::collections::VecDeque;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use waitq::{coop, Closed, Interrupted, Killed, PollWaiter, TimedOut, WaitQueue};

use super::error::{TryRecvError, TrySendError};
use crate::sync::signals;

/// The most slots a bounded channel allocates up front; a larger one grows
/// its ring on demand (and never shrinks it), so that after warm-up a
/// message allocates nothing either way.
const PREALLOC: usize = 1024;

pub(super) struct Chan<T> {
    state: Mutex<State<T>>,
    rx_wait: WaitQueue,
    tx_wait: WaitQueue,
    closed_wait: WaitQueue,
    /// Live senders (not counting weak ones).
    senders: AtomicUsize,
    cap: usize,
}

struct State<T> {
    buf: VecDeque<T>,
    reserved: usize,
    rx_closed: bool,
    rx_dropped: bool,
    tx_gone: bool,
}

/// How a wait for a slot ended without one.
pub(super) enum SlotFail<E> {
    /// The receiver is gone (or closed).
    Closed,
    /// The wait ended early (signal, deadline).
    Ended(E),
}

/// The waitq errors that can also mean "the queue was closed".
pub(super) trait WaitErr {
    fn is_closed(&self) -> bool;
}

macro_rules! wait_err {
    ($($name:ty),*) => {$(
        impl WaitErr for $name {
            fn is_closed(&self) -> bool {
                <$name>::is_closed(self)
            }
        }
    )*};
}

wait_err!(Closed, Interrupted, Killed, TimedOut);

/// `PollWaiter`'s handle on the receiver's queue.
pub(super) struct RxQueue<T>(Arc<Chan<T>>);

impl<T> Deref for RxQueue<T> {
    type Target = WaitQueue;
    fn deref(&self) -> &WaitQueue {
        &self.0.rx_wait
    }
}

// ===== impl Chan =====

impl<T> Chan<T> {
    /// A channel of `cap` slots (`usize::MAX`: unbounded) with one sender.
    pub(super) fn new(cap: usize) -> Arc<Self> {
        let prealloc = if cap == usize::MAX {
            0
        } else {
            cap.min(PREALLOC)
        };
        Arc::new(Chan {
            state: Mutex::new(State {
                buf: VecDeque::with_capacity(prealloc),
                reserved: 0,
                rx_closed: false,
                rx_dropped: false,
                tx_gone: false,
            }),
            rx_wait: WaitQueue::new(),
            tx_wait: WaitQueue::new(),
            closed_wait: WaitQueue::new(),
            senders: AtomicUsize::new(1),
            cap,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_bounded(&self) -> bool {
        self.cap != usize::MAX
    }

    pub(super) fn max_capacity(&self) -> usize {
        self.cap
    }

    /// Free slots now (bounded).
    pub(super) fn capacity(&self) -> usize {
        let state = self.lock();
        self.cap - state.buf.len() - state.reserved
    }

    pub(super) fn len(&self) -> usize {
        self.lock().buf.len()
    }

    pub(super) fn is_rx_closed(&self) -> bool {
        self.lock().rx_closed
    }

    pub(super) fn same(a: &Arc<Self>, b: &Arc<Self>) -> bool {
        Arc::ptr_eq(a, b)
    }

    // ----- senders: counting -----

    pub(super) fn add_sender(&self) {
        self.senders.fetch_add(1, Ordering::Relaxed);
    }

    /// A sender from a weak one, unless every sender is already gone.
    pub(super) fn upgrade_sender(&self) -> bool {
        self.senders
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |n| {
                (n != 0).then(|| n + 1)
            })
            .is_ok()
    }

    pub(super) fn strong_count(&self) -> usize {
        self.senders.load(Ordering::Acquire)
    }

    /// The last sender closes the receiver's side.
    pub(super) fn drop_sender(&self) {
        if self.senders.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        self.lock().tx_gone = true;
        self.rx_wait.close();
    }

    // ----- senders: slots and messages -----

    /// Takes a slot if one is free.
    pub(super) fn try_reserve(&self) -> Result<(), TrySendError<()>> {
        let mut state = self.lock();
        if state.rx_closed {
            return Err(TrySendError::Closed(()));
        }
        if state.buf.len() + state.reserved >= self.cap {
            return Err(TrySendError::Full(()));
        }
        state.reserved += 1;
        Ok(())
    }

    /// Sends without waiting: into a free slot (or any, unbounded).
    pub(super) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut state = self.lock();
        if state.rx_closed {
            return Err(TrySendError::Closed(value));
        }
        if state.buf.len() + state.reserved >= self.cap {
            return Err(TrySendError::Full(value));
        }
        state.buf.push_back(value);
        drop(state);
        self.wake_rx();
        Ok(())
    }

    /// Sends into a slot reserved earlier. After the receiver is gone the
    /// value is dropped (outside the lock: its `Drop` may use this channel).
    pub(super) fn send_reserved(&self, value: T) {
        let mut state = self.lock();
        state.reserved -= 1;
        if state.rx_dropped {
            drop(state);
            drop(value);
            self.wake_tx(1);
            return;
        }
        state.buf.push_back(value);
        drop(state);
        self.wake_rx();
    }

    /// Gives back a slot reserved earlier and never used.
    pub(super) fn release(&self) {
        let mut state = self.lock();
        state.reserved -= 1;
        // `recv` after `close` ends when the last permit goes unused.
        let last = state.rx_closed && state.reserved == 0 && state.buf.is_empty();
        drop(state);
        self.wake_tx(1);
        if last {
            self.wake_rx();
        }
    }

    fn slot_free_or_closed(&self) -> bool {
        let state = self.lock();
        state.rx_closed || state.buf.len() + state.reserved < self.cap
    }

    /// The condition of a sender waiting for a slot: takes one (`got =
    /// Some(true)`) or sees the receiver gone (`Some(false)`).
    fn slot_cond<'a>(&'a self, got: &'a mut Option<bool>) -> impl FnMut() -> bool + 'a {
        move || {
            if got.is_some() {
                return true;
            }
            if waitq::hook::is_probing() {
                return self.slot_free_or_closed();
            }
            match self.try_reserve() {
                Ok(()) => *got = Some(true),
                Err(TrySendError::Closed(())) => *got = Some(false),
                Err(TrySendError::Full(())) => return false,
            }
            true
        }
    }

    /// Sleeps for a slot; `Ok` means one is reserved for the caller.
    pub(super) async fn reserve(&self) -> Result<(), SlotFail<Closed>> {
        let mut got = None;
        let res = self
            .tx_wait
            .wait_event_exclusive(self.slot_cond(&mut got))
            .await;
        outcome(got, res)
    }

    pub(super) async fn reserve_interruptible(&self) -> Result<(), SlotFail<Interrupted>> {
        let mut got = None;
        let res = self
            .tx_wait
            .wait_event_interruptible_exclusive(signals::current(), self.slot_cond(&mut got))
            .await;
        outcome(got, res)
    }

    pub(super) async fn reserve_killable(&self) -> Result<(), SlotFail<Killed>> {
        let mut got = None;
        let res = self
            .tx_wait
            .wait_event_killable_exclusive(signals::current(), self.slot_cond(&mut got))
            .await;
        outcome(got, res)
    }

    pub(super) async fn reserve_timeout(
        &self,
        timeout: Duration,
    ) -> Result<(), SlotFail<TimedOut>> {
        let mut got = None;
        let clock = crate::time::clock();
        let res = self
            .tx_wait
            .wait_event_exclusive_timeout(clock, timeout, self.slot_cond(&mut got))
            .await
            .map(drop);
        outcome(got, res)
    }

    pub(super) fn blocking_reserve(&self) -> Result<(), SlotFail<Closed>> {
        let mut got = None;
        let res = self
            .tx_wait
            .blocking_wait_event_exclusive(self.slot_cond(&mut got));
        outcome(got, res)
    }

    pub(super) async fn closed(&self) {
        // Ends with `Closed` once the receiver closes `closed_wait`.
        let _ = self.closed_wait.wait_event(|| self.is_rx_closed()).await;
    }

    fn wake_rx(&self) {
        if self.rx_wait.waitqueue_active() {
            self.rx_wait.wake_up();
        }
    }

    /// `n` slots came free: wake that many sleeping senders.
    fn wake_tx(&self, n: usize) {
        if self.is_bounded() && self.tx_wait.waitqueue_active() {
            self.tx_wait.wake_up_nr(n);
        }
    }

    // ----- the receiver -----

    /// A message is buffered, or none will ever come.
    fn recv_ready(&self) -> bool {
        let state = self.lock();
        !state.buf.is_empty() || state.is_disconnected()
    }

    pub(super) fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut state = self.lock();
        match state.buf.pop_front() {
            Some(value) => {
                drop(state);
                self.wake_tx(1);
                Ok(value)
            }
            None if state.is_disconnected() => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Moves up to `limit` messages into `out`; how many.
    fn try_recv_many(&self, out: &mut Vec<T>, limit: usize) -> Result<usize, TryRecvError> {
        let mut state = self.lock();
        let n = state.buf.len().min(limit);
        if n == 0 {
            return Err(if state.is_disconnected() {
                TryRecvError::Disconnected
            } else {
                TryRecvError::Empty
            });
        }
        out.extend(state.buf.drain(..n));
        drop(state);
        self.wake_tx(n);
        Ok(n)
    }

    /// One poll of `recv` with `waiter` (the receiver's or a `Recv`
    /// future's). Spends one unit of budget when it completes.
    pub(super) fn poll_recv<Q: Deref<Target = WaitQueue>>(
        &self,
        waiter: &mut PollWaiter<Q>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<T>> {
        self.poll_with(waiter, cx, |chan| chan.try_recv())
    }

    pub(super) fn poll_recv_many<Q: Deref<Target = WaitQueue>>(
        &self,
        waiter: &mut PollWaiter<Q>,
        cx: &mut Context<'_>,
        out: &mut Vec<T>,
        limit: usize,
    ) -> Poll<usize> {
        if limit == 0 {
            return Poll::Ready(0);
        }
        self.poll_with(waiter, cx, |chan| chan.try_recv_many(out, limit))
            .map(|n| n.unwrap_or(0))
    }

    fn poll_with<Q: Deref<Target = WaitQueue>, R>(
        &self,
        waiter: &mut PollWaiter<Q>,
        cx: &mut Context<'_>,
        mut take: impl FnMut(&Self) -> Result<R, TryRecvError>,
    ) -> Poll<Option<R>> {
        ready!(coop::poll_proceed(cx));
        loop {
            match take(self) {
                Ok(got) => {
                    if waiter.is_waiting() {
                        // An entry left linked by an earlier `Pending`
                        // would make every send wake us: unlink it (the
                        // wait spends the unit this poll already spent).
                        coop::refund();
                        let _ = waiter.poll_wait_event(cx, || true);
                    }
                    return Poll::Ready(Some(got));
                }
                Err(TryRecvError::Disconnected) => return Poll::Ready(None),
                Err(TryRecvError::Empty) => {}
            }
            // The wait spends its own unit.
            coop::refund();
            // `Ready` (the condition, or the last sender's close): look again.
            ready!(waiter.poll_wait_event(cx, || self.recv_ready())).ok();
        }
    }

    /// The receiver's kernel-family waits: wait with `wait`, then take.
    pub(super) async fn recv_interruptible(&self) -> Result<Option<T>, Interrupted> {
        loop {
            let res = self
                .rx_wait
                .wait_event_interruptible(signals::current(), || self.recv_ready())
                .await;
            if let Some(got) = self.after_wait(res)? {
                return Ok(got);
            }
        }
    }

    pub(super) async fn recv_killable(&self) -> Result<Option<T>, Killed> {
        loop {
            let res = self
                .rx_wait
                .wait_event_killable(signals::current(), || self.recv_ready())
                .await;
            if let Some(got) = self.after_wait(res)? {
                return Ok(got);
            }
        }
    }

    pub(super) async fn recv_timeout(&self, timeout: Duration) -> Result<Option<T>, TimedOut> {
        let clock = crate::time::clock();
        let deadline = waitq::Clock::now(&clock) + timeout;
        loop {
            let left = deadline.saturating_duration_since(waitq::Clock::now(&clock));
            let res = self
                .rx_wait
                .wait_event_timeout(&clock, left, || self.recv_ready())
                .await
                .map(drop);
            if let Some(got) = self.after_wait(res)? {
                return Ok(got);
            }
        }
    }

    pub(super) fn blocking_recv(&self) -> Option<T> {
        loop {
            let res = self.rx_wait.blocking_wait_event(|| self.recv_ready());
            if let Ok(Some(got)) = self.after_wait(res) {
                return got;
            }
        }
    }

    /// After a receiver's wait: `Some(message or None at the end)`, `None`
    /// to wait again; the wait's own error unless it was the close.
    fn after_wait<E: WaitErr>(&self, res: Result<(), E>) -> Result<Option<Option<T>>, E> {
        match res {
            Err(err) if !err.is_closed() => {
                // A true condition wins over the signal or the deadline.
                match self.try_recv() {
                    Ok(value) => Ok(Some(Some(value))),
                    Err(TryRecvError::Disconnected) => Ok(Some(None)),
                    Err(TryRecvError::Empty) => Err(err),
                }
            }
            _ => match self.try_recv() {
                Ok(value) => Ok(Some(Some(value))),
                Err(TryRecvError::Disconnected) => Ok(Some(None)),
                Err(TryRecvError::Empty) => Ok(None),
            },
        }
    }

    /// `Receiver::close`: no new sends or reserves; what is buffered (and
    /// what outstanding permits send) can still be received.
    pub(super) fn close_rx(&self) {
        let mut state = self.lock();
        if state.rx_closed {
            return;
        }
        state.rx_closed = true;
        drop(state);
        self.tx_wait.close();
        self.closed_wait.close();
    }

    /// The receiver is gone: close, and drop what is buffered (outside the
    /// lock: a message's `Drop` may use this channel).
    pub(super) fn drop_rx(&self) {
        let mut state = self.lock();
        state.rx_closed = true;
        state.rx_dropped = true;
        let buf = std::mem::take(&mut state.buf);
        drop(state);
        self.tx_wait.close();
        self.closed_wait.close();
        drop(buf);
    }

    pub(super) fn rx_queue(self: &Arc<Self>) -> RxQueue<T> {
        RxQueue(self.clone())
    }

    pub(super) fn rx_wait(&self) -> &WaitQueue {
        &self.rx_wait
    }
}

impl<T> State<T> {
    /// Nothing buffered can ever arrive: no sender, or closed with no
    /// permit outstanding. (Call with `buf` empty.)
    fn is_disconnected(&self) -> bool {
        self.tx_gone || (self.rx_closed && self.reserved == 0)
    }
}

/// What a sender's wait for a slot came to.
fn outcome<E: WaitErr>(got: Option<bool>, res: Result<(), E>) -> Result<(), SlotFail<E>> {
    match (got, res) {
        (Some(true), _) => Ok(()),
        (Some(false), _) => Err(SlotFail::Closed),
        (None, Err(err)) if !err.is_closed() => Err(SlotFail::Ended(err)),
        // `Ok` without a slot cannot happen (the condition is true only
        // with `got` set); treat it as the close it would have to be.
        (None, _) => Err(SlotFail::Closed),
    }
}

impl<T> std::fmt::Debug for Chan<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Chan")
            .field("len", &state.buf.len())
            .field("reserved", &state.reserved)
            .field("cap", &self.cap)
            .field("rx_closed", &state.rx_closed)
            .field("tx_gone", &state.tx_gone)
            .finish()
    }
}
