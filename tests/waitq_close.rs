//! Rule 25: `close()` ends every current and future wait whose condition is false.
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{poll_with, CountingWaker, ManualClock, WATCHDOG};
use tokio_test::{assert_pending, assert_ready, task};
use waitq::{TaskSignals, TaskState, WaitEntry, WaitQueue};

const LONG: Duration = Duration::from_secs(3600);

// Breaks if `close` did not end a pending wait of any family, or mapped it to a non-closed error.
#[test]
fn rule25_pending_async_waits_of_every_family_end_closed() {
    let queue = WaitQueue::new();
    let clock = ManualClock::new();
    let signals = TaskSignals::new();
    let lock = Mutex::new(0u8);

    let mut ev = task::spawn(queue.wait_event(|| false));
    let mut ev_x = task::spawn(queue.wait_event_exclusive(|| false));
    let mut val = task::spawn(queue.wait_event_value(|| None::<u8>));
    let mut val_x = task::spawn(queue.wait_event_value_exclusive(|| None::<u8>));
    let mut key = task::spawn(queue.wait_event_key(1, || false));
    let mut key_x = task::spawn(queue.wait_event_key_exclusive(1, || false));
    let mut intr = task::spawn(queue.wait_event_interruptible(&signals, || false));
    let mut intr_x = task::spawn(queue.wait_event_interruptible_exclusive(&signals, || false));
    let mut kill = task::spawn(queue.wait_event_killable(&signals, || false));
    let mut kill_x = task::spawn(queue.wait_event_killable_exclusive(&signals, || false));
    let mut to = task::spawn(queue.wait_event_timeout(clock.clone(), LONG, || false));
    let mut intr_to =
        task::spawn(
            queue.wait_event_interruptible_timeout(&signals, clock.clone(), LONG, || false),
        );
    let mut kill_to =
        task::spawn(queue.wait_event_killable_timeout(&signals, clock.clone(), LONG, || false));
    let mut lk = task::spawn(queue.wait_event_lock(&lock, |n| *n == 1));
    let mut lk_x = task::spawn(queue.wait_event_lock_exclusive(&lock, |n| *n == 1));
    let mut entry = WaitEntry::new(&queue);
    queue.prepare_to_wait(&mut entry, TaskState::Uninterruptible);
    let mut wait = task::spawn(entry.wait());

    assert_pending!(ev.poll());
    assert_pending!(ev_x.poll());
    assert_pending!(val.poll());
    assert_pending!(val_x.poll());
    assert_pending!(key.poll());
    assert_pending!(key_x.poll());
    assert_pending!(intr.poll());
    assert_pending!(intr_x.poll());
    assert_pending!(kill.poll());
    assert_pending!(kill_x.poll());
    assert_pending!(to.poll());
    assert_pending!(intr_to.poll());
    assert_pending!(kill_to.poll());
    assert_pending!(lk.poll());
    assert_pending!(lk_x.poll());
    assert_pending!(wait.poll());
    assert_eq!(queue.len(), 16);

    assert_eq!(queue.close(), 16);
    assert!(queue.is_closed());
    assert_eq!(queue.len(), 0);
    assert!(ev.is_woken() && ev_x.is_woken() && val.is_woken() && val_x.is_woken());
    assert!(key.is_woken() && key_x.is_woken() && intr.is_woken() && intr_x.is_woken());
    assert!(kill.is_woken() && kill_x.is_woken() && to.is_woken() && intr_to.is_woken());
    assert!(kill_to.is_woken() && lk.is_woken() && lk_x.is_woken() && wait.is_woken());

    assert!(assert_ready!(ev.poll()).unwrap_err().is_closed());
    assert!(assert_ready!(ev_x.poll()).unwrap_err().is_closed());
    assert!(assert_ready!(val.poll()).unwrap_err().is_closed());
    assert!(assert_ready!(val_x.poll()).unwrap_err().is_closed());
    assert!(assert_ready!(key.poll()).unwrap_err().is_closed());
    assert!(assert_ready!(key_x.poll()).unwrap_err().is_closed());
    let e = assert_ready!(intr.poll()).unwrap_err();
    assert!(e.is_closed() && !e.is_fatal());
    assert!(assert_ready!(intr_x.poll()).unwrap_err().is_closed());
    assert!(assert_ready!(kill.poll()).unwrap_err().is_closed());
    assert!(assert_ready!(kill_x.poll()).unwrap_err().is_closed());
    assert!(assert_ready!(to.poll()).unwrap_err().is_closed());
    let e = assert_ready!(intr_to.poll()).unwrap_err();
    assert!(e.is_closed() && !e.is_interrupted() && !e.is_timed_out());
    let e = assert_ready!(kill_to.poll()).unwrap_err();
    assert!(e.is_closed() && !e.is_killed() && !e.is_timed_out());
    assert!(assert_ready!(lk.poll()).unwrap_err().is_closed());
    assert!(assert_ready!(lk_x.poll()).unwrap_err().is_closed());
    assert!(assert_ready!(wait.poll()).unwrap_err().is_closed());
    drop(wait);
    assert!(!entry.is_queued());
    assert_eq!(queue.len(), 0);
}

