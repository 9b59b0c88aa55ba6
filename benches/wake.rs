//! Wake-path benchmark: `waitq::WaitQueue` against `tokio::sync::Notify` and
//! `event_listener::Event`, each driven the same way on the same executor
//! (tokio's, current-thread `ct` and 2 workers `2wk`), so the rows compare
//! the primitives, not the runtimes.
//!
//! Workloads (sizes at `WAKE_BENCH_SCALE=1`):
//!
//! - `ping_pong`: two tasks, each sleeping on its own queue, bounce a counter
//!   100,000 times. ns/op = per round trip.
//! - `herd`: 1,000 waiters on one queue, 1,000 generations of "bump the
//!   generation, wake all, wait until every waiter has seen it". ns/op = per
//!   woken waiter.
//! - `mixed`: a producer pushes 100,000 items one by one (waking one of 8
//!   exclusive consumers per item) and every 100 items bumps a batch counter
//!   (waking all 4 observers). ns/op = per item. The consumers and the
//!   observers sleep on two queues for every primitive: a `notify_one` /
//!   `notify(1)` on a queue shared with observers could land on an observer
//!   and strand an item. `mixed_1q` runs waitq's own idiom as a row of its
//!   own (no peer): one queue, exclusive consumers plus non-exclusive
//!   observers, where every per-item `wake_up` also wakes all the
//!   observers. The producer yields after each item, so every item is a
//!   wake rather than one backlog.
//!
//! Method: [`harness`] (issue 21): every (row, primitive) measurement in a
//! fresh process, the primitives alternating, `WAKE_BENCH_PAIRS` rounds
//! (default 5), the median of the pair ratios with their range; ratio =
//! peer / waitq (above 1.0: waitq is faster). Every run checks its counts
//! and panics when they are wrong, so a broken workload posts `FAIL`, not a
//! time; a lost wake-up hangs the child, which the driver kills after
//! `WAKE_BENCH_TIMEOUT_S` (a `FAIL` too).
//!
//! ```text
//! cargo bench --bench wake
//! WAKE_BENCH_SCALE=0.02 WAKE_BENCH_PAIRS=2 WAKE_BENCH_FILTER=herd cargo bench --bench wake
//! WAKE_BENCH_IN_PROCESS=1 cargo bench --bench wake     # every run in one process
//! WAKE_BENCH_CHILD=herd/ct WAKE_BENCH_CONTENDER=waitq perf record target/release/deps/wake-…
//! ```

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[path = "harness/mod.rs"]
mod harness;

use harness::{Contender, Row};

use event_listener::Event;
use tokio::runtime::Builder;
use tokio::sync::Notify;
use waitq::WaitQueue;

const PING_PONG_ROUND_TRIPS: f64 = 100_000.0;
const HERD_WAITERS: usize = 1_000;
const HERD_GENERATIONS: f64 = 1_000.0;
const MIXED_ITEMS: f64 = 100_000.0;
const MIXED_CONSUMERS: usize = 8;
const MIXED_OBSERVERS: usize = 4;
const MIXED_BATCH: u64 = 100;

// ===== the primitives =====

/// What a workload needs from a wait primitive, each implemented the way its
/// own documentation recommends.
trait Primitive: Default + Send + Sync + 'static {
    const NAME: &'static str;

    /// Wakes one waiter: `wake_up` / `notify_one` / `notify(1)`.
    fn wake_one(&self);

    /// Wakes every waiter: `wake_up_all` / `notify_waiters` / `notify(usize::MAX)`.
    fn wake_all(&self);

    /// Sleeps until `cond` returns `Some`; `exclusive` asks for an exclusive
    /// waiter where the primitive has the notion (waitq only).
    fn wait_value<T: Send>(
        &self,
        exclusive: bool,
        cond: impl FnMut() -> Option<T> + Send,
    ) -> impl Future<Output = T> + Send;

    /// Sleeps until `cond` holds (a non-exclusive waiter).
    fn wait_until(&self, mut cond: impl FnMut() -> bool + Send) -> impl Future<Output = ()> + Send {
        self.wait_value(false, move || cond().then_some(()))
    }
}

