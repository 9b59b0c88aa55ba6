//! Synchronization benchmark (issue 19): `waitrt::sync` against the
//! primitives people use instead, every contender on our runtime's
//! executor (all of them work on any executor), current-thread (`ct`) and
//! 2 workers (`2wk`). One measurement per process, ours and the peers
//! alternating, ratios = peer / ours (above 1.0: ours is faster): the
//! method of [`harness`] (issue 21), whose docs list the environment
//! variables (`SYNC_BENCH_SCALE`, `_PAIRS`, `_FILTER`, `_IN_PROCESS`,
//! `_TIMEOUT_S`, `_WARMUP`).
//!
//! Rows (sizes at `SYNC_BENCH_SCALE=1`; ns/op is per message, exchange,
//! write or lock):
//!
//! - `mpsc_spsc`: one sender task, the root task receiving, 1,000,000
//!   `u64` through a bounded(1024) channel.
//! - `mpsc_4tx`: 4 sender tasks, 250,000 each, bounded(1024).
//! - `mpsc_unbounded_4tx`: the same through an unbounded channel.
//! - `mpsc_10tx_64B`: 10 sender tasks x 100,000 messages of 64 bytes
//!   through a bounded(100) channel (senders keep it full: the sleeping
//!   sender path).
//! - `oneshot`: 1,000,000 times create a channel, then in one task poll
//!   the receiver (it sleeps), send (it wakes the task) and receive.
//!   Peers without a oneshot (async-channel, flume, kanal) use a
//!   bounded(1) channel.
//! - `broadcast_1to16`: the root task sends 100,000 `u64` through a
//!   broadcast(1024) to 16 receiver tasks, pausing every 256 until every
//!   receiver is within 512 (so nobody lags). Peers: tokio and
//!   async-broadcast.
//! - `watch_1w16r`: the root task publishes 100,000 values, yielding after
//!   each, to 16 reader tasks (`changed` then `borrow_and_update`). Peer:
//!   tokio.
//! - `mutex_16`: 16 tasks x 50,000 lock/increment/unlock; every 16th hold
//!   spans a yield, so the others queue on the lock.
//! - `rwlock_95r`: 16 tasks x 50,000 operations, every 20th a write that
//!   holds the lock across a yield; reads check the writes' invariant.
//! - `semaphore_64x8`: 64 tasks x 10,000 acquires of 8 permits, each
//!   permit held across a yield; the holders are counted and never
//!   exceed 8.
//! - `mutex_16_worst`, `rwlock_95r_worst`, `semaphore_64x8_worst`: the
//!   same three workloads, each lock or permit acquisition timed; the
//!   cost is the longest single wait of the run, in µs (above 1.0 the
//!   peer kept some task waiting longer). What fairness buys, where the
//!   plain rows measure what it costs: ours and tokio's queue waiters in
//!   FIFO order, async-lock's let a newcomer take a free lock or permit
//!   ahead of the woken waiter (barging). One process's maximum is
//!   noisy (a descheduled worker on a busy machine shows in it), so
//!   compare orders of magnitude.
//!
//! Channel peers: tokio::sync, async-channel, flume and kanal (their
//! async APIs), futures-channel (its bounded channel holds `buffer` plus
//! one slot per sender). Lock peers: tokio::sync and async-lock. Every
//! workload checks its result (each sender's messages arrive in order
//! and all of them, counters, invariants) and panics otherwise, so a
//! broken primitive posts `FAIL`, not a time.
//!
//! ```text
//! CARGO_TARGET_DIR=... cargo bench --bench sync
//! SYNC_BENCH_SCALE=0.05 SYNC_BENCH_PAIRS=2 SYNC_BENCH_FILTER=mpsc cargo bench --bench sync
//! SYNC_BENCH_WAIT_REGISTRY=0 cargo bench --bench sync   # ours with Builder::wait_registry(false)
//! ```

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[path = "harness/mod.rs"]
mod harness;

use harness::{Contender, Row};

/// `ct` is the current-thread flavour; `2wk` has 2 worker threads.
const FLAVOURS: [(&str, usize); 2] = [("ct", 1), ("2wk", 2)];

/// Scales a size, at least 1.
fn scaled(n: f64, scale: f64) -> u64 {
    ((n * scale) as u64).max(1)
}

/// Runs `body` as the root task of a fresh runtime of ours with `workers`
/// workers (1: current-thread) and returns its time per op in ns. The
/// root task takes the time, so `block_on` and the runtime's start and
/// shutdown are not measured.
fn on_ours<F, Fut>(workers: usize, ops: u64, body: F) -> f64
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (elapsed, ()) = on_ours_with(workers, body);
    elapsed.as_nanos() as f64 / ops as f64
}

/// [`on_ours`]'s runtime and root task: the root task's time and what
/// `body` returned.
fn on_ours_with<F, Fut, T>(workers: usize, body: F) -> (std::time::Duration, T)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut builder = if workers == 1 {
        waitrt::Builder::new_current_thread()
    } else {
        let mut builder = waitrt::Builder::new_multi_thread();
        builder.worker_threads(workers);
        builder
    };
    let rt = builder
        .enable_all()
        .wait_registry(harness::wait_registry("SYNC_BENCH"))
        .build()
        .expect("our runtime builds");
    rt.block_on(async move {
        waitrt::spawn(async move {
            let start = Instant::now();
            let out = body().await;
            (start.elapsed(), out)
        })
        .await
        .expect("the root task panicked")
    })
}

/// The longest single wait for a lock or permit in a `_worst` row: what
/// a primitive's fairness buys, where the plain rows measure what it
/// costs in throughput. Shared by a workload's tasks; `None` in the plain
/// rows, which take no time stamps.
#[derive(Default)]
struct WorstWait(AtomicU64);

