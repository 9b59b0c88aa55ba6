//! Task dumps (`Handle::dump`), on both flavours: every kind of sleep is
//! listed with its fields, and the dump returns while a worker is stuck in
//! a long poll. Also SIGQUIT printing, in a child process.

use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use waitrt::obs::{Dump, TaskStatus};
use waitrt::sync::WaitQueue;
use waitrt::task::Builder as TaskBuilder;
use waitrt::{Builder, Runtime};

static NAMED: WaitQueue = WaitQueue::named("obs_named");
static GO: WaitQueue = WaitQueue::named("obs_go");
static POOL_Q: WaitQueue = WaitQueue::named("obs_pool");
static THREAD_Q: WaitQueue = WaitQueue::named("obs_thread");

/// The two flavours share the queues above: run them one at a time, or one
/// test's final `wake_up_all` wakes the other's sleepers mid-check (seen in
/// CI: a sleeper dumped as woken while its condition was still false).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Every wait in these tests gives up after this.
const WATCHDOG: Duration = Duration::from_secs(20);

/// Takes dumps until `ok` holds (or panics at the watchdog, printing the last one).
fn dump_until(rt: &Runtime, ok: impl FnMut(&Dump) -> bool) -> Dump {
    dump_until_on(rt.handle(), ok)
}

