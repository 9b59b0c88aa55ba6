//! [`LocalSet`] and [`spawn_local`]: `!Send` futures on one thread.
//!
//! A local task lives in its set's slab (`Rc<RefCell<Slab>>`, touched only
//! on the set's thread). Only its `Header` is shared: its waker is an
//! `Arc<Header>`, so a wake from any thread pushes the header onto the
//! set's ready queue (a mutex-guarded `VecDeque`) and wakes every
//! `run_until` future that registered for work. Join handles sleep on the
//! header's join wait queue, which the task wakes (`wake_up_all`) when it
//! completes; the output passes through a mutex slot.
//!
//! Each `run_until` poll polls its own future, then at most
//! [`MAX_TASKS_PER_POLL`] ready local tasks (each with the runtime's
//! cooperative budget, panics caught), and yields back to its executor
//! (waking itself) when more are ready.

mod join;
mod task;

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll, Wake, Waker};

use pin_project_lite::pin_project;
use slab::Slab;

use self::task::{erase, Header, Ready, Run};
use super::error::JoinError;
use super::raw::BUDGET;
use super::Id;

pub use self::join::LocalJoinHandle;

/// Local tasks one `run_until` poll runs before it yields to its executor
/// (the current-thread scheduler's `event_interval`).
const MAX_TASKS_PER_POLL: usize = 61;

thread_local! {
    /// The set whose `run_until` is being polled on this thread.
    static CURRENT: RefCell<Option<Rc<Inner>>> = const { RefCell::new(None) };
}

/// Every set's ready queue (dropped sets' are dead), for dumps and the
/// hung-task detector: a local task is a task of the runtime whose task
/// (or `block_on`) drives its set.
static SETS: Mutex<Vec<Weak<Ready>>> = Mutex::new(Vec::new());

/// A local task as a dump or the hung-task detector sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalTask {
    pub(crate) id: Id,
    pub(crate) spawned_at: &'static Location<'static>,
    /// The task that polled its set's `run_until` last
    /// ([`Id::BLOCK_ON_FUTURE`]: a `block_on` future).
    pub(crate) driver: Id,
    /// Polls begun (wrapping).
    pub(crate) polls: u32,
    pub(crate) polling: bool,
    pub(crate) scheduled: bool,
    /// Its waker's data pointer (the timer wheel lists sleepers by it).
    pub(crate) waker_data: usize,
}

/// The unfinished local tasks of every set that the runtime `runtime`
/// (its `Common::id`) drove last.
pub(crate) fn live_tasks(runtime: u64) -> Vec<LocalTask> {
    let sets: Vec<Arc<Ready>> = SETS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    sets.iter().flat_map(|set| set.live_on(runtime)).collect()
}

/// Lists a new set's ready queue in [`SETS`], dropping dead entries when
/// the list would grow (amortised: the list at most doubles the live
/// sets).
fn list_set(ready: &Arc<Ready>) {
    let mut sets = SETS.lock().unwrap_or_else(PoisonError::into_inner);
    if sets.len() == sets.capacity() {
        sets.retain(|set| set.strong_count() > 0);
    }
    sets.push(Arc::downgrade(ready));
}

/// A set of `!Send` tasks that run on the thread that drives it, inside
/// [`run_until`](Self::run_until) (or [`block_on`](Self::block_on)).
///
/// Its tasks are listed in the task dumps ([`Handle::dump`](crate::Handle::dump))
/// of the runtime that drives it, each as itself, and the hung-task
/// detector watches them (see [`obs`](crate::obs)).
///
/// Tasks spawned before the set runs wait until it does. Dropping the set
/// drops every unfinished task; their handles resolve to a cancelled
/// [`JoinError`]. The set is current while it drops them, so a destructor
/// may call [`spawn_local`]: such tasks are dropped too, never run (after
/// a thousand rounds of destructors that spawn again, the tasks left are
/// leaked instead, so that the drop ends). Inside a local task, [`task::try_id`](super::try_id) and
/// [`task::signals`](super::signals) are those of the runtime task (or
/// `block_on`) that drives the set.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use waitrt::task::LocalSet;
///
/// let rt = waitrt::Builder::new_current_thread().build().unwrap();
/// let local = LocalSet::new();
/// let shared = Rc::new(String::from("not Send"));
/// let len = local.block_on(&rt, async move {
///     waitrt::task::spawn_local(async move { shared.len() }).await.unwrap()
/// });
/// assert_eq!(len, 8);
/// ```
pub struct LocalSet {
    inner: Rc<Inner>,
}

