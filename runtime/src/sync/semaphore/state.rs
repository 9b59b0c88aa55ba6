//! The semaphore's state word and its hand-off to queued acquirers
//! (kernel: `__up()` giving the permit to the first waiter).
//!
//! # The word
//!
//! One `AtomicU64`: bit 0 `CLOSED`, bit 1 `WAITERS` (somebody is queued),
//! bits 2.. the free permits. It is the whole fast path: an acquire takes
//! permits with one compare-exchange while `WAITERS` is clear, and a
//! release adds its permits with one while it is clear. Neither takes the
//! queue's lock.
//!
//! # Hand-off (strict FIFO)
//!
//! `WAITERS` is set and cleared only under the lock of the semaphore's
//! [`HandoffQueue`], and it is set exactly while its list is not empty.
//! While it is set, no permit is free: the first waiter was given every
//! free permit when it queued ([`take_or_queue`]), and a release that sees
//! the bit gives its permits to the waiters, oldest first, under the lock
//! ([`Semaphore::hand_off`]): all the oldest still needs (it is unlinked
//! and woken: served), or only part of it (the rest is assigned to it, and
//! it blocks everyone behind it, so a large `acquire_many` is never
//! starved by small ones). Permits become free again only when the list
//! empties.
//!
//! # No lost wake-up
//!
//! An acquirer's test and its link are one lock hold in which it sets
//! `WAITERS` with a compare-exchange; a release's add is a compare-exchange
//! that fails if the bit was set meanwhile, and then takes the lock. So a
//! release either adds permits the acquirer's test sees, or finds it
//! linked.

use std::sync::atomic::{AtomicU64, Ordering::AcqRel, Ordering::Acquire};

use waitq::HandoffGuard;

use super::Semaphore;

/// Closed flag.
pub(super) const CLOSED: u64 = 1;
/// Somebody is queued (see the module docs).
const WAITERS: u64 = 2;
const PERMIT_SHIFT: u32 = 2;
/// The most permits a semaphore holds (2^39 - 1).
pub(super) const MAX_PERMITS: u64 = (1 << 39) - 1;

/// Free permits in `word`.
#[inline]
pub(super) fn permits(word: u64) -> u64 {
    word >> PERMIT_SHIFT
}

#[inline]
pub(super) fn is_closed(word: u64) -> bool {
    word & CLOSED != 0
}

#[inline]
fn has_waiters(word: u64) -> bool {
    word & WAITERS != 0
}

#[inline]
pub(super) const fn word(permits: u64) -> u64 {
    assert!(
        permits <= MAX_PERMITS,
        "a semaphore holds at most 2^39 - 1 permits"
    );
    permits << PERMIT_SHIFT
}

/// A queued acquirer's record (kernel: `struct semaphore_waiter`), kept
/// in its node of the queue and written under its lock.
#[derive(Debug)]
pub(super) struct Waiter {
    pub(super) need: u64,
    /// Permits given to it so far (only the oldest waiter has any).
    pub(super) assigned: u64,
}

/// How a fast-path attempt ended.
pub(super) enum Fast {
    Acquired,
    Closed,
    /// Not enough permits free, or others queued.
    NoPermits,
}

/// How a first poll's test under the lock ended, when it did not queue.
pub(super) enum Now {
    Acquired,
    Closed,
}

/// Takes `n` permits if nobody is queued and enough are free. Zero
/// permits are taken at once, queue or not (as tokio's): nothing is taken
/// from anyone, and a linked waiter then always lacks at least one permit
/// (what [`Semaphore::hand_off`] relies on).
#[inline]
pub(super) fn try_take(state: &AtomicU64, n: u64) -> Fast {
    let mut cur = state.load(Acquire);
    loop {
        if is_closed(cur) {
            return Fast::Closed;
        }
        if n == 0 {
            return Fast::Acquired;
        }
        if has_waiters(cur) || permits(cur) < n {
            return Fast::NoPermits;
        }
        match state.compare_exchange_weak(cur, cur - (n << PERMIT_SHIFT), AcqRel, Acquire) {
            Ok(_) => return Fast::Acquired,
            Err(actual) => cur = actual,
        }
    }
}

