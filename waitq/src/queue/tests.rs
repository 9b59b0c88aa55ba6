//! Wake walks across several batches (the batch holds 2 under `cfg(test)`).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::{TaskState, WaitEntry, WaitQueue, WakeDecision};

#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn pending<F: std::future::Future + Unpin>(fut: &mut F, waker: &Waker) {
    let poll = std::pin::Pin::new(fut).poll(&mut Context::from_waker(waker));
    assert!(poll.is_pending());
}

#[test]
fn broadcast_spans_batches_and_wakes_everyone_once() {
    assert_eq!(crate::wake_batch::BATCH, 2);
    let queue = WaitQueue::new();
    let counts: Vec<Arc<Count>> = (0..7).map(|_| Arc::default()).collect();
    let mut futs: Vec<_> = (0..7)
        .map(|i| {
            let never: fn() -> bool = || false;
            if i % 2 == 0 {
                queue.wait_event(never)
            } else {
                queue.wait_event_exclusive(never)
            }
        })
        .collect();
    for (fut, count) in futs.iter_mut().zip(&counts) {
        pending(fut, &Waker::from(count.clone()));
    }
    assert_eq!(queue.wake_up_all(), 7);
    assert!(counts.iter().all(|c| c.0.load(Ordering::SeqCst) == 1));
    assert_eq!(queue.len(), 0);
}

#[test]
fn skipped_entries_survive_batch_restarts() {
    let queue = WaitQueue::new();
    let count = Arc::new(Count::default());
    let waker = Waker::from(count.clone());
    let signals = crate::TaskSignals::new();
    // Interleave uninterruptible (skipped by wake_up_interruptible_all) and
    // interruptible waiters, more than a batch of each.
    let mut plain: Vec<_> = (0..5).map(|_| queue.wait_event(|| false)).collect();
    let mut intr: Vec<_> = (0..5)
        .map(|_| queue.wait_event_interruptible(&signals, || false))
        .collect();
    for (p, i) in plain.iter_mut().zip(intr.iter_mut()) {
        pending(p, &waker);
        pending(i, &waker);
    }
    assert_eq!(queue.wake_up_interruptible_all(), 5);
    assert_eq!(queue.len(), 5);
    assert_eq!(queue.wake_up_all(), 5);
    assert_eq!(count.0.load(Ordering::SeqCst), 10);
}

#[test]
fn custom_function_asked_once_per_walk_across_batches() {
    let queue = WaitQueue::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let mut entries: Vec<_> = (0..6)
        .map(|i| {
            let calls = calls.clone();
            WaitEntry::with_func(&queue, move |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                if i % 2 == 0 {
                    WakeDecision::Wake
                } else {
                    WakeDecision::Skip
                }
            })
        })
        .collect();
    for e in &mut entries {
        queue.prepare_to_wait(e, TaskState::Uninterruptible);
    }
    assert_eq!(queue.wake_up_all(), 3);
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    assert_eq!(queue.len(), 3);
}

#[test]
fn close_ends_more_than_a_batch() {
    let queue = WaitQueue::new();
    let count = Arc::new(Count::default());
    let waker = Waker::from(count.clone());
    let mut futs: Vec<_> = (0..5).map(|_| queue.wait_event(|| false)).collect();
    for f in &mut futs {
        pending(f, &waker);
    }
    assert_eq!(queue.close(), 5);
    assert_eq!(count.0.load(Ordering::SeqCst), 5);
    for f in &mut futs {
        let poll = std::pin::Pin::new(f).poll(&mut Context::from_waker(&waker));
        assert!(matches!(poll, Poll::Ready(Err(e)) if e.is_closed()));
    }
    assert_eq!(queue.wake_up_all(), 0);
}

#[test]
fn exclusive_budget_counts_only_exclusive_across_batches() {
    let queue = WaitQueue::new();
    let count = Arc::new(Count::default());
    let waker = Waker::from(count.clone());
    let mut shared: Vec<_> = (0..3).map(|_| queue.wait_event(|| false)).collect();
    let mut excl: Vec<_> = (0..4)
        .map(|_| queue.wait_event_exclusive(|| false))
        .collect();
    shared.iter_mut().for_each(|f| pending(f, &waker));
    excl.iter_mut().for_each(|f| pending(f, &waker));
    assert_eq!(queue.wake_up_nr(3), 6);
    assert_eq!(queue.len(), 1);
}

#[test]
fn panicking_custom_function_does_not_lose_the_other_wakes() {
    let queue = WaitQueue::new();
    let count = Arc::new(Count::default());
    let waker = Waker::from(count.clone());
    let mut before: Vec<_> = (0..3).map(|_| queue.wait_event(|| false)).collect();
    before.iter_mut().for_each(|f| pending(f, &waker));
    let mut bad = WaitEntry::with_func(&queue, |_| panic!("bad wake function"));
    queue.prepare_to_wait(&mut bad, TaskState::Uninterruptible);
    let mut after: Vec<_> = (0..3).map(|_| queue.wait_event(|| false)).collect();
    after.iter_mut().for_each(|f| pending(f, &waker));
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| queue.wake_up_all()));
    assert!(res.is_err(), "the panic reaches the waker's caller");
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        6,
        "every other waiter woken"
    );
    assert_eq!(
        queue.len(),
        1,
        "the entry whose function panicked stays queued"
    );
    drop(bad);
    assert_eq!(queue.len(), 0);
    assert_eq!(queue.wake_up_all(), 0, "the queue is usable afterwards");
}
