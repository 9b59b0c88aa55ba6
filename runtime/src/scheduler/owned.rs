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
    pub(crate) fn remove(&self, key: usize) -> Option<TaskRef> {
        self.shard(key % SHARDS).tasks.try_remove(key / SHARDS)
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
}
