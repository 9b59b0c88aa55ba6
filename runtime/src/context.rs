//! What the current thread is doing: which runtime it runs, which task it
//! polls, and (on a scheduler thread) that scheduler's local run queue.

use std::cell::RefCell;

use crate::scheduler::{current_thread, multi_thread, Scheduler};
use crate::task::raw::TaskRef;

/// The local run queue of the scheduler this thread is driving, if any.
pub(crate) enum Core {
    None,
    CurrentThread(Box<current_thread::Core>),
    MultiThread(Box<multi_thread::Core>),
}

struct Context {
    /// This thread drives tasks (`block_on`, a worker): it must not block.
    driving: std::cell::Cell<bool>,
    scheduler: RefCell<Option<Scheduler>>,
    task: RefCell<Option<TaskRef>>,
    core: RefCell<Core>,
}

thread_local! {
    static CONTEXT: Context = const {
        Context {
            driving: std::cell::Cell::new(false),
            scheduler: RefCell::new(None),
            task: RefCell::new(None),
            core: RefCell::new(Core::None),
        }
    };
}

/// The runtime this thread runs in, if any.
pub(crate) fn scheduler() -> Option<Scheduler> {
    CONTEXT
        .try_with(|cx| cx.scheduler.borrow().clone())
        .ok()
        .flatten()
}

/// Runs `f` with the runtime this thread runs in, without cloning the
/// handle (its count is shared by every task: hot paths borrow it).
pub(crate) fn with_scheduler<R>(f: impl FnOnce(&Scheduler) -> R) -> Option<R> {
    CONTEXT
        .try_with(|cx| cx.scheduler.borrow().as_ref().map(f))
        .ok()
        .flatten()
}

/// Whether this thread drives tasks (for the nested `block_on` check).
pub(crate) fn is_driving() -> bool {
    CONTEXT.try_with(|cx| cx.driving.get()).unwrap_or(false)
}

/// Clears the driving mark when dropped.
pub(crate) struct DrivingGuard(bool);

/// Marks this thread as driving tasks until the guard drops.
pub(crate) fn enter_driving() -> DrivingGuard {
    DrivingGuard(CONTEXT.with(|cx| cx.driving.replace(true)))
}

impl Drop for DrivingGuard {
    fn drop(&mut self) {
        let prev = self.0;
        let _ = CONTEXT.try_with(|cx| cx.driving.set(prev));
    }
}

/// Restores the previous runtime when dropped.
pub(crate) struct EnterGuard(Option<Scheduler>);

/// Makes `scheduler` this thread's runtime until the guard drops.
pub(crate) fn enter(scheduler: Scheduler) -> EnterGuard {
    EnterGuard(CONTEXT.with(|cx| cx.scheduler.replace(Some(scheduler))))
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let prev = self.0.take();
        let _ = CONTEXT.try_with(|cx| *cx.scheduler.borrow_mut() = prev);
    }
}

/// Restores the previous current task when dropped.
pub(crate) struct TaskGuard(Option<TaskRef>);

/// Makes `task` the current task (for `task::signals()`, `task::id()`).
pub(crate) fn enter_task(task: TaskRef) -> TaskGuard {
    TaskGuard(CONTEXT.with(|cx| cx.task.replace(Some(task))))
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        let prev = self.0.take();
        let _ = CONTEXT.try_with(|cx| *cx.task.borrow_mut() = prev);
    }
}

/// The task being polled on this thread, if any.
pub(crate) fn current_task() -> Option<TaskRef> {
    CONTEXT
        .try_with(|cx| cx.task.borrow().clone())
        .ok()
        .flatten()
}

/// Runs `f` with this thread's core (the scheduler's local queue).
/// Returns `None` when the thread has no core or it is borrowed.
pub(crate) fn with_core<R>(f: impl FnOnce(&mut Core) -> R) -> Option<R> {
    CONTEXT
        .try_with(|cx| cx.core.try_borrow_mut().ok().map(|mut core| f(&mut core)))
        .ok()
        .flatten()
}

/// Installs `core` as this thread's core, returning the previous one.
pub(crate) fn set_core(core: Core) -> Core {
    CONTEXT.with(|cx| cx.core.replace(core))
}
