//! The lost-wake-up oracle and the failure reports of one run: probing
//! every sleeper at quiescence, naming tasks, queues and wakes, and the
//! hang dump.

use super::*;

impl Sim {
    /// Probes every idle task (and the test body): a sleeper whose
    /// condition holds while linked is a lost wake-up.
    ///
    /// With a grace (`Check::late_wake_grace`; none by default), a wake
    /// may come late without being lost: code that sets the condition,
    /// then sleeps on a timer (a flush, a batching tick), then wakes. So
    /// while a timer is due within the grace of the moment such a sleeper
    /// was first seen, the run goes on (time moves to that timer) and the
    /// oracle looks again at the next quiescent point; the same sleeper
    /// still linked with its condition true once the grace has passed, or
    /// with no timer due within it, is lost.
    pub(super) fn oracle(&self) {
        if self.probe_ran_to_the_end() {
            return;
        }
        let st = self.st.borrow();
        let lost = st.probed.iter().find(|(_, s)| s.is_lost_wakeup()).copied();
        drop(st);
        let Some((slot, sleeper)) = lost else {
            self.st.borrow_mut().late = None;
            return;
        };
        let now = self.now();
        let key = (slot, sleeper.queue, sleeper.site);
        let since = {
            let mut st = self.st.borrow_mut();
            match st.late {
                Some((seen, since)) if seen == key => since,
                _ => {
                    st.late = Some((key, now));
                    now
                }
            }
        };
        let origin = self.driver().clock().origin();
        let next_timer = self
            .driver()
            .next_deadline()
            .map(|at| at.saturating_duration_since(origin));
        let grace = self.cfg.late_wake_grace;
        if !grace.is_zero() && next_timer.is_some_and(|at| at <= since.saturating_add(grace)) {
            return;
        }
        let mut message = self.lost_message(slot, &sleeper, None);
        if since < now {
            let _ = write!(
                message,
                "\n  (its condition has held since t={since:?}, with no wake by t={now:?})"
            );
        }
        self.fail(FailureKind::LostWakeup, message);
    }

    /// Probes every sleeper ([`probe_all`](Self::probe_all)); if a probe
    /// poll ran one to its end, fails the run with a lost wake-up and
    /// returns true. Such a sleeper was idle, nobody had woken it, and it
    /// could finish: it waited for something outside the wait queues (a
    /// hand-written future that stored its waker after the condition it
    /// waits for turned true, say), which the oracle cannot see, but the
    /// probe's poll just did. (The probe had finished the test body, and
    /// the hang report then listed no task at all: an independent probe.)
    fn probe_ran_to_the_end(&self) -> bool {
        let Some(slot) = self.probe_all() else {
            return false;
        };
        let message = format!(
            "lost wake-up: {} was asleep and nothing had woken it, but the oracle's probe \
             poll ran it to its end: what it waited for had happened without waking it \
             (outside the wait queues: a waker stored after its condition turned true, \
             or never stored)",
            self.describe(slot)
        );
        self.fail(FailureKind::LostWakeup, message);
        true
    }

    /// Probes every sleeper; returns the first one the probe's poll ran to
    /// its end, if any.
    fn probe_all(&self) -> Option<u32> {
        let mut finished = None;
        self.st.borrow_mut().probed.clear();
        let count = self.st.borrow().tasks.len();
        for slot in 0..count as u32 {
            let (task, skip) = {
                let st = self.st.borrow();
                let skip = st.runnable.contains(&slot) || st.running.contains(&slot);
                (st.tasks[slot as usize].task.clone(), skip)
            };
            if skip {
                continue;
            }
            self.st.borrow_mut().probing = Some(slot);
            match task {
                None => {
                    if !self.st.borrow().main_done {
                        self.st.borrow_mut().running.push(0);
                        hook::probe(|| self.watched(slot, || self.poll_main()));
                        self.st.borrow_mut().running.pop();
                        if self.st.borrow().main_done {
                            finished.get_or_insert(slot);
                        }
                    }
                }
                Some(task) => {
                    // Idle → scheduled, claimed by us; anything else (queued,
                    // complete) is not asleep.
                    if task.header().state.transition_to_scheduled() {
                        self.st.borrow_mut().running.push(slot);
                        hook::probe(|| self.watched(slot, || self.poll_task(slot, task.clone())));
                        self.st.borrow_mut().running.pop();
                        if task.header().state.load().is_complete() {
                            finished.get_or_insert(slot);
                        }
                    }
                }
            }
            self.st.borrow_mut().probing = None;
        }
        finished
    }

