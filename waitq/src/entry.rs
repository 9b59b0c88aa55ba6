//! One waiter as the list stores it, and the rule a wake uses to decide
//! whether it matches.

use std::fmt;
use std::sync::Arc;
use std::task::Waker;

/// How a waiter sleeps, which decides the wakes and signals that end it.
///
/// Kernel: the `TASK_*` state a task sets before `schedule()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskState {
    /// Only a wake ends the sleep; signals are ignored. Kernel: `TASK_UNINTERRUPTIBLE`.
    Uninterruptible,
    /// A wake or any signal ends the sleep. Kernel: `TASK_INTERRUPTIBLE`.
    Interruptible,
    /// A wake or a fatal signal ends the sleep. Kernel: `TASK_KILLABLE`.
    Killable,
}

/// Which waiters a wake may wake, by the state they sleep in.
///
/// Kernel: the `mode` argument of `__wake_up()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WakeMode {
    /// Every waiter. Kernel: `TASK_NORMAL`, used by `wake_up*()`.
    Normal,
    /// Only [`TaskState::Interruptible`] waiters. Kernel: `TASK_INTERRUPTIBLE`,
    /// used by `wake_up_interruptible*()`.
    Interruptible,
}

impl WakeMode {
    fn matches(self, state: TaskState) -> bool {
        match self {
            WakeMode::Normal => true,
            WakeMode::Interruptible => state == TaskState::Interruptible,
        }
    }
}

/// What a wake passes to a custom wake function: its mode and its poll key.
///
/// Kernel: the `mode` and `key` arguments of a `wait_queue_func_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WakeInfo {
    pub(crate) mode: WakeMode,
    pub(crate) key: u32,
}

impl WakeInfo {
    /// A plain `wake_up`'s: normal mode, no key.
    pub(crate) const PLAIN: WakeInfo = WakeInfo {
        mode: WakeMode::Normal,
        key: 0,
    };

    /// Whether this is [`PLAIN`](Self::PLAIN).
    #[inline]
    pub(crate) fn is_plain(&self) -> bool {
        self.mode == WakeMode::Normal && self.key == 0
    }

    /// The wake's mode.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitq::{TaskState, WaitEntry, WaitQueue, WakeDecision, WakeMode};
    /// let queue = WaitQueue::new();
    /// // Refuse interruptible-only wakes.
    /// let mut entry = WaitEntry::with_func(&queue, |info| match info.mode() {
    ///     WakeMode::Normal => WakeDecision::Wake,
    ///     _ => WakeDecision::Skip,
    /// });
    /// queue.prepare_to_wait(&mut entry, TaskState::Interruptible);
    /// assert_eq!(queue.wake_up_interruptible(), 0);
    /// assert_eq!(queue.wake_up(), 1);
    /// ```
    pub fn mode(&self) -> WakeMode {
        self.mode
    }

    /// The wake's poll mask; `0` for a wake without a key
    /// (`wake_up`, as opposed to `wake_up_poll`).
    ///
    /// # Examples
    ///
    /// ```
    /// use waitq::{TaskState, WaitEntry, WaitQueue, WakeDecision};
    /// let queue = WaitQueue::new();
    /// let mut entry = WaitEntry::with_func(&queue, |info| {
    ///     if info.key() == 0 { WakeDecision::Skip } else { WakeDecision::Wake }
    /// });
    /// queue.prepare_to_wait(&mut entry, TaskState::Uninterruptible);
    /// assert_eq!(queue.wake_up(), 0);
    /// assert_eq!(queue.wake_up_poll(1), 1);
    /// ```
    pub fn key(&self) -> u32 {
        self.key
    }
}

/// A custom wake function's answer for one entry during one wake walk.
///
/// Kernel: the return value of a `wait_queue_func_t` (`0`, `> 0`, `< 0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WakeDecision {
    /// Leave this entry queued and do not count it (kernel: return 0).
    Skip,
    /// Wake this entry: it is unlinked, its waker is called, and if it is
    /// exclusive it uses up one of the wake's exclusive slots (kernel: > 0).
    Wake,
    /// Leave this entry queued and end the walk here (kernel: < 0).
    Stop,
}

