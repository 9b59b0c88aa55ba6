//! CHANGE_NOTIFY against the async embedded server over real sockets: a
//! watcher on one connection, changes made through another.

use super::lock_tests::{client, eventually, send_cancel, server, st};
use crate::client::blocking::SyncClient;
use crate::client::Incoming;
use crate::wire::create::{FileId, FILE_CREATE, FILE_DIRECTORY_FILE, FILE_OPEN, FILE_OPEN_IF};
use crate::wire::message::{Request, Response};
use crate::wire::notify::{action, parse_notify_info, ChangeNotifyRequest, WATCH_TREE};
use crate::wire::status;

/// FILE_NOTIFY_CHANGE_FILE_NAME | DIR_NAME | SIZE | LAST_WRITE.
const FILTER: u32 = 0x1 | 0x2 | 0x8 | 0x10;

fn dir(c: &mut SyncClient, name: &str) -> FileId {
    c.create(name, 0x0012_019F, FILE_OPEN_IF, FILE_DIRECTORY_FILE)
        .unwrap()
}

fn notify_req(fid: FileId, len: u32, tree: bool) -> Request {
    Request::ChangeNotify(ChangeNotifyRequest {
        flags: if tree { WATCH_TREE } else { 0 },
        output_length: len,
        file_id: fid,
        filter: FILTER,
    })
}

fn send_notify(c: &mut SyncClient, fid: FileId, len: u32, tree: bool) -> u64 {
    let (id, frame) = c
        .state
        .build(&notify_req(fid, len, tree), c.tree_id)
        .unwrap();
    c.send(&frame).unwrap();
    id
}

/// Reads until the final reply of `id`: (status, changes, saw interim).
fn notify_result(c: &mut SyncClient, id: u64) -> (u32, Vec<(u32, String)>, bool) {
    let mut interim = false;
    loop {
        match c.recv_one() {
            Ok(Incoming::Interim { message_id, .. }) if message_id == id => interim = true,
            Ok(Incoming::Final { header, body }) if header.message_id == id => {
                let changes = match body {
                    Response::ChangeNotify(buf) => parse_notify_info(&buf).unwrap(),
                    _ => Vec::new(),
                };
                return (header.status, changes, interim);
            }
            other => panic!("unexpected {other:?} waiting for notify {id}"),
        }
    }
}

fn touch(c: &mut SyncClient, name: &str) {
    let f = c.create(name, 0x0012_019F, FILE_CREATE, 0).unwrap();
    c.close(f).unwrap();
}

fn delete(c: &mut SyncClient, name: &str) {
    let f = c.create(name, 0x0001_0080, FILE_OPEN, 0x1000).unwrap();
    c.close(f).unwrap();
}

/// A watcher is answered STATUS_PENDING, sleeps on the directory's queue
/// and is woken by a change another connection makes; changes made while
/// no request waits are buffered and returned at once; WATCH_TREE sees
/// the subtree.
#[test]
fn notify_pends_then_completes_with_the_changes() {
    let s = server("notify-basic");
    let (mut a, mut b) = (client(&s), client(&s));
    let d = dir(&mut a, "w");
    let id = send_notify(&mut a, d, 4096, false);
    match a.recv_one().unwrap() {
        Incoming::Interim { message_id, .. } => assert_eq!(message_id, id),
        other => panic!("expected STATUS_PENDING, got {other:?}"),
    }
    touch(&mut b, "w\\one.txt");
    let (st0, changes, _) = notify_result(&mut a, id);
    assert_eq!(st0, status::SUCCESS);
    assert_eq!(changes, vec![(action::ADDED, "one.txt".to_string())]);
    // buffered while nobody waits: returned at once, in order
    delete(&mut b, "w\\one.txt");
    touch(&mut b, "w\\two.txt");
    touch(&mut b, "elsewhere.txt");
    let id = send_notify(&mut a, d, 4096, false);
    let (st1, changes, interim) = notify_result(&mut a, id);
    assert_eq!((st1, interim), (status::SUCCESS, false));
    assert_eq!(
        changes,
        vec![
            (action::REMOVED, "one.txt".to_string()),
            (action::ADDED, "two.txt".to_string())
        ]
    );
    // a list that does not fit the request's buffer: NOTIFY_ENUM_DIR
    touch(&mut b, "w\\three.txt");
    let id = send_notify(&mut a, d, 4, false);
    assert_eq!(notify_result(&mut a, id).0, status::NOTIFY_ENUM_DIR);
    // the subtree, with WATCH_TREE on a fresh handle
    let t = dir(&mut a, "w");
    let _sub = dir(&mut b, "w\\sub");
    let id = send_notify(&mut a, t, 4096, true);
    assert!(matches!(a.recv_one().unwrap(), Incoming::Interim { .. }));
    touch(&mut b, "w\\sub\\deep.txt");
    let (st2, changes, _) = notify_result(&mut a, id);
    assert_eq!(st2, status::SUCCESS);
    assert_eq!(changes, vec![(action::ADDED, "sub\\deep.txt".to_string())]);
    drop((a, b));
    std::fs::remove_dir_all(&s.base).unwrap();
}

