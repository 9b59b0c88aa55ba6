//! Test hooks: decision points inside the wait queue and a probe of every
//! sleeping waiter, for a deterministic test toolkit (the runtime's
//! `test_util`). Production code never installs a hook.
//!
//! # What a hook sees
//!
//! - **Decision points** ([`Hook::decide`]) where lost wake-ups live: before
//!   a waiter links its entry, between linking and re-checking the
//!   condition, between the waiters one wake picks, right after a wake that
//!   woke someone (before the waker's next statement), and before a
//!   registered waiter finishes (or [`finish_wait`](crate::WaitQueue::finish_wait)).
//!   Other crates add their own with [`acquire_point`] (a lock or
//!   semaphore about to be taken, contended or not) and [`switch_point`]
//!   (a shared-memory access that matters).
//!   No queue lock (and no user lock taken by this crate) is held, so the
//!   hook may poll other tasks re-entrantly there, emulating preemption.
//! - **Ownership** ([`Hook::held`]): a lock built on a queue says which
//!   task holds it ([`held`]), so a toolkit can name the cycle of a deadlock.
//!   A lock that many may hold at once (a reader-writer lock's readers)
//!   adds and removes each of them ([`held_shared`], [`Hook::held_shared`]).
//! - **Wakes** ([`Hook::woke`]): every `wake_up*`, `close` and exclusive
//!   hand-off, with the caller's source location and how many it woke
//!   (a wake on an empty queue too: that is the one a lost wake-up misses).
//! - **Sleepers** ([`Hook::probed`]): inside [`probe`], a wait future polled
//!   by its task does nothing but report itself: the queue, its wait site
//!   (`#[track_caller]` of the constructor), whether its entry is still
//!   linked and, if so, whether its condition holds now. A sleeper whose
//!   condition holds while its entry is linked and its task is idle is a
//!   lost wake-up. Spurious polls are always legal in async Rust, so a probe
//!   poll is a legal (if unusual) event for the task.
//!
//! # Cost when unused
//!
//! Every hook call site first does one `Relaxed` load of a global counter of
//! installed hooks and touches nothing else (no thread-local) while it is
//! zero. The point after a wake costs nothing more: it shares the load of
//! the wake report ([`Hook::woke`]) that was already there. Wait sites are recorded as a `&'static Location` copied into the
//! future (no allocation, no atomic).
//!
//! # Examples
//!
//! ```
//! use std::cell::Cell;
//! use std::rc::Rc;
//! use waitq::hook::{self, Hook, Point};
//!
//! #[derive(Default)]
//! struct Count(Cell<usize>);
//! impl Hook for Count {
//!     fn decide(&self, _point: &Point) {
//!         self.0.set(self.0.get() + 1);
//!     }
//! }
//!
//! let count = Rc::new(Count::default());
//! let queue = waitq::WaitQueue::new();
//! {
//!     let _installed = hook::install(count.clone());
//!     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
//!     let mut wait = queue.wait_event(|| false);
//!     assert!(std::pin::Pin::new(&mut wait).poll(&mut cx).is_pending());
//! }
//! assert_eq!(count.0.get(), 2); // before linking, and between linking and re-checking
//! # use std::future::Future;
//! ```

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::Location;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::task::Waker;

use crate::entry::TaskState;
use crate::WaitQueue;

/// Hooks installed on any thread; zero in production.
static INSTALLED: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static CURRENT: RefCell<Option<Rc<dyn Hook>>> = const { RefCell::new(None) };
    static PROBING: Cell<bool> = const { Cell::new(false) };
}

/// Where a decision point sits in a wait or a wake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PointKind {
    /// The condition was found false; the entry is about to be linked. A
    /// waker running here wakes an empty queue (or not this waiter): a
    /// waiter that does not re-check after linking loses that wake.
    BeforeLink,
    /// The entry is linked; the condition has not been re-checked yet.
    AfterLink,
    /// One wake has woken some of the waiters it picked; the others follow.
    BetweenWakes,
    /// A registered waiter found its condition true (or a hand-written loop
    /// calls `finish_wait`); the entry is about to be unlinked.
    BeforeFinish,
    /// A wake woke at least one waiter; the waker has not gone on yet. A
    /// waker that wakes first and changes the state after is caught here.
    AfterWake,
    /// A lock or semaphore built on the queue is about to be taken
    /// ([`acquire_point`]): before its fast path, so two locks taken in
    /// opposite orders can interleave even when neither is contended.
    Acquire,
    /// An explicit point on a shared-memory access ([`switch_point`]); the
    /// point's queue is [`QueueId::NONE`].
    Switch,
}

