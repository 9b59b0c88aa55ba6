//! The state both channel flavours share: a ring of messages under one
//! short lock hold (the receiver's one-waiter [`RcuWait`], whose lock is
//! the runtime's spin lock, [`SpinKind`]), slot accounting for the
//! bounded flavour, and three wait queues.
//!
//! The spin lock's release is a plain store: a send into a free slot is
//! one read-modify-write (the lock's), and a receive from the batch one
//! fence (below), the least a bounded channel with exact capacity needs
//! per message. With `std`'s mutex a send was two (its release looks for
//! sleepers with a swap): mpsc_spsc/ct ran 1.39x faster with the spin
//! lock (`cargo bench --bench sync`). Nothing under the lock waits or
//! calls a waker; a contender backs off, then yields (see
//! `sync/spin.rs`).
//!
//! # State and who changes it
//!
//! `State` (under `Chan::state`) holds the ring (`buf`), the slots
//! reserved by permits not yet used (`reserved`), the messages the
//! receiver has moved into its batch (`rx_taken`, see below) and three
//! one-way flags: `rx_closed` (the receiver closed or dropped: no new
//! sends or reserves), `rx_dropped` (the receiver is gone: a permit's
//! message is dropped) and `tx_gone` (every sender is gone). A bounded
//! channel has a free slot while `used() < cap`, `used()` being
//! `buf.len() + reserved` plus the batch's messages not yet handed out;
//! the unbounded one has `cap == usize::MAX` and counts nothing.
//!
//! A send into a free slot takes it and fills it in one lock hold
//! (`send_now`, then `try_send`); only a sender that finds the channel
//! full reserves a slot through the wait below and then fills it. While
//! senders sleep, a free slot is owed to each (`tx_sleepers`, see "Freed
//! slots go to sleeping senders"): a newcomer sees only those beyond.
//!
//! # The receiver's batch
//!
//! A receive that finds its batch empty takes the ring's first message
//! and the rest of the ring as its batch in the same lock hold: the ring
//! and the receiver's own (empty) `VecDeque` trade places, so the hold
//! is as short for a thousand messages as for one (`rx_taken +=` the
//! batch's length). The receives after it pop the batch without the
//! lock. Before its first take the batch gets the ring's starting room
//! (outside the lock), and the ring coming back in a trade grows to hold
//! the backlog just taken, so under a steady load neither ring grows
//! under the lock later; the cost is memory: both rings keep the room of
//! the recent backlog (a bounded(1024) channel of `u64` holds 16 KiB
//! instead of 8). Once the backlog falls well below the room (a burst
//! is over: `peak_take`, which decays), the receiver gives the surplus
//! back from its empty batch before the next take, outside the lock, so
//! an unbounded channel that once held a million messages does not keep
//! two rings of a million slots. A
//! batched message keeps its slot until it is handed out, so capacity,
//! `len` (the receiver adds its batch) and the senders' view are those of
//! an unbatched channel. Handing one out (`hand_out`) frees its slot
//! without the lock: the receiver, the only writer, bumps `delivered`,
//! and `used()` counts `rx_taken - delivered` of the batch. Closing and
//! ending are unchanged: the receiver waits only with its batch empty
//! (the kernel-family receives take from the batch before they wait),
//! and a dropped receiver drops its batch with itself.
//!
//! # Sleeping and waking
//!
//! - The receiver's own polls (`recv`, `poll_recv`, the `Stream`) sleep
//!   on `state`, the [`RcuWait`] whose lock is the state lock: it can
//!   have one waiter, and its condition takes a message in the same lock
//!   hold that stores its waker; a send takes that waker in the hold that
//!   pushes the message (the kernel's `struct completion`). Its
//!   kernel-family and blocking receives sleep on `rx_wait`
//!   (non-exclusive) until `recv_ready()`: a message is buffered, or
//!   nothing will ever come (`tx_gone`, or `rx_closed` with no permit
//!   outstanding).
//! - Senders of a full channel sleep on `tx_wait` as *exclusive* waiters
//!   (FIFO) whose condition takes a slot when one is free, so a wake hands
//!   exactly one slot to exactly one sender; a sender that was picked and
//!   then dropped hands the wake on (waitq rule 5). The slots they wait
//!   for are owed to them, not to newcomers (next section).
//! - [`Sender::closed`](super::Sender::closed) sleeps on `closed_wait`.
//! - The receiver closing closes `tx_wait` and `closed_wait` (every sender
//!   waiting ends with its value back); the last sender leaving sets
//!   `tx_gone`, wakes the receiver's poll and closes `rx_wait`.
//!
//! Apart from the receiver's poll, a message or a freed slot wakes only
//! when somebody sleeps, read with [`WaitQueue::waitqueue_active`] *after*
//! the state change, outside the state lock. No wake-up is lost: a waiter links its entry, then its
//! condition takes the state lock. If the waker's critical section comes
//! after the waiter's, the waiter's link happens-before the waker's read of
//! the waiter count (through the state mutex), so the waker sees it; if it
//! comes before, the waiter's condition sees the change. (The kernel's
//! `wq_has_sleeper` needs an `smp_mb()` for this; here the state lock
//! both sides take is the barrier.)
//!
//! A slot freed from the batch is the one change made outside the state
//! lock, so it takes the kernel's barriers instead: `hand_out` stores
//! `delivered`, then a `SeqCst` fence, then reads the sender queue's
//! waiter count; a sleeping sender's condition links first, then a
//! `SeqCst` fence, then reads `delivered`. Of two `SeqCst` fences one
//! comes first, so either the receiver sees the sender linked and wakes
//! it, or the sender's condition sees the slot free.
//!
//! Each freed slot wakes a sleeping sender, even while an earlier woken
//! one has not run yet, and is owed to the sleepers (next section): the
//! first woken sender no longer fills all the room with its next sends
//! while the others go back to sleep (as it did before: four senders on
//! 2 workers, about 27,000 sender wakes per million messages).
//! Waking one sender at a time and letting it pass the wake on once it
//! has its slot (the kernel's pipe writers, `wake_next_writer`) cut the
//! task polls there from about 39,000 to 22,000 per million messages
//! and ran that row 1.1x–2.2x faster, but a woken future need
//! not be polled again (its task may await something else first, unlike
//! a woken thread), and the other senders then slept next to free slots
//! for good: `a_woken_sender_that_is_not_polled_holds_up_no_other` in
//! `tests/sync_mpsc.rs`.
//!
//! # Freed slots go to sleeping senders
//!
//! tokio's semaphore hands a released permit to the oldest queued waiter,
//! and its `try_acquire` cannot take permits owed to waiters, so a task
//! that refills a full channel with `try_send` right after each receive
//! cannot keep a sleeping `send` waiting. Here the same rule is kept with
//! a count under the state lock instead of a hand-off: `tx_sleepers`
//! counts the senders asleep on `tx_wait`, from the re-check after their
//! link (a sender's condition that finds no slot with its entry linked;
//! `SlotWait`) until their wait ends, woken-but-not-yet-run ones
//! included. Each is owed one free slot: a newcomer (`try_send`,
//! `try_reserve[_many]`, `capacity`, and the condition of any sender
//! before it is counted) sees `free - tx_sleepers` (`free_for_new`),
//! while a counted sender's condition takes any free slot. A freed slot
//! wakes the oldest sleeper as before, and that sender takes it when it
//! runs: the refill sees the channel full meanwhile.
//!
//! Nothing is owed to a particular waiter, so nothing can leak: a sleeper
//! that ends without a slot (dropped, timed out, interrupted; `SlotWait`'s
//! drop, `sender_left`) uncounts itself, which gives its share back to
//! newcomers at once (its own wake, if it had been picked, went on by
//! waitq's rule 5; no other is due: every free slot has its wake out, and
//! the count changes no sleeper's condition). One that takes a slot or
//! sees the close uncounts itself in the same lock hold. A sender is
//! counted from a re-check that finds no slot with its entry linked (the
//! first poll of an interruptible or killable wait with a signal already
//! pending evaluates the condition a second time without linking: such a
//! sender is counted and uncounted in that one poll). That keeps the
//! lossless argument below: a freed slot either
//! happens after the link, and its wake finds the entry, or before the
//! re-check, which then sees the slot free and still beyond the others'
//! shares. The fast path pays one more plain add under the lock it
//! already holds (`taken() + tx_sleepers >= cap`), no atomic.
//!
//! A counted sender that takes a slot another sleeper was woken for (a
//! spurious poll of its future) leaves that one to find the channel full
//! and go back to the tail of the queue, as in the kernel; the counts
//! stay exact either way.
//!
//! # Reserving many slots
//!
//! `reserve_many(n)` first waits for a turn as any sender does (an
//! exclusive waiter on `tx_wait`, `take_turn`): all `n` slots if that many
//! are free for a sender, else, with at least one free, a place in the
//! *line* (`State::line`, oldest first, each place with the slots it holds,
//! counted in `reserved`, and those it still waits for, counted in
//! `owed`). From then on it waits on `many_wait`, non-exclusive, and only
//! the line's front acts: its condition takes every free slot it still
//! waits for (`take_in_line`). Every other sender sees the slots owed to
//! the line as taken (`taken()`): a later `send` or `reserve_many` does not
//! overtake it, the kernel's FIFO semaphore (`__down`/`__up`) with
//! counts instead of one. Each freed slot wakes `many_wait` as well as a
//! sleeping sender (`wake_tx`), so a front that is not polled holds up no
//! sender for slots beyond what the line is owed; a sender woken for a
//! slot the line then took waits again. A place that is served, dropped or
//! closed (`Place`'s drop gives back what it held) calls `pass_on`: a
//! barrier, then the next in line and as many senders as slots are free
//! beyond the line's owed ones are woken.
//!
//! # Conditions with side effects, and the toolkit's probe
//!
//! A sender's condition takes its slot, so that a wake and the slot it
//! announces go to the same waiter. The test toolkit's probe evaluates
//! conditions of sleeping waiters to find lost wake-ups; under
//! [`waitq::hook::is_probing`] the condition only looks.

