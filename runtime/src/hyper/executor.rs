//! [`RuntimeExecutor`]: hyper's `Executor` on this runtime.

use std::future::Future;

/// Spawns the tasks hyper asks for (HTTP/2 streams, client connection
/// background work) on the current runtime with [`crate::spawn`]. The
/// counterpart of hyper-util's `TokioExecutor`.
///
/// The join handle is dropped: the task runs detached, and hyper learns of
/// its end through its own channels.
///
/// # Panics
///
/// `execute` panics outside a runtime, as [`crate::spawn`] does. hyper calls
/// it from the connection future, which runs on the runtime.
///
/// # Examples
///
/// ```
/// use hyper::rt::Executor;
/// use waitrt::hyper::RuntimeExecutor;
///
/// waitrt::Runtime::new().unwrap().block_on(async {
///     let (tx, rx) = waitrt::sync::oneshot::channel();
///     RuntimeExecutor::new().execute(async move { tx.send(7).unwrap() });
///     assert_eq!(rx.await.unwrap(), 7);
/// });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RuntimeExecutor {
    _private: (),
}

impl RuntimeExecutor {
    /// An executor that spawns on the runtime it is called from.
    pub fn new() -> RuntimeExecutor {
        RuntimeExecutor { _private: () }
    }
}

impl<F> hyper::rt::Executor<F> for RuntimeExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    #[track_caller]
    fn execute(&self, future: F) {
        drop(crate::spawn(future));
    }
}
