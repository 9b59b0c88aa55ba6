//! `#[waitrt::test(check(...))]` sets every option `Check`'s builder has,
//! under the builder method's own name: each test below shows one option
//! doing what the method does (the attribute could not set `weak_memory`,
//! `oracle`, `coverage`, `max_time` or `max_poll_decisions`, and
//! `max_depth = N` did not compile: an independent probe). That no method
//! lacks its option is checked against `Check`'s source by the macros
//! crate's unit tests; the compile errors for bad values by
//! `macros/tests/ui.rs`.
//!
//! Every run is bounded by the toolkit's own limits (polls, decision
//! points per poll, virtual time).

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::Arc;
use std::time::Duration;

use waitrt::sync::{atomic, WaitQueue};

/// `max_time = "1s"` is `max_time(Duration::from_secs(1))`: a two-second
/// sleep passes the limit.
#[waitrt::test(check(max_time = "1s", quiet = true))]
#[should_panic(expected = "would pass the limit of 1s")]
async fn max_time_is_set() {
    waitrt::time::sleep(Duration::from_secs(2)).await;
}

/// `max_poll_decisions = 1000`: a spin on the toolkit's atomics is a
/// livelock after 1,000 decision points of one poll (not the default
/// 100,000).
#[waitrt::test(check(max_poll_decisions = 1000, quiet = true))]
#[should_panic(expected = "met more than 1000 decision points in one poll")]
async fn max_poll_decisions_is_set() {
    let never = atomic::AtomicBool::new(false);
    while !never.load(Relaxed) {}
}

/// A waiter whose wake was skipped: its condition is true, it sleeps.
async fn lost_wakeup() {
    let queue = Arc::new(WaitQueue::new());
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let waiter = {
        let (queue, ready) = (queue.clone(), ready.clone());
        waitrt::spawn(async move { queue.wait_event(|| ready.load(Acquire)).await.unwrap() })
    };
    waitrt::test_util::until_idle().await; // the waiter links and sleeps
    ready.store(true, Release); // and no wake_up
    waiter.await.unwrap();
}

/// With the oracle (the default) the sleeper is a lost wake-up.
#[waitrt::test(check(quiet = true))]
#[should_panic(expected = "lost wake-up")]
async fn with_the_oracle_a_lost_wakeup() {
    lost_wakeup().await;
}

/// `oracle = false`: nobody probes the sleeper's condition, so the same
/// run ends as a plain hang.
#[waitrt::test(check(oracle = false, quiet = true))]
#[should_panic(expected = "hang: nothing can run")]
async fn oracle_is_set() {
    lost_wakeup().await;
}

/// The kernel's `waitqueue_active()` bug: a Release store, then an
/// unfenced peek at the queue. Found with weak memory on (the default,
/// `tests/toolkit_classes.rs`, class 4); with it off every run passes.
#[waitrt::test(check(weak_memory = false, seeds = 200, quiet = true))]
async fn weak_memory_is_set() {
    let queue = Arc::new(WaitQueue::new());
    let ready = Arc::new(atomic::AtomicBool::new(false));
    let waiter = {
        let (queue, ready) = (queue.clone(), ready.clone());
        waitrt::spawn(async move { queue.wait_event(|| ready.load(Acquire)).await.unwrap() })
    };
    let waker = waitrt::spawn(async move {
        ready.store(true, Release);
        if queue.waitqueue_active() {
            queue.wake_up();
        }
    });
    waker.await.unwrap();
    waiter.await.unwrap();
}

/// `max_time = "off"` is `max_time(Duration::MAX)`: no limit, a year's
/// sleep passes (in no time: the clock is virtual).
#[waitrt::test(check(max_time = "off", watchdog = "off", quiet = true))]
async fn off_is_no_limit() {
    waitrt::time::sleep(Duration::from_secs(365 * 24 * 3600)).await;
}

/// `max_depth` takes a `usize` where the other integers are `u64`: the
/// attribute wrote `max_depth(1u64)`, which did not compile.
#[waitrt::test(check(max_depth = 0, seeds = 4, quiet = true))]
async fn max_depth_is_set() {
    waitrt::spawn(async {}).await.unwrap();
}

/// Every option at once, each under its builder method's name.
#[waitrt::test(check(
    seeds = 3,
    first_seed = 10,
    policy = "pct",
    depth = 2,
    max_polls = 10_000,
    max_poll_decisions = 10_000,
    max_time = "2min",
    max_depth = 1,
    spurious_wakeups = false,
    weak_memory = true,
    inject_signals = true,
    time_jumps = true,
    oracle = true,
    allow_task_panics = true,
    check_determinism = true,
    shrink = false,
    quiet = true,
    coverage = true,
    watchdog = "1min"
))]
async fn every_option_at_once() {
    waitrt::time::sleep(Duration::from_secs(60)).await; // within "2min"
    assert!(waitrt::spawn(async { panic!("allowed") })
        .await
        .unwrap_err()
        .is_panic());
}
