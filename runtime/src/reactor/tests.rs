//! The reactor's slab rules, driven directly (no runtime).

use std::io::Write;
use std::time::Duration;

use mio::net::UnixStream;
use mio::Interest;

use super::readiness::Direction;
use super::{Reactor, Registered};

fn pair() -> (UnixStream, UnixStream) {
    UnixStream::pair().expect("socketpair")
}

#[test]
fn a_failed_registration_leaves_nothing_behind() {
    let reactor = Reactor::new().unwrap();
    let (mut a, _b) = pair();
    let Registered { key, io: _io, .. } = reactor
        .register(
            &mut a,
            Interest::READABLE,
            crate::reactor::readiness::IoNames::OTHER,
        )
        .unwrap();
    assert_eq!(reactor.sources(), 1);
    // The same fd twice: epoll_ctl says EEXIST, and the slot is rolled back.
    let err = reactor
        .register(
            &mut a,
            Interest::READABLE,
            crate::reactor::readiness::IoNames::OTHER,
        )
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists, "{err}");
    assert_eq!(reactor.sources(), 1);
    reactor.deregister(&mut a, key);
    assert_eq!(reactor.sources(), 0);
}

#[test]
fn a_released_slot_is_reused_only_after_a_turn_and_with_a_new_generation() {
    let reactor = Reactor::new().unwrap();
    let (mut a, _peer_a) = pair();
    let Registered {
        key: key_a,
        io: io_a,
        ..
    } = reactor
        .register(
            &mut a,
            Interest::READABLE,
            crate::reactor::readiness::IoNames::OTHER,
        )
        .unwrap();
    reactor.deregister(&mut a, key_a);
    // Not freed yet: an event collected before the deregistration could
    // still be in flight, so the next source gets another slot.
    let (mut b, _peer_b) = pair();
    let Registered {
        key: key_b,
        io: _io_b,
        ..
    } = reactor
        .register(
            &mut b,
            Interest::READABLE,
            crate::reactor::readiness::IoNames::OTHER,
        )
        .unwrap();
    assert_ne!(key_a, key_b);
    reactor.turn(Some(Duration::ZERO), true);
    // Freed now; the reused slot carries a new generation, so a stale
    // event for the old token cannot match it.
    let (mut c, _peer_c) = pair();
    let Registered {
        key: key_c,
        io: io_c,
        ..
    } = reactor
        .register(
            &mut c,
            Interest::READABLE,
            crate::reactor::readiness::IoNames::OTHER,
        )
        .unwrap();
    assert_eq!(key_c, key_a);
    assert_ne!(io_c.generation(), io_a.generation());
}

#[test]
fn an_event_sets_readiness_and_a_would_block_clears_it() {
    let reactor = Reactor::new().unwrap();
    let (mut a, mut peer) = pair();
    let Registered { key: _key, io, .. } = reactor
        .register(
            &mut a,
            Interest::READABLE,
            crate::reactor::readiness::IoNames::OTHER,
        )
        .unwrap();
    let seen = io
        .ready_event(Direction::Read)
        .expect("optimistic at first");
    io.clear_readiness(seen, Direction::Read);
    assert!(io.ready_event(Direction::Read).is_none());
    peer.write_all(b"x").unwrap();
    reactor.turn(Some(Duration::from_secs(5)), true);
    assert!(
        io.ready_event(Direction::Read).is_some(),
        "the edge was recorded"
    );
}

#[test]
fn shutdown_refuses_registrations_and_closes_queues() {
    let reactor = Reactor::new().unwrap();
    let (mut a, _peer) = pair();
    let Registered { key: _key, io, .. } = reactor
        .register(
            &mut a,
            Interest::READABLE,
            crate::reactor::readiness::IoNames::OTHER,
        )
        .unwrap();
    reactor.shutdown();
    assert!(io.is_shutdown());
    assert!(io.queues_closed());
    let (mut b, _peer_b) = pair();
    assert!(reactor
        .register(
            &mut b,
            Interest::READABLE,
            crate::reactor::readiness::IoNames::OTHER
        )
        .is_err());
}

