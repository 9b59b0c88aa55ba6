//! The check's real-time watchdog (`Check::watchdog`).
//!
//! A poll that blocks the test's thread (a `std::sync::Mutex` held across
//! a decision point and taken again by a task run nested there, a spin on
//! a `std` atomic) hung the check with no word (an independent probe).
//! The watchdog prints a report naming the task stuck in its poll and ends
//! the process with status 101, so those cases run in a child process: the
//! parent runs this binary again with one `#[ignore]`d child test and
//! [`CHILD_VAR`] set, waits for it with a deadline (killing it past that),
//! and reads the report from its stderr. Outside work that never finishes
//! fails the run as `External`, naming the tasks' spawn sites.

use std::fs::File;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use waitrt::test_util::{switch_point, Check, FailureKind, Policy};

/// Set in a child: its test really runs (unset, a child test returns at
/// once, so `--include-ignored` does not end the whole binary).
const CHILD_VAR: &str = "WAITRT_TOOLKIT_WATCHDOG_CHILD";

/// The watchdog's limit in the children: short, so a child ends soon.
const LIMIT: Duration = Duration::from_millis(300);

/// Runs the child test `name` in a new process of this binary; returns its
/// exit status and its stderr. Panics if it runs past a minute (the
/// watchdog did not end it), after killing it.
fn run_child(name: &str) -> (ExitStatus, String) {
    let dir = std::env::temp_dir();
    let path = dir.join(format!(
        "waitrt-watchdog-{}-{name}.stderr",
        std::process::id()
    ));
    let stderr = File::create(&path).expect("a file for the child's stderr");
    let mut child = Command::new(std::env::current_exe().expect("this test binary"))
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_VAR, "1")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("the child starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child's status") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let out = std::fs::read_to_string(&path).unwrap_or_default();
            let _ = std::fs::remove_file(&path);
            panic!("the child {name} still ran after a minute: the watchdog did not end it\n{out}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = std::fs::read_to_string(&path).expect("the child's stderr");
    let _ = std::fs::remove_file(&path);
    (status, out)
}

fn is_child() -> bool {
    std::env::var_os(CHILD_VAR).is_some()
}

/// The test body holds a `std::sync::Mutex` across a decision point; the
/// task run nested there takes it: on one thread, that blocks for good.
#[test]
#[ignore = "a child of a_std_mutex_held_across_a_decision_point_is_reported: it ends its process"]
fn child_std_mutex() {
    if !is_child() {
        return;
    }
    Check::new()
        .watchdog(LIMIT)
        .policy(Policy::Dfs {
            preemption_bound: 1,
        })
        .seeds(16)
        .quiet(true)
        .run(|| async {
            let count = Arc::new(std::sync::Mutex::new(0));
            let task = {
                let count = count.clone();
                waitrt::spawn(async move { *count.lock().unwrap() += 1 })
            };
            {
                let mut guard = count.lock().unwrap();
                switch_point(); // the task may run here, nested, and block
                *guard += 1;
            }
            task.await.unwrap();
        });
    eprintln!("the check returned");
}

#[test]
fn a_std_mutex_held_across_a_decision_point_is_reported() {
    let (status, out) = run_child("child_std_mutex");
    assert_eq!(status.code(), Some(101), "{status}\n{out}");
    let report = out
        .lines()
        .skip_while(|l| !l.starts_with("waitrt::test_util watchdog"))
        .collect::<Vec<_>>()
        .join("\n");
    // The stuck task, by id and spawn site; the poll it runs nested in;
    // the schedule that got there and its replay.
    assert!(
        report.starts_with("waitrt::test_util watchdog: task 1 (id ")
            && report.contains("spawned at tests/toolkit_watchdog.rs:")
            && report.contains("has been in one poll for"),
        "{out}"
    );
    assert!(
        report.contains(
            "run nested in the poll of the test body, preempted at its switch point at \
             tests/toolkit_watchdog.rs:"
        ),
        "{out}"
    );
    assert!(report.contains("schedule so far: "), "{out}");
    assert!(!report.contains("schedule so far: fifo"), "{out}");
    assert!(report.contains("replay: RUNTIME_TEST_REPLAY='"), "{out}");
    assert!(!out.contains("the check returned"), "{out}");
}

/// A task spins on a `std` atomic nobody sets: no decision point in its
/// poll, so `max_poll_decisions` never counts it.
#[test]
#[ignore = "a child of a_spin_on_a_std_atomic_is_reported: it ends its process"]
fn child_std_spin() {
    if !is_child() {
        return;
    }
    Check::new().watchdog(LIMIT).quiet(true).run(|| async {
        let flag = Arc::new(AtomicBool::new(false));
        let spinner = {
            let flag = flag.clone();
            waitrt::spawn(async move {
                while !flag.load(SeqCst) {
                    std::hint::spin_loop();
                }
            })
        };
        spinner.await.unwrap();
        flag.store(true, SeqCst);
    });
    eprintln!("the check returned");
}

#[test]
fn a_spin_on_a_std_atomic_is_reported() {
    let (status, out) = run_child("child_std_spin");
    assert_eq!(status.code(), Some(101), "{status}\n{out}");
    assert!(
        out.contains("waitrt::test_util watchdog: task 1 (id ")
            && out.contains("spawned at tests/toolkit_watchdog.rs:")
            && out.contains("it met no decision point in this poll"),
        "{out}"
    );
    assert!(!out.contains("the check returned"), "{out}");
}

/// A blocking job that outlives the limit fails the run as `External`,
/// and the report names the job's spawn site (it named none: an
/// independent probe) and what the check's tasks sleep on.
/// The line of the `spawn_blocking` below.
static JOB_LINE: AtomicU32 = AtomicU32::new(0);

#[test]
fn outside_work_that_never_finishes_names_its_spawn_site() {
    let failure = Check::new()
        .watchdog(LIMIT)
        .quiet(true)
        .try_run(|| async {
            // The job waits for `done`, which the body drops when the
            // failed run drops it: the job then ends.
            let (done, wait) = std::sync::mpsc::channel::<()>();
            JOB_LINE.store(line!() + 1, SeqCst);
            let job = waitrt::task::spawn_blocking(move || {
                let _ = wait.recv_timeout(Duration::from_secs(30));
            });
            job.await.unwrap();
            drop(done);
        })
        .unwrap_err();
    assert_eq!(failure.kind(), FailureKind::External);
    let report = failure.report();
    assert!(report.contains("did not finish within 300ms"), "{report}");
    let site = format!(
        "spawned at tests/toolkit_watchdog.rs:{}:",
        JOB_LINE.load(SeqCst)
    );
    assert!(report.contains(&site), "no `{site}` in:\n{report}");
    assert!(report.contains("the test body"), "{report}");
}