/// A custom wake function: decides, under the queue lock, whether a wake
/// takes its entry. Called once per wake walk that reaches the entry; it
/// must not touch the queue.
///
/// Kernel: `wait_queue_func_t`, the `func` of a `struct wait_queue_entry`.
///
/// Closures `Fn(&WakeInfo) -> WakeDecision` implement it, for
/// [`WaitEntry::with_func`](crate::WaitEntry::with_func). A type of your
/// own implements it to keep the waiter's state and its wake function in
/// one allocation, shared with the entry through
/// [`WaitEntry::with_shared_func`](crate::WaitEntry::with_shared_func)
/// (kernel: the `private` pointer a wake function reads).
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use waitq::{TaskState, WaitEntry, WaitQueue, WakeDecision, WakeFunction, WakeInfo};
///
/// /// Counts the wakes that reached it, and takes the third.
/// struct Third(AtomicU32);
/// impl WakeFunction for Third {
///     fn decide(&self, _: &WakeInfo) -> WakeDecision {
///         match self.0.fetch_add(1, Ordering::Relaxed) {
///             2 => WakeDecision::Wake,
///             _ => WakeDecision::Skip,
///         }
///     }
/// }
///
/// let queue = WaitQueue::new();
/// let third = Arc::new(Third(AtomicU32::new(0)));
/// let mut entry = WaitEntry::with_shared_func(&queue, third.clone());
/// queue.prepare_to_wait(&mut entry, TaskState::Uninterruptible);
/// assert_eq!((queue.wake_up(), queue.wake_up(), queue.wake_up()), (0, 0, 1));
/// assert_eq!(third.0.load(Ordering::Relaxed), 3);
/// ```
pub trait WakeFunction: Send + Sync + 'static {
    /// Whether the wake described by `info` takes this entry.
    fn decide(&self, info: &WakeInfo) -> WakeDecision;
}

impl<F> WakeFunction for F
where
    F: Fn(&WakeInfo) -> WakeDecision + Send + Sync + 'static,
{
    fn decide(&self, info: &WakeInfo) -> WakeDecision {
        self(info)
    }
}

/// A custom wake function as an entry holds it.
pub(crate) type WakeFn = Arc<dyn WakeFunction>;

/// How a woken entry's owner is told.
pub(crate) enum Notifier {
    /// Nobody to tell yet (a `prepare_to_wait` entry not yet awaited).
    None,
    /// An async task's waker, or a thread's (see `blocking.rs`).
    Waker(Waker),
}

/// One linked waiter.
pub(crate) struct Entry {
    pub(crate) notifier: Notifier,
    pub(crate) state: TaskState,
    /// Poll mask this waiter cares about; `0` matches every wake.
    pub(crate) key: u32,
    /// Custom wake function replacing the mode/key match, if any.
    pub(crate) func: Option<WakeFn>,
    /// The last wake walk that evaluated this entry (see `queue::walk`).
    pub(crate) visited: u64,
}

// ===== impl Entry =====

impl Entry {
    pub(crate) fn new(notifier: Notifier, state: TaskState, key: u32) -> Self {
        Entry {
            notifier,
            state,
            key,
            func: None,
            visited: 0,
        }
    }

    /// Whether a wake with `info` should wake this entry.
    pub(crate) fn decide(&self, info: &WakeInfo) -> WakeDecision {
        if let Some(func) = &self.func {
            return func.decide(info);
        }
        if self.matches(info) {
            WakeDecision::Wake
        } else {
            WakeDecision::Skip
        }
    }

    /// [`decide`](Self::decide) for an entry without a wake function:
    /// whether `info`'s key and mode match it. Inline, for the one-waiter
    /// wake (where a call to `decide` cost about 10 instructions).
    #[inline(always)]
    pub(crate) fn matches(&self, info: &WakeInfo) -> bool {
        let key_matches = self.key == 0 || info.key == 0 || self.key & info.key != 0;
        key_matches && info.mode.matches(self.state)
    }

    /// The owner's waker, if it has one. The rest of the entry may be
    /// dropped under the queue lock: it holds no waker, and its custom
    /// function (if any) is a clone of the one its `WaitEntry` keeps alive
    /// while the entry is linked, so dropping it runs no user code.
    pub(crate) fn into_waker(self) -> Option<Waker> {
        match self.notifier {
            Notifier::Waker(waker) => Some(waker),
            Notifier::None => None,
        }
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("state", &self.state)
            .field("key", &self.key)
            .field("custom_func", &self.func.is_some())
            .field("has_waker", &matches!(self.notifier, Notifier::Waker(_)))
            .finish()
    }
}
