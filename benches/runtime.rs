//! Runtime comparison benchmark: our runtime (`waitrt`) against tokio and smol
//! (`async-executor`), each in a current-thread (`ct`) and a 2-worker
//! (`2wk`) flavour, every workload written once for all three.
//!
//! Workloads (op counts at `RT_BENCH_SCALE=1`):
//!
//! - `spawn_many`: one task spawns 100,000 trivial tasks and awaits every
//!   handle. ns/op = per task.
//! - `yield_many`: 1,000 tasks each yield 200 times. ns/op = per yield.
//! - `chained_spawn`: a chain of 1,000,000 tasks, each spawning the next;
//!   the last one signals completion (ours: `WaitQueue` + `AtomicBool`,
//!   tokio: `oneshot`, smol: `smol::channel`). ns/op = per task. (With
//!   100,000 a run took about 9 ms, and one preemption on a shared host
//!   moved it by a fifth: per-process figures fell in two groups, and one
//!   5-pair run gave 0.83x smol (0.71–1.13) where others gave 1.11x and
//!   1.24x. At 1,000,000, 10 processes each: ours 84–94, smol 89–99 ns.)
//! - `ping_pong`: two tasks, each sleeping on its own wait queue (ours:
//!   `WaitQueue`, tokio: `Notify`, smol: `event_listener::Event`), bounce a
//!   counter 1,000,000 times. ns/op = per round trip.
//! - `herd`: 1,000 waiters on one queue, 1,000 generations of "bump the
//!   generation, wake all, wait until every waiter has seen it". ns/op = per
//!   woken waiter.
//! - `ping_pong_xt`: [`cross_thread`]: `ping_pong`'s two sides on two
//!   current-thread runtimes on two threads, 100,000 round trips, with two
//!   plain threads parking and unparking as the runtime-free reference.
//!   ns/op = per round trip.
//!
//! - `bare` (in the `ping_pong/ct` and `herd/ct` rows): [`bare`], the
//!   smallest executor that runs them, around the same `WaitQueue` as
//!   ours, reported as a reference (a floor, not a peer): what waking and
//!   polling cost with no runtime around them.
//!
//! Every workload runs inside one spawned root task, which also takes the
//! time, so the measurement excludes building the runtime, `block_on` and
//! shutdown. Every run checks its counts and panics when they are wrong,
//! so a broken runtime posts `FAIL`, not a time.
//!
//! Method: [`harness`] (issue 21): every (row, runtime) measurement in a
//! fresh process, as a user's program is, the runtimes alternating,
//! `RT_BENCH_PAIRS` rounds (default 5), the median of the pair ratios with
//! their range; ratio = peer / ours (above 1.0: ours is faster). The
//! issue's goals are [`Row::target`]s, judged in the summary; after it, our
//! 2-worker medians against our current-thread ones.
//!
//! ```text
//! cargo bench --bench runtime
//! RT_BENCH_SCALE=0.02 RT_BENCH_PAIRS=2 RT_BENCH_FILTER=herd cargo bench --bench runtime
//! RT_BENCH_IN_PROCESS=1 cargo bench --bench runtime      # every run in one process
//! RT_BENCH_WAIT_REGISTRY=0 cargo bench --bench runtime    # ours with Builder::wait_registry(false)
//! RT_BENCH_WAIT_REGISTRY=full cargo bench --bench runtime # ours with the whole registry on
//! RT_BENCH_CHILD=herd/ct RT_BENCH_CONTENDER=ours perf stat target/release/deps/runtime-…
//! ```

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use event_listener::Event;
use smol::Executor;
use tokio::sync::Notify;
use waitrt::sync::WaitQueue;

#[path = "harness/mod.rs"]
mod harness;

use harness::{Contender, Outcome, Row};

#[path = "runtime/cross_thread.rs"]
mod cross_thread;

#[path = "runtime/bare.rs"]
mod bare;

const SPAWN_MANY_TASKS: f64 = 100_000.0;
const YIELD_TASKS: u64 = 1_000;
const YIELDS_PER_TASK: f64 = 200.0;
const CHAIN_DEPTH: f64 = 1_000_000.0;
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
struct Ours(waitrt::Runtime);

impl Rt for Ours {
    const NAME: &'static str = "ours";
    type Queue = WaitQueue;

    fn build(workers: usize) -> Self {
        let mut builder = if workers == 1 {
            waitrt::Builder::new_current_thread()
        } else {
            let mut builder = waitrt::Builder::new_multi_thread();
            builder.worker_threads(workers);
            builder
        };
        // What the wait registry costs a row (issue 22): by default (as
        // the runtime's) tasks' sleeps go to their slots
        // (`Builder::wait_registry`), `0` lists none, `full` lists every
        // sleep in the shared map (as the hung-task detector has it).
        let registry = std::env::var("RT_BENCH_WAIT_REGISTRY").unwrap_or_default();
        let rt = builder.enable_all().wait_registry(registry != "0").build();
        if registry == "full" {
            waitq::registry::enable();
        }
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
        Unwrapped(waitrt::spawn(future))
    }

