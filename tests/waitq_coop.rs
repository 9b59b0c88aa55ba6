//! `waitq::coop`: the cooperative budget every async wait spends. Without
//! `with_budget` nothing changes; with it, a task whose waits are always
//! ready yields (waking itself) once the budget is gone, so it cannot
//! starve the other tasks of its executor.
mod support;

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use support::{poll_with, watchdog, CountingWaker, ManualClock};
use waitq::{coop, PollWaiter, TaskSignals, TaskState, WaitEntry, WaitQueue};

/// Polls `fut` once, pinned in place, with `waker`.
fn poll_once<F: Future>(fut: F, waker: &Waker) -> Poll<F::Output> {
    pin!(fut).poll(&mut Context::from_waker(waker))
}

#[test]
fn without_a_budget_nothing_changes() {
    let queue = WaitQueue::new();
    let lock = Mutex::new(0);
    let waker = CountingWaker::new();
    let w = waker.waker();
    let mut waiter = PollWaiter::new(&queue);
    let mut entry = WaitEntry::new(&queue);
    for _ in 0..10_000 {
        assert!(poll_once(queue.wait_event(|| true), &w).is_ready());
        assert!(poll_once(queue.wait_event_lock(&lock, |_| true), &w).is_ready());
        assert!(poll_once(entry.wait(), &w).is_ready());
        let mut cx = Context::from_waker(&w);
        assert!(waiter.poll_wait_event(&mut cx, || true).is_ready());
        assert!(coop::poll_proceed(&mut cx).is_ready());
    }
    assert!(coop::has_budget_remaining());
    assert_eq!(waker.wakes(), 0);
    // The same loop as one task under futures' block_on: never Pending.
    let pendings = Cell::new(0);
    let mut task = pin!(async {
        for _ in 0..10_000 {
            queue.wait_event(|| true).await.unwrap();
        }
    });
    futures::executor::block_on(poll_fn(|cx| {
        let poll = task.as_mut().poll(cx);
        pendings.set(pendings.get() + usize::from(poll.is_pending()));
        poll
    }));
    assert_eq!(pendings.get(), 0);
}

#[test]
fn the_wait_after_the_budget_yields_and_wakes_its_task() {
    let queue = WaitQueue::new();
    let waker = CountingWaker::new();
    let tests = Cell::new(0);
    let cond = || {
        tests.set(tests.get() + 1);
        true
    };
    let (polls, forced) = coop::with_budget(3, || {
        let polls: Vec<bool> = (0..4)
            .map(|_| poll_once(queue.wait_event(cond), &waker.waker()).is_ready())
            .collect();
        assert!(!coop::has_budget_remaining());
        polls
    });
    assert_eq!(polls, [true, true, true, false]);
    assert!(forced);
    assert_eq!(waker.wakes(), 1, "the yielding wait must wake its task");
    assert_eq!(
        tests.get(),
        3,
        "the yielding wait must not test its condition"
    );
    assert_eq!(queue.len(), 0, "nor register");
    // The flag belongs to that with_budget only.
    let ((), forced) = coop::with_budget(3, || {});
    assert!(!forced);
}

#[test]
fn every_async_wait_spends_the_budget() {
    let queue = WaitQueue::new();
    let signals = TaskSignals::new();
    let clock = ManualClock::new();
    let lock = Mutex::new(());
    let waker = CountingWaker::new();
    let w = waker.waker();
    let second = Duration::from_secs(1);
    let mut entry = WaitEntry::new(&queue);
    let mut waiter = PollWaiter::new_exclusive(&queue);
    let yields: Vec<bool> = coop::with_budget(0, || {
        vec![
            poll_once(queue.wait_event(|| true), &w).is_pending(),
            poll_once(queue.wait_event_exclusive(|| true), &w).is_pending(),
            poll_once(queue.wait_event_value(|| Some(1)), &w).is_pending(),
            poll_once(queue.wait_event_key(1, || true), &w).is_pending(),
            poll_once(queue.wait_event_interruptible(&signals, || true), &w).is_pending(),
            poll_once(queue.wait_event_killable(&signals, || true), &w).is_pending(),
            poll_once(queue.wait_event_timeout(clock.clone(), second, || true), &w).is_pending(),
            poll_once(
                queue.wait_event_interruptible_timeout(&signals, clock.clone(), second, || true),
                &w,
            )
            .is_pending(),
            poll_once(
                queue.wait_event_killable_timeout(&signals, clock.clone(), second, || true),
                &w,
            )
            .is_pending(),
            poll_once(queue.wait_event_lock(&lock, |_| true), &w).is_pending(),
            poll_once(entry.wait(), &w).is_pending(),
            waiter
                .poll_wait_event(&mut Context::from_waker(&w), || true)
                .is_pending(),
        ]
    })
    .0;
    assert_eq!(yields, vec![true; 12]);
    assert_eq!(waker.wakes(), 12);
    assert!(!waiter.is_waiting());
    assert_eq!(queue.len(), 0);
}

