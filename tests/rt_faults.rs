//! Faults and misuse the runtime must survive, on every flavour where
//! they apply: a waker that panics when the runtime calls it (a
//! `JoinHandle`'s, a blocking job's), a task's output whose destructor
//! panics, a runtime dropped by one of its own tasks or blocking jobs, a
//! blocking pool that cannot start a thread, join handles that are ready
//! at once (they spend the cooperative budget), and `EnterGuard`s dropped
//! out of order. Every wait is bounded by a watchdog; nothing here asserts
//! on timing.
#[macro_use]
mod support;

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use support::{panic_message, Gate};
use waitrt::{Builder, Runtime, UnhandledPanic};

use support::PanickingWaker;

fn panicking_waker() -> Waker {
    Waker::from(Arc::new(PanickingWaker))
}

/// Polls `fut` once from this thread with a waker that panics.
fn poll_with_panicking_waker<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(&panicking_waker()))
}

/// Runs tasks until `done` holds, sleeping 1 ms at a time (bounded by
/// `support::WAIT_LIMIT`): not a count of yields, which a worker or pool
/// thread of a loaded machine may outlast without running.
fn run_until(rt: &Runtime, what: &str, done: impl Fn() -> bool) {
    rt.block_on(support::wait_until(what, done));
}

/// After a panicking waker: the runtime still runs tasks and blocking jobs,
/// and shuts down with every thread gone (a dead worker or pool thread
/// never reports its exit, and shutdown would wait out its timeout).
fn assert_runtime_healthy(rt: Runtime) {
    let out = rt.block_on(async {
        let task = waitrt::spawn(async { 2 }).await.unwrap();
        let job = waitrt::spawn_blocking(|| 3).await.unwrap();
        task + job
    });
    assert_eq!(out, 5);
    assert!(
        rt.shutdown_timeout(Duration::from_secs(30)),
        "a runtime thread did not exit: a waker's panic killed it"
    );
}

rt_test! {
    fn a_panicking_join_waker_does_not_kill_the_runtime(rt) {
        let gate = Gate::new();
        let g = gate.clone();
        let mut task = rt.spawn(async move {
            g.wait().await;
            1
        });
        assert!(poll_with_panicking_waker(&mut task).is_pending());
        let finished = task.abort_handle();
        // The task completes on a worker (or in `block_on`) and wakes the
        // waker that panics there.
        gate.open();
        run_until(&rt, "the task's end", || finished.is_finished());
        assert_eq!(rt.block_on(task).unwrap(), 1);
        assert_runtime_healthy(rt);
    }
}

rt_test! {
    fn a_panicking_blocking_join_waker_does_not_kill_the_pool(rt) {
        let gate = Gate::new();
        let g = gate.clone();
        let mut job = rt.spawn_blocking(move || {
            g.blocking_wait();
            1
        });
        assert!(poll_with_panicking_waker(&mut job).is_pending());
        let finished = job.abort_handle();
        // The job completes on its pool thread and wakes the waker there.
        gate.open();
        run_until(&rt, "the blocking job's end", || finished.is_finished());
        assert_eq!(rt.block_on(job).unwrap(), 1);
        assert_runtime_healthy(rt);
    }
}

#[test]
fn a_panicking_join_waker_under_shutdown_runtime_names_the_waker() {
    support::watchdog(
        "panicking join waker, ShutdownRuntime",
        support::RT_LIMIT,
        || {
            for workers in [None, Some(1), Some(2)] {
                let mut builder = match workers {
                    None => Builder::new_current_thread(),
                    Some(n) => {
                        let mut b = Builder::new_multi_thread();
                        b.worker_threads(n);
                        b
                    }
                };
                let rt = builder
                    .enable_all()
                    .unhandled_panic(UnhandledPanic::ShutdownRuntime)
                    .build()
                    .unwrap();
                let gate = Gate::new();
                let g = gate.clone();
                let mut task = rt.spawn(async move { g.wait().await });
                assert!(poll_with_panicking_waker(&mut task).is_pending());
                let res = catch_unwind(AssertUnwindSafe(|| {
                    rt.block_on(async {
                        gate.open();
                        std::future::pending::<()>().await;
                    })
                }));
                let msg = panic_message(&*res.expect_err("block_on must panic"));
                assert!(
                    msg.contains("the waker of a `JoinHandle` of task")
                        && msg.contains("ShutdownRuntime"),
                    "{workers:?}: {msg}"
                );
                drop(task);
                assert!(rt.shutdown_timeout(Duration::from_secs(30)));
            }
        },
    );
}

