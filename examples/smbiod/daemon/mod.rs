//! smbiod: the SMB2 I/O daemon, after Linux's `fs/smbfs/smbiod.c`.
//!
//! Callers on any number of tasks hand requests to one daemon per
//! connection ([`Daemon::call`], kernel: `smb_add_request`):
//!
//! 1. the caller sleeps on the **credit** wait queue until the server's
//!    credit window covers the request, then reserves those credits and
//!    queues the request;
//! 2. it sets `DATA_READY` and `wake_up_interruptible(&smbiod_wait)`;
//! 3. the daemon task, asleep in
//!    `wait_event_interruptible_timeout(smbiod_wait, DATA_READY || shutdown)`,
//!    clears the bit, gives each queued request its MessageId(s) and
//!    writes them out in one batch — never more than the credits granted;
//! 4. a reader task owns the socket's read half: it matches each reply to
//!    its request by MessageId, keeps the caller asleep on an interim
//!    `STATUS_PENDING`, adds the credits granted (waking credit waiters)
//!    and wakes the caller's own wait queue with the final reply.
//!
//! Every wait is interruptible: a signalled caller gets
//! [`ClientError::Interrupted`] and its late reply is discarded (a late
//! CREATE's handle is closed by the daemon). A signal to the daemon task
//! (Ctrl-C routed by [`Daemon::route_ctrl_c`]) ends it cleanly: callers get
//! [`ClientError::Shutdown`], the session is logged off. When the
//! connection dies (EOF, reset, malformed or oversized frame) every waiting
//! caller gets [`ClientError::Disconnected`] with the reason.
//!
//! A hung server hangs nobody (`keepalive.rs`): every call is bounded by the
//! daemon's timeout (the caller sleeps in
//! `wait_event_interruptible_timeout` and gets [`ClientError::TimedOut`]);
//! a connection silent for half the timeout gets an SMB2 ECHO from the
//! daemon (the kernel's cifs `SMB2_echo`); and a connection that answers
//! neither the ECHO nor a timed-out caller within the timeout is declared
//! dead, so every caller gets an error at once.

#[cfg(test)]
mod hung_tests;
mod iod;
mod keepalive;
#[cfg(test)]
mod list_memory_tests;
#[cfg(test)]
mod obs_tests;
mod reader;
pub mod request;
#[cfg(test)]
mod samba_tests;
mod shared;
pub mod stats;
#[cfg(test)]
pub mod tests;
#[cfg(test)]
pub mod testserver;

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use waitq::{Clock, SignalKind};
use waitrt::net::TcpStream;
use waitrt::task::AbortHandle;

use crate::client::{ClientError, ClientState};
use crate::wire::message::Request;
use request::{Queued, Reply, Signals, Slot};
use shared::Shared;
pub use stats::Stats;

/// A handle on one connection's daemon; cheap to clone and share.
#[derive(Debug, Clone)]
pub struct Daemon {
    shared: Arc<Shared>,
}

impl Daemon {
    /// Starts the daemon and reader tasks on `stream` (on the current
    /// runtime, which must have timers), with `credit_request` credits
    /// asked for per request and each request timing out after `timeout`.
    pub fn start(stream: TcpStream, credit_request: u16, timeout: Duration) -> Daemon {
        let _ = stream.set_nodelay(true);
        let mut proto = ClientState::new();
        proto.credit_request = credit_request.max(1);
        let shared = Arc::new(Shared::new(proto, timeout));
        let (rd, wr) = stream.into_split();
        let reader = waitrt::task::Builder::new()
            .name("smbiod-reader")
            .spawn(reader::run(shared.clone(), rd));
        let daemon = waitrt::task::Builder::new()
            .name("smbiod")
            .spawn(iod::run(shared.clone(), wr));
        let _ = shared.tasks.set(Tasks {
            reader: reader.abort_handle(),
            daemon: daemon.abort_handle(),
        });
        Daemon { shared }
    }