impl PointKind {
    /// A short name for schedules and reports (`link`, `linked`, `wakes`,
    /// `finish`, `woke`, `acquire`, `switch`).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(waitq::hook::PointKind::BeforeLink.name(), "link");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            PointKind::BeforeLink => "link",
            PointKind::AfterLink => "linked",
            PointKind::BetweenWakes => "wakes",
            PointKind::BeforeFinish => "finish",
            PointKind::AfterWake => "woke",
            PointKind::Acquire => "acquire",
            PointKind::Switch => "switch",
        }
    }
}

/// Which queue: its address, stable while the queue lives (a later queue
/// may reuse it).
///
/// # Examples
///
/// ```
/// let queue = waitq::WaitQueue::new();
/// assert_eq!(waitq::hook::QueueId::of(&queue), waitq::hook::QueueId::of(&queue));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(usize);

impl QueueId {
    /// No queue: the id of a [`switch_point`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(waitq::hook::QueueId::NONE.addr(), 0);
    /// ```
    pub const NONE: QueueId = QueueId(0);

    /// The id of `queue`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = (waitq::WaitQueue::new(), waitq::WaitQueue::new());
    /// assert_ne!(waitq::hook::QueueId::of(&a), waitq::hook::QueueId::of(&b));
    /// ```
    pub fn of(queue: &WaitQueue) -> QueueId {
        QueueId(queue as *const WaitQueue as usize)
    }

    /// The id of a one-waiter [`RcuWait`](crate::RcuWait): its address.
    ///
    /// # Examples
    ///
    /// ```
    /// let wait = waitq::RcuWait::new();
    /// assert_eq!(waitq::hook::QueueId::of_rcuwait(&wait).addr(), &wait as *const _ as usize);
    /// ```
    pub fn of_rcuwait<S>(wait: &crate::RcuWait<S>) -> QueueId {
        wait.id()
    }

    /// The id of a [`HandoffQueue`](crate::HandoffQueue): its address.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: waitq::HandoffQueue<(), ()> = waitq::HandoffQueue::with_state(None, ());
    /// assert_eq!(waitq::hook::QueueId::of_handoff(&q).addr(), &q as *const _ as usize);
    /// ```
    pub fn of_handoff<S, W>(queue: &crate::HandoffQueue<S, W>) -> QueueId {
        queue.id()
    }

    pub(crate) fn of_addr(addr: usize) -> QueueId {
        QueueId(addr)
    }

    /// The id of anything else a task can sleep on (a primitive with a
    /// state word of its own, see [`registry::note_sleep`](crate::registry::note_sleep)):
    /// its address.
    ///
    /// # Examples
    ///
    /// ```
    /// let state = std::sync::atomic::AtomicUsize::new(0);
    /// let id = waitq::hook::QueueId::of_ptr(&state);
    /// assert_eq!(id.addr(), &state as *const _ as usize);
    /// ```
    pub fn of_ptr<T: ?Sized>(ptr: *const T) -> QueueId {
        QueueId(ptr.cast::<()>() as usize)
    }

    /// The queue's address.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = waitq::WaitQueue::new();
    /// assert_eq!(waitq::hook::QueueId::of(&queue).addr(), &queue as *const _ as usize);
    /// ```
    pub fn addr(self) -> usize {
        self.0
    }
}

/// What tasks sleep on, as the toolkit and the wait registry name it: a
/// [`WaitQueue`], an [`RcuWait`](crate::RcuWait) or a
/// [`HandoffQueue`](crate::HandoffQueue). Lets [`acquire_point`],
/// [`held`] and the registry's holder functions take any of them.
pub trait Sleepable: sealed::Sealed {
    /// Its id (its address).
    fn queue_id(&self) -> QueueId;
    /// Its name, if it was given one.
    fn queue_name(&self) -> Option<&'static str>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::WaitQueue {}
    impl<S> Sealed for crate::RcuWait<S> {}
    impl<S, W> Sealed for crate::HandoffQueue<S, W> {}
}

