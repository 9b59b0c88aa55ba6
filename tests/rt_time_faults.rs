//! Timer faults (#18), on every scheduler flavour: timers that are already
//! due spend the cooperative budget (a loop over them lets other tasks
//! run); deadlines beyond the wheel's range (about 8.9 years) and
//! `Duration::MAX` never fire early; `interval(Duration::MAX)` and
//! `advance(Duration::MAX)` saturate instead of panicking; the timer
//! functions' panics point at their caller; a panicking timer waker takes
//! no runtime thread down; a sleep that fired and is not polled again
//! counts as no pending timer, and still completes, resets and drops.
//!
//! No test measures time: the paused clock moves by `advance` or jumps to
//! the next timer, starvation is counted in loop steps, and hangs are
//! caught by the watchdog.
#[macro_use]
mod support;

use std::cell::RefCell;
use std::future::{pending, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Once};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures::poll;
use waitrt::sync::WaitQueue;
use waitrt::time::{
    advance, interval, interval_at, now, sleep, sleep_until, timeout, timeout_at,
    MissedTickBehavior,
};
use waitrt::{Builder, Runtime, UnhandledPanic};

const YEAR: Duration = Duration::from_secs(365 * 86_400);

/// Expands like `rt_test!`, on runtimes whose clock starts paused.
macro_rules! paused_test {
    (fn $name:ident($rt:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn current_thread() {
                super::run_paused(
                    concat!(stringify!($name), "::current_thread"),
                    None,
                    |$rt: Runtime| $body,
                );
            }

            #[test]
            fn multi_thread_1() {
                super::run_paused(
                    concat!(stringify!($name), "::multi_thread_1"),
                    Some(1),
                    |$rt: Runtime| $body,
                );
            }

            #[test]
            fn multi_thread_2() {
                super::run_paused(
                    concat!(stringify!($name), "::multi_thread_2"),
                    Some(2),
                    |$rt: Runtime| $body,
                );
            }
        }
    };
}

fn run_paused(what: &'static str, workers: Option<usize>, body: fn(Runtime)) {
    support::watchdog(what, support::RT_LIMIT, move || {
        body(
            builder(workers)
                .enable_all()
                .start_paused(true)
                .build()
                .unwrap(),
        )
    });
}

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

// ===== 1. the cooperative budget =====

/// Steps a looping task may take before another task must have run: far
/// above the budget (128 polls), far below "forever".
const STEPS: usize = 1_000_000;

/// Spawns `looper` with a flag, then a task that sets the flag; `looper`
/// steps until it sees the flag (through [`go_on`]). Without the budget
/// the looper never yields, the other task never runs, and `go_on` fails.
async fn other_task_runs<Fut>(looper: impl FnOnce(Arc<AtomicBool>) -> Fut)
where
    Fut: Future<Output = ()> + Send + 'static,
{
    let flag = Arc::new(AtomicBool::new(false));
    let looping = waitrt::spawn(looper(flag.clone()));
    let setter = waitrt::spawn(async move { flag.store(true, SeqCst) });
    looping
        .await
        .expect("the looping task starved the other task");
    setter.await.unwrap();
}

/// Whether the looper takes another step; panics after [`STEPS`].
fn go_on(flag: &AtomicBool, steps: &mut usize) -> bool {
    if flag.load(SeqCst) {
        return false;
    }
    *steps += 1;
    assert!(
        *steps <= STEPS,
        "{STEPS} ready timers in a row and the other task never ran: they spend no budget"
    );
    true
}

rt_test! {
    fn sleep_zero_in_a_loop_lets_other_tasks_run(rt) {
        rt.block_on(other_task_runs(|flag| async move {
            let mut steps = 0;
            while go_on(&flag, &mut steps) {
                sleep(Duration::ZERO).await;
            }
        }));
    }
}

rt_test! {
    fn sleep_until_past_in_a_loop_lets_other_tasks_run(rt) {
        rt.block_on(other_task_runs(|flag| async move {
            let past = now();
            let mut steps = 0;
            while go_on(&flag, &mut steps) {
                sleep_until(past).await;
            }
        }));
    }
}

rt_test! {
    fn elapsed_sleep_polled_again_lets_other_tasks_run(rt) {
        rt.block_on(other_task_runs(|flag| async move {
            let mut done = pin!(sleep(Duration::ZERO));
            let mut steps = 0;
            while go_on(&flag, &mut steps) {
                done.as_mut().await;
            }
        }));
    }
}

