//! Hand-written wait loops: `prepare_to_wait` / wait / `finish_wait`.
//!
//! For loops the `wait_event*` family does not fit, exactly as in the
//! kernel: link the entry, test, sleep, and unlink when done.
//!
//! ```text
//! kernel                                   waitq
//! DEFINE_WAIT(wait);                       let mut entry = WaitEntry::new(&queue);
//! for (;;) {                               loop {
//!   prepare_to_wait(&wq, &wait, state);      queue.prepare_to_wait(&mut entry, state);
//!   if (cond) break;                         if cond() { break; }
//!   schedule();                              entry.wait().await?;
//! }                                        }
//! finish_wait(&wq, &wait);                 queue.finish_wait(&mut entry);
//! ```

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures_core::FusedFuture;

use crate::coop;
use crate::entry::{Entry, Notifier, TaskState, WakeDecision, WakeFn, WakeFunction, WakeInfo};
use crate::error::{Closed, Reason};
use crate::hook::{self, PointKind};
use crate::list::{Class, Handle};
use crate::queue::Registration;
use crate::registry::{self, WaitApi, WaitKind};
use crate::WaitQueue;

/// A wait-queue entry for a hand-written wait loop.
///
/// Kernel: `struct wait_queue_entry` as made by `DEFINE_WAIT()`, or by
/// `DEFINE_WAIT_FUNC()` with [`with_func`](Self::with_func). Dropping it is
/// [`finish_wait`](WaitQueue::finish_wait).
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use waitq::{TaskState, WaitEntry, WaitQueue};
///
/// let queue = WaitQueue::new();
/// let ready = AtomicBool::new(false);
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         ready.store(true, Ordering::SeqCst);
///         queue.wake_up();
///     });
///     futures::executor::block_on(async {
///         let mut entry = WaitEntry::new(&queue);
///         loop {
///             queue.prepare_to_wait(&mut entry, TaskState::Uninterruptible);
///             if ready.load(Ordering::SeqCst) {
///                 break;
///             }
///             entry.wait().await.unwrap();
///         }
///         queue.finish_wait(&mut entry);
///     });
/// });
/// ```
pub struct WaitEntry<'a> {
    queue: &'a WaitQueue,
    handle: Option<Handle>,
    func: Option<WakeFn>,
    /// The last `prepare_to_wait*` caller (for the test toolkit's reports).
    site: &'static Location<'static>,
    exclusive: bool,
    state: TaskState,
    /// The waker the next link hands its entry (see [`WaitEntry::set_waker`]).
    waker: Option<Waker>,
    /// Whether the linked entry holds a waker: without one, the first
    /// `wait()` poll installs it in one queue-lock hold.
    linked_with_waker: bool,
    /// Whether the current entry (`handle`) is listed in the wait registry
    /// (found again by its handle: the entry stays the size it was).
    recorded: bool,
}

/// Future returned by [`WaitEntry::wait`]: the `schedule()` of a
/// hand-written loop. Resolves once the entry has been woken (unlinked).
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct Wait<'e, 'a> {
    entry: &'e mut WaitEntry<'a>,
    done: bool,
}

// ===== impl WaitEntry =====

impl<'a> WaitEntry<'a> {
    /// An unlinked entry for `queue`. Kernel: `DEFINE_WAIT()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = waitq::WaitQueue::new();
    /// let entry = waitq::WaitEntry::new(&queue);
    /// assert!(!entry.is_queued());
    /// ```
    #[track_caller]
    pub fn new(queue: &'a WaitQueue) -> Self {
        WaitEntry {
            queue,
            handle: None,
            func: None,
            site: Location::caller(),
            exclusive: false,
            state: TaskState::Uninterruptible,
            waker: None,
            linked_with_waker: false,
            recorded: false,
        }
    }

