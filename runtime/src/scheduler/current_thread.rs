//! The current-thread scheduler: every task runs on the thread that calls
//! `block_on`.
//!
//! # Run loop and fairness
//!
//! Each turn polls the `block_on` future if it was woken, then runs up to
//! `event_interval` (61) queued tasks. The local queue is FIFO; every
//! `global_queue_interval` (31) polls the remote queue (tasks woken from
//! other threads) is served first, so neither queue can starve the other.
//! A task that yields (`yield_now`, or its cooperative budget ran out) is
//! held back until nothing else is ready or the turn ends, as tokio's: a
//! woken task does not wait behind a CPU-bound task that yields (a
//! ping-pong next to a task yielding between 200 µs polls made 300-500
//! round trips in 300 ms with yields in queue order, 21,185 on tokio).
//! Before the held-back yields run again, due timers fire and ready I/O
//! is collected if that has not happened for 100 µs (`park::YieldCheck`),
//! so a loop of long polls that yields delays them by one pass, not by
//! `event_interval` polls. After `event_interval` polls, or when no task
//! is ready, due timers fire and ready I/O is collected. With nothing to
//! do the thread sleeps in the
//! reactor (or on its wait queue without one) until a remote wake, the
//! `block_on` future's waker, an I/O event, or the next timer deadline.
//! Guarantee: with a bounded number of tasks, each poll bounded, a woken
//! task is polled within one pass over the queues.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering::AcqRel, Ordering::Release};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use crossbeam_deque::{Injector, Steal};

use super::{run_outcome, Common, Scheduler};
use crate::context::{self, Core as AnyCore};
use crate::park::Parker;
use crate::task::raw::{PollOutcome, TaskRef, BUDGET};

/// State shared with wakers on other threads.
pub(crate) struct Shared {
    pub(crate) common: Common,
    /// Tasks woken from other threads.
    inject: Injector<TaskRef>,
    parker: Parker,
    /// The local queue while no `block_on` holds it.
    core: Mutex<Option<Box<Core>>>,
    /// `block_on` callers on other threads waiting for the core.
    waiters: Mutex<Vec<Arc<MainWaker>>>,
}

/// The run queue's room kept when it empties (more is given back then).
const QUEUE_KEEP: usize = 4096;

/// The local run queue; lives in the driving thread's context.
pub(crate) struct Core {
    owner: usize,
    queue: VecDeque<TaskRef>,
    tick: u32,
    /// Tasks that yielded (`PollOutcome::Yielded`), held back until
    /// nothing else is ready or the turn ends (see "Run loop and
    /// fairness" above).
    deferred: Vec<TaskRef>,
}

/// What [`Shared::next_task`] found.
enum Next {
    Task(TaskRef),
    /// Nothing is ready but the yields held back.
    OnlyYields,
    Empty,
}

