//! The sleep slots of `block_on` futures: a `block_on` future's sleeps
//! are written with plain stores into a slot of its thread's, as a task's
//! are into the task's (`SleepSlots`), and a dump reads them from the
//! runtime's list of the `block_on` calls running now.
//!
//! They went to the registry's shared map before: two locks and a hash
//! insert per sleep, 9 % of the instructions of an I/O ping-pong between
//! a `block_on` future and a task (callgrind), and a oneshot receive in a
//! `block_on` future boxed its waiter (three allocations where tokio makes
//! one).
//!
//! A slot belongs to one thread at a time: made the first time the thread
//! runs `block_on`, given back to a process-wide free list when the
//! thread ends, so their number is the most threads that ever ran
//! `block_on` at once; being kept for the process, they are `'static`
//! without `unsafe`. Each `block_on` call stamps its records with an owner
//! of its own, so a record a previous call left counts as empty.

use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::thread::Thread;

use waitq::registry::{SleepSlot, Waiting};

use crate::task::Id;

/// The `block_on` calls running on one runtime now (in its `Observer`).
#[derive(Debug, Default)]
pub(crate) struct BlockOnSlots(Mutex<Vec<Sleeper>>);

/// One `block_on` call: its thread's slot, its owner stamp, its thread.
#[derive(Debug)]
struct Sleeper {
    slot: &'static SleepSlot,
    owner: NonZeroU64,
    thread: Thread,
}

/// A `block_on` call's place in [`BlockOnSlots`]: it polls the future in
/// its thread's slot ([`poll`](Self::poll)), and leaves the list when
/// dropped.
pub(crate) struct BlockOnSlot<'a> {
    list: &'a BlockOnSlots,
    /// `None`: the registry keeps no slots, or the thread is ending.
    slot: Option<(&'static SleepSlot, NonZeroU64)>,
}

impl BlockOnSlots {
    /// Lists a `block_on` call on this thread (one lock).
    pub(crate) fn enter(&self) -> BlockOnSlot<'_> {
        let slot = if waitq::registry::slots_enabled() {
            // A `block_on` in a thread-local's destructor: no slot, its
            // sleeps go to the shared map.
            THREAD_SLOT.try_with(|slot| slot.0).ok()
        } else {
            None
        };
        let slot = slot.map(|slot| {
            static OWNERS: AtomicU64 = AtomicU64::new(1);
            let owner = NonZeroU64::new(OWNERS.fetch_add(1, Relaxed)).expect("2^64 block_on calls");
            self.lock().push(Sleeper {
                slot,
                owner,
                thread: std::thread::current(),
            });
            (slot, owner)
        });
        BlockOnSlot { list: self, slot }
    }

    /// The sleeps of the `block_on` futures running now, each named by
    /// its thread (as the shared map names a plain thread's).
    pub(crate) fn sleeps(&self) -> Vec<Waiting> {
        let sleepers: Vec<_> = self
            .lock()
            .iter()
            .map(|s| (s.slot, s.owner, s.thread.clone()))
            .collect();
        sleepers
            .into_iter()
            .filter_map(|(slot, owner, thread)| {
                let sleep = slot.read().filter(|sleep| sleep.owner == owner.get())?;
                let mut waiting = super::slot_waiting(sleep, Id::BLOCK_ON_FUTURE);
                waiting.task = None;
                waiting.thread = Some(thread);
                Some(waiting)
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Sleeper>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl BlockOnSlot<'_> {
    /// Runs `f` (a poll of the `block_on` future) with this call's slot
    /// current.
    #[inline]
    pub(crate) fn poll<R>(&self, f: impl FnOnce() -> R) -> R {
        match self.slot {
            Some((slot, owner)) => waitq::registry::in_owned_slot(slot, owner, f),
            None => f(),
        }
    }
}

impl Drop for BlockOnSlot<'_> {
    fn drop(&mut self) {
        if let Some((_, owner)) = self.slot {
            self.list.lock().retain(|s| s.owner != owner);
        }
    }
}

/// This thread's slot for its `block_on` futures.
struct ThreadSlot(&'static SleepSlot);

/// Slots whose threads ended, for the next threads.
static FREE: Mutex<Vec<&'static SleepSlot>> = Mutex::new(Vec::new());

thread_local! {
    static THREAD_SLOT: ThreadSlot = ThreadSlot(
        FREE.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_else(|| Box::leak(Box::new(SleepSlot::new()))),
    );
}

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        FREE.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(self.0);
    }
}
