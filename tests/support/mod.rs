//! Helpers shared by the top-level tests: wakers that record, a watchdog,
//! thread repetition, `serial` and `ms`, and `waitq::Clock` implementations
//! (a manual virtual clock, tokio's timer, smol's timer).
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

// ===== small shared helpers =====

/// Reads `len` bytes through vectored reads of one-byte buffers: more
/// buffers than one syscall takes (1,024), until the last 1,024 bytes.
pub async fn read_bytewise_vectored<R>(reader: &mut R, len: usize) -> Vec<u8>
where
    R: futures::AsyncRead + Unpin,
{
    use futures::AsyncReadExt;
    let mut got = vec![0; len];
    let mut at = 0;
    while at < len {
        let mut bufs: Vec<std::io::IoSliceMut<'_>> = got[at..]
            .chunks_mut(1)
            .map(std::io::IoSliceMut::new)
            .collect();
        at += reader.read_vectored(&mut bufs).await.unwrap();
    }
    got
}

/// Tests that take a binary's tests out of parallel (CPU-burning spinners,
/// timers that must fire in order, races that need both cores) hold this
/// for their whole run: one at a time within the test binary.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `n` milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ===== recording wakers =====

/// A waker that counts how often it was woken.
#[derive(Debug, Default)]
pub struct CountingWaker {
    wakes: AtomicUsize,
}

impl CountingWaker {
    pub fn new() -> Arc<Self> {
        Arc::new(CountingWaker::default())
    }

    pub fn wakes(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }

    pub fn waker(self: &Arc<Self>) -> Waker {
        Waker::from(self.clone())
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

/// Polls `fut` once with `waker`.
pub fn poll_with<F: Future + Unpin>(fut: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(waker))
}

// ===== threads =====

/// Runs `f` on a thread and panics (naming `what`) if it has not finished
/// within `limit`. A hang detector, never a timing assertion: `limit` is
/// orders of magnitude above the expected time.
pub fn watchdog<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let out = f();
        let _ = tx.send(());
        out
    });
    match rx.recv_timeout(limit) {
        Ok(()) => handle.join().expect("watched thread panicked"),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("watchdog: `{what}` still running after {limit:?}: a lost wake-up or a hang")
        }
    }
}

/// The default watchdog limit for stress scenarios.
pub const WATCHDOG: Duration = Duration::from_secs(120);

/// How long [`wait_until`] and [`blocking_wait_until`] wait for what
/// another thread, worker, pool thread or process must do: a hang
/// detector (below [`RT_LIMIT`], so the failure names what never
/// happened), never a timing goal.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30);

/// Sleeps 1 ms at a time on the current runtime's timer (it needs one)
/// until `cond` holds; panics naming `what` if it still does not after
/// [`WAIT_LIMIT`] of real time. Not a count of yields or polls: on a
/// loaded machine the other side may not run within any number of them.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < WAIT_LIMIT,
            "waited {WAIT_LIMIT:?} for {what}: it never happened"
        );
        waitrt::time::sleep(ms(1)).await;
    }
}

/// [`wait_until`] the task `id` sleeps in a wait, read from the current
/// runtime's task dumps (a task that runs, or is queued, is not asleep).
#[allow(dead_code)]
pub async fn until_asleep(id: waitrt::task::Id) {
    let handle = waitrt::Handle::current();
    wait_until("the task to sleep", || {
        handle
            .dump()
            .task(id)
            .is_some_and(|task| !task.waits.is_empty())
    })
    .await;
}

/// [`wait_until`] for a plain thread: sleeps the thread 1 ms at a time.
pub fn blocking_wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < WAIT_LIMIT,
            "waited {WAIT_LIMIT:?} for {what}: it never happened"
        );
        std::thread::sleep(ms(1));
    }
}

