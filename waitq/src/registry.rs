//! The wait registry: who sleeps on which queue, where, how, and since when.
//!
//! Every waiter that actually sleeps (its condition was false and it
//! linked an entry) is listed here until its wait ends: the queue (address
//! and [name](crate::WaitQueue::named)), the wait site (`#[track_caller]`),
//! the [kind](WaitKind) of wait (interruptible, exclusive, its deadline...),
//! since when, and who waits: the task an executor names through
//! [`set_task_source`], or the plain thread. A wait whose condition is
//! already true never touches the registry. It is off until something asks
//! for it ([`enable`]: a runtime built with a dump, hung-task or registry
//! option does), and then stays on for the process; a dump or a hung-task
//! detector reads it with [`snapshot`], without polling anything. Off, a
//! sleep pays one relaxed load: on, about 50 ns per sleep (a ping-pong of
//! two tasks measured 1.4-1.6x slower), which is why it is not always on.
//!
//! # Cost
//!
//! A sleep writes one record into a shard picked per thread (one
//! uncontended lock, a slab insert: no allocation once the shard has grown,
//! no backtrace), and the end of the wait removes it (one more lock). The
//! time comes from the executor's task source (a coarse clock it keeps
//! fresh) or, outside a task, from `Instant::now()`.
//!
//! # Examples
//!
//! ```
//! use std::future::Future;
//! use waitq::registry::{self, TaskStamp};
//! static SMBIOD_WAIT: waitq::WaitQueue = waitq::WaitQueue::named("smbiod_wait");
//!
//! registry::enable();
//! // An executor names the task it polls (here: always task 7).
//! registry::set_task_source(|| Some(TaskStamp { task: Some(7), now: std::time::Instant::now() }));
//! let mut wait = SMBIOD_WAIT.wait_event_exclusive(|| false);
//! let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
//! assert!(std::pin::Pin::new(&mut wait).poll(&mut cx).is_pending());
//! let me = waitq::hook::QueueId::of(&SMBIOD_WAIT);
//! let sleeping: Vec<_> = waitq::registry::snapshot().into_iter().filter(|w| w.queue == me).collect();
//! assert_eq!(sleeping[0].queue_name, Some("smbiod_wait"));
//! assert_eq!(sleeping[0].kind.to_string(), "wait_event_exclusive");
//! assert_eq!(sleeping[0].task, Some(7));
//! drop(wait); // the wait ended: no longer listed
//! assert!(waitq::registry::snapshot().iter().all(|w| w.queue != me));
//! ```

use std::cell::Cell;
use std::fmt;
use std::panic::Location;
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::Instant;

use slab::Slab;

use crate::entry::TaskState;
use crate::hook::QueueId;
use crate::sync::{AtomicBool, AtomicUsize, Mutex, MutexGuard, Ordering, PoisonError};

/// Whether sleeps are listed (see [`enable`]).
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns the registry on for the rest of the process: from now on every
/// waiter that sleeps is listed. (Waits already asleep are listed from
/// their next sleep.)
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether the registry is on.
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Shards of the registry; a thread keeps writing to the one it was given.
const SHARDS: usize = 16;

/// Which API a waiter sleeps in (the first part of [`WaitKind`]'s name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WaitApi {
    /// `wait_event*` (and `wait_event_value*`, `wait_event_key*`).
    Event,
    /// `wait_event_lock*`.
    Lock,
    /// `blocking_wait_event*`, from a plain thread.
    Blocking,
    /// A hand-written `prepare_to_wait` loop.
    Prepare,
    /// A [`PollWaiter`](crate::PollWaiter).
    Poll,
}

/// How a waiter sleeps: `wait_event_interruptible_exclusive_timeout` and
/// its relatives, as [`Display`](fmt::Display) names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct WaitKind {
    /// The API.
    pub api: WaitApi,
    /// Which signals end it.
    pub state: TaskState,
    /// Exclusive (woken one at a time) or not.
    pub exclusive: bool,
    /// The deadline of a `_timeout` wait.
    pub deadline: Option<Instant>,
}

