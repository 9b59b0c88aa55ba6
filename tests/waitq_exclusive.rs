//! Exclusive waiters of `waitq` (anchors §9 rules 5–9): one-vs-all wakes, FIFO order, no wake absorbed by a woken-but-not-run waiter, hand-off on cancellation, re-queue at the tail.
mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use support::{poll_with, CountingWaker, ManualClock, ManualSleep};
use tokio_test::{assert_pending, assert_ready, task};
use waitq::{Clock, SignalKind, SignalSource, TaskSignals, TaskState, WaitEvent, WaitQueue};

fn never() -> bool {
    false
}

/// Hand-polled waiters that never succeed, each with its own counting waker,
/// registered in the given order (`true` = exclusive).
struct Waiters<'q> {
    futs: Vec<WaitEvent<'q, fn() -> bool>>,
    wakers: Vec<Arc<CountingWaker>>,
}

impl<'q> Waiters<'q> {
    fn register(queue: &'q WaitQueue, exclusive: &[bool]) -> Self {
        let mut waiters = Waiters {
            futs: Vec::new(),
            wakers: Vec::new(),
        };
        for &excl in exclusive {
            let cond: fn() -> bool = never;
            let mut fut = if excl {
                queue.wait_event_exclusive(cond)
            } else {
                queue.wait_event(cond)
            };
            let waker = CountingWaker::new();
            assert!(poll_with(&mut fut, &waker.waker()).is_pending());
            waiters.futs.push(fut);
            waiters.wakers.push(waker);
        }
        assert_eq!(queue.len(), exclusive.len());
        waiters
    }

    /// How often each waiter's waker fired, in registration order.
    fn fired(&self) -> Vec<usize> {
        self.wakers.iter().map(|w| w.wakes()).collect()
    }
}

