//! Timers on every scheduler flavour (through `rt_test!`): `sleep` order,
//! past deadlines, `timeout`, `interval`, 10 000 fired and cancelled
//! timers, waitq `_timeout` waits on `waitrt::time::clock()`, and the
//! paused clock (auto-advance, holding still while a blocking job runs,
//! and `advance` returning after the tasks it woke have run).
#[macro_use]
mod support;

use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::poll;
use support::{ms, Counter, Gate};
use waitrt::sync::WaitQueue;
use waitrt::time::{sleep, sleep_until};
use waitrt::{Builder, Handle};

// ===== timers =====

/// Sleeps made in the order 30, 10, 20 ms complete in deadline order, on
/// every flavour. On the paused clock, which moves only when every task
/// sleeps: with real time, a loaded machine ran the driver late enough to
/// fire two of them in one turn, and their tasks then ran in either order
/// ([20, 10, 30] and [10, 30, 20] in 6 of 30 runs under 3 CPU hogs, on
/// both multi-thread flavours), which no runtime promises.
#[test]
fn sleeps_complete_in_deadline_order() {
    for workers in [None, Some(1), Some(2)] {
        support::watchdog(
            "sleeps_complete_in_deadline_order",
            support::RT_LIMIT,
            move || {
                let mut builder = match workers {
                    None => Builder::new_current_thread(),
                    Some(n) => {
                        let mut b = Builder::new_multi_thread();
                        b.worker_threads(n);
                        b
                    }
                };
                let rt = builder.enable_all().start_paused(true).build().unwrap();
                let order = Arc::new(Mutex::new(Vec::new()));
                rt.block_on(async {
                    let start = waitrt::time::now();
                    let handles: Vec<_> = [30u64, 10, 20]
                        .into_iter()
                        .map(|n| {
                            let order = order.clone();
                            waitrt::spawn(async move {
                                sleep(ms(n)).await;
                                order.lock().unwrap().push(n);
                            })
                        })
                        .collect();
                    for handle in handles {
                        handle.await.unwrap();
                    }
                    assert!(
                        waitrt::time::now() - start >= ms(30),
                        "{workers:?}: a sleep completed early"
                    );
                });
                assert_eq!(*order.lock().unwrap(), [10, 20, 30], "{workers:?}");
            },
        );
    }
}

rt_test! {
    fn past_deadlines_complete_without_waiting_for_the_clock(rt) {
        rt.block_on(async {
            // Zero-length sleeps and an interval's first tick: on the
            // first poll.
            let mut s = pin!(sleep(Duration::ZERO));
            assert!(poll!(s.as_mut()).is_ready());
            assert!(s.is_elapsed());
            let mut ticks = waitrt::time::interval(Duration::from_secs(3600));
            assert!(poll!(pin!(ticks.tick())).is_ready());
            // A deadline the timer driver has passed (it fired a later
            // timer): on the first poll.
            let before = waitrt::time::now();
            sleep(ms(2)).await;
            let mut s = pin!(sleep_until(before));
            assert!(poll!(s.as_mut()).is_ready());
            assert!(s.is_elapsed());
            let mut s = pin!(sleep_until(before - ms(5)));
            assert!(poll!(s.as_mut()).is_ready());
            // Deadlines that passed since the driver's last turn: at its
            // next turn (a hang here fails at the watchdog).
            for _ in 0..100 {
                sleep_until(waitrt::time::now()).await;
            }
            let mut s = pin!(sleep_until(waitrt::time::now()));
            let _ = poll!(s.as_mut());
            s.as_mut().await;
            assert!(s.is_elapsed());
            // A future deadline is not due.
            let mut s = pin!(sleep(Duration::from_secs(3600)));
            assert!(poll!(s.as_mut()).is_pending());
        });
        assert_eq!(rt.metrics().pending_timers(), 0);
    }
}