    fn spawn_detached<F>(future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(waitrt::spawn(future));
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        waitrt::task::yield_now()
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

/// A join handle whose `Result` output is unwrapped, and no bigger than
/// the handle: an `async move { handle.await.expect(..) }` block held the
/// handle twice (before and across its `.await`), 72 bytes for ours'
/// 32-byte handle and 24 for tokio's 8, where smol's `Task` (its own
/// handle) went into spawn_many's `Vec` as its bare 8 bytes, and where a
/// user's `Vec` of handles holds the handles themselves.
struct Unwrapped<H>(H);

impl<H, T, E> Future for Unwrapped<H>
where
    H: Future<Output = Result<T, E>> + Unpin,
    E: std::fmt::Debug,
{
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|output| output.expect("a spawned task failed"))
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
        Unwrapped(tokio::spawn(future))
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
    let side = |me: usize| {
        R::spawn(ping_pong_side(
            me,
            ball.clone(),
            queues.clone(),
            round_trips,
        ))
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

/// Side `me` of a ping-pong; it sleeps on `queues[me]`. Round i: A (0)
/// serves 2i+1 and waits for 2i+2; B (1) waits for 2i+1 and serves 2i+2.
async fn ping_pong_side<Q: Primitive>(
    me: usize,
    ball: Arc<AtomicU64>,
    queues: Arc<[Q; 2]>,
    round_trips: u64,
) {
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

// ===== the rows =====

/// `ct` is the current-thread flavour; `2wk` has [`MAX_WORKERS`] workers.
const FLAVOURS: [(&str, usize); 2] = [("ct", 1), ("2wk", MAX_WORKERS)];

/// One run of `workload` on a fresh `R` with `workers` workers: ns per op.
fn run<R: Rt>(workers: usize, workload: Workload, scale: f64) -> f64 {
    let rt = R::build(workers);
    let sizes = Sizes::new(scale);
    let (ops, elapsed) = rt.block_on(async move { R::spawn(measure::<R>(workload, sizes)).await });
    elapsed.as_nanos() as f64 / ops as f64
}

fn contender<R: Rt>(workers: usize, workload: Workload) -> Contender {
    Contender::new(R::NAME, move |scale| run::<R>(workers, workload, scale))
}

/// The issue's goals (issue 21): `(workload, flavour, peer, min)`, ours
/// at least `min` times as fast as `peer`.
const TARGETS: [(Workload, &str, &str, f64); 7] = [
    (Workload::SpawnMany, "ct", Smol::NAME, 1.2),
    (Workload::ChainedSpawn, "ct", Smol::NAME, 1.0),
    (Workload::ChainedSpawn, "2wk", Smol::NAME, 1.0),
    (Workload::YieldMany, "2wk", Tokio::NAME, 1.0),
    (Workload::PingPong, "ct", Tokio::NAME, 1.3),
    (Workload::Herd, "ct", Tokio::NAME, 1.3),
    (Workload::Herd, "2wk", Tokio::NAME, 1.5),
];

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for (flavour, workers) in FLAVOURS {
        for workload in WORKLOADS {
            let mut row = Row::new(
                format!("{}/{flavour}", workload.name()),
                vec![
                    contender::<Ours>(workers, workload),
                    contender::<Tokio>(workers, workload),
                    contender::<Smol>(workers, workload),
                ],
            );
            // The floor of the one-thread wake rows (see `bare`).
            if workers == 1 && matches!(workload, Workload::PingPong | Workload::Herd) {
                row.contenders
                    .push(Contender::reference(bare::Bare::NAME, move |scale| {
                        run::<bare::Bare>(1, workload, scale)
                    }));
            }
            for (w, f, peer, min) in TARGETS {
                if w == workload && f == flavour {
                    row = row.target(peer, min);
                }
            }
            rows.push(row);
        }
    }
    rows.push(cross_thread::row());
    rows
}

/// Our 2-worker medians against our current-thread ones (each from its
/// own processes; >= 1.00x: 2 workers not slower).
fn flavours(outcomes: &[Outcome]) {
    let mut lines = Vec::new();
    for workload in WORKLOADS {
        let ours = |flavour: &str| {
            let name = format!("{}/{flavour}", workload.name());
            outcomes
                .iter()
                .find(|o| o.row == name)
                .map(|o| o.our_cost())
        };
        let line = match (ours("ct"), ours("2wk")) {
            (None, _) | (_, None) => continue,
            (Some(Some(ct)), Some(Some(mt))) => format!(
                "{ct:.1} ns/op current-thread, {mt:.1} ns/op {MAX_WORKERS} workers -> {:.2}x ({})",
                ct / mt,
                if mt <= ct { "not slower" } else { "SLOWER" }
            ),
            _ => "FAIL".into(),
        };
        lines.push(format!("{:<16} {line}", workload.name()));
    }
    if !lines.is_empty() {
        println!("\n===== ours: 2 workers vs current-thread (>=1.00x: 2 workers not slower) =====");
        for line in lines {
            println!("{line}");
        }
    }
}

fn main() -> std::process::ExitCode {
    let sizes = Sizes::new(harness::env_or("RT_BENCH", "SCALE", 1.0));
    let title = format!(
        "runtime benchmark: ours vs tokio vs smol (async-executor)\n\
         sizes: spawn_many {} tasks, yield_many {YIELD_TASKS} tasks x {} yields, chained_spawn \
         depth {}, ping_pong {} round trips, herd {HERD_WAITERS} waiters x {} generations",
        sizes.spawn_tasks,
        sizes.yields_per_task,
        sizes.chain_depth,
        sizes.round_trips,
        sizes.generations,
    );
    let bench = harness::Bench {
        prefix: "RT_BENCH",
        // Printed once, by the driver; one leaked string per process.
        title: Box::leak(title.into_boxed_str()),
        unit: "ns/op",
    };
    harness::main_with(&bench, rows(), flavours)
}
