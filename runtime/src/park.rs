//! How an idle scheduler thread sleeps: on its own [`WaitQueue`], like a
//! kernel thread in `wait_event_timeout(wq, notified, timeout)`.

use std::sync::atomic::{AtomicBool, Ordering::AcqRel, Ordering::Release};
use std::time::Duration;

use waitq::WaitQueue;

/// One thread's sleep: `park` waits until `unpark` (or the timeout).
#[derive(Debug, Default)]
pub(crate) struct Parker {
    queue: WaitQueue,
    notified: AtomicBool,
}

impl Parker {
    pub(crate) const fn new() -> Self {
        Parker {
            queue: WaitQueue::new(),
            notified: AtomicBool::new(false),
        }
    }

    /// Sleeps until unparked or `timeout` passes. An `unpark` that came
    /// before the call is not lost: it ends this park at once.
    pub(crate) fn park(&self, timeout: Option<Duration>) {
        let woken = || self.notified.swap(false, AcqRel);
        // A closed queue (shutdown) ends the sleep at once; callers re-check.
        match timeout {
            None => drop(self.queue.blocking_wait_event(woken)),
            Some(timeout) => drop(self.queue.blocking_wait_event_timeout(timeout, woken)),
        }
    }

    /// Ends the current or next `park`.
    pub(crate) fn unpark(&self) {
        self.notified.store(true, Release);
        self.queue.wake_up();
    }

    /// Shutdown: every park returns at once from now on.
    pub(crate) fn close(&self) {
        self.queue.close();
    }
}