/// An output whose destructor panics (counting its drops).
struct PanicsOnDrop(Arc<AtomicUsize>);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
        panic!("this output panics on drop on purpose");
    }
}

rt_test! {
    fn a_join_handle_dropped_after_completion_swallows_the_outputs_drop_panic(rt) {
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        let task = rt.spawn(async move { PanicsOnDrop(d) });
        let finished = task.abort_handle();
        run_until(&rt, "the task's end", || finished.is_finished());
        // The output is stored: the handle's drop drops it, and its panic
        // must not come out here (before completion it never did).
        let dropped = catch_unwind(AssertUnwindSafe(|| drop(task)));
        assert!(dropped.is_ok(), "the output's panic escaped `JoinHandle::drop`");
        assert_eq!(drops.load(SeqCst), 1);
        assert_runtime_healthy(rt);
    }
}

/// Where a runtime can be dropped by its own code: a task on a worker
/// (multi-thread only: a current-thread runtime's tasks run inside its
/// `block_on`, which borrows it) and a blocking job (both flavours).
#[derive(Clone, Copy, Debug)]
enum DropSite {
    Task,
    BlockingJob,
}

fn drop_inside(workers: Option<usize>, site: DropSite) {
    let mut builder = match workers {
        None => Builder::new_current_thread(),
        Some(n) => {
            let mut b = Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    };
    // A drop that waits for its own thread would stall this long.
    let rt = builder
        .enable_all()
        .drop_timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    let slot: Arc<Mutex<Option<Runtime>>> = Arc::new(Mutex::new(None));
    let (tx, rx) = std::sync::mpsc::channel();
    let gate = Gate::new();
    let (s, g) = (slot.clone(), gate.clone());
    let drop_it = move || {
        let rt = s
            .lock()
            .unwrap()
            .take()
            .expect("the runtime is in the slot");
        drop(rt);
        tx.send(()).unwrap();
    };
    match site {
        DropSite::Task => drop(rt.spawn(async move {
            g.wait().await;
            drop_it();
        })),
        DropSite::BlockingJob => drop(rt.spawn_blocking(move || {
            g.blocking_wait();
            drop_it();
        })),
    }
    *slot.lock().unwrap() = Some(rt);
    gate.open();
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| {
            panic!("{workers:?} {site:?}: dropping the runtime from its own thread stalled")
        });
}

#[test]
fn a_runtime_dropped_by_its_own_task_shuts_down_at_once() {
    support::watchdog(
        "runtime dropped by its own task",
        Duration::from_secs(120),
        || {
            drop_inside(Some(1), DropSite::Task);
            drop_inside(Some(2), DropSite::Task);
        },
    );
}

#[test]
fn a_runtime_dropped_by_its_own_blocking_job_shuts_down_at_once() {
    support::watchdog(
        "runtime dropped by its own blocking job",
        Duration::from_secs(120),
        || {
            drop_inside(None, DropSite::BlockingJob);
            drop_inside(Some(1), DropSite::BlockingJob);
        },
    );
}

/// The pool has no thread and the OS refuses to start one: a stack of
/// 1 TiB is refused (`EAGAIN` from `pthread_create`), a real refusal with
/// no limit changed for the test process. The current-thread flavour has
/// no worker threads, so only the pool needs a thread.
#[test]
fn spawn_blocking_without_a_thread_resolves_with_the_os_error() {
    support::watchdog("spawn_blocking without a thread", support::RT_LIMIT, || {
        for paused in [false, true] {
            let rt = Builder::new_current_thread()
                .enable_all()
                .start_paused(paused)
                .thread_stack_size(1 << 40)
                .build()
                .unwrap();
            rt.block_on(async {
                let err = waitrt::spawn_blocking(|| 1).await.unwrap_err();
                assert!(err.is_spawn_failed(), "{err:?}");
                assert!(err.spawn_error().is_some(), "{err:?}");
                assert!(err.to_string().contains("never ran"), "{err}");
                // A job that cannot run must not hold a paused clock: this
                // hour passes at once when the clock is paused.
                if paused {
                    waitrt::time::sleep(Duration::from_secs(3600)).await;
                }
                // Later jobs fail the same way, each with its own error.
                let again = waitrt::spawn_blocking(|| 2).await.unwrap_err();
                assert!(again.is_spawn_failed(), "{again:?}");
            });
            assert!(rt.shutdown_timeout(Duration::from_secs(30)));
        }
    });
}

