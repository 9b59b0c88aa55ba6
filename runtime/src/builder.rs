//! [`Builder`]: choose a scheduler and what it drives.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::blocking::{BlockingPool, PoolConfig};
use crate::reactor::Reactor;
use crate::scheduler::{current_thread, multi_thread, Common, Config, Scheduler, UnhandledPanic};
use crate::time::{Clock, Driver};
use crate::Runtime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    CurrentThread,
    MultiThread,
}

/// Builds a [`Runtime`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let rt = waitrt::Builder::new_multi_thread()
///     .worker_threads(2)
///     .enable_all()
///     .thread_name("app")
///     .build()
///     .unwrap();
/// rt.block_on(async { waitrt::time::sleep(Duration::from_millis(1)).await });
/// ```
pub struct Builder {
    kind: Kind,
    worker_threads: Option<usize>,
    enable_time: bool,
    enable_io: bool,
    start_paused: bool,
    max_blocking_threads: usize,
    keep_alive: Duration,
    thread_name: String,
    stack_size: Option<usize>,
    global_queue_interval: u32,
    event_interval: u32,
    io_spin: Duration,
    /// `None`: the default, which depends on the CPUs (`blocking_spin`).
    blocking_spin: Option<Duration>,
    unhandled_panic: UnhandledPanic,
    drop_timeout: Duration,
    process_pidfd: bool,
    /// Task dumps on SIGQUIT, the hung-task and stuck-worker detectors.
    obs: crate::obs::Config,
}

impl Builder {
    fn new(kind: Kind) -> Builder {
        Builder {
            kind,
            worker_threads: None,
            enable_time: false,
            enable_io: false,
            start_paused: false,
            max_blocking_threads: 512,
            keep_alive: Duration::from_secs(10),
            thread_name: "runtime-worker".into(),
            stack_size: None,
            global_queue_interval: 31,
            event_interval: 61,
            io_spin: Duration::from_micros(20),
            blocking_spin: None,
            unhandled_panic: UnhandledPanic::Ignore,
            drop_timeout: Duration::from_secs(10),
            process_pidfd: true,
            obs: crate::obs::Config {
                // Issue 22: who sleeps on what is known from the start, so
                // that the first dump of a hung service already says it.
                wait_registry: true,
                ..crate::obs::Config::default()
            },
        }
    }

    /// Every task runs on the thread that calls [`Runtime::block_on`].
    pub fn new_current_thread() -> Builder {
        Builder::new(Kind::CurrentThread)
    }

    /// A work-stealing pool of worker threads runs the tasks.
    pub fn new_multi_thread() -> Builder {
        Builder::new(Kind::MultiThread)
    }

    /// Worker threads for the multi-thread scheduler (default: the
    /// available parallelism). Ignored by the current-thread scheduler.
    ///
    /// # Panics
    ///
    /// If `n` is zero.
    pub fn worker_threads(&mut self, n: usize) -> &mut Self {
        assert!(n > 0, "worker_threads must be at least 1");
        self.worker_threads = Some(n);
        self
    }

    /// Enables every driver the runtime has: the timers and the I/O
    /// reactor.
    pub fn enable_all(&mut self) -> &mut Self {
        self.enable_time().enable_io()
    }

    /// Enables the I/O reactor, which the sockets in [`net`](crate::net)
    /// need.
    pub fn enable_io(&mut self) -> &mut Self {
        self.enable_io = true;
        self
    }

    /// Enables the timer driver (`sleep`, `timeout`, `interval`, and the
    /// `_timeout` waits through [`time::clock`](crate::time::clock)).
    pub fn enable_time(&mut self) -> &mut Self {
        self.enable_time = true;
        self
    }

    /// Starts with the clock paused (implies [`enable_time`](Self::enable_time)):
    /// it moves only through [`time::advance`](crate::time::advance), or
    /// jumps to the next timer when no task can run (a task asleep on a
    /// socket counts as unable to run: see [`time`](crate::time)). For
    /// tests.
    pub fn start_paused(&mut self, paused: bool) -> &mut Self {
        self.start_paused = paused;
        if paused {
            self.enable_time = true;
        }
        self
    }

    /// Most threads the blocking pool runs at once (default 512).
    ///
    /// # Panics
    ///
    /// If `n` is zero.
    pub fn max_blocking_threads(&mut self, n: usize) -> &mut Self {
        assert!(n > 0, "max_blocking_threads must be at least 1");
        self.max_blocking_threads = n;
        self
    }

