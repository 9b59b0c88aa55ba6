//! Tests of the timing wheel, including a randomised comparison against a
//! `BTreeMap` model.

use std::collections::{BTreeSet, HashMap};

use super::{
    level_for, Node, Status, TimerKey, Wheel, COMPACT_AFTER, LEVELS, MAX_SPAN, NIL, SLOTS,
};

/// Polls `wheel` to `now`, collecting the payloads that fired.
fn poll(wheel: &mut Wheel<u64>, now: u64) -> Vec<u64> {
    let mut fired = Vec::new();
    wheel.poll(now, |value| fired.push(*value));
    fired
}

/// Polls `wheel` to `now` and removes what fired through `keys` (which
/// must name every entry that can fire): the payloads, in firing order.
fn poll_and_remove(wheel: &mut Wheel<u64>, now: u64, keys: Vec<TimerKey>) -> Vec<u64> {
    let fired = poll(wheel, now);
    for key in keys {
        if wheel.status(&key) == Status::Fired {
            let value = wheel.remove(key);
            assert!(fired.contains(&value), "{value} fired unreported");
        }
    }
    fired
}

/// Checks the wheel's internal structure: every node is linked exactly once,
/// in the list of the level and slot its deadline belongs to relative to the
/// clock, lists are consistently doubly linked, and `occupied` masks agree.
fn assert_invariants<T>(wheel: &Wheel<T>) {
    let mut seen = 0;
    for (level, lvl) in wheel.levels.iter().enumerate() {
        for slot in 0..SLOTS {
            let list = lvl.slots[slot];
            let bit = lvl.occupied & (1 << slot) != 0;
            assert_eq!(bit, list.head != NIL, "occupied bit of {level}/{slot}");
            assert_eq!(list.head != NIL, list.tail != NIL);
            let mut prev = NIL;
            let mut cursor = list.head;
            while cursor != NIL {
                let index = cursor;
                let node = &wheel.nodes[index as usize];
                assert_eq!(node.prev, prev, "prev link");
                assert_eq!(node.place.level(), Some(level));
                assert!(node.deadline > wheel.elapsed, "stale node left pending");
                assert!(node.deadline - wheel.elapsed <= MAX_SPAN);
                assert_eq!(
                    level_for(wheel.elapsed, node.deadline),
                    level,
                    "node at wrong level"
                );
                assert_eq!(super::slot_for(node.deadline, level), slot);
                seen += 1;
                prev = index;
                cursor = node.next;
            }
            assert_eq!(list.tail, prev, "tail link");
        }
    }
    assert_eq!(seen, wheel.len(), "every node linked exactly once");
    let unlinked = wheel
        .nodes
        .iter()
        .filter(|(_, node)| node.place.level().is_none())
        .count();
    assert_eq!(
        seen + unlinked,
        wheel.entries(),
        "every entry linked, fired or closed"
    );
}

#[test]
fn a_node_is_40_bytes_in_the_slab() {
    // The waker payload, the deadline, two links and the place, whose
    // spare values carry the tag of the slab's entry (slab 0.4 stores this
    // enum): 40 bytes, where a generation number and a separate tag made
    // 56 (the serial number a compaction needs sits in its padding). And an
    // `Option<TimerKey>` (index and serial) is as small as the key.
    #[allow(dead_code)]
    enum SlabEntry<T> {
        Vacant(usize),
        Occupied(T),
    }
    type TimerNode = Node<Option<std::task::Waker>>;
    assert_eq!(std::mem::size_of::<TimerNode>(), 40);
    assert_eq!(std::mem::size_of::<SlabEntry<TimerNode>>(), 40);
    assert_eq!(std::mem::size_of::<Option<TimerKey>>(), 8);
}

/// A fixed-seed xorshift64 generator (no `rand` dependency).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A value in `1..=2^bits`.
    fn delta(&mut self, bits: u32) -> u64 {
        if bits >= 64 {
            self.next().max(1)
        } else {
            1 + self.next() % (1u64 << bits)
        }
    }
}

/// The deltas at which level boundaries and far deadlines lie.
fn boundary_deltas() -> Vec<u64> {
    let mut deltas = vec![1, 2, 5, 62, 63, 64, 65, 127, 128, 4095, 4096, 4097];
    for k in 1..=8u32 {
        let p = 1u64 << (6 * k);
        deltas.extend([p - 1, p, p + 1]);
    }
    deltas.extend([1 << 47, (1 << 47) + 12345, MAX_SPAN - 1, MAX_SPAN]);
    deltas.retain(|&d| d <= MAX_SPAN);
    deltas.sort_unstable();
    deltas.dedup();
    deltas
}

