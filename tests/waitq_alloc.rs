//! "No allocation per wait after warm-up": a counting global allocator
//! watches register / wake / re-poll / cancel cycles, async and blocking.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use waitq::{TaskSignals, WaitQueue};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocs;

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

fn poll<F: Future + Unpin>(fut: &mut F, cx: &mut Context<'_>) -> Poll<F::Output> {
    Pin::new(fut).poll(cx)
}

/// One cycle of every path a wait takes: register, wake, re-poll to
/// completion; register and cancel; exclusive hand-off; interruptible.
fn cycle(queue: &WaitQueue, signals: &TaskSignals, flag: &AtomicBool, cx: &mut Context<'_>) {
    flag.store(false, Ordering::SeqCst);
    let mut shared = queue.wait_event(|| flag.load(Ordering::SeqCst));
    let mut first = queue.wait_event_exclusive(|| flag.load(Ordering::SeqCst));
    let mut second = queue.wait_event_exclusive(|| flag.load(Ordering::SeqCst));
    let mut intr = queue.wait_event_interruptible(signals, || flag.load(Ordering::SeqCst));
    assert!(poll(&mut shared, cx).is_pending());
    assert!(poll(&mut first, cx).is_pending());
    assert!(poll(&mut second, cx).is_pending());
    assert!(poll(&mut intr, cx).is_pending());
    flag.store(true, Ordering::SeqCst);
    assert_eq!(queue.wake_up(), 3); // shared, intr and `first`
    drop(first); // hands the wake to `second`
    assert!(poll(&mut shared, cx).is_ready());
    assert!(poll(&mut second, cx).is_ready());
    assert!(poll(&mut intr, cx).is_ready());
    assert_eq!(queue.len(), 0);
}

#[test]
fn waits_do_not_allocate_after_warm_up() {
    let queue = WaitQueue::new();
    let signals = TaskSignals::new();
    let flag = AtomicBool::new(false);
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    // Warm-up: the slab and the signal waker list grow to their peak here.
    for _ in 0..4 {
        cycle(&queue, &signals, &flag, &mut cx);
    }
    let before = allocs();
    for _ in 0..1_000 {
        cycle(&queue, &signals, &flag, &mut cx);
    }
    assert_eq!(allocs() - before, 0, "a wait allocated after warm-up");
}

#[test]
fn blocking_waits_do_not_allocate_after_warm_up() {
    let queue = WaitQueue::new();
    queue.blocking_wait_event(|| true).unwrap(); // warm-up: the thread's waker
    let mut polls = 0;
    queue
        .blocking_wait_event(|| {
            polls += 1;
            polls > 1
        })
        .unwrap();
    let before = allocs();
    for _ in 0..1_000 {
        let mut polls = 0;
        // False once, so the thread registers, then true on the re-check.
        queue
            .blocking_wait_event(|| {
                polls += 1;
                polls > 1
            })
            .unwrap();
    }
    assert_eq!(
        allocs() - before,
        0,
        "a blocking wait allocated after warm-up"
    );
}

/// The first waiter's slot lives in the queue itself: a fresh queue that
/// never has two waiters at once (a join queue, a oneshot channel) never
/// allocates, not even at its first sleep. A second waiter at once spills
/// to the slab, which allocates.
#[test]
fn a_fresh_queue_sleeps_one_waiter_without_allocating() {
    let flag = AtomicBool::new(false);
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let before = allocs();
    for _ in 0..100 {
        let queue = WaitQueue::new();
        let mut wait = queue.wait_event(|| flag.load(Ordering::SeqCst));
        assert!(poll(&mut wait, &mut cx).is_pending());
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.wake_up(), 1);
        drop(wait);
        let mut exclusive = queue.wait_event_exclusive(|| flag.load(Ordering::SeqCst));
        assert!(poll(&mut exclusive, &mut cx).is_pending());
        drop(exclusive); // cancelled: unlinked
        assert_eq!(queue.len(), 0);
    }
    assert_eq!(allocs() - before, 0, "one waiter at a time allocated");

    let queue = WaitQueue::new();
    let mut first = queue.wait_event(|| flag.load(Ordering::SeqCst));
    let mut second = queue.wait_event(|| flag.load(Ordering::SeqCst));
    assert!(poll(&mut first, &mut cx).is_pending());
    let before = allocs();
    assert!(poll(&mut second, &mut cx).is_pending());
    assert!(allocs() - before > 0, "the second waiter needs the slab");
    assert_eq!(queue.wake_up(), 2);
}
