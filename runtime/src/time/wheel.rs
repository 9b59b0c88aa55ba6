//! A hierarchical timing wheel: the timer driver's store of pending deadlines.
//!
//! Ticks are microseconds (the driver converts `Instant`s to microseconds since
//! its origin, rounding up). The wheel has [`LEVELS`] levels of [`SLOTS`] slots;
//! a slot at level `l` spans `64^l` ticks, so the wheel covers `2^48` ticks
//! (about 8.9 years) ahead of its clock; a deadline further out is clamped to
//! the last representable tick, `elapsed + MAX_SPAN`.
//!
//! An entry sits at the level of the highest 6-bit group in which its deadline
//! differs from the wheel's clock (`elapsed`), in the slot named by the
//! deadline's bits in that group. Every entry at level `l` therefore falls due
//! before any entry at a higher level, and only entries at level 0 are exact:
//! a slot at level 0 holds entries of a single deadline. Advancing the clock
//! past the start of a higher-level slot cascades that slot's entries down to
//! the levels they now belong to.
//!
//! Entries live in a [`Slab`]; each slot is a doubly linked list threaded
//! through the slab by 32-bit index, so insert, remove and
//! [`reset`](Wheel::reset) are O(1) with no scan. Each level keeps a bitmask
//! of its non-empty slots, so finding the next slot with work is a rotate and
//! a count of trailing zeros. A node is 40 bytes with a 16-byte payload (a
//! waker): the payload, the deadline, two links and where the node stands
//! ([`Place`], whose spare values also carry the slab's vacant/occupied tag).
//!
//! Keys are owned: [`TimerKey`] is neither `Copy` nor `Clone`, and only
//! [`Wheel::remove`] consumes it, so an entry stays in the slab (and its
//! slot is not reused) until its key is handed back, whatever happened to it
//! meanwhile. Firing ([`Wheel::poll`]) and closing ([`Wheel::close`]) unlink
//! an entry and mark it [`Status::Fired`] or [`Status::Closed`] but keep it,
//! payload and all, for the key's holder to find and remove. So a key can
//! never name another entry that reused its slot, and no generation number
//! is needed to tell (the timer driver's `Sleep` holds exactly one key).
//!
//! The slab gives its memory back: when fewer than a quarter of its slots are
//! occupied it drops the vacant ones at its end; if entries still stand
//! near the end (a long timer that outlived a burst) and the slab stays
//! that sparse for [`COMPACT_AFTER`] ticks of the wheel's clock (a second),
//! it compacts: those entries move into the holes below, their lists are
//! relinked, and the slab is cut to its length. So a wheel that held a
//! million timers and lost all but a few returns to a few bytes within
//! about a second, where tokio's intrusive timers give theirs back at once;
//! the wait spares the common burst whose timers are all about to go (a
//! compaction costs about 200 ns per moved entry, most of it in the map
//! below). A moved entry's key still names it: every entry carries a serial
//! number that its key repeats; a key whose index no longer holds its
//! serial finds the entry's new index in a small map (`moved`, one item per
//! moved entry until its key is removed), and a serial in that map is not
//! given to a new entry. Compacting is O(capacity), after at least three
//! quarters of the slab were removed, so it stays amortised O(1) per
//! removal.
//!
//! The wheel reads no clock and wakes nothing: it stores a payload `T` and
//! hands payloads to [`Wheel::poll`]'s callback as they fall due.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::num::NonZeroU32;

use slab::Slab;

#[cfg(test)]
#[path = "wheel/tests.rs"]
mod tests;

/// Bits of a deadline that select the slot within one level.
const LEVEL_BITS: usize = 6;

/// Slots per level.
const SLOTS: usize = 1 << LEVEL_BITS;

/// Levels in the wheel: 8 levels of 6 bits cover 2^48 ticks.
const LEVELS: usize = 8;

/// Mask selecting a slot number from a shifted deadline.
const SLOT_MASK: u64 = (SLOTS as u64) - 1;