/// Takes one token if there is one: the condition of a resource waiter.
fn take(tokens: &AtomicUsize) -> bool {
    tokens
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

// ===== rule 5: wake_up = all non-exclusive + one exclusive =====

/// N1, E1, N2, E2, N3, E3.
const MIXED: [bool; 6] = [false, true, false, true, false, true];

#[test]
fn rule05_wake_up_wakes_all_shared_and_one_exclusive() {
    // Breaks if wake_up wakes more (or fewer) than one exclusive waiter, or skips a non-exclusive one.
    let queue = WaitQueue::new();
    let w = Waiters::register(&queue, &MIXED);
    assert_eq!(queue.wake_up(), 4, "N1..N3 and E1, all counted");
    assert_eq!(w.fired(), vec![1, 1, 1, 0, 1, 0]);
    assert_eq!(queue.len(), 2, "E2 and E3 stay linked");

    assert_eq!(queue.wake_up_nr(2), 2);
    assert_eq!(w.fired(), vec![1, 1, 1, 1, 1, 1]);
    assert_eq!(queue.len(), 0);
    assert_eq!(queue.wake_up(), 0);
}

#[test]
fn rule05_wake_up_nr_limits_only_exclusive_waiters() {
    // Breaks if non-exclusive waiters use up the nr budget, or if nr is not honoured.
    let queue = WaitQueue::new();
    let w = Waiters::register(&queue, &MIXED);
    assert_eq!(queue.wake_up_nr(2), 5, "N1..N3, E1 and E2");
    assert_eq!(w.fired(), vec![1, 1, 1, 1, 1, 0]);
    assert_eq!(queue.len(), 1);
}

#[test]
fn rule05_wake_up_all_wakes_exclusive_waiters_too() {
    // Breaks if a broadcast stops after the first exclusive waiter.
    let queue = WaitQueue::new();
    let w = Waiters::register(&queue, &MIXED);
    assert_eq!(queue.wake_up_all(), 6);
    assert_eq!(w.fired(), vec![1; 6]);
    assert_eq!(queue.len(), 0);

    // wake_up_nr(0) means "no limit", like wake_up_all.
    let w = Waiters::register(&queue, &MIXED);
    assert_eq!(queue.wake_up_nr(0), 6);
    assert_eq!(w.fired(), vec![1; 6]);
}

// ===== rule 6: exclusive FIFO =====

#[test]
fn rule06_exclusive_waiters_are_woken_in_registration_order() {
    // Breaks if exclusive wakes go LIFO or in any order other than first registration (first poll).
    let queue = WaitQueue::new();
    let cond: fn() -> bool = never;
    // Created in reverse, registered (first polled) in order E1, E2, E3.
    let mut e3 = queue.wait_event_exclusive(cond);
    let mut e2 = queue.wait_event_exclusive(cond);
    let mut e1 = queue.wait_event_exclusive(cond);
    let wakers: Vec<_> = (0..3).map(|_| CountingWaker::new()).collect();
    assert!(poll_with(&mut e1, &wakers[0].waker()).is_pending());
    assert!(poll_with(&mut e2, &wakers[1].waker()).is_pending());
    assert!(poll_with(&mut e3, &wakers[2].waker()).is_pending());
    let fired = || wakers.iter().map(|w| w.wakes()).collect::<Vec<_>>();

    assert_eq!(queue.wake_up(), 1);
    assert_eq!(fired(), vec![1, 0, 0]);
    assert_eq!(queue.wake_up(), 1);
    assert_eq!(fired(), vec![1, 1, 0]);
    assert_eq!(queue.wake_up(), 1);
    assert_eq!(fired(), vec![1, 1, 1]);
    assert_eq!(queue.wake_up(), 0);
}

#[test]
fn rule06_fifo_holds_across_many_exclusive_waiters() {
    // Breaks if any wake_up skips ahead of an older exclusive waiter.
    let queue = WaitQueue::new();
    let w = Waiters::register(&queue, &[true; 10]);
    for i in 0..10 {
        assert_eq!(queue.wake_up(), 1);
        let expected: Vec<usize> = (0..10).map(|j| usize::from(j <= i)).collect();
        assert_eq!(w.fired(), expected, "after wake {i}");
    }
}

// ===== rule 7: a woken, not yet run exclusive waiter absorbs no second wake =====

#[test]
fn rule07_second_wake_goes_to_next_exclusive_before_first_runs() {
    // Breaks if a woken exclusive entry stays linked until its task runs: the second wake would hit it again.
    let queue = WaitQueue::new();
    let tokens = AtomicUsize::new(0);
    let mut e1 = task::spawn(queue.wait_event_exclusive(|| take(&tokens)));
    let mut e2 = task::spawn(queue.wait_event_exclusive(|| take(&tokens)));
    assert_pending!(e1.poll());
    assert_pending!(e2.poll());

    tokens.store(2, Ordering::SeqCst);
    assert_eq!(queue.wake_up(), 1);
    assert_eq!(queue.wake_up(), 1);
    assert!(e1.is_woken());
    assert!(e2.is_woken());
    assert_eq!(queue.len(), 0);
    assert_eq!(queue.wake_up(), 0);

    assert_ready!(e1.poll()).unwrap();
    assert_ready!(e2.poll()).unwrap();
    assert_eq!(tokens.load(Ordering::SeqCst), 0);
}

// ===== rule 8: hand-off =====

#[test]
fn rule08_dropping_a_picked_exclusive_waiter_hands_the_wake_on() {
    // Breaks without the hand-off: E1's wake would be swallowed and E2 would sleep with the token available.
    let queue = WaitQueue::new();
    let tokens = AtomicUsize::new(0);
    let mut e1 = task::spawn(queue.wait_event_exclusive(|| take(&tokens)));
    let mut e2 = task::spawn(queue.wait_event_exclusive(|| take(&tokens)));
    assert_pending!(e1.poll());
    assert_pending!(e2.poll());

    tokens.store(1, Ordering::SeqCst);
    assert_eq!(queue.wake_up(), 1);
    assert!(e1.is_woken());
    assert!(!e2.is_woken());
    drop(e1); // never polled again
    assert!(e2.is_woken(), "the wake was handed to E2");
    assert_ready!(e2.poll()).unwrap();
    assert_eq!(queue.len(), 0);
}

#[test]
fn rule08_hand_off_with_no_other_waiter_stores_nothing() {
    // Breaks if an unconsumed hand-off is stored as a permit for a later waiter.
    let queue = WaitQueue::new();
    let mut e1 = task::spawn(queue.wait_event_exclusive(never));
    assert_pending!(e1.poll());
    assert_eq!(queue.wake_up(), 1);
    drop(e1);
    assert_eq!(queue.len(), 0);
    assert!(!queue.waitqueue_active());

    let mut e3 = task::spawn(queue.wait_event_exclusive(never));
    assert_pending!(e3.poll());
    assert!(!e3.is_woken(), "nothing was stored for the next waiter");
    assert_eq!(queue.len(), 1);
}

#[test]
fn rule08_dropping_an_unpicked_exclusive_waiter_wakes_nobody() {
    // Breaks if every exclusive drop hands off (a spurious wake), not only one picked by a wake.
    let queue = WaitQueue::new();
    let w = Waiters::register(&queue, &[true, true]);
    let mut futs = w.futs.into_iter();
    drop(futs.next());
    assert_eq!(w.wakers[1].wakes(), 0);
    assert_eq!(queue.len(), 1);
    drop(futs);
}

#[test]
fn rule08_interrupted_picked_exclusive_waiter_hands_the_wake_on() {
    // Breaks if an exclusive waiter picked by a wake and then interrupted (cond false) keeps the wake.
    let queue = WaitQueue::new();
    let signals = TaskSignals::new();
    let mut e1 = task::spawn(queue.wait_event_interruptible_exclusive(&signals, never));
    let mut e2 = task::spawn(queue.wait_event_exclusive(never));
    assert_pending!(e1.poll());
    assert_pending!(e2.poll());

    assert_eq!(queue.wake_up(), 1);
    signals.interrupt();
    let err = assert_ready!(e1.poll()).unwrap_err();
    assert!(!err.is_closed());
    assert!(e2.is_woken(), "the wake was handed to E2");
    assert_eq!(queue.len(), 0);
}

#[test]
fn rule08_killed_picked_exclusive_waiter_hands_the_wake_on() {
    // Breaks if an exclusive killable waiter picked by a wake and then killed (cond false) keeps the wake.
    let queue = WaitQueue::new();
    let signals = TaskSignals::new();
    let mut e1 = task::spawn(queue.wait_event_killable_exclusive(&signals, never));
    let mut e2 = task::spawn(queue.wait_event_exclusive(never));
    assert_pending!(e1.poll());
    assert_pending!(e2.poll());

    assert_eq!(queue.wake_up(), 1);
    signals.kill();
    let err = assert_ready!(e1.poll()).unwrap_err();
    assert!(!err.is_closed());
    assert!(e2.is_woken(), "the wake was handed to E2");
}

#[test]
fn rule08_interrupted_unpicked_exclusive_waiter_wakes_nobody() {
    // Breaks if an interrupted waiter that no wake picked hands off anyway (a spurious wake).
    let queue = WaitQueue::new();
    let signals = TaskSignals::new();
    let mut e1 = task::spawn(queue.wait_event_interruptible_exclusive(&signals, never));
    let mut e2 = task::spawn(queue.wait_event_exclusive(never));
    assert_pending!(e1.poll());
    assert_pending!(e2.poll());

    signals.interrupt();
    assert!(e1.is_woken());
    assert!(assert_ready!(e1.poll()).is_err());
    assert!(!e2.is_woken());
    assert_eq!(queue.len(), 1);
}

/// A signal source that, once armed, wakes the queue (picking the oldest
/// exclusive waiter, i.e. the one being polled) and then reports a signal:
/// the wake lands between the waiter's "still linked" check and its unlink.
struct WakeThenInterrupt<'q> {
    queue: &'q WaitQueue,
    armed: AtomicBool,
    /// Made true just before the wake (the setter's "change the state").
    cond: Option<&'q AtomicBool>,
    woken: AtomicUsize,
}

