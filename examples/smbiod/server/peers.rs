//! Connections per peer IP address: the accept loop admits a connection
//! only while its peer has fewer than [`ShareConfig::max_conns_per_peer`]
//! open, and closes any other at once, so one host opening connections
//! it never uses (half-sent frames, silent openers, each held until
//! [`ShareConfig::frame_deadline`]) cannot use up the descriptors every
//! other client needs.
//!
//! Refusals are logged once per burst: the first refusal of a peer says
//! so, and the burst's end (the peer's next admitted connection, or its
//! last one closing) says how many were refused.
//!
//! [`ShareConfig::max_conns_per_peer`]: super::ShareConfig::max_conns_per_peer
//! [`ShareConfig::frame_deadline`]: super::ShareConfig::frame_deadline

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// One peer's connections.
#[derive(Debug, Default)]
struct Peer {
    /// Connections admitted and not yet ended.
    open: usize,
    /// Connections refused since the burst began (0: no burst).
    refused: u64,
}

/// Open connections by peer address, shared by every listener of a share.
#[derive(Debug, Default)]
pub struct PeerTable {
    peers: Mutex<HashMap<IpAddr, Peer>>,
    /// Connections refused, in all.
    pub refused: AtomicU64,
    /// Bursts of refusals (each logged once).
    pub bursts: AtomicU64,
}

/// An admitted connection's place in its peer's count; dropping it (the
/// connection ended) frees the place.
#[derive(Debug)]
pub struct PeerSlot {
    table: Arc<PeerTable>,
    ip: IpAddr,
}

impl PeerTable {
    fn peers(&self) -> MutexGuard<'_, HashMap<IpAddr, Peer>> {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a connection from `ip` if it has fewer than `limit` open
    /// (a limit of 0 counts as 1); `None` means close it at once.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, limit: usize) -> Option<PeerSlot> {
        let mut peers = self.peers();
        let peer = peers.entry(ip).or_default();
        if peer.open >= limit.max(1) {
            peer.refused += 1;
            self.refused.fetch_add(1, Ordering::Relaxed);
            if peer.refused == 1 {
                self.bursts.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "smbiod server: refusing connections from {ip}: {} open already \
                     (max_conns_per_peer); logged once until it ends",
                    peer.open
                );
            }
            return None;
        }
        end_burst(ip, peer);
        peer.open += 1;
        Some(PeerSlot {
            table: self.clone(),
            ip,
        })
    }

    /// Connections open from `ip` now.
    #[cfg(test)]
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.peers().get(&ip).map_or(0, |p| p.open)
    }
}

/// Logs the end of `peer`'s burst of refusals, if it had one.
fn end_burst(ip: IpAddr, peer: &mut Peer) {
    if peer.refused > 0 {
        eprintln!(
            "smbiod server: refused {} connections from {ip} while it had too many open",
            peer.refused
        );
        peer.refused = 0;
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut peers = self.table.peers();
        if let Some(peer) = peers.get_mut(&self.ip) {
            peer.open -= 1;
            if peer.open == 0 {
                end_burst(self.ip, peer);
                peers.remove(&self.ip);
            }
        }
    }
}
