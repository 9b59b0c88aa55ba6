//! Rule 19: `wait_event_lock[_exclusive]`, the condition evaluated under a user mutex.
mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, TryLockError};
use std::task::{RawWaker, RawWakerVTable, Waker};

use support::{poll_with, WATCHDOG};
use tokio_test::{assert_pending, assert_ready, task};
use waitq::WaitQueue;

#[derive(Debug, Default)]
struct State {
    ready: bool,
    value: u32,
}

fn is_locked<T>(m: &Mutex<T>) -> bool {
    matches!(m.try_lock(), Err(TryLockError::WouldBlock))
}

// ===== a waker that reports whether the user lock is held when it is cloned =====

/// Runs `on_clone` every time the waker is cloned (the queue clones a waiter's
/// waker when it links its entry) and counts wakes.
struct CloneProbe {
    on_clone: Box<dyn Fn() + Send + Sync>,
    wakes: AtomicUsize,
}

fn probe_waker(probe: Arc<CloneProbe>) -> Waker {
    fn raw(probe: Arc<CloneProbe>) -> RawWaker {
        RawWaker::new(Arc::into_raw(probe).cast(), &VTABLE)
    }
    unsafe fn clone(data: *const ()) -> RawWaker {
        let ptr = data.cast::<CloneProbe>();
        // SAFETY: `data` came from `Arc::into_raw` and the waker holds one count.
        unsafe { Arc::increment_strong_count(ptr) };
        // SAFETY: the count just added is the one the new waker owns.
        let probe = unsafe { Arc::from_raw(ptr) };
        (probe.on_clone)();
        raw(probe)
    }
    unsafe fn wake(data: *const ()) {
        // SAFETY: consumes the count this waker owns.
        let probe = unsafe { Arc::from_raw(data.cast::<CloneProbe>()) };
        probe.wakes.fetch_add(1, Ordering::SeqCst);
    }
    unsafe fn wake_by_ref(data: *const ()) {
        // SAFETY: the waker is alive, so its count keeps the Arc alive.
        let probe = unsafe { &*data.cast::<CloneProbe>() };
        probe.wakes.fetch_add(1, Ordering::SeqCst);
    }
    unsafe fn drop(data: *const ()) {
        // SAFETY: releases the count this waker owns.
        unsafe { Arc::decrement_strong_count(data.cast::<CloneProbe>()) };
    }
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop);
    // SAFETY: the vtable functions uphold the RawWaker contract for an Arc<CloneProbe>.
    unsafe { Waker::from_raw(raw(probe)) }
}

// ===== rule 19 =====

// Breaks if the condition were ever evaluated without the user mutex held,
// or the guard were held across `Pending`.
#[test]
fn rule19_condition_only_evaluated_with_the_user_lock_held() {
    let queue = WaitQueue::new();
    let state = Mutex::new(State::default());
    let evals = AtomicUsize::new(0);
    let unlocked_evals = AtomicUsize::new(0);
    let mut fut = task::spawn(queue.wait_event_lock(&state, |s| {
        evals.fetch_add(1, Ordering::SeqCst);
        if !is_locked(&state) {
            unlocked_evals.fetch_add(1, Ordering::SeqCst);
        }
        s.ready
    }));
    assert_pending!(fut.poll());
    assert!(
        !is_locked(&state),
        "the guard must not be held across Pending"
    );
    assert_eq!(queue.len(), 1);

    // Spurious wake: evaluated again, under the lock, and re-queued.
    assert_eq!(queue.wake_up(), 1);
    assert_pending!(fut.poll());
    assert!(!is_locked(&state));
    assert_eq!(queue.len(), 1);

    // The setter: lock, set, unlock, wake.
    {
        let mut s = state.lock().unwrap();
        s.ready = true;
        s.value = 7;
    }
    assert_eq!(queue.wake_up(), 1);
    assert!(fut.is_woken());
    let guard = assert_ready!(fut.poll()).unwrap();
    assert!(is_locked(&state), "resolves with the lock held");
    assert_eq!(guard.value, 7);
    drop(guard);
    assert!(!is_locked(&state));
    assert!(evals.load(Ordering::SeqCst) >= 3);
    assert_eq!(unlocked_evals.load(Ordering::SeqCst), 0);
    assert_eq!(queue.len(), 0);
}

