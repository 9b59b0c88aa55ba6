//! The state a connection's callers, daemon and reader share: the
//! protocol layer and request tables under one mutex, and the wait queues
//! they sleep on.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use waitq::{Clock, WaitQueue};
use waitrt::time::RuntimeClock;

use super::request::{Queued, Reply, Sent, Slot};
use super::{Stats, TaskCell};
use crate::client::{ClientError, ClientState};
use crate::wire::create::CloseRequest;
use crate::wire::message::{Request, Response};
use crate::wire::status;

/// Frames larger than this are refused before NEGOTIATE sets the limits.
pub const PRE_NEGOTIATE_MAX_FRAME: usize = 65_536 + 4096;
/// Most latency samples kept.
const MAX_SAMPLES: usize = 1 << 20;

/// Everything behind the mutex.
#[derive(Debug)]
pub struct Inner {
    /// MessageIds, credits, negotiated sizes.
    pub proto: ClientState,
    /// Credits reserved by queued, not yet sent requests.
    pub reserved: u32,
    /// Requests waiting for the daemon (kernel: `smb_xmitq`).
    pub queue: VecDeque<Queued>,
    /// The daemon's own cleanup requests (CLOSE of an abandoned open),
    /// sent when spare credits allow.
    pub deferred: VecDeque<(Request, u32)>,
    /// Requests on the wire, by MessageId (kernel: `smb_recvq`).
    pub sent: HashMap<u64, Sent>,
    /// Set once the connection is gone.
    pub dead: Option<Arc<str>>,
    /// Shutdown requested: new requests are refused.
    pub closing: bool,
    /// Counters, independent of `proto`'s own bookkeeping.
    pub acct: Accounting,
    /// Request latencies, queued → final reply, in microseconds.
    pub latencies_us: Vec<u32>,
    /// When the last frame came in (the connection's start before any).
    pub last_rx: Instant,
    /// When the keepalive last probed the server (an ECHO, or an attempt
    /// that found no credit free): unanswered while `last_rx` is older.
    pub probe: Option<Instant>,
}

/// Credit and traffic counters.
#[derive(Debug, Default, Clone)]
pub struct Accounting {
    /// Credits the server granted in all (the initial one included).
    pub granted: u64,
    /// Credits our requests consumed in all.
    pub charged: u64,
    /// Credit charge of the requests on the wire now.
    pub in_flight: u32,
    /// The most that ever was.
    pub peak_in_flight: u32,
    /// Sends that would have overdrawn the window (must stay 0).
    pub overdrawn: u64,
    /// Times a caller had to sleep for credits.
    pub credit_waits: u64,
    /// Requests sent.
    pub requests: u64,
    /// Final replies received.
    pub replies: u64,
    /// Interim STATUS_PENDING replies received.
    pub interim: u64,
    /// Late replies nobody waited for any more.
    pub discarded: u64,
    /// Batches the daemon wrote.
    pub batches: u64,
    /// Keepalive ECHOs sent.
    pub echoes: u64,
}

impl Inner {
    /// Credits neither used nor reserved.
    pub fn available(&self) -> u32 {
        self.proto.credits().saturating_sub(self.reserved)
    }

    /// Whether `cost` can never be met: nothing is outstanding that could
    /// bring more credits.
    pub fn never_enough(&self, cost: u32) -> bool {
        self.available() < cost && self.acct.in_flight == 0 && self.reserved == 0
    }

    /// `Ok` while requests are accepted.
    pub fn usable(&self) -> Result<(), ClientError> {
        match (&self.dead, self.closing) {
            (_, true) => Err(ClientError::Shutdown),
            (Some(why), false) => Err(ClientError::Disconnected(why.clone())),
            (None, false) => Ok(()),
        }
    }

    /// Records a request latency.
    pub fn sample(&mut self, us: u128) {
        if self.latencies_us.len() < MAX_SAMPLES {
            self.latencies_us.push(us.min(u128::from(u32::MAX)) as u32);
        }
    }
}

/// Shared by callers, the daemon task and the reader task.
#[derive(Debug)]
pub struct Shared {
    inner: Mutex<Inner>,
    /// The daemon sleeps here (kernel: `smbiod_wait`).
    pub smbiod_wait: WaitQueue,
    /// Callers sleep here for credits.
    pub credit_wait: WaitQueue,
    /// `shutdown()` sleeps here until the daemon has stopped.
    pub stopped_wait: WaitQueue,
    /// Kernel: the `SMBIOD_DATA_READY` bit.
    pub data_ready: AtomicBool,
    /// Mirrors `closing` for the daemon's lock-free condition.
    pub shutdown: AtomicBool,
    /// Mirrors `dead`.
    pub dead: AtomicBool,
    /// Both tasks are done.
    pub stopped: AtomicBool,
    /// The session was logged off.
    pub logged_off: AtomicBool,
    /// The largest frame the reader accepts now.
    pub max_frame: AtomicUsize,
    /// Times the daemon went to sleep.
    pub sleeps: AtomicU64,
    /// Wakes that found the daemon asleep.
    pub wakes: AtomicU64,
    /// The task handles.
    pub tasks: TaskCell,
    /// The per-request timeout; also how long an unanswered keepalive
    /// waits before the connection is declared dead.
    pub timeout: Duration,
    /// The runtime's clock, for the `_timeout` waits.
    pub clock: RuntimeClock,
}

