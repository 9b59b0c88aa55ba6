//! What the current thread is doing: which runtime it runs, which task it
//! polls, and (on a scheduler thread) that scheduler's local run queue.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::num::NonZeroU64;

use crate::scheduler::{current_thread, multi_thread, Scheduler};
use crate::task::raw::{Header, TaskRef};
use crate::task::Id;

/// The local run queue of the scheduler this thread is driving, if any.
pub(crate) enum Core {
    None,
    CurrentThread(Box<current_thread::Core>),
    MultiThread(Box<multi_thread::Core>),
}

struct Context {
    /// This thread drives tasks (`block_on`, a worker): it must not block.
    driving: Cell<bool>,
    scheduler: RefCell<Option<Scheduler>>,
    /// How many [`EnterGuard`]s are alive on this thread (they must drop
    /// in the reverse order they were made).
    enter_depth: Cell<usize>,
    core: RefCell<Core>,
}

/// The task being polled on this thread: apart from [`Context`], whose
/// fields need a destructor, so that every task poll's enter and leave
/// reach it without the lazy-registration check such a thread-local pays
/// on each access (yield_many: about 10 instructions per poll).
struct TaskContext {
    task: Cell<Option<CurrentTask>>,
    /// The task being polled called [`yield_now`](crate::task::yield_now)
    /// (read and cleared after each task poll).
    yielded: Cell<bool>,
}

thread_local! {
    static CONTEXT: Context = const {
        Context {
            driving: Cell::new(false),
            scheduler: RefCell::new(None),
            enter_depth: Cell::new(0),
            core: RefCell::new(Core::None),
        }
    };
    static TASK: TaskContext = const {
        TaskContext {
            task: Cell::new(None),
            yielded: Cell::new(false),
        }
    };
    /// The local task ([`LocalSet`](crate::task::LocalSet)) polled on
    /// this thread now (0: none): the wait registry names it rather than
    /// the task that drives its set.
    static LOCAL_TASK: Cell<u64> = const { Cell::new(0) };
}

/// Runs `f`, the poll of the local task `id`, with `id` as the task the
/// wait registry names and no task slot current: the local task's sleeps
/// are its own, listed in the registry's shared map, not in the slot of
/// the task that drives its set. Restored when `f` returns or unwinds.
pub(crate) fn poll_local_task<R>(id: Id, f: impl FnOnce() -> R) -> R {
    struct Restore(u64);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = LOCAL_TASK.try_with(|local| local.set(self.0));
        }
    }
    let _restore = Restore(LOCAL_TASK.with(|local| local.replace(id.0)));
    waitq::registry::in_shared_map(f)
}

/// Who drives a [`LocalSet`](crate::task::LocalSet) polled on this thread
/// now: the runtime (its `Common::id`) and the task polling the
/// set's `run_until`: a local task of another set when sets nest, else
/// the runtime's task ([`Id::BLOCK_ON_FUTURE`] for a `block_on` future).
/// `None` outside every runtime.
pub(crate) fn local_set_driver() -> Option<(u64, Id)> {
    let runtime = with_scheduler(|s| s.common().id)?;
    let task = match LOCAL_TASK.with(Cell::get) {
        0 => current_task_id().unwrap_or(Id::BLOCK_ON_FUTURE),
        local => Id(local),
    };
    Some((runtime, task))
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

/// Restores the previous runtime when dropped. Not `Send`: it restores
/// the thread it was made on.
pub(crate) struct EnterGuard {
    previous: Option<Scheduler>,
    /// Guards alive on this thread once this one was made.
    depth: usize,
    _not_send: std::marker::PhantomData<*const ()>,
}

/// Makes `scheduler` this thread's runtime until the guard drops.
pub(crate) fn enter(scheduler: Scheduler) -> EnterGuard {
    CONTEXT.with(|cx| {
        let depth = cx.enter_depth.get() + 1;
        cx.enter_depth.set(depth);
        EnterGuard {
            previous: cx.scheduler.replace(Some(scheduler)),
            depth,
            _not_send: std::marker::PhantomData,
        }
    })
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let in_order = CONTEXT
            .try_with(|cx| {
                let in_order = cx.enter_depth.get() == self.depth;
                if in_order {
                    cx.enter_depth.set(self.depth - 1);
                    *cx.scheduler.borrow_mut() = previous;
                }
                in_order
            })
            .unwrap_or(true);
        // Restoring out of order would leave the wrong runtime current,
        // silently; a second panic while unwinding would abort.
        if !in_order && !std::thread::panicking() {
            panic!(
                "`EnterGuard`s dropped out of order: the guards that `Handle::enter` \
                 returns must be dropped in the reverse order they were made (the \
                 innermost first), or the wrong runtime would stay current on this \
                 thread"
            );
        }
    }
}

