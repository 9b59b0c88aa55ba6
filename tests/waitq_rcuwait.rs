//! `waitq::RcuWait`: the one-waiter wait keeps the wait queue's protocol
//! (no lost wake-up, close, a dropped wait takes its waker back), wakes
//! only the waiter that polled last, spends the coop budget, and lists its
//! sleep in the wait registry.
mod support;

use std::future::{poll_fn, Future};
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use support::{stress_iters, watchdog, CountingWaker, WATCHDOG};
use waitq::{Closed, RcuWait};

fn step(wait: &RcuWait, waker: &Waker, cond: impl FnMut() -> bool) -> Poll<Result<(), Closed>> {
    wait.poll_wait_event(&mut Context::from_waker(waker), cond)
}

#[test]
fn a_wake_between_the_false_test_and_the_store_is_caught() {
    let wait = RcuWait::new();
    let ready = AtomicBool::new(false);
    let waker = CountingWaker::new();
    let mut tests = 0;
    let cond = || {
        tests += 1;
        if tests == 1 {
            // The waker runs right after our first (false) test, before our
            // waker is stored: its wake finds nobody.
            ready.store(true, Ordering::SeqCst);
            assert!(!wait.wake_up());
            return false;
        }
        ready.load(Ordering::SeqCst)
    };
    // Only the re-check after the store can see it.
    assert_eq!(step(&wait, &waker.waker(), cond), Poll::Ready(Ok(())));
    assert_eq!(tests, 2);
    assert!(
        !wait.rcuwait_active(),
        "a wait that ended took its waker back"
    );
    assert!(!wait.wake_up());
    assert_eq!(waker.wakes(), 0);
}

#[test]
fn a_wake_after_the_store_wakes_the_task_once() {
    let wait = RcuWait::new();
    let ready = AtomicBool::new(false);
    let waker = CountingWaker::new();
    let cond = || ready.load(Ordering::SeqCst);
    assert!(step(&wait, &waker.waker(), cond).is_pending());
    assert!(wait.rcuwait_active());
    ready.store(true, Ordering::SeqCst);
    assert!(wait.wake_up());
    assert!(!wait.wake_up(), "the first wake took the waker");
    assert_eq!(waker.wakes(), 1);
    assert_eq!(step(&wait, &waker.waker(), cond), Poll::Ready(Ok(())));
}

#[test]
fn only_the_waiter_that_polled_last_is_woken() {
    let wait = RcuWait::new();
    let (first, last) = (CountingWaker::new(), CountingWaker::new());
    assert!(step(&wait, &first.waker(), || false).is_pending());
    assert!(step(&wait, &last.waker(), || false).is_pending());
    assert!(wait.wake_up());
    assert_eq!((first.wakes(), last.wakes()), (0, 1));
}

#[test]
fn a_spurious_poll_keeps_one_waker_stored() {
    let wait = RcuWait::new();
    let waker = CountingWaker::new();
    for _ in 0..3 {
        assert!(step(&wait, &waker.waker(), || false).is_pending());
    }
    assert!(wait.wake_up());
    assert!(!wait.wake_up());
    assert_eq!(waker.wakes(), 1);
}

#[test]
fn a_dropped_wait_takes_its_waker_back() {
    let wait = RcuWait::new();
    let waker = CountingWaker::new();
    {
        let mut fut = std::pin::pin!(wait.wait_event(|| false));
        let w = waker.waker();
        let mut cx = Context::from_waker(&w);
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert!(wait.rcuwait_active());
    }
    assert!(!wait.rcuwait_active());
    assert!(!wait.wake_up(), "nobody to wake after the drop");
    assert_eq!(waker.wakes(), 0);
}

