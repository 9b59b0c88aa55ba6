//! [`Interval`]: ticks at a fixed period.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::clock::saturating_add;
use super::Sleep;

/// What an [`Interval`] does about ticks it missed (the task was busy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MissedTickBehavior {
    /// Fire the missed ticks back to back, then keep the original schedule.
    #[default]
    Burst,
    /// Start the schedule again from now.
    Delay,
    /// Skip the missed ticks; the next one is on the original grid.
    Skip,
}

/// Made by [`interval`](super::interval) and
/// [`interval_at`](super::interval_at): [`tick`](Interval::tick) completes
/// once per period; the first tick completes at its start instant (at once
/// for `interval`).
///
/// Each tick is a [`Sleep`]: a tick already due (the first one, or missed
/// ticks caught up in [`Burst`](MissedTickBehavior::Burst) mode, each at
/// once or at the timer driver's next turn, see [`Sleep`]) spends one
/// unit of the task's [`coop`](waitq::coop) budget, so catching up yields
/// to other tasks now and then. Schedule arithmetic saturates: a tick that
/// would lie past the latest representable `Instant` lies there, so
/// `interval(Duration::MAX)` ticks once and then never again.
#[derive(Debug)]
pub struct Interval {
    sleep: Sleep,
    period: Duration,
    missed: MissedTickBehavior,
}

/// How late a tick may be and still count as on time (tokio's figure: a
/// timer fires up to a millisecond late, plus the time to poll the task).
const MISSED_AFTER: Duration = Duration::from_millis(5);

impl Interval {
    #[track_caller]
    pub(crate) fn new(sleep: Sleep, period: Duration) -> Interval {
        assert!(
            period > Duration::ZERO,
            "`interval` period must be non-zero"
        );
        Interval {
            sleep,
            period,
            missed: MissedTickBehavior::default(),
        }
    }

    /// Waits for the next tick; returns its scheduled instant.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a `tick()` dropped before it completes consumes no
    /// tick; the next call waits for the same one.
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        let scheduled = self.sleep.deadline();
        if Pin::new(&mut self.sleep).poll(cx).is_pending() {
            return Poll::Pending;
        }
        let now = self.sleep.scheduler_now();
        // On time, give or take the timer's granularity: the next tick one
        // period after this one. Later than that (tokio's 5 ms): missed,
        // and the behaviour decides (Delay counts from now even when the
        // tick is less than a period late).
        let next = if now <= saturating_add(scheduled, MISSED_AFTER) {
            saturating_add(scheduled, self.period)
        } else {
            match self.missed {
                MissedTickBehavior::Burst => saturating_add(scheduled, self.period),
                MissedTickBehavior::Delay => saturating_add(now, self.period),
                MissedTickBehavior::Skip => {
                    // The next point of the grid after `now`, in whole
                    // nanoseconds (`u128`: any number of missed periods;
                    // counting them in a `u32` stopped short after 2^32 and
                    // burst stale ticks, an independent probe).
                    let behind = now.duration_since(scheduled).as_nanos();
                    let period = self.period.as_nanos();
                    let rest = period - behind % period;
                    const NANOS: u128 = 1_000_000_000;
                    let ahead = Duration::new(
                        u64::try_from(rest / NANOS).unwrap_or(u64::MAX),
                        (rest % NANOS) as u32,
                    );
                    saturating_add(now, ahead)
                }
            }
        };
        self.sleep.reset(next);
        Poll::Ready(scheduled)
    }

    /// Sets how missed ticks are handled.
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed = behavior;
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Restarts the schedule: the next tick is one period from now.
    pub fn reset(&mut self) {
        let now = self.sleep.scheduler_now();
        self.sleep.reset(saturating_add(now, self.period));
    }

    /// Restarts the schedule from now: the next tick is due at once, the
    /// one after it a period later.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = waitrt::Builder::new_current_thread().start_paused(true).build().unwrap();
    /// rt.block_on(async {
    ///     let mut ticks = waitrt::time::interval(Duration::from_secs(10));
    ///     ticks.tick().await;
    ///     ticks.reset_immediately();
    ///     let start = waitrt::time::now();
    ///     ticks.tick().await;
    ///     assert_eq!(waitrt::time::now(), start);
    /// });
    /// ```
    pub fn reset_immediately(&mut self) {
        let now = self.sleep.scheduler_now();
        self.sleep.reset(now);
    }

    /// Restarts the schedule: the next tick is due `after` from now.
    pub fn reset_after(&mut self, after: Duration) {
        let now = self.sleep.scheduler_now();
        self.sleep.reset(saturating_add(now, after));
    }

    /// Restarts the schedule: the next tick is due at `deadline` (at once
    /// if that has passed), the ones after it a period apart.
    pub fn reset_at(&mut self, deadline: Instant) {
        self.sleep.reset(deadline);
    }

    /// How missed ticks are handled (see
    /// [`set_missed_tick_behavior`](Self::set_missed_tick_behavior)).
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.missed
    }
}
