//! The semaphore's state word and the assignment a wake walk runs for
//! each waiter (kernel: `__up()` handing a permit to the first waiter).
//!
//! # The word
//!
//! One `AtomicU64`: bit 0 `CLOSED`, bits 1..=24 the number of *queued*
//! acquirers (slow-path acquirers not yet fully served nor gone), bits
//! 25..=63 the free permits. Keeping both counts in one word makes the two
//! decisions that must be atomic single read-modify-writes:
//!
//! - the fast path takes permits only while nobody is queued (no barging:
//!   once anyone waits, new acquirers queue behind it);
//! - a release learns, in the same RMW that adds its permits, whether
//!   anybody is queued and so whether it must run a wake walk.
//!
//! # Assignment (strict FIFO)
//!
//! Queued acquirers are exclusive entries of the semaphore's wait queue,
//! each with a wake function ([`Shared::assign`]) that the wake walk calls
//! under the queue lock, oldest first. It moves free permits from the word
//! into the waiter's [`Slot`]: all it still needs (the waiter is woken,
//! unlinked, and no longer counted as queued), or only part of it (the
//! walk stops there: the head keeps what it got and blocks everyone behind
//! it, so a large `acquire_many` is never starved by small acquirers).
//! Because every assignment happens under the queue lock, in list order,
//! the order of service is the order of linking.
//!
//! # No lost wake-up
//!
//! A releaser adds its permits, *then* walks if the word says somebody is
//! queued. An acquirer counts itself queued, links its entry, *then*
//! re-reads the word and walks itself if permits are free. Either the
//! releaser's walk finds the entry linked, or the acquirer's re-read sees
//! the permits (the queue lock orders the two, as in every waitq wait).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::AcqRel, Ordering::Acquire};
use std::sync::Arc;

use waitq::{WakeDecision, WakeFunction, WakeInfo};

/// Closed flag.
pub(super) const CLOSED: u64 = 1;
const WAITER_SHIFT: u32 = 1;
const WAITER_BITS: u32 = 24;
const WAITER_ONE: u64 = 1 << WAITER_SHIFT;
const WAITER_MASK: u64 = ((1 << WAITER_BITS) - 1) << WAITER_SHIFT;
const PERMIT_SHIFT: u32 = WAITER_SHIFT + WAITER_BITS;
/// The most permits a semaphore holds (2^39 - 1).
pub(super) const MAX_PERMITS: u64 = u64::MAX >> PERMIT_SHIFT;

/// Free permits in `word`.
#[inline]
pub(super) fn permits(word: u64) -> u64 {
    word >> PERMIT_SHIFT
}

/// Queued acquirers in `word`.
#[inline]
pub(super) fn queued(word: u64) -> u64 {
    (word & WAITER_MASK) >> WAITER_SHIFT
}

#[inline]
pub(super) fn is_closed(word: u64) -> bool {
    word & CLOSED != 0
}

#[inline]
pub(super) fn word(permits: u64) -> u64 {
    assert!(
        permits <= MAX_PERMITS,
        "a semaphore holds at most {MAX_PERMITS} permits"
    );
    permits << PERMIT_SHIFT
}

/// What a wake function reaches: `'static`, so it lives in an `Arc` that
/// the semaphore makes on first use (`const_new` cannot allocate).
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) state: AtomicU64,
}

/// One queued acquirer's share, written by [`Shared::assign`] under the
/// queue lock and read by its owner (after its entry is unlinked, or to
/// learn that it was served).
///
/// It is also the entry's wake function ([`WakeFunction`]), so a queued
/// acquirer needs one allocation, and not even that once its thread has
/// run some: an acquire that ends hands its slot to the thread's spares
/// ([`Slot::recycle`]), and the next one to queue on that thread takes one
/// back ([`Slot::obtain`]) if nobody else still holds it.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) shared: Arc<Shared>,
    pub(super) need: u64,
    pub(super) assigned: AtomicU64,
    /// Set with the last assigned permit, just before the walk unlinks the
    /// entry and wakes its owner: the acquire succeeded.
    pub(super) granted: AtomicBool,
    /// The next of the thread's spare slots, while this one is a spare.
    next_spare: Option<Arc<Slot>>,
}

/// How a fast-path attempt ended.
pub(super) enum Fast {
    Acquired,
    Closed,
    /// Queued: the caller must link its entry (it now counts in the word).
    Queued,
    /// Not enough permits, or others queued (for `try_acquire`).
    NoPermits,
}

// ===== impl Shared =====

impl Shared {
    pub(super) fn new(permits: u64) -> Shared {
        Shared {
            state: AtomicU64::new(word(permits)),
        }
    }

