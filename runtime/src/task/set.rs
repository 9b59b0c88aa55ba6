//! [`JoinSet`]: a group of tasks that is aborted when dropped.

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{AbortHandle, JoinError, JoinHandle};

/// A group of spawned tasks: await them in completion order with
/// [`join_next`](Self::join_next); dropping the set aborts every task
/// still in it (structured concurrency: nothing outlives its owner).
///
/// `join_next` polls each member's handle, so one call costs O(members);
/// fine for the tens-to-thousands of tasks a group usually holds.
///
/// # Examples
///
/// ```
/// let rt = runtime::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {
///     let mut set = runtime::task::JoinSet::new();
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
    tasks: Vec<JoinHandle<T>>,
}

impl<T> JoinSet<T> {
    /// An empty set.
    pub fn new() -> Self {
        JoinSet { tasks: Vec::new() }
    }

    /// Tasks in the set (finished ones count until joined).
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the set holds no task.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Aborts every task in the set; they stay in it until joined.
    pub fn abort_all(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }

    /// Removes every task from the set without aborting them.
    pub fn detach_all(&mut self) {
        self.tasks.clear();
    }

    /// Polls for the next finished task; `Ready(None)` when the set is empty.
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        if self.tasks.is_empty() {
            return Poll::Ready(None);
        }
        for index in 0..self.tasks.len() {
            if let Poll::Ready(out) = Pin::new(&mut self.tasks[index]).poll(cx) {
                drop(self.tasks.swap_remove(index));
                return Poll::Ready(Some(out));
            }
        }
        Poll::Pending
    }

    /// Waits for the next task to finish; `None` when the set is empty.
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// Aborts every task and waits until all of them have ended.
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
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
        let handle = super::spawn(future);
        let abort = handle.abort_handle();
        self.tasks.push(handle);
        abort
    }

    /// Runs `f` on the blocking pool as a member of the set.
    #[track_caller]
    pub fn spawn_blocking<F>(&mut self, f: F) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
    {
        let handle = super::spawn_blocking(f);
        let abort = handle.abort_handle();
        self.tasks.push(handle);
        abort
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
