//! Which workers are parked and how many search for work.
//!
//! The lost-wake-up argument (the kernel's `wq_has_sleeper` pairing, in
//! counters): a waker pushes a task, then (full fence) reads `searching`
//! and `sleeping`; a worker about to park adds itself to `sleepers`, then
//! (full fence) re-reads every queue. With both fences, either the waker
//! sees the sleeper and unparks it, or the worker sees the task.

use std::sync::atomic::{fence, AtomicUsize, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard, PoisonError};

#[derive(Debug)]
pub(super) struct Idle {
    workers: usize,
    searching: AtomicUsize,
    sleeping: AtomicUsize,
    sleepers: Mutex<Vec<usize>>,
}

impl Idle {
    pub(super) fn new(workers: usize) -> Idle {
        Idle {
            workers,
            searching: AtomicUsize::new(0),
            sleeping: AtomicUsize::new(0),
            sleepers: Mutex::new(Vec::with_capacity(workers)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<usize>> {
        self.sleepers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// After queuing work: the parked worker to wake, if one should be.
    /// It counts as searching from here on. Never `me` (the caller, when it
    /// is a worker still listed as parked); a worker other than `driver`
    /// (asleep in the reactor, which I/O wakes anyway and which only an
    /// eventfd write can interrupt) is preferred.
    pub(super) fn worker_to_notify(&self, me: Option<usize>, driver: usize) -> Option<usize> {
        fence(SeqCst);
        if self.searching.load(SeqCst) != 0 || self.sleeping.load(SeqCst) == 0 {
            return None;
        }
        let mut sleepers = self.lock();
        if self.searching.load(SeqCst) != 0 {
            return None;
        }
        let other = |i: usize| Some(i) != me;
        let at = sleepers
            .iter()
            .rposition(|&i| other(i) && i != driver)
            .or_else(|| sleepers.iter().rposition(|&i| other(i)))?;
        let index = sleepers.remove(at);
        self.sleeping.fetch_sub(1, SeqCst);
        self.searching.fetch_add(1, SeqCst);
        Some(index)
    }

    /// Becomes a searcher unless half the workers already search.
    pub(super) fn try_start_searching(&self) -> bool {
        let searching = self.searching.load(SeqCst);
        if 2 * searching >= self.workers.max(2) {
            return false;
        }
        self.searching.fetch_add(1, SeqCst);
        true
    }

    /// Stops searching; true when this was the last searcher.
    pub(super) fn stop_searching(&self) -> bool {
        self.searching.fetch_sub(1, SeqCst) == 1
    }

    /// Announces `index` as parked.
    pub(super) fn park(&self, index: usize, was_searching: bool) {
        let mut sleepers = self.lock();
        sleepers.push(index);
        self.sleeping.fetch_add(1, SeqCst);
        if was_searching {
            self.searching.fetch_sub(1, SeqCst);
        }
        drop(sleepers);
        fence(SeqCst);
    }

    /// After a park returns. True when the worker is searching now: either
    /// a notifier made it a searcher, or it woke on its own (timeout,
    /// shutdown) and takes itself off the list as a searcher.
    pub(super) fn unpark(&self, index: usize) -> bool {
        let mut sleepers = self.lock();
        if let Some(pos) = sleepers.iter().position(|&i| i == index) {
            sleepers.swap_remove(pos);
            self.sleeping.fetch_sub(1, SeqCst);
            self.searching.fetch_add(1, SeqCst);
        }
        true
    }
}