    /// An entry whose wake decision is `func` instead of the mode and key
    /// match. `func` runs under the queue lock, once per wake walk that
    /// reaches the entry, and must not touch the queue.
    ///
    /// Kernel: `DEFINE_WAIT_FUNC()` / `init_waitqueue_func_entry()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitq::{TaskState, WaitEntry, WaitQueue, WakeDecision};
    ///
    /// let queue = WaitQueue::new();
    /// // Only wakes carrying poll bit 4 may wake this entry.
    /// let mut entry = WaitEntry::with_func(&queue, |info| {
    ///     if info.key() & 4 != 0 { WakeDecision::Wake } else { WakeDecision::Skip }
    /// });
    /// queue.prepare_to_wait(&mut entry, TaskState::Uninterruptible);
    /// assert_eq!(queue.wake_up(), 0);
    /// assert_eq!(queue.wake_up_poll(4), 1);
    /// ```
    #[track_caller]
    pub fn with_func<F>(queue: &'a WaitQueue, func: F) -> Self
    where
        F: Fn(&WakeInfo) -> WakeDecision + Send + Sync + 'static,
    {
        WaitEntry {
            queue,
            handle: None,
            func: Some(Arc::new(func)),
            site: Location::caller(),
            exclusive: false,
            state: TaskState::Uninterruptible,
            waker: None,
            linked_with_waker: false,
            recorded: false,
        }
    }

    /// An entry whose wake decision is `func`, shared through the `Arc` the
    /// caller already holds: a waiter that keeps its own state in the type
    /// implementing [`WakeFunction`] makes one allocation per wait instead
    /// of two. `func` runs under the queue lock, once per wake walk that
    /// reaches the entry, and must not touch the queue.
    ///
    /// Kernel: `init_waitqueue_func_entry()` with the waiter's state behind
    /// the entry's `private` pointer.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use waitq::{TaskState, WaitEntry, WaitQueue, WakeDecision, WakeFunction, WakeInfo};
    ///
    /// /// Takes the first wake and remembers it was taken.
    /// struct Taken(AtomicBool);
    /// impl WakeFunction for Taken {
    ///     fn decide(&self, _: &WakeInfo) -> WakeDecision {
    ///         self.0.store(true, Ordering::Release);
    ///         WakeDecision::Wake
    ///     }
    /// }
    ///
    /// let queue = WaitQueue::new();
    /// let taken = Arc::new(Taken(AtomicBool::new(false)));
    /// let mut entry = WaitEntry::with_shared_func(&queue, taken.clone());
    /// queue.prepare_to_wait_exclusive(&mut entry, TaskState::Uninterruptible);
    /// assert_eq!(queue.wake_up(), 1);
    /// assert!(taken.0.load(Ordering::Acquire));
    /// ```
    #[track_caller]
    pub fn with_shared_func<F: WakeFunction>(queue: &'a WaitQueue, func: Arc<F>) -> Self {
        let mut entry = WaitEntry::new(queue);
        entry.func = Some(func);
        entry
    }

    /// Gives the entry the waker its wake calls, before it is linked: the
    /// next `prepare_to_wait*` links it ready to wake, in the same queue-lock
    /// hold. A hand-written future that prepares inside its own `poll` sets
    /// `cx.waker()` here, and can then return `Pending` after its re-check
    /// without polling [`wait`](Self::wait) (which would take the lock once
    /// more to install the waker). Without it, the first `wait()` poll
    /// installs the waker. On a linked entry it replaces the waker now.
    ///
    /// Kernel: the entry's `private = current`, which `DEFINE_WAIT()` sets.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use std::task::{Wake, Waker};
    /// use waitq::{TaskState, WaitEntry, WaitQueue};
    ///
    /// struct Count(AtomicUsize);
    /// impl Wake for Count {
    ///     fn wake(self: Arc<Self>) {
    ///         self.0.fetch_add(1, Ordering::SeqCst);
    ///     }
    /// }
    /// let count = Arc::new(Count(AtomicUsize::new(0)));
    /// let waker = Waker::from(count.clone());
    ///
    /// let queue = WaitQueue::new();
    /// let mut entry = WaitEntry::new(&queue);
    /// entry.set_waker(&waker);
    /// queue.prepare_to_wait(&mut entry, TaskState::Uninterruptible);
    /// queue.wake_up(); // calls `waker`: nobody polled `wait()`
    /// assert_eq!(count.0.load(Ordering::SeqCst), 1);
    /// ```
    pub fn set_waker(&mut self, waker: &Waker) {
        if let Some(handle) = self.handle {
            let registration = match self.linked_with_waker {
                true => self.queue.refresh(handle, waker),
                false => self.queue.install_waker(handle, waker),
            };
            match registration {
                Registration::Linked => {
                    self.linked_with_waker = true;
                    return;
                }
                // Taken by a wake: keep the waker for the next link.
                Registration::Gone => {
                    self.take_handle();
                }
            }
        }
        match &mut self.waker {
            Some(old) => old.clone_from(waker),
            None => self.waker = Some(waker.clone()),
        }
    }

    /// Whether the entry is linked on its queue (prepared and not yet woken).
    ///
    /// # Examples
    ///
    /// ```
    /// use waitq::{TaskState, WaitEntry, WaitQueue};
    /// let queue = WaitQueue::new();
    /// let mut entry = WaitEntry::new(&queue);
    /// queue.prepare_to_wait(&mut entry, TaskState::Uninterruptible);
    /// assert!(entry.is_queued());
    /// queue.wake_up();
    /// assert!(!entry.is_queued()); // a wake unlinks the entry it picks
    /// ```
    pub fn is_queued(&self) -> bool {
        self.handle.is_some_and(|h| self.queue.is_linked(h))
    }

    /// Sleeps until the entry is woken. Kernel: `schedule()` after
    /// `prepare_to_wait()`.
    ///
    /// Resolves at once if the entry is not queued (never prepared, or
    /// already woken): the loop then re-tests its condition, as the kernel's
    /// does after `schedule()` returns.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the queue was closed.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the entry as it is (still queued if it
    /// was); the entry itself unlinks on [`finish_wait`](WaitQueue::finish_wait)
    /// or drop.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitq::{TaskState, WaitEntry, WaitQueue};
    /// let queue = WaitQueue::new();
    /// let mut entry = WaitEntry::new(&queue);
    /// queue.prepare_to_wait(&mut entry, TaskState::Uninterruptible);
    /// queue.wake_up(); // picked before it sleeps: the wait returns at once
    /// futures::executor::block_on(entry.wait()).unwrap();
    /// ```
    pub fn wait(&mut self) -> Wait<'_, 'a> {
        Wait {
            entry: self,
            done: false,
        }
    }

    /// A test toolkit's decision point (see [`hook`]).
    fn decide(&self, kind: PointKind) {
        hook::decide(kind, self.queue, self.site, self.exclusive, self.state);
    }

    /// Links (or keeps) the entry, with the decision points around it.
    #[track_caller]
    fn prepare(&mut self, class: Class, state: TaskState) -> Option<bool> {
        self.site = Location::caller();
        self.exclusive = class == Class::Exclusive;
        self.state = state;
        self.decide(PointKind::BeforeLink);
        let linked = self.link(class, state);
        self.decide(PointKind::AfterLink);
        linked
    }

    fn link(&mut self, class: Class, state: TaskState) -> Option<bool> {
        if let Some(handle) = self.handle {
            // Already queued: keep the position, update the state.
            if self.queue.with_entry(handle, |e| e.state = state).is_some() {
                return None;
            }
        }
        let notifier = match self.waker.take() {
            Some(waker) => Notifier::Waker(waker),
            None => Notifier::None,
        };
        let with_waker = matches!(notifier, Notifier::Waker(_));
        let mut entry = Entry::new(notifier, state, 0);
        entry.func = self.func.clone();
        match self.queue.register_checking_empty(class, entry) {
            Ok((handle, was_empty)) => {
                // A wake took the entry we had: its record goes.
                self.take_handle();
                self.handle = Some(handle);
                self.linked_with_waker = with_waker;
                if registry::is_recording() {
                    self.record(handle, state);
                }
                Some(was_empty)
            }
            Err(_) => {
                self.take_handle();
                Some(false)
            }
        }
    }
}

impl WaitEntry<'_> {
    /// Probe mode (see [`hook::probe`]): the condition of a hand-written
    /// loop is the caller's, so only the registration is reported.
    #[cold]
    fn probe(&self) {
        if let Some(handle) = self.handle {
            hook::probed(hook::Sleeper {
                queue: hook::QueueId::of(self.queue),
                site: self.site,
                exclusive: self.exclusive,
                state: self.state,
                linked: self.queue.is_linked(handle),
                condition: None,
                kind: WaitKind::new(WaitApi::Prepare, self.state, self.exclusive, None),
            });
        }
    }
}

