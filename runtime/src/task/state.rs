//! The task's atomic state word and its transitions.
//!
//! | bit | set by | cleared by |
//! | --- | --- | --- |
//! | `SCHEDULED` | a wake that finds the task idle (the waker then queues it) | the worker that starts polling it |
//! | `RUNNING` | the worker that polls it | the same worker, after the poll |
//! | `NOTIFIED` | a wake while `RUNNING` | the polling worker, which then re-queues the task |
//! | `COMPLETE` | the worker whose poll finished or cancelled the task | never |
//! | `CANCELLED` | `abort()` and shutdown | never |
//! | `JOIN_INTEREST` | spawn (the `JoinHandle` exists) | dropping the `JoinHandle` |
//! | `JOIN_WAITING` | a `JoinHandle` about to sleep on the join queue | never |
//! | `MANDATORY` | the spawn of a blocking job that must run even when the runtime shuts down first (a `fs::File`'s write) | never |
//! | `BLOCKING` | the spawn of a blocking job (`spawn_blocking`): its panic goes to its `JoinHandle` only, never to the runtime's `UnhandledPanic` policy | never |
//!
//! `JOIN_WAITING` lets completion skip waking an empty join queue. Both
//! sides read-modify-write the one word, so they are ordered: either the
//! joiner's RMW sees `COMPLETE` (it does not sleep), or the completer's
//! sees `JOIN_WAITING` (it wakes the queue, and a joiner not yet linked
//! re-checks `COMPLETE` after linking under the queue's lock).
//! Only the holder of `RUNNING` touches the future; the output slot is
//! handed over through `COMPLETE` and `JOIN_INTEREST` (see `Task::complete`).

use std::sync::atomic::{AtomicU32, Ordering::AcqRel, Ordering::Acquire};

const SCHEDULED: u32 = 1 << 0;
const RUNNING: u32 = 1 << 1;
const NOTIFIED: u32 = 1 << 2;
const COMPLETE: u32 = 1 << 3;
const CANCELLED: u32 = 1 << 4;
const JOIN_INTEREST: u32 = 1 << 5;
const JOIN_WAITING: u32 = 1 << 6;
const MANDATORY: u32 = 1 << 7;
const BLOCKING: u32 = 1 << 8;

/// A snapshot of the state word.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot(u32);

impl Snapshot {
    /// A worker polls it now (task dumps).
    pub(crate) fn is_running(self) -> bool {
        self.0 & RUNNING != 0
    }

    /// Queued to run, or woken while it runs (task dumps).
    pub(crate) fn is_scheduled(self) -> bool {
        self.0 & (SCHEDULED | NOTIFIED) != 0
    }

    pub(crate) fn is_complete(self) -> bool {
        self.0 & COMPLETE != 0
    }
    pub(crate) fn is_cancelled(self) -> bool {
        self.0 & CANCELLED != 0
    }
    pub(crate) fn has_join_interest(self) -> bool {
        self.0 & JOIN_INTEREST != 0
    }
    pub(crate) fn has_join_waiter(self) -> bool {
        self.0 & JOIN_WAITING != 0
    }
    /// A blocking job that shutdown leaves to the pool to run.
    pub(crate) fn is_mandatory(self) -> bool {
        self.0 & MANDATORY != 0
    }

    /// A `spawn_blocking` job (see `set_blocking`).
    pub(crate) fn is_blocking(self) -> bool {
        self.0 & BLOCKING != 0
    }
}

/// What the polling worker does after a `Pending` poll.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AfterPoll {
    /// Nobody woke the task: it waits for a wake.
    Idle,
    /// Woken during the poll (or aborted): queue it again.
    Requeue,
}

/// The atomic state word of one task.
#[derive(Debug)]
pub(crate) struct State(AtomicU32);

impl State {
    /// A new task: scheduled (it is queued at spawn), with a join handle.
    pub(crate) fn new() -> State {
        State(AtomicU32::new(SCHEDULED | JOIN_INTEREST))
    }

    pub(crate) fn load(&self) -> Snapshot {
        Snapshot(self.0.load(Acquire))
    }

    /// Marks a blocking job as one that shutdown does not cancel while it
    /// is queued (see `BlockingPool::shutdown`). Before the task is
    /// published: no other thread sees it yet.
    pub(crate) fn set_mandatory(&self) {
        self.0.fetch_or(MANDATORY, AcqRel);
    }

    /// Marks a blocking job: a panic in it goes to its `JoinHandle` only,
    /// as tokio's, never to the runtime's `UnhandledPanic` policy (a job
    /// is often how a service runs panic-prone code and turns a panic into
    /// an error). Before the task is published.
    pub(crate) fn set_blocking(&self) {
        self.0.fetch_or(BLOCKING, AcqRel);
    }

    /// A `JoinHandle` is about to wait; returns the state before (if it
    /// is `COMPLETE` already, the handle does not sleep).
    pub(crate) fn set_join_waiting(&self) -> Snapshot {
        Snapshot(self.0.fetch_or(JOIN_WAITING, AcqRel))
    }

