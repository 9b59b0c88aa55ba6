//! The runtime's clock: the real one, or a paused one that only moves when
//! told to (or, with nothing left to run, jumps to the next timer).
//!
//! Time arithmetic saturates ([`saturating_add`]): an `Instant` that would
//! overflow becomes the latest one the platform represents ([`max_instant`],
//! some 292 billion years ahead on Linux), the timers' "never". So
//! `sleep(Duration::MAX)` never completes early, and a paused clock moved by
//! `Duration::MAX` stops there instead of panicking.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

#[cfg(test)]
#[path = "clock/tests.rs"]
mod tests;

/// A real or paused clock, shared by the driver and its handles.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    origin: Instant,
    /// `Some(elapsed)` while paused: now = origin + elapsed.
    paused: Option<Arc<Mutex<Duration>>>,
}

/// A paused clock was made in this process (by `start_paused` or the test
/// toolkit). Until then every runtime's clock is the real one.
static ANY_PAUSED: AtomicBool = AtomicBool::new(false);

/// Whether every clock in the process is the real one, so that a caller
/// without its runtime at hand can read `Instant::now()` instead of
/// looking the runtime up: hyper's `Timer::now`, once per request, where
/// the lookup through the thread's scheduler cost about 50 instructions of
/// the ~9,100 a request takes (callgrind, `benches/http.rs`). Relaxed: a
/// paused clock is made before its runtime runs anything, and the thread
/// that then reads time in it learned of the runtime after that.
#[cfg(feature = "hyper")]
pub(crate) fn all_real() -> bool {
    !ANY_PAUSED.load(Relaxed)
}

impl Clock {
    pub(crate) fn new(start_paused: bool) -> Clock {
        if start_paused {
            ANY_PAUSED.store(true, Relaxed);
        }
        Clock {
            origin: Instant::now(),
            paused: start_paused.then(|| Arc::new(Mutex::new(Duration::ZERO))),
        }
    }

    pub(crate) fn origin(&self) -> Instant {
        self.origin
    }

    pub(crate) fn now(&self) -> Instant {
        match &self.paused {
            None => Instant::now(),
            Some(elapsed) => self.origin + *elapsed.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.paused.is_some()
    }

    /// Moves a paused clock forward to `instant` (never backwards).
    pub(crate) fn advance_to(&self, instant: Instant) {
        if let Some(elapsed) = &self.paused {
            let mut elapsed = elapsed.lock().unwrap_or_else(PoisonError::into_inner);
            let target = instant.saturating_duration_since(self.origin);
            if target > *elapsed {
                *elapsed = target;
            }
        }
    }
}

/// `instant + duration`, or [`max_instant`] where that overflows.
pub(crate) fn saturating_add(instant: Instant, duration: Duration) -> Instant {
    instant.checked_add(duration).unwrap_or_else(max_instant)
}

/// The latest `Instant` the platform represents: no sum of an `Instant`
/// and a `Duration` is later. Found once, by bisection (the standard
/// library has no `Instant::MAX`).
pub(crate) fn max_instant() -> Instant {
    static MAX: OnceLock<Instant> = OnceLock::new();
    *MAX.get_or_init(|| {
        let base = Instant::now();
        let secs = largest(u64::MAX, |s| {
            base.checked_add(Duration::from_secs(s)).is_some()
        });
        let base = base + Duration::from_secs(secs);
        let nanos = largest(999_999_999, |n| {
            base.checked_add(Duration::from_nanos(n)).is_some()
        });
        base + Duration::from_nanos(nanos)
    })
}

/// The largest `n <= max` with `fits(n)`, for a `fits` that holds up to
/// some bound and fails above it (`fits(0)` must hold).
fn largest(max: u64, fits: impl Fn(u64) -> bool) -> u64 {
    let (mut low, mut high) = (0, max);
    while low < high {
        let mid = low + (high - low).div_ceil(2);
        if fits(mid) {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    low
}
