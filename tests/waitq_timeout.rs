//! Rules 17 (timeout conventions) and 18 (timeout/wake race), on a virtual clock.
mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use support::{ms, ManualClock, ManualSleep, TokioClock, WATCHDOG};
use tokio_test::{assert_pending, assert_ready, task};
use waitq::{Clock, TaskSignals, WaitQueue};

const MS: Duration = Duration::from_millis(1);

/// A user-level timeout combinator that checks its deadline *before* polling
/// the inner future, and drops the inner future when the deadline has passed
/// (what `select!` on a sleep does when the sleep branch wins).
struct DeadlineFirst<F> {
    inner: Option<F>,
    sleep: ManualSleep,
}

impl<F: Future + Unpin> Future for DeadlineFirst<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if Pin::new(&mut self.sleep).poll(cx).is_ready() {
            self.inner = None; // the timeout drops the wait
            return Poll::Ready(None);
        }
        let inner = self.inner.as_mut().expect("polled after completion");
        Pin::new(inner).poll(cx).map(Some)
    }
}

// ===== rule 17: timeout conventions =====

// Breaks if the time left were not `deadline - now` when the condition is found true.
#[test]
fn rule17_cond_set_at_30_of_100ms_returns_exactly_70ms_left() {
    let queue = WaitQueue::new();
    let clock = ManualClock::new();
    let ready = AtomicBool::new(false);
    let mut fut = task::spawn(
        queue.wait_event_timeout(clock.clone(), ms(100), || ready.load(Ordering::SeqCst)),
    );
    assert_pending!(fut.poll());
    assert_eq!(queue.len(), 1);
    clock.advance(ms(30));
    // The clock's sleep may wake the task; the wait is not over yet.
    assert_pending!(fut.poll());
    ready.store(true, Ordering::SeqCst);
    assert_eq!(queue.wake_up(), 1);
    assert!(fut.is_woken());
    assert_eq!(assert_ready!(fut.poll()), Ok(ms(70)));
    assert_eq!(queue.len(), 0);
}

// Breaks if an expired deadline with a false condition did not fail, or left the entry linked.
#[test]
fn rule17_never_set_times_out_and_unlinks() {
    let queue = WaitQueue::new();
    let clock = ManualClock::new();
    let mut fut = task::spawn(queue.wait_event_timeout(clock.clone(), ms(100), || false));
    assert_pending!(fut.poll());
    clock.advance(ms(99));
    assert_pending!(fut.poll());
    assert_eq!(queue.len(), 1);
    clock.advance(MS);
    assert!(fut.is_woken(), "the deadline wakes the task");
    let err = assert_ready!(fut.poll()).unwrap_err();
    assert!(!err.is_closed());
    assert_eq!(queue.len(), 0);
    assert_eq!(queue.wake_up_all(), 0);
}

// Breaks if an expired deadline won over a condition that holds (must be Ok(ZERO), the kernel's 1).
#[test]
fn rule17_cond_true_at_post_deadline_check_returns_zero() {
    let queue = WaitQueue::new();
    let clock = ManualClock::new();
    let ready = AtomicBool::new(false);
    let mut fut = task::spawn(
        queue.wait_event_timeout(clock.clone(), ms(100), || ready.load(Ordering::SeqCst)),
    );
    assert_pending!(fut.poll());
    clock.advance(ms(150));
    ready.store(true, Ordering::SeqCst);
    assert_eq!(assert_ready!(fut.poll()), Ok(Duration::ZERO));
    assert_eq!(queue.len(), 0);
}

// Breaks if a zero timeout registered, created a sleep, or did not check the condition.
#[test]
fn rule17_zero_timeout_checks_once_without_registering() {
    let queue = WaitQueue::new();
    let clock = ManualClock::new();
    let calls = AtomicUsize::new(0);
    let mut fut = task::spawn(queue.wait_event_timeout(clock.clone(), Duration::ZERO, || {
        calls.fetch_add(1, Ordering::SeqCst);
        false
    }));
    assert_ready!(fut.poll()).unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(queue.len(), 0);
    assert_eq!(queue.capacity(), 0, "a zero timeout never registers");
    assert_eq!(clock.sleepers(), 0, "a zero timeout never sleeps");

    let mut fut = task::spawn(queue.wait_event_timeout(clock.clone(), Duration::ZERO, || true));
    assert_eq!(assert_ready!(fut.poll()), Ok(Duration::ZERO));
    assert_eq!(queue.capacity(), 0);
}