#[test]
fn a_busy_check_polls_only_while_sources_are_registered() {
    let reactor = Reactor::new().unwrap();
    // No sources: a non-blocking check returns without polling (the
    // pending interrupt is still there for the next blocking poll).
    reactor.unpark();
    assert_eq!(reactor.turn(Some(Duration::ZERO), false), Some(0));
    assert_eq!(reactor.interrupts(), 0);
    reactor.turn(Some(Duration::ZERO), true);
    assert_eq!(reactor.interrupts(), 1);
    // With a source, the same check polls and records its edge.
    let (mut a, mut peer) = pair();
    let Registered { key, io, .. } = reactor
        .register(
            &mut a,
            Interest::READABLE,
            crate::reactor::readiness::IoNames::OTHER,
        )
        .unwrap();
    let seen = io.ready_event(Direction::Read).unwrap();
    io.clear_readiness(seen, Direction::Read);
    peer.write_all(b"x").unwrap();
    assert_eq!(reactor.turn(Some(Duration::ZERO), false), Some(1));
    assert!(io.ready_event(Direction::Read).is_some());
    // Deregistered again: back to skipping.
    reactor.deregister(&mut a, key);
    reactor.unpark();
    assert_eq!(reactor.turn(Some(Duration::ZERO), false), Some(0));
    assert_eq!(reactor.interrupts(), 1);
}

#[test]
fn a_busy_check_with_no_sources_frees_released_slots() {
    // A busy runtime that opens and closes one socket at a time: no source
    // is registered at any check, so no turn polls; the released slots
    // must be freed anyway, or the slab grows by one per socket.
    let reactor = Reactor::new().unwrap();
    for _ in 0..1_000 {
        let (mut a, _peer) = pair();
        let Registered { key, .. } = reactor
            .register(
                &mut a,
                Interest::READABLE,
                crate::reactor::readiness::IoNames::OTHER,
            )
            .unwrap();
        reactor.deregister(&mut a, key);
        assert_eq!(reactor.turn(Some(Duration::ZERO), false), Some(0));
    }
    assert!(
        reactor.slots() <= 1,
        "{} slots for no source",
        reactor.slots()
    );
}

/// A busy thread parks once per batch of I/O, each time with the same
/// next timer: the reactor's timer, still armed for that end, is not
/// armed again (a `timerfd_settime` per park made a current-thread socket
/// ping-pong beside a 300 µs sleep loop 2.3-3.6x slower than tokio's; an
/// independent probe). Each turn here ends at once (an unpark is
/// pending), its timeout what is left until one end 900 µs ahead. A
/// try counts when at least 5 turns fit before that end is 300 µs away
/// (a loaded machine may preempt the loop: up to 10 tries).
#[test]
#[cfg(any(target_os = "linux", target_os = "android"))]
fn a_timer_still_armed_for_the_same_end_is_not_armed_again() {
    use std::time::Instant;
    let reactor = Reactor::new().unwrap();
    for _ in 0..10 {
        let before = reactor.timer_arms();
        let end = Instant::now() + Duration::from_micros(900);
        let mut turns = 0;
        while turns < 50 {
            let left = end.saturating_duration_since(Instant::now());
            if left < Duration::from_micros(300) {
                break;
            }
            reactor.unpark();
            reactor.turn(Some(left), true);
            turns += 1;
        }
        if turns < 5 {
            continue;
        }
        let arms = reactor.timer_arms() - before;
        assert!(
            arms * 2 < turns,
            "armed {arms} times in {turns} turns for one end"
        );
        // Another end arms it again.
        let before = reactor.timer_arms();
        reactor.unpark();
        reactor.turn(Some(Duration::from_micros(100)), true);
        assert_eq!(reactor.timer_arms(), before + 1);
        return;
    }
    panic!("no try fitted 5 turns in 600 µs");
}