impl Sleepable for WaitQueue {
    fn queue_id(&self) -> QueueId {
        QueueId::of(self)
    }
    fn queue_name(&self) -> Option<&'static str> {
        self.name()
    }
}

impl<S> Sleepable for crate::RcuWait<S> {
    fn queue_id(&self) -> QueueId {
        self.id()
    }
    fn queue_name(&self) -> Option<&'static str> {
        self.name()
    }
}

impl<S, W> Sleepable for crate::HandoffQueue<S, W> {
    fn queue_id(&self) -> QueueId {
        self.id()
    }
    fn queue_name(&self) -> Option<&'static str> {
        self.name()
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "queue@{:#x}", self.0)
    }
}

/// A decision point reached by the current thread (see [`Hook::decide`]).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Point {
    /// Which point.
    pub kind: PointKind,
    /// The queue waited on or woken.
    pub queue: QueueId,
    /// The wait site (the `wait_event*` or `prepare_to_wait` caller), or
    /// the wake site for [`PointKind::BetweenWakes`].
    pub site: &'static Location<'static>,
    /// Whether the waiter is exclusive (`false` for wakes).
    pub exclusive: bool,
    /// How the waiter sleeps (`Uninterruptible` for wakes).
    pub state: TaskState,
    /// The queue's name ([`WaitQueue::named`]), if it has one.
    pub queue_name: Option<&'static str>,
}

/// Who holds a lock built on a queue now (see [`Hook::held`]).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Held {
    /// The lock's queue.
    pub queue: QueueId,
    /// The queue's name ([`WaitQueue::named`]), if it has one.
    pub queue_name: Option<&'static str>,
    /// The holder's task id (the executor's), `None` once released;
    /// [`NOT_A_TASK`] when the holder is no task (a runtime's root future,
    /// e.g. a test body, or a plain thread).
    pub task: Option<u64>,
}

/// One shared holder of a lock built on a queue came or went (see
/// [`Hook::held_shared`]): a reader of a reader-writer lock.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct HeldShared {
    /// The lock's queue.
    pub queue: QueueId,
    /// The queue's name ([`WaitQueue::named`]), if it has one.
    pub queue_name: Option<&'static str>,
    /// The holder's task id (the executor's); [`NOT_A_TASK`] when the
    /// holder is no task.
    pub task: u64,
    /// `true`: `task` took a shared hold; `false`: it gave one back.
    pub acquired: bool,
}

/// A [`HandoffQueue`](crate::HandoffQueue) handed what its oldest waiter
/// waited for (a lock, permits) straight to it (see [`Hook::handed`]):
/// from now on it is the waiter's, though the waiter has not run yet.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Handed<'a> {
    /// The queue.
    pub queue: QueueId,
    /// The queue's name ([`WaitQueue::named`]), if it has one.
    pub queue_name: Option<&'static str>,
    /// The waiter's waker, about to be woken (it tells a hook which task
    /// the waiter is).
    pub waker: &'a Waker,
}

/// The holder id [`held`] reports for a holder that is not a task: a
/// runtime's root future (the test toolkit's test body) or a plain
/// thread. No executor gives a task this id.
pub const NOT_A_TASK: u64 = u64::MAX;

/// A wake on a queue (see [`Hook::woke`]).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Wake {
    /// The queue woken.
    pub queue: QueueId,
    /// The caller of `wake_up*` (or `close`, or the waiter handing a wake on).
    pub site: &'static Location<'static>,
    /// Waiters it woke.
    pub woken: usize,
    /// What kind of wake.
    pub kind: WakeKind,
}

/// What kind of wake a [`Wake`] was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WakeKind {
    /// A `wake_up*` call.
    WakeUp,
    /// An exclusive waiter that ended without success passed its wake on.
    HandOff,
    /// [`WaitQueue::close`].
    Close,
}