use std::collections::VecDeque;
use std::panic::Location;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use waitq::{coop, Closed, Interrupted, Killed, RcuWait, RcuWaitGuard, TimedOut, WaitQueue};

use super::error::{TryRecvError, TrySendError};
use crate::sync::signals;
use crate::sync::spin::SpinKind;

/// Names a sleeping sender whose waker panicked in a side wake.
const SENDER: fn() -> String = || "the waker of an mpsc sender".into();

/// The most slots a bounded channel allocates up front; a larger one grows
/// its ring on demand (and never shrinks it), so that after warm-up a
/// message allocates nothing either way.
const PREALLOC: usize = 1024;

pub(super) struct Chan<T> {
    /// The state, under the lock of the wait the receiver's own polls
    /// (`recv`, `poll_recv`, the `Stream`) sleep on: the one waiter.
    state: RcuWait<State<T>, SpinKind>,
    /// The receiver's kernel-family and blocking waits.
    rx_wait: WaitQueue,
    tx_wait: WaitQueue,
    /// The many-reservers in line (non-exclusive: each one's condition
    /// acts only at the front).
    many_wait: WaitQueue,
    /// `State::line` is not empty (written under the lock as it changes):
    /// a receive checks `many_wait` only then. One relaxed load after the
    /// receive's fence (`hand_out`); a `reserve_many` sets it before its
    /// wait's fence and re-check, so one of the two sees the other's write.
    line_active: AtomicBool,
    closed_wait: WaitQueue,
    /// Live senders (not counting weak ones).
    senders: AtomicUsize,
    /// Messages the receiver has handed out of its batch, a wrapping
    /// count that only the receiver writes (see "The receiver's batch").
    delivered: AtomicUsize,
    cap: usize,
    /// The ring's starting room (the batch gets as much: see
    /// `reserve_batch`).
    prealloc: usize,
    /// Live weak senders (`weak_count`; last, off the hot fields' lines).
    weak: AtomicUsize,
    /// The recent largest batch the receiver took, decaying by 1/16 per
    /// take (only the receiver writes it): how much room the rings keep
    /// (see "The receiver's batch").
    peak_take: AtomicUsize,
}