#[test]
fn new_wheel_is_empty() {
    let mut wheel = Wheel::<u64>::new();
    assert_eq!(wheel.elapsed(), 0);
    assert_eq!(wheel.len(), 0);
    assert!(wheel.is_empty());
    assert_eq!(wheel.next_expiration(), None);
    assert!(poll(&mut wheel, 100).is_empty());
    assert_eq!(wheel.elapsed(), 100);
    // Polling backwards is a no-op.
    assert!(poll(&mut wheel, 50).is_empty());
    assert_eq!(wheel.elapsed(), 100);
    assert!(format!("{wheel:?}").contains("elapsed: 100"));
}

#[test]
fn fires_exactly_at_deadline_at_every_boundary() {
    let bases = [0, 1, 1000, 4095, 123_456_789, (1 << 48) - 7, (1 << 50) + 3];
    for base in bases {
        for delta in boundary_deltas() {
            let deadline = base + delta;
            let mut wheel = Wheel::new();
            assert!(poll(&mut wheel, base).is_empty());
            let key = wheel.insert(deadline, deadline).unwrap();
            assert_eq!(wheel.len(), 1);
            assert_invariants(&wheel);

            let next = wheel.next_expiration().unwrap();
            assert!(
                next > base && next <= deadline,
                "base {base} delta {delta}: next {next}"
            );
            if deadline >> 6 == base >> 6 {
                assert_eq!(next, deadline, "level-0 deadline must be exact");
            }

            assert!(
                poll(&mut wheel, deadline - 1).is_empty(),
                "fired early: {base}+{delta}"
            );
            assert_eq!(wheel.elapsed(), deadline - 1);
            assert_eq!(wheel.len(), 1);
            assert_invariants(&wheel);
            // One tick before, the deadline is the very next tick: exact.
            assert_eq!(wheel.next_expiration(), Some(deadline));

            assert_eq!(poll(&mut wheel, deadline), vec![deadline]);
            assert_eq!(wheel.elapsed(), deadline);
            assert!(wheel.is_empty());
            assert_eq!(wheel.next_expiration(), None);
            assert_eq!(wheel.status(&key), Status::Fired);
            assert_eq!(wheel.remove(key), deadline);
            assert_eq!(wheel.entries(), 0);
        }
    }
}

#[test]
fn driver_loop_reaches_deadline_through_next_expiration() {
    // A driver that sleeps until `next_expiration` and polls there fires the
    // entry exactly at its deadline, after at most one step per level.
    for base in [0, 777, (1 << 48) - 3] {
        for delta in boundary_deltas() {
            let deadline = base + delta;
            let mut wheel = Wheel::new();
            poll(&mut wheel, base);
            wheel.insert(deadline, 7).unwrap();
            let mut steps = 0;
            loop {
                let next = wheel.next_expiration().expect("entry still pending");
                assert!(next > wheel.elapsed() && next <= deadline);
                let fired = poll(&mut wheel, next);
                steps += 1;
                if next == deadline {
                    assert_eq!(fired, vec![7]);
                    break;
                }
                assert!(fired.is_empty(), "fired before its deadline");
            }
            assert!(steps <= LEVELS + 1, "{steps} steps for delta {delta}");
            assert_eq!(wheel.next_expiration(), None);
        }
    }
}

/// A lone timer is one wake away, whatever its level: `next_wake` is its
/// deadline (waking at each cascade's start took up to a step per level:
/// a 200 µs `Interval` woke its thread twice per tick).
#[test]
fn a_lone_timer_is_one_wake_away() {
    for base in [0, 777, (1 << 48) - 3] {
        for delta in boundary_deltas() {
            let deadline = base + delta;
            let mut wheel = Wheel::new();
            poll(&mut wheel, base);
            wheel.insert(deadline, 7).unwrap();
            let clamped = deadline.min(base + MAX_SPAN);
            assert_eq!(wheel.next_wake(), Some(clamped), "delta {delta}");
            assert_eq!(poll(&mut wheel, clamped), vec![7]);
            assert_eq!(wheel.next_wake(), None);
        }
    }
}

/// `next_wake` is never past the earliest pending deadline nor before
/// `next_expiration`, with short and long higher-level slots alike (a slot
/// longer than the scan wakes at its start): random entries, polled to
/// each wake until none is left, fire in deadline order and never early.
#[test]
fn next_wake_is_between_the_next_expiration_and_the_earliest_deadline() {
    let mut rng = XorShift(7);
    for round in 0..200 {
        let mut wheel = Wheel::new();
        poll(&mut wheel, rng.delta(20));
        let n = 1 + (round % 20) as usize;
        let mut pending: Vec<u64> = (0..n)
            .map(|_| wheel.elapsed() + 1 + rng.below(1 << (6 + round % 12)))
            .collect();
        for &deadline in &pending {
            wheel.insert(deadline, deadline).unwrap();
        }
        pending.sort_unstable();
        let mut steps = 0;
        while let Some(wake) = wheel.next_wake() {
            let earliest = pending[0];
            assert!(wake <= earliest, "wake {wake} past the deadline {earliest}");
            assert!(wake >= wheel.next_expiration().unwrap());
            let fired = poll(&mut wheel, wake);
            assert!(fired.iter().all(|&d| d <= wake), "{fired:?} early");
            pending.drain(..fired.len());
            steps += 1;
            assert!(steps <= 10 * n + 10, "no progress");
        }
        assert!(pending.is_empty(), "{pending:?} never fired");
    }
}

