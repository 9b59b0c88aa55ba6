//! Rules 26 (leaked futures) and 27 (panics), plus drop at every stage of a wait.
mod support;

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Wake, Waker};

use support::{poll_with, CountingWaker};
use tokio_test::{assert_pending, assert_ready, task};
use waitq::{TaskState, WaitEntry, WaitQueue, WakeDecision};

/// A waker whose `wake` panics.
struct PanicWaker;

impl Wake for PanicWaker {
    fn wake(self: Arc<Self>) {
        panic!("waker panic");
    }
}

fn panic_waker() -> Waker {
    Waker::from(Arc::new(PanicWaker))
}

fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// A condition that answers `false` for its first `falses` calls and panics after.
fn false_then_panic(falses: usize) -> impl FnMut() -> bool {
    let mut calls = 0;
    move || {
        calls += 1;
        if calls > falses {
            panic!("condition panic");
        }
        false
    }
}

/// Checks that `queue` still works: a new waiter registers and is woken.
fn assert_usable(queue: &WaitQueue) {
    let ready = AtomicBool::new(false);
    let mut fut = task::spawn(queue.wait_event(|| ready.load(Ordering::SeqCst)));
    assert_pending!(fut.poll());
    assert_eq!(queue.len(), 1);
    ready.store(true, Ordering::SeqCst);
    assert_eq!(queue.wake_up(), 1);
    assert_ready!(fut.poll()).unwrap();
    assert_eq!(queue.len(), 0);
}

// ===== rule 26: leaked futures =====

// Breaks if a forgotten registered future's entry were never unlinked (len() would stay 1).
#[test]
fn rule26_forgotten_future_is_unlinked_by_next_wake() {
    let queue = WaitQueue::new();
    let w = CountingWaker::new();
    let mut fut = queue.wait_event(|| false);
    assert!(poll_with(&mut fut, &w.waker()).is_pending());
    std::mem::forget(fut);
    assert_eq!(queue.len(), 1);
    assert_eq!(queue.wake_up_all(), 1);
    assert_eq!(queue.len(), 0);
    assert_eq!(w.wakes(), 1);
    assert_eq!(queue.wake_up_all(), 0);
    assert_usable(&queue);
}

// Documented: a forgotten exclusive waiter absorbs the one wake that picks it (nobody
// is left to hand it on). Breaks if that wake reached E2, or if the next one did not.
#[test]
fn rule26_forgotten_exclusive_waiter_absorbs_one_wake() {
    let queue = WaitQueue::new();
    let w1 = CountingWaker::new();
    let mut e1 = queue.wait_event_exclusive(|| false);
    assert!(poll_with(&mut e1, &w1.waker()).is_pending());
    let mut e2 = task::spawn(queue.wait_event_exclusive(|| false));
    assert_pending!(e2.poll());
    std::mem::forget(e1);

    assert_eq!(
        queue.wake_up(),
        1,
        "the forgotten entry is picked and counted"
    );
    assert_eq!(w1.wakes(), 1);
    assert!(!e2.is_woken(), "absorbed by the forgotten waiter");
    assert_eq!(queue.len(), 1);
    assert_eq!(queue.wake_up(), 1);
    assert!(e2.is_woken());
    assert_eq!(queue.len(), 0);
}

// Breaks if forgetting futures of other families broke the queue.
#[test]
fn rule26_forgotten_futures_of_every_kind_are_unlinked() {
    let queue = WaitQueue::new();
    let signals = waitq::TaskSignals::new();
    let clock = support::ManualClock::new();
    let lock = Mutex::new(0u8);
    let w = CountingWaker::new();
    let waker = w.waker();

    let mut a = queue.wait_event_interruptible(&signals, || false);
    let mut b =
        queue.wait_event_timeout(clock.clone(), std::time::Duration::from_secs(1), || false);
    let mut c = queue.wait_event_lock_exclusive(&lock, |n| *n == 1);
    let mut entry = WaitEntry::new(&queue);
    queue.prepare_to_wait(&mut entry, TaskState::Uninterruptible);
    assert!(poll_with(&mut a, &waker).is_pending());
    assert!(poll_with(&mut b, &waker).is_pending());
    assert!(poll_with(&mut c, &waker).is_pending());
    std::mem::forget(a);
    std::mem::forget(b);
    std::mem::forget(c);
    std::mem::forget(entry);
    assert_eq!(queue.len(), 4);
    assert_eq!(queue.wake_up_all(), 4);
    assert_eq!(queue.len(), 0);
    assert_usable(&queue);
}