/// A ring's room is given back once it exceeds this many slots and
/// [`SHRINK_FACTOR`] times the recent backlog (and the starting room).
const SHRINK_MIN: usize = 1024;
const SHRINK_FACTOR: usize = 4;

struct State<T> {
    buf: VecDeque<T>,
    reserved: usize,
    /// Messages the receiver has moved from `buf` into its batch, a
    /// wrapping count: `rx_taken - delivered` of them still hold a slot.
    rx_taken: usize,
    rx_closed: bool,
    rx_dropped: bool,
    tx_gone: bool,
    /// The many-reservers in line, oldest first (see "Reserving many
    /// slots"); `owed` is what they still wait for, all together.
    line: VecDeque<InLine>,
    owed: usize,
    next_ticket: u64,
    /// Senders asleep on `tx_wait` (linked, or picked by a wake and not
    /// yet back), counted by their condition from the re-check after the
    /// link until they end: one free slot is owed to each (see "Freed
    /// slots go to sleeping senders").
    tx_sleepers: usize,
}

/// A many-reserver in line: its ticket, the slots it holds so far (counted
/// in `reserved`) and those it still waits for (counted in `owed`).
struct InLine {
    ticket: u64,
    got: usize,
    left: usize,
}

/// How a sender's wait for its turn ended.
#[derive(Clone, Copy)]
enum Turn {
    /// It took all its slots at once.
    Done,
    /// It joined the line with this ticket.
    InLine(u64),
    /// The receiver is gone.
    Closed,
}

impl Turn {
    /// No turn yet, in [`encode`](Self::encode)'s form.
    const NONE: u64 = 0;

    /// In one word (`SlotWait` is part of every waiting send future):
    /// 0 none, 1 done, 2 closed, a ticket plus 3.
    fn encode(turn: Option<Turn>) -> u64 {
        match turn {
            None => Self::NONE,
            Some(Turn::Done) => 1,
            Some(Turn::Closed) => 2,
            Some(Turn::InLine(ticket)) => ticket + 3,
        }
    }

