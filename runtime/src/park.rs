//! How an idle scheduler thread sleeps: parked on its own [`Parker`]
//! (kernel: a kthread that sets its state and calls `schedule()`, woken by
//! `wake_up_process()` on that one thread: no wait queue, since there is
//! never more than one sleeper to choose from), or, when it is the
//! runtime's driver, inside the reactor's `epoll_wait`.
//!
//! # The parker
//!
//! One state word (`EMPTY`, `PARKED`, `NOTIFIED`) with a mutex and a
//! condition variable behind it for the sleep itself, as tokio's and std's
//! parkers: an unpark that finds the thread awake is one atomic swap, and
//! a park that finds an unpark pending is one compare-exchange. Only a
//! park that sleeps, and the unpark that ends it, take the mutex: the
//! sleeper moves `EMPTY -> PARKED` under it, and the unparker, having
//! swapped in `NOTIFIED` and seen `PARKED`, takes it once before it
//! signals, so the signal cannot fall between the sleeper's move and its
//! wait. (The wait queue it replaced cost about 1,100 instructions per
//! sleep and wake of a `block_on` thread, callgrind, `benches/fs_process.rs`
//! fs_write/4KiB.)
//!
//! # Waking a thread that sleeps in the reactor
//!
//! The sleeper announces `in_poll` and then re-checks the state word for
//! `NOTIFIED`; the waker swaps in `NOTIFIED` and then reads `in_poll` (all
//! `SeqCst`). Either
//! the sleeper sees the notification and does not block, or the waker
//! sees the announcement and interrupts the poll through the reactor's
//! [`mio::Waker`]. No unpark is lost between the two.
//!
//! # No sources
//!
//! A driver whose reactor has no source registered sleeps on its parker
//! instead: a remote wake is then a futex wake where it was an eventfd
//! write and an `epoll_wait` return (`benches/runtime.rs`, ping_pong_xt:
//! two current-thread runtimes waking each other, 1.06x faster, 15
//! alternating pairs). A source registered meanwhile wakes the driver
//! (`Registration::new`, when it is the only one), which then sleeps in
//! the reactor; the count of sources and the driver's check of it are
//! `SeqCst`, so either the check sees the source or the wake comes after
//! it. Such a sleep frees the reactor's slots of sources deregistered
//! since its last turn, as a turn does.
//!
//! # Timer precision with I/O enabled
//!
//! `epoll_wait` counts in milliseconds and mio rounds a timeout up. The
//! driver polls for the whole milliseconds only; a remainder under a
//! millisecond is a poll that the reactor's `timerfd` ends on time
//! (`Reactor::precise`): a timer never fires late because of the poller,
//! and I/O arriving in that last sub-millisecond is handled at once. The
//! timer is armed (one `timerfd_settime`) only when the end changes, not
//! on every park of a busy thread whose next timer stays the same
//! (`benches/timers.rs`, row `pingpong_timer`). Without a `timerfd` (the
//! process had no descriptor left when the runtime was built, or not
//! Linux) the driver collects ready I/O and sleeps the remainder on the
//! parker: still on time, but I/O arriving meanwhile waits for the timer
//! (a current-thread h2 server over a Unix socket, 150 streams each
//! sleeping 1 ms per request, took 0.84-0.90 s that way against tokio's
//! 0.34 s; `benches/timers.rs` row `pingpong_timer` 100x tokio's time).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::reactor::Reactor;
use crate::scheduler::Common;

/// No unpark pending, nobody asleep.
const EMPTY: u8 = 0;
/// The owner thread sleeps (or is about to) on the condition variable.
const PARKED: u8 = 1;
/// An unpark is pending: the current or next park ends at once.
const NOTIFIED: u8 = 2;

/// One thread's sleep: `park` waits until `unpark` (or the timeout).
/// Only the thread that owns it parks; any thread unparks.
#[derive(Debug, Default)]
pub(crate) struct Parker {
    /// `EMPTY`, `PARKED` or `NOTIFIED` (see the module docs).
    state: AtomicU8,
    /// Shutdown: every park returns at once.
    closed: AtomicBool,
    lock: Mutex<()>,
    cvar: Condvar,
    /// The thread is (about to be) blocked in the reactor's poll.
    in_poll: AtomicBool,
    io_waker: Option<Arc<mio::Waker>>,
}

impl Parker {
    pub(crate) const fn new() -> Self {
        Parker {
            state: AtomicU8::new(EMPTY),
            closed: AtomicBool::new(false),
            lock: Mutex::new(()),
            cvar: Condvar::new(),
            in_poll: AtomicBool::new(false),
            io_waker: None,
        }
    }

    /// A parker that can sleep in `common`'s reactor, if it has one.
    pub(crate) fn for_driver(common: &Common) -> Self {
        Parker {
            io_waker: common.io.as_ref().map(|io| io.waker()),
            ..Parker::new()
        }
    }

