//! The I/O driver: one [`mio::Poll`] per runtime, driven by whichever
//! scheduler thread is idle (on the current-thread runtime, the thread
//! itself), interrupted by a [`mio::Waker`].
//!
//! # Registrations
//!
//! Each source has a slot in a slab; its [`mio::Token`] is the slot key
//! plus a generation, so an event that arrives for a slot that was freed
//! and reused never completes a future of the new owner. A registration
//! that `epoll_ctl` refuses is rolled back. A deregistered slot is freed
//! only at the start of the next turn, when no event collected before the
//! deregistration can still be in flight.
//!
//! # A turn
//!
//! 1. Free the slots deregistered since the last turn.
//! 2. `epoll_wait` (at most [`EVENTS_PER_TURN`] events: a bounded batch).
//! 3. Under the slab lock, record each event's readiness on its source.
//! 4. With every lock released, wake each source's waiters, each wake
//!    guarded so that a panicking waker cannot take the reactor down.
//!
//! # Shutdown
//!
//! [`Reactor::shutdown`] refuses new registrations and closes every
//! source's wait queues: every pending and future readiness wait ends with
//! an error, and socket operations report that the runtime is gone.

pub(crate) mod readiness;
pub(crate) mod registration;
mod stream;

pub(crate) use stream::{vectored_len, MAX_IOVECS};

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{
    AtomicBool, AtomicUsize, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed,
    Ordering::Release, Ordering::SeqCst,
};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use mio::{Interest, Token};
use slab::Slab;

use readiness::{Ready, ScheduledIo};
pub(crate) use registration::PollEvented;

/// Most events handled in one turn.
pub(crate) const EVENTS_PER_TURN: usize = 1024;

/// Bits of a token that hold the slab key; the rest is the generation.
const KEY_BITS: u32 = 24;
const MAX_KEY: usize = (1 << KEY_BITS) - 1;
/// Generations stay below the top bit, so no source token equals the
/// waker's.
const GENERATION_MASK: usize = usize::MAX >> (KEY_BITS + 1);
const WAKE_TOKEN: Token = Token(usize::MAX);
/// The token of the turn's `timerfd` ([`Turn::arm_timer`]); top bit set
/// too, so no source's.
#[cfg(any(target_os = "linux", target_os = "android"))]
const TIMER_TOKEN: Token = Token(usize::MAX - 1);

struct Turn {
    poll: mio::Poll,
    events: mio::Events,
    tick: usize,
    woken: Vec<(Arc<ScheduledIo>, Ready)>,
    /// Polls the eventfd interrupted (`unpark`), for tests.
    interrupts: u64,
    /// The timer of sub-millisecond timeouts (see [`Reactor::precise`]).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    timer: Option<std::os::fd::OwnedFd>,
    /// The `CLOCK_MONOTONIC` time (ns) the timer was last armed to fire at.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    armed: Option<i128>,
    /// `timerfd_settime` calls so far, for tests.
    #[cfg(test)]
    arms: u64,
}

/// How far apart two turns' ends may be and still share one arming of
/// the timer: the same next timer, its remaining time read a moment
/// apart. A turn may end this much before its timeout (the time driver
/// then parks again for what is left; nothing fires early) or after it.
#[cfg(any(target_os = "linux", target_os = "android"))]
const ARM_SLACK_NS: i128 = 5_000;

