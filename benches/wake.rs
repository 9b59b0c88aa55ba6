//! Wake-path benchmark: `waitq::WaitQueue` against `tokio::sync::Notify` and
//! `event_listener::Event`, each driven the same way on the same executor.
//!
//! Workloads (sizes scale with `WAKE_BENCH_SCALE`, default `1.0`):
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
//!   and strand an item. `mixed_1q` runs waitq's own idiom as an extra line:
//!   one queue, exclusive consumers plus non-exclusive observers, where every
//!   per-item `wake_up` also wakes all the observers. The producer yields
//!   after each item, so every item is a wake rather than one backlog.
//!
//! `WAKE_BENCH_FILTER=ping_pong/current` runs only the rows whose label
//! contains the string, `WAKE_BENCH_ONLY=waitq` only one primitive (for
//! profiling one workload).
//!
//! Each (runtime, workload) is run once as a warm-up, then 7 times with the
//! order of the primitives alternating; the median is reported. Every run
//! checks its counts, so a broken workload fails instead of being timed.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_listener::Event;
use tokio::runtime::{Builder, Runtime};
use tokio::sync::Notify;
use waitq::WaitQueue;

const REPS: usize = 7;
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
    fn from_env() -> Self {
        let scale: f64 = std::env::var("WAKE_BENCH_SCALE")
            .ok()
            .map(|s| s.parse().expect("WAKE_BENCH_SCALE must be a number"))
            .unwrap_or(1.0);
        let scaled = |n: f64| ((n * scale) as u64).max(1);
        Sizes {
            round_trips: scaled(PING_PONG_ROUND_TRIPS),
            generations: scaled(HERD_GENERATIONS),
            // Whole batches, so the observers' last batch always comes.
            items: scaled(MIXED_ITEMS / MIXED_BATCH as f64) * MIXED_BATCH,
        }
    }
}

