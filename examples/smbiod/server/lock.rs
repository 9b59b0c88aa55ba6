//! LOCK (MS-SMB2 3.3.5.14) for the embedded server: validation as Samba
//! does it (`smbd_smb2_lock_send`), then the file's [`FileLocks`]. A
//! blocking request (one element, no FAIL_IMMEDIATELY) that conflicts
//! goes async: its waiter sleeps on the file's wait queue until a release
//! grants it, CANCEL ends it, or its handle closes.
//!
//! [`FileLocks`]: super::locks::FileLocks

use super::locks::{Locked, Range};
use super::pending::Canceller;
use super::{Connection, Outcome};
use crate::wire::lock::{flags, LockElement, LockRequest};
use crate::wire::message::{ErrorResponse, Response};
use crate::wire::{status, Header};

const SH: u32 = flags::SHARED;
const EX: u32 = flags::EXCLUSIVE;
const FI: u32 = flags::FAIL_IMMEDIATELY;

/// A range that runs past 2^64 (a zero-length range never does).
fn bad_range(l: &LockElement) -> bool {
    l.length > 0 && l.offset.checked_add(l.length - 1).is_none()
}

impl Connection {
    pub(super) fn lock(&mut self, h: &Header, r: &LockRequest) -> Outcome {
        let Some(first) = r.locks.first() else {
            return Err(status::INVALID_PARAMETER);
        };
        let open = self.open_mut(r.file_id)?;
        let (owner, file) = (open.uid, open.locks.clone());
        let file = file.ok_or(status::INVALID_DEVICE_REQUEST)?;
        let n = r.locks.len();
        let (unlock, blocking) = match first.flags {
            SH | EX if n > 1 => return Err(status::INVALID_PARAMETER),
            SH | EX => (false, true),
            f if f == SH | FI || f == EX | FI => (false, false),
            flags::UNLOCK => (true, false),
            _ => return Err(status::INVALID_PARAMETER),
        };
        if unlock {
            // Elements in order; the first bad one ends the request, the
            // unlocks before it stay done (Windows).
            for l in &r.locks {
                if l.flags != flags::UNLOCK {
                    return Err(status::INVALID_PARAMETER);
                }
                file.unlock(owner, &[(l.offset, l.length)])?;
            }
            return Ok((status::SUCCESS, Response::Lock));
        }
        let valid = |f: u32| f == SH | FI || f == EX | FI || (n == 1 && (f == SH || f == EX));
        if r.locks.iter().any(|l| !valid(l.flags)) {
            return Err(status::INVALID_PARAMETER);
        }
        if r.locks.iter().any(bad_range) {
            return Err(status::INVALID_LOCK_RANGE);
        }
        let ranges: Vec<Range> = r
            .locks
            .iter()
            .map(|l| Range {
                owner,
                start: l.offset,
                len: l.length,
                exclusive: l.flags & EX != 0,
            })
            .collect();
        if !blocking {
            file.try_lock(&ranges)?;
            return Ok((status::SUCCESS, Response::Lock));
        }
        if let Err(full) = self.async_room() {
            // Too many pending: granted now or refused, never queued.
            return match file.try_lock(&ranges) {
                Ok(()) => Ok((status::SUCCESS, Response::Lock)),
                Err(_) => Err(full),
            };
        }
        let id = self.share.state.uid();
        match file.lock_or_block(ranges[0], id) {
            Locked::Granted => Ok((status::SUCCESS, Response::Lock)),
            Locked::Blocked(id) => {
                let waiter = file.clone();
                let work = Box::pin(async move {
                    match waiter.wait(id).await {
                        status::SUCCESS => (status::SUCCESS, Response::Lock),
                        st => (st, Response::Error(ErrorResponse::default())),
                    }
                });
                let async_id = self.go_async(h, work, Canceller::Lock(file, id));
                self.went_async = Some(async_id);
                Ok((status::PENDING, Response::Error(ErrorResponse::default())))
            }
        }
    }
}