    /// How long an idle blocking thread waits for work before it exits
    /// (default 10 s).
    pub fn thread_keep_alive(&mut self, keep_alive: Duration) -> &mut Self {
        self.keep_alive = keep_alive;
        self
    }

    /// Name prefix of the runtime's threads.
    pub fn thread_name(&mut self, name: impl Into<String>) -> &mut Self {
        self.thread_name = name.into();
        self
    }

    /// Stack size of the runtime's threads.
    pub fn thread_stack_size(&mut self, bytes: usize) -> &mut Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Polls between checks of the global queue (default 31).
    ///
    /// # Panics
    ///
    /// If `n` is zero.
    pub fn global_queue_interval(&mut self, n: u32) -> &mut Self {
        assert!(n > 0, "global_queue_interval must be at least 1");
        self.global_queue_interval = n;
        self
    }

    /// Polls between timer and I/O checks while tasks keep the scheduler
    /// busy (default 61, as tokio's). Fixed: halving it while the checks
    /// kept finding I/O (as this runtime once did) let a busy worker feed
    /// itself from the reactor instead of sleeping, and on a loaded
    /// machine the scheduler then preempted it mid-run: hyper on 2
    /// workers, `wrk -c64` sharing the 2 CPUs, had a p99 of 3.4-3.8 ms
    /// against tokio's 1.1-1.6 ms, and 0.85-1.3 ms with the fixed interval
    /// (`cargo bench --bench http`).
    ///
    /// On the multi-thread runtime a worker counts its polls toward the
    /// interval across its sleeps (as tokio's tick does), so a worker that
    /// runs dry every few polls still takes in its own tasks' I/O once per
    /// interval instead of leaving all of it to the worker asleep in the
    /// reactor (tcp_echo_rr on 2 workers: 0.91x tokio counting from zero
    /// after each sleep, 1.05x counting across). The interval also bounds
    /// how long a task that yielded waits on its worker (see
    /// [`yield_now`](crate::task::yield_now)).
    ///
    /// # Panics
    ///
    /// If `n` is zero.
    pub fn event_interval(&mut self, n: u32) -> &mut Self {
        assert!(n > 0, "event_interval must be at least 1");
        self.event_interval = n;
        self
    }

    /// How long an idle worker of the multi-thread runtime keeps polling
    /// the reactor without sleeping before it sleeps in it (default 20 µs;
    /// zero: sleep at once). Only while sockets are registered, and no more
    /// than 8 of them: with more (a server with many connections) a spin
    /// would take one event per reactor turn where a sleep batches several,
    /// so the worker sleeps at once.
    ///
    /// I/O that comes back within the spin is taken without a sleep and a
    /// wake-up: a thread woken from sleep on an idle CPU costs the waking
    /// side tens of µs on virtual machines. How much that pays depends on
    /// how the data comes. `benches/net.rs` tcp_bulk on 2 threads, 2 CPUs,
    /// loopback, median of 48 runs in 6 alternating pairs against
    /// `io_spin(Duration::ZERO)`:
    /// - paced, as under BBR (`BULK_CONGESTION_CONTROL = "bbr"` in
    ///   `benches/net/bulk_sockets.rs`): +37% (4.7k → 6.5k MiB/s);
    /// - in bursts, as under Reno (the bench's choice): −2% (6.8k → 6.7k
    ///   MiB/s), because the spinning reader takes each 64 KiB write in
    ///   two pieces as they land (65,483 + 53 bytes) instead of whole.
    ///
    /// Request-response traffic (tcp_echo_rr) neither gains nor loses. The
    /// price is up to this much CPU each time a worker runs out of work.
    /// When 4 spins in a row find nothing (the few sources answer slowly,
    /// say a child process's pidfd and pipes), the worker spins on only one
    /// park in 64 until a spin finds I/O again: spinning for
    /// `Command::output()` of `true` took CPU from the child on 2 vCPUs
    /// (`benches/fs_process.rs`: about 100 `epoll_wait` calls per child,
    /// 10 with the back-off; tokio makes 2.6).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = waitrt::Builder::new_multi_thread()
    ///     .worker_threads(2)
    ///     .io_spin(Duration::ZERO) // an idle service that must not spin
    ///     .enable_all()
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
    /// ```
    pub fn io_spin(&mut self, spin: Duration) -> &mut Self {
        self.io_spin = spin;
        self
    }

