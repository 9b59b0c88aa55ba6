//! Rules 15 (mode filter) and 16 (signal vs condition), plus the error types' contract.
mod support;

use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use support::{poll_with, CountingWaker, ManualClock};
use tokio_test::{assert_pending, assert_ready, task};
use waitq::{
    Closed, Interrupted, Killed, SignalKind, SignalSource, TaskSignals, TaskState, TimedOut,
    WaitError, WaitQueue,
};

// ===== rule 15: mode filter =====

// Breaks if `wake_up_interruptible*` stopped filtering on the sleep state.
#[test]
fn rule15_wake_up_interruptible_all_wakes_only_interruptible_waiters() {
    let queue = WaitQueue::new();
    let signals = TaskSignals::new();
    let mut plain = task::spawn(queue.wait_event(|| false));
    let mut intr = task::spawn(queue.wait_event_interruptible(&signals, || false));
    let mut kill = task::spawn(queue.wait_event_killable(&signals, || false));
    assert_pending!(plain.poll());
    assert_pending!(intr.poll());
    assert_pending!(kill.poll());
    assert_eq!(queue.len(), 3);

    // Only the interruptible one is woken and counted.
    assert_eq!(queue.wake_up_interruptible_all(), 1);
    assert!(intr.is_woken());
    assert!(!plain.is_woken());
    assert!(!kill.is_woken());
    assert_eq!(queue.len(), 2);

    // The ordinary broadcast wakes the other two.
    assert_eq!(queue.wake_up_all(), 2);
    assert!(plain.is_woken());
    assert!(kill.is_woken());
    assert_eq!(queue.len(), 0);
}

// Breaks if the mode filter were dropped: `wake_up_interruptible` would count the others.
#[test]
fn rule15_wake_up_interruptible_counts_only_matching_waiters() {
    let queue = WaitQueue::new();
    let signals = TaskSignals::new();
    let mut plain = task::spawn(queue.wait_event(|| false));
    let mut kill = task::spawn(queue.wait_event_killable(&signals, || false));
    assert_pending!(plain.poll());
    assert_pending!(kill.poll());

    assert_eq!(queue.wake_up_interruptible(), 0);
    assert_eq!(queue.wake_up_interruptible_nr(5), 0);
    assert_eq!(queue.wake_up_interruptible_poll(1), 0);
    assert!(!plain.is_woken());
    assert!(!kill.is_woken());
    assert_eq!(queue.len(), 2);
    assert_eq!(queue.wake_up(), 2);
}

// Breaks if a skipped (non-interruptible) exclusive waiter used up the exclusive slot.
#[test]
fn rule15_skipped_exclusive_waiter_does_not_use_the_slot() {
    let queue = WaitQueue::new();
    let signals = TaskSignals::new();
    // Exclusive, oldest first: an uninterruptible one, then two interruptible ones.
    let mut unint = task::spawn(queue.wait_event_exclusive(|| false));
    let mut i1 = task::spawn(queue.wait_event_interruptible_exclusive(&signals, || false));
    let mut i2 = task::spawn(queue.wait_event_interruptible_exclusive(&signals, || false));
    assert_pending!(unint.poll());
    assert_pending!(i1.poll());
    assert_pending!(i2.poll());

    assert_eq!(queue.wake_up_interruptible(), 1);
    assert!(!unint.is_woken());
    assert!(i1.is_woken());
    assert!(!i2.is_woken());

    assert_eq!(queue.wake_up_interruptible(), 1);
    assert!(i2.is_woken());
    assert!(!unint.is_woken());
    assert_eq!(queue.len(), 1);
    assert_eq!(queue.wake_up(), 1);
    assert!(unint.is_woken());
}

// Breaks if `wake_up_interruptible_nr` ignored its budget or its filter.
#[test]
fn rule15_wake_up_interruptible_nr_wakes_n_interruptible_exclusive_waiters() {
    let queue = WaitQueue::new();
    let signals = TaskSignals::new();
    let mut shared_intr = task::spawn(queue.wait_event_interruptible(&signals, || false));
    let mut shared_plain = task::spawn(queue.wait_event(|| false));
    let mut ex: Vec<_> = (0..3)
        .map(|_| task::spawn(queue.wait_event_interruptible_exclusive(&signals, || false)))
        .collect();
    assert_pending!(shared_intr.poll());
    assert_pending!(shared_plain.poll());
    for f in &mut ex {
        assert_pending!(f.poll());
    }
    // All matching non-exclusive + 2 exclusive.
    assert_eq!(queue.wake_up_interruptible_nr(2), 3);
    assert!(shared_intr.is_woken());
    assert!(!shared_plain.is_woken());
    assert!(ex[0].is_woken() && ex[1].is_woken() && !ex[2].is_woken());
    assert_eq!(queue.len(), 2);
}

