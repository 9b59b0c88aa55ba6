//! Rule 24: hand-written wait loops (`prepare_to_wait` / `WaitEntry::wait` / `finish_wait`).
mod support;

use std::sync::atomic::{AtomicBool, Ordering};

use tokio_test::{assert_pending, assert_ready, task};
use waitq::{TaskState, WaitEntry, WaitQueue};

// Breaks if a second `prepare_to_wait` on a queued entry linked it again.
#[test]
fn rule24_prepare_to_wait_is_idempotent() {
    let queue = WaitQueue::new();
    let mut entry = WaitEntry::new(&queue);
    assert!(!entry.is_queued());
    queue.prepare_to_wait(&mut entry, TaskState::Uninterruptible);
    queue.prepare_to_wait(&mut entry, TaskState::Uninterruptible);
    assert_eq!(queue.len(), 1);
    assert!(entry.is_queued());
    assert_eq!(queue.wake_up_all(), 1, "one entry, woken once");
    assert!(!entry.is_queued());
}

// Breaks if `prepare_to_wait_exclusive` did not report "queue was empty", or inserted twice.
#[test]
fn rule24_prepare_to_wait_exclusive_returns_was_empty() {
    let queue = WaitQueue::new();
    let mut a = WaitEntry::new(&queue);
    let mut b = WaitEntry::new(&queue);
    assert!(queue.prepare_to_wait_exclusive(&mut a, TaskState::Uninterruptible));
    assert!(
        !queue.prepare_to_wait_exclusive(&mut a, TaskState::Uninterruptible),
        "already queued"
    );
    assert_eq!(queue.len(), 1);
    assert!(
        !queue.prepare_to_wait_exclusive(&mut b, TaskState::Uninterruptible),
        "a is queued"
    );
    assert_eq!(queue.len(), 2);

    // A non-exclusive waiter also makes the queue non-empty.
    let other = WaitQueue::new();
    let mut n = WaitEntry::new(&other);
    let mut x = WaitEntry::new(&other);
    other.prepare_to_wait(&mut n, TaskState::Uninterruptible);
    assert!(!other.prepare_to_wait_exclusive(&mut x, TaskState::Uninterruptible));
}

// Breaks if an entry woken (unlinked) and prepared again were not re-inserted at the tail.
#[test]
fn rule24_reprepare_after_wake_inserts_at_tail() {
    let queue = WaitQueue::new();
    let mut a = WaitEntry::new(&queue);
    let mut b = WaitEntry::new(&queue);
    queue.prepare_to_wait_exclusive(&mut a, TaskState::Uninterruptible);
    queue.prepare_to_wait_exclusive(&mut b, TaskState::Uninterruptible);

    assert_eq!(queue.wake_up(), 1);
    assert!(!a.is_queued(), "a (the oldest) was woken");
    assert!(b.is_queued());

    // Re-prepared: inserted behind b; the queue was not empty.
    assert!(!queue.prepare_to_wait_exclusive(&mut a, TaskState::Uninterruptible));
    assert_eq!(queue.len(), 2);
    assert_eq!(queue.wake_up(), 1);
    assert!(!b.is_queued(), "b is now first");
    assert!(a.is_queued());

    // Woken again with nobody else queued: re-preparing reports an empty queue.
    assert_eq!(queue.wake_up(), 1);
    assert!(queue.prepare_to_wait_exclusive(&mut a, TaskState::Uninterruptible));
}

// Breaks if re-preparing a queued entry did not update its sleep state.
#[test]
fn rule24_prepare_updates_the_state_of_a_queued_entry() {
    let queue = WaitQueue::new();
    let mut e = WaitEntry::new(&queue);
    queue.prepare_to_wait(&mut e, TaskState::Uninterruptible);
    assert_eq!(queue.wake_up_interruptible(), 0);
    queue.prepare_to_wait(&mut e, TaskState::Interruptible);
    assert_eq!(queue.len(), 1);
    assert_eq!(queue.wake_up_interruptible(), 1);
    assert!(!e.is_queued());

    queue.prepare_to_wait(&mut e, TaskState::Interruptible);
    queue.prepare_to_wait(&mut e, TaskState::Killable);
    assert_eq!(queue.wake_up_interruptible(), 0);
    assert_eq!(queue.wake_up(), 1);
}

// Breaks if `wait()` did not sleep while queued, or did not resolve once woken.
#[test]
fn rule24_wait_sleeps_until_woken() {
    let queue = WaitQueue::new();
    let mut e = WaitEntry::new(&queue);
    queue.prepare_to_wait(&mut e, TaskState::Uninterruptible);
    {
        let mut wait = task::spawn(e.wait());
        assert_pending!(wait.poll());
        assert_pending!(wait.poll());
        assert_eq!(queue.wake_up(), 1);
        assert!(wait.is_woken());
        assert_ready!(wait.poll()).unwrap();
    }
    assert!(!e.is_queued());
    assert_eq!(queue.len(), 0);
}

