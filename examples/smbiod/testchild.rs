//! The tests' way to run smbiod in a child process (this test binary,
//! re-executed with an environment variable naming what the child does),
//! signal only that child, and bound every wait with a watchdog.

use std::io::BufRead;
use std::process::{Child, Command as Proc, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Starts `test` (its full path in this binary) in a child process with
/// `var=mode` set and its stdout piped; its stderr too with `stderr`
/// (then the caller must read it, or a chatty child blocks on a full pipe).
pub fn spawn(test: &str, var: &str, mode: &str, stderr: bool) -> Child {
    Proc::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture"])
        .env(var, mode)
        .stdout(Stdio::piped())
        .stderr(if stderr {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .spawn()
        .unwrap()
}

/// Kills `pid` if the test has not set the returned flag within 60 s, or
/// when the flag is dropped unset (the test failed before it was done: a
/// flake hunt found such a child alive long after its parent had gone).
pub fn watchdog(pid: u32) -> Watchdog {
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    std::thread::spawn(move || {
        for _ in 0..600 {
            std::thread::sleep(Duration::from_millis(100));
            if d.load(Ordering::Acquire) {
                return;
            }
        }
        kill(pid);
    });
    Watchdog { done, pid }
}

fn kill(pid: u32) {
    let _ = Proc::new("kill").args(["-KILL", &pid.to_string()]).status();
}

/// The flag [`watchdog`] returns: `store(true, ..)` once the child is
/// done; dropped unset, it kills the child.
pub struct Watchdog {
    done: Arc<AtomicBool>,
    pid: u32,
}

impl std::ops::Deref for Watchdog {
    type Target = AtomicBool;

    fn deref(&self) -> &AtomicBool {
        &self.done
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if !self.done.swap(true, Ordering::AcqRel) {
            kill(self.pid);
        }
    }
}

/// Reads lines until one starts with `mark` (or has it right after
/// libtest's `test NAME ... `, which one test at a time puts before the
/// child's output on its line); all of them, or a panic naming what came
/// instead.
pub fn wait_for(out: &mut impl BufRead, mark: &str) -> String {
    let mut seen = String::new();
    for _ in 0..1000 {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen += &line;
        let after_libtest = line.split_once(" ... ").map(|(_, rest)| rest);
        if line.starts_with(mark) || after_libtest.is_some_and(|rest| rest.starts_with(mark)) {
            return seen;
        }
    }
    panic!("the child never printed {mark:?}:\n{seen}");
}

/// Sends `signal` (`"-TERM"`, `"-QUIT"`) to the child `pid`.
pub fn signal(pid: u32, signal: &str) {
    let sent = Proc::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill {signal} {pid}");
}
