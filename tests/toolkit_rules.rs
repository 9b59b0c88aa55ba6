//! The waitq contract rules (`waitq/src/lib.rs`, "The contract") and the
//! runtime's join/abort races, each as one async scenario written once and
//! run twice: on a real 2-worker runtime many times, and under the test
//! toolkit with random and PCT schedules. Every scenario asserts its rule's
//! outcome itself, so a violation panics (or hangs, which both modes
//! report). The `broken_*` tests run deliberately wrong variants of three
//! scenarios under the toolkit and require a failure: the checks have teeth.

use std::future::{poll_fn, Future};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use waitrt::sync::{PollWaiter, TaskState, WaitEntry, WaitQueue};
use waitrt::task::{signals, yield_now, JoinHandle, JoinSet};
use waitrt::test_util::{name_queue, Check, Policy};
use waitrt::time::{clock, now, sleep};

// ===== the runner =====

const SEEDS: u64 = if cfg!(debug_assertions) { 500 } else { 3_000 };
const ITERS: usize = if cfg!(debug_assertions) { 200 } else { 2_000 };
/// A short timeout or sleep (real threads sleep it `ITERS` times).
const PAUSE: Duration = Duration::from_micros(100);
const HOUR: Duration = Duration::from_secs(3600);

/// Spawns `body` in a task that owns clones of the listed variables.
macro_rules! spawn_with {
    ([$($v:ident),*] $body:expr) => {{
        $(let $v = $v.clone();)*
        waitrt::spawn(async move { $body })
    }};
}

/// Runs `scenario` `ITERS` times on a 2-worker runtime, then under the
/// toolkit with random and PCT schedules.
fn both<F, Fut>(name: &str, scenario: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    both_with(name, |check| check, scenario);
}

/// [`both`] with the toolkit's `Check` adjusted by `config`.
fn both_with<F, Fut>(name: &str, config: fn(Check) -> Check, scenario: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    real_threads(name, ITERS, scenario.clone());
    for policy in [Policy::Random, Policy::Pct { depth: 3 }] {
        let check = config(Check::new().seeds(SEEDS).policy(policy).quiet(true));
        let stats = check.run(scenario.clone());
        println!("{name}: {stats}");
        assert!(stats.distinct_schedules() > 1, "{name}: one schedule only");
    }
}

/// Runs `scenario` `iters` times on a 2-worker runtime.
fn real_threads<F, Fut>(name: &str, iters: usize, scenario: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let rt = waitrt::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for i in 0..iters {
        let run = scenario();
        rt.block_on(async move {
            // A hang detector, not a timing assertion.
            waitrt::time::timeout(Duration::from_secs(30), waitrt::spawn(run))
                .await
                .unwrap_or_else(|_| panic!("{name}: real-thread run {i} hung"))
                .unwrap_or_else(|e| panic!("{name}: real-thread run {i}: {e:?}"));
        });
    }
}

/// Requires the toolkit to find a failure in a broken variant.
fn must_fail<F, Fut>(what: &str, scenario: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let failure = Check::new()
        .seeds(SEEDS)
        .quiet(true)
        .try_run(scenario)
        .expect_err(what);
    println!("{what}: found ({:?})\n{failure}", failure.kind());
}

// ===== helpers =====

/// Waits (spinning on yields) until exactly `n` waiters are linked on `queue`.
async fn linked(queue: &WaitQueue, n: usize) {
    loop {
        let len = queue.len();
        assert!(len <= n, "{len} waiters linked, expected at most {n}");
        if len == n {
            return;
        }
        yield_now().await;
    }
}

