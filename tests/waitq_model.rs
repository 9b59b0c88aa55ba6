//! Model-based test of `waitq` (anchors §9 rules 4–12): 10^6 random operations on hand-polled
//! futures over one queue, each checked against a FIFO model of who is linked and which wakers
//! must have fired. Seed: `WAITQ_MODEL_SEED` (printed on failure); count: `WAITQ_MODEL_OPS`.
mod support;

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;

use support::{poll_with, CountingWaker};
use waitq::{WaitEvent, WaitQueue};

/// Default seed; override with `WAITQ_MODEL_SEED` (decimal or `0x` hex).
const SEED: u64 = 0x5eed_0f0a_17c0_de01;
/// Default operation count; override with `WAITQ_MODEL_OPS`.
const OPS: u64 = 1_000_000;
/// Wakers of finished futures that stay checked (none of them may fire again).
const RETIRED: usize = 64;

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

type Cond = Box<dyn FnMut() -> bool>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Shared,
    Exclusive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// On its class's list (model: in `shared` / `exclusive`).
    Linked,
    /// Picked (and unlinked) by a wake, not polled since.
    Woken,
}

/// A waker plus how often the model says it has fired.
struct Tracked {
    waker: Arc<CountingWaker>,
    expected: usize,
}

struct Live<'q> {
    id: u64,
    class: Class,
    state: State,
    cond: Rc<Cell<bool>>,
    fut: WaitEvent<'q, Cond>,
    waker: Tracked,
}

struct Model<'q> {
    q: &'q WaitQueue,
    rng: Rng,
    seed: u64,
    op: u64,
    exclusive_percent: u64,
    live: Vec<Live<'q>>,
    /// Linked ids per class, oldest first.
    shared: VecDeque<u64>,
    exclusive: VecDeque<u64>,
    retired: VecDeque<Tracked>,
    next_id: u64,
    peak_linked: usize,
    peak_live: usize,
    /// Target population; changes now and then so the queue is sometimes
    /// nearly empty and sometimes longer than a wake batch (32).
    target: usize,
    /// Operations until `target` changes.
    phase_left: u64,
    stats: [u64; 8],
}

impl<'q> Model<'q> {
    fn new(q: &'q WaitQueue, seed: u64, exclusive_percent: u64) -> Self {
        Model {
            q,
            rng: Rng(seed | 1),
            seed,
            op: 0,
            exclusive_percent,
            live: Vec::new(),
            shared: VecDeque::new(),
            exclusive: VecDeque::new(),
            retired: VecDeque::new(),
            next_id: 0,
            peak_linked: 0,
            peak_live: 0,
            target: 8,
            phase_left: 0,
            stats: [0; 8],
        }
    }

    fn ctx(&self) -> String {
        format!(
            "seed {:#x} (WAITQ_MODEL_SEED), op {}, live {}, linked {}+{}",
            self.seed,
            self.op,
            self.live.len(),
            self.shared.len(),
            self.exclusive.len()
        )
    }

    fn list(&mut self, class: Class) -> &mut VecDeque<u64> {
        match class {
            Class::Shared => &mut self.shared,
            Class::Exclusive => &mut self.exclusive,
        }
    }

    fn pos(&self, id: u64) -> usize {
        self.live
            .iter()
            .position(|l| l.id == id)
            .unwrap_or_else(|| panic!("model: id {id} not live; {}", self.ctx()))
    }

    fn unlink(&mut self, class: Class, id: u64) {
        let list = self.list(class);
        let at = list
            .iter()
            .position(|&x| x == id)
            .expect("model: linked id on its list");
        list.remove(at);
    }

    /// Model of a wake picking `id`: unlinked at once, its waker fired.
    fn mark_woken(&mut self, id: u64) {
        let at = self.pos(id);
        let live = &mut self.live[at];
        debug_assert_eq!(live.state, State::Linked);
        live.state = State::Woken;
        live.waker.expected += 1;
    }

    fn retire(&mut self, waker: Tracked) {
        if self.retired.len() == RETIRED {
            self.retired.pop_front();
        }
        self.retired.push_back(waker);
    }

    // ===== checks =====

    fn check_len(&mut self) {
        let linked = self.shared.len() + self.exclusive.len();
        self.peak_linked = self.peak_linked.max(linked);
        self.peak_live = self.peak_live.max(self.live.len());
        assert_eq!(
            self.q.len(),
            linked,
            "len() disagrees with the model; {}",
            self.ctx()
        );
        assert_eq!(self.q.waitqueue_active(), linked > 0, "{}", self.ctx());
    }

    /// Every tracked waker (live and recently retired) fired exactly as often
    /// as the model says.
    fn check_wakers(&self) {
        for live in &self.live {
            let got = live.waker.waker.wakes();
            assert_eq!(
                got,
                live.waker.expected,
                "waker of waiter {} ({:?}, {:?}) fired {got} times, model says {}; {}",
                live.id,
                live.class,
                live.state,
                live.waker.expected,
                self.ctx()
            );
        }
        for (age, old) in self.retired.iter().enumerate() {
            let got = old.waker.wakes();
            assert_eq!(
                got,
                old.expected,
                "retired waker #{age} fired after it was replaced or its future ended; {}",
                self.ctx()
            );
        }
    }