impl WorstWait {
    /// Awaits `wait`, noting how long it took if `worst` is `Some`.
    async fn time<T>(worst: Option<&WorstWait>, wait: impl Future<Output = T>) -> T {
        let Some(worst) = worst else {
            return wait.await;
        };
        let start = Instant::now();
        let out = wait.await;
        let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        worst.0.fetch_max(nanos, Ordering::Relaxed);
        out
    }

    /// The longest wait noted, in µs.
    fn micros(&self) -> f64 {
        self.0.load(Ordering::Relaxed) as f64 / 1e3
    }
}

/// Awaits every task, re-raising a panic.
async fn join_all<T>(handles: Vec<waitrt::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.expect("a task panicked"));
    }
    out
}

// ===== channels =====

/// The sending half of a channel, as its async API sends.
trait ChanTx<T>: Clone + Send + Sync + 'static {
    /// Sends `value`, waiting for room; panics if the receiver is gone.
    fn send(&mut self, value: T) -> impl Future<Output = ()> + Send + '_;
}

/// The receiving half; `None` once every sender is gone and it is empty.
trait ChanRx<T>: Send + 'static {
    fn recv(&mut self) -> impl Future<Output = Option<T>> + Send + '_;
}

/// A channel library.
trait Chans: 'static {
    const NAME: &'static str;
    type Tx<T: Send + 'static>: ChanTx<T>;
    type Rx<T: Send + 'static>: ChanRx<T>;
    type UTx<T: Send + 'static>: ChanTx<T>;
    type URx<T: Send + 'static>: ChanRx<T>;

    fn bounded<T: Send + 'static>(capacity: usize) -> (Self::Tx<T>, Self::Rx<T>);

    fn unbounded<T: Send + 'static>() -> (Self::UTx<T>, Self::URx<T>);

    /// Creates a oneshot channel, polls its receiver (which sleeps), sends
    /// `value` (which wakes this task) and returns what was received.
    fn oneshot(value: u64) -> impl Future<Output = u64> + Send;
}

/// Ours.
struct Ours;

impl<T: Send + 'static> ChanTx<T> for waitrt::sync::mpsc::Sender<T> {
    async fn send(&mut self, value: T) {
        if waitrt::sync::mpsc::Sender::send(self, value).await.is_err() {
            panic!("receiver gone");
        }
    }
}

impl<T: Send + 'static> ChanTx<T> for waitrt::sync::mpsc::UnboundedSender<T> {
    async fn send(&mut self, value: T) {
        if waitrt::sync::mpsc::UnboundedSender::send(self, value).is_err() {
            panic!("receiver gone");
        }
    }
}

impl<T: Send + 'static> ChanRx<T> for waitrt::sync::mpsc::Receiver<T> {
    fn recv(&mut self) -> impl Future<Output = Option<T>> + Send + '_ {
        waitrt::sync::mpsc::Receiver::recv(self)
    }
}

impl<T: Send + 'static> ChanRx<T> for waitrt::sync::mpsc::UnboundedReceiver<T> {
    fn recv(&mut self) -> impl Future<Output = Option<T>> + Send + '_ {
        waitrt::sync::mpsc::UnboundedReceiver::recv(self)
    }
}

impl Chans for Ours {
    const NAME: &'static str = "ours";
    type Tx<T: Send + 'static> = waitrt::sync::mpsc::Sender<T>;
    type Rx<T: Send + 'static> = waitrt::sync::mpsc::Receiver<T>;
    type UTx<T: Send + 'static> = waitrt::sync::mpsc::UnboundedSender<T>;
    type URx<T: Send + 'static> = waitrt::sync::mpsc::UnboundedReceiver<T>;

    fn bounded<T: Send + 'static>(capacity: usize) -> (Self::Tx<T>, Self::Rx<T>) {
        waitrt::sync::mpsc::channel(capacity)
    }

    fn unbounded<T: Send + 'static>() -> (Self::UTx<T>, Self::URx<T>) {
        waitrt::sync::mpsc::unbounded_channel()
    }

    async fn oneshot(value: u64) -> u64 {
        let (tx, rx) = waitrt::sync::oneshot::channel();
        let send = async move { tx.send(value).expect("receiver alive") };
        let (got, ()) = futures::future::join(rx, send).await;
        got.expect("sent")
    }
}

/// tokio::sync.
struct Tokio;

impl<T: Send + 'static> ChanTx<T> for tokio::sync::mpsc::Sender<T> {
    async fn send(&mut self, value: T) {
        if tokio::sync::mpsc::Sender::send(self, value).await.is_err() {
            panic!("receiver gone");
        }
    }
}

impl<T: Send + 'static> ChanTx<T> for tokio::sync::mpsc::UnboundedSender<T> {
    async fn send(&mut self, value: T) {
        if tokio::sync::mpsc::UnboundedSender::send(self, value).is_err() {
            panic!("receiver gone");
        }
    }
}

impl<T: Send + 'static> ChanRx<T> for tokio::sync::mpsc::Receiver<T> {
    fn recv(&mut self) -> impl Future<Output = Option<T>> + Send + '_ {
        tokio::sync::mpsc::Receiver::recv(self)
    }
}

impl<T: Send + 'static> ChanRx<T> for tokio::sync::mpsc::UnboundedReceiver<T> {
    fn recv(&mut self) -> impl Future<Output = Option<T>> + Send + '_ {
        tokio::sync::mpsc::UnboundedReceiver::recv(self)
    }
}

impl Chans for Tokio {
    const NAME: &'static str = "tokio";
    type Tx<T: Send + 'static> = tokio::sync::mpsc::Sender<T>;
    type Rx<T: Send + 'static> = tokio::sync::mpsc::Receiver<T>;
    type UTx<T: Send + 'static> = tokio::sync::mpsc::UnboundedSender<T>;
    type URx<T: Send + 'static> = tokio::sync::mpsc::UnboundedReceiver<T>;