fn take(items: &AtomicUsize) -> bool {
    items
        .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

fn new_queue(name: &str) -> Arc<WaitQueue> {
    let queue = Arc::new(WaitQueue::new());
    name_queue(&queue, name);
    queue
}

// ===== rule 2: register, then re-check: no lost wake-up =====

/// Three waits of different flavours on one queue, three setters that each
/// change the state, then wake: every waiter returns with its condition.
async fn no_lost_wakeup() {
    let queue = new_queue("flags_wq");
    let flags: Arc<[AtomicUsize; 3]> = Arc::default();
    let plain = spawn_with!([queue, flags] queue.wait_event(|| flags[0].load(SeqCst) == 1).await);
    let value = spawn_with!([queue, flags] {
        queue.wait_event_value(|| Some(flags[1].load(SeqCst)).filter(|&v| v != 0)).await
    });
    let intr = spawn_with!([queue, flags] {
        queue.wait_event_interruptible(&signals(), || flags[2].load(SeqCst) == 1).await
    });
    let setters: Vec<_> = (0..3)
        .map(|i| {
            spawn_with!([queue, flags] {
                flags[i].store(if i == 1 { 7 } else { 1 }, SeqCst);
                queue.wake_up();
            })
        })
        .collect();
    for s in setters {
        s.await.unwrap();
    }
    plain.await.unwrap().unwrap();
    assert_eq!(value.await.unwrap().unwrap(), 7);
    intr.await.unwrap().unwrap();
}

#[test]
fn rule2_register_then_recheck_loses_no_wakeup() {
    both("rule2_no_lost_wakeup", no_lost_wakeup);
}

// ===== rule 4: who a wake wakes =====

/// Two non-exclusive waiters and four exclusive ones registered in order.
/// `wake_up` wakes every non-exclusive waiter plus the oldest exclusive one
/// (and counts them all); an exclusive waiter woken with its condition false
/// goes back to the tail; `wake_up_nr(2)` wakes the two oldest exclusive
/// ones; `wake_up_all` everyone. A wrong pick leaves a released waiter
/// asleep (a hang) or changes a count.
async fn who_a_wake_wakes() {
    let queue = new_queue("mixed_wq");
    let done = Arc::new(AtomicBool::new(false));
    let released: Arc<[AtomicBool; 4]> = Arc::default();
    let shared: Vec<_> = (0..2)
        .map(|_| spawn_with!([queue, done] queue.wait_event(|| done.load(SeqCst)).await.unwrap()))
        .collect();
    linked(&queue, 2).await;
    let mut excl = Vec::new();
    for i in 0..4 {
        excl.push(Some(spawn_with!([queue, released] {
            queue.wait_event_exclusive(|| released[i].load(SeqCst)).await.unwrap()
        })));
        linked(&queue, 3 + i).await; // FIFO order: E0, E1, E2, E3
    }
    let mut join = |i: usize| excl[i].take().unwrap();
    // E0 is picked with its condition false: it re-queues behind E3.
    assert_eq!(queue.wake_up(), 3, "both shared waiters and one exclusive");
    linked(&queue, 6).await;
    released[1].store(true, SeqCst);
    assert_eq!(queue.wake_up(), 3);
    join(1).await.unwrap(); // E1 is the oldest now; E0 is at the tail
    linked(&queue, 5).await;
    // Released only now: a task polled again (legally) while linked must
    // not leave on its own before the wake.
    released[2].store(true, SeqCst);
    released[3].store(true, SeqCst);
    assert_eq!(queue.wake_up_nr(2), 4, "both shared waiters and E2, E3");
    join(2).await.unwrap();
    join(3).await.unwrap();
    linked(&queue, 3).await;
    assert_eq!(queue.wake_up_all(), 3, "everyone, conditions all false");
    // Counted only while every condition is false: a waiter just woken may
    // still be in its post-link re-check and leave on its own once true.
    linked(&queue, 3).await;
    released[0].store(true, SeqCst);
    done.store(true, SeqCst);
    queue.wake_up_all();
    join(0).await.unwrap();
    for s in shared {
        s.await.unwrap();
    }
    assert!(queue.is_empty());
}

#[test]
fn rule4_wake_counts_fifo_exclusive_and_wake_up_nr() {
    // Spurious wake-ups off: a spurious poll lets a released waiter finish
    // before the wake meant for it, which changes later counts (legally).
    let config = |check: Check| check.spurious_wakeups(false);
    both_with("rule4_who_a_wake_wakes", config, who_a_wake_wakes);
}

/// WRONG: a "broadcast" made of single wakes with the lock dropped between
/// them (a yield), so it also wakes waiters that registered meanwhile.
async fn broadcast_by_single_wakes(queue: &WaitQueue) -> usize {
    let mut woken = 0;
    for _ in 0..8 {
        match queue.wake_up() {
            0 => break,
            n => woken += n,
        }
        yield_now().await;
    }
    woken
}

/// Three exclusive waiters that, once woken, register again at once: the
/// broadcast wakes exactly the three linked before it, none of the
/// re-registrations (which may happen while it runs).
async fn broadcast_is_atomic(broken: bool) {
    let queue = new_queue("broadcast_wq");
    let generation = Arc::new(AtomicUsize::new(0));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            spawn_with!([queue, generation] for round in 1..=2 {
                let cond = || generation.load(SeqCst) >= round;
                queue.wait_event_exclusive(cond).await.unwrap();
            })
        })
        .collect();
    linked(&queue, 3).await;
    generation.store(1, SeqCst);
    let woken = if broken {
        broadcast_by_single_wakes(&queue).await
    } else {
        queue.wake_up_all()
    };
    // At most the three linked before it: fewer if one, polled spuriously,
    // saw the new generation and left before the broadcast reached it.
    assert!(woken <= 3, "woke {woken}: some registered during it");
    linked(&queue, 3).await;
    generation.store(2, SeqCst);
    assert!(queue.wake_up_all() <= 3);
    for w in waiters {
        w.await.unwrap();
    }
}

