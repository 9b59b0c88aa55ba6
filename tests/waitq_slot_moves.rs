//! A wait that slept in one task and ends in another (a join handle
//! polled in one task, then awaited or dropped in another): the record of
//! its sleep in the first task's sleep slot is cleared, wherever the wait
//! ends, and the second task's sleeps are listed as its own. Before, the
//! first task's slot kept the record for as long as that task lived: a
//! dump listed it as asleep on a wait that was over, and its later sleeps
//! all went to the registry's shared map.
//!
//! Its own test binary: the registry's slots must be on and the whole
//! registry off (`registry::enable` turns the slots off for the process).

use std::future::Future;
use std::num::NonZeroU64;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use waitq::hook::QueueId;
use waitq::registry::{self, SleepSlot};
use waitq::{RcuWait, WaitQueue};

/// Runs `f` as a poll of task `owner`, whose slot is `slot`.
fn in_task<R>(slot: &'static SleepSlot, owner: u64, f: impl FnOnce() -> R) -> R {
    registry::in_owned_slot(slot, NonZeroU64::new(owner).unwrap(), f)
}

/// A waker of its own (`Waker::noop()`s all wake alike).
struct Own;
impl Wake for Own {
    fn wake(self: Arc<Self>) {}
}

fn own_waker() -> Waker {
    Waker::from(Arc::new(Own))
}

