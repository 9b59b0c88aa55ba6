//! tokio-test's mock task and macros on our futures, and the scripted
//! `futures::io` mock.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;

use futures::io::{AsyncReadExt, AsyncWriteExt};
use tokio_test::{assert_pending, assert_ready, assert_ready_ok, task};
use waitrt::sync::WaitQueue;
use waitrt::test_util::io::Builder;
use waitrt::test_util::Check;

#[test]
fn tokio_test_mock_task_drives_wait_event_unchanged() {
    let queue = WaitQueue::new();
    let ready = AtomicBool::new(false);
    let mut wait = task::spawn(queue.wait_event(|| ready.load(SeqCst)));
    assert_pending!(wait.poll());
    assert!(!wait.is_woken());
    assert_eq!(queue.len(), 1);
    ready.store(true, SeqCst);
    queue.wake_up();
    assert!(wait.is_woken());
    assert_ready_ok!(wait.poll());
    assert_eq!(queue.len(), 0);
}

#[test]
fn tokio_test_mock_task_sees_exclusive_hand_off() {
    let queue = WaitQueue::new();
    let mut first = task::spawn(queue.wait_event_exclusive(|| false));
    let mut second = task::spawn(queue.wait_event_exclusive(|| false));
    assert_pending!(first.poll());
    assert_pending!(second.poll());
    assert_eq!(queue.wake_up(), 1);
    assert!(first.is_woken() && !second.is_woken());
    drop(first); // picked, never acted on: the wake goes on
    assert!(second.is_woken());
}

#[test]
fn tokio_test_poll_waiter_and_wait_entry() {
    let queue = Arc::new(WaitQueue::new());
    let mut waiter = waitrt::sync::PollWaiter::new(queue.clone());
    let flag = AtomicBool::new(false);
    let mut t = task::spawn(());
    assert_pending!(t.enter(|cx, _| waiter.poll_wait_event(cx, || flag.load(SeqCst))));
    flag.store(true, SeqCst);
    queue.wake_up_all();
    assert!(t.is_woken());
    let res = t.enter(|cx, _| waiter.poll_wait_event(cx, || flag.load(SeqCst)));
    assert_ready!(res).unwrap();
}

#[test]
fn scripted_io_runs_in_the_toolkit() {
    Check::new().seeds(8).run(|| async {
        let mut mock = Builder::new()
            .write(b"NEGOTIATE")
            .wait(std::time::Duration::from_millis(3))
            .read(b"OK")
            .build();
        mock.write_all(b"NEGO").await.unwrap();
        mock.write_all(b"TIATE").await.unwrap();
        let mut reply = [0; 2];
        mock.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"OK");
        let mut rest = Vec::new();
        assert_eq!(mock.read_to_end(&mut rest).await.unwrap(), 0); // script done: EOF
    });
}

#[test]
#[should_panic(expected = "unexpected read: the script expects write 4 bytes")]
fn scripted_io_fails_fast_on_an_unexpected_operation() {
    let mut mock = Builder::new().write(b"ping").build();
    let mut buf = [0; 4];
    let _ = futures::executor::block_on(mock.read(&mut buf));
}

#[test]
#[should_panic(expected = "write differs from the script at byte 1")]
fn scripted_io_reports_a_wrong_byte() {
    let mut mock = Builder::new().write(b"ping").build();
    let _ = futures::executor::block_on(mock.write_all(b"pong"));
}

#[test]
#[should_panic(expected = "dropped with 1 scripted action(s) left")]
fn scripted_io_panics_on_drop_with_leftovers() {
    let mock = Builder::new().read(b"unread").build();
    drop(mock);
}

#[test]
fn scripted_io_errors_are_returned() {
    let err = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
    let mut mock = Builder::new().read_error(err).build();
    let mut buf = [0; 1];
    let res = futures::executor::block_on(mock.read(&mut buf));
    assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::ConnectionReset);
}
