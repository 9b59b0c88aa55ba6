//! Byte-range locks with Windows semantics (MS-SMB2 3.3.5.14, MS-FSA
//! 2.1.5.7), shared by every connection of the server, and blocked
//! lockers asleep on the file's wait queue.
//!
//! Each file (by device and inode) has one [`FileLocks`]: the locks held,
//! the lock requests blocked behind them, and a [`WaitQueue`]. This is
//! Linux's `fs/locks.c` shape (`struct file_lock_context` with its
//! `flc_lock` list and the blocked requests of `fl_blocked_requests`,
//! waiters in `wait_event_interruptible(fl->fl_wait, ...)`), with one
//! difference: the side that releases a range *grants* the blocked
//! requests that now fit, in FIFO order, before it wakes the queue
//! (Samba's and Windows' order), so a waiter wakes to an outcome, never to
//! a race for the lock. A blocked request ends with:
//!
//! - `STATUS_SUCCESS`: granted by a release;
//! - `STATUS_CANCELLED`: SMB2 CANCEL named it;
//! - `STATUS_RANGE_NOT_LOCKED`: its own handle was closed (CLOSE, tree
//!   disconnect, logoff, or the connection went).
//!
//! Conflict rules (Samba's `brl_conflict`): two shared locks never
//! conflict; a shared lock stacks on its own handle's exclusive lock;
//! anything else conflicts where the ranges overlap. A READ conflicts with
//! another handle's exclusive lock; a WRITE with any other handle's lock
//! and with a shared lock of its own handle.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use waitrt::sync::WaitQueue;

use crate::wire::status;

/// One range, as held or wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The open (server-wide id) that holds or wants it.
    pub owner: u64,
    /// First byte.
    pub start: u64,
    /// Byte count (0 is a valid, empty range).
    pub len: u64,
    /// Exclusive (write) or shared (read).
    pub exclusive: bool,
}

/// Samba's `brl_overlap`, wrapping arithmetic included (a range may end
/// exactly at 2^64), with its same-range rule for ranges that wrap.
fn overlap(a: &Range, start: u64, len: u64) -> bool {
    if a.len != 0 && a.start == start && a.len == len {
        return true;
    }
    !(a.start >= start.wrapping_add(len) || start >= a.start.wrapping_add(a.len))
}

/// Whether `new` may not be granted beside the held lock `held`.
fn conflicts(held: &Range, new: &Range) -> bool {
    if !held.exclusive && !new.exclusive {
        return false;
    }
    if held.exclusive && !new.exclusive && held.owner == new.owner {
        return false;
    }
    overlap(held, new.start, new.len)
}

/// A lock request asleep until a release lets it in.
#[derive(Debug)]
struct Blocked {
    id: u64,
    want: Range,
    /// Set by whoever ends the wait; the waiter takes it.
    outcome: Option<u32>,
}

#[derive(Debug, Default)]
struct LockList {
    held: Vec<Range>,
    blocked: VecDeque<Blocked>,
}

impl LockList {
    fn fits(&self, want: &Range) -> bool {
        !self.held.iter().any(|h| conflicts(h, want))
    }

    /// Grants the blocked requests that fit now, oldest first; true if
    /// any outcome was set.
    fn grant_blocked(&mut self) -> bool {
        let mut any = false;
        for i in 0..self.blocked.len() {
            let b = &self.blocked[i];
            if b.outcome.is_none() && self.fits(&b.want) {
                let want = b.want;
                self.held.push(want);
                self.blocked[i].outcome = Some(status::SUCCESS);
                any = true;
            }
        }
        any
    }
}

/// The locks of one file, and the queue its blocked lockers sleep on.
#[derive(Debug, Default)]
pub struct FileLocks {
    list: Mutex<LockList>,
    wq: WaitQueue,
}

/// How a lock request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    /// Granted now.
    Granted,
    /// Blocked: the caller waits with [`FileLocks::wait`] under this id.
    Blocked(u64),
}

impl FileLocks {
    fn list(&self) -> MutexGuard<'_, LockList> {
        self.list.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes every range of `want` or none (`STATUS_LOCK_NOT_GRANTED`);
    /// each range is checked against the held locks and the ranges of
    /// `want` before it.
    pub fn try_lock(&self, want: &[Range]) -> Result<(), u32> {
        let mut list = self.list();
        let before = list.held.len();
        for w in want {
            if !list.fits(w) {
                list.held.truncate(before);
                return Err(status::LOCK_NOT_GRANTED);
            }
            list.held.push(*w);
        }
        Ok(())
    }

    /// Takes `want` now, or queues it as blocked request `id` (checked
    /// and queued under one lock, so no release can slip between).
    pub fn lock_or_block(&self, want: Range, id: u64) -> Locked {
        let mut list = self.list();
        if list.fits(&want) {
            list.held.push(want);
            return Locked::Granted;
        }
        list.blocked.push_back(Blocked {
            id,
            want,
            outcome: None,
        });
        Locked::Blocked(id)
    }

