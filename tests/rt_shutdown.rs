//! The runtime's shutdown protocol (`runtime/src/runtime.rs`), on
//! current-thread and multi-thread(2): dropping a runtime with pending,
//! waitq-waiting, timer-sleeping and never-polled tasks and a blocking job
//! in flight drops every future and hangs nowhere; join handles of its
//! tasks resolve to a shutdown error on other runtimes and plain threads;
//! a `Sleep` of a dropped runtime panics with a clear message instead of
//! hanging; `shutdown_timeout` gives up on a stuck blocking job or worker;
//! spawning after shutdown fails loudly; `UnhandledPanic::ShutdownRuntime`
//! makes `block_on` panic naming the policy. Everything runs under a
//! watchdog, so a hang fails the test.
mod support;

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::poll;
use support::{flavours, panic_message, plain, Counter, Gate};
use waitrt::sync::WaitQueue;
use waitrt::task::JoinHandle;
use waitrt::time::sleep;
use waitrt::{Builder, Runtime, UnhandledPanic};

const LIMIT: Duration = Duration::from_secs(60);

/// Runs `on_drop` when dropped (a task's future was dropped).
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

fn counting_guard(counter: &Arc<Counter>) -> OnDrop<impl FnMut()> {
    let counter = counter.clone();
    OnDrop(move || counter.inc())
}

/// A blocking job on `rt` that returns `value` once its gate opens; it has
/// started when this returns.
fn gated_blocking_job<T: Send + 'static>(rt: &Runtime, value: T) -> (JoinHandle<T>, Arc<Gate>) {
    let started = Counter::new();
    let gate = Gate::new();
    let job = rt.spawn_blocking({
        let (started, gate) = (started.clone(), gate.clone());
        move || {
            started.inc();
            gate.blocking_wait();
            value
        }
    });
    started.blocking_wait_for(1);
    (job, gate)
}

/// Awaits `fut` on a fresh plain thread with `futures::executor::block_on`.
fn on_plain_thread<F: Future + Send + 'static>(fut: F) -> std::thread::JoinHandle<F::Output>
where
    F::Output: Send + 'static,
{
    std::thread::spawn(move || futures::executor::block_on(fut))
}