impl SignalSource for WakeThenInterrupt<'_> {
    fn poll_signal(&self, _: TaskState, _: &mut Context<'_>) -> Poll<SignalKind> {
        if !self.armed.swap(false, Ordering::SeqCst) {
            return Poll::Pending;
        }
        if let Some(cond) = self.cond {
            cond.store(true, Ordering::SeqCst);
        }
        self.woken.store(self.queue.wake_up(), Ordering::SeqCst);
        Poll::Ready(SignalKind::Interrupt)
    }
}

#[test]
fn rule08_wake_racing_an_interrupt_in_the_same_poll_is_handed_on() {
    // Breaks if the failure path does not notice its entry was taken by a wake meanwhile (no hand-off).
    let queue = WaitQueue::new();
    let source = WakeThenInterrupt {
        queue: &queue,
        armed: AtomicBool::new(false),
        cond: None,
        woken: AtomicUsize::new(0),
    };
    let mut e1 = task::spawn(queue.wait_event_interruptible_exclusive(&source, never));
    let mut e2 = task::spawn(queue.wait_event_exclusive(never));
    assert_pending!(e1.poll());
    assert_pending!(e2.poll());

    source.armed.store(true, Ordering::SeqCst);
    assert!(assert_ready!(e1.poll()).is_err());
    assert_eq!(
        source.woken.load(Ordering::SeqCst),
        1,
        "the racing wake picked E1"
    );
    assert!(e2.is_woken(), "and E1 handed it to E2");
    assert_eq!(queue.len(), 0);
}

