//! [`Builder`]: spawn a task with a name, for task dumps and detectors.

use std::future::Future;
use std::panic::Location;
use std::sync::Arc;

use super::JoinHandle;
use crate::Handle;

/// Spawns a task with a name, which [`Handle::dump`], the hung-task and
/// stuck-worker reports print beside its id and spawn site.
///
/// # Examples
///
/// ```
/// let rt = waitrt::Runtime::new().unwrap();
/// rt.block_on(async {
///     let daemon = waitrt::task::Builder::new().name("smbiod").spawn(async { 7 });
///     assert_eq!(daemon.await.unwrap(), 7);
/// });
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<Arc<str>>,
}

impl Builder {
    /// A builder with no name.
    ///
    /// # Examples
    ///
    /// ```
    /// let _ = waitrt::task::Builder::new();
    /// ```
    pub fn new() -> Builder {
        Builder { name: None }
    }

    /// Names the task.
    ///
    /// # Examples
    ///
    /// ```
    /// let _ = waitrt::task::Builder::new().name("reader");
    /// ```
    pub fn name(mut self, name: &str) -> Builder {
        self.name = Some(Arc::from(name));
        self
    }

    /// Spawns `future` on the current runtime, as [`spawn`](super::spawn).
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    ///
    /// # Examples
    ///
    /// See [`Builder`].
    #[track_caller]
    pub fn spawn<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_on(future, &Handle::current())
    }

    /// Spawns `future` on `handle`'s runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Runtime::new().unwrap();
    /// let task = waitrt::task::Builder::new().name("one").spawn_on(async { 1 }, rt.handle());
    /// assert_eq!(rt.block_on(task).unwrap(), 1);
    /// ```
    #[track_caller]
    pub fn spawn_on<F>(self, future: F, handle: &Handle) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let site = Location::caller();
        match handle.scheduler.spawn_cell(future, site, self.name) {
            // Built where it is returned (see `Scheduler::spawn_cell`).
            Ok(cell) | Err(cell) => JoinHandle::new(cell),
        }
    }

    /// Runs `f` on the blocking pool of the current runtime, as
    /// [`spawn_blocking`](super::spawn_blocking).
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let job = waitrt::task::Builder::new().name("fsync").spawn_blocking(|| 3);
    ///     assert_eq!(job.await.unwrap(), 3);
    /// });
    /// ```
    #[track_caller]
    pub fn spawn_blocking<F, R>(self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let site = Location::caller();
        Handle::current().spawn_blocking_named(f, site, self.name)
    }
}