impl Turn {
    /// Makes a turn with `timeout` end on time: under a millisecond (not
    /// zero), `epoll_wait` would round it up, so the turn's `timerfd` is
    /// armed for the end (an absolute `CLOCK_MONOTONIC` time, so a thread
    /// preempted before the call arms it for the same end) and ends the
    /// poll. The poll's own timeout (which mio rounds up) stays as the
    /// backstop. Arming resets the timer, so an earlier arming that did
    /// not fire (the poll ended on I/O) is forgotten; one that fires
    /// during a later, longer poll ends it early, which its caller takes
    /// as a spurious wake-up.
    ///
    /// A timer still armed for (within [`ARM_SLACK_NS`] of) the same end
    /// is not armed again: a busy thread parks once per batch of I/O, each
    /// time with the same next timer, and `timerfd_settime` reprograms a
    /// kernel timer each call (one per park made a current-thread socket
    /// ping-pong beside a 300 µs sleep loop 2.3-3.6x slower than tokio's,
    /// an independent probe; `epoll_wait` arms its own only when it
    /// sleeps). One clock read per such turn instead.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn arm_timer(&mut self, timeout: Option<Duration>) {
        use rustix::time::{
            clock_gettime, timerfd_settime, ClockId, Itimerspec, TimerfdTimerFlags, Timespec,
        };
        let Some(t) = timeout.filter(|t| !t.is_zero() && *t < Duration::from_millis(1)) else {
            return;
        };
        let Some(fd) = &self.timer else {
            return;
        };
        let now = clock_gettime(ClockId::Monotonic);
        let now = i128::from(now.tv_sec) * 1_000_000_000 + i128::from(now.tv_nsec);
        let end = now + t.as_nanos() as i128;
        if let Some(armed) = self.armed {
            if armed > now && (armed - end).abs() <= ARM_SLACK_NS {
                return; // still armed for this end
            }
        }
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let value = Itimerspec {
            it_interval: zero,
            it_value: Timespec {
                tv_sec: (end / 1_000_000_000) as _,
                tv_nsec: (end % 1_000_000_000) as _,
            },
        };
        let armed = timerfd_settime(fd, TimerfdTimerFlags::ABSTIME, &value).is_ok();
        self.armed = armed.then_some(end);
        #[cfg(test)]
        {
            self.arms += 1;
        }
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn arm_timer(&mut self, _: Option<Duration>) {}
}

/// A monotonic `timerfd` registered with the poller under [`TIMER_TOKEN`].
#[cfg(any(target_os = "linux", target_os = "android"))]
fn make_timer(registry: &mio::Registry) -> Option<std::os::fd::OwnedFd> {
    use rustix::time::{timerfd_create, TimerfdClockId, TimerfdFlags};
    use std::os::fd::AsRawFd;
    let flags = TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK;
    let fd = timerfd_create(TimerfdClockId::Monotonic, flags).ok()?;
    let mut source = mio::unix::SourceFd(&fd.as_raw_fd());
    registry
        .register(&mut source, TIMER_TOKEN, Interest::READABLE)
        .ok()?;
    Some(fd)
}

#[derive(Default)]
struct Sources {
    slab: Slab<Arc<ScheduledIo>>,
    next_generation: usize,
    /// Deregistered keys, freed at the start of the next turn.
    released: Vec<usize>,
    shutdown: bool,
}

/// In [`Reactor`]'s count of live sources: some deregistered slot waits
/// to be freed (`Sources::released` is not empty, or was not when last
/// looked at; set and cleared under the sources lock). A driver sleeping
/// off the reactor frees them only then, without taking two locks on
/// every sleep. (A bit of the count rather than a field of its own: the
/// field made the reactor 8 bytes larger, which moved the allocations
/// made after it and cost ping_pong/ct 7 % in alternating pairs with the
/// same instruction count per round trip.)
const RELEASED_PENDING: usize = 1 << (usize::BITS - 1);

/// A source [`Reactor::register`] added.
#[derive(Debug)]
pub(crate) struct Registered {
    /// Its slot, for `deregister`.
    pub(crate) key: usize,
    pub(crate) io: Arc<ScheduledIo>,
    /// No other source was registered: the caller wakes the driver, which
    /// may sleep off the reactor while there is none (`park.rs`).
    pub(crate) first: bool,
}

