//! Process signals routed to tasks: `SIGTERM`/`SIGINT` end the routed
//! tasks' interruptible and killable waits; `recv()` and `ctrl_c()` wake
//! on the next signal after their call.
//!
//! Every test signals a child process, never this one: each `#[test]`
//! re-runs this binary on itself alone ([`in_child`]), with an environment
//! variable that makes the test run its body there. The parent only waits
//! for the child, under a watchdog, and reports its output.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use waitrt::signal::{self, ProcessSignal};
use waitrt::sync::{SignalKind, WaitQueue};

static NEVER: WaitQueue = WaitQueue::new();

/// Names the test whose body this process runs (set in children only).
const CHILD: &str = "RT_SIGNAL_CHILD";

/// Runs `body` in a child process: the test binary, re-run on test `name`
/// alone with [`CHILD`] set; in that child, runs `body` itself. With
/// `nofile`, the child runs with that many file descriptors at most
/// (`ulimit -n`). The parent fails if the child fails or outlives the
/// watchdog (a minute; the bodies take milliseconds), or runs no test.
fn in_child(name: &str, nofile: Option<u32>, body: impl FnOnce()) {
    if std::env::var(CHILD).as_deref() == Ok(name) {
        body();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut command = match nofile {
        None => Command::new(exe),
        Some(n) => {
            let mut sh = Command::new("/bin/sh");
            sh.arg("-c")
                .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                .arg(exe);
            sh
        }
    };
    command
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (status, output) = support::run_with_watchdog(command);
    assert!(
        status.is_some_and(|s| s.success()),
        "child for `{name}` failed ({status:?}):\n{output}"
    );
    // The child ran the body, not an empty filter.
    assert!(output.contains("1 passed"), "child for `{name}`:\n{output}");
}

/// Polls `done` up to 2,000 times, 5 ms apart; whether it became true.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..2000 {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    done()
}

/// A watchdog for an await in a child: far longer than any test needs.
const WATCHDOG: Duration = Duration::from_secs(30);

#[test]
fn process_signals_reach_routed_tasks() {
    in_child("process_signals_reach_routed_tasks", None, || {
        let rt = waitrt::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            // SIGTERM as an interrupt ends an interruptible wait.
            let interruptible = waitrt::spawn(async {
                let signals = waitrt::task::signals();
                NEVER.wait_event_interruptible(&signals, || false).await
            });
            // SIGTERM as a kill ends a killable wait (an interrupt would not).
            let killable = waitrt::spawn(async {
                let signals = waitrt::task::signals();
                NEVER.wait_event_killable(&signals, || false).await
            });
            signal::route(
                ProcessSignal::Terminate,
                &interruptible.abort_handle(),
                SignalKind::Interrupt,
            )
            .unwrap();
            signal::route(
                ProcessSignal::Terminate,
                &killable.abort_handle(),
                SignalKind::Kill,
            )
            .unwrap();
            // Not routed: must keep sleeping.
            let bystander = waitrt::spawn(async {
                let signals = waitrt::task::signals();
                NEVER.wait_event_interruptible(&signals, || false).await
            });
            signal::raise(ProcessSignal::Terminate).unwrap();
            let err = interruptible.await.unwrap().unwrap_err();
            assert!(!err.is_closed() && !err.is_fatal(), "{err:?}");
            let err = killable.await.unwrap().unwrap_err();
            assert!(!err.is_closed(), "{err:?}");
            assert!(!bystander.is_finished());
            bystander.abort();
            assert!(bystander.await.unwrap_err().is_cancelled());

            // ctrl_c() wakes on the next SIGINT after its call.
            let waiter = waitrt::spawn(signal::ctrl_c());
            signal::raise(ProcessSignal::CtrlC).unwrap();
            waitrt::time::timeout(WATCHDOG, waiter)
                .await
                .expect("ctrl_c() saw no SIGINT")
                .unwrap()
                .unwrap();
        });
    });
}