#[test]
fn past_deadline_is_rejected() {
    let mut wheel = Wheel::new();
    assert_eq!(wheel.insert(0, 1), Err(1));
    assert!(poll(&mut wheel, 10).is_empty());
    assert_eq!(wheel.insert(10, 2), Err(2));
    assert_eq!(wheel.insert(5, 3), Err(3));
    assert_eq!(wheel.insert(0, 4), Err(4));
    assert!(wheel.is_empty());
    assert_eq!(wheel.next_expiration(), None);
    let key = wheel.insert(11, 5).unwrap();
    assert_eq!(wheel.len(), 1);
    assert_eq!(wheel.next_expiration(), Some(11));
    assert_eq!(poll(&mut wheel, 11), vec![5]);
    assert_eq!(wheel.insert(11, 6), Err(6));
    assert_eq!(wheel.remove(key), 5);
}

#[test]
fn remove_returns_payload_and_cancels() {
    let mut wheel = Wheel::new();
    let a = wheel.insert(100, 1).unwrap();
    let b = wheel.insert(5000, 2).unwrap();
    assert_eq!(wheel.len(), 2);
    assert_eq!(wheel.remove(a), 1);
    assert_eq!((wheel.len(), wheel.entries()), (1, 1));
    assert_invariants(&wheel);
    assert_eq!(wheel.remove(b), 2);
    assert!(wheel.is_empty());
    assert_eq!(wheel.next_expiration(), None);
    assert!(
        poll(&mut wheel, 1 << 40).is_empty(),
        "removed entries must not fire"
    );
}

#[test]
fn a_fired_entry_stays_until_its_key_removes_it() {
    let mut wheel = Wheel::new();
    let a = wheel.insert(3, 1).unwrap();
    let b = wheel.insert(10, 2).unwrap();
    assert_eq!(poll(&mut wheel, 3), vec![1]);
    assert_eq!(wheel.status(&a), Status::Fired);
    assert_eq!(wheel.status(&b), Status::Pending);
    assert_eq!((wheel.len(), wheel.entries()), (1, 2));
    assert_invariants(&wheel);
    // Its slot is not reused while the key is held.
    let c = wheel.insert(20, 3).unwrap();
    assert!(a.index() != c.index() && b.index() != c.index());
    assert_eq!(*wheel.get_mut(&a), 1);
    assert_eq!(wheel.remove(a), 1);
    assert_eq!(poll(&mut wheel, 100), vec![2, 3]);
    assert_eq!(wheel.remove(c), 3);
    assert_eq!(wheel.remove(b), 2);
    assert_eq!(wheel.entries(), 0);
}

#[test]
fn a_removed_slot_goes_to_the_next_key() {
    let mut wheel = Wheel::new();
    let a = wheel.insert(50, 1).unwrap();
    let index = a.index();
    assert_eq!(wheel.remove(a), 1);
    let b = wheel.insert(50, 2).unwrap();
    assert_eq!(b.index(), index, "slab slot reused");
    assert_eq!(poll(&mut wheel, 50), vec![2]);
    assert_eq!(wheel.remove(b), 2);
}

#[test]
fn remove_head_middle_and_tail_of_one_slot() {
    for victims in [
        &[0usize][..],
        &[2],
        &[4],
        &[1, 3],
        &[0, 4],
        &[0, 1, 2, 3, 4],
    ] {
        let mut wheel = Wheel::new();
        // All in one level-0 slot, then all in one level-2 slot.
        for deadline in [40u64, 9000] {
            let mut keys: Vec<_> = (0..5u64)
                .map(|i| wheel.insert(deadline, deadline + i).ok())
                .collect();
            for &v in victims {
                let key = keys[v].take().unwrap();
                assert_eq!(wheel.remove(key), deadline + v as u64);
            }
            assert_invariants(&wheel);
        }
        let expected: Vec<u64> = [40u64, 9000]
            .iter()
            .flat_map(|&d| {
                (0..5u64)
                    .filter(|i| !victims.contains(&(*i as usize)))
                    .map(move |i| d + i)
            })
            .collect();
        assert_eq!(poll(&mut wheel, 10_000), expected);
        assert!(wheel.is_empty());
    }
}

