//! Runtime comparison benchmark: our `runtime` against tokio and smol
//! (`async-executor`), each in a current-thread and a 2-thread flavour,
//! every workload written once and run on all three in one process.
//!
//! Workloads (op counts scale with `RT_BENCH_SCALE`, default `1.0`):
//!
//! - `spawn_many`: one task spawns 100,000 trivial tasks and awaits every
//!   handle. ns/op = per task.
//! - `yield_many`: 1,000 tasks each yield 200 times. ns/op = per yield.
//! - `chained_spawn`: a chain of 100,000 tasks, each spawning the next; the
//!   last one signals completion (ours: `WaitQueue` + `AtomicBool`, tokio:
//!   `oneshot`, smol: `smol::channel`). ns/op = per task.
//! - `ping_pong`: two tasks, each sleeping on its own wait queue (ours:
//!   `WaitQueue`, tokio: `Notify`, smol: `event_listener::Event`), bounce a
//!   counter 1,000,000 times. ns/op = per round trip.
//! - `herd`: 1,000 waiters on one queue, 1,000 generations of "bump the
//!   generation, wake all, wait until every waiter has seen it". ns/op = per
//!   woken waiter.
//!
//! Every workload runs inside one spawned root task, which also takes the
//! time, so the measurement excludes `block_on` itself. Each (workload,
//! flavour) row gets freshly built runtimes, one warm-up run per runtime,
//! then `RT_BENCH_RUNS` (default 5) runs with the runtime order alternating;
//! the median is reported. Every run checks its counts, so a broken runtime
//! fails instead of posting a time. A run that panics is reported as `FAIL`
//! (and the process exits non-zero at the end); there is no watchdog, so a
//! hang shows as the last row label printed without its numbers.
//!
//! `RT_BENCH_FILTER=herd/2_thread` runs only the rows whose label contains
//! the string; `RT_BENCH_ONLY=ours` runs one runtime (for perf).

use std::future::Future;
use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use event_listener::Event;
use runtime::sync::WaitQueue;
use smol::Executor;
use tokio::sync::Notify;

const SPAWN_MANY_TASKS: f64 = 100_000.0;
const YIELD_TASKS: u64 = 1_000;
const YIELDS_PER_TASK: f64 = 200.0;
const CHAIN_DEPTH: f64 = 100_000.0;
const PING_PONG_ROUND_TRIPS: f64 = 1_000_000.0;
const HERD_WAITERS: u64 = 1_000;
const HERD_GENERATIONS: f64 = 1_000.0;
/// The most worker threads any flavour uses.
const MAX_WORKERS: usize = 2;

// ===== the wait primitives =====

/// A wait queue, each used the way its own documentation recommends.
trait Primitive: Default + Send + Sync + 'static {
    /// Wakes one waiter: `wake_up` / `notify_one` / `notify(1)`.
    fn wake_one(&self);

    /// Wakes every waiter: `wake_up_all` / `notify_waiters` / `notify(MAX)`.
    fn wake_all(&self);

    /// Sleeps until `cond` holds. Every implementation registers before it
    /// checks, so a wake between the check and the sleep is never lost.
    fn wait_until(&self, cond: impl FnMut() -> bool + Send) -> impl Future<Output = ()> + Send;
}

impl Primitive for WaitQueue {
    fn wake_one(&self) {
        self.wake_up();
    }

    fn wake_all(&self) {
        self.wake_up_all();
    }

    async fn wait_until(&self, cond: impl FnMut() -> bool + Send) {
        // `wait_event` queues its entry before each check of `cond`.
        self.wait_event(cond).await.expect("queue is never closed");
    }
}

impl Primitive for Notify {
    fn wake_one(&self) {
        self.notify_one();
    }

    fn wake_all(&self) {
        self.notify_waiters();
    }

    async fn wait_until(&self, mut cond: impl FnMut() -> bool + Send) {
        loop {
            // Register first: an enabled `Notified` receives any
            // `notify_waiters` or `notify_one` that follows.
            let mut notified = pin!(self.notified());
            notified.as_mut().enable();
            if cond() {
                return;
            }
            notified.await;
        }
    }
}

impl Primitive for Event {
    fn wake_one(&self) {
        self.notify(1);
    }

    fn wake_all(&self) {
        self.notify(usize::MAX);
    }

    async fn wait_until(&self, mut cond: impl FnMut() -> bool + Send) {
        loop {
            if cond() {
                return;
            }
            // `listen` registers; re-check before sleeping.
            let listener = self.listen();
            if cond() {
                return;
            }
            listener.await;
        }
    }
}

