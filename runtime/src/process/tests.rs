//! Which exit path a child takes, and when the reaper thread starts. Each
//! test runs in a child process (this binary, re-run on that test alone):
//! a started reaper and a failed `pidfd_open` last for the process.

use std::time::{Duration, Instant};

use super::*;

/// Names the test whose body this process runs (set in children only).
const CHILD: &str = "WAITRT_PROCESS_TEST_CHILD";

/// Runs `body` in a child process and panics with its output unless it
/// passed; in the child, runs `body`.
fn in_child(name: &str, body: impl FnOnce()) {
    let test = format!("{}::{name}", module_path!().trim_start_matches("waitrt::"));
    let Some((status, text)) = crate::test_child::run_test_in_child(CHILD, &test, body) else {
        return;
    };
    assert!(
        status.is_some_and(|status| status.success()) && text.contains("1 passed"),
        "{test} in a child process: {status:?} (None: killed after 60 s)\n{text}"
    );
}

fn runtime(pidfd: bool) -> crate::Runtime {
    crate::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .process_pidfd(pidfd)
        .build()
        .unwrap()
}

fn is_pidfd(child: &Child) -> bool {
    matches!(child.inner.exit, Exit::Pidfd(_))
}

/// Whether `pid` is no longer a child of this process (exited and reaped).
fn is_gone(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // "pid (comm) S ppid ...": comm may hold spaces and parentheses.
    let ppid = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .nth(1);
    ppid != Some(&std::process::id().to_string())
}

/// A child dropped (an orphan) while the reaper could not start, once it
/// has exited and stays a zombie: its pid.
fn a_zombie_orphan_without_a_reaper() -> u32 {
    let early = Command::new("sleep").arg("0.1").spawn().unwrap();
    let early_pid = early.id().unwrap();
    reaper::FAIL_NEXT_START.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(early);
    assert!(!reaper::started());
    wait_until_zombie(early_pid);
    early_pid
}