#[test]
fn fires_in_deadline_order_within_one_poll() {
    let mut wheel = Wheel::new();
    for d in [5, 3, 4] {
        wheel.insert(d, d).unwrap();
    }
    assert_eq!(wheel.next_expiration(), Some(3));
    assert_eq!(poll(&mut wheel, 10), vec![3, 4, 5]);

    // Deadlines spread over every level, inserted in scrambled order.
    let mut wheel = Wheel::new();
    let mut deadlines = boundary_deltas();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for i in (1..deadlines.len()).rev() {
        deadlines.swap(i, rng.below(i as u64 + 1) as usize);
    }
    for &d in &deadlines {
        wheel.insert(d, d).unwrap();
    }
    deadlines.sort_unstable();
    assert_eq!(poll(&mut wheel, MAX_SPAN), deadlines);
}

#[test]
fn equal_deadlines_fire_in_insertion_order() {
    let mut wheel = Wheel::new();
    for i in 0..10 {
        wheel.insert(20, i).unwrap();
    }
    assert_eq!(poll(&mut wheel, 20), (0..10).collect::<Vec<_>>());

    // One inserted far ahead (high level, cascaded later), others inserted
    // once the clock is close (straight into level 0).
    let mut wheel = Wheel::new();
    wheel.insert(300_000, 1).unwrap();
    wheel.insert(300_001, 10).unwrap();
    poll(&mut wheel, 290_000);
    wheel.insert(300_000, 2).unwrap();
    poll(&mut wheel, 299_990);
    wheel.insert(300_000, 3).unwrap();
    wheel.insert(299_999, 0).unwrap();
    assert_eq!(poll(&mut wheel, 400_000), vec![0, 1, 2, 3, 10]);
}

#[test]
fn cancel_storm_leaves_wheel_empty() {
    const N: u64 = 65_536;
    let mut wheel = Wheel::new();
    let mut rng = XorShift(42);
    poll(&mut wheel, 1_000_000);
    // Read timeouts: mostly the same 30 s delay a few microseconds apart, and
    // some spread over every level.
    let mut keys: Vec<_> = (0..N)
        .map(|i| {
            let tick = if i % 4 == 0 {
                wheel.elapsed() + rng.delta(48)
            } else {
                wheel.elapsed() + 30_000_000 + i
            };
            wheel.insert(tick, i).unwrap()
        })
        .collect();
    assert_eq!(wheel.len(), N as usize);
    assert_invariants(&wheel);
    for i in (1..keys.len()).rev() {
        keys.swap(i, rng.below(i as u64 + 1) as usize);
    }
    for key in keys {
        wheel.remove(key);
    }
    assert_eq!((wheel.len(), wheel.entries()), (0, 0));
    assert!(wheel.is_empty());
    assert_eq!(wheel.next_expiration(), None);
    assert!(wheel.levels.iter().all(|lvl| lvl.occupied == 0));
    assert_invariants(&wheel);
    assert!(poll(&mut wheel, u64::MAX).is_empty());
}

#[test]
fn far_deadlines_are_clamped() {
    let mut wheel = Wheel::new();
    wheel.insert(u64::MAX, 1).unwrap();
    wheel.insert(MAX_SPAN, 2).unwrap();
    wheel.insert(u64::MAX, 3).unwrap();
    assert_invariants(&wheel);
    let next = wheel.next_expiration().unwrap();
    assert!(next > 0 && next <= MAX_SPAN);
    assert!(poll(&mut wheel, MAX_SPAN - 1).is_empty());
    assert_eq!(wheel.next_expiration(), Some(MAX_SPAN));
    // All three are due at the last representable tick; insertion order.
    assert_eq!(poll(&mut wheel, MAX_SPAN), vec![1, 2, 3]);

    // Clamping is relative to the clock, across a top-level rotation.
    let start = (1 << 48) - 1000;
    let mut wheel = Wheel::new();
    poll(&mut wheel, start);
    wheel.insert(u64::MAX, 1).unwrap();
    wheel.insert(start + MAX_SPAN - 1, 0).unwrap();
    assert_invariants(&wheel);
    assert!(wheel.next_expiration().unwrap() < start + MAX_SPAN);
    assert!(poll(&mut wheel, start + MAX_SPAN - 2).is_empty());
    assert_eq!(poll(&mut wheel, start + MAX_SPAN - 1), vec![0]);
    assert_eq!(wheel.next_expiration(), Some(start + MAX_SPAN));
    assert_eq!(poll(&mut wheel, start + MAX_SPAN), vec![1]);

    // A clamped entry that wraps into the clock's own top-level slot (next
    // rotation) must not hide an entry in a later top-level slot of this one.
    let top = 1u64 << 42;
    let start = 5 * top + 7;
    let mut wheel = Wheel::new();
    poll(&mut wheel, start);
    wheel.insert(u64::MAX, 2).unwrap();
    wheel.insert(6 * top + 3, 1).unwrap();
    assert_invariants(&wheel);
    let next = wheel.next_expiration().unwrap();
    assert!(next > start && next <= 6 * top + 3, "next {next}");
    assert!(poll(&mut wheel, 6 * top + 2).is_empty());
    assert_eq!(poll(&mut wheel, 6 * top + 3), vec![1]);
    assert!(wheel.next_expiration().unwrap() <= start + MAX_SPAN);
    assert!(poll(&mut wheel, start + MAX_SPAN - 1).is_empty());
    assert_eq!(poll(&mut wheel, start + MAX_SPAN), vec![2]);
}