/// Iterations for real-thread stress scenarios (override with WAITQ_STRESS_ITERS).
pub fn stress_iters() -> usize {
    std::env::var("WAITQ_STRESS_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000)
}

// ===== clocks =====

/// A virtual clock: time moves only on `advance`, which wakes every sleep
/// whose deadline it passes. Deterministic timeouts without real time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

#[derive(Debug)]
struct ManualInner {
    base: Instant,
    offset_ns: AtomicU64,
    sleepers: Mutex<Vec<Waker>>,
}

impl ManualClock {
    pub fn new() -> Self {
        ManualClock {
            inner: Arc::new(ManualInner {
                base: Instant::now(),
                offset_ns: AtomicU64::new(0),
                sleepers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Moves time forward by `d` and wakes every sleep.
    pub fn advance(&self, d: Duration) {
        self.inner
            .offset_ns
            .fetch_add(d.as_nanos() as u64, Ordering::SeqCst);
        let sleepers = std::mem::take(&mut *self.inner.sleepers.lock().unwrap());
        for w in sleepers {
            w.wake();
        }
    }

    /// Number of sleeps currently registered (created and polled, not fired).
    pub fn sleepers(&self) -> usize {
        self.inner.sleepers.lock().unwrap().len()
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl waitq::Clock for ManualClock {
    type Sleep = ManualSleep;

    fn now(&self) -> Instant {
        self.inner.base + Duration::from_nanos(self.inner.offset_ns.load(Ordering::SeqCst))
    }

    fn sleep_until(&self, deadline: Instant) -> ManualSleep {
        ManualSleep {
            clock: self.clone(),
            deadline,
        }
    }
}

/// The sleep of a [`ManualClock`].
#[derive(Debug)]
pub struct ManualSleep {
    clock: ManualClock,
    deadline: Instant,
}

impl Future for ManualSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        use waitq::Clock;
        if self.clock.now() >= self.deadline {
            return Poll::Ready(());
        }
        self.clock
            .inner
            .sleepers
            .lock()
            .unwrap()
            .push(cx.waker().clone());
        if self.clock.now() >= self.deadline {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// tokio's timer as a `waitq::Clock` (honours `tokio::time::pause()`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl waitq::Clock for TokioClock {
    type Sleep = Pin<Box<tokio::time::Sleep>>;

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }
}

/// smol's (async-io's) timer as a `waitq::Clock`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolClock;

impl waitq::Clock for SmolClock {
    type Sleep = async_io::Timer;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        async_io::Timer::at(deadline)
    }
}

// ===== one body on every scheduler flavour =====

/// Hang detector for one test body (never a timing assertion).
pub const RT_LIMIT: Duration = Duration::from_secs(60);

/// Expands a behaviour test into one `#[test]` per scheduler flavour:
/// `name::current_thread`, `name::multi_thread_1`, `name::multi_thread_2`.
/// The body gets the runtime by value as `$rt`. Needs `#[macro_use] mod support;`.
#[allow(unused_macros)]
macro_rules! rt_test {
    ($(#[$attr:meta])* fn $name:ident($rt:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            $(#[$attr])*
            fn current_thread() {
                $crate::support::run_on(concat!(stringify!($name), "::current_thread"), None, |$rt: waitrt::Runtime| $body);
            }

            #[test]
            $(#[$attr])*
            fn multi_thread_1() {
                $crate::support::run_on(concat!(stringify!($name), "::multi_thread_1"), Some(1), |$rt: waitrt::Runtime| $body);
            }

            #[test]
            $(#[$attr])*
            fn multi_thread_2() {
                $crate::support::run_on(concat!(stringify!($name), "::multi_thread_2"), Some(2), |$rt: waitrt::Runtime| $body);
            }
        }
    };
}

/// Builds the flavour (`None`: current-thread; `Some(n)`: n workers) and
/// runs `body` on it under the watchdog.
pub fn run_on(what: &'static str, workers: Option<usize>, body: fn(waitrt::Runtime)) {
    watchdog(what, RT_LIMIT, move || body(build(workers)));
}

pub fn build(workers: Option<usize>) -> waitrt::Runtime {
    match workers {
        None => waitrt::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        Some(n) => waitrt::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build()
            .unwrap(),
    }
}

/// A waker that panics when woken (a buggy hand-written executor), for the
/// tests that a panicking waker loses nothing.
pub struct PanickingWaker;

impl std::task::Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("this waker panics on purpose");
    }
}

// ===== waitable conditions for task tests =====

/// A one-shot condition tasks (and threads) can wait for.
#[derive(Default)]
pub struct Gate {
    open: std::sync::atomic::AtomicBool,
    pub queue: waitq::WaitQueue,
}

impl Gate {
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate::default())
    }
    pub fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
        self.queue.wake_up_all();
    }
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::SeqCst)
    }
    pub async fn wait(&self) {
        self.queue.wait_event(|| self.is_open()).await.unwrap();
    }
    pub fn blocking_wait(&self) {
        self.queue.blocking_wait_event(|| self.is_open()).unwrap();
    }
}

/// A counter tasks (and threads) can wait on.
#[derive(Default)]
pub struct Counter {
    n: AtomicUsize,
    queue: waitq::WaitQueue,
}

impl Counter {
    pub fn new() -> Arc<Counter> {
        Arc::new(Counter::default())
    }
    pub fn inc(&self) {
        self.n.fetch_add(1, Ordering::SeqCst);
        self.queue.wake_up_all();
    }
    pub fn get(&self) -> usize {
        self.n.load(Ordering::SeqCst)
    }
    pub async fn wait_for(&self, n: usize) {
        self.queue.wait_event(|| self.get() >= n).await.unwrap();
    }
    pub fn blocking_wait_for(&self, n: usize) {
        self.queue.blocking_wait_event(|| self.get() >= n).unwrap();
    }
}