// Breaks if a waiter woken with its condition false re-registered in another state.
#[test]
fn rule15_requeued_interruptible_waiter_keeps_its_state() {
    let queue = WaitQueue::new();
    let signals = TaskSignals::new();
    let mut intr = task::spawn(queue.wait_event_interruptible(&signals, || false));
    let mut plain = task::spawn(queue.wait_event(|| false));
    assert_pending!(intr.poll());
    assert_pending!(plain.poll());
    assert_eq!(queue.wake_up_all(), 2);
    // Spurious wakes: both go back to sleep.
    assert_pending!(intr.poll());
    assert_pending!(plain.poll());
    assert_eq!(queue.wake_up_interruptible_all(), 1);
    assert!(intr.is_woken());
    assert!(!plain.is_woken());
}

// ===== rule 16: signal vs condition =====

// Breaks if the signal were checked before the condition.
#[test]
fn rule16_true_condition_beats_pending_signal() {
    let queue = WaitQueue::new();
    let signals = TaskSignals::new();
    signals.interrupt();
    signals.kill();
    let mut fut = task::spawn(queue.wait_event_interruptible(&signals, || true));
    assert_ready!(fut.poll()).unwrap();
    let mut fut = task::spawn(queue.wait_event_killable(&signals, || true));
    assert_ready!(fut.poll()).unwrap();
    assert_eq!(queue.len(), 0);
    assert_eq!(queue.capacity(), 0, "the fast path must not touch the slab");
}

// Breaks if a pending signal did not end a wait whose condition is false.
#[test]
fn rule16_pending_signal_with_false_condition_fails_without_registering() {
    let queue = WaitQueue::new();
    let signals = TaskSignals::new();
    signals.interrupt();
    let mut fut = task::spawn(queue.wait_event_interruptible(&signals, || false));
    let err = assert_ready!(fut.poll()).unwrap_err();
    assert!(!err.is_fatal());
    assert!(!err.is_closed());
    assert_eq!(queue.len(), 0);
    assert_eq!(queue.wake_up_all(), 0);
}

// Breaks if a signal raised while queued did not wake the task, or left the entry linked.
#[test]
fn rule16_signal_while_queued_interrupts_and_unlinks() {
    let queue = WaitQueue::new();
    let signals = TaskSignals::new();
    let mut fut = task::spawn(queue.wait_event_interruptible(&signals, || false));
    assert_pending!(fut.poll());
    assert_eq!(queue.len(), 1);
    signals.interrupt();
    assert!(fut.is_woken(), "raising a signal wakes the sleeping wait");
    let err = assert_ready!(fut.poll()).unwrap_err();
    assert!(!err.is_fatal());
    assert_eq!(queue.len(), 0);
    assert_eq!(queue.wake_up_all(), 0);
}

// Breaks if a fatal signal were not reported as fatal by an interruptible wait.
#[test]
fn rule16_kill_ends_interruptible_wait_as_fatal() {
    let queue = WaitQueue::new();
    let signals = TaskSignals::new();
    let mut fut = task::spawn(queue.wait_event_interruptible(&signals, || false));
    assert_pending!(fut.poll());
    signals.kill();
    assert!(fut.is_woken());
    let err = assert_ready!(fut.poll()).unwrap_err();
    assert!(err.is_fatal());
    assert_eq!(queue.len(), 0);
}

// Breaks if an uninterruptible wait honoured a signal.
#[test]
fn rule16_plain_wait_event_ignores_signals() {
    let queue = WaitQueue::new();
    let signals = TaskSignals::new();
    signals.interrupt();
    signals.kill();
    // The source itself reports nothing to an uninterruptible sleep...
    let waker = CountingWaker::new().waker();
    let mut cx = Context::from_waker(&waker);
    assert_eq!(
        signals.poll_signal(TaskState::Uninterruptible, &mut cx),
        Poll::Pending
    );
    // ...and a plain wait keeps sleeping until its condition holds.
    let ready = AtomicBool::new(false);
    let mut fut = task::spawn(queue.wait_event(|| ready.load(Ordering::SeqCst)));
    assert_pending!(fut.poll());
    signals.interrupt();
    assert_pending!(fut.poll());
    assert_eq!(queue.len(), 1);
    ready.store(true, Ordering::SeqCst);
    assert_eq!(queue.wake_up(), 1);
    assert_ready!(fut.poll()).unwrap();
}

