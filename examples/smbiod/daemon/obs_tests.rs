//! smbiod under the runtime's observability (issue 22): `kill -QUIT` on a
//! running smbiod prints who sleeps on what, with the daemon, its reader
//! and the callers named; `--hung-timeout` reports a caller stuck on a
//! server that never answers. Each case runs smbiod's runtime in a child
//! process (this test binary, re-executed), and only the child is ever
//! signalled.

use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::client::api::{Client, ConnectOptions};
use crate::server::{async_driver, ShareConfig};

const CHILD: &str = "SMBIOD_OBS_CHILD";

// Breaks if smbiod's runtime does not print the dump on SIGQUIT (the child
// would die of the signal), or its tasks and queues are not named.
#[test]
fn kill_quit_prints_who_sleeps_on_what() {
    // Nested: benches/smbiod.rs compiles this module without `cli`, and
    // only the #[test] fns are left out there.
    use crate::cli;
    /// The child: smbiod's runtime (`cli::runtime_builder`, as `main` builds
    /// it) with a client connected to an embedded server, idle until SIGTERM.
    fn idle_client_child(hung: Option<Duration>) -> ! {
        let mut cfg = cli::parse(&[]).unwrap();
        cfg.hung_timeout = hung;
        let rt = cli::runtime_builder(&cfg).build().unwrap();
        let code = rt.block_on(async {
            let dir = std::env::temp_dir().join(format!("smbiod-obs-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let share = ShareConfig::new("share", &dir).unwrap();
            let (addr, _) = async_driver::spawn("127.0.0.1:0", share).await.unwrap();
            let client = Client::connect(&addr.to_string(), &ConnectOptions::new("share"))
                .await
                .unwrap();
            println!("ready");
            let _ = waitrt::signal::recv(waitrt::signal::ProcessSignal::Terminate).await;
            drop(client);
            let _ = std::fs::remove_dir_all(&dir);
            0
        });
        std::process::exit(code);
    }
    if std::env::var(CHILD).as_deref() == Ok("quit") {
        idle_client_child(None);
    }
    use crate::testchild::{signal, spawn, wait_for, watchdog};
    let test = "daemon::obs_tests::kill_quit_prints_who_sleeps_on_what";
    let mut proc = spawn(test, CHILD, "quit", true);
    let pid = proc.id();
    let done = watchdog(pid);
    let mut out = BufReader::new(proc.stdout.take().unwrap());
    wait_for(&mut out, "ready");
    // The daemon goes to sleep on its queue right after the handshake.
    std::thread::sleep(Duration::from_millis(200));
    signal(pid, "-QUIT");
    // The dump ends with its list of idle tasks; give it a moment, then stop.
    std::thread::sleep(Duration::from_millis(500));
    signal(pid, "-TERM");
    let status = proc.wait().unwrap();
    done.store(true, Ordering::Release);
    let mut err = String::new();
    proc.stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "it kept running after SIGQUIT:\n{err}"
    );
    let daemon = err
        .lines()
        .find(|l| l.contains("\"smbiod\" ["))
        .unwrap_or_else(|| panic!("no line for the daemon task:\n{err}"));
    assert!(daemon.contains(" on smbiod_wait, "), "{daemon}\n{err}");
    assert!(
        daemon.contains("daemon/"),
        "the spawn and wait sites: {daemon}"
    );
    assert!(err.contains("\"smbiod-reader\""), "{err}");
    assert!(err.contains("queue smbiod_wait ("), "{err}");
}

// Breaks if `--hung-timeout` does not reach the runtime smbiod builds.
#[test]
fn hung_timeout_turns_the_detector_on() {
    // Nested: benches/smbiod.rs compiles this module without `cli`, and
    // only the #[test] fns are left out there.
    use crate::cli;
    /// The child for the hung-task case: smbiod's runtime as `--hung-timeout
    /// 0.2` builds it, and a task stuck in an uninterruptible, untimed wait
    /// (smbiod's own long waits are interruptible or timed, as the kernel's
    /// smbiod's are: the detector is for what else runs beside it).
    fn stuck_task_child() -> ! {
        static NEVER: waitq::WaitQueue = waitq::WaitQueue::named("never_woken");
        let cfg = cli::parse(&["--hung-timeout".into(), "0.2".into()]).unwrap();
        let rt = cli::runtime_builder(&cfg).build().unwrap();
        let code = rt.block_on(async move {
            let _stuck = waitrt::task::Builder::new()
                .name("stuck")
                .spawn(async { NEVER.wait_event(|| false).await });
            println!("ready");
            let _ = waitrt::signal::recv(waitrt::signal::ProcessSignal::Terminate).await;
            0
        });
        std::process::exit(code);
    }
    if std::env::var(CHILD).as_deref() == Ok("hung") {
        stuck_task_child();
    }
    use crate::testchild::{signal, spawn, wait_for, watchdog};
    let test = "daemon::obs_tests::hung_timeout_turns_the_detector_on";
    let mut proc = spawn(test, CHILD, "hung", true);
    let pid = proc.id();
    let done = watchdog(pid);
    let mut out = BufReader::new(proc.stdout.take().unwrap());
    wait_for(&mut out, "ready");
    let mut err = BufReader::new(proc.stderr.take().unwrap());
    let mut seen = String::new();
    let mut report = None;
    for _ in 0..200 {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen += &line;
        if line.starts_with("hung task: ") {
            report = Some(line);
            break;
        }
    }
    signal(pid, "-TERM");
    let _ = proc.wait();
    done.store(true, Ordering::Release);
    let report = report.unwrap_or_else(|| panic!("no hung-task report:\n{seen}"));
    assert!(
        report.contains("\"stuck\" [wait_event on never_woken, "),
        "{report}"
    );
}
