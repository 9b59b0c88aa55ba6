//! One registered source's readiness: an atomic word the reactor sets and
//! tasks clear, and per direction what tasks sleep on: one [`RcuWait`]
//! for the `poll_*` caller (there is one: the task that polled last), and
//! one [`WaitQueue`] for the async waiters (exclusive, as the kernel's
//! `accept` and `recv` sleep). One readiness edge wakes the `poll_*`
//! waiter and one async waiter; a task that made progress passes the wake
//! on (see [`ScheduledIo::pass_on`]).
//!
//! An edge wakes a direction's queue only once a wait on it has begun
//! (its `READERS_USED` or `WRITERS_USED` bit, set before the first
//! waiter links, and never cleared): a socket read and written through
//! `poll_*` alone, as a `TcpStream` under `read`/`write` is, costs no
//! queue lock per event.
//!
//! The word packs the ready bits with the reactor tick that set them:
//! readiness is cleared only by a task that saw `WouldBlock`, and only if
//! no newer event arrived since it read the word, so an edge reported
//! between a task's read and its clear is never lost.

use std::sync::atomic::{AtomicUsize, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed};

use waitq::{RcuWait, WaitQueue};

/// A set of readiness bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Ready(usize);

impl Ready {
    pub(crate) const EMPTY: Ready = Ready(0);
    pub(crate) const READABLE: Ready = Ready(1);
    pub(crate) const WRITABLE: Ready = Ready(1 << 1);
    pub(crate) const READ_CLOSED: Ready = Ready(1 << 2);
    pub(crate) const WRITE_CLOSED: Ready = Ready(1 << 3);
    pub(crate) const ERROR: Ready = Ready(1 << 4);
    /// Bits that let a reader proceed (its syscall will not block).
    pub(crate) const READ_SIDE: Ready = Ready(1 | 1 << 2 | 1 << 4);
    /// Bits that let a writer proceed.
    pub(crate) const WRITE_SIDE: Ready = Ready(1 << 1 | 1 << 3 | 1 << 4);
    /// What a fresh source is assumed to be: try the syscall first, and
    /// learn from `WouldBlock` (saves one reactor turn per new socket).
    pub(crate) const OPTIMISTIC: Ready = Ready(1 | 1 << 1);

    const MASK: usize = 0xff;

    pub(crate) fn from_mio(event: &mio::event::Event) -> Ready {
        let mut ready = Ready::EMPTY;
        if event.is_readable() {
            ready = ready | Ready::READABLE;
        }
        if event.is_writable() {
            ready = ready | Ready::WRITABLE;
        }
        if event.is_read_closed() {
            ready = ready | Ready::READ_CLOSED;
        }
        if event.is_write_closed() {
            ready = ready | Ready::WRITE_CLOSED;
        }
        if event.is_error() {
            ready = ready | Ready::ERROR;
        }
        ready
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn intersects(self, other: Ready) -> bool {
        self.0 & other.0 != 0
    }

    fn without(self, other: Ready) -> Ready {
        Ready(self.0 & !other.0)
    }
}

impl std::ops::BitOr for Ready {
    type Output = Ready;
    fn bitor(self, rhs: Ready) -> Ready {
        Ready(self.0 | rhs.0)
    }
}

/// Which direction a task waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

impl Direction {
    /// The bits that end a wait in this direction.
    pub(crate) fn ready_bits(self) -> Ready {
        match self {
            Direction::Read => Ready::READ_SIDE,
            Direction::Write => Ready::WRITE_SIDE,
        }
    }

    /// The bits a `WouldBlock` in this direction clears: its own, and the
    /// error bit. The closed bits are final: they are never cleared. The
    /// error is not: the socket's pending error (`SO_ERROR`) is taken by
    /// the syscall that reports it (a connected UDP socket's ICMP "port
    /// unreachable", say), and a `WouldBlock` after it shows it is gone;
    /// kept, it made every later wait return at once, a task spinning on
    /// a socket with nothing to read (tokio clears it the same way).
    fn clearable(self) -> Ready {
        match self {
            Direction::Read => Ready(Ready::READABLE.0 | Ready::ERROR.0),
            Direction::Write => Ready(Ready::WRITABLE.0 | Ready::ERROR.0),
        }
    }