    fn bounded<T: Send + 'static>(capacity: usize) -> (Self::Tx<T>, Self::Rx<T>) {
        tokio::sync::mpsc::channel(capacity)
    }

    fn unbounded<T: Send + 'static>() -> (Self::UTx<T>, Self::URx<T>) {
        tokio::sync::mpsc::unbounded_channel()
    }

    async fn oneshot(value: u64) -> u64 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let send = async move { tx.send(value).expect("receiver alive") };
        let (got, ()) = futures::future::join(rx, send).await;
        got.expect("sent")
    }
}

/// async-channel (smol's).
struct AsyncChannel;

impl<T: Send + 'static> ChanTx<T> for async_channel::Sender<T> {
    async fn send(&mut self, value: T) {
        if async_channel::Sender::send(self, value).await.is_err() {
            panic!("receiver gone");
        }
    }
}

impl<T: Send + 'static> ChanRx<T> for async_channel::Receiver<T> {
    async fn recv(&mut self) -> Option<T> {
        async_channel::Receiver::recv(self).await.ok()
    }
}

impl Chans for AsyncChannel {
    const NAME: &'static str = "async-channel";
    type Tx<T: Send + 'static> = async_channel::Sender<T>;
    type Rx<T: Send + 'static> = async_channel::Receiver<T>;
    type UTx<T: Send + 'static> = async_channel::Sender<T>;
    type URx<T: Send + 'static> = async_channel::Receiver<T>;

    fn bounded<T: Send + 'static>(capacity: usize) -> (Self::Tx<T>, Self::Rx<T>) {
        async_channel::bounded(capacity)
    }

    fn unbounded<T: Send + 'static>() -> (Self::UTx<T>, Self::URx<T>) {
        async_channel::unbounded()
    }

    async fn oneshot(value: u64) -> u64 {
        let (tx, rx) = async_channel::bounded(1);
        let send = async move { tx.send(value).await.expect("receiver alive") };
        let (got, ()) = futures::future::join(rx.recv(), send).await;
        got.expect("sent")
    }
}

/// flume (its async API).
struct Flume;

impl<T: Send + 'static> ChanTx<T> for flume::Sender<T> {
    async fn send(&mut self, value: T) {
        if self.send_async(value).await.is_err() {
            panic!("receiver gone");
        }
    }
}

impl<T: Send + 'static> ChanRx<T> for flume::Receiver<T> {
    async fn recv(&mut self) -> Option<T> {
        self.recv_async().await.ok()
    }
}

impl Chans for Flume {
    const NAME: &'static str = "flume";
    type Tx<T: Send + 'static> = flume::Sender<T>;
    type Rx<T: Send + 'static> = flume::Receiver<T>;
    type UTx<T: Send + 'static> = flume::Sender<T>;
    type URx<T: Send + 'static> = flume::Receiver<T>;

    fn bounded<T: Send + 'static>(capacity: usize) -> (Self::Tx<T>, Self::Rx<T>) {
        flume::bounded(capacity)
    }

    fn unbounded<T: Send + 'static>() -> (Self::UTx<T>, Self::URx<T>) {
        flume::unbounded()
    }

    async fn oneshot(value: u64) -> u64 {
        let (tx, rx) = flume::bounded(1);
        let send = async move { tx.send_async(value).await.expect("receiver alive") };
        let (got, ()) = futures::future::join(rx.recv_async(), send).await;
        got.expect("sent")
    }
}

/// kanal (its async API).
struct Kanal;

impl<T: Send + 'static> ChanTx<T> for kanal::AsyncSender<T> {
    async fn send(&mut self, value: T) {
        if kanal::AsyncSender::send(self, value).await.is_err() {
            panic!("receiver gone");
        }
    }
}

impl<T: Send + 'static> ChanRx<T> for kanal::AsyncReceiver<T> {
    async fn recv(&mut self) -> Option<T> {
        kanal::AsyncReceiver::recv(self).await.ok()
    }
}

impl Chans for Kanal {
    const NAME: &'static str = "kanal";
    type Tx<T: Send + 'static> = kanal::AsyncSender<T>;
    type Rx<T: Send + 'static> = kanal::AsyncReceiver<T>;
    type UTx<T: Send + 'static> = kanal::AsyncSender<T>;
    type URx<T: Send + 'static> = kanal::AsyncReceiver<T>;

    fn bounded<T: Send + 'static>(capacity: usize) -> (Self::Tx<T>, Self::Rx<T>) {
        kanal::bounded_async(capacity)
    }

    fn unbounded<T: Send + 'static>() -> (Self::UTx<T>, Self::URx<T>) {
        kanal::unbounded_async()
    }

    async fn oneshot(value: u64) -> u64 {
        let (tx, rx) = kanal::bounded_async(1);
        let send = async move { tx.send(value).await.expect("receiver alive") };
        let (got, ()) = futures::future::join(rx.recv(), send).await;
        got.expect("sent")
    }
}

/// futures-channel.
struct FuturesChannel;

impl<T: Send + 'static> ChanTx<T> for futures_channel::mpsc::Sender<T> {
    async fn send(&mut self, value: T) {
        if futures::SinkExt::send(self, value).await.is_err() {
            panic!("receiver gone");
        }
    }
}

impl<T: Send + 'static> ChanTx<T> for futures_channel::mpsc::UnboundedSender<T> {
    async fn send(&mut self, value: T) {
        if self.unbounded_send(value).is_err() {
            panic!("receiver gone");
        }
    }
}

impl<T: Send + 'static> ChanRx<T> for futures_channel::mpsc::Receiver<T> {
    fn recv(&mut self) -> impl Future<Output = Option<T>> + Send + '_ {
        futures::StreamExt::next(self)
    }
}