#[test]
fn clock_near_u64_max() {
    let mut wheel = Wheel::new();
    poll(&mut wheel, u64::MAX - 100);
    wheel.insert(u64::MAX, 3).unwrap();
    wheel.insert(u64::MAX - 50, 2).unwrap();
    wheel.insert(u64::MAX - 99, 1).unwrap();
    assert_eq!(wheel.next_expiration(), Some(u64::MAX - 99));
    assert_invariants(&wheel);
    assert_eq!(poll(&mut wheel, u64::MAX), vec![1, 2, 3]);
    assert_eq!(wheel.elapsed(), u64::MAX);
    assert_eq!(wheel.insert(u64::MAX, 4), Err(4));
    assert!(poll(&mut wheel, u64::MAX).is_empty());
}

/// The model's pending entries, pickable at random: (key, seq, deadline).
#[derive(Default)]
struct Live {
    items: Vec<(TimerKey, u64, u64)>,
    position: HashMap<u64, usize>,
}

impl Live {
    fn push(&mut self, key: TimerKey, seq: u64, deadline: u64) {
        self.position.insert(seq, self.items.len());
        self.items.push((key, seq, deadline));
    }

    fn remove(&mut self, seq: u64) -> (TimerKey, u64, u64) {
        let i = self.position.remove(&seq).expect("seq is live");
        let item = self.items.swap_remove(i);
        if let Some(moved) = self.items.get(i) {
            self.position.insert(moved.1, i);
        }
        item
    }
}