/// Tasks that are already finished, so that awaiting their handles is
/// ready at once: a loop over them must still yield to other tasks.
async fn finished_handles_spend_budget(blocking: bool) {
    const N: usize = 2_000;
    let mut handles = Vec::with_capacity(N);
    for i in 0..N {
        handles.push(match blocking {
            false => waitrt::spawn(async move { i }),
            true => waitrt::spawn_blocking(move || i),
        });
    }
    let finished: Vec<_> = handles.iter().map(|h| h.abort_handle()).collect();
    // Sleeps, not a count of yields: the blocking jobs run on pool threads
    // that a loaded machine may not start within any number of them.
    support::wait_until("every task's or job's end", || {
        finished.iter().all(|h| h.is_finished())
    })
    .await;
    let other_ran = Arc::new(AtomicBool::new(false));
    let o = other_ran.clone();
    let other = waitrt::spawn(async move { o.store(true, SeqCst) });
    let mut joined_before_other = 0;
    for handle in handles {
        handle.await.unwrap();
        if !other_ran.load(SeqCst) {
            joined_before_other += 1;
        }
    }
    other.await.unwrap();
    assert!(
        joined_before_other < N,
        "{N} ready join handles in a row never yielded to another task"
    );
}

/// A multi-thread runtime whose workers cannot start (a 1 TiB stack: the
/// OS refuses the thread) is an error that says so, of a kind no caller
/// reads as "try again" (it was the bare `EAGAIN`, "Resource temporarily
/// unavailable", kind `WouldBlock`), and leaves nothing behind.
#[test]
fn a_worker_that_cannot_start_is_named_in_the_build_error() {
    let err = Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_stack_size(1 << 40)
        .build()
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("cannot start worker thread 0 of 2"),
        "{message}"
    );
    assert_eq!(err.kind(), std::io::ErrorKind::Other, "{err}");
    // The OS's error stays reachable (`EAGAIN`).
    let os = err
        .get_ref()
        .and_then(|inner| inner.source())
        .and_then(|source| source.downcast_ref::<std::io::Error>());
    assert!(os.is_some_and(|os| os.raw_os_error().is_some()), "{err:?}");
    // The same builder without the stack runs.
    let rt = Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(
        rt.block_on(async { waitrt::spawn(async { 7 }).await })
            .unwrap(),
        7
    );
}

#[test]
fn ready_join_handles_spend_the_budget() {
    support::watchdog("ready join handles spend budget", support::RT_LIMIT, || {
        for blocking in [false, true] {
            // One thread runs every task: the other task can only run if
            // the joining loop yields.
            let ct = Builder::new_current_thread().enable_all().build().unwrap();
            ct.block_on(finished_handles_spend_budget(blocking));
            let mt = Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            mt.block_on(async {
                waitrt::spawn(finished_handles_spend_budget(blocking))
                    .await
                    .unwrap()
            });
        }
    });
}

#[test]
fn enter_guards_dropped_out_of_order_panic() {
    let a = Builder::new_current_thread().build().unwrap();
    let b = Builder::new_current_thread().build().unwrap();
    // In order: fine, and the outer runtime is current again in between.
    let outer = a.handle().enter();
    let inner = b.handle().enter();
    drop(inner);
    drop(outer);
    // Out of order: a clear panic instead of a silently wrong runtime.
    let outer = a.handle().enter();
    let inner = b.handle().enter();
    let res = catch_unwind(AssertUnwindSafe(move || drop(outer)));
    let msg = panic_message(&*res.expect_err("dropping the outer guard first must panic"));
    assert!(msg.contains("dropped out of order"), "{msg}");
    drop(inner);
}

/// Panics when dropped.
struct FutureGuardPanics;

impl Drop for FutureGuardPanics {
    fn drop(&mut self) {
        panic!("this future's destructor panics on purpose");
    }
}

