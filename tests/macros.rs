//! `#[waitrt::test]` and `#[waitrt::main]`: each option does what it
//! says, seen from inside the body (worker count, thread names, the clock),
//! `check` runs the body under the test toolkit (a lost wake-up fails with
//! the toolkit's report, a correct body passes every seed), and both
//! return types work. The compile errors for bad arguments are checked by
//! `macros/tests/ui.rs`.
//!
//! Every wait is bounded: a [`Deadline`] ends the process if a runtime test
//! runs past it (a clock that is not paused would sleep for an hour), and
//! the toolkit's own poll and virtual-time limits end a `check` run.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::{self, ThreadId};
use std::time::Duration;

use waitrt::sync::{TaskState, WaitEntry, WaitQueue};
use waitrt::time::{now, sleep};

const HOUR: Duration = Duration::from_secs(3600);

/// Ends the process if dropped later than `limit` after it was made.
struct Deadline(Option<mpsc::Sender<()>>);

impl Deadline {
    fn new(what: &'static str, limit: Duration) -> Deadline {
        let (tx, rx) = mpsc::channel::<()>();
        thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!("{what}: still running after {limit:?}");
                std::process::exit(101);
            }
        });
        Deadline(Some(tx))
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        drop(self.0.take());
    }
}

fn deadline(what: &'static str) -> Deadline {
    Deadline::new(what, Duration::from_secs(60))
}

/// The thread a task spawned now runs on, and its name.
async fn spawned_on() -> (ThreadId, Option<String>) {
    waitrt::spawn(async {
        let me = thread::current();
        (me.id(), me.name().map(String::from))
    })
    .await
    .unwrap()
}

// ===== flavors =====

#[waitrt::test]
async fn default_is_current_thread() {
    let _deadline = deadline("default_is_current_thread");
    assert_eq!(waitrt::Handle::current().metrics().workers(), 1);
    // The body runs on the test's own thread, and so does every task.
    let (on, _) = spawned_on().await;
    assert_eq!(on, thread::current().id());
}

#[waitrt::test(flavor = "current_thread")]
async fn current_thread_flavor() {
    let _deadline = deadline("current_thread_flavor");
    assert_eq!(waitrt::Handle::current().metrics().workers(), 1);
    assert_eq!(spawned_on().await.0, thread::current().id());
}

#[waitrt::test(flavor = "multi_thread", worker_threads = 3)]
async fn multi_thread_with_three_workers() {
    let _deadline = deadline("multi_thread_with_three_workers");
    assert_eq!(waitrt::Handle::current().metrics().workers(), 3);
    // Tasks run on the workers, not on the thread that blocks on the body.
    assert_ne!(spawned_on().await.0, thread::current().id());
}

#[waitrt::test(flavor = "multi_thread", worker_threads = 1)]
async fn multi_thread_with_one_worker() {
    let _deadline = deadline("multi_thread_with_one_worker");
    assert_eq!(waitrt::Handle::current().metrics().workers(), 1);
    assert_ne!(spawned_on().await.0, thread::current().id());
}

#[waitrt::test(flavor = "multi_thread")]
async fn multi_thread_defaults_to_the_available_parallelism() {
    let _deadline = deadline("multi_thread_defaults_to_the_available_parallelism");
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(waitrt::Handle::current().metrics().workers(), cpus);
}

#[waitrt::test(
    flavor = "multi_thread",
    worker_threads = 2,
    thread_name = "macro-test"
)]
async fn thread_name_names_the_workers() {
    let _deadline = deadline("thread_name_names_the_workers");
    let (_, name) = spawned_on().await;
    let name = name.expect("workers are named");
    assert!(name.starts_with("macro-test-"), "{name}");
}

// ===== the clock =====

#[waitrt::test(start_paused = true)]
async fn start_paused_sleeps_an_hour_in_no_time() {
    let _deadline = deadline("start_paused_sleeps_an_hour_in_no_time");
    let start = now();
    sleep(HOUR).await;
    assert_eq!(now() - start, HOUR);
}

#[waitrt::test(flavor = "multi_thread", worker_threads = 2, start_paused = true)]
async fn start_paused_on_multi_thread() {
    let _deadline = deadline("start_paused_on_multi_thread");
    let start = now();
    let sleeper = waitrt::spawn(async move {
        sleep(HOUR).await;
        now() - start
    });
    assert_eq!(sleeper.await.unwrap(), HOUR);
}

#[waitrt::test(start_paused = false)]
async fn start_paused_false_keeps_the_real_clock() {
    let _deadline = deadline("start_paused_false_keeps_the_real_clock");
    let start = std::time::Instant::now();
    sleep(Duration::from_millis(20)).await;
    assert!(start.elapsed() >= Duration::from_millis(20));
}

// ===== return types =====

#[waitrt::test]
async fn returns_ok() -> Result<(), std::num::ParseIntError> {
    let _deadline = deadline("returns_ok");
    let n: u32 = "7".parse()?;
    waitrt::task::yield_now().await;
    assert_eq!(n, 7);
    Ok(())
}

#[waitrt::test(flavor = "multi_thread", worker_threads = 2)]
async fn returns_ok_boxed_error() -> Result<(), Box<dyn std::error::Error>> {
    let _deadline = deadline("returns_ok_boxed_error");
    let n = waitrt::spawn(async { 40 + 2 }).await?;
    assert_eq!(n, 42);
    Ok(())
}