impl<T: Send + 'static> ChanRx<T> for futures_channel::mpsc::UnboundedReceiver<T> {
    fn recv(&mut self) -> impl Future<Output = Option<T>> + Send + '_ {
        futures::StreamExt::next(self)
    }
}

impl Chans for FuturesChannel {
    const NAME: &'static str = "futures-channel";
    type Tx<T: Send + 'static> = futures_channel::mpsc::Sender<T>;
    type Rx<T: Send + 'static> = futures_channel::mpsc::Receiver<T>;
    type UTx<T: Send + 'static> = futures_channel::mpsc::UnboundedSender<T>;
    type URx<T: Send + 'static> = futures_channel::mpsc::UnboundedReceiver<T>;

    fn bounded<T: Send + 'static>(capacity: usize) -> (Self::Tx<T>, Self::Rx<T>) {
        futures_channel::mpsc::channel(capacity)
    }

    fn unbounded<T: Send + 'static>() -> (Self::UTx<T>, Self::URx<T>) {
        futures_channel::mpsc::unbounded()
    }

    async fn oneshot(value: u64) -> u64 {
        let (tx, rx) = futures_channel::oneshot::channel();
        let send = async move { tx.send(value).expect("receiver alive") };
        let (got, ()) = futures::future::join(rx, send).await;
        got.expect("sent")
    }
}

// ===== channel workloads =====

/// A message that says who sent it and its sequence number.
trait Msg: Send + 'static {
    fn new(sender: u64, seq: u64) -> Self;
    fn id(&self) -> (u64, u64);
}

impl Msg for u64 {
    fn new(sender: u64, seq: u64) -> u64 {
        (sender << 40) | seq
    }

    fn id(&self) -> (u64, u64) {
        (self >> 40, self & ((1 << 40) - 1))
    }
}

/// A 64-byte message: sender and sequence, then 48 bytes of filler
/// derived from the sequence (checked, so it is really carried).
impl Msg for [u8; 64] {
    fn new(sender: u64, seq: u64) -> [u8; 64] {
        let mut m = [seq as u8; 64];
        m[..8].copy_from_slice(&sender.to_le_bytes());
        m[8..16].copy_from_slice(&seq.to_le_bytes());
        m
    }

    fn id(&self) -> (u64, u64) {
        let sender = u64::from_le_bytes(self[..8].try_into().expect("8 bytes"));
        let seq = u64::from_le_bytes(self[8..16].try_into().expect("8 bytes"));
        assert_eq!(self[63], seq as u8, "64-byte message corrupted");
        (sender, seq)
    }
}

/// `senders` tasks each send `per_sender` messages; the calling (root)
/// task receives until the channel ends and checks that each sender's
/// messages all arrived, in order.
async fn many_to_one<M: Msg, Tx: ChanTx<M>, Rx: ChanRx<M>>(
    tx: Tx,
    mut rx: Rx,
    senders: u64,
    per_sender: u64,
) {
    let handles = (0..senders)
        .map(|sender| {
            let mut tx = tx.clone();
            waitrt::spawn(async move {
                for seq in 0..per_sender {
                    tx.send(M::new(sender, seq)).await;
                }
            })
        })
        .collect();
    drop(tx);
    let mut next = vec![0; senders as usize];
    while let Some(msg) = rx.recv().await {
        let (sender, seq) = msg.id();
        assert_eq!(seq, next[sender as usize], "sender {sender} out of order");
        next[sender as usize] += 1;
    }
    assert!(
        next.iter().all(|&n| n == per_sender),
        "messages lost: {next:?}"
    );
    join_all(handles).await;
}

/// A channel workload, generic over the library (a trait, so a row can
/// list one closure per library).
trait ChanWorkload: 'static {
    fn run<L: Chans>(workers: usize, scale: f64) -> f64;
}

struct Spsc;

impl ChanWorkload for Spsc {
    fn run<L: Chans>(workers: usize, scale: f64) -> f64 {
        let n = scaled(1_000_000.0, scale);
        on_ours(workers, n, move || {
            let (tx, rx) = L::bounded::<u64>(1024);
            many_to_one(tx, rx, 1, n)
        })
    }
}

struct Mpsc4;

impl ChanWorkload for Mpsc4 {
    fn run<L: Chans>(workers: usize, scale: f64) -> f64 {
        let per = scaled(250_000.0, scale);
        on_ours(workers, 4 * per, move || {
            let (tx, rx) = L::bounded::<u64>(1024);
            many_to_one(tx, rx, 4, per)
        })
    }
}

struct Unbounded4;

impl ChanWorkload for Unbounded4 {
    fn run<L: Chans>(workers: usize, scale: f64) -> f64 {
        let per = scaled(250_000.0, scale);
        on_ours(workers, 4 * per, move || {
            let (tx, rx) = L::unbounded::<u64>();
            many_to_one(tx, rx, 4, per)
        })
    }
}

struct Ten64B;

impl ChanWorkload for Ten64B {
    fn run<L: Chans>(workers: usize, scale: f64) -> f64 {
        let per = scaled(100_000.0, scale);
        on_ours(workers, 10 * per, move || {
            let (tx, rx) = L::bounded::<[u8; 64]>(100);
            many_to_one(tx, rx, 10, per)
        })
    }
}

struct Oneshot;

impl ChanWorkload for Oneshot {
    fn run<L: Chans>(workers: usize, scale: f64) -> f64 {
        let n = scaled(1_000_000.0, scale);
        on_ours(workers, n, move || async move {
            for i in 0..n {
                assert_eq!(L::oneshot(i).await, i);
            }
        })
    }
}