// Breaks if a killable wait ended on an ordinary signal, or ignored a fatal one.
#[test]
fn rule16_killable_ignores_interrupt_but_ends_on_kill() {
    let queue = WaitQueue::new();
    let signals = TaskSignals::new();
    signals.interrupt();
    let mut fut = task::spawn(queue.wait_event_killable(&signals, || false));
    assert_pending!(fut.poll());
    assert_eq!(queue.len(), 1);
    // Another ordinary signal may wake the task, but the wait goes back to sleep.
    signals.interrupt();
    assert_pending!(fut.poll());
    assert_eq!(queue.len(), 1);
    signals.kill();
    assert!(fut.is_woken());
    let err: Killed = assert_ready!(fut.poll()).unwrap_err();
    assert!(!err.is_closed());
    assert_eq!(queue.len(), 0);
}

// Breaks if `kill` pending before the first poll did not end a killable wait at once.
#[test]
fn rule16_pending_kill_fails_killable_at_first_poll() {
    let queue = WaitQueue::new();
    let signals = TaskSignals::new();
    signals.kill();
    let mut fut = task::spawn(queue.wait_event_killable_exclusive(&signals, || false));
    assert_ready!(fut.poll()).unwrap_err();
    assert_eq!(queue.len(), 0);
}

// Breaks if `clear` did not clear the pending set (a wait would fail at once).
#[test]
fn rule16_cleared_signal_no_longer_interrupts() {
    let queue = WaitQueue::new();
    let signals = TaskSignals::new();
    signals.interrupt();
    signals.kill();
    assert_eq!(signals.pending(), Some(SignalKind::Kill));
    signals.clear();
    assert_eq!(signals.pending(), None);
    let ready = AtomicBool::new(false);
    let mut fut =
        task::spawn(queue.wait_event_interruptible(&signals, || ready.load(Ordering::SeqCst)));
    assert_pending!(fut.poll());
    ready.store(true, Ordering::SeqCst);
    assert_eq!(queue.wake_up_interruptible(), 1);
    assert_ready!(fut.poll()).unwrap();
}

// Breaks if a signal were consumed by the check (it must stay pending until cleared).
#[test]
fn rule16_signal_stays_pending_across_waits() {
    let queue = WaitQueue::new();
    let signals = TaskSignals::new();
    signals.interrupt();
    for _ in 0..3 {
        let mut fut = task::spawn(queue.wait_event_interruptible(&signals, || false));
        assert_ready!(fut.poll()).unwrap_err();
    }
    assert_eq!(signals.pending(), Some(SignalKind::Interrupt));
}

// Breaks if, after the entry was taken by a wake, the condition were not re-tested
// before reporting the signal (a concurrent setter's state would be lost).
#[test]
fn rule16_condition_set_with_signal_after_wake_wins() {
    let queue = WaitQueue::new();
    let signals = TaskSignals::new();
    // Calls 1-3 see false; from call 4 on the condition holds (a setter raced us).
    let calls = Cell::new(0);
    let cond = || {
        calls.set(calls.get() + 1);
        calls.get() >= 4
    };
    let mut fut = task::spawn(queue.wait_event_interruptible_exclusive(&signals, cond));
    assert_pending!(fut.poll()); // calls 1 (fast path) and 2 (re-check)
    assert_eq!(queue.wake_up(), 1);
    signals.interrupt();
    // Call 3 false, then the entry is found gone and call 4 is true.
    assert_ready!(fut.poll()).unwrap();
    assert_eq!(calls.get(), 4);
}

// Breaks if an interrupted exclusive waiter that had been picked by a wake kept it.
#[test]
fn rule16_interrupted_exclusive_waiter_hands_its_wake_on() {
    let queue = WaitQueue::new();
    let sig1 = TaskSignals::new();
    let sig2 = TaskSignals::new();
    let mut e1 = task::spawn(queue.wait_event_interruptible_exclusive(&sig1, || false));
    let mut e2 = task::spawn(queue.wait_event_interruptible_exclusive(&sig2, || false));
    assert_pending!(e1.poll());
    assert_pending!(e2.poll());
    assert_eq!(queue.wake_up(), 1);
    assert!(!e2.is_woken());
    sig1.interrupt();
    assert_ready!(e1.poll()).unwrap_err();
    assert!(
        e2.is_woken(),
        "the wake must pass to the next exclusive waiter"
    );
    assert_eq!(queue.len(), 0);
}

