//! A fixed-size batch of wakers: taken out of woken entries under the queue
//! lock, called after it is released, so no waker ever runs (or is
//! dropped) under the lock.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::task::Waker;

use crate::entry::Entry;

/// Wakers taken out per lock hold. Small under `cfg(test)` so the
/// multi-batch path runs in the unit tests.
#[cfg(not(test))]
pub(crate) const BATCH: usize = 32;
#[cfg(test)]
pub(crate) const BATCH: usize = 2;

pub(crate) struct WakeBatch {
    /// The first waker, kept apart so that the common one-waiter wake
    /// neither initializes nor drops the array.
    first: Option<Waker>,
    /// Wakers 2 to `BATCH`, built on the first second push.
    rest: Option<[Option<Waker>; BATCH - 1]>,
    /// Entries pushed (an entry without a waker counts but adds none).
    len: usize,
}

impl WakeBatch {
    pub(crate) fn new() -> Self {
        WakeBatch {
            first: None,
            rest: None,
            len: 0,
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len == BATCH
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Takes the waker out of a woken (unlinked) entry.
    pub(crate) fn push_entry(&mut self, entry: Entry) {
        debug_assert!(!self.is_full());
        let waker = entry.into_waker();
        if self.len == 0 {
            self.first = waker;
        } else {
            let rest = match &mut self.rest {
                Some(rest) => rest,
                none => none.insert([const { None }; BATCH - 1]),
            };
            rest[self.len - 1] = waker;
        }
        self.len += 1;
    }

    /// Wakes every waker. A panicking waker does not stop the others: the
    /// first panic is kept in `panic` for the caller to resume once the whole
    /// wake is done and the queue is consistent.
    pub(crate) fn wake_all(&mut self, panic: &mut Option<Box<dyn Any + Send>>) {
        let rest = match &mut self.rest {
            Some(rest) => &mut rest[..self.len.saturating_sub(1)],
            None => &mut [],
        };
        for waker in std::iter::once(&mut self.first)
            .chain(rest)
            .filter_map(Option::take)
        {
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| waker.wake())) {
                panic.get_or_insert(payload);
            }
        }
        self.len = 0;
    }
}

/// Calls one waker taken out of a queue. A panic goes to the caller, as
/// any waker's does, except while this thread is already unwinding (a
/// wake from a destructor run by another panic: a guard dropped, a waiter
/// handing its turn on): a second panic there would abort the process,
/// so it is dropped instead (the panic hook has printed it).
#[inline]
pub(crate) fn wake_one(waker: Waker) {
    if std::thread::panicking() {
        let _ = panic::catch_unwind(AssertUnwindSafe(|| waker.wake()));
    } else {
        waker.wake();
    }
}

/// Calls every waker in `wakers`, each even if an earlier one panics (a
/// woken waiter may have been handed what it waited for: skipping it
/// strands that for good); returns the first panic, for [`resume`] once
/// the caller's wake is done.
pub(crate) fn wake_each(wakers: impl IntoIterator<Item = Waker>) -> Option<Box<dyn Any + Send>> {
    let mut first = None;
    for waker in wakers {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| waker.wake())) {
            first.get_or_insert(payload);
        }
    }
    first
}

/// Resumes a waker's panic in the waking caller once the whole wake is
/// done, unless this thread is already unwinding (a wake from a
/// destructor run by another panic): a second panic would abort, so that
/// one is dropped (the panic hook has printed it).
pub(crate) fn resume(panic: Option<Box<dyn Any + Send>>) {
    if let Some(payload) = panic {
        if !std::thread::panicking() {
            panic::resume_unwind(payload);
        }
    }
}