/// The task being polled, as the thread records it: plain values, so
/// entering and leaving a task costs no reference-count traffic (two
/// atomic operations per poll, 8% of a `yield_now` round).
///
/// Sixteen bytes with `Option`'s niche in `id` (ids count from 1), so
/// that a [`TaskGuard`] comes back from [`enter_task`] in two registers:
/// at 24 bytes it went through memory, stored as 8-byte words and read
/// back as one 16-byte load that could not be forwarded from them, a
/// stall on every task poll (`perf annotate` of yield_many).
#[derive(Clone, Copy)]
struct CurrentTask {
    id: NonZeroU64,
    /// Where the task sits in its runtime's owned list.
    owned_key: u32,
}

impl CurrentTask {
    fn id(self) -> Id {
        Id(self.id.get())
    }
}

/// Restores the previous current task when dropped.
/// The current task (and its sleep slot) to put back; borrows the task
/// being polled, so it cannot outlive it.
pub(crate) struct TaskGuard<'task> {
    previous: Option<CurrentTask>,
    _task: PhantomData<&'task Header>,
}

/// Makes the task behind `header` the current task (for
/// `task::signals()`, `task::id()`), and its sleep slot the one its waits
/// are listed in (`waitq::registry::enter_slot`).
#[inline]
pub(crate) fn enter_task(header: &Header) -> TaskGuard<'_> {
    let current = CurrentTask {
        // Ids count from 1 (`Id::next`).
        id: NonZeroU64::new(header.id.0).unwrap_or(NonZeroU64::MAX),
        owned_key: header.owned_key.load(std::sync::atomic::Ordering::Relaxed),
    };
    // The task's sleep slot (`'static`: see `SleepSlots`) is current
    // while the task is polled. The guard returned empties the cell when
    // it is left or dropped (also when the poll panics), so no later
    // sleep on this thread is written there. A poll nested in another
    // (none is today) leaves its outer task without a slot: that task's
    // later sleeps go to the registry's shared map. Measured: a sleep
    // written to the task's own slot costs plain stores where the
    // registry's shared map took two locks and a hash insert (see
    // `obs.rs`).
    match waitq::registry::listing() {
        waitq::registry::Listing::Slots => {
            let slot = header
                .scheduler
                .common()
                .obs
                .sleeps
                .get(current.owned_key as usize);
            // Stamped with the task's id: a record an ended task left under
            // this key counts as empty, so the slot is not cleared when a task
            // ends (`Scheduler::release`).
            match slot {
                Some(slot) => waitq::registry::enter_owned_slot(slot, current.id),
                None => waitq::registry::enter_slot(None),
            }
        }
        // The whole registry (no slots then, even if a runtime without the
        // detectors enabled them): the hung-task detector may be watching.
        waitq::registry::Listing::Whole => header.note_poll(),
        _ => {}
    }
    let previous = TASK.with(|cx| {
        cx.yielded.set(false);
        cx.task.replace(Some(current))
    });
    TaskGuard {
        previous,
        _task: PhantomData,
    }
}