#[test]
fn rule4_broadcast_is_atomic() {
    both("rule4_broadcast_atomic", || broadcast_is_atomic(false));
}

#[test]
fn broken_broadcast_is_caught() {
    must_fail("non-atomic broadcast", || broadcast_is_atomic(true));
}

// ===== rule 5: hand-off =====

/// How the exclusive waiter that a wake picks ends without success.
#[derive(Clone, Copy, Debug)]
enum Ending {
    Dropped,
    TimedOut,
    Interrupted,
}
use Ending::*;

/// WRONG: a hand-written exclusive wait whose entry, dropped after a wake
/// picked it, does not pass that wake on.
async fn swallowing_wait(queue: &WaitQueue) {
    let mut entry = WaitEntry::new(queue);
    loop {
        queue.prepare_to_wait_exclusive(&mut entry, TaskState::Uninterruptible);
        entry.wait().await.unwrap();
    }
}

/// Waits until `n` waiters are linked, counting `doomed` once finished:
/// on real threads it may time out before the next waiter is linked.
async fn settled(queue: &WaitQueue, doomed: &JoinHandle<()>, n: usize) {
    while queue.len() + usize::from(doomed.is_finished()) != n {
        yield_now().await;
    }
}

/// The oldest exclusive waiter is doomed (aborted, past its deadline or
/// signalled) *before* the one wake for the one item; whether the wake
/// reaches it before it ends is the race. Either way the second waiter
/// must get the item: directly, or by the doomed waiter's hand-off.
async fn hand_off(ending: Ending, broken: bool) {
    let queue = new_queue("items_wq");
    let items = Arc::new(AtomicUsize::new(0));
    let doomed = spawn_with!([queue] match ending {
        Dropped if broken => swallowing_wait(&queue).await,
        Dropped => queue.wait_event_exclusive(|| false).await.unwrap(),
        TimedOut => {
            let res = queue.wait_event_exclusive_timeout(clock(), PAUSE, || false);
            assert!(!res.await.unwrap_err().is_closed());
        }
        Interrupted => {
            let signals = signals();
            let res = queue.wait_event_interruptible_exclusive(&signals, || false);
            assert!(!res.await.unwrap_err().is_closed());
        }
    });
    settled(&queue, &doomed, 1).await;
    let taker = spawn_with!([queue, items] queue.wait_event_exclusive(|| take(&items)).await);
    settled(&queue, &doomed, 2).await;
    match ending {
        Dropped => doomed.abort(),
        TimedOut => sleep(PAUSE).await, // past its deadline
        Interrupted => doomed.interrupt(),
    }
    items.fetch_add(1, SeqCst);
    queue.wake_up(); // picks `doomed` unless it has already gone
    taker.await.unwrap().unwrap();
    let res = doomed.await;
    assert_eq!(res.is_err(), matches!(ending, Dropped), "{res:?}");
    assert_eq!(items.load(SeqCst), 0);
    assert!(queue.is_empty());
}

