//! Rules 22 (poll-key filtering) and 23 (custom wake functions).
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};

use support::{poll_with, CountingWaker};
use tokio_test::{assert_pending, assert_ready, task};
use waitq::{TaskState, WaitEntry, WaitQueue, WakeDecision, WakeInfo, WakeMode};

const READ: u32 = 0b01;
const WRITE: u32 = 0b10;

/// A wake function that always answers `decision` and counts its calls.
fn counting(
    decision: WakeDecision,
    calls: &Arc<AtomicUsize>,
) -> impl Fn(&WakeInfo) -> WakeDecision + Send + Sync + 'static {
    let calls = calls.clone();
    move |_| {
        calls.fetch_add(1, Ordering::SeqCst);
        decision
    }
}

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

// ===== rule 22: poll-key filtering =====

// Breaks if `wake_up_poll` ignored the key, or a skipped waiter used up the exclusive slot.
#[test]
fn rule22_wake_up_poll_skips_non_matching_exclusive_waiter() {
    let queue = WaitQueue::new();
    let mut r = task::spawn(queue.wait_event_key_exclusive(READ, || false));
    let mut w = task::spawn(queue.wait_event_key_exclusive(WRITE, || false));
    assert_pending!(r.poll());
    assert_pending!(w.poll());

    assert_eq!(queue.wake_up_poll(WRITE), 1);
    assert!(w.is_woken());
    assert!(!r.is_woken());
    assert_eq!(queue.len(), 1, "R is still queued");

    assert_eq!(queue.wake_up_poll(READ), 1);
    assert!(r.is_woken());
    assert_eq!(queue.len(), 0);
}

// Breaks if a waiter without a mask were filtered by a keyed wake.
#[test]
fn rule22_waiter_without_mask_is_woken_by_any_key() {
    let queue = WaitQueue::new();
    let mut plain = task::spawn(queue.wait_event(|| false));
    let mut zero = task::spawn(queue.wait_event_key(0, || false));
    let mut read = task::spawn(queue.wait_event_key(READ, || false));
    assert_pending!(plain.poll());
    assert_pending!(zero.poll());
    assert_pending!(read.poll());
    assert_eq!(queue.wake_up_poll(WRITE), 2);
    assert!(plain.is_woken());
    assert!(zero.is_woken());
    assert!(!read.is_woken());
    assert_eq!(queue.len(), 1);
}

// Breaks if a wake without a key (`wake_up`, key 0) did not match masked waiters.
#[test]
fn rule22_keyless_wake_matches_masked_waiters() {
    let queue = WaitQueue::new();
    let mut r = task::spawn(queue.wait_event_key(READ, || false));
    let mut w = task::spawn(queue.wait_event_key_exclusive(WRITE, || false));
    assert_pending!(r.poll());
    assert_pending!(w.poll());
    assert_eq!(queue.wake_up(), 2);
    assert!(r.is_woken() && w.is_woken());
}

// Breaks if masks were compared for equality rather than for a shared bit.
#[test]
fn rule22_masks_match_on_any_shared_bit() {
    let queue = WaitQueue::new();
    let mut rw = task::spawn(queue.wait_event_key(READ | WRITE, || false));
    let mut r = task::spawn(queue.wait_event_key(READ, || false));
    assert_pending!(rw.poll());
    assert_pending!(r.poll());
    assert_eq!(queue.wake_up_poll(WRITE | 0b100), 1);
    assert!(rw.is_woken());
    assert!(!r.is_woken());
}

// Breaks if non-matching non-exclusive waiters were counted or woken.
#[test]
fn rule22_non_matching_shared_waiters_are_not_counted() {
    let queue = WaitQueue::new();
    let mut futs: Vec<_> = (0..6)
        .map(|i| task::spawn(queue.wait_event_key(if i % 2 == 0 { READ } else { WRITE }, || false)))
        .collect();
    for f in &mut futs {
        assert_pending!(f.poll());
    }
    assert_eq!(queue.wake_up_poll(READ), 3);
    for (i, f) in futs.iter().enumerate() {
        assert_eq!(f.is_woken(), i % 2 == 0, "waiter {i}");
    }
    assert_eq!(queue.len(), 3);
}