#[test]
fn close_ends_the_wait_and_every_later_one() {
    let wait = RcuWait::new();
    let waker = CountingWaker::new();
    assert!(step(&wait, &waker.waker(), || false).is_pending());
    wait.close();
    assert_eq!(waker.wakes(), 1, "close wakes the waiter");
    assert!(matches!(
        step(&wait, &waker.waker(), || false),
        Poll::Ready(Err(_))
    ));
    assert!(!wait.rcuwait_active(), "a failed wait stores nothing");
    // A true condition beats close.
    assert_eq!(step(&wait, &waker.waker(), || true), Poll::Ready(Ok(())));
    let err = futures::executor::block_on(wait.wait_event(|| false)).unwrap_err();
    assert!(err.is_closed());
    assert!(wait.blocking_wait_event(|| false).is_err());
}

#[test]
fn a_close_between_the_false_test_and_the_store_is_caught() {
    let wait = RcuWait::new();
    let waker = CountingWaker::new();
    let mut tests = 0;
    let cond = || {
        tests += 1;
        if tests == 1 {
            // `is_closed` comes after this test: close later, at the
            // re-check, so only the check after the store can see it.
            return false;
        }
        wait.close();
        false
    };
    assert!(matches!(
        step(&wait, &waker.waker(), cond),
        Poll::Ready(Err(_))
    ));
    assert!(!wait.rcuwait_active());
}

#[test]
fn the_wait_spends_the_coop_budget() {
    let wait = RcuWait::new();
    let waker = CountingWaker::new();
    waitq::coop::with_budget(1, || {
        assert_eq!(step(&wait, &waker.waker(), || true), Poll::Ready(Ok(())));
        // Out of budget: `Pending` at once, without looking, and the task
        // is woken to come back with a fresh budget.
        assert!(step(&wait, &waker.waker(), || true).is_pending());
    });
    assert_eq!(waker.wakes(), 1);
    assert!(!wait.rcuwait_active(), "an exhausted poll stores nothing");
}