    /// Sends `req` on `tree_id` and sleeps until its final reply (kernel:
    /// `smb_add_request` + `wait_event_interruptible_timeout(req->rq_wait,
    /// ...)`). Error statuses come back as replies; see
    /// [`crate::client::check`].
    ///
    /// The whole call, the wait for credits included, is bounded by the
    /// daemon's timeout: past it the caller gets
    /// [`ClientError::TimedOut`] and a late reply is discarded. If the
    /// server sent nothing at all during the wait, the connection is
    /// declared dead too (every other caller gets
    /// [`ClientError::Disconnected`]).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the request: unsent, it is unqueued
    /// and its credits returned; sent, its reply is discarded (a late
    /// CREATE's handle is closed).
    pub async fn call(&self, req: Request, tree_id: u32) -> Result<Reply, ClientError> {
        let signals = Signals::current();
        let sh = &*self.shared;
        let started = sh.clock.now();
        let deadline = started + sh.timeout;
        let slot = Slot::new();
        let mut guard = Abandon {
            shared: &self.shared,
            slot: &slot,
            tree_id,
            armed: false,
        };
        let queued = self
            .reserve_and_queue(req, tree_id, &slot, &signals, deadline)
            .await;
        if let Err(e) = queued {
            if matches!(e, ClientError::TimedOut(_)) {
                sh.timed_out(started);
            }
            return Err(e);
        }
        guard.armed = true;
        sh.set_data_ready();
        let left = deadline.saturating_duration_since(sh.clock.now());
        let waited = slot.wait(&signals, &sh.clock, left, sh.timeout).await;
        guard.armed = false;
        if let Err(e) = waited {
            // A reply that raced the signal or the deadline wins (even one
            // that came as we gave up: `abandon` hands it back); otherwise
            // give up.
            if !slot.is_done() {
                if let Some(arrived) = sh.abandon(&slot) {
                    return arrived;
                }
                if matches!(e, ClientError::TimedOut(_)) {
                    sh.timed_out(started);
                }
                return Err(e);
            }
        }
        slot.take()
            .unwrap_or(Err(ClientError::Protocol("reply slot emptied twice")))
    }