    // ===== operations =====

    fn register(&mut self) {
        let class = if self.rng.chance(self.exclusive_percent) {
            Class::Exclusive
        } else {
            Class::Shared
        };
        let cond = Rc::new(Cell::new(self.rng.chance(5)));
        let c = cond.clone();
        let f: Cond = Box::new(move || c.get());
        let mut fut = match class {
            Class::Shared => self.q.wait_event(f),
            Class::Exclusive => self.q.wait_event_exclusive(f),
        };
        let waker = CountingWaker::new();
        let poll = poll_with(&mut fut, &waker.waker());
        let tracked = Tracked { waker, expected: 0 };
        if cond.get() {
            // Fast path: done without touching the queue.
            assert!(
                matches!(poll, Poll::Ready(Ok(()))),
                "fast path not Ready; {}",
                self.ctx()
            );
            drop(fut);
            self.retire(tracked);
        } else {
            assert!(
                poll.is_pending(),
                "false condition but Ready; {}",
                self.ctx()
            );
            let id = self.next_id;
            self.next_id += 1;
            self.list(class).push_back(id);
            self.live.push(Live {
                id,
                class,
                state: State::Linked,
                cond,
                fut,
                waker: tracked,
            });
        }
        self.check_len();
    }

    /// `nr` = exclusive waiters to wake, 0 = all.
    fn wake(&mut self, nr: usize) {
        let mut woken: Vec<u64> = self.shared.drain(..).collect();
        let take = if nr == 0 {
            self.exclusive.len()
        } else {
            nr.min(self.exclusive.len())
        };
        woken.extend(self.exclusive.drain(..take));
        let got = match (nr, self.rng.below(2)) {
            (0, 0) => self.q.wake_up_all(),
            (1, 0) => self.q.wake_up(),
            _ => self.q.wake_up_nr(nr),
        };
        assert_eq!(
            got,
            woken.len(),
            "wake (nr {nr}) returned a wrong count; {}",
            self.ctx()
        );
        for id in woken {
            self.mark_woken(id);
        }
        self.check_len();
        self.check_wakers();
    }

    fn drop_one(&mut self) {
        let at = self.rng.index(self.live.len());
        let live = self.live.swap_remove(at);
        match (live.state, live.class) {
            (State::Linked, class) => self.unlink(class, live.id),
            // Picked by a wake and never polled again: the wake goes on to
            // the oldest linked exclusive waiter, if any.
            (State::Woken, Class::Exclusive) => {
                if let Some(next) = self.exclusive.pop_front() {
                    self.mark_woken(next);
                    self.stats[0] += 1;
                }
            }
            (State::Woken, Class::Shared) => {}
        }
        let Live { fut, waker, .. } = live;
        drop(fut);
        self.retire(waker);
        self.check_len();
        self.check_wakers();
    }

    fn repoll(&mut self) {
        let at = self.rng.index(self.live.len());
        if self.rng.chance(20) {
            // A new waker replaces the old one (rule 12); the old may never fire again.
            let new = Tracked {
                waker: CountingWaker::new(),
                expected: 0,
            };
            let old = std::mem::replace(&mut self.live[at].waker, new);
            self.retire(old);
        }
        let live = &mut self.live[at];
        let (id, class, state, ready_expected) = (live.id, live.class, live.state, live.cond.get());
        let poll = poll_with(&mut live.fut, &live.waker.waker.waker());
        if ready_expected {
            assert!(
                matches!(poll, Poll::Ready(Ok(()))),
                "true condition but not Ready; {}",
                self.ctx()
            );
            if state == State::Linked {
                self.unlink(class, id);
            }
            let live = self.live.swap_remove(at);
            self.retire(live.waker);
            self.stats[1] += 1;
        } else {
            assert!(
                poll.is_pending(),
                "false condition but Ready; {}",
                self.ctx()
            );
            if state == State::Woken {
                // Woken with the condition false: a new registration at the tail.
                self.live[at].state = State::Linked;
                self.list(class).push_back(id);
                self.stats[2] += 1;
            }
        }
        self.check_len();
        if self.op & 15 == 0 {
            self.check_wakers();
        }
    }

    fn flip(&mut self) {
        let at = self.rng.index(self.live.len());
        let cond = &self.live[at].cond;
        cond.set(!cond.get());
    }