    fn decode(word: u64) -> Option<Turn> {
        match word {
            Self::NONE => None,
            1 => Some(Turn::Done),
            2 => Some(Turn::Closed),
            ticket => Some(Turn::InLine(ticket - 3)),
        }
    }
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
            state: RcuWait::with_lock(
                Some("mpsc_recv"),
                State {
                    buf: VecDeque::with_capacity(prealloc),
                    reserved: 0,
                    rx_taken: 0,
                    rx_closed: false,
                    rx_dropped: false,
                    tx_gone: false,
                    line: VecDeque::new(),
                    owed: 0,
                    next_ticket: 0,
                    tx_sleepers: 0,
                },
            ),
            rx_wait: WaitQueue::named("mpsc_recv"),
            tx_wait: WaitQueue::named("mpsc_send"),
            many_wait: WaitQueue::named("mpsc_reserve_many"),
            line_active: AtomicBool::new(false),
            closed_wait: WaitQueue::named("mpsc_closed"),
            senders: AtomicUsize::new(1),
            delivered: AtomicUsize::new(0),
            cap,
            prealloc,
            peak_take: AtomicUsize::new(0),
            weak: AtomicUsize::new(0),
        })
    }

    fn lock(&self) -> RcuWaitGuard<'_, State<T>, SpinKind> {
        self.state.lock()
    }

    /// The ring's room (tests of the memory given back).
    #[cfg(test)]
    pub(super) fn ring_room(&self) -> usize {
        self.lock().buf.capacity()
    }

    fn is_bounded(&self) -> bool {
        self.cap != usize::MAX
    }

    pub(super) fn max_capacity(&self) -> usize {
        self.cap
    }

    /// Free slots a sender arriving now can take: those owed to a
    /// `reserve_many` line or to sleeping senders are not (`try_send` says
    /// `Full` while they are owed).
    pub(super) fn capacity(&self) -> usize {
        self.free_for_new(&self.lock())
    }

    /// Slots taken: buffered messages, messages in the receiver's batch
    /// not yet handed out, and reserved slots. Exact under the state lock
    /// except for the receiver's hand-outs, which only lower it.
    fn used(&self, state: &State<T>) -> usize {
        let batched = state
            .rx_taken
            .wrapping_sub(self.delivered.load(Ordering::Relaxed));
        state.buf.len() + state.reserved + batched
    }

    /// Slots a sender other than the line's front cannot take: those
    /// [`used`](Self::used), and those owed to the line of many-reservers
    /// (see "Reserving many slots").
    fn taken(&self, state: &State<T>) -> usize {
        // Plain adds, as in `used`: each term is at most `cap`.
        self.used(state) + state.owed
    }

    /// Free slots a sender arriving now can take: those not
    /// [`taken`](Self::taken) and not owed to sleeping senders (see
    /// "Freed slots go to sleeping senders").
    fn free_for_new(&self, state: &State<T>) -> usize {
        (self.cap - self.taken(state).min(self.cap)).saturating_sub(state.tx_sleepers)
    }

    /// Messages in the ring (the receiver adds its batch).
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

    /// Live weak senders.
    pub(super) fn weak_count(&self) -> usize {
        self.weak.load(Ordering::Acquire)
    }

    /// A weak sender was made (`downgrade`, or a clone of one).
    pub(super) fn add_weak(self: &Arc<Self>) -> Arc<Self> {
        self.weak.fetch_add(1, Ordering::Relaxed);
        self.clone()
    }

    /// A weak sender was dropped.
    pub(super) fn drop_weak(&self) {
        self.weak.fetch_sub(1, Ordering::Release);
    }

    /// The last sender closes the receiver's side.
    pub(super) fn drop_sender(&self) {
        if self.senders.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let mut state = self.lock();
        state.tx_gone = true;
        state.wake_up();
        self.rx_wait.close();
    }

    // ----- senders: slots and messages -----

    /// Takes a slot if one is free.
    pub(super) fn try_reserve(&self) -> Result<(), TrySendError<()>> {
        let mut state = self.lock();
        if state.rx_closed {
            return Err(TrySendError::Closed(()));
        }
        if self.free_for_new(&state) == 0 {
            return Err(TrySendError::Full(()));
        }
        state.reserved += 1;
        Ok(())
    }

    /// Sends without waiting: into a free slot (or any, unbounded).
    #[inline]
    pub(super) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut state = self.lock();
        if state.rx_closed {
            return Err(TrySendError::Closed(value));
        }
        // Slots owed to sleeping senders are not free for a newcomer.
        // (Plain adds: `tx_sleepers` counts tasks and threads.)
        if self.is_bounded() && self.taken(&state) + state.tx_sleepers >= self.cap {
            return Err(TrySendError::Full(value));
        }
        state.buf.push_back(value);
        state.wake_up();
        self.wake_rx_queue();
        Ok(())
    }

    /// A send's first step, before any wait: spends the unit of budget a
    /// completed send spends, then [`try_send`](Self::try_send)s, so a
    /// free slot is taken and filled in one lock hold. `Full` refunds the
    /// unit (the wait for a slot that follows spends its own).
    pub(super) async fn send_now(&self, value: T) -> Result<(), TrySendError<T>> {
        std::future::poll_fn(|cx| {
            if waitq::hook::is_probing() {
                return Poll::Pending;
            }
            coop::poll_proceed(cx)
        })
        .await;
        if self.is_bounded() {
            // The test toolkit may switch tasks here, slot free or not (as
            // at a lock's acquisition: issue 23's class 2).
            waitq::hook::acquire_point(&self.tx_wait);
        }
        let res = self.try_send(value);
        if let Err(TrySendError::Full(_)) = res {
            coop::refund();
        }
        res
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
        state.wake_up();
        self.wake_rx_queue();
    }

    /// Gives back a slot reserved earlier and never used.
    pub(super) fn release(&self) {
        self.release_many(1);
    }

    /// Gives back `n` slots reserved earlier and never used.
    pub(super) fn release_many(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut state = self.lock();
        state.reserved -= n;
        // `recv` after `close` ends when the last permit goes unused.
        let last = state.rx_closed && state.reserved == 0 && state.buf.is_empty();
        if last {
            state.wake_up();
        } else {
            drop(state);
        }
        self.wake_tx(n);
        if last {
            self.wake_rx_queue();
        }
    }

    /// Sleeps for a slot; `Ok` means one is reserved for the caller.
    pub(super) async fn reserve(
        &self,
        site: &'static Location<'static>,
    ) -> Result<(), SlotFail<Closed>> {
        waitq::hook::acquire_point(&self.tx_wait); // see `send_now`
        let mut wait = SlotWait::new(self, 1);
        let res = self
            .tx_wait
            .wait_event_exclusive(|| wait.cond())
            .at(site)
            .await;
        wait.outcome(res)
    }

    pub(super) async fn reserve_interruptible(
        &self,
        site: &'static Location<'static>,
    ) -> Result<(), SlotFail<Interrupted>> {
        let mut wait = SlotWait::new(self, 1);
        let res = self
            .tx_wait
            .wait_event_interruptible_exclusive(signals::current(), || wait.cond())
            .at(site)
            .await;
        wait.outcome(res)
    }

    pub(super) async fn reserve_killable(
        &self,
        site: &'static Location<'static>,
    ) -> Result<(), SlotFail<Killed>> {
        let mut wait = SlotWait::new(self, 1);
        let res = self
            .tx_wait
            .wait_event_killable_exclusive(signals::current(), || wait.cond())
            .at(site)
            .await;
        wait.outcome(res)
    }

    pub(super) async fn reserve_timeout(
        &self,
        timeout: Duration,
        site: &'static Location<'static>,
    ) -> Result<(), SlotFail<TimedOut>> {
        let mut wait = SlotWait::new(self, 1);
        let clock = crate::time::clock();
        let res = self
            .tx_wait
            .wait_event_exclusive_timeout(clock, timeout, || wait.cond())
            .at(site)
            .await
            .map(drop);
        wait.outcome(res)
    }

    pub(super) fn blocking_reserve(&self) -> Result<(), SlotFail<Closed>> {
        let mut wait = SlotWait::new(self, 1);
        let res = self.tx_wait.blocking_wait_event_exclusive(|| wait.cond());
        wait.outcome(res)
    }

    /// A sleeping sender (or many-reserver waiting for its turn) gave up
    /// without a slot: the slot owed to it is no longer owed. A wake it had
    /// been picked for went on to the next sleeper (waitq's rule 5); no
    /// other wake is due: every free slot already has its wake out (one
    /// per slot freed), and the count only keeps slots from *newcomers*, so
    /// lowering it changes no sleeper's condition. (Waking the sleepers
    /// for the free slots here let a later sleeper take the slot an
    /// earlier one had been woken for, which then slept again at the back:
    /// tokio serves the earlier one; an independent review.)
    #[cold]
    #[inline(never)]
    fn sender_left(&self) {
        self.lock().tx_sleepers -= 1;
    }

    // ----- senders: many slots at once -----

    /// Takes `n` slots if that many are free for a sender now (the line's
    /// owed slots are not: see "Reserving many slots").
    pub(super) fn try_reserve_many(&self, n: usize) -> Result<(), TrySendError<()>> {
        let mut state = self.lock();
        if state.rx_closed {
            return Err(TrySendError::Closed(()));
        }
        if n > self.free_for_new(&state) {
            return Err(TrySendError::Full(()));
        }
        state.reserved += n;
        Ok(())
    }

    /// Sleeps for `n` slots (`0 < n <= cap`); `Ok` means they are reserved
    /// for the caller. First a turn as any sender has one (an exclusive
    /// waiter on `tx_wait`), then, unless that many were free, a place in
    /// the line (see "Reserving many slots"). Dropped, it gives back what
    /// it took.
    pub(super) async fn reserve_many(
        &self,
        n: usize,
        site: &'static Location<'static>,
    ) -> Result<(), SlotFail<Closed>> {
        waitq::hook::acquire_point(&self.tx_wait); // see `send_now`
        let mut wait = SlotWait::new(self, n);
        let res = self
            .tx_wait
            .wait_event_exclusive(|| wait.cond())
            .at(site)
            .await;
        let ticket = match (wait.turn(), res) {
            (Some(Turn::Done), _) => return Ok(()),
            (Some(Turn::InLine(ticket)), _) => ticket,
            (Some(Turn::Closed), _) | (None, _) => return Err(SlotFail::Closed),
        };
        // In line: a dropped future (or the close) gives back what it took.
        let mut place = Place {
            chan: self,
            ticket: Some(ticket),
        };
        let mut served = false;
        let _ = self
            .many_wait
            .wait_event(|| {
                if served {
                    return true;
                }
                fence(Ordering::SeqCst); // as in `SlotWait::cond`
                if waitq::hook::is_probing() {
                    let state = self.lock();
                    let front = state.line.front().map(|p| p.ticket);
                    return state.rx_closed
                        || (front == Some(ticket) && self.used(&state) < self.cap);
                }
                match self.take_in_line(ticket) {
                    Some(done) => {
                        served = done;
                        true
                    }
                    None => false,
                }
            })
            .at(site)
            .await;
        if !served {
            return Err(SlotFail::Closed); // `place` gives back what it took
        }
        place.ticket = None;
        // The slots free beyond ours go on: to the next in line, and to
        // the other senders (after a barrier: see `Place::drop`).
        self.pass_on();
        Ok(())
    }

    /// A sender's turn (a many-reserver's too): all `n` slots if free,
    /// else (with at least one free for it) a place in the line. `None`:
    /// no slot free, wait for one. A sender new to the wait leaves one free
    /// slot to each sleeping sender; a sleeping one (counted in
    /// `tx_sleepers`, `mark.slept`) takes any (see "Freed slots go to
    /// sleeping senders"). A sender that finds none after it linked its
    /// entry is counted until it ends.
    fn take_turn(&self, n: usize, mark: &mut SleepMark) -> Option<Turn> {
        let mut state = self.lock();
        let turn = self.take_turn_locked(&mut state, n, mark.slept);
        match turn {
            Some(_) if mark.slept => {
                state.tx_sleepers -= 1;
                mark.slept = false;
            }
            None if mark.linked && !mark.slept => {
                state.tx_sleepers += 1;
                mark.slept = true;
            }
            _ => {}
        }
        turn
    }

    fn take_turn_locked(&self, state: &mut State<T>, n: usize, slept: bool) -> Option<Turn> {
        if state.rx_closed {
            return Some(Turn::Closed);
        }
        let free = if slept {
            self.cap - self.taken(state).min(self.cap)
        } else {
            self.free_for_new(state)
        };
        if free == 0 {
            return None;
        }
        if free >= n {
            state.reserved += n;
            return Some(Turn::Done);
        }
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        self.line_active.store(true, Ordering::Relaxed);
        state.line.push_back(InLine {
            ticket,
            got: 0,
            left: n,
        });
        state.owed += n;
        Some(Turn::InLine(ticket))
    }

    /// In line with `ticket`: at the front, takes the free slots it still
    /// waits for. `Some(true)`: it has them all and left the line;
    /// `Some(false)`: the receiver is gone; `None`: wait on.
    fn take_in_line(&self, ticket: u64) -> Option<bool> {
        let mut state = self.lock();
        if state.rx_closed {
            return Some(false);
        }
        let free = self.cap - self.used(&state).min(self.cap);
        let front = state.line.front_mut()?;
        if front.ticket != ticket || free == 0 {
            return None;
        }
        let k = free.min(front.left);
        front.got += k;
        front.left -= k;
        let done = front.left == 0;
        if done {
            state.line.pop_front();
            self.line_active
                .store(!state.line.is_empty(), Ordering::Relaxed);
        }
        state.reserved += k;
        state.owed -= k;
        done.then_some(true)
    }

    /// After the line changed (its front served or gone): wakes the next
    /// in line, and as many senders as slots are free beyond what the line
    /// is owed. The barrier pairs with `hand_out`'s: a slot it freed is
    /// either seen here or its wake found the line.
    fn pass_on(&self) {
        fence(Ordering::SeqCst);
        let (next, free) = {
            let state = self.lock();
            let free = self.cap - self.taken(&state).min(self.cap);
            (!state.line.is_empty(), free)
        };
        // Side wakes, some from a destructor (`Place`'s): see `wake_aside`.
        if next && self.many_wait.waitqueue_active_after_barrier() {
            crate::scheduler::wake_aside(SENDER, || {
                self.many_wait.wake_up();
            });
        }
        if free > 0 && self.tx_wait.waitqueue_active_after_barrier() {
            crate::scheduler::wake_aside(SENDER, || {
                self.tx_wait.wake_up_nr(free);
            });
        }
    }

    pub(super) async fn closed(&self, site: &'static Location<'static>) {
        // Ends with `Closed` once the receiver closes `closed_wait`.
        let _ = self
            .closed_wait
            .wait_event(|| self.is_rx_closed())
            .at(site)
            .await;
    }

    /// After a lock hold that woke the receiver's poll (`wake_up` on the
    /// guard): wakes a kernel-family or blocking receive, if one sleeps.
    fn wake_rx_queue(&self) {
        if self.rx_wait.waitqueue_active_after_barrier() {
            self.rx_wait.wake_up();
        }
    }

    /// `n` slots came free: wake that many sleeping senders.
    /// Inlined into every receive (`hand_out`): outlined, with the line's
    /// check added, it cost `mpsc_spsc/ct` 8.7 % more instructions per
    /// message (callgrind, `SYNC_BENCH_SCALE=0.05`).
    #[inline(always)]
    fn wake_tx(&self, n: usize) {
        if !self.is_bounded() {
            return;
        }
        if self.tx_wait.waitqueue_active_after_barrier() {
            // A receive's side wake: a sender's panicking waker must not
            // cost the receiver the message it took (`wake_aside`).
            crate::scheduler::wake_aside(SENDER, || {
                self.tx_wait.wake_up_nr(n);
            });
        }
        // The line's front takes freed slots first (its condition looks).
        if self.line_active.load(Ordering::Relaxed) {
            self.wake_line();
        }
    }

    #[cold]
    #[inline(never)]
    fn wake_line(&self) {
        if self.many_wait.waitqueue_active_after_barrier() {
            crate::scheduler::wake_aside(SENDER, || {
                self.many_wait.wake_up();
            });
        }
    }

    // ----- the receiver -----

    /// A message is buffered, or none will ever come. (The receiver waits
    /// only with its batch empty.)
    fn recv_ready(&self) -> bool {
        let state = self.lock();
        !state.buf.is_empty() || state.is_disconnected()
    }

    /// Takes the next message: from the receiver's batch `local` without
    /// the lock, or else the ring's first one, moving up to a batch more
    /// into `local` in the same lock hold.
    pub(super) fn try_recv(&self, local: &mut VecDeque<T>) -> Result<T, TryRecvError> {
        if let Some(value) = local.pop_front() {
            self.hand_out(1);
            return Ok(value);
        }
        self.try_recv_ring(local)
    }

    /// [`try_recv`](Self::try_recv) with the batch empty: one lock hold.
    fn try_recv_ring(&self, local: &mut VecDeque<T>) -> Result<T, TryRecvError> {
        self.reserve_batch(local);
        let res = self.take_locked(&mut self.lock(), local);
        if res.is_ok() {
            self.wake_tx(1);
        }
        res
    }

    /// Gives the batch the ring's starting room before its first take
    /// (outside the lock), so the ring it hands over in trade needs no
    /// growing under the lock.
    /// Gives back the surplus room of a ring much larger than the recent
    /// backlog (after a burst), outside the lock too.
    fn reserve_batch(&self, local: &mut VecDeque<T>) {
        let room = local.capacity();
        if room < self.prealloc {
            local.reserve_exact(self.prealloc);
        } else if room > SHRINK_MIN {
            let keep = self
                .peak_take
                .load(Ordering::Relaxed)
                .max(self.prealloc)
                .max(1);
            if room > keep.saturating_mul(SHRINK_FACTOR) {
                local.shrink_to(keep.saturating_mul(2).max(self.prealloc));
            }
        }
    }

    /// Under the lock, with the batch `local` empty: the ring's first
    /// message, the rest of the ring becoming the batch (see "The
    /// receiver's batch"). The two rings trade places, so the take costs
    /// the same for one message or a thousand. The caller wakes a sender
    /// for the freed slot after the lock.
    fn take_locked(
        &self,
        state: &mut State<T>,
        local: &mut VecDeque<T>,
    ) -> Result<T, TryRecvError> {
        debug_assert!(local.is_empty(), "the batch is taken only when empty");
        if state.buf.is_empty() {
            return Err(if state.is_disconnected() {
                TryRecvError::Disconnected
            } else {
                TryRecvError::Empty
            });
        }
        std::mem::swap(&mut state.buf, local);
        let taken = local.len();
        if state.buf.capacity() < taken {
            // The ring grew since the last trade: the one coming back grows
            // to hold that backlog, once, so that under a steady load
            // neither grows again (after warm-up nothing allocates here).
            state.buf.reserve(taken);
        }
        // The receiver is the only writer: a load and a store.
        let peak = self.peak_take.load(Ordering::Relaxed);
        self.peak_take
            .store(taken.max(peak - peak / 16), Ordering::Relaxed);
        let value = local.pop_front().expect("the ring was not empty");
        state.rx_taken = state.rx_taken.wrapping_add(local.len());
        Ok(value)
    }

    fn try_recv_many(
        &self,
        local: &mut VecDeque<T>,
        out: &mut Vec<T>,
        limit: usize,
    ) -> Result<usize, TryRecvError> {
        let batched = local.len().min(limit);
        if batched > 0 {
            out.extend(local.drain(..batched));
            self.hand_out(batched);
        }
        if batched == limit {
            return Ok(batched);
        }
        // The lock is released before the wake below (no waker under it).
        let took = self.take_many_locked(&mut self.lock(), out, limit - batched);
        match took {
            Ok(n) => {
                self.wake_tx(n);
                Ok(batched + n)
            }
            Err(_) if batched > 0 => Ok(batched),
            Err(err) => Err(err),
        }
    }

    /// Under the lock: up to `limit` messages into `out`. The caller wakes
    /// that many senders after the lock.
    fn take_many_locked(
        &self,
        state: &mut State<T>,
        out: &mut Vec<T>,
        limit: usize,
    ) -> Result<usize, TryRecvError> {
        let n = state.buf.len().min(limit);
        if n == 0 {
            return Err(if state.is_disconnected() {
                TryRecvError::Disconnected
            } else {
                TryRecvError::Empty
            });
        }
        out.extend(state.buf.drain(..n));
        Ok(n)
    }

    fn hand_out(&self, n: usize) {
        if !self.is_bounded() {
            return;
        }
        let delivered = self.delivered.load(Ordering::Relaxed);
        self.delivered
            .store(delivered.wrapping_add(n), Ordering::Relaxed);
        fence(Ordering::SeqCst);
        self.wake_tx(n);
    }

    /// One message from a non-empty batch, after spending the unit of
    /// budget a completed `recv` spends (the kernel-family waits take the
    /// batch first: they wait only with it empty). `None`: the batch is
    /// empty.
    async fn recv_batched(&self, local: &mut VecDeque<T>) -> Option<T> {
        if local.is_empty() {
            return None;
        }
        std::future::poll_fn(|cx| {
            if waitq::hook::is_probing() {
                return Poll::Pending;
            }
            coop::poll_proceed(cx)
        })
        .await;
        let value = local.pop_front()?;
        self.hand_out(1);
        Some(value)
    }

    /// One poll of `recv` with `waiter` (the receiver's or a `Recv`
    /// future's). Spends one unit of budget when it completes.
    /// The receiver's own poll: the batch, then the ring, then a sleep on
    /// `state` (its one waiter) whose condition takes under the same lock
    /// that stores the waker. `slept` records a stored waker, for
    /// [`finish_wait`](Self::finish_wait).
    #[inline]
    pub(super) fn poll_recv(
        &self,
        local: &mut VecDeque<T>,
        slept: &mut bool,
        cx: &mut Context<'_>,
        site: &'static Location<'static>,
    ) -> Poll<Option<T>> {
        ready!(coop::poll_proceed(cx));
        if let Some(value) = local.pop_front() {
            self.hand_out(1);
            return self.done(slept, Some(value));
        }
        self.poll_recv_ring(local, slept, cx, site)
    }

    /// [`poll_recv`](Self::poll_recv) with the batch empty: the ring, then
    /// the sleep.
    #[inline(never)]
    fn poll_recv_ring(
        &self,
        local: &mut VecDeque<T>,
        slept: &mut bool,
        cx: &mut Context<'_>,
        site: &'static Location<'static>,
    ) -> Poll<Option<T>> {
        match self.try_recv_ring(local) {
            Ok(value) => return self.done(slept, Some(value)),
            Err(TryRecvError::Disconnected) => return self.done(slept, None),
            Err(TryRecvError::Empty) => {}
        }
        // The wait spends its own unit.
        coop::refund();
        let poll = self.state.poll_wait_event_locked_at(cx, site, |state| {
            match self.take_locked(state, local) {
                Ok(value) => Some(Some(value)),
                Err(TryRecvError::Disconnected) => Some(None),
                Err(TryRecvError::Empty) => None,
            }
        });
        *slept = poll.is_pending();
        // The wait is never closed (the last sender sets `tx_gone`).
        let got = ready!(poll).unwrap_or(None);
        if got.is_some() {
            self.wake_tx(1);
        }
        Poll::Ready(got)
    }

    pub(super) fn poll_recv_many(
        &self,
        local: &mut VecDeque<T>,
        slept: &mut bool,
        cx: &mut Context<'_>,
        out: &mut Vec<T>,
        limit: usize,
        site: &'static Location<'static>,
    ) -> Poll<usize> {
        if limit == 0 {
            return Poll::Ready(0);
        }
        ready!(coop::poll_proceed(cx));
        match self.try_recv_many(local, out, limit) {
            Ok(n) => return self.done(slept, n),
            Err(TryRecvError::Disconnected) => return self.done(slept, 0),
            Err(TryRecvError::Empty) => {}
        }
        coop::refund();
        let poll = self.state.poll_wait_event_locked_at(cx, site, |state| {
            match self.take_many_locked(state, out, limit) {
                Ok(n) => Some(n),
                Err(TryRecvError::Disconnected) => Some(0),
                Err(TryRecvError::Empty) => None,
            }
        });
        *slept = poll.is_pending();
        let n = ready!(poll).unwrap_or(0);
        self.wake_tx(n);
        Poll::Ready(n)
    }

    /// A receive that ended without sleeping again: takes back a waker an
    /// earlier poll stored (every send would wake us otherwise).
    fn done<R>(&self, slept: &mut bool, got: R) -> Poll<R> {
        self.finish_wait(slept);
        Poll::Ready(got)
    }

    /// Takes the receiver's stored waker back out, if `slept` says a poll
    /// left one (a dropped `recv`, a dropped receiver).
    pub(super) fn finish_wait(&self, slept: &mut bool) {
        if std::mem::take(slept) {
            self.state.finish_wait();
        }
    }

    pub(super) async fn recv_interruptible(
        &self,
        local: &mut VecDeque<T>,
        site: &'static Location<'static>,
    ) -> Result<Option<T>, Interrupted> {
        if let Some(value) = self.recv_batched(local).await {
            return Ok(Some(value));
        }
        loop {
            let res = self
                .rx_wait
                .wait_event_interruptible(signals::current(), || self.recv_ready())
                .at(site)
                .await;
            if let Some(got) = self.after_wait(local, res)? {
                return Ok(got);
            }
        }
    }

    pub(super) async fn recv_killable(
        &self,
        local: &mut VecDeque<T>,
        site: &'static Location<'static>,
    ) -> Result<Option<T>, Killed> {
        if let Some(value) = self.recv_batched(local).await {
            return Ok(Some(value));
        }
        loop {
            let res = self
                .rx_wait
                .wait_event_killable(signals::current(), || self.recv_ready())
                .at(site)
                .await;
            if let Some(got) = self.after_wait(local, res)? {
                return Ok(got);
            }
        }
    }

    pub(super) async fn recv_timeout(
        &self,
        local: &mut VecDeque<T>,
        timeout: Duration,
        site: &'static Location<'static>,
    ) -> Result<Option<T>, TimedOut> {
        if let Some(value) = self.recv_batched(local).await {
            return Ok(Some(value));
        }
        let clock = crate::time::clock();
        // Saturating: `Duration::MAX` ("wait forever") must not overflow
        // the `Instant`, as in every sibling `_timeout` form.
        let deadline = crate::time::saturating_add(waitq::Clock::now(&clock), timeout);
        loop {
            let left = deadline.saturating_duration_since(waitq::Clock::now(&clock));
            let res = self
                .rx_wait
                .wait_event_timeout(&clock, left, || self.recv_ready())
                .at(site)
                .await
                .map(drop);
            if let Some(got) = self.after_wait(local, res)? {
                return Ok(got);
            }
        }
    }

    pub(super) fn blocking_recv(&self, local: &mut VecDeque<T>) -> Option<T> {
        if let Some(value) = local.pop_front() {
            self.hand_out(1);
            return Some(value);
        }
        loop {
            let res = self.rx_wait.blocking_wait_event(|| self.recv_ready());
            if let Ok(Some(got)) = self.after_wait(local, res) {
                return got;
            }
        }
    }

    /// [`blocking_recv`](Self::blocking_recv) of up to `limit` messages
    /// into `out`: the batch, then the ring, sleeping on `rx_wait` while
    /// both are empty. 0 only for `limit == 0` or at the end.
    pub(super) fn blocking_recv_many(
        &self,
        local: &mut VecDeque<T>,
        out: &mut Vec<T>,
        limit: usize,
    ) -> usize {
        if limit == 0 {
            return 0;
        }
        loop {
            match self.try_recv_many(local, out, limit) {
                Ok(n) => return n,
                Err(TryRecvError::Disconnected) => return 0,
                Err(TryRecvError::Empty) => {}
            }
            // Ends on a message or the end (the last sender closes the
            // queue): either way the take above decides.
            let _ = self.rx_wait.blocking_wait_event(|| self.recv_ready());
        }
    }

    /// After a receiver's wait: `Some(message or None at the end)`, `None`
    /// to wait again; the wait's own error unless it was the close.
    fn after_wait<E: WaitErr>(
        &self,
        local: &mut VecDeque<T>,
        res: Result<(), E>,
    ) -> Result<Option<Option<T>>, E> {
        match res {
            Err(err) if !err.is_closed() => {
                // A true condition wins over the signal or the deadline.
                match self.try_recv(local) {
                    Ok(value) => Ok(Some(Some(value))),
                    Err(TryRecvError::Disconnected) => Ok(Some(None)),
                    Err(TryRecvError::Empty) => Err(err),
                }
            }
            _ => match self.try_recv(local) {
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
        self.many_wait.close();
        self.closed_wait.close();
    }

    /// The receiver is gone: close, and drop what is buffered (outside the
    /// lock: a message's `Drop` may use this channel).
    pub(super) fn drop_rx(&self) {
        let mut state = self.lock();
        state.rx_closed = true;
        state.rx_dropped = true;
        // The receiver's batch goes with it: its messages hold no slot
        // any more (they did for good: `capacity()` stayed short of the
        // whole channel after the receiver was dropped mid-batch, where
        // tokio's comes back to it). The receiver, the only writer of
        // `delivered`, is the caller.
        state.rx_taken = self.delivered.load(Ordering::Relaxed);
        let buf = std::mem::take(&mut state.buf);
        drop(state);
        self.tx_wait.close();
        self.many_wait.close();
        self.closed_wait.close();
        drop(buf);
    }
}

/// A many-reserver's place in the line while it waits there: dropped
/// (the future cancelled, or the receiver gone) it leaves the line and
/// gives back the slots it took.
struct Place<'a, T> {
    chan: &'a Chan<T>,
    /// `None` once served.
    ticket: Option<u64>,
}