#[test]
fn rule5_dropped_exclusive_waiter_hands_off() {
    both("rule5_dropped", || hand_off(Dropped, false));
}

#[test]
fn rule5_timed_out_exclusive_waiter_hands_off() {
    both("rule5_timed_out", || hand_off(TimedOut, false));
}

#[test]
fn rule5_interrupted_exclusive_waiter_hands_off() {
    both("rule5_interrupted", || hand_off(Interrupted, false));
}

#[test]
fn broken_hand_off_is_caught() {
    must_fail("dropped without hand-off", || hand_off(Dropped, true));
}

// ===== rule 6 (and `_timeout`'s conventions): a true condition wins =====

/// The state changes, then the waiters are signalled, then woken: an
/// interruptible and a killable waiter both return `Ok`. With `race`, the
/// waiters may still be in their first poll when that happens.
async fn true_condition_beats_signal(race: bool) {
    let queue = new_queue("signal_wq");
    let flag = Arc::new(AtomicBool::new(false));
    let intr = spawn_with!([queue, flag] {
        queue.wait_event_interruptible(&signals(), || flag.load(SeqCst)).await
    });
    let kill = spawn_with!([queue, flag] {
        let cond = || flag.load(SeqCst);
        queue.wait_event_killable_timeout(&signals(), clock(), HOUR, cond).await
    });
    if !race {
        linked(&queue, 2).await;
    }
    flag.store(true, SeqCst);
    intr.interrupt();
    kill.kill();
    queue.wake_up();
    intr.await.unwrap().expect("the condition beats the signal");
    let killed = kill.await.unwrap();
    killed.expect("the condition beats the fatal signal");
}

#[test]
fn rule6_true_condition_beats_a_pending_signal() {
    both("rule6_beats_signal", || true_condition_beats_signal(false));
}

/// A waitq bug found here on real threads (about 1 run in 600), now fixed:
/// a poll tested the condition, *then* the signal (or deadline), and failed
/// without re-testing, so a state change plus signal landing in between
/// ended the wait `Interrupted` although the condition held (the kernel
/// tests the condition after the signal). Every failure path now re-tests
/// the condition after its end source spoke.
#[test]
fn rule6_true_condition_beats_a_signal_raised_during_the_first_poll() {
    real_threads("rule6_signal_race", 20_000, || {
        true_condition_beats_signal(true)
    });
}

/// `wait_event_timeout` returns the time left: at least the time the setter
/// made it wait is used. A condition that turns true exactly at the
/// deadline beats it (`Ok`, nothing left: the kernel's `1`); a false one
/// times out and unlinks.
async fn timeout_conventions() {
    let queue = new_queue("timeout_wq");
    let flag = Arc::new(AtomicBool::new(false));
    let waiter = spawn_with!([queue, flag] {
        let start = now();
        let left = queue.wait_event_timeout(clock(), HOUR, || flag.load(SeqCst)).await;
        let used = HOUR - left.expect("woken in time");
        assert!(used >= PAUSE && used <= now() - start, "{used:?}");
    });
    linked(&queue, 1).await;
    sleep(PAUSE).await;
    flag.store(true, SeqCst);
    queue.wake_up();
    waiter.await.unwrap();

    // Tested on the first poll long before its deadline (1 ms; see the
    // rule-6 first-poll race test for what a longer stall would expose).
    let (t0, ms) = (now(), Duration::from_millis(1));
    let at_deadline = queue.wait_event_timeout(clock(), ms, move || now() >= t0 + ms);
    let t1 = now();
    let left = at_deadline
        .await
        .expect("a true condition beats the deadline");
    assert!(left <= t1 - t0, "{left:?}"); // ZERO on the paused clock

    let never = queue.wait_event_exclusive_timeout(clock(), PAUSE, || false);
    assert!(!never.await.unwrap_err().is_closed());
    assert!(queue.is_empty());
}