/// The farthest a deadline may lie ahead of the clock, in ticks; later deadlines
/// are clamped to `elapsed + MAX_SPAN`.
const MAX_SPAN: u64 = (1 << (LEVEL_BITS * LEVELS)) - 1;

/// "No node": the end of a slot's list.
const NIL: u32 = u32::MAX;

/// Entries [`Wheel::next_wake`] reads in a higher-level slot for the
/// earliest deadline; a longer slot's start is the wake.
const NEXT_WAKE_SCAN: usize = 8;

/// Slabs at most this many slots long are never shrunk.
const SHRINK_MIN: usize = 64;

/// How long (in ticks: a second) a slab must stay sparse, with entries
/// near its end, before it compacts.
const COMPACT_AFTER: u64 = 1_000_000;

/// Names one entry from its insertion until [`Wheel::remove`] consumes it.
/// Neither `Copy` nor `Clone`: the one holder of a key is the one who
/// removes the entry (see the module docs), so a key never goes stale.
/// A key is used only with the wheel that made it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    /// The entry's index in the slab when the key was made, plus one (so
    /// that an `Option<TimerKey>` takes no more room than the key); a
    /// compaction may have moved the entry since (see the module docs).
    index: NonZeroU32,
    /// The entry's serial number.
    serial: u32,
}

impl TimerKey {
    /// The entry's index in the slab when the key was made.
    fn index(&self) -> u32 {
        self.index.get() - 1
    }
}

/// Where an entry stands, as [`Wheel::status`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Linked in the wheel: it fires when its deadline comes.
    Pending,
    /// Fell due in a [`Wheel::poll`]; kept until removed.
    Fired,
    /// Unlinked by [`Wheel::close`] before it fell due; kept until removed.
    Closed,
}

/// Where a node stands: in the list of a level (`L0`..`L7`; the slot
/// follows from the deadline), or in none. An enum rather than a `u8` so
/// that its unused values carry the slab's vacant/occupied tag (a node is
/// 40 bytes in the slab, not 48).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    L0,
    L1,
    L2,
    L3,
    L4,
    L5,
    L6,
    L7,
    /// Fired: in no list.
    Fired,
    /// Closed: in no list.
    Closed,
}

impl Place {
    /// The place of a node linked at `level`.
    const AT_LEVEL: [Place; LEVELS] = [
        Place::L0,
        Place::L1,
        Place::L2,
        Place::L3,
        Place::L4,
        Place::L5,
        Place::L6,
        Place::L7,
    ];

    /// The level whose list holds the node, if any.
    fn level(self) -> Option<usize> {
        let level = self as usize;
        (level < LEVELS).then_some(level)
    }
}

/// One entry, linked into the list of its slot while pending (40 bytes
/// with a 16-byte payload).
#[derive(Debug)]
struct Node<T> {
    /// The payload.
    value: T,
    /// The (clamped) tick at which the entry fires.
    deadline: u64,
    /// Previous node in the slot's list, or [`NIL`].
    prev: u32,
    /// Next node in the slot's list, or [`NIL`].
    next: u32,
    /// The serial number its key repeats (in the node's padding).
    serial: u32,
    /// The level whose list holds this node (its slot is
    /// `slot_for(deadline, level)`), or why it is in none.
    place: Place,
}

/// Head and tail of one slot's doubly linked list of nodes.
#[derive(Debug, Clone, Copy)]
struct List {
    /// First (oldest) node in the slot, or [`NIL`].
    head: u32,
    /// Last (newest) node in the slot, or [`NIL`].
    tail: u32,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
    };
}

/// One level of the wheel: 64 slots and a bitmask of the non-empty ones.
#[derive(Debug)]
struct Level {
    /// Bit `s` is set when slot `s` holds at least one node.
    occupied: u64,
    /// The slots' lists.
    slots: [List; SLOTS],
}