/// Under the queue lock, an acquirer's test before it links: takes `n`
/// permits if it can, else sets `WAITERS` and returns the record to link
/// (the first waiter takes every free permit as its start).
pub(super) fn take_or_queue(state: &AtomicU64, n: u64) -> Result<Now, Waiter> {
    let mut cur = state.load(Acquire);
    loop {
        if is_closed(cur) {
            return Ok(Now::Closed);
        }
        if n == 0 {
            return Ok(Now::Acquired); // as `try_take`
        }
        let (next, outcome) = if !has_waiters(cur) && permits(cur) >= n {
            (cur - (n << PERMIT_SHIFT), Ok(Now::Acquired))
        } else {
            // With WAITERS set no permit is free: only the first takes any.
            let take = permits(cur);
            let waiter = Waiter {
                need: n,
                assigned: take,
            };
            ((cur - (take << PERMIT_SHIFT)) | WAITERS, Err(waiter))
        };
        match state.compare_exchange_weak(cur, next, AcqRel, Acquire) {
            Ok(_) => return outcome,
            Err(actual) => cur = actual,
        }
    }
}

/// Adds `n` free permits unless somebody is queued; `false`: queued, so
/// the caller must hand them off under the lock.
///
/// # Panics
///
/// If the semaphore would hold more than `MAX_PERMITS`.
#[inline]
pub(super) fn add_unless_waiters(state: &AtomicU64, n: u64) -> bool {
    let mut cur = state.load(Acquire);
    loop {
        if has_waiters(cur) {
            return false;
        }
        match state.compare_exchange_weak(cur, add(cur, n), AcqRel, Acquire) {
            Ok(_) => return true,
            Err(actual) => cur = actual,
        }
    }
}

/// Takes up to `n` free permits out of the semaphore for good; returns how
/// many. While somebody is queued no permit is free (see the module docs),
/// so none is taken.
pub(super) fn forget(state: &AtomicU64, n: u64) -> u64 {
    let mut cur = state.load(Acquire);
    loop {
        let take = permits(cur).min(n);
        if take == 0 {
            return 0;
        }
        match state.compare_exchange_weak(cur, cur - (take << PERMIT_SHIFT), AcqRel, Acquire) {
            Ok(_) => return take,
            Err(actual) => cur = actual,
        }
    }
}

/// `cur` with `n` more free permits.
fn add(cur: u64, n: u64) -> u64 {
    let total = permits(cur).checked_add(n).filter(|t| *t <= MAX_PERMITS);
    assert!(
        total.is_some(),
        "adding {n} permits would overflow MAX_PERMITS ({MAX_PERMITS})"
    );
    cur + (n << PERMIT_SHIFT)
}

impl Semaphore {
    /// Under the queue lock: gives `free` permits to the waiters, oldest
    /// first, unlinking (and so waking, once the guard drops) each one
    /// served; the rest become free, and `WAITERS` is cleared if nobody is
    /// left. A closed semaphore serves nobody: its waiters fail.
    pub(super) fn hand_off(&self, waiters: &mut HandoffGuard<'_, (), Waiter>, mut free: u64) {
        if !is_closed(self.state.load(Acquire)) {
            // A linked waiter always lacks at least one permit (it would
            // have been served otherwise), so with none left the walk
            // stops without looking at the next one.
            while free > 0 {
                let Some(first) = waiters.front() else { break };
                let give = free.min(first.need - first.assigned);
                first.assigned += give;
                free -= give;
                if first.assigned < first.need {
                    break; // `free` is spent
                }
                waiters.hand_off_front();
            }
        }
        let empty = waiters.is_empty();
        if free == 0 && !empty {
            return;
        }
        let mut cur = self.state.load(Acquire);
        loop {
            let mut next = add(cur, free);
            if empty {
                next &= !WAITERS;
            }
            match self.state.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
    }
}