impl WaitKind {
    /// Whether a hung-task detector should watch it: uninterruptible and
    /// without a deadline (the kernel's `TASK_UNINTERRUPTIBLE`, minus
    /// `TASK_KILLABLE`; a timed wait ends by itself).
    ///
    /// # Examples
    ///
    /// ```
    /// use waitq::registry::{WaitApi, WaitKind};
    /// let kind = WaitKind::new(WaitApi::Event, waitq::TaskState::Uninterruptible, false, None);
    /// assert!(kind.is_uninterruptible());
    /// ```
    pub fn is_uninterruptible(&self) -> bool {
        self.state == TaskState::Uninterruptible && self.deadline.is_none()
    }

    /// A kind, for tests and for executors that build their own reports.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitq::registry::{WaitApi, WaitKind};
    /// let kind = WaitKind::new(WaitApi::Blocking, waitq::TaskState::Killable, true, None);
    /// assert_eq!(kind.to_string(), "blocking_wait_event_killable_exclusive");
    /// ```
    pub fn new(api: WaitApi, state: TaskState, exclusive: bool, deadline: Option<Instant>) -> Self {
        WaitKind {
            api,
            state,
            exclusive,
            deadline,
        }
    }
}

impl fmt::Display for WaitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.api {
            WaitApi::Event => "wait_event",
            WaitApi::Lock => "wait_event_lock",
            WaitApi::Blocking => "blocking_wait_event",
            WaitApi::Prepare => "prepare_to_wait",
            WaitApi::Poll => "poll_wait_event",
        })?;
        match self.state {
            TaskState::Interruptible => f.write_str("_interruptible")?,
            TaskState::Killable => f.write_str("_killable")?,
            _ => {}
        }
        if self.exclusive {
            f.write_str("_exclusive")?;
        }
        if self.deadline.is_some() {
            f.write_str("_timeout")?;
        }
        Ok(())
    }
}

/// One sleeping waiter, as [`snapshot`] reports it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Waiting {
    /// The queue it sleeps on.
    pub queue: QueueId,
    /// The queue's name, if it has one ([`WaitQueue::named`](crate::WaitQueue::named)).
    pub queue_name: Option<&'static str>,
    /// Where the wait was made (`#[track_caller]`).
    pub site: &'static Location<'static>,
    /// How it sleeps.
    pub kind: WaitKind,
    /// When it went to sleep (linked its entry; again after a wake that
    /// found its condition false).
    pub since: Instant,
    /// The executor's task that waits (see [`set_task_source`]), if any.
    pub task: Option<u64>,
    /// The plain thread that waits, for waits outside any task.
    pub thread: Option<Thread>,
    /// Identifies this one sleep: a new sleep of the same waiter (after a
    /// wake) gets a new id. A detector reports each sleep once by it.
    pub sleep: u64,
}

/// What an executor tells the registry about the waiter being linked.
#[derive(Debug, Clone, Copy)]
pub struct TaskStamp {
    /// The task being polled on this thread; `None` on a thread the
    /// executor runs outside its tasks (its `block_on`): the thread is
    /// then recorded.
    pub task: Option<u64>,
    /// The time now, as the executor knows it cheaply (a coarse clock).
    pub now: Instant,
}

/// Where the executor's task comes from; `None` on threads it does not run.
pub type TaskSource = fn() -> Option<TaskStamp>;

static TASK_SOURCE: OnceLock<TaskSource> = OnceLock::new();

/// Names the task behind each waiter: `source` is called on this thread
/// when a waiter links its entry (the slow path only) and returns the task
/// being polled and the time. The first source set stays; returns whether
/// this one was taken. An executor calls it once (the workspace's runtime
/// does when it builds).
///
/// # Examples
///
/// ```
/// fn none() -> Option<waitq::registry::TaskStamp> {
///     None
/// }
/// let _ = waitq::registry::set_task_source(none);
/// ```
pub fn set_task_source(source: TaskSource) -> bool {
    TASK_SOURCE.set(source).is_ok()
}