/// Runs `workload` once on `P` and returns its wall time per op.
async fn measure<P: Primitive>(workload: Workload, sizes: Sizes) -> Duration {
    let start = Instant::now();
    let ops = match workload {
        Workload::PingPong => ping_pong::<P>(sizes.round_trips).await,
        Workload::Herd => herd::<P>(sizes.generations).await,
        Workload::Mixed { shared_queue } => mixed::<P>(sizes.items, shared_queue).await,
    };
    FINISHED_RUNS.fetch_add(1, SeqCst);
    start.elapsed() / u32::try_from(ops).expect("op count fits in u32")
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

// ===== the harness =====

const PRIMITIVES: [&str; 3] = [WaitQueue::NAME, Notify::NAME, Event::NAME];

/// Runs `workload` on primitive number `which` (an index into `PRIMITIVES`).
fn run(rt: &Runtime, which: usize, workload: Workload, sizes: Sizes) -> Duration {
    match which {
        0 => rt.block_on(measure::<WaitQueue>(workload, sizes)),
        1 => rt.block_on(measure::<Notify>(workload, sizes)),
        _ => rt.block_on(measure::<Event>(workload, sizes)),
    }
}

/// Median per-op time of each primitive in `which` (warm-up, then `REPS`
/// runs with the order alternating).
fn bench(rt: &Runtime, which: &[usize], workload: Workload, sizes: Sizes) -> Vec<Duration> {
    // `WAKE_BENCH_ONLY=waitq` runs one primitive (for perf); the others show 0.
    let only = std::env::var("WAKE_BENCH_ONLY").ok();
    let skipped = |w: usize| only.as_deref().is_some_and(|o| o != PRIMITIVES[w]);
    let run = |rt: &Runtime, w: usize, workload, sizes| match skipped(w) {
        true => Duration::ZERO,
        false => run(rt, w, workload, sizes),
    };
    let mut samples = vec![Vec::with_capacity(REPS); which.len()];
    for &w in which {
        run(rt, w, workload, sizes);
    }
    for rep in 0..REPS {
        let mut order: Vec<usize> = (0..which.len()).collect();
        if rep % 2 == 1 {
            order.reverse();
        }
        for i in order {
            samples[i].push(run(rt, which[i], workload, sizes));
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort();
            s[s.len() / 2]
        })
        .collect()
}

/// A lost wake-up hangs a run: no run may take longer than this.
const HANG: Duration = Duration::from_secs(60);

static FINISHED_RUNS: AtomicU64 = AtomicU64::new(0);
static CURRENT_ROW: Mutex<String> = Mutex::new(String::new());

/// Exits with an error if no run finishes within `HANG` (a thread of its
/// own, so the executors run without a timer driver).
fn start_watchdog() {
    std::thread::spawn(|| {
        let mut last = FINISHED_RUNS.load(SeqCst);
        loop {
            std::thread::sleep(HANG);
            let now = FINISHED_RUNS.load(SeqCst);
            if now == last {
                let row = CURRENT_ROW.lock().unwrap();
                eprintln!("{row}: no run finished in {HANG:?}, a wake-up was lost");
                std::process::exit(1);
            }
            last = now;
        }
    });
}

/// Whether the row `label` passes `WAKE_BENCH_FILTER`; if so, it becomes
/// the row the watchdog names.
fn select(label: &str, filter: &str) -> bool {
    let selected = label.contains(filter);
    if selected {
        label.clone_into(&mut CURRENT_ROW.lock().unwrap());
    }
    selected
}

fn runtimes() -> [(&'static str, Runtime); 2] {
    let current = Builder::new_current_thread()
        .build()
        .expect("current-thread runtime");
    let multi = Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("multi-thread runtime");
    [("current_thread", current), ("multi_thread(2)", multi)]
}

fn main() {
    let sizes = Sizes::from_env();
    let started = Instant::now();
    start_watchdog();
    println!("wake benchmark: 2 vCPUs shared; compare ratios, not absolute times");
    println!(
        "sizes: ping_pong {} round trips, herd {} waiters x {} generations, mixed {} items \
         ({} consumers, {} observers); median of {} runs after a warm-up",
        sizes.round_trips,
        HERD_WAITERS,
        sizes.generations,
        sizes.items,
        MIXED_CONSUMERS,
        MIXED_OBSERVERS,
        REPS
    );
    println!("ratio = fastest peer / waitq (>1.0: waitq is faster)\n");
    println!(
        "{:<32} {:>10} {:>14} {:>15} {:>7}",
        "workload/runtime (ns/op)", PRIMITIVES[0], PRIMITIVES[1], PRIMITIVES[2], "ratio"
    );
    let workloads = [
        Workload::PingPong,
        Workload::Herd,
        Workload::Mixed {
            shared_queue: false,
        },
    ];
    let filter = std::env::var("WAKE_BENCH_FILTER").unwrap_or_default();
    let mut lines = Vec::new();
    for (rt_name, rt) in runtimes() {
        for workload in workloads {
            let label = format!("{}/{}", workload.name(), rt_name);
            if !select(&label, &filter) {
                continue;
            }
            let [waitq, notify, event] = bench(&rt, &[0, 1, 2], workload, sizes)[..] else {
                unreachable!("three primitives");
            };
            let ratio = notify.min(event).as_secs_f64() / waitq.as_secs_f64();
            let ns = |d: Duration| d.as_nanos();
            println!(
                "{label:<32} {:>10} {:>14} {:>15} {ratio:>6.2}x",
                ns(waitq),
                ns(notify),
                ns(event)
            );
            lines.push(format!(
                "{label}: {} {} ns, {} {} ns, {} {} ns -> {ratio:.2}x fastest peer",
                PRIMITIVES[0],
                ns(waitq),
                PRIMITIVES[1],
                ns(notify),
                PRIMITIVES[2],
                ns(event)
            ));
        }
        let shared = Workload::Mixed { shared_queue: true };
        let label = format!("{}/{}", shared.name(), rt_name);
        if !select(&label, &filter) {
            continue;
        }
        let [one_queue] = bench(&rt, &[0], shared, sizes)[..] else {
            unreachable!("one primitive");
        };
        println!(
            "{label:<32} {:>10} {:>14} {:>15}",
            one_queue.as_nanos(),
            "-",
            "-"
        );
    }
    println!();
    for line in lines {
        println!("{line}");
    }
    println!("\ntotal {:.1} s", started.elapsed().as_secs_f64());
}
