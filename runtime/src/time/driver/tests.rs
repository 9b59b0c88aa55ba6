//! Tests of the driver's timer storage: cancel gives memory back, reset
//! moves a timer in place, shutdown closes pending timers.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::time::Duration;

use super::{Driver, Registered, TimerKey, TimerState};
use crate::time::Clock;

/// Counts its wakes.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn pending(registered: Registered) -> TimerKey {
    match registered {
        Registered::Pending { key, .. } => key,
        _ => panic!("the timer was not stored"),
    }
}

#[test]
fn mass_cancel_gives_the_memory_back() {
    let driver = Driver::new(Clock::new(true));
    let at = driver.clock().now() + Duration::from_secs(1);
    let keys: Vec<_> = (0..20_000u64)
        .map(|i| pending(driver.register(at + Duration::from_micros(i), Waker::noop().clone())))
        .collect();
    assert!(driver.capacity() >= 20_000);
    for key in keys {
        driver.cancel(key);
    }
    assert_eq!(driver.pending(), 0);
    assert!(driver.capacity() <= 64, "capacity {}", driver.capacity());
}

/// A burst of timers of which the last one stays (a long timer
/// registered during the burst): the memory goes once the clock has moved
/// a second on with the wheel that sparse, and the survivor, moved in the
/// wheel meanwhile, still fires and wakes its sleeper. (An independent
/// audit: one timer left of a million kept 40 MB, where tokio's keeps its
/// own 112 bytes.)
#[test]
fn a_burst_with_one_survivor_gives_the_memory_back() {
    let driver = Driver::new(Clock::new(true));
    let start = driver.clock().now();
    let at = start + Duration::from_secs(60);
    let mut keys: Vec<_> = (0..20_000u64)
        .map(|i| pending(driver.register(at + Duration::from_micros(i), Waker::noop().clone())))
        .collect();
    let count = Arc::new(Count::default());
    let survivor = pending(driver.register(at + Duration::from_secs(3600), count.clone().into()));
    for key in keys.drain(..) {
        driver.cancel(key);
    }
    assert_eq!(driver.pending(), 1);
    driver.clock().advance_to(start + Duration::from_secs(2));
    driver.process();
    assert!(driver.capacity() <= 64, "capacity {}", driver.capacity());
    driver.clock().advance_to(at + Duration::from_secs(3600));
    driver.process();
    assert_eq!(count.0.load(SeqCst), 1, "the moved survivor did not fire");
    let mut timer = Some(survivor);
    assert_eq!(
        driver.poll_timer(&mut timer, &Waker::noop().clone()),
        TimerState::Fired
    );
    assert!(timer.is_none());
    assert_eq!((driver.pending(), driver.entries()), (0, 0));
}

#[test]
fn reset_moves_the_timer_in_place_and_keeps_its_waker() {
    let driver = Driver::new(Clock::new(true));
    let start = driver.clock().now();
    let count = Arc::new(Count::default());
    let waker = Waker::from(count.clone());
    let mut timer = Some(pending(
        driver.register(start + Duration::from_secs(1), waker.clone()),
    ));
    let capacity = driver.capacity();
    let later = start + Duration::from_secs(5);
    assert!(driver.reset(&mut timer, later).is_some());
    assert!(timer.is_some(), "the key stays");
    assert_eq!((driver.pending(), driver.capacity()), (1, capacity));
    driver.clock().advance_to(start + Duration::from_secs(2));
    driver.process();
    assert_eq!(count.0.load(SeqCst), 0, "fired at the old deadline");
    assert_eq!(driver.poll_timer(&mut timer, &waker), TimerState::Pending);
    driver.clock().advance_to(later);
    driver.process();
    assert_eq!(count.0.load(SeqCst), 1);
    assert_eq!(driver.pending(), 0);
    // The fired timer's node stays for its key's holder, who removes it.
    assert_eq!(driver.entries(), 1);
    assert_eq!(driver.poll_timer(&mut timer, &waker), TimerState::Fired);
    assert!(timer.is_none(), "the key was taken");
    assert_eq!(driver.entries(), 0);
    // A timer reset to a deadline already past is removed, for the caller
    // to register again.
    let mut timer = Some(pending(
        driver.register(later + Duration::from_secs(1), waker.clone()),
    ));
    assert_eq!(driver.reset(&mut timer, start), None);
    assert!(timer.is_none());
    assert_eq!((driver.pending(), driver.entries()), (0, 0));
}

#[test]
fn reset_of_a_fired_timer_removes_it() {
    let driver = Driver::new(Clock::new(true));
    let start = driver.clock().now();
    let waker = Waker::noop().clone();
    let mut timer = Some(pending(
        driver.register(start + Duration::from_secs(1), waker),
    ));
    driver.clock().advance_to(start + Duration::from_secs(1));
    driver.process();
    assert_eq!(
        driver.reset(&mut timer, start + Duration::from_secs(9)),
        None
    );
    assert!(timer.is_none());
    assert_eq!(driver.entries(), 0);
}

#[test]
fn shutdown_closes_pending_timers_and_wakes_their_sleepers() {
    let driver = Driver::new(Clock::new(true));
    let start = driver.clock().now();
    let count = Arc::new(Count::default());
    let waker = Waker::from(count.clone());
    let mut fired = Some(pending(
        driver.register(start + Duration::from_secs(1), waker.clone()),
    ));
    let mut open = Some(pending(
        driver.register(start + Duration::from_secs(9), waker.clone()),
    ));
    let dropped = pending(driver.register(start + Duration::from_secs(9), waker.clone()));
    driver.clock().advance_to(start + Duration::from_secs(1));
    driver.process();
    driver.shutdown();
    assert_eq!(count.0.load(SeqCst), 3);
    // Fired before shutdown still counts as fired.
    assert_eq!(driver.poll_timer(&mut fired, &waker), TimerState::Fired);
    assert_eq!(driver.poll_timer(&mut open, &waker), TimerState::Closed);
    assert!(fired.is_none() && open.is_none(), "both removed");
    assert_eq!(driver.next_deadline(), None);
    assert!(matches!(
        driver.register(start + Duration::from_secs(3), waker.clone()),
        Registered::Shutdown
    ));
    assert_eq!(driver.entries(), 1);
    driver.cancel(dropped);
    assert_eq!((driver.pending(), driver.entries()), (0, 0));
}