struct Shard {
    waiting: Slab<Waiting>,
    sleeps: u64,
}

/// Keeps each shard's lock off its neighbours' cache lines.
#[repr(align(128))]
struct Padded(Mutex<Shard>);

static REGISTRY: [Padded; SHARDS] = [const {
    Padded(Mutex::new(Shard {
        waiting: Slab::new(),
        sleeps: 0,
    }))
}; SHARDS];

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MY_SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Where a record sits, kept by its waiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    shard: u32,
    slot: u32,
}

fn shard(index: usize) -> MutexGuard<'static, Shard> {
    // Nothing panics under the lock.
    REGISTRY[index]
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

fn my_shard() -> usize {
    MY_SHARD
        .try_with(|s| {
            let mut index = s.get();
            if index == usize::MAX {
                index = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
                s.set(index);
            }
            index
        })
        .unwrap_or(0)
}

/// Who waits and since when: the executor's task (or a thread it runs
/// outside its tasks, such as its `block_on`), or a plain thread in a
/// blocking wait. `None`: an async wait outside any executor that set a
/// source (nobody to name and no cheap clock): not listed.
fn stamp(api: WaitApi) -> Option<(Option<u64>, Option<Thread>, Instant)> {
    match TASK_SOURCE.get().and_then(|source| source()) {
        Some(TaskStamp {
            task: Some(task),
            now,
        }) => Some((Some(task), None, now)),
        Some(TaskStamp { task: None, now }) => Some((None, Some(std::thread::current()), now)),
        // A blocking wait parks the thread: a clock read is cheap beside that.
        None if api == WaitApi::Blocking => {
            Some((None, Some(std::thread::current()), Instant::now()))
        }
        None => None,
    }
}

/// Lists a waiter that just linked its entry; `key` is its record from an
/// earlier sleep of the same wait, if any (then updated in place). `None`:
/// not listed (see [`stamp`]).
pub(crate) fn record(
    key: Option<Key>,
    queue: QueueId,
    queue_name: Option<&'static str>,
    site: &'static Location<'static>,
    kind: WaitKind,
) -> Option<Key> {
    if !is_enabled() {
        if let Some(key) = key {
            remove(key);
        }
        return None;
    }
    let Some((task, thread, since)) = stamp(kind.api) else {
        if let Some(key) = key {
            remove(key);
        }
        return None;
    };
    if let Some(key) = key {
        let mut shard = shard(key.shard as usize);
        shard.sleeps += 1;
        let sleep = shard.sleeps * SHARDS as u64 + key.shard as u64;
        if let Some(w) = shard.waiting.get_mut(key.slot as usize) {
            w.since = since;
            w.sleep = sleep;
            w.task = task;
            w.queue_name = queue_name;
            w.kind = kind;
            return Some(key);
        }
    }
    let index = my_shard();
    let mut shard = shard(index);
    shard.sleeps += 1;
    let sleep = shard.sleeps * SHARDS as u64 + index as u64;
    let slot = shard.waiting.insert(Waiting {
        queue,
        queue_name,
        site,
        kind,
        since,
        task,
        thread,
        sleep,
    });
    Some(Key {
        shard: index as u32,
        slot: u32::try_from(slot).expect("fewer than 2^32 sleepers per shard"),
    })
}

/// The wait ended: unlists it.
pub(crate) fn remove(key: Key) {
    let removed = shard(key.shard as usize)
        .waiting
        .try_remove(key.slot as usize);
    // A thread handle is dropped outside the lock.
    drop(removed);
}

/// Every waiter sleeping now (each shard is read under its lock, one at a
/// time: a waiter that moves between shards while this runs may be missed
/// or seen twice).
///
/// # Examples
///
/// See the [module docs](self).
pub fn snapshot() -> Vec<Waiting> {
    let mut all = Vec::new();
    for index in 0..SHARDS {
        let shard = shard(index);
        all.reserve(shard.waiting.len());
        all.extend(shard.waiting.iter().map(|(_, w)| w.clone()));
    }
    all
}