impl WaitEntry<'_> {
    /// Lists this sleep in the wait registry (the registry is on).
    #[cold]
    #[inline(never)]
    fn record(&mut self, handle: Handle, state: TaskState) {
        let kind = WaitKind::new(WaitApi::Prepare, state, self.exclusive, None);
        self.recorded = registry::record(self.queue, handle.seq(), self.site, kind);
    }

    /// Forgets our entry (a wake took it, or we unlink it now), and its
    /// record in the wait registry if it has one.
    #[inline(always)]
    fn take_handle(&mut self) -> Option<Handle> {
        if self.recorded {
            self.unrecord();
        }
        self.handle.take()
    }

    #[cold]
    #[inline(never)]
    fn unrecord(&mut self) {
        self.recorded = false;
        if let Some(handle) = self.handle {
            registry::remove(self.queue, handle.seq());
        }
    }
}

impl Drop for WaitEntry<'_> {
    fn drop(&mut self) {
        if let Some(handle) = self.take_handle() {
            drop(self.queue.unregister(handle));
        }
    }
}

impl fmt::Debug for WaitEntry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitEntry")
            .field("queued", &self.handle.is_some())
            .field("custom_func", &self.func.is_some())
            .finish()
    }
}

// ===== impl WaitQueue =====

impl WaitQueue {
    /// Links `entry` as a non-exclusive waiter sleeping in `state`, unless
    /// it is already queued (then only its state changes).
    ///
    /// Kernel: `prepare_to_wait()`. Does nothing on a closed queue (the
    /// following [`WaitEntry::wait`] reports [`Closed`]).
    ///
    /// # Panics
    ///
    /// If `entry` was made for another queue.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitq::{TaskState, WaitEntry, WaitQueue};
    /// let queue = WaitQueue::new();
    /// let mut entry = WaitEntry::new(&queue);
    /// queue.prepare_to_wait(&mut entry, TaskState::Interruptible);
    /// queue.prepare_to_wait(&mut entry, TaskState::Interruptible); // idempotent
    /// assert_eq!(queue.len(), 1);
    /// ```
    #[track_caller]
    pub fn prepare_to_wait(&self, entry: &mut WaitEntry<'_>, state: TaskState) {
        self.check_owner(entry);
        entry.prepare(Class::Shared, state);
    }

