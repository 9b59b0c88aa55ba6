//! Every live task of one runtime, so that shutdown can reach them all.
//! Sharded by task id so spawns on different workers rarely share a lock;
//! each shard sits on its own cache lines and keeps its own counts (under
//! its lock), so no spawn touches a counter another worker writes.
//!
//! A shard's lock is a spin lock (`crate::sync::spin`) whose waiters yield the CPU:
//! every hold is a slab insert or remove (a drain at shutdown), and its
//! release is a plain store where `std`'s mutex needs a read-modify-write
//! to look for sleepers. Two such operations per task were a tenth of
//! spawn_many (`benches/runtime.rs`).

use slab::Slab;
use spin::mutex::{SpinMutex, SpinMutexGuard};

use crate::sync::spin::YieldWhileLocked;
use crate::task::raw::TaskRef;

const SHARDS: usize = 16;

#[derive(Default)]
struct Shard {
    tasks: Slab<TaskRef>,
    closed: bool,
    /// Tasks ever inserted here.
    spawned: u64,
    /// The live count at which to try giving room back next (see
    /// `remove`); `None` until the shard is down to a quarter of its room.
    shrink_at: Option<usize>,
}

/// Slots a shard keeps however few tasks live in it.
const KEEP: usize = 4096;

impl Shard {
    /// See [`OwnedTasks::remove`]; out of line, for a shard past `KEEP`.
    #[cold]
    #[inline(never)]
    fn give_room_back(&mut self) {
        let (len, room) = (self.tasks.len(), self.tasks.capacity());
        if len <= room / 4 {
            let at = *self.shrink_at.get_or_insert(len);
            if len <= at {
                // Only where the tail is free: the last live key, found
                // from the end (a step per free slot there, which the cut
                // then gives back; one step when the tail is live, as
                // while a burst ends in spawn order).
                let end = self.tasks.iter().next_back().map_or(0, |(key, _)| key + 1);
                if end <= room / 2 {
                    self.tasks.shrink_to_fit();
                }
                self.shrink_at = Some(len / 2);
            }
        } else if len > room / 2 {
            self.shrink_at = None;
        }
    }
}

/// Keeps each shard's lock off its neighbours' cache lines.
#[repr(align(128))]
struct Padded(SpinMutex<Shard, YieldWhileLocked>);

/// The runtime's owned-task list.
pub(crate) struct OwnedTasks {
    shards: [Padded; SHARDS],
}

impl OwnedTasks {
    pub(crate) fn new() -> Self {
        OwnedTasks {
            shards: std::array::from_fn(|_| Padded(SpinMutex::new(Shard::default()))),
        }
    }

