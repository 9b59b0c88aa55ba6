//! A task's own sleep record: how the registry lists a task's sleep with
//! plain stores, no lock and no map, so that it can stay on.
//!
//! An executor keeps one [`SleepSlot`] for each task and makes it the
//! thread's current slot while it polls that task ([`enter_slot`]). A
//! waiter that goes to sleep in that poll writes its record into the slot
//! (queue, entry, site, kind, since), and clears it when its entry goes.
//! A dump copies the slot out with [`SleepSlot::read`], without polling
//! the task or waiting for it.
//!
//! The slot is a sequence lock (the kernel's `seqcount_t`): its one writer
//! is the task being polled (one thread at a time), which makes the count
//! odd, stores the fields, and makes it even again; a reader copies the
//! fields and keeps the copy only if the count was even and unchanged.
//! The writer never waits for a reader.
//!
//! One slot per task: a task asleep on a second queue at once (a
//! `select!` over two waits) lists that second sleep in the registry's
//! shared map, as it does a sleep outside any task.
//!
//! A wait that slept in one task and ends in another (a join handle
//! polled in one task, then awaited or dropped in another): an
//! [`RcuWait`](crate::RcuWait) keeps the slot it wrote to, and its end
//! clears the record there, or moves it when the other task sleeps on it;
//! a [`note_sleep`](super::note_sleep) sleeper does the same with the
//! [`SlotRecord`] it got ([`forget_sleep_at`](super::forget_sleep_at)).
//! A [`WaitQueue`](crate::WaitQueue) wait keeps no such room (its waiter
//! stays the size it has without the registry), so its record stays in
//! the first task's slot while that task lives, listing the task on the
//! queue and sending its later sleeps to the shared map.
//!
//! A slot that passes from task to task ([`enter_owned_slot`]) stamps each
//! record with its writer, and a record stamped by another task counts as
//! empty: an executor need not clear the slot when a task ends (that
//! store, one cache miss per task among 100,000 live ones, cost
//! spawn_many 1.16x its time).

use std::cell::Cell;
use std::panic::Location;
use std::time::{Duration, Instant};

use super::{WaitApi, WaitKind, Waiting};
use crate::entry::TaskState;
use crate::hook::QueueId;
use crate::sync::{fence, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// One task's current sleep (see the [registry's docs](super)): 64 bytes, kept
/// for each task by its executor.
///
/// # Examples
///
/// ```
/// use std::future::Future;
/// use waitq::registry::{self, SleepSlot};
/// static SLOT: SleepSlot = SleepSlot::new();
/// static QUEUE: waitq::WaitQueue = waitq::WaitQueue::named("slot_example");
///
/// registry::enable_slots();
/// registry::enter_slot(Some(&SLOT)); // "polling the task"
/// let mut wait = QUEUE.wait_event(|| false);
/// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// assert!(std::pin::Pin::new(&mut wait).poll(&mut cx).is_pending());
/// let sleep = SLOT.read().expect("asleep");
/// assert_eq!(sleep.queue, waitq::hook::QueueId::of(&QUEUE));
/// assert_eq!(sleep.kind.to_string(), "wait_event");
/// drop(wait); // the wait ended (in the same poll): the slot is empty
/// assert!(SLOT.read().is_none());
/// registry::enter_slot(None); // the poll ended
/// ```
#[derive(Debug, Default)]
pub struct SleepSlot {
    /// The sequence count: odd while the writer stores.
    version: AtomicU32,
    /// [`WaitKind`] without its deadline (`pack_kind`), [`HAS_NAME`], and
    /// the name's length from bit [`NAME_LEN_SHIFT`] ([`name_bits_of`]).
    kind: AtomicU32,
    /// The queue's address; 0: the slot is empty.
    queue: AtomicUsize,
    /// The entry's sequence number on that queue.
    seq: AtomicU64,
    /// Always from a `&'static Location` (or null, before the first sleep).
    site: AtomicPtr<Location<'static>>,
    /// The queue's name: always from one `&'static str`, its length in
    /// `kind`'s high bits (a name only while `kind` has [`HAS_NAME`]).
    name: AtomicPtr<u8>,
    /// Who wrote the record ([`enter_owned_slot`]; 0: [`enter_slot`]).
    owner: AtomicU64,
    /// On the coarse clock ([`super::coarse_nanos`]).
    since: AtomicU64,
    /// Nanoseconds since the epoch plus one, valid while `kind` has
    /// [`HAS_DEADLINE`].
    deadline: AtomicU64,
}

/// A [`SleepSlot`]'s record as [`SleepSlot::read`] copies it. The site
/// and the name are raw: a crate without `unsafe` cannot turn them back
/// into references; an executor that may does so by
/// [`into_waiting`](Self::into_waiting).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RawSleep {
    /// The queue it sleeps on.
    pub queue: QueueId,
    /// The entry's sequence number on it (with `queue`, names this sleep).
    pub seq: u64,
    /// The wait site: was a `&'static Location<'static>`.
    pub site: *const Location<'static>,
    /// The queue's name: was a `&'static str` (pointer, length).
    pub name: Option<(*const u8, usize)>,
    /// How it sleeps.
    pub kind: WaitKind,
    /// Since when (the coarse clock).
    pub since: Instant,
    /// Who wrote it: the `owner` of [`enter_owned_slot`] (0: [`enter_slot`]).
    /// A record whose owner is not the slot's task now is an ended task's.
    pub owner: u64,
}