// Breaks if `close` did not release threads blocked in the blocking family.
#[test]
fn rule25_pending_blocking_waits_end_closed() {
    support::watchdog("close releases blocked threads", WATCHDOG, || {
        let queue = Arc::new(WaitQueue::new());
        let spawn = |f: fn(&WaitQueue) -> bool| {
            let queue = queue.clone();
            std::thread::spawn(move || f(&queue))
        };
        let threads = [
            spawn(|q| q.blocking_wait_event(|| false).unwrap_err().is_closed()),
            spawn(|q| {
                q.blocking_wait_event_exclusive(|| false)
                    .unwrap_err()
                    .is_closed()
            }),
            spawn(|q| {
                q.blocking_wait_event_timeout(LONG, || false)
                    .unwrap_err()
                    .is_closed()
            }),
        ];
        while queue.len() < 3 {
            std::thread::yield_now();
        }
        assert_eq!(queue.close(), 3);
        for t in threads {
            assert!(t.join().unwrap(), "a blocking wait did not end with Closed");
        }
        assert_eq!(queue.len(), 0);
    });
}

// Breaks if a wait started after `close` registered or slept with its condition false.
#[test]
fn rule25_waits_after_close_fail_at_once() {
    let queue = WaitQueue::new();
    let clock = ManualClock::new();
    let signals = TaskSignals::new();
    let lock = Mutex::new(0u8);
    queue.close();

    assert!(
        assert_ready!(task::spawn(queue.wait_event(|| false)).poll())
            .unwrap_err()
            .is_closed()
    );
    assert!(
        assert_ready!(task::spawn(queue.wait_event_exclusive(|| false)).poll())
            .unwrap_err()
            .is_closed()
    );
    assert!(
        assert_ready!(task::spawn(queue.wait_event_value(|| None::<u8>)).poll())
            .unwrap_err()
            .is_closed()
    );
    assert!(
        assert_ready!(task::spawn(queue.wait_event_key_exclusive(2, || false)).poll())
            .unwrap_err()
            .is_closed()
    );
    assert!(
        assert_ready!(task::spawn(queue.wait_event_interruptible(&signals, || false)).poll())
            .unwrap_err()
            .is_closed()
    );
    assert!(
        assert_ready!(task::spawn(queue.wait_event_killable(&signals, || false)).poll())
            .unwrap_err()
            .is_closed()
    );
    assert!(assert_ready!(
        task::spawn(queue.wait_event_timeout(clock.clone(), LONG, || false)).poll()
    )
    .unwrap_err()
    .is_closed());
    assert!(
        assert_ready!(task::spawn(queue.wait_event_interruptible_timeout(
            &signals,
            clock.clone(),
            LONG,
            || false
        ))
        .poll())
        .unwrap_err()
        .is_closed()
    );
    assert!(assert_ready!(task::spawn(queue.wait_event_killable_timeout(
        &signals,
        clock.clone(),
        LONG,
        || false
    ))
    .poll())
    .unwrap_err()
    .is_closed());
    assert!(
        assert_ready!(task::spawn(queue.wait_event_lock(&lock, |n| *n == 1)).poll())
            .unwrap_err()
            .is_closed()
    );
    assert!(
        assert_ready!(task::spawn(queue.wait_event_lock_exclusive(&lock, |n| *n == 1)).poll())
            .unwrap_err()
            .is_closed()
    );
    assert!(queue.blocking_wait_event(|| false).unwrap_err().is_closed());
    assert!(queue
        .blocking_wait_event_exclusive(|| false)
        .unwrap_err()
        .is_closed());
    assert!(queue
        .blocking_wait_event_timeout(LONG, || false)
        .unwrap_err()
        .is_closed());

    let mut entry = WaitEntry::new(&queue);
    queue.prepare_to_wait(&mut entry, TaskState::Uninterruptible);
    assert!(assert_ready!(task::spawn(entry.wait()).poll())
        .unwrap_err()
        .is_closed());

    assert_eq!(queue.len(), 0);
    assert_eq!(queue.capacity(), 0, "nothing registered after close");
}

// Breaks if `close` failed waits whose condition holds.
#[test]
fn rule25_true_condition_still_succeeds_after_close() {
    let queue = WaitQueue::new();
    let clock = ManualClock::new();
    let signals = TaskSignals::new();
    let lock = Mutex::new(1u8);
    queue.close();

    assert_ready!(task::spawn(queue.wait_event(|| true)).poll()).unwrap();
    assert_ready!(task::spawn(queue.wait_event_exclusive(|| true)).poll()).unwrap();
    assert_eq!(
        assert_ready!(task::spawn(queue.wait_event_value(|| Some(3))).poll()),
        Ok(3)
    );
    assert_ready!(task::spawn(queue.wait_event_interruptible(&signals, || true)).poll()).unwrap();
    assert_ready!(task::spawn(queue.wait_event_killable(&signals, || true)).poll()).unwrap();
    assert_eq!(
        assert_ready!(task::spawn(queue.wait_event_timeout(clock.clone(), LONG, || true)).poll()),
        Ok(LONG)
    );
    assert!(
        assert_ready!(task::spawn(queue.wait_event_interruptible_timeout(
            &signals,
            clock.clone(),
            LONG,
            || true
        ))
        .poll())
        .is_ok()
    );
    assert!(assert_ready!(task::spawn(queue.wait_event_lock(&lock, |n| *n == 1)).poll()).is_ok());
    queue.blocking_wait_event(|| true).unwrap();
    queue.blocking_wait_event_exclusive(|| true).unwrap();
    assert!(queue.blocking_wait_event_timeout(LONG, || true).is_ok());
}