/// The thread-bound part of a set.
struct Inner {
    tasks: RefCell<Slab<Entry>>,
    ready: Arc<Ready>,
    /// Keys of finished tasks still listed live (unlisted at the end of
    /// the tick that finished them: `Ready::unlist`).
    ended: RefCell<Vec<usize>>,
}

/// One unfinished task. `run` is `None` while the task is being polled.
struct Entry {
    header: Arc<Header>,
    waker: Waker,
    run: Option<Box<dyn Run>>,
}

impl Inner {
    #[track_caller]
    fn spawn<F>(&self, future: F) -> LocalJoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let (run, slot) = erase(future);
        let mut tasks = self.tasks.borrow_mut();
        let vacant = tasks.vacant_entry();
        let header = Header::new(vacant.key(), self.ready.clone(), Location::caller());
        vacant.insert(Entry {
            header: header.clone(),
            waker: Waker::from(header.clone()),
            run: Some(run),
        });
        drop(tasks);
        self.ready.push_new(header.clone());
        LocalJoinHandle::new(header, slot)
    }

    /// Gives the emptied list back, to keep its room.
    fn keep_ended(&self, ended: Vec<usize>) {
        let mut cell = self.ended.borrow_mut();
        if cell.is_empty() {
            *cell = ended;
        }
    }

    /// Runs at most [`MAX_TASKS_PER_POLL`] ready tasks; true when more are
    /// ready.
    fn tick(&self) -> bool {
        let mut in_flight = Vec::new();
        for _ in 0..MAX_TASKS_PER_POLL {
            let Some(header) = self.ready.pop() else {
                break;
            };
            header.unschedule();
            self.run_one(header, &mut in_flight);
        }
        for header in in_flight {
            // Woken while a `run_until` further up the stack polls it.
            header.wake_by_ref();
        }
        if !self.ended.borrow().is_empty() {
            let mut ended = self.ended.take();
            self.ready.unlist(&mut ended);
            self.keep_ended(ended);
        }
        !self.ready.is_empty()
    }

    fn run_one(&self, header: Arc<Header>, in_flight: &mut Vec<Arc<Header>>) {
        let (mut run, waker) = {
            let mut tasks = self.tasks.borrow_mut();
            let Some(entry) = tasks
                .get_mut(header.key)
                .filter(|entry| Arc::ptr_eq(&entry.header, &header))
            else {
                return; // already complete
            };
            let Some(run) = entry.run.take() else {
                in_flight.push(header);
                return;
            };
            (run, entry.waker.clone())
        };
        if header.is_cancelled() {
            return self.finish(&header, run, Some(JoinError::cancelled(header.id)));
        }
        let mut cx = Context::from_waker(&waker);
        header.set_polling(true);
        let mut poll = || {
            catch_unwind(AssertUnwindSafe(|| {
                waitq::coop::with_budget(BUDGET, || run.poll_run(&mut cx)).0
            }))
        };
        let polled = match waitq::registry::is_recording() {
            // Its sleeps are listed as its own (not the driving task's).
            true => crate::context::poll_local_task(header.id, poll),
            false => poll(),
        };
        header.set_polling(false);
        match polled {
            Ok(Poll::Pending) if header.is_cancelled() => {
                self.finish(&header, run, Some(JoinError::cancelled(header.id)))
            }
            Ok(Poll::Pending) => {
                if let Some(entry) = self.tasks.borrow_mut().get_mut(header.key) {
                    entry.run = Some(run);
                }
            }
            Ok(Poll::Ready(())) => self.finish(&header, run, None),
            Err(panic) => self.finish(&header, run, Some(JoinError::panicked(header.id, panic))),
        }
    }

    /// Removes the task, drops its future, publishes its result.
    fn finish(&self, header: &Header, run: Box<dyn Run>, error: Option<JoinError>) {
        let entry = self.tasks.borrow_mut().try_remove(header.key);
        drop(entry);
        self.ended.borrow_mut().push(header.live_key());
        run.finish(header.id, error);
        header.complete();
    }
}

/// Makes a set this thread's current one until dropped.
struct Enter(Option<Rc<Inner>>);

fn enter(inner: Rc<Inner>) -> Enter {
    Enter(CURRENT.with(|current| current.replace(Some(inner))))
}

impl Drop for Enter {
    fn drop(&mut self) {
        let previous = self.0.take();
        let _ = CURRENT.try_with(|current| *current.borrow_mut() = previous);
    }
}