    fn describe(&self, slot: u32) -> String {
        self.st.borrow().tasks[slot as usize].name.to_string()
    }

    fn queue(&self, queue: QueueId) -> String {
        queue_name(queue, self.names.borrow().get(&queue).map(String::as_str))
    }

    fn last_wake(&self, queue: QueueId) -> String {
        let wake = self.st.borrow().wakes.get(&queue).copied();
        match wake {
            None => "no wake_up on it so far".into(),
            Some(w) => {
                let by =
                    w.by.map_or_else(|| "the runtime".into(), |s| self.describe(s));
                format!("last: {}", wake_line(&w, &by))
            }
        }
    }

    fn lost_message(&self, slot: u32, s: &Sleeper, why: Option<String>) -> String {
        let queue = self.queue(s.queue);
        // The wait named as the production dump names it (one formatter).
        let on = crate::obs::dump::WaitOn(&s.kind, &queue);
        let mut m = format!(
            "lost wake-up: {} sleeps [{on}] at {}",
            self.describe(slot),
            s.site
        );
        match why {
            None => m.push_str(" although its condition is true"),
            Some(why) => {
                let _ = write!(m, " ({why})");
            }
        }
        let _ = write!(m, "\n  {}", self.last_wake(s.queue));
        m
    }

    /// Nothing runnable, no timer, no outside work: fail with every task.
    pub(super) fn hang(&self) {
        if self.probe_ran_to_the_end() {
            return;
        }
        // A hand-written loop that linked after the wake it needed ran
        // (while it was preempted between its check and its link).
        let suspects: Vec<(u32, Sleeper)> = self.st.borrow().probed.clone();
        for (slot, s) in &suspects {
            if !s.linked || s.condition.is_some() {
                continue;
            }
            let st = self.st.borrow();
            let link = st.tasks[*slot as usize]
                .links
                .iter()
                .rev()
                .find(|l| l.0 == s.queue)
                .copied();
            let wake = st.wakes.get(&s.queue).copied();
            drop(st);
            if let (Some((_, linked, start)), Some(w)) = (link, wake) {
                if start < w.seq && w.seq < linked {
                    let why = "it linked after the wake it needed: that wake ran between the \
                               start of its poll (its condition check) and its prepare_to_wait"
                        .to_string();
                    let message = self.lost_message(*slot, s, Some(why));
                    let dump = self.dump();
                    self.fail(FailureKind::LostWakeup, format!("{message}\n{dump}"));
                    return;
                }
            }
        }
        if let Some(cycle) = self.lock_cycle() {
            let message = self.deadlock_message(&cycle);
            let dump = self.dump();
            self.fail(FailureKind::Deadlock, format!("{message}\n{dump}"));
            return;
        }
        let dump = self.dump();
        self.fail(
            FailureKind::Hang,
            format!(
                "hang: nothing can run, no timer is pending and no blocking job or spawn \
                 from another thread is in flight (the toolkit does not see plain threads: \
                 a wake from a `std::thread` the test started cannot end this sleep)\n{dump}"
            ),
        );
    }

    /// Outside work (`count` tasks the check did not spawn on its thread:
    /// blocking jobs, spawns from other threads) never finished: names
    /// each by id, name and spawn site (the message named none: an
    /// independent probe), then the check's own live tasks and what they
    /// sleep on.
    pub(super) fn external_message(&self, count: usize) -> String {
        let mut m = format!(
            "external: {count} task(s) from outside the check (blocking jobs, or tasks \
             spawned from other threads) did not finish within {:?} of real time \
             (`Check::watchdog`), and nothing in the check can run:",
            self.cfg.watchdog
        );
        let known: BTreeSet<u64> = self.st.borrow().by_id.keys().copied().collect();
        let mut outside: Vec<TaskRef> = self
            .shared
            .common
            .owned
            .snapshot()
            .into_iter()
            .filter(|t| !known.contains(&t.header().id.0))
            .filter(|t| !t.header().state.load().is_complete())
            .collect();
        outside.sort_by_key(|t| t.header().id.0);
        for task in &outside {
            let header = task.header();
            let _ = write!(m, "\n  task id {}", header.id.0);
            if let Some(name) = header.name() {
                let _ = write!(m, " `{name}`");
            }
            let _ = write!(m, " spawned at {}", header.site);
        }
        // What the check's tasks sleep on (who waits for that work).
        let _ = self.probe_all();
        let _ = write!(m, "\n{}", self.dump());
        m
    }