#[test]
fn rule6_timeout_returns_time_left_and_loses_to_a_true_condition() {
    both("rule6_timeout_conventions", timeout_conventions);
}

// ===== rule 7: close =====

/// `close` ends current and future waits whose condition is false with a
/// closed error (each wait flavour its own type), while a true condition
/// still wins; wakes after it wake nobody.
async fn close_ends_waits() {
    let queue = new_queue("closing_wq");
    let ready = Arc::new(AtomicBool::new(false));
    let lucky = spawn_with!([queue, ready] queue.wait_event(|| ready.load(SeqCst)).await);
    let plain = spawn_with!([queue] queue.wait_event_exclusive(|| false).await);
    let intr = spawn_with!([queue] {
        let res = queue.wait_event_interruptible(&signals(), || false).await;
        res.unwrap_err().is_closed()
    });
    let timed = spawn_with!([queue] {
        let res = queue.wait_event_timeout(clock(), HOUR, || false).await;
        res.unwrap_err().is_closed()
    });
    ready.store(true, SeqCst);
    queue.close(); // no wake_up: close wakes everyone
    assert!(queue.is_closed());
    lucky.await.unwrap().expect("a true condition beats close");
    plain.await.unwrap().unwrap_err();
    assert!(intr.await.unwrap(), "interrupted by close, not by a signal");
    assert!(timed.await.unwrap(), "ended by close, not by the deadline");
    // Future waits.
    queue.wait_event(|| false).await.unwrap_err();
    queue.wait_event(|| true).await.unwrap();
    assert_eq!(queue.wake_up_all(), 0);
    assert!(queue.is_empty());
}

#[test]
fn rule7_close_ends_current_and_future_waits() {
    both("rule7_close", close_ends_waits);
}

// ===== wait_event_lock: registered before the lock is released =====

/// WRONG: checks under the lock, releases it, *then* registers (and sleeps
/// without re-checking).
async fn unlock_then_register(queue: &WaitQueue, state: &Mutex<u32>) {
    let mut entry = WaitEntry::new(queue);
    while *state.lock().unwrap() != 1 {
        queue.prepare_to_wait(&mut entry, TaskState::Uninterruptible);
        entry.wait().await.unwrap();
    }
    queue.finish_wait(&mut entry);
}

/// The setter changes the state under the lock and, as the kernel allows
/// a waker holding the waiter's lock, wakes only if `waitqueue_active()`.
/// That is safe only because a waiter that found the condition false under
/// the lock is linked before it releases the lock.
async fn lock_wait(broken: bool) {
    let queue = new_queue("lock_wq");
    let state = Arc::new(Mutex::new(0u32));
    let waiter = spawn_with!([queue, state] if broken {
        unlock_then_register(&queue, &state).await;
    } else {
        let guard = queue.wait_event_lock(&state, |n| *n == 1).await.unwrap();
        assert_eq!(*guard, 1);
    });
    let setter = waitrt::spawn(async move {
        let active = {
            let mut n = state.lock().unwrap();
            *n = 1;
            queue.waitqueue_active()
        };
        if active {
            queue.wake_up();
        }
    });
    setter.await.unwrap();
    waiter.await.unwrap();
}

#[test]
fn wait_event_lock_registers_before_releasing_the_lock() {
    both("lock_registers_first", || lock_wait(false));
}

#[test]
fn broken_lock_wait_is_caught() {
    must_fail("register after unlock", || lock_wait(true));
}

// ===== PollWaiter reuse =====