// Breaks if the slab leaked slots for forgotten futures (capacity must stay bounded).
#[test]
fn rule26_forgotten_futures_do_not_grow_the_slab() {
    let queue = WaitQueue::new();
    let w = CountingWaker::new();
    let waker = w.waker();
    for _ in 0..50 {
        for _ in 0..10 {
            let mut fut = queue.wait_event(|| false);
            assert!(poll_with(&mut fut, &waker).is_pending());
            std::mem::forget(fut);
        }
        assert_eq!(queue.wake_up_all(), 10);
        assert_eq!(queue.len(), 0);
    }
    // The inline slot, plus a slab doubled to 16 for the other 9.
    assert!(
        queue.capacity() <= 1 + 16,
        "capacity {} grew past the peak of 10 waiters",
        queue.capacity()
    );
}

// ===== drop at every stage =====

// Breaks if dropping a wait at any stage left an entry linked.
#[test]
fn rule26_drop_at_every_stage_leaves_nothing_linked() {
    let queue = WaitQueue::new();
    let ready = AtomicBool::new(false);
    let cond = || ready.load(Ordering::SeqCst);

    // Before the first poll.
    drop(queue.wait_event(cond));
    assert_eq!(queue.len(), 0);
    assert_eq!(queue.wake_up(), 0);

    // Registered.
    let mut fut = task::spawn(queue.wait_event(cond));
    assert_pending!(fut.poll());
    assert_eq!(queue.len(), 1);
    drop(fut);
    assert_eq!(queue.len(), 0);
    assert_eq!(queue.wake_up(), 0);

    // Woken, not polled.
    let mut fut = task::spawn(queue.wait_event(cond));
    assert_pending!(fut.poll());
    assert_eq!(queue.wake_up(), 1);
    assert_eq!(queue.len(), 0);
    drop(fut);
    assert_eq!(queue.len(), 0);

    // Completed.
    let mut fut = task::spawn(queue.wait_event(cond));
    assert_pending!(fut.poll());
    ready.store(true, Ordering::SeqCst);
    queue.wake_up();
    assert_ready!(fut.poll()).unwrap();
    drop(fut);
    assert_eq!(queue.len(), 0);
    assert_usable(&queue);
}

// Breaks if an exclusive waiter dropped at each stage either leaked its entry or
// (when it had been picked) swallowed the wake.
#[test]
fn rule26_exclusive_drop_at_every_stage() {
    let queue = WaitQueue::new();
    let mut next = task::spawn(queue.wait_event_exclusive(|| false));

    // Registered behind `next`, dropped: nothing to hand on.
    let mut e = task::spawn(queue.wait_event_exclusive(|| false));
    assert_pending!(next.poll());
    assert_pending!(e.poll());
    drop(e);
    assert_eq!(queue.len(), 1);
    assert!(!next.is_woken());

    // Picked by a wake, dropped before running: the wake goes to the next one.
    let mut picked = task::spawn(queue.wait_event_exclusive(|| false));
    drop(next);
    assert_pending!(picked.poll());
    let mut after = task::spawn(queue.wait_event_exclusive(|| false));
    assert_pending!(after.poll());
    assert_eq!(queue.wake_up(), 1);
    assert!(!after.is_woken());
    drop(picked);
    assert!(after.is_woken());
    assert_eq!(queue.len(), 0);
}

// ===== rule 27: panics =====

// Breaks if a panicking waker stopped the broadcast, lost the panic, or left the queue
// inconsistent.
#[test]
fn rule27_panicking_waker_during_wake_up_all() {
    let queue = WaitQueue::new();
    let others = CountingWaker::new();
    let mut p = queue.wait_event(|| false);
    assert!(poll_with(&mut p, &panic_waker()).is_pending());
    let mut n1 = queue.wait_event(|| false);
    let mut n2 = queue.wait_event(|| false);
    let mut e = queue.wait_event_exclusive(|| false);
    assert!(poll_with(&mut n1, &others.waker()).is_pending());
    assert!(poll_with(&mut n2, &others.waker()).is_pending());
    assert!(poll_with(&mut e, &others.waker()).is_pending());

    let res = catch_unwind(AssertUnwindSafe(|| queue.wake_up_all()));
    let payload = res.expect_err("the waker's panic reaches the caller");
    assert_eq!(panic_message(&payload), "waker panic");
    assert_eq!(others.wakes(), 3, "every other waiter was woken");
    assert_eq!(queue.len(), 0);
    drop((p, n1, n2, e));
    assert_usable(&queue);
}

