//! Byte-range LOCK against the async embedded server (the one `--serve`
//! runs), over real sockets, several connections at once: statuses,
//! READ/WRITE conflicts, blocking requests answered STATUS_PENDING then
//! completed, CANCEL, and waiters ended by close and disconnect.

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::tests::fresh;
use super::{async_driver, ShareConfig};
use crate::client::blocking::SyncClient;
use crate::client::{ClientError, Incoming};
use crate::wire::create::{FileId, FILE_OPEN_IF};
use crate::wire::header::FLAG_ASYNC;
use crate::wire::lock::{flags, LockElement, LockRequest};
use crate::wire::message::Request;
use crate::wire::negotiate::DIALECTS;
use crate::wire::rw::{ReadRequest, WriteRequest};
use crate::wire::{frame, status, Command, Header};

/// Every wait of these tests ends within this, or the test fails.
const WATCHDOG: Duration = Duration::from_secs(10);

pub(super) struct Server {
    /// Runs the server while the test lasts.
    _rt: waitrt::Runtime,
    pub addr: SocketAddr,
    pub share: ShareConfig,
    pub base: PathBuf,
}

/// The async server on a runtime of its own, serving a fresh directory.
pub(super) fn server(tag: &str) -> Server {
    let (base, share) = fresh(tag);
    let rt = waitrt::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = share.clone();
    let addr = rt.block_on(async move { async_driver::spawn("127.0.0.1:0", s).await.unwrap().0 });
    Server {
        _rt: rt,
        addr,
        share,
        base,
    }
}

pub(super) fn client(s: &Server) -> SyncClient {
    let c = SyncClient::connect(&s.addr.to_string(), &DIALECTS, "", "share").unwrap();
    c.set_timeout(WATCHDOG).unwrap();
    c
}

fn open(c: &mut SyncClient, name: &str) -> FileId {
    c.create(name, 0x0012_019F, FILE_OPEN_IF, 0).unwrap()
}

fn el(offset: u64, length: u64, flags: u32) -> LockElement {
    LockElement {
        offset,
        length,
        flags,
    }
}

fn lock_req(file_id: FileId, locks: &[LockElement]) -> Request {
    Request::Lock(LockRequest {
        sequence: 0,
        file_id,
        locks: locks.to_vec(),
    })
}

/// The status of a call: SUCCESS, or the error status.
pub(super) fn st<T: std::fmt::Debug>(r: Result<T, ClientError>) -> u32 {
    match r {
        Ok(_) => status::SUCCESS,
        Err(ClientError::Status { status, .. }) => status,
        Err(e) => panic!("expected a reply, got {e}"),
    }
}

/// The status of one LOCK call.
fn lock(c: &mut SyncClient, fid: FileId, locks: &[LockElement]) -> u32 {
    st(c.call(lock_req(fid, locks), &[]))
}

/// Sends a LOCK without waiting; returns its MessageId.
fn send_lock(c: &mut SyncClient, fid: FileId, locks: &[LockElement]) -> u64 {
    let (id, frame) = c.state.build(&lock_req(fid, locks), c.tree_id).unwrap();
    c.send(&frame).unwrap();
    id
}

/// Reads the interim reply of `id`; returns its AsyncId.
fn interim(c: &mut SyncClient, id: u64) -> u64 {
    match c.recv_one().unwrap() {
        Incoming::Interim {
            message_id,
            async_id,
        } if message_id == id && async_id != 0 => async_id,
        other => panic!("expected an interim STATUS_PENDING for {id}, got {other:?}"),
    }
}

/// Reads final replies until the one of `id`; returns its header, and
/// the statuses of the others (in order).
fn final_of(c: &mut SyncClient, id: u64) -> (Header, Vec<(u64, u32)>) {
    let mut others = Vec::new();
    loop {
        match c.recv_one() {
            Ok(Incoming::Final { header, .. }) if header.message_id == id => {
                return (header, others)
            }
            Ok(Incoming::Final { header, .. }) => others.push((header.message_id, header.status)),
            Ok(other) => panic!("unexpected {other:?} while waiting for {id}"),
            Err(e) => panic!("no final reply to {id}: {e}"),
        }
    }
}

