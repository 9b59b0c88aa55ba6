//! Any Unix signal as a stream (`signal::unix::signal`), and `unroute`.
//!
//! Every test signals a child process, never this one: each `#[test]`
//! re-runs this binary on itself alone ([`in_child`]), with an environment
//! variable that makes the test run its body there; in the child the
//! signals come from `kill` run by `/bin/sh` (another process), or from
//! the child's own exiting children (`SIGCHLD`). The parent only waits
//! for the child, under a watchdog, and reports its output.

mod support;

use std::future::Future;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use waitrt::signal::unix::{signal, Signal, SignalKind};
use waitrt::signal::{self as rt_signal, ProcessSignal};
use waitrt::sync::WaitQueue;

static NEVER: WaitQueue = WaitQueue::new();

/// Names the test whose body this process runs (set in children only).
const CHILD: &str = "RT_SIGNAL_STREAM_CHILD";

/// A watchdog for an await in a child: far longer than any test needs.
const WATCHDOG: Duration = Duration::from_secs(30);

/// Runs `body` in a child process (this binary, re-run on test `name`
/// alone with [`CHILD`] set); in that child, runs `body` itself. Gives the
/// child's status (`None`: killed by the one-minute watchdog) and output.
fn run_child(name: &str, body: impl FnOnce()) -> Option<(Option<ExitStatus>, String)> {
    if std::env::var(CHILD).as_deref() == Ok(name) {
        body();
        return None;
    }
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Some(support::run_with_watchdog(command))
}

/// [`run_child`], and the child must pass its one test.
fn in_child(name: &str, body: impl FnOnce()) {
    let Some((status, output)) = run_child(name, body) else {
        return;
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "child for `{name}` failed ({status:?}):\n{output}"
    );
    assert!(output.contains("1 passed"), "child for `{name}`:\n{output}");
}

/// Sends `kind` to this (child) process from another process: `kill`,
/// run by `/bin/sh`.
fn send(kind: SignalKind) {
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "kill -{} {}",
            kind.as_raw_value(),
            std::process::id()
        ))
        .status()
        .unwrap();
    assert!(status.success(), "kill -{} failed", kind.as_raw_value());
}

/// The three flavours, one after another (the handlers are per process).
fn flavours() -> [waitrt::Runtime; 3] {
    let mt = |n| {
        waitrt::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build()
            .unwrap()
    };
    [
        waitrt::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        mt(1),
        mt(2),
    ]
}

/// Whether `signal` has a delivery it has not reported, without waiting.
fn has_pending(signal: &mut Signal) -> bool {
    let waker = futures::task::noop_waker();
    signal
        .poll_recv(&mut Context::from_waker(&waker))
        .is_ready()
}

/// Awaits `signal`'s next delivery, under the watchdog.
async fn next(signal: &mut Signal) {
    let kind = signal.kind();
    let got = waitrt::time::timeout(WATCHDOG, signal.recv())
        .await
        .unwrap_or_else(|_| panic!("{kind:?} never arrived"));
    assert_eq!(got, Some(()), "{kind:?}");
}

/// A real-time signal (glibc's `SIGRTMIN` is 34, `SIGRTMAX` 64).
const REALTIME: i32 = 40;

