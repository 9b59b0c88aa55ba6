//! A fixed-size batch of woken entries: filled under the queue lock, woken
//! after it is released, so no waker ever runs (or is dropped) under the lock.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

use crate::entry::Entry;

/// Entries taken out per lock hold. Small under `cfg(test)` so the
/// multi-batch path runs in the unit tests.
#[cfg(not(test))]
pub(crate) const BATCH: usize = 32;
#[cfg(test)]
pub(crate) const BATCH: usize = 2;

pub(crate) struct WakeBatch {
    entries: [Option<Entry>; BATCH],
    len: usize,
}

impl WakeBatch {
    pub(crate) fn new() -> Self {
        WakeBatch {
            entries: [const { None }; BATCH],
            len: 0,
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len == BATCH
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn push(&mut self, entry: Entry) {
        debug_assert!(!self.is_full());
        self.entries[self.len] = Some(entry);
        self.len += 1;
    }

    /// Wakes every entry. A panicking waker does not stop the others: the
    /// first panic is kept in `panic` for the caller to resume once the whole
    /// wake is done and the queue is consistent.
    pub(crate) fn wake_all(&mut self, panic: &mut Option<Box<dyn Any + Send>>) {
        for slot in &mut self.entries[..self.len] {
            if let Some(entry) = slot.take() {
                if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| entry.wake())) {
                    panic.get_or_insert(payload);
                }
            }
        }
        self.len = 0;
    }
}