pub(super) fn send_cancel(c: &mut SyncClient, message_id: u64, async_id: Option<u64>) {
    let h = Header {
        command: Command::Cancel as u16,
        message_id,
        async_id: async_id.unwrap_or(0),
        flags: if async_id.is_some() { FLAG_ASYNC } else { 0 },
        session_id: c.state.session_id,
        tree_id: c.tree_id,
        ..Default::default()
    };
    let mut msg = Vec::new();
    h.encode(&mut msg);
    msg.extend_from_slice(&[4, 0, 0, 0]);
    c.send(&frame::encode(&msg).unwrap()).unwrap();
}

fn file_locks(s: &Server, name: &str) -> std::sync::Arc<super::locks::FileLocks> {
    let md = std::fs::metadata(s.share.root.join(name)).unwrap();
    s.share.state.locks.get((md.dev(), md.ino()))
}

/// Polls `cond` until true, within the watchdog.
pub(super) fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WATCHDOG;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

const EX: u32 = flags::EXCLUSIVE;
const SH: u32 = flags::SHARED;
const FI: u32 = flags::FAIL_IMMEDIATELY;
const UN: u32 = flags::UNLOCK;

/// The statuses of MS-SMB2 3.3.5.14 as Samba gives them, and locks shared
/// between connections.
#[test]
fn lock_statuses_follow_windows() {
    let s = server("lock-status");
    let (mut a, mut b) = (client(&s), client(&s));
    let fa = open(&mut a, "f.bin");
    let fb = open(&mut b, "f.bin");
    assert_eq!(
        lock(&mut a, fa, &[]),
        status::INVALID_PARAMETER,
        "no element"
    );
    assert_eq!(lock(&mut a, fa, &[el(0, 1, 0)]), status::INVALID_PARAMETER);
    assert_eq!(
        lock(&mut a, fa, &[el(0, 1, UN | EX)]),
        status::INVALID_PARAMETER
    );
    assert_eq!(
        lock(&mut a, fa, &[el(0, 1, EX), el(5, 1, EX | FI)]),
        status::INVALID_PARAMETER,
        "a blocking element in a multi-element request"
    );
    assert_eq!(
        lock(&mut a, fa, &[el(u64::MAX, 2, EX | FI)]),
        status::INVALID_LOCK_RANGE
    );
    assert_eq!(
        lock(&mut a, fa, &[el(u64::MAX, 1, EX | FI)]),
        status::SUCCESS
    );
    let stale = FileId {
        persistent: fa.persistent + 100,
        volatile: fa.volatile + 100,
    };
    assert_eq!(
        lock(&mut a, stale, &[el(0, 1, EX | FI)]),
        status::FILE_CLOSED
    );
    assert_eq!(lock(&mut a, fa, &[el(0, 10, EX | FI)]), status::SUCCESS);
    // the other connection's handle conflicts; the owner's shared lock stacks
    assert_eq!(
        lock(&mut b, fb, &[el(5, 1, SH | FI)]),
        status::LOCK_NOT_GRANTED
    );
    assert_eq!(lock(&mut a, fa, &[el(0, 10, SH | FI)]), status::SUCCESS);
    assert_eq!(
        lock(&mut a, fa, &[el(0, 10, EX | FI)]),
        status::LOCK_NOT_GRANTED
    );
    // unlock: exact ranges only, in order, the ones before a miss stay done
    assert_eq!(lock(&mut b, fb, &[el(0, 10, UN)]), status::RANGE_NOT_LOCKED);
    assert_eq!(lock(&mut a, fa, &[el(0, 5, UN)]), status::RANGE_NOT_LOCKED);
    assert_eq!(
        lock(&mut a, fa, &[el(0, 10, UN), el(50, 1, UN)]),
        status::RANGE_NOT_LOCKED
    );
    assert_eq!(lock(&mut a, fa, &[el(0, 10, UN)]), status::SUCCESS);
    assert_eq!(lock(&mut a, fa, &[el(0, 10, UN)]), status::RANGE_NOT_LOCKED);
    // READ and WRITE meet the other handle's exclusive lock
    a.call(
        Request::Write(WriteRequest {
            offset: 0,
            file_id: fa,
            flags: 0,
            data: vec![7; 200],
        }),
        &[],
    )
    .unwrap();
    assert_eq!(lock(&mut a, fa, &[el(100, 50, EX | FI)]), status::SUCCESS);
    let read = |c: &mut SyncClient, fid| {
        st(c.call(
            Request::Read(ReadRequest {
                length: 10,
                offset: 120,
                file_id: fid,
                minimum_count: 0,
            }),
            &[],
        ))
    };
    let write = |c: &mut SyncClient, fid| {
        st(c.call(
            Request::Write(WriteRequest {
                offset: 120,
                file_id: fid,
                flags: 0,
                data: vec![1; 10],
            }),
            &[],
        ))
    };
    assert_eq!(read(&mut b, fb), status::FILE_LOCK_CONFLICT);
    assert_eq!(write(&mut b, fb), status::FILE_LOCK_CONFLICT);
    assert_eq!(read(&mut a, fa), status::SUCCESS);
    assert_eq!(write(&mut a, fa), status::SUCCESS);
    // CLOSE releases the handle's locks
    a.close(fa).unwrap();
    assert_eq!(read(&mut b, fb), status::SUCCESS);
    assert_eq!(
        lock(&mut b, fb, &[el(u64::MAX, 1, EX | FI)]),
        status::SUCCESS
    );
    drop((a, b));
    std::fs::remove_dir_all(&s.base).unwrap();
}

