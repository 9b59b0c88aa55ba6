//! The `#[waitrt::test]` and `#[waitrt::main]` attributes. Use them
//! through `waitrt`, which re-exports both; this crate only expands them.
//!
//! | piece | where |
//! | --- | --- |
//! | the entry points and their docs | `lib.rs` |
//! | the attribute's arguments: parsing, the rules between them, spans of errors | `config.rs` |
//! | what the function becomes | `expand.rs` |
//!
//! The expansion names the runtime as `::waitrt` (`crate = "path"`
//! changes that: inside the runtime crate itself, `crate = "crate"`).
//! Errors in the arguments are compile errors that point at the argument
//! at fault.
#![deny(missing_docs, unsafe_code)]
#![warn(rust_2018_idioms, unreachable_pub, missing_debug_implementations)]
#![doc(test(attr(deny(warnings))))]

mod config;
mod expand;

use config::Kind;
use proc_macro::TokenStream;

/// Runs an `async fn` test on a fresh runtime, or under the deterministic
/// test toolkit with `check`.
///
/// ```
/// #[waitrt::test]
/// async fn sleeps() {
///     waitrt::time::sleep(std::time::Duration::from_millis(1)).await;
/// }
/// # fn main() {}
/// ```
///
/// (A doc example builds without `--test`, so its test functions are only
/// expanded, not compiled: `tests/macros.rs` at the workspace root runs
/// tests like these.)
///
/// By default the body runs on a current-thread runtime with every driver
/// on; the test is the same as
///
/// ```
/// // #[test]
/// fn sleeps() {
///     let body = async {
///         waitrt::time::sleep(std::time::Duration::from_millis(1)).await;
///     };
///     waitrt::Builder::new_current_thread()
///         .enable_all()
///         .build()
///         .expect("failed to build the runtime")
///         .block_on(body)
/// }
/// # sleeps();
/// ```
///
/// # Options
///
/// | option | what it does |
/// | --- | --- |
/// | `flavor = "current_thread"` | the default: every task runs on the test's thread |
/// | `flavor = "multi_thread"` | a work-stealing pool of worker threads |
/// | `worker_threads = N` | the pool's size (with `multi_thread` only; default: the available parallelism) |
/// | `start_paused = true` | the clock starts paused: it moves only through `time::advance`, or jumps to the next timer when no task can run, so a one-hour sleep takes no time |
/// | `thread_name = "name"` | the runtime's threads are named `name-0`, `name-1`, … |
/// | `check` or `check(...)` | the body runs under `waitrt::test_util::Check`, once per seed (below) |
/// | `crate = "path"` | where the runtime crate is (default `::waitrt`) |
///
/// ```
/// #[waitrt::test(flavor = "multi_thread", worker_threads = 2)]
/// async fn on_two_workers() {
///     assert_eq!(waitrt::Handle::current().metrics().workers(), 2);
/// }
///
/// #[waitrt::test(start_paused = true)]
/// async fn an_hour_in_no_time() {
///     use waitrt::time::{now, sleep};
///     use std::time::Duration;
///
///     let start = now();
///     sleep(Duration::from_secs(3600)).await;
///     assert_eq!(now() - start, Duration::from_secs(3600));
/// }
/// # fn main() {}
/// ```
///
/// # Under the test toolkit: `check`
///
/// With `check`, the body runs under `waitrt::test_util::Check`: on the
/// toolkit's current-thread runtime with a paused clock, once per seed,
/// each time under a different schedule, and a lost wake-up, a hang or a
/// panic in any run fails the test with the toolkit's report (shrunk, with
/// its replay command). The options are `Check`'s builder methods:
///
/// | option | `Check` method |
/// | --- | --- |
/// | `seeds = N` | `seeds(N)` (default 1; `RUNTIME_TEST_SEEDS` overrides) |
/// | `first_seed = N` | `first_seed(N)` |
/// | `policy = "random"`, `"pct"`, `"dfs"`, `"fifo"` | `policy(Policy::Random)`, `Pct { depth }`, `Dfs { preemption_bound }`, `Fifo` |
/// | `depth = N` | PCT's depth (with `policy = "pct"`; default 3) |
/// | `preemption_bound = N` | DFS's bound (with `policy = "dfs"`; default 2) |
/// | `max_polls = N`, `max_poll_decisions = N`, `max_depth = N` | `max_polls(N)`, `max_poll_decisions(N)`, `max_depth(N)` (how deep preemptions nest) |
/// | `max_time = "10s"`, `watchdog = "30s"`, `late_wake_grace = "10ms"` | `max_time(Duration::from_secs(10))`, `watchdog(..)`, `late_wake_grace(..)`: a whole number and a unit, `ns`, `us`, `ms`, `s`, `min` or `h`; `"off"` is `Duration::MAX` (no limit) |
/// | `spurious_wakeups`, `weak_memory`, `inject_signals`, `time_jumps`, `oracle`, `allow_task_panics`, `check_determinism`, `shrink`, `quiet`, `coverage` `= bool` | the method of that name |
///
/// Every builder method of `Check` is an option of the same name (a unit
/// test of this crate reads `Check`'s source to keep it so).
///
/// ```
/// #[waitrt::test(check(seeds = 64, policy = "pct", depth = 2))]
/// async fn the_waiter_wakes() {
///     use waitrt::sync::WaitQueue;
///     use std::sync::atomic::{AtomicBool, Ordering};
///     use std::sync::Arc;
///
///     let queue = Arc::new(WaitQueue::new());
///     let ready = Arc::new(AtomicBool::new(false));
///     let waiter = {
///         let (queue, ready) = (queue.clone(), ready.clone());
///         waitrt::spawn(async move { queue.wait_event(|| ready.load(Ordering::SeqCst)).await })
///     };
///     ready.store(true, Ordering::SeqCst);
///     queue.wake_up();
///     waiter.await.unwrap().unwrap();
/// }
/// # fn main() {}
/// ```
///
/// The body is run once per seed, each time as a fresh future made by a
/// closure (`Check::new().seeds(64)...run(|| async { body })`), so it must
/// start from nothing each time: state it creates is fresh per run, but a
/// `static` it changes, a file it writes or an environment variable it sets
/// is still there in the next run. Reset such state at the start of the
/// body, or keep it inside.
///
/// # Return type
///
/// `()` or `Result<(), E>` with `E: Debug`. Without `check` an `Err` fails
/// the test as it does for a plain `#[test]`; with `check` it fails the
/// run (with its `Debug` form in the report).
///
/// ```
/// #[waitrt::test]
/// async fn parses() -> Result<(), std::num::ParseIntError> {
///     let n: u32 = "42".parse()?;
///     assert_eq!(n, 42);
///     Ok(())
/// }
/// # fn main() {}
/// ```
///
/// # Errors at compile time
///
/// An unknown option, a value of the wrong type, `worker_threads` without
/// `flavor = "multi_thread"`, `check` with a runtime option (`flavor`,
/// `worker_threads`, `start_paused`, `thread_name`), a function that is not
/// `async`, takes arguments or is generic, and a second `#[test]` are
/// compile errors that point at the part at fault.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::Test, args.into(), item.into()).into()
}