#[test]
fn dropping_the_runtime_ends_every_kind_of_task() {
    support::watchdog(
        "dropping_the_runtime_ends_every_kind_of_task",
        LIMIT,
        || {
            for (name, rt) in flavours(plain) {
                const N: usize = 20;
                let started = Counter::new();
                let dropped = Counter::new();
                let queue = Arc::new(WaitQueue::new());
                let release_job = Gate::new();
                let job_done = Arc::new(AtomicBool::new(false));
                let job_started = Counter::new();

                let mut handles: Vec<JoinHandle<()>> = rt.block_on(async {
                    let mut handles = Vec::new();
                    for _ in 0..N {
                        // Pending forever.
                        let (guard, st) = (counting_guard(&dropped), started.clone());
                        handles.push(waitrt::spawn(async move {
                            let _guard = guard;
                            st.inc();
                            std::future::pending::<()>().await;
                        }));
                        // Waiting on a wait queue nobody wakes.
                        let (guard, st, queue) =
                            (counting_guard(&dropped), started.clone(), queue.clone());
                        handles.push(waitrt::spawn(async move {
                            let _guard = guard;
                            st.inc();
                            let res = queue.wait_event(|| false).await;
                            panic!("the queue wait ended: {res:?}");
                        }));
                        // Sleeping on a long timer: polled once (which
                        // registers the timer) before it counts as started,
                        // so `pending_timers()` below sees every one of them
                        // even when another worker runs it.
                        let (guard, st) = (counting_guard(&dropped), started.clone());
                        handles.push(waitrt::spawn(async move {
                            let _guard = guard;
                            let mut one_hour = std::pin::pin!(sleep(Duration::from_secs(3600)));
                            assert!(futures::poll!(one_hour.as_mut()).is_pending());
                            st.inc();
                            one_hour.await;
                            panic!("a one-hour timer fired");
                        }));
                    }
                    // A task whose drop lets the blocking job finish. It
                    // counts as started once polled: its guard exists only
                    // from its first poll, and a drop before that left the
                    // job blocked (CI under load, multi-thread: the test
                    // went on before a worker had polled it).
                    let (release, st) = (release_job.clone(), started.clone());
                    handles.push(waitrt::spawn(async move {
                        let _guard = OnDrop(move || release.open());
                        st.inc();
                        std::future::pending::<()>().await;
                    }));
                    started.wait_for(3 * N + 1).await;
                    handles
                });
                // A blocking job in flight.
                let job = rt.spawn_blocking({
                    let (release_job, job_done, job_started) =
                        (release_job.clone(), job_done.clone(), job_started.clone());
                    move || {
                        job_started.inc();
                        release_job.blocking_wait();
                        job_done.store(true, SeqCst);
                    }
                });
                job_started.blocking_wait_for(1);
                // Spawned but (on current-thread) never polled.
                for _ in 0..N {
                    let guard = counting_guard(&dropped);
                    handles.push(rt.spawn(async move {
                        let _guard = guard;
                        std::future::pending::<()>().await;
                    }));
                }
                assert!(rt.metrics().pending_timers() >= N, "{name}");
                assert_eq!(dropped.get(), 0, "{name}");

                // A plain thread already waiting on one of the handles.
                let waiting = on_plain_thread(handles.pop().unwrap());
                drop(rt);

                assert_eq!(dropped.get(), 4 * N, "{name}: not every future was dropped");
                assert!(release_job.is_open(), "{name}");
                assert!(
                    job_done.load(SeqCst),
                    "{name}: drop did not wait for the blocking job"
                );
                assert!(
                    queue.is_empty(),
                    "{name}: dropped waiters still linked on the queue"
                );
                let err = waiting.join().unwrap().unwrap_err();
                assert!(err.is_shutdown(), "{name}: {err:?}");
                for handle in handles {
                    assert!(handle.is_finished(), "{name}");
                    let err = futures::executor::block_on(handle).unwrap_err();
                    assert!(err.is_shutdown() && err.is_cancelled(), "{name}: {err:?}");
                }
                futures::executor::block_on(job).unwrap();
            }
        },
    );
}

#[test]
fn join_handle_of_a_dropped_runtime_resolves_elsewhere() {
    support::watchdog(
        "join_handle_of_a_dropped_runtime_resolves_elsewhere",
        LIMIT,
        || {
            for (name, rt) in flavours(plain) {
                let started = Counter::new();
                let (finished, pending_a, pending_b, pending_c) = rt.block_on(async {
                    let finished = waitrt::spawn(async { 7u32 });
                    let spawn_pending = || {
                        let started = started.clone();
                        waitrt::spawn(async move {
                            started.inc();
                            std::future::pending::<u32>().await
                        })
                    };
                    let handles = (finished, spawn_pending(), spawn_pending(), spawn_pending());
                    started.wait_for(3).await;
                    while !handles.0.is_finished() {
                        waitrt::task::yield_now().await;
                    }
                    handles
                });
                // Already awaited on another runtime when `rt` drops.
                let other = Builder::new_current_thread().enable_all().build().unwrap();
                let other_handle = other.handle().clone();
                let awaiting = std::thread::spawn(move || {
                    let rt = Builder::new_multi_thread()
                        .worker_threads(1)
                        .build()
                        .unwrap();
                    rt.block_on(pending_c)
                });
                drop(rt);
                // Awaited from another runtime after the drop.
                let err = other.block_on(pending_a).unwrap_err();
                assert!(err.is_shutdown(), "{name}: {err:?}");
                // Awaited by a task of another runtime.
                let err = other
                    .block_on(other_handle.spawn(pending_b))
                    .unwrap()
                    .unwrap_err();
                assert!(err.is_shutdown(), "{name}: {err:?}");
                let err = awaiting.join().unwrap().unwrap_err();
                assert!(err.is_shutdown(), "{name}: {err:?}");
                // A task that completed before the drop keeps its output.
                assert_eq!(futures::executor::block_on(finished).unwrap(), 7, "{name}");
            }
        },
    );
}

