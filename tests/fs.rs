//! `waitrt::fs` on real files in temporary directories, on every
//! scheduler flavour (current-thread, mt(1), mt(2)) through `rt_test!`.
//!
//! Covered: whole-file round trips and the directory functions, many
//! small writes through a `File`, seeks after data read ahead, `set_len`,
//! errors that name their paths, concurrent readers and writers, a
//! 1,000-entry `read_dir` stream, a `File` dropped with writes pending
//! (still written), and written when the runtime shuts down right after,
//! write-behind (small writes return while a write is stuck in a FIFO), a
//! background write error reported once, on the next operation, a seek
//! given up mid-flight, and the error of a job that never ran (the runtime
//! shut down) naming its path.
#[macro_use]
mod support;

use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::Context;
use std::time::{Duration, Instant};

use futures::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt, StreamExt};
use waitrt::fs::{self, File, OpenOptions};

/// A fresh directory, removed with everything in it on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("rt-fs-{}-{}", std::process::id(), NEXT.fetch_add(1, SeqCst));
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `len` bytes of a pattern that does not repeat every power of two.
fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + seed) % 251) as u8).collect()
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

rt_test! {
    fn round_trips(rt) {
        let dir = TempDir::new();
        rt.block_on(async {
            let a = dir.path("a");
            fs::write(&a, b"hello").await.unwrap();
            assert_eq!(fs::read(&a).await.unwrap(), b"hello");
            assert_eq!(fs::read_to_string(&a).await.unwrap(), "hello");
            assert_eq!(fs::metadata(&a).await.unwrap().len(), 5);
            assert!(fs::try_exists(&a).await.unwrap());

            assert_eq!(fs::copy(&a, dir.path("b")).await.unwrap(), 5);
            fs::rename(dir.path("b"), dir.path("c")).await.unwrap();
            assert!(!fs::try_exists(dir.path("b")).await.unwrap());
            fs::hard_link(&a, dir.path("d")).await.unwrap();
            assert_eq!(fs::read(dir.path("d")).await.unwrap(), b"hello");

            fs::symlink(&a, dir.path("link")).await.unwrap();
            assert_eq!(fs::read_link(dir.path("link")).await.unwrap(), a);
            assert!(fs::symlink_metadata(dir.path("link")).await.unwrap().file_type().is_symlink());
            assert_eq!(
                fs::canonicalize(dir.path("link")).await.unwrap(),
                std::fs::canonicalize(&a).unwrap()
            );

            let mut perm = fs::metadata(&a).await.unwrap().permissions();
            perm.set_readonly(true);
            fs::set_permissions(&a, perm).await.unwrap();
            assert!(fs::metadata(&a).await.unwrap().permissions().readonly());

            fs::create_dir(dir.path("sub")).await.unwrap();
            fs::create_dir_all(dir.path("sub/x/y")).await.unwrap();
            fs::write(dir.path("sub/x/y/f"), "").await.unwrap();
            fs::remove_dir(dir.path("sub/x/y")).await.unwrap_err(); // not empty
            fs::remove_file(dir.path("sub/x/y/f")).await.unwrap();
            fs::remove_dir(dir.path("sub/x/y")).await.unwrap();
            fs::remove_dir_all(dir.path("sub")).await.unwrap();
            assert!(!fs::try_exists(dir.path("sub")).await.unwrap());

            // A File: create_new, write, reopen, read.
            let mut f = File::create_new(dir.path("e")).await.unwrap();
            assert_eq!(
                File::create_new(dir.path("e")).await.unwrap_err().kind(),
                io::ErrorKind::AlreadyExists
            );
            let data = pattern(3 * 1024 * 1024 + 17, 1); // more than one 2 MiB op
            f.write_all(&data).await.unwrap();
            f.flush().await.unwrap();
            assert_eq!(f.metadata().await.unwrap().len(), data.len() as u64);
            let mut got = Vec::new();
            File::open(dir.path("e")).await.unwrap().read_to_end(&mut got).await.unwrap();
            assert!(got == data, "read back differs");
            f.sync_all().await.unwrap();
            f.sync_data().await.unwrap();
            let std = f.into_std().await;
            assert_eq!(std.metadata().unwrap().len(), data.len() as u64);
        });
    }
}