/// A past deadline the driver passed at a turn that fired nothing (the
/// thread parked with no timer until a plain thread woke it) completes on
/// its first poll: the wheel's clock moves at every turn.
#[test]
fn deadline_passed_at_an_idle_turn_is_ready_on_first_poll() {
    support::watchdog("deadline_passed_at_an_idle_turn", support::RT_LIMIT, || {
        let rt = Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(async {
            for _ in 0..3 {
                let before = waitrt::time::now();
                let (tx, rx) = waitrt::sync::oneshot::channel();
                let waker = std::thread::spawn(move || {
                    std::thread::sleep(ms(2));
                    tx.send(()).unwrap();
                });
                rx.await.unwrap();
                waker.join().unwrap();
                let mut s = pin!(sleep_until(before));
                assert!(poll!(s.as_mut()).is_ready());
            }
        });
    });
}

rt_test! {
    fn timeout_ok_and_elapsed(rt) {
        rt.block_on(async {
            let ok = waitrt::time::timeout(Duration::from_secs(10), async { 7 }).await;
            assert_eq!(ok, Ok(7));

            let gate = Gate::new();
            waitrt::spawn({
                let gate = gate.clone();
                async move {
                    sleep(ms(5)).await;
                    gate.open();
                }
            });
            let ok = waitrt::time::timeout(Duration::from_secs(10), gate.wait()).await;
            assert!(ok.is_ok());

            let start = Instant::now();
            let err = waitrt::time::timeout(ms(10), std::future::pending::<()>()).await;
            assert!(err.is_err());
            assert!(start.elapsed() >= ms(10), "timed out early");

            let deadline = waitrt::time::now() + ms(5);
            let err = waitrt::time::timeout_at(deadline, std::future::pending::<()>()).await;
            assert!(err.is_err());
            assert!(waitrt::time::now() >= deadline);
        });
        assert_eq!(rt.metrics().pending_timers(), 0);
    }
}

rt_test! {
    fn interval_ticks(rt) {
        rt.block_on(async {
            let period = ms(5);
            let start = Instant::now();
            let mut interval = waitrt::time::interval(period);
            assert_eq!(interval.period(), period);
            let first = interval.tick().await;
            let mut last = first;
            for _ in 0..4 {
                let tick = interval.tick().await;
                assert_eq!(tick - last, period);
                last = tick;
            }
            assert_eq!(last - first, period * 4);
            assert!(start.elapsed() >= period * 4, "ticks came early");
            assert!(waitrt::time::now() >= last);
        });
    }
}

rt_test! {
    fn ten_thousand_timers_fire(rt) {
        const N: usize = 10_000;
        let fired = Counter::new();
        rt.block_on({
            let fired = fired.clone();
            async move {
                for i in 0..N {
                    let fired = fired.clone();
                    waitrt::spawn(async move {
                        sleep(Duration::from_micros((i as u64 * 7) % 20_000)).await;
                        fired.inc();
                    });
                }
                fired.wait_for(N).await;
            }
        });
        assert_eq!(fired.get(), N);
        assert_eq!(rt.metrics().pending_timers(), 0);
    }
}

rt_test! {
    fn ten_thousand_cancelled_timers_leave_nothing(rt) {
        const N: usize = 10_000;
        rt.block_on(async {
            // Dropped after registering.
            let mut sleeps: Vec<_> = (0..N)
                .map(|i| Box::pin(sleep(Duration::from_secs(3600 + i as u64))))
                .collect();
            for s in &mut sleeps {
                assert!(poll!(s.as_mut()).is_pending());
            }
            assert!(waitrt::time::now() < sleeps[0].deadline());
            assert_eq!(Handle::current().metrics().pending_timers(), N);
            drop(sleeps);
            assert_eq!(Handle::current().metrics().pending_timers(), 0);

            // Sleeping tasks that get aborted.
            let registered = Counter::new();
            let handles: Vec<_> = (0..N)
                .map(|_| {
                    let registered = registered.clone();
                    waitrt::spawn(async move {
                        let mut s = pin!(sleep(Duration::from_secs(3600)));
                        assert!(poll!(s.as_mut()).is_pending());
                        registered.inc();
                        s.await;
                    })
                })
                .collect();
            registered.wait_for(N).await;
            assert_eq!(Handle::current().metrics().pending_timers(), N);
            for handle in &handles {
                handle.abort();
            }
            for handle in handles {
                assert!(handle.await.unwrap_err().is_cancelled());
            }
        });
        assert_eq!(rt.metrics().pending_timers(), 0);
    }
}