    /// Removes `ranges` of `owner` in order, each matching a held lock
    /// exactly (an exclusive one before a shared one); stops at the first
    /// that matches none with `STATUS_RANGE_NOT_LOCKED`, keeping the
    /// removals before it (as Windows does). Blocked requests that fit
    /// afterwards are granted and woken.
    pub fn unlock(&self, owner: u64, ranges: &[(u64, u64)]) -> Result<(), u32> {
        let mut result = Ok(());
        let mut list = self.list();
        let mut removed = false;
        for &(start, len) in ranges {
            let same = |h: &Range| h.owner == owner && h.start == start && h.len == len;
            let at = list
                .held
                .iter()
                .position(|h| same(h) && h.exclusive)
                .or_else(|| list.held.iter().position(same));
            match at {
                Some(i) => {
                    list.held.remove(i);
                    removed = true;
                }
                None => {
                    result = Err(status::RANGE_NOT_LOCKED);
                    break;
                }
            }
        }
        let woke = removed && list.grant_blocked();
        drop(list);
        if woke {
            self.wq.wake_up_all();
        }
        result
    }

    /// Drops everything `owner` holds and ends its blocked requests with
    /// `STATUS_RANGE_NOT_LOCKED` (its handle is closing), then grants
    /// and wakes whoever fits now.
    pub fn release_owner(&self, owner: u64) {
        let mut list = self.list();
        let before = list.held.len();
        list.held.retain(|h| h.owner != owner);
        let mut woke = list.held.len() != before && list.grant_blocked();
        for b in list.blocked.iter_mut() {
            if b.want.owner == owner && b.outcome.is_none() {
                b.outcome = Some(status::RANGE_NOT_LOCKED);
                woke = true;
            }
        }
        drop(list);
        if woke {
            self.wq.wake_up_all();
        }
    }

    /// Ends blocked request `id` with `outcome` (CANCEL), if it is still
    /// waiting; true if it was.
    pub fn cancel(&self, id: u64, outcome: u32) -> bool {
        let mut list = self.list();
        let Some(b) = list.blocked.iter_mut().find(|b| b.id == id) else {
            return false;
        };
        if b.outcome.is_some() {
            return false;
        }
        b.outcome = Some(outcome);
        drop(list);
        self.wq.wake_up_all();
        true
    }

    /// The outcome of blocked request `id`, once set (removing it).
    fn take_outcome(&self, id: u64) -> Option<u32> {
        let mut list = self.list();
        let i = list.blocked.iter().position(|b| b.id == id)?;
        list.blocked[i].outcome?;
        list.blocked.remove(i).and_then(|b| b.outcome)
    }

    /// Sleeps on the file's wait queue until blocked request `id` has an
    /// outcome, and returns it.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the request queued; it is still ended
    /// by [`cancel`](Self::cancel) or [`release_owner`](Self::release_owner)
    /// (and a granted range stays held by its owner until unlocked or
    /// closed).
    pub async fn wait(self: Arc<Self>, id: u64) -> u32 {
        let this = &self;
        this.wq
            .wait_event_value(|| this.take_outcome(id))
            .await
            .unwrap_or(status::RANGE_NOT_LOCKED)
    }

    /// Whether `owner` may read (`write == false`) or write `len` bytes
    /// at `offset`: `STATUS_FILE_LOCK_CONFLICT` if a lock forbids it.
    /// Moving no bytes never conflicts.
    pub fn check_io(&self, owner: u64, offset: u64, len: u64, write: bool) -> Result<(), u32> {
        if len == 0 {
            return Ok(());
        }
        let list = self.list();
        let blocks = |h: &Range| {
            let forbids = if write {
                h.owner != owner || !h.exclusive
            } else {
                h.owner != owner && h.exclusive
            };
            forbids && overlap(h, offset, len)
        };
        if list.held.iter().any(blocks) {
            return Err(status::FILE_LOCK_CONFLICT);
        }
        Ok(())
    }

    /// Locks held now (for tests).
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.list().held.len()
    }

    /// Whether anyone sleeps on the queue (for tests).
    #[cfg(test)]
    pub fn has_sleeper(&self) -> bool {
        self.wq.waitqueue_active()
    }
}

/// Every file's [`FileLocks`], by (device, inode); an entry lives as long
/// as an open of the file holds it.
#[derive(Debug, Default)]
pub struct LockTable {
    files: Mutex<HashMap<(u64, u64), Weak<FileLocks>>>,
}