impl Shared {
    pub(crate) fn new(common: Common) -> Arc<Shared> {
        let parker = Parker::for_driver(&common);
        Arc::new_cyclic(|weak| Shared {
            common,
            inject: Injector::new(),
            parker,
            core: Mutex::new(Some(Box::new(Core {
                owner: weak.as_ptr() as usize,
                queue: VecDeque::new(),
                tick: 0,
                deferred: Vec::new(),
            }))),
            waiters: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn addr(&self) -> usize {
        self as *const Shared as usize
    }

    pub(crate) fn schedule(&self, task: TaskRef) {
        if let Err(task) = push_local(self.addr(), task) {
            self.inject.push(task);
            super::drain_after_shutdown(&self.common, &self.inject);
            self.parker.unpark();
        }
    }

    pub(crate) fn unpark(&self) {
        self.parker.unpark();
    }

    fn waiters(&self) -> std::sync::MutexGuard<'_, Vec<Arc<MainWaker>>> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pop_inject(&self) -> Option<TaskRef> {
        loop {
            match self.inject.steal() {
                Steal::Success(task) => return Some(task),
                Steal::Empty => return None,
                Steal::Retry => {}
            }
        }
    }

    /// Local queue depth plus remote queue depth (metrics).
    pub(crate) fn queue_depth(&self) -> usize {
        let local = self
            .core
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(0, |c| c.queue.len() + c.deferred.len());
        local + self.inject.len()
    }

    /// Holds back a task that yielded during its poll (`Core::deferred`).
    fn defer(&self, task: TaskRef) {
        let me = self.addr();
        let mut task = Some(task);
        context::with_core(|core| match core {
            AnyCore::CurrentThread(core) if core.owner == me => {
                if let Some(task) = task.take() {
                    core.deferred.push(task);
                }
            }
            _ => {}
        });
        if let Some(task) = task {
            self.schedule(task);
        }
    }

    /// Moves the held-back yields to the back of the local queue.
    fn requeue_deferred(&self) {
        let me = self.addr();
        context::with_core(|core| match core {
            AnyCore::CurrentThread(core) if core.owner == me && !core.deferred.is_empty() => {
                core.queue.extend(core.deferred.drain(..));
            }
            _ => {}
        });
    }

    fn next_task(&self) -> Next {
        let me = self.addr();
        let interval = self.common.config.global_queue_interval;
        context::with_core(|core| {
            let AnyCore::CurrentThread(core) = core else {
                return Next::Empty;
            };
            debug_assert_eq!(core.owner, me);
            core.tick = core.tick.wrapping_add(1);
            let task = if core.tick % interval == 0 {
                self.pop_inject().or_else(|| core.queue.pop_front())
            } else {
                core.queue.pop_front().or_else(|| self.pop_inject())
            };
            match task {
                Some(task) => Next::Task(task),
                None if core.deferred.is_empty() => {
                    // Idle: a burst's room goes back (a million tasks woken
                    // at once kept 16 MB of queue for the runtime's life),
                    // half of it per idle turn, so a burst that comes back
                    // every turn regrows by one doubling, not from scratch.
                    let room = core.queue.capacity();
                    if room > QUEUE_KEEP {
                        core.queue.shrink_to((room / 2).max(QUEUE_KEEP));
                    }
                    let room = core.deferred.capacity();
                    if room > QUEUE_KEEP {
                        core.deferred.shrink_to((room / 2).max(QUEUE_KEEP));
                    }
                    Next::Empty
                }
                None => Next::OnlyYields,
            }
        })
        .unwrap_or(Next::Empty)
    }

    /// The run queue's room while the core is parked here (tests).
    #[cfg(test)]
    pub(crate) fn run_queue_room(&self) -> usize {
        let core = self.core.lock().unwrap_or_else(PoisonError::into_inner);
        core.as_ref().map_or(0, |core| core.queue.capacity())
    }

    /// The test toolkit drives this scheduler itself: installs the core on
    /// this thread (it goes back to `Shared` when the guard drops).
    /// `None` while a `block_on` holds it.
    pub(crate) fn enter_core(&self) -> Option<CoreGuard<'_>> {
        let core = self
            .core
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        Some(CoreGuard {
            shared: self,
            previous: Some(context::set_core(AnyCore::CurrentThread(core))),
        })
    }

    /// The test toolkit: takes every queued task, local queue first (in
    /// wake order), then the ones woken from other threads.
    pub(crate) fn drain_ready(&self, out: &mut Vec<TaskRef>) {
        let me = self.addr();
        context::with_core(|core| match core {
            AnyCore::CurrentThread(core) if core.owner == me => {
                out.extend(core.queue.drain(..));
                out.append(&mut core.deferred);
            }
            _ => {}
        });
        while let Some(task) = self.pop_inject() {
            out.push(task);
        }
    }

    /// The test toolkit: sleeps until a wake from another thread, at most
    /// `timeout`.
    pub(crate) fn park_timeout(&self, timeout: std::time::Duration) {
        self.parker.park(Some(timeout));
    }

    /// Shutdown, current-thread part: the queued tasks are dropped (the
    /// owned-task list has already cancelled them), and parks end at once.
    pub(crate) fn shutdown(&self) {
        if let Some(core) = self
            .core
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            core.queue.clear();
            core.deferred.clear();
        }
        super::drain(&self.inject);
        self.parker.close();
    }
}

/// Queues `task` on the local queue if this thread holds the core of the
/// scheduler whose `Shared` is at `owner`; gives it back otherwise.
pub(crate) fn push_local(owner: usize, task: TaskRef) -> Result<(), TaskRef> {
    let mut task = Some(task);
    context::with_core(|core| match core {
        // `push_back`, not `extend(task.take())`: extending from an
        // `Option` went through `VecDeque`'s generic `spec_extend`, about
        // 80 instructions per wake or spawn against a handful.
        AnyCore::CurrentThread(core) if core.owner == owner => {
            if let Some(task) = task.take() {
                core.queue.push_back(task);
            }
        }
        _ => {}
    });
    match task {
        None => Ok(()),
        Some(task) => Err(task),
    }
}

/// The `block_on` future's waker: marks it woken and unparks the thread,
/// whether it drives the tasks (sleeping on the shared parker) or waits
/// for the core (sleeping on its own).
struct MainWaker {
    woken: AtomicBool,
    shared: Arc<Shared>,
    own: Parker,
}

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Release);
        self.own.unpark();
        self.shared.unpark();
    }
}

/// Puts the core back into `Shared` when `block_on` returns or unwinds.
pub(crate) struct CoreGuard<'a> {
    shared: &'a Shared,
    previous: Option<AnyCore>,
}

impl Drop for CoreGuard<'_> {
    fn drop(&mut self) {
        let previous = self.previous.take().unwrap_or(AnyCore::None);
        if let AnyCore::CurrentThread(core) = context::set_core(previous) {
            *self
                .shared
                .core
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(core);
            // A `block_on` on another thread may be waiting to drive.
            for waiter in self.shared.waiters().iter() {
                waiter.own.unpark();
            }
        }
    }
}