rt_test! {
    fn timeout_zero_in_a_loop_lets_other_tasks_run(rt) {
        rt.block_on(other_task_runs(|flag| async move {
            let mut steps = 0;
            while go_on(&flag, &mut steps) {
                assert!(timeout(Duration::ZERO, pending::<()>()).await.is_err());
                assert!(timeout_at(now(), pending::<()>()).await.is_err());
            }
        }));
    }
}

rt_test! {
    fn interval_catching_up_lets_other_tasks_run(rt) {
        rt.block_on(async {
            // A billion ticks behind, caught up in burst mode.
            let start = now() - Duration::from_secs(1);
            let ticks = interval_at(start, Duration::from_nanos(1));
            other_task_runs(|flag| async move {
                let mut ticks = ticks;
                let mut steps = 0;
                while go_on(&flag, &mut steps) {
                    ticks.tick().await;
                }
            })
            .await;
        });
    }
}

paused_test! {
    fn interval_catching_up_after_advance_lets_other_tasks_run(rt) {
        rt.block_on(async {
            let mut ticks = interval(Duration::from_nanos(1));
            ticks.tick().await;
            advance(Duration::from_secs(1)).await;
            other_task_runs(|flag| async move {
                let mut steps = 0;
                while go_on(&flag, &mut steps) {
                    ticks.tick().await;
                }
            })
            .await;
        });
    }
}

/// A future that spends the whole budget on every poll and never ends.
struct BudgetEater {
    polls: Arc<AtomicUsize>,
}

impl Future for BudgetEater {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let polls = self.polls.fetch_add(1, SeqCst) + 1;
        assert!(polls < 10_000, "the timeout never fired");
        while waitq::coop::poll_proceed(cx).is_ready() {}
        Poll::Pending
    }
}

rt_test! {
    fn timeout_fires_when_its_future_spends_the_budget(rt) {
        // The deadline is polled without a budget when the inner future
        // spent it (as tokio's `Timeout` does), or it could never fire.
        rt.block_on(async {
            let polls = Arc::new(AtomicUsize::new(0));
            let out = waitrt::spawn({
                let polls = polls.clone();
                async move { timeout(Duration::ZERO, BudgetEater { polls }).await }
            });
            assert!(out.await.unwrap().is_err());
            assert_eq!(polls.load(SeqCst), 1);
        });
    }
}

// ===== 2. far deadlines =====

paused_test! {
    fn deadlines_beyond_the_wheel_range_are_not_cut_short(rt) {
        rt.block_on(async {
            // Nothing else runs: the paused clock jumps from timer to timer,
            // so an early fire shows as an early `now()`.
            let far = 20 * YEAR;
            let start = now();
            sleep(far).await;
            assert!(now() - start >= far, "sleep(20 years) ended after {:?}", now() - start);

            let start = now();
            assert!(timeout(far, pending::<()>()).await.is_err());
            assert!(now() - start >= far, "timeout(20 years) fired after {:?}", now() - start);

            let start = now();
            let queue = WaitQueue::new();
            let err = queue
                .wait_event_timeout(&waitrt::time::clock(), far, || false)
                .await
                .unwrap_err();
            assert!(!err.is_closed());
            assert!(now() - start >= far, "wait_event_timeout(20 years) ended after {:?}", now() - start);
        });
    }
}

paused_test! {
    fn duration_max_never_fires(rt) {
        rt.block_on(async {
            let mut forever = pin!(sleep(Duration::MAX));
            let mut bounded = pin!(timeout(Duration::MAX, pending::<()>()));
            let mut ticks = interval(Duration::MAX);
            ticks.tick().await;
            assert!(poll!(forever.as_mut()).is_pending());
            assert!(poll!(bounded.as_mut()).is_pending());
            for _ in 0..4 {
                // Past the old 30-year stand-in for "never", and far past
                // the wheel's range.
                advance(31 * YEAR).await;
                assert!(poll!(forever.as_mut()).is_pending(), "sleep(Duration::MAX) fired");
                assert!(poll!(bounded.as_mut()).is_pending(), "timeout(Duration::MAX) fired");
                assert!(poll!(pin!(sleep(Duration::MAX))).is_pending());
                // `interval(Duration::MAX)`'s second tick: no overflow.
                assert!(poll!(pin!(ticks.tick())).is_pending());
            }
            // Past the driver's last tick (2^64 microseconds, about 584,000
            // years): the sleeps cannot be stored any more, and still wait.
            advance(600_000 * YEAR).await;
            assert!(poll!(forever.as_mut()).is_pending(), "sleep(Duration::MAX) fired");
            assert!(poll!(bounded.as_mut()).is_pending(), "timeout(Duration::MAX) fired");
            assert!(poll!(pin!(sleep(Duration::MAX))).is_pending());
        });
    }
}