    /// What each sleeping task waits for: the first lock (a queue with a
    /// holder) it sleeps on, and the slots of its holders (a writer's one,
    /// or every reader of an `RwLock`).
    fn waits_for(&self) -> BTreeMap<u32, (Sleeper, Vec<u32>)> {
        let st = self.st.borrow();
        let mut edges = BTreeMap::new();
        for (slot, s) in &st.probed {
            if !s.linked || edges.contains_key(slot) {
                continue;
            }
            let holders: Vec<u32> = st.holder_slots(s.queue).iter().map(|h| h.0).collect();
            if !holders.is_empty() {
                edges.insert(*slot, (*s, holders));
            }
        }
        edges
    }

    /// A cycle of tasks each asleep on a lock the next one holds, if any:
    /// a depth-first search, since a lock held by readers leads to each of
    /// them (a loop, not recursion: a chain may be as long as the tasks).
    fn lock_cycle(&self) -> Option<Vec<(u32, Sleeper)>> {
        let edges = self.waits_for();
        let mut done = BTreeSet::new();
        for &start in edges.keys() {
            if done.contains(&start) {
                continue;
            }
            // The path from `start`, each with the index of its next edge.
            let mut path: Vec<(u32, usize)> = vec![(start, 0)];
            while let Some(top) = path.last_mut() {
                let at = top.0;
                let next = edges[&at].1.get(top.1).copied();
                top.1 += 1;
                let Some(next) = next else {
                    done.insert(at); // no cycle through it
                    path.pop();
                    continue;
                };
                if let Some(pos) = path.iter().position(|&(p, _)| p == next) {
                    let cycle = path[pos..].iter().map(|&(s, _)| (s, edges[&s].0));
                    return Some(cycle.collect());
                }
                if edges.contains_key(&next) && !done.contains(&next) {
                    path.push((next, 0));
                }
            }
        }
        None
    }

    /// How a deadlock report names `slot` as a holder: `task 3` or `the
    /// test body`.
    fn holder_label(slot: u32) -> String {
        match slot {
            0 => "the test body".to_string(),
            _ => format!("task {slot}"),
        }
    }

    /// Names each task of `cycle`, what it holds, what it waits for, where.
    fn deadlock_message(&self, cycle: &[(u32, Sleeper)]) -> String {
        let mut m = format!(
            "deadlock: {} tasks wait in a cycle on locks the next one holds",
            cycle.len()
        );
        for (i, (slot, s)) in cycle.iter().enumerate() {
            let next = cycle[(i + 1) % cycle.len()].0;
            let (held, readers) = {
                let st = self.st.borrow();
                let id = match slot {
                    0 => Some(hook::NOT_A_TASK), // the test body
                    _ => st.tasks[*slot as usize].name.id,
                };
                let mut held: Vec<(QueueId, bool)> = st
                    .holders
                    .iter()
                    .filter(|(_, &h)| Some(h) == id)
                    .map(|(&q, _)| (q, false))
                    .collect();
                held.extend(
                    st.shared
                        .iter()
                        .filter(|(_, readers)| id.is_some_and(|id| readers.contains_key(&id)))
                        .map(|(&q, _)| (q, true)),
                );
                // Whether `next` holds what this task waits for as a
                // reader, and the other readers.
                let holders = st.holder_slots(s.queue);
                let readers = match holders.contains(&(next, true)) {
                    true => Some(
                        holders
                            .iter()
                            .filter(|&&(h, shared)| shared && h != next)
                            .map(|&(h, _)| h)
                            .collect::<Vec<u32>>(),
                    ),
                    false => None,
                };
                (held, readers)
            };
            let held: Vec<String> = held
                .into_iter()
                .map(|(q, shared)| match shared {
                    true => format!("{} for reading", self.queue(q)),
                    false => self.queue(q),
                })
                .collect();
            let mut by = Self::holder_label(next);
            match readers.as_deref() {
                None => {}
                Some([]) => by.push_str(" (reading)"),
                Some(others) => {
                    let shown = others.iter().take(SHOWN_READERS);
                    let shown: Vec<String> = shown.map(|&h| Self::holder_label(h)).collect();
                    let _ = write!(
                        by,
                        " (reading; {} other reader(s): {}",
                        others.len(),
                        shown.join(", ")
                    );
                    if others.len() > SHOWN_READERS {
                        let _ = write!(by, " and {} more", others.len() - SHOWN_READERS);
                    }
                    by.push(')');
                }
            }
            // A lock's own wait site is inside the runtime: the task's name
            // (its spawn site and future type) says where instead.
            let site = match super::super::report::is_runtime_site(s.site) {
                true => String::new(),
                false => format!(" at {}", s.site),
            };
            let _ = write!(
                m,
                "\n  {}\n    holds {}\n    waits for {}{site}, held by {by}",
                self.describe(*slot),
                if held.is_empty() {
                    "nothing".into()
                } else {
                    held.join(", ")
                },
                self.queue(s.queue),
            );
        }
        m
    }

