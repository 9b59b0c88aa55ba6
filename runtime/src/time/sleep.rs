//! [`Sleep`]: a timer entry whose sleeper waits on the entry's wait queue.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use waitq::PollWaiter;

use super::driver::{Registered, TimerShared};
use super::wheel::TimerKey;
use crate::scheduler::Scheduler;

/// A future that completes at a deadline; made by [`sleep`](super::sleep)
/// and [`sleep_until`](super::sleep_until).
///
/// The timer is registered on the first poll (creating and dropping a
/// `Sleep` costs nothing) and removed from the wheel when dropped, in O(1).
/// A deadline already past completes on the first poll, with no extra tick.
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
    scheduler: Scheduler,
    state: State,
}

#[derive(Debug)]
enum State {
    Idle,
    Registered {
        key: TimerKey,
        timer: Arc<TimerShared>,
        waiter: PollWaiter<TimerQueue>,
    },
    Done,
}

/// Lets the waiter own a reference to the timer's queue.
#[derive(Debug)]
struct TimerQueue(Arc<TimerShared>);

impl std::ops::Deref for TimerQueue {
    type Target = waitq::WaitQueue;
    fn deref(&self) -> &waitq::WaitQueue {
        &self.0.queue
    }
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
            scheduler,
            state: State::Idle,
        }
    }

    /// The instant this sleep completes at.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has been reached (after a `Ready` poll).
    pub fn is_elapsed(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Moves the deadline; the sleep can be awaited again.
    pub fn reset(&mut self, deadline: Instant) {
        self.unregister();
        self.deadline = deadline;
        self.state = State::Idle;
    }

    fn driver(&self) -> &super::driver::Driver {
        self.scheduler
            .common()
            .time
            .as_ref()
            .expect("checked in Sleep::new")
    }

    fn unregister(&mut self) {
        if let State::Registered { key, timer, .. } =
            std::mem::replace(&mut self.state, State::Done)
        {
            if !timer.is_fired() && !timer.queue.is_closed() {
                self.driver().cancel(key);
            }
        }
    }
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
        loop {
            match &mut this.state {
                State::Done => {
                    ready!(waitq::coop::poll_proceed(cx));
                    return Poll::Ready(());
                }
                State::Idle => {
                    if this.driver().clock().now() >= this.deadline {
                        // Due at once: spends budget like any other wait.
                        ready!(waitq::coop::poll_proceed(cx));
                        this.state = State::Done;
                        return Poll::Ready(());
                    }
                    let timer = Arc::new(TimerShared::default());
                    match this.driver().register(this.deadline, timer.clone()) {
                        Registered::Pending { key, unpark } => {
                            if unpark {
                                this.scheduler.unpark_driver();
                            }
                            this.state = State::Registered {
                                key,
                                waiter: PollWaiter::new(TimerQueue(timer.clone())),
                                timer,
                            };
                        }
                        Registered::Due => {
                            ready!(waitq::coop::poll_proceed(cx));
                            this.state = State::Done;
                            return Poll::Ready(());
                        }
                        // Past the driver's last tick: no timer can fire.
                        Registered::Never => return Poll::Pending,
                        Registered::Shutdown => shut_down(),
                    }
                }
                State::Registered { timer, waiter, .. } => {
                    // (The wait spends the budget.)
                    match waiter.poll_wait_event(cx, || timer.is_fired()) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(_closed)) => shut_down(),
                        Poll::Ready(Ok(())) => {
                            if this.driver().clock().now() >= this.deadline {
                                this.state = State::Done;
                                return Poll::Ready(());
                            }
                            // Fired at the wheel's horizon, before the
                            // deadline: register again (no progress made).
                            waitq::coop::refund();
                            this.state = State::Idle;
                        }
                    }
                }
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl Sleep {
    /// The runtime clock's current instant.
    pub(crate) fn scheduler_now(&self) -> Instant {
        self.driver().clock().now()
    }
}
