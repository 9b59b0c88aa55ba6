//! [`JoinSet`]: a group of tasks that is aborted when dropped.

use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering::AcqRel, Ordering::Release};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use waitq::RcuWait;

use slab::Slab;

use super::{AbortHandle, JoinError, JoinHandle};

/// A group of spawned tasks: await them in completion order with
/// [`join_next`](Self::join_next); dropping the set aborts every task
/// still in it (structured concurrency: nothing outlives its owner).
///
/// Each member's handle is polled with a waker of its own that puts the
/// member on a ready list, so `join_next` polls only members that were
/// woken: O(1) per joined task however large the set. A task waiting in
/// `join_next` sleeps on the set (a dump lists it on the queue `join_set`,
/// at the `join_next` call), not on each member (the kernel's epoll: the
/// members' wait entries are callbacks, the task sleeps on the epoll's
/// own queue).
///
/// # Examples
///
/// ```
/// let rt = waitrt::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {
///     let mut set = waitrt::task::JoinSet::new();
///     for i in 0..3u32 {
///         set.spawn(async move { i * 10 });
///     }
///     let mut total = 0;
///     while let Some(out) = set.join_next().await {
///         total += out.unwrap();
///     }
///     assert_eq!(total, 30);
/// });
/// ```
pub struct JoinSet<T> {
    members: Slab<Member<T>>,
    ready: Arc<ReadyList>,
}

struct Member<T> {
    handle: JoinHandle<T>,
    waker: Arc<MemberWaker>,
}

/// The members woken since the set last looked, and the wait of the task
/// that joins (one at a time: `join_next` takes `&mut self`).
struct ReadyList {
    keys: Mutex<VecDeque<usize>>,
    wait: RcuWait,
}

impl Default for ReadyList {
    fn default() -> Self {
        ReadyList {
            keys: Mutex::default(),
            wait: RcuWait::named("join_set"),
        }
    }
}

impl ReadyList {
    fn keys(&self) -> std::sync::MutexGuard<'_, VecDeque<usize>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, key: usize) {
        self.keys().push_back(key);
        self.wait.wake_up();
    }

    fn pop(&self) -> Option<usize> {
        self.keys().pop_front()
    }
}

/// One member's waker: queues the member once per wake.
struct MemberWaker {
    key: usize,
    queued: AtomicBool,
    ready: Arc<ReadyList>,
}

impl Wake for MemberWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, AcqRel) {
            self.ready.push(self.key);
        }
    }
}

impl<T> JoinSet<T> {
    /// An empty set.
    pub fn new() -> Self {
        JoinSet {
            members: Slab::new(),
            ready: Arc::default(),
        }
    }

    /// Tasks in the set (finished ones count until joined).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the set holds no task.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Aborts every task in the set; they stay in it until joined.
    pub fn abort_all(&self) {
        for (_, member) in &self.members {
            member.handle.abort();
        }
    }

    /// Removes every task from the set without aborting them.
    pub fn detach_all(&mut self) {
        self.members.clear();
        self.ready.keys().clear();
    }

    fn insert(&mut self, handle: JoinHandle<T>) -> AbortHandle {
        let abort = handle.abort_handle();
        let entry = self.members.vacant_entry();
        let key = entry.key();
        let waker = Arc::new(MemberWaker {
            key,
            queued: AtomicBool::new(false),
            ready: self.ready.clone(),
        });
        // Queued at once: its first poll registers the member's waker.
        waker.wake_by_ref();
        entry.insert(Member { handle, waker });
        abort
    }