/// [`dump_until`] through a handle (its runtime runs on another thread).
fn dump_until_on(handle: &waitrt::Handle, mut ok: impl FnMut(&Dump) -> bool) -> Dump {
    let start = Instant::now();
    loop {
        let dump = handle.dump();
        if ok(&dump) {
            return dump;
        }
        assert!(start.elapsed() < WATCHDOG, "dump never got there:\n{dump}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Dumps until `ok` holds or the watchdog runs out, sleeping on the
/// runtime's clock in between (for a test inside `block_on`), and returns
/// the last dump either way: the caller lets go of what it holds before
/// it asserts, so that a failure fails rather than hangs.
async fn dump_until_or_watchdog(rt: &Runtime, mut ok: impl FnMut(&Dump) -> bool) -> Dump {
    let start = Instant::now();
    loop {
        let dump = rt.handle().dump();
        if ok(&dump) || start.elapsed() > WATCHDOG {
            return dump;
        }
        waitrt::time::sleep(Duration::from_millis(5)).await;
    }
}

/// [`dump_until_or_watchdog`] from a plain thread.
fn dump_until_or_watchdog_blocking(rt: &Runtime, mut ok: impl FnMut(&Dump) -> bool) -> Dump {
    let start = Instant::now();
    loop {
        let dump = rt.handle().dump();
        if ok(&dump) || start.elapsed() > WATCHDOG {
            return dump;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The names of the queues task `id` is listed asleep on (`?` for an
/// unnamed one), in the dump's order.
fn queue_names(dump: &Dump, id: waitrt::task::Id) -> Vec<String> {
    let task = dump.task(id);
    let names = task.map(|t| {
        t.waits
            .iter()
            .map(|w| w.queue_name.unwrap_or("?").to_string())
    });
    names.map(Vec::from_iter).unwrap_or_default()
}

/// A runtime with the wait registry's task slots on: current-thread for
/// `workers == 1`, else that many workers.
fn registry_runtime(workers: usize) -> Runtime {
    let mut builder = if workers == 1 {
        Builder::new_current_thread()
    } else {
        let mut builder = Builder::new_multi_thread();
        builder.worker_threads(workers);
        builder
    };
    builder.enable_all().wait_registry(true).build().unwrap()
}

fn file_of(site: &std::panic::Location<'_>) -> String {
    site.file().replace('\\', "/")
}

fn everything(rt: Runtime, flavour: &str) {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let release = Arc::new(AtomicBool::new(false));
    let go = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let line = line!() + 3;
    let sleeper = {
        let release = release.clone();
        TaskBuilder::new().name("sleeper").spawn_on(
            async move { NAMED.wait_event(|| release.load(SeqCst)).await },
            rt.handle(),
        )
    };
    let interruptible = {
        let release = release.clone();
        rt.spawn(async move {
            let signals = waitrt::task::signals();
            NAMED
                .wait_event_interruptible_exclusive(signals, || release.load(SeqCst))
                .await
        })
    };
    let timer = TaskBuilder::new().name("timer").spawn_on(
        async { waitrt::time::sleep(Duration::from_secs(3600)).await },
        rt.handle(),
    );
    let listener = rt
        .block_on(waitrt::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let socket = TaskBuilder::new().name("acceptor").spawn_on(
        async move { listener.accept().await.map(|_| ()) },
        rt.handle(),
    );
    let pool = {
        let release = release.clone();
        let _enter = rt.handle().enter();
        TaskBuilder::new()
            .name("pool")
            .spawn_blocking(move || POOL_Q.blocking_wait_event(|| release.load(SeqCst)))
    };
    let thread = {
        let release = release.clone();
        std::thread::Builder::new()
            .name("obs-plain".into())
            .spawn(move || THREAD_Q.blocking_wait_event(|| release.load(SeqCst)))
            .unwrap()
    };
    let spinner = {
        let (go, stop) = (go.clone(), stop.clone());
        TaskBuilder::new().name("spinner").spawn_on(
            async move {
                GO.wait_event(|| go.load(SeqCst)).await.unwrap();
                // Blocking code in async: the worker is stuck here.
                let start = Instant::now();
                while !stop.load(SeqCst) && start.elapsed() < WATCHDOG {
                    std::thread::sleep(Duration::from_millis(1));
                }
            },
            rt.handle(),
        )
    };
    // A oneshot's receiver sleeps off the wait queue when nothing
    // watches; with the registry on it sleeps on the channel's queue.
    let (oneshot_tx, oneshot_rx) = waitrt::sync::oneshot::channel::<()>();
    let oneshot = rt.spawn(oneshot_rx);
    let all_asleep = |d: &Dump| {
        let asleep = |id| d.task(id).is_some_and(|t| !t.waits.is_empty());
        // Idle too (checked below): a dump taken during a poll may list
        // the wait while the task still runs (a flake hunt: 1-2 % of
        // dumps under load).
        let idle = |id| d.task(id).is_some_and(|t| t.status == TaskStatus::Idle);
        asleep(sleeper.id())
            && idle(sleeper.id())
            && asleep(oneshot.id())
            && asleep(interruptible.id())
            && asleep(socket.id())
            && asleep(pool.id())
            && asleep(spinner.id())
            && d.task(timer.id()).is_some_and(|t| !t.timers.is_empty())
            && d.threads()
                .iter()
                .any(|w| w.queue_name == Some("obs_thread"))
    };
    std::thread::scope(|scope| {
        // A current-thread runtime runs its tasks inside `block_on` only.
        let driver = {
            let (rt, stop) = (&rt, stop.clone());
            scope.spawn(move || {
                // Keep driving until the test is done (the spinner blocks it meanwhile).
                rt.block_on(async move {
                    let start = Instant::now();
                    while !stop.load(SeqCst) && start.elapsed() < WATCHDOG {
                        waitrt::time::sleep(Duration::from_millis(2)).await;
                    }
                })
            })
        };
        let dump = dump_until(&rt, all_asleep);
        println!("{flavour}:\n{dump}");

        let t = dump.task(sleeper.id()).unwrap();
        assert_eq!(t.name.as_deref(), Some("sleeper"));
        assert_eq!(file_of(t.spawned_at), "tests/obs_dump.rs");
        assert_eq!(t.spawned_at.line(), line);
        assert_eq!(t.status, TaskStatus::Idle);
        let w = &t.waits[0];
        assert_eq!(w.queue_name, Some("obs_named"));
        assert_eq!(w.queue, waitrt::sync::hook::QueueId::of(&NAMED));
        assert_eq!(w.kind.to_string(), "wait_event");
        assert!(w.kind.is_uninterruptible());
        assert_eq!(file_of(w.site), "tests/obs_dump.rs");
        assert_eq!(w.task, Some(sleeper.id().to_string().parse().unwrap()));
        assert!(w.since <= dump.taken());

        let t = dump.task(interruptible.id()).unwrap();
        assert_eq!(t.name, None);
        assert_eq!(
            t.waits[0].kind.to_string(),
            "wait_event_interruptible_exclusive"
        );
        assert!(!t.waits[0].kind.is_uninterruptible());

        let t = dump.task(timer.id()).unwrap();
        assert!(t.waits.is_empty());
        let left = t.timers[0].saturating_duration_since(dump.taken());
        assert!(left > Duration::from_secs(3000), "{left:?}");

        let t = dump.task(socket.id()).unwrap();
        assert_eq!(t.waits[0].queue_name, Some("tcp_listener_accept"));

        let t = dump.task(oneshot.id()).unwrap();
        assert_eq!(t.waits[0].queue_name, Some("oneshot"));

        let t = dump.task(pool.id()).unwrap();
        assert_eq!(t.name.as_deref(), Some("pool"));
        assert!(matches!(
            t.status,
            TaskStatus::Running {
                worker: None,
                busy: Some(_)
            }
        ));
        assert!(t.blocking);
        assert_eq!(t.waits[0].kind.to_string(), "blocking_wait_event");
        assert_eq!(t.waits[0].queue_name, Some("obs_pool"));

        let w = dump
            .threads()
            .iter()
            .find(|w| w.queue_name == Some("obs_thread"))
            .unwrap();
        assert_eq!(w.thread.as_ref().unwrap().name(), Some("obs-plain"));
        assert_eq!(w.kind.to_string(), "blocking_wait_event");

        let text = dump.to_string();
        let want = format!(
            "task {} \"sleeper\" [wait_event on obs_named, ",
            sleeper.id()
        );
        assert!(text.contains(&want), "{text}");
        assert!(text.contains("queue obs_named (queue@0x"), "{text}");
        assert!(text.contains("] spawned at tests/obs_dump.rs:"), "{text}");
        assert!(text.contains(", waits at tests/obs_dump.rs:"), "{text}");
        // A deadline is rounded up to the timer's next millisecond tick:
        // a dump taken within that millisecond still shows the full hour.
        assert!(
            text.contains("[timer, fires in 59m") || text.contains("[timer, fires in 1h00m00s"),
            "{text}"
        );
        assert!(text.contains("thread \"obs-plain\""), "{text}");

        // Now the spinner gets stuck in its poll: the dump still returns, and
        // names the busy worker and the task it runs.
        go.store(true, SeqCst);
        GO.wake_up_all();
        let dump = dump_until(&rt, |d| {
            d.workers()
                .iter()
                .any(|w| w.polling.is_some_and(|(id, _)| id == spinner.id()))
        });
        println!("{flavour}, stuck:\n{dump}");
        let t = dump.task(spinner.id()).unwrap();
        assert!(matches!(
            t.status,
            TaskStatus::Running {
                worker: Some(_),
                ..
            }
        ));
        let text = dump.to_string();
        assert!(
            text.contains(&format!(
                "busy polling task {} \"spinner\" for ",
                spinner.id()
            )),
            "{text}"
        );

        stop.store(true, SeqCst);
        release.store(true, SeqCst);
        for q in [&NAMED, &POOL_Q, &THREAD_Q] {
            q.wake_up_all();
        }
        oneshot_tx.send(()).unwrap();
        thread.join().unwrap().unwrap();
        driver.join().unwrap();
    });
    rt.shutdown_timeout(WATCHDOG);
}

/// A blocking job that runs without sleeping on a queue (blocking code:
/// a syscall, a computation) is listed as running on a pool thread *for
/// how long*, as a worker's long poll is, and a job waiting in the pool's
/// queue for a thread as queued for one. (The job's duration was not
/// shown, and a queued job read as a runnable task.)
fn blocking_jobs(flavour: &str, workers: usize) {
    let mut builder = match workers {
        1 => Builder::new_current_thread(),
        n => {
            let mut builder = Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
    };
    let rt = builder
        .enable_all()
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let release = Arc::new(AtomicBool::new(false));
    let busy_job = |release: Arc<AtomicBool>| {
        move || {
            let start = Instant::now();
            while !release.load(SeqCst) && start.elapsed() < WATCHDOG {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    };
    let (running, queued) = {
        let _enter = rt.handle().enter();
        let running = TaskBuilder::new()
            .name("busy_job")
            .spawn_blocking(busy_job(release.clone()));
        let queued = TaskBuilder::new()
            .name("queued_job")
            .spawn_blocking(busy_job(release.clone()));
        (running, queued)
    };
    let dump = dump_until(&rt, |d| {
        let ran_a_while = d.task(running.id()).is_some_and(|t| {
            matches!(t.status, TaskStatus::Running { worker: None, busy: Some(busy) }
                if busy >= Duration::from_millis(30))
        });
        ran_a_while && d.task(queued.id()).map(|t| t.status) == Some(TaskStatus::Runnable)
    });
    println!("{flavour}, blocking jobs:\n{dump}");
    assert!(dump.task(running.id()).unwrap().blocking);
    assert!(dump.task(queued.id()).unwrap().blocking);
    let text = dump.to_string();
    let want = format!(
        "task {} \"busy_job\" [running on a blocking-pool thread, ",
        running.id()
    );
    assert!(text.contains(&want), "{text}");
    let want = format!(
        "task {} \"queued_job\" [queued for a blocking-pool thread]",
        queued.id()
    );
    assert!(text.contains(&want), "{text}");
    release.store(true, SeqCst);
    rt.block_on(async {
        running.await.unwrap();
        queued.await.unwrap();
    });
}

#[test]
fn blocking_jobs_current_thread() {
    blocking_jobs("current_thread", 1);
}

#[test]
fn blocking_jobs_multi_thread() {
    blocking_jobs("multi_thread", 2);
}

#[test]
fn dump_current_thread() {
    everything(registry_runtime(1), "current_thread");
}

#[test]
fn dump_multi_thread() {
    everything(registry_runtime(2), "multi_thread");
}

/// The child half of `sigquit_prints_the_dump` (does nothing unless the
/// parent re-executes the test binary with `OBS_SIGQUIT_CHILD` set).
#[test]
fn sigquit_child() {
    if std::env::var_os("OBS_SIGQUIT_CHILD").is_none() {
        return;
    }
    let multi = std::env::var("OBS_SIGQUIT_CHILD").unwrap() == "multi";
    let mut builder = match multi {
        true => Builder::new_multi_thread(),
        false => Builder::new_current_thread(),
    };
    let rt = builder.enable_all().dump_on_sigquit(true).build().unwrap();
    let _daemon = TaskBuilder::new()
        .name("obs_child")
        .spawn_on(async { NAMED.wait_event(|| false).await }, rt.handle());
    // Ready once the daemon sleeps: a worker may take a while to run it
    // on a loaded machine (ten yields were not always enough).
    let asleep = |dump: &Dump| {
        dump.to_string()
            .contains("\"obs_child\" [wait_event on obs_named, ")
    };
    let start = Instant::now();
    while !asleep(&rt.handle().dump()) {
        assert!(start.elapsed() < WATCHDOG, "the daemon never slept");
        rt.block_on(waitrt::task::yield_now());
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("READY");
    std::io::stdout().flush().unwrap();
    // The parent sends SIGQUIT, reads the dump, then writes a line here.
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    println!("ALIVE");
    std::io::stdout().flush().unwrap();
    // No runtime dumps any more: the parent's next SIGQUIT gets the
    // default action again (quit; no core file: RLIMIT_CORE 0).
    // SAFETY: a plain setrlimit(2) call with a valid struct.
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) }, 0);
    drop(rt);
    println!("DROPPED");
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_line(&mut line);
    println!("STILL ALIVE");
}

/// `kill -QUIT` to the child (never to this process).
fn send_sigquit(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-QUIT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn sigquit_prints_the_dump(flavour: &str) {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "sigquit_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("OBS_SIGQUIT_CHILD", flavour)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = BufReader::new(child.stdout.take().unwrap());
    let err = BufReader::new(child.stderr.take().unwrap());
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(("out", line));
        }
    });
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            let _ = tx2.send(("err", line));
        }
    });
    let wait_for = |stream: &str, what: &str| {
        let deadline = Instant::now() + WATCHDOG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((s, line)) if s == stream && line.contains(what) => return line,
                Ok(_) => {}
                Err(e) => panic!("child never printed {what:?} on {stream}: {e}"),
            }
        }
    };
    wait_for("out", "READY");
    send_sigquit(&child);
    let line = wait_for("err", "\"obs_child\" [wait_event on obs_named, ");
    assert!(line.contains("spawned at tests/obs_dump.rs:"), "{line}");
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    wait_for("out", "ALIVE");
    // Its runtime dropped, a SIGQUIT quits the child, as by default. (It
    // was swallowed: the handler stayed, and nobody dumped or quit; an
    // independent probe.)
    wait_for("out", "DROPPED");
    send_sigquit(&child);
    let deadline = Instant::now() + WATCHDOG;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.stdin.as_mut().unwrap().write_all(b"go\n");
            let _ = child.kill();
            panic!("SIGQUIT did not quit the child once its runtime was dropped");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGQUIT), "{status:?}");
}

