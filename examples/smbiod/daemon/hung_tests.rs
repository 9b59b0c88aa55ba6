//! A hung server hangs nobody (issue 25: with the server frozen for 75 s
//! the client waited without an error). The server runs in a child
//! process (this test binary re-executed as `smbiod --stay`) and is frozen
//! for real with SIGSTOP; only the child is ever signalled.

use std::io::BufRead;
use std::process::{Child, Command as Proc, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::tests::rt;
use super::testserver::TestServer;
use crate::client::api::{Client, ConnectOptions};
use crate::client::ClientError;
use crate::wire::Command;
use crate::workload::pattern;

const CHILD: &str = "SMBIOD_HUNG_SERVER_CHILD";
/// Every wait in these tests panics after this: a hang guard, not a timing
/// assertion.
const GUARD: Duration = Duration::from_secs(60);

fn opts(timeout: Duration) -> ConnectOptions {
    let mut o = ConnectOptions::new("share");
    o.timeout = timeout;
    o
}

/// `fut`, or a panic naming `what` if it has not finished within [`GUARD`].
async fn guarded<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    match waitrt::time::timeout(GUARD, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: still waiting after {GUARD:?} (a hang)"),
    }
}

/// The server child: `smbiod --stay`, its address parsed from its output.
struct ServerChild {
    child: Child,
    addr: String,
    done: Arc<AtomicBool>,
}

