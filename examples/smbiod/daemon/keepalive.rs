//! Liveness: the daemon's keepalive ECHO and the rule that declares a
//! silent connection dead (the kernel's cifs: `cifs_echo_request` every
//! `echo_interval`, and `server_unresponsive` for a server that has said
//! nothing for too long). Unlike cifs, which then reconnects and replays
//! what it can, a dead connection stays dead: every later call fails with
//! `Disconnected`, and the user connects a new client.
//!
//! The daemon sleeps on `smbiod_wait` with a timeout that ends at the next
//! of these events, then calls [`tick`]:
//!
//! - the connection has been **silent** (no frame received) for half the
//!   timeout and no probe is unanswered: queue an ECHO (if a credit is
//!   free; otherwise the requests holding the credits are the probe) and
//!   remember when (`probe`);
//! - a probe is **unanswered** (nothing received since it) for the whole
//!   timeout: declare the connection dead, which fails every caller.
//!
//! Callers enforce the same rule for their own requests (see
//! [`Shared::timed_out`]): the first of them to time out over a silent
//! server kills the connection for all.

use std::time::{Duration, Instant};

use waitq::Clock;

use super::shared::Shared;
use crate::wire::message::Request;

/// What the daemon does after its timed sleep.
#[derive(Debug, PartialEq, Eq)]
pub enum Tick {
    /// Nothing is due.
    Idle,
    /// An ECHO was queued: send it.
    Echo,
    /// The server stopped answering; the text says why.
    Dead(String),
}

/// The keepalive interval: half the timeout.
pub fn interval(timeout: Duration) -> Duration {
    timeout / 2
}

/// How long the daemon may sleep before [`tick`] has work.
pub fn next_in(sh: &Shared) -> Duration {
    let now = sh.clock.now();
    let g = sh.lock();
    let at = if g.proto.dialect == 0 || g.closing || g.dead.is_some() {
        // Before NEGOTIATE, only the NEGOTIATE caller's timeout applies.
        now + interval(sh.timeout)
    } else {
        due(g.last_rx, g.probe, sh.timeout)
    };
    at.saturating_duration_since(now)
}

/// When the next keepalive event is due.
fn due(last_rx: Instant, probe: Option<Instant>, timeout: Duration) -> Instant {
    match probe {
        Some(p) if last_rx < p => p + timeout,
        _ => last_rx + interval(timeout),
    }
}

/// Runs the keepalive rules once (see the module docs).
pub fn tick(sh: &Shared) -> Tick {
    let now = sh.clock.now();
    let mut g = sh.lock();
    if g.proto.dialect == 0 || g.closing || g.dead.is_some() {
        return Tick::Idle;
    }
    if now < due(g.last_rx, g.probe, sh.timeout) {
        return Tick::Idle;
    }
    match g.probe {
        Some(p) if g.last_rx < p => Tick::Dead(format!(
            "the server stopped answering: no reply to a keepalive in {:?}",
            sh.timeout
        )),
        _ => {
            g.probe = Some(now);
            if g.available() == 0 {
                return Tick::Idle;
            }
            g.deferred.push_back((Request::Echo, 0));
            g.acct.echoes += 1;
            Tick::Echo
        }
    }
}

#[cfg(test)]
mod tests {
    use super::due;
    use std::time::{Duration, Instant};

    #[test]
    fn the_next_event_is_an_echo_when_answered_and_death_when_not() {
        let t = Duration::from_secs(30);
        let t0 = Instant::now();
        // silent since t0, no probe: an ECHO at half the timeout
        assert_eq!(due(t0, None, t), t0 + t / 2);
        // a probe at t0 + 15 s, unanswered: declared dead at t0 + 45 s
        let p = t0 + t / 2;
        assert_eq!(due(t0, Some(p), t), p + t);
        // answered at t0 + 16 s: the next ECHO 15 s after that answer
        let rx = p + Duration::from_secs(1);
        assert_eq!(due(rx, Some(p), t), rx + t / 2);
    }
}
