//! Who holds what a queue's waiters wait for: the owner of a lock, the
//! task that last took a semaphore, the readers of a reader-writer lock.
//! A lock built on a wait queue says so as it is taken and given back
//! ([`set_holder`], [`set_last_holder`], [`held_shared`]); a dump or a
//! hang report then names the holder beside each sleep on that queue
//! ([`Waiting::holder`](super::Waiting::holder)).
//!
//! Kernel: the blocker the hung-task detector names since 2025
//! (`hung_task_detect_blocker`): a mutex's owner, a semaphore "likely last
//! held by" a task, an rw-semaphore "likely owned by" a reader or writer.
//!
//! Only while the whole registry is on ([`enable`](super::enable)): a
//! record is a locked update of a sharded map, too dear for every lock
//! operation of a runtime that lists sleeps only in task slots.

use super::{is_recording, KeyHasher, SHARDS};
use crate::hook::{QueueId, Sleepable};
use crate::sync::{Mutex, MutexGuard, PoisonError};
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// How the task a sleep names as its [`holder`](super::Waiting::holder)
/// holds what it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HeldAs {
    /// It is the one owner (a mutex, a writer: [`set_holder`]), or no
    /// holder is named. Kernel: `mutex->owner`.
    #[default]
    Owner,
    /// It is the task that last took a semaphore ([`set_last_holder`]):
    /// others may hold permits too. Kernel: "likely last held by".
    LastTaker,
    /// It holds it for reading ([`held_shared`]), the longest-standing of
    /// the readers now, with `others` more. Kernel: an rw-semaphore
    /// "likely owned by" a reader.
    Reader {
        /// How many other tasks hold it for reading.
        others: usize,
    },
}

/// A queue's holders as recorded.
#[derive(Debug)]
enum Held {
    Owner(u64),
    LastTaker(u64),
    /// The readers in the order they came, each with how many holds it
    /// has (a task may read-lock twice).
    Readers(Vec<(u64, u32)>),
}

type Holders = HashMap<QueueId, Held, BuildHasherDefault<KeyHasher>>;

/// Keeps each shard's lock off its neighbours' cache lines.
#[repr(align(128))]
struct PaddedHolders(Mutex<Holders>);

static HOLDERS: [PaddedHolders; SHARDS] =
    [const { PaddedHolders(Mutex::new(HashMap::with_hasher(BuildHasherDefault::new()))) }; SHARDS];

fn holders(queue: QueueId) -> MutexGuard<'static, Holders> {
    let index = (queue.addr() >> 4) % SHARDS;
    // Nothing panics under the lock.
    HOLDERS[index]
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Says which task now holds what `queue`'s waiters wait for (`None`: no
/// task holds it): a lock calls it when it is taken and given back, so a
/// dump or a hang report can name the holder of the lock a task sleeps
/// on. `None` takes back an owner only: readers named by [`held_shared`]
/// stay (a writer that downgrades to a reader names itself a reader
/// first). Does nothing while the registry is off (one relaxed load).
///
/// Kernel: `mutex->owner`, which the hung-task detector prints.
///
/// # Examples
///
/// ```
/// use std::future::Future;
/// use waitq::registry;
/// static LOCK_WAIT: waitq::WaitQueue = waitq::WaitQueue::named("lock_wait");
///
/// registry::enable();
/// registry::set_task_source(|| Some(registry::TaskStamp { task: Some(3), now: std::time::Instant::now() }));
/// registry::set_holder(&LOCK_WAIT, Some(9)); // task 9 took the lock
/// let mut wait = LOCK_WAIT.wait_event_exclusive(|| false);
/// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// assert!(std::pin::Pin::new(&mut wait).poll(&mut cx).is_pending());
/// let me = waitq::hook::QueueId::of(&LOCK_WAIT);
/// let waits: Vec<_> = registry::snapshot().into_iter().filter(|w| w.queue == me).collect();
/// assert_eq!(waits[0].holder, Some(9));
/// registry::set_holder(&LOCK_WAIT, None);
/// assert_eq!(registry::holder_of(me), None);
/// ```
pub fn set_holder(queue: &(impl Sleepable + ?Sized), task: Option<u64>) {
    if !is_recording() {
        return;
    }
    let id = queue.queue_id();
    let mut holders = holders(id);
    match task {
        Some(task) => {
            holders.insert(id, Held::Owner(task));
        }
        None => {
            if let Some(Held::Owner(_)) = holders.get(&id) {
                holders.remove(&id);
            }
        }
    }
}