    /// The bit that says a wait on this direction's queue has begun.
    fn used_bit(self) -> usize {
        match self {
            Direction::Read => READERS_USED,
            Direction::Write => WRITERS_USED,
        }
    }
}

/// A snapshot of the readiness word: what was ready and at which tick.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadyEvent {
    tick: usize,
}

impl ReadyEvent {
    /// A fresh source's optimistic readiness, before any reactor event
    /// (the reactor's ticks start at 1): clearing it keeps any readiness
    /// an event has reported since.
    pub(crate) const FRESH: ReadyEvent = ReadyEvent { tick: 0 };
}

const TICK_SHIFT: usize = 16;
const SHUTDOWN: usize = 1 << 15;
/// A wait on the direction's queue has begun (set by its first waiter,
/// before it links; never cleared): the reactor's edges wake the queue.
/// Without it they skip the queue, and its lock, as the kernel's
/// `smp_mb(); if (waitqueue_active(wq)) wake_up(wq)` does; see
/// [`ScheduledIo::queue`] for why no wake is lost.
const READERS_USED: usize = 1 << 8;
const WRITERS_USED: usize = 1 << 9;

/// The names of a source's two wait queues, by what the source is: a dump
/// says `on tcp_stream_readable`, not which of the runtime's files waits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IoNames {
    read: &'static str,
    write: &'static str,
}

impl IoNames {
    pub(crate) const TCP_STREAM: IoNames =
        IoNames::of("tcp_stream_readable", "tcp_stream_writable");
    pub(crate) const TCP_LISTENER: IoNames =
        IoNames::of("tcp_listener_accept", "tcp_listener_writable");
    pub(crate) const UDP: IoNames = IoNames::of("udp_socket_readable", "udp_socket_writable");
    pub(crate) const UNIX_STREAM: IoNames =
        IoNames::of("unix_stream_readable", "unix_stream_writable");
    pub(crate) const UNIX_LISTENER: IoNames =
        IoNames::of("unix_listener_accept", "unix_listener_writable");
    pub(crate) const UNIX_DATAGRAM: IoNames =
        IoNames::of("unix_datagram_readable", "unix_datagram_writable");
    pub(crate) const ASYNC_FD: IoNames = IoNames::of("async_fd_readable", "async_fd_writable");
    pub(crate) const CHILD_EXIT: IoNames = IoNames::of("child_exit", "child_exit_writable");
    pub(crate) const CHILD_PIPE: IoNames =
        IoNames::of("child_pipe_readable", "child_pipe_writable");
    /// Sources of the runtime's own (tests).
    #[cfg(test)]
    pub(crate) const OTHER: IoNames = IoNames::of("socket_readable", "socket_writable");

    const fn of(read: &'static str, write: &'static str) -> IoNames {
        IoNames { read, write }
    }
}

/// The reactor's per-source state.
#[derive(Debug)]
pub(crate) struct ScheduledIo {
    /// `tick << 16 | SHUTDOWN | WRITERS_USED | READERS_USED | ready bits`.
    word: AtomicUsize,
    /// The slab generation this source was registered under.
    generation: usize,
    /// The async waiters of each direction (`readable()`, `recv()`...):
    /// exclusive, one edge wakes one of them. A waiter reaches them
    /// through [`queue`](Self::queue), which marks them used.
    readers: WaitQueue,
    writers: WaitQueue,
    /// The `poll_*` waiter of each direction (`poll_read`...): one task,
    /// the one that polled last.
    read_poll: RcuWait,
    write_poll: RcuWait,
}

impl ScheduledIo {
    pub(crate) fn new(generation: usize, names: IoNames) -> ScheduledIo {
        ScheduledIo {
            word: AtomicUsize::new(Ready::OPTIMISTIC.0),
            generation,
            readers: WaitQueue::named(names.read),
            writers: WaitQueue::named(names.write),
            read_poll: RcuWait::named(names.read),
            write_poll: RcuWait::named(names.write),
        }
    }

    pub(crate) fn generation(&self) -> usize {
        self.generation
    }