// Breaks if a panic in the first batch stopped the later batches (> 32 waiters).
#[test]
fn rule27_panicking_wakers_across_batches() {
    let queue = WaitQueue::new();
    let others = CountingWaker::new();
    let mut futs: Vec<_> = (0..70).map(|_| queue.wait_event(|| false)).collect();
    for (i, f) in futs.iter_mut().enumerate() {
        let waker = if i == 0 || i == 40 {
            panic_waker()
        } else {
            others.waker()
        };
        assert!(poll_with(f, &waker).is_pending());
    }
    let res = catch_unwind(AssertUnwindSafe(|| queue.wake_up_all()));
    assert!(res.is_err());
    assert_eq!(others.wakes(), 68);
    assert_eq!(queue.len(), 0);
    drop(futs);
    assert_usable(&queue);
}

// Breaks if a panicking waker during `close` kept other waiters asleep.
#[test]
fn rule27_panicking_waker_during_close() {
    let queue = WaitQueue::new();
    let others = CountingWaker::new();
    let mut p = queue.wait_event(|| false);
    let mut n = queue.wait_event(|| false);
    assert!(poll_with(&mut p, &panic_waker()).is_pending());
    assert!(poll_with(&mut n, &others.waker()).is_pending());
    assert!(catch_unwind(AssertUnwindSafe(|| queue.close())).is_err());
    assert_eq!(others.wakes(), 1);
    assert!(queue.is_closed());
    assert_eq!(queue.len(), 0);
    assert!(matches!(poll_with(&mut n, &others.waker()), Poll::Ready(Err(e)) if e.is_closed()));
}

// Breaks if a condition panicking at the first check (fast path) left anything behind.
#[test]
fn rule27_condition_panicking_at_first_check() {
    let queue = WaitQueue::new();
    let res = catch_unwind(AssertUnwindSafe(|| {
        let mut fut = task::spawn(queue.wait_event(false_then_panic(0)));
        let _ = fut.poll();
    }));
    assert!(res.is_err());
    assert_eq!(queue.len(), 0);
    assert_usable(&queue);
}

// Breaks if a condition panicking at the re-check after linking left the entry linked
// when unwinding dropped the future.
#[test]
fn rule27_condition_panicking_after_registration_unwinds_cleanly() {
    let queue = WaitQueue::new();
    let res = catch_unwind(AssertUnwindSafe(|| {
        // Call 1 (fast path) is false; call 2 (the re-check after linking) panics.
        let mut fut = task::spawn(queue.wait_event(false_then_panic(1)));
        let _ = fut.poll();
    }));
    assert_eq!(panic_message(&res.unwrap_err()), "condition panic");
    assert_eq!(queue.len(), 0);
    assert_eq!(queue.wake_up_all(), 0);
    assert_usable(&queue);
}

// Breaks if a condition panicking on a re-poll left the entry linked (future dropped
// after catch_unwind, not by the unwinding).
#[test]
fn rule27_condition_panicking_on_repoll_then_drop() {
    let queue = WaitQueue::new();
    let w = CountingWaker::new();
    let mut fut = queue.wait_event(false_then_panic(2));
    assert!(poll_with(&mut fut, &w.waker()).is_pending());
    assert_eq!(queue.len(), 1);
    let res = catch_unwind(AssertUnwindSafe(|| poll_with(&mut fut, &w.waker())));
    assert!(res.is_err());
    drop(fut);
    assert_eq!(queue.len(), 0);
    assert_usable(&queue);
}

// Breaks if an exclusive waiter picked by a wake, whose condition then panics, swallowed
// the wake (unwinding drops the future, which must hand it on).
#[test]
fn rule27_condition_panicking_after_wake_hands_it_on() {
    let queue = WaitQueue::new();
    let mut e2 = task::spawn(queue.wait_event_exclusive(|| false));
    let res = catch_unwind(AssertUnwindSafe(|| {
        let mut e1 = task::spawn(queue.wait_event_exclusive(false_then_panic(2)));
        assert_pending!(e1.poll());
        assert_pending!(e2.poll()); // E2 behind E1
        assert_eq!(queue.wake_up(), 1);
        let _ = e1.poll(); // call 3 panics
    }));
    assert!(res.is_err());
    assert!(e2.is_woken(), "E1's wake passes to E2");
    assert_eq!(queue.len(), 0);
}

