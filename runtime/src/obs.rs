//! Who sleeps on what, for how long, and who can wake it: task dumps
//! ([`Handle::dump`](crate::Handle::dump)), the dump on SIGQUIT, the
//! hung-task and stuck-worker detectors.
//!
//! # Where the data comes from
//!
//! - **Sleeps** come from `waitq`'s [wait registry](waitq::registry): every
//!   waiter that links an entry is listed with its queue, wait site, kind
//!   and since when. A task's sleep goes to its own slot (`SleepSlots`,
//!   by owned-task key), which the task's polls make current, and a
//!   `block_on` future's to a slot of its thread's (`BlockOnSlots`); the
//!   detectors, a task's second sleep at once and sleeps outside any task
//!   go to the registry's shared map, where this runtime names the task
//!   behind each one (its task source, installed when a runtime is
//!   built). The time comes from a coarse clock that its threads refresh
//!   whenever they park or check their drivers, so a sleep costs no clock
//!   read.
//! - **Holders** (who holds the lock or semaphore a task waits for) are
//!   recorded only while the whole registry is on, that is while the
//!   hung-task or lost-grant detector is enabled: each lock operation then
//!   takes a registry lock, too dear for every service by default. So a
//!   default dump (and the SIGQUIT one) names the waiters of a lock but
//!   not its holder; build the runtime with
//!   [`hung_task_timeout`](crate::Builder::hung_task_timeout) to have
//!   holders named in dumps and reports. A lock handed by a wake to a task
//!   that has not taken it shows under that task's wait as picked and not
//!   yet polled, and a hung task queued behind it names that task.
//! - **Timers** come from the timer wheel: each pending timer holds its
//!   sleeper's waker, whose data pointer is the task.
//! - **Workers** publish "polling task X since t" in a per-worker slot
//!   (`PollSlot`): two plain stores per poll, the time once per turn of
//!   the worker loop, no clock read.
//! - **Tasks** come from the owned-task list: id, name, spawn site and state
//!   word. Nothing is polled, nothing waits for a worker: a dump returns
//!   while a worker is stuck in a poll, and reports it as busy.
//! - **Local tasks** (a [`LocalSet`](crate::task::LocalSet)'s) come from
//!   their set's list of unfinished tasks, shared with dumps: each is
//!   listed, as itself, in the dump of the runtime whose task (or
//!   `block_on` future) polled the set's `run_until` last, with the task
//!   that drives the set ([`TaskDump::local_to`]). While a set polls one
//!   of its tasks, the registry names that task (not the driving one) and
//!   lists its sleeps in the shared map. The hung-task and lost-grant
//!   detectors report local tasks as they do the runtime's.
//!
//! # Where a wait is listed
//!
//! A wait is listed at its caller's line (`#[track_caller]`) for every
//! async method of `waitrt::sync`, the task handles, the sockets (`recv`,
//! `accept`, `connect`, `send_to`, `readable`...), `AsyncFd` and
//! `process` (`Child::wait`, `Command::status`/`output`), and for the
//! sockets' `poll_*` methods called from a hand-written future. A wait
//! inside a `futures::io` or `Stream` trait method (`AsyncReadExt::read`
//! on a `TcpStream`) cannot name the user's line, since the combinator's
//! future calls the method: it is listed at the socket type's impl, and
//! its queue is named for the socket and direction (`tcp_stream_readable`,
//! `unix_stream_writable`, `tcp_listener_accept`, `udp_socket_readable`,
//! `child_pipe_readable`, `child_exit`, `async_fd_readable`...); the
//! task's spawn site says which task it is.
//!
//! # Accuracy
//!
//! Durations are measured on the coarse clock: a sleep that starts after a
//! long poll on the same thread, before that thread parks again, may look
//! older by up to that poll. The detectors avoid false reports by also
//! requiring what they report to be unchanged between two of their checks.
//!
//! A dump is not a frozen picture: it reads the shared map, then each
//! task's slot and state, while tasks go on running. The waits of a task
//! polled while the dump was taken may mix two moments (a sleep its poll
//! has just ended listed beside one it has just begun); a task that sleeps
//! throughout is read as it sleeps.

mod block_on;
pub(crate) mod dump;
mod watch;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed, Ordering::Release};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use std::time::Duration;
use waitq::registry::SleepSlot;

pub use dump::{Dump, TaskDump, TaskStatus, WorkerDump};
pub(crate) use watch::{start, Config};
pub use watch::{HungTask, LostGrant, StuckWorker};

use crate::task::Id;

// The coarse clock is waitq's (`waitq::registry::tick`, `coarse_nanos`,
// `at`): it dates the sleeps, and the poll slots below use it too.