/// CANCEL ends a pending notify with STATUS_CANCELLED (unanswered
/// itself); CLOSE, TREE_DISCONNECT and LOGOFF end it with
/// STATUS_NOTIFY_CLEANUP; a lost connection leaves no watcher asleep.
#[test]
fn pending_notify_ends_by_cancel_close_tdis_logoff_and_disconnect() {
    let s = server("notify-end");
    let mut a = client(&s);
    let d = dir(&mut a, "w");
    // by MessageId, by AsyncId, and as Samba 4.17's client does it
    // (MessageId 0, no AsyncId: the session's newest pending request)
    for how in 0..3 {
        let id = send_notify(&mut a, d, 4096, false);
        let async_id = match a.recv_one().unwrap() {
            Incoming::Interim { async_id, .. } => async_id,
            other => panic!("expected STATUS_PENDING, got {other:?}"),
        };
        match how {
            0 => send_cancel(&mut a, id, None),
            1 => send_cancel(&mut a, id, Some(async_id)),
            _ => send_cancel(&mut a, 0, None),
        }
        assert_eq!(
            notify_result(&mut a, id).0,
            status::CANCELLED,
            "cancel #{how}"
        );
    }
    a.call(Request::Echo, &[]).unwrap();
    // CLOSE
    let id = send_notify(&mut a, d, 4096, false);
    let (close_id, frame) = a
        .state
        .build(
            &Request::Close(crate::wire::create::CloseRequest {
                flags: 0,
                file_id: d,
            }),
            a.tree_id,
        )
        .unwrap();
    a.send(&frame).unwrap();
    let mut finals = vec![];
    while finals.len() < 2 {
        match a.recv_one().unwrap() {
            Incoming::Final { header, .. } => finals.push((header.message_id, header.status)),
            Incoming::Interim { .. } => {}
        }
    }
    finals.sort();
    assert_eq!(
        finals,
        vec![(id, status::NOTIFY_CLEANUP), (close_id, status::SUCCESS)]
    );
    // TREE_DISCONNECT and LOGOFF
    for req in [Request::TreeDisconnect, Request::Logoff] {
        let mut c = client(&s);
        let d = dir(&mut c, "w");
        let id = send_notify(&mut c, d, 4096, false);
        let (end_id, frame) = c.state.build(&req, c.tree_id).unwrap();
        c.send(&frame).unwrap();
        let mut finals = vec![];
        while finals.len() < 2 {
            match c.recv_one().unwrap() {
                Incoming::Final { header, .. } => finals.push((header.message_id, header.status)),
                Incoming::Interim { .. } => {}
            }
        }
        finals.sort();
        assert_eq!(
            finals,
            vec![(id, status::NOTIFY_CLEANUP), (end_id, status::SUCCESS)],
            "{req:?}"
        );
    }
    // a lost connection: its watcher ends, nothing stays asleep
    let mut c = client(&s);
    let d = dir(&mut c, "w");
    let id = send_notify(&mut c, d, 4096, false);
    match c.recv_one().unwrap() {
        Incoming::Interim { message_id, .. } => assert_eq!(message_id, id),
        other => panic!("expected STATUS_PENDING, got {other:?}"),
    }
    eventually("the watcher sleeps on the directory's queue", || {
        s.share
            .state
            .notify
            .queue_of(&s.share.root.join("w"))
            .is_some_and(|q| q.has_sleeper())
    });
    drop(c);
    eventually("the lost connection's watcher is gone", || {
        !s.share
            .state
            .notify
            .queue_of(&s.share.root.join("w"))
            .is_some_and(|q| q.has_sleeper())
    });
    assert_eq!(
        st(a.call(notify_req(d, 10, false), &[])),
        status::FILE_CLOSED
    );
    drop(a);
    std::fs::remove_dir_all(&s.base).unwrap();
}