/// Random operations against a `BTreeMap<(deadline, seq), key>` model.
#[test]
fn model() {
    const OPS: usize = 100_000;
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut wheel = Wheel::new();
    // Pending entries, in firing order: (deadline, insertion seq).
    let mut model: BTreeSet<(u64, u64)> = BTreeSet::new();
    let mut live = Live::default();
    // Keys of entries fired and not yet removed, with their seq.
    let mut fired_keys: Vec<(TimerKey, u64)> = Vec::new();
    let mut seq = 0u64;
    let (mut fired_total, mut fired_removes, mut live_removes) = (0usize, 0usize, 0usize);
    let mut max_fired = 0;

    for op in 0..OPS {
        let elapsed = wheel.elapsed();
        // Alternate phases: one that fills the wheel (inserts and short polls
        // only), one that mixes everything, big jumps included.
        let filling = (op / 5_000) % 2 == 0;
        let choice = if filling {
            rng.below(70)
        } else {
            rng.below(100)
        };
        if choice < 45 {
            // Insert, at a delta from every level (or past / far beyond).
            let tick = match rng.below(50) {
                0 => elapsed - rng.below(elapsed.min(1000) + 1),
                1 => u64::MAX,
                bits => elapsed.saturating_add(rng.delta(bits as u32 - 1)),
            };
            seq += 1;
            match wheel.insert(tick, seq) {
                Err(v) => {
                    assert!(tick <= elapsed, "rejected a future tick");
                    assert_eq!(v, seq);
                }
                Ok(key) => {
                    assert!(tick > elapsed, "accepted a past tick");
                    let deadline = tick.min(elapsed.saturating_add(MAX_SPAN));
                    model.insert((deadline, seq));
                    live.push(key, seq, deadline);
                }
            }
        } else if choice < 60 && !filling {
            // Remove a random pending entry.
            if !live.items.is_empty() {
                let s = live.items[rng.below(live.items.len() as u64) as usize].1;
                let (key, s, deadline) = live.remove(s);
                assert_eq!(wheel.status(&key), Status::Pending);
                assert_eq!(wheel.remove(key), s);
                assert!(model.remove(&(deadline, s)));
                live_removes += 1;
            }
        } else if choice < 65 {
            // Remove a fired entry (its key's holder comes back for it).
            if !fired_keys.is_empty() {
                let i = rng.below(fired_keys.len() as u64) as usize;
                let (key, s) = fired_keys.swap_remove(i);
                assert_eq!(wheel.status(&key), Status::Fired);
                assert_eq!(*wheel.get_mut(&key), s);
                assert_eq!(wheel.remove(key), s);
                fired_removes += 1;
            }
        } else {
            // Poll: to next_expiration, just before it, a little, or a lot.
            let next = wheel.next_expiration();
            let small_bits = rng.below(21) as u32;
            let big_bits = 20 + rng.below(29) as u32;
            let pick = if filling {
                12 + rng.below(7)
            } else {
                rng.below(20)
            };
            let now = match (pick, next) {
                (0..=7, Some(t)) => t,
                (8..=11, Some(t)) => t - 1,
                (19, _) => elapsed.saturating_add(rng.delta(big_bits)),
                _ => elapsed.saturating_add(rng.delta(small_bits)),
            };
            let fired = poll(&mut wheel, now);
            let mut expected = Vec::new();
            while let Some(&(deadline, s)) = model.first() {
                if deadline > now {
                    break;
                }
                model.pop_first();
                let (key, _, _) = live.remove(s);
                fired_keys.push((key, s));
                expected.push(s);
            }
            assert_eq!(fired, expected, "op {op}: poll {elapsed} -> {now}");
            if next.is_some_and(|t| now < t) {
                assert!(fired.is_empty(), "fired before next_expiration");
            }
            fired_total += fired.len();
            max_fired = max_fired.max(fired.len());
            assert_eq!(wheel.elapsed(), now.max(elapsed));
        }

        assert_eq!(wheel.len(), model.len());
        assert_eq!(wheel.entries(), model.len() + fired_keys.len());
        let elapsed = wheel.elapsed();
        match (wheel.next_expiration(), model.first()) {
            (None, None) => {}
            (Some(t), Some(&(min, _))) => {
                assert!(t > elapsed, "next_expiration {t} not after clock {elapsed}");
                assert!(
                    t <= min,
                    "next_expiration {t} after earliest deadline {min}"
                );
                if min >> 6 == elapsed >> 6 {
                    assert_eq!(t, min, "level-0 earliest deadline must be exact");
                }
            }
            (t, m) => panic!("next_expiration {t:?} but model earliest {m:?}"),
        }
        if op % 1000 == 0 {
            assert_invariants(&wheel);
        }
    }
    assert_invariants(&wheel);
    // The run must have exercised every path.
    println!(
        "fired {fired_total} (max {max_fired} in one poll), removed {live_removes}, \
         fired removed {fired_removes}, pending {}, clock {}",
        wheel.len(),
        wheel.elapsed()
    );
    assert!(fired_total > 10_000, "fired {fired_total}");
    assert!(max_fired > 100, "no big poll");
    assert!(
        live_removes > 5_000 && fired_removes > 1_000,
        "{live_removes} / {fired_removes}"
    );
    assert!(
        wheel.elapsed() > 1 << 48,
        "clock never crossed a top-level rotation"
    );
}

/// Bursts of timers that mostly go, leaving random survivors spread over
/// the slab, so the slab compacts again and again, entries moving several
/// times before their keys come back; between bursts, resets, polls and
/// removals through every key. Checked against a map of what each key
/// holds, and the wheel's invariants.
#[test]
fn compaction_keeps_every_key_right() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut wheel = Wheel::new();
    // seq -> (key, deadline, fired)
    let mut live: HashMap<u64, (TimerKey, u64, bool)> = HashMap::new();
    let mut seq = 0u64;
    let (mut compactions, mut max_moved) = (0, 0);
    for round in 0..60 {
        let burst = 1 + rng.below(20_000);
        let now = wheel.elapsed();
        for _ in 0..burst {
            seq += 1;
            let deadline = now + 1 + rng.below(1 << 30);
            let key = wheel.insert(deadline, seq).unwrap();
            live.insert(seq, (key, deadline, false));
        }
        // Most go, in random order; a few percent survive.
        let mut seqs: Vec<u64> = live.keys().copied().collect();
        seqs.sort_unstable();
        for s in seqs {
            if rng.below(100) < 97 {
                let (key, _, _) = live.remove(&s).unwrap();
                assert_eq!(wheel.remove(key), s);
                max_moved = max_moved.max(wheel.moved.len());
            }
        }
        assert_invariants(&wheel);
        // Every surviving key still names its entry.
        for (s, (key, deadline, fired)) in &mut live {
            assert_eq!(*wheel.get_mut(key), *s);
            let status = if *fired {
                Status::Fired
            } else {
                Status::Pending
            };
            assert_eq!(wheel.status(key), status);
            if !*fired && rng.below(4) == 0 {
                *deadline = wheel.elapsed() + 1 + rng.below(1 << 30);
                assert!(wheel.reset(key, *deadline));
            }
        }
        assert_invariants(&wheel);
        // Time passes (past the compaction's wait): what is due fires.
        let capacity = wheel.capacity();
        let to = wheel.elapsed() + COMPACT_AFTER + rng.below(1 << 29);
        let fired = poll(&mut wheel, to);
        if wheel.capacity() < capacity / 2 && !wheel.moved.is_empty() {
            compactions += 1;
        }
        max_moved = max_moved.max(wheel.moved.len());
        assert!(
            wheel.capacity() <= (4 * wheel.entries()).max(64),
            "round {round}: {} slots for {} entries",
            wheel.capacity(),
            wheel.entries()
        );
        let mut due: Vec<(u64, u64)> = live
            .iter()
            .filter(|(_, (_, deadline, fired))| !fired && *deadline <= to)
            .map(|(s, (_, deadline, _))| (*deadline, *s))
            .collect();
        due.sort_unstable();
        let mut fired_sorted = fired.clone();
        fired_sorted.sort_unstable();
        let mut due_seqs: Vec<u64> = due.iter().map(|&(_, s)| s).collect();
        due_seqs.sort_unstable();
        assert_eq!(fired_sorted, due_seqs, "round {round}: what fired");
        for s in fired {
            live.get_mut(&s).unwrap().2 = true;
        }
        assert_invariants(&wheel);
    }
    for (s, (key, _, _)) in live.drain() {
        assert_eq!(wheel.remove(key), s);
    }
    assert!(wheel.moved.is_empty(), "moved entries outlived their keys");
    assert!(wheel.capacity() <= 64);
    assert!(compactions > 10, "{compactions} compactions");
    assert!(
        max_moved > 100,
        "at most {max_moved} moved entries out at once"
    );
}