#[test]
fn rule08_no_hand_off_when_the_condition_turns_true() {
    // Breaks if a waiter that ends successfully still hands off (the condition must win over the signal).
    let ready = AtomicBool::new(false);
    let queue = WaitQueue::new();
    let source = WakeThenInterrupt {
        queue: &queue,
        armed: AtomicBool::new(false),
        cond: Some(&ready),
        woken: AtomicUsize::new(0),
    };
    let mut e1 = task::spawn(
        queue.wait_event_interruptible_exclusive(&source, || ready.load(Ordering::SeqCst)),
    );
    let mut e2 = task::spawn(queue.wait_event_exclusive(never));
    assert_pending!(e1.poll());
    assert_pending!(e2.poll());

    source.armed.store(true, Ordering::SeqCst);
    assert_ready!(e1.poll()).unwrap();
    assert_eq!(source.woken.load(Ordering::SeqCst), 1);
    assert!(!e2.is_woken(), "E1 consumed the wake");
    assert_eq!(queue.len(), 1);
}

/// `inner`, abandoned (dropped) once `sleep` fires: how a caller times out an
/// exclusive wait with its executor's timer.
struct GiveUpAt<F> {
    sleep: ManualSleep,
    inner: Option<F>,
}

impl<F: Future + Unpin> Future for GiveUpAt<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if Pin::new(&mut self.sleep).poll(cx).is_ready() {
            self.inner = None;
            return Poll::Ready(None);
        }
        let inner = self.inner.as_mut().expect("polled after completion");
        Pin::new(inner).poll(cx).map(Some)
    }
}

#[test]
fn rule08_timed_out_picked_exclusive_waiter_hands_the_wake_on() {
    // Breaks without the hand-off: the wake E1 was picked for dies with it when its timer fires.
    let queue = WaitQueue::new();
    let clock = ManualClock::new();
    let tokens = AtomicUsize::new(0);
    let mut e1 = task::spawn(GiveUpAt {
        sleep: clock.sleep_until(clock.now() + Duration::from_millis(10)),
        inner: Some(queue.wait_event_exclusive(|| take(&tokens))),
    });
    let mut e2 = task::spawn(queue.wait_event_exclusive(|| take(&tokens)));
    assert_pending!(e1.poll());
    assert_pending!(e2.poll());

    tokens.store(1, Ordering::SeqCst);
    assert_eq!(queue.wake_up(), 1);
    clock.advance(Duration::from_millis(10)); // the deadline lands before E1 runs
    assert!(e1.is_woken());
    assert!(assert_ready!(e1.poll()).is_none(), "E1 timed out");
    assert!(e2.is_woken(), "the wake was handed to E2");
    assert_ready!(e2.poll()).unwrap();
    assert_eq!(tokens.load(Ordering::SeqCst), 0);
}

// ===== rule 9: re-queue at the tail =====

#[test]
fn rule09_spuriously_woken_exclusive_waiter_requeues_at_the_tail() {
    // Breaks if the re-registered waiter keeps (or jumps to) the head: the next wake would hit it again.
    let queue = WaitQueue::new();
    let w = Waiters::register(&queue, &[true, true]);
    let mut futs = w.futs;
    assert_eq!(queue.wake_up(), 1);
    assert_eq!(w.wakers[0].wakes(), 1);
    assert!(poll_with(&mut futs[0], &w.wakers[0].waker()).is_pending());
    assert_eq!(queue.len(), 2, "E1 is linked again");

    assert_eq!(queue.wake_up(), 1);
    assert_eq!(
        w.wakers.iter().map(|w| w.wakes()).collect::<Vec<_>>(),
        vec![1, 1],
        "the next wake went to E2"
    );
    assert_eq!(queue.wake_up(), 1);
    assert_eq!(w.wakers[0].wakes(), 2, "then back to E1");
}