/// The message of a caught panic.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string panic payload>".to_owned())
}

/// Current-thread and multi-thread(2), both `enable_all()`, with extra
/// builder settings from `configure`.
pub fn flavours(
    configure: fn(&mut waitrt::Builder) -> &mut waitrt::Builder,
) -> [(&'static str, waitrt::Runtime); 2] {
    let mut ct = waitrt::Builder::new_current_thread();
    let mut mt = waitrt::Builder::new_multi_thread();
    mt.worker_threads(2);
    [
        (
            "current_thread",
            configure(ct.enable_all()).build().unwrap(),
        ),
        (
            "multi_thread_2",
            configure(mt.enable_all()).build().unwrap(),
        ),
    ]
}

/// No extra settings (for [`flavours`]).
pub fn plain(b: &mut waitrt::Builder) -> &mut waitrt::Builder {
    b
}

// ===== one scenario on real threads and under the toolkit =====

/// Runs `scenario` `iters` times on a 2-worker runtime, each run bounded
/// by 30 s (a hang detector, not a timing assertion).
pub fn real_threads<F, Fut>(name: &str, iters: usize, scenario: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let rt = build(Some(2));
    for i in 0..iters {
        let run = scenario();
        rt.block_on(async move {
            waitrt::time::timeout(Duration::from_secs(30), waitrt::spawn(run))
                .await
                .unwrap_or_else(|_| panic!("{name}: real-thread run {i} hung"))
                .unwrap_or_else(|e| panic!("{name}: real-thread run {i}: {e:?}"));
        });
    }
}

/// Both modes: `scenario` `iters` times on real threads, then `seeds`
/// seeds under the toolkit with random and PCT (depth 3) schedules. With
/// `distinct`, the toolkit must have explored more than one schedule (a
/// scenario it cannot interleave would pass vacuously).
pub fn both_modes<F, Fut>(name: &str, iters: usize, seeds: u64, distinct: bool, scenario: F)
where
    F: Fn() -> Fut + Clone,
    Fut: Future<Output = ()> + Send + 'static,
{
    real_threads(name, iters, scenario.clone());
    for policy in [
        waitrt::test_util::Policy::Random,
        waitrt::test_util::Policy::Pct { depth: 3 },
    ] {
        let stats = waitrt::test_util::Check::new()
            .seeds(seeds)
            .policy(policy)
            .quiet(true)
            .run(scenario.clone());
        println!("{name}: {stats}");
        if distinct {
            assert!(stats.distinct_schedules() > 1, "{name}: one schedule only");
        }
    }
}

// ===== child processes =====

/// Spawns `command` (its stdout and stderr piped) and waits for it at most
/// a minute (then kills it and gives `None`); returns its status and its
/// stdout and stderr.
pub fn run_with_watchdog(
    mut command: std::process::Command,
) -> (Option<std::process::ExitStatus>, String) {
    let mut child = command.spawn().unwrap();
    let readers = [
        drain(child.stdout.take().unwrap()),
        drain(child.stderr.take().unwrap()),
    ];
    let mut status = None;
    for _ in 0..600 {
        status = child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if status.is_none() {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let output = readers.map(|r| r.join().unwrap()).concat();
    (status, output)
}

/// Runs the test `test` of this test binary alone in a child process with
/// `var=1` in its environment (the test's child half looks for it), at
/// most a minute; panics unless it passed and printed `done`.
#[allow(dead_code)] // not every test binary has a child half
pub fn run_test_in_child(test: &str, var: &str, done: &str) {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(var, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let (status, text) = run_with_watchdog(command);
    assert!(status.is_some_and(|s| s.success()), "{status:?}\n{text}");
    assert!(text.contains(done), "{text}");
}

/// Lowers this process's descriptor limit to `limit` (call it in a child
/// process only) and opens `/dev/null` until no descriptor is left: the
/// files that hold them.
#[allow(dead_code)]
pub fn use_up_descriptors(limit: u64) -> Vec<std::fs::File> {
    let rlimit = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: a plain setrlimit(2) call with a valid struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) }, 0);
    let mut held = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(file) => held.push(file),
            Err(err) if err.raw_os_error() == Some(libc::EMFILE) => return held,
            Err(err) => panic!("{err}"),
        }
        assert!(held.len() as u64 <= limit, "the limit did not hold");
    }
}

/// Reads `pipe` to its end on a thread of its own.
fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    })
}