rt_test! {
    fn many_small_writes(rt) {
        let dir = TempDir::new();
        rt.block_on(async {
            let path = dir.path("lines");
            let mut f = File::create(&path).await.unwrap();
            let mut expected = String::new();
            for i in 0..10_000 {
                let line = format!("line {i}\n");
                f.write_all(line.as_bytes()).await.unwrap();
                expected.push_str(&line);
            }
            f.flush().await.unwrap();
            assert!(fs::read_to_string(&path).await.unwrap() == expected, "lines differ");

            // Append mode through OpenOptions.
            let mut f = OpenOptions::new().append(true).open(&path).await.unwrap();
            f.write_all(b"tail\n").await.unwrap();
            f.close().await.unwrap();
            assert!(fs::read_to_string(&path).await.unwrap().ends_with("line 9999\ntail\n"));
        });
    }
}

/// Polls one 64 KiB read once and drops it, with the runtime's only pool
/// thread held by a blocking job meanwhile, so the read's job is surely
/// queued when polled (left pending: on a busy machine an unheld pool
/// could finish it before the first poll returned, and then nothing was
/// read ahead). Its job then reads ahead data no one has consumed yet.
/// Needs a runtime with `max_blocking_threads(1)`.
async fn read_ahead(file: &mut File) {
    let (gate, started) = (support::Gate::new(), support::Counter::new());
    let (g, s) = (gate.clone(), started.clone());
    let holder = waitrt::spawn_blocking(move || {
        s.inc();
        g.blocking_wait();
    });
    // The holder runs first: wait until it holds the thread, on what it
    // says (not a count of yields: a loaded machine may not start the
    // pool thread within any number of them).
    waitrt::time::timeout(support::WAIT_LIMIT, started.wait_for(1))
        .await
        .expect("the holder job never started on the pool thread");
    let mut big = vec![0; 64 * 1024];
    let waker = futures::task::noop_waker();
    let pending = Pin::new(&mut *file)
        .poll_read(&mut Context::from_waker(&waker), &mut big)
        .is_pending();
    assert!(
        pending,
        "a read polled while the only pool thread is held completed"
    );
    gate.open();
    holder.await.unwrap();
}