impl Shared {
    /// Fresh state around `proto`, with requests timing out after
    /// `timeout`. Must be called on a runtime with timers.
    pub fn new(proto: ClientState, timeout: Duration) -> Shared {
        let clock = waitrt::time::clock();
        Shared {
            inner: Mutex::new(Inner {
                proto,
                reserved: 0,
                queue: VecDeque::new(),
                deferred: VecDeque::new(),
                sent: HashMap::new(),
                dead: None,
                closing: false,
                acct: Accounting {
                    granted: 1,
                    ..Accounting::default()
                },
                latencies_us: Vec::new(),
                last_rx: clock.now(),
                probe: None,
            }),
            // Named for dumps (`kill -QUIT`, `--hung-timeout`).
            smbiod_wait: WaitQueue::named("smbiod_wait"),
            credit_wait: WaitQueue::named("credit_wait"),
            stopped_wait: WaitQueue::named("stopped_wait"),
            data_ready: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            dead: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            logged_off: AtomicBool::new(false),
            max_frame: AtomicUsize::new(PRE_NEGOTIATE_MAX_FRAME),
            sleeps: AtomicU64::new(0),
            wakes: AtomicU64::new(0),
            tasks: TaskCell::new(),
            timeout,
            clock,
        }
    }

    /// A caller that started waiting at `started` timed out: if the server
    /// has sent nothing since, it has stopped answering, and the connection
    /// is declared dead so that no other caller waits for it too.
    pub fn timed_out(&self, started: Instant) {
        let silent = self.lock().last_rx < started;
        if silent {
            self.kill(&format!(
                "the server stopped answering: nothing received for {:?}",
                self.timeout
            ));
        }
    }

    /// Locks the state (a panic elsewhere does not poison it for us).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The credit waiters' condition.
    pub fn credits_ready(&self, cost: u32) -> bool {
        let g = self.lock();
        g.usable().is_err() || g.available() >= cost || g.never_enough(cost)
    }

    /// Kernel: `set_bit(SMBIOD_DATA_READY); wake_up_interruptible(&smbiod_wait)`.
    pub fn set_data_ready(&self) {
        self.data_ready.store(true, Ordering::Release);
        if self.smbiod_wait.wake_up_interruptible() > 0 {
            self.wakes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A caller gave up on `slot`: unqueue it if not sent yet (returning
    /// its credits), else let the reader discard its reply. A reply that
    /// had arrived already comes back (see [`Slot::abandon`]): the caller
    /// may still take it, or hand it to [`discard`](Self::discard).
    #[must_use]
    pub fn abandon(&self, slot: &Arc<Slot>) -> Option<Result<Reply, ClientError>> {
        let arrived = slot.abandon();
        if arrived.is_some() {
            return arrived;
        }
        let mut g = self.lock();
        let before = g.queue.len();
        let mut freed = 0;
        g.queue.retain(|q| match &q.slot {
            Some(s) if Arc::ptr_eq(s, slot) => {
                freed += q.cost;
                false
            }
            _ => true,
        });
        g.reserved -= freed;
        let unqueued = g.queue.len() != before;
        drop(g);
        if unqueued {
            self.credit_wait.wake_up_all();
        }
        None
    }

    /// A reply nobody will read (its caller gave up): counted, and a
    /// CREATE's handle closed (sent with `tree_id`, the TreeId the CREATE
    /// went out with).
    pub fn discard(&self, reply: Result<Reply, ClientError>, tree_id: u32) {
        let mut g = self.lock();
        // A server's reply, not the error every caller gets as the
        // connection dies.
        if reply.is_ok() {
            g.acct.discarded += 1;
        }
        if let Ok((header, Response::Create(c))) = &reply {
            if header.status == status::SUCCESS {
                let close = CloseRequest {
                    flags: 0,
                    file_id: c.file_id,
                };
                g.deferred.push_back((Request::Close(close), tree_id));
                drop(g);
                self.set_data_ready();
            }
        }
    }

    /// Asks the daemon to log off and stop.
    pub fn request_shutdown(&self) {
        self.lock().closing = true;
        self.shutdown.store(true, Ordering::Release);
        self.set_data_ready();
        self.credit_wait.wake_up_all();
    }

    /// Marks the connection dead (the first reason sticks), fails every
    /// queued and sent request with it, and ends every wait.
    pub fn kill(&self, why: &str) {
        let slots: Vec<Arc<Slot>> = {
            let mut g = self.lock();
            if g.dead.is_some() {
                return;
            }
            g.dead = Some(why.into());
            g.reserved = 0;
            g.acct.in_flight = 0;
            g.deferred.clear();
            let queued = std::mem::take(&mut g.queue)
                .into_iter()
                .filter_map(|q| q.slot);
            let sent = std::mem::take(&mut g.sent)
                .into_values()
                .filter_map(|s| s.slot);
            queued.chain(sent).collect()
        };
        self.dead.store(true, Ordering::Release);
        let err: Arc<str> = why.into();
        for s in slots {
            s.complete(Err(ClientError::Disconnected(err.clone())));
        }
        self.credit_wait.close();
        self.smbiod_wait.close();
        if let Some(t) = self.tasks.get() {
            t.reader.abort();
        }
    }

    /// Whether the daemon has stopped.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let g = self.lock();
        Stats {
            acct: g.acct.clone(),
            credits: g.proto.credits(),
            sleeps: self.sleeps.load(Ordering::Relaxed),
            wakes: self.wakes.load(Ordering::Relaxed),
            latencies_us: g.latencies_us.clone(),
        }
    }
}