/// A row of `W` with every channel library as a contender.
fn chan_row<W: ChanWorkload>(name: &str, flavour: &str, workers: usize) -> Row {
    fn c<W: ChanWorkload, L: Chans>(workers: usize) -> Contender {
        Contender::new(L::NAME, move |scale| W::run::<L>(workers, scale))
    }
    Row::new(
        format!("{name}/{flavour}"),
        vec![
            c::<W, Ours>(workers),
            c::<W, Tokio>(workers),
            c::<W, AsyncChannel>(workers),
            c::<W, Flume>(workers),
            c::<W, Kanal>(workers),
            c::<W, FuturesChannel>(workers),
        ],
    )
}

// ===== broadcast and watch =====

/// A broadcast channel library.
trait Bcast: 'static {
    const NAME: &'static str;
    type Tx: Send + Sync + 'static;
    type Rx: Send + 'static;

    fn channel(capacity: usize) -> (Self::Tx, Self::Rx);

    fn subscribe(tx: &Self::Tx) -> Self::Rx;

    /// Sends to every receiver; panics if there is none.
    fn send(tx: &Self::Tx, value: u64) -> impl Future<Output = ()> + Send + '_;

    /// The next message, `None` once closed; panics on a lag (the
    /// workload paces the sender so that none happens).
    fn recv(rx: &mut Self::Rx) -> impl Future<Output = Option<u64>> + Send + '_;
}

impl Bcast for Ours {
    const NAME: &'static str = "ours";
    type Tx = waitrt::sync::broadcast::Sender<u64>;
    type Rx = waitrt::sync::broadcast::Receiver<u64>;

    fn channel(capacity: usize) -> (Self::Tx, Self::Rx) {
        waitrt::sync::broadcast::channel(capacity)
    }

    fn subscribe(tx: &Self::Tx) -> Self::Rx {
        tx.subscribe()
    }

    async fn send(tx: &Self::Tx, value: u64) {
        tx.send(value).expect("receivers alive");
    }

    async fn recv(rx: &mut Self::Rx) -> Option<u64> {
        use waitrt::sync::broadcast::error::RecvError;
        match rx.recv().await {
            Ok(value) => Some(value),
            Err(RecvError::Closed) => None,
            Err(RecvError::Lagged(n)) => panic!("lagged by {n}"),
        }
    }
}

impl Bcast for Tokio {
    const NAME: &'static str = "tokio";
    type Tx = tokio::sync::broadcast::Sender<u64>;
    type Rx = tokio::sync::broadcast::Receiver<u64>;

    fn channel(capacity: usize) -> (Self::Tx, Self::Rx) {
        tokio::sync::broadcast::channel(capacity)
    }

    fn subscribe(tx: &Self::Tx) -> Self::Rx {
        tx.subscribe()
    }

    async fn send(tx: &Self::Tx, value: u64) {
        tx.send(value).expect("receivers alive");
    }

    async fn recv(rx: &mut Self::Rx) -> Option<u64> {
        use tokio::sync::broadcast::error::RecvError;
        match rx.recv().await {
            Ok(value) => Some(value),
            Err(RecvError::Closed) => None,
            Err(RecvError::Lagged(n)) => panic!("lagged by {n}"),
        }
    }
}

/// async-broadcast (smol's; its sender waits while the channel is full,
/// which the pacing never lets happen).
struct AsyncBroadcast;

impl Bcast for AsyncBroadcast {
    const NAME: &'static str = "async-broadcast";
    type Tx = async_broadcast::Sender<u64>;
    type Rx = async_broadcast::Receiver<u64>;

    fn channel(capacity: usize) -> (Self::Tx, Self::Rx) {
        async_broadcast::broadcast(capacity)
    }

    fn subscribe(tx: &Self::Tx) -> Self::Rx {
        tx.new_receiver()
    }

    async fn send(tx: &Self::Tx, value: u64) {
        tx.broadcast_direct(value).await.expect("receivers alive");
    }

    async fn recv(rx: &mut Self::Rx) -> Option<u64> {
        use async_broadcast::RecvError;
        match rx.recv_direct().await {
            Ok(value) => Some(value),
            Err(RecvError::Closed) => None,
            Err(RecvError::Overflowed(n)) => panic!("lagged by {n}"),
        }
    }
}

/// A watch channel library.
trait Watch: 'static {
    const NAME: &'static str;
    type Tx: Send + Sync + 'static;
    type Rx: Clone + Send + 'static;

    fn channel(init: u64) -> (Self::Tx, Self::Rx);

    /// Publishes `value`; panics if no receiver is left.
    fn send(tx: &Self::Tx, value: u64);

    /// Waits for a value this receiver has not seen; `false` once the
    /// sender is gone and it has seen the last one.
    fn changed(rx: &mut Self::Rx) -> impl Future<Output = bool> + Send + '_;

    /// The current value, marked seen.
    fn latest(rx: &mut Self::Rx) -> u64;
}

impl Watch for Ours {
    const NAME: &'static str = "ours";
    type Tx = waitrt::sync::watch::Sender<u64>;
    type Rx = waitrt::sync::watch::Receiver<u64>;

    fn channel(init: u64) -> (Self::Tx, Self::Rx) {
        waitrt::sync::watch::channel(init)
    }

    fn send(tx: &Self::Tx, value: u64) {
        tx.send(value).expect("receivers alive");
    }

    async fn changed(rx: &mut Self::Rx) -> bool {
        rx.changed().await.is_ok()
    }

    fn latest(rx: &mut Self::Rx) -> u64 {
        *rx.borrow_and_update()
    }
}

impl Watch for Tokio {
    const NAME: &'static str = "tokio";
    type Tx = tokio::sync::watch::Sender<u64>;
    type Rx = tokio::sync::watch::Receiver<u64>;

    fn channel(init: u64) -> (Self::Tx, Self::Rx) {
        tokio::sync::watch::channel(init)
    }