    /// How long a thread waits on its CPU for the other side of a
    /// blocking-pool hand-off before it sleeps (default 30 µs on a machine
    /// with more than one CPU, zero on one): a pool thread that finished a
    /// job spins for its next one, and a scheduler thread (a worker, or a
    /// `block_on`) that ran out of work while a job is in flight spins for
    /// the job's result. Zero: sleep at once.
    ///
    /// A hand-off to a sleeping thread costs a futex wake, and on virtual
    /// machines tens of µs before the woken thread runs; a call such as
    /// [`fs::read`](crate::fs::read) of a small file is two hand-offs and
    /// a few µs of work. Back-to-back `fs::read`s of 4 KiB from one task
    /// (`benches/fs_process.rs`, 2 workers, 2 vCPUs) took about 25 µs
    /// each without the spin and about 5 µs with it, in less CPU (no
    /// futex calls). A job that takes longer than the spin (a 1 MiB
    /// write) gains nothing and the waiting side spins in vain; after 4
    /// spins in a row that found nothing, a spinner spins on only one
    /// sleep in 64 until a spin finds what it waits for again.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = waitrt::Builder::new_multi_thread()
    ///     .worker_threads(2)
    ///     .blocking_spin(Duration::ZERO) // a service that must not spin
    ///     .enable_all()
    ///     .build()
    ///     .unwrap();
    /// let n = rt.block_on(async { waitrt::spawn_blocking(|| 1 + 1).await.unwrap() });
    /// assert_eq!(n, 2);
    /// ```
    pub fn blocking_spin(&mut self, spin: Duration) -> &mut Self {
        self.blocking_spin = Some(spin);
        self
    }

    /// What a panicking task does to the runtime (default: nothing; the
    /// panic goes to its `JoinHandle`).
    pub fn unhandled_panic(&mut self, policy: UnhandledPanic) -> &mut Self {
        self.unhandled_panic = policy;
        self
    }