/// Names this runtime's tasks in the wait registry (once per process).
pub(crate) fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        waitq::registry::tick();
        waitq::registry::set_task_source(task_stamp);
    });
}

/// A sleep read from a task's slot (`Header::sleep`), as the registry
/// lists sleeps.
#[allow(unsafe_code)]
pub(crate) fn slot_waiting(sleep: waitq::registry::RawSleep, task: Id) -> waitq::registry::Waiting {
    // SAFETY: a `SleepSlot` stores its site only from a
    // `&'static Location<'static>` and its name only from a `&'static str`
    // (pointer and length, stored together), and `read` returns the fields
    // of one whole write (its sequence count), never a mix of two: so both
    // point at static data of the right type and length. Reading them here
    // rather than keeping them as references in the slot is what lets a
    // sleep be written with plain stores (waitq has no `unsafe`).
    let (site, name) = unsafe {
        (
            &*sleep.site,
            sleep.name.map(|(ptr, len)| {
                std::str::from_utf8_unchecked(std::slice::from_raw_parts(ptr, len))
            }),
        )
    };
    sleep.into_waiting(site, name, task.0)
}

/// The registry's task source: the task this thread polls, on a thread of
/// a runtime.
fn task_stamp() -> Option<waitq::registry::TaskStamp> {
    let task = crate::context::registry_task()?;
    Some(waitq::registry::TaskStamp {
        task: task.map(|id| id.0),
        now: waitq::registry::coarse_now(),
    })
}

// ===== per-worker poll slots =====

/// What one worker is polling: the task (0: none), and since when, on the
/// coarse clock. Written only by its worker: one store when a poll begins
/// and one when it ends (plain moves on x86), and the time once per turn
/// of its loop (every `event_interval` polls at most, and after it
/// parks), so the start of a poll reads as the start of the loop turn it
/// runs in: a stuck poll looks older by the polls before it in that turn
/// (the coarse clock itself is as coarse). Each poll also bumps a
/// sequence number, which tells one poll from the next for the
/// stuck-worker detector: the same task polled again in the same turn
/// (a lone task that yields, each poll a few milliseconds) read as one
/// long poll. Read by dumps and the detector. On its own cache lines: two workers' slots on one line made
/// every poll of each a cache miss for the other (yield_many, 2 workers:
/// 2.1x slower).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct PollSlot {
    task: AtomicU64,
    since: AtomicU64,
    /// Polls begun (only this slot's worker writes it).
    seq: AtomicU64,
}

/// One poll seen in a [`PollSlot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeenPoll {
    pub(crate) task: Id,
    /// The start of the turn it runs in, on the coarse clock (ns).
    pub(crate) since: u64,
    /// The slot's poll count when it began: a new poll, a new number.
    pub(crate) seq: u64,
}

impl PollSlot {
    /// A turn of the worker's loop begins: its polls start from now.
    #[inline]
    pub(crate) fn turn(&self) {
        self.since.store(waitq::registry::coarse_nanos(), Relaxed);
    }

    /// A blocking-pool thread is about to run a job: its poll starts from
    /// now. (The pool thread reads the clock: the coarse clock moves with
    /// the workers' parks, and they may all be asleep.)
    #[inline]
    pub(crate) fn job_begins(&self) {
        waitq::registry::tick();
        self.turn();
    }

    /// A poll of task `id` begins. (`Release`: a reader that sees the task
    /// sees the turn's time.)
    #[inline]
    pub(crate) fn begin(&self, id: Id) {
        // A load and a store, not a read-modify-write: one writer.
        self.seq
            .store(self.seq.load(Relaxed).wrapping_add(1), Relaxed);
        self.task.store(id.0, Release);
    }

    /// The poll ended.
    #[inline]
    pub(crate) fn end(&self) {
        self.task.store(0, Relaxed);
    }

    /// The poll running now, if any. (The sequence number is read after
    /// the task, `Acquire`: it is the task's poll's or a later one's, so
    /// a poll that ended in between only looks new.)
    fn read(&self) -> Option<SeenPoll> {
        let task = self.task.load(std::sync::atomic::Ordering::Acquire);
        if task == 0 {
            return None;
        }
        Some(SeenPoll {
            task: Id(task),
            since: self.since.load(Relaxed),
            seq: self.seq.load(Relaxed),
        })
    }
}

// ===== tasks' sleep slots =====

/// Slots in the first chunk of [`SleepSlots`]: `1 << FIRST_BITS`.
const FIRST_BITS: u32 = 6;
/// Chunks of [`SleepSlots`], each twice the last: 64 to 32M slots, for
/// about 64M owned-task keys in all.
const CHUNKS: usize = 20;

