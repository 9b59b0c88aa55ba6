//! Timer faults (#18): the timer functions' panics point at their caller.
//!
//! No test measures time: the paused clock moves by `advance` or jumps to
//! the next timer, starvation is counted in loop steps, and hangs are
//! caught by the watchdog.
#[macro_use]
mod support;

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;
use std::time::Duration;

use runtime::time::{interval, interval_at, now, sleep, sleep_until, timeout, timeout_at};
use runtime::Builder;

/// A builder of the flavour (`None`: current-thread; `Some(n)`: n workers).
fn builder(workers: Option<usize>) -> Builder {
    match workers {
        None => Builder::new_current_thread(),
        Some(n) => {
            let mut builder = Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
    }
}

// ===== 4. panics point at the caller =====

thread_local! {
    /// `Some` while this thread captures panic locations (file, line).
    static CAPTURE: RefCell<Option<Option<(String, u32)>>> = const { RefCell::new(None) };
}

/// Where `f` panicked, as the panic hook reports it (the hook stays quiet
/// for captured panics and passes every other panic to the default hook).
fn panic_location(f: impl FnOnce()) -> (String, u32) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let captured = CAPTURE.with(|capture| {
                let mut capture = capture.borrow_mut();
                let slot = capture.as_mut()?;
                *slot = info.location().map(|l| (l.file().to_owned(), l.line()));
                Some(())
            });
            if captured.is_none() {
                previous(info);
            }
        }));
    });
    CAPTURE.with(|capture| *capture.borrow_mut() = Some(None));
    let result = catch_unwind(AssertUnwindSafe(f));
    let location = CAPTURE.with(|capture| capture.borrow_mut().take());
    assert!(result.is_err(), "did not panic");
    location.flatten().expect("the hook saw the panic")
}

/// Drops what a call returned (a future, an `Instant`...).
fn discard<T>(_: T) {}

/// Asserts that `$call` panics at a location in this file.
macro_rules! panics_here {
    ($call:expr) => {{
        let (file, line) = panic_location(|| discard($call));
        assert_eq!(
            file,
            file!(),
            "`{}` panicked at {file}:{line}",
            stringify!($call)
        );
    }};
}

#[test]
fn timer_panics_point_at_the_caller() {
    support::watchdog(
        "timer_panics_point_at_the_caller",
        support::RT_LIMIT,
        || {
            for workers in [None, Some(1)] {
                // Timers disabled.
                let rt = builder(workers).build().unwrap();
                rt.block_on(async {
                    panics_here!(sleep(Duration::ZERO));
                    panics_here!(sleep_until(std::time::Instant::now()));
                    panics_here!(timeout(Duration::ZERO, async {}));
                    panics_here!(timeout_at(std::time::Instant::now(), async {}));
                    panics_here!(interval(Duration::from_secs(1)));
                    panics_here!(interval_at(
                        std::time::Instant::now(),
                        Duration::from_secs(1)
                    ));
                    panics_here!(now());
                    panics_here!(runtime::time::clock());
                });
                // A zero period.
                let rt = builder(workers).enable_time().build().unwrap();
                rt.block_on(async {
                    panics_here!(interval(Duration::ZERO));
                    panics_here!(interval_at(now(), Duration::ZERO));
                });
            }
            // Outside a runtime.
            panics_here!(sleep(Duration::ZERO));
            panics_here!(interval(Duration::from_secs(1)));
            panics_here!(now());
        },
    );
}