    /// Sleeps until unparked or `timeout` passes. An `unpark` that came
    /// before the call is not lost: it ends this park at once. After
    /// [`close`](Self::close) it returns at once. It may also return early
    /// (a spurious wake-up of the condition variable): callers re-check
    /// what they wait for after every park.
    pub(crate) fn park(&self, timeout: Option<Duration>) {
        self.sleep(timeout);
        waitq::registry::tick(); // the coarse clock of the wait registry
    }

    /// [`park`](Self::park) with a timeout, for a thread outside the
    /// schedulers (it does not tick the wait registry's clock). Returns
    /// whether the timeout ended it.
    pub(crate) fn park_timeout(&self, timeout: Duration) -> bool {
        self.sleep(Some(timeout))
    }

    /// Whether the next park returns at once: an unpark is pending (or
    /// the parker is closed). A thread that polls this before it parks
    /// ([`spin_until`]) stays on its CPU: an unpark meanwhile is one swap
    /// for the unparker and no wake-up for either, and the park consumes it.
    pub(crate) fn is_notified(&self) -> bool {
        self.state.load(Relaxed) != EMPTY || self.closed.load(Relaxed)
    }

    /// Whether the owner sleeps on the condition variable (or is about
    /// to), rather than running or spinning before its park.
    pub(crate) fn is_parked(&self) -> bool {
        self.state.load(Relaxed) == PARKED
    }

    /// Marks the parker as asleep, for tests of who gets woken.
    #[cfg(test)]
    pub(crate) fn pretend_parked(&self) {
        self.state.store(PARKED, SeqCst);
    }

    /// The sleep itself; true when it timed out. No clock read of its own.
    fn sleep(&self, timeout: Option<Duration>) -> bool {
        // An unpark already came: consume it. (Acquire through SeqCst:
        // what the unparker published before is visible to the caller's
        // re-checks.)
        if self.take_notification() || self.closed.load(SeqCst) {
            return false;
        }
        if timeout == Some(Duration::ZERO) {
            // Nothing to wait for: a condition variable's zero wait is
            // still a system call (a paused clock's jump parks so, once
            // per timer it moves to). An unpark from now on is left
            // pending for the next park, as it would be after the wait.
            return true;
        }
        let guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(actual) = self.state.compare_exchange(EMPTY, PARKED, SeqCst, SeqCst) {
            debug_assert_eq!(actual, NOTIFIED, "only the owner thread parks");
            self.state.store(EMPTY, SeqCst);
            return false;
        }
        let timed_out = match timeout {
            None => {
                drop(
                    self.cvar
                        .wait(guard)
                        .unwrap_or_else(PoisonError::into_inner),
                );
                false
            }
            Some(timeout) => {
                let woken = self.cvar.wait_timeout(guard, timeout);
                woken.unwrap_or_else(PoisonError::into_inner).1.timed_out()
            }
        };
        // Leave `PARKED` whatever ended the sleep (an unpark, the timeout,
        // a spurious wake-up), taking an unpark that came meanwhile: it is
        // this sleep's, and `close` leaves one (`NOTIFIED`) too.
        self.state.swap(EMPTY, SeqCst) != NOTIFIED && timed_out
    }

    /// Consumes a pending unpark.
    fn take_notification(&self) -> bool {
        self.state
            .compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst)
            .is_ok()
    }

    /// Sleeps in `reactor`'s poll until an I/O event, an unpark, or
    /// `timeout`; see the module docs for the sub-millisecond remainder.
    fn park_in_reactor(&self, reactor: &Reactor, timeout: Option<Duration>) {
        if self.closed.load(SeqCst) {
            return;
        }
        if reactor.live_sources() == 0 {
            // No sources: nothing to poll for (see "No sources").
            reactor.free_released_between_turns();
            self.park(timeout);
            return;
        }
        // Whole milliseconds, as epoll_wait counts (a later park sleeps
        // the rest); under one, the reactor's timer keeps the remainder.
        let mut poll_timeout = timeout.map(|t| Duration::from_millis(t.as_millis() as u64));
        if poll_timeout == Some(Duration::ZERO) {
            if !reactor.precise() {
                // Collect what is ready, then the precise sleep.
                reactor.turn(Some(Duration::ZERO), true);
                self.park(timeout);
                return;
            }
            poll_timeout = timeout;
        }
        self.in_poll.store(true, SeqCst);
        if self.state.swap(EMPTY, SeqCst) == NOTIFIED {
            self.in_poll.store(false, SeqCst);
            reactor.turn(Some(Duration::ZERO), false);
            return;
        }
        reactor.turn_then(poll_timeout, true, || self.in_poll.store(false, SeqCst));
        self.in_poll.store(false, SeqCst);
        // The unpark (if any) that interrupted the poll, or came while this
        // thread handed out the turn's wakes, is consumed here: the caller
        // re-checks its queues after every park.
        // A swap, not a store: it reads the unparker's `NOTIFIED`, so what
        // the unparker published before (a queued task, a woken flag) is
        // visible to those re-checks.
        self.state.swap(EMPTY, SeqCst);
    }

    /// Ends the current or next `park`.
    pub(crate) fn unpark(&self) {
        if self.state.swap(NOTIFIED, SeqCst) == PARKED {
            // The sleeper moved to `PARKED` under the lock and waits on
            // the condition variable, or is about to: taking the lock
            // once makes sure it is waiting before the signal.
            drop(self.lock.lock().unwrap_or_else(PoisonError::into_inner));
            self.cvar.notify_one();
        }
        if self.in_poll.load(SeqCst) {
            if let Some(waker) = &self.io_waker {
                let _ = waker.wake();
            }
        }
    }

    /// Shutdown: every park returns at once from now on.
    pub(crate) fn close(&self) {
        self.closed.store(true, SeqCst);
        self.unpark();
    }
}