#[test]
fn slab_gives_memory_back_after_mass_cancel() {
    const N: u64 = 10_000;
    let mut wheel = Wheel::new();
    let keys: Vec<_> = (0..N)
        .map(|i| wheel.insert(1_000 + i, i).unwrap())
        .collect();
    assert!(wheel.capacity() >= N as usize);
    // Every timer but the first (lowest slot) is cancelled: the vacant tail goes.
    let mut keys = keys.into_iter();
    let first = keys.next().unwrap();
    for key in keys {
        wheel.remove(key);
    }
    assert_eq!(wheel.len(), 1);
    assert!(wheel.capacity() <= 64, "capacity {}", wheel.capacity());
    assert_invariants(&wheel);
    assert_eq!(wheel.remove(first), 0);
    assert!(wheel.capacity() <= 64, "capacity {}", wheel.capacity());
    // Fired timers give it back too, once their keys remove them.
    let keys: Vec<_> = (0..N)
        .map(|i| wheel.insert(2_000_000 + i, i).unwrap())
        .collect();
    assert_eq!(
        poll_and_remove(&mut wheel, 3_000_000, keys).len(),
        N as usize
    );
    assert!(wheel.capacity() <= 64, "capacity {}", wheel.capacity());
}

#[test]
fn shrinking_keeps_the_keys_of_survivors() {
    let mut wheel = Wheel::new();
    let far = 10 * COMPACT_AFTER;
    let mut keys: Vec<_> = (0..1_000u64)
        .map(|i| wheel.insert(far + i, i).ok())
        .collect();
    // Survivors spread over the slab, the last slot's among them: nothing
    // at the end can go, so the slab compacts once it has stayed sparse
    // for a while of the wheel's clock (an independent audit: one timer
    // left of a million kept 40 MB; tokio's kept its 112 bytes).
    for (i, key) in keys.iter_mut().enumerate() {
        if i % 100 != 0 && i != 999 {
            assert_eq!(wheel.remove(key.take().unwrap()), i as u64);
        }
    }
    assert_invariants(&wheel);
    assert_eq!(wheel.len(), 11);
    assert!(
        wheel.capacity() >= 1_000,
        "cut before the slab stayed sparse"
    );
    wheel.skip_to(COMPACT_AFTER - 1);
    assert!(
        wheel.capacity() >= 1_000,
        "cut before the slab stayed sparse"
    );
    wheel.skip_to(COMPACT_AFTER);
    assert_invariants(&wheel);
    assert!(wheel.capacity() <= 64, "capacity {}", wheel.capacity());
    assert!(!wheel.moved.is_empty(), "nothing was moved");
    // The moved entries' keys still name them, for every operation.
    for (i, key) in keys.iter().enumerate() {
        if let Some(key) = key {
            assert_eq!(wheel.status(key), Status::Pending);
            assert_eq!(*wheel.get_mut(key), i as u64);
        }
    }
    let last = keys[999].as_ref().unwrap();
    let soon = COMPACT_AFTER + 5;
    assert!(wheel.reset(last, soon), "reset a moved entry");
    assert_invariants(&wheel);
    assert_eq!(poll(&mut wheel, soon), [999]);
    assert_eq!(wheel.status(last), Status::Fired);
    // New entries never take a moved entry's serial, even when the
    // serials come round to it.
    let taken = *wheel.moved.keys().next().unwrap();
    wheel.next_serial = taken;
    let after_wrap = wheel.insert(far + 30_000, 7).unwrap();
    assert_ne!(after_wrap.serial, taken, "a serial given twice");
    assert_eq!(wheel.remove(after_wrap), 7);
    let fresh: Vec<_> = (0..200u64)
        .map(|i| wheel.insert(far + 20_000 + i, 10_000 + i).unwrap())
        .collect();
    for (i, key) in fresh.into_iter().enumerate() {
        assert_eq!(wheel.remove(key), 10_000 + i as u64);
    }
    assert_invariants(&wheel);
    for (i, key) in keys.into_iter().enumerate().rev() {
        if let Some(key) = key {
            assert_eq!(wheel.remove(key), i as u64);
            assert_invariants(&wheel);
        }
    }
    assert!(wheel.capacity() <= 64, "capacity {}", wheel.capacity());
    assert!(wheel.moved.is_empty(), "moved entries outlived their keys");
}

