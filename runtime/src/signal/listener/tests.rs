//! The listener's start, with its thread spawn failing on purpose. Each
//! test runs in a child process (this binary, re-run on that test alone),
//! since a started listener or a raised signal lasts for the process.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use super::*;

/// Names the test whose body this process runs (set in children only).
const CHILD: &str = "RUNTIME_SIGNAL_LISTENER_CHILD";

/// Runs `body` in a child process and gives its status (`None`: killed
/// by the one-minute watchdog) and its output; in the child, runs `body`.
fn in_child(name: &str, body: impl FnOnce()) -> Option<(Option<ExitStatus>, String)> {
    let test = format!("{}::{name}", module_path!().trim_start_matches("waitrt::"));
    crate::test_child::run_test_in_child(CHILD, &test, body)
}

fn fail_to_spawn(body: Body) -> io::Result<()> {
    drop(body);
    Err(io::Error::other("injected: no thread"))
}

// If the thread cannot start, no handler is left installed: `SIGINT`
// keeps its default action and ends the (child) process.
#[test]
fn a_failed_thread_spawn_installs_no_handler() {
    let Some((status, output)) = in_child("a_failed_thread_spawn_installs_no_handler", || {
        let err = start(fail_to_spawn).unwrap_err();
        assert!(err.to_string().contains("injected"), "{err}");
        assert!(!STARTED.load(Acquire));
        eprintln!("child: raising SIGINT");
        signal_hook::low_level::raise(SIGINT).unwrap();
    }) else {
        return;
    };
    assert!(output.contains("child: raising SIGINT"), "{output}");
    let died_of = status.and_then(|s| s.signal());
    assert_eq!(
        died_of,
        Some(SIGINT),
        "SIGINT was swallowed ({status:?}):\n{output}"
    );
}

// A failed start is not kept: the next one starts the thread, which then
// counts a `SIGINT`.
#[test]
fn start_retries_after_a_failed_thread_spawn() {
    let Some((status, output)) = in_child("start_retries_after_a_failed_thread_spawn", || {
        start(fail_to_spawn).unwrap_err();
        let listener = listener().expect("a failed start was kept");
        let before = listener.counts[SIGINT as usize].load(Acquire);
        signal_hook::low_level::raise(SIGINT).unwrap();
        let mut counted = false;
        for _ in 0..2000 {
            counted = listener.counts[SIGINT as usize].load(Acquire) != before;
            if counted {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(counted, "the listener did not count the SIGINT");
    }) else {
        return;
    };
    assert!(status.is_some_and(|s| s.success()), "{status:?}:\n{output}");
    assert!(output.contains("1 passed"), "{output}");
}