#[test]
fn sigquit_current_thread() {
    sigquit_prints_the_dump("current");
}

#[test]
fn sigquit_multi_thread() {
    sigquit_prints_the_dump("multi");
}

/// Runs `rt`'s tasks on a thread of their own (a current-thread runtime
/// runs them only in `block_on`) until `task` ends, then shuts it down.
/// Returns a handle for dumps and the thread.
fn drive_until_done(
    rt: Runtime,
    task: waitrt::task::JoinHandle<Result<(), waitrt::sync::Closed>>,
) -> (waitrt::Handle, std::thread::JoinHandle<()>) {
    let handle = rt.handle().clone();
    let driver = std::thread::spawn(move || {
        rt.block_on(async { task.await.unwrap().unwrap() });
        rt.shutdown_timeout(WATCHDOG);
    });
    (handle, driver)
}

/// What one task sleeps on, as the dump lists it: both waits of a task
/// asleep on two queues at once (the first goes to the task's own slot,
/// the second to the registry's shared map), and, once it wakes and sleeps
/// on a third queue, that one alone (the ended sleeps are no longer
/// listed). Unnamed queues, as most are.
fn current_sleeps_only(rt: Runtime) {
    let step = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let queues: Arc<[WaitQueue; 3]> = Arc::new(std::array::from_fn(|_| WaitQueue::new()));
    let ids: Vec<String> = queues
        .iter()
        .map(|q| format!("{:?}", waitrt::sync::hook::QueueId::of(q)))
        .collect();
    let task = {
        let (step, queues) = (step.clone(), queues.clone());
        TaskBuilder::new().name("two_then_one").spawn_on(
            async move {
                let first = queues[0].wait_event(|| step.load(SeqCst) >= 1);
                let second = queues[1].wait_event(|| step.load(SeqCst) >= 1);
                let (first, second) = futures::future::join(first, second).await;
                first.and(second)?;
                queues[2].wait_event(|| step.load(SeqCst) >= 2).await
            },
            rt.handle(),
        )
    };
    let id = task.id();
    let (handle, driver) = drive_until_done(rt, task);
    let queues_of = |dump: &Dump| -> Vec<String> {
        let mut listed: Vec<String> = dump
            .task(id)
            .map(|t| t.waits.iter().map(|w| format!("{:?}", w.queue)).collect())
            .unwrap_or_default();
        listed.sort();
        listed
    };
    let mut both = vec![ids[0].clone(), ids[1].clone()];
    both.sort();
    dump_until_on(&handle, |dump| queues_of(dump) == both);
    step.store(1, SeqCst);
    queues[0].wake_up_all();
    queues[1].wake_up_all();
    // It sleeps again, on the third queue: that one alone is listed. A
    // dump reads the registry's shared map before the tasks' slots, so
    // one taken while the task moves from its map-listed sleep to a slot
    // sleep may list both (the registry's docs: not an atomic snapshot);
    // the ended sleeps must be gone once the task is asleep again, or the
    // watchdog fails the test. (Found by CI: the first dump that showed
    // the third queue also showed the second.)
    let only_third = vec![ids[2].clone()];
    let dump = dump_until_on(&handle, |dump| queues_of(dump) == only_third);
    assert_eq!(queues_of(&dump), only_third, "{dump}");
    step.store(2, SeqCst);
    queues[2].wake_up_all();
    driver.join().unwrap();
}

