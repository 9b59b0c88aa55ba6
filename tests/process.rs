//! `waitrt::process` on real child processes (`sh`, `cat`, `sleep`,
//! `true`), on every scheduler flavour (current-thread, mt(1), mt(2))
//! and both exit paths (`pidfd`, the default; `reaper`, forced with
//! `Builder::process_pidfd(false)`) through `process_test!`. Only child
//! processes are signalled, never this one.
//!
//! Covered: exit codes and `output`/`status`, env and working directory,
//! a child killed by a signal, 8 MiB through `cat` both ways at once,
//! `kill_on_drop`, 1,000 short-lived children with no zombie left, a
//! `Child` dropped unawaited (reaped when it exits), `wait` after the
//! runtime shut down (an error, not a hang; the status if the child had
//! exited before), `wait` closing stdin first, spawning outside a runtime
//! or in one without I/O,
//! and that each path is the one taken (a pidfd of the child's in
//! `/proc/self/fdinfo`, or none).
#[macro_use]
mod support;

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt};
use waitrt::process::Command;

/// A behaviour test on both exit paths and every flavour:
/// `name::{pidfd,reaper}_{current_thread,multi_thread_1,multi_thread_2}`.
macro_rules! process_test {
    (fn $name:ident($rt:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($rt: waitrt::Runtime) $body

            #[test]
            fn pidfd_current_thread() {
                run(concat!(stringify!($name), "::pidfd_current_thread"), None, true, body);
            }

            #[test]
            fn pidfd_multi_thread_1() {
                run(concat!(stringify!($name), "::pidfd_multi_thread_1"), Some(1), true, body);
            }

            #[test]
            fn pidfd_multi_thread_2() {
                run(concat!(stringify!($name), "::pidfd_multi_thread_2"), Some(2), true, body);
            }

            #[test]
            fn reaper_current_thread() {
                run(concat!(stringify!($name), "::reaper_current_thread"), None, false, body);
            }

            #[test]
            fn reaper_multi_thread_1() {
                run(concat!(stringify!($name), "::reaper_multi_thread_1"), Some(1), false, body);
            }

            #[test]
            fn reaper_multi_thread_2() {
                run(concat!(stringify!($name), "::reaper_multi_thread_2"), Some(2), false, body);
            }
        }
    };
}

/// Builds the flavour (`None`: current-thread; `Some(n)`: n workers) on
/// the pidfd path or the reaper path.
fn build(workers: Option<usize>, pidfd: bool) -> waitrt::Runtime {
    let mut builder = match workers {
        None => waitrt::Builder::new_current_thread(),
        Some(n) => {
            let mut builder = waitrt::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
    };
    builder.enable_all().process_pidfd(pidfd).build().unwrap()
}

/// Runs `body` on its runtime under the watchdog.
fn run(what: &'static str, workers: Option<usize>, pidfd: bool, body: fn(waitrt::Runtime)) {
    support::watchdog(what, support::RT_LIMIT, move || body(build(workers, pidfd)));
}

/// Whether this process has a pidfd open for `pid` (a descriptor whose
/// `/proc/self/fdinfo` says `Pid: <pid>`, which only pidfds do).
fn has_pidfd_for(pid: u32) -> bool {
    let Ok(fds) = std::fs::read_dir("/proc/self/fdinfo") else {
        return false;
    };
    fds.filter_map(Result::ok).any(|fd| {
        std::fs::read_to_string(fd.path()).is_ok_and(|info| {
            info.lines()
                .any(|line| line.strip_prefix("Pid:").map(str::trim) == Some(&pid.to_string()))
        })
    })
}

/// Whether pidfds show their pid in `/proc/self/fdinfo` here (Linux
/// 5.4 and later): checked on a pidfd of this process's own.
fn fdinfo_shows_pids() -> bool {
    use std::os::fd::AsRawFd;
    let own = rustix::process::pidfd_open(
        rustix::process::getpid(),
        rustix::process::PidfdFlags::empty(),
    );
    own.is_ok_and(|fd| {
        std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
            .is_ok_and(|info| info.contains(&format!("Pid:\t{}", std::process::id())))
    })
}

/// The state letter and parent of process `pid` (`/proc/<pid>/stat`),
/// `None` if there is no such process.
fn stat(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid ...": comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Whether `pid` is a zombie child of this process.
fn is_our_zombie(pid: u32) -> bool {
    stat(pid) == Some(('Z', std::process::id()))
}

/// Whether `pid` is no longer a child of ours (exited and reaped).
fn is_gone(pid: u32) -> bool {
    stat(pid).is_none_or(|(_, ppid)| ppid != std::process::id())
}

/// Waits (bounded: a hang detector, not a timing assertion) until `done`.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what}: still not done after 30 s"
        );
        waitrt::time::sleep(Duration::from_millis(5)).await;
    }
}

