//! `ping_pong_xt`: `ping_pong` across threads. Each side runs as the
//! spawned root task of its own current-thread runtime on its own thread,
//! so every wake crosses threads: the waker of a task that sleeps in
//! another runtime, and that runtime's thread parked in its driver. Ours
//! uses `WaitQueue`, tokio `Notify` (smol has no current-thread runtime to
//! put on each thread; it is not in this row).
//!
//! The runtime-free reference, `threads`: two plain threads bouncing the
//! same counter with `thread::park` / `unpark` (a futex each way), the
//! least a cross-thread wake costs without a runtime.
//!
//! Both runtimes are built and both threads ready before the clock starts
//! (a barrier); it stops when the last side finishes, before the runtimes
//! shut down.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use super::{ping_pong_side, Contender, Ours, Row, Rt, Tokio};

/// Round trips at `RT_BENCH_SCALE=1`: a cross-thread round trip costs
/// about 10x a same-thread one.
const ROUND_TRIPS: f64 = 100_000.0;

fn round_trips(scale: f64) -> u64 {
    ((ROUND_TRIPS * scale) as u64).max(1)
}

/// Runs `side(0, ready)` and `side(1, ready)` on two threads; each side
/// sets up, waits on `ready` (so does the clock), runs and returns when
/// it ended. Returns ns per round trip, from the start to the last end.
fn on_two_threads(
    round_trips: u64,
    side: impl Fn(usize, &Barrier) -> Instant + Send + Sync + 'static,
) -> f64 {
    let ready = Arc::new(Barrier::new(3));
    let side = Arc::new(side);
    let threads: Vec<_> = (0..2)
        .map(|me| {
            let (ready, side) = (ready.clone(), side.clone());
            std::thread::spawn(move || side(me, &ready))
        })
        .collect();
    ready.wait();
    let start = Instant::now();
    let end = threads
        .into_iter()
        .map(|t| t.join().expect("a ping_pong_xt side panicked"))
        .max()
        .expect("two sides");
    (end - start).as_nanos() as f64 / round_trips as f64
}

/// One run, each side the root task of a current-thread `R` of its own.
fn run<R: Rt>(scale: f64) -> f64 {
    let round_trips = round_trips(scale);
    let ball = Arc::new(AtomicU64::new(0));
    let queues = Arc::new([R::Queue::default(), R::Queue::default()]);
    let per_trip = on_two_threads(round_trips, {
        let (ball, queues) = (ball.clone(), queues.clone());
        move |me, ready| {
            let rt = R::build(1);
            let side = ping_pong_side(me, ball.clone(), queues.clone(), round_trips);
            ready.wait();
            rt.block_on(async move { R::spawn(side).await });
            // Taken before `rt` drops: its shutdown is not measured.
            Instant::now()
        }
    });
    assert_eq!(
        ball.load(SeqCst),
        2 * round_trips,
        "ping_pong_xt lost a round trip"
    );
    per_trip
}

/// The reference: two plain threads, `park` to sleep, `unpark` to wake.
fn threads(scale: f64) -> f64 {
    let round_trips = round_trips(scale);
    let ball = Arc::new(AtomicU64::new(0));
    // Each side's thread handle, for the other side to unpark.
    let handles: Arc<[std::sync::OnceLock<std::thread::Thread>; 2]> = Arc::default();
    let per_trip = on_two_threads(round_trips, {
        let ball = ball.clone();
        move |me, ready| {
            handles[me]
                .set(std::thread::current())
                .expect("one thread per side");
            ready.wait();
            let other = handles[1 - me].get().expect("both sides registered");
            let serve = |value: u64| {
                ball.store(value, SeqCst);
                other.unpark();
            };
            for i in 0..round_trips {
                if me == 0 {
                    serve(2 * i + 1);
                }
                let want = 2 * i + 2 - me as u64;
                // A spurious or early unpark only loops.
                while ball.load(SeqCst) != want {
                    std::thread::park();
                }
                if me == 1 {
                    serve(2 * i + 2);
                }
            }
            Instant::now()
        }
    });
    assert_eq!(
        ball.load(SeqCst),
        2 * round_trips,
        "ping_pong_xt lost a round trip"
    );
    per_trip
}

/// The row: ours and tokio, then the runtime-free reference.
pub(super) fn row() -> Row {
    Row::new(
        "ping_pong_xt/2ct",
        vec![
            Contender::new(Ours::NAME, run::<Ours>),
            Contender::new(Tokio::NAME, run::<Tokio>),
            Contender::reference("threads", threads),
        ],
    )
    .target(Tokio::NAME, 1.0)
}