// Breaks if the deadline were fixed at the first poll instead of at creation.
#[test]
fn rule17_deadline_is_fixed_at_creation() {
    let queue = WaitQueue::new();
    let clock = ManualClock::new();
    let ready = AtomicBool::new(false);
    let mut fut = task::spawn(
        queue.wait_event_timeout(clock.clone(), ms(100), || ready.load(Ordering::SeqCst)),
    );
    clock.advance(ms(40)); // before the first poll
    assert_pending!(fut.poll());
    clock.advance(ms(10));
    ready.store(true, Ordering::SeqCst);
    queue.wake_up();
    assert_eq!(assert_ready!(fut.poll()), Ok(ms(50)));

    let mut fut = task::spawn(queue.wait_event_timeout(clock.clone(), ms(100), || false));
    clock.advance(ms(60));
    assert_pending!(fut.poll());
    clock.advance(ms(40));
    assert_ready!(fut.poll()).unwrap_err();
}

// Breaks if the fast path created a sleep, or the sleeping path did not.
#[test]
fn rule17_sleep_created_only_when_the_wait_sleeps() {
    let queue = WaitQueue::new();
    let clock = ManualClock::new();
    let mut fut = task::spawn(queue.wait_event_timeout(clock.clone(), ms(100), || true));
    assert_eq!(assert_ready!(fut.poll()), Ok(ms(100)));
    assert_eq!(clock.sleepers(), 0);

    let mut fut = task::spawn(queue.wait_event_timeout(clock.clone(), ms(100), || false));
    assert_pending!(fut.poll());
    assert_eq!(clock.sleepers(), 1);
}

// Breaks if a spurious wake (condition false, deadline not reached) ended the wait.
#[test]
fn rule17_spurious_wake_before_deadline_keeps_waiting() {
    let queue = WaitQueue::new();
    let clock = ManualClock::new();
    let ready = AtomicBool::new(false);
    let mut fut = task::spawn(
        queue.wait_event_timeout(clock.clone(), ms(100), || ready.load(Ordering::SeqCst)),
    );
    assert_pending!(fut.poll());
    clock.advance(ms(20));
    assert_eq!(queue.wake_up(), 1);
    assert_pending!(fut.poll());
    assert_eq!(queue.len(), 1, "re-registered after the spurious wake");
    clock.advance(ms(20));
    ready.store(true, Ordering::SeqCst);
    assert_eq!(queue.wake_up(), 1);
    assert_eq!(assert_ready!(fut.poll()), Ok(ms(60)));
}

// Breaks if a timeout too large for `Instant` expired, or reported a finite time left.
#[test]
fn rule17_overflowing_timeout_never_expires() {
    let queue = WaitQueue::new();
    let clock = ManualClock::new();
    let mut fut = task::spawn(queue.wait_event_timeout(clock.clone(), Duration::MAX, || true));
    assert_eq!(assert_ready!(fut.poll()), Ok(Duration::MAX));

    let ready = AtomicBool::new(false);
    let mut fut = task::spawn(queue.wait_event_timeout(clock.clone(), Duration::MAX, || {
        ready.load(Ordering::SeqCst)
    }));
    assert_pending!(fut.poll());
    clock.advance(Duration::from_secs(10 * 365 * 24 * 3600));
    assert_pending!(fut.poll());
    ready.store(true, Ordering::SeqCst);
    queue.wake_up();
    assert_eq!(assert_ready!(fut.poll()), Ok(Duration::MAX));
}