impl Level {
    /// A level with every slot empty.
    const EMPTY: Level = Level {
        occupied: 0,
        slots: [List::EMPTY; SLOTS],
    };

    /// The next non-empty slot of this level (number `level`) after the clock
    /// `elapsed`, and the tick at which that slot starts.
    fn next_slot(&self, level: usize, elapsed: u64) -> Option<(usize, u64)> {
        if self.occupied == 0 {
            return None;
        }
        let shift = LEVEL_BITS * level;
        let now_slot = (elapsed >> shift) & SLOT_MASK;
        // Search from the slot after the clock's, wrapping round to the clock's
        // own slot last. Below the top level the clock's slot is never occupied
        // (its entries were cascaded when the clock entered it); at the top
        // level, slots at or before the clock's hold deadlines of the next
        // rotation, which come after every slot later in this rotation.
        let from = (now_slot + 1) & SLOT_MASK;
        let distance = u64::from(self.occupied.rotate_right(from as u32).trailing_zeros());
        let slot = (from + distance) & SLOT_MASK;
        let slot_range = 1u64 << shift;
        let level_range = slot_range << LEVEL_BITS;
        let level_start = elapsed & !(level_range - 1);
        // Cannot overflow: level_start + level_range - 1 <= u64::MAX.
        let start = level_start + slot * slot_range;
        if slot > now_slot {
            Some((slot as usize, start))
        } else {
            debug_assert_eq!(level, LEVELS - 1, "wrapped slot below the top level");
            Some((slot as usize, start.saturating_add(level_range)))
        }
    }
}

/// A hierarchical timing wheel holding payloads `T` keyed by deadline tick.
pub(crate) struct Wheel<T> {
    /// Ticks processed so far: the wheel's "now".
    elapsed: u64,
    /// Every entry, pending, fired or closed, until removed.
    nodes: Slab<Node<T>>,
    /// Entries linked in the wheel (pending).
    linked: usize,
    /// The levels, level 0 (single ticks) first.
    levels: Box<[Level; LEVELS]>,
    /// Try to shrink the slab once `len` falls below this (see the module
    /// docs): a quarter of the capacity.
    shrink_below: usize,
    /// The serial number of the next entry.
    next_serial: u32,
    /// Since when (tick) the slab has been sparse with entries near its end
    /// (a shrink could not cut it), if it is: it compacts at
    /// [`COMPACT_AFTER`] ticks from then.
    sparse_since: Option<u64>,
    /// Serial number -> index of the entries a compaction moved whose keys
    /// have not been removed yet.
    moved: Moved,
}

/// The map of moved entries: serial numbers are distinct and dense, so
/// one multiplication spreads them (SipHash cost a mass cancel a third of
/// its time).
type Moved = HashMap<u32, u32, BuildHasherDefault<SerialHasher>>;

/// Hashes one `u32` by a Fibonacci multiplication.
#[derive(Default)]
struct SerialHasher(u64);

impl Hasher for SerialHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 << 8 | u64::from(byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl<T> fmt::Debug for Wheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wheel")
            .field("elapsed", &self.elapsed)
            .field("pending", &self.linked)
            .field("entries", &self.nodes.len())
            .field("next_expiration", &self.next_expiration())
            .finish_non_exhaustive()
    }
}

impl<T> Default for Wheel<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Wheel<T> {
    /// Visits every pending entry with its deadline tick (task dumps).
    pub(crate) fn for_each(&self, mut visit: impl FnMut(u64, &T)) {
        for (_, node) in &self.nodes {
            if node.place.level().is_some() {
                visit(node.deadline, &node.value);
            }
        }
    }

    /// An empty wheel whose clock reads tick 0.
    pub(crate) fn new() -> Self {
        Wheel {
            elapsed: 0,
            nodes: Slab::new(),
            linked: 0,
            levels: Box::new([Level::EMPTY; LEVELS]),
            shrink_below: 0,
            next_serial: 0,
            sparse_since: None,
            moved: Moved::default(),
        }
    }