// Breaks if a pending wait whose condition became true around the close reported Closed.
#[test]
fn rule25_condition_true_when_looking_after_close_wins() {
    let queue = WaitQueue::new();
    let ready = AtomicBool::new(false);
    let mut fut = task::spawn(queue.wait_event_exclusive(|| ready.load(Ordering::SeqCst)));
    assert_pending!(fut.poll());
    assert_eq!(queue.close(), 1);
    ready.store(true, Ordering::SeqCst);
    assert_ready!(fut.poll()).unwrap();

    let lock = Mutex::new(0u8);
    let queue = WaitQueue::new();
    let mut fut = task::spawn(queue.wait_event_lock(&lock, |n| *n == 1));
    assert_pending!(fut.poll());
    queue.close();
    *lock.lock().unwrap() = 1;
    assert!(assert_ready!(fut.poll()).is_ok());
}

// Breaks if a wake after `close` woke anyone or reported a count.
#[test]
fn rule25_wake_after_close_returns_zero() {
    let queue = WaitQueue::new();
    let w = CountingWaker::new();
    let waker = w.waker();
    let mut futs: Vec<_> = (0..3)
        .map(|_| queue.wait_event_exclusive(|| false))
        .collect();
    for f in &mut futs {
        assert!(poll_with(f, &waker).is_pending());
    }
    assert_eq!(queue.close(), 3);
    assert_eq!(w.wakes(), 3);
    assert_eq!(queue.wake_up(), 0);
    assert_eq!(queue.wake_up_nr(2), 0);
    assert_eq!(queue.wake_up_all(), 0);
    assert_eq!(queue.wake_up_interruptible_all(), 0);
    assert_eq!(queue.wake_up_poll(1), 0);
    assert_eq!(w.wakes(), 3, "no waker fires after close");
}

// Breaks if dropping a closed-out future (unpolled or after its error) panicked,
// left an entry, or tried to hand a wake on.
#[test]
fn rule25_drop_of_closed_out_future_is_clean() {
    let queue = WaitQueue::new();
    let w1 = CountingWaker::new();
    let w2 = CountingWaker::new();
    let mut e1 = queue.wait_event_exclusive(|| false);
    let mut e2 = queue.wait_event_exclusive(|| false);
    assert!(poll_with(&mut e1, &w1.waker()).is_pending());
    assert!(poll_with(&mut e2, &w2.waker()).is_pending());
    assert_eq!(queue.close(), 2);
    drop(e1); // closed out, never re-polled
    assert_eq!(w2.wakes(), 1, "only close's own wake");
    assert!(poll_with(&mut e2, &w2.waker()).is_ready());
    drop(e2);
    assert_eq!(queue.len(), 0);
    assert_eq!(w1.wakes(), 1);
}

// Breaks if `close` did not count every waiter it ended (across batches), or is not idempotent.
#[test]
fn rule25_close_returns_number_ended_and_is_idempotent() {
    let queue = WaitQueue::new();
    let w = CountingWaker::new();
    let waker = w.waker();
    let mut futs: Vec<_> = (0..70)
        .map(|i| {
            let never = (|| false) as fn() -> bool;
            if i % 3 == 0 {
                queue.wait_event_exclusive(never)
            } else {
                queue.wait_event(never)
            }
        })
        .collect();
    for f in &mut futs {
        assert!(poll_with(f, &waker).is_pending());
    }
    assert!(!queue.is_closed());
    assert_eq!(queue.close(), 70);
    assert_eq!(w.wakes(), 70);
    assert_eq!(queue.len(), 0);
    assert_eq!(queue.close(), 0);
    assert!(queue.is_closed());
    for f in &mut futs {
        assert!(matches!(poll_with(f, &waker), std::task::Poll::Ready(Err(e)) if e.is_closed()));
    }
}

// Breaks if a closed wait reported a signal or a deadline instead of the close.
#[test]
fn rule25_close_reported_even_with_signal_and_deadline_pending() {
    let queue = WaitQueue::new();
    let clock = ManualClock::new();
    let signals = TaskSignals::new();
    let mut fut = task::spawn(queue.wait_event_interruptible_timeout(
        &signals,
        clock.clone(),
        Duration::from_millis(5),
        || false,
    ));
    assert_pending!(fut.poll());
    queue.close();
    signals.interrupt();
    clock.advance(Duration::from_millis(5));
    let e = assert_ready!(fut.poll()).unwrap_err();
    assert!(e.is_closed());
}
