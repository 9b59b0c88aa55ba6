//! [`RuntimeTimer`]: hyper's `Timer` on this runtime's wheel.

use std::pin::Pin;
use std::time::{Duration, Instant};

use crate::context;
use crate::time::Sleep;

/// hyper's timer (header-read timeouts, keep-alive pings, the client
/// pool's idle timeout) on this runtime's timer wheel. The counterpart of
/// hyper-util's `TokioTimer`.
///
/// The sleeps it hands out are [`waitrt::time::Sleep`](Sleep)s, boxed;
/// [`reset`](hyper::rt::Timer::reset) finds ours by downcasting and moves
/// the deadline in place ([`Sleep::reset`]: same wheel node, nothing
/// allocated), which is what hyper does to a header-read timeout on every
/// request of a keep-alive connection. A sleep from another timer is
/// replaced by a fresh one, as hyper's default does.
///
/// [`now`](hyper::rt::Timer::now) is the runtime's clock
/// ([`waitrt::time::now`](crate::time::now)), so a paused clock (the test
/// toolkit's, `start_paused`) drives hyper's timeouts too; outside a
/// runtime, or on one without timers, it is `Instant::now()`. A paused
/// clock jumps while every task waits on sockets, so a client outside the
/// runtime (a plain thread, another process) meets hyper's timeouts at
/// once: see [`time`](crate::time).
///
/// # Panics
///
/// `sleep` and `sleep_until` panic outside a runtime, or on one built
/// without timers (as [`crate::time::sleep`] does). hyper calls them from
/// the connection future, which runs on the runtime.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use hyper::rt::Timer;
/// use waitrt::hyper::RuntimeTimer;
///
/// let rt = waitrt::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
/// rt.block_on(async {
///     let timer = RuntimeTimer::new();
///     let start = timer.now();
///     let mut sleep = timer.sleep(Duration::from_secs(60));
///     timer.reset(&mut sleep, start + Duration::from_secs(1));
///     sleep.await;
///     assert_eq!(timer.now() - start, Duration::from_secs(1));
/// });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RuntimeTimer {
    _private: (),
}

impl RuntimeTimer {
    /// A timer on the runtime it is called from.
    pub fn new() -> RuntimeTimer {
        RuntimeTimer { _private: () }
    }
}

impl hyper::rt::Timer for RuntimeTimer {
    #[track_caller]
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(crate::time::sleep(duration))
    }

    #[track_caller]
    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(crate::time::sleep_until(deadline))
    }

    fn now(&self) -> Instant {
        if crate::time::all_clocks_real() {
            return Instant::now(); // what the runtime's clock would say
        }
        context::with_scheduler(|scheduler| {
            let time = scheduler.common().time.as_ref()?;
            Some(time.clock().now())
        })
        .flatten()
        .unwrap_or_else(Instant::now)
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<Sleep>() {
            // `Sleep` is `Unpin`: reset it where it is.
            Some(mut ours) => ours.reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// Our `Sleep` is hyper's sleep as it is (no wrapper, so `reset` downcasts
/// to it directly).
impl hyper::rt::Sleep for Sleep {}