/// The runtime's I/O driver.
pub(crate) struct Reactor {
    /// The poller; whoever holds this lock drives the reactor.
    turn: Mutex<Turn>,
    registry: mio::Registry,
    waker: Arc<mio::Waker>,
    sources: Mutex<Sources>,
    /// Sources registered and not yet deregistered. With none, a busy
    /// worker's non-blocking turn has nothing to find and skips the
    /// `epoll_wait` (one syscall per `event_interval` polls was 6% of
    /// yield_many on 2 threads). Its top bit is [`RELEASED_PENDING`].
    live: AtomicUsize,
    /// How the idle driver's recent spins went (`park::spin_for_io`).
    /// Only the driver (one thread at a time) uses it.
    pub(crate) spin_governor: crate::park::SpinGovernor,
    shutdown: AtomicBool,
    /// The turn has a `timerfd` for sub-millisecond timeouts ([`precise`](Self::precise)).
    precise: bool,
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("sources", &self.lock_sources().slab.len())
            .field("shutdown", &self.shutdown.load(Acquire))
            .finish_non_exhaustive()
    }
}

/// The error an operation gets once the runtime's reactor is gone.
pub(crate) fn shutdown_error() -> io::Error {
    io::Error::other("the runtime's I/O driver has shut down")
}

/// The error for a socket or child process made outside a runtime with
/// I/O enabled.
pub(crate) fn no_reactor_error() -> io::Error {
    if crate::test_util::in_check() {
        return io::Error::other(
            "no I/O driver under the test toolkit: a `Check` run has no real sockets or \
             child processes; use `test_util::duplex` (in-memory streams) or \
             `test_util::io::Builder` (scripted I/O)",
        );
    }
    io::Error::other(
        "no I/O driver: sockets and child processes must be created inside a runtime \
         built with `enable_io()` or `enable_all()`",
    )
}

