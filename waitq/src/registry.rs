//! The wait registry: who sleeps on which queue, where, how, and since when.
//!
//! Every waiter that actually sleeps (its condition was false and it
//! linked an entry) is listed here from the link until it sees that its
//! entry is gone (a wake took it, or the wait ended): the queue (address
//! and [name](crate::WaitQueue::named)), the wait site (`#[track_caller]`),
//! the [kind](WaitKind) of wait (interruptible, exclusive, its deadline...),
//! since when, and who waits: the task an executor names through
//! [`set_task_source`], or the plain thread. A waiter woken with its
//! condition still false sleeps again under a new record. A wait whose
//! condition is already true never touches the registry. It is off until
//! something asks for it, and then stays on for the process; a dump or a
//! hung-task detector reads it without polling anything. It has two
//! levels:
//!
//! - **Slots** ([`enable_slots`]: the runtime `waitrt` turns it on by
//!   default, its `Builder::wait_registry(false)` leaves it off): an executor keeps a [`SleepSlot`] per task and
//!   [enters](enter_slot) it while it polls the task; a task's sleep is
//!   written there with plain stores, and its executor reads the slots of
//!   its tasks for a dump. A second sleep of the same task at once, a
//!   sleep outside any task and a plain thread's blocking wait go to the
//!   shared map ([`snapshot`]).
//! - **The whole registry** ([`enable`]: a runtime with a hung-task or
//!   lost-grant detector turns it on): every sleep goes to the shared map,
//!   which also notes when an exclusive wake picked a waiter, what the
//!   detectors compare between their checks.
//!
//! # Cost
//!
//! Off, a sleep pays one relaxed load and a wait's end one byte test: the
//! waiter and the queue entry keep the size they had without the registry
//! (a test checks it). The waiter keeps one "recorded" bit and finds its
//! record again by its queue and its entry's sequence number; the site,
//! kind and deadline are written only into the record.
//!
//! With slots, a task's sleep costs about 8 stores into its slot (a
//! sequence count around the queue, entry, site, kind, and the time from
//! a coarse clock the executor keeps: [`tick`]), and its end one compare
//! and one store: about 47 instructions to write the record (its kind is
//! kept packed in the waiter, its name's bits in the queue) and 20 to
//! clear it, about 110 per sleep with the executor's per-poll part, on a
//! ping-pong of two tasks whose sleep costs about 1,050 without
//! (callgrind, `RT_BENCH_CHILD=ping_pong/ct RT_BENCH_SCALE=0.05
//! RT_BENCH_CONTENDER=ours`, against `RT_BENCH_WAIT_REGISTRY=0`: 10.4 %
//! more instructions; 12.2 % before the packing).
//!
//! In the shared map, a sleep writes one record into a shard picked by
//! that key (one uncontended lock, a hash-map insert: no allocation once
//! the shard has grown, no backtrace, one more lock to read the queue's
//! name), and the entry's end removes it (one more lock); a timed wait
//! adds one lock to note its deadline. About 50 ns per sleep: the same
//! ping-pong ran 1.6x slower (`RT_BENCH_WAIT_REGISTRY=full`). The time
//! comes from the executor's task source (the coarse clock) or, outside a
//! task, from `Instant::now()`.
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

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasherDefault;
use std::panic::Location;
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::Instant;

use crate::entry::TaskState;
use crate::hook::QueueId;
use crate::sync::{AtomicU64, AtomicU8, Mutex, MutexGuard, Ordering, PoisonError};

mod holders;
mod slot;

pub use holders::{
    clear_last_holder, forget_holders, held_shared, holder_of, set_holder, set_last_holder, HeldAs,
};

pub use slot::{
    enter_owned_slot, enter_slot, in_owned_slot, in_shared_map, unlisted, RawSleep, SleepSlot,
    SlotRecord,
};
pub(crate) use slot::{name_bits_of, pack_kind, SlotName};

/// A value alone in its cache line: the linker placed [`MODE`], read on
/// every sleep and every poll, and [`COARSE`], written whenever a thread
/// parked, side by side in one line, so that a park on one worker could
/// cost the other worker's next poll a cache miss. (Measured after the
/// split: ping_pong and herd on 2 workers moved within their noise,
/// about 3 %.)
#[repr(align(64))]
struct OwnLine<T>(T);

