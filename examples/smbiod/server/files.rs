//! CREATE, CLOSE, READ and WRITE for the embedded server.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::OFlags;

use super::meta::{attrs, data_io_status, io_status};
use super::notify::filter;
use super::sandbox::resolve;
use super::setinfo::check_deletable;
use super::{shares, Connection, Open, Outcome};
use crate::wire::create::{
    CloseRequest, CloseResponse, CreateRequest, CreateResponse, FileId, CLOSE_POSTQUERY_ATTRIB,
    FILE_CREATE, FILE_DELETE_ON_CLOSE, FILE_DIRECTORY_FILE, FILE_NON_DIRECTORY_FILE, FILE_OPEN,
    FILE_OPEN_IF, FILE_OVERWRITE,
};
use crate::wire::message::Response;
use crate::wire::notify::action;
use crate::wire::rw::{ReadRequest, ReadResponse, WriteRequest, WriteResponse};
use crate::wire::status;

/// Access bits that need a writable handle: WRITE_DATA, APPEND_DATA,
/// DELETE, MAXIMUM_ALLOWED, GENERIC_ALL, GENERIC_WRITE.
const WRITE_ACCESS: u32 = 0x2 | 0x4 | 0x1_0000 | 0x0200_0000 | 0x1000_0000 | 0x4000_0000;
/// The data-access classes share modes and READ/WRITE checks use, as
/// FILE_SHARE_* bits: read (READ_DATA, EXECUTE), write (WRITE_DATA,
/// APPEND_DATA), delete (DELETE).
pub(super) const SHARE_READ: u32 = 1;
pub(super) const SHARE_WRITE: u32 = 2;
pub(super) const SHARE_DELETE: u32 = 4;

/// `desired` mapped onto [`SHARE_READ`] | [`SHARE_WRITE`] | [`SHARE_DELETE`]
/// (generic rights and MAXIMUM_ALLOWED included: a guest here gets all).
pub(super) fn data_access(desired: u32) -> u32 {
    const GENERIC_ALL: u32 = 0x1000_0000;
    const MAXIMUM_ALLOWED: u32 = 0x0200_0000;
    if desired & (GENERIC_ALL | MAXIMUM_ALLOWED) != 0 {
        return SHARE_READ | SHARE_WRITE | SHARE_DELETE;
    }
    let mut a = 0;
    // READ_DATA, EXECUTE, GENERIC_READ, GENERIC_EXECUTE
    if desired & (0x1 | 0x20 | 0x8000_0000 | 0x2000_0000) != 0 {
        a |= SHARE_READ;
    }
    // WRITE_DATA, APPEND_DATA, GENERIC_WRITE
    if desired & (0x2 | 0x4 | 0x4000_0000) != 0 {
        a |= SHARE_WRITE;
    }
    if desired & 0x1_0000 != 0 {
        a |= SHARE_DELETE;
    }
    a
}

/// Opens `path` as `opts` says, if it is a regular file, without ever
/// blocking: `O_NONBLOCK`, so that a FIFO put in the file's place since
/// it was looked at cannot hold the worker in open(2) until a peer opens
/// its other end (an independent probe froze the server with one CREATE
/// of a FIFO). Anything but a regular file is refused with
/// `STATUS_ACCESS_DENIED`; a regular file gets `O_NONBLOCK` cleared.
fn open_regular(opts: &mut OpenOptions, path: &Path) -> Result<File, u32> {
    let f = opts
        .custom_flags(OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| {
            // ENXIO: a FIFO opened for writing with no reader.
            if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) {
                status::ACCESS_DENIED
            } else {
                io_status(&e)
            }
        })?;
    let md = f.metadata().map_err(|e| io_status(&e))?;
    if !md.is_file() {
        return Err(status::ACCESS_DENIED);
    }
    let flags = rustix::fs::fcntl_getfl(&f).map_err(|e| io_status(&e.into()))?;
    rustix::fs::fcntl_setfl(&f, flags - OFlags::NONBLOCK).map_err(|e| io_status(&e.into()))?;
    Ok(f)
}