/// Rounds of the real-thread tests (`WAITQ_STRESS_ITERS`, else 20,000).
fn stress_rounds() -> usize {
    std::env::var("WAITQ_STRESS_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000)
}

fn listed_on(slot: &SleepSlot, wait: &RcuWait) -> bool {
    slot.read()
        .is_some_and(|s| s.queue == QueueId::of_ptr(wait))
}

#[test]
fn a_wait_woken_then_ended_in_another_task_clears_the_first_record() {
    static ONE: SleepSlot = SleepSlot::new();
    static TWO: SleepSlot = SleepSlot::new();
    static NEXT: WaitQueue = WaitQueue::named("next_sleep");
    registry::enable_slots();
    let wait = RcuWait::named("moved_wait");
    let go = AtomicBool::new(false);
    let (one, two) = (own_waker(), own_waker());
    let cond = || go.load(SeqCst);
    in_task(&ONE, 1, || {
        let mut cx = Context::from_waker(&one);
        assert!(wait.poll_wait_event(&mut cx, cond).is_pending());
    });
    assert!(listed_on(&ONE, &wait));
    go.store(true, SeqCst);
    assert!(wait.wake_up()); // from outside: it cannot reach task 1's slot
    in_task(&TWO, 2, || {
        let mut cx = Context::from_waker(&two);
        assert_eq!(wait.poll_wait_event(&mut cx, cond), Poll::Ready(Ok(())));
    });
    assert!(
        !listed_on(&ONE, &wait),
        "task 1 still listed on a wait that ended"
    );
    assert!(TWO.read().is_none());
    // Task 1's next sleep is listed in its own slot again.
    in_task(&ONE, 1, || {
        let mut sleep = pin!(NEXT.wait_event(|| false));
        let mut cx = Context::from_waker(&one);
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        assert_eq!(ONE.read().unwrap().queue, QueueId::of(&NEXT));
    });
}

#[test]
fn a_wait_polled_again_in_another_task_moves_its_record() {
    static ONE: SleepSlot = SleepSlot::new();
    static TWO: SleepSlot = SleepSlot::new();
    registry::enable_slots();
    let wait = RcuWait::named("moved_wait");
    let (one, two) = (own_waker(), own_waker());
    in_task(&ONE, 1, || {
        let mut cx = Context::from_waker(&one);
        assert!(wait.poll_wait_event(&mut cx, || false).is_pending());
    });
    in_task(&TWO, 2, || {
        let mut cx = Context::from_waker(&two);
        assert!(wait.poll_wait_event(&mut cx, || false).is_pending());
    });
    assert!(!listed_on(&ONE, &wait), "task 1 still listed");
    assert!(listed_on(&TWO, &wait), "task 2 not listed");
    assert_eq!(TWO.read().unwrap().owner, 2);
    in_task(&TWO, 2, || wait.finish_wait());
    assert!(TWO.read().is_none());
}

#[test]
fn a_wait_dropped_in_another_task_clears_the_first_record() {
    static ONE: SleepSlot = SleepSlot::new();
    static TWO: SleepSlot = SleepSlot::new();
    registry::enable_slots();
    let wait = RcuWait::named("moved_wait");
    let one = own_waker();
    let mut sleep = Box::pin(wait.wait_event(|| false));
    in_task(&ONE, 1, || {
        let mut cx = Context::from_waker(&one);
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
    });
    assert!(listed_on(&ONE, &wait));
    in_task(&TWO, 2, || drop(sleep)); // its waker still stored
    assert!(!listed_on(&ONE, &wait), "task 1 still listed");
    assert!(!wait.rcuwait_active());
}

/// The clear from afar leaves alone a record of another task that got
/// the slot since (an executor reuses slots for later tasks).
#[test]
fn a_clear_from_afar_leaves_a_later_owners_record() {
    static SHARED: SleepSlot = SleepSlot::new();
    static OTHER: SleepSlot = SleepSlot::new();
    registry::enable_slots();
    let wait = RcuWait::named("moved_wait");
    let later = RcuWait::named("later_task_wait");
    let (one, three) = (own_waker(), own_waker());
    let go = AtomicBool::new(false);
    in_task(&SHARED, 1, || {
        let mut cx = Context::from_waker(&one);
        assert!(wait
            .poll_wait_event(&mut cx, || go.load(SeqCst))
            .is_pending());
    });
    go.store(true, SeqCst);
    assert!(wait.wake_up());
    // Task 1 ended; task 3 gets its slot and sleeps.
    in_task(&SHARED, 3, || {
        let mut cx = Context::from_waker(&three);
        assert!(later.poll_wait_event(&mut cx, || false).is_pending());
    });
    in_task(&OTHER, 2, || wait.finish_wait());
    assert!(listed_on(&SHARED, &later), "task 3's record was cleared");
    in_task(&SHARED, 3, || later.finish_wait());
    assert!(SHARED.read().is_none());
}

/// A later owner of the same slot (the next `block_on` call on a thread,
/// with an owner of its own) writes over the wait's record with a sleep
/// of its own, then polls the wait again: the wait's sleep is listed anew
/// (in the shared map, the slot being taken), not taken as still there.
#[test]
fn a_record_written_over_is_listed_anew() {
    static SHARED: SleepSlot = SleepSlot::new();
    static OTHER_QUEUE: WaitQueue = WaitQueue::named("written_over_by");
    registry::enable_slots();
    // The shared map lists a sleep only where an executor names its task.
    registry::set_task_source(|| {
        Some(registry::TaskStamp {
            task: Some(2),
            now: std::time::Instant::now(),
        })
    });
    let wait = RcuWait::named("written_over_wait");
    let (one, two) = (own_waker(), own_waker());
    in_task(&SHARED, 1, || {
        let mut cx = Context::from_waker(&one);
        assert!(wait.poll_wait_event(&mut cx, || false).is_pending());
    });
    in_task(&SHARED, 2, || {
        let mut cx = Context::from_waker(&two);
        let mut other = pin!(OTHER_QUEUE.wait_event(|| false));
        assert!(other.as_mut().poll(&mut cx).is_pending());
        assert_eq!(SHARED.read().unwrap().queue, QueueId::of(&OTHER_QUEUE));
        assert!(wait.poll_wait_event(&mut cx, || false).is_pending());
        let id = QueueId::of_ptr(&wait);
        let listed = registry::snapshot().iter().any(|w| w.queue == id);
        wait.finish_wait();
        assert!(listed, "the wait's sleep is listed nowhere");
    });
}

/// The wake comes while the second task polls, between its poll's check
/// for a stale record (none yet: the first task's waker was still stored)
/// and its store: the store found nothing listed (the wake took that) and
/// wrote the sleep anew in the second task's slot, overwriting the only
/// pointer to the first task's record, which stayed for as long as that
/// task lived (a flake hunt: 2 of 300 runs of `obs_dump`'s
/// `join_handle_awaited_in_another_task_multi_thread`). The condition
/// plays the wake at that point: it runs between the two.
#[test]
fn a_wake_between_the_stale_check_and_the_store_clears_the_first_record() {
    static ONE: SleepSlot = SleepSlot::new();
    static TWO: SleepSlot = SleepSlot::new();
    registry::enable_slots();
    let wait = RcuWait::named("raced_wait");
    let go = AtomicBool::new(false);
    let (one, two) = (own_waker(), own_waker());
    in_task(&ONE, 1, || {
        let mut cx = Context::from_waker(&one);
        assert!(wait
            .poll_wait_event(&mut cx, || go.load(SeqCst))
            .is_pending());
    });
    assert!(listed_on(&ONE, &wait));
    let mut evals = 0;
    in_task(&TWO, 2, || {
        let mut cx = Context::from_waker(&two);
        let cond = || {
            evals += 1;
            if evals == 1 {
                // The joined task ends now: after the stale check, before
                // the store.
                go.store(true, SeqCst);
                assert!(wait.wake_up());
                return false;
            }
            go.load(SeqCst)
        };
        assert_eq!(wait.poll_wait_event(&mut cx, cond), Poll::Ready(Ok(())));
    });
    assert_eq!(evals, 2, "the store ran between the two evaluations");
    assert!(
        !listed_on(&ONE, &wait),
        "task 1 still listed on a wait that ended"
    );
    assert!(
        !listed_on(&TWO, &wait),
        "task 2 still listed on a wait that ended"
    );
    assert!(!wait.rcuwait_active());
}

/// The same three parties on real threads, many times over: the wait
/// sleeps in task 1, then task 2 polls it to its end while a third
/// thread ends the joined work and wakes it, in any order. Task 1's
/// record is gone every time.
#[test]
fn a_wait_moved_while_woken_on_real_threads_clears_the_first_record() {
    static ONE: SleepSlot = SleepSlot::new();
    static TWO: SleepSlot = SleepSlot::new();
    registry::enable_slots();
    let rounds = stress_rounds();
    for round in 0..rounds {
        let wait = Arc::new(RcuWait::named("moved_woken_wait"));
        let go = Arc::new(AtomicBool::new(false));
        let one = own_waker();
        in_task(&ONE, 1, || {
            let mut cx = Context::from_waker(&one);
            assert!(wait
                .poll_wait_event(&mut cx, || go.load(SeqCst))
                .is_pending());
        });
        let ender = {
            let (wait, go) = (wait.clone(), go.clone());
            std::thread::spawn(move || {
                go.store(true, SeqCst);
                wait.wake_up();
            })
        };
        let taker = {
            let (wait, go) = (wait.clone(), go.clone());
            std::thread::spawn(move || {
                let two = own_waker();
                let mut cx = Context::from_waker(&two);
                // Bounded: the ender sets `go` within the round.
                for _ in 0..10_000_000u64 {
                    let done = in_task(&TWO, 2, || {
                        wait.poll_wait_event(&mut cx, || go.load(SeqCst)).is_ready()
                    });
                    if done {
                        return;
                    }
                    std::thread::yield_now();
                }
                panic!("the wait never ended");
            })
        };
        ender.join().unwrap();
        taker.join().unwrap();
        assert!(
            !listed_on(&ONE, &wait),
            "round {round}: task 1 still listed on a wait that ended"
        );
        assert!(
            !listed_on(&TWO, &wait),
            "round {round}: task 2 still listed"
        );
        ONE.clear_any();
        TWO.clear_any();
    }
}

/// A wait queue's sleeper woken from another thread while its task polls
/// it to its end, many times over on real threads: the task's slot does
/// not keep the sleep.
#[test]
fn a_wait_queue_sleeper_woken_while_it_ends_leaves_no_record() {
    static ONE: SleepSlot = SleepSlot::new();
    registry::enable_slots();
    let rounds = stress_rounds();
    for round in 0..rounds {
        let queue = Arc::new(WaitQueue::named("raced_queue"));
        let go = Arc::new(AtomicBool::new(false));
        let exclusive = round % 2 == 1;
        let waker = own_waker();
        let mut cx = Context::from_waker(&waker);
        let cond = {
            let go = go.clone();
            move || go.load(SeqCst)
        };
        let mut wait: std::pin::Pin<Box<dyn Future<Output = _> + Send>> = if exclusive {
            Box::pin(queue.wait_event_exclusive(cond))
        } else {
            Box::pin(queue.wait_event(cond))
        };
        in_task(&ONE, 1, || {
            assert!(wait.as_mut().poll(&mut cx).is_pending())
        });
        let ender = {
            let (queue, go) = (queue.clone(), go.clone());
            std::thread::spawn(move || {
                go.store(true, SeqCst);
                queue.wake_up();
            })
        };
        // Bounded: the ender sets `go` within the round.
        let mut ended = false;
        for _ in 0..10_000_000u64 {
            if in_task(&ONE, 1, || wait.as_mut().poll(&mut cx).is_ready()) {
                ended = true;
                break;
            }
            std::thread::yield_now();
        }
        assert!(ended, "round {round}: the wait never ended");
        ender.join().unwrap();
        // Over at its end, before the future goes.
        assert!(
            ONE.read().is_none(),
            "round {round}: still listed: {:?}",
            ONE.read()
        );
        in_task(&ONE, 1, || drop(wait));
        ONE.clear_any();
    }
}
