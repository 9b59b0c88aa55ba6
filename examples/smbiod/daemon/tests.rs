//! smbiod against our own servers: the async embedded server, and the
//! controllable [`TestServer`] that holds replies back or sends garbage.

use std::sync::Arc;

use super::testserver::TestServer;
use crate::client::api::{Client, ConnectOptions};
use crate::client::ClientError;
use crate::server::{async_driver, ShareConfig};
use crate::wire::negotiate::DIALECTS;
use crate::wire::Command;
use crate::workload::{self, pattern, Plan, Progress};

/// A two-worker runtime with I/O and timers.
pub fn rt() -> waitrt::Runtime {
    waitrt::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Serves a fresh temp dir with the async driver; returns its address.
async fn embedded(tag: &str) -> String {
    let dir = std::env::temp_dir().join(format!("smbiod-emb-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hello.txt"), b"hello\n").unwrap();
    let share = ShareConfig::new("share", &dir).unwrap();
    let (addr, _) = async_driver::spawn("127.0.0.1:0", share).await.unwrap();
    addr.to_string()
}

#[test]
fn async_client_against_async_embedded_server_every_dialect() {
    rt().block_on(async {
        let addr = embedded("dialects").await;
        for d in DIALECTS {
            let mut opts = ConnectOptions::new("share");
            opts.dialects = vec![d];
            let c = Client::connect(&addr, &opts).await.unwrap();
            assert_eq!(c.daemon().dialect(), d);
            // big enough to be split into several chunks on every dialect
            let data = pattern(d as usize, 1, 3 * 1024 * 1024 + 17);
            let name = format!("emb-{d:04x}.bin");
            c.write_file(&name, &data).await.unwrap();
            assert_eq!(c.file_size(&name).await.unwrap(), data.len() as u64);
            assert_eq!(c.read_file(&name).await.unwrap(), data);
            let list = c.list("").await.unwrap();
            assert!(list.iter().any(|e| e.name == name));
            assert!(list.iter().any(|e| e.name == "hello.txt"));
            c.delete(&name).await.unwrap();
            assert!(matches!(
                c.file_size(&name).await,
                Err(ClientError::Status { .. })
            ));
            let s = c.daemon().stats();
            assert_eq!(s.acct.overdrawn, 0);
            assert!(s.acct.requests > 10 && s.acct.replies == s.acct.requests);
            c.logoff().await.unwrap();
            assert!(c.daemon().logged_off() && c.daemon().is_stopped());
            assert!(matches!(c.list("").await, Err(ClientError::Shutdown)));
        }
    });
}

#[test]
fn the_cli_workload_in_process_verifies_everything() {
    rt().block_on(async {
        let addr = embedded("cli").await;
        let c = Client::connect(&addr, &ConnectOptions::new("share"))
            .await
            .unwrap();
        let plan = Plan {
            callers: 64,
            rounds: 2,
            size: 70_000,
            tag: "cli-test".into(),
        };
        let out = workload::run(&c, &plan, Arc::new(Progress::default())).await;
        assert!(out.all_verified(), "{:?}", out.failures);
        assert_eq!((out.verified, out.total), (128, 128));
        let text = crate::report::summary(&out);
        assert!(text.contains("all 128 verified"), "{text}");
        assert!(out.stats.sleeps > 0 && out.stats.wakes > 0);
        c.logoff().await.unwrap();
    });
}

#[test]
fn an_interrupted_caller_gets_interrupted_and_others_carry_on() {
    let ts = TestServer::start("interrupt");
    rt().block_on(async {
        let c = Client::connect(&ts.addr.to_string(), &ConnectOptions::new("share"))
            .await
            .unwrap();
        let data = pattern(1, 1, 4096);
        c.write_file("a.bin", &data).await.unwrap();
        let fid = c.open("a.bin", false).await.unwrap();
        ts.hold(Some(Command::Read as u16));
        let waiter = {
            let c = c.clone();
            waitrt::spawn(async move { c.read_at(fid, 0, 4096).await })
        };
        ts.wait_held(1).await;
        waiter.interrupt();
        assert!(matches!(
            waiter.await.unwrap(),
            Err(ClientError::Interrupted)
        ));
        // The connection stays usable for everybody else ...
        ts.hold(None);
        assert_eq!(c.read_at(fid, 0, 4096).await.unwrap(), data);
        // ... and the late reply, when it comes, is discarded.
        ts.release();
        assert_eq!(c.read_file("a.bin").await.unwrap(), data);
        let s = c.daemon().stats();
        assert_eq!((s.acct.discarded, s.acct.overdrawn), (1, 0));
        assert_eq!(s.acct.replies, s.acct.requests);
        c.close(fid).await.unwrap();
        c.logoff().await.unwrap();
    });
}

/// A client with a window of one credit, which a READ (`first`) holds in
/// flight (the server holds READ replies back), and a second READ
/// (`second`) asleep on the credit queue.
struct CreditWaiter {
    c: Client,
    fid: crate::wire::create::FileId,
    data: Vec<u8>,
    first: waitrt::task::JoinHandle<Result<Vec<u8>, ClientError>>,
    second: waitrt::task::JoinHandle<Result<Vec<u8>, ClientError>>,
}

async fn a_credit_waiter(ts: &TestServer, mut opts: ConnectOptions, file: &str) -> CreditWaiter {
    opts.credit_request = 1; // a window of one credit
    let c = Client::connect(&ts.addr.to_string(), &opts).await.unwrap();
    let data = pattern(2, 2, 4096);
    c.write_file(file, &data).await.unwrap();
    let fid = c.open(file, false).await.unwrap();
    ts.hold(Some(Command::Read as u16));
    let read = || {
        let c = c.clone();
        waitrt::spawn(async move { c.read_at(fid, 0, 4096).await })
    };
    let first = read();
    ts.wait_held(1).await; // the only credit is in flight
    let waits_before = c.daemon().stats().acct.credit_waits;
    let second = read();
    while c.daemon().stats().acct.credit_waits == waits_before {
        waitrt::task::yield_now().await; // until it waits for credits
    }
    // ...and sleeps on them (the count goes up just before the sleep).
    let handle = waitrt::Handle::current();
    for _ in 0..20_000 {
        if handle
            .dump()
            .task(second.id())
            .is_some_and(|t| !t.waits.is_empty())
        {
            break;
        }
        waitrt::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    CreditWaiter {
        c,
        fid,
        data,
        first,
        second,
    }
}

/// A caller asleep on the *credit* queue (the window is used up by a
/// reply the server holds back) is interruptible too, and its request is
/// never sent.
#[test]
fn a_caller_waiting_for_credits_can_be_interrupted() {
    let ts = TestServer::start("credit-interrupt");
    rt().block_on(async {
        let CreditWaiter {
            c,
            fid,
            data,
            first,
            second,
        } = a_credit_waiter(&ts, ConnectOptions::new("share"), "c.bin").await;
        let requests_before = c.daemon().stats().acct.requests;
        second.interrupt();
        assert!(matches!(
            second.await.unwrap(),
            Err(ClientError::Interrupted)
        ));
        assert_eq!(
            c.daemon().stats().acct.requests,
            requests_before,
            "an interrupted credit waiter sends nothing"
        );
        ts.hold(None);
        ts.release();
        assert_eq!(first.await.unwrap().unwrap(), data);
        assert_eq!(c.read_at(fid, 0, 4096).await.unwrap(), data);
        assert_eq!(c.daemon().stats().acct.overdrawn, 0);
        c.close(fid).await.unwrap();
        c.logoff().await.unwrap();
    });
}

#[test]
fn a_late_create_reply_gets_its_handle_closed() {
    let ts = TestServer::start("late-create");
    rt().block_on(async {
        let c = Client::connect(&ts.addr.to_string(), &ConnectOptions::new("share"))
            .await
            .unwrap();
        c.write_file("b.bin", b"bee").await.unwrap();
        ts.hold(Some(Command::Create as u16));
        let waiter = {
            let c = c.clone();
            waitrt::spawn(async move { c.open("b.bin", false).await })
        };
        ts.wait_held(1).await;
        waiter.interrupt();
        assert!(matches!(
            waiter.await.unwrap(),
            Err(ClientError::Interrupted)
        ));
        ts.hold(None);
        let closes_before = count(&ts.commands(), Command::Close);
        ts.release();
        // A round trip after the release: the reader has seen the late
        // CREATE by then, and the daemon sends its CLOSE before ours.
        assert_eq!(c.read_file("b.bin").await.unwrap(), b"bee");
        assert_eq!(c.daemon().stats().acct.discarded, 1);
        // the daemon's CLOSE plus read_file's own
        assert_eq!(count(&ts.commands(), Command::Close), closes_before + 2);
        c.logoff().await.unwrap();
    });
}

fn count(cmds: &[u16], c: Command) -> usize {
    cmds.iter().filter(|x| **x == c as u16).count()
}

/// Options whose timeout only a defect reaches (a hang guard: every test
/// below passes long before it, and fails with the wrong error after it).
fn bounded(share: &str) -> ConnectOptions {
    let mut opts = ConnectOptions::new(share);
    opts.timeout = std::time::Duration::from_secs(20);
    opts
}

/// Two replies in one compound frame (a server MAY compound responses, a
/// client MUST separate them, MS-SMB2 3.2.5.1): each reaches its caller,
/// and their credits count. The reader parsed the first reply of a frame
/// only: the second caller waited out its timeout, and the credits of the
/// dropped reply were lost for good (an independent probe of smbiod).
#[test]
fn compound_replies_reach_each_caller() {
    let ts = TestServer::start("compound");
    rt().block_on(async {
        let c = Client::connect(&ts.addr.to_string(), &bounded("share"))
            .await
            .unwrap();
        let data = pattern(3, 3, 4096);
        c.write_file("c.bin", &data).await.unwrap();
        let fid = c.open("c.bin", false).await.unwrap();
        let window = c.daemon().window();
        ts.hold(Some(Command::Read as u16));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let c = c.clone();
                waitrt::spawn(async move { c.read_at(fid, 0, 4096).await })
            })
            .collect();
        ts.wait_held(3).await;
        ts.hold(None);
        ts.release_compound();
        for reader in readers {
            assert_eq!(reader.await.unwrap().unwrap(), data);
        }
        let acct = c.daemon().stats().acct;
        assert_eq!(acct.in_flight, 0);
        assert!(c.daemon().window() >= window, "credits lost");
        c.close(fid).await.unwrap();
        c.logoff().await.unwrap();
    });
}