// A routed task must not keep its runtime alive: with its runtime dropped,
// the reactor's file descriptors are closed. Under `ulimit -n 64`, making
// and dropping 200 runtimes with I/O (each holds an epoll fd and a waker
// fd), each with a routed, finished task, runs out of descriptors if the
// routes keep the runtimes.
#[test]
fn routes_do_not_keep_dropped_runtimes() {
    in_child("routes_do_not_keep_dropped_runtimes", Some(64), || {
        for i in 0..200 {
            let rt = waitrt::Builder::new_current_thread()
                .enable_io()
                .build()
                .unwrap_or_else(|e| panic!("runtime {i}: {e}"));
            rt.block_on(async {
                let task = waitrt::spawn(async {});
                signal::route(
                    ProcessSignal::Terminate,
                    &task.abort_handle(),
                    SignalKind::Interrupt,
                )
                .unwrap();
                task.await.unwrap();
            });
        }
    });
}

// The listener's first failure is not for ever: with no file descriptor
// left (the self-pipe needs two), `route`, `recv` and `raise` fail; once
// descriptors are free again, they work, and SIGINT reaches the runtime.
#[test]
fn signal_listener_retries_after_fd_exhaustion() {
    in_child(
        "signal_listener_retries_after_fd_exhaustion",
        Some(64),
        || {
            let rt = waitrt::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_time()
                .build()
                .unwrap();
            let task = rt.spawn(async {
                let signals = waitrt::task::signals();
                NEVER.wait_event_interruptible(&signals, || false).await
            });
            let mut files = Vec::new();
            for _ in 0..100_000 {
                match std::fs::File::open("/dev/null") {
                    Ok(file) => files.push(file),
                    Err(e) => {
                        assert_eq!(e.raw_os_error(), Some(24), "{e}"); // EMFILE
                        break;
                    }
                }
            }
            let routed = signal::route(
                ProcessSignal::CtrlC,
                &task.abort_handle(),
                SignalKind::Interrupt,
            );
            assert!(routed.is_err(), "route worked without descriptors");
            assert!(rt.block_on(signal::recv(ProcessSignal::CtrlC)).is_err());
            assert!(signal::raise(ProcessSignal::CtrlC).is_err());
            drop(files);

            signal::route(
                ProcessSignal::CtrlC,
                &task.abort_handle(),
                SignalKind::Interrupt,
            )
            .expect("route failed after descriptors were freed");
            let ctrl_c = signal::ctrl_c();
            signal::raise(ProcessSignal::CtrlC).unwrap();
            rt.block_on(async {
                waitrt::time::timeout(WATCHDOG, ctrl_c)
                    .await
                    .expect("ctrl_c() saw no SIGINT")
                    .unwrap();
                let err = task.await.unwrap().unwrap_err();
                assert!(!err.is_fatal(), "{err:?}");
            });
        },
    );
}

// `recv` and `ctrl_c` count from their call, not from their first poll: a
// signal delivered between the two completes them.
#[test]
fn recv_and_ctrl_c_register_at_the_call() {
    in_child("recv_and_ctrl_c_register_at_the_call", None, || {
        let rt = waitrt::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .unwrap();
        // A routed task per signal: once it has ended, the listener has
        // counted the delivery.
        let witness = |signal| {
            let task = rt.spawn(async {
                let signals = waitrt::task::signals();
                NEVER.wait_event_interruptible(&signals, || false).await
            });
            signal::route(signal, &task.abort_handle(), SignalKind::Interrupt).unwrap();
            task
        };
        let term_seen = witness(ProcessSignal::Terminate);
        let int_seen = witness(ProcessSignal::CtrlC);
        let term = signal::recv(ProcessSignal::Terminate);
        let int = signal::ctrl_c();
        signal::raise(ProcessSignal::Terminate).unwrap();
        signal::raise(ProcessSignal::CtrlC).unwrap();
        assert!(eventually(
            || term_seen.is_finished() && int_seen.is_finished()
        ));
        rt.block_on(async {
            waitrt::time::timeout(WATCHDOG, term)
                .await
                .expect("recv() missed the SIGTERM after its call")
                .unwrap();
            waitrt::time::timeout(WATCHDOG, int)
                .await
                .expect("ctrl_c() missed the SIGINT after its call")
                .unwrap();
        });
    });
}