/// Sleeps as the runtime's driver: in the reactor if there is one, with
/// the next timer's deadline as the timeout; then fires due timers.
///
/// With a paused clock, time jumps to the next timer only when nothing
/// real is under way: ready I/O is collected first (its tasks run before
/// any jump), and while a blocking job runs, or `others_idle` says another
/// thread of the runtime runs tasks or has some to run (a worker, a woken
/// `block_on` future: it may be about to register a timer), the thread
/// sleeps in real time, a millisecond at a time, without moving the clock.
pub(crate) fn park_driving(common: &Common, parker: &Parker, others_idle: impl FnOnce() -> bool) {
    let timeout = match &common.time {
        Some(time) if time.clock().is_paused() => {
            if let Some(io) = &common.io {
                if io.turn(Some(Duration::ZERO), true) > Some(0) {
                    return; // woken tasks run before the clock may jump
                }
            }
            if common.blocking.is_busy() || !others_idle() {
                time.park_untimed();
                Some(Duration::from_millis(1))
            } else {
                time.park_timeout()
            }
        }
        Some(time) => time.park_timeout(),
        None => None,
    };
    match &common.io {
        Some(io) => parker.park_in_reactor(io, timeout),
        None => parker.park(timeout),
    }
    if let Some(time) = &common.time {
        time.finish_park();
        time.process();
    }
}

/// Above this many registered sources an idle driver sleeps at once
/// instead of spinning. A spin pays when one flow (a transfer, a
/// ping-pong) is about to send again: the reader takes it without a sleep
/// and a wake-up. With many connections (a server under load) it does not:
/// the spin returns at the first ready socket, so each turn of the reactor
/// collects one event, where a short sleep collects several. Measured on
/// `examples/http` with 2 workers under `wrk -t1 -c64` (perf's
/// `syscalls:sys_enter_epoll_wait` per request, busy 2-vCPU machine):
/// 0.55-1.97 with the spin, 0.04-0.06 without it (tokio: 0.09), and the
/// server's CPU per request down by a median 6 % over 5 pairs.
const SPIN_MAX_SOURCES: usize = 8;

/// Spins in a row that found nothing before a spinner backs off
/// ([`SpinGovernor`]): it then spins on one park in `SPIN_PROBE_EVERY`,
/// until a spin finds what it waits for again. For the driver: the
/// sources may be few and still slow to answer: a child process's pidfd
/// and pipes (`Command::output()`), where each spin only took CPU from the
/// child (`benches/fs_process.rs` process_output/true on 2 vCPUs: about
/// 100 `epoll_wait` calls per child against tokio's 2.6, and 0.96x tokio).
const SPIN_MISS_LIMIT: u32 = 4;
const SPIN_PROBE_EVERY: u32 = 64;

/// Before an idle worker sleeps in the reactor: polls it without sleeping
/// for up to `spin` while a few sources are registered, unless recent
/// spins kept finding nothing (`SPIN_MISS_LIMIT`). Returns whether that
/// found I/O (its tasks are woken) or `work_arrived` said to stop; then the
/// worker runs instead of sleeping.
pub(crate) fn spin_for_io(
    io: &Reactor,
    spin: Duration,
    mut work_arrived: impl FnMut() -> bool,
) -> bool {
    let sources = io.live_sources();
    if spin.is_zero() || sources == 0 || sources > SPIN_MAX_SOURCES {
        return false;
    }
    if !io.spin_governor.allows() {
        return false;
    }
    let start = Instant::now();
    loop {
        // Not blocking on the poll lock: a busy worker's check holds it
        // only for a moment, and what it collects it wakes.
        if io.turn(Some(Duration::ZERO), false) > Some(0) || work_arrived() {
            io.spin_governor.record(true);
            return true;
        }
        if start.elapsed() >= spin {
            io.spin_governor.record(false);
            return false;
        }
        std::hint::spin_loop();
    }
}