/// A runtime of `workers` (`None`: current-thread) with one pool thread.
fn one_pool_thread(workers: Option<usize>) -> waitrt::Runtime {
    let mut builder = match workers {
        None => waitrt::Builder::new_current_thread(),
        Some(n) => {
            let mut b = waitrt::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    };
    builder
        .enable_all()
        .max_blocking_threads(1)
        .build()
        .unwrap()
}

#[test]
fn data_read_ahead_is_given_back() {
    for workers in [None, Some(1), Some(2)] {
        let dir = TempDir::new();
        support::watchdog(
            "data_read_ahead_is_given_back",
            support::RT_LIMIT,
            move || {
                one_pool_thread(workers).block_on(async move {
                    let path = dir.path("r");
                    let data = pattern(1 << 20, 5);
                    fs::write(&path, &data).await.unwrap();
                    let mut f = OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(&path)
                        .await
                        .unwrap();
                    // Data read ahead (a 64 KiB read left pending, then 10 bytes
                    // consumed): the position is where the caller is, for a
                    // seek from the current position and for a write.
                    for round in 0..20u64 {
                        let at = round * 50_000;
                        f.seek(SeekFrom::Start(at)).await.unwrap();
                        read_ahead(&mut f).await;
                        let mut ten = [0; 10];
                        f.read_exact(&mut ten).await.unwrap();
                        assert_eq!(&ten[..], &data[at as usize..at as usize + 10]);
                        assert_eq!(f.seek(SeekFrom::Current(0)).await.unwrap(), at + 10);
                        f.read_exact(&mut ten).await.unwrap();
                        assert_eq!(&ten[..], &data[at as usize + 10..at as usize + 20]);
                        // A read served from what was read ahead, then a write:
                        // the write lands right after the bytes the caller read.
                        f.read_exact(&mut ten).await.unwrap();
                        f.write_all(b"XY").await.unwrap(); // at + 30
                        f.flush().await.unwrap();
                        assert_eq!(f.seek(SeekFrom::Current(0)).await.unwrap(), at + 32);
                    }
                    let now = fs::read(&path).await.unwrap();
                    for round in 0..20usize {
                        let at = round * 50_000 + 30;
                        assert_eq!(
                            &now[at..at + 2],
                            b"XY",
                            "write landed elsewhere (round {round})"
                        );
                    }
                });
            },
        );
    }
}

rt_test! {
    fn seek_read_and_set_len(rt) {
        let dir = TempDir::new();
        rt.block_on(async {
            let path = dir.path("s");
            let data = pattern(1 << 20, 3);
            fs::write(&path, &data).await.unwrap();

            let mut f = OpenOptions::new().read(true).write(true).open(&path).await.unwrap();
            f.seek(SeekFrom::Start(1000)).await.unwrap();
            let mut buf = [0; 100];
            f.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf[..], &data[1000..1100]);
            assert_eq!(f.seek(SeekFrom::Current(0)).await.unwrap(), 1100);
            f.seek(SeekFrom::End(-10)).await.unwrap();
            let mut tail = Vec::new();
            f.read_to_end(&mut tail).await.unwrap();
            assert_eq!(&tail[..], &data[data.len() - 10..]);

            // set_len: truncate, then extend with zeros; the cursor stays.
            f.seek(SeekFrom::Start(50)).await.unwrap();
            f.set_len(10).await.unwrap();
            assert_eq!(f.metadata().await.unwrap().len(), 10);
            assert_eq!(f.seek(SeekFrom::Current(0)).await.unwrap(), 50);
            f.set_len(100).await.unwrap();
            let now = fs::read(&path).await.unwrap();
            assert_eq!(&now[..10], &data[..10]);
            assert!(now[10..].iter().all(|&b| b == 0) && now.len() == 100);
        });
    }
}

rt_test! {
    fn errors_name_their_paths(rt) {
        let dir = TempDir::new();
        rt.block_on(async {
            let missing = dir.path("missing-file");
            let name = missing.display().to_string();
            let check = |err: io::Error, what: &str| {
                assert_eq!(err.kind(), io::ErrorKind::NotFound, "{what}: {err}");
                assert!(err.to_string().contains(&name), "{what}: message {err:?} lacks the path");
                let os = err.get_ref().and_then(|e| e.source()).and_then(|e| e.downcast_ref::<io::Error>());
                assert_eq!(os.and_then(io::Error::raw_os_error), Some(2), "{what}: no ENOENT source");
            };
            check(fs::read(&missing).await.unwrap_err(), "read");
            check(fs::read_to_string(&missing).await.unwrap_err(), "read_to_string");
            check(fs::metadata(&missing).await.unwrap_err(), "metadata");
            check(fs::remove_file(&missing).await.unwrap_err(), "remove_file");
            check(File::open(&missing).await.unwrap_err(), "File::open");
            check(fs::read_dir(&missing).await.unwrap_err(), "read_dir");
            check(fs::copy(&missing, dir.path("to")).await.unwrap_err(), "copy");
            let err = fs::rename(&missing, dir.path("renamed")).await.unwrap_err();
            assert!(err.to_string().contains("renamed"), "rename names both: {err}");
            check(err, "rename");
        });
    }
}