paused_test! {
    // `sleep(Duration::MAX)` ("forever") holds no timer: a paused clock
    // that jumps to its next timer passes it by. It was stored at the
    // wheel's last tick, fired early at each horizon (about 8.9 years of
    // the clock) and registered again, so a paused clock with nothing else
    // to do jumped horizon after horizon (found by an independent probe:
    // `block_on(sleep(Duration::MAX))` on a paused clock kept a core busy
    // for about 12 s). Here the forever sleep is polled once while the
    // clock jumps 100 years; it was polled at every horizon before.
    fn a_sleep_past_the_end_of_time_holds_no_timer(rt) {
        rt.block_on(async {
            // Its first poll is awaited on a queue, not by a number of
            // yields: on 2 workers of a loaded machine the worker may not
            // run for longer than 10,000 yields take (seen in CI).
            static POLLED: WaitQueue = WaitQueue::new();
            let polls = Arc::new(AtomicUsize::new(0));
            let forever = {
                let polls = polls.clone();
                let mut sleep = Box::pin(sleep(Duration::MAX));
                waitrt::spawn(std::future::poll_fn(move |cx| {
                    polls.fetch_add(1, SeqCst);
                    POLLED.wake_up_all();
                    sleep.as_mut().poll(cx)
                }))
            };
            POLLED.wait_event(|| polls.load(SeqCst) > 0).await.unwrap();
            assert_eq!(polls.load(SeqCst), 1);
            let metrics = waitrt::Handle::current().metrics();
            assert_eq!(metrics.pending_timers(), 0, "a timer for never");
            // The clock jumps to the timeout, 100 years on, in one step.
            let start = now();
            assert!(timeout(100 * YEAR, pending::<()>()).await.is_err());
            assert!(now() - start >= 100 * YEAR);
            assert_eq!(polls.load(SeqCst), 1, "the forever sleep was woken");
            assert!(!forever.is_finished());
            forever.abort();
        });
    }
}

// ===== 3. saturation =====

paused_test! {
    fn advance_by_duration_max_saturates(rt) {
        rt.block_on(async {
            let start = now();
            let mut ticks = interval(Duration::MAX);
            ticks.tick().await;
            advance(Duration::MAX).await;
            assert!(now() - start > 1_000_000 * YEAR, "the clock moved only {:?}", now() - start);
            // The clock is as late as it gets: every deadline has passed.
            sleep(Duration::from_secs(1)).await;
            sleep(Duration::MAX).await;
            advance(Duration::MAX).await;
            // Ticks past the end of time: each behaviour's next tick saturates.
            for behavior in [MissedTickBehavior::Burst, MissedTickBehavior::Delay, MissedTickBehavior::Skip] {
                ticks.set_missed_tick_behavior(behavior);
                ticks.tick().await;
            }
            ticks.reset();
            ticks.tick().await;
        });
    }
}

// A tick taken late: where the next one goes (tokio's rule: a tick more
// than 5 ms late is missed, and the behaviour decides; Delay puts the next
// one a full period after the late one, even when it is less than a period
// late: it used to go back on the old schedule, 50 ms after a tick 50 ms
// late).
paused_test! {
    fn missed_tick_behaviour_after_a_late_tick(rt) {
        rt.block_on(async {
            let ms = Duration::from_millis;
            let cases = [
                (MissedTickBehavior::Delay, 150, 250),
                (MissedTickBehavior::Delay, 350, 450),
                (MissedTickBehavior::Delay, 103, 200), // within 5 ms: on time
                (MissedTickBehavior::Burst, 150, 200),
                (MissedTickBehavior::Burst, 350, 200),
                (MissedTickBehavior::Skip, 150, 200),
                (MissedTickBehavior::Skip, 350, 400),
            ];
            for (behavior, late, want) in cases {
                let start = now();
                let mut ticks = interval(ms(100));
                ticks.set_missed_tick_behavior(behavior);
                assert_eq!(ticks.tick().await, start);
                advance(ms(late)).await;
                assert_eq!(ticks.tick().await, start + ms(100), "{behavior:?} {late}");
                let next = ticks.tick().await - start;
                assert_eq!(next, ms(want), "{behavior:?}, {late} ms late");
            }
        });
    }
}