/// CreateAction values.
const OPENED: u32 = 1;
const CREATED: u32 = 2;
const OVERWRITTEN: u32 = 3;

impl Connection {
    pub(super) fn create(&mut self, r: &CreateRequest) -> Outcome {
        let (session, tree) = self.current;
        if self.opens.values().filter(|o| o.session == session).count() >= self.share.max_open {
            return Err(status::TOO_MANY_OPENED_FILES);
        }
        let path = resolve(&self.share.root, &r.name)?;
        let access = data_access(r.desired_access);
        let share_mode = r.share_access & (SHARE_READ | SHARE_WRITE | SHARE_DELETE);
        let uid = self.share.state.uid();
        let existing = fs::metadata(&path).ok();
        // Share modes, checked against every connection's opens of the file
        // (and recorded in the same step), before anything is truncated.
        let mut share_entry = match &existing {
            Some(md) => Some(
                shares::try_open(
                    &self.share.state,
                    (md.dev(), md.ino()),
                    uid,
                    access,
                    share_mode,
                )
                .map_err(|()| status::SHARING_VIOLATION)?,
            ),
            None => None,
        };
        if existing.is_some() && r.options & FILE_DELETE_ON_CLOSE != 0 {
            // MS-FSA 2.1.5.1.2.1: the root and read-only files cannot be
            // deleted (a directory's emptiness is checked on CLOSE).
            check_deletable(&self.share.root, &path, false)?;
        }
        let want_dir = r.options & FILE_DIRECTORY_FILE != 0;
        let writable = r.desired_access & WRITE_ACCESS != 0;
        let (file, action) = match existing {
            Some(_) if r.disposition == FILE_CREATE => return Err(status::OBJECT_NAME_COLLISION),
            Some(md) if md.is_dir() => {
                if r.options & FILE_NON_DIRECTORY_FILE != 0 {
                    return Err(status::FILE_IS_A_DIRECTORY);
                }
                (None, OPENED)
            }
            // A FIFO, socket or device: never opened (see `open_regular`).
            Some(md) if !md.is_file() => return Err(status::ACCESS_DENIED),
            Some(_) if want_dir => return Err(status::NOT_A_DIRECTORY),
            Some(_) => {
                let truncate = !matches!(r.disposition, FILE_OPEN | FILE_OPEN_IF);
                let f = open_regular(
                    OpenOptions::new()
                        .read(true)
                        .write(writable || truncate)
                        .truncate(truncate),
                    &path,
                )?;
                (Some(f), if truncate { OVERWRITTEN } else { OPENED })
            }
            None if matches!(r.disposition, FILE_OPEN | FILE_OVERWRITE) => {
                return Err(status::OBJECT_NAME_NOT_FOUND)
            }
            None if want_dir => {
                fs::create_dir(&path).map_err(|e| io_status(&e))?;
                (None, CREATED)
            }
            None => {
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(|e| io_status(&e))?;
                (Some(f), CREATED)
            }
        };
        let md = fs::metadata(&path).map_err(|e| io_status(&e))?;
        if share_entry.is_none() {
            // Created now: nobody else can have it open yet.
            share_entry = shares::try_open(
                &self.share.state,
                (md.dev(), md.ino()),
                uid,
                access,
                share_mode,
            )
            .ok();
        }
        let kind = if md.is_dir() {
            filter::DIR_NAME
        } else {
            filter::FILE_NAME
        };
        match action {
            CREATED => self.notify(&path, action::ADDED, kind),
            OVERWRITTEN => self.notify(&path, action::MODIFIED, filter::SIZE | filter::LAST_WRITE),
            _ => {}
        }
        let locks = file
            .as_ref()
            .map(|_| self.share.state.locks.get((md.dev(), md.ino())));
        let id = self.next_file;
        self.next_file += 1;
        let file_id = FileId {
            persistent: id,
            volatile: id,
        };
        self.opens.insert(
            id,
            Open {
                session,
                tree,
                data_access: access,
                path,
                name: r.name.clone(),
                writable: file.is_some()
                    && (writable || action == OVERWRITTEN || action == CREATED),
                file,
                access: if writable {
                    super::session::FULL_ACCESS
                } else {
                    r.desired_access
                },
                listing: None,
                delete_on_close: r.options & FILE_DELETE_ON_CLOSE != 0,
                uid,
                locks,
                watch: None,
                _share: share_entry,
            },
        );
        Ok((
            status::SUCCESS,
            Response::Create(CreateResponse {
                oplock: 0,
                create_action: action,
                attrs: attrs(&md),
                file_id,
            }),
        ))
    }