/// Every kind tokio names, and a real-time signal, each reaches its own
/// stream (and no other), on every flavour, in a task.
#[test]
fn every_signal_kind_reaches_its_stream() {
    in_child("every_signal_kind_reaches_its_stream", || {
        let kinds = [
            SignalKind::hangup(),
            SignalKind::user_defined1(),
            SignalKind::user_defined2(),
            SignalKind::quit(),
            SignalKind::alarm(),
            SignalKind::io(),
            SignalKind::pipe(),
            SignalKind::window_change(),
            SignalKind::interrupt(),
            SignalKind::terminate(),
            SignalKind::from_raw(REALTIME),
        ];
        for rt in flavours() {
            rt.block_on(async {
                let mut streams: Vec<Signal> = kinds.iter().map(|&k| signal(k).unwrap()).collect();
                for (i, &kind) in kinds.iter().enumerate() {
                    let mut mine = streams.remove(i);
                    assert_eq!(mine.kind(), kind);
                    send(kind);
                    // Awaited in a spawned task: the wake crosses threads.
                    mine = waitrt::spawn(async move {
                        next(&mut mine).await;
                        mine
                    })
                    .await
                    .unwrap();
                    for other in &mut streams {
                        assert!(
                            !has_pending(other),
                            "{kind:?} woke {:?}'s stream",
                            other.kind()
                        );
                    }
                    assert!(!has_pending(&mut mine), "one delivery reported twice");
                    streams.insert(i, mine);
                }
            });
        }
    });
}

/// `SIGCHLD` as a stream: a child process that exits delivers it.
#[test]
fn sigchld_arrives_when_a_child_exits() {
    in_child("sigchld_arrives_when_a_child_exits", || {
        for rt in flavours() {
            rt.block_on(async {
                let mut children = signal(SignalKind::child()).unwrap();
                let status = Command::new("/bin/sh")
                    .arg("-c")
                    .arg("exit 3")
                    .status()
                    .unwrap();
                assert_eq!(status.code(), Some(3));
                next(&mut children).await;
            });
        }
    });
}

/// A delivery between `signal()` and the first `recv` is seen; several
/// `Signal`s of one kind each see it; a dropped `recv` loses nothing; the
/// `Stream` impl yields it too.
#[test]
fn deliveries_count_from_the_call_and_reach_every_listener() {
    in_child(
        "deliveries_count_from_the_call_and_reach_every_listener",
        || {
            for rt in flavours() {
                rt.block_on(async {
                    let mut first = signal(SignalKind::user_defined1()).unwrap();
                    let mut second = signal(SignalKind::user_defined1()).unwrap();
                    send(SignalKind::user_defined1());
                    // Not polled before the delivery: seen anyway.
                    next(&mut first).await;
                    next(&mut second).await;

                    // A recv polled, then dropped: the delivery stays.
                    {
                        let mut recv = Box::pin(first.recv());
                        let waker = futures::task::noop_waker();
                        let poll = recv.as_mut().poll(&mut Context::from_waker(&waker));
                        assert_eq!(poll, Poll::Pending);
                    }
                    send(SignalKind::user_defined1());
                    next(&mut first).await;

                    // As a Stream.
                    send(SignalKind::user_defined1());
                    let item = waitrt::time::timeout(WATCHDOG, first.next()).await;
                    assert_eq!(item.expect("no SIGUSR1 from the stream"), Some(()));
                    // `second` saw both later deliveries too (at least one
                    // report: deliveries between two reports make one).
                    next(&mut second).await;
                });
            }
        },
    );
}

/// Once listened for, `SIGHUP` no longer ends the process, even with
/// every `Signal` dropped; `SIGINT`, not asked for, keeps its default
/// action and ends it.
#[test]
fn only_the_signal_asked_for_loses_its_default_action() {
    let Some((status, output)) =
        run_child("only_the_signal_asked_for_loses_its_default_action", || {
            // The default action is what this test checks, so it starts
            // from it: a test run started in the background of a
            // non-interactive shell has SIGINT ignored, and the child
            // inherits that (seen in a CI run: "child: survived SIGINT").
            // SAFETY: `signal` with `SIG_DFL` installs no handler; this
            // child process runs no other thread that handles SIGINT.
            #[allow(unsafe_code)]
            unsafe {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
            }
            let rt = waitrt::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut hangups = signal(SignalKind::hangup()).unwrap();
                send(SignalKind::hangup());
                next(&mut hangups).await;
            });
            drop(rt);
            // No Signal left, and no runtime: the process survives SIGHUP.
            send(SignalKind::hangup());
            std::thread::sleep(Duration::from_millis(200));
            eprintln!("child: survived SIGHUP");
            send(SignalKind::interrupt());
            std::thread::sleep(WATCHDOG);
            eprintln!("child: survived SIGINT");
        })
    else {
        return;
    };
    assert!(output.contains("child: survived SIGHUP"), "{output}");
    assert!(!output.contains("child: survived SIGINT"), "{output}");
    let died_of = status.and_then(|s| s.signal());
    assert_eq!(
        died_of,
        Some(2),
        "SIGINT did not end the child ({status:?}):\n{output}"
    );
}