// Skip after more missed periods than a `u32` counts (2^32 ms is about 50
// days): the next tick is the next point of the grid after now, not a
// stale one that fires at once (the count stopped at 2^32 and two stale
// ticks burst out: an independent probe; tokio skips them).
paused_test! {
    fn skip_after_more_than_two_to_the_32_missed_periods(rt) {
        rt.block_on(async {
            let start = now();
            let mut ticks = interval(Duration::from_millis(1));
            ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
            assert_eq!(ticks.tick().await, start);
            let stall = Duration::from_secs(100 * 24 * 3600);
            advance(stall).await;
            // The missed tick comes first, then the grid after now.
            assert_eq!(ticks.tick().await - start, Duration::from_millis(1));
            let grid = stall + Duration::from_millis(1);
            for k in 0..3 {
                let tick = ticks.tick().await - start;
                assert_eq!(tick, grid + Duration::from_millis(k), "tick {k} after the stall");
            }
        });
    }
}

/// A timer at the wheel's last tick wakes a worker parked with no timer:
/// here, a sleep made when the paused clock stands at the end of time
/// (its deadline saturates to that tick) while the worker that holds the
/// timer driver is parked untimed. It hung before the driver unparked
/// for that tick too.
#[test]
fn timer_at_the_last_tick_wakes_a_worker_parked_without_timers() {
    for workers in [1, 2] {
        support::watchdog("timer_at_the_last_tick", support::RT_LIMIT, move || {
            let rt = Builder::new_multi_thread()
                .worker_threads(workers)
                .start_paused(true)
                .build()
                .unwrap();
            rt.block_on(async {
                advance(Duration::MAX).await;
                for _ in 0..3 {
                    // Every thread idle with no timer: the worker that
                    // holds the driver parks for good. A plain thread then
                    // wakes this one, which makes a timer.
                    let (tx, rx) = waitrt::sync::oneshot::channel();
                    let waker = std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(20));
                        tx.send(()).unwrap();
                    });
                    rx.await.unwrap();
                    waker.join().unwrap();
                    sleep(Duration::from_secs(1)).await;
                }
            });
        });
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
                    panics_here!(waitrt::time::clock());
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

// ===== 5. a panicking timer waker =====

/// A waker that panics when woken.
struct PanickingWaker;

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("a timer's waker panics on purpose (test)");
    }
}

/// A sleep registered with a [`PanickingWaker`], kept alive (not awaited).
struct Hostile {
    _sleep: Pin<Box<waitrt::time::Sleep>>,
}

/// A [`Hostile`] sleep of `duration`. (On a paused multi-thread runtime an
/// idle worker may jump the clock to the new timer and fire it before the
/// waker is in: then try again.)
fn hostile_sleep(duration: Duration) -> Hostile {
    let waker = Waker::from(Arc::new(PanickingWaker));
    for _ in 0..1_000 {
        let mut sleep = Box::pin(sleep(duration));
        if sleep
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
        {
            return Hostile { _sleep: sleep };
        }
    }
    panic!("a sleep of {duration:?} never stayed pending");
}

paused_test! {
    fn panicking_timer_waker_takes_no_thread_down(rt) {
        rt.block_on(async {
            // Registered from a task, woken by the driver on the thread
            // that drives it (a worker, or block_on's).
            let hostile = waitrt::spawn(async { hostile_sleep(Duration::from_secs(1)) })
                .await
                .unwrap();
            // Due with the hostile timer (the same batch, unless a jump
            // of the clock came between the two).
            let same_batch = waitrt::spawn(sleep(Duration::from_secs(1)));
            // The clock jumps to 1 s (the hostile waker panics), then to 2 s.
            sleep(Duration::from_secs(2)).await;
            same_batch.await.unwrap();
            assert_eq!(waitrt::spawn(async { 7 }).await.unwrap(), 7);
            drop(hostile);
        });
        assert!(rt.shutdown_timeout(Duration::from_secs(3600)), "a runtime thread died");
    }
}

rt_test! {
    fn panicking_timer_waker_on_the_real_clock(rt) {
        let at_shutdown = rt.block_on(async {
            let hostile = hostile_sleep(Duration::from_millis(1));
            // Fires after the hostile timer (deadline order).
            sleep(Duration::from_millis(20)).await;
            assert_eq!(waitrt::spawn(async { 7 }).await.unwrap(), 7);
            drop(hostile);
            // Still pending at shutdown, which closes its queue: a wake.
            hostile_sleep(Duration::from_secs(3600))
        });
        assert!(rt.shutdown_timeout(Duration::from_secs(3600)), "a runtime thread died");
        drop(at_shutdown);
    }
}