// Breaks if an exclusive waiter picked by a wake swallowed it when its condition panics
// on the second check of a poll (first check false, entry found taken, re-check panics).
#[test]
fn rule27_condition_panicking_on_recheck_after_wake_hands_it_on() {
    let queue = WaitQueue::new();
    let mut e2 = task::spawn(queue.wait_event_exclusive(|| false));
    let res = catch_unwind(AssertUnwindSafe(|| {
        // Calls 1, 2 (first poll) and 3 (re-poll's first check) are false; call 4,
        // the re-check after finding the entry taken by the wake, panics.
        let mut e1 = task::spawn(queue.wait_event_exclusive(false_then_panic(3)));
        assert_pending!(e1.poll());
        assert_pending!(e2.poll());
        assert_eq!(queue.wake_up(), 1);
        let _ = e1.poll();
    }));
    assert!(res.is_err());
    assert!(e2.is_woken(), "E1's wake passes to E2");
}

// Breaks if a lock-wait condition panicking (with the user lock held) left the entry
// linked; the user mutex is then poisoned, which the next wait ignores.
#[test]
fn rule27_lock_condition_panicking() {
    let queue = WaitQueue::new();
    let state = Mutex::new(0u8);
    let calls = Cell::new(0);
    let res = catch_unwind(AssertUnwindSafe(|| {
        let mut fut = task::spawn(queue.wait_event_lock(&state, |n| {
            calls.set(calls.get() + 1);
            assert!(calls.get() < 2, "lock condition panic");
            *n == 1
        }));
        assert_pending!(fut.poll());
        queue.wake_up();
        let _ = fut.poll();
    }));
    assert!(res.is_err());
    assert_eq!(queue.len(), 0);
    assert!(state.is_poisoned());
    let mut fut = task::spawn(queue.wait_event_lock(&state, |n| *n == 1));
    assert_pending!(fut.poll());
    *state.lock().unwrap_or_else(|e| e.into_inner()) = 1;
    queue.wake_up();
    assert!(assert_ready!(fut.poll()).is_ok());
}

// Breaks if a custom wake function that panics mid-walk lost the wakes already taken
// (their waiters would never be woken), stopped the walk, or left `len()` stale.
#[test]
fn rule27_panicking_wake_function_loses_no_wake() {
    let queue = WaitQueue::new();
    let w = CountingWaker::new();
    let mut n1 = queue.wait_event(|| false);
    assert!(poll_with(&mut n1, &w.waker()).is_pending());
    let mut bad = WaitEntry::with_func(&queue, |_| -> WakeDecision {
        panic!("wake function panic")
    });
    queue.prepare_to_wait(&mut bad, TaskState::Uninterruptible);
    let mut n2 = queue.wait_event(|| false);
    assert!(poll_with(&mut n2, &w.waker()).is_pending());
    assert_eq!(queue.len(), 3);

    let res = catch_unwind(AssertUnwindSafe(|| queue.wake_up_all()));
    assert_eq!(panic_message(&res.unwrap_err()), "wake function panic");
    assert_eq!(
        w.wakes(),
        2,
        "the waiters before and after the bad entry were woken"
    );
    assert_eq!(
        queue.len(),
        1,
        "the entry whose function panicked stays queued"
    );
    assert!(bad.is_queued());
    drop(bad);
    assert_eq!(queue.len(), 0);
    drop((n1, n2));
    assert_usable(&queue);
}

/// A picked exclusive waiter that is dropped passes on *the wake that
/// picked it*, key and all: a keyed wake for readers, handed on as a plain
/// wake, went to the writer between the two readers (its condition false,
/// it queued again) and the second reader slept on with data readable (an
/// independent probe's lost wake-up).
#[test]
fn a_dropped_reader_hands_its_keyed_wake_to_the_next_reader() {
    const READ: u32 = 1;
    const WRITE: u32 = 2;
    let queue = WaitQueue::new();
    let readable = AtomicBool::new(false);
    let (r1w, w1w, r2w) = (
        CountingWaker::new(),
        CountingWaker::new(),
        CountingWaker::new(),
    );
    let ready = || readable.load(Ordering::SeqCst);
    let mut r1 = Box::pin(queue.wait_event_key_exclusive(READ, ready));
    let mut w1 = Box::pin(queue.wait_event_key_exclusive(WRITE, || false));
    let mut r2 = Box::pin(queue.wait_event_key_exclusive(READ, ready));
    assert!(poll_with(&mut r1, &r1w.waker()).is_pending());
    assert!(poll_with(&mut w1, &w1w.waker()).is_pending());
    assert!(poll_with(&mut r2, &r2w.waker()).is_pending());
    readable.store(true, Ordering::SeqCst);
    assert_eq!(queue.wake_up_poll(READ), 1);
    assert_eq!((r1w.wakes(), w1w.wakes(), r2w.wakes()), (1, 0, 0));
    drop(r1); // picked, never acted on
    assert_eq!(w1w.wakes(), 0, "the writer got the readers' wake");
    assert_eq!(r2w.wakes(), 1, "the second reader was not woken");
    assert!(poll_with(&mut r2, &r2w.waker()).is_ready());
    drop(w1);
    assert_eq!(queue.len(), 0);
}