// Breaks if a timeout too large for `Instant` (but not `Duration::MAX`)
// reported more time left than it was given (it said `Duration::MAX`: an
// independent probe).
#[test]
fn rule17_time_left_never_exceeds_an_overflowing_timeout() {
    let queue = WaitQueue::new();
    let huge = Duration::from_secs(u64::MAX / 2);
    let mut fut = task::spawn(queue.wait_event_timeout(ManualClock::new(), huge, || true));
    assert_eq!(assert_ready!(fut.poll()), Ok(huge));
    assert_eq!(queue.blocking_wait_event_timeout(huge, || true), Ok(huge));
}

// Breaks if `_interruptible_timeout` mis-reported time left, signals or deadlines.
#[test]
fn rule17_interruptible_timeout_conventions() {
    let queue = WaitQueue::new();
    let clock = ManualClock::new();
    let signals = TaskSignals::new();
    let ready = AtomicBool::new(false);

    // Condition at 30 of 100 ms: exact time left.
    let mut fut = task::spawn(queue.wait_event_interruptible_timeout(
        &signals,
        clock.clone(),
        ms(100),
        || ready.load(Ordering::SeqCst),
    ));
    assert_pending!(fut.poll());
    clock.advance(ms(30));
    ready.store(true, Ordering::SeqCst);
    assert_eq!(queue.wake_up_interruptible(), 1, "sleeps interruptibly");
    assert_eq!(assert_ready!(fut.poll()), Ok(ms(70)));

    // Deadline.
    let mut fut = task::spawn(queue.wait_event_interruptible_timeout(
        &signals,
        clock.clone(),
        ms(100),
        || false,
    ));
    assert_pending!(fut.poll());
    clock.advance(ms(100));
    let err = assert_ready!(fut.poll()).unwrap_err();
    assert!(err.is_timed_out() && !err.is_interrupted());
    assert_eq!(queue.len(), 0);

    // Signal while queued.
    let mut fut = task::spawn(queue.wait_event_interruptible_timeout(
        &signals,
        clock.clone(),
        ms(100),
        || false,
    ));
    assert_pending!(fut.poll());
    signals.interrupt();
    assert!(fut.is_woken());
    let err = assert_ready!(fut.poll()).unwrap_err();
    assert!(err.is_interrupted() && !err.is_killed() && !err.is_timed_out());
    assert_eq!(queue.len(), 0);

    // Signal and deadline together: the signal is asked first.
    let mut fut = task::spawn(queue.wait_event_interruptible_timeout(
        &signals,
        clock.clone(),
        ms(100),
        || false,
    ));
    clock.advance(ms(100));
    assert!(assert_ready!(fut.poll()).unwrap_err().is_interrupted());

    // A true condition beats both.
    let mut fut = task::spawn(queue.wait_event_interruptible_timeout(
        &signals,
        clock.clone(),
        ms(100),
        || true,
    ));
    assert_eq!(assert_ready!(fut.poll()), Ok(ms(100)));
    assert_eq!(queue.len(), 0);
}

// Breaks if `_killable_timeout` ended on an ordinary signal, or mis-reported kill/deadline.
#[test]
fn rule17_killable_timeout_conventions() {
    let queue = WaitQueue::new();
    let clock = ManualClock::new();
    let signals = TaskSignals::new();
    let ready = AtomicBool::new(false);

    let mut fut = task::spawn(queue.wait_event_killable_timeout(
        &signals,
        clock.clone(),
        ms(100),
        || ready.load(Ordering::SeqCst),
    ));
    assert_pending!(fut.poll());
    signals.interrupt(); // ignored
    assert_pending!(fut.poll());
    assert_eq!(
        queue.wake_up_interruptible(),
        0,
        "killable sleeps are not interruptible"
    );
    clock.advance(ms(30));
    ready.store(true, Ordering::SeqCst);
    assert_eq!(queue.wake_up(), 1);
    assert_eq!(assert_ready!(fut.poll()), Ok(ms(70)));

    // Deadline (an ordinary signal is still pending and still ignored).
    let mut fut =
        task::spawn(queue.wait_event_killable_timeout(&signals, clock.clone(), ms(100), || false));
    assert_pending!(fut.poll());
    clock.advance(ms(100));
    let err = assert_ready!(fut.poll()).unwrap_err();
    assert!(err.is_timed_out() && !err.is_killed());
    assert_eq!(queue.len(), 0);

    // Fatal signal while queued.
    let mut fut =
        task::spawn(queue.wait_event_killable_timeout(&signals, clock.clone(), ms(100), || false));
    assert_pending!(fut.poll());
    signals.kill();
    assert!(fut.is_woken());
    let err = assert_ready!(fut.poll()).unwrap_err();
    assert!(err.is_killed() && err.is_interrupted() && !err.is_timed_out());
    assert_eq!(queue.len(), 0);
}