/// Forgets whatever is recorded of `queue`'s holders: its owner goes
/// away (a lock dropped while the registry is on), and a later queue at
/// the same address must not inherit its holders (a read guard leaked
/// with `mem::forget`, say).
///
/// # Examples
///
/// ```
/// use waitq::{hook::QueueId, registry};
/// let queue = waitq::WaitQueue::new();
/// registry::enable();
/// registry::held_shared(&queue, 4, true);
/// registry::forget_holders(&queue);
/// assert_eq!(registry::holder_of(QueueId::of(&queue)), None);
/// ```
pub fn forget_holders(queue: &(impl Sleepable + ?Sized)) {
    if !is_recording() {
        return;
    }
    let id = queue.queue_id();
    holders(id).remove(&id);
}

/// Says that `task` just took what `queue`'s waiters wait for, where
/// several may hold it at once (a semaphore's permits): a dump or a hang
/// report names it as the one that *last* took it. Does nothing while the
/// registry is off (one relaxed load).
///
/// Kernel: `sem->last_holder` (2025), printed by the hung-task detector
/// as "blocked on a semaphore likely last held by task X".
///
/// # Examples
///
/// ```
/// use waitq::{hook::QueueId, registry};
/// static PERMITS: waitq::WaitQueue = waitq::WaitQueue::named("permits");
/// registry::enable();
/// registry::set_last_holder(&PERMITS, 4);
/// assert_eq!(registry::holder_of(QueueId::of(&PERMITS)), Some(4));
/// registry::clear_last_holder(&PERMITS, 5); // not the last taker: kept
/// assert_eq!(registry::holder_of(QueueId::of(&PERMITS)), Some(4));
/// registry::clear_last_holder(&PERMITS, 4);
/// assert_eq!(registry::holder_of(QueueId::of(&PERMITS)), None);
/// ```
pub fn set_last_holder(queue: &(impl Sleepable + ?Sized), task: u64) {
    if !is_recording() {
        return;
    }
    let id = queue.queue_id();
    holders(id).insert(id, Held::LastTaker(task));
}

/// `task` gave back what it took (see [`set_last_holder`]): if it is the
/// last taker named, nobody is named any more. Kernel: `up()` clearing
/// `last_holder` when the releaser is it.
///
/// # Examples
///
/// See [`set_last_holder`].
pub fn clear_last_holder(queue: &(impl Sleepable + ?Sized), task: u64) {
    if !is_recording() {
        return;
    }
    let id = queue.queue_id();
    let mut holders = holders(id);
    if matches!(holders.get(&id), Some(Held::LastTaker(last)) if *last == task) {
        holders.remove(&id);
    }
}