// ===== the runtimes =====

/// What a workload needs from a runtime.
trait Rt: Sized + 'static {
    const NAME: &'static str;

    /// The wait queue used with this runtime.
    type Queue: Primitive;

    /// `workers == 1`: the current-thread flavour; otherwise that many
    /// worker threads.
    fn build(workers: usize) -> Self;

    /// Runs `future` to completion, driving the runtime meanwhile.
    fn block_on<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// Spawns a task (from inside the runtime); the returned future is its
    /// output and panics if the task panicked.
    fn spawn<F>(future: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// Spawns a task nobody joins.
    fn spawn_detached<F>(future: F)
    where
        F: Future<Output = ()> + Send + 'static;

    /// Yields once to the scheduler.
    fn yield_now() -> impl Future<Output = ()> + Send;

    /// A one-shot completion channel: the sender and the receiving future.
    fn completion() -> (
        impl FnOnce(u64) + Send + 'static,
        impl Future<Output = u64> + Send + 'static,
    );
}

/// Ours.
struct Ours(runtime::Runtime);

impl Rt for Ours {
    const NAME: &'static str = "ours";
    type Queue = WaitQueue;

    fn build(workers: usize) -> Self {
        let rt = if workers == 1 {
            runtime::Builder::new_current_thread().enable_all().build()
        } else {
            runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()
        };
        Ours(rt.expect("our runtime builds"))
    }

    fn block_on<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.block_on(future)
    }

    fn spawn<F>(future: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = runtime::spawn(future);
        async move { handle.await.expect("task of ours failed") }
    }

    fn spawn_detached<F>(future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(runtime::spawn(future));
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        runtime::task::yield_now()
    }

    fn completion() -> (
        impl FnOnce(u64) + Send + 'static,
        impl Future<Output = u64> + Send + 'static,
    ) {
        struct Slot {
            queue: WaitQueue,
            done: AtomicBool,
            value: AtomicU64,
        }
        let slot = Arc::new(Slot {
            queue: WaitQueue::new(),
            done: AtomicBool::new(false),
            value: AtomicU64::new(0),
        });
        let sender = {
            let slot = slot.clone();
            move |value: u64| {
                slot.value.store(value, SeqCst);
                slot.done.store(true, SeqCst);
                slot.queue.wake_up_all();
            }
        };
        let receiver = async move {
            slot.queue
                .wait_event(|| slot.done.load(SeqCst))
                .await
                .expect("queue is never closed");
            slot.value.load(SeqCst)
        };
        (sender, receiver)
    }
}

/// Tokio.
struct Tokio(tokio::runtime::Runtime);

impl Rt for Tokio {
    const NAME: &'static str = "tokio";
    type Queue = Notify;

    fn build(workers: usize) -> Self {
        let rt = if workers == 1 {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()
        };
        Tokio(rt.expect("tokio builds"))
    }

    fn block_on<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.block_on(future)
    }

    fn spawn<F>(future: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = tokio::spawn(future);
        async move { handle.await.expect("tokio task failed") }
    }

    fn spawn_detached<F>(future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(tokio::spawn(future));
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        tokio::task::yield_now()
    }

    fn completion() -> (
        impl FnOnce(u64) + Send + 'static,
        impl Future<Output = u64> + Send + 'static,
    ) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sender = move |value: u64| tx.send(value).expect("receiver is alive");
        let receiver = async move { rx.await.expect("sender sent") };
        (sender, receiver)
    }
}

/// The executor every smol task runs on: the main thread drives it in
/// `block_on`, plus `workers - 1` helper threads in the multi-thread
/// flavour. (A static, so tasks can spawn without a handle.)
static SMOL: Executor<'static> = Executor::new();

/// smol (`async-executor`).
struct Smol {
    /// Dropping the sender stops the helper threads.
    stop: Option<smol::channel::Sender<()>>,
    helpers: Vec<std::thread::JoinHandle<()>>,
}

impl Rt for Smol {
    const NAME: &'static str = "smol";
    type Queue = Event;

    fn build(workers: usize) -> Self {
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        let helpers = (1..workers)
            .map(|i| {
                let stopped = stopped.clone();
                std::thread::Builder::new()
                    .name(format!("smol-helper-{i}"))
                    .spawn(move || {
                        // `recv` fails once the sender is dropped.
                        let _ = smol::block_on(SMOL.run(stopped.recv()));
                    })
                    .expect("smol helper thread starts")
            })
            .collect();
        Smol {
            stop: Some(stop),
            helpers,
        }
    }