impl TaskGuard<'_> {
    /// Restores the previous current task (as the drop does) and returns
    /// whether the task called `yield_now` since [`enter_task`].
    #[inline]
    pub(crate) fn leave(self) -> bool {
        let previous = self.previous;
        std::mem::forget(self);
        if waitq::registry::slots_enabled() {
            waitq::registry::enter_slot(None);
        }
        TASK.with(|cx| {
            cx.task.set(previous);
            cx.yielded.replace(false)
        })
    }
}

impl Drop for TaskGuard<'_> {
    fn drop(&mut self) {
        if waitq::registry::slots_enabled() {
            waitq::registry::enter_slot(None);
        }
        TASK.with(|cx| cx.task.set(self.previous));
    }
}

/// Notes that the task being polled yields on purpose (`yield_now`); its
/// [`TaskGuard::leave`] reports it.
#[inline]
pub(crate) fn note_yield_now() {
    TASK.with(|cx| cx.yielded.set(true));
}

/// The id of the task being polled on this thread, if any.
pub(crate) fn current_task_id() -> Option<Id> {
    TASK.with(|cx| cx.task.get()).map(CurrentTask::id)
}

/// The task being polled on this thread, if any: found in the owned list
/// of the runtime this thread runs (a task is listed from its spawn until
/// it completes, so while it is polled).
pub(crate) fn current_task() -> Option<TaskRef> {
    let current = TASK.with(|cx| cx.task.get())?;
    with_scheduler(|scheduler| scheduler.common().owned.get(current.owned_key as usize))
        .flatten()
        .filter(|task| task.header().id == current.id())
}

/// Runs `f` with this thread's core (the scheduler's local queue).
/// Returns `None` when the thread has no core or it is borrowed.
#[inline]
pub(crate) fn with_core<R>(f: impl FnOnce(&mut Core) -> R) -> Option<R> {
    CONTEXT
        .try_with(|cx| cx.core.try_borrow_mut().ok().map(|mut core| f(&mut core)))
        .ok()
        .flatten()
}

/// Runs `f` with the runtime this thread runs in and this thread's core,
/// found in one look at the thread's context (a wake on a worker: looking
/// twice cost about 30 instructions per wake on 2 workers). `None` when
/// the thread has no runtime or its core is borrowed.
#[inline]
pub(crate) fn with_scheduler_and_core<R>(f: impl FnOnce(&Scheduler, &mut Core) -> R) -> Option<R> {
    CONTEXT
        .try_with(|cx| {
            let scheduler = cx.scheduler.borrow();
            let mut core = cx.core.try_borrow_mut().ok()?;
            Some(f(scheduler.as_ref()?, &mut core))
        })
        .ok()
        .flatten()
}

/// Installs `core` as this thread's core, returning the previous one.
pub(crate) fn set_core(core: Core) -> Core {
    CONTEXT.with(|cx| cx.core.replace(core))
}

/// For the wait registry: `Some(task)` on a thread of a runtime (`None`
/// inside when no task is being polled: a `block_on` future, a parked
/// worker), `None` on a thread outside every runtime.
pub(crate) fn registry_task() -> Option<Option<Id>> {
    let task = CONTEXT
        .try_with(|cx| match TASK.with(|t| t.task.get()) {
            Some(task) => Some(Some(task.id())),
            None if cx.enter_depth.get() > 0 => Some(None),
            None => None,
        })
        .ok()
        .flatten()?;
    // A local task polled inside its set's `run_until`: it, not the driver.
    match LOCAL_TASK.try_with(Cell::get) {
        Ok(local) if local != 0 => Some(Some(Id(local))),
        _ => Some(task),
    }
}

#[cfg(test)]
mod tests {
    /// A guard comes back from `enter_task` in two registers only while it
    /// is at most 16 bytes (see `CurrentTask`).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_task_guard_is_two_words() {
        assert_eq!(std::mem::size_of::<super::TaskGuard<'static>>(), 16);
    }
}