/// A blocking request that conflicts is answered STATUS_PENDING with an
/// AsyncId, sleeps on the file's wait queue, and completes when the
/// conflicting lock goes: by UNLOCK, and by its holder's connection
/// going away.
#[test]
fn blocking_lock_pends_then_is_granted_by_unlock_and_by_disconnect() {
    let s = server("lock-block");
    let (mut a, mut b) = (client(&s), client(&s));
    let fa = open(&mut a, "f.bin");
    let fb = open(&mut b, "f.bin");
    let locks = file_locks(&s, "f.bin");
    assert_eq!(lock(&mut a, fa, &[el(100, 10, EX)]), status::SUCCESS);
    let id = send_lock(&mut b, fb, &[el(105, 1, EX)]);
    interim(&mut b, id);
    eventually("the waiter sleeps on the file's queue", || {
        locks.has_sleeper()
    });
    assert_eq!(lock(&mut a, fa, &[el(100, 10, UN)]), status::SUCCESS);
    let (h, _) = final_of(&mut b, id);
    assert_eq!(h.status, status::SUCCESS);
    assert!(
        h.flags & FLAG_ASYNC != 0 && h.async_id != 0,
        "the final reply is async"
    );
    assert_eq!(
        lock(&mut a, fa, &[el(105, 1, SH | FI)]),
        status::LOCK_NOT_GRANTED
    );
    // now `a` waits for `b`'s range; `b` hangs up
    let id = send_lock(&mut a, fa, &[el(105, 1, EX)]);
    interim(&mut a, id);
    drop(b);
    let (h, _) = final_of(&mut a, id);
    assert_eq!(
        h.status,
        status::SUCCESS,
        "granted when the holder's connection went"
    );
    assert!(!locks.has_sleeper());
    drop(a);
    std::fs::remove_dir_all(&s.base).unwrap();
}