/// Ping-pong over two queues, each player with one `PollWaiter` reused for
/// every round (one exclusive, one not): each wait ends with its turn.
async fn poll_waiter_ping_pong() {
    const ROUNDS: usize = 4;
    let turn = Arc::new(AtomicUsize::new(0));
    let queues = [new_queue("ping_wq"), new_queue("pong_wq")];
    let players: Vec<_> = (0..2)
        .map(|me| {
            let (mine, theirs) = (queues[me].clone(), queues[1 - me].clone());
            spawn_with!([turn] {
                let mut waiter = match me {
                    0 => PollWaiter::new_exclusive(mine),
                    _ => PollWaiter::new(mine),
                };
                for round in 0..ROUNDS {
                    let mine = 2 * round + me;
                    poll_fn(|cx| waiter.poll_wait_event(cx, || turn.load(SeqCst) == mine))
                        .await
                        .unwrap();
                    assert!(!waiter.is_waiting());
                    assert_eq!(turn.swap(mine + 1, SeqCst), mine);
                    theirs.wake_up();
                }
            })
        })
        .collect();
    for p in players {
        p.await.unwrap();
    }
    assert_eq!(turn.load(SeqCst), 2 * ROUNDS);
    assert!(queues.iter().all(|q| q.is_empty()));
}

#[test]
fn poll_waiter_is_reusable() {
    both("poll_waiter_reuse", poll_waiter_ping_pong);
}

// ===== the runtime: JoinHandle, abort, JoinSet races (rt_stress (c)) =====

struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// A task that yields `yields` times, then counts itself finished.
fn worker(
    yields: usize,
    dropped: &Arc<AtomicUsize>,
    ran: &Arc<AtomicUsize>,
) -> impl Future<Output = usize> + Send + 'static {
    let (guard, ran) = (DropCount(dropped.clone()), ran.clone());
    async move {
        let _guard = guard;
        for _ in 0..yields {
            yield_now().await;
        }
        ran.fetch_add(1, SeqCst);
        yields
    }
}

/// Spawn / abort / complete races: aborted at once, or by another task
/// after 0 or 1 yields, and a `JoinSet` one of whose tasks is aborted from
/// another task. The join result matches what happened, every future is
/// dropped exactly once by the time its join returns, and a cancelled
/// task never ran to its end.
async fn spawn_abort_complete() {
    let (dropped, ran) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut oks = 0;
    for i in 0..3 {
        let task = waitrt::spawn(worker(i % 3, &dropped, &ran));
        let abort = task.abort_handle();
        let aborter = (i < 2).then(|| {
            spawn_with!([abort] {
                for _ in 0..i {
                    yield_now().await;
                }
                abort.abort();
            })
        });
        if i == 2 {
            task.abort();
        }
        let before = ran.load(SeqCst);
        match task.await {
            Ok(out) => oks += usize::from(out == i % 3), // else `ran != oks` below
            Err(err) => assert!(err.is_cancelled() && !err.is_shutdown(), "{err:?}"),
        }
        assert_eq!(dropped.load(SeqCst), i + 1, "iteration {i}");
        assert!(ran.load(SeqCst) <= before + 1);
        if let Some(a) = aborter {
            a.await.unwrap();
        }
    }
    let mut set = JoinSet::new();
    let victim = set.spawn(worker(1, &dropped, &ran));
    for yields in [0, 2] {
        set.spawn(worker(yields, &dropped, &ran));
    }
    waitrt::spawn(async move { victim.abort() }).await.unwrap();
    let mut joined = 0;
    while let Some(res) = set.join_next().await {
        joined += 1;
        match res {
            Ok(_) => oks += 1,
            Err(err) => assert!(err.is_cancelled(), "{err:?}"),
        }
    }
    assert_eq!(joined, 3);
    assert_eq!(dropped.load(SeqCst), 6);
    assert_eq!(ran.load(SeqCst), oks, "a cancelled task ran to its end");
}

#[test]
fn runtime_join_abort_and_join_set_races() {
    both("rt_spawn_abort_complete", spawn_abort_complete);
}
