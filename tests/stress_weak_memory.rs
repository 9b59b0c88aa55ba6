//! Bug class 4 of issue 23: weak memory ordering, on real threads. The
//! deterministic toolkit finds these shapes by modelling store buffers on
//! `waitrt::sync::atomic` (`tests/toolkit_classes.rs`, class 4); this
//! file runs them on plain `std` atomics and two threads, for a bounded
//! number of rounds, as a user would for code the model does not see. See
//! the toolkit guide, "Weak memory".
//!
//! The bug: a waker that publishes its condition with a `Release` store and
//! then peeks at the queue with the `Relaxed` `waitqueue_active()`. Nothing
//! orders the store before the load (store→load is the one reordering x86
//! allows too), so the waker can read "nobody waits" while the waiter,
//! which linked and re-checked in between, still reads the old condition:
//! both skip, and the waiter sleeps through. The fix is the kernel's
//! `smp_mb()` before `waitqueue_active()` (here `fence(SeqCst)`), or
//! `wq_has_sleeper()`, which takes the queue lock. The same shape in a
//! hand-rolled parker ("sleeping" flag vs condition) needs a fence on both
//! sides.
//!
//! By default the fixed forms run (and must lose nothing); the unfenced
//! ones run with `RUNTIME_STRESS_ROUNDS=<n>` (see the last test for why).

use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use waitrt::sync::WaitQueue;

/// How the waker orders its store before its peek at the queue.
#[derive(Clone, Copy, Debug)]
enum Waker {
    /// WRONG: `store(Release)`, then `waitqueue_active()` (Relaxed).
    NoFence,
    /// `store(Release)`, `fence(SeqCst)`, then `waitqueue_active()`.
    Fence,
    /// `store(Release)`, then `wq_has_sleeper()` (the queue lock orders it).
    HasSleeper,
}

/// A hand-rolled parker: the waiter announces "sleeping" and reads the
/// condition; the waker stores the condition and reads "sleeping". With no
/// fence on either side both may read the old value (store buffering),
/// which x86 shows readily: the waiter parks and nobody unparks it.
#[derive(Clone, Copy, Debug)]
enum Parker {
    /// WRONG: `Release` store, then `Acquire`/`Relaxed` load, both sides.
    NoFence,
    /// `fence(SeqCst)` between the store and the load on both sides.
    Fence,
}

/// What a stress run saw.
#[derive(Debug)]
struct Outcome {
    rounds: u64,
    /// The first round whose waiter slept through its wake-up (woken only
    /// by its watchdog deadline with the condition true), if any.
    lost_at: Option<u64>,
}

/// A wait that is not woken by then lost its wake-up (a watchdog: the
/// waker's store always lands within microseconds of the round's start).
const WATCHDOG: Duration = Duration::from_secs(2);

/// An atomic alone on its cache line.
#[derive(Default)]
#[repr(align(128))]
struct Line(AtomicU64);

/// The state of a stress run, each word on its own line. Each round the
/// waiter starts it (`go`), waits a varying few nanoseconds (so that over
/// many rounds its store and load overlap the waker's), announces itself
/// and reads `cond`; the waker, spinning on `go`, stores `cond` and peeks
/// at once. Store buffering needs both stores in flight while both loads
/// run: the sweep is what lines that up.
#[derive(Default)]
struct Shared {
    go: Line,
    cond: Line,
    sleeping: Line,
    stop: AtomicBool,
}