// Breaks if the waiter were linked after the user lock is released (a setter could
// slip in between and its wake_up would find nobody): the entry's waker is cloned,
// i.e. the entry is linked, while the user lock is still held, and the entry is
// linked by the time the poll returns.
#[test]
fn rule19_waiter_linked_before_the_lock_is_released() {
    let queue = WaitQueue::new();
    let state = Arc::new(Mutex::new(State::default()));
    let clones = Arc::new(AtomicUsize::new(0));
    let clones_unlocked = Arc::new(AtomicUsize::new(0));
    let probe = Arc::new(CloneProbe {
        on_clone: {
            let (state, clones, clones_unlocked) =
                (state.clone(), clones.clone(), clones_unlocked.clone());
            Box::new(move || {
                clones.fetch_add(1, Ordering::SeqCst);
                if !is_locked(&state) {
                    clones_unlocked.fetch_add(1, Ordering::SeqCst);
                }
            })
        },
        wakes: AtomicUsize::new(0),
    });
    let waker = probe_waker(probe.clone());
    let mut fut = queue.wait_event_lock(&state, |s| s.ready);
    assert!(poll_with(&mut fut, &waker).is_pending());
    assert_eq!(queue.len(), 1, "linked by the time the poll returns");
    assert!(
        clones.load(Ordering::SeqCst) >= 1,
        "the entry holds a clone of the waker"
    );
    assert_eq!(
        clones_unlocked.load(Ordering::SeqCst),
        0,
        "linked with the user lock held"
    );

    state.lock().unwrap().ready = true;
    assert_eq!(queue.wake_up(), 1);
    assert_eq!(probe.wakes.load(Ordering::SeqCst), 1);
    let guard = match poll_with(&mut fut, &waker) {
        std::task::Poll::Ready(res) => res.unwrap(),
        std::task::Poll::Pending => panic!("woken with the condition true"),
    };
    assert!(guard.ready);
}

// Breaks (probabilistically; the clone probe above is the deterministic check) if a
// setter that takes the user lock right after the waiter's check could find it unlinked.
#[test]
fn rule19_setter_holding_the_lock_always_sees_the_waiter_linked() {
    support::watchdog("lock setter sees waiter", WATCHDOG, || {
        for _ in 0..200 {
            let queue = WaitQueue::new();
            let state = Mutex::new(State::default());
            let entered = AtomicBool::new(false);
            std::thread::scope(|s| {
                let setter = s.spawn(|| {
                    while !entered.load(Ordering::SeqCst) {
                        std::hint::spin_loop();
                    }
                    // Blocks until the waiter's poll releases the lock.
                    let mut guard = state.lock().unwrap();
                    let seen = queue.len();
                    guard.ready = true;
                    drop(guard);
                    assert_eq!(queue.wake_up(), 1);
                    seen
                });
                let res = futures::executor::block_on(queue.wait_event_lock(&state, |st| {
                    entered.store(true, Ordering::SeqCst);
                    st.ready
                }));
                assert!(res.unwrap().ready);
                assert_eq!(
                    setter.join().unwrap(),
                    1,
                    "setter found the waiter unlinked"
                );
            });
        }
    });
}

// Breaks (hangs, caught by the watchdog) if a lock/set/unlock/wake setter could be missed.
#[test]
fn rule19_lock_set_unlock_wake_never_hangs() {
    support::watchdog("wait_event_lock ping-pong", WATCHDOG, || {
        let iters = (support::stress_iters() / 5).max(100);
        let queue = WaitQueue::new();
        let state = Mutex::new(State::default());
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 1..=iters as u32 {
                    let mut g = futures::executor::block_on(
                        queue.wait_event_lock(&state, |st| st.value == i),
                    )
                    .unwrap();
                    g.ready = true; // ack, under the lock
                    drop(g);
                    queue.wake_up();
                }
            });
            for i in 1..=iters as u32 {
                {
                    let mut g = state.lock().unwrap();
                    g.value = i;
                    g.ready = false;
                }
                queue.wake_up();
                let mut g =
                    futures::executor::block_on(queue.wait_event_lock(&state, |st| st.ready))
                        .unwrap();
                g.ready = false;
            }
        });
        assert_eq!(queue.len(), 0);
    });
}

// Breaks if the fast path registered, or released the lock before returning the guard.
#[test]
fn rule19_fast_path_returns_held_guard_without_registering() {
    let queue = WaitQueue::new();
    let state = Mutex::new(5u32);
    let mut fut = task::spawn(queue.wait_event_lock(&state, |n| *n == 5));
    let mut guard = assert_ready!(fut.poll()).unwrap();
    assert!(is_locked(&state));
    *guard += 1;
    drop(guard);
    assert_eq!(*state.lock().unwrap(), 6);
    assert_eq!(queue.capacity(), 0);
}