impl LocalSet {
    /// An empty set.
    ///
    /// # Examples
    ///
    /// ```
    /// let local = waitrt::task::LocalSet::new();
    /// assert!(local.is_empty());
    /// ```
    pub fn new() -> LocalSet {
        let ready = Ready::new();
        list_set(&ready);
        LocalSet {
            inner: Rc::new(Inner {
                tasks: RefCell::new(Slab::new()),
                ready,
                ended: RefCell::new(Vec::new()),
            }),
        }
    }

    /// Spawns a `!Send` future on this set; it runs while the set runs
    /// ([`run_until`](Self::run_until)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    ///
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// let local = waitrt::task::LocalSet::new();
    /// let hits = Rc::new(Cell::new(0));
    /// let task = local.spawn_local({
    ///     let hits = hits.clone();
    ///     async move { hits.set(hits.get() + 1) }
    /// });
    /// local.block_on(&rt, task).unwrap();
    /// assert_eq!(hits.get(), 1);
    /// ```
    #[track_caller]
    pub fn spawn_local<F>(&self, future: F) -> LocalJoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.inner.spawn(future)
    }

    /// Runs `future` on the current thread, running this set's tasks while
    /// it waits. Works under any executor: inside
    /// [`Runtime::block_on`](crate::Runtime::block_on) on either scheduler,
    /// inside a local task, or on `futures::executor::block_on`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_multi_thread().worker_threads(1).build().unwrap();
    /// let local = waitrt::task::LocalSet::new();
    /// let out = rt.block_on(local.run_until(async {
    ///     waitrt::task::spawn_local(async { 7 }).await.unwrap()
    /// }));
    /// assert_eq!(out, 7);
    /// ```
    pub fn run_until<F: Future>(&self, future: F) -> RunUntil<'_, F> {
        RunUntil { set: self, future }
    }

    /// `rt.block_on(self.run_until(future))`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// let local = waitrt::task::LocalSet::new();
    /// assert_eq!(local.block_on(&rt, async { 1 + 1 }), 2);
    /// ```
    pub fn block_on<F: Future>(&self, rt: &crate::Runtime, future: F) -> F::Output {
        rt.block_on(self.run_until(future))
    }

    /// The number of unfinished tasks.
    ///
    /// # Examples
    ///
    /// ```
    /// let local = waitrt::task::LocalSet::new();
    /// let _task = local.spawn_local(async {});
    /// assert_eq!(local.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.tasks.borrow().len()
    }

    /// Whether every task has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// let local = waitrt::task::LocalSet::new();
    /// let task = local.spawn_local(async {});
    /// futures::executor::block_on(local.run_until(task)).unwrap();
    /// assert!(local.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl LocalSet {
    /// Makes `cx`'s waker the one this set's wakes go to (before a tick:
    /// a wake after it finds this waker) and the set this thread's current
    /// one until the returned guard drops: a turn of [`RunUntil`] or of the
    /// set as a future.
    fn drive(&self, cx: &Context<'_>) -> Enter {
        self.inner
            .ready
            .register(cx.waker(), crate::context::local_set_driver());
        enter(self.inner.clone())
    }
}

impl Default for LocalSet {
    fn default() -> Self {
        LocalSet::new()
    }
}

/// Rounds of tasks spawned by destructors a dropping set drops (later
/// ones are forsaken: see `LocalSet`'s `Drop`).
const SPAWNING_DROP_ROUNDS: usize = 1_000;

impl Drop for LocalSet {
    fn drop(&mut self) {
        self.inner.ready.close();
        // The tasks' futures are dropped with the set current, as they ran:
        // a destructor that calls `spawn_local` gets a task (dropped below
        // with the rest, never run: tokio's behaviour) where it panicked
        // and skipped the rest of its cleanup (an independent probe). Not
        // while the thread's locals are being torn down.
        let _enter = CURRENT
            .try_with(|current| Enter(current.replace(Some(self.inner.clone()))))
            .ok();
        // Futures are dropped outside the slab borrow; loop for the tasks
        // spawned meanwhile (by the destructors above). A destructor that
        // spawns a task like itself each time (a supervisor restarting on
        // drop) would never let the drop end: after a thousand rounds (a
        // finite chain of cleanups is dropped whole, as tokio's) the tasks
        // left are forsaken, their futures leaked rather than dropped (so
        // no destructor spawns again), their handles told "cancelled"
        // (tokio overflows its stack there; refusing the spawn instead
        // recursed the same way, as the refused future's destructor spawned
        // again).
        for round in 0.. {
            let tasks = std::mem::take(&mut *self.inner.tasks.borrow_mut());
            if tasks.is_empty() {
                break;
            }
            for (_, entry) in tasks {
                let header = entry.header;
                if let Some(run) = entry.run {
                    let error = JoinError::cancelled(header.id);
                    match round < SPAWNING_DROP_ROUNDS {
                        true => run.finish(header.id, Some(error)),
                        false => run.forsake(error),
                    }
                }
                header.complete();
            }
        }
    }
}