    fn send(tx: &Self::Tx, value: u64) {
        tx.send(value).expect("receivers alive");
    }

    async fn changed(rx: &mut Self::Rx) -> bool {
        rx.changed().await.is_ok()
    }

    fn latest(rx: &mut Self::Rx) -> u64 {
        *rx.borrow_and_update()
    }
}

/// One sender (the root task), 16 receiver tasks, `n` messages through a
/// broadcast(1024); each receiver checks it got 0..n in order. The sender
/// pauses (yielding) every 256 messages until every receiver is within
/// 512 of it, so no receiver lags and every contender does the same work.
async fn broadcast_fanout<B: Bcast>(receivers: usize, n: u64) {
    let (tx, first) = B::channel(1024);
    let progress: Arc<Vec<AtomicU64>> = Arc::new((0..receivers).map(|_| 0.into()).collect());
    let mut rxs = vec![first];
    rxs.extend((1..receivers).map(|_| B::subscribe(&tx)));
    let handles = rxs
        .into_iter()
        .enumerate()
        .map(|(r, mut rx)| {
            let progress = progress.clone();
            waitrt::spawn(async move {
                let mut next = 0;
                while let Some(value) = B::recv(&mut rx).await {
                    assert_eq!(value, next, "receiver {r} out of order");
                    next += 1;
                    progress[r].store(next, Ordering::Release);
                }
                assert_eq!(next, n, "receiver {r} lost messages");
            })
        })
        .collect();
    for i in 0..n {
        B::send(&tx, i).await;
        let sent = i + 1;
        if sent % 256 == 0 {
            while progress
                .iter()
                .any(|p| p.load(Ordering::Acquire) + 512 < sent)
            {
                waitrt::task::yield_now().await;
            }
        }
    }
    drop(tx);
    join_all(handles).await;
}

/// One writer (the root task) publishes 1..=n, yielding after each write
/// so the 16 reader tasks run; each reader checks the values it sees only
/// grow and that the last is `n`.
async fn watch_fanout<W: Watch>(readers: usize, n: u64) {
    let (tx, rx) = W::channel(0);
    let handles = (0..readers)
        .map(|_| {
            let mut rx = rx.clone();
            waitrt::spawn(async move {
                let (mut last, mut seen) = (0, 0u64);
                while W::changed(&mut rx).await {
                    let value = W::latest(&mut rx);
                    assert!(value > last, "watch went back: {value} after {last}");
                    (last, seen) = (value, seen + 1);
                }
                assert_eq!(W::latest(&mut rx), n, "the last value is lost");
                assert!(seen > 0);
            })
        })
        .collect();
    drop(rx);
    for i in 1..=n {
        W::send(&tx, i);
        waitrt::task::yield_now().await;
    }
    drop(tx);
    join_all(handles).await;
}

fn broadcast_row(flavour: &str, workers: usize) -> Row {
    fn c<B: Bcast>(workers: usize) -> Contender {
        Contender::new(B::NAME, move |scale| {
            let n = scaled(100_000.0, scale);
            on_ours(workers, n, move || broadcast_fanout::<B>(16, n))
        })
    }
    Row::new(
        format!("broadcast_1to16/{flavour}"),
        vec![
            c::<Ours>(workers),
            c::<Tokio>(workers),
            c::<AsyncBroadcast>(workers),
        ],
    )
}

fn watch_row(flavour: &str, workers: usize) -> Row {
    fn c<W: Watch>(workers: usize) -> Contender {
        Contender::new(W::NAME, move |scale| {
            let n = scaled(100_000.0, scale);
            on_ours(workers, n, move || watch_fanout::<W>(16, n))
        })
    }
    Row::new(
        format!("watch_1w16r/{flavour}"),
        vec![c::<Ours>(workers), c::<Tokio>(workers)],
    )
}

// ===== locks =====

/// The two halves a reader checks: a write bumps both, across a yield.
type Pair = [u64; 2];

/// A lock library: its Mutex, RwLock and Semaphore.
trait Locks: 'static {
    const NAME: &'static str;
    type Mutex: Send + Sync + 'static;
    type MutexGuard<'a>: DerefMut<Target = u64> + Send;
    type RwLock: Send + Sync + 'static;
    type ReadGuard<'a>: Deref<Target = Pair> + Send;
    type WriteGuard<'a>: DerefMut<Target = Pair> + Send;
    type Semaphore: Send + Sync + 'static;
    type Permit<'a>: Send;

    fn mutex() -> Self::Mutex;
    fn lock(mutex: &Self::Mutex) -> impl Future<Output = Self::MutexGuard<'_>> + Send;
    fn rwlock() -> Self::RwLock;
    fn read(lock: &Self::RwLock) -> impl Future<Output = Self::ReadGuard<'_>> + Send;
    fn write(lock: &Self::RwLock) -> impl Future<Output = Self::WriteGuard<'_>> + Send;
    fn semaphore(permits: usize) -> Self::Semaphore;
    fn acquire(semaphore: &Self::Semaphore) -> impl Future<Output = Self::Permit<'_>> + Send;
}

impl Locks for Ours {
    const NAME: &'static str = "ours";
    type Mutex = waitrt::sync::Mutex<u64>;
    type MutexGuard<'a> = waitrt::sync::MutexGuard<'a, u64>;
    type RwLock = waitrt::sync::RwLock<Pair>;
    type ReadGuard<'a> = waitrt::sync::RwLockReadGuard<'a, Pair>;
    type WriteGuard<'a> = waitrt::sync::RwLockWriteGuard<'a, Pair>;
    type Semaphore = waitrt::sync::Semaphore;
    type Permit<'a> = waitrt::sync::SemaphorePermit<'a>;

    fn mutex() -> Self::Mutex {
        waitrt::sync::Mutex::new(0)
    }

