//! [`Receiver`]: looking, marking seen, waiting for a change in every form.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

use waitq::{Interrupted, Killed, TimedOut};

use super::error::RecvError;
use super::{Receiver, Ref, Shared, CLOSED, STEP};
use crate::sync::signals;

// ===== impl Receiver =====

impl<T> Receiver<T> {
    /// A read guard on the current value, *not* marked seen; its
    /// [`has_changed`](Ref::has_changed) says whether it is newer than what
    /// this receiver has seen.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = waitrt::sync::watch::channel(0);
    /// tx.send(1).unwrap();
    /// assert_eq!(*rx.borrow(), 1);
    /// assert!(rx.has_changed().unwrap()); // still unseen
    /// ```
    pub fn borrow(&self) -> Ref<'_, T> {
        let inner = self.shared.read();
        // Under the read lock: the version of exactly this value.
        let version = self.shared.state.load(SeqCst) & !CLOSED;
        Ref {
            inner,
            has_changed: version != self.version,
        }
    }

    /// A read guard on the current value, marked seen (the version is read
    /// under the same lock as the value, so what is marked seen is what is
    /// shown).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = waitrt::sync::watch::channel(0);
    /// tx.send(1).unwrap();
    /// assert_eq!(*rx.borrow_and_update(), 1);
    /// assert!(!rx.has_changed().unwrap());
    /// ```
    pub fn borrow_and_update(&mut self) -> Ref<'_, T> {
        self.shared.read_and_mark(&mut self.version)
    }

    /// Whether the value changed since this receiver last marked it seen.
    ///
    /// # Errors
    ///
    /// [`RecvError`] once every sender is gone (tokio's behaviour, even with
    /// a change unseen: [`changed`](Self::changed) still reports that one).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = waitrt::sync::watch::channel(0);
    /// assert_eq!(rx.has_changed(), Ok(false));
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.has_changed(), Ok(true));
    /// ```
    pub fn has_changed(&self) -> Result<bool, RecvError> {
        let state = self.shared.state.load(SeqCst);
        if state & CLOSED != 0 {
            return Err(RecvError(()));
        }
        Ok(state & !CLOSED != self.version)
    }

    /// Whether every sender is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = waitrt::sync::watch::channel(0);
    /// drop(tx);
    /// assert!(rx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.state.load(SeqCst) & CLOSED != 0
    }

    /// Makes the current value count as unseen: [`changed`](Self::changed)
    /// returns at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, mut rx) = waitrt::sync::watch::channel(0);
    /// rx.mark_changed();
    /// assert_eq!(rx.has_changed(), Ok(true));
    /// ```
    pub fn mark_changed(&mut self) {
        // Versions only grow, so one below the current is never current.
        self.version = self.version.wrapping_sub(STEP);
    }

    /// Marks the current value seen without looking at it.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = waitrt::sync::watch::channel(0);
    /// tx.send(1).unwrap();
    /// rx.mark_unchanged();
    /// assert_eq!(rx.has_changed(), Ok(false));
    /// ```
    pub fn mark_unchanged(&mut self) {
        self.version = self.shared.state.load(SeqCst) & !CLOSED;
    }

    /// Whether `other` watches the same channel.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = waitrt::sync::watch::channel(0);
    /// assert!(rx.same_channel(&rx.clone()));
    /// ```
    pub fn same_channel(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Waits until the value changes from what this receiver last marked
    /// seen (at once if it already has), then marks the new version seen.
    /// Look at the value with [`borrow_and_update`](Self::borrow_and_update)
    /// (or [`borrow`](Self::borrow)).
    ///
    /// # Errors
    ///
    /// [`RecvError`] when every sender is gone and there is no unseen change.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a change is marked seen only by the poll that returns
    /// it, so a dropped `changed` leaves it to the next call.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = waitrt::sync::watch::channel(0);
    ///     waitrt::spawn(async move { tx.send(1).unwrap() });
    ///     rx.changed().await.unwrap();
    ///     assert_eq!(*rx.borrow_and_update(), 1);
    ///     assert!(rx.changed().await.is_err()); // the sender is gone
    /// });
    /// ```
    #[track_caller]
    pub fn changed(&mut self) -> impl Future<Output = Result<(), RecvError>> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move { changed(&self.shared, &mut self.version, site).await }
    }

    /// Waits until the value satisfies `f` (checking the current value
    /// first), marks it seen and returns it, still locked.
    ///
    /// # Errors
    ///
    /// [`RecvError`] when every sender is gone and the last value does not
    /// satisfy `f`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping it loses nothing (versions it looked at are
    /// marked seen, as by `borrow_and_update`).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = waitrt::sync::watch::channel(0);
    ///     waitrt::spawn(async move {
    ///         for i in 1..=3 {
    ///             tx.send(i).unwrap();
    ///             waitrt::task::yield_now().await;
    ///         }
    ///     });
    ///     assert_eq!(*rx.wait_for(|v| *v == 3).await.unwrap(), 3);
    /// });
    /// ```
    #[track_caller]
    pub fn wait_for<F: FnMut(&T) -> bool>(
        &mut self,
        mut f: F,
    ) -> impl Future<Output = Result<Ref<'_, T>, RecvError>> + use<'_, T, F> {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let Receiver { shared, version } = self;
            let shared: &Shared<T> = shared;
            // The first look spends the unit of budget a completed wait
            // spends (as `broadcast::Receiver::recv` does), so a loop over
            // a value that already satisfies `f` still lets other tasks
            // run; a look that then waits refunds it (the wait spends its
            // own units).
            std::future::poll_fn(waitq::coop::poll_proceed).await;
            let mut first = true;
            let mut closed = false;
            loop {
                {
                    let value = shared.read_and_mark(version);
                    if (!closed || value.has_changed) && f(&value) {
                        return Ok(value);
                    }
                }
                if std::mem::take(&mut first) {
                    waitq::coop::refund();
                }
                if closed {
                    return Err(RecvError(()));
                }
                closed = changed(shared, version, site).await.is_err();
            }
        }
    }

    /// [`changed`](Self::changed) that the task's signals also end (kernel:
    /// `wait_event_interruptible()`); the signals are the calling task's,
    /// taken at the call. The outer result is the wait's, the inner one is
    /// what [`changed`](Self::changed) returns, so
    /// `changed_interruptible().await?` gives `changed`'s result.
    ///
    /// # Errors
    ///
    /// [`Interrupted`] on an interrupt or a kill with no change (a change
    /// not yet seen wins over a pending signal). Otherwise `Ok` of
    /// [`changed`](Self::changed)'s result: [`RecvError`] (every sender
    /// gone, nothing new to see) comes as the inner `Err`.
    ///
    /// # Cancel safety
    ///
    /// As [`changed`](Self::changed).
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::sync::{watch, Interrupted};
    ///
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = watch::channel(0);
    ///     let task = waitrt::spawn(async move {
    ///         let res = rx.changed_interruptible().await;
    ///         (res, rx)
    ///     });
    ///     waitrt::task::yield_now().await;
    ///     task.interrupt();
    ///     let (res, mut rx) = task.await.unwrap();
    ///     assert!(matches!(res, Err(Interrupted { .. })));
    ///     drop(tx);
    ///     assert!(matches!(rx.changed_interruptible().await, Ok(Err(_)))); // closed
    /// });
    /// ```
    #[track_caller]
    pub fn changed_interruptible(
        &mut self,
    ) -> impl Future<Output = Result<Result<(), RecvError>, Interrupted>> + Send + '_
    where
        T: Send + Sync,
    {
        let signals = signals::current();
        let site = Location::caller();
        async move {
            let Receiver { shared, version } = self;
            let shared: &Shared<T> = shared;
            let mut out = None;
            let waited = shared
                .queues
                .mine()
                .wait_event_interruptible(signals, || {
                    out = shared.poll_changed(version);
                    out.is_some()
                })
                .at(site)
                .await;
            finish(out, waited)
        }
    }

    /// [`changed`](Self::changed) that only a fatal signal also ends
    /// (kernel: `wait_event_killable()`). The outer result is the wait's,
    /// the inner one is what [`changed`](Self::changed) returns.
    ///
    /// # Errors
    ///
    /// [`Killed`] on a kill with no change (a change not yet seen wins over
    /// a pending kill). Otherwise `Ok` of [`changed`](Self::changed)'s
    /// result: [`RecvError`] comes as the inner `Err`.
    ///
    /// # Cancel safety
    ///
    /// As [`changed`](Self::changed).
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::sync::{watch, Killed};
    ///
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (_tx, mut rx) = watch::channel(0);
    ///     let task = waitrt::spawn(async move { rx.changed_killable().await });
    ///     waitrt::task::yield_now().await;
    ///     task.kill();
    ///     assert!(matches!(task.await.unwrap(), Err(Killed { .. })));
    /// });
    /// ```
    #[track_caller]
    pub fn changed_killable(
        &mut self,
    ) -> impl Future<Output = Result<Result<(), RecvError>, Killed>> + Send + '_
    where
        T: Send + Sync,
    {
        let signals = signals::current();
        let site = Location::caller();
        async move {
            let Receiver { shared, version } = self;
            let shared: &Shared<T> = shared;
            let mut out = None;
            let waited = shared
                .queues
                .mine()
                .wait_event_killable(signals, || {
                    out = shared.poll_changed(version);
                    out.is_some()
                })
                .at(site)
                .await;
            finish(out, waited)
        }
    }

    /// [`changed`](Self::changed) for at most `timeout` on the runtime's
    /// clock (kernel: `wait_event_timeout()`). The outer result is the
    /// wait's, the inner one is what [`changed`](Self::changed) returns.
    ///
    /// # Errors
    ///
    /// [`TimedOut`] when `timeout` passed with no change (a change there at
    /// the deadline wins). Otherwise `Ok` of [`changed`](Self::changed)'s
    /// result: [`RecvError`] comes as the inner `Err`.
    ///
    /// # Panics
    ///
    /// Outside a runtime with timers enabled.
    ///
    /// # Cancel safety
    ///
    /// As [`changed`](Self::changed).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = waitrt::Builder::new_current_thread().enable_time().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = waitrt::sync::watch::channel(0);
    ///     tx.send(1).unwrap();
    ///     assert_eq!(rx.changed_timeout(Duration::from_secs(1)).await, Ok(Ok(())));
    ///     assert!(rx.changed_timeout(Duration::from_millis(1)).await.is_err()); // no new change
    /// });
    /// ```
    #[track_caller]
    pub fn changed_timeout(
        &mut self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Result<(), RecvError>, TimedOut>> + Send + '_
    where
        T: Send + Sync,
    {
        let clock = crate::time::clock();
        let site = Location::caller();
        async move {
            let Receiver { shared, version } = self;
            let shared: &Shared<T> = shared;
            let mut out = None;
            let waited = shared
                .queues
                .mine()
                .wait_event_timeout(clock, timeout, || {
                    out = shared.poll_changed(version);
                    out.is_some()
                })
                .at(site)
                .await;
            finish(out, waited)
        }
    }

    /// [`changed`](Self::changed) from a plain thread: blocks it until the
    /// value changes (kernel: `wait_event()` in a kernel thread).
    ///
    /// # Errors
    ///
    /// As [`changed`](Self::changed).
    ///
    /// # Panics
    ///
    /// On a thread that drives a runtime's tasks (it would stall them).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = waitrt::sync::watch::channel(0);
    /// let reader = std::thread::spawn(move || {
    ///     rx.blocking_changed().unwrap();
    ///     *rx.borrow_and_update()
    /// });
    /// tx.send(1).unwrap();
    /// assert_eq!(reader.join().unwrap(), 1);
    /// ```
    #[track_caller]
    pub fn blocking_changed(&mut self) -> Result<(), RecvError> {
        assert!(
            !crate::context::is_driving(),
            "`blocking_changed` called on a thread that drives tasks: use `changed().await`"
        );
        let Receiver { shared, version } = self;
        let shared: &Shared<T> = shared;
        let mut out = None;
        let _ = shared.queues.mine().blocking_wait_event(|| {
            out = shared.poll_changed(version);
            out.is_some()
        });
        out.unwrap_or(Err(RecvError(())))
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.shared.receivers.fetch_add(1, SeqCst);
        Receiver {
            shared: self.shared.clone(),
            version: self.version,
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.shared.receivers.fetch_sub(1, SeqCst) == 1 {
            self.shared.rx_gone.wake_up_all();
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("watch::Receiver")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// `changed` on the parts of a receiver (so `wait_for` can keep its borrow
/// of the value's lock apart from the version it updates).
async fn changed<T>(
    shared: &Shared<T>,
    version: &mut u64,
    site: &'static Location<'static>,
) -> Result<(), RecvError> {
    // The channel never closes its queue: the wait ends on its condition.
    shared
        .queues
        .mine()
        .wait_event_value(|| shared.poll_changed(version))
        .at(site)
        .await
        .unwrap_or(Err(RecvError(())))
}

/// What a kernel-form wait leaves: `Ok` of the condition's last result, or
/// why the wait ended without one (a true condition always wins, so `out`
/// is `None` exactly when the wait failed).
fn finish<L, E>(
    out: Option<Result<(), RecvError>>,
    waited: Result<L, E>,
) -> Result<Result<(), RecvError>, E> {
    match (out, waited) {
        (Some(res), _) => Ok(res),
        (None, Err(err)) => Err(err),
        (None, Ok(_)) => unreachable!("a wait succeeded with its condition false"),
    }
}
