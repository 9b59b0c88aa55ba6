//! [`Sleep`]: a deadline plus the key of its timer in the driver's wheel.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use super::driver::{Driver, Registered, TimerKey, TimerState};
use crate::scheduler::Scheduler;

/// A future that completes at a deadline; made by [`sleep`](super::sleep)
/// and [`sleep_until`](super::sleep_until).
///
/// The timer is registered on the first poll (creating and dropping a
/// `Sleep` costs nothing) and removed from the wheel when dropped, in O(1).
/// A deadline that has passed completes on the first poll if the timer
/// driver had reached it when it last turned (it turns whenever a worker
/// parks, and every few dozen task polls), and otherwise at its next turn:
/// the first poll reads no clock, as tokio's does not (a read costs about
/// a fifth of a registration). The kernel's absolute hrtimers behave
/// alike: one started in the past fires from the next timer interrupt. A
/// zero-length [`sleep`](super::sleep) completes on its first poll.
/// A registered timer is one 40-byte node of the wheel; [`reset`](Self::reset)
/// moves it in place, without allocating.
///
/// A deadline is never cut short: one beyond the timer wheel's range
/// (about 8.9 years ahead) wakes the sleep at the end of the range, and the
/// sleep registers again until its deadline comes. `Duration::MAX` (or any
/// deadline that overflows `Instant`) means the latest instant the platform
/// represents: such a sleep never completes on a real clock.
///
/// # Cooperative budget
///
/// A poll that completes spends one unit of the task's
/// [`coop`](waitq::coop) budget, so a loop over sleeps that are already
/// due (`sleep(Duration::ZERO)`, an elapsed `Sleep` awaited again) yields
/// to the other tasks once the budget is spent, like any wait.
///
/// # Cancel safety
///
/// Dropping a `Sleep` before it completes removes its timer; nothing else
/// is lost. Awaiting `&mut sleep` in a `select!` loop keeps the deadline.
///
/// # Panics
///
/// Polling panics if the runtime that made it has shut down (the timer can
/// never fire; the message says so).
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    /// The deadline the wheel's timer was registered (or moved) with; a
    /// reset to a later deadline leaves the timer here (see `reset`).
    armed: Instant,
    scheduler: Scheduler,
    /// The key of the timer while one is registered (the `Sleep` owns it:
    /// the node stays in the wheel until the `Sleep` removes it).
    timer: Option<TimerKey>,
    /// The deadline was reached (and no timer is registered).
    elapsed: bool,
}

impl Sleep {
    #[track_caller]
    pub(crate) fn new(scheduler: Scheduler, deadline: Instant) -> Sleep {
        assert!(
            scheduler.common().time.is_some(),
            "timers are disabled on this runtime: build it with `enable_time()` or `enable_all()`"
        );
        Sleep {
            deadline,
            armed: deadline,
            scheduler,
            timer: None,
            elapsed: false,
        }
    }

    /// A sleep whose deadline is the instant the clock was just read at
    /// (`sleep(Duration::ZERO)`): it completes on its first poll.
    pub(crate) fn due_now(mut self) -> Sleep {
        self.elapsed = true;
        self
    }

    /// The instant this sleep completes at.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has been reached (after a `Ready` poll, and
    /// from the start for a zero-length [`sleep`](super::sleep)).
    pub fn is_elapsed(&self) -> bool {
        self.elapsed
    }

    /// Moves the deadline; the sleep can be awaited again (also after it
    /// completed). A registered timer moved earlier is moved in place in
    /// the wheel (same node, nothing allocated), and a task already waiting
    /// on it is woken at the new deadline without polling it first (at
    /// once if that has passed, whichever task moved it). Moved
    /// later, it stays where it is, untouched (no lock, as tokio does): when
    /// it fires, the sleep sees its deadline has not come and moves itself
    /// there, so the task is woken at the new deadline, after one poll at
    /// the old one. An unregistered sleep is registered on its next poll.
    ///
    /// `Sleep` is `Unpin`, so tokio's `sleep.as_mut().reset(deadline)` on a
    /// pinned `Sleep` works as it is.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = waitrt::Builder::new_current_thread().start_paused(true).build().unwrap();
    /// rt.block_on(async {
    ///     let start = waitrt::time::now();
    ///     let mut sleep = waitrt::time::sleep(Duration::from_secs(60));
    ///     sleep.reset(start + Duration::from_secs(1));
    ///     (&mut sleep).await;
    ///     assert_eq!(waitrt::time::now() - start, Duration::from_secs(1));
    /// });
    /// ```
    pub fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.elapsed = false;
        if self.timer.is_none() || deadline >= self.armed {
            // Unregistered: registers on the next poll. Later: the timer
            // fires at `armed` and re-arms (see `poll`).
            return;
        }
        // `None`: removed (due, fired or closed); the next poll registers
        // afresh, or completes at once if the wheel is past the deadline.
        if let Some(unpark) = driver(&self.scheduler).reset(&mut self.timer, deadline) {
            self.armed = deadline;
            if unpark {
                self.scheduler.unpark_driver();
            }
        }
    }

    fn driver(&self) -> &Driver {
        driver(&self.scheduler)
    }
}

/// The timer driver of `scheduler` (a function of the field alone, so that
/// the `Sleep`'s other fields can be borrowed beside it).
fn driver(scheduler: &Scheduler) -> &Driver {
    scheduler
        .common()
        .time
        .as_ref()
        .expect("checked in Sleep::new")
}

#[cold]
#[track_caller]
fn shut_down() -> ! {
    panic!("the runtime that owns this timer has shut down: the timer can never fire")
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if waitq::hook::is_probing() {
            // The test toolkit's probe: report nothing, change nothing (a
            // timer cannot lose a wake-up: see the driver's docs).
            return Poll::Pending;
        }
        let driver = driver(&this.scheduler);
        loop {
            if this.timer.is_some() {
                match driver.poll_timer(&mut this.timer, cx.waker()) {
                    TimerState::Pending => return Poll::Pending,
                    // Removed: a later poll registers again, and panics again.
                    TimerState::Closed => shut_down(),
                    // Removed. Fired before the deadline (at the wheel's
                    // horizon, or at the deadline before a reset moved it
                    // later): register again (no progress made).
                    TimerState::Fired => this.elapsed = driver.clock().now() >= this.deadline,
                }
            } else if this.elapsed {
                ready!(waitq::coop::poll_proceed(cx));
                return Poll::Ready(());
            } else {
                // No clock read here (one costs about a fifth of a
                // registration): the wheel compares the deadline with the
                // tick it last reached, and one past that but not past
                // its next turn fires then.
                let waker = cx.waker().clone();
                match driver.register(this.deadline, waker) {
                    Registered::Pending { key, unpark } => {
                        if unpark {
                            this.scheduler.unpark_driver();
                        }
                        this.timer = Some(key);
                        this.armed = this.deadline;
                        return Poll::Pending;
                    }
                    Registered::Due => this.elapsed = true,
                    // Past the driver's last tick: no timer can fire.
                    Registered::Never => return Poll::Pending,
                    Registered::Shutdown => shut_down(),
                }
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.timer.take() {
            self.driver().cancel(key);
        }
    }
}

impl Sleep {
    /// The runtime clock's current instant.
    pub(crate) fn scheduler_now(&self) -> Instant {
        self.driver().clock().now()
    }
}