// Breaks if `wait()` on an entry that is not queued slept (the loop must re-test instead).
#[test]
fn rule24_wait_on_unqueued_entry_resolves_at_once() {
    let queue = WaitQueue::new();
    let mut e = WaitEntry::new(&queue);
    assert_ready!(task::spawn(e.wait()).poll()).unwrap();
    assert_eq!(queue.len(), 0);
}

// Breaks if dropping the `wait()` future unlinked the entry (the entry owns the link).
#[test]
fn rule24_dropping_wait_future_keeps_entry_queued() {
    let queue = WaitQueue::new();
    let mut e = WaitEntry::new(&queue);
    queue.prepare_to_wait(&mut e, TaskState::Uninterruptible);
    {
        let mut wait = task::spawn(e.wait());
        assert_pending!(wait.poll());
    }
    assert!(e.is_queued());
    assert_eq!(queue.len(), 1);
    // The entry has no live waker now, but a wake still unlinks it.
    assert_eq!(queue.wake_up(), 1);
    assert!(!e.is_queued());
}

// Breaks if `wait()`'s latest waker were not the one woken.
#[test]
fn rule24_wait_wakes_the_latest_waker() {
    let queue = WaitQueue::new();
    let mut e = WaitEntry::new(&queue);
    queue.prepare_to_wait(&mut e, TaskState::Uninterruptible);
    let mut w1 = task::spawn(e.wait());
    assert_pending!(w1.poll());
    drop(w1);
    let mut w2 = task::spawn(e.wait());
    assert_pending!(w2.poll());
    queue.wake_up();
    assert!(w2.is_woken());
}

// Breaks if dropping a `WaitEntry` did not `finish_wait` it.
#[test]
fn rule24_drop_is_finish_wait() {
    let queue = WaitQueue::new();
    {
        let mut e = WaitEntry::new(&queue);
        queue.prepare_to_wait(&mut e, TaskState::Uninterruptible);
        assert_eq!(queue.len(), 1);
    }
    assert_eq!(queue.len(), 0);
    assert_eq!(queue.wake_up_all(), 0);
}

// Breaks if `finish_wait` left the entry linked, or failed on an already-woken entry.
#[test]
fn rule24_finish_wait_unlinks_and_is_idempotent() {
    let queue = WaitQueue::new();
    let mut e = WaitEntry::new(&queue);
    queue.prepare_to_wait(&mut e, TaskState::Uninterruptible);
    queue.finish_wait(&mut e);
    assert!(!e.is_queued());
    assert_eq!(queue.len(), 0);
    queue.finish_wait(&mut e);
    queue.prepare_to_wait(&mut e, TaskState::Uninterruptible);
    queue.wake_up();
    queue.finish_wait(&mut e); // already woken: nothing to unlink
    assert_eq!(queue.len(), 0);
}

// Documented: unlike a dropped `wait_event` future, `finish_wait` does not pass on an
// exclusive wake it was picked for. Breaks if that changed silently.
#[test]
fn rule24_finish_wait_does_not_hand_off() {
    let queue = WaitQueue::new();
    let mut a = WaitEntry::new(&queue);
    queue.prepare_to_wait_exclusive(&mut a, TaskState::Uninterruptible);
    let mut e2 = task::spawn(queue.wait_event_exclusive(|| false));
    assert_pending!(e2.poll());
    assert_eq!(queue.wake_up(), 1);
    queue.finish_wait(&mut a);
    assert!(!e2.is_woken());
    assert_eq!(queue.len(), 1);
}

// Breaks if the kernel-style loop could lose a wake between prepare and wait.
#[test]
fn rule24_full_loop_with_another_thread() {
    support::watchdog("prepare_to_wait loop", support::WATCHDOG, || {
        let queue = WaitQueue::new();
        let ready = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                ready.store(true, Ordering::SeqCst);
                queue.wake_up();
            });
            futures::executor::block_on(async {
                let mut entry = WaitEntry::new(&queue);
                loop {
                    queue.prepare_to_wait_exclusive(&mut entry, TaskState::Uninterruptible);
                    if ready.load(Ordering::SeqCst) {
                        break;
                    }
                    entry.wait().await.unwrap();
                }
                queue.finish_wait(&mut entry);
            });
        });
        assert_eq!(queue.len(), 0);
    });
}

// Breaks if preparing on a closed queue linked the entry or `wait()` did not report Closed.
#[test]
fn rule24_prepare_on_closed_queue_then_wait_reports_closed() {
    let queue = WaitQueue::new();
    queue.close();
    let mut e = WaitEntry::new(&queue);
    queue.prepare_to_wait(&mut e, TaskState::Uninterruptible);
    assert!(!e.is_queued());
    assert_eq!(queue.len(), 0);
    assert!(!queue.prepare_to_wait_exclusive(&mut e, TaskState::Uninterruptible));
    assert!(assert_ready!(task::spawn(e.wait()).poll())
        .unwrap_err()
        .is_closed());
}

// ===== entries used with another queue =====

// Breaks if an entry could be linked on a queue other than its own.
#[test]
#[should_panic(expected = "other than the one it was made for")]
fn rule24_prepare_to_wait_with_other_queue_panics() {
    let q1 = WaitQueue::new();
    let q2 = WaitQueue::new();
    let mut e = WaitEntry::new(&q1);
    q2.prepare_to_wait(&mut e, TaskState::Uninterruptible);
}

