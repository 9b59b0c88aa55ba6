//! Share modes, server-wide (MS-FSA 2.1.5.1.2.1): every open of a file, on
//! any connection, with the access it uses and the access it shares; a
//! CREATE that conflicts with any of them gets `STATUS_SHARING_VIOLATION`,
//! as on Samba and Windows (an earlier version checked one connection's
//! opens only).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::ServerState;

/// One open's share-mode record: its access and what it shares.
#[derive(Debug, Clone, Copy)]
struct Record {
    uid: u64,
    access: u32,
    share: u32,
}

/// Every open's record, by file (device, inode).
#[derive(Debug, Default)]
pub struct ShareTable {
    files: Mutex<HashMap<(u64, u64), Vec<Record>>>,
}

/// An open's place in the [`ShareTable`]; dropping it (however the open
/// goes: CLOSE, tree disconnect, logoff, a lost connection) takes it out.
#[derive(Debug)]
pub struct ShareEntry {
    state: Arc<ServerState>,
    key: (u64, u64),
    uid: u64,
}

/// Two opens conflict when either uses a kind of access the other does not
/// share (MS-FSA 2.1.5.1.2.1).
pub(super) fn conflicts(a_access: u32, a_share: u32, b_access: u32, b_share: u32) -> bool {
    a_access & !b_share != 0 || b_access & !a_share != 0
}

impl ShareTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(u64, u64), Vec<Record>>> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Records open `uid` of file `key` with `access`/`share`, unless it
/// conflicts with an open of that file on any connection: the check and
/// the record are one step, so two connections cannot both pass.
pub(super) fn try_open(
    state: &Arc<ServerState>,
    key: (u64, u64),
    uid: u64,
    access: u32,
    share: u32,
) -> Result<ShareEntry, ()> {
    let mut files = state.shares.lock();
    let opens = files.entry(key).or_default();
    if opens
        .iter()
        .any(|o| conflicts(o.access, o.share, access, share))
    {
        if opens.is_empty() {
            files.remove(&key);
        }
        return Err(());
    }
    opens.push(Record { uid, access, share });
    Ok(ShareEntry {
        state: state.clone(),
        key,
        uid,
    })
}

impl Drop for ShareEntry {
    fn drop(&mut self) {
        let mut files = self.state.shares.lock();
        if let Some(opens) = files.get_mut(&self.key) {
            opens.retain(|o| o.uid != self.uid);
            if opens.is_empty() {
                files.remove(&self.key);
            }
        }
    }
}