/// A wait future polled inside [`probe`] (see [`Hook::probed`]).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Sleeper {
    /// The queue it sleeps on.
    pub queue: QueueId,
    /// Where the wait was created (`#[track_caller]`).
    pub site: &'static Location<'static>,
    /// Whether the waiter is exclusive.
    pub exclusive: bool,
    /// How it sleeps.
    pub state: TaskState,
    /// Whether its entry is still linked (no wake has picked it).
    pub linked: bool,
    /// Its condition, evaluated now while linked; `None` when not evaluated
    /// (not linked, a hand-written loop whose condition this crate cannot
    /// see, or a user lock that is held elsewhere).
    pub condition: Option<bool>,
    /// Which wait it is (`wait_event_exclusive`, `prepare_to_wait`, ...),
    /// as the wait registry names it, so that a test report and a
    /// production dump name a wait alike (no deadline: the probe does not
    /// see it).
    pub kind: crate::registry::WaitKind,
}

impl Sleeper {
    /// Linked, condition true: nobody will wake it, yet it could go on.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::cell::RefCell;
    /// # use std::rc::Rc;
    /// # use std::future::Future;
    /// # use waitq::hook::{self, Hook, Point, Sleeper};
    /// #[derive(Default)]
    /// struct Lost(RefCell<Vec<Sleeper>>);
    /// impl Hook for Lost {
    ///     fn decide(&self, _: &Point) {}
    ///     fn probed(&self, s: &Sleeper) {
    ///         self.0.borrow_mut().push(*s);
    ///     }
    /// }
    /// let lost = Rc::new(Lost::default());
    /// let _installed = hook::install(lost.clone());
    /// let queue = waitq::WaitQueue::new();
    /// let flag = std::sync::atomic::AtomicBool::new(false);
    /// let mut wait = queue.wait_event(|| flag.load(std::sync::atomic::Ordering::SeqCst));
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// assert!(std::pin::Pin::new(&mut wait).poll(&mut cx).is_pending());
    /// flag.store(true, std::sync::atomic::Ordering::SeqCst); // ...and no wake_up
    /// hook::probe(|| std::pin::Pin::new(&mut wait).poll(&mut cx)).is_pending();
    /// assert!(lost.0.borrow()[0].is_lost_wakeup());
    /// ```
    pub fn is_lost_wakeup(&self) -> bool {
        self.linked && self.condition == Some(true)
    }
}

/// What a test toolkit implements to observe and steer the waits of the
/// thread it is installed on. Every method is called with no queue lock held.
pub trait Hook {
    /// A decision point. The hook may poll other tasks here (re-entrantly:
    /// the current task is still in its poll), wake the current task (a
    /// spurious wake-up), deliver a signal or fire timers.
    fn decide(&self, point: &Point);

    /// A wake happened (after its wakers ran).
    fn woke(&self, wake: &Wake) {
        let _ = wake;
    }

    /// A wait future was polled inside [`probe`].
    fn probed(&self, sleeper: &Sleeper) {
        let _ = sleeper;
    }

    /// A lock built on a queue changed hands (see [`held`]).
    fn held(&self, held: &Held) {
        let _ = held;
    }

    /// A shared holder of a lock built on a queue came or went (see
    /// [`held_shared`]). A task may hold a lock shared more than once (a
    /// reader that reads again): each hold comes and goes by itself, so a
    /// hook counts them. The exclusive holder ([`held`]) is separate: a
    /// writer that downgrades is reported released, then added shared.
    fn held_shared(&self, held: &HeldShared) {
        let _ = held;
    }

    /// A hand-off queue gave its oldest waiter what it waited for (see
    /// [`Handed`]). A lock's holder is otherwise told as its guard is made
    /// ([`held`]), when the waiter next runs; until then (for good, if its
    /// task never polls that future again: the "futurelock") this is the
    /// only word of who has it. Called with no lock held, just before the
    /// waiter's waker is woken.
    fn handed(&self, handed: &Handed<'_>) {
        let _ = handed;
    }

    /// The current task's waiter on the hand-off queue `queue` took what a
    /// hand-off gave it ([`handed`](Self::handed)): the grant is claimed,
    /// whether or not a guard names a holder after it (a semaphore's
    /// permits have none).
    fn claimed(&self, queue: QueueId) {
        let _ = queue;
    }

    /// The current task passed a full barrier outside any decision point
    /// (see [`barrier`]). A hook that models store buffers drains the
    /// task's here.
    fn barrier(&self) {}

    /// Whether the current task has stores in flight (a hook that models
    /// store buffers): [`WaitQueue::waitqueue_active`] is then a decision
    /// point after its read.
    fn buffered(&self) -> bool {
        false
    }
}