// Breaks if a signal raised on one task's set interrupted another task's wait.
#[test]
fn rule16_signals_are_per_source() {
    let queue = WaitQueue::new();
    let mine = TaskSignals::new();
    let other = TaskSignals::new();
    let w = CountingWaker::new();
    let mut fut = queue.wait_event_interruptible(&mine, || false);
    assert!(poll_with(&mut fut, &w.waker()).is_pending());
    other.interrupt();
    assert_eq!(w.wakes(), 0);
    assert!(poll_with(&mut fut, &w.waker()).is_pending());
    mine.interrupt();
    assert_eq!(w.wakes(), 1);
    assert!(matches!(
        poll_with(&mut fut, &w.waker()),
        Poll::Ready(Err(_))
    ));
}

// ===== error types =====

fn closed_err() -> Closed {
    let queue = WaitQueue::new();
    queue.close();
    futures::executor::block_on(queue.wait_event(|| false)).unwrap_err()
}

fn interrupted_err(kill: bool) -> Interrupted {
    let queue = WaitQueue::new();
    let s = TaskSignals::new();
    if kill {
        s.kill();
    } else {
        s.interrupt();
    }
    futures::executor::block_on(queue.wait_event_interruptible(&s, || false)).unwrap_err()
}

fn killed_err() -> Killed {
    let queue = WaitQueue::new();
    let s = TaskSignals::new();
    s.kill();
    futures::executor::block_on(queue.wait_event_killable(&s, || false)).unwrap_err()
}

fn timed_out_err() -> TimedOut {
    let queue = WaitQueue::new();
    futures::executor::block_on(queue.wait_event_timeout(
        ManualClock::new(),
        Duration::ZERO,
        || false,
    ))
    .unwrap_err()
}

fn wait_error(signal: Option<bool>) -> WaitError {
    let queue = WaitQueue::new();
    let s = TaskSignals::new();
    match signal {
        Some(true) => s.kill(),
        Some(false) => s.interrupt(),
        None => {}
    }
    let timeout = if signal.is_some() {
        Duration::from_secs(1)
    } else {
        Duration::ZERO
    };
    futures::executor::block_on(queue.wait_event_interruptible_timeout(
        &s,
        ManualClock::new(),
        timeout,
        || false,
    ))
    .unwrap_err()
}

fn closed_wait_error() -> WaitError {
    let queue = WaitQueue::new();
    queue.close();
    let s = TaskSignals::new();
    futures::executor::block_on(queue.wait_event_killable_timeout(
        &s,
        ManualClock::new(),
        Duration::from_secs(1),
        || false,
    ))
    .unwrap_err()
}

fn io_kind<E: Into<io::Error>>(e: E) -> io::ErrorKind {
    e.into().kind()
}

// Breaks if the Display texts changed or went empty.
#[test]
fn errors_display_their_cause() {
    assert_eq!(closed_err().to_string(), "wait queue closed");
    assert_eq!(
        interrupted_err(false).to_string(),
        "wait interrupted by a signal"
    );
    assert_eq!(
        interrupted_err(true).to_string(),
        "wait ended by a fatal signal"
    );
    assert_eq!(killed_err().to_string(), "wait ended by a fatal signal");
    assert_eq!(timed_out_err().to_string(), "wait timed out");
    assert_eq!(wait_error(None).to_string(), "wait timed out");
    assert_eq!(
        wait_error(Some(false)).to_string(),
        "wait interrupted by a signal"
    );
    assert_eq!(closed_wait_error().to_string(), "wait queue closed");
    // Debug names the type.
    assert!(format!("{:?}", closed_err()).starts_with("Closed"));
    assert!(format!("{:?}", killed_err()).starts_with("Killed"));
}

// Breaks if an error type stopped implementing `std::error::Error`.
#[test]
fn errors_are_std_errors() {
    fn as_dyn<E: std::error::Error + Send + Sync + 'static>(
        e: E,
    ) -> Box<dyn std::error::Error + Send + Sync> {
        Box::new(e)
    }
    for e in [
        as_dyn(closed_err()),
        as_dyn(interrupted_err(false)),
        as_dyn(killed_err()),
        as_dyn(timed_out_err()),
        as_dyn(wait_error(None)),
    ] {
        assert!(e.source().is_none());
        assert!(!e.to_string().is_empty());
    }
}