    /// The direction's queue, for a waiter about to link on it: marks it
    /// used first (once), so that the reactor's edges wake it from then
    /// on.
    ///
    /// No wake is lost, by the same word's modification order: a waiter
    /// marks, links, then re-checks the word; the reactor sets the ready
    /// bits, then reads the mark. If the reactor's update came after the
    /// mark, it sees the mark and takes the queue's lock, which orders it
    /// against the link as any `wake_up` is. If it came before, the
    /// waiter's re-check reads the word after its own mark (or after the
    /// earlier one it saw), so it sees the ready bits and does not sleep.
    pub(crate) fn queue(&self, direction: Direction) -> &WaitQueue {
        let used = direction.used_bit();
        if self.word.load(Relaxed) & used == 0 {
            self.word.fetch_or(used, AcqRel);
        }
        self.queue_unmarked(direction)
    }

    fn queue_unmarked(&self, direction: Direction) -> &WaitQueue {
        match direction {
            Direction::Read => &self.readers,
            Direction::Write => &self.writers,
        }
    }

    /// Whether both queues are closed (the reactor shut down).
    #[cfg(test)]
    pub(crate) fn queues_closed(&self) -> bool {
        self.readers.is_closed() && self.writers.is_closed()
    }

    /// Whether a wait on the direction's queue has begun: the reactor's
    /// edges must wake it (and do, always, while the test toolkit's hook
    /// watches, for its record of wakes). Read after the reactor's update
    /// of the word.
    fn queue_used(&self, direction: Direction) -> bool {
        self.word.load(Acquire) & direction.used_bit() != 0 || waitq::hook::is_enabled()
    }

    /// The direction's `poll_*` waiter.
    pub(crate) fn poll_wait(&self, direction: Direction) -> &RcuWait {
        match direction {
            Direction::Read => &self.read_poll,
            Direction::Write => &self.write_poll,
        }
    }

    /// The reactor saw `ready` at `tick`: record it. Returns the bits that
    /// were clear before, the only ones that can have sleepers to wake: a
    /// task sleeps on a direction only after it saw that direction's bits
    /// clear (it re-checks after linking its entry), so a bit already set
    /// has had its wake, and the next sleepers are woken by `pass_on` or by
    /// the edge that follows the next clear. (epoll reports the whole mask
    /// on every edge: each readable edge also says "writable", and waking
    /// the empty writer queue each time cost a lock round trip per event.)
    ///
    /// The first event replaces a fresh source's optimistic bits
    /// ([`Ready::OPTIMISTIC`], tick 0) rather than adding to them: epoll
    /// reports a source's whole readiness when it is registered, so what
    /// the first event leaves out is not ready. (Added to them, an
    /// optimistic "readable" outlived the `WouldBlock` that should have
    /// cleared it whenever the registration's "writable" event came
    /// between a task's read of the word and its clear: the clear saw a
    /// newer tick and kept the word, and the next `readable()` was ready
    /// for nothing. A test saw it once in 23 CI runs.)
    pub(crate) fn set_readiness(&self, tick: usize, ready: Ready) -> Ready {
        const KEPT: usize = SHUTDOWN | READERS_USED | WRITERS_USED;
        let tick_bits = tick << TICK_SHIFT;
        let update = |word: usize| {
            let known = match word >> TICK_SHIFT {
                0 => 0,
                _ => word & Ready::MASK,
            };
            Some(tick_bits | (word & KEPT) | ((known | ready.0) & Ready::MASK))
        };
        let before = match self.word.fetch_update(AcqRel, Acquire, update) {
            Ok(word) | Err(word) => word,
        };
        Ready(ready.0 & !before & Ready::MASK)
    }

    /// Wakes the waiters `ready` lets proceed (called after the reactor's
    /// locks are released). A panicking waker on one queue does not stop
    /// the wakes of the others (each queue already wakes all its own
    /// waiters before it passes a panic on): the edge that reported
    /// readable and writable at once comes only once, and a writer
    /// skipped here would sleep for good. The first panic is resumed at
    /// the end, for the reactor to report. A queue no wait has used is
    /// skipped ([`queue`](Self::queue)).
    pub(crate) fn wake(&self, ready: Ready) {
        let mut panic = None;
        if ready.intersects(Ready::READ_SIDE) {
            guarded(&mut panic, || self.read_poll.wake_up());
            if self.queue_used(Direction::Read) {
                guarded(&mut panic, || self.readers.wake_up());
            }
        }
        if ready.intersects(Ready::WRITE_SIDE) {
            guarded(&mut panic, || self.write_poll.wake_up());
            if self.queue_used(Direction::Write) {
                guarded(&mut panic, || self.writers.wake_up());
            }
        }
        if let Some(payload) = panic {
            std::panic::resume_unwind(payload);
        }
    }