// Breaks if a poisoned user mutex made the wait fail or panic (the poison is ignored).
#[test]
fn rule19_poisoned_mutex_is_used_as_is() {
    let queue = WaitQueue::new();
    let state = Mutex::new(1u32);
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _g = state.lock().unwrap();
        panic!("poison the user mutex");
    }));
    assert!(state.is_poisoned());
    let mut fut = task::spawn(queue.wait_event_lock(&state, |n| *n == 2));
    assert_pending!(fut.poll());
    *state.lock().unwrap_or_else(|e| e.into_inner()) = 2;
    queue.wake_up();
    assert_eq!(*assert_ready!(fut.poll()).unwrap(), 2);
}

// Breaks if the condition may mutate state through the guard but the mutation were lost.
#[test]
fn rule19_condition_gets_mutable_access() {
    let queue = WaitQueue::new();
    let state = Mutex::new(Vec::<u32>::new());
    let mut taken = None;
    let mut fut = task::spawn(queue.wait_event_lock(&state, |v| {
        taken = v.pop();
        taken.is_some()
    }));
    assert_pending!(fut.poll());
    state.lock().unwrap().push(9);
    queue.wake_up();
    let guard = assert_ready!(fut.poll()).unwrap();
    assert!(guard.is_empty());
    drop(guard);
    drop(fut);
    assert_eq!(taken, Some(9));
}

// ===== wait_event_lock_exclusive =====

// Breaks if `wait_event_lock_exclusive` were not exclusive (wake_up would wake both).
#[test]
fn rule19_lock_exclusive_is_woken_one_at_a_time_in_fifo_order() {
    let queue = WaitQueue::new();
    let items = Mutex::new(Vec::<u32>::new());
    let mut e1 = task::spawn(queue.wait_event_lock_exclusive(&items, |v| !v.is_empty()));
    let mut e2 = task::spawn(queue.wait_event_lock_exclusive(&items, |v| !v.is_empty()));
    assert_pending!(e1.poll());
    assert_pending!(e2.poll());
    assert_eq!(queue.len(), 2);

    items.lock().unwrap().push(1);
    assert_eq!(queue.wake_up(), 1);
    assert!(e1.is_woken());
    assert!(!e2.is_woken());
    let mut g = assert_ready!(e1.poll()).unwrap();
    assert_eq!(g.pop(), Some(1));
    drop(g);
    assert_eq!(queue.len(), 1);

    items.lock().unwrap().push(2);
    assert_eq!(queue.wake_up(), 1);
    assert!(e2.is_woken());
    assert_eq!(assert_ready!(e2.poll()).unwrap().pop(), Some(2));
    assert_eq!(queue.len(), 0);
}

// Breaks if an exclusive lock waiter dropped after being picked swallowed the wake.
#[test]
fn rule19_lock_exclusive_dropped_after_wake_hands_it_on() {
    let queue = WaitQueue::new();
    let items = Mutex::new(Vec::<u32>::new());
    let mut e1 = task::spawn(queue.wait_event_lock_exclusive(&items, |v| !v.is_empty()));
    let mut e2 = task::spawn(queue.wait_event_lock_exclusive(&items, |v| !v.is_empty()));
    assert_pending!(e1.poll());
    assert_pending!(e2.poll());
    items.lock().unwrap().push(1);
    assert_eq!(queue.wake_up(), 1);
    assert!(!e2.is_woken());
    drop(e1);
    assert!(e2.is_woken(), "the wake passes to E2");
    assert_eq!(assert_ready!(e2.poll()).unwrap().pop(), Some(1));
    assert_eq!(queue.len(), 0);
}

// Breaks if an exclusive lock waiter woken with its condition false were not re-queued
// at the tail (the next wake must go to the waiter behind it).
#[test]
fn rule19_lock_exclusive_woken_with_false_condition_requeues_at_tail() {
    let queue = WaitQueue::new();
    let items = Mutex::new(Vec::<u32>::new());
    let mut e1 = task::spawn(queue.wait_event_lock_exclusive(&items, |v| !v.is_empty()));
    let mut e2 = task::spawn(queue.wait_event_lock_exclusive(&items, |v| !v.is_empty()));
    assert_pending!(e1.poll());
    assert_pending!(e2.poll());
    items.lock().unwrap().push(1);
    assert_eq!(queue.wake_up(), 1); // picks E1
                                    // A fast-path caller steals the item.
    let stolen =
        futures::executor::block_on(queue.wait_event_lock_exclusive(&items, |v| !v.is_empty()))
            .unwrap()
            .pop();
    assert_eq!(stolen, Some(1));
    assert_pending!(e1.poll()); // re-queued behind E2
    assert_eq!(queue.len(), 2);
    items.lock().unwrap().push(2);
    assert_eq!(queue.wake_up(), 1);
    assert!(e2.is_woken());
    assert!(!e1.is_woken());
}