process_test! {
    fn exit_codes_and_output(rt) {
        rt.block_on(async {
            assert!(Command::new("true").status().await.unwrap().success());
            assert_eq!(Command::new("false").status().await.unwrap().code(), Some(1));
            let out = Command::new("sh")
                .args(["-c", "echo out; echo err >&2; exit 7"])
                .output()
                .await
                .unwrap();
            assert_eq!(out.status.code(), Some(7));
            assert_eq!(out.stdout, b"out\n");
            assert_eq!(out.stderr, b"err\n");

            let mut child = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
            assert!(child.id().is_some());
            let status = child.wait().await.unwrap();
            assert_eq!(status.code(), Some(3));
            assert_eq!(child.wait().await.unwrap().code(), Some(3), "kept");
            assert_eq!(child.try_wait().unwrap().map(|s| s.code()), Some(Some(3)));
            assert_eq!(child.id(), None, "no id once reaped");

            let dir = std::env::temp_dir().canonicalize().unwrap();
            let out = Command::new("/bin/sh")
                .args(["-c", "echo \"${FOO-unset}:${BAR-unset}:${HOME-unset}\"; pwd"])
                .env_clear()
                .envs([("FOO", "1"), ("BAR", "2")])
                .env_remove("BAR")
                .current_dir(&dir)
                .output()
                .await
                .unwrap();
            let text = String::from_utf8(out.stdout).unwrap();
            assert_eq!(text, format!("1:unset:unset\n{}\n", dir.display()));

            let err = Command::new("no-such-program-here").spawn().unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
            // The message names the program (and the directory, if one
            // was set: a missing one is NotFound too); the OS error is
            // the source.
            assert!(err.to_string().contains("`no-such-program-here`"), "{err}");
            let os = err.get_ref().and_then(|e| e.source()).and_then(|e| e.downcast_ref::<std::io::Error>());
            assert_eq!(os.and_then(std::io::Error::raw_os_error), Some(libc::ENOENT));
            let missing = dir.join("no-such-dir");
            let err = Command::new("true").current_dir(&missing).spawn().unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
            assert!(err.to_string().contains("`true`"), "{err}");
            assert!(err.to_string().contains(&missing.display().to_string()), "{err}");
        });
    }
}

process_test! {
    fn killed_by_a_signal(rt) {
        rt.block_on(async {
            // The child signals itself.
            let status = Command::new("sh").args(["-c", "kill -TERM $$"]).status().await.unwrap();
            assert_eq!(status.signal(), Some(15));
            assert_eq!(status.code(), None);

            let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
            assert!(child.try_wait().unwrap().is_none());
            child.kill().await.unwrap();
            assert_eq!(child.wait().await.unwrap().signal(), Some(9));
            child.start_kill().unwrap(); // reaped: nothing to do
        });
    }
}