impl<T> std::ops::Deref for OwnLine<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// What is listed: [`SLOTS`], [`FULL`], both or neither.
static MODE: OwnLine<AtomicU8> = OwnLine(AtomicU8::new(0));
/// Tasks' sleeps go to their [`SleepSlot`]s (see [`enable_slots`]).
const SLOTS: u8 = 1;
/// Every sleep goes to the shared map (see [`enable`]).
const FULL: u8 = 2;

/// Turns the whole registry on for the rest of the process: from now on
/// every waiter that sleeps is listed in the shared map, with the holders
/// of locks and the exclusive wakes' picks. (Waits already asleep are
/// listed from their next sleep.)
pub fn enable() {
    MODE.fetch_or(FULL, Ordering::Relaxed);
}

/// Whether the whole registry is on (see [`enable`]).
#[inline]
pub fn is_enabled() -> bool {
    MODE.load(Ordering::Relaxed) & FULL != 0
}

/// Turns on the listing of tasks' sleeps in their [`SleepSlot`]s, for
/// the rest of the process: an executor that gives each task a slot (and
/// [enters](enter_slot) it while it polls the task) calls this once. A
/// sleep outside any slot then goes to the shared map if the executor's
/// [task source](set_task_source) names a task or thread for it.
pub fn enable_slots() {
    MODE.fetch_or(SLOTS, Ordering::Relaxed);
}

/// Whether tasks' sleeps may go to their slots ([`enable_slots`]): an
/// executor enters its tasks' slots only then (one relaxed load).
#[inline]
pub fn slots_enabled() -> bool {
    MODE.load(Ordering::Relaxed) & SLOTS != 0
}

/// What the registry lists, as [`listing`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Listing {
    /// Nothing.
    Off,
    /// Tasks' sleeps in their slots ([`enable_slots`]).
    Slots,
    /// Every sleep in the shared map ([`enable`]; slots are not used then,
    /// even if they were enabled too).
    Whole,
}

/// What the registry lists now, in one relaxed load: for an executor that
/// acts on it on every poll (enters the task's slot, or counts the poll
/// for a detector).
///
/// # Examples
///
/// ```
/// use waitq::registry::{self, Listing};
/// registry::enable_slots();
/// assert_ne!(registry::listing(), Listing::Off);
/// ```
#[inline]
pub fn listing() -> Listing {
    let mode = MODE.load(Ordering::Relaxed);
    if mode & FULL != 0 {
        Listing::Whole
    } else if mode & SLOTS != 0 {
        Listing::Slots
    } else {
        Listing::Off
    }
}

/// Whether sleeps are listed at all, in the shared map or in slots (one
/// relaxed load: the only cost on a sleep while nothing is listed). A
/// primitive with a fast path that bypasses the wait queue takes its
/// queue path while this is true, so its sleeps are listed.
///
/// # Examples
///
/// ```
/// waitq::registry::enable();
/// assert!(waitq::registry::is_recording());
/// ```
#[inline]
pub fn is_recording() -> bool {
    MODE.load(Ordering::Relaxed) != 0
}

// ===== the coarse clock =====

static EPOCH: OnceLock<Instant> = OnceLock::new();
/// Nanoseconds since [`EPOCH`] at the last [`tick`] that moved it.
static COARSE: OwnLine<AtomicU64> = OwnLine(AtomicU64::new(0));

/// A [`tick`] moves the coarse clock only once it is this far behind
/// (nanoseconds): every sleep listed in a slot reads the clock's line,
/// which a store on every park (hundreds of thousands a second on two
/// busy workers) would take from the readers' caches each time. The
/// clock dates sleeps that a dump shows in seconds and the detectors
/// judge in milliseconds or more.
const COARSE_STEP: u64 = 100_000;

fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// Reads the clock and returns it, and moves the coarse clock that dates
/// the sleeps written to [`SleepSlot`]s to it if it lags by 100 µs or
/// more. An executor calls it where it reads the clock anyway (when a
/// thread parks, when it checks its timers).
///
/// # Examples
///
/// ```
/// let now = waitq::registry::tick();
/// assert!(waitq::registry::coarse_now() <= now);
/// assert!(now - waitq::registry::coarse_now() < std::time::Duration::from_micros(100));
/// ```
pub fn tick() -> Instant {
    let epoch = epoch();
    let now = Instant::now();
    let nanos = now.saturating_duration_since(epoch).as_nanos();
    let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
    // A load and, once it moved far enough, a plain store: two threads'
    // ticks may land out of order, which only makes the coarse clock
    // coarser (readers saturate).
    if nanos >= COARSE.load(Ordering::Relaxed).saturating_add(COARSE_STEP) {
        COARSE.store(nanos, Ordering::Relaxed);
    }
    now
}

/// The coarse clock in nanoseconds since its epoch (one relaxed load).
#[inline]
pub fn coarse_nanos() -> u64 {
    COARSE.load(Ordering::Relaxed)
}

/// The instant `nanos` (from [`coarse_nanos`]) stands for.
pub fn at(nanos: u64) -> Instant {
    epoch() + std::time::Duration::from_nanos(nanos)
}

/// The time at the last [`tick`].
pub fn coarse_now() -> Instant {
    at(coarse_nanos())
}

/// Shards of the registry, picked by the record's key.
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
    /// An [`RcuWait`](crate::RcuWait)'s one waiter, from a task or a
    /// plain thread.
    RcuWait,
    /// A [`HandoffQueue`](crate::HandoffQueue)'s waiter (a semaphore's,
    /// a lock's).
    Handoff,
}

impl WaitApi {
    /// Three bits, kept in the waiter's flags.
    pub(crate) const fn to_bits(self) -> u8 {
        self as u8
    }