    /// Every live task: name, sleep and what it sleeps on.
    fn dump(&self) -> String {
        let st = self.st.borrow();
        let mut out = String::from("live tasks:");
        for (slot, info) in st.tasks.iter().enumerate() {
            let slot = slot as u32;
            let live = match &info.task {
                None => !st.main_done,
                Some(t) => !t.header().state.load().is_complete(),
            };
            if !live {
                continue;
            }
            let _ = write!(
                out,
                "\n  {} (asleep since t={:?})",
                info.name, info.asleep_since
            );
            let mut any = false;
            for (_, s) in st.probed.iter().filter(|(p, _)| *p == slot) {
                any = true;
                let queue = queue_name(
                    s.queue,
                    self.names.borrow().get(&s.queue).map(String::as_str),
                );
                let _ = write!(out, "\n    sleeps: {}", sleeper_line(s, &queue));
                let holders = st.holder_slots(s.queue);
                let readers: Vec<u32> = holders.iter().filter(|h| h.1).map(|h| h.0).collect();
                if let Some(&(h, false)) = holders.first() {
                    let _ = write!(out, "\n      held by {}", st.tasks[h as usize].name);
                } else if let Some(&h) = st.granted.get(&s.queue) {
                    let _ = write!(
                        out,
                        "\n      held by {}: handed it while that task slept, and the \
                         future that waited for it has not been polled since (a lost grant: \
                         its task awaits something else, e.g. another select! branch)",
                        st.tasks[h as usize].name
                    );
                }
                match readers[..] {
                    [] => {}
                    [h] => {
                        let name = &st.tasks[h as usize].name;
                        let _ = write!(out, "\n      held for reading by {name}");
                    }
                    _ => {
                        let n = readers.len();
                        let _ = write!(out, "\n      held for reading by {n} tasks:");
                        for &h in readers.iter().take(SHOWN_READERS) {
                            let _ = write!(out, "\n        {}", st.tasks[h as usize].name);
                        }
                        if n > SHOWN_READERS {
                            let more = n - SHOWN_READERS;
                            let _ = write!(out, "\n        and {more} more readers");
                        }
                    }
                }
                if let Some(w) = st.wakes.get(&s.queue) {
                    let by = w.by.map_or_else(
                        || "the runtime".into(),
                        |b| st.tasks[b as usize].name.to_string(),
                    );
                    let _ = write!(out, "\n      last: {}", wake_line(w, &by));
                }
            }
            if !any {
                out.push_str("\n    sleeps on something outside the wait queues");
            }
        }
        out
    }
}

/// Readers a report names for one lock at most; it counts the rest (a
/// dump names a task in a line of its own, and a lock may have hundreds).
const SHOWN_READERS: usize = 4;

impl State {
    /// The slots that hold the lock built on `queue`: its one holder (a
    /// `Mutex`, an `RwLock`'s writer), `false`, then its readers in slot
    /// order, `true`. Holders outside the check are left out.
    fn holder_slots(&self, queue: QueueId) -> Vec<(u32, bool)> {
        let mut slots = Vec::new();
        if let Some(&h) = self.holders.get(&queue).and_then(|id| self.by_id.get(id)) {
            slots.push((h, false));
        }
        if let Some(readers) = self.shared.get(&queue) {
            let mut shared: Vec<u32> = readers
                .keys()
                .filter_map(|id| self.by_id.get(id).copied())
                .collect();
            shared.sort_unstable();
            slots.extend(shared.into_iter().map(|h| (h, true)));
        }
        slots
    }
}