/// Whether spinning for something keeps paying: after `SPIN_MISS_LIMIT`
/// spins in a row that found nothing, [`allows`](Self::allows) says yes to
/// one spin in `SPIN_PROBE_EVERY`, until one finds it again. Shared by the
/// threads that spin for the same thing (relaxed: a lost update only
/// moves the back-off by a spin).
#[derive(Debug, Default)]
pub(crate) struct SpinGovernor {
    /// Misses in a row, up to `SPIN_MISS_LIMIT`; above it, the count of
    /// spins skipped since the last probe.
    state: AtomicU32,
}

impl SpinGovernor {
    pub(crate) const fn new() -> SpinGovernor {
        SpinGovernor {
            state: AtomicU32::new(0),
        }
    }

    /// Whether to spin this time.
    pub(crate) fn allows(&self) -> bool {
        let state = self.state.load(Relaxed);
        if state < SPIN_MISS_LIMIT {
            return true;
        }
        // Backed off: one spin in `SPIN_PROBE_EVERY`, to notice when what
        // we wait for comes back quickly again.
        let next = match state + 1 {
            n if n >= SPIN_MISS_LIMIT + SPIN_PROBE_EVERY => SPIN_MISS_LIMIT,
            n => n,
        };
        self.state.store(next, Relaxed);
        next == SPIN_MISS_LIMIT
    }

    /// Spins for up to `spin` until `done` holds, if the back-off allows
    /// it, and records how it went. Returns whether `done` held.
    pub(crate) fn spin(&self, spin: Duration, done: impl FnMut() -> bool) -> bool {
        if spin.is_zero() || !self.allows() {
            return false;
        }
        let found = spin_until(spin, done);
        self.record(found);
        found
    }

    /// How the spin [`allows`](Self::allows) granted ended.
    pub(crate) fn record(&self, found: bool) {
        if found {
            self.state.store(0, Relaxed);
        } else {
            let state = self.state.load(Relaxed);
            if state < SPIN_MISS_LIMIT {
                self.state.store(state + 1, Relaxed);
            }
        }
    }
}