    /// The current readiness for `direction`; `None` if nothing in it is
    /// ready.
    pub(crate) fn ready_event(&self, direction: Direction) -> Option<ReadyEvent> {
        let word = self.word.load(Acquire);
        Ready(word & Ready::MASK)
            .intersects(direction.ready_bits())
            .then_some(ReadyEvent {
                tick: word >> TICK_SHIFT,
            })
    }

    /// A syscall in `direction` said `WouldBlock`: clear that readiness,
    /// unless an event newer than `seen` arrived meanwhile.
    pub(crate) fn clear_readiness(&self, seen: ReadyEvent, direction: Direction) {
        let _ = self.word.fetch_update(AcqRel, Acquire, |word| {
            (word >> TICK_SHIFT == seen.tick).then(|| {
                let ready = Ready(word & Ready::MASK).without(direction.clearable());
                (word & !Ready::MASK) | ready.0
            })
        });
    }

    /// A task in `direction` made progress and the readiness may still
    /// hold: hand the wake on to the next sleeper, as an exclusive waiter
    /// in the kernel does when it leaves work behind.
    /// Its caller has just read or written: a sleeper's panicking waker
    /// must not unwind through it and lose that (`wake_aside`).
    pub(crate) fn pass_on(&self, direction: Direction) {
        let poll = self.poll_wait(direction);
        if poll.rcuwait_active() {
            crate::scheduler::wake_aside(WHOSE, || {
                poll.wake_up();
            });
        }
        let queue = self.queue_unmarked(direction);
        if queue.waitqueue_active() {
            crate::scheduler::wake_aside(WHOSE, || {
                queue.wake_up();
            });
        }
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.word.load(Acquire) & SHUTDOWN != 0
    }

    /// The reactor is gone: every wait on this source ends with an error.
    /// A panicking waker on one queue does not keep the others' waiters
    /// asleep (as in [`wake`](Self::wake)); the first panic goes on after.
    pub(crate) fn shutdown(&self) {
        self.word.fetch_or(SHUTDOWN, AcqRel);
        let mut panic = None;
        guarded(&mut panic, || self.read_poll.close());
        guarded(&mut panic, || self.write_poll.close());
        guarded(&mut panic, || self.readers.close());
        guarded(&mut panic, || self.writers.close());
        if let Some(payload) = panic {
            std::panic::resume_unwind(payload);
        }
    }
}

/// Names a socket's sleeper whose waker panicked in a wake passed on.
const WHOSE: fn() -> String = || "the waker of an I/O source".into();