    fn lock(mutex: &Self::Mutex) -> impl Future<Output = Self::MutexGuard<'_>> + Send {
        mutex.lock()
    }

    fn rwlock() -> Self::RwLock {
        waitrt::sync::RwLock::new([0; 2])
    }

    fn read(lock: &Self::RwLock) -> impl Future<Output = Self::ReadGuard<'_>> + Send {
        lock.read()
    }

    fn write(lock: &Self::RwLock) -> impl Future<Output = Self::WriteGuard<'_>> + Send {
        lock.write()
    }

    fn semaphore(permits: usize) -> Self::Semaphore {
        waitrt::sync::Semaphore::new(permits)
    }

    async fn acquire(semaphore: &Self::Semaphore) -> Self::Permit<'_> {
        semaphore.acquire().await.expect("never closed")
    }
}

impl Locks for Tokio {
    const NAME: &'static str = "tokio";
    type Mutex = tokio::sync::Mutex<u64>;
    type MutexGuard<'a> = tokio::sync::MutexGuard<'a, u64>;
    type RwLock = tokio::sync::RwLock<Pair>;
    type ReadGuard<'a> = tokio::sync::RwLockReadGuard<'a, Pair>;
    type WriteGuard<'a> = tokio::sync::RwLockWriteGuard<'a, Pair>;
    type Semaphore = tokio::sync::Semaphore;
    type Permit<'a> = tokio::sync::SemaphorePermit<'a>;

    fn mutex() -> Self::Mutex {
        tokio::sync::Mutex::new(0)
    }

    fn lock(mutex: &Self::Mutex) -> impl Future<Output = Self::MutexGuard<'_>> + Send {
        mutex.lock()
    }

    fn rwlock() -> Self::RwLock {
        tokio::sync::RwLock::new([0; 2])
    }

    fn read(lock: &Self::RwLock) -> impl Future<Output = Self::ReadGuard<'_>> + Send {
        lock.read()
    }

    fn write(lock: &Self::RwLock) -> impl Future<Output = Self::WriteGuard<'_>> + Send {
        lock.write()
    }

    fn semaphore(permits: usize) -> Self::Semaphore {
        tokio::sync::Semaphore::new(permits)
    }

    async fn acquire(semaphore: &Self::Semaphore) -> Self::Permit<'_> {
        semaphore.acquire().await.expect("never closed")
    }
}

/// async-lock (smol's).
struct AsyncLock;

impl Locks for AsyncLock {
    const NAME: &'static str = "async-lock";
    type Mutex = async_lock::Mutex<u64>;
    type MutexGuard<'a> = async_lock::MutexGuard<'a, u64>;
    type RwLock = async_lock::RwLock<Pair>;
    type ReadGuard<'a> = async_lock::RwLockReadGuard<'a, Pair>;
    type WriteGuard<'a> = async_lock::RwLockWriteGuard<'a, Pair>;
    type Semaphore = async_lock::Semaphore;
    type Permit<'a> = async_lock::SemaphoreGuard<'a>;

    fn mutex() -> Self::Mutex {
        async_lock::Mutex::new(0)
    }

    fn lock(mutex: &Self::Mutex) -> impl Future<Output = Self::MutexGuard<'_>> + Send {
        mutex.lock()
    }

    fn rwlock() -> Self::RwLock {
        async_lock::RwLock::new([0; 2])
    }

    fn read(lock: &Self::RwLock) -> impl Future<Output = Self::ReadGuard<'_>> + Send {
        lock.read()
    }

    fn write(lock: &Self::RwLock) -> impl Future<Output = Self::WriteGuard<'_>> + Send {
        lock.write()
    }

    fn semaphore(permits: usize) -> Self::Semaphore {
        async_lock::Semaphore::new(permits)
    }

    fn acquire(semaphore: &Self::Semaphore) -> impl Future<Output = Self::Permit<'_>> + Send {
        semaphore.acquire()
    }
}

/// `tasks` tasks each lock and increment `per_task` times; every 16th
/// hold spans a yield, so the others queue on the lock. Checks the total.
async fn mutex_contended<L: Locks>(tasks: u64, per_task: u64, worst: Option<Arc<WorstWait>>) {
    let mutex = Arc::new(L::mutex());
    let handles = (0..tasks)
        .map(|_| {
            let (mutex, worst) = (mutex.clone(), worst.clone());
            waitrt::spawn(async move {
                for i in 0..per_task {
                    let mut guard = WorstWait::time(worst.as_deref(), L::lock(&mutex)).await;
                    *guard += 1;
                    if i % 16 == 0 {
                        waitrt::task::yield_now().await;
                    }
                    drop(guard);
                }
            })
        })
        .collect();
    join_all(handles).await;
    assert_eq!(*L::lock(&mutex).await, tasks * per_task, "lost increments");
}

/// `tasks` tasks each do `per_task` operations, every 20th a write that
/// bumps both halves of a pair across a yield (so readers queue behind
/// it), the rest reads that check the halves are equal. Checks the count
/// of writes.
async fn rwlock_read_heavy<L: Locks>(tasks: u64, per_task: u64, worst: Option<Arc<WorstWait>>) {
    let lock = Arc::new(L::rwlock());
    let handles = (0..tasks)
        .map(|_| {
            let (lock, worst) = (lock.clone(), worst.clone());
            waitrt::spawn(async move {
                for i in 0..per_task {
                    if i % 20 == 0 {
                        let mut pair = WorstWait::time(worst.as_deref(), L::write(&lock)).await;
                        pair[0] += 1;
                        waitrt::task::yield_now().await;
                        pair[1] += 1;
                    } else {
                        let pair = WorstWait::time(worst.as_deref(), L::read(&lock)).await;
                        assert_eq!(pair[0], pair[1], "a read saw half a write");
                    }
                }
            })
        })
        .collect();
    join_all(handles).await;
    let writes = tasks * per_task.div_ceil(20);
    assert_eq!(*L::read(&lock).await, [writes; 2], "lost writes");
}