    /// Ticks processed so far (the wheel's "now").
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// Number of pending entries (fired and closed ones not counted).
    pub(crate) fn len(&self) -> usize {
        self.linked
    }

    /// Whether no entry is pending.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn is_empty(&self) -> bool {
        self.linked == 0
    }

    /// Entries held, pending or not: those whose keys are not yet removed.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn entries(&self) -> usize {
        self.nodes.len()
    }

    /// Slots the slab holds memory for, occupied or not.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn capacity(&self) -> usize {
        self.nodes.capacity()
    }

    /// Inserts `value` to fire at `tick`. O(1). If `tick <= self.elapsed()` the deadline has
    /// already passed: returns `Err(value)` and stores nothing (the caller fires it at once).
    /// A tick more than `2^48 - 1` ahead of the clock is clamped to `elapsed + 2^48 - 1`.
    #[inline]
    pub(crate) fn insert(&mut self, tick: u64, value: T) -> Result<TimerKey, T> {
        if tick <= self.elapsed {
            return Err(value);
        }
        let deadline = tick.min(self.elapsed.saturating_add(MAX_SPAN));
        let index = u32::try_from(self.nodes.vacant_key())
            .ok()
            .filter(|&index| index != NIL)
            .expect("fewer than 2^32 - 1 timers are held at once");
        // Linked straight at its tail: one write of the node.
        let level = level_for(self.elapsed, deadline);
        let slot = slot_for(deadline, level);
        let lvl = &mut self.levels[level];
        let list = &mut lvl.slots[slot];
        let tail = std::mem::replace(&mut list.tail, index);
        if tail == NIL {
            list.head = index;
        }
        lvl.occupied |= 1u64 << slot;
        let serial = self.take_serial();
        let inserted = self.nodes.insert(Node {
            value,
            deadline,
            prev: tail,
            next: NIL,
            serial,
            place: Place::AT_LEVEL[level],
        });
        debug_assert_eq!(inserted, index as usize);
        if tail != NIL {
            self.nodes[tail as usize].next = index;
        }
        self.linked += 1;
        if self.nodes.capacity() / 4 > self.shrink_below {
            self.shrink_below = self.nodes.capacity() / 4;
        }
        Ok(TimerKey {
            index: NonZeroU32::MIN.saturating_add(index),
            serial,
        })
    }

    /// A serial number for a new entry: the next, skipping those of moved
    /// entries whose keys are still out (a key must never match two).
    #[inline]
    fn take_serial(&mut self) -> u32 {
        loop {
            let serial = self.next_serial;
            self.next_serial = serial.wrapping_add(1);
            if self.moved.is_empty() || !self.moved.contains_key(&serial) {
                return serial;
            }
        }
    }

    /// The slab index of the entry `key` names: where the key says, unless
    /// a compaction moved it (the serial there differs).
    #[inline]
    fn index_of(&self, key: &TimerKey) -> usize {
        let index = key.index() as usize;
        match self.nodes.get(index) {
            Some(node) if node.serial == key.serial => index,
            _ => self.moved_index(key),
        }
    }

    /// The new index of an entry a compaction moved.
    #[cold]
    #[inline(never)]
    fn moved_index(&self, key: &TimerKey) -> usize {
        let index = self.moved.get(&key.serial);
        *index.expect("a timer key names an entry of this wheel") as usize
    }

    /// Removes an entry, pending, fired or closed, and hands its payload
    /// back. O(1) (amortised: it may shrink the slab).
    pub(crate) fn remove(&mut self, key: TimerKey) -> T {
        let index = self.index_of(&key);
        if index != key.index() as usize {
            self.moved.remove(&key.serial);
            if self.moved.is_empty() {
                self.moved = Moved::default(); // its memory too
            }
        }
        // Out of the slab first, then out of its list: one slab access.
        let node = self.nodes.remove(index);
        if let Some(level) = node.place.level() {
            self.detach(level, slot_for(node.deadline, level), node.prev, node.next);
        }
        self.maybe_shrink();
        node.value
    }

    /// Where an entry stands.
    pub(crate) fn status(&self, key: &TimerKey) -> Status {
        match self.nodes[self.index_of(key)].place {
            Place::Fired => Status::Fired,
            Place::Closed => Status::Closed,
            _ => Status::Pending,
        }
    }

    /// An entry's payload (pending, fired or closed).
    pub(crate) fn get_mut(&mut self, key: &TimerKey) -> &mut T {
        let index = self.index_of(key);
        &mut self.nodes[index].value
    }

    /// Moves a pending entry to fire at `tick` instead, in place: O(1), the
    /// key stays valid and nothing is allocated. Returns `false` and
    /// changes nothing if the entry is not pending (fired or closed) or if
    /// `tick <= self.elapsed()` (the deadline has passed: the caller
    /// removes the entry and fires it itself).
    pub(crate) fn reset(&mut self, key: &TimerKey, tick: u64) -> bool {
        let index = self.index_of(key) as u32;
        if tick <= self.elapsed || self.nodes[index as usize].place.level().is_none() {
            return false;
        }
        let deadline = tick.min(self.elapsed.saturating_add(MAX_SPAN));
        self.unlink(index, Place::Fired);
        self.nodes[index as usize].deadline = deadline;
        self.link(index, deadline);
        true
    }

    /// Unlinks every pending entry, marks it [`Status::Closed`] and calls
    /// `visit` on its payload; the entries stay until removed. O(capacity).
    /// For shutdown.
    pub(crate) fn close(&mut self, mut visit: impl FnMut(&mut T)) {
        for level in self.levels.iter_mut() {
            *level = Level::EMPTY;
        }
        for (_, node) in self.nodes.iter_mut() {
            if node.place.level().is_some() {
                node.place = Place::Closed;
                node.prev = NIL;
                node.next = NIL;
                visit(&mut node.value);
            }
        }
        self.linked = 0;
    }

    /// Gives memory back when at most a quarter of the slab is occupied
    /// (see [`shrink`](Self::shrink)); inline, as every removal asks.
    #[inline]
    fn maybe_shrink(&mut self) {
        if self.nodes.len() < self.shrink_below && self.nodes.capacity() > SHRINK_MIN {
            self.shrink();
        }
    }

    /// Drops the vacant slots at the slab's end; if entries near the end
    /// keep more than half of it vacant, notes since when, for
    /// [`compact_if_still_sparse`](Self::compact_if_still_sparse). An
    /// attempt scans the slab's tail, so a failed one waits until the
    /// length halves again.
    #[cold]
    fn shrink(&mut self) {
        let len = self.nodes.len();
        if len == 0 {
            self.nodes = Slab::new();
            debug_assert!(self.moved.is_empty(), "a moved entry outlived its key");
            self.moved = Moved::default();
            self.sparse_since = None;
        } else {
            self.nodes.shrink_to_fit();
            if self.nodes.capacity() > 2 * len {
                self.sparse_since.get_or_insert(self.elapsed);
            }
        }
        self.shrink_below = (self.nodes.capacity() / 4).min(len.div_ceil(2));
    }

    /// After the clock moved: compacts a slab that has stayed sparse, with
    /// entries near its end, for [`COMPACT_AFTER`] ticks (unless it filled
    /// up again meanwhile).
    #[inline]
    fn compact_if_still_sparse(&mut self) {
        let Some(since) = self.sparse_since else {
            return;
        };
        if self.elapsed.saturating_sub(since) < COMPACT_AFTER {
            return;
        }
        self.sparse_since = None;
        self.nodes.shrink_to_fit();
        if self.nodes.capacity() > 2 * self.nodes.len().max(SHRINK_MIN / 2) {
            self.compact();
        }
        self.shrink_below = self.nodes.capacity() / 4;
    }

    /// Moves the entries at index `len` and above into the vacant slots
    /// below (the slab's own `compact`, in place), relinks them, and cuts
    /// the slab to `len` slots. O(capacity).
    fn compact(&mut self) {
        let len = self.nodes.len();
        // New index of each moved node, by old index minus `len`.
        let mut remap: Vec<u32> = vec![NIL; self.nodes.capacity().saturating_sub(len)];
        let moved = &mut self.moved;
        self.nodes.compact(|node, from, to| {
            remap[from - len] = to as u32;
            // Moved again before its key came back: the new place wins.
            moved.insert(node.serial, to as u32);
            true
        });
        let relink = |link: &mut u32| {
            if *link != NIL && *link as usize >= len {
                *link = remap[*link as usize - len];
            }
        };
        for (_, node) in self.nodes.iter_mut() {
            relink(&mut node.prev);
            relink(&mut node.next);
        }
        for level in self.levels.iter_mut() {
            for list in &mut level.slots {
                relink(&mut list.head);
                relink(&mut list.tail);
            }
        }
        self.moved.shrink_to_fit();
    }

    /// The earliest tick at which `poll` has work to do, or `None` when none is pending. Never
    /// later than the earliest entry's deadline; exact (equal to the earliest deadline) whenever
    /// the earliest entry sits at level 0. It may be earlier than the earliest deadline when the
    /// next work is a cascade from a higher level; the driver then polls, and asks again.
    pub(crate) fn next_expiration(&self) -> Option<u64> {
        self.next_slot().map(|(_, _, start)| start)
    }

    /// When a driver that sleeps should wake next: [`next_expiration`](Self::next_expiration),
    /// unless that is a cascade from a higher level whose slot holds at most
    /// [`NEXT_WAKE_SCAN`] entries: then the earliest of their deadlines,
    /// the earliest in the wheel (lower levels are empty, and higher ones
    /// fall due later). A `poll` there cascades the slot and fires that
    /// entry in one go, where waking at the slot's start woke twice for
    /// one timer (a 200 µs `Interval` woke its thread about 19,000 times
    /// in 2 s for 10,000 ticks; an independent probe).
    pub(crate) fn next_wake(&self) -> Option<u64> {
        let (level, slot, start) = self.next_slot()?;
        if level == 0 {
            return Some(start);
        }
        let mut cursor = self.levels[level].slots[slot].head;
        let mut earliest = u64::MAX;
        for _ in 0..NEXT_WAKE_SCAN {
            if cursor == NIL {
                return Some(earliest.max(start));
            }
            let node = &self.nodes[cursor as usize];
            earliest = earliest.min(node.deadline);
            cursor = node.next;
        }
        Some(if cursor == NIL {
            earliest.max(start)
        } else {
            start // a long slot: wake at its start, as before
        })
    }

    /// Moves the clock to `now` (never back) when nothing is due by then
    /// (the caller found `next_expiration` later, or none): what
    /// [`poll`](Self::poll) does in that case, without looking for work
    /// again.
    pub(crate) fn skip_to(&mut self, now: u64) {
        debug_assert!(self.next_expiration().is_none_or(|next| next > now));
        self.elapsed = self.elapsed.max(now);
        self.compact_if_still_sparse();
    }

    /// Advances the wheel to `now` (no-op if `now <= elapsed`), marking every entry with
    /// deadline `<= now` [`Status::Fired`] and calling `fire` on its payload, in deadline order
    /// (ties: insertion order), cascading entries down levels as needed. Fired entries stay until
    /// removed. Afterwards `elapsed() == now`; entries with a deadline after `now` stay pending.
    /// Amortised O(levels) per entry.
    pub(crate) fn poll(&mut self, now: u64, mut fire: impl FnMut(&mut T)) {
        if now <= self.elapsed {
            return;
        }
        while let Some((level, slot, start)) = self.next_slot() {
            if start > now {
                break;
            }
            self.elapsed = start;
            self.process_slot(level, slot, &mut fire);
        }
        self.elapsed = now;
        self.compact_if_still_sparse();
    }

    /// The level, slot and start tick of the next slot with work: the first
    /// non-empty level's next slot (lower levels always fall due first).
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        self.levels.iter().enumerate().find_map(|(level, lvl)| {
            lvl.next_slot(level, self.elapsed)
                .map(|(slot, start)| (level, slot, start))
        })
    }

    /// Empties slot `slot` of `level` now that the clock has reached its start:
    /// fires the entries that are due and re-links the rest at lower levels, in
    /// list order (which keeps equal deadlines in insertion order).
    fn process_slot(&mut self, level: usize, slot: usize, fire: &mut impl FnMut(&mut T)) {
        let lvl = &mut self.levels[level];
        let list = std::mem::replace(&mut lvl.slots[slot], List::EMPTY);
        lvl.occupied &= !(1u64 << slot);
        let mut cursor = list.head;
        while cursor != NIL {
            let index = cursor;
            let node = &mut self.nodes[index as usize];
            cursor = node.next;
            let deadline = node.deadline;
            if deadline <= self.elapsed {
                node.place = Place::Fired;
                node.prev = NIL;
                node.next = NIL;
                self.linked -= 1;
                fire(&mut node.value);
            } else {
                debug_assert!(level_for(self.elapsed, deadline) < level);
                self.linked -= 1;
                self.link(index, deadline);
            }
        }
    }

    /// Appends node `index` (not in any list) to the slot its `deadline` belongs
    /// in, relative to the current clock.
    fn link(&mut self, index: u32, deadline: u64) {
        debug_assert!(deadline > self.elapsed);
        let level = level_for(self.elapsed, deadline);
        let slot = slot_for(deadline, level);
        let lvl = &mut self.levels[level];
        let list = &mut lvl.slots[slot];
        let tail = std::mem::replace(&mut list.tail, index);
        if tail == NIL {
            list.head = index;
        } else {
            self.nodes[tail as usize].next = index;
        }
        lvl.occupied |= 1u64 << slot;
        let node = &mut self.nodes[index as usize];
        node.place = Place::AT_LEVEL[level];
        node.prev = tail;
        node.next = NIL;
        self.linked += 1;
    }

    /// Unlinks node `index` from its slot's list, if it is in one, and
    /// marks it `to`; leaves it in the slab.
    fn unlink(&mut self, index: u32, to: Place) {
        let node = &mut self.nodes[index as usize];
        let Some(level) = node.place.level() else {
            return;
        };
        node.place = to;
        let (prev, next) = (node.prev, node.next);
        let slot = slot_for(node.deadline, level);
        self.detach(level, slot, prev, next);
    }

    /// Closes the gap a node between `prev` and `next` in the list of
    /// `slot` at `level` leaves (the node itself is not touched).
    fn detach(&mut self, level: usize, slot: usize, prev: u32, next: u32) {
        let lvl = &mut self.levels[level];
        let list = &mut lvl.slots[slot];
        if prev == NIL {
            list.head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            list.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        if list.head == NIL {
            lvl.occupied &= !(1u64 << slot);
        }
        self.linked -= 1;
    }
}

/// The level at which an entry due at `deadline` sits when the clock reads
/// `elapsed`: the highest 6-bit group in which the two differ (group 0 when they
/// differ only in the lowest), capped at the top level.
fn level_for(elapsed: u64, deadline: u64) -> usize {
    let masked = (elapsed ^ deadline) | SLOT_MASK;
    let significant = 63 - masked.leading_zeros() as usize;
    (significant / LEVEL_BITS).min(LEVELS - 1)
}

/// The slot of `level` that holds an entry due at `deadline`.
fn slot_for(deadline: u64, level: usize) -> usize {
    ((deadline >> (LEVEL_BITS * level)) & SLOT_MASK) as usize
}