/// One shared hold of what `queue`'s waiters wait for (a reader-writer
/// lock's read side) was taken by `task` (`acquired`) or given back: a
/// dump or a hang report names the readers holding it beside a writer
/// that waits for them (the longest-standing reader, and how many others).
/// A task may hold it more than once; each hold is given back once. Does
/// nothing while the registry is off (one relaxed load).
///
/// The test toolkit hears of readers through
/// [`hook::held_shared`](crate::hook::held_shared), which takes the same
/// arguments.
///
/// Kernel: an rw-semaphore's owner field, which names a reader while
/// readers hold it; the hung-task detector prints "blocked on an
/// rw-semaphore likely owned by task X `<reader>`".
///
/// # Examples
///
/// ```
/// use waitq::{hook::QueueId, registry::{self, HeldAs}};
/// static RW: waitq::WaitQueue = waitq::WaitQueue::named("rw");
/// registry::enable();
/// registry::held_shared(&RW, 4, true);
/// registry::held_shared(&RW, 6, true);
/// let id = QueueId::of(&RW);
/// assert_eq!(registry::holder_of(id), Some(4));
/// registry::held_shared(&RW, 4, false); // task 4 is done reading
/// assert_eq!(registry::holder_of(id), Some(6));
/// registry::held_shared(&RW, 6, false);
/// assert_eq!(registry::holder_of(id), None);
/// # let _ = HeldAs::Reader { others: 0 };
/// ```
pub fn held_shared(queue: &(impl Sleepable + ?Sized), task: u64, acquired: bool) {
    if !is_recording() {
        return;
    }
    let id = queue.queue_id();
    let mut holders = holders(id);
    let readers = match holders.get_mut(&id) {
        Some(Held::Readers(readers)) => readers,
        // A writer's or a semaphore's record went with its release, or
        // will be replaced by the next: readers start afresh.
        _ if acquired => {
            holders.insert(id, Held::Readers(vec![(task, 1)]));
            return;
        }
        _ => return,
    };
    let at = readers.iter().position(|&(reader, _)| reader == task);
    match (at, acquired) {
        (Some(at), true) => readers[at].1 += 1,
        (None, true) => readers.push((task, 1)),
        (Some(at), false) => {
            readers[at].1 -= 1;
            if readers[at].1 == 0 {
                readers.remove(at);
            }
            if readers.is_empty() {
                holders.remove(&id);
            }
        }
        // Taken before the registry was on: nothing to take back.
        (None, false) => {}
    }
}

/// The holder to name beside a sleep on `queue`, and how it holds.
pub(super) fn holder(queue: QueueId) -> Option<(u64, HeldAs)> {
    match holders(queue).get(&queue)? {
        Held::Owner(task) => Some((*task, HeldAs::Owner)),
        Held::LastTaker(task) => Some((*task, HeldAs::LastTaker)),
        Held::Readers(readers) => readers.first().map(|&(task, _)| {
            let others = readers.len() - 1;
            (task, HeldAs::Reader { others })
        }),
    }
}

/// The task [`set_holder`], [`set_last_holder`] or [`held_shared`] last
/// named for `queue` (for readers, the longest-standing one), if any.
///
/// # Examples
///
/// ```
/// let queue = waitq::WaitQueue::new();
/// assert_eq!(waitq::registry::holder_of(waitq::hook::QueueId::of(&queue)), None);
/// ```
pub fn holder_of(queue: QueueId) -> Option<u64> {
    holder(queue).map(|(task, _)| task)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WaitQueue;

    /// A writer that downgrades names itself a reader before it gives the
    /// write side back: the owner's `None` must not take the reader away
    /// (the lock is held throughout).
    #[test]
    fn a_downgrade_keeps_its_reader() {
        super::super::enable();
        let queue = WaitQueue::new();
        let id = QueueId::of(&queue);
        set_holder(&queue, Some(7));
        assert_eq!(holder(id), Some((7, HeldAs::Owner)));
        held_shared(&queue, 7, true);
        set_holder(&queue, None);
        assert_eq!(holder(id), Some((7, HeldAs::Reader { others: 0 })));
        held_shared(&queue, 7, false);
        assert_eq!(holder(id), None);
    }

    /// Readers are named oldest first, a task's second hold counted, and
    /// each hold given back once.
    #[test]
    fn readers_are_counted_per_hold() {
        super::super::enable();
        let queue = WaitQueue::new();
        let id = QueueId::of(&queue);
        held_shared(&queue, 1, true);
        held_shared(&queue, 2, true);
        held_shared(&queue, 1, true);
        assert_eq!(holder(id), Some((1, HeldAs::Reader { others: 1 })));
        held_shared(&queue, 1, false);
        assert_eq!(holder(id), Some((1, HeldAs::Reader { others: 1 })));
        held_shared(&queue, 1, false);
        assert_eq!(holder(id), Some((2, HeldAs::Reader { others: 0 })));
        held_shared(&queue, 3, false); // never named: nothing happens
        assert_eq!(holder(id), Some((2, HeldAs::Reader { others: 0 })));
        forget_holders(&queue);
        assert_eq!(holder(id), None);
    }
}