rt_test! {
    /// Copying a file onto itself (the same path, a symlink to it, a hard
    /// link) is an error naming both paths, and the file keeps its
    /// contents: `std::fs::copy` (and tokio's) opened the destination for
    /// writing, truncating it, then copied what was left, nothing, and
    /// returned `Ok(0)` (an independent probe of fs).
    fn copying_a_file_onto_itself_is_an_error_and_loses_nothing(rt) {
        let dir = TempDir::new();
        rt.block_on(async {
            let a = dir.path("a");
            fs::write(&a, b"precious").await.unwrap();
            fs::symlink(&a, dir.path("link")).await.unwrap();
            fs::hard_link(&a, dir.path("hard")).await.unwrap();
            for to in [a.clone(), dir.path("link"), dir.path("hard")] {
                let err = fs::copy(&a, &to).await.unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
                assert!(err.to_string().contains("the same file"), "{err}");
                assert!(err.to_string().contains(&to.display().to_string()), "{err}");
                assert_eq!(fs::read(&a).await.unwrap(), b"precious", "onto {}", to.display());
            }
            // A copy to another file still works.
            assert_eq!(fs::copy(&a, dir.path("b")).await.unwrap(), 8);
        });
    }
}

rt_test! {
    fn concurrent_readers_and_writers(rt) {
        let dir = TempDir::new();
        let base = dir.0.clone();
        rt.block_on(async move {
            let tasks: Vec<_> = (0..16)
                .map(|i| {
                    let path = base.join(format!("f{i}"));
                    waitrt::spawn(async move {
                        let data = pattern(256 * 1024 + i, i);
                        let mut f = File::create(&path).await.unwrap();
                        for chunk in data.chunks(4096 + i) {
                            f.write_all(chunk).await.unwrap();
                        }
                        f.close().await.unwrap();
                        let mut got = Vec::new();
                        File::open(&path).await.unwrap().read_to_end(&mut got).await.unwrap();
                        assert!(got == data, "file {i} differs");
                        assert_eq!(fs::read(&path).await.unwrap().len(), data.len());
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
    }
}

rt_test! {
    fn read_dir_streams_1000_entries(rt) {
        let dir = TempDir::new();
        for i in 0..1000 {
            std::fs::write(dir.path(&format!("e{i:04}")), [1]).unwrap();
        }
        std::fs::create_dir(dir.path("subdir")).unwrap();
        rt.block_on(async {
            let mut names: Vec<String> = fs::read_dir(&dir.0)
                .await
                .unwrap()
                .map(|entry| entry.unwrap().file_name().into_string().unwrap())
                .collect()
                .await;
            names.sort();
            let mut expected: Vec<String> = (0..1000).map(|i| format!("e{i:04}")).collect();
            expected.push("subdir".into());
            assert_eq!(names, expected);

            let mut entries = fs::read_dir(&dir.0).await.unwrap();
            let (mut files, mut dirs) = (0, 0);
            while let Some(entry) = entries.next_entry().await.unwrap() {
                assert_eq!(entry.path(), dir.0.join(entry.file_name()));
                if entry.file_type().await.unwrap().is_dir() {
                    dirs += 1;
                } else {
                    assert_eq!(entry.metadata().await.unwrap().len(), 1);
                    files += 1;
                }
            }
            assert_eq!((files, dirs), (1000, 1));
            assert!(entries.next_entry().await.unwrap().is_none(), "None again after the end");
        });
    }
}

rt_test! {
    fn file_dropped_with_writes_pending_still_writes(rt) {
        let dir = TempDir::new();
        rt.block_on(async {
            // Large writes: a 2 MiB job in flight and more behind it.
            let big = dir.path("big");
            let data = pattern(8 * 1024 * 1024, 5);
            let mut f = File::create(&big).await.unwrap();
            f.write_all(&data).await.unwrap();
            drop(f);
            let len = data.len() as u64;
            eventually("8 MiB after drop", || {
                std::fs::metadata(&big).map(|m| m.len()).ok() == Some(len)
            })
            .await;
            assert!(fs::read(&big).await.unwrap() == data, "contents differ");

            // Small writes: the last ones sit in the write-behind buffer.
            let small = dir.path("small");
            let mut f = File::create(&small).await.unwrap();
            let mut expected = Vec::new();
            for i in 0..2000u32 {
                f.write_all(&i.to_le_bytes()).await.unwrap();
                expected.extend_from_slice(&i.to_le_bytes());
            }
            drop(f);
            let len = expected.len() as u64;
            eventually("small writes after drop", || {
                std::fs::metadata(&small).map(|m| m.len()).ok() == Some(len)
            })
            .await;
            assert_eq!(fs::read(&small).await.unwrap(), expected);
        });
    }
}

/// A `File` written and dropped just before its runtime is: the write job
/// is still queued (the one pool thread is busy) when shutdown begins, and
/// the data must still reach the file (the caller was told `Ok`). Found by
/// an independent fault probe: shutdown dropped the queued job, and the
/// file stayed empty (10 of 10 runs); tokio's `File` runs such writes as
/// mandatory jobs. Each flavour, 20 rounds.
#[test]
fn a_write_queued_when_the_runtime_shuts_down_still_reaches_the_file() {
    for workers in [None, Some(1), Some(2)] {
        let dir = TempDir::new();
        support::watchdog(
            "a_write_queued_when_the_runtime_shuts_down_still_reaches_the_file",
            support::RT_LIMIT,
            move || {
                for round in 0..20 {
                    let path = dir.path(&format!("w{round}"));
                    let rt = one_pool_thread(workers);
                    let data = pattern(64 * 1024 + round, round);
                    rt.block_on(async {
                        let mut f = File::create(&path).await.unwrap();
                        // The only pool thread sleeps: the write job queues
                        // behind it, and is still queued at shutdown.
                        let _busy = waitrt::spawn_blocking(|| {
                            std::thread::sleep(Duration::from_millis(20))
                        });
                        f.write_all(&data).await.unwrap();
                        f.write_all(b"tail").await.unwrap();
                    });
                    drop(rt);
                    let mut expected = data.clone();
                    expected.extend_from_slice(b"tail");
                    let written = std::fs::read(&path).unwrap();
                    assert!(
                        written == expected,
                        "{workers:?} round {round}: {} of {} bytes in the file",
                        written.len(),
                        expected.len()
                    );
                }
            },
        );
    }
}

/// A seek whose future is dropped while its job runs, then a seek
/// elsewhere: the second must go where it asks (the first one's job moved
/// the cursor, as tokio's does, and is not taken for the second's). Found
/// by an independent fault probe: the second seek returned the first one's
/// position (15) and the read after it the bytes there (20 of 20 runs).
/// A seek to the same position as the dropped one takes its outcome.
#[test]
fn a_seek_given_up_mid_flight_does_not_answer_the_next_one() {
    use futures::FutureExt;
    for workers in [None, Some(1), Some(2)] {
        let dir = TempDir::new();
        support::watchdog(
            "a_seek_given_up_mid_flight_does_not_answer_the_next_one",
            support::RT_LIMIT,
            move || {
                one_pool_thread(workers).block_on(async move {
                    let path = dir.path("s");
                    fs::write(&path, b"0123456789abcdefghij").await.unwrap();
                    let mut f = File::open(&path).await.unwrap();
                    let mut three = [0; 3];
                    // Rounds in which each dropped seek was still in
                    // flight (its first poll `Pending`), which is what is
                    // tested; one that completed at once changes nothing.
                    let mut in_flight = [0; 3];
                    let busy =
                        || waitrt::spawn_blocking(|| std::thread::sleep(Duration::from_millis(20)));
                    for round in 0..10 {
                        // The only pool thread is busy: the first poll of
                        // the seek queues its job and returns `Pending`.
                        let sleeper = busy();
                        let given_up = f.seek(SeekFrom::Start(15)).now_or_never();
                        in_flight[0] += usize::from(given_up.is_none());
                        assert_eq!(f.seek(SeekFrom::Start(2)).await.unwrap(), 2);
                        f.read_exact(&mut three).await.unwrap();
                        assert_eq!(&three, b"234", "round {round}");
                        sleeper.await.unwrap();

                        // The same position again: the dropped seek's outcome.
                        let sleeper = busy();
                        let given_up = f.seek(SeekFrom::Start(7)).now_or_never();
                        in_flight[1] += usize::from(given_up.is_none());
                        assert_eq!(f.seek(SeekFrom::Start(7)).await.unwrap(), 7);
                        f.read_exact(&mut three).await.unwrap();
                        assert_eq!(&three, b"789", "round {round}");
                        sleeper.await.unwrap();

                        // From where the dropped seek went (the end less
                        // 5), a relative seek moves on from there.
                        let sleeper = busy();
                        let given_up = f.seek(SeekFrom::End(-5)).now_or_never();
                        in_flight[2] += usize::from(given_up.is_none());
                        assert_eq!(f.seek(SeekFrom::Current(-3)).await.unwrap(), 12);
                        f.read_exact(&mut three).await.unwrap();
                        assert_eq!(&three, b"cde", "round {round}");
                        sleeper.await.unwrap();
                    }
                    assert!(
                        in_flight.iter().all(|&n| n > 0),
                        "no round had a seek in flight: {in_flight:?}"
                    );
                });
            },
        );
    }
}

/// A function whose job never runs (the runtime shut down) still names
/// its path, as every other error here does.
#[test]
fn the_error_of_a_job_that_never_ran_names_the_path() {
    let dir = TempDir::new();
    let path = dir.path("after-shutdown");
    std::fs::write(&path, b"x").unwrap();
    let rt = waitrt::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    drop(rt);
    let _enter = handle.enter();
    let err = futures::executor::block_on(fs::read(&path)).unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&*path.to_string_lossy()), "{message}");
    assert!(message.contains("shut down"), "{message}");
    // Not a kind a `std`-style loop retries at once (it was `Interrupted`).
    assert_eq!(err.kind(), std::io::ErrorKind::Other, "{err}");
    let err = futures::executor::block_on(fs::copy(&path, dir.path("to"))).unwrap_err();
    assert!(err.to_string().contains("-> "), "{err}");
    let err = futures::executor::block_on(File::open(&path)).unwrap_err();
    assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
}

/// A write whose job cannot run (the pool has no thread and the OS
/// refuses one: a stack of 1 TiB, as `rt_faults` does) fails at the write,
/// not only at the next flush: told `Ok`, a caller that dropped the file
/// lost the bytes without a word (an independent probe, 3 of 3 runs;
/// tokio's write fails too). Each later write fails the same way, and
/// nothing is left pending for a flush to report.
#[test]
fn a_write_no_thread_can_run_fails_at_the_write() {
    use futures::AsyncWriteExt;
    let dir = TempDir::new();
    let path = dir.path("no-thread");
    let rt = waitrt::Builder::new_current_thread()
        .enable_all()
        .thread_stack_size(1 << 40)
        .build()
        .unwrap();
    rt.block_on(async {
        let std_file = std::fs::File::create(&path).unwrap();
        let mut file = File::from_std(std_file);
        let err = file.write_all(b"important").await.unwrap_err();
        assert!(err.to_string().contains("never ran"), "{err}");
        // The OS says `EAGAIN`; not `WouldBlock` here, which a caller
        // would take for "try again" (as it did, through `fs::read` too).
        assert_eq!(err.kind(), std::io::ErrorKind::Other, "{err}");
        let err = fs::read(&path).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::Other, "{err}");
        let again = file.write_all(b"again").await.unwrap_err();
        assert!(again.to_string().contains("never ran"), "{again}");
        // Nothing is left pending: a flush has nothing to report.
        file.flush().await.unwrap();
        // The same with the task's budget spent: the failed job's outcome
        // is taken, not polled (a poll said `Pending`, and the write `Ok`).
        let err = futures::future::poll_fn(|cx| {
            while waitrt::sync::coop::poll_proceed(cx).is_ready() {}
            futures::AsyncWrite::poll_write(std::pin::Pin::new(&mut file), cx, b"spent")
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("never ran"), "{err}");
    });
    assert_eq!(std::fs::read(&path).unwrap(), b"");
}

/// A FIFO at `path` (`mkfifo(1)`: std has no safe `mkfifo`).
fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo failed");
}

rt_test! {
    fn small_writes_return_while_a_write_is_stuck(rt) {
        let dir = TempDir::new();
        let fifo = dir.path("fifo");
        mkfifo(&fifo);
        // The reader opens the FIFO (meeting the writer's open), then
        // reads nothing until told: the first write job fills the pipe
        // (64 KiB) and blocks.
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let mut file = std::fs::File::open(fifo).unwrap();
                wait.recv().unwrap();
                let mut all = Vec::new();
                std::io::Read::read_to_end(&mut file, &mut all).unwrap();
                all
            })
        };
        let expected = rt.block_on(async {
            let mut f = OpenOptions::new().write(true).open(&fifo).await.unwrap();
            let mut expected = pattern(1 << 20, 9);
            f.write_all(&expected).await.unwrap();
            // With one pool job per write, the second write would wait for
            // the first, which waits for the reader: a hang.
            let small = async {
                for i in 0..10_000u32 {
                    f.write_all(&i.to_le_bytes()).await.unwrap();
                    expected.extend_from_slice(&i.to_le_bytes());
                }
            };
            waitrt::time::timeout(Duration::from_secs(20), small)
                .await
                .expect("small writes waited for the stuck write: no write-behind");
            go.send(()).unwrap();
            f.close().await.unwrap();
            drop(f);
            expected
        });
        let got = support::watchdog("fifo reader", support::RT_LIMIT, move || reader.join().unwrap());
        assert!(got == expected, "FIFO data differs");
    }
}