    /// A wake. Returns true when the caller must queue the task.
    pub(crate) fn transition_to_scheduled(&self) -> bool {
        let mut cur = self.0.load(Acquire);
        loop {
            let next = if cur & (COMPLETE | SCHEDULED | NOTIFIED) != 0 {
                return false;
            } else if cur & RUNNING != 0 {
                cur | NOTIFIED
            } else {
                cur | SCHEDULED
            };
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return next & SCHEDULED != 0,
                Err(actual) => cur = actual,
            }
        }
    }

    /// A worker took the task from a queue. Returns the state before, or
    /// `None` when shutdown claimed the task while it sat in the queue.
    pub(crate) fn transition_to_running(&self) -> Option<Snapshot> {
        let mut cur = self.0.load(Acquire);
        loop {
            if cur & (RUNNING | COMPLETE) != 0 || cur & SCHEDULED == 0 {
                return None;
            }
            let next = (cur & !SCHEDULED) | RUNNING;
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return Some(Snapshot(cur)),
                Err(actual) => cur = actual,
            }
        }
    }

    /// The poll returned `Pending`.
    pub(crate) fn transition_to_idle(&self) -> AfterPoll {
        let mut cur = self.0.load(Acquire);
        loop {
            let (next, after) = if cur & NOTIFIED != 0 {
                (
                    (cur & !(RUNNING | NOTIFIED)) | SCHEDULED,
                    AfterPoll::Requeue,
                )
            } else {
                (cur & !RUNNING, AfterPoll::Idle)
            };
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return after,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The future finished or was dropped. Returns the state before.
    pub(crate) fn transition_to_complete(&self) -> Snapshot {
        let mut cur = self.0.load(Acquire);
        loop {
            let next = (cur & !(RUNNING | NOTIFIED | SCHEDULED)) | COMPLETE;
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return Snapshot(cur),
                Err(actual) => cur = actual,
            }
        }
    }

    /// `abort()`: marks the task cancelled. Returns true when the caller
    /// must queue it (it was idle), so that a worker drops its future.
    pub(crate) fn transition_to_cancelled(&self) -> bool {
        let prev = self.0.fetch_or(CANCELLED, AcqRel);
        if prev & (COMPLETE | CANCELLED) != 0 {
            return false;
        }
        self.transition_to_scheduled()
    }

    /// Shutdown: claim an idle or queued task to drop its future here.
    /// Returns false when another thread is polling it or it is complete.
    pub(crate) fn claim_for_shutdown(&self) -> bool {
        let mut cur = self.0.load(Acquire);
        loop {
            if cur & COMPLETE != 0 {
                return false;
            }
            if cur & RUNNING != 0 {
                // The poller sees NOTIFIED + CANCELLED after its poll and
                // drops the future itself.
                match self
                    .0
                    .compare_exchange_weak(cur, cur | CANCELLED | NOTIFIED, AcqRel, Acquire)
                {
                    Ok(_) => return false,
                    Err(actual) => {
                        cur = actual;
                        continue;
                    }
                }
            }
            let next = (cur & !SCHEDULED) | RUNNING | CANCELLED;
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The `JoinHandle` was dropped. Returns the state before.
    pub(crate) fn drop_join_interest(&self) -> Snapshot {
        Snapshot(self.0.fetch_and(!JOIN_INTEREST, AcqRel))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn join_waiting_and_complete_see_each_other() {
        // The joiner first: completion sees it and wakes the queue.
        let state = State::new();
        assert!(!state.set_join_waiting().is_complete());
        assert!(state.transition_to_complete().has_join_waiter());
        // Completion first: the joiner's RMW sees COMPLETE and never sleeps.
        let state = State::new();
        assert!(!state.transition_to_complete().has_join_waiter());
        assert!(state.set_join_waiting().is_complete());
    }

    use super::*;

    #[test]
    fn wake_while_running_requeues_once() {
        let s = State::new();
        s.transition_to_running();
        assert!(!s.transition_to_scheduled());
        assert!(!s.transition_to_scheduled());
        assert_eq!(s.transition_to_idle(), AfterPoll::Requeue);
        s.transition_to_running();
        assert_eq!(s.transition_to_idle(), AfterPoll::Idle);
        assert!(s.transition_to_scheduled());
        assert!(!s.transition_to_scheduled(), "already queued");
    }

    #[test]
    fn complete_ignores_wakes_and_aborts() {
        let s = State::new();
        s.transition_to_running();
        let before = s.transition_to_complete();
        assert!(before.has_join_interest());
        assert!(s.load().is_complete());
        assert!(!s.transition_to_scheduled());
        assert!(!s.transition_to_cancelled());
        assert!(!s.claim_for_shutdown());
    }

    #[test]
    fn abort_of_idle_task_queues_it() {
        let s = State::new();
        s.transition_to_running();
        assert_eq!(s.transition_to_idle(), AfterPoll::Idle);
        assert!(s.transition_to_cancelled());
        assert!(s.transition_to_running().unwrap().is_cancelled());
    }

    #[test]
    fn shutdown_claims_only_tasks_nobody_polls() {
        let s = State::new();
        assert!(s.claim_for_shutdown(), "queued task");
        let r = State::new();
        r.transition_to_running();
        assert!(!r.claim_for_shutdown());
        assert!(r.load().is_cancelled());
    }
}