/// Each task's sleep slot (`waitq::registry::SleepSlot`), by the task's key
/// in the owned-task list: what the task sleeps on now, written by its own
/// waits while it is polled (`context::enter_task` makes it the thread's
/// current slot) and read by dumps. Beside the tasks rather than in them,
/// so that a task stays in its allocator size class (`task/raw.rs`); keys
/// are reused, so the slots number the most tasks alive at once. Chunks
/// double in size and are made on first use and never moved.
///
/// They are `'static`, as waitq's registry takes them: a wait may keep
/// where it wrote its sleep, to clear it from another task than the one
/// that slept (a join handle polled in one task and awaited in another),
/// however long after the runtime is gone. So a runtime's chunks are not
/// freed with it but go to a process-wide spare list ([`SPARE`]) that
/// the next runtimes take theirs from: the memory kept is what the most
/// runtimes alive at once used. A record left in a chunk counts as empty
/// for every later task (records carry their task's id, unique in the
/// process).
#[derive(Default)]
pub(crate) struct SleepSlots {
    chunks: [OnceLock<&'static [SleepSlot]>; CHUNKS],
}

/// Chunks of runtimes that are gone, by chunk index, for the next ones.
static SPARE: Mutex<[Vec<&'static [SleepSlot]>; CHUNKS]> =
    Mutex::new([const { Vec::new() }; CHUNKS]);

impl Drop for SleepSlots {
    fn drop(&mut self) {
        let mut spare = SPARE.lock().unwrap_or_else(PoisonError::into_inner);
        for (index, chunk) in self.chunks.iter_mut().enumerate() {
            if let Some(chunk) = chunk.take() {
                spare[index].push(chunk);
            }
        }
    }
}

impl std::fmt::Debug for SleepSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let made = self.chunks.iter().filter(|c| c.get().is_some()).count();
        f.debug_struct("SleepSlots").field("chunks", &made).finish()
    }
}

impl SleepSlots {
    /// The chunk and the offset in it of `key`'s slot.
    #[inline]
    fn locate(key: usize) -> Option<(usize, usize)> {
        let n = key.checked_add(1 << FIRST_BITS)?;
        let high = usize::BITS - 1 - n.leading_zeros();
        Some(((high - FIRST_BITS) as usize, n - (1 << high)))
    }

    /// The slot of the task under `key`, made if need be (`None` past the
    /// last chunk: that task's sleeps go to the registry's shared map).
    #[inline]
    pub(crate) fn get(&self, key: usize) -> Option<&'static SleepSlot> {
        let (chunk, offset) = Self::locate(key)?;
        let slots = self.chunks.get(chunk)?.get_or_init(|| {
            let spare = SPARE.lock().unwrap_or_else(PoisonError::into_inner)[chunk].pop();
            spare.unwrap_or_else(|| {
                let len = 1usize << (FIRST_BITS as usize + chunk);
                Box::leak((0..len).map(|_| SleepSlot::new()).collect())
            })
        });
        slots.get(offset)
    }

    /// The slot of the task under `key`, if it was ever made.
    pub(crate) fn peek(&self, key: usize) -> Option<&SleepSlot> {
        let (chunk, offset) = Self::locate(key)?;
        self.chunks.get(chunk)?.get()?.get(offset)
    }
}

/// The runtime's observability state (in `Common`).
#[derive(Debug, Default)]
pub(crate) struct Observer {
    /// Tasks' sleep slots, by owned-task key.
    pub(crate) sleeps: SleepSlots,
    /// The `block_on` calls running now, with their threads' sleep slots.
    pub(crate) block_ons: block_on::BlockOnSlots,
    /// Worker slots by worker index (the current-thread flavour's driving
    /// thread is worker 0).
    workers: Mutex<Vec<Arc<PollSlot>>>,
}

impl Observer {
    /// Worker `index`'s slot.
    pub(crate) fn slot(&self, index: usize) -> Arc<PollSlot> {
        let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        while workers.len() <= index {
            workers.push(Arc::default());
        }
        workers[index].clone()
    }

    fn slots(&self) -> Vec<Arc<PollSlot>> {
        self.workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// `12m03s`, `3s`, `250ms`: Go's style of wait durations.
pub(crate) fn fmt_duration(d: Duration, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    let secs = d.as_secs();
    if secs == 0 {
        return write!(f, "{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => write!(f, "{s}s"),
        (0, _) => write!(f, "{m}m{s:02}s"),
        _ => write!(f, "{h}h{m:02}m{s:02}s"),
    }
}