process_test! {
    fn pipes_both_ways_8_mib(rt) {
        rt.block_on(async {
            let data: Vec<u8> = (0..8 * 1024 * 1024).map(|i: usize| (i * 31 % 251) as u8).collect();
            let mut child = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let mut stdout = child.stdout.take().unwrap();
            // Both at once: cat's pipes hold 64 KiB each way, so writing it
            // all before reading would block both sides.
            let write = async {
                for chunk in data.chunks(100_000) {
                    stdin.write_all(chunk).await.unwrap();
                }
                stdin.close().await.unwrap();
                assert!(stdin.write(b"x").await.is_err(), "written after close");
            };
            let read = async {
                let mut got = Vec::new();
                stdout.read_to_end(&mut got).await.unwrap();
                got
            };
            let ((), got) = futures::join!(write, read);
            assert!(got == data, "cat echoed something else ({} bytes)", got.len());
            assert!(child.wait().await.unwrap().success());

            // And through `wait_with_output`, stderr too.
            let mut child = Command::new("sh")
                .args(["-c", "cat; cat >&2 < /dev/null; head -c 1000000 /dev/zero >&2"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.as_mut().unwrap().write_all(b"hello").await.unwrap();
            let out = child.wait_with_output().await.unwrap();
            assert!(out.status.success());
            assert_eq!(out.stdout, b"hello");
            assert_eq!(out.stderr.len(), 1_000_000);
        });
    }
}

process_test! {
    fn wait_closes_stdin_first(rt) {
        rt.block_on(async {
            // `cat` exits at EOF on its stdin, which `wait` gives it (as
            // tokio's and std's do); left open, both would wait forever.
            let mut child = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            child.stdin.as_mut().unwrap().write_all(b"some input").await.unwrap();
            let waited = waitrt::time::timeout(Duration::from_secs(30), child.wait()).await;
            let status = waited.expect("wait left stdin open: cat never saw EOF").unwrap();
            assert!(status.success());
            assert!(child.stdin.is_none(), "stdin still held after wait");
        });
    }
}

process_test! {
    fn kill_on_drop(rt) {
        rt.block_on(async {
            let child = Command::new("sleep").arg("1000").kill_on_drop(true).spawn().unwrap();
            let pid = child.id().unwrap();
            assert!(!is_gone(pid));
            drop(child);
            // Killed, and reaped in the background.
            eventually("killed child reaped", || is_gone(pid)).await;

            // Without it the process runs on after the drop (`kill -0`
            // finds it); killed from outside, it is reaped as an orphan.
            let child = Command::new("sleep").arg("1000").spawn().unwrap();
            let pid = child.id().unwrap().to_string();
            drop(child);
            let alive = Command::new("kill").args(["-0", &pid]).status().await.unwrap();
            assert!(alive.success(), "killed without kill_on_drop");
            assert!(Command::new("kill").args(["-9", &pid]).status().await.unwrap().success());
            eventually("orphan killed from outside reaped", || is_gone(pid.parse().unwrap())).await;
        });
    }
}

process_test! {
    fn dropped_child_is_reaped_after_it_exits(rt) {
        rt.block_on(async {
            // `cat` exits when its stdin closes, which happens when the
            // `Child` is dropped, after its drop listed it as an orphan.
            let child = Command::new("cat").stdin(Stdio::piped()).spawn().unwrap();
            let pid = child.id().unwrap();
            drop(child);
            eventually("orphan reaped", || is_gone(pid)).await;
            assert!(!is_our_zombie(pid));

            // A child that exits on its own, dropped unawaited.
            let pids: Vec<u32> = (0..20)
                .map(|_| Command::new("true").spawn().unwrap().id().unwrap())
                .collect();
            eventually("unawaited children reaped", || pids.iter().all(|&pid| is_gone(pid))).await;
        });
    }
}

process_test! {
    fn a_thousand_children_no_zombies(rt) {
        rt.block_on(async {
            let mut pids = Vec::new();
            for _batch in 0..20 {
                // Every other child is dropped unawaited (reaped in the
                // background); the rest are reaped by their own `wait`.
                let tasks: Vec<_> = (0..50)
                    .map(|i| {
                        waitrt::spawn(async move {
                            let mut child = Command::new("true").spawn().unwrap();
                            let pid = child.id().unwrap();
                            if i % 2 == 0 {
                                assert!(child.wait().await.unwrap().success());
                            }
                            (pid, i % 2 == 0)
                        })
                    })
                    .collect();
                for task in tasks {
                    pids.push(task.await.unwrap());
                }
            }
            assert_eq!(pids.len(), 1000);
            // The awaited ones were reaped by their `wait`: none is a
            // zombie now; the dropped ones soon after they exit.
            let zombies: Vec<_> =
                pids.iter().filter(|&&(pid, waited)| waited && is_our_zombie(pid)).collect();
            assert!(zombies.is_empty(), "zombies left: {zombies:?}");
            eventually("dropped children reaped", || pids.iter().all(|&(pid, _)| is_gone(pid))).await;
        });
    }
}

#[test]
fn wait_after_shutdown_is_an_error() {
    let paths = [true, false].into_iter();
    for (pidfd, workers) in paths.flat_map(|p| [(p, None), (p, Some(1)), (p, Some(2))]) {
        let rt = build(workers, pidfd);
        let mut child = rt
            .block_on(async { Command::new("sleep").arg("1000").kill_on_drop(true).spawn() })
            .unwrap();
        drop(rt);
        let (child, result) =
            support::watchdog("wait after shutdown", support::RT_LIMIT, move || {
                let result = futures::executor::block_on(child.wait());
                (child, result)
            });
        assert!(
            result.is_err(),
            "{workers:?}, pidfd {pidfd}: wait after shutdown gave {result:?}"
        );
        let pid = child.id().unwrap();
        drop(child); // killed, and reaped by the reaper thread
        let start = Instant::now();
        while !is_gone(pid) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "child of a dead runtime not reaped"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[test]
fn wait_after_shutdown_returns_an_exit_that_came_before() {
    let paths = [true, false].into_iter();
    for (pidfd, workers) in paths.flat_map(|p| [(p, None), (p, Some(1)), (p, Some(2))]) {
        let rt = build(workers, pidfd);
        let mut child = rt
            .block_on(async { Command::new("sh").args(["-c", "exit 3"]).spawn() })
            .unwrap();
        let pid = child.id().unwrap();
        // Exited (a zombie on the pidfd path; reaped by the reaper thread,
        // which keeps the status, on the other) before the runtime goes.
        let start = Instant::now();
        while !(is_our_zombie(pid) || is_gone(pid)) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the child did not exit"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        drop(rt);
        let (child, result) =
            support::watchdog("wait after shutdown", support::RT_LIMIT, move || {
                let result = futures::executor::block_on(child.wait());
                (child, result)
            });
        let status = result.unwrap_or_else(|err| {
            panic!("{workers:?}, pidfd {pidfd}: an exit before the shutdown gave {err}")
        });
        assert_eq!(status.code(), Some(3));
        assert!(is_gone(pid), "waited but not reaped");
        drop(child);
    }
}

#[test]
fn spawn_outside_a_runtime_fails_and_starts_nothing() {
    let err = Command::new("true").spawn().unwrap_err();
    assert!(err.to_string().contains("runtime"), "{err}");
    assert!(err.to_string().contains("child processes"), "{err}");
}

/// In a runtime built without I/O the error says what to enable, and
/// names processes (it spoke of sockets only).
#[test]
fn spawn_in_a_runtime_without_io_names_what_to_enable() {
    let rt = waitrt::Builder::new_current_thread().build().unwrap();
    let err = rt
        .block_on(async { Command::new("true").status().await })
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("child processes"), "{message}");
    assert!(message.contains("enable_io()"), "{message}");
}

/// Out of file descriptors, a spawn that needs none itself (inherited
/// stdio) fails *before* the program starts: the child's pidfd, the one
/// descriptor it needs once it runs, is held for it from before the
/// spawn. (The program ran, was then killed for want of a pidfd, and the
/// caller was told it failed: an independent probe saw the side effect of
/// a "failed" `status()` in 7 of 9 runs; tokio sets up its `SIGCHLD`
/// machinery at build and succeeds.) With one descriptor back, the same
/// call runs it; no zombie is left. In a child process, whose descriptor
/// limit it lowers.
#[test]
fn out_of_descriptors_a_spawn_fails_before_the_program_runs() {
    if std::env::var_os("PROCESS_EMFILE_CHILD").is_some() {
        return emfile_child();
    }
    support::run_test_in_child(
        "out_of_descriptors_a_spawn_fails_before_the_program_runs",
        "PROCESS_EMFILE_CHILD",
        "SPAWN EMFILE OK",
    );
}

fn emfile_child() {
    let dir = std::env::temp_dir().join(format!("waitrt-process-emfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let marker = dir.join("ran");
    let script = format!("echo ran >> '{}'", marker.display());
    let rt = build(None, true);
    let mut held = support::use_up_descriptors(64);
    rt.block_on(async {
        for _ in 0..5 {
            let err = Command::new("/bin/sh")
                .args(["-c", &script])
                .status()
                .await
                .unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
        }
        assert!(!marker.exists(), "a spawn that failed ran its program");
        drop(held.pop());
        let status = Command::new("/bin/sh")
            .args(["-c", &script])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    });
    drop(held);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ran\n");
    let zombies: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid| is_our_zombie(pid))
        .collect();
    assert!(zombies.is_empty(), "zombies left: {zombies:?}");
    std::fs::remove_dir_all(&dir).unwrap();
    println!("SPAWN EMFILE OK");
}

#[test]
fn process_types_are_send_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Command>();
    send_sync::<waitrt::process::Child>();
    send_sync::<waitrt::process::ChildStdin>();
    send_sync::<waitrt::process::ChildStdout>();
    send_sync::<waitrt::process::ChildStderr>();
}

// Each path is the one taken: on the default path the child has a pidfd
// in this process; forced onto the reaper, it has none.
#[test]
fn each_exit_path_is_the_one_taken() {
    if !fdinfo_shows_pids() {
        let why = "pidfds do not show their pid in /proc/self/fdinfo (Linux < 5.4) \
                   or pidfd_open is unavailable";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped each_exit_path_is_the_one_taken: {why}"
        );
        return;
    }
    for (pidfd, workers) in [
        (true, None),
        (true, Some(2)),
        (false, None),
        (false, Some(2)),
    ] {
        let rt = build(workers, pidfd);
        rt.block_on(async {
            let mut child = Command::new("sleep")
                .arg("1000")
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let pid = child.id().unwrap();
            assert_eq!(
                has_pidfd_for(pid),
                pidfd,
                "{workers:?}: process_pidfd({pidfd}) but a pidfd for the child: {}",
                has_pidfd_for(pid)
            );
            child.kill().await.unwrap();
            // Reaped, its pidfd closed with the `Child`.
            drop(child);
            assert!(!has_pidfd_for(pid), "the pidfd outlived its Child");
        });
    }
}