#[test]
fn blocking_waits_never_spend_budget() {
    let (res, forced) = watchdog(
        "blocking wait with no budget",
        Duration::from_secs(20),
        || {
            let queue = WaitQueue::new();
            coop::with_budget(0, || queue.blocking_wait_event(|| true))
        },
    );
    assert!(res.is_ok());
    assert!(!forced);
}

#[test]
fn a_wait_that_ends_pending_refunds_its_unit() {
    let queue = WaitQueue::new();
    let waker = CountingWaker::new();
    let w = waker.waker();
    let readies = coop::with_budget(2, || {
        let mut sleeper = queue.wait_event(|| false);
        assert!(poll_with(&mut sleeper, &w).is_pending()); // registered: no progress
        assert!(poll_with(&mut sleeper, &w).is_pending());
        let mut entry = WaitEntry::new(&queue);
        queue.prepare_to_wait(&mut entry, TaskState::Uninterruptible);
        assert!(poll_once(entry.wait(), &w).is_pending());
        (0..3)
            .filter(|_| poll_once(queue.wait_event(|| true), &w).is_ready())
            .count()
    })
    .0;
    assert_eq!(readies, 2, "Pending polls must give their unit back");
    // The bare API.
    let mut cx = Context::from_waker(&w);
    coop::with_budget(1, || {
        assert!(coop::poll_proceed(&mut cx).is_ready());
        assert!(!coop::has_budget_remaining());
        coop::refund();
        assert!(coop::has_budget_remaining());
    });
    coop::refund(); // unconstrained: nothing to give back
    assert!(coop::has_budget_remaining());
}

#[test]
fn a_picked_exclusive_waiter_keeps_its_pick_across_a_forced_yield() {
    let queue = WaitQueue::new();
    let (wa, wb) = (CountingWaker::new(), CountingWaker::new());
    let mut a = PollWaiter::new_exclusive(&queue);
    let mut b = PollWaiter::new_exclusive(&queue);
    let ready = AtomicBool::new(false);
    let cond = || ready.load(Ordering::SeqCst);
    assert!(a
        .poll_wait_event(&mut Context::from_waker(&wa.waker()), cond)
        .is_pending());
    assert!(b
        .poll_wait_event(&mut Context::from_waker(&wb.waker()), cond)
        .is_pending());
    ready.store(true, Ordering::SeqCst);
    assert_eq!(queue.wake_up(), 1);
    let (poll, forced) = coop::with_budget(0, || {
        a.poll_wait_event(&mut Context::from_waker(&wa.waker()), cond)
    });
    assert!(poll.is_pending() && forced);
    assert!(a.is_waiting(), "the pick is still to be acted on");
    assert_eq!((wa.wakes(), wb.wakes()), (2, 0));
    // Given up after the yield: the wake goes on to `b`.
    drop(a);
    assert_eq!(wb.wakes(), 1);
}

#[test]
fn nested_budgets_restore_the_outer_one() {
    let w = CountingWaker::new().waker();
    let mut cx = Context::from_waker(&w);
    let ((), outer_forced) = coop::with_budget(5, || {
        assert!(coop::poll_proceed(&mut cx).is_ready());
        let ((), inner_forced) = coop::with_budget(1, || {
            assert!(coop::poll_proceed(&mut cx).is_ready());
            assert!(coop::poll_proceed(&mut cx).is_pending());
        });
        assert!(inner_forced);
        // Four of the outer five are left, and its flag is still clear.
        for _ in 0..4 {
            assert!(coop::poll_proceed(&mut cx).is_ready());
        }
        assert!(!coop::has_budget_remaining());
    });
    assert!(!outer_forced, "the inner forced yield leaked out");
    assert!(coop::has_budget_remaining(), "unconstrained again");
}

