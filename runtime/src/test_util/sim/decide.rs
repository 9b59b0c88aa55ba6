//! Decision points: the toolkit's [`Hook`] (nested runs of other tasks at
//! a point inside the wait queue) and the faults it may inject there.

use super::*;

impl Sim {
    /// The faults that may be injected into `current` at `point`.
    fn faults(&self, current: u32, point: &Point) -> Vec<Fault> {
        let mut faults = Vec::new();
        if self.cfg.spurious {
            faults.push(Fault::Spurious);
        }
        if self.cfg.signals && current != 0 && point.state != TaskState::Uninterruptible {
            faults.push(Fault::Signal(point.state));
        }
        if self.cfg.time_jumps && self.driver().next_deadline().is_some() {
            faults.push(Fault::TimeJump);
        }
        faults
    }

    /// Injects `fault` into `current` at `point`, the run's decision
    /// number `step` (the index a schedule entry names), and notes it for
    /// the report: a failure that needs a signal or a time jump says so,
    /// where the trace alone had it (an independent probe).
    fn inject(&self, current: u32, fault: Fault, step: usize, point: &Point) {
        self.trace(|| format!("fault {fault:?} into {current}"));
        let what = match fault {
            Fault::Spurious => "a spurious wake-up of",
            Fault::Signal(TaskState::Killable) => "a kill signal to",
            Fault::Signal(_) => "an interrupt signal to",
            Fault::TimeJump => "a time jump (the next timer fired early) in",
        };
        let line = format!(
            "step {step}: {what} {}, at its {} point at {} (t={:?})",
            self.st.borrow().tasks[current as usize].name,
            point.kind.name(),
            point.site,
            self.now()
        );
        self.st.borrow_mut().injected.push(line);
        let task = self.st.borrow().tasks[current as usize].task.clone();
        match (fault, task) {
            (Fault::Spurious, None) => self.main_wake.woken.store(true, Release),
            (Fault::Spurious, Some(task)) => {
                // Running: this marks it notified; it is polled again.
                let _ = task.header().state.transition_to_scheduled();
            }
            (Fault::Signal(TaskState::Killable), Some(task)) => task.header().signals().kill(),
            (Fault::Signal(_), Some(task)) => task.header().signals().interrupt(),
            (Fault::Signal(_), None) => {}
            (Fault::TimeJump, _) => self.jump_to_next_timer(),
        }
    }
}

impl Sim {
    /// A time jump: the clock moves to the next timer's deadline and fires
    /// it. The wheel's next expiration is the start of the slot that holds
    /// the timer, exact only in the lowest level: a timer a second away
    /// was reached in three jumps (786.432 ms, 999.424 ms, then 1 s), so
    /// one jump seldom fired anything and a bug that needs a timeout to
    /// fire between two decision points was never found (an independent
    /// probe). The jump goes on, slot by slot, until a timer fires (a few
    /// steps: one per wheel level).
    fn jump_to_next_timer(&self) {
        let pending = self.driver().pending();
        for _ in 0..JUMP_STEPS {
            let Some(next) = self.driver().next_deadline() else {
                return;
            };
            self.fire_until(next);
            if self.driver().pending() < pending {
                return;
            }
        }
    }
}

/// The payload that unwinds a poll that spins (see `decide`).
struct SpinUnwound;

/// Steps of one time jump at most: more than the wheel has levels.
const JUMP_STEPS: usize = 16;