/// Waits (at most 30 s) until `pid` has exited and is not reaped.
fn wait_until_zombie(pid: u32) {
    let start = Instant::now();
    while !std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap()
        .contains(") Z ")
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "child {pid} ran on"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn wait_until_gone(pid: u32) {
    let start = Instant::now();
    while !is_gone(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "child {pid} not reaped after 30 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

// The default path: waits through pidfds start no reaper thread; a child
// dropped before its exit is an orphan, which starts it and is reaped.
#[test]
fn pidfd_exits_need_no_reaper_until_an_orphan() {
    in_child("pidfd_exits_need_no_reaper_until_an_orphan", || {
        runtime(true).block_on(async {
            let mut child = Command::new("sh").args(["-c", "exit 4"]).spawn().unwrap();
            assert!(is_pidfd(&child), "not on a pidfd: {child:?}");
            assert_eq!(child.wait().await.unwrap().code(), Some(4));
            let out = Command::new("sh")
                .args(["-c", "echo hi"])
                .output()
                .await
                .unwrap();
            assert_eq!(out.stdout, b"hi\n");
            // Exited before its drop: reaped by the drop, no reaper.
            let child = Command::new("true").spawn().unwrap();
            let pid = child.id().unwrap();
            while !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap()
                .contains(") Z ")
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            drop(child);
            assert!(is_gone(pid), "an exited child's drop did not reap it");
            assert!(!reaper::started(), "the reaper started without an orphan");

            let child = Command::new("sleep").arg("60").spawn().unwrap();
            let pid = child.id().unwrap();
            drop(child);
            assert!(reaper::started(), "an orphan did not start the reaper");
            std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .unwrap();
            wait_until_gone(pid);
        });
    });
}

// `pidfd_open` failing (as before Linux 5.3) puts that child, and every
// later one, on the reaper path, which works.
#[test]
fn a_failed_pidfd_open_falls_back_to_the_reaper() {
    in_child("a_failed_pidfd_open_falls_back_to_the_reaper", || {
        runtime(true).block_on(async {
            pidfd::FAIL_NEXT_OPEN.store(true, std::sync::atomic::Ordering::Relaxed);
            let mut child = Command::new("sh").args(["-c", "exit 5"]).spawn().unwrap();
            assert!(!is_pidfd(&child), "on a pidfd after pidfd_open failed");
            assert!(reaper::started());
            assert_eq!(child.wait().await.unwrap().code(), Some(5));
            // Remembered: the next child does not try.
            let mut child = Command::new("true").spawn().unwrap();
            assert!(!is_pidfd(&child), "pidfd_open tried again after ENOSYS");
            assert!(child.wait().await.unwrap().success());
        });
    });
}

// `Builder::process_pidfd(false)` puts every child on the reaper path.
#[test]
fn the_builder_switch_forces_the_reaper() {
    in_child("the_builder_switch_forces_the_reaper", || {
        runtime(false).block_on(async {
            let mut child = Command::new("sh").args(["-c", "exit 6"]).spawn().unwrap();
            assert!(!is_pidfd(&child), "on a pidfd with process_pidfd(false)");
            assert!(reaper::started());
            assert_eq!(child.wait().await.unwrap().code(), Some(6));
        });
        // Another runtime, default: pidfds again.
        runtime(true).block_on(async {
            let mut child = Command::new("true").spawn().unwrap();
            assert!(is_pidfd(&child));
            assert!(child.wait().await.unwrap().success());
        });
    });
}

// An orphan listed while the reaper could not start is reaped by the
// first start that succeeds, though its SIGCHLD came while no handler
// was installed.
#[test]
fn an_orphan_listed_before_the_reaper_started_is_reaped() {
    in_child(
        "an_orphan_listed_before_the_reaper_started_is_reaped",
        || {
            runtime(true).block_on(async {
                // It exits (SIGCHLD, no handler) and stays a zombie.
                let early_pid = a_zombie_orphan_without_a_reaper();
                // The next orphan starts the reaper, which reaps the first:
                // no other child exits meanwhile to raise a SIGCHLD.
                let late = Command::new("sleep").arg("60").spawn().unwrap();
                let late_pid = late.id().unwrap();
                drop(late);
                assert!(reaper::started());
                wait_until_gone(early_pid);
                std::process::Command::new("kill")
                    .args(["-9", &late_pid.to_string()])
                    .status()
                    .unwrap();
                wait_until_gone(late_pid);
            });
        },
    );
}

// An orphan listed while the reaper could not start is reaped once a
// later spawn starts it, though that spawn's own child is watched through
// its pidfd and nothing is orphaned again. (Only a later orphan started
// it: a program that otherwise waits for its children kept the zombie
// until it exited; an independent probe, out of descriptors, 4 of 7.)
#[test]
fn an_orphan_left_without_a_reaper_is_reaped_after_a_later_spawn() {
    in_child(
        "an_orphan_left_without_a_reaper_is_reaped_after_a_later_spawn",
        || {
            runtime(true).block_on(async {
                let early_pid = a_zombie_orphan_without_a_reaper();
                let mut next = Command::new("true").spawn().unwrap();
                assert!(is_pidfd(&next));
                assert!(next.wait().await.unwrap().success());
                wait_until_gone(early_pid);
            });
        },
    );
}

// A child whose pidfd cannot be made for want of a descriptor (another
// thread took the one held for it) is killed and reaped before the spawn
// returns, not left to a reaper that could not start either; the error
// says that the program started. (It went to the reaper, whose start
// needs more descriptors: a zombie, 4 of 7 runs of an independent probe.)
#[test]
fn a_child_that_cannot_be_watched_is_killed_and_reaped_at_once() {
    in_child(
        "a_child_that_cannot_be_watched_is_killed_and_reaped_at_once",
        || {
            runtime(true).block_on(async {
                pidfd::EMFILE_NEXT_OPEN.store(true, std::sync::atomic::Ordering::Relaxed);
                reaper::FAIL_NEXT_START.store(true, std::sync::atomic::Ordering::Relaxed);
                let err = Command::new("sleep").arg("60").spawn().unwrap_err();
                let message = err.to_string();
                assert!(message.contains("`sleep` started"), "{message}");
                assert!(message.contains("killed"), "{message}");
                assert!(!reaper::started());
                let zombies: Vec<u32> = std::fs::read_dir("/proc")
                    .unwrap()
                    .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .filter(|&pid| !is_gone(pid))
                    .collect();
                assert!(zombies.is_empty(), "children left: {zombies:?}");
                reaper::FAIL_NEXT_START.store(false, std::sync::atomic::Ordering::Relaxed);
            });
        },
    );
}

// A pidfd registered after its process exited is ready at once: the wait
// (which does not try `waitpid` before its first wake) ends.
#[test]
fn a_pidfd_registered_after_the_exit_is_ready() {
    let rt = runtime(true);
    rt.block_on(async {
        let std = std::process::Command::new("true").spawn().unwrap();
        let pid = std.id();
        let start = Instant::now();
        while !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap()
            .contains(") Z ")
        {
            assert!(start.elapsed() < Duration::from_secs(30), "`true` ran on");
            std::thread::sleep(Duration::from_millis(1));
        }
        let fd = pidfd::open(&std).unwrap();
        let mut exit = pidfd::Exit::new(std, fd).map_err(|(_, err)| err).unwrap();
        let status = crate::time::timeout(
            Duration::from_secs(30),
            exit.wait(std::panic::Location::caller()),
        )
        .await
        .expect("the wait missed an exit from before the registration")
        .unwrap();
        assert!(status.success());
        assert!(is_gone(pid));
    });
}