impl RawSleep {
    /// The record as the registry lists sleeps, for `task`, with the site
    /// and name `self` points at.
    pub fn into_waiting(
        self,
        site: &'static Location<'static>,
        queue_name: Option<&'static str>,
        task: u64,
    ) -> Waiting {
        let holder = super::holders::holder(self.queue);
        Waiting {
            queue: self.queue,
            queue_name,
            site,
            kind: self.kind,
            since: self.since,
            task: Some(task),
            thread: None,
            // Unique per sleep while the queue lives (entry numbers count
            // up); the top bit keeps it apart from the map's ids.
            sleep: (1 << 63) | (self.seq ^ (self.queue.addr() as u64).rotate_left(32)) >> 1,
            holder: holder.map(|(task, _)| task),
            held_as: holder.map_or(super::HeldAs::Owner, |(_, held_as)| held_as),
            picked: None,
        }
    }
}

impl SleepSlot {
    /// An empty slot.
    pub const fn new() -> SleepSlot {
        SleepSlot {
            version: AtomicU32::new(0),
            kind: AtomicU32::new(0),
            queue: AtomicUsize::new(0),
            seq: AtomicU64::new(0),
            site: AtomicPtr::new(std::ptr::null_mut()),
            name: AtomicPtr::new(std::ptr::null_mut()),
            owner: AtomicU64::new(0),
            since: AtomicU64::new(0),
            deadline: AtomicU64::new(0),
        }
    }