impl Hook for Sim {
    fn decide(&self, point: &Point) {
        if let Some(watch) = &self.watch {
            let step = self.chooser.borrow().record.len();
            watch.point(point.kind, point.site, step);
        }
        if point.kind != PointKind::Switch {
            // A wait-queue or lock operation takes a lock: a full barrier.
            self.weak_barrier();
        }
        let current = {
            let mut st = self.st.borrow_mut();
            let Some(&current) = st.running.last() else {
                return; // the driver or the loop itself, not a task
            };
            if st.failure.is_some() || st.probing.is_some() || st.in_driver {
                return;
            }
            // A poll that meets decision points without end spins (a
            // busy-wait on the toolkit's atomics): nothing else can run
            // until it returns, and `max_polls` counts polls, so the run
            // hung with no word. Past the bound the run fails, and the
            // poll is unwound (a panic the task's poll catches).
            let info = &mut st.tasks[current as usize];
            info.poll_decisions += 1;
            if info.poll_decisions > self.cfg.max_poll_decisions {
                let name = info.name.clone();
                drop(st);
                self.fail(
                    FailureKind::Livelock,
                    format!(
                        "livelock: {name} met more than {} decision points in one poll, the \
                         last at {} (a busy-wait, or a loop that never awaits; raise \
                         `max_poll_decisions` if the poll is just big)",
                        self.cfg.max_poll_decisions, point.site
                    ),
                );
                std::panic::resume_unwind(Box::new(SpinUnwound));
            }
            if point.kind == PointKind::AfterLink {
                st.seq += 1;
                let seq = st.seq;
                let info = &mut st.tasks[current as usize];
                let start = info.poll_start;
                info.links.retain(|l| l.0 != point.queue);
                info.links.push((point.queue, seq, start));
            }
            if point.kind == PointKind::AfterWake && st.join_queues.contains(&point.queue) {
                return; // a task's completion waking its joiner: runtime internals
            }
            st.points.entry((point.kind, point.site)).or_default()[0] += 1;
            if st.running.len() > self.cfg.max_depth {
                return;
            }
            current
        };
        self.name_queue_once(point.queue, point.queue_name);
        loop {
            self.collect();
            let slots: Vec<u32> = {
                let st = self.st.borrow();
                st.runnable
                    .iter()
                    .copied()
                    .filter(|s| !st.running.contains(s))
                    .collect()
            };
            let faults = self.faults(current, point);
            let n = 1 + slots.len() + faults.len();
            let ask = Ask::Point {
                current,
                slots: &slots,
                faults: faults.len(),
            };
            let choice = self.choose(ask, n);
            if n > 1 {
                let mut st = self.st.borrow_mut();
                let counts = st.points.entry((point.kind, point.site)).or_default();
                counts[1] += 1;
                counts[2] += u64::from(choice != 0);
            }
            if choice == 0 {
                return;
            }
            if let Some(&slot) = slots.get(choice - 1) {
                self.st.borrow_mut().runnable.retain(|&s| s != slot);
                self.trace(|| format!("preempt {current} at {} for {slot}", point.kind.name()));
                self.poll_slot(slot);
                if self.failed() {
                    return;
                }
                continue;
            }
            let step = self.chooser.borrow().record.len() - 1;
            self.inject(current, faults[choice - 1 - slots.len()], step, point);
            return;
        }
    }

    fn woke(&self, wake: &WakeEvent) {
        self.weak_barrier(); // the wake took the queue's lock
        let time = self.now();
        let mut st = self.st.borrow_mut();
        st.seq += 1;
        let record = WakeRecord {
            site: wake.site,
            woken: wake.woken,
            kind: wake.kind,
            seq: st.seq,
            by: st.running.last().copied(),
            time,
        };
        st.wakes.insert(wake.queue, record);
    }

    fn barrier(&self) {
        self.weak_barrier();
    }

    fn buffered(&self) -> bool {
        self.weak_buffered()
    }

    fn handed(&self, handed: &Handed<'_>) {
        let data = handed.waker.data();
        let slot = if handed.waker.will_wake(&self.main_waker) {
            Some(0)
        } else {
            let st = self.st.borrow();
            st.tasks
                .iter()
                .position(|t| {
                    t.task
                        .as_ref()
                        .is_some_and(|t| std::sync::Arc::as_ptr(t) as *const () == data)
                })
                .map(|slot| slot as u32)
        };
        if let Some(slot) = slot {
            self.st.borrow_mut().granted.insert(handed.queue, slot);
            self.name_queue_once(handed.queue, handed.queue_name);
        }
    }

    fn claimed(&self, queue: QueueId) {
        let mut st = self.st.borrow_mut();
        let me = st.running.last().copied();
        if me.is_some() && st.granted.get(&queue).copied() == me {
            st.granted.remove(&queue);
        }
    }

    fn held(&self, held: &Held) {
        self.weak_barrier(); // a lock changed hands
        let mut st = self.st.borrow_mut();
        // Made a guard, or released: no longer only handed.
        st.granted.remove(&held.queue);
        match held.task {
            Some(task) => st.holders.insert(held.queue, task),
            None => st.holders.remove(&held.queue),
        };
        drop(st);
        self.name_queue_once(held.queue, held.queue_name);
    }

    fn held_shared(&self, held: &HeldShared) {
        self.weak_barrier(); // a lock changed hands
        let mut st = self.st.borrow_mut();
        st.granted.remove(&held.queue);
        let readers = st.shared.entry(held.queue).or_default();
        match held.acquired {
            true => *readers.entry(held.task).or_default() += 1,
            false => {
                if let Some(holds) = readers.get_mut(&held.task) {
                    *holds -= 1;
                    if *holds == 0 {
                        readers.remove(&held.task);
                    }
                }
            }
        }
        if readers.is_empty() {
            st.shared.remove(&held.queue);
        }
        drop(st);
        self.name_queue_once(held.queue, held.queue_name);
    }

    fn probed(&self, sleeper: &Sleeper) {
        let mut st = self.st.borrow_mut();
        if let Some(slot) = st.probing {
            st.probed.push((slot, *sleeper));
        }
    }
}
