//! Every live task of one runtime, so that shutdown can reach them all.
//! Sharded by task id so spawns on different workers rarely share a lock.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};

use slab::Slab;

use crate::task::raw::TaskRef;

const SHARDS: usize = 16;

#[derive(Default)]
struct Shard {
    tasks: Slab<TaskRef>,
    closed: bool,
}

/// The runtime's owned-task list.
pub(crate) struct OwnedTasks {
    shards: [Mutex<Shard>; SHARDS],
    alive: AtomicUsize,
}

impl OwnedTasks {
    pub(crate) fn new() -> Self {
        OwnedTasks {
            shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
            alive: AtomicUsize::new(0),
        }
    }

    fn shard(&self, index: usize) -> MutexGuard<'_, Shard> {
        self.shards[index]
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
        self.alive.fetch_add(1, Relaxed);
        Ok(key * SHARDS + index)
    }

    /// Removes a completed task.
    pub(crate) fn remove(&self, key: usize) -> Option<TaskRef> {
        let removed = self.shard(key % SHARDS).tasks.try_remove(key / SHARDS);
        if removed.is_some() {
            self.alive.fetch_sub(1, Relaxed);
        }
        removed
    }

    /// Closes the list (later inserts fail) and takes every task in it.
    pub(crate) fn close_and_drain(&self) -> Vec<TaskRef> {
        let mut all = Vec::new();
        for index in 0..SHARDS {
            let mut shard = self.shard(index);
            shard.closed = true;
            all.extend(shard.tasks.drain());
        }
        self.alive.fetch_sub(all.len(), Relaxed);
        all
    }

    /// Tasks spawned and not yet completed.
    pub(crate) fn alive(&self) -> usize {
        self.alive.load(Relaxed)
    }
}