/// A last reply that grants no credits (an async operation's final reply
/// must grant 0, MS-SMB2 3.3.4.3) leaves a caller waiting for credits with
/// none to come: it fails at once with `NoCredits`. Only a grant woke the
/// credit waiters, so it waited out its whole timeout (an independent
/// probe of smbiod).
#[test]
fn a_last_reply_granting_nothing_fails_credit_waiters_at_once() {
    let ts = TestServer::start("zero-credits");
    rt().block_on(async {
        // Longer than the watchdog below: the caller must fail on its own,
        // not at its timeout (where a true condition also wins).
        let mut opts = ConnectOptions::new("share");
        opts.timeout = std::time::Duration::from_secs(3_600);
        // READ replies grant nothing.
        ts.patch(Command::Read as u16, |f| f[4 + 14..4 + 16].fill(0));
        let CreditWaiter {
            c: _client,
            data,
            first,
            second,
            ..
        } = a_credit_waiter(&ts, opts, "z.bin").await;
        ts.hold(None);
        ts.release();
        assert_eq!(first.await.unwrap().unwrap(), data);
        let second = waitrt::time::timeout(std::time::Duration::from_secs(30), second)
            .await
            .expect("the credit waiter was never told")
            .unwrap();
        assert!(
            matches!(second, Err(ClientError::NoCredits { .. })),
            "{second:?}"
        );
    });
}

