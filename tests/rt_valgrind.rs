//! The runtime runs under valgrind. Its sub-millisecond timer reads
//! `CLOCK_MONOTONIC` through rustix, which looked the vDSO up by parsing
//! the auxiliary vector itself: under valgrind that found the kernel's
//! vDSO address, which valgrind does not map, and the first sub-millisecond
//! sleep killed the program with SIGSEGV (found when callgrind could not
//! profile the timers bench; tokio runs there). rustix now asks libc for
//! the auxiliary vector (`use-libc-auxv`), which valgrind rewrites.
//!
//! A child process runs this binary's `child_*` test under memcheck; the
//! test needs valgrind (CI installs it; elsewhere a missing valgrind is a
//! skip, printed to stderr).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

mod support;

const CHILD: &str = "WAITRT_VALGRIND_CHILD";

#[test]
fn sub_millisecond_timers_and_sockets_run_under_memcheck() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("valgrind is not installed, and CI=true: install it");
        }
        let _ = writeln!(std::io::stderr(), "SKIP: valgrind is not installed");
        return;
    }
    let mut command = Command::new("valgrind");
    command
        .args(["--error-exitcode=9", "--quiet"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "child_sleeps_and_echoes",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (status, text) = support::run_with_watchdog(command);
    assert!(status.is_some_and(|s| s.success()), "{status:?}\n{text}");
    assert!(text.contains("child done"), "{text}");
}

/// The child half: sub-millisecond sleeps beside a registered socket (the
/// reactor arms its `timerfd`) and a TCP round trip, on a current-thread
/// runtime.
#[test]
fn child_sleeps_and_echoes() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let rt = waitrt::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // A registered socket first: with none, a thread parks off the
        // reactor and its timer is not armed.
        let listener = waitrt::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        for _ in 0..20 {
            waitrt::time::sleep(Duration::from_micros(200)).await;
        }
        let server = waitrt::spawn(async move {
            use futures::{AsyncReadExt, AsyncWriteExt};
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4];
            stream.read_exact(&mut buf).await.unwrap();
            stream.write_all(&buf).await.unwrap();
        });
        use futures::{AsyncReadExt, AsyncWriteExt};
        let mut client = waitrt::net::TcpStream::connect(addr).await.unwrap();
        client.write_all(b"ping").await.unwrap();
        let mut back = [0u8; 4];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"ping");
        server.await.unwrap();
    });
    println!("child done");
}