/// A million timers and one survivor at the slab's end: the slab shrinks
/// to a handful of slots, and the survivor's key still works.
#[test]
fn one_survivor_at_the_end_lets_the_slab_go() {
    let mut wheel = Wheel::new();
    let mut keys: Vec<_> = (0..100_000u64)
        .map(|i| wheel.insert(10 * COMPACT_AFTER + i, i).unwrap())
        .collect();
    let survivor = keys.pop().unwrap();
    for key in keys {
        wheel.remove(key);
    }
    // A burst whose last timer stays: cut once a second of the clock has
    // passed with the slab that sparse.
    wheel.skip_to(COMPACT_AFTER);
    assert!(wheel.capacity() <= 64, "capacity {}", wheel.capacity());
    assert_eq!(wheel.remove(survivor), 99_999);
    assert!(wheel.moved.is_empty());
}

#[test]
fn reset_moves_an_entry_in_place() {
    let mut wheel = Wheel::new();
    let a = wheel.insert(5_000, 1).unwrap();
    let b = wheel.insert(6_000, 2).unwrap();
    let capacity = wheel.capacity();
    // Later, then earlier than its neighbour; the key stays valid.
    assert!(wheel.reset(&a, 9_000_000));
    assert_invariants(&wheel);
    assert_eq!(poll(&mut wheel, 7_000), vec![2]);
    assert!(wheel.reset(&a, 8_000));
    assert_eq!(wheel.capacity(), capacity);
    assert_invariants(&wheel);
    assert_eq!(poll(&mut wheel, 8_000), vec![1]);
    // A fired entry is not moved, nor one to a past tick.
    assert!(!wheel.reset(&a, 9_000));
    assert_eq!(wheel.status(&a), Status::Fired);
    let c = wheel.insert(9_000, 3).unwrap();
    assert!(!wheel.reset(&c, 8_000));
    assert_eq!((wheel.status(&c), wheel.len()), (Status::Pending, 1));
    assert_invariants(&wheel);
    assert_eq!(wheel.remove(a), 1);
    assert_eq!(wheel.remove(b), 2);
    assert_eq!(wheel.remove(c), 3);
    assert_eq!(wheel.entries(), 0);
}

#[test]
fn close_unlinks_but_keeps_entries() {
    let mut wheel = Wheel::new();
    let a = wheel.insert(100, 1).unwrap();
    let b = wheel.insert(1 << 40, 2).unwrap();
    let fired = wheel.insert(50, 3).unwrap();
    assert_eq!(poll(&mut wheel, 50), vec![3]);
    let mut seen = Vec::new();
    wheel.close(|v| seen.push(*v));
    seen.sort_unstable();
    assert_eq!(seen, vec![1, 2], "a fired entry is not closed");
    assert_eq!(wheel.next_expiration(), None);
    assert!(poll(&mut wheel, u64::MAX).is_empty());
    assert_eq!((wheel.len(), wheel.entries()), (0, 3));
    assert_invariants(&wheel);
    assert_eq!(wheel.status(&a), Status::Closed);
    assert_eq!(wheel.status(&fired), Status::Fired);
    assert_eq!(*wheel.get_mut(&a), 1);
    assert!(!wheel.reset(&a, 5), "a closed entry stays put");
    assert_eq!(wheel.remove(a), 1);
    assert_eq!(wheel.remove(b), 2);
    assert_eq!(wheel.remove(fired), 3);
    assert_eq!(wheel.entries(), 0);
}