/// A connection may have `MAX_PENDING` requests pending, CHANGE_NOTIFY
/// and blocked LOCK alike; past that, one that would wait fails at once
/// with STATUS_INSUFFICIENT_RESOURCES while one that can be answered now
/// still is (an independent probe: each interim reply granted its credit
/// back, so a client could keep tens of thousands pending). Once one
/// ends, another may wait again.
#[test]
fn pending_requests_are_capped_per_connection() {
    use super::pending::MAX_PENDING;
    use crate::wire::lock::{flags, LockElement, LockRequest};
    let s = server("pending-cap");
    let (mut a, mut b) = (client(&s), client(&s));
    a.state.credit_request = 1024;
    a.call(Request::Echo, &[]).unwrap();
    assert!(a.state.credits() as usize > MAX_PENDING);
    let d = dir(&mut a, "w");
    let mut frames = Vec::new();
    let mut ids = Vec::with_capacity(MAX_PENDING);
    for _ in 0..MAX_PENDING {
        let (id, f) = a
            .state
            .build(&notify_req(d, 4096, false), a.tree_id)
            .unwrap();
        ids.push(id);
        frames.extend(f);
    }
    a.send(&frames).unwrap();
    let mut async_ids = Vec::with_capacity(MAX_PENDING);
    for (i, &id) in ids.iter().enumerate() {
        match a.recv_one() {
            Ok(Incoming::Interim {
                message_id,
                async_id,
            }) if message_id == id => async_ids.push(async_id),
            other => panic!("notify {i}: expected STATUS_PENDING, got {other:?}"),
        }
    }
    // one more notify is refused, not queued
    let id = send_notify(&mut a, d, 4096, false);
    let (st0, _, interim) = notify_result(&mut a, id);
    assert_eq!((st0, interim), (status::INSUFFICIENT_RESOURCES, false));
    // a LOCK that would block is refused; one that is free is granted
    let lock = |fid, offset| {
        Request::Lock(LockRequest {
            sequence: 0,
            file_id: fid,
            locks: vec![LockElement {
                offset,
                length: 1,
                flags: flags::EXCLUSIVE,
            }],
        })
    };
    let mine = a.create("f.txt", 0x0012_019F, FILE_OPEN_IF, 0).unwrap();
    let theirs = b.create("f.txt", 0x0012_019F, FILE_OPEN, 0).unwrap();
    b.call(lock(theirs, 0), &[]).unwrap();
    assert_eq!(
        st(a.call(lock(mine, 0), &[])),
        status::INSUFFICIENT_RESOURCES
    );
    assert_eq!(st(a.call(lock(mine, 1), &[])), status::SUCCESS);
    // one pending notify cancelled: another may wait
    send_cancel(&mut a, ids[0], Some(async_ids[0]));
    assert_eq!(notify_result(&mut a, ids[0]).0, status::CANCELLED);
    let (lock_id, f) = a.state.build(&lock(mine, 0), a.tree_id).unwrap();
    a.send(&f).unwrap();
    match a.recv_one() {
        Ok(Incoming::Interim { message_id, .. }) if message_id == lock_id => {}
        other => panic!("the LOCK must wait now, got {other:?}"),
    }
    // closing the directory ends every notify (their replies and the
    // CLOSE's may come in any order); the lock waits until its holder goes
    let close = Request::Close(crate::wire::create::CloseRequest {
        flags: 0,
        file_id: d,
    });
    let (close_id, f) = a.state.build(&close, a.tree_id).unwrap();
    a.send(&f).unwrap();
    drop(b);
    let (mut ended, mut closed, mut locked) = (0, false, false);
    for _ in 0..MAX_PENDING + 1 {
        match a.recv_one() {
            Ok(Incoming::Final { header, .. }) if header.message_id == lock_id => {
                assert_eq!(header.status, status::SUCCESS);
                locked = true;
            }
            Ok(Incoming::Final { header, .. }) if header.message_id == close_id => {
                assert_eq!(header.status, status::SUCCESS);
                closed = true;
            }
            Ok(Incoming::Final { header, .. }) => {
                assert_eq!(header.status, status::NOTIFY_CLEANUP);
                ended += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((ended, closed, locked), (MAX_PENDING - 1, true, true));
    a.close(mine).unwrap();
    a.logoff().unwrap();
    std::fs::remove_dir_all(&s.base).unwrap();
}