rt_test! {
    fn background_write_error_reported_once_on_next_operation(rt) {
        rt.block_on(async {
            // Every write to /dev/full fails with ENOSPC.
            let mut f = OpenOptions::new().write(true).open("/dev/full").await.unwrap();
            f.write_all(b"x").await.unwrap(); // accepted: the job fails later
            let err = f.flush().await.unwrap_err();
            assert_eq!(err.raw_os_error().or_else(|| {
                err.get_ref().and_then(|e| e.source()).and_then(|e| e.downcast_ref::<io::Error>()).and_then(io::Error::raw_os_error)
            }), Some(28), "ENOSPC: {err}");
            assert!(err.to_string().contains("/dev/full"), "{err}");
            f.flush().await.unwrap(); // reported once

            f.write_all(b"y").await.unwrap();
            let err = f.seek(SeekFrom::Start(0)).await.unwrap_err();
            assert!(err.to_string().contains("No space"), "a seek reports it: {err}");
            f.seek(SeekFrom::Start(0)).await.unwrap();
        });
    }
}

#[test]
fn fs_types_are_send_sync_unpin() {
    fn send_sync<T: Send + Sync + Unpin>() {}
    send_sync::<File>();
    send_sync::<fs::ReadDir>();
    send_sync::<fs::DirEntry>();
    send_sync::<OpenOptions>();
    fn send<T: Send>(_: &T) {}
    send(&fs::read("x"));
    send(&fs::write("x", b""));
}

/// Out of file descriptors, an fs call's error is the bare OS error, so
/// `raw_os_error()` names `EMFILE` (code that backs off on it reads that):
/// it came wrapped with the path, its raw error gone. Runs in a child
/// process (this binary again), whose descriptor limit it lowers.
#[test]
fn running_out_of_descriptors_keeps_the_os_error() {
    if std::env::var_os("FS_EMFILE_CHILD").is_some() {
        return emfile_child();
    }
    support::run_test_in_child(
        "running_out_of_descriptors_keeps_the_os_error",
        "FS_EMFILE_CHILD",
        "EMFILE KEPT",
    );
}

fn emfile_child() {
    let rt = waitrt::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Start the pool's thread while descriptors are left (nothing else
    // in a job needs one).
    rt.block_on(async { waitrt::spawn_blocking(|| ()).await })
        .unwrap();
    let mut held = support::use_up_descriptors(64);
    rt.block_on(async {
        let err = fs::read("/dev/null").await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
        let err = File::open("/dev/null").await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
        // A path error still names its path.
        drop(held.pop());
        let err = fs::read("/no/such/file").await.unwrap_err();
        assert!(err.to_string().contains("/no/such/file"), "{err}");
    });
    println!("EMFILE KEPT");
}