impl fmt::Debug for LocalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSet")
            .field("len", &self.inner.tasks.try_borrow().map(|t| t.len()).ok())
            .finish()
    }
}

pin_project! {
    /// Made by [`LocalSet::run_until`]: polls its future, then up to 61
    /// ready local tasks, per poll.
    ///
    /// # Examples
    ///
    /// ```
    /// let local = waitrt::task::LocalSet::new();
    /// let run: waitrt::task::RunUntil<'_, _> = local.run_until(async { 3 });
    /// assert_eq!(waitrt::block_on(run), 3);
    /// ```
    #[must_use = "futures do nothing unless awaited"]
    pub struct RunUntil<'a, F> {
        set: &'a LocalSet,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for RunUntil<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _enter = this.set.drive(cx);
        if let Poll::Ready(out) = this.future.poll(cx) {
            return Poll::Ready(out);
        }
        if this.set.inner.tick() {
            // More ready than one turn's share: let the executor run others.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

/// Runs the set until every task on it has finished (tokio's
/// `local.await`): tasks spawned meanwhile, by the set's tasks or from
/// their destructors, are waited for too. Awaiting the set by value drops
/// it once it is empty; `&mut local` can be awaited to keep it.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// let rt = waitrt::Builder::new_current_thread().enable_time().build().unwrap();
/// let local = waitrt::task::LocalSet::new();
/// let done = Rc::new(Cell::new(0));
/// for i in 0..3 {
///     let done = done.clone();
///     local.spawn_local(async move {
///         waitrt::time::sleep(std::time::Duration::from_millis(i)).await;
///         done.set(done.get() + 1);
///     });
/// }
/// rt.block_on(local);
/// assert_eq!(done.get(), 3);
/// ```
impl Future for LocalSet {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let more = {
            let _enter = self.drive(cx);
            self.inner.tick()
        };
        if self.is_empty() {
            return Poll::Ready(());
        }
        if more {
            // More ready than one turn's share: let the executor run others.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl<F> fmt::Debug for RunUntil<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunUntil").field("set", self.set).finish()
    }
}

/// Spawns a `!Send` future on the [`LocalSet`] that is running on this
/// thread.
///
/// # Panics
///
/// Outside [`LocalSet::run_until`] (and its local tasks).
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
///
/// let local = waitrt::task::LocalSet::new();
/// let n = waitrt::block_on(local.run_until(async {
///     let rc = Rc::new(5);
///     waitrt::task::spawn_local(async move { *rc * 2 }).await.unwrap()
/// }));
/// assert_eq!(n, 10);
/// ```
#[track_caller]
pub fn spawn_local<F>(future: F) -> LocalJoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let current = CURRENT
        .try_with(|current| current.borrow().clone())
        .ok()
        .flatten();
    match current {
        Some(inner) => inner.spawn(future),
        None => panic!(
            "`spawn_local` called from outside of a `task::LocalSet`: call it from inside \
             `LocalSet::run_until`, `LocalSet::block_on`, or a local task"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::LocalSet;

    /// Finished tasks leave the list that dumps read at the end of the
    /// poll that finished them, not at the set's next spawn: a set that
    /// ran a burst and idles keeps none of it (an independent review:
    /// 1,000,000 finished tasks kept 345 MB until the next spawn).
    #[test]
    fn finished_tasks_are_unlisted_without_another_spawn() {
        let local = LocalSet::new();
        let handles: Vec<_> = (0..100u32)
            .map(|i| local.spawn_local(async move { i }))
            .collect();
        assert_eq!(local.inner.ready.live_len(), 100);
        let sum = futures::executor::block_on(local.run_until(async {
            let mut sum = 0;
            for handle in handles {
                sum += handle.await.unwrap();
            }
            sum
        }));
        assert_eq!(sum, (0..100).sum::<u32>());
        assert_eq!(local.inner.ready.live_len(), 0);
    }
}