// Breaks if a keyed waiter woken by a matching key with its condition false lost its mask.
#[test]
fn rule22_requeued_waiter_keeps_its_mask() {
    let queue = WaitQueue::new();
    let mut r = task::spawn(queue.wait_event_key_exclusive(READ, || false));
    assert_pending!(r.poll());
    assert_eq!(queue.wake_up_poll(READ), 1);
    assert_pending!(r.poll());
    assert_eq!(queue.wake_up_poll(WRITE), 0);
    assert!(!r.is_woken());
    assert_eq!(queue.wake_up_poll(READ), 1);
}

// Breaks if `wake_up_interruptible_poll` ignored either the mode or the key.
#[test]
fn rule22_interruptible_poll_filters_mode_and_key() {
    let queue = WaitQueue::new();
    let signals = waitq::TaskSignals::new();
    let mut keyed_plain = task::spawn(queue.wait_event_key(READ, || false));
    let mut intr = task::spawn(queue.wait_event_interruptible(&signals, || false));
    assert_pending!(keyed_plain.poll());
    assert_pending!(intr.poll());
    assert_eq!(queue.wake_up_interruptible_poll(READ), 1);
    assert!(intr.is_woken());
    assert!(!keyed_plain.is_woken());
}

// Breaks if a keyed wait's condition were not honoured like any other wait.
#[test]
fn rule22_keyed_wait_completes_on_condition() {
    let queue = WaitQueue::new();
    let ready = std::sync::atomic::AtomicBool::new(false);
    let mut r = task::spawn(queue.wait_event_key(READ, || ready.load(Ordering::SeqCst)));
    assert_pending!(r.poll());
    ready.store(true, Ordering::SeqCst);
    assert_eq!(queue.wake_up_poll(READ), 1);
    assert_ready!(r.poll()).unwrap();
}

// ===== rule 23: custom wake functions =====

