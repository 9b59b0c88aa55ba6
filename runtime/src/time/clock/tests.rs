//! Tests of the clock's saturating arithmetic.

use std::time::{Duration, Instant};

use super::{largest, max_instant, saturating_add, Clock};

#[test]
fn max_instant_is_the_latest() {
    let max = max_instant();
    assert!(max > Instant::now());
    assert_eq!(max.checked_add(Duration::from_nanos(1)), None);
    assert_eq!(max_instant(), max, "found once");
}

#[test]
fn saturating_add_adds_or_saturates() {
    let now = Instant::now();
    assert_eq!(
        saturating_add(now, Duration::from_secs(1)),
        now + Duration::from_secs(1)
    );
    assert_eq!(saturating_add(now, Duration::MAX), max_instant());
    assert_eq!(saturating_add(max_instant(), Duration::ZERO), max_instant());
    assert_eq!(
        saturating_add(max_instant(), Duration::from_nanos(1)),
        max_instant()
    );
}

#[test]
fn largest_bisects() {
    assert_eq!(largest(u64::MAX, |n| n <= 12_345), 12_345);
    assert_eq!(largest(u64::MAX, |_| true), u64::MAX);
    assert_eq!(largest(10, |n| n == 0), 0);
    assert_eq!(largest(0, |_| true), 0);
}

#[test]
fn paused_clock_saturates() {
    let clock = Clock::new(true);
    clock.advance_to(max_instant());
    assert_eq!(clock.now(), max_instant());
    clock.advance_to(clock.origin());
    assert_eq!(clock.now(), max_instant(), "never backwards");
}