// Breaks if the io::ErrorKind mapping changed.
#[test]
fn errors_convert_to_io_error_kinds() {
    assert_eq!(io_kind(closed_err()), io::ErrorKind::BrokenPipe);
    assert_eq!(io_kind(interrupted_err(false)), io::ErrorKind::Interrupted);
    assert_eq!(io_kind(interrupted_err(true)), io::ErrorKind::Interrupted);
    assert_eq!(io_kind(killed_err()), io::ErrorKind::Interrupted);
    assert_eq!(io_kind(timed_out_err()), io::ErrorKind::TimedOut);
    assert_eq!(io_kind(wait_error(None)), io::ErrorKind::TimedOut);
    assert_eq!(io_kind(wait_error(Some(false))), io::ErrorKind::Interrupted);
    assert_eq!(io_kind(wait_error(Some(true))), io::ErrorKind::Interrupted);
    assert_eq!(io_kind(closed_wait_error()), io::ErrorKind::BrokenPipe);
    // The io::Error wraps the original error.
    let io_err: io::Error = closed_err().into();
    assert!(io_err.get_ref().unwrap().downcast_ref::<Closed>().is_some());
    let io_err: io::Error = timed_out_err().into();
    assert_eq!(
        io_err
            .into_inner()
            .unwrap()
            .downcast::<TimedOut>()
            .unwrap()
            .to_string(),
        "wait timed out"
    );
}

// Breaks if the predicates misreport the cause.
#[test]
fn errors_predicates() {
    assert!(closed_err().is_closed());
    let i = interrupted_err(false);
    assert!(!i.is_closed() && !i.is_fatal());
    let k = interrupted_err(true);
    assert!(!k.is_closed() && k.is_fatal());
    assert!(!killed_err().is_closed());
    assert!(!timed_out_err().is_closed());

    let t = wait_error(None);
    assert!(t.is_timed_out() && !t.is_interrupted() && !t.is_killed() && !t.is_closed());
    let s = wait_error(Some(false));
    assert!(!s.is_timed_out() && s.is_interrupted() && !s.is_killed() && !s.is_closed());
    let f = wait_error(Some(true));
    assert!(!f.is_timed_out() && f.is_interrupted() && f.is_killed() && !f.is_closed());
    let c = closed_wait_error();
    assert!(!c.is_timed_out() && !c.is_interrupted() && !c.is_killed() && c.is_closed());

    // Closed forms of the signal errors.
    let queue = WaitQueue::new();
    queue.close();
    let s = TaskSignals::new();
    let e = futures::executor::block_on(queue.wait_event_interruptible(&s, || false)).unwrap_err();
    assert!(e.is_closed() && !e.is_fatal());
    let e = futures::executor::block_on(queue.wait_event_killable(&s, || false)).unwrap_err();
    assert!(e.is_closed());
    // Errors compare by cause.
    assert_eq!(closed_err(), closed_err());
    assert_ne!(interrupted_err(false), interrupted_err(true));
}

/// A signal source that, when asked, first makes the condition true (as a
/// setter on another CPU would, just before signalling) and then reports
/// the signal: the kernel tests the condition after the signal, so the
/// condition wins. Deterministic form of a race `toolkit_rules` found.
struct SetThenSignal<'a>(&'a std::sync::atomic::AtomicBool);

impl waitq::SignalSource for SetThenSignal<'_> {
    fn poll_signal(
        &self,
        _: waitq::TaskState,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<waitq::SignalKind> {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        std::task::Poll::Ready(waitq::SignalKind::Interrupt)
    }
}

#[test]
fn a_condition_set_just_before_the_signal_wins() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let queue = waitq::WaitQueue::new();
    // First poll, nothing registered yet.
    let flag = AtomicBool::new(false);
    let signals = SetThenSignal(&flag);
    let wait = queue.wait_event_interruptible(&signals, || flag.load(Ordering::SeqCst));
    assert_eq!(futures::executor::block_on(wait), Ok(()));
    // Already linked, then asked again (the signal path of a re-poll).
    let flag = AtomicBool::new(false);
    let armed = AtomicBool::new(false);
    struct Later<'a>(&'a AtomicBool, &'a AtomicBool);
    impl waitq::SignalSource for Later<'_> {
        fn poll_signal(
            &self,
            _: waitq::TaskState,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<waitq::SignalKind> {
            if !self.1.load(Ordering::SeqCst) {
                return std::task::Poll::Pending;
            }
            self.0.store(true, Ordering::SeqCst);
            std::task::Poll::Ready(waitq::SignalKind::Interrupt)
        }
    }
    let later = Later(&flag, &armed);
    let mut wait = queue.wait_event_interruptible(&later, || flag.load(Ordering::SeqCst));
    let waker = futures::task::noop_waker();
    assert!(poll_with(&mut wait, &waker).is_pending());
    assert_eq!(queue.len(), 1);
    armed.store(true, Ordering::SeqCst);
    assert_eq!(poll_with(&mut wait, &waker), std::task::Poll::Ready(Ok(())));
    assert_eq!(queue.len(), 0);
}