/// Uninstalls the hook (restoring the previous one) when dropped.
#[must_use = "the hook is uninstalled when the guard drops"]
pub struct Installed {
    previous: Option<Rc<dyn Hook>>,
}

impl fmt::Debug for Installed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Installed")
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = CURRENT.try_with(|c| *c.borrow_mut() = previous);
        INSTALLED.fetch_sub(1, Relaxed);
    }
}

/// Installs `hook` on this thread until the guard drops.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// struct Nothing;
/// impl waitq::hook::Hook for Nothing {
///     fn decide(&self, _: &waitq::hook::Point) {}
/// }
/// let guard = waitq::hook::install(Rc::new(Nothing));
/// assert!(waitq::hook::is_enabled());
/// drop(guard);
/// ```
pub fn install(hook: Rc<dyn Hook>) -> Installed {
    INSTALLED.fetch_add(1, Relaxed);
    let previous = CURRENT.with(|c| c.borrow_mut().replace(hook));
    Installed { previous }
}

/// Whether a hook is installed on any thread: the one check every call site
/// makes before anything else.
///
/// # Examples
///
/// ```
/// // Nothing installed on this thread: every call site is a no-op.
/// let _ = waitq::hook::is_enabled();
/// ```
#[inline]
pub fn is_enabled() -> bool {
    INSTALLED.load(Relaxed) != 0
}

/// Runs `f` in probe mode on this thread: every wait future polled meanwhile
/// reports itself to the hook ([`Hook::probed`]) and returns `Pending`
/// without touching its registration, its budget or its end sources.
///
/// # Examples
///
/// See [`Sleeper::is_lost_wakeup`].
pub fn probe<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            PROBING.with(|p| p.set(self.0));
        }
    }
    let _reset = Reset(PROBING.with(|p| p.replace(true)));
    f()
}

/// Whether this thread is probing (see [`probe`]); `false` when no hook is
/// installed anywhere.
///
/// # Examples
///
/// ```
/// assert!(!waitq::hook::is_probing());
/// assert!(waitq::hook::probe(waitq::hook::is_probing) || !waitq::hook::is_enabled());
/// ```
#[inline]
pub fn is_probing() -> bool {
    is_enabled() && PROBING.try_with(Cell::get).unwrap_or(false)
}

/// The hook of this thread, if any (cloned: no borrow is held while it runs,
/// so it may re-enter).
fn current() -> Option<Rc<dyn Hook>> {
    if !is_enabled() {
        return None;
    }
    CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
}

/// Whether the wake walk should wake one waiter per lock hold, so that
/// [`PointKind::BetweenWakes`] falls between every two of them.
#[inline]
pub(crate) fn single_wakes() -> bool {
    is_enabled() && current().is_some()
}

/// Reports a decision point (no-op without a hook).
#[inline]
pub(crate) fn decide(
    kind: PointKind,
    queue: &WaitQueue,
    site: &'static Location<'static>,
    exclusive: bool,
    state: TaskState,
) {
    if !is_enabled() {
        return;
    }
    decide_slow(kind, Some(queue), site, exclusive, state);
}

#[cold]
#[inline(never)]
fn decide_slow(
    kind: PointKind,
    queue: Option<&WaitQueue>,
    site: &'static Location<'static>,
    exclusive: bool,
    state: TaskState,
) {
    if PROBING.try_with(Cell::get).unwrap_or(false) {
        return;
    }
    if let Some(hook) = current() {
        hook.decide(&Point {
            kind,
            queue: queue.map_or(QueueId::NONE, QueueId::of),
            site,
            exclusive,
            state,
            queue_name: queue.and_then(WaitQueue::name),
        });
    }
}

/// [`decide`] for a waiter that sleeps on something other than a
/// [`WaitQueue`] (an [`RcuWait`](crate::RcuWait)): a non-exclusive,
/// uninterruptible waiter on `queue`, named `name`.
#[inline]
pub(crate) fn decide_on(
    kind: PointKind,
    queue: QueueId,
    name: Option<&'static str>,
    site: &'static Location<'static>,
) {
    if is_enabled() {
        decide_on_slow(kind, queue, name, site, false);
    }
}