    /// The inverse of [`to_bits`](Self::to_bits).
    pub(crate) fn from_bits(bits: u8) -> WaitApi {
        match bits {
            1 => WaitApi::Lock,
            2 => WaitApi::Blocking,
            3 => WaitApi::Prepare,
            4 => WaitApi::Poll,
            5 => WaitApi::RcuWait,
            6 => WaitApi::Handoff,
            _ => WaitApi::Event,
        }
    }
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
            WaitApi::RcuWait => "rcuwait_wait_event",
            WaitApi::Handoff => "handoff_wait",
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
    /// The task that holds what the queue's waiters wait for (a lock's
    /// owner), if whoever owns the queue says ([`set_holder`],
    /// [`set_last_holder`], [`held_shared`]) and a task holds it now.
    /// Kernel: the blocker the hung-task detector names
    /// (`hung_task_detect_blocker`, 2025).
    pub holder: Option<u64>,
    /// How `holder` holds it: its one owner, only the task that last took
    /// a semaphore (others may hold permits too; kernel: "likely last held
    /// by"), or one of its readers.
    pub held_as: HeldAs,
    /// When an exclusive wake took this waiter's entry (handed it the
    /// lock, permit, slot or turn) while its future has not yet acted on
    /// it: the record stays listed until the future's next poll. Long ago,
    /// with its task running meanwhile, it is a lost grant ("futurelock":
    /// a future left unpolled in a `select!` while others queue behind it).
    pub picked: Option<Instant>,
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

/// A record's key: the queue and the registration sequence number of the
/// entry the waiter linked (unique while the queue lives, see `list.rs`).
/// The waiter keeps only one bit ("recorded") and finds its record again by
/// its handle, so that a wait is no larger with the registry than without.
type RecordKey = (usize, u64);

/// A fixed, cheap hash for [`RecordKey`]s (no random state: the maps are
/// built in a `static`).
#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

type Map = HashMap<RecordKey, Waiting, BuildHasherDefault<KeyHasher>>;

struct Shard {
    waiting: Map,
    sleeps: u64,
}

/// Keeps each shard's lock off its neighbours' cache lines.
#[repr(align(128))]
struct Padded(Mutex<Shard>);

static REGISTRY: [Padded; SHARDS] = [const {
    Padded(Mutex::new(Shard {
        waiting: HashMap::with_hasher(BuildHasherDefault::new()),
        sleeps: 0,
    }))
}; SHARDS];

fn shard_of(key: RecordKey) -> usize {
    // Queue addresses are aligned; sequence numbers count up by one.
    ((key.0 >> 4) ^ key.1 as usize) % SHARDS
}

fn shard(index: usize) -> MutexGuard<'static, Shard> {
    // Nothing panics under the lock.
    REGISTRY[index]
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Who waits and since when: the executor's task (or a thread it runs
/// outside its tasks, such as its `block_on`), or a plain thread in a
/// blocking wait. `None`: an async wait outside any executor that set a
/// source (nobody to name and no cheap clock): not listed.
fn stamp(api: WaitApi) -> Option<(Option<u64>, Option<Thread>, Instant)> {
    if slot::is_unlisted() {
        return None;
    }
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

/// Lists a waiter that just linked the entry with sequence number `seq` on
/// `queue` (the slow path, and only while the registry is on: callers test
/// [`is_recording`] first). Returns whether it was listed (see [`stamp`]);
/// the waiter then calls [`remove`] with the same key when that entry is
/// gone (taken by a wake it has seen, or unlinked).
#[inline]
pub(crate) fn record(
    queue: &crate::WaitQueue,
    seq: u64,
    site: &'static Location<'static>,
    kind: WaitKind,
) -> bool {
    record_on(QueueId::of(queue), queue.name(), seq, site, kind).any()
}

/// The hot wait's way in: the current task's slot, if it is empty and
/// takes the sleep of `queue` as it is (the whole registry is off and the
/// queue's name, if any, is read without its lock), with that name;
/// `None`: take [`record`]'s way.
#[inline(always)]
pub(crate) fn free_slot(queue: &crate::WaitQueue) -> Option<(&'static SleepSlot, u64, SlotName)> {
    if MODE.load(Ordering::Relaxed) & FULL != 0 {
        return None;
    }
    let name = queue.slot_name_unlocked()?;
    slot::current_free().map(|(slot, owner)| (slot, owner, name))
}

/// Where [`record_on`] listed a sleep, so that a wake from another task
/// unlists it from the right place ([`remove_listed`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Listed {
    /// Not listed (the registry is off, or there was nothing to stamp).
    #[default]
    No = 0,
    /// In the sleeping task's own slot.
    InSlot,
    /// In the shared map.
    InMap,
}

impl Listed {
    /// Listed somewhere.
    pub(crate) fn any(self) -> bool {
        self != Listed::No
    }

    /// As a byte, for an atomic beside other flags.
    pub(crate) const fn to_bits(self) -> u8 {
        self as u8
    }