#[test]
fn current_sleeps_only_current_thread() {
    current_sleeps_only(registry_runtime(1));
}

#[test]
fn current_sleeps_only_multi_thread() {
    current_sleeps_only(registry_runtime(2));
}

/// A task asleep on two oneshot receivers at once: the first receiver's
/// sleep goes to the task's slot, the second (the slot is taken) sleeps on
/// its channel's queue, listed in the registry's shared map; the dump
/// lists both. Once both values arrive and the task sleeps on a queue,
/// that queue alone is listed.
fn two_oneshot_sleeps_at_once(rt: Runtime) {
    let (tx1, rx1) = waitrt::sync::oneshot::channel::<()>();
    let (tx2, rx2) = waitrt::sync::oneshot::channel::<()>();
    let first_wait = async move {
        let (one, two) = futures::future::join(rx1, rx2).await;
        one.and(two).unwrap();
    };
    ended_sleep_unlisted(rt, &["oneshot", "oneshot"], first_wait, || {
        tx1.send(()).unwrap();
        tx2.send(()).unwrap();
    });
}

#[test]
fn two_oneshot_sleeps_at_once_current_thread() {
    two_oneshot_sleeps_at_once(registry_runtime(1));
}

#[test]
fn two_oneshot_sleeps_at_once_multi_thread() {
    two_oneshot_sleeps_at_once(registry_runtime(2));
}