    fn shard(&self, index: usize) -> SpinMutexGuard<'_, Shard, YieldWhileLocked> {
        self.shards[index].0.lock()
    }

    /// Adds a task; `Err` once the list is closed (shutdown began).
    ///
    /// # Panics
    ///
    /// When the task's key would not fit the header's four bytes: more
    /// than about 4 billion live tasks in one runtime (400 GB of tasks),
    /// as `Vec` panics on a capacity overflow.
    pub(crate) fn insert(&self, task: TaskRef) -> Result<u32, TaskRef> {
        let index = task.header().id.0 as usize % SHARDS;
        let mut shard = self.shard(index);
        if shard.closed {
            return Err(task);
        }
        let key = shard.tasks.insert(task) * SHARDS + index;
        match u32::try_from(key) {
            Ok(key) if key != u32::MAX => {
                shard.spawned += 1;
                Ok(key)
            }
            _ => {
                drop(shard.tasks.remove(key / SHARDS));
                drop(shard);
                panic!("more than 4 billion live tasks in one runtime");
            }
        }
    }

    /// The task listed under `key`, if any (a key is reused once its task
    /// completed: the caller checks the id).
    pub(crate) fn get(&self, key: usize) -> Option<TaskRef> {
        self.shard(key % SHARDS).tasks.get(key / SHARDS).cloned()
    }

    /// Removes a completed task.
    ///
    /// After a burst, the slab's room goes back as far as its live tasks
    /// allow: a key cannot move (dumps and the wait registry's slots know
    /// tasks by it), so only the free slots past the last live one are
    /// cut (`Slab::shrink_to_fit`). That walks the slab, so it is tried
    /// when the shard holds a quarter of its room or less, and again only
    /// once the live count has halved since (a live task near the end can
    /// keep the room until it ends); the count starts over only once the
    /// shard is back above half its room, so tries stay a logarithm's worth
    /// per quarter of the room spawned and ended. (A million tasks spawned
    /// at once kept 24 MB here after they ended: an independent probe.)
    pub(crate) fn remove(&self, key: usize) -> Option<TaskRef> {
        let mut shard = self.shard(key % SHARDS);
        let task = shard.tasks.try_remove(key / SHARDS);
        let (len, room) = (shard.tasks.len(), shard.tasks.capacity());
        // Inline, the two cases `give_room_back` acts on (the call is out
        // of line: a call per removal cost a burst of 100,000 tasks ~3 %).
        if room > KEEP && (len <= room / 4 || (len > room / 2 && shard.shrink_at.is_some())) {
            shard.give_room_back();
        }
        task
    }

    /// Closes the list: later inserts fail, the tasks stay (a fatal panic:
    /// every spawn path, blocking jobs too, is refused from now on, and a
    /// thread of the runtime ends the listed tasks soon after).
    pub(crate) fn close(&self) {
        for index in 0..SHARDS {
            self.shard(index).closed = true;
        }
    }

    /// Closes the list (later inserts fail) and takes every task in it.
    pub(crate) fn close_and_drain(&self) -> Vec<TaskRef> {
        let mut all = Vec::new();
        for index in 0..SHARDS {
            // Take the slab under the lock, copy it out after: other
            // threads spin while a shard is held.
            let tasks = {
                let mut shard = self.shard(index);
                shard.closed = true;
                std::mem::take(&mut shard.tasks)
            };
            all.extend(tasks.into_iter().map(|(_, task)| task));
        }
        all
    }

    /// Every listed task (task dumps: one shard's lock at a time).
    pub(crate) fn snapshot(&self) -> Vec<TaskRef> {
        let mut all = Vec::new();
        for index in 0..SHARDS {
            let shard = self.shard(index);
            all.extend(shard.tasks.iter().map(|(_, task)| task.clone()));
        }
        all
    }

    /// Tasks spawned and not yet completed (metrics: takes every lock).
    pub(crate) fn alive(&self) -> usize {
        (0..SHARDS).map(|i| self.shard(i).tasks.len()).sum()
    }

    /// Tasks ever spawned (metrics: takes every lock).
    pub(crate) fn spawned(&self) -> u64 {
        (0..SHARDS).map(|i| self.shard(i).spawned).sum()
    }

    /// The slots the shards hold, live or free (tests of the room given
    /// back).
    #[cfg(test)]
    pub(crate) fn room(&self) -> usize {
        (0..SHARDS).map(|i| self.shard(i).tasks.capacity()).sum()
    }
}

#[cfg(test)]
mod tests {
    /// After a burst of tasks that all end, the owned list and the run
    /// queue give their room back (a million tasks at once kept 40 MB for
    /// the runtime's life: an independent probe); a task that lives on
    /// near the end of a shard keeps only what its key needs.
    #[test]
    fn a_burst_of_tasks_leaves_no_room_behind() {
        const BURST: usize = 200_000;
        let rt = crate::Builder::new_current_thread().build().unwrap();
        let common = rt.handle().scheduler.common();
        rt.block_on(async {
            let (tx, rx) = crate::sync::watch::channel(false);
            let tasks: Vec<_> = (0..BURST)
                .map(|_| {
                    let mut rx = rx.clone();
                    crate::spawn(async move { rx.wait_for(|go| *go).await.map(drop) })
                })
                .collect();
            // All asleep, then all woken at once: the run queue peaks too.
            crate::task::yield_now().await;
            assert!(common.owned.room() >= BURST);
            tx.send(true).unwrap();
            for task in tasks {
                task.await.unwrap().unwrap();
            }
        });
        let room = common.owned.room();
        assert!(
            room <= 16 * super::KEEP,
            "{room} slots kept after a burst of {BURST}"
        );
        // The run queue halves per idle turn: a few idle turns later it is
        // back to its floor.
        for _ in 0..20 {
            rt.block_on(crate::task::yield_now());
        }
        let queue = rt.handle().scheduler.run_queue_room();
        assert!(queue <= 4096, "a run queue of {queue} kept");
    }
}