#[test]
fn panicking_timer_waker_under_shutdown_runtime_policy() {
    support::watchdog(
        "panicking_timer_waker_under_shutdown_runtime_policy",
        support::RT_LIMIT,
        || {
            for workers in [None, Some(1), Some(2)] {
                let rt = builder(workers)
                    .enable_all()
                    .unhandled_panic(UnhandledPanic::ShutdownRuntime)
                    .build()
                    .unwrap();
                let out = catch_unwind(AssertUnwindSafe(|| {
                    rt.block_on(async {
                        let _hostile = hostile_sleep(Duration::from_millis(1));
                        pending::<()>().await;
                    })
                }));
                let message = support::panic_message(&*out.expect_err("block_on must panic"));
                assert!(
                    message.contains("the waker of a timer") && message.contains("ShutdownRuntime"),
                    "{workers:?}: {message}"
                );
                assert!(
                    rt.shutdown_timeout(Duration::from_secs(3600)),
                    "{workers:?}: a runtime thread died"
                );
            }
        },
    );
}

#[test]
fn test_util_advance_by_duration_max_saturates() {
    support::watchdog(
        "test_util::advance(Duration::MAX)",
        support::RT_LIMIT,
        || {
            let rt = waitrt::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .unwrap();
            rt.block_on(async {
                let start = now();
                waitrt::test_util::advance(Duration::MAX).await;
                assert!(
                    now() - start > 1_000_000 * YEAR,
                    "the clock moved only {:?}",
                    now() - start
                );
                sleep(Duration::from_secs(1)).await;
            });
        },
    );
}

// The paused clock jumps only when no thread of the runtime runs tasks: a
// `block_on` future or a task between reading the clock and registering its
// timer must not find the clock already moved past its deadline (an idle
// worker jumping to the next timer, a day away, made a fresh `sleep(1 h)`
// ready at its first poll, a day late).
paused_test! {
    fn the_paused_clock_never_jumps_while_a_thread_runs_tasks(rt) {
        const DAY: Duration = Duration::from_secs(86_400);
        const HOUR: Duration = Duration::from_secs(3_600);
        rt.block_on(async {
            // Always a timer a day away for an idle worker to jump to.
            let background = waitrt::spawn(async {
                loop {
                    sleep(DAY).await;
                }
            });
            let in_task = waitrt::spawn(async {
                for i in 0..300 {
                    let start = now();
                    sleep(HOUR).await;
                    assert_eq!(now() - start, HOUR, "task, round {i}");
                }
            });
            for i in 0..300 {
                let start = now();
                let mut hour = pin!(sleep(HOUR));
                assert!(poll!(hour.as_mut()).is_pending(), "a fresh sleep(1 h) was ready, round {i}");
                hour.await;
                assert_eq!(now() - start, HOUR, "block_on, round {i}");
            }
            in_task.await.unwrap();
            background.abort();
        });
    }
}

// ===== 6. fired timers nobody polls =====

// A sleep owns its timer until it is polled or dropped: one that fired and
// was never polled again is no longer a pending timer, still completes when
// polled, re-arms when reset (later or earlier), and dropping it leaves
// nothing behind.
paused_test! {
    fn a_fired_sleep_left_unpolled_completes_resets_and_drops(rt) {
        rt.block_on(async {
            let pending_timers = || waitrt::Handle::current().metrics().pending_timers();
            let start = now();
            let mut sleeps: Vec<_> = (0..4).map(|_| Box::pin(sleep(Duration::from_secs(1)))).collect();
            for s in &mut sleeps {
                assert!(poll!(s.as_mut()).is_pending());
            }
            assert_eq!(pending_timers(), 4);
            // The paused clock jumps: all four fire; none is polled.
            sleep(Duration::from_secs(2)).await;
            assert_eq!(pending_timers(), 0, "fired timers still counted as pending");
            let (dropped, mut later, mut earlier, mut polled) = {
                let mut it = sleeps.into_iter();
                let mut next = || it.next().unwrap();
                (next(), next(), next(), next())
            };
            assert!(poll!(polled.as_mut()).is_ready());
            drop(dropped);
            // Reset later than the deadline it fired at, and earlier.
            later.as_mut().reset(start + Duration::from_secs(10));
            earlier.as_mut().reset(start + Duration::from_millis(500));
            assert!(poll!(earlier.as_mut()).is_ready(), "a past deadline completes at once");
            assert!(poll!(later.as_mut()).is_pending());
            assert_eq!(pending_timers(), 1);
            later.await;
            assert_eq!(now() - start, Duration::from_secs(10));
            assert_eq!(pending_timers(), 0);
        });
    }
}
