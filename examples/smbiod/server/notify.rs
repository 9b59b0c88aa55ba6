//! CHANGE_NOTIFY (MS-SMB2 3.3.5.19): directory watchers asleep on the
//! directory's wait queue, woken by the changes made through the server.
//!
//! The first CHANGE_NOTIFY on a directory handle makes a [`Watch`]: from
//! then on, until the handle closes, every change under the directory
//! that matches its filter (its subtree's too, with WATCH_TREE) is
//! buffered there, as Samba does. A CHANGE_NOTIFY finding changes
//! buffered completes at once; otherwise it goes async and sleeps on the
//! directory's [`WaitQueue`] (one per directory, shared by its watches,
//! as an inode's `i_fsnotify` marks share the inode) until a change, a
//! CANCEL (`STATUS_CANCELLED`) or the handle's close (CLOSE, tree
//! disconnect, logoff, lost connection: `STATUS_NOTIFY_CLEANUP`).
//! Changes that overflow the first request's buffer size (or 1,000
//! entries), or a list that does not fit the request's, complete with
//! `STATUS_NOTIFY_ENUM_DIR`: the client re-reads the directory.
//!
//! Who reports what (`Connection::notify`): CREATE of a new name (added),
//! CLOSE with delete-on-close (removed), rename (old and new names, or
//! removed and added across directories), WRITE and end-of-file (size,
//! last write), basic info (attributes and times).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use waitrt::sync::WaitQueue;

use super::pending::Canceller;
use super::{Connection, Outcome};
use crate::wire::message::{ErrorResponse, Response};
use crate::wire::notify::{encode_notify_info, ChangeNotifyRequest, WATCH_TREE};
use crate::wire::{status, Header};

/// FILE_NOTIFY_CHANGE_* filter bits (MS-SMB2 2.2.35).
pub mod filter {
    /// A file name added, removed or renamed.
    pub const FILE_NAME: u32 = 0x1;
    /// A directory name added, removed or renamed.
    pub const DIR_NAME: u32 = 0x2;
    /// Attributes.
    pub const ATTRIBUTES: u32 = 0x4;
    /// Size.
    pub const SIZE: u32 = 0x8;
    /// Last write time.
    pub const LAST_WRITE: u32 = 0x10;
    /// Last access time.
    pub const LAST_ACCESS: u32 = 0x20;
    /// Creation time.
    pub const CREATION: u32 = 0x40;
}

/// Buffered changes beyond this many overflow (Samba's limit).
const MAX_CHANGES: usize = 1000;

/// One directory's queue, where its watchers sleep.
#[derive(Debug, Default)]
pub struct DirQueue {
    wq: WaitQueue,
}

#[derive(Debug, Default)]
struct WatchState {
    filter: u32,
    tree: bool,
    /// The first request's buffer size: buffering past it overflows.
    max_bytes: usize,
    changes: Vec<(u32, String)>,
    bytes: usize,
    overflow: bool,
    /// The handle closed: every request ends NOTIFY_CLEANUP.
    closed: bool,
    /// Requests cancelled and not yet woken.
    cancelled: Vec<u64>,
}

/// The change buffer of one directory handle.
#[derive(Debug)]
pub struct Watch {
    dir: PathBuf,
    queue: Arc<DirQueue>,
    st: Mutex<WatchState>,
}

impl Watch {
    fn st(&self) -> MutexGuard<'_, WatchState> {
        self.st.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends request `id` with `outcome` (CANCEL) and wakes it.
    pub fn abort(&self, id: u64, outcome: u32) {
        debug_assert_eq!(outcome, status::CANCELLED);
        self.st().cancelled.push(id);
        self.queue.wq.wake_up_all();
    }

    /// The handle is closing: every request ends NOTIFY_CLEANUP.
    fn close(&self) {
        self.st().closed = true;
        self.queue.wq.wake_up_all();
    }

    /// Records a change if the filter wants it; true if recorded.
    fn record(&self, action: u32, name: &str, bits: u32, direct: bool) -> bool {
        let mut st = self.st();
        if st.closed || st.filter & bits == 0 || !(direct || st.tree) {
            return false;
        }
        if st.overflow {
            return true;
        }
        if st
            .changes
            .last()
            .is_some_and(|(a, n)| *a == action && n == name)
        {
            return false; // coalesced
        }
        st.bytes += (12 + 2 * name.encode_utf16().count()).next_multiple_of(4);
        st.changes.push((action, name.to_string()));
        if st.changes.len() > MAX_CHANGES || st.bytes > st.max_bytes {
            st.overflow = true;
            st.changes.clear();
            st.bytes = 0;
        }
        true
    }

    /// The outcome of request `id` (taking at most `max` bytes), once it
    /// has one.
    fn take(&self, id: u64, max: u32) -> Option<(u32, Vec<u8>)> {
        let mut st = self.st();
        if let Some(i) = st.cancelled.iter().position(|c| *c == id) {
            st.cancelled.swap_remove(i);
            return Some((status::CANCELLED, Vec::new()));
        }
        if st.closed {
            return Some((status::NOTIFY_CLEANUP, Vec::new()));
        }
        if st.overflow {
            st.overflow = false;
            return Some((status::NOTIFY_ENUM_DIR, Vec::new()));
        }
        if st.changes.is_empty() {
            return None;
        }
        let changes = std::mem::take(&mut st.changes);
        st.bytes = 0;
        match encode_notify_info(&changes) {
            Ok(buf) if buf.len() <= max as usize => Some((status::SUCCESS, buf)),
            _ => Some((status::NOTIFY_ENUM_DIR, Vec::new())),
        }
    }