/// Turns a reply into its async form (SMB2_FLAGS_ASYNC_COMMAND, an AsyncId
/// where the sync form has Reserved and TreeId), as a server's final reply
/// to a request it answered asynchronously is.
fn to_async_form(frame: &mut [u8]) {
    let h = &mut frame[4..];
    let flags = u32::from_le_bytes(h[16..20].try_into().unwrap()) | crate::wire::header::FLAG_ASYNC;
    h[16..20].copy_from_slice(&flags.to_le_bytes());
    h[32..40].copy_from_slice(&0x5eu64.to_le_bytes());
}

/// A late CREATE whose final reply comes in async form (Samba defers an
/// open on a share-mode or oplock conflict): its cleanup CLOSE goes to the
/// TreeId the CREATE was sent with. It went with the reply header's, which
/// the async form does not carry (0): the server refused it
/// (NETWORK_NAME_DELETED) and the handle stayed open (an independent
/// probe of smbiod).
#[test]
fn a_late_async_create_gets_its_handle_closed_on_its_tree() {
    let ts = TestServer::start("late-async-create");
    rt().block_on(async {
        let c = Client::connect(&ts.addr.to_string(), &bounded("share"))
            .await
            .unwrap();
        c.write_file("a.bin", b"ay").await.unwrap();
        ts.patch(Command::Create as u16, to_async_form);
        ts.hold(Some(Command::Create as u16));
        let waiter = {
            let c = c.clone();
            waitrt::spawn(async move { c.open("a.bin", false).await })
        };
        ts.wait_held(1).await;
        waiter.interrupt();
        assert!(matches!(
            waiter.await.unwrap(),
            Err(ClientError::Interrupted)
        ));
        ts.hold(None);
        ts.release();
        // A round trip after the release: the daemon's CLOSE goes first.
        assert_eq!(c.read_file("a.bin").await.unwrap(), b"ay");
        assert_eq!(c.daemon().stats().acct.discarded, 1);
        let closes = ts.statuses(Command::Close as u16);
        assert_eq!(
            closes.len(),
            3,
            "write_file's, the daemon's, read_file's: {closes:x?}"
        );
        assert!(
            closes.iter().all(|&s| s == 0),
            "a CLOSE failed: {closes:x?}"
        );
        c.logoff().await.unwrap();
    });
}