#[test]
fn rule09_exclusive_waiter_whose_token_was_stolen_goes_behind_the_next() {
    // Breaks if E1, robbed by a fast-path caller, re-queues ahead of E2.
    let queue = WaitQueue::new();
    let tokens = AtomicUsize::new(0);
    let (w1, w2) = (CountingWaker::new(), CountingWaker::new());
    let mut e1 = queue.wait_event_exclusive(|| take(&tokens));
    let mut e2 = queue.wait_event_exclusive(|| take(&tokens));
    assert!(poll_with(&mut e1, &w1.waker()).is_pending());
    assert!(poll_with(&mut e2, &w2.waker()).is_pending());

    tokens.store(1, Ordering::SeqCst);
    assert_eq!(queue.wake_up(), 1);
    assert_eq!(w1.wakes(), 1);
    // A caller that never slept takes the token on its fast path.
    let mut thief = queue.wait_event_exclusive(|| take(&tokens));
    assert!(poll_with(&mut thief, &CountingWaker::new().waker()).is_ready());
    assert_eq!(queue.len(), 1, "the thief never registered");

    assert!(
        poll_with(&mut e1, &w1.waker()).is_pending(),
        "E1 found nothing"
    );
    assert_eq!(queue.len(), 2);

    tokens.store(1, Ordering::SeqCst);
    assert_eq!(queue.wake_up(), 1);
    assert_eq!((w1.wakes(), w2.wakes()), (1, 1), "E2 is now first in line");
    assert!(poll_with(&mut e2, &w2.waker()).is_ready());

    tokens.store(1, Ordering::SeqCst);
    assert_eq!(queue.wake_up(), 1);
    assert_eq!(w1.wakes(), 2);
    assert!(poll_with(&mut e1, &w1.waker()).is_ready());
    assert_eq!(queue.len(), 0);
}

// Rule 18: a deadline and a wake landing together on an exclusive timed
// waiter. If it reports TimedOut, the wake it was picked for goes to the
// next exclusive waiter; without the hand-off E2 would sleep forever.
#[test]
fn rule18_exclusive_timeout_after_pick_hands_the_wake_on() {
    let queue = WaitQueue::new();
    let clock = ManualClock::new();
    let e1_waker = CountingWaker::new();
    let e2_waker = CountingWaker::new();
    let mut e1 = queue.wait_event_exclusive_timeout(&clock, Duration::from_millis(100), never);
    let mut e2 = queue.wait_event_exclusive(never);
    assert!(poll_with(&mut e1, &e1_waker.waker()).is_pending());
    assert!(poll_with(&mut e2, &e2_waker.waker()).is_pending());
    assert_eq!(queue.wake_up(), 1); // picks E1...
    clock.advance(Duration::from_millis(100)); // ...and its deadline lands too
    let res = poll_with(&mut e1, &e1_waker.waker());
    assert!(
        matches!(res, Poll::Ready(Err(ref e)) if !e.is_closed()),
        "{res:?}"
    );
    assert_eq!(e2_waker.wakes(), 1, "the wake E1 gave up was handed to E2");
    assert_eq!(queue.len(), 0, "the hand-off unlinked E2 as it woke it");
}

// Rule 18, the other outcome: the condition is true when the deadline and
// the wake land together, so the waiter succeeds with Ok(ZERO) and keeps
// (consumes) the wake: nobody else is woken.
#[test]
fn rule18_exclusive_timeout_true_condition_consumes_the_wake() {
    let queue = WaitQueue::new();
    let clock = ManualClock::new();
    let ready = AtomicBool::new(false);
    let e2_waker = CountingWaker::new();
    let mut e1 = task::spawn(queue.wait_event_exclusive_timeout(
        &clock,
        Duration::from_millis(100),
        || ready.load(Ordering::SeqCst),
    ));
    let mut e2 = queue.wait_event_exclusive(never);
    assert_pending!(e1.poll());
    assert!(poll_with(&mut e2, &e2_waker.waker()).is_pending());
    ready.store(true, Ordering::SeqCst);
    assert_eq!(queue.wake_up(), 1);
    clock.advance(Duration::from_millis(150));
    assert_eq!(assert_ready!(e1.poll()).unwrap(), Duration::ZERO);
    assert_eq!(e2_waker.wakes(), 0);
}