#[cold]
#[inline(never)]
fn decide_on_slow(
    kind: PointKind,
    queue: QueueId,
    queue_name: Option<&'static str>,
    site: &'static Location<'static>,
    exclusive: bool,
) {
    if PROBING.try_with(Cell::get).unwrap_or(false) {
        return;
    }
    if let Some(hook) = current() {
        hook.decide(&Point {
            kind,
            queue,
            site,
            exclusive,
            state: TaskState::Uninterruptible,
            queue_name,
        });
    }
}

/// Reports a wake, then (if it woke someone) the decision point after it
/// ([`PointKind::AfterWake`]); a no-op without a hook.
#[inline]
pub(crate) fn woke(
    queue: &WaitQueue,
    site: &'static Location<'static>,
    woken: usize,
    kind: WakeKind,
) {
    if !is_enabled() {
        return;
    }
    woke_slow(queue, site, woken, kind);
}

#[cold]
#[inline(never)]
fn woke_slow(queue: &WaitQueue, site: &'static Location<'static>, woken: usize, kind: WakeKind) {
    if let Some(hook) = current() {
        hook.woke(&Wake {
            queue: QueueId::of(queue),
            site,
            woken,
            kind,
        });
        drop(hook);
        if woken > 0 {
            let state = TaskState::Uninterruptible;
            decide_slow(PointKind::AfterWake, Some(queue), site, false, state);
        }
    }
}

/// [`woke`] for a wake of something other than a [`WaitQueue`] (an
/// [`RcuWait`](crate::RcuWait)).
#[inline]
pub(crate) fn woke_on(
    queue: QueueId,
    name: Option<&'static str>,
    site: &'static Location<'static>,
    woken: usize,
    kind: WakeKind,
) {
    if is_enabled() {
        woke_on_slow(queue, name, site, woken, kind);
    }
}

#[cold]
#[inline(never)]
fn woke_on_slow(
    queue: QueueId,
    name: Option<&'static str>,
    site: &'static Location<'static>,
    woken: usize,
    kind: WakeKind,
) {
    if let Some(hook) = current() {
        hook.woke(&Wake {
            queue,
            site,
            woken,
            kind,
        });
        drop(hook);
        if woken > 0 {
            decide_on_slow(PointKind::AfterWake, queue, name, site, false);
        }
    }
}

/// A decision point before a lock or semaphore built on `queue` is taken
/// ([`PointKind::Acquire`]): call it before the fast path of every
/// acquisition, contended or not. One `Relaxed` load when no hook is
/// installed anywhere.
///
/// # Examples
///
/// ```
/// let queue = waitq::WaitQueue::named("my_lock");
/// waitq::hook::acquire_point(&queue); // no hook: nothing happens
/// ```
#[inline]
#[track_caller]
pub fn acquire_point(queue: &(impl Sleepable + ?Sized)) {
    if !is_enabled() {
        return;
    }
    let (queue, name) = (queue.queue_id(), queue.queue_name());
    decide_on_slow(PointKind::Acquire, queue, name, Location::caller(), true);
}

/// An explicit decision point ([`PointKind::Switch`]) at the caller: the
/// toolkit may run other tasks here, as if this thread were preempted.
/// Put it between two accesses to shared memory whose interleaving with
/// another task matters. One `Relaxed` load when no hook is installed.
///
/// # Examples
///
/// ```
/// waitq::hook::switch_point(); // no hook: nothing happens
/// ```
#[inline]
#[track_caller]
pub fn switch_point() {
    if !is_enabled() {
        return;
    }
    switch_slow(Location::caller());
}

#[cold]
#[inline(never)]
fn switch_slow(site: &'static Location<'static>) {
    decide_slow(
        PointKind::Switch,
        None,
        site,
        false,
        TaskState::Uninterruptible,
    );
}

/// Tells the hook that `task` holds the lock built on `queue` now (`None`:
/// released; [`NOT_A_TASK`]: a holder that is not a task). One `Relaxed`
/// load when no hook is installed.
///
/// # Examples
///
/// ```
/// let queue = waitq::WaitQueue::named("my_lock");
/// waitq::hook::held(&queue, Some(7)); // no hook: nothing happens
/// ```
#[inline]
pub fn held(queue: &(impl Sleepable + ?Sized), task: Option<u64>) {
    if !is_enabled() {
        return;
    }
    held_slow(queue.queue_id(), queue.queue_name(), task);
}