impl<T> Drop for Place<'_, T> {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket else { return };
        let chan = self.chan;
        let mut state = chan.lock();
        let Some(at) = state.line.iter().position(|p| p.ticket == ticket) else {
            return;
        };
        let place = state.line.remove(at).expect("found above");
        chan.line_active
            .store(!state.line.is_empty(), Ordering::Relaxed);
        state.owed -= place.left;
        state.reserved -= place.got;
        // `recv` after `close` ends when the last reserved slot goes unused.
        let last = state.rx_closed && state.reserved == 0 && state.buf.is_empty();
        if last {
            state.wake_up();
            chan.wake_rx_queue();
        } else {
            drop(state);
        }
        chan.pass_on();
    }
}

impl<T> State<T> {
    /// Nothing buffered can ever arrive: no sender, or closed with no
    /// permit outstanding. (Call with `buf` empty.)
    fn is_disconnected(&self) -> bool {
        self.tx_gone || (self.rx_closed && self.reserved == 0)
    }
}

/// A sender's wait on `tx_wait` for its turn: `n` slots (one for a send
/// or a reserve), the condition's record, and, dropped without its turn
/// after it slept, the end of the slot owed to it (`sender_left`).
///
/// Kept small: a `send` or `reserve` future holds it while it waits
/// (`tests/sync_sizes.rs`: no bigger than tokio's).
struct SlotWait<'a, T> {
    chan: &'a Chan<T>,
    n: usize,
    /// The turn, once taken ([`Turn::encode`]).
    turn: u64,
    /// Evaluations of the condition (not counting probes), up to 2. The
    /// first poll evaluates it once before linking the entry and once
    /// right after (the lossless re-check); a later evaluation comes from
    /// a later poll: after a wake, or a spurious poll of a sleeper.
    evals: u8,
    mark: SleepMark,
}