/// Runs one queue's wake, keeping its panic (the first of a batch) in
/// `panic` so that the next queue's wake still runs.
#[inline]
fn guarded<R>(panic: &mut Option<Box<dyn std::any::Any + Send>>, wake: impl FnOnce() -> R) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(wake)) {
        panic.get_or_insert(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_source_is_optimistically_ready_both_ways() {
        let io = ScheduledIo::new(0, IoNames::OTHER);
        assert!(io.ready_event(Direction::Read).is_some());
        assert!(io.ready_event(Direction::Write).is_some());
    }

    #[test]
    fn would_block_clears_only_its_direction() {
        let io = ScheduledIo::new(0, IoNames::OTHER);
        let seen = io.ready_event(Direction::Read).unwrap();
        io.clear_readiness(seen, Direction::Read);
        assert!(io.ready_event(Direction::Read).is_none());
        assert!(io.ready_event(Direction::Write).is_some());
    }

    #[test]
    fn a_newer_event_survives_a_stale_clear() {
        let io = ScheduledIo::new(0, IoNames::OTHER);
        let seen = io.ready_event(Direction::Read).unwrap();
        io.set_readiness(1, Ready::READABLE); // the edge lands after the read
        io.clear_readiness(seen, Direction::Read);
        assert!(io.ready_event(Direction::Read).is_some(), "edge lost");
        let seen = io.ready_event(Direction::Read).unwrap();
        io.clear_readiness(seen, Direction::Read);
        assert!(io.ready_event(Direction::Read).is_none());
    }

    #[test]
    fn only_new_edges_are_reported_for_waking() {
        let io = ScheduledIo::new(0, IoNames::OTHER);
        // Both bits start set (optimistic): an event repeating them wakes nobody.
        assert!(io
            .set_readiness(1, Ready::READABLE | Ready::WRITABLE)
            .is_empty());
        let seen = io.ready_event(Direction::Read).unwrap();
        io.clear_readiness(seen, Direction::Read);
        // Readable went clear -> set: only it is an edge, not writable.
        let edges = io.set_readiness(2, Ready::READABLE | Ready::WRITABLE);
        assert!(edges.intersects(Ready::READABLE));
        assert!(!edges.intersects(Ready::WRITABLE));
        // EOF is new even though readable is still set.
        assert!(io
            .set_readiness(3, Ready::READ_CLOSED)
            .intersects(Ready::READ_CLOSED));
    }

    #[test]
    fn closed_bits_are_never_cleared() {
        let io = ScheduledIo::new(0, IoNames::OTHER);
        io.set_readiness(1, Ready::READ_CLOSED | Ready::WRITE_CLOSED | Ready::ERROR);
        assert!(
            io.ready_event(Direction::Write).is_some(),
            "error wakes writers"
        );
        let seen = io.ready_event(Direction::Read).unwrap();
        io.clear_readiness(seen, Direction::Read);
        let seen = io.ready_event(Direction::Write).unwrap();
        io.clear_readiness(seen, Direction::Write);
        assert!(io.ready_event(Direction::Read).is_some(), "EOF stays ready");
        assert!(
            io.ready_event(Direction::Write).is_some(),
            "a closed write side stays ready"
        );
    }

    #[test]
    fn a_would_block_clears_the_error_bit() {
        // A connected UDP socket's ICMP error: reported once, taken by the
        // receive that returns it; the next receive blocks, and must sleep.
        let io = ScheduledIo::new(0, IoNames::OTHER);
        // Past the fresh source's optimistic readiness: both sides blocked.
        io.clear_readiness(ReadyEvent::FRESH, Direction::Read);
        io.clear_readiness(ReadyEvent::FRESH, Direction::Write);
        assert!(io.ready_event(Direction::Write).is_none());
        io.set_readiness(1, Ready::ERROR);
        assert!(
            io.ready_event(Direction::Read).is_some(),
            "error wakes readers"
        );
        assert!(
            io.ready_event(Direction::Write).is_some(),
            "error wakes writers"
        );
        let seen = io.ready_event(Direction::Read).unwrap();
        io.clear_readiness(seen, Direction::Read);
        assert!(
            io.ready_event(Direction::Read).is_none(),
            "the error is gone"
        );
        assert!(
            io.ready_event(Direction::Write).is_none(),
            "for writers too"
        );
        // A newer error is not cleared by a stale `WouldBlock`.
        let stale = ReadyEvent { tick: 1 };
        io.set_readiness(2, Ready::ERROR);
        io.clear_readiness(stale, Direction::Write);
        assert!(
            io.ready_event(Direction::Read).is_some(),
            "the new error stays"
        );
    }

    /// The registration's first event ("writable") comes between a task's
    /// read of a fresh source's word and its `WouldBlock` clear: the
    /// clear sees a newer tick and keeps the word, so the optimistic
    /// "readable" must not survive the event itself.
    #[test]
    fn the_first_event_replaces_the_optimistic_bits() {
        let io = ScheduledIo::new(0, IoNames::OTHER);
        let seen = io.ready_event(Direction::Read).expect("optimistic");
        assert_eq!(io.set_readiness(1, Ready::WRITABLE), Ready::EMPTY);
        io.clear_readiness(seen, Direction::Read); // stale: keeps the word
        assert!(
            io.ready_event(Direction::Read).is_none(),
            "readable for nothing after the first event"
        );
        assert!(io.ready_event(Direction::Write).is_some());
        // Later events add to what earlier ones reported.
        io.set_readiness(2, Ready::READABLE);
        assert!(io.ready_event(Direction::Read).is_some());
        assert!(io.ready_event(Direction::Write).is_some());
    }

    /// A source's word with nothing ready (past the optimistic start).
    fn blocked_source() -> ScheduledIo {
        let io = ScheduledIo::new(0, IoNames::OTHER);
        io.clear_readiness(ReadyEvent::FRESH, Direction::Read);
        io.clear_readiness(ReadyEvent::FRESH, Direction::Write);
        io
    }

    /// The edge that makes `direction` ready.
    fn edge_of(direction: Direction) -> Ready {
        match direction {
            Direction::Read => Ready::READABLE,
            Direction::Write => Ready::WRITABLE,
        }
    }

    /// A waker that counts its wakes.
    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, AcqRel);
        }
    }

    /// An edge wakes a queue a waiter reached through `queue` (which marks
    /// it used), in either direction; a queue never marked is skipped.
    /// Watched failing: with `queue` not marking, the first waiter is
    /// never woken.
    #[test]
    fn an_edge_wakes_a_used_queue_and_skips_an_unused_one() {
        for direction in [Direction::Read, Direction::Write] {
            let io = blocked_source();
            let count = std::sync::Arc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
            let waker = std::task::Waker::from(count.clone());
            let mut cx = std::task::Context::from_waker(&waker);
            let ready = || io.ready_event(direction).is_some();
            let mut waiter = waitq::PollWaiter::new(io.queue(direction));
            assert!(waiter.poll_wait_event(&mut cx, ready).is_pending());
            io.wake(io.set_readiness(1, edge_of(direction)));
            assert_eq!(count.0.load(Acquire), 1, "{direction:?} waiter not woken");
            assert!(waiter.poll_wait_event(&mut cx, ready).is_ready());

            // The other direction's queue, linked on without the mark (as
            // no runtime path does), is skipped by its edge: the lock a
            // socket that only reads and writes through `poll_*` saves.
            let other = match direction {
                Direction::Read => Direction::Write,
                Direction::Write => Direction::Read,
            };
            let other_ready = || io.ready_event(other).is_some();
            let mut unmarked = waitq::PollWaiter::new(io.queue_unmarked(other));
            assert!(unmarked.poll_wait_event(&mut cx, other_ready).is_pending());
            io.wake(io.set_readiness(2, edge_of(other)));
            assert_eq!(count.0.load(Acquire), 1, "an unused queue was woken");
            // A later mark makes later edges wake it.
            let _ = io.queue(other);
            io.clear_readiness(io.ready_event(other).unwrap(), other);
            io.wake(io.set_readiness(3, edge_of(other)));
            assert_eq!(count.0.load(Acquire), 2, "a marked queue was not woken");
        }
    }

    /// The race the mark must survive, on real threads: a fresh source's
    /// first waiter marks and links while the reactor's thread sets the
    /// ready bits and wakes. Every round must end with the waiter seeing
    /// the edge, never asleep past it (its wait's 20 s deadline is the
    /// watchdog). Watched failing with `queue` not marking.
    #[test]
    fn a_first_waiter_racing_the_edge_is_never_left_asleep() {
        let rounds = std::env::var("WAITQ_STRESS_ITERS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20_000);
        let start = std::sync::Arc::new(std::sync::Barrier::new(2));
        let io = std::sync::Arc::new(std::sync::Mutex::new(std::sync::Arc::new(blocked_source())));
        let reactor = {
            let (start, io) = (start.clone(), io.clone());
            std::thread::spawn(move || {
                for round in 0..rounds {
                    start.wait();
                    let io = io.lock().unwrap().clone();
                    // Spread the edge over the waiter's mark, link and
                    // re-check: a varying spin before it.
                    for _ in 0..(round * 7_919) % 4_000 {
                        std::hint::spin_loop();
                    }
                    io.wake(io.set_readiness(1, Ready::READABLE));
                    start.wait();
                }
            })
        };
        for round in 0..rounds {
            *io.lock().unwrap() = std::sync::Arc::new(blocked_source());
            let this = io.lock().unwrap().clone();
            start.wait();
            let waited = this
                .queue(Direction::Read)
                .blocking_wait_event_exclusive_timeout(std::time::Duration::from_secs(20), || {
                    this.ready_event(Direction::Read).is_some()
                });
            // A wait that ran to its deadline slept through the edge (its
            // last check then found the bits set, and it returns no time).
            let left = waited.expect("the condition holds at the deadline");
            assert!(
                !left.is_zero(),
                "round {round}: the waiter slept through the edge"
            );
            start.wait();
        }
        reactor.join().unwrap();
    }

    #[test]
    fn shutdown_closes_both_queues() {
        let io = ScheduledIo::new(0, IoNames::OTHER);
        io.shutdown();
        assert!(io.is_shutdown());
        assert!(io.readers.is_closed() && io.writers.is_closed());
        io.set_readiness(2, Ready::READABLE);
        assert!(io.is_shutdown(), "an event never clears shutdown");
    }
}