    fn step(&mut self) {
        if self.phase_left == 0 {
            self.phase_left = 20_000;
            self.target = [2, 6, 12, 24, 48, 96][self.rng.index(6)];
        }
        self.phase_left -= 1;
        if self.live.is_empty() {
            return self.register();
        }
        let register_weight = if self.live.len() < self.target { 40 } else { 5 };
        // Large targets are fill phases: rare wakes let the list grow past
        // a wake batch (32), so wakes take the multi-batch path.
        let wake_weight = if self.target >= 40 { 2 } else { 22 };
        let mut roll = self.rng.below(register_weight + wake_weight + 58);
        if roll < register_weight {
            return self.register();
        }
        roll -= register_weight;
        if roll < wake_weight {
            return match self.rng.below(11) {
                0..=4 => self.wake(1),
                5..=8 => {
                    let nr = self.rng.index(5);
                    self.wake(nr)
                }
                _ => self.wake(0),
            };
        }
        match roll - wake_weight {
            0..=19 => self.drop_one(),
            20..=41 => self.repoll(),
            _ => self.flip(),
        }
    }

    /// Drops every remaining future, in random order, mirroring hand-offs.
    fn drain(&mut self) {
        while !self.live.is_empty() {
            self.drop_one();
        }
        self.check_len();
        self.check_wakers();
    }
}

fn run(name: &str, default_seed: u64, default_ops: u64, exclusive_percent: u64) {
    let seed = env_u64("WAITQ_MODEL_SEED").unwrap_or(default_seed);
    let ops = env_u64("WAITQ_MODEL_OPS").unwrap_or(default_ops);
    // Shown by the test harness only if the test fails.
    println!("{name}: seed {seed:#x} (set WAITQ_MODEL_SEED to replay), {ops} ops");
    let q = WaitQueue::new();
    let mut model = Model::new(&q, seed, exclusive_percent);
    while model.op < ops {
        model.step();
        model.op += 1;
    }
    model.drain();
    assert_eq!(q.len(), 0, "{}", model.ctx());
    assert_eq!(q.wake_up_all(), 0, "{}", model.ctx());
    let cap = q.capacity();
    // The slab never holds more entries than were linked at once; its Vec
    // may round its allocation up (at most doubling), never more.
    assert!(
        cap >= model.peak_linked && cap <= (2 * model.peak_linked).max(4),
        "capacity {cap} not bounded by the peak of {} linked waiters ({} live futures); {}",
        model.peak_linked,
        model.peak_live,
        model.ctx()
    );
    println!(
        "{name}: peak linked {}, peak live {}, capacity {cap}, hand-offs {}, completions {}, re-links {}",
        model.peak_linked, model.peak_live, model.stats[0], model.stats[1], model.stats[2]
    );
}

/// The main run: 10^6 operations, half the waiters exclusive.
#[test]
fn model_random_ops() {
    run("model_random_ops", SEED, OPS, 50);
}

/// Mostly exclusive waiters: hand-offs on drop and re-queues at the tail
/// dominate.
#[test]
fn model_random_ops_exclusive_heavy() {
    run(
        "model_random_ops_exclusive_heavy",
        SEED ^ 0xe8c1_u64,
        OPS / 4,
        90,
    );
}

/// `capacity()` grows only when more waiters are linked at once than ever
/// before (by `Vec` doubling, so at most about twice the peak), and never
/// while the peak is not exceeded, however many register/drop cycles run.
#[test]
fn capacity_grows_only_past_the_peak() {
    let q = WaitQueue::new();
    let waker = CountingWaker::new().waker();
    let mut at_peak = 0;
    for round in 0..100 {
        let mut futs: Vec<_> = (0..5).map(|_| q.wait_event(|| false)).collect();
        for fut in &mut futs {
            assert!(poll_with(fut, &waker).is_pending());
        }
        assert_eq!(q.len(), 5);
        drop(futs);
        assert_eq!(q.len(), 0);
        if round == 0 {
            at_peak = q.capacity();
            assert!(
                (5..=10).contains(&at_peak),
                "capacity {at_peak} for a peak of 5"
            );
        }
        assert_eq!(q.capacity(), at_peak, "grew without a new peak");
    }
}

/// A queue that once had more than 65,536 waiters at once gives the room
/// back when they are all gone (a million waiters kept some 60 MB for the
/// queue's life: an independent probe); one of 8,192 keeps its room, so a
/// herd that sleeps and wakes over and over allocates once (freed each
/// time, a herd that size cost 9-11 % more per waiter: an independent
/// review).
#[test]
fn a_slab_emptied_after_a_big_peak_is_freed() {
    let waker = CountingWaker::new().waker();
    for (peak, kept) in [(8_192, true), (100_000, false)] {
        let q = WaitQueue::new();
        let mut futs: Vec<_> = (0..peak).map(|_| q.wait_event(|| false)).collect();
        for fut in &mut futs {
            assert!(poll_with(fut, &waker).is_pending());
        }
        assert!(q.capacity() >= peak);
        drop(futs);
        assert_eq!(q.len(), 0);
        match kept {
            true => assert!(q.capacity() >= peak, "{peak}: room given back"),
            false => assert!(q.capacity() <= 1, "{peak}: kept {}", q.capacity()),
        }
        // And it works on: a new peak grows it again.
        let mut futs: Vec<_> = (0..peak).map(|_| q.wait_event(|| false)).collect();
        for fut in &mut futs {
            assert!(poll_with(fut, &waker).is_pending());
        }
        assert_eq!(q.wake_up_all(), peak);
    }
}