fn assert_shut_down_panic(name: &str, res: std::thread::Result<()>) {
    let payload = res.expect_err("polling a Sleep of a dropped runtime must panic");
    let msg = panic_message(&*payload);
    assert!(msg.contains("shut down"), "{name}: unclear message: {msg}");
}

#[test]
#[allow(clippy::async_yields_async)] // block_on hands out a registered Sleep on purpose
fn sleep_of_a_dropped_runtime_panics_instead_of_hanging() {
    support::watchdog(
        "sleep_of_a_dropped_runtime_panics_instead_of_hanging",
        LIMIT,
        || {
            for (name, rt) in flavours(plain) {
                // Never polled on `rt`.
                let fresh = {
                    let _enter = rt.handle().enter();
                    sleep(Duration::from_secs(3600))
                };
                // Registered on `rt` (polled once there).
                let registered = rt.block_on(async {
                    let mut s = Box::pin(sleep(Duration::from_secs(3600)));
                    assert!(poll!(s.as_mut()).is_pending());
                    s
                });
                // Being awaited on a plain thread while `rt` drops.
                let awaited = {
                    let _enter = rt.handle().enter();
                    sleep(Duration::from_secs(3600))
                };
                let polled = Gate::new();
                let awaiting = std::thread::spawn({
                    let polled = polled.clone();
                    move || {
                        futures::executor::block_on(async move {
                            let mut s = Box::pin(awaited);
                            assert!(poll!(s.as_mut()).is_pending());
                            polled.open();
                            s.await
                        })
                    }
                });
                polled.blocking_wait();
                drop(rt);

                assert_shut_down_panic(name, on_plain_thread(fresh).join());
                assert_shut_down_panic(name, on_plain_thread(registered).join());
                assert_shut_down_panic(name, awaiting.join());
            }
        },
    );
}