    /// Takes `n` permits if nobody is queued and enough are free; else,
    /// with `queue`, counts the caller as queued.
    #[inline]
    pub(super) fn try_take(&self, n: u64, queue: bool) -> Fast {
        let mut cur = self.state.load(Acquire);
        loop {
            if is_closed(cur) {
                return Fast::Closed;
            }
            let (next, outcome) = if queued(cur) == 0 && permits(cur) >= n {
                (cur - (n << PERMIT_SHIFT), Fast::Acquired)
            } else if queue {
                assert!(
                    queued(cur) < WAITER_MASK >> WAITER_SHIFT,
                    "too many tasks wait on one semaphore"
                );
                (cur + WAITER_ONE, Fast::Queued)
            } else {
                return Fast::NoPermits;
            };
            match self.state.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return outcome,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Adds `n` free permits; returns the word before (to decide on a walk).
    ///
    /// # Panics
    ///
    /// If the semaphore would hold more than `MAX_PERMITS`.
    pub(super) fn add(&self, n: u64) -> u64 {
        let mut cur = self.state.load(Acquire);
        loop {
            let total = permits(cur).checked_add(n).filter(|t| *t <= MAX_PERMITS);
            assert!(
                total.is_some(),
                "adding {n} permits would overflow MAX_PERMITS ({MAX_PERMITS})"
            );
            match self
                .state
                .compare_exchange_weak(cur, cur + (n << PERMIT_SHIFT), AcqRel, Acquire)
            {
                Ok(_) => return cur,
                Err(actual) => cur = actual,
            }
        }
    }

    /// A queued acquirer leaves without being served: gives back the
    /// `assigned` permits it holds and stops counting as queued. Returns
    /// the word after.
    pub(super) fn leave(&self, assigned: u64) -> u64 {
        let mut cur = self.state.load(Acquire);
        loop {
            debug_assert!(queued(cur) > 0);
            let next = cur - WAITER_ONE + (assigned << PERMIT_SHIFT);
            match self.state.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return next,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The wake function of `slot`'s entry: called under the queue lock by
    /// a wake walk, oldest entry first (see "Assignment").
    pub(super) fn assign(&self, slot: &Slot) -> WakeDecision {
        let assigned = slot.assigned.load(Acquire);
        let want = slot.need - assigned;
        let mut cur = self.state.load(Acquire);
        loop {
            let take = permits(cur).min(want);
            if is_closed(cur) || take == 0 {
                return WakeDecision::Stop;
            }
            let served = take == want;
            let mut next = cur - (take << PERMIT_SHIFT);
            if served {
                next -= WAITER_ONE;
            }
            match self.state.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => {
                    slot.assigned
                        .store(assigned + take, std::sync::atomic::Ordering::Release);
                    if served {
                        slot.granted
                            .store(true, std::sync::atomic::Ordering::Release);
                        return WakeDecision::Wake;
                    }
                    return WakeDecision::Stop;
                }
                Err(actual) => cur = actual,
            }
        }
    }
}

/// Spare slots a thread keeps at most (see [`Slot`]): as many as acquires
/// that end on it before the next ones queue, in the usual patterns (a
/// batch of holders woken together re-queue after they are done).
const SPARES: usize = 32;

/// A thread's spare slots: a stack threaded through [`Slot::next_spare`].
struct Spares {
    head: Cell<Option<Arc<Slot>>>,
    len: Cell<usize>,
}

thread_local! {
    /// Slots of acquires that ended on this thread, for the next ones to
    /// queue here (see [`Slot`]). They may keep a dropped semaphore's
    /// `Shared` (one word) alive until then.
    static SPARES_OF_THREAD: Spares = const {
        Spares {
            head: Cell::new(None),
            len: Cell::new(0),
        }
    };
}

impl Slot {
    /// A fresh slot for an acquirer of `need` permits on `shared`: one of
    /// this thread's spares, else a new one.
    #[inline]
    pub(super) fn obtain(shared: &Arc<Shared>, need: u64) -> Arc<Slot> {
        let spare = SPARES_OF_THREAD.try_with(|spares| {
            let mut head = spares.head.take()?;
            // Only spares that nobody else held are kept (see `recycle`).
            let slot = Arc::get_mut(&mut head)?;
            spares.head.set(slot.next_spare.take());
            spares.len.set(spares.len.get() - 1);
            if !Arc::ptr_eq(&slot.shared, shared) {
                slot.shared = shared.clone();
            }
            slot.need = need;
            *slot.assigned.get_mut() = 0;
            *slot.granted.get_mut() = false;
            Some(head)
        });
        match spare {
            Ok(Some(slot)) => slot,
            _ => Arc::new(Slot {
                shared: shared.clone(),
                need,
                assigned: AtomicU64::new(0),
                granted: AtomicBool::new(false),
                next_spare: None,
            }),
        }
    }

    /// Keeps the slot of an acquire that has ended (its entry unlinked, its
    /// permits settled) as one of this thread's spares, for
    /// [`obtain`](Self::obtain): if nobody else holds it any more (a walk
    /// that woke its entry on another thread may still be dropping the
    /// entry's clone) and the thread has fewer than [`SPARES`]. Otherwise
    /// it is dropped.
    #[inline]
    pub(super) fn recycle(mut slot: Arc<Slot>) {
        // Fails only while the thread's locals are being destroyed.
        let _ = SPARES_OF_THREAD.try_with(move |spares| {
            let len = spares.len.get();
            if len == SPARES {
                return;
            }
            let Some(unique) = Arc::get_mut(&mut slot) else {
                return;
            };
            unique.next_spare = spares.head.take();
            spares.len.set(len + 1);
            spares.head.set(Some(slot));
        });
    }

    pub(super) fn is_granted(&self) -> bool {
        self.granted.load(Acquire)
    }
}

impl WakeFunction for Slot {
    fn decide(&self, _: &WakeInfo) -> WakeDecision {
        self.shared.assign(self)
    }
}
