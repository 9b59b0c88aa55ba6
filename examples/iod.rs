//! A miniature of Linux's smbiod pattern, on plain threads and
//! `futures::executor::block_on`: `waitq` needs no particular executor.
//! (`examples/smbiod` is the full daemon, as tasks on this workspace's
//! `waitrt` runtime.) Callers queue requests, set DATA_READY and
//! `wake_up_interruptible` the daemon; the daemon sleeps in
//! `wait_event_interruptible` until there is work, answers each request,
//! and wakes the callers, who sleep on a shared reply queue with keyed
//! conditions. Ctrl-C is simulated by a
//! signal after the work is done: the daemon ends with `Interrupted`.
//!
//! Run with `cargo run --example iod`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use futures::executor::block_on;
use waitq::{TaskSignals, WaitQueue};

const CALLERS: u64 = 8;
const REQUESTS_PER_CALLER: u64 = 250;

#[derive(Default)]
struct Daemon {
    data_ready: AtomicBool,
    requests: Mutex<VecDeque<(u64, u64)>>, // (request id, payload)
    replies: Mutex<HashMap<u64, u64>>,     // request id -> answer
    smbiod_wait: WaitQueue,                // the daemon sleeps here
    reply_wait: WaitQueue,                 // callers sleep here
    signals: TaskSignals,                  // the daemon's signal state
    sleeps: AtomicUsize,
}

impl Daemon {
    /// smb_add_request(): queue, set DATA_READY, wake the daemon.
    fn add_request(&self, id: u64, payload: u64) {
        self.requests.lock().unwrap().push_back((id, payload));
        self.data_ready.store(true, Ordering::SeqCst);
        self.smbiod_wait.wake_up_interruptible();
    }

    /// The daemon loop: sleep until DATA_READY, clear it, do the work.
    async fn run(&self) -> Result<usize, waitq::Interrupted> {
        let mut served = 0;
        loop {
            if !self.data_ready.load(Ordering::SeqCst) {
                self.sleeps.fetch_add(1, Ordering::Relaxed);
            }
            self.smbiod_wait
                .wait_event_interruptible(&self.signals, || self.data_ready.load(Ordering::SeqCst))
                .await
                .inspect_err(|_| println!("daemon: interrupted after {served} requests"))?;
            self.data_ready.store(false, Ordering::SeqCst);
            let batch: Vec<_> = self.requests.lock().unwrap().drain(..).collect();
            let mut replies = self.replies.lock().unwrap();
            for (id, payload) in batch {
                replies.insert(id, payload * 2); // "the I/O"
                served += 1;
            }
            drop(replies);
            self.reply_wait.wake_up_all();
        }
    }

    /// A caller: queue a request and sleep until its own reply is there.
    async fn call(&self, id: u64, payload: u64) -> u64 {
        self.add_request(id, payload);
        self.reply_wait
            .wait_event_value(|| self.replies.lock().unwrap().remove(&id))
            .await
            .expect("reply queue closed")
    }
}

fn main() {
    let daemon = Arc::new(Daemon::default());
    let server = {
        let daemon = daemon.clone();
        thread::spawn(move || block_on(daemon.run()))
    };
    let callers: Vec<_> = (0..CALLERS)
        .map(|c| {
            let daemon = daemon.clone();
            thread::spawn(move || {
                block_on(async {
                    for r in 0..REQUESTS_PER_CALLER {
                        let id = c * REQUESTS_PER_CALLER + r;
                        assert_eq!(daemon.call(id, id).await, id * 2);
                    }
                })
            })
        })
        .collect();
    for caller in callers {
        caller.join().unwrap();
    }
    daemon.signals.interrupt(); // "Ctrl-C"
    let res = server.join().unwrap();
    assert!(res.is_err(), "the daemon ends on the signal");
    println!(
        "all {} requests answered by {CALLERS} callers; the daemon slept {} times",
        CALLERS * REQUESTS_PER_CALLER,
        daemon.sleeps.load(Ordering::Relaxed)
    );
}
