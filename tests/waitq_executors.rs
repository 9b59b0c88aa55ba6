//! `waitq` is executor-agnostic: one producer/consumer scenario (written once, as an async fn)
//! runs unchanged on tokio (current-thread and multi-thread), smol (global `smol::spawn` and an
//! `Executor`) and `futures::executor::block_on` (a thread per task, and one task driving all).
mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use support::{SmolClock, TokioClock};
use waitq::{Clock, TaskSignals, WaitQueue};

/// Items per run.
const ITEMS: usize = 2_000;
/// Items the producer hands out before it waits for them to be consumed.
const BATCH: usize = 50;
/// Exclusive consumer tasks.
const CONSUMERS: usize = 3;
/// Runs of the scenario per executor (the `static` queue is reused).
const RUNS: usize = 3;
/// Long enough never to expire while the scenario runs correctly.
const FOREVER: Duration = Duration::from_secs(3600);

/// Spawns a task on some executor; the returned future resolves when the
/// task has finished (it must be awaited; for `futures::executor::block_on`,
/// which cannot spawn, it *is* the task, driven by `join_all`).
type Spawn = Arc<dyn Fn(BoxFuture<'static, ()>) -> BoxFuture<'static, ()> + Send + Sync>;

struct Shared {
    work: &'static WaitQueue,
    progress: WaitQueue,
    idle: WaitQueue,
    items: AtomicUsize,
    produced_all: AtomicBool,
    consumed: AtomicUsize,
    timed_out: AtomicBool,
    /// The producer interrupts the task owning these once it is done.
    signals: TaskSignals,
    /// Never raised.
    quiet: TaskSignals,
}

/// Yields once to the executor, whichever it is.
async fn yield_now() {
    struct YieldNow(bool);
    impl Future for YieldNow {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    YieldNow(false).await
}

fn take(items: &AtomicUsize) -> bool {
    items
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok()
}

/// One producer, `CONSUMERS` exclusive consumers (`wait_event_exclusive` on
/// a `static` queue) and monitors on an `Arc`ed queue: `wait_event`,
/// `wait_event_timeout` (one that completes, one that times out),
/// `wait_event_interruptible` (one interrupted, one completing), and a
/// `wait_event` ended by `close()`.
async fn scenario<C>(spawn: Spawn, clock: C, work: &'static WaitQueue)
where
    C: Clock + Clone + Send + Sync + 'static,
    C::Sleep: Send,
{
    let s = Arc::new(Shared {
        work,
        progress: WaitQueue::new(),
        idle: WaitQueue::new(),
        items: AtomicUsize::new(0),
        produced_all: AtomicBool::new(false),
        consumed: AtomicUsize::new(0),
        timed_out: AtomicBool::new(false),
        signals: TaskSignals::new(),
        quiet: TaskSignals::new(),
    });
    let all_consumed = |s: &Shared| s.consumed.load(Ordering::Acquire) == ITEMS;
    let mut tasks = Vec::new();

    for _ in 0..CONSUMERS {
        let s = s.clone();
        tasks.push(spawn(Box::pin(async move {
            loop {
                let ready = || {
                    s.items.load(Ordering::Acquire) > 0 || s.produced_all.load(Ordering::Acquire)
                };
                s.work.wait_event_exclusive(ready).await.unwrap();
                if take(&s.items) {
                    s.consumed.fetch_add(1, Ordering::AcqRel);
                    s.progress.wake_up_all();
                } else if s.produced_all.load(Ordering::Acquire) {
                    break;
                }
            }
        })));
    }

    // Monitors.
    {
        let s = s.clone();
        tasks.push(spawn(Box::pin(async move {
            s.progress.wait_event(|| all_consumed(&s)).await.unwrap();
        })));
    }
    {
        let (s, clock) = (s.clone(), clock.clone());
        tasks.push(spawn(Box::pin(async move {
            let left = s
                .progress
                .wait_event_timeout(clock, FOREVER, || all_consumed(&s))
                .await;
            assert!(
                left.is_ok(),
                "the condition came true long before the deadline"
            );
        })));
    }
    {
        let (s, clock) = (s.clone(), clock.clone());
        tasks.push(spawn(Box::pin(async move {
            let err = s
                .idle
                .wait_event_timeout(clock, Duration::from_millis(5), || false)
                .await
                .unwrap_err();
            assert!(!err.is_closed(), "timed out, not closed");
            s.timed_out.store(true, Ordering::Release);
            s.progress.wake_up_all();
        })));
    }
    {
        let s = s.clone();
        tasks.push(spawn(Box::pin(async move {
            let err = s
                .progress
                .wait_event_interruptible(&s.signals, || false)
                .await
                .unwrap_err();
            assert!(
                !err.is_closed() && !err.is_fatal(),
                "interrupted by the producer"
            );
        })));
    }
    {
        let s = s.clone();
        tasks.push(spawn(Box::pin(async move {
            s.progress
                .wait_event_interruptible(&s.quiet, || all_consumed(&s))
                .await
                .unwrap();
        })));
    }
    {
        let s = s.clone();
        tasks.push(spawn(Box::pin(async move {
            let err = s.idle.wait_event(|| false).await.unwrap_err();
            assert!(err.is_closed());
        })));
    }

    // The producer: change the state, then wake.
    {
        let s = s.clone();
        tasks.push(spawn(Box::pin(async move {
            for i in 1..=ITEMS {
                s.items.fetch_add(1, Ordering::AcqRel);
                s.work.wake_up();
                if i % 16 == 1 {
                    yield_now().await;
                }
                // Every batch must be consumed before the next: progress
                // depends on each `wake_up` reaching an exclusive consumer.
                if i % BATCH == 0 {
                    let caught_up = || s.consumed.load(Ordering::Acquire) == i;
                    s.progress.wait_event(caught_up).await.unwrap();
                }
            }
            s.produced_all.store(true, Ordering::Release);
            s.work.wake_up_all();
            s.signals.interrupt();
            // Once the short timeout has expired on its own, end the last waiter.
            let timed_out = || s.timed_out.load(Ordering::Acquire);
            s.progress.wait_event(timed_out).await.unwrap();
            s.idle.close();
        })));
    }

    futures::future::join_all(tasks).await;

    assert_eq!(s.consumed.load(Ordering::Acquire), ITEMS);
    assert_eq!(s.items.load(Ordering::Acquire), 0);
    assert_eq!(s.work.len(), 0);
    assert_eq!(s.progress.len(), 0);
    assert_eq!(s.idle.len(), 0);
}

fn tokio_spawn() -> Spawn {
    Arc::new(|task| {
        let handle = tokio::spawn(task);
        Box::pin(async move { handle.await.expect("task panicked") })
    })
}

#[test]
fn tokio_current_thread() {
    support::watchdog("tokio_current_thread", support::WATCHDOG, || {
        static WORK: WaitQueue = WaitQueue::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        for _ in 0..RUNS {
            rt.block_on(scenario(tokio_spawn(), TokioClock, &WORK));
        }
    });
}

#[test]
fn tokio_multi_thread() {
    support::watchdog("tokio_multi_thread", support::WATCHDOG, || {
        static WORK: WaitQueue = WaitQueue::new();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        for _ in 0..RUNS {
            rt.block_on(scenario(tokio_spawn(), TokioClock, &WORK));
        }
    });
}

#[test]
fn smol_global_spawn() {
    support::watchdog("smol_global_spawn", support::WATCHDOG, || {
        static WORK: WaitQueue = WaitQueue::new();
        let spawn: Spawn = Arc::new(|task| Box::pin(smol::spawn(task)));
        for _ in 0..RUNS {
            smol::block_on(scenario(spawn.clone(), SmolClock, &WORK));
        }
    });
}

#[test]
fn smol_executor() {
    support::watchdog("smol_executor", support::WATCHDOG, || {
        static WORK: WaitQueue = WaitQueue::new();
        let ex = Arc::new(smol::Executor::new());
        let spawn: Spawn = {
            let ex = ex.clone();
            Arc::new(move |task| Box::pin(ex.spawn(task)))
        };
        for _ in 0..RUNS {
            smol::block_on(ex.run(scenario(spawn.clone(), SmolClock, &WORK)));
        }
    });
}

/// `futures::executor::block_on`, one thread per task: every task has its
/// own waker, so each targeted wake must reach the right task.
#[test]
fn futures_block_on_thread_per_task() {
    support::watchdog(
        "futures_block_on_thread_per_task",
        support::WATCHDOG,
        || {
            static WORK: WaitQueue = WaitQueue::new();
            let spawn: Spawn = Arc::new(|task| {
                let (done, finished) = futures::channel::oneshot::channel();
                std::thread::spawn(move || {
                    futures::executor::block_on(task);
                    let _ = done.send(());
                });
                Box::pin(async move { finished.await.expect("task panicked") })
            });
            for _ in 0..RUNS {
                futures::executor::block_on(scenario(spawn.clone(), SmolClock, &WORK));
            }
        },
    );
}

/// `futures::executor::block_on` alone, without spawning: the "tasks" are
/// driven together by `join_all` inside one task (which re-polls all of
/// them on any wake, so this one shows the waits work in a single task).
#[test]
fn futures_block_on() {
    support::watchdog("futures_block_on", support::WATCHDOG, || {
        static WORK: WaitQueue = WaitQueue::new();
        let spawn: Spawn = Arc::new(|task| task);
        for _ in 0..RUNS {
            futures::executor::block_on(scenario(spawn.clone(), SmolClock, &WORK));
        }
    });
}