/// Runs `first_wait` then a wait on a fresh unnamed queue in one task, and
/// checks the dump: the task is listed asleep on `first` (queues' names)
/// alone; once `wake` ends those sleeps and the task sleeps on the queue,
/// on the queue alone (the ended sleeps are no longer listed).
fn ended_sleep_unlisted<F>(rt: Runtime, first: &[&str], first_wait: F, wake: impl FnOnce())
where
    F: Future<Output = ()> + Send + 'static,
{
    let step = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let queue = Arc::new(WaitQueue::new());
    let queue_id = format!("{:?}", waitrt::sync::hook::QueueId::of(&queue));
    let task = {
        let (step, queue) = (step.clone(), queue.clone());
        TaskBuilder::new().name("first_then_queue").spawn_on(
            async move {
                first_wait.await;
                queue.wait_event(|| step.load(SeqCst) >= 1).await
            },
            rt.handle(),
        )
    };
    let id = task.id();
    let (handle, driver) = drive_until_done(rt, task);
    // A named queue by its name, an unnamed one by its address.
    let queues_of = |dump: &Dump| -> Vec<String> {
        dump.task(id)
            .map(|t| {
                t.waits
                    .iter()
                    .map(|w| {
                        w.queue_name
                            .map_or_else(|| format!("{:?}", w.queue), str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    dump_until_on(&handle, |dump| queues_of(dump) == first);
    wake();
    // A dump taken while the task's poll runs may list a sleep that poll
    // has ended beside the one it has begun (it reads the shared map
    // before the task's slot): wait for a dump that lists the queue alone.
    // An ended sleep left listed stays listed, and the watchdog reports it.
    dump_until_on(&handle, |dump| queues_of(dump) == [queue_id.as_str()]);
    step.store(1, SeqCst);
    queue.wake_up_all();
    driver.join().unwrap();
}

/// A sleep on an [`RcuWait`](waitrt::sync::RcuWait) that a wake from
/// another thread ends: the wake runs where the sleeper's slot is not
/// current, and the sleeper clears its record when it runs again.
fn rcuwait_sleep_ends_with_its_wake(workers: usize) {
    let go = Arc::new(AtomicBool::new(false));
    let rcu = Arc::new(waitrt::sync::RcuWait::named("obs_rcu"));
    let first_wait = {
        let (go, rcu) = (go.clone(), rcu.clone());
        async move { rcu.wait_event(|| go.load(SeqCst)).await.unwrap() }
    };
    ended_sleep_unlisted(registry_runtime(workers), &["obs_rcu"], first_wait, || {
        go.store(true, SeqCst);
        rcu.wake_up();
    });
}

#[test]
fn rcuwait_sleep_ends_with_its_wake_current_thread() {
    rcuwait_sleep_ends_with_its_wake(1);
}

#[test]
fn rcuwait_sleep_ends_with_its_wake_multi_thread() {
    rcuwait_sleep_ends_with_its_wake(2);
}

/// The same for a oneshot receiver, whose fast path writes its sleep into
/// the task's slot itself.
fn oneshot_sleep_ends_with_its_value(workers: usize) {
    let (tx, rx) = waitrt::sync::oneshot::channel::<()>();
    let first_wait = async move { rx.await.unwrap() };
    ended_sleep_unlisted(registry_runtime(workers), &["oneshot"], first_wait, || {
        tx.send(()).unwrap();
    });
}

#[test]
fn oneshot_sleep_ends_with_its_value_current_thread() {
    oneshot_sleep_ends_with_its_value(1);
}

#[test]
fn oneshot_sleep_ends_with_its_value_multi_thread() {
    oneshot_sleep_ends_with_its_value(2);
}

/// A `block_on` future's sleep is listed in its runtime's dump, under its
/// thread (as a plain thread's), from a slot of that thread's: not in the
/// registry's shared map, where it cost two locks and a hash insert per
/// sleep. Once the future's wait ends, it is no longer listed.
fn block_on_future_listed_from_its_slot(workers: usize) {
    static BLOCK_ON_Q: WaitQueue = WaitQueue::named("obs_block_on");
    let rt = registry_runtime(workers);
    let go = Arc::new(AtomicBool::new(false));
    let line = line!() + 8;
    std::thread::scope(|scope| {
        let sleeper = {
            let (rt, go) = (&rt, go.clone());
            std::thread::Builder::new()
                .name("obs-blockon".into())
                .spawn_scoped(scope, move || {
                    rt.block_on(async {
                        BLOCK_ON_Q.wait_event(|| go.load(SeqCst)).await.unwrap();
                    })
                })
                .unwrap()
        };
        let mine = |w: &&waitrt::sync::registry::Waiting| w.queue_name == Some("obs_block_on");
        // Until the watchdog; the sleeper is let go either way, so that a
        // failure fails the test rather than hanging the scope.
        let dump = dump_until_or_watchdog_blocking(&rt, |d| d.threads().iter().any(|w| mine(&w)));
        let in_map = waitrt::sync::registry::snapshot();
        go.store(true, SeqCst);
        BLOCK_ON_Q.wake_up_all();
        sleeper.join().unwrap();
        let w = dump.threads().iter().find(mine);
        let w = w.unwrap_or_else(|| panic!("the block_on future is not listed:\n{dump}"));
        assert_eq!(w.thread.as_ref().unwrap().name(), Some("obs-blockon"));
        assert_eq!(w.task, None);
        assert_eq!(w.kind.to_string(), "wait_event");
        assert_eq!(
            (file_of(w.site).as_str(), w.site.line()),
            ("tests/obs_dump.rs", line)
        );
        assert!(!in_map.iter().any(|w| mine(&w)), "listed in the shared map");
        assert!(!rt.handle().dump().threads().iter().any(|w| mine(&w)));
    });
}

#[test]
fn block_on_future_listed_from_its_slot_current_thread() {
    block_on_future_listed_from_its_slot(1);
}

#[test]
fn block_on_future_listed_from_its_slot_multi_thread() {
    block_on_future_listed_from_its_slot(2);
}

/// A join handle polled once in task A (it sleeps on the join, listed in
/// A's slot) and handed to task B, which awaits it or drops it once the
/// joined task is released: A is listed on its own later sleep alone. The
/// wake at the joined task's end cannot reach A's slot, and B's end of the
/// wait cleared only B's: A was listed on the join for as long as it
/// lived, its later sleeps going to the shared map (an independent review).
fn join_handle_moved_between_tasks(workers: usize, drop_it: bool) {
    use waitrt::sync::oneshot;
    let rt = registry_runtime(workers);
    rt.block_on(async {
        let (park_tx, park_rx) = oneshot::channel::<()>();
        let (go_tx, go_rx) = oneshot::channel::<()>();
        let (handle_tx, handle_rx) = oneshot::channel::<waitrt::task::JoinHandle<i32>>();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let taker = waitrt::spawn(async move {
            let joined = handle_rx.await.unwrap();
            done_rx.await.unwrap();
            if drop_it {
                drop(joined);
            } else {
                assert_eq!(joined.await.unwrap(), 1);
            }
        });
        let first = TaskBuilder::new()
            .name("polled_the_join")
            .spawn(async move {
                let mut joined = waitrt::spawn(async move {
                    go_rx.await.unwrap();
                    1
                });
                assert!(futures::poll!(&mut joined).is_pending());
                handle_tx.send(joined).unwrap();
                // Only now: sent from `block_on`, the go let the joined task
                // end on the other worker before this poll, which then
                // found it finished.
                go_tx.send(()).unwrap();
                park_rx.await.unwrap();
            });
        done_tx.send(()).unwrap();
        taker.await.unwrap();
        let first_id = first.id();
        // Until the watchdog; the first task is let go either way.
        let dump = dump_until_or_watchdog(&rt, |d| queue_names(d, first_id) == ["oneshot"]).await;
        park_tx.send(()).unwrap();
        first.await.unwrap();
        assert_eq!(queue_names(&dump, first_id), ["oneshot"], "{dump}");
    });
}

#[test]
fn join_handle_awaited_in_another_task_current_thread() {
    join_handle_moved_between_tasks(1, false);
}

#[test]
fn join_handle_awaited_in_another_task_multi_thread() {
    join_handle_moved_between_tasks(2, false);
}

#[test]
fn join_handle_dropped_in_another_task_current_thread() {
    join_handle_moved_between_tasks(1, true);
}

#[test]
fn join_handle_dropped_in_another_task_multi_thread() {
    join_handle_moved_between_tasks(2, true);
}

/// A oneshot receiver polled once in task A (its fast path lists the
/// sleep in A's slot) and handed to task B, which receives the value: A
/// is listed on its own later sleep alone (it stayed listed on the oneshot
/// for as long as it lived).
fn oneshot_receiver_moved_between_tasks(workers: usize) {
    use waitrt::sync::oneshot;
    let rt = registry_runtime(workers);
    rt.block_on(async {
        let (park_tx, park_rx) = oneshot::channel::<()>();
        let (value_tx, value_rx) = oneshot::channel::<i32>();
        let (rx_tx, rx_rx) = oneshot::channel::<oneshot::Receiver<i32>>();
        // The value is sent once the receiver has slept in the first task.
        let taker = waitrt::spawn(async move {
            let value_rx = rx_rx.await.unwrap();
            value_tx.send(7).unwrap();
            value_rx.await.unwrap()
        });
        let first = waitrt::spawn(async move {
            let mut value_rx = value_rx;
            assert!(futures::poll!(&mut value_rx).is_pending());
            rx_tx.send(value_rx).unwrap();
            PARKED
                .wait_event(|| park_rx.is_terminated() || !park_rx.is_empty())
                .await
                .unwrap();
        });
        assert_eq!(taker.await.unwrap(), 7);
        let first_id = first.id();
        let dump =
            dump_until_or_watchdog(&rt, |d| queue_names(d, first_id) == ["obs_parked"]).await;
        park_tx.send(()).unwrap();
        PARKED.wake_up_all();
        first.await.unwrap();
        assert_eq!(queue_names(&dump, first_id), ["obs_parked"], "{dump}");
    });
}

static PARKED: WaitQueue = WaitQueue::named("obs_parked");

#[test]
fn oneshot_receiver_moved_between_tasks_current_thread() {
    oneshot_receiver_moved_between_tasks(1);
}

#[test]
fn oneshot_receiver_moved_between_tasks_multi_thread() {
    oneshot_receiver_moved_between_tasks(2);
}

/// A join handle polled in one `block_on` call and awaited, beside a
/// wait of its own, in the next call on the same thread: the second call's
/// first sleep writes over the first call's record (another owner), and
/// the join's sleep is listed anew. It was listed nowhere (the join took
/// its old record, written over, for a live one: an independent review).
fn join_sleep_listed_in_a_second_block_on(workers: usize) {
    static SECOND_Q: WaitQueue = WaitQueue::named("obs_second_block_on");
    let rt = registry_runtime(workers);
    let go = Arc::new(AtomicBool::new(false));
    let joined = {
        let go = go.clone();
        rt.spawn(async move {
            let start = Instant::now();
            while !go.load(SeqCst) && start.elapsed() < WATCHDOG {
                waitrt::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    // The dump lists every plain thread's sleeps: this test's by name.
    let thread_name = format!("obs-second-block-on-{workers}");
    std::thread::scope(|scope| {
        let sleeper = {
            let (rt, go) = (&rt, go.clone());
            let builder = std::thread::Builder::new().name(thread_name.clone());
            builder.spawn_scoped(scope, move || {
                let mut joined = joined;
                // The first call sleeps on the join and returns.
                let first_poll = rt.block_on(async { futures::poll!(&mut joined) });
                assert!(first_poll.is_pending());
                rt.block_on(async {
                    let queue = SECOND_Q.wait_event(|| go.load(SeqCst));
                    let (queue, join) = futures::future::join(queue, &mut joined).await;
                    queue.unwrap();
                    join.unwrap();
                });
            })
        };
        let sleeper = sleeper.unwrap();
        let waits = |dump: &Dump| -> Vec<&str> {
            let mine = dump
                .threads()
                .iter()
                .filter(|w| w.thread.as_ref().and_then(|t| t.name()) == Some(thread_name.as_str()));
            let mut names: Vec<_> = mine.filter_map(|w| w.queue_name).collect();
            names.sort_unstable();
            names
        };
        let both = |d: &Dump| waits(d) == ["join", "obs_second_block_on"];
        let dump = dump_until_or_watchdog_blocking(&rt, both);
        go.store(true, SeqCst);
        SECOND_Q.wake_up_all();
        sleeper.join().unwrap();
        assert_eq!(waits(&dump), ["join", "obs_second_block_on"], "{dump}");
    });
}

#[test]
fn join_sleep_listed_in_a_second_block_on_current_thread() {
    join_sleep_listed_in_a_second_block_on(1);
}

#[test]
fn join_sleep_listed_in_a_second_block_on_multi_thread() {
    join_sleep_listed_in_a_second_block_on(2);
}

/// A task that polls a socket's read (it sleeps: the waker is stored,
/// the sleep listed in its slot) and then drops the socket: the drop ends
/// that sleep, and the task is listed on its later sleep alone. It stayed
/// listed on `tcp_stream_readable` for as long as it lived.
fn dropped_socket_ends_its_poll_sleep(workers: usize) {
    let rt = registry_runtime(workers);
    rt.block_on(async {
        let listener = waitrt::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (park_tx, park_rx) = waitrt::sync::oneshot::channel::<()>();
        let reader = waitrt::spawn(async move {
            use futures::AsyncReadExt;
            let mut stream = waitrt::net::TcpStream::connect(addr).await.unwrap();
            let mut buf = [0u8; 8];
            assert!(futures::poll!(stream.read(&mut buf)).is_pending());
            drop(stream);
            PARKED_AFTER_DROP
                .wait_event(|| park_rx.is_terminated() || !park_rx.is_empty())
                .await
                .unwrap();
        });
        let (_peer, _) = listener.accept().await.unwrap();
        let id = reader.id();
        let parked = |d: &Dump| queue_names(d, id) == ["obs_parked_after_drop"];
        let dump = dump_until_or_watchdog(&rt, parked).await;
        park_tx.send(()).unwrap();
        PARKED_AFTER_DROP.wake_up_all();
        reader.await.unwrap();
        assert_eq!(queue_names(&dump, id), ["obs_parked_after_drop"], "{dump}");
    });
}

static PARKED_AFTER_DROP: WaitQueue = WaitQueue::named("obs_parked_after_drop");

#[test]
fn dropped_socket_ends_its_poll_sleep_current_thread() {
    dropped_socket_ends_its_poll_sleep(1);
}

#[test]
fn dropped_socket_ends_its_poll_sleep_multi_thread() {
    dropped_socket_ends_its_poll_sleep(2);
}

/// A oneshot receiver polled once (its fast path lists the sleep in the
/// task's slot) and then received another way: with `recv_timeout` it is
/// listed once, on the channel's queue (it was listed twice, the slot's
/// record beside the queue's); after a `try_recv` that finds nothing, the
/// task parked elsewhere is listed there alone (an independent review).
fn oneshot_fast_sleep_ends_with_another_receive(workers: usize, timed: bool) {
    use waitrt::sync::oneshot;
    let rt = registry_runtime(workers);
    rt.block_on(async {
        let (value_tx, mut value_rx) = oneshot::channel::<i32>();
        let (park_tx, park_rx) = oneshot::channel::<()>();
        let task = waitrt::spawn(async move {
            assert!(futures::poll!(&mut value_rx).is_pending());
            if timed {
                let got = value_rx.recv_timeout(WATCHDOG).await;
                assert_eq!(got.unwrap(), Ok(7));
            } else {
                assert!(value_rx.try_recv().is_err());
                PARKED_AFTER_TRY
                    .wait_event(|| park_rx.is_terminated() || !park_rx.is_empty())
                    .await
                    .unwrap();
            }
        });
        let id = task.id();
        let want: &[&str] = if timed {
            &["oneshot"]
        } else {
            &["obs_parked_after_try"]
        };
        let dump = dump_until_or_watchdog(&rt, |d| queue_names(d, id) == want).await;
        value_tx.send(7).unwrap();
        // Timed, the task may have received and ended (dropping `park_rx`)
        // on another worker already: then this send finds no receiver.
        let _ = park_tx.send(());
        PARKED_AFTER_TRY.wake_up_all();
        task.await.unwrap();
        assert_eq!(queue_names(&dump, id), want, "{dump}");
    });
}

static PARKED_AFTER_TRY: WaitQueue = WaitQueue::named("obs_parked_after_try");

#[test]
fn oneshot_fast_sleep_ends_with_recv_timeout_current_thread() {
    oneshot_fast_sleep_ends_with_another_receive(1, true);
}

#[test]
fn oneshot_fast_sleep_ends_with_recv_timeout_multi_thread() {
    oneshot_fast_sleep_ends_with_another_receive(2, true);
}

#[test]
fn oneshot_fast_sleep_ends_with_try_recv_current_thread() {
    oneshot_fast_sleep_ends_with_another_receive(1, false);
}

#[test]
fn oneshot_fast_sleep_ends_with_try_recv_multi_thread() {
    oneshot_fast_sleep_ends_with_another_receive(2, false);
}

/// A oneshot receiver that slept on its channel's queue (its task's slot
/// was taken by another sleep) and is polled again once the slot is free
/// is listed once: it stays on the queue, where it was listed, rather
/// than listing the same sleep a second time in the slot.
fn oneshot_listed_once_after_its_slot_frees(workers: usize) {
    use waitrt::sync::oneshot;
    let rt = registry_runtime(workers);
    rt.block_on(async {
        let (first_tx, first_rx) = oneshot::channel::<()>();
        let (second_tx, second_rx) = oneshot::channel::<()>();
        let both = waitrt::spawn(async move {
            let (one, two) = futures::future::join(first_rx, second_rx).await;
            one.and(two).unwrap();
        });
        let id = both.id();
        let oneshots = |dump: &Dump| {
            dump.task(id).map_or(0, |t| {
                t.waits
                    .iter()
                    .filter(|w| w.queue_name == Some("oneshot"))
                    .count()
            })
        };
        dump_until_or_watchdog(&rt, |d| oneshots(d) == 2).await;
        // The first value frees the slot; the second receiver is polled again.
        first_tx.send(()).unwrap();
        let dump = dump_until_or_watchdog(&rt, |d| oneshots(d) == 1).await;
        second_tx.send(()).unwrap();
        both.await.unwrap();
        assert_eq!(oneshots(&dump), 1, "{dump}");
    });
}

#[test]
fn oneshot_listed_once_after_its_slot_frees_current_thread() {
    oneshot_listed_once_after_its_slot_frees(1);
}

#[test]
fn oneshot_listed_once_after_its_slot_frees_multi_thread() {
    oneshot_listed_once_after_its_slot_frees(2);
}

/// A task that ends with its wait still listed (the wait future leaked,
/// so nothing unlisted it) leaves its record in the sleep slot under its
/// task key, which the runtime no longer clears when a task ends: the
/// tasks spawned next, one of which gets that key, must neither show that
/// record as their own nor lose their own sleeps to it.
fn ended_task_record_is_not_the_next_tasks(workers: usize) {
    static LEFT: WaitQueue = WaitQueue::named("left_behind");
    static NEXT: WaitQueue = WaitQueue::named("next_task_queue");
    /// More than the owned-task list's shards (16): a key is picked by
    /// the task id's shard, so one of these reuses the leaker's.
    const NEXT_TASKS: usize = 64;
    let rt = registry_runtime(workers);
    let leaker = rt.spawn(async {
        let mut wait = Box::pin(LEFT.wait_event(|| false));
        assert!(futures::poll!(wait.as_mut()).is_pending());
        std::mem::forget(wait); // listed, and never unlisted
    });
    rt.block_on(leaker).unwrap();
    let next: Vec<_> = (0..NEXT_TASKS)
        .map(|_| {
            rt.spawn(async {
                waitrt::task::yield_now().await;
                NEXT.wait_event(|| false).await
            })
        })
        .collect();
    let waits_of = |dump: &Dump| -> Vec<Vec<Option<&'static str>>> {
        next.iter()
            .map(|task| {
                dump.task(task.id())
                    .map(|t| t.waits.iter().map(|w| w.queue_name).collect())
                    .unwrap_or_default()
            })
            .collect()
    };
    // Whether they slept yet or not, none lists the leaked sleep.
    let dump = rt.handle().dump();
    let waits = waits_of(&dump);
    assert!(
        !waits
            .iter()
            .flatten()
            .any(|&name| name == Some("left_behind")),
        "{dump}"
    );
    // Each one's own sleep is listed, and only it.
    let dump = dump_until(&rt, |dump| {
        rt.block_on(waitrt::task::yield_now());
        waits_of(dump).iter().all(|waits| !waits.is_empty())
    });
    for waits in waits_of(&dump) {
        assert_eq!(waits, vec![Some("next_task_queue")], "{dump}");
    }
    for task in next {
        task.abort();
    }
}

#[test]
fn ended_task_record_is_not_the_next_tasks_current_thread() {
    ended_task_record_is_not_the_next_tasks(1);
}

#[test]
fn ended_task_record_is_not_the_next_tasks_multi_thread() {
    ended_task_record_is_not_the_next_tasks(2);
}

/// A task that joins a `JoinSet` sleeps on the set: the dump lists one
/// wait, on `join_set`, at the `join_next` call. It listed the task asleep
/// on every pending member's `join` instead, and kept those listed after a
/// `try_join_next` (which never waits) and after a `join_next` dropped by
/// an expired `timeout`, while the task slept elsewhere (an independent
/// probe: an accept loop that reaps its connections with `try_join_next`
/// was listed, and reported hung, on each connection's join).
fn a_join_set_is_one_wait(rt: Runtime) {
    static PARK: WaitQueue = WaitQueue::named("obs_joinset_park");
    let step = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let join_line = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let task = {
        let (step, join_line) = (step.clone(), join_line.clone());
        TaskBuilder::new().name("joiner").spawn_on(
            async move {
                let mut set = waitrt::task::JoinSet::new();
                for _ in 0..3 {
                    set.spawn(waitrt::time::sleep(WATCHDOG * 2));
                }
                assert!(set.try_join_next().is_none());
                let short = Duration::from_millis(5);
                assert!(waitrt::time::timeout(short, set.join_next()).await.is_err());
                PARK.wait_event(|| step.load(SeqCst) >= 1).await?;
                let next = {
                    join_line.store(line!() + 1, SeqCst);
                    set.join_next()
                };
                let stop = PARK.wait_event(|| step.load(SeqCst) >= 2);
                futures::pin_mut!(next, stop);
                // Until the test says stop (the members never end).
                let _ = futures::future::select(next, stop).await;
                Ok(())
            },
            rt.handle(),
        )
    };
    let id = task.id();
    let (handle, driver) = drive_until_done(rt, task);
    let waits_of = |dump: &Dump| -> Vec<String> {
        let mut listed: Vec<String> = dump
            .task(id)
            .map(|t| {
                t.waits
                    .iter()
                    .map(|w| format!("{} at {}", w.queue_name.unwrap_or("?"), w.site.line()))
                    .collect()
            })
            .unwrap_or_default();
        listed.sort();
        listed
    };
    // Asleep on PARK alone: nothing left listed by the try or the
    // abandoned join.
    let dump = dump_until_on(&handle, |dump| {
        waits_of(dump)
            .iter()
            .any(|w| w.starts_with("obs_joinset_park"))
    });
    let parked = waits_of(&dump);
    assert_eq!(parked.len(), 1, "{dump}");
    step.store(1, SeqCst);
    PARK.wake_up_all();
    // In join_next (and the stop wait beside it): one wait on the set,
    // at the user's line, and no member's join. Waited for, not asserted
    // on the first dump that lists the set: a dump taken while the task's
    // poll runs may list the set's wait before the stop wait is linked
    // (the clean-clone CI's flake hunt: 4 of 300 runs). A wait listed
    // wrongly stays listed, and the watchdog reports it with the dump.
    let one_set_wait = |listed: &[String]| {
        // Stored by the task before it makes the join.
        let line = join_line.load(SeqCst);
        listed.len() == 2
            && listed.contains(&format!("join_set at {line}"))
            && !listed.iter().any(|w| w.starts_with("join "))
    };
    dump_until_on(&handle, |dump| one_set_wait(&waits_of(dump)));
    step.store(2, SeqCst);
    PARK.wake_up_all();
    driver.join().unwrap();
}

#[test]
fn a_join_set_is_one_wait_current_thread() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    a_join_set_is_one_wait(registry_runtime(1));
}

#[test]
fn a_join_set_is_one_wait_multi_thread() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    a_join_set_is_one_wait(registry_runtime(2));
}

/// The tasks of a [`LocalSet`](waitrt::task::LocalSet) are listed in the
/// dump of the runtime that drives the set, each with its own id, spawn
/// site, waits and timers, and the task that drives the set (here a
/// `block_on` future); not as the driving thread's waits. Once the set is
/// gone, so are they.
fn local_tasks_listed(rt: Runtime) {
    /// Releases the sleeper when dropped, also when an assertion fails:
    /// the scope then joins the driving thread instead of hanging.
    struct Release(Arc<AtomicBool>, Arc<WaitQueue>);
    impl Drop for Release {
        fn drop(&mut self) {
            self.0.store(true, SeqCst);
            self.1.wake_up_all();
        }
    }
    // One queue per run: both flavours run at once, and a wake from the
    // other's release made this one's sleeper briefly runnable (the flake
    // hunt: 22 of 300 runs).
    let local_q = Arc::new(WaitQueue::named("obs_local"));
    let release = Arc::new(AtomicBool::new(false));
    let (ids_tx, ids_rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        let releaser = Release(release.clone(), local_q.clone());
        let driver = {
            let (rt, release, local_q) = (&rt, release.clone(), local_q.clone());
            scope.spawn(move || {
                let local = waitrt::task::LocalSet::new();
                let line = line!() + 1;
                let sleeper = local.spawn_local(async move {
                    local_q.wait_event(|| release.load(SeqCst)).await.unwrap()
                });
                let timer = local.spawn_local(async {
                    waitrt::time::sleep(Duration::from_secs(3600)).await;
                });
                ids_tx.send((sleeper.id(), timer.id(), line)).unwrap();
                local.block_on(rt, sleeper).unwrap();
                // `timer` is dropped with the set.
            })
        };
        let (sleeper, timer, line) = ids_rx.recv_timeout(WATCHDOG).unwrap();
        let dump = dump_until(&rt, |d| {
            d.task(sleeper).is_some_and(|t| !t.waits.is_empty())
                && d.task(timer).is_some_and(|t| !t.timers.is_empty())
        });
        let t = dump.task(sleeper).unwrap();
        assert_eq!(t.local_to, Some(waitrt::task::Id::BLOCK_ON_FUTURE));
        assert_eq!(file_of(t.spawned_at), "tests/obs_dump.rs");
        assert_eq!(t.spawned_at.line(), line);
        assert_eq!(t.status, TaskStatus::Idle);
        assert_eq!(t.waits.len(), 1, "{dump}");
        let w = &t.waits[0];
        assert_eq!(w.queue_name, Some("obs_local"));
        assert_eq!(w.task, Some(sleeper.to_string().parse().unwrap()));
        assert_eq!(file_of(w.site), "tests/obs_dump.rs");
        let t = dump.task(timer).unwrap();
        assert_eq!(t.local_to, Some(waitrt::task::Id::BLOCK_ON_FUTURE));
        assert_eq!(t.timers.len(), 1);
        assert!(t.waits.is_empty(), "{dump}");
        // The driving thread does not wear the local task's wait.
        assert!(
            !dump
                .threads()
                .iter()
                .any(|w| w.queue_name == Some("obs_local")),
            "{dump}"
        );
        let text = dump.to_string();
        let wait_line = format!("task {sleeper} [wait_event on obs_local, ");
        assert!(text.contains(&wait_line), "{text}");
        assert!(text.contains(", local to the block_on future"), "{text}");
        drop(releaser);
        driver.join().unwrap();
        let dump = rt.handle().dump();
        assert!(dump.task(sleeper).is_none(), "{dump}");
        assert!(dump.task(timer).is_none(), "{dump}");
    });
}

#[test]
fn local_tasks_listed_current_thread() {
    local_tasks_listed(registry_runtime(1));
}

#[test]
fn local_tasks_listed_multi_thread() {
    local_tasks_listed(registry_runtime(2));
}