impl Primitive for WaitQueue {
    const NAME: &'static str = "waitq";

    fn wake_one(&self) {
        self.wake_up();
    }

    fn wake_all(&self) {
        self.wake_up_all();
    }

    async fn wait_value<T: Send>(
        &self,
        exclusive: bool,
        cond: impl FnMut() -> Option<T> + Send,
    ) -> T {
        let wait = if exclusive {
            self.wait_event_value_exclusive(cond)
        } else {
            self.wait_event_value(cond)
        };
        wait.await.expect("queue is never closed")
    }

    async fn wait_until(&self, cond: impl FnMut() -> bool + Send) {
        self.wait_event(cond).await.expect("queue is never closed");
    }
}

impl Primitive for Notify {
    const NAME: &'static str = "tokio::Notify";

    fn wake_one(&self) {
        self.notify_one();
    }

    fn wake_all(&self) {
        self.notify_waiters();
    }

    async fn wait_value<T: Send>(
        &self,
        _exclusive: bool,
        mut cond: impl FnMut() -> Option<T> + Send,
    ) -> T {
        loop {
            // Created before the check: it then receives any `notify_waiters`
            // that follows it, and `notify_one` stores a permit.
            let notified = self.notified();
            if let Some(value) = cond() {
                return value;
            }
            notified.await;
        }
    }
}

impl Primitive for Event {
    const NAME: &'static str = "event-listener";

    fn wake_one(&self) {
        self.notify(1);
    }

    fn wake_all(&self) {
        self.notify(usize::MAX);
    }

    async fn wait_value<T: Send>(
        &self,
        _exclusive: bool,
        mut cond: impl FnMut() -> Option<T> + Send,
    ) -> T {
        loop {
            if let Some(value) = cond() {
                return value;
            }
            let listener = self.listen();
            if let Some(value) = cond() {
                return value;
            }
            listener.await;
        }
    }
}

// ===== the workloads =====

#[derive(Clone, Copy, Debug)]
enum Workload {
    PingPong,
    Herd,
    /// `shared_queue`: consumers and observers on one queue (waitq only).
    Mixed {
        shared_queue: bool,
    },
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::PingPong => "ping_pong",
            Workload::Herd => "herd",
            Workload::Mixed {
                shared_queue: false,
            } => "mixed",
            Workload::Mixed { shared_queue: true } => "mixed_1q",
        }
    }
}

/// Sizes of one run, after `WAKE_BENCH_SCALE`.
#[derive(Clone, Copy, Debug)]
struct Sizes {
    round_trips: u64,
    generations: u64,
    items: u64,
}

impl Sizes {
    fn new(scale: f64) -> Self {
        let scaled = |n: f64| ((n * scale) as u64).max(1);
        Sizes {
            round_trips: scaled(PING_PONG_ROUND_TRIPS),
            generations: scaled(HERD_GENERATIONS),
            // Whole batches, so the observers' last batch always comes.
            items: scaled(MIXED_ITEMS / MIXED_BATCH as f64) * MIXED_BATCH,
        }
    }
}

/// Runs `workload` once on `P` and returns its wall time per op, in ns.
async fn measure<P: Primitive>(workload: Workload, sizes: Sizes) -> f64 {
    let start = Instant::now();
    let ops = match workload {
        Workload::PingPong => ping_pong::<P>(sizes.round_trips).await,
        Workload::Herd => herd::<P>(sizes.generations).await,
        Workload::Mixed { shared_queue } => mixed::<P>(sizes.items, shared_queue).await,
    };
    start.elapsed().as_nanos() as f64 / ops as f64
}

/// Awaits every task, propagating panics.
async fn join_all<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.expect("benchmark task panicked"));
    }
    out
}