    /// How long dropping the runtime waits for worker threads and running
    /// blocking jobs (default 10 s); see [`Runtime::shutdown_timeout`].
    pub fn drop_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.drop_timeout = timeout;
        self
    }

    /// How the exits of [child processes](crate::process) reach the
    /// runtime. On (the default), each child gets a pidfd
    /// (`pidfd_open(2)`, Linux ≥ 5.3) registered with the reactor, and no
    /// thread or signal handler is involved; where the kernel has no
    /// pidfd (or a seccomp policy denies it with an error), the runtime
    /// falls back to the reaper by itself. Off, every child goes through
    /// the reaper: one process-wide thread that reaps on `SIGCHLD` and
    /// wakes the child's waiter through an exit pipe in the reactor.
    ///
    /// Turn it off only where `pidfd_open` must not be called at all: a
    /// seccomp policy that kills the process on a syscall it does not
    /// list, instead of failing the call.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread()
    ///     .enable_io()
    ///     .process_pidfd(false) // the SIGCHLD reaper for every child
    ///     .build()
    ///     .unwrap();
    /// let status = rt.block_on(async { waitrt::process::Command::new("true").status().await });
    /// assert!(status.unwrap().success());
    /// ```
    pub fn process_pidfd(&mut self, enable: bool) -> &mut Self {
        self.process_pidfd = enable;
        self
    }

    /// Prints a task dump ([`Handle::dump`](crate::Handle::dump)) to stderr
    /// whenever the process gets SIGQUIT (Ctrl-\\), as Go and the JVM do,
    /// instead of the default action (quit with a core dump). A listener
    /// thread takes the dump; no task is polled. Once every runtime built
    /// with it is dropped, SIGQUIT quits the process again (unless the
    /// program listens for it through [`signal`](crate::signal)). Off by
    /// default.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_multi_thread().dump_on_sigquit(true).build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn dump_on_sigquit(&mut self, enable: bool) -> &mut Self {
        self.obs.dump_on_sigquit = enable;
        self
    }

    /// Whether the wait registry ([`waitq::registry`]) lists what each
    /// task sleeps on: the queue, the wait site, the kind, since when.
    /// **On by default**, so that [`Handle::dump`](crate::Handle::dump)
    /// (and [`dump_on_sigquit`](Self::dump_on_sigquit)) answers "which
    /// task sleeps on what" in a service that was never set up for it.
    /// `wait_registry(false)` opts out, for a program that has measured
    /// the cost and wants it back; a dump then still lists every task,
    /// the timers, busy workers and running tasks, but not what a sleeping
    /// task waits on.
    ///
    /// The switch is process-wide and one-way: the first runtime built
    /// with it on (the default) turns the registry on for the whole
    /// process, so `false` keeps it off only where no other runtime in the
    /// process has it on.
    ///
    /// Cost: a task's sleep is written into the task's own slot with
    /// plain stores (no lock, no allocation), about 130 instructions per
    /// sleep. Measured on against off, one process per run, order
    /// alternating, median of 8 pairs (2 vCPUs; the 2-worker rows swing
    /// by 10 % and more from run to run): the pure wake loops pay most, a
    /// ping-pong of two tasks 1.03x-1.04x and a herd of 1,000 waiters
    /// 1.04x-1.05x, and 1.06x and 1.08x on another host (an AMD EPYC VM,
    /// where ours and tokio run those two loops level with the registry
    /// off) (`RT_BENCH_WAIT_REGISTRY=0` turns it off in `cargo
    /// bench --bench runtime`); a contended `Mutex`, `Semaphore`, `RwLock`
    /// and `watch` about 1.03x on one thread, `mpsc`, `broadcast` and
    /// `oneshot` 0.99x-1.03x (`SYNC_BENCH_WAIT_REGISTRY=0`); TCP echo and
    /// bulk 0.98x-1.01x (`NET_BENCH_WAIT_REGISTRY=0`); spawning and
    /// yielding 0.98x-1.06x.
    /// The hung-task and lost-grant detectors list every sleep in the
    /// registry's shared map instead, about 50 ns per sleep (1.6x on that
    /// ping-pong), and stay off by default.
    ///
    /// Memory: the slots are 64 bytes each, one per task key, made in
    /// chunks as the keys in use grow and kept for the runtime's life
    /// (dumps read them without locks, so nothing can take a chunk back
    /// while the runtime runs): a runtime keeps about 64 bytes per task it
    /// ever had alive at once and asleep, some 62 MB after a burst of a
    /// million sleeping tasks (the owned-task list and the run queue give
    /// their room back after such a burst; these slots do not).
    ///
    /// # Examples
    ///
    /// ```
    /// // On by default (`Handle::dump` shows what a dump then says);
    /// // opting out, for this runtime's process:
    /// let rt = waitrt::Builder::new_current_thread().wait_registry(false).build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn wait_registry(&mut self, enable: bool) -> &mut Self {
        self.obs.wait_registry = enable;
        self
    }

    /// Reports every task asleep for longer than `timeout` in an
    /// uninterruptible wait without a deadline for something another task
    /// holds or must do (`wait_event` on a queue, a lock, a semaphore, a
    /// full channel's send, `OnceCell`, `Barrier`; not `_interruptible`,
    /// `_killable` or `_timeout` waits) that has not been polled for
    /// `timeout` either, once per sleep, as Linux's khungtaskd does (its
    /// default is 120 s): a report comes between one and two timeouts into
    /// a hang. Waits for events from outside are not reported, as the
    /// kernel's `TASK_IDLE` and interruptible sleeps are not: a socket's
    /// readiness or an accept, a channel's receive or `closed()`, a join, a
    /// signal (an idle connection or accept loop is not hung). A task that runs is not hung, even
    /// with a wait it left behind still registered (a `&mut JoinHandle` or
    /// a socket read inside a `timeout` that expired). A background thread
    /// checks a few times per `timeout`; the report goes to
    /// [`on_hung_task`](Self::on_hung_task), or one line on stderr. Off by
    /// default.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = waitrt::Builder::new_multi_thread()
    ///     .hung_task_timeout(Duration::from_secs(120))
    ///     .build()
    ///     .unwrap();
    /// # drop(rt);
    /// ```
    pub fn hung_task_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.obs.hung_task_timeout = Some(timeout);
        self
    }

    /// Where hung tasks are reported (see
    /// [`hung_task_timeout`](Self::hung_task_timeout)); called on the
    /// detector's thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = waitrt::Builder::new_current_thread()
    ///     .hung_task_timeout(Duration::from_secs(60))
    ///     .on_hung_task(|hung| eprintln!("{hung}"))
    ///     .build()
    ///     .unwrap();
    /// # drop(rt);
    /// ```
    pub fn on_hung_task(
        &mut self,
        f: impl Fn(&crate::obs::HungTask) + Send + Sync + 'static,
    ) -> &mut Self {
        self.obs.on_hung_task = Some(Arc::new(f));
        self
    }

    /// Reports a lost grant: a task that an exclusive wake handed a lock,
    /// permit, channel slot or turn (a [`Mutex`](crate::sync::Mutex), a
    /// [`Semaphore`](crate::sync::Semaphore), a bounded
    /// [`mpsc`](crate::sync::mpsc) send, an exclusive `wait_event`) more
    /// than `threshold` ago, and that has run since without polling the
    /// future that waits for it: the "futurelock" of a future left unpolled
    /// in a `select!` loop while others queue behind what it holds. Once
    /// per sleep, to [`on_lost_grant`](Self::on_lost_grant), or one line on
    /// stderr. Turns the wait registry on. Off by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = waitrt::Builder::new_multi_thread()
    ///     .lost_grant_timeout(Duration::from_secs(1))
    ///     .build()
    ///     .unwrap();
    /// # drop(rt);
    /// ```
    pub fn lost_grant_timeout(&mut self, threshold: Duration) -> &mut Self {
        self.obs.lost_grant_timeout = Some(threshold);
        self
    }

    /// Where lost grants are reported (see
    /// [`lost_grant_timeout`](Self::lost_grant_timeout)); called on the
    /// detector's thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = waitrt::Builder::new_current_thread()
    ///     .lost_grant_timeout(Duration::from_secs(1))
    ///     .on_lost_grant(|lost| eprintln!("{lost}"))
    ///     .build()
    ///     .unwrap();
    /// # drop(rt);
    /// ```
    pub fn on_lost_grant(
        &mut self,
        f: impl Fn(&crate::obs::LostGrant) + Send + Sync + 'static,
    ) -> &mut Self {
        self.obs.on_lost_grant = Some(Arc::new(f));
        self
    }

    /// Reports a worker that has not returned from one poll for longer
    /// than `threshold` (blocking code in async), with the task it polls
    /// and its spawn site, once per poll; to
    /// [`on_stuck_worker`](Self::on_stuck_worker), or one line on stderr.
    /// Off by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = waitrt::Builder::new_multi_thread()
    ///     .stuck_worker_threshold(Duration::from_secs(1))
    ///     .build()
    ///     .unwrap();
    /// # drop(rt);
    /// ```
    pub fn stuck_worker_threshold(&mut self, threshold: Duration) -> &mut Self {
        self.obs.stuck_worker_threshold = Some(threshold);
        self
    }

    /// Where stuck workers are reported (see
    /// [`stuck_worker_threshold`](Self::stuck_worker_threshold)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = waitrt::Builder::new_multi_thread()
    ///     .stuck_worker_threshold(Duration::from_secs(1))
    ///     .on_stuck_worker(|stuck| eprintln!("{stuck}"))
    ///     .build()
    ///     .unwrap();
    /// # drop(rt);
    /// ```
    pub fn on_stuck_worker(
        &mut self,
        f: impl Fn(&crate::obs::StuckWorker) + Send + Sync + 'static,
    ) -> &mut Self {
        self.obs.on_stuck_worker = Some(Arc::new(f));
        self
    }

    /// Builds the runtime (starting its worker threads).
    ///
    /// # Errors
    ///
    /// When a worker thread cannot be started, or the reactor's poller
    /// cannot be created.
    pub fn build(&mut self) -> io::Result<Runtime> {
        let config = Config {
            global_queue_interval: self.global_queue_interval,
            event_interval: self.event_interval,
            io_spin: self.io_spin,
            unhandled_panic: self.unhandled_panic,
            thread_name: self.thread_name.clone(),
            thread_stack_size: self.stack_size,
            process_pidfd: self.process_pidfd,
        };
        let time = self
            .enable_time
            .then(|| Driver::new(Clock::new(self.start_paused)));
        let blocking = BlockingPool::new(PoolConfig {
            max_threads: self.max_blocking_threads,
            keep_alive: self.keep_alive,
            thread_name: self.thread_name.clone(),
            stack_size: self.stack_size,
            spin: self.blocking_spin.unwrap_or_else(|| {
                // On one CPU the other side of the hand-off needs the CPU
                // the spinner holds.
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
                match cpus {
                    1 => Duration::ZERO,
                    _ => Duration::from_micros(30),
                }
            }),
        });
        let io = match self.enable_io {
            true => Some(Arc::new(Reactor::new()?)),
            false => None,
        };
        let common = Common::new(config, time, io, blocking);
        let scheduler = match self.kind {
            Kind::CurrentThread => Scheduler::CurrentThread(current_thread::Shared::new(common)),
            Kind::MultiThread => {
                let workers = self
                    .worker_threads
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
                Scheduler::MultiThread(multi_thread::Shared::start(common, workers)?)
            }
        };
        crate::obs::start(&scheduler, &self.obs)?;
        Ok(Runtime::from_parts(scheduler, self.drop_timeout))
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("kind", &self.kind)
            .field("worker_threads", &self.worker_threads)
            .field("enable_time", &self.enable_time)
            .field("enable_io", &self.enable_io)
            .field("start_paused", &self.start_paused)
            .field("process_pidfd", &self.process_pidfd)
            .finish_non_exhaustive()
    }
}
