//! Smoke test: the support module compiles and a basic wait works.
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use tokio_test::{assert_pending, assert_ready, task};
use waitq::WaitQueue;

#[test]
fn register_then_wake() {
    let queue = WaitQueue::new();
    let ready = AtomicBool::new(false);
    let mut fut = task::spawn(queue.wait_event(|| ready.load(Ordering::SeqCst)));
    assert_pending!(fut.poll());
    assert_eq!(queue.len(), 1);
    ready.store(true, Ordering::SeqCst);
    assert_eq!(queue.wake_up(), 1);
    assert!(fut.is_woken());
    assert_ready!(fut.poll()).unwrap();
    assert_eq!(queue.len(), 0);
    let _ = support::CountingWaker::new();
}