/// The same for the wake's mode: `wake_up_interruptible` picked an
/// interruptible waiter; dropped, it hands the wake to the next
/// interruptible one, never to an uninterruptible sleeper that wake could
/// not reach.
#[test]
fn a_dropped_waiter_hands_an_interruptible_wake_to_an_interruptible_one() {
    let queue = WaitQueue::new();
    let signals = waitq::TaskSignals::new();
    let (i1w, u1w, i2w) = (
        CountingWaker::new(),
        CountingWaker::new(),
        CountingWaker::new(),
    );
    let mut i1 = Box::pin(queue.wait_event_interruptible_exclusive(&signals, || false));
    let mut u1 = Box::pin(queue.wait_event_exclusive(|| false));
    let mut i2 = Box::pin(queue.wait_event_interruptible_exclusive(&signals, || false));
    assert!(poll_with(&mut i1, &i1w.waker()).is_pending());
    assert!(poll_with(&mut u1, &u1w.waker()).is_pending());
    assert!(poll_with(&mut i2, &i2w.waker()).is_pending());
    assert_eq!(queue.wake_up_interruptible(), 1);
    assert_eq!((i1w.wakes(), u1w.wakes(), i2w.wakes()), (1, 0, 0));
    drop(i1);
    assert_eq!(
        u1w.wakes(),
        0,
        "an uninterruptible sleeper got an interruptible wake"
    );
    assert_eq!(
        i2w.wakes(),
        1,
        "the next interruptible waiter was not woken"
    );
    drop((u1, i2));
    assert_eq!(queue.len(), 0);
}

// Breaks if a wake made by a destructor that a panic runs (a guard dropped
// while unwinding) aborted the process because the woken waker panicked
// too: a second panic while unwinding aborts, so the waker's is dropped
// there (the hook prints it). One waiter (the direct path), two (the
// batch), and a one-waiter `RcuWait`.
#[test]
fn rule27_panicking_waker_woken_while_unwinding() {
    struct WakeOnDrop<'a>(&'a WaitQueue, bool);
    impl Drop for WakeOnDrop<'_> {
        fn drop(&mut self) {
            match self.1 {
                false => drop(self.0.wake_up()),
                true => drop(self.0.wake_up_all()),
            }
        }
    }
    for all in [false, true] {
        let queue = WaitQueue::new();
        let mut p = queue.wait_event_exclusive(|| false);
        assert!(poll_with(&mut p, &panic_waker()).is_pending());
        let mut q = queue.wait_event_exclusive(|| false);
        if all {
            assert!(poll_with(&mut q, &panic_waker()).is_pending());
        }
        let res = catch_unwind(AssertUnwindSafe(|| {
            let _wake = WakeOnDrop(&queue, all);
            panic!("first");
        }));
        assert_eq!(panic_message(&res.unwrap_err()), "first");
        drop((p, q));
        assert_usable(&queue);
    }
    struct RcuWakeOnDrop<'a>(&'a waitq::RcuWait);
    impl Drop for RcuWakeOnDrop<'_> {
        fn drop(&mut self) {
            self.0.wake_up();
        }
    }
    let rcu = waitq::RcuWait::new();
    let waker = panic_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(rcu.poll_wait_event(&mut cx, || false).is_pending());
    let res = catch_unwind(AssertUnwindSafe(|| {
        let _wake = RcuWakeOnDrop(&rcu);
        panic!("first");
    }));
    assert_eq!(panic_message(&res.unwrap_err()), "first");
    // The state-holding `RcuWait`'s guard wakes the same way.
    struct GuardWakeOnDrop<'a>(&'a waitq::RcuWait<bool>);
    impl Drop for GuardWakeOnDrop<'_> {
        fn drop(&mut self) {
            let mut ready = self.0.lock();
            *ready = true;
            ready.wake_up();
        }
    }
    let rcu = waitq::RcuWait::with_state(None, false);
    let polled = rcu.poll_wait_event_locked(&mut cx, |ready| ready.then_some(()));
    assert!(polled.is_pending());
    let res = catch_unwind(AssertUnwindSafe(|| {
        let _wake = GuardWakeOnDrop(&rcu);
        panic!("first");
    }));
    assert_eq!(panic_message(&res.unwrap_err()), "first");
}