impl LockTable {
    /// The lock state of file `key`, created on first use.
    pub fn get(&self, key: (u64, u64)) -> Arc<FileLocks> {
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(l) = files.get(&key).and_then(Weak::upgrade) {
            return l;
        }
        if files.len() >= 64 && files.len().is_power_of_two() {
            files.retain(|_, w| w.strong_count() > 0);
        }
        let l = Arc::new(FileLocks::default());
        files.insert(key, Arc::downgrade(&l));
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(owner: u64, start: u64, len: u64, exclusive: bool) -> Range {
        Range {
            owner,
            start,
            len,
            exclusive,
        }
    }

    #[test]
    fn windows_conflict_rules() {
        let f = FileLocks::default();
        f.try_lock(&[r(1, 0, 10, true)]).unwrap();
        // two exclusive locks never stack, even on one handle
        assert_eq!(
            f.try_lock(&[r(1, 5, 1, true)]),
            Err(status::LOCK_NOT_GRANTED)
        );
        // a shared lock stacks on its own handle's exclusive lock only
        f.try_lock(&[r(1, 0, 10, false)]).unwrap();
        assert_eq!(
            f.try_lock(&[r(2, 0, 10, false)]),
            Err(status::LOCK_NOT_GRANTED)
        );
        // unlock takes the exclusive one first, then the shared one
        f.unlock(1, &[(0, 10)]).unwrap();
        f.try_lock(&[r(2, 0, 10, false)]).unwrap();
        f.unlock(1, &[(0, 10)]).unwrap();
        assert_eq!(f.unlock(1, &[(0, 10)]), Err(status::RANGE_NOT_LOCKED));
        // zero-byte ranges (Samba's table): {10,0} vs {9,2} overlap
        let g = FileLocks::default();
        g.try_lock(&[r(1, 10, 0, true)]).unwrap();
        g.try_lock(&[r(2, 10, 1, true)]).unwrap();
        assert_eq!(
            g.try_lock(&[r(2, 9, 2, true)]),
            Err(status::LOCK_NOT_GRANTED)
        );
        // a range ending at 2^64 conflicts with itself
        g.try_lock(&[r(1, u64::MAX, 1, true)]).unwrap();
        assert_eq!(
            g.try_lock(&[r(2, u64::MAX, 1, true)]),
            Err(status::LOCK_NOT_GRANTED)
        );
        // all or nothing
        assert_eq!(
            g.try_lock(&[r(3, 100, 1, true), r(3, 10, 1, true)]),
            Err(status::LOCK_NOT_GRANTED)
        );
        g.try_lock(&[r(4, 100, 1, true)]).unwrap();
    }

    #[test]
    fn reads_and_writes_meet_locks() {
        let f = FileLocks::default();
        f.try_lock(&[r(1, 0, 100, true), r(2, 200, 100, false)])
            .unwrap();
        assert_eq!(f.check_io(1, 0, 100, true), Ok(()));
        assert_eq!(
            f.check_io(2, 50, 10, false),
            Err(status::FILE_LOCK_CONFLICT)
        );
        assert_eq!(f.check_io(2, 50, 10, true), Err(status::FILE_LOCK_CONFLICT));
        // a shared lock forbids writes by everyone, its owner included
        assert_eq!(f.check_io(2, 250, 1, true), Err(status::FILE_LOCK_CONFLICT));
        assert_eq!(f.check_io(1, 250, 1, false), Ok(()));
        assert_eq!(f.check_io(3, 100, 100, true), Ok(()));
        assert_eq!(f.check_io(2, 50, 0, false), Ok(()), "a zero-byte read");
    }

    #[test]
    fn a_release_grants_blocked_requests_in_order_and_wakes_them() {
        let f = Arc::new(FileLocks::default());
        f.try_lock(&[r(1, 0, 10, true)]).unwrap();
        assert_eq!(f.lock_or_block(r(2, 5, 1, true), 7), Locked::Blocked(7));
        assert_eq!(f.lock_or_block(r(3, 5, 1, true), 8), Locked::Blocked(8));
        let first = std::thread::spawn({
            let f = f.clone();
            move || futures::executor::block_on(f.wait(7))
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !f.has_sleeper() {
            assert!(
                std::time::Instant::now() < deadline,
                "the waiter never slept"
            );
            std::thread::yield_now();
        }
        f.unlock(1, &[(0, 10)]).unwrap();
        assert_eq!(first.join().unwrap(), status::SUCCESS);
        // the second still waits behind the first; its owner's close ends it
        assert!(f.take_outcome(8).is_none());
        f.release_owner(3);
        assert_eq!(
            futures::executor::block_on(f.clone().wait(8)),
            status::RANGE_NOT_LOCKED
        );
        // a cancelled request never gets the range
        f.try_lock(&[r(5, 50, 1, true)]).unwrap();
        assert_eq!(f.lock_or_block(r(6, 50, 1, true), 9), Locked::Blocked(9));
        assert!(f.cancel(9, status::CANCELLED));
        assert_eq!(
            futures::executor::block_on(f.clone().wait(9)),
            status::CANCELLED
        );
        f.unlock(5, &[(50, 1)]).unwrap();
        assert_eq!(f.held(), 1, "only owner 2's granted range is left");
    }
}