impl Reactor {
    pub(crate) fn new() -> io::Result<Reactor> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE_TOKEN)?);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let timer = make_timer(&registry);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let precise = timer.is_some();
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let precise = false;
        Ok(Reactor {
            turn: Mutex::new(Turn {
                poll,
                events: mio::Events::with_capacity(EVENTS_PER_TURN),
                tick: 0,
                woken: Vec::new(),
                interrupts: 0,
                #[cfg(any(target_os = "linux", target_os = "android"))]
                timer,
                #[cfg(any(target_os = "linux", target_os = "android"))]
                armed: None,
                #[cfg(test)]
                arms: 0,
            }),
            registry,
            waker,
            sources: Mutex::new(Sources::default()),
            live: AtomicUsize::new(0),
            spin_governor: crate::park::SpinGovernor::new(),
            shutdown: AtomicBool::new(false),
            precise,
        })
    }

    /// Whether a turn's timeout under a millisecond is kept to the
    /// nanosecond: `epoll_wait` counts in milliseconds (mio rounds a
    /// timeout up), so such a turn arms a `timerfd` registered with the
    /// poller for the exact end ([`Turn::arm_timer`]). The timer is made
    /// with the reactor (one descriptor, so a runtime does not take one at
    /// some later moment, when the process may have none left); without
    /// one (none left then, or not Linux) the driver polls without
    /// sleeping and sleeps the remainder on its parker (`park.rs`).
    pub(crate) fn precise(&self) -> bool {
        self.precise
    }

    /// As if no `timerfd` could be made (tests of the fallback).
    #[cfg(test)]
    pub(crate) fn without_timer(mut self) -> Reactor {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            self.turn.get_mut().unwrap().timer = None;
        }
        self.precise = false;
        self
    }

    /// The waker that interrupts a thread blocked in this reactor's poll.
    pub(crate) fn waker(&self) -> Arc<mio::Waker> {
        self.waker.clone()
    }

    fn lock_sources(&self) -> MutexGuard<'_, Sources> {
        self.sources.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `source`; on failure nothing stays behind. The caller
    /// wakes the runtime's driver when the source is the only one
    /// ([`Registered::first`]): with none, the driver may be asleep off
    /// the reactor (`park.rs`, "No sources").
    pub(crate) fn register(
        &self,
        source: &mut impl mio::event::Source,
        interest: Interest,
        names: readiness::IoNames,
    ) -> io::Result<Registered> {
        let (key, io) = {
            let mut sources = self.lock_sources();
            if sources.shutdown {
                return Err(shutdown_error());
            }
            let generation = sources.next_generation;
            sources.next_generation = (generation + 1) & GENERATION_MASK;
            let entry = sources.slab.vacant_entry();
            let key = entry.key();
            if key > MAX_KEY {
                return Err(io::Error::other("too many I/O sources registered"));
            }
            let io = Arc::new(ScheduledIo::new(generation, names));
            entry.insert(io.clone());
            (key, io)
        };
        let token = Token(io.generation() << KEY_BITS | key);
        if let Err(err) = self.registry.register(source, token, interest) {
            // Roll back: nothing can have been delivered for this token.
            drop(self.lock_sources().slab.try_remove(key));
            return Err(err);
        }
        // SeqCst: against the driver's check for sources before it sleeps
        // off the reactor (`Parker::park_in_reactor`), either it sees this
        // source or the caller's wake (after this) finds it asleep.
        let first = self.live.fetch_add(1, SeqCst) & !RELEASED_PENDING == 0;
        Ok(Registered { key, io, first })
    }

    /// Deregisters `source`; its slot is freed at the next turn.
    pub(crate) fn deregister(&self, source: &mut impl mio::event::Source, key: usize) {
        self.live.fetch_sub(1, Release);
        let _ = self.registry.deregister(source);
        let mut sources = self.lock_sources();
        if !sources.shutdown {
            sources.released.push(key);
            self.live.fetch_or(RELEASED_PENDING, Release);
        }
    }

    /// Interrupts the thread blocked in this reactor's poll, if any.
    pub(crate) fn unpark(&self) {
        // An eventfd write; it can only fail if the fd is gone.
        let _ = self.waker.wake();
    }

    /// One turn (see the module docs). `block`: wait for the poll lock
    /// (the parked driver); otherwise give up if another thread drives.
    /// Returns how many source events this thread handled, `None` if it
    /// did not drive (another thread does).
    /// Whether any source is registered (the reactor's own waker aside).
    pub(crate) fn has_sources(&self) -> bool {
        self.live.load(Acquire) & !RELEASED_PENDING > 0
    }

    /// Registered sources now, without the lock (a hint; SeqCst, see
    /// [`register`](Self::register)).
    pub(crate) fn live_sources(&self) -> usize {
        self.live.load(SeqCst) & !RELEASED_PENDING
    }

    pub(crate) fn turn(&self, timeout: Option<Duration>, block: bool) -> Option<usize> {
        self.turn_then(timeout, block, || {})
    }

    /// [`turn`](Self::turn), calling `polled` as soon as the poll returns,
    /// before the wakes: a parked thread marks itself out of the poll there,
    /// so the wakes it makes itself (its own `block_on` future's, say) do
    /// not write the eventfd to interrupt a poll that is already over.
    pub(crate) fn turn_then(
        &self,
        timeout: Option<Duration>,
        block: bool,
        polled: impl FnOnce(),
    ) -> Option<usize> {
        if !block && timeout == Some(Duration::ZERO) && !self.has_sources() {
            // A busy worker's check with no sources: nothing to collect (an
            // unpark's eventfd write waits for the next blocking poll,
            // which it only shortens). Slots deregistered since the last
            // turn are freed all the same: a runtime kept busy that opens
            // and closes one socket at a time never turns nor sleeps, and
            // its slab grew by a slot per socket (about 630 bytes each).
            self.free_released_between_turns();
            return Some(0);
        }
        let mut guard = match self.turn.try_lock() {
            Ok(turn) => turn,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) if block => {
                self.turn.lock().unwrap_or_else(PoisonError::into_inner)
            }
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        let turn = &mut *guard;
        self.free_released();
        if self.shutdown.load(Acquire) {
            return Some(0);
        }
        turn.tick = turn.tick.wrapping_add(1);
        turn.arm_timer(timeout);
        let result = turn.poll.poll(&mut turn.events, timeout);
        polled();
        if let Err(err) = result {
            if err.kind() != io::ErrorKind::Interrupted {
                panic!("the reactor's epoll_wait failed: {err}");
            }
            return Some(0);
        }
        {
            let sources = self.lock_sources();
            for event in turn.events.iter() {
                let token = event.token();
                if token == WAKE_TOKEN {
                    turn.interrupts += 1;
                    continue;
                }
                #[cfg(any(target_os = "linux", target_os = "android"))]
                if token == TIMER_TOKEN {
                    continue; // the timeout of a sub-millisecond turn
                }
                let key = token.0 & MAX_KEY;
                let generation = token.0 >> KEY_BITS;
                let Some(io) = sources.slab.get(key) else {
                    continue;
                };
                if io.generation() != generation {
                    continue; // a stale event for a reused slot
                }
                let edges = io.set_readiness(turn.tick, Ready::from_mio(event));
                if !edges.is_empty() {
                    turn.woken.push((io.clone(), edges));
                }
            }
        }
        let mut woken = std::mem::take(&mut turn.woken);
        let events = woken.len();
        // Wake with the poll lock released too: another thread may drive.
        drop(guard);
        for (io, ready) in woken.drain(..) {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| io.wake(ready))) {
                // The runtime's policy for a panicking waker, as for a
                // timer's (the panic hook has printed it).
                crate::context::with_scheduler(|scheduler| {
                    scheduler.common().wake_guarded(
                        || "the waker of an I/O source".into(),
                        || std::panic::resume_unwind(panic),
                    );
                });
            }
        }
        if let Ok(mut turn) = self.turn.try_lock() {
            if turn.woken.capacity() < woken.capacity() {
                turn.woken = woken;
            }
        }
        Some(events)
    }

    /// Frees the slots deregistered since the last turn, unless a turn is
    /// under way (it frees them itself), for a driver that sleeps without
    /// turning (`park.rs`, "No sources"): a thread that opens and closes a
    /// socket between such sleeps would otherwise grow the slab.
    pub(crate) fn free_released_between_turns(&self) {
        if self.live.load(Acquire) & RELEASED_PENDING == 0 {
            return;
        }
        if let Ok(_turn) = self.turn.try_lock() {
            self.free_released();
        }
    }

    /// Slots in the slab, released ones included (tests).
    #[cfg(test)]
    pub(crate) fn slots(&self) -> usize {
        self.lock_sources().slab.len()
    }

    fn free_released(&self) {
        let mut sources = self.lock_sources();
        self.live.fetch_and(!RELEASED_PENDING, Relaxed);
        let sources = &mut *sources;
        for key in sources.released.drain(..) {
            drop(sources.slab.try_remove(key));
        }
    }

    /// How many times the sub-millisecond timer was armed so far.
    #[cfg(test)]
    pub(crate) fn timer_arms(&self) -> u64 {
        self.turn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .arms
    }

    /// How many turns an `unpark` (the eventfd) interrupted so far.
    #[cfg(test)]
    pub(crate) fn interrupts(&self) -> u64 {
        self.turn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .interrupts
    }

    /// How many turns (`epoll_wait` calls) were made so far.
    #[cfg(test)]
    pub(crate) fn turns(&self) -> u64 {
        self.turn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tick as u64
    }

    /// Registered sources (metrics).
    pub(crate) fn sources(&self) -> usize {
        let sources = self.lock_sources();
        sources.slab.len() - sources.released.len()
    }

    /// Shutdown: no new registrations; every wait on a source ends with
    /// an error from now on.
    pub(crate) fn shutdown(&self) {
        if self.shutdown.swap(true, AcqRel) {
            return;
        }
        let all: Vec<Arc<ScheduledIo>> = {
            let mut sources = self.lock_sources();
            sources.shutdown = true;
            sources.released.clear();
            sources.slab.drain().collect()
        };
        // Every source's waiters hear of it, even past a panicking waker
        // (which goes to the runtime's policy, as a wake's does).
        for io in all {
            crate::scheduler::wake_aside(|| "the waker of an I/O source".into(), || io.shutdown());
        }
        self.unpark();
    }
}

#[cfg(test)]
mod tests;
