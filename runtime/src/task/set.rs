//! [`JoinSet`]: a group of tasks that is aborted when dropped.

use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering::AcqRel, Ordering::Release};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use slab::Slab;

use super::{AbortHandle, JoinError, JoinHandle};

/// A group of spawned tasks: await them in completion order with
/// [`join_next`](Self::join_next); dropping the set aborts every task
/// still in it (structured concurrency: nothing outlives its owner).
///
/// Each member's handle is polled with a waker of its own that puts the
/// member on a ready list, so `join_next` polls only members that were
/// woken: O(1) per joined task however large the set.
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

/// The members woken since the set last looked, and the set's own waker.
#[derive(Default)]
struct ReadyList {
    inner: Mutex<ReadyInner>,
}

#[derive(Default)]
struct ReadyInner {
    keys: VecDeque<usize>,
    waker: Option<Waker>,
}

impl ReadyList {
    fn push(&self, key: usize) {
        let waker = {
            let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            inner.keys.push_back(key);
            inner.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The next woken member, or `None` after storing `cx`'s waker.
    fn pop_or_register(&self, cx: &Context<'_>) -> Option<usize> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let key = inner.keys.pop_front();
        if key.is_none() {
            match &mut inner.waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
        }
        key
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
        let mut inner = self
            .ready
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        inner.keys.clear();
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
        self.poll_join_next_at(cx, Location::caller())
    }

    /// [`poll_join_next`](Self::poll_join_next), listing a member's wait
    /// at `site`.
    fn poll_join_next_at(
        &mut self,
        cx: &mut Context<'_>,
        site: &'static Location<'static>,
    ) -> Poll<Option<Result<T, JoinError>>> {
        if self.members.is_empty() {
            return Poll::Ready(None);
        }
        while let Some(key) = self.ready.pop_or_register(cx) {
            // A key of a member joined or detached meanwhile is skipped; if
            // its slot was reused, the new member just gets an extra poll.
            let Some(member) = self.members.get_mut(key) else {
                continue;
            };
            member.waker.queued.store(false, Release);
            let waker = Waker::from(member.waker.clone());
            let mut member_cx = Context::from_waker(&waker);
            if let Poll::Ready(out) = member.handle.poll_at(&mut member_cx, site) {
                drop(self.members.remove(key));
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
        Poll::Pending
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
        let once =
            waitq::coop::unconstrained(poll_fn(|cx| Poll::Ready(self.poll_join_next_at(cx, site))));
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
        poll_fn(move |cx| self.poll_join_next_at(cx, site))
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
            while poll_fn(|cx| self.poll_join_next_at(cx, site))
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
            while let Some(res) = poll_fn(|cx| self.poll_join_next_at(cx, site)).await {
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
        self.abort_all();
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet").field("len", &self.len()).finish()
    }
}
