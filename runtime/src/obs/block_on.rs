//! The sleep slots of `block_on` futures: a `block_on` future's sleeps
//! are written with plain stores into a slot of its thread's, as a task's
//! are into the task's (`SleepSlots`), and a dump reads them from the
//! runtime's list of the `block_on` calls that have slept.
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
//! of its own (the slot's count of calls), so a record a previous call
//! left counts as empty.
//!
//! A call joins the runtime's list only once its future has slept (a
//! record of its own is in the slot after a poll): a `block_on` whose
//! future is ready at once takes no lock and clones nothing (listing
//! every call up front cost an empty `block_on` 24 % more time on
//! current-thread, 47 % on multi-thread).

use std::cell::Cell;
use std::num::NonZeroU64;
use std::sync::{Mutex, PoisonError};
use std::thread::Thread;

use waitq::registry::{SleepSlot, Waiting};

use crate::task::Id;

/// The `block_on` calls running on one runtime now whose futures have
/// slept (in its `Observer`).
#[derive(Debug)]
pub(crate) struct BlockOnSlots(Mutex<Vec<Sleeper>>);

/// Room made with the runtime for this many listed `block_on` calls, so
/// that the first sleep of a `block_on` future, whenever it comes,
/// allocates nothing (a program runs one or a few at once). Made on
/// first use instead, the push landed in whichever sleep came first: a
/// test that counted a `block_on`'s allocations after a warm-up saw one
/// more whenever every warm-up receive had found its value already sent.
const BLOCK_ONS_ROOM: usize = 4;

impl Default for BlockOnSlots {
    fn default() -> Self {
        BlockOnSlots(Mutex::new(Vec::with_capacity(BLOCK_ONS_ROOM)))
    }
}

/// One `block_on` call: its thread's slot, its owner stamp, its thread.
#[derive(Debug)]
struct Sleeper {
    slot: &'static SleepSlot,
    owner: NonZeroU64,
    thread: Thread,
}

/// A `block_on` call's slot: it polls the future in its thread's slot
/// ([`poll`](Self::poll)), joins the runtime's list when the future has
/// slept, and leaves it when dropped.
pub(crate) struct BlockOnSlot<'a> {
    list: &'a BlockOnSlots,
    /// `None`: the registry keeps no slots, or the thread is ending.
    slot: Option<(&'static SleepSlot, NonZeroU64)>,
    /// In `list`.
    listed: Cell<bool>,
}

impl BlockOnSlots {
    /// A `block_on` call on this thread: its slot and a fresh owner.
    pub(crate) fn enter(&self) -> BlockOnSlot<'_> {
        let slot = if waitq::registry::slots_enabled() {
            // A `block_on` in a thread-local's destructor: no slot, its
            // sleeps go to the shared map.
            THREAD_SLOT.try_with(ThreadSlot::next_call).ok()
        } else {
            None
        };
        BlockOnSlot {
            list: self,
            slot,
            listed: Cell::new(false),
        }
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
    /// current; lists the call with the runtime the first time the poll
    /// leaves a sleep of its own in the slot.
    #[inline]
    pub(crate) fn poll<R>(&self, f: impl FnOnce() -> R) -> R {
        let Some((slot, owner)) = self.slot else {
            return f();
        };
        let out = waitq::registry::in_owned_slot(slot, owner, f);
        if !self.listed.get() && slot.is_held_by(owner.get()) {
            self.join_list(slot, owner);
        }
        out
    }

    #[cold]
    #[inline(never)]
    fn join_list(&self, slot: &'static SleepSlot, owner: NonZeroU64) {
        self.listed.set(true);
        self.list.lock().push(Sleeper {
            slot,
            owner,
            thread: std::thread::current(),
        });
    }
}

impl Drop for BlockOnSlot<'_> {
    fn drop(&mut self) {
        if let (true, Some((_, owner))) = (self.listed.get(), self.slot) {
            self.list.lock().retain(|s| s.owner != owner);
        }
    }
}

/// This thread's slot for its `block_on` futures, and the owner stamps
/// given out in it so far (kept with the slot when it changes threads, so
/// a stamp is never given twice in one slot).
struct ThreadSlot {
    slot: &'static SleepSlot,
    calls: Cell<u64>,
}

impl ThreadSlot {
    fn next_call(&self) -> (&'static SleepSlot, NonZeroU64) {
        let owner = self.calls.get() + 1;
        self.calls.set(owner);
        (self.slot, NonZeroU64::new(owner).expect("counts from 1"))
    }
}

/// Slots whose threads ended (with their stamps so far), for the next
/// threads.
static FREE: Mutex<Vec<(&'static SleepSlot, u64)>> = Mutex::new(Vec::new());

thread_local! {
    static THREAD_SLOT: ThreadSlot = {
        let spare = FREE.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let (slot, calls) = spare.unwrap_or_else(|| (Box::leak(Box::new(SleepSlot::new())), 0));
        ThreadSlot { slot, calls: Cell::new(calls) }
    };
}

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        FREE.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((self.slot, self.calls.get()));
    }
}