/// Where a sender's wait stands, for `tx_sleepers`.
#[derive(Default)]
struct SleepMark {
    /// The entry may be linked: the condition runs as the re-check after
    /// the link or later.
    linked: bool,
    /// Counted in `tx_sleepers`.
    slept: bool,
}

impl<'a, T> SlotWait<'a, T> {
    fn new(chan: &'a Chan<T>, n: usize) -> Self {
        SlotWait {
            chan,
            n,
            turn: Turn::NONE,
            evals: 0,
            mark: SleepMark::default(),
        }
    }

    /// The condition: takes its turn ([`Chan::take_turn`]) or sees the
    /// receiver gone. Until it has slept, a sender leaves the slots owed
    /// to the sleeping senders; once counted among them, it takes any.
    fn cond(&mut self) -> bool {
        if self.turn != Turn::NONE {
            return true;
        }
        // Pairs with the fence in `hand_out`: our entry is linked
        // before we read `delivered` (see "The receiver's batch").
        fence(Ordering::SeqCst);
        if waitq::hook::is_probing() {
            let state = self.chan.lock();
            return state.rx_closed || self.chan.taken(&state) < self.chan.cap;
        }
        self.evals = self.evals.saturating_add(1).min(2);
        self.mark.linked = self.evals >= 2;
        self.turn = Turn::encode(self.chan.take_turn(self.n, &mut self.mark));
        self.turn != Turn::NONE
    }

    /// The turn taken, if any.
    fn turn(&self) -> Option<Turn> {
        Turn::decode(self.turn)
    }

    /// What a one-slot wait came to.
    fn outcome<E: WaitErr>(&self, res: Result<(), E>) -> Result<(), SlotFail<E>> {
        match (self.turn(), res) {
            (Some(Turn::Done), _) => Ok(()),
            (Some(Turn::InLine(_)), _) => unreachable!("one slot never waits in line"),
            (Some(Turn::Closed), _) => Err(SlotFail::Closed),
            (None, Err(err)) if !err.is_closed() => Err(SlotFail::Ended(err)),
            // `Ok` without a slot cannot happen (the condition is true only
            // with `turn` set); treat it as the close it would have to be.
            (None, _) => Err(SlotFail::Closed),
        }
    }
}

impl<T> Drop for SlotWait<'_, T> {
    fn drop(&mut self) {
        // Counted as asleep and ends without its turn (dropped, timed
        // out, interrupted): the slot owed to it is free for others.
        if self.mark.slept {
            self.chan.sender_left();
        }
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