/// An aborted task whose future panics as it is dropped: the joiner gets
/// the panic, payload and all (it was told "cancelled", the payload lost),
/// and `ShutdownRuntime` acts on it as on a panic in a poll.
#[test]
fn a_panic_in_an_aborted_futures_destructor_reaches_the_joiner_and_the_policy() {
    support::watchdog(
        "a_panic_in_an_aborted_futures_destructor",
        support::RT_LIMIT,
        || {
            for (name, rt) in support::flavours(support::plain) {
                rt.block_on(async {
                    let (live, guard_live) = waitrt::sync::oneshot::channel();
                    let task = waitrt::spawn(async move {
                        let _guard = FutureGuardPanics;
                        live.send(()).unwrap();
                        std::future::pending::<()>().await;
                    });
                    guard_live.await.unwrap(); // polled: the guard is live
                    task.abort();
                    let err = task.await.unwrap_err();
                    assert!(err.is_panic() && !err.is_cancelled(), "{name}: {err:?}");
                    let msg = panic_message(&*err.into_panic());
                    assert!(
                        msg.contains("destructor panics on purpose"),
                        "{name}: {msg}"
                    );
                });
            }
            for (name, rt) in
                support::flavours(|b| b.unhandled_panic(UnhandledPanic::ShutdownRuntime))
            {
                let res = catch_unwind(AssertUnwindSafe(|| {
                    rt.block_on(async {
                        let (live, guard_live) = waitrt::sync::oneshot::channel();
                        let task = waitrt::spawn(async move {
                            let _guard = FutureGuardPanics;
                            live.send(()).unwrap();
                            std::future::pending::<()>().await;
                        });
                        guard_live.await.unwrap();
                        task.abort();
                        let _ = task.await;
                        std::future::pending::<()>().await;
                    })
                }));
                let msg = panic_message(&*res.expect_err("block_on must panic"));
                assert!(msg.contains("ShutdownRuntime"), "{name}: {msg}");
            }
        },
    );
}

/// A `spawn_blocking` job that panics under `ShutdownRuntime`: the panic
/// goes to its `JoinHandle` only and the runtime carries on, as tokio's
/// (it shut the runtime down: blocking jobs are tasks, and their panic
/// took the task path; an independent probe of the scheduler). A spawned
/// task that panics next still follows the policy.
#[test]
fn a_panicking_blocking_job_does_not_shut_the_runtime_down() {
    support::watchdog(
        "a_panicking_blocking_job_does_not_shut_the_runtime_down",
        support::RT_LIMIT,
        || {
            for (name, rt) in
                support::flavours(|b| b.unhandled_panic(UnhandledPanic::ShutdownRuntime))
            {
                rt.block_on(async {
                    let job = waitrt::spawn_blocking(|| -> u32 { panic!("a job's panic") });
                    let err = job.await.unwrap_err();
                    assert!(err.is_panic(), "{name}: {err:?}");
                    // The runtime runs on: a task, a timer, another job.
                    waitrt::time::sleep(std::time::Duration::from_millis(20)).await;
                    assert_eq!(waitrt::spawn(async { 7 }).await.unwrap(), 7, "{name}");
                    assert_eq!(waitrt::spawn_blocking(|| 8).await.unwrap(), 8, "{name}");
                });
                let res = catch_unwind(AssertUnwindSafe(|| {
                    rt.block_on(async {
                        let _ = waitrt::spawn(async { panic!("a task's panic") }).await;
                        std::future::pending::<()>().await;
                    })
                }));
                let msg = panic_message(&*res.expect_err("block_on must panic"));
                assert!(msg.contains("ShutdownRuntime"), "{name}: {msg}");
            }
        },
    );
}

/// A detached `spawn_blocking` job whose output panics as it is dropped
/// (nobody joins it): under `ShutdownRuntime` the runtime runs on, as for
/// a panic in the job itself (it went to `FatalPanic::Output`, an
/// independent review of the fix above).
#[test]
fn a_detached_blocking_jobs_panicking_output_does_not_shut_the_runtime_down() {
    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("this output's destructor panics on purpose");
        }
    }
    support::watchdog(
        "a_detached_blocking_jobs_panicking_output",
        support::RT_LIMIT,
        || {
            for (name, rt) in
                support::flavours(|b| b.unhandled_panic(UnhandledPanic::ShutdownRuntime))
            {
                rt.block_on(async {
                    let (done_tx, done_rx) = waitrt::sync::oneshot::channel();
                    drop(waitrt::spawn_blocking(move || {
                        let _ = done_tx.send(());
                        PanicsOnDrop
                    }));
                    done_rx.await.unwrap();
                    // Its output is dropped by now or soon: the runtime runs on.
                    for _ in 0..3 {
                        waitrt::time::sleep(std::time::Duration::from_millis(10)).await;
                        assert_eq!(waitrt::spawn(async { 7 }).await.unwrap(), 7, "{name}");
                    }
                });
            }
        },
    );
}