// Breaks if an entry could be linked exclusively on a queue other than its own.
#[test]
#[should_panic(expected = "other than the one it was made for")]
fn rule24_prepare_to_wait_exclusive_with_other_queue_panics() {
    let q1 = WaitQueue::new();
    let q2 = WaitQueue::new();
    let mut e = WaitEntry::new(&q1);
    q2.prepare_to_wait_exclusive(&mut e, TaskState::Uninterruptible);
}

// Breaks if `finish_wait` on the wrong queue were accepted (it would unlink by a foreign handle).
#[test]
#[should_panic(expected = "other than the one it was made for")]
fn rule24_finish_wait_with_other_queue_panics() {
    let q1 = WaitQueue::new();
    let q2 = WaitQueue::new();
    let mut e = WaitEntry::new(&q1);
    q1.prepare_to_wait(&mut e, TaskState::Uninterruptible);
    q2.finish_wait(&mut e);
}

// Breaks if the failed foreign-queue call left anything linked on either queue.
#[test]
fn rule24_foreign_queue_panic_leaves_both_queues_clean() {
    let q1 = WaitQueue::new();
    let q2 = WaitQueue::new();
    let mut e = WaitEntry::new(&q1);
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        q2.prepare_to_wait(&mut e, TaskState::Uninterruptible);
    }));
    assert!(res.is_err());
    assert_eq!(q1.len(), 0);
    assert_eq!(q2.len(), 0);
    assert!(!e.is_queued());
}

// Breaks if `set_waker` before `prepare_to_wait` did not link the entry with
// that waker (the wake would then call nobody: a lost wake-up for a future
// that returns `Pending` without polling `wait()`).
#[test]
fn rule24_a_waker_set_before_prepare_is_woken_without_a_wait_poll() {
    let queue = WaitQueue::new();
    let counter = support::CountingWaker::new();
    let mut e = WaitEntry::new(&queue);
    e.set_waker(&counter.waker());
    queue.prepare_to_wait_exclusive(&mut e, TaskState::Uninterruptible);
    assert_eq!(queue.wake_up(), 1);
    assert_eq!(
        counter.wakes(),
        1,
        "the waker set before the link was called"
    );
    // The next link has no waker unless set again: `wait()` installs one.
    queue.prepare_to_wait(&mut e, TaskState::Uninterruptible);
    let mut w = task::spawn(e.wait());
    assert_pending!(w.poll());
    queue.wake_up();
    assert!(w.is_woken());
    assert_eq!(counter.wakes(), 1, "the first waker is not reused");
}

// Breaks if `set_waker` on a linked entry left the old waker in place, or if
// the first `wait()` poll of a waker-less link did not install its waker.
#[test]
fn rule24_set_waker_on_a_linked_entry_replaces_the_waker() {
    let queue = WaitQueue::new();
    let (first, second) = (support::CountingWaker::new(), support::CountingWaker::new());
    let mut e = WaitEntry::new(&queue);
    queue.prepare_to_wait(&mut e, TaskState::Uninterruptible);
    e.set_waker(&first.waker()); // installs: the link had none
    e.set_waker(&second.waker()); // replaces
    assert_eq!(queue.wake_up(), 1);
    assert_eq!((first.wakes(), second.wakes()), (0, 1));
    // On an entry a wake already took, `set_waker` keeps the waker for the
    // next link, and `wait()` resolves at once.
    e.set_waker(&first.waker());
    assert_ready!(task::spawn(e.wait()).poll()).unwrap();
    queue.prepare_to_wait(&mut e, TaskState::Uninterruptible);
    queue.wake_up();
    assert_eq!((first.wakes(), second.wakes()), (1, 1));
}

// Breaks if an entry made with `with_shared_func` did not consult the
// caller's function, or did not share the caller's `Arc` (no second copy).
#[test]
fn rule24_with_shared_func_uses_the_callers_arc() {
    use std::sync::Arc;
    use waitq::{WakeDecision, WakeFunction, WakeInfo};
    struct OnlyKey4(AtomicBool);
    impl WakeFunction for OnlyKey4 {
        fn decide(&self, info: &WakeInfo) -> WakeDecision {
            self.0.store(true, Ordering::SeqCst);
            match info.key() & 4 {
                0 => WakeDecision::Skip,
                _ => WakeDecision::Wake,
            }
        }
    }
    let queue = WaitQueue::new();
    let func = Arc::new(OnlyKey4(AtomicBool::new(false)));
    let mut e = WaitEntry::with_shared_func(&queue, func.clone());
    assert_eq!(
        Arc::strong_count(&func),
        2,
        "the entry holds the caller's Arc"
    );
    queue.prepare_to_wait(&mut e, TaskState::Uninterruptible);
    assert_eq!(queue.wake_up_poll(1), 0);
    assert!(func.0.load(Ordering::SeqCst), "the function was asked");
    assert_eq!(queue.wake_up_poll(4), 1);
    drop(e);
    assert_eq!(Arc::strong_count(&func), 1, "the entry gave its clone back");
}