    /// The open named by `fid` (both halves must match what we issued),
    /// if it was opened through the current request's tree connect.
    pub(super) fn open_mut(&mut self, fid: FileId) -> Result<&mut Open, u32> {
        if fid.persistent != fid.volatile {
            return Err(status::FILE_CLOSED);
        }
        let tree = self.current.1;
        self.opens
            .get_mut(&fid.volatile)
            .filter(|o| o.tree == tree)
            .ok_or(status::FILE_CLOSED)
    }

    pub(super) fn close(&mut self, r: &CloseRequest) -> Outcome {
        self.open_mut(r.file_id)?;
        let mut open = self
            .opens
            .remove(&r.file_id.volatile)
            .ok_or(status::FILE_CLOSED)?;
        let mut resp = CloseResponse::default();
        if r.flags & CLOSE_POSTQUERY_ATTRIB != 0 {
            if let Ok(md) = fs::metadata(&open.path) {
                resp.flags = CLOSE_POSTQUERY_ATTRIB;
                resp.attrs = attrs(&md);
            }
        }
        drop(open.file.take());
        if open.delete_on_close {
            let gone = if open.path.is_dir() {
                fs::remove_dir(&open.path)
            } else {
                fs::remove_file(&open.path)
            };
            gone.map_err(|e| io_status(&e))?;
            let kind = if open.locks.is_none() {
                filter::DIR_NAME
            } else {
                filter::FILE_NAME
            };
            self.notify(&open.path, action::REMOVED, kind);
        }
        Ok((status::SUCCESS, Response::Close(resp)))
    }

    pub(super) fn read(&mut self, r: &ReadRequest) -> Outcome {
        let max = self.max_io();
        let open = self.open_mut(r.file_id)?;
        let file = open.file.as_ref().ok_or(status::FILE_IS_A_DIRECTORY)?;
        if open.data_access & SHARE_READ == 0 {
            return Err(status::ACCESS_DENIED);
        }
        if let Some(l) = &open.locks {
            l.check_io(open.uid, r.offset, u64::from(r.length), false)?;
        }
        let mut data = vec![0u8; r.length.min(max) as usize];
        let mut got = 0;
        while got < data.len() {
            match file.read_at(&mut data[got..], r.offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(data_io_status(&e)),
            }
        }
        if got == 0 && !data.is_empty() || (got as u32) < r.minimum_count {
            return Err(status::END_OF_FILE);
        }
        data.truncate(got);
        Ok((
            status::SUCCESS,
            Response::Read(ReadResponse { remaining: 0, data }),
        ))
    }

    pub(super) fn write(&mut self, r: &WriteRequest) -> Outcome {
        let max = self.max_io();
        if r.data.len() > max as usize {
            return Err(status::INVALID_PARAMETER);
        }
        let open = self.open_mut(r.file_id)?;
        if !open.writable {
            return Err(status::ACCESS_DENIED);
        }
        let file = open.file.as_ref().ok_or(status::FILE_IS_A_DIRECTORY)?;
        if let Some(l) = &open.locks {
            l.check_io(open.uid, r.offset, r.data.len() as u64, true)?;
        }
        file.write_all_at(&r.data, r.offset)
            .map_err(|e| data_io_status(&e))?;
        let path = open.path.clone();
        self.notify(&path, action::MODIFIED, filter::SIZE | filter::LAST_WRITE);
        Ok((
            status::SUCCESS,
            Response::Write(WriteResponse {
                count: r.data.len() as u32, // ≤ max_io, checked above
            }),
        ))
    }
}