#[test]
fn shutdown_timeout_gives_up_on_a_stuck_blocking_job() {
    support::watchdog(
        "shutdown_timeout_gives_up_on_a_stuck_blocking_job",
        LIMIT,
        || {
            for (name, rt) in flavours(plain) {
                // The job waits "forever": until the test ends.
                let (job, gate) = gated_blocking_job(&rt, 1);
                let handle = rt.handle().clone();
                let stopped = rt.shutdown_timeout(Duration::from_millis(100));
                assert!(
                    !stopped,
                    "{name}: shutdown_timeout claimed a stuck job stopped"
                );
                // Doc step 3: whoever joins a task still running ends at once.
                let err = on_plain_thread(job).join().unwrap().unwrap_err();
                assert!(err.is_shutdown(), "{name}: {err:?}");
                // Not cancelled: the closure still runs.
                assert!(err.is_abandoned() && !err.is_cancelled(), "{name}: {err:?}");
                assert!(err.to_string().contains("abandoned"), "{name}: {err}");
                assert!(!gate.is_open());
                gate.open();
                let deadline = std::time::Instant::now() + Duration::from_secs(30);
                while handle.metrics().blocking_threads() != 0 {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "{name}: the job's thread never exited"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        },
    );
}

#[test]
fn shutdown_timeout_gives_up_on_a_stuck_worker() {
    support::watchdog("shutdown_timeout_gives_up_on_a_stuck_worker", LIMIT, || {
        let rt = Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let started = Counter::new();
        let gate = Gate::new();
        let dropped = Counter::new();
        let stuck = rt.spawn({
            let (started, gate, guard) = (started.clone(), gate.clone(), counting_guard(&dropped));
            async move {
                let _guard = guard;
                started.inc();
                gate.blocking_wait(); // blocks its worker: never yields
                waitrt::task::yield_now().await;
                std::future::pending::<()>().await;
            }
        });
        started.blocking_wait_for(1);
        let stopped = rt.shutdown_timeout(Duration::from_millis(100));
        assert!(!stopped, "shutdown_timeout claimed a stuck worker stopped");
        let err = on_plain_thread(stuck).join().unwrap().unwrap_err();
        assert!(err.is_shutdown(), "{err:?}");
        assert!(err.is_abandoned() && !err.is_cancelled(), "{err:?}");
        assert_eq!(dropped.get(), 0, "the future is still being polled");
        gate.open();
        // Dropped once its poll returns.
        dropped.blocking_wait_for(1);
    });
}

#[test]
fn spawning_after_shutdown_fails() {
    support::watchdog("spawning_after_shutdown_fails", LIMIT, || {
        for (name, rt) in flavours(plain) {
            let handle = rt.handle().clone();
            // A future dropped during shutdown tries to spawn.
            let from_drop = Arc::new(Mutex::new(None));
            rt.block_on(async {
                let from_drop = from_drop.clone();
                let started = Counter::new();
                let s = started.clone();
                waitrt::spawn(async move {
                    let _guard = OnDrop(move || {
                        // Step 3 gives drops a runtime context; spawns fail.
                        let res =
                            waitrt::Handle::try_current().map(|h| h.try_spawn(async {}).is_err());
                        *from_drop.lock().unwrap() = Some(res);
                    });
                    s.inc();
                    std::future::pending::<()>().await;
                });
                started.wait_for(1).await;
            });
            drop(rt);
            assert_eq!(
                *from_drop.lock().unwrap(),
                Some(Some(true)),
                "{name}: a drop during shutdown had no runtime context, or its spawn was accepted"
            );

            let ran = Arc::new(AtomicBool::new(false));
            let dropped = Counter::new();
            let res = handle.try_spawn({
                let (ran, guard) = (ran.clone(), counting_guard(&dropped));
                async move {
                    let _guard = guard;
                    ran.store(true, SeqCst);
                }
            });
            let err = res.unwrap_err();
            assert!(err.to_string().contains("shutting down"), "{name}: {err}");
            let join = handle.spawn({
                let (ran, guard) = (ran.clone(), counting_guard(&dropped));
                async move {
                    let _guard = guard;
                    ran.store(true, SeqCst);
                    5
                }
            });
            assert!(join.is_finished(), "{name}");
            let err = futures::executor::block_on(join).unwrap_err();
            assert!(err.is_shutdown(), "{name}: {err:?}");
            // Through `enter` + `waitrt::spawn` on another thread.
            let h = handle.clone();
            let err = std::thread::spawn(move || {
                let _enter = h.enter();
                futures::executor::block_on(waitrt::spawn(async { 1 })).unwrap_err()
            })
            .join()
            .unwrap();
            assert!(err.is_shutdown(), "{name}: {err:?}");
            assert!(
                !ran.load(SeqCst),
                "{name}: a future spawned after shutdown ran"
            );
            assert_eq!(dropped.get(), 2, "{name}: refused futures must be dropped");
            assert_eq!(handle.metrics().alive_tasks(), 0, "{name}");
        }
    });
}

fn fatal_panic_case(name: &str, rt: Runtime, body: impl Future<Output = ()>) {
    let res = catch_unwind(AssertUnwindSafe(|| rt.block_on(body)));
    let msg = panic_message(&*res.expect_err("block_on must panic after a task panicked"));
    assert!(
        msg.contains("ShutdownRuntime"),
        "{name}: message does not name the policy: {msg}"
    );
    drop(rt);
}

#[test]
fn unhandled_panic_shutdown_runtime_joined() {
    support::watchdog("unhandled_panic_shutdown_runtime_joined", LIMIT, || {
        for (name, rt) in flavours(|b| b.unhandled_panic(UnhandledPanic::ShutdownRuntime)) {
            // block_on awaits the panicking task: it is woken by the task's end.
            fatal_panic_case(name, rt, async {
                let res = waitrt::spawn(async { panic!("task boom") }).await;
                assert!(res.is_err());
                // The next turn of block_on must notice the policy.
                std::future::pending::<()>().await;
            });
        }
    });
}

#[test]
fn unhandled_panic_shutdown_runtime_unrelated_block_on() {
    support::watchdog(
        "unhandled_panic_shutdown_runtime_unrelated_block_on",
        LIMIT,
        || {
            for (name, rt) in flavours(|b| b.unhandled_panic(UnhandledPanic::ShutdownRuntime)) {
                // block_on waits on something the panic never wakes.
                fatal_panic_case(name, rt, async {
                    let gate = Gate::new();
                    let g = gate.clone();
                    waitrt::spawn(async move {
                        g.queue.wait_event(|| g.is_open()).await.unwrap();
                        panic!("task boom");
                    });
                    gate.open();
                    std::future::pending::<()>().await;
                });
            }
        },
    );
}

#[test]
fn a_blocking_job_that_ends_during_shutdown_gives_its_joiner_its_output() {
    support::watchdog(
        "a_blocking_job_that_ends_during_shutdown_gives_its_joiner_its_output",
        LIMIT,
        || {
            for (name, rt) in flavours(plain) {
                // The job ends only once shutdown is past step 4 (timers
                // stopped), so past step 3, where the joiner used to be told
                // "abandoned" although the pool then waited for the job and
                // threw its output away.
                let (job, gate) = gated_blocking_job(&rt, "the job's output");
                let joiner = on_plain_thread(job);
                let timer = {
                    let _enter = rt.handle().enter();
                    sleep(Duration::from_secs(3600))
                };
                let polled = Gate::new();
                let step4 = std::thread::spawn({
                    let (polled, gate) = (polled.clone(), gate.clone());
                    move || {
                        let res = catch_unwind(AssertUnwindSafe(|| {
                            futures::executor::block_on(async move {
                                let mut timer = Box::pin(timer);
                                assert!(poll!(timer.as_mut()).is_pending());
                                polled.open();
                                timer.await
                            })
                        }));
                        // Step 4 closed the timer's queue: step 3 is over.
                        gate.open();
                        res
                    }
                });
                polled.blocking_wait();
                assert!(rt.shutdown_timeout(LIMIT), "{name}: the job ended in time");
                assert!(step4.join().unwrap().is_err(), "{name}");
                assert_eq!(
                    joiner.join().unwrap().unwrap(),
                    "the job's output",
                    "{name}"
                );
            }
        },
    );
}

/// Under `ShutdownRuntime` a task's panic ends every task at once: their
/// joiners (other runtimes, plain threads) get a shutdown error and their
/// futures are dropped while the `Runtime` value still lives, and new
/// spawns are refused (they were queued, and their joiners waited for the
/// drop).
#[test]
fn unhandled_panic_shutdown_runtime_ends_every_task_before_the_drop() {
    support::watchdog(
        "unhandled_panic_shutdown_runtime_ends_every_task_before_the_drop",
        LIMIT,
        || {
            for (name, rt) in flavours(|b| b.unhandled_panic(UnhandledPanic::ShutdownRuntime)) {
                let dropped = Counter::new();
                let sleeper = rt.spawn({
                    let guard = counting_guard(&dropped);
                    async move {
                        let _guard = guard;
                        sleep(Duration::from_secs(3600)).await;
                    }
                });
                fatal_panic_case_keep(name, &rt, async {
                    let _ = waitrt::spawn(async { panic!("task boom") }).await;
                    std::future::pending::<()>().await;
                });
                let err = on_plain_thread(sleeper).join().unwrap().unwrap_err();
                assert!(err.is_shutdown(), "{name}: {err:?}");
                assert_eq!(dropped.get(), 1, "{name}: the sleeper's future lives on");
                let late = rt.spawn(async { 2 });
                let err = on_plain_thread(late).join().unwrap().unwrap_err();
                assert!(err.is_shutdown(), "{name}: {err:?}");
                assert!(rt.handle().try_spawn(async {}).is_err(), "{name}");
                drop(rt);
            }
        },
    );
}

/// The same on workers with no `block_on` running: the workers that stop
/// on the panic end the tasks.
#[test]
fn unhandled_panic_shutdown_runtime_without_block_on_ends_every_task() {
    support::watchdog(
        "unhandled_panic_shutdown_runtime_without_block_on_ends_every_task",
        LIMIT,
        || {
            let rt = Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .unhandled_panic(UnhandledPanic::ShutdownRuntime)
                .build()
                .unwrap();
            let dropped = Counter::new();
            let sleeper = rt.spawn({
                let guard = counting_guard(&dropped);
                async move {
                    let _guard = guard;
                    sleep(Duration::from_secs(3600)).await;
                }
            });
            let _ = on_plain_thread(rt.spawn(async { panic!("task boom") })).join();
            let err = on_plain_thread(sleeper).join().unwrap().unwrap_err();
            assert!(err.is_shutdown(), "{err:?}");
            dropped.blocking_wait_for(1);
            drop(rt);
        },
    );
}

/// [`fatal_panic_case`] keeping the runtime.
fn fatal_panic_case_keep(name: &str, rt: &Runtime, body: impl Future<Output = ()>) {
    let res = catch_unwind(AssertUnwindSafe(|| rt.block_on(body)));
    let msg = panic_message(&*res.expect_err("block_on must panic after a task panicked"));
    assert!(msg.contains("ShutdownRuntime"), "{name}: {msg}");
}

/// A runtime dropped inside a task of another runtime waits for nothing:
/// waiting would stall that runtime (a current-thread one entirely). Its
/// blocking job ends only when a task of the outer runtime runs, so a drop
/// that waited (for the job, up to a drop timeout longer than the
/// watchdog) would hang here.
#[test]
fn a_runtime_dropped_inside_another_runtimes_task_does_not_wait() {
    support::watchdog(
        "a_runtime_dropped_inside_another_runtimes_task_does_not_wait",
        LIMIT,
        || {
            for (name, outer) in flavours(plain) {
                let inner = Builder::new_multi_thread()
                    .worker_threads(1)
                    .drop_timeout(LIMIT * 2)
                    .build()
                    .unwrap();
                let (job, gate) = gated_blocking_job(&inner, 7);
                let got = outer.block_on(async move {
                    let dropper = waitrt::spawn(async move { drop(inner) });
                    dropper.await.unwrap();
                    // Only now may the job end.
                    waitrt::spawn(async move { gate.open() }).await.unwrap();
                    job.await
                });
                // The job ran on: its output, or (the drop waited for
                // nothing) abandoned.
                match got {
                    Ok(value) => assert_eq!(value, 7, "{name}"),
                    Err(err) => assert!(err.is_abandoned(), "{name}: {err:?}"),
                }
            }
        },
    );
}

#[test]
fn into_panic_on_an_abandoned_task_says_it_did_not_panic() {
    let rt = Builder::new_current_thread().build().unwrap();
    let gate = Gate::new();
    let started = Counter::new();
    let job = rt.spawn_blocking({
        let (started, gate) = (started.clone(), gate.clone());
        move || {
            started.inc();
            gate.blocking_wait();
        }
    });
    started.blocking_wait_for(1);
    rt.shutdown_background();
    let err = on_plain_thread(job).join().unwrap().unwrap_err();
    gate.open();
    assert!(!err.is_cancelled() && !err.is_panic(), "{err:?}");
    let msg = panic_message(&*catch_unwind(AssertUnwindSafe(|| err.into_panic())).unwrap_err());
    assert!(
        msg.contains("did not panic") && msg.contains("abandoned") && !msg.contains("cancelled"),
        "{msg}"
    );
}
