//! Unit tests that must run alone in a process (a started reaper or
//! signal listener, a raised signal, a failed `pidfd_open` last for the
//! process): the test binary re-runs itself on that one test.

use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

/// Runs the unit test `test` (its path without the crate name) in a child
/// process, the variable `marker` naming it there. In that child, runs
/// `body` and returns `None`; in the parent, returns the child's status
/// (`None`: killed by the one-minute watchdog) and its output.
///
/// The output goes to a file, not a pipe: a grandchild left running by a
/// failing test must not keep the parent waiting for end-of-file.
pub(crate) fn run_test_in_child(
    marker: &str,
    test: &str,
    body: impl FnOnce(),
) -> Option<(Option<ExitStatus>, String)> {
    if std::env::var(marker).as_deref() == Ok(test) {
        default_interrupts();
        body();
        return None;
    }
    let log_path = std::env::temp_dir().join(format!(
        "waitrt-child-test-{}-{}.log",
        std::process::id(),
        test.replace("::", "-")
    ));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(marker, test)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
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
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);
    Some((status, text))
}

/// Gives `SIGINT` and `SIGQUIT` their default actions in a child, whose
/// tests check them: a test run started in the background of a
/// non-interactive shell has both ignored, and a child inherits that
/// (seen in CI: `a_failed_thread_spawn_installs_no_handler` found SIGINT
/// "swallowed").
#[allow(unsafe_code)]
fn default_interrupts() {
    for signal in [libc::SIGINT, libc::SIGQUIT] {
        // SAFETY: test-only. `SIG_DFL` installs no handler, and this runs
        // first in the child's one test, before it starts any thread or
        // handler of its own.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
        }
    }
}