    /// Polls for the next finished task; `Ready(None)` when the set is empty.
    #[track_caller]
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        self.poll_join_next_at(cx, Location::caller(), true)
    }

    /// [`poll_join_next`](Self::poll_join_next), listing the task's wait
    /// on the set at `site`; with `sleep` false (`try_join_next`), it does
    /// not wait: `Pending` when no woken member has finished.
    fn poll_join_next_at(
        &mut self,
        cx: &mut Context<'_>,
        site: &'static Location<'static>,
        sleep: bool,
    ) -> Poll<Option<Result<T, JoinError>>> {
        if self.members.is_empty() {
            self.ready.wait.finish_wait();
            return Poll::Ready(None);
        }
        loop {
            let Some(key) = self.ready.pop() else {
                if !sleep {
                    return Poll::Pending;
                }
                // Nothing woken: sleep on the set until a member is (its
                // waker pushes, then wakes; the wait re-checks after it
                // registers, so no push is missed).
                let ready = &self.ready;
                match ready
                    .wait
                    .poll_wait_event_at(cx, site, || !ready.keys().is_empty())
                {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(_) => continue,
                }
            };
            // A key of a member joined or detached meanwhile is skipped; if
            // its slot was reused, the new member just gets an extra poll.
            let Some(member) = self.members.get_mut(key) else {
                continue;
            };
            member.waker.queued.store(false, Release);
            let waker = Waker::from(member.waker.clone());
            let mut member_cx = Context::from_waker(&waker);
            // The member's join wait is the set's, not the task's sleep:
            // not listed (the task's sleep is the set's wait above).
            let poll = waitq::registry::unlisted(|| member.handle.poll_at(&mut member_cx, site));
            if let Poll::Ready(out) = poll {
                drop(self.members.remove(key));
                self.ready.wait.finish_wait();
                return Poll::Ready(Some(out));
            }
            if !waitq::coop::has_budget_remaining() {
                // The handle yielded for the budget (and its own waker
                // queued it again): yield too, or this loop would pop it
                // forever.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }

    /// The output of a task that has finished, if one has; `None` when
    /// none has yet (or the set is empty). Never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::block_on(async {
    ///     let mut set = waitrt::task::JoinSet::new();
    ///     assert!(set.try_join_next().is_none()); // empty
    ///     let (tx, rx) = waitrt::sync::oneshot::channel::<()>();
    ///     set.spawn(async move { rx.await.is_ok() });
    ///     assert!(set.try_join_next().is_none()); // not finished
    ///     tx.send(()).unwrap();
    ///     let done = loop {
    ///         match set.try_join_next() {
    ///             Some(done) => break done,
    ///             None => waitrt::task::yield_now().await,
    ///         }
    ///     };
    ///     assert!(done.unwrap());
    /// });
    /// ```
    #[track_caller]
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        let site = Location::caller();
        // Outside the task's cooperative budget (as tokio's): a task that
        // spent it would see every member `Pending` and be told "none
        // finished" with one waiting.
        let once = waitq::coop::unconstrained(poll_fn(|cx| {
            Poll::Ready(self.poll_join_next_at(cx, site, false))
        }));
        let mut cx = Context::from_waker(Waker::noop());
        match std::pin::pin!(once).poll(&mut cx) {
            Poll::Ready(Poll::Ready(next)) => next,
            Poll::Ready(Poll::Pending) | Poll::Pending => None,
        }
    }

    /// Waits for the next task to finish; `None` when the set is empty.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe (as tokio's): a dropped `join_next` takes no output; a
    /// task that finished meanwhile is returned by the next call.
    #[track_caller]
    pub fn join_next(&mut self) -> impl Future<Output = Option<Result<T, JoinError>>> + '_ {
        // The members' waits are listed at our caller's site.
        let site = Location::caller();
        // Dropped while it waits, it takes its wait on the set back (the
        // task's waker, and the listed sleep).
        let unwait = Unwait(self.ready.clone());
        poll_fn(move |cx| {
            let _ = &unwait;
            self.poll_join_next_at(cx, site, true)
        })
    }

    /// Aborts every task and waits until all of them have ended.
    ///
    /// # Cancel safety
    ///
    /// Dropping it part way leaves every task aborted and the ones not yet
    /// joined in the set (the next `join_next` or the set's drop ends them).
    #[track_caller]
    pub fn shutdown(&mut self) -> impl Future<Output = ()> + '_ {
        let site = Location::caller();
        async move {
            self.abort_all();
            let _unwait = Unwait(self.ready.clone());
            while poll_fn(|cx| self.poll_join_next_at(cx, site, true))
                .await
                .is_some()
            {}
        }
    }
}

impl<T: Send + 'static> JoinSet<T> {
    /// Spawns `future` on the current runtime into the set.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub fn spawn<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.insert(super::spawn(future))
    }

    /// Runs `f` on the blocking pool as a member of the set.
    #[track_caller]
    pub fn spawn_blocking<F>(&mut self, f: F) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
    {
        self.insert(super::spawn_blocking(f))
    }

    /// Spawns `future` on `handle`'s runtime into the set (from anywhere,
    /// as [`Handle::spawn`](crate::Handle::spawn)).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Runtime::new().unwrap();
    /// let mut set = waitrt::task::JoinSet::new();
    /// set.spawn_on(async { 1 }, rt.handle());
    /// assert_eq!(rt.block_on(set.join_next()).unwrap().unwrap(), 1);
    /// ```
    #[track_caller]
    pub fn spawn_on<F>(&mut self, future: F, handle: &crate::Handle) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.insert(handle.spawn(future))
    }

    /// Runs `f` on `handle`'s blocking pool as a member of the set.
    #[track_caller]
    pub fn spawn_blocking_on<F>(&mut self, f: F, handle: &crate::Handle) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
    {
        self.insert(handle.spawn_blocking(f))
    }

    /// Waits for every task and returns their outputs, in the order they
    /// finished.
    ///
    /// # Panics
    ///
    /// If a task panicked (with its payload) or was cancelled; the tasks
    /// still in the set are aborted (the set is dropped), as tokio's.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the set: its tasks are aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::block_on(async {
    ///     let mut set = waitrt::task::JoinSet::new();
    ///     for i in 0..3 {
    ///         set.spawn(async move { i });
    ///     }
    ///     let mut all = set.join_all().await;
    ///     all.sort();
    ///     assert_eq!(all, [0, 1, 2]);
    /// });
    /// ```
    #[track_caller]
    pub fn join_all(mut self) -> impl Future<Output = Vec<T>> {
        let site = Location::caller();
        async move {
            let mut out = Vec::with_capacity(self.len());
            while let Some(res) = poll_fn(|cx| self.poll_join_next_at(cx, site, true)).await {
                match res {
                    Ok(value) => out.push(value),
                    Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                    Err(err) => panic!("a task of `JoinSet::join_all` did not finish: {err}"),
                }
            }
            out
        }
    }
}

impl<T> Default for JoinSet<T> {
    fn default() -> Self {
        JoinSet::new()
    }
}

impl<T> Drop for JoinSet<T> {
    fn drop(&mut self) {
        self.ready.wait.finish_wait();
        self.abort_all();
    }
}

/// Takes the joining task's wait on the set back when a `join_next` (or
/// `shutdown`) future is dropped part way: its waker must not stay stored,
/// nor its sleep listed, once it no longer waits.
struct Unwait(Arc<ReadyList>);

impl Drop for Unwait {
    fn drop(&mut self) {
        self.0.wait.finish_wait();
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet").field("len", &self.len()).finish()
    }
}