// Breaks if the blocking timed wait got the Ok/Err conventions wrong (no durations asserted).
#[test]
fn rule17_blocking_wait_event_timeout_outcomes() {
    let queue = WaitQueue::new();
    assert!(queue
        .blocking_wait_event_timeout(Duration::ZERO, || false)
        .is_err());
    assert_eq!(
        queue.blocking_wait_event_timeout(Duration::ZERO, || true),
        Ok(Duration::ZERO)
    );
    assert!(queue
        .blocking_wait_event_timeout(Duration::from_secs(60), || true)
        .is_ok());
    assert_eq!(
        queue.blocking_wait_event_timeout(Duration::MAX, || true),
        Ok(Duration::MAX)
    );
    let err = queue
        .blocking_wait_event_timeout(ms(5), || false)
        .unwrap_err();
    assert!(!err.is_closed());
    assert_eq!(queue.len(), 0);
    assert!(queue.capacity() > 0, "the short wait did register");
}

// Breaks if a blocking timed wait were not woken by `wake_up` (it would time out instead).
#[test]
fn rule17_blocking_wait_event_timeout_woken_in_time() {
    support::watchdog("blocking timed wait", WATCHDOG, || {
        let queue = Arc::new(WaitQueue::new());
        let ready = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (queue, ready) = (queue.clone(), ready.clone());
            std::thread::spawn(move || {
                queue.blocking_wait_event_timeout(Duration::from_secs(3600), || {
                    ready.load(Ordering::SeqCst)
                })
            })
        };
        while queue.is_empty() {
            std::thread::yield_now();
        }
        ready.store(true, Ordering::SeqCst);
        // 0 is legitimate too: the waiter's re-check after linking may have
        // seen `ready` and unlinked itself before this wake.
        assert!(queue.wake_up() <= 1);
        let left = waiter.join().unwrap().expect("woken before the deadline");
        assert!(left > Duration::ZERO);
        assert_eq!(queue.len(), 0);
    });
}

// Breaks if the timed wait mis-measured on a paused tokio clock (all times are virtual).
#[tokio::test(start_paused = true)]
async fn rule17_tokio_paused_clock_time_left_and_timeout() {
    let queue = Arc::new(WaitQueue::new());
    let ready = Arc::new(AtomicBool::new(false));
    let setter = {
        let (queue, ready) = (queue.clone(), ready.clone());
        tokio::spawn(async move {
            tokio::time::sleep(ms(30)).await;
            ready.store(true, Ordering::SeqCst);
            queue.wake_up();
        })
    };
    let left = queue
        .wait_event_timeout(TokioClock, ms(100), || ready.load(Ordering::SeqCst))
        .await
        .unwrap();
    assert_eq!(left, ms(70));
    setter.await.unwrap();

    let start = TokioClock.now();
    let err = queue
        .wait_event_timeout(TokioClock, ms(100), || false)
        .await
        .unwrap_err();
    assert!(!err.is_closed());
    assert_eq!(TokioClock.now() - start, ms(100));
    assert_eq!(queue.len(), 0);
}

// ===== rule 18: timeout/wake race =====