/// Runs rounds on two threads until a lost wake-up, `max_rounds`, or
/// `max_time` (a bound on the loop, not a timing assertion). `peek` is the
/// waker's "is anybody asleep?" after its store; `wait` is the waiter's
/// sleep until `cond >= round`, returning `false` when only the watchdog
/// ended it.
fn stress(
    max_rounds: u64,
    max_time: Duration,
    peek: impl Fn(&Shared, u64) -> bool + Send + 'static,
    wake: impl Fn() + Send + 'static,
    wait: impl Fn(&Shared, u64) -> bool,
) -> Outcome {
    let shared = Arc::new(Shared::default());
    let start = Instant::now();
    let waker_thread = {
        let shared = shared.clone();
        thread::spawn(move || {
            for round in 1..=max_rounds {
                while shared.go.0.load(Ordering::Acquire) < round {
                    if shared.stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::hint::spin_loop();
                }
                shared.cond.0.store(round, Ordering::Release);
                if peek(&shared, round) {
                    wake();
                }
            }
        })
    };
    let mut outcome = Outcome {
        rounds: 0,
        lost_at: None,
    };
    let mut rng = 0x2545_f491_u32;
    for round in 1..=max_rounds {
        if start.elapsed() > max_time {
            break;
        }
        shared.go.0.store(round, Ordering::Release);
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        for i in 0..(rng % 256) {
            std::hint::black_box(i);
        }
        outcome.rounds = round;
        if !wait(&shared, round) {
            outcome.lost_at = Some(round);
            break;
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
    waker_thread.join().unwrap();
    outcome
}

/// The waitq form: the waiter sleeps in `blocking_wait_event_timeout`.
fn stress_waitq(waker: Waker, max_rounds: u64, max_time: Duration) -> Outcome {
    let queue = Arc::new(WaitQueue::new());
    let (q1, q2) = (queue.clone(), queue.clone());
    let peek = move |_: &Shared, _: u64| match waker {
        Waker::NoFence => q1.waitqueue_active(),
        Waker::Fence => {
            fence(Ordering::SeqCst);
            q1.waitqueue_active()
        }
        Waker::HasSleeper => q1.wq_has_sleeper(),
    };
    let wake = move || {
        q2.wake_up();
    };
    let wait = |shared: &Shared, round: u64| {
        let cond = || shared.cond.0.load(Ordering::Acquire) >= round;
        let left = queue
            .blocking_wait_event_timeout(WATCHDOG, cond)
            .expect("the waker stores every round's condition");
        !left.is_zero()
    };
    stress(max_rounds, max_time, peek, wake, wait)
}

/// The parker form (see [`Parker`]).
fn stress_parker(parker: Parker, max_rounds: u64, max_time: Duration) -> Outcome {
    let waiter = thread::current();
    let peek = move |shared: &Shared, round: u64| {
        if let Parker::Fence = parker {
            fence(Ordering::SeqCst);
        }
        shared.sleeping.0.load(Ordering::Relaxed) >= round
    };
    let wake = move || waiter.unpark();
    let wait = |shared: &Shared, round: u64| {
        shared.sleeping.0.store(round, Ordering::Release);
        if let Parker::Fence = parker {
            fence(Ordering::SeqCst);
        }
        let deadline = Instant::now() + WATCHDOG;
        while shared.cond.0.load(Ordering::Acquire) < round {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            thread::park_timeout(deadline - now);
        }
        true
    };
    stress(max_rounds, max_time, peek, wake, wait)
}

fn cores() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// Prints a skip where two threads cannot run at once (never under CI).
fn two_cores_or_skip(test: &str) -> bool {
    if cores() >= 2 {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: needs 2 CPUs"
    );
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{test}: skipped: needs 2 CPUs");
    false
}

#[test]
fn a_parker_with_fences_loses_nothing_under_real_threads() {
    if !two_cores_or_skip("fenced parker stress") {
        return;
    }
    let rounds = if cfg!(debug_assertions) {
        20_000
    } else {
        100_000
    };
    let outcome = stress_parker(Parker::Fence, rounds, Duration::from_secs(10));
    println!("parker, fences: {outcome:?}");
    assert_eq!(outcome.lost_at, None, "{outcome:?}");
}

/// The unfenced forms, opt-in: `RUNTIME_STRESS_ROUNDS=<n>` runs each for
/// up to `n` rounds (or ten minutes) and fails at the first lost wake-up,
/// which is the expected result given enough rounds: the test then shows
/// the bug found, with its round. Not on by default because the window is
/// a few nanoseconds wide: on a shared 2-vCPU machine the waitq form lost
/// a wake-up after 186,000 and 1,030,000 rounds in two runs and none in
/// 2,000,000 in four others (the waiter links under the queue lock, whose
/// release is a full barrier on x86, so only the waker's side can
/// reorder), which no bounded default run can promise.
#[test]
fn unfenced_forms_under_opt_in_stress() {
    let Some(rounds) = std::env::var("RUNTIME_STRESS_ROUNDS")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
    else {
        return;
    };
    if !two_cores_or_skip("unfenced stress") {
        return;
    }
    let limit = Duration::from_secs(600);
    let waitq = stress_waitq(Waker::NoFence, rounds, limit);
    println!("waitq, no fence: {waitq:?}");
    let parker = stress_parker(Parker::NoFence, rounds, limit);
    println!("parker, no fence: {parker:?}");
    assert!(
        waitq.lost_at.is_none() && parker.lost_at.is_none(),
        "lost a wake-up (the bug, found): waitq {waitq:?}, parker {parker:?}"
    );
}

#[test]
fn a_fence_or_wq_has_sleeper_loses_nothing_under_real_threads() {
    if !two_cores_or_skip("fenced waitq stress") {
        return;
    }
    let rounds = if cfg!(debug_assertions) {
        20_000
    } else {
        100_000
    };
    for waker in [Waker::Fence, Waker::HasSleeper] {
        let outcome = stress_waitq(waker, rounds, Duration::from_secs(10));
        println!("{waker:?}: {outcome:?}");
        assert_eq!(outcome.lost_at, None, "{waker:?}: {outcome:?}");
    }
}