rt_test! {
    fn waitq_timeout_waits_use_the_runtime_clock(rt) {
        rt.block_on(async {
            let clock = waitrt::time::clock();
            let queue = Arc::new(WaitQueue::new());

            let start = Instant::now();
            let err = queue.wait_event_timeout(&clock, ms(10), || false).await.unwrap_err();
            assert!(!err.is_closed());
            assert!(start.elapsed() >= ms(10), "timed out early");

            // An hour, not 10 ms: the deadline is fixed when the future
            // is made, so a thread descheduled for 10 ms before its first
            // poll found the condition true at the deadline (Ok(ZERO)).
            let hour = Duration::from_secs(3600);
            let left = queue.wait_event_timeout(&clock, hour, || true).await.unwrap();
            assert!(left > Duration::ZERO && left <= hour);

            let flag = Arc::new(AtomicBool::new(false));
            waitrt::spawn({
                let (queue, flag) = (queue.clone(), flag.clone());
                async move {
                    sleep(ms(5)).await;
                    flag.store(true, SeqCst);
                    queue.wake_up_all();
                }
            });
            let left = queue
                .wait_event_timeout(&clock, Duration::from_secs(30), || flag.load(SeqCst))
                .await
                .unwrap();
            assert!(left > Duration::ZERO && left < Duration::from_secs(30));

            // Timed interruptible wait inside a task: times out, then is interrupted.
            let timed_out_once = Gate::new();
            let handle = waitrt::spawn({
                let (queue, timed_out_once) = (queue.clone(), timed_out_once.clone());
                async move {
                    let clock = waitrt::time::clock();
                    let signals = waitrt::task::signals();
                    let timed_out = queue
                        .wait_event_interruptible_timeout(&signals, &clock, ms(5), || false)
                        .await
                        .unwrap_err();
                    timed_out_once.open();
                    let interrupted = queue
                        .wait_event_interruptible_timeout(&signals, &clock, Duration::from_secs(30), || false)
                        .await
                        .unwrap_err();
                    (timed_out, interrupted)
                }
            });
            timed_out_once.wait().await;
            handle.interrupt();
            let (timed_out, interrupted) = handle.await.unwrap();
            assert!(timed_out.is_timed_out() && !timed_out.is_interrupted(), "{timed_out:?}");
            assert!(interrupted.is_interrupted() && !interrupted.is_timed_out(), "{interrupted:?}");
        });
        assert_eq!(rt.metrics().pending_timers(), 0);
    }
}

#[test]
fn paused_clock_auto_advances_long_timeouts() {
    support::watchdog(
        "paused_clock_auto_advances_long_timeouts",
        support::RT_LIMIT,
        || {
            let rt = Builder::new_current_thread()
                .start_paused(true)
                .build()
                .unwrap();
            rt.block_on(async {
                let before = waitrt::time::now();
                let queue = WaitQueue::new();
                let clock = waitrt::time::clock();
                let err = queue
                    .wait_event_timeout(&clock, Duration::from_secs(3600), || false)
                    .await
                    .unwrap_err();
                assert!(!err.is_closed());
                assert!(waitrt::time::now() - before >= Duration::from_secs(3600));
                sleep(Duration::from_secs(86_400)).await;
                assert!(waitrt::time::now() - before >= Duration::from_secs(3600 + 86_400));
            });
        },
    );
}