    fn block_on<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        smol::block_on(SMOL.run(future))
    }

    fn spawn<F>(future: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        // A `Task` is its own join handle (a panic in it resumes here).
        SMOL.spawn(future)
    }

    fn spawn_detached<F>(future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // Dropping a smol `Task` would cancel it.
        SMOL.spawn(future).detach();
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        smol::future::yield_now()
    }

    fn completion() -> (
        impl FnOnce(u64) + Send + 'static,
        impl Future<Output = u64> + Send + 'static,
    ) {
        let (tx, rx) = smol::channel::bounded(1);
        let sender = move |value: u64| tx.try_send(value).expect("channel has room");
        let receiver = async move { rx.recv().await.expect("sender sent") };
        (sender, receiver)
    }
}

impl Drop for Smol {
    fn drop(&mut self) {
        drop(self.stop.take());
        for helper in self.helpers.drain(..) {
            helper.join().expect("smol helper thread panicked");
        }
    }
}

// ===== the workloads =====

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    SpawnMany,
    YieldMany,
    ChainedSpawn,
    PingPong,
    Herd,
}

const WORKLOADS: [Workload; 5] = [
    Workload::SpawnMany,
    Workload::YieldMany,
    Workload::ChainedSpawn,
    Workload::PingPong,
    Workload::Herd,
];

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::SpawnMany => "spawn_many",
            Workload::YieldMany => "yield_many",
            Workload::ChainedSpawn => "chained_spawn",
            Workload::PingPong => "ping_pong",
            Workload::Herd => "herd",
        }
    }
}

/// Sizes of one run, after `RT_BENCH_SCALE`.
#[derive(Clone, Copy, Debug)]
struct Sizes {
    spawn_tasks: u64,
    yields_per_task: u64,
    chain_depth: u64,
    round_trips: u64,
    generations: u64,
}

impl Sizes {
    fn new(scale: f64) -> Self {
        let scaled = |n: f64| ((n * scale) as u64).max(1);
        Sizes {
            spawn_tasks: scaled(SPAWN_MANY_TASKS),
            yields_per_task: scaled(YIELDS_PER_TASK),
            chain_depth: scaled(CHAIN_DEPTH),
            round_trips: scaled(PING_PONG_ROUND_TRIPS),
            generations: scaled(HERD_GENERATIONS),
        }
    }
}

/// Runs `workload` once inside the root task; returns (ops, elapsed).
async fn measure<R: Rt>(workload: Workload, sizes: Sizes) -> (u64, Duration) {
    let start = Instant::now();
    let ops = match workload {
        Workload::SpawnMany => spawn_many::<R>(sizes.spawn_tasks).await,
        Workload::YieldMany => yield_many::<R>(sizes.yields_per_task).await,
        Workload::ChainedSpawn => chained_spawn::<R>(sizes.chain_depth).await,
        Workload::PingPong => ping_pong::<R>(sizes.round_trips).await,
        Workload::Herd => herd::<R>(sizes.generations).await,
    };
    (ops, start.elapsed())
}

/// `tasks` trivial tasks, spawned from this task; every handle awaited.
async fn spawn_many<R: Rt>(tasks: u64) -> u64 {
    let handles: Vec<_> = (0..tasks).map(|i| R::spawn(async move { i })).collect();
    let mut sum = 0;
    for handle in handles {
        sum += handle.await;
    }
    assert_eq!(sum, tasks * (tasks - 1) / 2, "spawn_many lost a task");
    tasks
}