/// Two tasks, each on its own queue, bounce `ball`: A makes it odd for B,
/// B makes it even for A. Returns the number of round trips.
async fn ping_pong<P: Primitive>(round_trips: u64) -> u64 {
    let ball = Arc::new(AtomicU64::new(0));
    let queues = Arc::new([P::default(), P::default()]);
    // Side `me` sleeps on `queues[me]`. Round i: A (0) serves 2i+1 and waits
    // for 2i+2; B (1) waits for 2i+1 and serves 2i+2.
    let side = |me: usize| {
        let (ball, queues) = (ball.clone(), queues.clone());
        tokio::spawn(async move {
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
    let tasks = vec![side(0), side(1)];
    join_all(tasks).await;
    assert_eq!(
        ball.load(SeqCst),
        2 * round_trips,
        "ping_pong lost a round trip"
    );
    round_trips
}

/// `HERD_WAITERS` tasks on one queue; per generation the coordinator bumps
/// `generation`, wakes all, and sleeps on its own queue until every waiter
/// has counted itself in `seen`. Returns the number of waiter wakes.
async fn herd<P: Primitive>(generations: u64) -> u64 {
    let herd = Arc::new(P::default());
    let coordinator = Arc::new(P::default());
    let generation = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(AtomicU64::new(0));
    let waiters = HERD_WAITERS as u64;
    let mut tasks = Vec::with_capacity(HERD_WAITERS + 1);
    for _ in 0..HERD_WAITERS {
        let (herd, coordinator) = (herd.clone(), coordinator.clone());
        let (generation, seen) = (generation.clone(), seen.clone());
        tasks.push(tokio::spawn(async move {
            for g in 1..=generations {
                herd.wait_until(|| generation.load(SeqCst) >= g).await;
                assert_eq!(generation.load(SeqCst), g, "a generation started early");
                if seen.fetch_add(1, SeqCst) + 1 == g * waiters {
                    coordinator.wake_one();
                }
            }
        }));
    }
    tasks.push(tokio::spawn({
        let seen = seen.clone();
        async move {
            for g in 1..=generations {
                generation.store(g, SeqCst);
                herd.wake_all();
                coordinator
                    .wait_until(|| seen.load(SeqCst) == g * waiters)
                    .await;
            }
        }
    }));
    join_all(tasks).await;
    let wakes = seen.load(SeqCst);
    assert_eq!(wakes, generations * waiters, "herd lost a wake");
    wakes
}

/// The state the `mixed` tasks share.
#[derive(Default)]
struct WorkQueue<P> {
    items: Mutex<VecDeque<u64>>,
    done: AtomicBool,
    batches: AtomicU64,
    /// Consumers sleep here, observers on `observers` (or here too).
    consumers: P,
    observers: P,
    shared_queue: bool,
}

impl<P: Primitive> WorkQueue<P> {
    fn observer_queue(&self) -> &P {
        if self.shared_queue {
            &self.consumers
        } else {
            &self.observers
        }
    }

    /// An item, `Some(None)` once drained and done, `None` to keep waiting.
    fn take(&self) -> Option<Option<u64>> {
        let item = self.items.lock().unwrap().pop_front();
        match item {
            Some(item) => Some(Some(item)),
            None => self.done.load(SeqCst).then_some(None),
        }
    }
}

/// One producer, `MIXED_CONSUMERS` exclusive consumers, `MIXED_OBSERVERS`
/// batch observers. Returns the number of items.
async fn mixed<P: Primitive>(items: u64, shared_queue: bool) -> u64 {
    let work = Arc::new(WorkQueue::<P> {
        shared_queue,
        ..WorkQueue::default()
    });
    let batches = items / MIXED_BATCH;
    let mut consumers = Vec::with_capacity(MIXED_CONSUMERS);
    for _ in 0..MIXED_CONSUMERS {
        let work = work.clone();
        consumers.push(tokio::spawn(async move {
            let (mut count, mut sum) = (0u64, 0u64);
            while let Some(item) = work.consumers.wait_value(true, || work.take()).await {
                count += 1;
                sum += item;
            }
            (count, sum)
        }));
    }
    let mut observers = Vec::with_capacity(MIXED_OBSERVERS);
    for _ in 0..MIXED_OBSERVERS {
        let work = work.clone();
        observers.push(tokio::spawn(async move {
            for b in 1..=batches {
                let queue = work.observer_queue();
                queue.wait_until(|| work.batches.load(SeqCst) >= b).await;
            }
        }));
    }
    let producer = tokio::spawn({
        let work = work.clone();
        async move {
            for item in 0..items {
                work.items.lock().unwrap().push_back(item);
                work.consumers.wake_one();
                if (item + 1) % MIXED_BATCH == 0 {
                    work.batches.fetch_add(1, SeqCst);
                    work.observer_queue().wake_all();
                }
                // Let the consumers run: one wake per item, not one backlog.
                tokio::task::yield_now().await;
            }
            work.done.store(true, SeqCst);
            work.consumers.wake_all();
        }
    });
    producer.await.expect("producer panicked");
    let (count, sum) = join_all(consumers)
        .await
        .into_iter()
        .fold((0, 0), |(c, s), (count, sum)| (c + count, s + sum));
    assert_eq!(count, items, "consumers lost items");
    assert_eq!(sum, items * (items - 1) / 2, "consumers took wrong items");
    join_all(observers).await;
    assert_eq!(work.batches.load(SeqCst), batches);
    items
}

// ===== the rows =====

/// `ct` is tokio's current-thread runtime; `2wk` has 2 worker threads.
const FLAVOURS: [(&str, usize); 2] = [("ct", 1), ("2wk", 2)];

/// One run of `workload` on `P`, on a fresh tokio runtime with `workers`
/// workers (1: current-thread): ns per op. The future in `block_on` takes
/// the time, so building and dropping the runtime is not measured.
fn run<P: Primitive>(workers: usize, workload: Workload, scale: f64) -> f64 {
    let rt = if workers == 1 {
        Builder::new_current_thread().build()
    } else {
        Builder::new_multi_thread().worker_threads(workers).build()
    }
    .expect("tokio runtime builds");
    rt.block_on(measure::<P>(workload, Sizes::new(scale)))
}

fn contender<P: Primitive>(workers: usize, workload: Workload) -> Contender {
    Contender::new(P::NAME, move |scale| run::<P>(workers, workload, scale))
}

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    let workloads = [
        Workload::PingPong,
        Workload::Herd,
        Workload::Mixed {
            shared_queue: false,
        },
    ];
    for (flavour, workers) in FLAVOURS {
        for workload in workloads {
            rows.push(Row::new(
                format!("{}/{flavour}", workload.name()),
                vec![
                    contender::<WaitQueue>(workers, workload),
                    contender::<Notify>(workers, workload),
                    contender::<Event>(workers, workload),
                ],
            ));
        }
        let shared = Workload::Mixed { shared_queue: true };
        rows.push(Row::new(
            format!("{}/{flavour}", shared.name()),
            vec![contender::<WaitQueue>(workers, shared)],
        ));
    }
    rows
}

fn main() -> std::process::ExitCode {
    let sizes = Sizes::new(harness::env_or("WAKE_BENCH", "SCALE", 1.0));
    let title = format!(
        "wake benchmark: waitq vs tokio::Notify vs event-listener, all on tokio's executor\n\
         sizes: ping_pong {} round trips, herd {HERD_WAITERS} waiters x {} generations, \
         mixed {} items ({MIXED_CONSUMERS} consumers, {MIXED_OBSERVERS} observers)",
        sizes.round_trips, sizes.generations, sizes.items,
    );
    let bench = harness::Bench {
        prefix: "WAKE_BENCH",
        // Printed once, by the driver; one leaked string per process.
        title: Box::leak(title.into_boxed_str()),
        unit: "ns/op",
    };
    harness::main(&bench, rows())
}