#[waitrt::test]
async fn return_in_the_body_returns_from_the_test() {
    let _deadline = deadline("return_in_the_body_returns_from_the_test");
    if waitrt::Handle::current().metrics().workers() == 1 {
        return;
    }
    unreachable!("the test returned early");
}

// ===== other attributes =====

#[waitrt::test]
#[should_panic(expected = "a panic in the body")]
async fn should_panic_goes_through() {
    let _deadline = deadline("should_panic_goes_through");
    waitrt::task::yield_now().await;
    panic!("a panic in the body");
}

#[waitrt::test]
#[ignore = "shows that #[ignore] goes through: it must not run"]
async fn ignore_goes_through() {
    panic!("an ignored test ran");
}

/// `crate = "path"`: the runtime through another path (as the runtime's
/// own unit tests do with `crate = "crate"`).
mod renamed {
    pub(crate) mod rt {
        pub(crate) use waitrt::*;
    }

    #[waitrt::test(crate = "rt", start_paused = true)]
    async fn crate_option_names_the_runtime() {
        let _deadline = super::deadline("crate_option_names_the_runtime");
        let start = waitrt::time::now();
        waitrt::time::sleep(super::HOUR).await;
        assert_eq!(waitrt::time::now() - start, super::HOUR);
    }
}

// ===== check: the deterministic toolkit =====

/// WRONG: checks the condition, *then* registers, and sleeps without
/// re-checking: a wake between the two is lost (as in
/// `toolkit_lost_wakeup.rs`).
async fn check_then_register(queue: &WaitQueue, ready: &AtomicBool) {
    let mut entry = WaitEntry::new(queue);
    while !ready.load(SeqCst) {
        queue.prepare_to_wait(&mut entry, TaskState::Uninterruptible);
        entry.wait().await.unwrap();
    }
    queue.finish_wait(&mut entry);
}

/// One waiter (right or wrong), one task that sets the flag and wakes.
async fn flag_scenario(correct: bool) {
    let queue = Arc::new(WaitQueue::new());
    waitrt::test_util::name_queue(&queue, "ready_wq");
    let ready = Arc::new(AtomicBool::new(false));
    let waiter = {
        let (queue, ready) = (queue.clone(), ready.clone());
        waitrt::spawn(async move {
            if correct {
                queue.wait_event(|| ready.load(SeqCst)).await.unwrap();
            } else {
                check_then_register(&queue, &ready).await;
            }
        })
    };
    let setter = waitrt::spawn(async move {
        ready.store(true, SeqCst);
        queue.wake_up();
    });
    setter.await.unwrap();
    waiter.await.unwrap();
}

#[waitrt::test(check(seeds = 64, policy = "pct", depth = 2, quiet = true))]
#[should_panic(expected = "lost wake-up: task")]
async fn check_finds_a_lost_wakeup() {
    flag_scenario(false).await;
}

#[waitrt::test(check(seeds = 64))]
#[should_panic(expected = "replay: RUNTIME_TEST_REPLAY=")]
async fn check_reports_a_replay_command() {
    flag_scenario(false).await;
}

thread_local! {
    /// Runs of the body below on this thread: the check runs it once per
    /// seed, on the thread that calls the test.
    static RUNS: AtomicUsize = const { AtomicUsize::new(0) };
}

#[waitrt::test(check(seeds = 200, policy = "pct", depth = 3))]
async fn check_passes_a_correct_body_every_seed() {
    assert!(waitrt::test_util::is_checking());
    RUNS.with(|runs| runs.fetch_add(1, SeqCst));
    flag_scenario(true).await;
}

/// The check above, run by hand: 200 seeds made 200 runs (unless the
/// toolkit's variables change the seeds).
#[test]
fn check_runs_the_body_once_per_seed() {
    use waitrt::test_util::{REPLAY_VAR, SEEDS_VAR, SEED_VAR};
    if [REPLAY_VAR, SEED_VAR, SEEDS_VAR]
        .iter()
        .any(|var| std::env::var_os(var).is_some())
    {
        return;
    }
    let _deadline = deadline("check_runs_the_body_once_per_seed");
    check_passes_a_correct_body_every_seed();
    assert_eq!(RUNS.with(|runs| runs.load(SeqCst)), 200);
}

#[waitrt::test(check)]
async fn check_runs_with_a_paused_clock() {
    let start = now();
    sleep(HOUR).await;
    assert_eq!(now() - start, HOUR);
}

#[waitrt::test(check(seeds = 50, policy = "dfs", preemption_bound = 1))]
async fn check_with_dfs() {
    flag_scenario(true).await;
}

#[waitrt::test(check(seeds = 8, policy = "fifo", spurious_wakeups = false))]
async fn check_with_fifo_and_a_flag() -> Result<(), std::num::ParseIntError> {
    let n: u32 = "5".parse()?;
    assert_eq!(n, 5);
    Ok(())
}

#[waitrt::test(check(seeds = 4, policy = "random"))]
#[should_panic(expected = "the test body returned Err(ParseIntError")]
async fn check_fails_a_run_that_returns_err() -> Result<(), std::num::ParseIntError> {
    let _n: u32 = "not a number".parse()?;
    Ok(())
}
