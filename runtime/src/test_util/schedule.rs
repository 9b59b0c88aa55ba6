//! Policies, the chooser that applies them at every decision, and the
//! compact schedule string a run is recorded as.
//!
//! A run is a sequence of decisions, each a choice among `n > 1` options;
//! option `0` is always the default (the oldest runnable task, or "resume"
//! at a decision point). A schedule lists only the non-default choices, as
//! `index:choice` pairs (`"3:1,17:2"`; `"fifo"` when there are none), so
//! replaying it needs nothing else: not the seed, not the policy. A replayed
//! choice is taken modulo the options the decision has in the replay, so
//! every string is a valid schedule, which is what lets shrinking drop
//! entries freely.

use std::fmt;
use std::str::FromStr;

use super::rng::Rng;

/// How the toolkit picks which runnable task runs next, and whether a task
/// is preempted at a wait-queue decision point.
///
/// # Examples
///
/// ```
/// use waitrt::test_util::{Check, Policy};
/// Check::new().seeds(8).policy(Policy::Pct { depth: 2 }).run(|| async {
///     waitrt::spawn(async {}).await.unwrap();
/// });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Policy {
    /// Always the oldest runnable task, never a preemption: the
    /// current-thread runtime's own order. One schedule.
    Fifo,
    /// Uniformly random choices: any runnable task; at a decision point a
    /// preemption with probability 1/4 (and a fault, when enabled, with
    /// probability 1/16).
    Random,
    /// Probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010):
    /// random task priorities, the highest runnable one runs, and `depth - 1`
    /// random steps lower the running task's priority. Finds a bug of depth
    /// `d` with probability at least `1 / (n k^(d-1))`. A task that yields
    /// drops below every task or draws a fresh random priority (even odds),
    /// so spin loops make progress and a task that yields before it acts
    /// still runs ahead of others.
    Pct {
        /// The bug depth to aim for (2 or 3 catches most ordering bugs).
        depth: u32,
    },
    /// Every schedule with at most `preemption_bound` non-default choices
    /// (delay bounding: a preemption at a decision point, or running a
    /// task other than the oldest), depth first, until exhausted or the
    /// seed budget is spent (give one: the default is a single run; the
    /// summary says "NOT exhausted" when the budget ran out first). For
    /// tiny tests.
    Dfs {
        /// Most non-default choices per schedule.
        preemption_bound: u32,
    },
}

/// A recorded or replayed run: its non-default choices.
///
/// # Examples
///
/// ```
/// use waitrt::test_util::Schedule;
/// let s: Schedule = "3:1,17:2".parse().unwrap();
/// assert_eq!(s.len(), 2);
/// assert_eq!(s.to_string(), "3:1,17:2");
/// assert_eq!("fifo".parse::<Schedule>().unwrap().len(), 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Schedule {
    entries: Vec<(usize, u32)>,
}

impl Schedule {
    /// The sparse form of `record` (`(options, choice)` per decision).
    pub(crate) fn from_record(record: &[(u32, u32)]) -> Schedule {
        let entries = record
            .iter()
            .enumerate()
            .filter(|(_, &(_, c))| c != 0)
            .map(|(i, &(_, c))| (i, c))
            .collect();
        Schedule { entries }
    }

    /// Non-default decisions in this schedule.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(waitrt::test_util::Schedule::default().is_empty());
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it is the all-default (FIFO, no preemption) schedule.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!("fifo".parse::<waitrt::test_util::Schedule>().unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn entries(&self) -> &[(usize, u32)] {
        &self.entries
    }

    pub(crate) fn with_entries(entries: Vec<(usize, u32)>) -> Schedule {
        Schedule { entries }
    }

    /// The dense choice list a chooser replays.
    pub(crate) fn prefix(&self) -> Vec<u32> {
        let len = self.entries.last().map_or(0, |&(i, _)| i + 1);
        let mut prefix = vec![0; len];
        for &(i, c) in &self.entries {
            prefix[i] = c;
        }
        prefix
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entries.is_empty() {
            return f.write_str("fifo");
        }
        for (n, (i, c)) in self.entries.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            write!(f, "{i}:{c}")?;
        }
        Ok(())
    }
}

/// A schedule string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseScheduleError(String);

impl fmt::Display for ParseScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad schedule entry {:?}: expected `index:choice`",
            self.0
        )
    }
}

impl std::error::Error for ParseScheduleError {}

impl FromStr for Schedule {
    type Err = ParseScheduleError;

    fn from_str(s: &str) -> Result<Schedule, ParseScheduleError> {
        let s = s.trim();
        if s.is_empty() || s == "fifo" {
            return Ok(Schedule::default());
        }
        let mut entries = Vec::new();
        for part in s.split(',') {
            let bad = || ParseScheduleError(part.to_string());
            let (i, c) = part.trim().split_once(':').ok_or_else(bad)?;
            let i: usize = i.parse().map_err(|_| bad())?;
            let c: u32 = c.parse().map_err(|_| bad())?;
            if c != 0 {
                entries.push((i, c));
            }
        }
        entries.sort_unstable();
        entries.dedup_by_key(|e| e.0);
        Ok(Schedule { entries })
    }
}

/// One question put to the chooser. Slots are run-local task numbers.
pub(crate) enum Ask<'a> {
    /// Top level: option `i` runs `slots[i]` (oldest first).
    Pick { slots: &'a [u32] },
    /// A decision point inside `current`'s poll: option 0 resumes it,
    /// `1..=slots.len()` runs `slots[i - 1]` nested, the rest are faults.
    Point {
        current: u32,
        slots: &'a [u32],
        faults: usize,
    },
}