    /// Sleeps on the directory's wait queue until request `id` has an
    /// outcome.
    ///
    /// # Cancel safety
    ///
    /// Dropping it loses nothing: the changes stay buffered for the next
    /// request.
    async fn wait(self: Arc<Self>, id: u64, max: u32) -> (u32, Vec<u8>) {
        let this = &self;
        this.queue
            .wq
            .wait_event_value(|| this.take(id, max))
            .await
            .unwrap_or((status::NOTIFY_CLEANUP, Vec::new()))
    }
}

impl DirQueue {
    /// Whether a watcher sleeps here (for tests).
    #[cfg(test)]
    pub fn has_sleeper(&self) -> bool {
        self.wq.waitqueue_active()
    }
}

/// Every watch of the server, and the directories' queues.
#[derive(Debug, Default)]
pub struct NotifyTable {
    watches: Mutex<Vec<Weak<Watch>>>,
    dirs: Mutex<HashMap<PathBuf, Weak<DirQueue>>>,
}

impl NotifyTable {
    fn watch(&self, dir: &Path, filter: u32, tree: bool, max_bytes: u32) -> Arc<Watch> {
        let queue = {
            let mut dirs = self.dirs.lock().unwrap_or_else(PoisonError::into_inner);
            dirs.retain(|_, q| q.strong_count() > 0);
            match dirs.get(dir).and_then(Weak::upgrade) {
                Some(q) => q,
                None => {
                    let q = Arc::new(DirQueue::default());
                    dirs.insert(dir.to_path_buf(), Arc::downgrade(&q));
                    q
                }
            }
        };
        let w = Arc::new(Watch {
            dir: dir.to_path_buf(),
            queue,
            st: Mutex::new(WatchState {
                filter,
                tree,
                max_bytes: max_bytes as usize,
                ..WatchState::default()
            }),
        });
        let mut all = self.watches.lock().unwrap_or_else(PoisonError::into_inner);
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&w));
        w
    }

    /// The queue of directory `dir`, while a watch uses it (for tests).
    #[cfg(test)]
    pub fn queue_of(&self, dir: &Path) -> Option<Arc<DirQueue>> {
        let dirs = self.dirs.lock().unwrap_or_else(PoisonError::into_inner);
        dirs.get(dir).and_then(Weak::upgrade)
    }

    /// Reports `action` on `path` (filter `bits`) to the watches of its
    /// directory and of the directories above it, then wakes their queues.
    pub fn report(&self, root: &Path, path: &Path, action: u32, bits: u32) {
        let Some(parent) = path.parent() else { return };
        let watches: Vec<Arc<Watch>> = self
            .watches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let mut woken: Vec<Arc<DirQueue>> = Vec::new();
        for w in watches {
            let Ok(rel) = path.strip_prefix(&w.dir) else {
                continue;
            };
            if !w.dir.starts_with(root) || rel.as_os_str().is_empty() {
                continue;
            }
            let name = rel.to_string_lossy().replace('/', "\\");
            if w.record(action, &name, bits, parent == w.dir)
                && !woken.iter().any(|q| Arc::ptr_eq(q, &w.queue))
            {
                woken.push(w.queue.clone());
            }
        }
        for q in woken {
            q.wq.wake_up_all();
        }
    }
}

impl Drop for super::Open {
    fn drop(&mut self) {
        if let Some(l) = &self.locks {
            l.release_owner(self.uid);
        }
        if let Some(w) = &self.watch {
            w.close();
        }
    }
}

impl Connection {
    /// Reports a change made through this connection to every watcher.
    pub(super) fn notify(&self, path: &Path, action: u32, bits: u32) {
        self.share
            .state
            .notify
            .report(&self.share.root, path, action, bits);
    }

    pub(super) fn change_notify(&mut self, h: &Header, r: &ChangeNotifyRequest) -> Outcome {
        if r.output_length > self.max_io() {
            return Err(status::INVALID_PARAMETER);
        }
        let state = self.share.state.clone();
        let open = self.open_mut(r.file_id)?;
        if open.file.is_some() {
            return Err(status::INVALID_PARAMETER);
        }
        let watch = match &open.watch {
            Some(w) => w.clone(),
            None => {
                let w = state.notify.watch(
                    &open.path,
                    r.filter,
                    r.flags & WATCH_TREE != 0,
                    r.output_length,
                );
                open.watch = Some(w.clone());
                w
            }
        };
        let id = state.uid();
        let reply = |(st, buf): (u32, Vec<u8>)| match st {
            status::SUCCESS => (st, Response::ChangeNotify(buf)),
            _ => (st, Response::Error(ErrorResponse::default())),
        };
        if let Some(done) = watch.take(id, r.output_length) {
            return Ok(reply(done));
        }
        self.async_room()?;
        let max = r.output_length;
        let w = watch.clone();
        let work = Box::pin(async move { reply(w.wait(id, max).await) });
        let async_id = self.go_async(h, work, Canceller::Notify(watch, id));
        self.went_async = Some(async_id);
        Ok((status::PENDING, Response::Error(ErrorResponse::default())))
    }
}