/// `YIELD_TASKS` tasks, each yielding `yields` times.
async fn yield_many<R: Rt>(yields: u64) -> u64 {
    let handles: Vec<_> = (0..YIELD_TASKS)
        .map(|_| {
            R::spawn(async move {
                let mut done = 0;
                for _ in 0..yields {
                    R::yield_now().await;
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for handle in handles {
        total += handle.await;
    }
    assert_eq!(total, YIELD_TASKS * yields, "yield_many lost a yield");
    total
}

/// One link of `chained_spawn`: counts itself, then spawns the next link or,
/// as the last one, sends the count. A hand-written future (not an `async
/// fn`, whose `Send`-ness would depend on itself through the spawn).
struct Link<R, D> {
    left: u64,
    count: Arc<AtomicU64>,
    done: Option<D>,
    _runtime: std::marker::PhantomData<fn() -> R>,
}

impl<R, D> Unpin for Link<R, D> {}

impl<R: Rt, D: FnOnce(u64) + Send + 'static> Future for Link<R, D> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        let counted = self.count.fetch_add(1, SeqCst) + 1;
        let done = self.done.take().expect("a link runs once");
        if self.left == 1 {
            done(counted);
        } else {
            R::spawn_detached(Link::<R, D> {
                left: self.left - 1,
                count: self.count.clone(),
                done: Some(done),
                _runtime: std::marker::PhantomData,
            });
        }
        Poll::Ready(())
    }
}

/// A chain of `depth` tasks, each spawning the next.
async fn chained_spawn<R: Rt>(depth: u64) -> u64 {
    let (done, finished) = R::completion();
    let count = Arc::new(AtomicU64::new(0));
    R::spawn_detached(Link::<R, _> {
        left: depth,
        count: count.clone(),
        done: Some(done),
        _runtime: std::marker::PhantomData,
    });
    let counted = finished.await;
    assert_eq!(counted, depth, "chained_spawn lost a link");
    assert_eq!(count.load(SeqCst), depth, "chained_spawn ran extra links");
    depth
}

/// Two tasks, each on its own queue, bounce `ball`: A makes it odd for B,
/// B makes it even for A.
async fn ping_pong<R: Rt>(round_trips: u64) -> u64 {
    let ball = Arc::new(AtomicU64::new(0));
    let queues = Arc::new([R::Queue::default(), R::Queue::default()]);
    // Side `me` sleeps on `queues[me]`. Round i: A (0) serves 2i+1 and waits
    // for 2i+2; B (1) waits for 2i+1 and serves 2i+2.
    let side = |me: usize| {
        let (ball, queues) = (ball.clone(), queues.clone());
        R::spawn(async move {
            let serve = |value: u64| {
                ball.store(value, SeqCst);
                queues[1 - me].wake_one();
            };
            for i in 0..round_trips {
                if me == 0 {
                    serve(2 * i + 1);
                }
                let want = 2 * i + 2 - me as u64;
                queues[me].wait_until(|| ball.load(SeqCst) == want).await;
                if me == 1 {
                    serve(2 * i + 2);
                }
            }
        })
    };
    let (a, b) = (side(0), side(1));
    a.await;
    b.await;
    assert_eq!(
        ball.load(SeqCst),
        2 * round_trips,
        "ping_pong lost a round trip"
    );
    round_trips
}

/// `HERD_WAITERS` tasks on one queue; per generation the driver bumps
/// `generation`, wakes all, and sleeps on its own queue until every waiter
/// has counted itself in `seen`. Returns the number of waiter wakes.
async fn herd<R: Rt>(generations: u64) -> u64 {
    let herd = Arc::new(R::Queue::default());
    let driver = Arc::new(R::Queue::default());
    let generation = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(AtomicU64::new(0));
    let waiters: Vec<_> = (0..HERD_WAITERS)
        .map(|_| {
            let (herd, driver) = (herd.clone(), driver.clone());
            let (generation, seen) = (generation.clone(), seen.clone());
            R::spawn(async move {
                for g in 1..=generations {
                    herd.wait_until(|| generation.load(SeqCst) >= g).await;
                    assert_eq!(generation.load(SeqCst), g, "a generation started early");
                    if seen.fetch_add(1, SeqCst) + 1 == g * HERD_WAITERS {
                        driver.wake_one();
                    }
                }
            })
        })
        .collect();
    for g in 1..=generations {
        generation.store(g, SeqCst);
        herd.wake_all();
        driver
            .wait_until(|| seen.load(SeqCst) == g * HERD_WAITERS)
            .await;
    }
    for waiter in waiters {
        waiter.await;
    }
    let wakes = seen.load(SeqCst);
    assert_eq!(wakes, generations * HERD_WAITERS, "herd lost a wake");
    wakes
}

// ===== the harness =====

const RUNTIMES: [&str; 3] = [Ours::NAME, Tokio::NAME, Smol::NAME];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavour {
    CurrentThread,
    TwoThread,
}

impl Flavour {
    fn name(self) -> &'static str {
        match self {
            Flavour::CurrentThread => "current_thread",
            Flavour::TwoThread => "2_thread",
        }
    }

    fn workers(self) -> usize {
        match self {
            Flavour::CurrentThread => 1,
            Flavour::TwoThread => MAX_WORKERS,
        }
    }
}

/// The three runtimes of one row.
struct Runtimes {
    ours: Ours,
    tokio: Tokio,
    smol: Smol,
}

impl Runtimes {
    fn build(workers: usize) -> Self {
        Runtimes {
            ours: Ours::build(workers),
            tokio: Tokio::build(workers),
            smol: Smol::build(workers),
        }
    }

    /// One run on runtime `which` (an index into `RUNTIMES`): ns per op, or
    /// the panic message.
    fn run(&self, which: usize, workload: Workload, sizes: Sizes) -> Result<f64, String> {
        fn go<R: Rt>(rt: &R, workload: Workload, sizes: Sizes) -> Result<f64, String> {
            catch_unwind(AssertUnwindSafe(|| {
                rt.block_on(async move { R::spawn(measure::<R>(workload, sizes)).await })
            }))
            .map(|(ops, elapsed)| elapsed.as_nanos() as f64 / ops as f64)
            .map_err(|panic| {
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panicked".into())
            })
        }
        match which {
            0 => go(&self.ours, workload, sizes),
            1 => go(&self.tokio, workload, sizes),
            _ => go(&self.smol, workload, sizes),
        }
    }
}

/// The median ns/op of each runtime (`Err`: it panicked) for one row.
type Row = [Result<f64, String>; 3];

fn bench_row(flavour: Flavour, workload: Workload, sizes: Sizes, runs: usize) -> Row {
    let rts = Runtimes::build(flavour.workers());
    let mut samples: [Vec<f64>; 3] = Default::default();
    let mut failed: [Option<String>; 3] = Default::default();
    // `RT_BENCH_ONLY=ours` runs one runtime (for perf); the others show NaN.
    let only = std::env::var("RT_BENCH_ONLY").ok();
    let skipped = |which: usize| only.as_deref().is_some_and(|o| o != RUNTIMES[which]);
    let mut record = |which: usize, keep: bool| {
        if failed[which].is_some() || skipped(which) {
            return;
        }
        match rts.run(which, workload, sizes) {
            Ok(ns) if keep => samples[which].push(ns),
            Ok(_) => {}
            Err(msg) => failed[which] = Some(msg),
        }
    };
    for which in 0..RUNTIMES.len() {
        record(which, false); // warm-up
    }
    for rep in 0..runs {
        let mut order = [0, 1, 2];
        if rep % 2 == 1 {
            order.reverse();
        }
        for which in order {
            record(which, true);
        }
    }
    std::array::from_fn(|i| match failed[i].take() {
        Some(msg) => Err(msg),
        None if skipped(i) => Ok(f64::NAN),
        None => {
            let s = &mut samples[i];
            s.sort_by(f64::total_cmp);
            Ok(s[s.len() / 2])
        }
    })
}

/// A target: `peer` must be at least `min` times slower than ours.
struct Target {
    workload: Workload,
    flavour: Flavour,
    peer: usize,
    min: f64,
}

const TARGETS: [Target; 7] = [
    Target {
        workload: Workload::SpawnMany,
        flavour: Flavour::CurrentThread,
        peer: 2,
        min: 1.2,
    },
    Target {
        workload: Workload::ChainedSpawn,
        flavour: Flavour::CurrentThread,
        peer: 2,
        min: 1.0,
    },
    Target {
        workload: Workload::ChainedSpawn,
        flavour: Flavour::TwoThread,
        peer: 2,
        min: 1.0,
    },
    Target {
        workload: Workload::YieldMany,
        flavour: Flavour::TwoThread,
        peer: 1,
        min: 1.0,
    },
    Target {
        workload: Workload::PingPong,
        flavour: Flavour::CurrentThread,
        peer: 1,
        min: 1.3,
    },
    Target {
        workload: Workload::Herd,
        flavour: Flavour::CurrentThread,
        peer: 1,
        min: 1.3,
    },
    Target {
        workload: Workload::Herd,
        flavour: Flavour::TwoThread,
        peer: 1,
        min: 1.5,
    },
];

fn ratio(row: &Row, peer: usize) -> Option<f64> {
    match (&row[0], &row[peer]) {
        (Ok(ours), Ok(theirs)) => Some(theirs / ours),
        _ => None,
    }
}

fn cell(result: &Result<f64, String>) -> String {
    match result {
        Ok(ns) => format!("{ns:.1}"),
        Err(_) => "FAIL".into(),
    }
}

fn ratio_cell(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "-".into(), |r| format!("{r:.2}x"))
}

/// The targets of one row, as "tokio>=1.30x ok" (or "MISS").
fn target_cell(workload: Workload, flavour: Flavour, row: &Row) -> String {
    TARGETS
        .iter()
        .filter(|t| t.workload == workload && t.flavour == flavour)
        .map(|t| {
            let verdict = match ratio(row, t.peer) {
                Some(r) if r >= t.min => "ok",
                Some(_) => "MISS",
                None => "FAIL",
            };
            format!("{}>={:.2}x {verdict}", RUNTIMES[t.peer], t.min)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().map_or(default, |s| {
        s.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {s:?}"))
    })
}

fn header() -> String {
    format!(
        "{:<30} {:>3} {:>9} {:>9} {:>9} {:>10} {:>9}  targets",
        "workload/flavour (ns/op)", "wk", "ours", "tokio", "smol", "tokio/ours", "smol/ours"
    )
}

fn main() {
    let scale: f64 = env_or("RT_BENCH_SCALE", 1.0);
    let runs: usize = env_or("RT_BENCH_RUNS", 5usize).max(1);
    let filter = std::env::var("RT_BENCH_FILTER").unwrap_or_default();
    let sizes = Sizes::new(scale);
    let started = Instant::now();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "runtime benchmark: {cpus} CPUs; ours vs tokio vs smol (async-executor); \
         compare ratios, not absolute times"
    );
    println!(
        "sizes (RT_BENCH_SCALE={scale}): spawn_many {} tasks, yield_many {} tasks x {} yields, \
         chained_spawn depth {}, ping_pong {} round trips, herd {} waiters x {} generations; \
         median of {runs} runs after a warm-up",
        sizes.spawn_tasks,
        YIELD_TASKS,
        sizes.yields_per_task,
        sizes.chain_depth,
        sizes.round_trips,
        HERD_WAITERS,
        sizes.generations,
    );
    println!("ratio = peer / ours (>1.0: ours is faster); wk = worker threads\n");
    println!("{}", header());

    let mut table = Vec::new();
    let mut ours_by_flavour: Vec<(Workload, Flavour, Result<f64, String>)> = Vec::new();
    let mut failures = Vec::new();
    let mut misses = 0;
    for flavour in [Flavour::CurrentThread, Flavour::TwoThread] {
        for workload in WORKLOADS {
            let label = format!("{}/{}", workload.name(), flavour.name());
            if !label.contains(&filter) {
                continue;
            }
            // The label goes out first: a hang leaves it without numbers.
            print!("{label:<30} ");
            std::io::stdout().flush().expect("stdout");
            let row = bench_row(flavour, workload, sizes, runs);
            let targets = target_cell(workload, flavour, &row);
            misses += targets.matches("MISS").count();
            let line = format!(
                "{:>3} {:>9} {:>9} {:>9} {:>10} {:>9}  {targets}",
                flavour.workers(),
                cell(&row[0]),
                cell(&row[1]),
                cell(&row[2]),
                ratio_cell(ratio(&row, 1)),
                ratio_cell(ratio(&row, 2)),
            );
            println!("{line}");
            for (which, result) in row.iter().enumerate() {
                if let Err(msg) = result {
                    failures.push(format!("{label} on {}: {msg}", RUNTIMES[which]));
                }
            }
            ours_by_flavour.push((workload, flavour, row[0].clone()));
            table.push(format!("{label:<30} {line}"));
        }
    }

    println!("\n===== results =====");
    println!("{}", header());
    for line in &table {
        println!("{line}");
    }

    println!("\n===== ours: 2 workers vs current-thread (>=1.00x: 2 workers not slower) =====");
    for workload in WORKLOADS {
        let find = |f: Flavour| {
            ours_by_flavour
                .iter()
                .find(|(w, fl, _)| *w == workload && *fl == f)
                .map(|(_, _, r)| r.clone())
        };
        let (Some(ct), Some(mt)) = (find(Flavour::CurrentThread), find(Flavour::TwoThread)) else {
            continue;
        };
        let line = match (ct, mt) {
            (Ok(ct), Ok(mt)) => format!(
                "{ct:.1} ns/op current-thread, {mt:.1} ns/op {MAX_WORKERS} workers -> \
                 {:.2}x ({})",
                ct / mt,
                if mt <= ct { "not slower" } else { "SLOWER" }
            ),
            _ => "FAIL".into(),
        };
        println!("{:<16} {line}", workload.name());
    }

    println!("\ntargets missed: {misses}");
    for failure in &failures {
        println!("FAILED: {failure}");
    }
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    if !failures.is_empty() {
        std::process::exit(1);
    }
}