/// Runs a program's `async fn main` on a runtime.
///
/// ```
/// #[waitrt::main]
/// async fn main() {
///     let sum = waitrt::spawn(async { 1 + 1 }).await.unwrap();
///     assert_eq!(sum, 2);
/// }
/// ```
///
/// By default the runtime is the multi-thread one (a worker per available
/// CPU) with every driver on; `main` is the same as
///
/// ```
/// fn main() {
///     let body = async {
///         let sum = waitrt::spawn(async { 1 + 1 }).await.unwrap();
///         assert_eq!(sum, 2);
///     };
///     waitrt::Builder::new_multi_thread()
///         .enable_all()
///         .build()
///         .expect("failed to build the runtime")
///         .block_on(body)
/// }
/// ```
///
/// # Options
///
/// The runtime options of [`test`](macro@test), with `multi_thread` as the
/// default flavor: `flavor = "current_thread"` or `"multi_thread"`,
/// `worker_threads = N` (with `multi_thread`), `start_paused = true`,
/// `thread_name = "name"`, and `crate = "path"`.
///
/// ```
/// use std::io::Write;
///
/// #[waitrt::main(flavor = "multi_thread", worker_threads = 2, thread_name = "app")]
/// async fn main() -> std::io::Result<()> {
///     assert_eq!(waitrt::Handle::current().metrics().workers(), 2);
///     let on = waitrt::spawn(async { std::thread::current().name().map(String::from) });
///     assert!(on.await.unwrap().unwrap().starts_with("app"));
///     std::io::stdout().flush()
/// }
/// ```
///
/// The function may return anything `main` may (`()`, `Result<(), E>`
/// with `E: Debug`, …): the body's output is `main`'s.
#[allow(clippy::needless_doctest_main)] // showing `main` is the point
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::Main, args.into(), item.into()).into()
}