    /// Back from [`to_bits`](Self::to_bits).
    pub(crate) const fn from_bits(bits: u8) -> Listed {
        match bits {
            1 => Listed::InSlot,
            2 => Listed::InMap,
            _ => Listed::No,
        }
    }
}

/// [`record`] for a waiter on something other than a
/// [`WaitQueue`](crate::WaitQueue) (an [`RcuWait`](crate::RcuWait)),
/// identified by `queue` and named `queue_name`.
#[inline]
pub(crate) fn record_on(
    queue: QueueId,
    queue_name: Option<&'static str>,
    seq: u64,
    site: &'static Location<'static>,
    kind: WaitKind,
) -> Listed {
    record_at(queue, queue_name, seq, site, kind).0
}

/// [`record_on`], and where in a slot the sleep went, if it went to one.
#[inline]
pub(crate) fn record_at(
    queue: QueueId,
    queue_name: Option<&'static str>,
    seq: u64,
    site: &'static Location<'static>,
    kind: WaitKind,
) -> (Listed, Option<SlotRecord>) {
    if MODE.load(Ordering::Relaxed) & FULL == 0 {
        let packed = slot::pack_kind(kind.api.to_bits(), kind.state, kind.exclusive);
        if let Some(at) = slot::try_record(queue, queue_name, seq, site, packed) {
            return (Listed::InSlot, Some(at));
        }
    }
    if record_in_map(queue, queue_name, seq, site, kind) {
        (Listed::InMap, None)
    } else {
        (Listed::No, None)
    }
}

/// [`record_on`] into the shared map: the whole registry is on, or no
/// task's slot could take the sleep.
#[cold]
#[inline(never)]
fn record_in_map(
    queue: QueueId,
    queue_name: Option<&'static str>,
    seq: u64,
    site: &'static Location<'static>,
    kind: WaitKind,
) -> bool {
    let Some((task, thread, since)) = stamp(kind.api) else {
        return false;
    };
    let key = (queue.addr(), seq);
    let index = shard_of(key);
    let mut shard = shard(index);
    shard.sleeps += 1;
    let sleep = shard.sleeps * SHARDS as u64 + index as u64;
    let old = shard.waiting.insert(
        key,
        Waiting {
            queue,
            queue_name,
            site,
            kind,
            since,
            task,
            thread,
            sleep,
            holder: None,
            held_as: HeldAs::Owner,
            picked: None,
        },
    );
    drop(shard);
    drop(old);
    true
}

/// Sets the deadline of a listed timed wait (its future knows it; the
/// waiter does not carry it).
#[inline]
pub(crate) fn set_deadline(queue: &crate::WaitQueue, seq: u64, deadline: Option<Instant>) {
    set_deadline_on(QueueId::of(queue), seq, deadline);
}

/// [`set_deadline`] for a sleep listed by [`record_on`].
#[inline]
pub(crate) fn set_deadline_on(queue: QueueId, seq: u64, deadline: Option<Instant>) {
    if !slot::try_set_deadline(queue, seq, deadline) {
        set_deadline_in_map(queue, seq, deadline);
    }
}

#[cold]
#[inline(never)]
fn set_deadline_in_map(queue: QueueId, seq: u64, deadline: Option<Instant>) {
    let key = (queue.addr(), seq);
    if let Some(w) = shard(shard_of(key)).waiting.get_mut(&key) {
        w.kind.deadline = deadline;
    }
}

/// An exclusive wake of `queue` took the entries `seqs` (after its lock
/// hold, before it wakes their owners): their records note when, until
/// each owner acts on it and unlists its sleep. Only while the registry is
/// on (the caller tests [`is_enabled`]).
#[cold]
#[inline(never)]
pub(crate) fn note_picked(queue: &crate::WaitQueue, seqs: &[u64]) {
    note_picked_on(QueueId::of(queue), seqs);
}

/// [`note_picked`] for a sleep listed by [`record_on`].
#[cold]
#[inline(never)]
pub(crate) fn note_picked_on(queue: QueueId, seqs: &[u64]) {
    let now = Instant::now();
    let queue = queue.addr();
    for &seq in seqs {
        let key = (queue, seq);
        if let Some(w) = shard(shard_of(key)).waiting.get_mut(&key) {
            w.picked.get_or_insert(now);
        }
    }
}

/// The entry `seq` of `queue` is gone: unlists its sleep.
#[inline]
pub(crate) fn remove(queue: &crate::WaitQueue, seq: u64) {
    remove_on(QueueId::of(queue), seq);
}

/// [`remove`] for a sleep listed by [`record_on`].
#[inline]
pub(crate) fn remove_on(queue: QueueId, seq: u64) {
    if !slot::try_remove(queue, seq) {
        remove_from_map(queue, seq);
    }
}

/// Unlists a sleep from where [`record_on`] listed it, on any thread: from
/// the map at once; from a task's slot only when that slot is the
/// current one (the sleeper's own poll ends its wait). A wake from
/// another task leaves the sleeper's slot to the sleeper, which clears it
/// when it runs again (or from afar, where it moved: [`SlotRecord`]):
/// looking for it in the map instead cost every such wake a map lookup,
/// and left the record in the slot, so that the sleeper's later sleeps
/// all went to the map (a TCP echo round trip ran 1.4x the instructions
/// with the registry on).
#[inline]
pub(crate) fn remove_listed(queue: QueueId, seq: u64, listed: Listed) {
    match listed {
        Listed::No => {}
        Listed::InSlot => {
            slot::try_remove(queue, seq);
        }
        Listed::InMap => remove_from_map(queue, seq),
    }
}

/// Lists the current task's sleep on `queue` in the task's own slot, for
/// a wait that is not one of waitq's: an executor's primitive with a state
/// word of its own (the runtime's oneshot receiver), which cannot afford a
/// wait queue on its fast path. Only while the registry records, the
/// whole registry is off and the slot is free ([`slot_is_free`]); returns
/// where it listed the sleep, if it did. The sleeper calls
/// [`forget_sleep_at`] with it when it runs again, and when it gives up
/// (it may do so in another task: a receiver handed on).
///
/// # Examples
///
/// ```
/// use waitq::registry::{self, SleepSlot, WaitApi, WaitKind};
/// use waitq::TaskState;
/// static SLOT: SleepSlot = SleepSlot::new();
/// static STATE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// let id = waitq::hook::QueueId::of_ptr(&STATE);
/// registry::enable_slots();
/// registry::enter_slot(Some(&SLOT)); // "polling the task"
/// let kind = WaitKind::new(WaitApi::Poll, TaskState::Uninterruptible, false, None);
/// let at = registry::note_sleep(id, Some("my_state"), std::panic::Location::caller(), kind);
/// assert_eq!(SLOT.read().unwrap().queue, id);
/// registry::forget_sleep_at(at.unwrap(), id); // it runs again
/// assert!(SLOT.read().is_none());
/// registry::enter_slot(None);
/// ```
///
/// Inlined, so that a caller's constant kind and name are packed at
/// compile time (packed at run time they were a quarter of the call's
/// ~45 instructions).
#[inline(always)]
pub fn note_sleep(
    queue: QueueId,
    queue_name: Option<&'static str>,
    site: &'static Location<'static>,
    kind: WaitKind,
) -> Option<SlotRecord> {
    // One load for both tests: slots on, the whole registry off.
    if MODE.load(Ordering::Relaxed) & (SLOTS | FULL) != SLOTS {
        return None;
    }
    let packed = slot::pack_kind(kind.api.to_bits(), kind.state, kind.exclusive);
    slot::try_record(queue, queue_name, SOLE_SEQ, site, packed)
}

/// Whether [`note_sleep`] would list a sleep now: the registry records
/// into slots only (not the whole registry), and the task being polled on
/// this thread has a free slot.
#[inline]
pub fn slot_is_free() -> bool {
    is_recording() && !is_enabled() && slot::current_free().is_some()
}

/// The sleeper that [`note_sleep`] listed at `at` runs again (or gives
/// up): its sleep is no longer listed, in the current task's slot or, if
/// the sleeper moved to another task since, in the slot it was listed in.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU64;
/// use waitq::registry::{self, SleepSlot, WaitApi, WaitKind};
/// use waitq::TaskState;
/// static FIRST: SleepSlot = SleepSlot::new();
/// static SECOND: SleepSlot = SleepSlot::new();
/// static STATE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// let id = waitq::hook::QueueId::of_ptr(&STATE);
/// let kind = WaitKind::new(WaitApi::Poll, TaskState::Uninterruptible, false, None);
/// registry::enable_slots();
/// let site = std::panic::Location::caller();
/// let first = NonZeroU64::new(1).unwrap();
/// let at = registry::in_owned_slot(&FIRST, first, || registry::note_sleep(id, None, site, kind));
/// // Handed to another task, which ends the wait there.
/// let second = NonZeroU64::new(2).unwrap();
/// registry::in_owned_slot(&SECOND, second, || registry::forget_sleep_at(at.unwrap(), id));
/// assert!(FIRST.read().is_none());
/// ```
#[inline]
pub fn forget_sleep_at(at: SlotRecord, queue: QueueId) {
    if !slot::try_remove(queue, SOLE_SEQ) {
        forget_elsewhere(at, queue);
    }
}

#[cold]
#[inline(never)]
fn forget_elsewhere(at: SlotRecord, queue: QueueId) {
    at.clear(queue, SOLE_SEQ);
}

/// Unlists sleep `seq` of `queue` from the current task's slot, if it is
/// there; returns whether it was.
#[inline]
pub(crate) fn remove_here(queue: QueueId, seq: u64) -> bool {
    slot::try_remove(queue, seq)
}

/// The key's sequence part for a wait with one sleeper at most (an
/// [`RcuWait`](crate::RcuWait), a [`note_sleep`] sleep): one sleeper, one
/// key.
pub(crate) const SOLE_SEQ: u64 = 0;

/// [`remove_on`] from the shared map: the sleep is not in the current
/// task's slot (it went to the map, or the wait ends outside its task).
#[cold]
#[inline(never)]
fn remove_from_map(queue: QueueId, seq: u64) {
    let key = (queue.addr(), seq);
    let removed = {
        let mut shard = shard(shard_of(key));
        let removed = shard.waiting.remove(&key);
        // The map is process-wide: a peak of sleeps (a task joining a
        // million waits, a `block_on` with many) kept its table for the
        // life of the process (an independent probe: 322 MB after the
        // runtime was gone). A table a quarter full gives half back.
        let (len, capacity) = (shard.waiting.len(), shard.waiting.capacity());
        if capacity > MAP_KEEP && len < capacity / 4 {
            shard.waiting.shrink_to((len * 2).max(MAP_KEEP));
        }
        removed
    };
    // A thread handle is dropped outside the lock.
    drop(removed);
}

/// Entries a registry shard keeps room for however empty it gets.
const MAP_KEEP: usize = 64;

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
        all.extend(shard.waiting.values().cloned());
    }
    for waiting in &mut all {
        let holder = holders::holder(waiting.queue);
        waiting.holder = holder.map(|(task, _)| task);
        waiting.held_as = holder.map_or(HeldAs::Owner, |(_, held_as)| held_as);
    }
    all
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use crate::entry::Entry;
    use crate::wait::Waiter;
    use crate::{WaitEntry, WaitQueue};

    /// The registry costs a sleep nothing while it is off only if the
    /// structures every wait and wake touches keep their size: the waiter
    /// carries one "recorded" bit (in its flags) and finds its record by its
    /// handle; site, kind and deadline live only in the record. These are
    /// the sizes before the registry (x86_64 and other 64-bit targets).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn hot_structs_keep_their_size() {
        // 40 before it kept its entry's sequence number (the hand-off of
        // a keyed wake names the pick).
        assert_eq!(size_of::<Waiter<&WaitQueue>>(), 48, "Waiter grew");
        assert_eq!(size_of::<WaitEntry<'static>>(), 72, "WaitEntry grew");
        assert_eq!(size_of::<Entry>(), 48, "the queue's Entry grew");
        // 152 before the inline first slot (a list node, 80 B) was added.
        // 232 before the name given at construction was kept outside the
        // lock (16 B), so that a sleep on a named queue takes the slot's
        // fast way.
        // And 248 before the keyed picks it remembers for hand-offs (a
        // box, allocated at the first).
        assert_eq!(size_of::<WaitQueue>(), 256, "WaitQueue grew");
    }

    /// Every record of `queue` now.
    fn records(queue: &WaitQueue) -> Vec<super::Waiting> {
        let me = crate::hook::QueueId::of(queue);
        super::snapshot()
            .into_iter()
            .filter(|w| w.queue == me)
            .collect()
    }

    /// Polls `ok` on the records of `queue` until it holds (watchdog: 10 s).
    fn records_until(
        queue: &WaitQueue,
        ok: impl Fn(&[super::Waiting]) -> bool,
    ) -> Vec<super::Waiting> {
        let start = std::time::Instant::now();
        loop {
            let now = records(queue);
            if ok(&now) {
                return now;
            }
            assert!(
                start.elapsed() < WATCHDOG,
                "records never got there: {now:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    const WATCHDOG: std::time::Duration = std::time::Duration::from_secs(10);

    /// The process-wide map gives memory back: a peak of sleeps listed in
    /// it (here 20,000 futures polled once on this thread, where no task
    /// slot takes them) leaves its shards a quarter full at most once
    /// they end (they kept their peak table for the life of the process:
    /// an independent probe saw 322 MB kept).
    #[test]
    fn the_map_shrinks_after_a_peak_of_sleeps() {
        static PEAK: WaitQueue = WaitQueue::named("registry_peak");
        super::enable();
        let capacity = || {
            (0..super::SHARDS)
                .map(|i| super::shard(i).waiting.capacity())
                .sum::<usize>()
        };
        let queue = crate::hook::QueueId::of(&PEAK);
        let kind = super::WaitKind::new(
            super::WaitApi::Blocking,
            crate::TaskState::Uninterruptible,
            false,
            None,
        );
        let site = std::panic::Location::caller();
        // Sequence numbers far above any real entry of this queue.
        let seqs = (1u64 << 40)..(1u64 << 40) + 20_000;
        for seq in seqs.clone() {
            assert!(super::record_on(queue, Some("registry_peak"), seq, site, kind).any());
        }
        let peak = capacity();
        assert!(peak >= 20_000, "the sleeps were not in the map: {peak}");
        for seq in seqs {
            super::remove_from_map(queue, seq);
        }
        let after = capacity();
        assert!(after < peak / 4, "the map kept {after} of {peak} slots");
    }

    /// A timed wait's record carries its deadline (the waiter does not: its
    /// future notes it after the poll that put it to sleep), and the record
    /// goes when the wait ends.
    #[test]
    fn a_timed_sleep_is_listed_with_its_deadline_until_it_ends() {
        static Q: WaitQueue = WaitQueue::named("registry_timed");
        static GO: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        super::enable();
        let before = std::time::Instant::now();
        let waiter = std::thread::spawn(|| {
            Q.blocking_wait_event_timeout(std::time::Duration::from_secs(3600), || {
                GO.load(std::sync::atomic::Ordering::SeqCst)
            })
        });
        let listed = records_until(&Q, |r| r.iter().any(|w| w.kind.deadline.is_some()));
        assert_eq!(listed.len(), 1, "one sleeper, one record: {listed:?}");
        let w = &listed[0];
        assert_eq!(w.kind.to_string(), "blocking_wait_event_timeout");
        assert_eq!(w.queue_name, Some("registry_timed"));
        assert!(!w.kind.is_uninterruptible(), "a timed wait ends by itself");
        let deadline = w.kind.deadline.expect("deadline");
        assert!(
            deadline >= before + std::time::Duration::from_secs(3599),
            "{deadline:?}"
        );
        GO.store(true, std::sync::atomic::Ordering::SeqCst);
        Q.wake_up_all();
        waiter.join().unwrap().expect("woken before the deadline");
        assert!(records(&Q).is_empty(), "the ended wait is still listed");
    }

    /// A waiter woken with its condition still false sleeps again: its old
    /// record goes with the entry the wake took, and the new sleep gets a
    /// new record (a new sleep id), never two at once.
    #[test]
    fn a_waiter_that_sleeps_again_has_one_record() {
        static Q: WaitQueue = WaitQueue::new();
        static STEP: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        super::enable();
        let waiter = std::thread::spawn(|| {
            Q.blocking_wait_event(|| STEP.load(std::sync::atomic::Ordering::SeqCst) >= 2)
        });
        let first = records_until(&Q, |r| r.len() == 1);
        assert_eq!(first[0].kind.to_string(), "blocking_wait_event");
        assert!(first[0].kind.is_uninterruptible());
        // Wake with the condition false: the waiter re-links.
        STEP.store(1, std::sync::atomic::Ordering::SeqCst);
        Q.wake_up_all();
        let second = records_until(&Q, |r| r.len() == 1 && r[0].sleep != first[0].sleep);
        assert_eq!(second.len(), 1, "{second:?}");
        STEP.store(2, std::sync::atomic::Ordering::SeqCst);
        Q.wake_up_all();
        waiter.join().unwrap().unwrap();
        assert!(records(&Q).is_empty(), "the ended wait is still listed");
    }

    #[test]
    fn api_bits_round_trip() {
        use super::WaitApi;
        for api in [
            WaitApi::Event,
            WaitApi::Lock,
            WaitApi::Blocking,
            WaitApi::Prepare,
            WaitApi::Poll,
            WaitApi::RcuWait,
            WaitApi::Handoff,
        ] {
            assert!(api.to_bits() < 8, "three bits in the waiter's flags");
            assert_eq!(WaitApi::from_bits(api.to_bits()), api);
        }
    }
}