/// Runs `future` to completion on this thread, running the runtime's tasks
/// while it waits.
pub(crate) fn block_on<F: Future>(shared: &Arc<Shared>, future: F) -> F::Output {
    let scheduler = Scheduler::CurrentThread(shared.clone());
    let _enter = context::enter(scheduler.clone());
    let mut future = pin!(future);
    let main = Arc::new(MainWaker {
        woken: AtomicBool::new(true),
        shared: shared.clone(),
        own: Parker::new(),
    });
    let waker = Waker::from(main.clone());
    let mut cx = Context::from_waker(&waker);
    // The future's sleeps go to this thread's slot (dumps read it there).
    let sleeps = shared.common.obs.block_ons.enter();

    let take_core = || {
        shared
            .core
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    };
    let core = match take_core() {
        Some(core) => core,
        None => {
            // Another thread drives the tasks: poll our own future until it
            // is done, or until the core is released and we drive instead.
            shared.waiters().push(main.clone());
            let _unregister = Unregister(shared, &main);
            loop {
                if main.woken.swap(false, AcqRel) {
                    if let Poll::Ready(out) = sleeps.poll(|| future.as_mut().poll(&mut cx)) {
                        return out;
                    }
                }
                if let Some(core) = take_core() {
                    main.woken.store(true, Release);
                    break core;
                }
                main.own.park(None);
            }
        }
    };
    let _guard = CoreGuard {
        shared,
        previous: Some(context::set_core(AnyCore::CurrentThread(core))),
    };
    let slot = shared.common.obs.slot(0);
    let interval = shared.common.config.event_interval;
    // Polls since the drivers were last checked: a `block_on` future that
    // wakes itself forever must not starve the timers and the reactor.
    let mut since_drivers = 0;
    let mut yield_check = crate::park::YieldCheck::new();
    loop {
        super::check_fatal_panic(&shared.common);
        // The `block_on` future woke itself in its poll (it yielded).
        let mut main_yielded = false;
        if main.woken.swap(false, AcqRel) {
            // Listed as this worker's poll (dumps, the stuck-worker
            // detector): it was shown idle while stuck in it.
            slot.turn();
            slot.begin(crate::task::Id::BLOCK_ON_FUTURE);
            let (poll, _) =
                waitq::coop::with_budget(BUDGET, || sleeps.poll(|| future.as_mut().poll(&mut cx)));
            slot.end();
            if let Poll::Ready(out) = poll {
                return out;
            }
            main_yielded = main.woken.load(std::sync::atomic::Ordering::Relaxed);
        }
        slot.turn();
        let mut ran = 0;
        // Polls of this turn already counted in `since_drivers`.
        let mut counted = 0;
        while ran < interval {
            match shared.next_task() {
                Next::Task(task) => {
                    let mut outcome = None;
                    if let Some(again) = run_outcome(task, Some(&slot), &mut outcome) {
                        match outcome {
                            Some(PollOutcome::Yielded) => shared.defer(again),
                            _ => shared.schedule(again),
                        }
                    }
                    ran += 1;
                }
                Next::OnlyYields => {
                    // The yields run again, after due timers and ready
                    // I/O (what those wake goes first).
                    if yield_check.before_yields(&shared.common) {
                        since_drivers = 0;
                        counted = ran;
                        // The dump dates a poll from its turn: a new one.
                        slot.turn();
                    }
                    shared.requeue_deferred();
                }
                Next::Empty => break,
            }
        }
        since_drivers += ran - counted + 1;
        shared.common.counters.add_polls(ran as usize);
        if ran == interval || main.woken.load(std::sync::atomic::Ordering::Acquire) {
            // Busy: check timers and I/O now and then, without sleeping.
            if since_drivers >= interval {
                since_drivers = 0;
                yield_check.checked(crate::park::poll_drivers(&shared.common));
            } else if main_yielded && yield_check.before_yields(&shared.common) {
                // A `block_on` future that yields in a loop of long polls
                // gets the tasks' check too (I/O waited 61 of its polls).
                since_drivers = 0;
            } else if let Some(time) = &shared.common.time {
                time.process();
            }
            // The yields go behind what the turn woke: a stream of wakes
            // holds them back for one turn at most.
            shared.requeue_deferred();
            continue;
        }
        since_drivers = 0;
        // Waiting for a blocking-pool job's result, most likely: spin for
        // the wake (a remote wake unparks this thread) before sleeping.
        shared
            .common
            .blocking
            .spin_for_result(|| shared.parker.is_notified());
        park(shared);
    }
}

/// Takes a waiting `block_on` off the list.
struct Unregister<'a>(&'a Shared, &'a Arc<MainWaker>);

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        self.0.waiters().retain(|w| !Arc::ptr_eq(w, self.1));
    }
}

/// Nothing to run: sleep until a wake, an I/O event or the next timer.
fn park(shared: &Shared) {
    shared
        .common
        .counters
        .parks
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // The only thread: it parks with nothing left to run.
    crate::park::park_driving(&shared.common, &shared.parker, || true);
}