// Breaks if a declining (Skip) custom function consumed the exclusive wake.
#[test]
fn rule23_declining_function_passes_wake_to_next_exclusive() {
    let queue = WaitQueue::new();
    let calls = counter();
    let mut x = WaitEntry::with_func(&queue, counting(WakeDecision::Skip, &calls));
    assert!(queue.prepare_to_wait_exclusive(&mut x, TaskState::Uninterruptible));
    let mut e1 = task::spawn(queue.wait_event_exclusive(|| false));
    let mut e2 = task::spawn(queue.wait_event_exclusive(|| false));
    assert_pending!(e1.poll());
    assert_pending!(e2.poll());

    assert_eq!(queue.wake_up(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(x.is_queued());
    assert!(e1.is_woken());
    assert!(!e2.is_woken());
    assert_eq!(queue.len(), 2);
}

// Breaks if a function answering Wake were not woken, or did not use up the exclusive slot.
#[test]
fn rule23_waking_function_uses_the_exclusive_slot() {
    let queue = WaitQueue::new();
    let calls = counter();
    let mut x = WaitEntry::with_func(&queue, counting(WakeDecision::Wake, &calls));
    queue.prepare_to_wait_exclusive(&mut x, TaskState::Uninterruptible);
    let mut e1 = task::spawn(queue.wait_event_exclusive(|| false));
    assert_pending!(e1.poll());
    {
        let mut wait = task::spawn(x.wait());
        assert_pending!(wait.poll());
        assert_eq!(queue.wake_up(), 1);
        assert!(wait.is_woken());
        assert_ready!(wait.poll()).unwrap();
    }
    assert!(!x.is_queued());
    assert!(!e1.is_woken());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

// Breaks if Stop did not end the walk (later waiters, and the exclusive list, untouched).
#[test]
fn rule23_stop_ends_the_walk() {
    let queue = WaitQueue::new();
    let calls = counter();
    let mut n1 = task::spawn(queue.wait_event(|| false));
    assert_pending!(n1.poll());
    let mut s = WaitEntry::with_func(&queue, counting(WakeDecision::Stop, &calls));
    queue.prepare_to_wait(&mut s, TaskState::Uninterruptible);
    let mut n2 = task::spawn(queue.wait_event(|| false));
    let mut e = task::spawn(queue.wait_event_exclusive(|| false));
    assert_pending!(n2.poll());
    assert_pending!(e.poll());

    assert_eq!(queue.wake_up_all(), 1);
    assert!(n1.is_woken());
    assert!(!n2.is_woken());
    assert!(!e.is_woken());
    assert!(s.is_queued());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(queue.len(), 3);

    // Stop on the exclusive list: the exclusive waiter behind it is not reached.
    drop(s);
    let mut xs = WaitEntry::with_func(&queue, counting(WakeDecision::Stop, &calls));
    queue.prepare_to_wait_exclusive(&mut xs, TaskState::Uninterruptible);
    let mut e2 = task::spawn(queue.wait_event_exclusive(|| false));
    assert_pending!(e2.poll());
    // n2 (shared) and e (older exclusive) are woken; the walk stops at xs.
    assert_eq!(queue.wake_up_all(), 2);
    assert!(n2.is_woken() && e.is_woken());
    assert!(!e2.is_woken());
    assert!(xs.is_queued());
}

// Breaks if the function were not given the wake's mode and key.
#[test]
fn rule23_function_sees_mode_and_key() {
    let queue = WaitQueue::new();
    let seen: Arc<Mutex<Vec<(WakeMode, u32)>>> = Arc::default();
    let mut x = WaitEntry::with_func(&queue, {
        let seen = seen.clone();
        move |info: &WakeInfo| {
            seen.lock().unwrap().push((info.mode(), info.key()));
            WakeDecision::Skip
        }
    });
    queue.prepare_to_wait(&mut x, TaskState::Uninterruptible);
    queue.wake_up();
    queue.wake_up_poll(4);
    queue.wake_up_interruptible();
    queue.wake_up_interruptible_poll(READ);
    queue.wake_up_nr(3);
    queue.wake_up_all();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            (WakeMode::Normal, 0),
            (WakeMode::Normal, 4),
            (WakeMode::Interruptible, 0),
            (WakeMode::Interruptible, READ),
            (WakeMode::Normal, 0),
            (WakeMode::Normal, 0),
        ]
    );
}

// Breaks if the function did not replace the mode filter (it decides alone).
#[test]
fn rule23_function_replaces_mode_and_key_match() {
    let queue = WaitQueue::new();
    let calls = counter();
    let mut x = WaitEntry::with_func(&queue, counting(WakeDecision::Wake, &calls));
    queue.prepare_to_wait(&mut x, TaskState::Uninterruptible);
    assert_eq!(queue.wake_up_interruptible(), 1);
    assert!(!x.is_queued());

    // And a function can filter on the key itself.
    let mut y = WaitEntry::with_func(&queue, |info: &WakeInfo| {
        if info.key() & WRITE != 0 {
            WakeDecision::Wake
        } else {
            WakeDecision::Skip
        }
    });
    queue.prepare_to_wait(&mut y, TaskState::Uninterruptible);
    assert_eq!(queue.wake_up(), 0);
    assert_eq!(queue.wake_up_poll(READ), 0);
    assert_eq!(queue.wake_up_poll(WRITE), 1);
    assert!(!y.is_queued());
}

// Breaks if a walk that spans several batches (> 32 wakes) called a function twice.
#[test]
fn rule23_function_called_once_per_walk_across_batches() {
    let queue = WaitQueue::new();
    let (c_first, c_mid, c_last) = (counter(), counter(), counter());
    let mut first = WaitEntry::with_func(&queue, counting(WakeDecision::Skip, &c_first));
    queue.prepare_to_wait(&mut first, TaskState::Uninterruptible);
    let w = CountingWaker::new();
    let waker = w.waker();
    let mut futs: Vec<_> = (0..40).map(|_| queue.wait_event(|| false)).collect();
    for f in &mut futs[..35] {
        assert!(poll_with(f, &waker).is_pending());
    }
    let mut mid = WaitEntry::with_func(&queue, counting(WakeDecision::Skip, &c_mid));
    queue.prepare_to_wait(&mut mid, TaskState::Uninterruptible);
    for f in &mut futs[35..] {
        assert!(poll_with(f, &waker).is_pending());
    }
    let mut last = WaitEntry::with_func(&queue, counting(WakeDecision::Skip, &c_last));
    queue.prepare_to_wait_exclusive(&mut last, TaskState::Uninterruptible);
    let mut ex = task::spawn(queue.wait_event_exclusive(|| false));
    assert_pending!(ex.poll());

    assert_eq!(queue.wake_up_all(), 41);
    assert_eq!(w.wakes(), 40);
    assert!(ex.is_woken());
    assert_eq!(c_first.load(Ordering::SeqCst), 1);
    assert_eq!(c_mid.load(Ordering::SeqCst), 1);
    assert_eq!(c_last.load(Ordering::SeqCst), 1);
    assert_eq!(queue.len(), 3);
}

static BATCH_QUEUE: WaitQueue = WaitQueue::new();
static REMOVED_BETWEEN_BATCHES: Mutex<Option<WaitEntry<'static>>> = Mutex::new(None);

/// A waker that, when woken, drops (= `finish_wait`s) the entry parked in
/// `REMOVED_BETWEEN_BATCHES`: it runs between two batches of a wake walk.
struct DropEntryOnWake;

impl Wake for DropEntryOnWake {
    fn wake(self: Arc<Self>) {
        drop(REMOVED_BETWEEN_BATCHES.lock().unwrap().take());
    }
}

// Breaks if a walk that restarts from the head between batches (the entry it had
// stopped after was unlinked meanwhile) asked an already-asked function again.
#[test]
fn rule23_function_called_once_when_walk_restarts_from_head() {
    let queue = &BATCH_QUEUE;
    let (c0, c1, c2) = (counter(), counter(), counter());
    let mut s0 = WaitEntry::with_func(queue, counting(WakeDecision::Skip, &c0));
    queue.prepare_to_wait(&mut s0, TaskState::Uninterruptible);
    let mut s1 = WaitEntry::with_func(queue, counting(WakeDecision::Skip, &c1));
    queue.prepare_to_wait(&mut s1, TaskState::Uninterruptible);
    *REMOVED_BETWEEN_BATCHES.lock().unwrap() = Some(s1);

    let dropper = Waker::from(Arc::new(DropEntryOnWake));
    let counting_waker = CountingWaker::new();
    let waker = counting_waker.waker();
    let mut futs: Vec<_> = (0..40).map(|_| queue.wait_event(|| false)).collect();
    assert!(poll_with(&mut futs[0], &dropper).is_pending());
    for f in &mut futs[1..] {
        assert!(poll_with(f, &waker).is_pending());
    }
    let mut s2 = WaitEntry::with_func(queue, counting(WakeDecision::Skip, &c2));
    queue.prepare_to_wait(&mut s2, TaskState::Uninterruptible);
    assert_eq!(queue.len(), 43);

    assert_eq!(queue.wake_up_all(), 40);
    assert!(
        REMOVED_BETWEEN_BATCHES.lock().unwrap().is_none(),
        "the dropper ran"
    );
    assert_eq!(counting_waker.wakes(), 39);
    assert_eq!(c0.load(Ordering::SeqCst), 1, "s0 asked twice in one walk");
    assert_eq!(c1.load(Ordering::SeqCst), 1);
    assert_eq!(c2.load(Ordering::SeqCst), 1);
    assert_eq!(queue.len(), 2);

    // A new walk asks again, once.
    assert_eq!(queue.wake_up_all(), 0);
    assert_eq!(c0.load(Ordering::SeqCst), 2);
    assert_eq!(c2.load(Ordering::SeqCst), 2);
    drop((s0, s2));
    assert_eq!(queue.len(), 0);
}

// Breaks if an entry that was never awaited (no waker yet) could not be woken.
#[test]
fn rule23_entry_without_waker_is_unlinked_by_wake() {
    let queue = WaitQueue::new();
    let calls = counter();
    let mut x = WaitEntry::with_func(&queue, counting(WakeDecision::Wake, &calls));
    queue.prepare_to_wait(&mut x, TaskState::Uninterruptible);
    assert_eq!(queue.wake_up(), 1);
    assert!(!x.is_queued());
    // `wait` on a woken entry resolves at once.
    assert_ready!(task::spawn(x.wait()).poll()).unwrap();
}