/// `tasks` tasks each acquire one of `permits` permits `per_task` times
/// and hold it across a yield; the holders are counted and never exceed
/// `permits`.
async fn semaphore_contended<L: Locks>(
    tasks: u64,
    permits: usize,
    per_task: u64,
    worst: Option<Arc<WorstWait>>,
) {
    let semaphore = Arc::new(L::semaphore(permits));
    let holders = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let handles = (0..tasks)
        .map(|_| {
            let (semaphore, holders, done) = (semaphore.clone(), holders.clone(), done.clone());
            let worst = worst.clone();
            waitrt::spawn(async move {
                for _ in 0..per_task {
                    let permit = WorstWait::time(worst.as_deref(), L::acquire(&semaphore)).await;
                    let now = holders.fetch_add(1, Ordering::AcqRel) + 1;
                    assert!(now <= permits as u64, "{now} holders of {permits} permits");
                    waitrt::task::yield_now().await;
                    holders.fetch_sub(1, Ordering::AcqRel);
                    drop(permit);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    join_all(handles).await;
    assert_eq!(done.load(Ordering::Relaxed), tasks * per_task);
}

/// What a lock row measures: time per operation, or (the `_worst` rows)
/// the longest single wait in µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Measure {
    PerOp,
    Worst,
}

fn lock_rows(flavour: &str, workers: usize) -> Vec<Row> {
    /// Runs a lock workload of `ops` operations for `measure`.
    fn measured<F, Fut>(workers: usize, ops: u64, measure: Measure, body: F) -> f64
    where
        F: FnOnce(Option<Arc<WorstWait>>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        match measure {
            Measure::PerOp => on_ours(workers, ops, move || body(None)),
            Measure::Worst => {
                let worst = Arc::new(WorstWait::default());
                let noted = worst.clone();
                on_ours_with(workers, move || body(Some(noted)));
                worst.micros()
            }
        }
    }
    fn mutex<L: Locks>(workers: usize, measure: Measure) -> Contender {
        Contender::new(L::NAME, move |scale| {
            let per = scaled(50_000.0, scale);
            measured(workers, 16 * per, measure, move |worst| {
                mutex_contended::<L>(16, per, worst)
            })
        })
    }
    fn rwlock<L: Locks>(workers: usize, measure: Measure) -> Contender {
        Contender::new(L::NAME, move |scale| {
            let per = scaled(50_000.0, scale);
            measured(workers, 16 * per, measure, move |worst| {
                rwlock_read_heavy::<L>(16, per, worst)
            })
        })
    }
    fn semaphore<L: Locks>(workers: usize, measure: Measure) -> Contender {
        Contender::new(L::NAME, move |scale| {
            let per = scaled(10_000.0, scale);
            measured(workers, 64 * per, measure, move |worst| {
                semaphore_contended::<L>(64, 8, per, worst)
            })
        })
    }
    let mut rows = Vec::new();
    for (suffix, measure) in [("", Measure::PerOp), ("_worst", Measure::Worst)] {
        let row = |name: &str, contenders| {
            let row = Row::new(format!("{name}{suffix}/{flavour}"), contenders);
            match measure {
                Measure::PerOp => row,
                Measure::Worst => row.unit("us worst wait"),
            }
        };
        rows.push(row(
            "mutex_16",
            vec![
                mutex::<Ours>(workers, measure),
                mutex::<Tokio>(workers, measure),
                mutex::<AsyncLock>(workers, measure),
            ],
        ));
        rows.push(row(
            "rwlock_95r",
            vec![
                rwlock::<Ours>(workers, measure),
                rwlock::<Tokio>(workers, measure),
                rwlock::<AsyncLock>(workers, measure),
            ],
        ));
        rows.push(row(
            "semaphore_64x8",
            vec![
                semaphore::<Ours>(workers, measure),
                semaphore::<Tokio>(workers, measure),
                semaphore::<AsyncLock>(workers, measure),
            ],
        ));
    }
    rows
}

// ===== main =====

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    type Chan = fn(&str, &str, usize) -> Row;
    let chan_rows: [(&str, Chan); 5] = [
        ("mpsc_spsc", chan_row::<Spsc>),
        ("mpsc_4tx", chan_row::<Mpsc4>),
        ("mpsc_unbounded_4tx", chan_row::<Unbounded4>),
        ("mpsc_10tx_64B", chan_row::<Ten64B>),
        ("oneshot", chan_row::<Oneshot>),
    ];
    for (name, row) in chan_rows {
        for (flavour, workers) in FLAVOURS {
            rows.push(row(name, flavour, workers));
        }
    }
    for (flavour, workers) in FLAVOURS {
        rows.push(broadcast_row(flavour, workers));
    }
    for (flavour, workers) in FLAVOURS {
        rows.push(watch_row(flavour, workers));
    }
    let locks: Vec<Vec<Row>> = FLAVOURS
        .iter()
        .map(|&(flavour, workers)| lock_rows(flavour, workers))
        .collect();
    // Row order: each workload's current-thread row, then its 2-worker one.
    let [ct, mt] = <[Vec<Row>; 2]>::try_from(locks).ok().expect("two flavours");
    for (ct, mt) in ct.into_iter().zip(mt) {
        rows.extend([ct, mt]);
    }
    rows
}

fn main() -> std::process::ExitCode {
    let bench = harness::Bench {
        prefix: "SYNC_BENCH",
        title: "sync benchmark (issue 19): waitrt::sync vs peers, all on our runtime's executor",
        unit: "ns/op",
    };
    harness::main(&bench, rows())
}