impl ServerChild {
    fn start(test: &str) -> ServerChild {
        let mut child = Proc::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--nocapture"])
            .env(CHILD, "1")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        // Watchdog: SIGKILL the child (stopped or not) if the test is not
        // done in time, so that nothing outlives it.
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        std::thread::spawn(move || {
            for _ in 0..1200 {
                std::thread::sleep(Duration::from_millis(100));
                if d.load(Ordering::Acquire) {
                    return;
                }
            }
            let _ = Proc::new("kill").args(["-KILL", &pid.to_string()]).status();
        });
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let (mut addr, mut seen) = (None, String::new());
        for _ in 0..1000 {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                break;
            }
            seen += &line;
            // Anywhere in the line: one test at a time, libtest prints
            // `test NAME ...` before the child's output, on its line.
            if let Some((_, rest)) = line.split_once("embedded SMB2 server on ") {
                addr = rest.split_whitespace().next().map(str::to_string);
            }
            if line.contains("serving until") {
                break;
            }
        }
        let Some(addr) = addr.filter(|_| seen.contains("serving until")) else {
            // Not left running after the test fails (a flake hunt found
            // one still alive, its parent gone).
            done.store(true, Ordering::Release);
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server child did not say where it serves:\n{seen}");
        };
        // Keep draining its output so that it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        ServerChild { child, addr, done }
    }

    fn signal(&self, sig: &str) {
        let st = Proc::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "kill {sig}");
    }

    /// SIGSTOP, then waits until every thread of the child has stopped:
    /// `kill` returns before they all have (a thread on another CPU, or a
    /// descheduled vCPU, stops a little later and could answer meanwhile).
    fn freeze(&self) {
        self.signal("-STOP");
        let tasks = format!("/proc/{}/task", self.child.id());
        for _ in 0..10_000 {
            let all_stopped = std::fs::read_dir(&tasks).unwrap().all(|t| {
                let stat =
                    std::fs::read_to_string(t.unwrap().path().join("stat")).unwrap_or_default();
                // the state follows the parenthesised command name
                let state = stat
                    .rsplit_once(')')
                    .and_then(|(_, r)| r.split_whitespace().next());
                matches!(state, Some("T" | "t"))
            });
            if all_stopped {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("the server child never stopped");
    }

    /// SIGTERM, and the exit code it stops with.
    fn stop(&mut self) -> Option<i32> {
        self.signal("-TERM");
        let code = self.child.wait().unwrap().code();
        self.done.store(true, Ordering::Release);
        code
    }
}

impl Drop for ServerChild {
    /// A failed test leaves no frozen child behind.
    fn drop(&mut self) {
        if !self.done.swap(true, Ordering::AcqRel) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The server is frozen with SIGSTOP: the caller whose request gets no
/// reply gets `TimedOut` and declares the connection dead, so a caller who
/// started later gets `Disconnected` at once; an idle connection finds out
/// by itself (its keepalive ECHO goes unanswered); connecting to the frozen
/// server times out. Thawed, the server serves again. Watched failing: with
/// the per-request timeout removed the first caller hung (the guard fired);
/// with `Shared::timed_out` not killing, the later caller got `TimedOut`
/// only after its own full timeout instead of `Disconnected`; with the
/// keepalive's `Dead` ignored, the idle connection never noticed.
#[test]
fn a_frozen_server_times_callers_out_and_is_declared_dead() {
    if std::env::var_os(CHILD).is_some() {
        // The child: the program as a staying embedded server. (Inside the
        // #[test] fn: benches/smbiod.rs compiles this module without `cli`.)
        let args = [
            "--stay",
            "--callers",
            "1",
            "--rounds",
            "1",
            "--size",
            "1000",
        ];
        let code = crate::cli::main_with(args.iter().map(|a| a.to_string()).collect());
        std::process::exit(code);
    }
    let mut server = ServerChild::start(
        "daemon::hung_tests::a_frozen_server_times_callers_out_and_is_declared_dead",
    );
    let addr = server.addr.clone();
    // The busy connection's own keepalive would declare it dead half a
    // timeout after its callers time out: a wide margin, so that even a
    // starved runtime lets the callers' timeouts come first.
    let t = Duration::from_secs(4);
    let short = Duration::from_secs(1);
    rt().block_on(async {
        let busy = Client::connect(&addr, &opts(t)).await.unwrap();
        let idle = Client::connect(&addr, &opts(short)).await.unwrap();
        idle.list("").await.unwrap();
        busy.write_file("frozen.bin", &pattern(3, 3, 5000))
            .await
            .unwrap();

        server.freeze();
        let first = {
            let c = busy.clone();
            waitrt::spawn(async move { c.file_size("frozen.bin").await })
        };
        // A second caller starts half a timeout later: the first one's
        // timeout declares the connection dead before its own would end.
        waitrt::time::sleep(t / 2).await;
        let second = {
            let c = busy.clone();
            waitrt::spawn(async move { c.read_file("frozen.bin").await })
        };
        let r1 = guarded("the first caller", first).await.unwrap();
        assert!(
            matches!(r1, Err(ClientError::TimedOut(d)) if d == t),
            "{r1:?}"
        );
        // Declared dead by that timeout itself, before the caller returned
        // (not later by the keepalive).
        let why = busy.daemon().dead_reason().expect("declared dead");
        assert!(why.contains("nothing received"), "{why}");
        let r2 = guarded("the second caller", second).await.unwrap();
        assert!(matches!(r2, Err(ClientError::Disconnected(_))), "{r2:?}");
        assert!(matches!(
            busy.list("").await,
            Err(ClientError::Disconnected(_))
        ));

        // The idle connection: no caller, yet it finds out by itself.
        guarded("the idle connection's keepalive", async {
            while idle.daemon().dead_reason().is_none() {
                waitrt::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        let why = idle.daemon().dead_reason().unwrap();
        assert!(why.contains("keepalive"), "{why}");
        assert!(idle.daemon().stats().acct.echoes >= 1);
        assert!(matches!(
            idle.list("").await,
            Err(ClientError::Disconnected(_))
        ));

        // A new connection to the frozen server: the kernel completes the
        // TCP handshake, NEGOTIATE is never answered.
        let r = guarded("connecting", Client::connect(&addr, &opts(short))).await;
        assert!(matches!(r, Err(ClientError::TimedOut(_))), "{r:?}");

        server.signal("-CONT");
        let c = guarded("after the thaw", Client::connect(&addr, &opts(t)))
            .await
            .unwrap();
        assert_eq!(
            c.read_file("frozen.bin").await.unwrap(),
            pattern(3, 3, 5000)
        );
        c.logoff().await.unwrap();
    });
    assert_eq!(server.stop(), Some(0), "a clean stop after the freeze");
}

/// A server that answers everything but one READ: that caller gets
/// `TimedOut`, but the server still answers (the keepalive ECHO sent while
/// the READ waits is answered), so the connection stays up for everybody;
/// the late reply is discarded when it comes. Watched failing with the
/// ECHO not sent: the silent wait declared the connection dead.
#[test]
fn a_lost_reply_times_out_its_caller_only() {
    let ts = TestServer::start("lost-reply");
    rt().block_on(async {
        let c = Client::connect(&ts.addr.to_string(), &opts(Duration::from_secs(2)))
            .await
            .unwrap();
        let data = pattern(4, 4, 4096);
        c.write_file("l.bin", &data).await.unwrap();
        let fid = c.open("l.bin", false).await.unwrap();
        ts.hold(Some(Command::Read as u16));
        let r = guarded("the READ", c.read_at(fid, 0, 4096)).await;
        assert!(matches!(r, Err(ClientError::TimedOut(_))), "{r:?}");
        assert!(c.daemon().dead_reason().is_none());
        assert!(ts.commands().contains(&(Command::Echo as u16)));
        ts.hold(None);
        assert_eq!(c.read_at(fid, 0, 4096).await.unwrap(), data);
        ts.release();
        assert_eq!(c.read_file("l.bin").await.unwrap(), data);
        let s = c.daemon().stats();
        assert_eq!((s.acct.discarded, s.acct.overdrawn), (1, 0));
        assert!(s.acct.echoes >= 1);
        c.close(fid).await.unwrap();
        c.logoff().await.unwrap();
    });
}

/// An idle connection to a healthy server keeps probing and stays up.
#[test]
fn keepalive_echoes_keep_an_idle_connection() {
    let ts = TestServer::start("keepalive");
    rt().block_on(async {
        let c = Client::connect(&ts.addr.to_string(), &opts(Duration::from_millis(400)))
            .await
            .unwrap();
        guarded("three ECHOs", async {
            while ts
                .commands()
                .iter()
                .filter(|&&x| x == Command::Echo as u16)
                .count()
                < 3
            {
                waitrt::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(c.daemon().dead_reason().is_none());
        c.list("").await.unwrap();
        c.logoff().await.unwrap();
    });
}

/// A server that answers everything until the first WRITE, then never
/// reads again (a fixed receive buffer, so the client's sends stall) but
/// keeps the connection busy: an interim `STATUS_PENDING` for that WRITE
/// every 50 ms, which refreshes the client's keepalive. Stops pestering
/// when `done` is set, the client goes, or after 120 s (past the guard).
struct StallingServer {
    addr: String,
    stalled: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
}

impl StallingServer {
    fn start(tag: &str) -> StallingServer {
        use crate::server::{Connection, ShareConfig};
        use crate::wire::header::{FLAG_ASYNC, FLAG_SERVER_TO_REDIR};
        use crate::wire::message::ErrorResponse;
        use crate::wire::{frame, status, Header};
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("smbiod-stall-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let share = ShareConfig::new("share", &dir).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stalled = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let (st, dn) = (stalled.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            // Fixed, not autotuned (up to 32 MiB here): the unread WRITEs
            // must fill it and the client's send buffer.
            let _ = socket2::SockRef::from(&s).set_recv_buffer_size(256 << 10);
            let mut conn = Connection::new(share);
            let write = loop {
                let Ok(Some(msg)) = frame::read_blocking(&mut s, frame::MAX_FRAME_LEN) else {
                    return;
                };
                let h = Header::decode(&msg).unwrap();
                if h.command == Command::Write as u16 {
                    break h;
                }
                s.write_all(&conn.handle(&msg)).unwrap();
            };
            st.store(true, Ordering::Release);
            let interim = Header {
                status: status::PENDING,
                flags: FLAG_SERVER_TO_REDIR | FLAG_ASYNC,
                async_id: 1,
                credits: 0,
                ..write
            };
            let mut msg = Vec::new();
            interim.encode(&mut msg);
            ErrorResponse::default().encode(&mut msg).unwrap();
            let f = frame::encode(&msg).unwrap();
            for _ in 0..2400 {
                if dn.load(Ordering::Acquire) || s.write_all(&f).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        StallingServer {
            addr,
            stalled,
            done,
        }
    }

    /// Waits until the server has stopped reading.
    async fn wait_stalled(&self) {
        guarded("the server stops reading", async {
            while !self.stalled.load(Ordering::Acquire) {
                waitrt::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    }
}

impl Drop for StallingServer {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
    }
}

/// A client whose sends stall (the server stopped reading) while the
/// server keeps talking (interim replies, which refresh the keepalive)
/// ends at the request timeout: the stuck write declares the connection
/// dead, and shutdown returns (an independent probe, hang_dump.py: the
/// daemon waited in its write until the connection was declared dead,
/// which never happened, and shutdown waited for the daemon, forever).
#[test]
fn a_stalled_send_ends_at_the_timeout() {
    let server = StallingServer::start("timeout");
    rt().block_on(async {
        let mut o = opts(Duration::from_secs(1));
        o.credit_request = 8192; // a window wide enough to fill the socket
        let c = Client::connect(&server.addr, &o).await.unwrap();
        let data = pattern(5, 5, 32 << 20);
        let r = guarded("the WRITEs", c.write_file("s.bin", &data)).await;
        assert!(r.is_err(), "{r:?}");
        guarded("shutdown", c.daemon().shutdown()).await;
        let why = c.daemon().dead_reason().expect("declared dead");
        assert!(why.contains("stopped reading"), "{why}");
    });
}

/// The same stall with a long timeout: a signal to the daemon (what a
/// routed Ctrl-C or SIGTERM raises) ends the stuck write at once, and the
/// daemon stops (the probe: SIGTERM no longer stopped the client).
#[test]
fn a_signal_ends_a_stalled_send() {
    let server = StallingServer::start("signal");
    rt().block_on(async {
        let mut o = opts(Duration::from_secs(3600));
        o.credit_request = 8192;
        let c = Client::connect(&server.addr, &o).await.unwrap();
        let writer = {
            let c = c.clone();
            waitrt::spawn(async move { c.write_file("s.bin", &pattern(6, 6, 32 << 20)).await })
        };
        server.wait_stalled().await;
        c.daemon().interrupt();
        let r = guarded("the WRITEs", writer).await.unwrap();
        assert!(r.is_err(), "{r:?}");
        guarded("the daemon stops", async {
            while !c.daemon().is_stopped() {
                waitrt::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    });
}