/// `advance` returns once the tasks its timers woke have run as far as
/// they can: a task woken by a timer, and a second task it wakes in turn,
/// have both run when `advance` returns, called from `block_on` and from a
/// spawned task, on every flavour, 100 times each. On multi-thread the
/// woken tasks run on workers beside the caller; `advance` once only
/// yielded, and returned first in most runs (a ported mini-redis test,
/// "GET after advance finds the key expired", failed 4 runs in 20).
#[test]
fn advance_returns_after_the_tasks_it_woke_have_run() {
    for workers in [None, Some(1), Some(2)] {
        support::watchdog(
            "advance_returns_after_woken_tasks",
            support::RT_LIMIT,
            move || {
                for round in 0..100 {
                    let mut builder = match workers {
                        None => Builder::new_current_thread(),
                        Some(n) => {
                            let mut builder = Builder::new_multi_thread();
                            builder.worker_threads(n);
                            builder
                        }
                    };
                    let rt = builder.enable_all().start_paused(true).build().unwrap();
                    let from_a_task = round % 2 == 1;
                    let trial = async move {
                        let done = Arc::new(AtomicBool::new(false));
                        let (registered, is_registered) = waitrt::sync::oneshot::channel();
                        let (relay_tx, relay_rx) = waitrt::sync::oneshot::channel::<()>();
                        let relay_done = done.clone();
                        // Woken in turn by the sleeper: runs as far as it can.
                        waitrt::spawn(async move {
                            relay_rx.await.unwrap();
                            relay_done.store(true, SeqCst);
                        });
                        waitrt::spawn(async move {
                            let mut nap = pin!(sleep(Duration::from_secs(1)));
                            assert!(poll!(nap.as_mut()).is_pending()); // registered
                            registered.send(()).unwrap();
                            nap.await;
                            relay_tx.send(()).unwrap();
                        });
                        is_registered.await.unwrap();
                        waitrt::time::advance(Duration::from_secs(1)).await;
                        done.load(SeqCst)
                    };
                    let ran = match from_a_task {
                        false => rt.block_on(trial),
                        true => rt.block_on(async { waitrt::spawn(trial).await.unwrap() }),
                    };
                    assert!(
                        ran,
                        "{workers:?} workers, round {round} (from a task: {from_a_task}): \
                     advance returned before the tasks its timer woke had run"
                    );
                }
            },
        );
    }
}

/// A paused clock does not jump past a timeout while a blocking job works
/// in real time: the job finishes first, as it would on a real clock.
#[test]
fn paused_clock_waits_for_running_blocking_jobs() {
    for workers in [None, Some(2)] {
        support::watchdog(
            "paused_clock_waits_for_blocking",
            support::RT_LIMIT,
            move || {
                let rt = match workers {
                    None => Builder::new_current_thread()
                        .start_paused(true)
                        .enable_io()
                        .build(),
                    Some(n) => Builder::new_multi_thread()
                        .worker_threads(n)
                        .start_paused(true)
                        .enable_io()
                        .build(),
                }
                .unwrap();
                rt.block_on(async {
                    let job = waitrt::spawn_blocking(|| {
                        std::thread::sleep(Duration::from_millis(30));
                        7
                    });
                    let out = waitrt::time::timeout(Duration::from_secs(10), job).await;
                    assert_eq!(
                        out.expect("the clock jumped past a running job").unwrap(),
                        7
                    );
                    // With the job done, time jumps again.
                    let before = waitrt::time::now();
                    sleep(Duration::from_secs(3600)).await;
                    assert!(waitrt::time::now() - before >= Duration::from_secs(3600));
                });
            },
        );
    }
}

// Breaks if registering a timer while the driving thread is awake (it is
// running the task that registers) unparks it anyway: each such park would
// then return at once and park again, about two parks per round instead
// of one. (A cost, not a lost wake: the thread looks at the wheel before
// it parks.)
#[test]
fn a_timer_registered_by_the_awake_driver_does_not_unpark_it() {
    let rt = Builder::new_current_thread().enable_all().build().unwrap();
    const ROUNDS: u64 = 50;
    let parks = || rt.handle().metrics().parks();
    let before = parks();
    rt.block_on(rt.spawn(async {
        for _ in 0..ROUNDS {
            // A far timer, registered while this thread drives: no unpark.
            let mut far = pin!(sleep(Duration::from_secs(3600)));
            assert!(poll!(far.as_mut()).is_pending());
            // The park that follows is for this 1 ms sleep only.
            sleep(ms(1)).await;
        }
    }))
    .unwrap();
    {
        let parks = parks() - before;
        assert!(
            parks < ROUNDS * 3 / 2,
            "{parks} parks for {ROUNDS} one-millisecond sleeps: registering woke the driver"
        );
    }
}