#[test]
fn a_panic_inside_with_budget_restores_the_budget() {
    let caught = std::panic::catch_unwind(|| coop::with_budget(0, || panic!("task panicked")));
    assert!(caught.is_err());
    assert!(coop::has_budget_remaining());
}

#[test]
fn unconstrained_ignores_the_budget() {
    let queue = WaitQueue::new();
    let waker = CountingWaker::new();
    let fut = coop::unconstrained(async {
        for _ in 0..1_000 {
            queue.wait_event(|| true).await.unwrap();
        }
        coop::has_budget_remaining()
    });
    let (poll, forced) = coop::with_budget(1, || {
        let poll = poll_once(fut, &waker.waker());
        assert!(coop::has_budget_remaining(), "the outer unit is untouched");
        poll
    });
    assert_eq!(poll, Poll::Ready(true));
    assert!(!forced);
    assert_eq!(waker.wakes(), 0);
}

#[test]
fn consume_budget_yields_once_the_budget_is_gone() {
    let waker = CountingWaker::new();
    let steps = Cell::new(0);
    let mut task = pin!(async {
        for _ in 0..10 {
            coop::consume_budget().await;
            steps.set(steps.get() + 1);
        }
    });
    let mut polls = 0;
    loop {
        polls += 1;
        let (poll, forced) = coop::with_budget(4, || {
            task.as_mut().poll(&mut Context::from_waker(&waker.waker()))
        });
        if poll.is_ready() {
            assert!(!forced);
            break;
        }
        assert!(forced);
        assert_eq!(steps.get(), 4 * polls);
    }
    assert_eq!((polls, waker.wakes()), (3, 2));
}

/// A run queue: a task's waker pushes its id.
struct TaskWaker {
    id: usize,
    run_queue: Arc<Mutex<VecDeque<usize>>>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.run_queue.lock().unwrap().push_back(self.id);
    }
}

#[test]
fn a_spinning_task_cannot_starve_another() {
    const SPIN: usize = 1_000_000;
    let queue = WaitQueue::new();
    let spins = AtomicUsize::new(0);
    let other_saw = AtomicUsize::new(usize::MAX);
    let spinner = async {
        // Always ready: without a budget, one poll runs all SPIN waits.
        for _ in 0..SPIN {
            queue.wait_event(|| true).await.unwrap();
            spins.fetch_add(1, Ordering::SeqCst);
        }
    };
    let other = async {
        other_saw.store(spins.load(Ordering::SeqCst), Ordering::SeqCst);
    };
    let mut tasks: Vec<Option<Pin<Box<dyn Future<Output = ()> + '_>>>> =
        vec![Some(Box::pin(spinner)), Some(Box::pin(other))];
    let run_queue = Arc::new(Mutex::new(VecDeque::from([0, 1])));
    let mut forced_yields = 0;
    // The tiny executor: each task poll gets tokio's 128 units.
    loop {
        let next = run_queue.lock().unwrap().pop_front();
        let Some(id) = next else { break };
        let Some(task) = tasks[id].as_mut() else {
            continue;
        };
        let waker = Waker::from(Arc::new(TaskWaker {
            id,
            run_queue: run_queue.clone(),
        }));
        let (poll, forced) =
            coop::with_budget(128, || task.as_mut().poll(&mut Context::from_waker(&waker)));
        forced_yields += usize::from(forced);
        if poll.is_ready() {
            tasks[id] = None;
        }
    }
    assert!(tasks.iter().all(Option::is_none));
    assert_eq!(spins.load(Ordering::SeqCst), SPIN);
    assert_eq!(
        other_saw.load(Ordering::SeqCst),
        128,
        "the other task ran only after the spinner's first time slice"
    );
    assert_eq!(forced_yields, SPIN / 128);
}