/// CANCEL (by AsyncId, and by MessageId) ends a pending lock with
/// STATUS_CANCELLED and is itself never answered; CLOSE of the waiting
/// handle ends it with STATUS_RANGE_NOT_LOCKED; a waiter whose own
/// connection goes is freed, not left asleep.
#[test]
fn pending_locks_end_by_cancel_close_and_disconnect() {
    let s = server("lock-cancel");
    let (mut a, mut b) = (client(&s), client(&s));
    let fa = open(&mut a, "f.bin");
    let fb = open(&mut b, "f.bin");
    let locks = file_locks(&s, "f.bin");
    assert_eq!(lock(&mut a, fa, &[el(0, 10, EX)]), status::SUCCESS);
    for by_async_id in [true, false] {
        let id = send_lock(&mut b, fb, &[el(0, 1, SH)]);
        let async_id = interim(&mut b, id);
        send_cancel(&mut b, id, by_async_id.then_some(async_id));
        let (h, others) = final_of(&mut b, id);
        assert_eq!(h.status, status::CANCELLED);
        assert!(others.is_empty(), "CANCEL got an answer: {others:?}");
    }
    // the connection goes on: the next reply is ECHO's own
    b.call(Request::Echo, &[]).unwrap();
    let id = send_lock(&mut b, fb, &[el(0, 1, SH)]);
    interim(&mut b, id);
    let (close_id, frame) = b
        .state
        .build(
            &Request::Close(crate::wire::create::CloseRequest {
                flags: 0,
                file_id: fb,
            }),
            b.tree_id,
        )
        .unwrap();
    b.send(&frame).unwrap();
    let (h, others) = final_of(&mut b, id);
    assert_eq!(h.status, status::RANGE_NOT_LOCKED);
    if others.is_empty() {
        let (h, _) = final_of(&mut b, close_id);
        assert_eq!(h.status, status::SUCCESS);
    } else {
        assert_eq!(others, vec![(close_id, status::SUCCESS)]);
    }
    // a waiter on a connection that goes away is freed
    let fb = open(&mut b, "f.bin");
    let id = send_lock(&mut b, fb, &[el(0, 1, EX)]);
    interim(&mut b, id);
    eventually("the waiter sleeps", || locks.has_sleeper());
    drop(b);
    eventually("the waiter of the lost connection is gone", || {
        !locks.has_sleeper()
    });
    assert_eq!(lock(&mut a, fa, &[el(0, 10, UN)]), status::SUCCESS);
    assert_eq!(locks.held(), 0, "the lost waiter was never granted");
    drop(a);
    std::fs::remove_dir_all(&s.base).unwrap();
}

/// Samba's smb2.lock.cancel-tdis: a tree disconnect closes the handles
/// oldest first, so the holder's close grants the younger waiter before
/// the waiter's own handle closes: the pending lock succeeds.
#[test]
fn tree_disconnect_closes_handles_oldest_first() {
    let s = server("lock-tdis");
    let mut a = client(&s);
    let f1 = open(&mut a, "f.bin");
    let f2 = open(&mut a, "f.bin");
    assert_eq!(lock(&mut a, f1, &[el(0, 10, EX)]), status::SUCCESS);
    let id = send_lock(&mut a, f2, &[el(0, 10, EX)]);
    interim(&mut a, id);
    let (tdis, frame) = a.state.build(&Request::TreeDisconnect, a.tree_id).unwrap();
    a.send(&frame).unwrap();
    let mut seen = vec![];
    while seen.len() < 2 {
        match a.recv_one() {
            Ok(Incoming::Final { header, .. }) => seen.push((header.message_id, header.status)),
            other => panic!("unexpected {other:?}"),
        }
    }
    seen.sort();
    assert_eq!(seen, vec![(id, status::SUCCESS), (tdis, status::SUCCESS)]);
    let r: Result<_, ClientError> = a.call(lock_req(f1, &[el(0, 10, UN)]), &[]);
    assert_ne!(st(r), status::SUCCESS);
    drop(a);
    std::fs::remove_dir_all(&s.base).unwrap();
}