// Breaks if a timed waiter picked by a wake at its deadline did not time out cleanly,
// or if it used up the exclusive slot of the same wake.
#[test]
fn rule18_timed_waiter_woken_at_deadline_times_out_and_exclusive_still_gets_the_wake() {
    let queue = WaitQueue::new();
    let clock = ManualClock::new();
    let mut timed = task::spawn(queue.wait_event_timeout(clock.clone(), ms(100), || false));
    let mut ex = task::spawn(queue.wait_event_exclusive(|| false));
    assert_pending!(timed.poll());
    assert_pending!(ex.poll());
    // Deadline and wake land together, before the timed waiter runs.
    clock.advance(ms(100));
    assert_eq!(queue.wake_up(), 2);
    assert!(ex.is_woken());
    let err = assert_ready!(timed.poll()).unwrap_err();
    assert!(!err.is_closed());
    assert_eq!(queue.len(), 0);
    // The exclusive waiter re-queues (spurious for it) and is still reachable.
    assert_pending!(ex.poll());
    assert_eq!(queue.wake_up(), 1);
}

// Breaks if the deadline won over a condition made true by the racing waker.
#[test]
fn rule18_condition_true_at_deadline_beats_the_timeout() {
    let queue = WaitQueue::new();
    let clock = ManualClock::new();
    let ready = AtomicBool::new(false);
    let mut fut = task::spawn(
        queue.wait_event_timeout(clock.clone(), ms(100), || ready.load(Ordering::SeqCst)),
    );
    assert_pending!(fut.poll());
    ready.store(true, Ordering::SeqCst);
    assert_eq!(queue.wake_up(), 1);
    clock.advance(ms(100));
    assert_eq!(assert_ready!(fut.poll()), Ok(Duration::ZERO));

    // Same with a signal pending as well: the condition still wins.
    let signals = TaskSignals::new();
    ready.store(false, Ordering::SeqCst);
    let mut fut = task::spawn(queue.wait_event_interruptible_timeout(
        &signals,
        clock.clone(),
        ms(100),
        || ready.load(Ordering::SeqCst),
    ));
    assert_pending!(fut.poll());
    ready.store(true, Ordering::SeqCst);
    queue.wake_up();
    signals.interrupt();
    clock.advance(ms(100));
    assert_eq!(assert_ready!(fut.poll()), Ok(Duration::ZERO));
}

// Breaks if an exclusive waiter picked by a wake and then timed out (dropped by a timeout
// combinator) swallowed the wake instead of handing it to the next exclusive waiter.
// (The crate has no exclusive `_timeout` wait; a combinator around `wait_event_exclusive`
// is how an exclusive timed wait is written.)
#[test]
fn rule18_exclusive_waiter_timed_out_after_wake_hands_it_on() {
    let queue = WaitQueue::new();
    let clock = ManualClock::new();
    let ready = AtomicBool::new(false);
    let cond = || ready.load(Ordering::SeqCst);
    let deadline = clock.now() + ms(100);
    let mut e1 = task::spawn(DeadlineFirst {
        inner: Some(queue.wait_event_exclusive(cond)),
        sleep: clock.sleep_until(deadline),
    });
    let mut e2 = task::spawn(queue.wait_event_exclusive(cond));
    assert_pending!(e1.poll());
    assert_pending!(e2.poll());

    ready.store(true, Ordering::SeqCst);
    assert_eq!(queue.wake_up(), 1); // picks E1
    assert!(!e2.is_woken());
    clock.advance(ms(100)); // E1's deadline lands with the wake
    assert_eq!(assert_ready!(e1.poll()), None, "E1 timed out");
    assert!(e2.is_woken(), "E1's wake must pass to E2");
    assert_ready!(e2.poll()).unwrap();
    assert_eq!(queue.len(), 0);
}

// Breaks if a signalled timed wait picked by a wake at its deadline left its entry behind.
#[test]
fn rule18_signal_deadline_and_wake_together_leave_nothing_linked() {
    let queue = WaitQueue::new();
    let clock = ManualClock::new();
    let signals = TaskSignals::new();
    let mut fut = task::spawn(queue.wait_event_interruptible_timeout(
        &signals,
        clock.clone(),
        ms(10),
        || false,
    ));
    assert_pending!(fut.poll());
    clock.advance(ms(10));
    signals.interrupt();
    assert_eq!(queue.wake_up_all(), 1);
    assert!(assert_ready!(fut.poll()).is_err());
    assert_eq!(queue.len(), 0);
    assert_eq!(queue.wake_up_all(), 0);
}