/// PCT's initial priorities are `PCT_BASE + [0, PCT_SPAN)`; change points
/// lower a task below `PCT_BASE` (to the change point's index).
const PCT_BASE: i64 = 1_000;
const PCT_SPAN: usize = 1 << 20;

/// Applies a policy (after a replayed prefix) and records every decision.
pub(crate) struct Chooser {
    policy: Policy,
    rng: Rng,
    prefix: Vec<u32>,
    pub(crate) record: Vec<(u32, u32)>,
    pct: Pct,
    /// The slot that ran last at top level (PCT lowers it at a change point).
    last: u32,
}

#[derive(Default)]
struct Pct {
    priorities: Vec<i64>,
    change_points: Vec<u64>,
    steps: u64,
}

impl Chooser {
    /// `steps` estimates how many decisions a run makes (PCT's `k`).
    pub(crate) fn new(policy: Policy, seed: u64, prefix: Vec<u32>, steps: u64) -> Chooser {
        let mut rng = Rng::new(seed);
        let mut pct = Pct::default();
        if let Policy::Pct { depth } = policy {
            let k = steps.max(1);
            pct.change_points = (1..depth)
                .map(|_| 1 + rng.below(k as usize) as u64)
                .collect();
        }
        Chooser {
            policy,
            rng,
            prefix,
            record: Vec::new(),
            pct,
            last: 0,
        }
    }

    /// The option taken for `ask`, among `n` (recorded when `n > 1`).
    pub(crate) fn choose(&mut self, ask: Ask<'_>, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        let pos = self.record.len();
        let choice = match self.prefix.get(pos) {
            Some(&c) => c as usize % n,
            None => self.by_policy(&ask, n),
        };
        self.record.push((n as u32, choice as u32));
        if let Ask::Pick { slots } = ask {
            self.last = slots[choice];
        }
        choice
    }

    /// A task woke itself during its poll (a yield): PCT either drops it
    /// below every task (probability 1/2) or draws it a fresh random
    /// priority among the initial ones (a task a change point lowered
    /// stays where it is). A spin loop still ends (each yield has an even
    /// chance to let every other task run first, a task lowered by a change
    /// point included), yet a task that yields before it acts is no longer
    /// starved: the old rule, "a yield drops to the lowest priority", never
    /// let a yielding waker preempt anyone, and hid every bug whose window
    /// such a waker opens.
    pub(crate) fn yielded(&mut self, slot: u32) {
        if let Policy::Pct { .. } = self.policy {
            let mine = self.priority(slot);
            if self.rng.one_in(2) {
                let min = self.pct.priorities.iter().copied().min().unwrap_or(0);
                self.pct.priorities[slot as usize] = min - 1;
            } else if mine >= PCT_BASE {
                self.pct.priorities[slot as usize] = PCT_BASE + self.rng.below(PCT_SPAN) as i64;
            }
        }
    }

    fn by_policy(&mut self, ask: &Ask<'_>, n: usize) -> usize {
        match self.policy {
            Policy::Fifo | Policy::Dfs { .. } => 0,
            Policy::Random => match *ask {
                Ask::Pick { .. } => self.rng.below(n),
                Ask::Point { slots, faults, .. } => {
                    if faults > 0 && self.rng.one_in(16) {
                        1 + slots.len() + self.rng.below(faults)
                    } else if !slots.is_empty() && self.rng.one_in(4) {
                        1 + self.rng.below(slots.len())
                    } else {
                        0
                    }
                }
            },
            Policy::Pct { .. } => self.pct_choice(ask),
        }
    }

    fn priority(&mut self, slot: u32) -> i64 {
        let slot = slot as usize;
        while self.pct.priorities.len() <= slot {
            let p = PCT_BASE + self.rng.below(PCT_SPAN) as i64;
            self.pct.priorities.push(p);
        }
        self.pct.priorities[slot]
    }

    fn pct_choice(&mut self, ask: &Ask<'_>) -> usize {
        self.pct.steps += 1;
        let steps = self.pct.steps;
        if let Some(j) = self.pct.change_points.iter().position(|&c| c == steps) {
            let current = match *ask {
                Ask::Pick { .. } => self.last,
                Ask::Point { current, .. } => current,
            };
            self.priority(current);
            self.pct.priorities[current as usize] = j as i64;
        }
        let best = |this: &mut Chooser, slots: &[u32]| {
            let mut best = (0, i64::MIN);
            for (i, &s) in slots.iter().enumerate() {
                let p = this.priority(s);
                if p > best.1 {
                    best = (i, p);
                }
            }
            best
        };
        match *ask {
            Ask::Pick { slots } => best(self, slots).0,
            Ask::Point {
                current,
                slots,
                faults,
            } => {
                let mine = self.priority(current);
                let (i, p) = best(self, slots);
                if !slots.is_empty() && p > mine {
                    1 + i
                } else if faults > 0 && self.rng.one_in(16) {
                    1 + slots.len() + self.rng.below(faults)
                } else {
                    0
                }
            }
        }
    }
}

/// The next DFS prefix after a run that recorded `record`: the deepest
/// decision that can take its next option without exceeding `bound`
/// non-default choices. `None`: the bounded tree is exhausted.
pub(crate) fn dfs_next(record: &[(u32, u32)], bound: u32) -> Option<Vec<u32>> {
    let mut deviations: Vec<u32> = Vec::with_capacity(record.len());
    let mut count = 0;
    for &(_, c) in record {
        deviations.push(count);
        count += u32::from(c != 0);
    }
    for i in (0..record.len()).rev() {
        let (n, c) = record[i];
        if c + 1 < n && deviations[i] < bound {
            let mut prefix: Vec<u32> = record[..i].iter().map(|&(_, c)| c).collect();
            prefix.push(c + 1);
            return Some(prefix);
        }
    }
    None
}