    /// Opens a write: the count goes odd (only the task writes, so a load
    /// and a store suffice; the executor's hand-off of the task between
    /// threads orders one writer after the last).
    #[inline]
    fn begin_write(&self) -> u32 {
        let version = self.version.load(Ordering::Relaxed);
        self.version
            .store(version.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        version
    }

    #[inline]
    fn end_write(&self, version: u32) {
        self.version
            .store(version.wrapping_add(2), Ordering::Release);
    }

    /// Whether `owner` may write a sleep into it: it holds none, or an
    /// ended task's (another owner's).
    #[inline]
    pub(crate) fn is_free_for(&self, owner: u64) -> bool {
        self.queue.load(Ordering::Relaxed) == 0 || self.owner.load(Ordering::Relaxed) != owner
    }

    /// Writes a sleep (the slot is free for `owner`: [`current_free`]
    /// found it so). `kind` is packed ([`pack_kind`]), `name_bits` are
    /// [`name_bits_of`]`(queue_name)` (a queue keeps them, made when it was);
    /// a new sleep has no deadline until
    /// [`set_deadline`](Self::set_deadline) notes one.
    #[inline(always)]
    pub(crate) fn write(
        &self,
        owner: u64,
        queue: QueueId,
        (queue_name, name_bits): SlotName,
        seq: u64,
        site: &'static Location<'static>,
        kind: u32,
    ) {
        debug_assert_eq!(name_bits, name_bits_of(queue_name));
        let name = queue_name.map_or(std::ptr::null_mut(), |name| name.as_ptr().cast_mut());
        let kind = kind | name_bits;
        let version = self.begin_write();
        self.queue.store(queue.addr(), Ordering::Relaxed);
        self.seq.store(seq, Ordering::Relaxed);
        self.site
            .store(std::ptr::from_ref(site).cast_mut(), Ordering::Relaxed);
        self.name.store(name, Ordering::Relaxed);
        self.owner.store(owner, Ordering::Relaxed);
        self.kind.store(kind, Ordering::Relaxed);
        self.since.store(super::coarse_nanos(), Ordering::Relaxed);
        self.end_write(version);
    }

    /// Empties the slot if it still holds sleep `seq` of `queue`, from any
    /// thread (see [`SlotRecord`]). Only its task writes a slot, and while
    /// the slot holds this record that task writes no other (the slot is
    /// not free for it); a later task under the same key writes over it,
    /// queue first, so the swap of the queue word either empties this
    /// record or finds the new one and leaves it.
    #[inline]
    fn clear_from_afar(&self, queue: QueueId, seq: u64) -> bool {
        self.seq.load(Ordering::Relaxed) == seq
            && self
                .queue
                .compare_exchange(queue.addr(), 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Whether the slot holds a sleep stamped with `owner` (two loads; for
    /// the thread that writes the slot, which sees its own stores: a
    /// reader on another thread uses [`read`](Self::read)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU64;
    /// static SLOT: waitq::registry::SleepSlot = waitq::registry::SleepSlot::new();
    /// static QUEUE: waitq::WaitQueue = waitq::WaitQueue::new();
    /// waitq::registry::enable_slots();
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// let mut wait = Box::pin(QUEUE.wait_event(|| false));
    /// let owner = NonZeroU64::new(5).unwrap();
    /// waitq::registry::in_owned_slot(&SLOT, owner, || {
    ///     assert!(std::future::Future::poll(wait.as_mut(), &mut cx).is_pending())
    /// });
    /// assert!(SLOT.is_held_by(5) && !SLOT.is_held_by(6));
    /// waitq::registry::in_owned_slot(&SLOT, owner, || drop(wait));
    /// assert!(!SLOT.is_held_by(5));
    /// ```
    #[inline]
    pub fn is_held_by(&self, owner: u64) -> bool {
        self.queue.load(Ordering::Relaxed) != 0 && self.owner.load(Ordering::Relaxed) == owner
    }

    /// Empties the slot whatever it holds (its task is gone: the slot
    /// goes to the next task).
    pub fn clear_any(&self) {
        self.queue.store(0, Ordering::Relaxed);
    }

    #[inline]
    fn holds(&self, queue: QueueId, seq: u64) -> bool {
        self.queue.load(Ordering::Relaxed) == queue.addr()
            && self.seq.load(Ordering::Relaxed) == seq
    }

    /// Empties the slot if it holds sleep `seq` of `queue`. (One store: a
    /// reader that read the fields before it still read one whole record.)
    #[inline]
    fn clear(&self, queue: QueueId, seq: u64) -> bool {
        let holds = self.holds(queue, seq);
        if holds {
            self.queue.store(0, Ordering::Relaxed);
        }
        holds
    }

    /// Notes the deadline of the timed sleep it holds, if it holds `seq`.
    #[inline]
    fn set_deadline(&self, queue: QueueId, seq: u64, deadline: Option<Instant>) -> bool {
        let holds = self.holds(queue, seq);
        if holds {
            let nanos = deadline.map_or(0, |d| {
                let since_epoch = d.saturating_duration_since(super::epoch()).as_nanos();
                u64::try_from(since_epoch).unwrap_or(u64::MAX - 1) + 1
            });
            let kind = self.kind.load(Ordering::Relaxed) & !HAS_DEADLINE;
            let version = self.begin_write();
            self.deadline.store(nanos, Ordering::Relaxed);
            let flag = if nanos == 0 { 0 } else { HAS_DEADLINE };
            self.kind.store(kind | flag, Ordering::Relaxed);
            self.end_write(version);
        }
        holds
    }

    /// The sleep the slot holds now, if any. Never waits for the writer:
    /// after a few attempts that each overlapped a write, it reports none.
    pub fn read(&self) -> Option<RawSleep> {
        for _ in 0..64 {
            let version = self.version.load(Ordering::Acquire);
            if version & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let queue = self.queue.load(Ordering::Relaxed);
            let seq = self.seq.load(Ordering::Relaxed);
            let site = self.site.load(Ordering::Relaxed);
            let name = self.name.load(Ordering::Relaxed);
            let owner = self.owner.load(Ordering::Relaxed);
            let kind = self.kind.load(Ordering::Relaxed);
            let since = self.since.load(Ordering::Relaxed);
            let deadline = self.deadline.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if self.version.load(Ordering::Relaxed) != version {
                continue;
            }
            if queue == 0 || site.is_null() {
                return None;
            }
            let deadline = (kind & HAS_DEADLINE != 0 && deadline != 0)
                .then(|| super::epoch() + Duration::from_nanos(deadline - 1));
            return Some(RawSleep {
                queue: QueueId::of_addr(queue),
                seq,
                site: site.cast_const(),
                name: (kind & HAS_NAME != 0 && !name.is_null())
                    .then_some((name.cast_const(), (kind >> NAME_LEN_SHIFT) as usize)),
                kind: unpack_kind(kind & KIND_BITS, deadline),
                since: super::at(since),
                owner,
            });
        }
        None
    }
}

/// In a slot's `kind`: its `deadline` belongs to this sleep.
const HAS_DEADLINE: u32 = 1 << 6;
/// A slot's `kind` below its name's bits: [`pack_kind`]'s six bits and
/// [`HAS_DEADLINE`].
const KIND_BITS: u32 = (1 << 7) - 1;
/// In a slot's `kind`: `name` and the length above are the queue's name.
const HAS_NAME: u32 = 1 << 7;
/// Where the name's length starts in a slot's `kind`.
const NAME_LEN_SHIFT: u32 = 8;
/// The longest name a slot keeps (16 MiB - 1 bytes).
const NAME_LEN_MAX: usize = (u32::MAX >> NAME_LEN_SHIFT) as usize;

/// A queue's name and its [`name_bits_of`], as [`SleepSlot::write`] takes
/// them.
pub(crate) type SlotName = (Option<&'static str>, u32);

/// A queue's name as a slot's `kind` bits: [`HAS_NAME`] and the length,
/// or none (no name, or one too long for the bits: left out, never cut,
/// since the reader turns it back into a `str`). A
/// [`WaitQueue`](crate::WaitQueue) keeps its name's, made when it is.
pub(crate) const fn name_bits_of(name: Option<&'static str>) -> u32 {
    match name {
        Some(name) if name.len() <= NAME_LEN_MAX => {
            HAS_NAME | (name.len() as u32) << NAME_LEN_SHIFT
        }
        _ => 0,
    }
}

/// A [`WaitKind`] without its deadline in six bits: the API's three bits
/// (as [`WaitApi::to_bits`] gives them), the state's two, exclusive.
#[inline]
pub(crate) fn pack_kind(api_bits: u8, state: TaskState, exclusive: bool) -> u32 {
    let state = match state {
        TaskState::Interruptible => 1,
        TaskState::Killable => 2,
        _ => 0,
    };
    u32::from(api_bits) | state << 3 | u32::from(exclusive) << 5
}

fn unpack_kind(bits: u32, deadline: Option<Instant>) -> WaitKind {
    let state = match bits >> 3 & 3 {
        1 => TaskState::Interruptible,
        2 => TaskState::Killable,
        _ => TaskState::Uninterruptible,
    };
    // Three bits, as `WaitApi::to_bits` gives them.
    let api = WaitApi::from_bits((bits & 7) as u8);
    WaitKind::new(api, state, bits >> 5 & 1 == 1, deadline)
}

thread_local! {
    /// The slot of the task this thread polls now, and who owns it
    /// ([`enter_owned_slot`]; 0: [`enter_slot`]).
    static CURRENT: Cell<(Option<&'static SleepSlot>, u64)> = const { Cell::new((None, 0)) };
}

/// Makes `slot` the slot this thread's sleeps are recorded in (the task
/// about to be polled), or none (`None`, when the poll ends).
///
/// The slot must really live for the rest of the process, as its type
/// says: a wait that slept keeps where it wrote its sleep (an
/// [`RcuWait`](crate::RcuWait)'s waiter), so that if it ends in another
/// task it clears the record there, whenever that is. An executor that
/// reuses its slots for later tasks stamps records with an owner
/// ([`enter_owned_slot`]): a clear from afar then leaves another owner's
/// record alone.
#[inline]
pub fn enter_slot(slot: Option<&'static SleepSlot>) {
    CURRENT.with(|current| current.set((slot, 0)));
}

/// [`enter_slot`] for a slot that passes from task to task (an executor's
/// slot per task key, reused by later tasks): every record written while
/// it is current is stamped with `owner` (the task's id), and one stamped
/// by another owner counts as empty, so the executor need not clear the
/// slot when the task ends; a reader compares [`RawSleep::owner`] with
/// the slot's task now. [`enter_slot`]`(None)` ends it.
///
/// # Examples
///
/// ```
/// use std::future::Future;
/// use std::num::NonZeroU64;
/// use waitq::registry::{self, SleepSlot};
/// static SLOT: SleepSlot = SleepSlot::new();
/// static QUEUE: waitq::WaitQueue = waitq::WaitQueue::new();
/// registry::enable_slots();
/// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
///
/// // Task 1 sleeps, and ends without its wait ending (say, it was leaked).
/// registry::enter_owned_slot(&SLOT, NonZeroU64::new(1).unwrap());
/// let mut wait = Box::pin(QUEUE.wait_event(|| false));
/// assert!(wait.as_mut().poll(&mut cx).is_pending());
/// std::mem::forget(wait);
/// registry::enter_slot(None);
/// assert_eq!(SLOT.read().unwrap().owner, 1); // task 1's record stays
///
/// // Task 2 gets the slot: task 1's record is no obstacle.
/// registry::enter_owned_slot(&SLOT, NonZeroU64::new(2).unwrap());
/// let mut wait = Box::pin(QUEUE.wait_event(|| false));
/// assert!(wait.as_mut().poll(&mut cx).is_pending());
/// assert_eq!(SLOT.read().unwrap().owner, 2);
/// drop(wait);
/// registry::enter_slot(None);
/// ```
#[inline]
pub fn enter_owned_slot(slot: &'static SleepSlot, owner: std::num::NonZeroU64) {
    CURRENT.with(|current| current.set((Some(slot), owner.get())));
}

/// Runs `f` with `slot` current, stamped with `owner` (as
/// [`enter_owned_slot`]), and puts back what was current before when `f`
/// returns or unwinds: for a poll that an executor makes outside its
/// task loop, such as a `block_on` future's, which may run inside
/// something else that keeps a slot current.
///
/// # Examples
///
/// ```
/// use std::future::Future;
/// use std::num::NonZeroU64;
/// use waitq::registry::{self, SleepSlot};
/// static SLOT: SleepSlot = SleepSlot::new();
/// static QUEUE: waitq::WaitQueue = waitq::WaitQueue::new();
/// registry::enable_slots();
/// let mut wait = Box::pin(QUEUE.wait_event(|| false));
/// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// let owner = NonZeroU64::new(9).unwrap();
/// registry::in_owned_slot(&SLOT, owner, || assert!(wait.as_mut().poll(&mut cx).is_pending()));
/// assert_eq!(SLOT.read().unwrap().owner, 9);
/// registry::in_owned_slot(&SLOT, owner, || drop(wait)); // the wait ends in the slot's poll
/// assert!(SLOT.read().is_none());
/// ```
#[inline]
pub fn in_owned_slot<R>(
    slot: &'static SleepSlot,
    owner: std::num::NonZeroU64,
    f: impl FnOnce() -> R,
) -> R {
    struct Restore((Option<&'static SleepSlot>, u64));
    impl Drop for Restore {
        #[inline]
        fn drop(&mut self) {
            CURRENT.with(|current| current.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|current| current.replace((Some(slot), owner.get()))));
    f()
}

/// The owner [`unlisted`] puts in the current-slot cell (with no slot):
/// no sleep is listed until it ends.
const UNLISTED: u64 = u64::MAX;

/// Runs `f` with no sleep listed on this thread, in a slot or in the
/// shared map: for polls that are not their task's sleep, such as a
/// non-blocking try over futures that register wakers of their own (a
/// `JoinSet`'s `try_join_next` polling its members' handles, which left
/// the task listed as asleep on each member while it ran on). The waits
/// still register and wake as always; only the registry does not hear of
/// them. The cell is restored when `f` returns or unwinds.
///
/// # Examples
///
/// ```
/// use std::future::Future;
/// use waitq::registry::{self, SleepSlot};
/// static SLOT: SleepSlot = SleepSlot::new();
/// static QUEUE: waitq::WaitQueue = waitq::WaitQueue::new();
/// registry::enable_slots();
/// registry::enter_slot(Some(&SLOT));
/// let mut wait = Box::pin(QUEUE.wait_event(|| false));
/// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// registry::unlisted(|| assert!(wait.as_mut().poll(&mut cx).is_pending()));
/// assert!(SLOT.read().is_none()); // registered, not listed
/// drop(wait);
/// registry::enter_slot(None);
/// ```
pub fn unlisted<R>(f: impl FnOnce() -> R) -> R {
    struct Restore((Option<&'static SleepSlot>, u64));
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|current| current.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|current| current.replace((None, UNLISTED))));
    f()
}

/// Runs `f` with no task slot current: sleeps made in it are listed in
/// the registry's shared map, each named by the task source (see
/// [`set_task_source`](super::set_task_source)), as sleeps outside any
/// slot are. For a task an executor polls inside another task's poll (a
/// local task inside its set's `run_until`), whose sleeps are its own and
/// not the outer task's. The cell is restored when `f` returns or
/// unwinds.
///
/// # Examples
///
/// ```
/// use std::future::Future;
/// use waitq::registry::{self, SleepSlot};
/// static SLOT: SleepSlot = SleepSlot::new();
/// static QUEUE: waitq::WaitQueue = waitq::WaitQueue::new();
/// registry::enable_slots();
/// registry::enter_slot(Some(&SLOT));
/// let mut wait = Box::pin(QUEUE.wait_event(|| false));
/// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// registry::in_shared_map(|| assert!(wait.as_mut().poll(&mut cx).is_pending()));
/// assert!(SLOT.read().is_none()); // listed in the shared map instead
/// drop(wait);
/// registry::enter_slot(None);
/// ```
pub fn in_shared_map<R>(f: impl FnOnce() -> R) -> R {
    struct Restore((Option<&'static SleepSlot>, u64));
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|current| current.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|current| current.replace((None, 0))));
    f()
}

/// Whether [`unlisted`] runs on this thread now.
pub(super) fn is_unlisted() -> bool {
    matches!(CURRENT.with(Cell::get), (None, UNLISTED))
}

#[inline]
pub(super) fn current() -> Option<&'static SleepSlot> {
    CURRENT.with(Cell::get).0
}

/// The current slot, if it is free for its owner now, and that owner.
#[inline]
pub(super) fn current_free() -> Option<(&'static SleepSlot, u64)> {
    let (slot, owner) = CURRENT.with(Cell::get);
    let slot = slot?;
    slot.is_free_for(owner).then_some((slot, owner))
}

/// Where a sleep was written: its slot. A waiter that may end its wait
/// in another task than the one it slept in (a join handle polled in one
/// task and awaited in another) keeps it, so that the record does not
/// stay in the first task's slot, listing that task as asleep and sending
/// its later sleeps to the shared map, for as long as it lives (an
/// independent review). Slots are `'static`, so it stays valid whatever
/// became of the task.
///
/// It needs no owner: a record of the waiter's queue and sequence number
/// is only ever written by that waiter's own wait (which keeps this up to
/// date), so whoever got the slot since, a record there under that key is
/// still the waiter's.
///
/// [`note_sleep`](super::note_sleep) returns one, for
/// [`forget_sleep_at`](super::forget_sleep_at).
#[derive(Clone, Copy, Debug)]
pub struct SlotRecord(&'static SleepSlot);

impl SlotRecord {
    /// Whether the slot is this thread's current one and still holds
    /// sleep `seq` of `queue`, written by the current owner (the sleeper's
    /// task is being polled, and nothing wrote over the record: a later
    /// `block_on` call on the same thread, with an owner of its own, may
    /// have, and the sleep must then be listed anew).
    #[inline]
    pub(crate) fn is_current(self, queue: QueueId, seq: u64) -> bool {
        let (slot, owner) = CURRENT.with(Cell::get);
        slot.is_some_and(|slot| std::ptr::eq(slot, self.0))
            && self.0.holds(queue, seq)
            && self.0.owner.load(Ordering::Relaxed) == owner
    }

    /// Empties the slot if it still holds this sleep (`seq` of `queue`),
    /// from any thread.
    #[inline]
    pub(crate) fn clear(self, queue: QueueId, seq: u64) -> bool {
        self.0.clear_from_afar(queue, seq)
    }
}

/// Writes the sleep into the current task's slot, if there is one and it
/// is empty (`kind` packed by [`pack_kind`]); returns where.
#[inline]
pub(super) fn try_record(
    queue: QueueId,
    queue_name: Option<&'static str>,
    seq: u64,
    site: &'static Location<'static>,
    kind: u32,
) -> Option<SlotRecord> {
    current_free().map(|(slot, owner)| {
        let name = (queue_name, name_bits_of(queue_name));
        slot.write(owner, queue, name, seq, site, kind);
        SlotRecord(slot)
    })
}

/// Clears the sleep from the current task's slot, if it is there.
#[inline]
pub(super) fn try_remove(queue: QueueId, seq: u64) -> bool {
    current().is_some_and(|slot| slot.clear(queue, seq))
}

/// Notes a deadline in the current task's slot, if the sleep is there.
#[inline]
pub(super) fn try_set_deadline(queue: QueueId, seq: u64, deadline: Option<Instant>) -> bool {
    current().is_some_and(|slot| slot.set_deadline(queue, seq, deadline))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_slot_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<SleepSlot>(), 64);
    }

    #[test]
    fn kinds_round_trip() {
        for api in [WaitApi::Event, WaitApi::Handoff, WaitApi::RcuWait] {
            for state in [
                TaskState::Uninterruptible,
                TaskState::Interruptible,
                TaskState::Killable,
            ] {
                for exclusive in [false, true] {
                    let kind = WaitKind::new(api, state, exclusive, None);
                    assert_eq!(
                        unpack_kind(pack_kind(api.to_bits(), state, exclusive), None),
                        kind
                    );
                }
            }
        }
    }

    /// A reader racing the writer gets whole records only: every record
    /// it sees pairs a queue with that queue's own sequence number, site
    /// and name.
    #[test]
    fn a_racing_reader_sees_whole_records() {
        static SLOT: SleepSlot = SleepSlot::new();
        static NAMES: [&str; 2] = ["a", "bbbbbbbb"];
        let sites = [Location::caller(), Location::caller()];
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..200_000u64 {
                    let which = (i % 2) as usize;
                    let queue = QueueId::of_addr(0x1000 * (which + 1));
                    let kind = pack_kind(WaitApi::Event.to_bits(), TaskState::Killable, which == 1);
                    assert!(SLOT.is_free_for(0));
                    SLOT.write(
                        0,
                        queue,
                        (Some(NAMES[which]), name_bits_of(Some(NAMES[which]))),
                        which as u64,
                        sites[which],
                        kind,
                    );
                    assert!(SLOT.clear(queue, which as u64));
                }
                done.store(true, Ordering::Relaxed);
            });
            let mut seen = 0u32;
            while !done.load(Ordering::Relaxed) {
                if let Some(raw) = SLOT.read() {
                    let which = raw.queue.addr() / 0x1000 - 1;
                    assert_eq!(raw.seq, which as u64);
                    assert_eq!(raw.site, std::ptr::from_ref(sites[which]));
                    assert_eq!(raw.name, Some((NAMES[which].as_ptr(), NAMES[which].len())));
                    assert_eq!(raw.kind.exclusive, which == 1);
                    seen += 1;
                }
            }
            eprintln!("slot race: {seen} records read");
        });
    }
}