/// Signals that cannot be handled, and numbers that are no signal, are
/// refused with `InvalidInput`; nothing is installed for them.
#[test]
fn unhandleable_signals_are_refused() {
    in_child("unhandleable_signals_are_refused", || {
        // SIGKILL, SIGSTOP, SIGSEGV, SIGILL, SIGFPE; then out of range.
        for raw in [9, 19, 11, 4, 8, 0, -1, 65, 1000] {
            let err = signal(SignalKind::from_raw(raw))
                .err()
                .unwrap_or_else(|| panic!("signal {raw} was accepted"));
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{raw}: {err}");
        }
        assert_eq!(format!("{:?}", SignalKind::hangup()), "SignalKind(SIGHUP)");
        assert_eq!(i32::from(SignalKind::from(10)), 10);
    });
}

/// `unroute` removes a task's routes of one signal (both kinds of a task
/// routed twice) and leaves the others: the unrouted task sleeps through
/// the signal, another routed task is interrupted, `recv` still sees it.
#[test]
fn unroute_removes_a_route() {
    in_child("unroute_removes_a_route", || {
        for rt in flavours() {
            rt.block_on(async {
                let sleeper = || {
                    waitrt::spawn(async {
                        let signals = waitrt::task::signals();
                        NEVER.wait_event_interruptible(&signals, || false).await
                    })
                };
                let unrouted = sleeper();
                let routed = sleeper();
                let term = ProcessSignal::Terminate;
                use waitrt::sync::SignalKind as Task;
                rt_signal::route(term, &unrouted.abort_handle(), Task::Interrupt).unwrap();
                rt_signal::route(term, &unrouted.abort_handle(), Task::Kill).unwrap();
                rt_signal::route(
                    ProcessSignal::CtrlC,
                    &unrouted.abort_handle(),
                    Task::Interrupt,
                )
                .unwrap();
                rt_signal::route(term, &routed.abort_handle(), Task::Interrupt).unwrap();
                assert_eq!(rt_signal::unroute(term, &unrouted.abort_handle()), 2);
                assert_eq!(rt_signal::unroute(term, &unrouted.abort_handle()), 0);

                let seen = rt_signal::recv(term);
                send(SignalKind::terminate());
                waitrt::time::timeout(WATCHDOG, seen)
                    .await
                    .expect("SIGTERM never arrived")
                    .unwrap();
                let err = waitrt::time::timeout(WATCHDOG, routed)
                    .await
                    .expect("the routed task was not interrupted")
                    .unwrap()
                    .unwrap_err();
                assert!(!err.is_fatal(), "{err:?}");
                // The listener delivered the signal (recv saw it, and the
                // routed task ended): the unrouted task was not touched. (A
                // raise on it would have come in the same delivery, before
                // the routed task's: give a woken task time to end.)
                waitrt::time::sleep(Duration::from_millis(100)).await;
                assert!(!unrouted.is_finished(), "an unrouted task was interrupted");

                // Its SIGINT route is still there.
                send(SignalKind::interrupt());
                let err = waitrt::time::timeout(WATCHDOG, unrouted)
                    .await
                    .expect("the SIGINT route was removed too")
                    .unwrap()
                    .unwrap_err();
                assert!(!err.is_fatal(), "{err:?}");
            });
        }
    });
}