#[test]
fn the_registry_lists_the_sleep_until_the_wake() {
    waitq::registry::enable();
    static NAMED: RcuWait = RcuWait::named("rcu_rx_wait");
    let me = waitq::hook::QueueId::of_rcuwait(&NAMED);
    let listed = || {
        waitq::registry::snapshot()
            .into_iter()
            .filter(|w| w.queue == me)
            .collect::<Vec<_>>()
    };
    let ready = AtomicBool::new(false);
    // From a plain thread, a blocking wait is listed with its thread.
    std::thread::scope(|s| {
        let sleeper = s.spawn(|| NAMED.blocking_wait_event(|| ready.load(Ordering::SeqCst)));
        let mut rounds = 0;
        while listed().is_empty() {
            rounds += 1;
            assert!(rounds < 60_000, "the blocking sleep was never listed");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let w = &listed()[0];
        assert_eq!(w.queue_name, Some("rcu_rx_wait"));
        assert_eq!(w.kind.to_string(), "blocking_wait_event");
        assert!(w.thread.is_some());
        ready.store(true, Ordering::SeqCst);
        NAMED.wake_up();
        sleeper.join().unwrap().unwrap();
    });
    assert!(listed().is_empty(), "the wake unlisted it");
    // A poll that sleeps and then gives up is unlisted by `finish_wait`.
    // (Outside any task no executor names a task: the registry lists
    // only blocking waits there, so nothing is listed here either way.)
    let waker = CountingWaker::new();
    assert!(step(&NAMED, &waker.waker(), || false).is_pending());
    NAMED.finish_wait();
    assert!(listed().is_empty());
}

/// A consumer thread sleeps on an `RcuWait` for each item of a one-slot
/// buffer; the producer fills the slot and wakes it. Any lost wake-up
/// hangs the consumer and fires the watchdog.
#[test]
fn stress_a_producer_and_a_sleeping_consumer() {
    let iters = stress_iters();
    let items = Arc::new(RcuWait::new());
    let space = Arc::new(RcuWait::new());
    let slot = Arc::new(AtomicUsize::new(0));
    let producer = {
        let (items, space, slot) = (items.clone(), space.clone(), slot.clone());
        std::thread::spawn(move || {
            for _ in 0..iters {
                space
                    .blocking_wait_event(|| slot.load(Ordering::SeqCst) == 0)
                    .unwrap();
                slot.store(1, Ordering::SeqCst);
                items.wake_up();
            }
        })
    };
    let sleeps = watchdog("rcuwait consumer", WATCHDOG, move || {
        let mut sleeps = 0;
        for _ in 0..iters {
            futures::executor::block_on(poll_fn(|cx| {
                let poll = items.poll_wait_event(cx, || slot.load(Ordering::SeqCst) == 1);
                sleeps += usize::from(poll.is_pending());
                poll
            }))
            .unwrap();
            slot.store(0, Ordering::SeqCst);
            space.wake_up();
        }
        sleeps
    });
    producer.join().unwrap();
    assert!(sleeps > 0, "the consumer never slept: nothing was tested");
}

/// The lock-free `rcuwait_active` check after a full fence on both sides
/// (the waker: state, fence, check; the waiter's condition: fence, read)
/// loses nothing either.
#[test]
fn stress_the_fenced_active_check() {
    let iters = stress_iters();
    let wait = Arc::new(RcuWait::new());
    let turn = Arc::new(AtomicUsize::new(0));
    let setter = {
        let (wait, turn) = (wait.clone(), turn.clone());
        std::thread::spawn(move || {
            for i in 0..iters {
                // Wait (spinning, bounded) for the consumer to start round
                // `i`, then end it.
                let start = std::time::Instant::now();
                while turn.load(Ordering::SeqCst) != 2 * i + 1 {
                    assert!(start.elapsed() < WATCHDOG, "the consumer stopped");
                    std::thread::yield_now();
                }
                turn.store(2 * i + 2, Ordering::Relaxed);
                fence(Ordering::SeqCst);
                waitq::hook::barrier();
                if wait.rcuwait_active() {
                    wait.wake_up();
                }
            }
        })
    };
    watchdog("fenced rcuwait waiter", WATCHDOG, move || {
        for i in 0..iters {
            turn.store(2 * i + 1, Ordering::SeqCst);
            futures::executor::block_on(wait.wait_event(|| {
                fence(Ordering::SeqCst);
                turn.load(Ordering::Relaxed) == 2 * i + 2
            }))
            .unwrap();
        }
    });
    setter.join().unwrap();
}

// ===== locked waits =====

/// A value handed over under the wait's lock (a oneshot's shape).
fn take_value(slot: &mut Option<u32>) -> Option<u32> {
    slot.take()
}

/// A locked wait on an empty slot: it stores `cx`'s waker.
fn asleep(wait: &RcuWait<Option<u32>>, cx: &mut Context<'_>) {
    assert!(wait.poll_wait_event_locked(cx, take_value).is_pending());
    assert!(wait.rcuwait_active());
}

#[test]
fn a_locked_wait_tests_and_stores_in_one_hold() {
    let wait = RcuWait::with_state(Some("locked"), None::<u32>);
    let waker = CountingWaker::new();
    let w = waker.waker();
    let mut cx = Context::from_waker(&w);
    assert!(wait
        .poll_wait_event_locked(&mut cx, take_value)
        .is_pending());
    assert!(wait.rcuwait_active());
    let mut slot = wait.lock();
    *slot = Some(7);
    assert_eq!(waker.wakes(), 0);
    assert!(slot.wake_up(), "the hold took the stored waker");
    assert_eq!(waker.wakes(), 1);
    assert_eq!(
        wait.poll_wait_event_locked(&mut cx, take_value),
        Poll::Ready(Ok(7))
    );
    assert!(!wait.rcuwait_active());
}

#[test]
fn a_locked_wait_that_ends_takes_back_a_waker_stored_earlier() {
    let (wait, waker) = (RcuWait::with_state(None, None::<u32>), CountingWaker::new());
    let w = waker.waker();
    let mut cx = Context::from_waker(&w);
    asleep(&wait, &mut cx);
    // The state changes without a wake (the waiter polls anyway).
    *wait.lock() = Some(3);
    assert_eq!(
        wait.poll_wait_event_locked(&mut cx, take_value),
        Poll::Ready(Ok(3))
    );
    assert!(!wait.rcuwait_active());
    assert!(!wait.lock().wake_up(), "the finished waiter is not woken");
    assert_eq!(waker.wakes(), 0);
}

#[test]
fn a_locked_wait_fails_on_close_unless_its_condition_holds() {
    let (wait, waker) = (RcuWait::with_state(None, None::<u32>), CountingWaker::new());
    let w = waker.waker();
    let mut cx = Context::from_waker(&w);
    asleep(&wait, &mut cx);
    wait.close();
    assert_eq!(waker.wakes(), 1);
    assert!(matches!(
        wait.poll_wait_event_locked(&mut cx, take_value),
        Poll::Ready(Err(_))
    ));
    *wait.lock() = Some(1);
    assert_eq!(
        wait.poll_wait_event_locked(&mut cx, take_value),
        Poll::Ready(Ok(1))
    );
    assert!(wait.blocking_wait_event_locked(take_value).is_err());
}

/// A producer hands values one at a time through the locked state to a
/// consumer that sleeps (as a task, and as a thread) whenever the slot is
/// empty; nothing is lost or duplicated, and a lost wake-up hangs it.
#[test]
fn stress_a_locked_handover() {
    let iters = stress_iters();
    for blocking in [false, true] {
        let wait = Arc::new(RcuWait::with_state(None, None::<usize>));
        let space = Arc::new(RcuWait::with_state(None, true));
        let producer = {
            let (wait, space) = (wait.clone(), space.clone());
            std::thread::spawn(move || {
                for i in 0..iters {
                    space
                        .blocking_wait_event_locked(|free| std::mem::take(free).then_some(()))
                        .unwrap();
                    let mut slot = wait.lock();
                    assert!(slot.replace(i).is_none(), "overwrote a value");
                    slot.wake_up();
                }
            })
        };
        let sleeps = watchdog("locked rcuwait consumer", WATCHDOG, move || {
            let mut sleeps = 0;
            for i in 0..iters {
                let got = if blocking {
                    wait.blocking_wait_event_locked(Option::take).unwrap()
                } else {
                    futures::executor::block_on(poll_fn(|cx| {
                        let poll = wait.poll_wait_event_locked(cx, Option::take);
                        sleeps += usize::from(poll.is_pending());
                        poll
                    }))
                    .unwrap()
                };
                assert_eq!(got, i, "lost or reordered");
                let mut free = space.lock();
                *free = true;
                free.wake_up();
            }
            sleeps
        });
        producer.join().unwrap();
        if !blocking {
            assert!(sleeps > 0, "the consumer never slept: nothing was tested");
        }
    }
}

/// The waker a locked wake took runs after the lock is released: a waker
/// that takes the same lock (as an executor's might, re-polling at once)
/// does not deadlock.
#[test]
fn a_locked_wake_runs_the_waker_after_the_unlock() {
    struct Relock(Arc<RcuWait<Option<u32>>>, AtomicUsize);
    impl std::task::Wake for Relock {
        fn wake(self: Arc<Self>) {
            let _ = self.0.lock().is_some();
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }
    let done = watchdog("a waker that relocks", WATCHDOG, || {
        let wait = Arc::new(RcuWait::with_state(None, None::<u32>));
        let relock = Arc::new(Relock(wait.clone(), AtomicUsize::new(0)));
        let waker = Waker::from(relock.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(wait
            .poll_wait_event_locked(&mut cx, take_value)
            .is_pending());
        let mut slot = wait.lock();
        *slot = Some(1);
        assert!(slot.wake_up());
        relock.1.load(Ordering::SeqCst)
    });
    assert_eq!(done, 1);
}