    /// Links `entry` as an exclusive waiter at the tail, unless it is already
    /// queued. Returns whether the queue was empty before the insertion
    /// (`false` when nothing was inserted).
    ///
    /// Kernel: `prepare_to_wait_exclusive()`.
    ///
    /// # Panics
    ///
    /// If `entry` was made for another queue.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitq::{TaskState, WaitEntry, WaitQueue};
    /// let queue = WaitQueue::new();
    /// let mut entry = WaitEntry::new(&queue);
    /// assert!(queue.prepare_to_wait_exclusive(&mut entry, TaskState::Uninterruptible));
    /// assert!(!queue.prepare_to_wait_exclusive(&mut entry, TaskState::Uninterruptible));
    /// ```
    #[track_caller]
    pub fn prepare_to_wait_exclusive(&self, entry: &mut WaitEntry<'_>, state: TaskState) -> bool {
        self.check_owner(entry);
        entry.prepare(Class::Exclusive, state).unwrap_or(false)
    }

    /// Unlinks `entry` if a wake has not already. Kernel: `finish_wait()`.
    ///
    /// Unlike dropping a `wait_event` future, this does not pass on an
    /// exclusive wake the entry was picked for: a hand-written loop that
    /// gives up after such a wake should call [`wake_up`](Self::wake_up).
    ///
    /// # Panics
    ///
    /// If `entry` was made for another queue.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitq::{TaskState, WaitEntry, WaitQueue};
    /// let queue = WaitQueue::new();
    /// let mut entry = WaitEntry::new(&queue);
    /// queue.prepare_to_wait(&mut entry, TaskState::Uninterruptible);
    /// queue.finish_wait(&mut entry);
    /// assert_eq!(queue.len(), 0);
    /// ```
    pub fn finish_wait(&self, entry: &mut WaitEntry<'_>) {
        self.check_owner(entry);
        if entry.handle.is_some() {
            entry.decide(PointKind::BeforeFinish);
        }
        if let Some(handle) = entry.take_handle() {
            drop(self.unregister(handle));
        }
    }

    fn check_owner(&self, entry: &WaitEntry<'_>) {
        assert!(
            std::ptr::eq(self, entry.queue),
            "WaitEntry used with a queue other than the one it was made for"
        );
    }
}

// ===== impl Wait =====

impl Future for Wait<'_, '_> {
    type Output = Result<(), Closed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(!this.done, "wait future polled after it completed");
        if hook::is_probing() {
            this.entry.probe();
            return Poll::Pending;
        }
        // The budget, as in every async wait (see `wait`'s "Budget").
        if coop::poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        let entry = &mut *this.entry;
        if let Some(handle) = entry.handle {
            // A fresh link without a waker gets it in one lock hold.
            let registration = match entry.linked_with_waker {
                true => entry.queue.refresh(handle, cx.waker()),
                false => entry.queue.install_waker(handle, cx.waker()),
            };
            match registration {
                Registration::Linked => {
                    entry.linked_with_waker = true;
                    coop::refund();
                    return Poll::Pending;
                }
                Registration::Gone => {
                    entry.take_handle();
                }
            }
        }
        this.done = true;
        if entry.queue.is_closed() {
            Poll::Ready(Err(Closed::new(Reason::Closed)))
        } else {
            Poll::Ready(Ok(()))
        }
    }
}

impl FusedFuture for Wait<'_, '_> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}