#[cold]
#[inline(never)]
fn held_slow(queue: QueueId, queue_name: Option<&'static str>, task: Option<u64>) {
    if let Some(hook) = current() {
        hook.held(&Held {
            queue,
            queue_name,
            task,
        });
    }
}

/// Tells the hook that the hand-off queue `queue` (named `name`) handed
/// its waiter whose waker is `waker` what it waited for (see
/// [`Hook::handed`]). One `Relaxed` load when no hook is installed.
#[inline]
pub(crate) fn handed_on(queue: QueueId, name: Option<&'static str>, waker: &Waker) {
    if is_enabled() {
        handed_slow(queue, name, waker);
    }
}

#[cold]
#[inline(never)]
fn handed_slow(queue: QueueId, queue_name: Option<&'static str>, waker: &Waker) {
    if let Some(hook) = current() {
        hook.handed(&Handed {
            queue,
            queue_name,
            waker,
        });
    }
}

/// Tells the hook that the current task's waiter on `queue` took what a
/// hand-off gave it (see [`Hook::claimed`]). One `Relaxed` load when no
/// hook is installed.
#[inline]
pub(crate) fn claimed_on(queue: QueueId) {
    if is_enabled() {
        claimed_slow(queue);
    }
}

#[cold]
#[inline(never)]
fn claimed_slow(queue: QueueId) {
    if let Some(hook) = current() {
        hook.claimed(queue);
    }
}

/// Tells the hook that `task` took (`acquired`) or gave back one shared
/// hold on the lock built on `queue` (a reader of a reader-writer lock;
/// [`NOT_A_TASK`]: a holder that is not a task). Unlike [`held`], each call
/// adds or removes one holder of a set; the one who gives a hold back names
/// the task that took it (a guard may move to another task). One `Relaxed`
/// load when no hook is installed.
///
/// # Examples
///
/// ```
/// let queue = waitq::WaitQueue::named("my_rwlock");
/// waitq::hook::held_shared(&queue, 7, true); // no hook: nothing happens
/// waitq::hook::held_shared(&queue, 7, false);
/// ```
#[inline]
pub fn held_shared(queue: &(impl Sleepable + ?Sized), task: u64, acquired: bool) {
    if !is_enabled() {
        return;
    }
    held_shared_slow(queue.queue_id(), queue.queue_name(), task, acquired);
}

#[cold]
#[inline(never)]
fn held_shared_slow(queue: QueueId, queue_name: Option<&'static str>, task: u64, acquired: bool) {
    if let Some(hook) = current() {
        hook.held_shared(&HeldShared {
            queue,
            queue_name,
            task,
            acquired,
        });
    }
}

/// Tells the hook the current task passed a full barrier: a primitive
/// built on queues publishes something (a send, a spawn, a wake) through
/// locks or read-modify-writes the hook cannot see. A test toolkit that
/// models store buffers drains the task's here (see [`Hook::barrier`]).
/// One `Relaxed` load when no hook is installed.
///
/// # Examples
///
/// ```
/// waitq::hook::barrier(); // no hook: nothing happens
/// ```
#[inline]
pub fn barrier() {
    if is_enabled() {
        barrier_slow();
    }
}

#[cold]
#[inline(never)]
fn barrier_slow() {
    if let Some(hook) = current() {
        hook.barrier();
    }
}

/// [`WaitQueue::waitqueue_active`]'s decision point, after its read, taken
/// only while the hook says the task has stores in flight.
#[inline]
pub(crate) fn peeked(queue: &WaitQueue, site: &'static Location<'static>) {
    if is_enabled() {
        peeked_slow(queue, site);
    }
}

#[cold]
#[inline(never)]
fn peeked_slow(queue: &WaitQueue, site: &'static Location<'static>) {
    if current().is_some_and(|hook| hook.buffered()) {
        decide_slow(
            PointKind::Switch,
            Some(queue),
            site,
            false,
            TaskState::Uninterruptible,
        );
    }
}

/// Reports a probed sleeper.
pub(crate) fn probed(sleeper: Sleeper) {
    if let Some(hook) = current() {
        hook.probed(&sleeper);
    }
}