// `ctrl_c()` takes over `SIGINT` only: `SIGTERM` keeps its default action
// and kills the process, as under tokio (it took over both, so a service
// ported from tokio that awaited only Ctrl-C ignored `docker stop`: an
// independent probe). The child raises `SIGTERM` on itself (never this
// process) while its `ctrl_c()` listens, and must die of it.
#[test]
fn ctrl_c_leaves_sigterm_its_default_action() {
    const NAME: &str = "ctrl_c_leaves_sigterm_its_default_action";
    if std::env::var(CHILD).as_deref() == Ok(NAME) {
        let rt = waitrt::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let _listening = signal::ctrl_c();
            // SAFETY: raise(3) on this child process, no other effect.
            assert_eq!(unsafe { libc::raise(libc::SIGTERM) }, 0);
            // Not reached: the default action ends the process.
            std::thread::sleep(Duration::from_secs(30));
        });
        return;
    }
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, NAME)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (status, output) = support::run_with_watchdog(command);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.and_then(|s| s.signal()),
        Some(libc::SIGTERM),
        "the child survived SIGTERM ({status:?}):\n{output}"
    );
}

use support::PanickingWaker;

// A signal stream's waker that panics does not cost the delivery its
// routes: the routed task's interruptible wait still ends (an independent
// probe: it stayed asleep, the routes skipped), and the next delivery
// works too.
#[test]
fn a_panicking_stream_waker_does_not_skip_the_routes() {
    in_child(
        "a_panicking_stream_waker_does_not_skip_the_routes",
        None,
        || {
            let rt = waitrt::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_time()
                .build()
                .unwrap();
            rt.block_on(async {
                let kind = waitrt::signal::unix::SignalKind::terminate();
                let mut doomed = waitrt::signal::unix::signal(kind).unwrap();
                let waker = std::task::Waker::from(std::sync::Arc::new(PanickingWaker));
                let polled = doomed.poll_recv(&mut std::task::Context::from_waker(&waker));
                assert!(polled.is_pending());
                let routed = waitrt::spawn(async {
                    let signals = waitrt::task::signals();
                    NEVER.wait_event_interruptible(&signals, || false).await
                });
                signal::route(
                    ProcessSignal::Terminate,
                    &routed.abort_handle(),
                    SignalKind::Interrupt,
                )
                .unwrap();
                signal::raise(ProcessSignal::Terminate).unwrap();
                let ended = waitrt::time::timeout(WATCHDOG, routed).await;
                let err = ended
                    .expect("the routed wait never ended")
                    .unwrap()
                    .unwrap_err();
                assert!(!err.is_closed(), "{err:?}");
                // The listener goes on: a second delivery reaches a new stream.
                let mut next = waitrt::signal::unix::signal(kind).unwrap();
                let recv = waitrt::spawn(async move { next.recv().await });
                signal::raise(ProcessSignal::Terminate).unwrap();
                let got = waitrt::time::timeout(WATCHDOG, recv).await;
                assert_eq!(got.expect("no second delivery").unwrap(), Some(()));
                drop(doomed);
            });
        },
    );
}

// A task whose interruptible or killable wait ends without a signal keeps
// its waker in its own signal set (for the next signal); once the task
// ends, that waker must not keep the task, and through it the runtime,
// alive: an independent fuzz run found every such runtime left behind
// with its descriptors (3 per runtime). Counted in a child process, where
// no other test opens descriptors meanwhile.
#[test]
fn an_interruptible_wait_that_ends_unsignalled_leaks_no_runtime() {
    in_child(
        "an_interruptible_wait_that_ends_unsignalled_leaks_no_runtime",
        None,
        || {
            let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
            let before = fds();
            for multi in [false, true] {
                for _ in 0..20 {
                    let rt = match multi {
                        false => waitrt::Builder::new_current_thread().enable_all().build(),
                        true => waitrt::Builder::new_multi_thread()
                            .worker_threads(1)
                            .enable_all()
                            .build(),
                    }
                    .unwrap();
                    rt.block_on(async {
                        let lock = std::sync::Arc::new(waitrt::sync::Mutex::new(0));
                        let held = lock.clone().lock_owned().await;
                        let waiter = {
                            let lock = lock.clone();
                            waitrt::spawn(async move {
                                *lock.lock_interruptible().await.unwrap() += 1;
                                *lock.lock_killable().await.unwrap() += 1;
                            })
                        };
                        waitrt::task::yield_now().await;
                        drop(held); // granted: the wait ends without a signal
                        waiter.await.unwrap();
                    });
                    drop(rt);
                }
            }
            assert_eq!(fds(), before, "runtimes left behind with their descriptors");
        },
    );
}