// Breaks if a reset to a later deadline (left lazily at the old one) were
// not moved to the new deadline when the old one fires (the sleep would end
// early), or if the sleep forgot where its timer sits after that move (a
// reset between the old and new deadlines would then be skipped too, and
// the sleep would end late).
#[test]
fn resets_later_then_earlier_end_exactly_at_the_last_deadline() {
    let rt = Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let start = waitrt::time::now();
        let mut sleep = pin!(sleep(Duration::from_secs(1)));
        assert!(poll!(sleep.as_mut()).is_pending()); // registered at 1 s
        sleep.as_mut().reset(start + Duration::from_secs(5)); // later: lazy
        waitrt::time::advance(Duration::from_secs(1)).await;
        assert!(
            poll!(sleep.as_mut()).is_pending(),
            "ended at the old deadline"
        );
        // Now registered at 5 s: a reset to 3 s must move it.
        sleep.as_mut().reset(start + Duration::from_secs(3));
        waitrt::time::advance(Duration::from_secs(2)).await;
        assert!(poll!(sleep.as_mut()).is_ready(), "did not end at 3 s");
        assert_eq!(waitrt::time::now() - start, Duration::from_secs(3));
    });
}

rt_test! {
    /// A sleep moved to a deadline already past, by a task other than the
    /// one waiting on it, wakes its waiter: the timer, removed as due,
    /// dropped the waiter's waker instead of waking it, and the waiter
    /// slept for good (an independent probe of the timers; tokio fires
    /// such a timer at once). The shape of a shared idle timer reset to
    /// `last_activity + idle` once that has passed.
    fn a_reset_into_the_past_from_another_task_wakes_the_waiter(rt) {
        rt.block_on(async {
            let shared = Arc::new(Mutex::new(Box::pin(sleep(Duration::from_secs(3_600)))));
            let waiting = shared.clone();
            let waiter = waitrt::spawn(async move {
                std::future::poll_fn(|cx| {
                    std::future::Future::poll(waiting.lock().unwrap().as_mut(), cx)
                })
                .await
            });
            // The waiter's timer is registered, and the clock has moved on.
            sleep(ms(5)).await;
            shared.lock().unwrap().as_mut().reset(Instant::now() - ms(2));
            waitrt::time::timeout(support::RT_LIMIT / 2, waiter)
                .await
                .expect("the waiter was never woken")
                .unwrap();
        });
    }
}

/// `Interval`'s resets (tokio's `reset_immediately`, `reset_after`,
/// `reset_at`) put the next tick where they say, and the schedule goes on
/// a period apart from it; `missed_tick_behavior` reads the setter's.
#[test]
fn interval_resets_move_the_next_tick() {
    let rt = Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        use waitrt::time::{interval, now, MissedTickBehavior};
        let start = now();
        let s = Duration::from_secs;
        let mut ticks = interval(s(10));
        assert_eq!(ticks.tick().await, start);
        ticks.reset_after(s(3));
        assert_eq!(ticks.tick().await - start, s(3));
        assert_eq!(ticks.tick().await - start, s(13));
        ticks.reset_at(start + s(20));
        assert_eq!(ticks.tick().await - start, s(20));
        ticks.reset_immediately();
        assert_eq!(ticks.tick().await - start, s(20));
        assert_eq!(ticks.tick().await - start, s(30));
        ticks.reset_at(start); // passed: due at once
        assert_eq!(ticks.tick().await - start, s(0));
        assert_eq!(ticks.missed_tick_behavior(), MissedTickBehavior::Burst);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        assert_eq!(ticks.missed_tick_behavior(), MissedTickBehavior::Skip);

        // `Timeout::get_mut` reaches the future inside: here it closes a
        // oneshot receiver, so the send fails and the receive ends.
        let (tx, rx) = waitrt::sync::oneshot::channel::<u32>();
        let mut timeout = waitrt::time::timeout(s(1), rx);
        timeout.get_mut().close();
        assert_eq!(tx.send(1), Err(1));
        assert!(timeout.await.unwrap().is_err());
    });
}