/// Polls `done` until it holds (true) or `spin` has passed (false),
/// reading the clock once every 32 polls. Zero: no poll at all.
pub(crate) fn spin_until(spin: Duration, mut done: impl FnMut() -> bool) -> bool {
    if spin.is_zero() {
        return false;
    }
    let start = Instant::now();
    loop {
        for _ in 0..32 {
            if done() {
                return true;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= spin {
            return false;
        }
    }
}

/// A busy thread's check of the drivers, without sleeping: fire due
/// timers and collect ready I/O (unless another thread drives the
/// reactor right now), every `event_interval` polls and when it runs dry
/// holding yields ([`YieldCheck`]). Returns the time it read.
pub(crate) fn poll_drivers(common: &Common) -> Instant {
    let now = waitq::registry::tick(); // the coarse clock of the wait registry
    common.counters.busy_driver_checks.fetch_add(1, Relaxed);
    if let Some(time) = &common.time {
        time.process();
    }
    if let Some(io) = &common.io {
        io.turn(Some(Duration::ZERO), false);
    }
    now
}

/// How long a worker that keeps running yields may go without checking
/// the drivers (see [`YieldCheck`]).
pub(crate) const YIELD_CHECK_GAP: Duration = Duration::from_micros(100);

/// A worker's check of the drivers before it runs again the tasks that
/// yielded, once nothing else is ready (tokio's `park_yield`), on both
/// schedulers. A task that yields (or spends its budget) in a loop of
/// long polls would otherwise hold due timers and ready I/O back for
/// `event_interval` of its polls (an independent probe: a 10 ms sleep
/// fired 378 ms late next to a loop of 6.4 ms polls). Tokio checks before
/// every such run, a zero-timeout `epoll_wait` each time; this one reads
/// the clock and checks only once [`YIELD_CHECK_GAP`] has passed since
/// the worker's last check, so a loop of short yields pays about 25 ns
/// per yield, not a system call, and timers and I/O wait at most one
/// pass over the yielding tasks plus the gap.
pub(crate) struct YieldCheck {
    last: Instant,
}

impl YieldCheck {
    pub(crate) fn new() -> YieldCheck {
        YieldCheck {
            last: Instant::now(),
        }
    }

    /// The worker checked the drivers at `now` (its event interval ended).
    pub(crate) fn checked(&mut self, now: Instant) {
        self.last = now;
    }

    /// The worker is about to run its yields again: checks the drivers
    /// if it has not for [`YIELD_CHECK_GAP`]. True when it did.
    pub(crate) fn before_yields(&mut self, common: &Common) -> bool {
        if !self.due() {
            return false;
        }
        self.check(common);
        true
    }

    /// [`YIELD_CHECK_GAP`] has passed since the last check.
    fn due(&self) -> bool {
        self.last.elapsed() >= YIELD_CHECK_GAP
    }

    /// Checks the drivers now.
    fn check(&mut self, common: &Common) {
        self.last = poll_drivers(common);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::Arc;
    use std::task::{Context, Wake, Waker};
    use std::time::Duration;

    use mio::net::UnixStream;
    use mio::Interest;
    use waitq::PollWaiter;

    use super::{spin_for_io, Parker, EMPTY};
    use crate::reactor::readiness::Direction;
    use crate::reactor::Reactor;

    /// A waker that unparks a parker, as the `block_on` future's does.
    struct Unpark(Arc<Parker>, AtomicBool);

    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.1.store(true, SeqCst);
            self.0.unpark();
        }
    }

    /// A park with a zero timeout returns without waiting on anything:
    /// it took the parker's lock and made a condition-variable wait (a
    /// system call), once per timer a paused clock jumped to: a
    /// `sleep(1e11 s)` on a paused clock, past the wheel's horizon 357
    /// times, took 200 ms of real time and 1.2 ms after (a scratch
    /// program; tokio 0.1 ms: a benchmark figure, not a test's).
    /// Here the lock is held by the test: the park must return anyway,
    /// and a pending unpark is still consumed first.
    #[test]
    fn a_zero_park_waits_for_nothing() {
        let parker = Arc::new(Parker::new());
        let held = parker.lock.lock().unwrap();
        let returned = Arc::new(AtomicBool::new(false));
        let park = {
            let (parker, returned) = (parker.clone(), returned.clone());
            std::thread::spawn(move || {
                assert!(parker.sleep(Some(Duration::ZERO)), "timed out");
                parker.unpark();
                assert!(!parker.sleep(Some(Duration::ZERO)), "the unpark ends it");
                returned.store(true, SeqCst);
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !returned.load(SeqCst) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let returned_while_held = returned.load(SeqCst);
        drop(held);
        park.join().unwrap();
        assert!(returned_while_held, "the zero park waited for the lock");
    }

    /// A driver that sleeps off the reactor (no source left) frees the
    /// slots of the sources deregistered since the last turn, as a turn
    /// does: a loop that opens and closes a socket between such sleeps
    /// does not grow the reactor's slab.
    #[test]
    fn sleeping_off_the_reactor_frees_deregistered_slots() {
        let reactor = Reactor::new().unwrap();
        let parker = driver_parker(&reactor);
        for _ in 0..100 {
            let (mut socket, _peer) = UnixStream::pair().unwrap();
            let key = register_read(&reactor, &mut socket).key;
            reactor.deregister(&mut socket, key);
            parker.park_in_reactor(&reactor, Some(Duration::from_micros(10)));
        }
        assert!(reactor.slots() <= 1, "{} slots kept", reactor.slots());
    }

    #[test]
    fn a_wake_the_parked_thread_makes_in_its_own_turn_does_not_interrupt_a_poll() {
        let reactor = Reactor::new().unwrap();
        let parker = driver_parker(&reactor);
        let (mut socket, mut peer) = UnixStream::pair().unwrap();
        let io = register_read(&reactor, &mut socket).io;
        // New sources start out ready; a would-block clears that, so the
        // event below is a new edge, which wakes the queue.
        let seen = io.ready_event(Direction::Read).unwrap();
        io.clear_readiness(seen, Direction::Read);
        let (unpark, _waiter) = read_waiter(&parker, &io);
        peer.write_all(b"x").unwrap();
        // The event wakes the waiter from inside this turn, on this thread.
        parker.park_in_reactor(&reactor, Some(Duration::from_secs(5)));
        assert!(unpark.1.load(SeqCst), "the event woke the waiter");
        reactor.turn(Some(Duration::ZERO), true);
        assert_eq!(
            reactor.interrupts(),
            0,
            "the unpark wrote the eventfd for a poll that was already over"
        );
        // An unpark from outside a poll still reaches the next one.
        parker.in_poll.store(true, SeqCst);
        parker.unpark();
        reactor.turn(Some(Duration::ZERO), true);
        assert_eq!(reactor.interrupts(), 1);
    }

    /// I/O that comes while the driver sleeps the last sub-millisecond
    /// before a timer is handled by that sleep, not after it: the sleep
    /// is a poll the reactor's `timerfd` ends on time. (It was a zero poll
    /// and then a sleep on the parker, blind to I/O: a current-thread h2
    /// server over a Unix socket whose 150 streams each slept 1 ms per
    /// request took 0.84-0.90 s, tokio 0.34 s, ours with the timer 0.30 s;
    /// a scratch program, timings are a benchmark's.) A writer writes once
    /// the parked thread announces its poll; of 50 such parks, those whose
    /// write came in time (a writer held off the CPU for the whole 900 µs
    /// misses it) must have woken the waiter from inside the park.
    #[test]
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn io_during_a_sub_millisecond_park_is_handled_by_it() {
        use std::io::Read;
        let reactor = Reactor::new().unwrap();
        let parker = driver_parker(&reactor);
        let (mut socket, peer) = UnixStream::pair().unwrap();
        let io = register_read(&reactor, &mut socket).io;
        let peer = Arc::new(std::sync::Mutex::new(peer));
        let (mut wrote, mut handled) = (0, 0);
        for _ in 0..50 {
            // Drain and clear, so the write below is a new edge.
            let mut byte = [0u8; 16];
            while socket.read(&mut byte).is_ok() {}
            if let Some(seen) = io.ready_event(Direction::Read) {
                io.clear_readiness(seen, Direction::Read);
            }
            let (unpark, waiter) = read_waiter(&parker, &io);
            let done = Arc::new(AtomicBool::new(false));
            let writer = {
                let (parker, peer, done) = (parker.clone(), peer.clone(), done.clone());
                std::thread::spawn(move || {
                    let start = std::time::Instant::now();
                    while !parker.in_poll.load(SeqCst) {
                        if done.load(SeqCst) || start.elapsed() > Duration::from_secs(10) {
                            return false;
                        }
                        std::thread::yield_now();
                    }
                    peer.lock().unwrap().write_all(b"x").unwrap();
                    true
                })
            };
            parker.park_in_reactor(&reactor, Some(Duration::from_micros(900)));
            let woken_in_park = unpark.1.load(SeqCst);
            done.store(true, SeqCst);
            if writer.join().unwrap() {
                wrote += 1;
                handled += usize::from(woken_in_park);
            }
            drop(waiter);
            parker.state.store(EMPTY, SeqCst); // the waiter's later wake, if any
        }
        assert!(
            handled > 0,
            "{wrote} of 50 parks announced a poll; no write during one was handled by it"
        );
    }

    /// A parker that sleeps in `reactor`, as a runtime's driver's does.
    fn driver_parker(reactor: &Reactor) -> Arc<Parker> {
        Arc::new(Parker {
            io_waker: Some(reactor.waker()),
            ..Parker::new()
        })
    }

    /// A waiter asleep on `io`'s read queue whose wake unparks `parker`
    /// (and sets the flag in the returned `Unpark`), as a task's would.
    fn read_waiter<'a>(
        parker: &Arc<Parker>,
        io: &'a crate::reactor::readiness::ScheduledIo,
    ) -> (Arc<Unpark>, PollWaiter<&'a waitq::WaitQueue>) {
        let unpark = Arc::new(Unpark(parker.clone(), AtomicBool::new(false)));
        let waker = Waker::from(unpark.clone());
        let mut waiter = PollWaiter::new(io.queue(Direction::Read));
        let registered = waiter.poll_wait_event(&mut Context::from_waker(&waker), || false);
        assert!(registered.is_pending());
        (unpark, waiter)
    }

    /// Registers `socket` with `reactor` for reading.
    fn register_read(reactor: &Reactor, socket: &mut UnixStream) -> crate::reactor::Registered {
        reactor
            .register(
                socket,
                Interest::READABLE,
                crate::reactor::readiness::IoNames::OTHER,
            )
            .unwrap()
    }

    /// Without a `timerfd` (none could be made when the reactor was: the
    /// process was out of descriptors) a sub-millisecond park is a zero
    /// poll and then the parker's precise sleep, as before the timer: not a
    /// poll whose timeout mio rounds up to a millisecond (sub-millisecond
    /// timers then fired up to a millisecond late; an independent review).
    /// A watcher looks at how the parked thread sleeps, over up to 50
    /// parks of 900 µs; it must see the parker and never the poll.
    #[test]
    fn without_a_timerfd_a_sub_millisecond_park_sleeps_on_the_parker() {
        let reactor = Reactor::new().unwrap().without_timer();
        assert!(!reactor.precise());
        let (mut socket, _peer) = UnixStream::pair().unwrap();
        let _registered = register_read(&reactor, &mut socket);
        let parker = driver_parker(&reactor);
        let (mut parked, mut polled) = (0, 0);
        for _ in 0..50 {
            let done = Arc::new(AtomicBool::new(false));
            let watcher = {
                let (parker, done) = (parker.clone(), done.clone());
                std::thread::spawn(move || {
                    let (mut parked, mut polled) = (false, false);
                    let start = std::time::Instant::now();
                    while !done.load(SeqCst) && start.elapsed() < Duration::from_secs(10) {
                        parked |= parker.is_parked();
                        polled |= parker.in_poll.load(SeqCst);
                        std::hint::spin_loop();
                    }
                    (parked, polled)
                })
            };
            parker.park_in_reactor(&reactor, Some(Duration::from_micros(900)));
            done.store(true, SeqCst);
            let (saw_parked, saw_polled) = watcher.join().unwrap();
            parked += usize::from(saw_parked);
            polled += usize::from(saw_polled);
            if parked >= 3 {
                break;
            }
        }
        assert_eq!(polled, 0, "a sub-millisecond park polled without a timer");
        assert!(parked > 0, "no park was seen asleep on the parker");
    }

    /// Runs `f` on a thread of its own and waits (at most 10 s) for it.
    fn within_10s(what: &str, f: impl FnOnce() + Send + 'static) {
        let (done, finished) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            f();
            let _ = done.send(());
        });
        if finished.recv_timeout(Duration::from_secs(10)).is_err() {
            panic!("{what}: still parked after 10 s (a lost unpark)");
        }
        thread.join().unwrap();
    }

    /// Waits (at most 10 s) until `parker`'s owner is asleep in it.
    fn until_parked(parker: &Parker) {
        let start = std::time::Instant::now();
        while parker.state.load(SeqCst) != super::PARKED {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the thread never parked"
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn an_unpark_before_the_park_ends_it_at_once_and_only_it() {
        within_10s("park after unpark", || {
            let parker = Parker::new();
            parker.unpark();
            parker.unpark(); // a second pending unpark is the same one
            parker.park(None);
            // Consumed: the next park sleeps until its timeout.
            assert_eq!(parker.state.load(SeqCst), super::EMPTY);
            parker.park(Some(Duration::from_millis(20)));
        });
    }

    #[test]
    fn an_unpark_from_another_thread_ends_a_park_in_progress() {
        for _ in 0..100 {
            let parker = Arc::new(Parker::new());
            let sleeper = parker.clone();
            let (done, finished) = std::sync::mpsc::channel();
            let thread = std::thread::spawn(move || {
                sleeper.park(None);
                let _ = done.send(());
            });
            until_parked(&parker);
            parker.unpark();
            if finished.recv_timeout(Duration::from_secs(10)).is_err() {
                panic!("unpark did not wake the parked thread (a lost wake-up)");
            }
            thread.join().unwrap();
        }
    }

    #[test]
    fn close_ends_the_park_in_progress_and_every_later_one() {
        let parker = Arc::new(Parker::new());
        let sleeper = parker.clone();
        let (done, finished) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            sleeper.park(None);
            let _ = done.send(());
            for _ in 0..3 {
                sleeper.park(None);
            }
            let _ = done.send(());
        });
        until_parked(&parker);
        parker.close();
        for what in ["the park in progress", "the later parks"] {
            if finished.recv_timeout(Duration::from_secs(10)).is_err() {
                panic!("close did not end {what}");
            }
        }
        thread.join().unwrap();
    }

    #[test]
    fn a_park_with_a_timeout_ends_after_it_without_an_unpark() {
        within_10s("a timed park", || {
            let parker = Parker::new();
            parker.park(Some(Duration::from_millis(30)));
            assert_eq!(parker.state.load(SeqCst), super::EMPTY);
            parker.unpark();
            assert!(
                !parker.park_timeout(Duration::from_secs(3600)),
                "an unpark ended it"
            );
        });
    }

    #[test]
    fn an_idle_worker_spins_on_the_reactor_only_while_sources_are_registered() {
        let reactor = Reactor::new().unwrap();
        let spin = Duration::from_millis(1);
        // No sources: no poll at all, whatever the budget.
        assert!(!spin_for_io(&reactor, Duration::from_secs(3600), || false));
        let (mut socket, mut peer) = UnixStream::pair().unwrap();
        let io = register_read(&reactor, &mut socket).io;
        let seen = io.ready_event(Direction::Read).unwrap();
        io.clear_readiness(seen, Direction::Read);
        // A source with nothing ready: the spin ends empty-handed.
        assert!(!spin_for_io(&reactor, spin, || false));
        // Work elsewhere ends it at once.
        assert!(spin_for_io(&reactor, Duration::from_secs(3600), || true));
        // A pending event: a zero budget does not poll, a spin takes it in.
        peer.write_all(b"x").unwrap();
        assert!(!spin_for_io(&reactor, Duration::ZERO, || false));
        assert!(io.ready_event(Direction::Read).is_none(), "not polled");
        assert!(spin_for_io(&reactor, spin, || false));
        assert!(
            io.ready_event(Direction::Read).is_some(),
            "the edge was taken in"
        );
    }

    #[test]
    fn a_driver_whose_spins_find_nothing_backs_off_until_one_finds_io() {
        use super::{SPIN_MISS_LIMIT, SPIN_PROBE_EVERY};
        let reactor = Reactor::new().unwrap();
        let spin = Duration::from_micros(200);
        let (mut socket, mut peer) = UnixStream::pair().unwrap();
        let io = register_read(&reactor, &mut socket).io;
        let seen = io.ready_event(Direction::Read).unwrap();
        io.clear_readiness(seen, Direction::Read);
        let polled = |reactor: &Reactor| {
            let before = reactor.turns();
            assert!(!spin_for_io(reactor, spin, || false));
            reactor.turns() > before
        };
        // Empty-handed spins in a row: each one polls.
        for miss in 0..SPIN_MISS_LIMIT {
            assert!(polled(&reactor), "spin {miss} did not poll");
        }
        // Backed off: one park in SPIN_PROBE_EVERY polls, the others sleep
        // at once.
        let probes = (0..3 * SPIN_PROBE_EVERY)
            .filter(|_| polled(&reactor))
            .count();
        assert_eq!(probes, 3, "not one probe per {SPIN_PROBE_EVERY} parks");
        // I/O that comes back quickly: the next probe takes it in...
        peer.write_all(b"x").unwrap();
        let found = (0..SPIN_PROBE_EVERY).any(|_| spin_for_io(&reactor, spin, || false));
        assert!(found, "no probe took the event in");
        assert!(io.ready_event(Direction::Read).is_some());
        // ...and every park spins again.
        for park in 0..SPIN_MISS_LIMIT - 1 {
            assert!(polled(&reactor), "park {park} after the hit did not spin");
        }
        // Work that arrives during a spin counts as a spin that paid: the
        // misses start over.
        assert!(spin_for_io(&reactor, spin, || true));
        for park in 0..SPIN_MISS_LIMIT {
            assert!(polled(&reactor), "park {park} after the work did not spin");
        }
        assert!(!polled(&reactor), "backed off again");
    }

    #[test]
    fn an_idle_worker_with_many_sources_sleeps_without_spinning() {
        use super::SPIN_MAX_SOURCES;
        let reactor = Reactor::new().unwrap();
        let mut sockets = Vec::new();
        for _ in 0..SPIN_MAX_SOURCES + 1 {
            let (mut socket, peer) = UnixStream::pair().unwrap();
            let registered = reactor
                .register(
                    &mut socket,
                    Interest::READABLE,
                    crate::reactor::readiness::IoNames::OTHER,
                )
                .unwrap();
            let (key, io) = (registered.key, registered.io);
            let seen = io.ready_event(Direction::Read).unwrap();
            io.clear_readiness(seen, Direction::Read);
            sockets.push((socket, peer, key, io));
        }
        // Ready I/O, but a server's worth of sources: no spin takes it in
        // (the sleep that follows collects it with whatever else is ready).
        sockets[0].1.write_all(b"x").unwrap();
        assert!(!spin_for_io(&reactor, Duration::from_secs(3600), || false));
        assert!(
            sockets[0].3.ready_event(Direction::Read).is_none(),
            "not polled"
        );
        // One source fewer: the spin polls again.
        let (mut socket, _peer, key, _io) = sockets.pop().unwrap();
        reactor.deregister(&mut socket, key);
        assert!(spin_for_io(&reactor, Duration::from_millis(1), || false));
        assert!(sockets[0].3.ready_event(Direction::Read).is_some());
    }

    #[test]
    fn a_governor_backs_off_after_misses_and_comes_back_on_a_hit() {
        use super::{SpinGovernor, SPIN_MISS_LIMIT, SPIN_PROBE_EVERY};
        let governor = SpinGovernor::new();
        for _ in 0..SPIN_MISS_LIMIT {
            assert!(governor.allows());
            governor.record(false);
        }
        // Backed off: one spin in SPIN_PROBE_EVERY.
        let allowed = (0..3 * SPIN_PROBE_EVERY)
            .filter(|_| {
                let allowed = governor.allows();
                if allowed {
                    governor.record(false);
                }
                allowed
            })
            .count();
        assert_eq!(allowed, 3);
        // A probe that finds what it waits for ends the back-off.
        while !governor.allows() {}
        governor.record(true);
        assert!((0..SPIN_MISS_LIMIT).all(|_| governor.allows()));
    }

    #[test]
    fn a_spin_ends_at_an_unpark_which_the_park_then_consumes() {
        use super::spin_until;
        let parker = Arc::new(Parker::new());
        assert!(!spin_until(Duration::from_micros(50), || parker.is_notified()));
        assert!(!parker.is_parked(), "a spinning owner counts as awake");
        let unparker = {
            let parker = parker.clone();
            std::thread::spawn(move || parker.unpark())
        };
        // Bounded: the unpark comes long before the minute is out.
        assert!(spin_until(Duration::from_secs(60), || parker.is_notified()));
        unparker.join().unwrap();
        // The park returns at once (the unpark is consumed, not lost) ...
        assert!(!parker.park_timeout(Duration::from_secs(60)));
        // ... and only once.
        assert!(!parker.is_notified());
        assert!(parker.park_timeout(Duration::from_millis(1)));
    }
}