    /// Step 1: wait on the credit queue until the window covers `req`,
    /// then reserve its credits and queue it, in one locked step.
    async fn reserve_and_queue(
        &self,
        req: Request,
        tree_id: u32,
        slot: &Arc<Slot>,
        signals: &Signals,
        deadline: Instant,
    ) -> Result<(), ClientError> {
        let sh = &*self.shared;
        let mut req = Some(req);
        loop {
            {
                let mut g = sh.lock();
                g.usable()?;
                let r = req.as_ref().ok_or(ClientError::Shutdown)?;
                g.proto.check_size(r)?;
                let cost = g.proto.cost(r);
                if g.available() >= cost {
                    g.reserved += cost;
                    g.queue.push_back(Queued {
                        req: req.take().ok_or(ClientError::Shutdown)?,
                        tree_id,
                        cost,
                        slot: Some(slot.clone()),
                        queued_at: Instant::now(),
                    });
                    return Ok(());
                }
                if g.never_enough(cost) {
                    return Err(ClientError::NoCredits {
                        need: cost,
                        have: g.available(),
                    });
                }
                g.acct.credit_waits += 1;
            }
            let cost = sh
                .lock()
                .proto
                .cost(req.as_ref().ok_or(ClientError::Shutdown)?);
            let left = deadline.saturating_duration_since(sh.clock.now());
            sh.credit_wait
                .wait_event_interruptible_timeout(signals, &sh.clock, left, || {
                    sh.credits_ready(cost)
                })
                .await
                .map_err(|e| {
                    if e.is_closed() {
                        sh.lock().usable().err().unwrap_or(ClientError::Shutdown)
                    } else if e.is_timed_out() {
                        ClientError::TimedOut(sh.timeout)
                    } else {
                        ClientError::Interrupted
                    }
                })?;
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Asks the daemon to log off and stop; callers still waiting get
    /// [`ClientError::Shutdown`]. Returns once it has stopped, or once it
    /// has had the time a stuck send and the logoff may take (the timeout
    /// and [`iod::LOGOFF_WAIT`] three times): then the connection is
    /// declared dead, which ends every wait of the daemon, and if even
    /// that does not stop it within [`iod::LOGOFF_WAIT`], its task is
    /// aborted. Never waits longer than that.
    pub async fn shutdown(&self) {
        self.shared.request_shutdown();
        let sh = &*self.shared;
        let stopped = || sh.stopped_wait.wait_event(|| sh.is_stopped());
        let grace = sh.timeout + 3 * iod::LOGOFF_WAIT;
        if waitrt::time::timeout(grace, stopped()).await.is_ok() {
            return;
        }
        sh.kill(&format!("smbiod did not stop within {grace:?} of shutdown"));
        if waitrt::time::timeout(iod::LOGOFF_WAIT, stopped())
            .await
            .is_ok()
        {
            return;
        }
        if let Some(t) = sh.tasks.get() {
            t.daemon.abort();
        }
        sh.stopped.store(true, Ordering::Release);
        sh.stopped_wait.wake_up_all();
    }

    /// Asks the daemon to log off and stop, without waiting for it.
    pub fn request_shutdown(&self) {
        if !self.is_stopped() {
            self.shared.request_shutdown();
        }
    }

    /// Whether the daemon has stopped (shut down or connection lost).
    pub fn is_stopped(&self) -> bool {
        self.shared.is_stopped()
    }

    /// Why the connection ended, once it has.
    pub fn dead_reason(&self) -> Option<Arc<str>> {
        self.shared.lock().dead.clone()
    }

    /// Raises an interrupt on the daemon task, as a routed Ctrl-C does.
    #[cfg(test)]
    pub fn interrupt(&self) {
        if let Some(t) = self.shared.tasks.get() {
            t.daemon.interrupt();
        }
    }

    /// Routes the process's Ctrl-C (SIGINT) to the daemon task: it then
    /// fails its callers, logs off and stops.
    pub fn route_ctrl_c(&self) -> std::io::Result<()> {
        let t = self
            .shared
            .tasks
            .get()
            .ok_or(std::io::ErrorKind::NotFound)?;
        // SIGTERM does what Ctrl-C does.
        for signal in [
            waitrt::signal::ProcessSignal::CtrlC,
            waitrt::signal::ProcessSignal::Terminate,
        ] {
            waitrt::signal::route(signal, &t.daemon, SignalKind::Interrupt)?;
        }
        Ok(())
    }

    /// The negotiated MaxRead, MaxWrite, MaxTransact, and whether
    /// multi-credit (large MTU) requests are allowed.
    pub fn limits(&self) -> (u32, u32, u32, bool) {
        let g = self.shared.lock();
        let p = &g.proto;
        (p.max_read, p.max_write, p.max_transact, p.large_mtu)
    }

    /// The credit window: credits held plus those charged in flight.
    pub fn window(&self) -> u32 {
        let g = self.shared.lock();
        g.proto.credits() + g.acct.in_flight
    }

    /// The negotiated dialect (0 before NEGOTIATE).
    pub fn dialect(&self) -> u16 {
        self.shared.lock().proto.dialect
    }

    /// Whether the daemon logged the session off.
    pub fn logged_off(&self) -> bool {
        self.shared.logged_off.load(Ordering::Acquire)
    }
}

/// The two tasks of a connection.
#[derive(Debug)]
struct Tasks {
    reader: AbortHandle,
    daemon: AbortHandle,
}

/// Abandons a queued or sent request if its caller's future is dropped
/// before it took the reply (cancel safety): a reply that had arrived but
/// was never taken is discarded as a late one is (a CREATE's handle
/// closed), where it stayed in the slot, its handle open (an independent
/// probe: a future polled once, its reply in, then dropped).
struct Abandon<'a> {
    shared: &'a Arc<Shared>,
    slot: &'a Arc<Slot>,
    /// The request's TreeId (a discarded CREATE's CLOSE goes there).
    tree_id: u32,
    armed: bool,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if self.armed {
            if let Some(unclaimed) = self.shared.abandon(self.slot) {
                self.shared.discard(unclaimed, self.tree_id);
            }
        }
    }
}

/// Set once: the task handles.
type TaskCell = OnceLock<Tasks>;
