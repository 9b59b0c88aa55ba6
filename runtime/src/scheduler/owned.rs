//! Every live task of one runtime, so that shutdown can reach them all.
//! Sharded by task id so spawns on different workers rarely share a lock;
//! each shard sits on its own cache lines and keeps its own counts (under
//! its lock), so no spawn touches a counter another worker writes.

use std::sync::{Mutex, MutexGuard, PoisonError};

use slab::Slab;

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
struct Padded(Mutex<Shard>);

/// The runtime's owned-task list.
pub(crate) struct OwnedTasks {
    shards: [Padded; SHARDS],
}

impl OwnedTasks {
    pub(crate) fn new() -> Self {
        OwnedTasks {
            shards: std::array::from_fn(|_| Padded(Mutex::new(Shard::default()))),
        }
    }

    fn shard(&self, index: usize) -> MutexGuard<'_, Shard> {
        self.shards[index]
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a task; `Err` once the list is closed (shutdown began).
    pub(crate) fn insert(&self, task: TaskRef) -> Result<usize, TaskRef> {
        let index = task.header().id.0 as usize % SHARDS;
        let mut shard = self.shard(index);
        if shard.closed {
            return Err(task);
        }
        let key = shard.tasks.insert(task);
        shard.spawned += 1;
        Ok(key * SHARDS + index)
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

    /// Closes the list (later inserts fail) and takes every task in it.
    pub(crate) fn close_and_drain(&self) -> Vec<TaskRef> {
        let mut all = Vec::new();
        for index in 0..SHARDS {
            let mut shard = self.shard(index);
            shard.closed = true;
            all.extend(shard.tasks.drain());
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