/// A call polled once and dropped after its reply arrived (in a `select!`
/// whose other branch won): a CREATE's reply nobody took is discarded as
/// a late one is, its handle closed. The drop gave up only on a call whose
/// reply had not come, so the reply stayed in the slot and the handle open
/// (an independent probe of smbiod).
#[test]
fn a_call_dropped_after_its_reply_came_gets_its_handle_closed() {
    let ts = TestServer::start("drop-after-reply");
    rt().block_on(async {
        let c = Client::connect(&ts.addr.to_string(), &bounded("share"))
            .await
            .unwrap();
        c.write_file("d.bin", b"dee").await.unwrap();
        let closes_before = count(&ts.commands(), Command::Close);
        let replies_before = c.daemon().stats().acct.replies;
        {
            // The reply is held until the call has been polled once, so
            // the poll is pending by construction (a fast server answered
            // within the first poll once, on a busy CI host).
            ts.hold(Some(Command::Create as u16));
            let held_before = ts.held_total();
            let mut open = Box::pin(c.open("d.bin", false));
            assert!(futures::poll!(open.as_mut()).is_pending());
            ts.wait_held(held_before + 1).await;
            ts.hold(None);
            ts.release();
            for _ in 0..20_000 {
                if c.daemon().stats().acct.replies > replies_before {
                    break;
                }
                waitrt::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            assert!(
                c.daemon().stats().acct.replies > replies_before,
                "no reply came"
            );
            // dropped here, its reply in the slot, never taken
        }
        assert_eq!(c.read_file("d.bin").await.unwrap(), b"dee");
        assert_eq!(c.daemon().stats().acct.discarded, 1);
        assert_eq!(count(&ts.commands(), Command::Close), closes_before + 2);
        c.logoff().await.unwrap();
    });
}

#[test]
fn ctrl_c_fails_waiting_callers_and_logs_off() {
    let ts = TestServer::start("ctrlc");
    rt().block_on(async {
        let c = Client::connect(&ts.addr.to_string(), &ConnectOptions::new("share"))
            .await
            .unwrap();
        c.write_file("c.bin", &[7u8; 8192]).await.unwrap();
        let fid = c.open("c.bin", false).await.unwrap();
        ts.hold(Some(Command::Read as u16));
        let waiters: Vec<_> = (0..4u64)
            .map(|i| {
                let c = c.clone();
                waitrt::spawn(async move { c.read_at(fid, i * 1024, 1024).await })
            })
            .collect();
        ts.wait_held(4).await;
        // What a routed Ctrl-C does: interrupt the daemon task.
        c.daemon().interrupt();
        for w in waiters {
            assert!(matches!(w.await.unwrap(), Err(ClientError::Shutdown)));
        }
        c.daemon().shutdown().await;
        assert!(c.daemon().logged_off(), "LOGOFF answered");
        assert_eq!(ts.commands().last(), Some(&(Command::Logoff as u16)));
        assert!(c.list("").await.is_err());
    });
}

#[test]
fn garbage_or_oversized_frames_fail_every_waiting_caller() {
    let bad: [(&str, Vec<u8>); 3] = [
        ("oversized", vec![0, 0xFF, 0xFF, 0xFF]),
        (
            "not a session message",
            b"\x85garbage garbage garbage".to_vec(),
        ),
        ("not SMB2", {
            let mut f = vec![0, 0, 0, 80];
            f.extend_from_slice(&[0xAB; 80]);
            f
        }),
    ];
    for (what, raw) in bad {
        let ts = TestServer::start("garbage");
        rt().block_on(async {
            let addr = ts.addr.to_string();
            let c = Client::connect(&addr, &ConnectOptions::new("share"))
                .await
                .unwrap();
            c.write_file("g.bin", &[1u8; 4096]).await.unwrap();
            let fid = c.open("g.bin", false).await.unwrap();
            ts.hold(Some(Command::Read as u16));
            let waiters: Vec<_> = (0..8u64)
                .map(|i| {
                    let c = c.clone();
                    waitrt::spawn(async move { c.read_at(fid, i * 512, 512).await })
                })
                .collect();
            ts.wait_held(8).await;
            ts.send_raw(&raw);
            for w in waiters {
                match w.await.unwrap() {
                    Err(ClientError::Disconnected(why)) => {
                        assert!(why.contains("bad"), "{what}: {why}")
                    }
                    other => panic!("{what}: {other:?}"),
                }
            }
            assert!(matches!(
                c.list("").await,
                Err(ClientError::Disconnected(_))
            ));
            c.daemon().shutdown().await;
            // A new connection can be made.
            ts.hold(None);
            let c2 = Client::connect(&addr, &ConnectOptions::new("share"))
                .await
                .unwrap();
            assert_eq!(c2.read_file("g.bin").await.unwrap(), vec![1u8; 4096]);
            c2.logoff().await.unwrap();
        });
    }
}

/// A hostile server's EndOfFile cannot make `read_file` allocate or send
/// without bound (an independent probe: EndOfFile 2^62 built one READ
/// future per chunk at once and `Vec::with_capacity(size)`, and the
/// process aborted out of memory). A size beyond [`MAX_READ_FILE`] is
/// refused; a lie within it sends at most [`READS_IN_FLIGHT`] READs
/// before the first short one fails the read.
#[test]
fn a_lying_end_of_file_is_refused_or_read_in_bounded_steps() {
    use crate::client::api::{MAX_READ_FILE, READS_IN_FLIGHT};
    let ts = TestServer::start("huge-eof");
    rt().block_on(async {
        let c = Client::connect(&ts.addr.to_string(), &ConnectOptions::new("share"))
            .await
            .unwrap();
        let data = pattern(3, 3, 4096);
        c.write_file("a.bin", &data).await.unwrap();
        // FileStandardInformation's EndOfFile: transport header, SMB2
        // header, QUERY_INFO body, AllocationSize.
        const EOF_AT: usize = 4 + 64 + 8 + 8;
        ts.patch(Command::QueryInfo as u16, |f| {
            f[EOF_AT..EOF_AT + 8].copy_from_slice(&(1u64 << 30).to_le_bytes())
        });
        let reads_before = count(&ts.commands(), Command::Read);
        let r = c.read_file("a.bin").await;
        assert!(
            matches!(r, Err(ClientError::Protocol("short READ"))),
            "{r:?}"
        );
        let reads = count(&ts.commands(), Command::Read) - reads_before;
        assert!(reads <= READS_IN_FLIGHT, "{reads} READs sent at once");
        ts.patch(Command::QueryInfo as u16, |f| {
            f[EOF_AT..EOF_AT + 8].copy_from_slice(&(1u64 << 62).to_le_bytes())
        });
        match c.read_file("a.bin").await {
            Err(ClientError::FileTooLarge { size, max }) => {
                assert_eq!((size, max), (1 << 62, MAX_READ_FILE))
            }
            other => panic!("{other:?}"),
        }
        // the connection is still fine
        let fid = c.open("a.bin", false).await.unwrap();
        assert_eq!(c.read_at(fid, 0, 4096).await.unwrap(), data);
        c.close(fid).await.unwrap();
        c.logoff().await.unwrap();
    });
}

/// A NEGOTIATE reply choosing a dialect we never offered fails the
/// connect with that reason (an independent probe: the client took it).
#[test]
fn a_dialect_never_offered_is_refused() {
    let ts = TestServer::start("unoffered-dialect");
    // NEGOTIATE's DialectRevision: transport header, SMB2 header,
    // StructureSize and SecurityMode.
    const DIALECT_AT: usize = 4 + 64 + 4;
    ts.patch(Command::Negotiate as u16, |f| {
        f[DIALECT_AT..DIALECT_AT + 2].copy_from_slice(&0x0311u16.to_le_bytes())
    });
    rt().block_on(async {
        let mut opts = ConnectOptions::new("share");
        opts.dialects = vec![0x0202];
        match Client::connect(&ts.addr.to_string(), &opts).await {
            Err(ClientError::Disconnected(why)) => {
                assert!(why.contains("0x0311, which was not offered"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    });
}
