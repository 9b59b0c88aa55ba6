//! The waiter list: a slab of entries threaded by two index-linked FIFO
//! lists, one for non-exclusive and one for exclusive waiters. The first
//! slot is kept inline, in the list itself (see [`Nodes`]).
//!
//! This module is a plain data structure. It knows nothing of futures,
//! threads or locking: [`crate::queue`] owns one behind its mutex, and every
//! method here runs with that lock held. It never wakes anybody; it hands
//! entries back to the caller, who wakes them after unlocking.
//!
//! # Handles and generations
//!
//! `Slab` reuses the most recently freed key first, so a key alone cannot
//! identify a waiter: a future whose entry was removed by a wake could
//! otherwise touch the next occupant of its old slot (ABA). Every insertion
//! therefore takes a fresh 64-bit sequence number from a per-list counter,
//! stored in the entry and in the [`Handle`]. A handle is valid only while
//! `slab[key].seq == handle.seq`.
//!
//! The same sequence number orders waiters by registration time, and both
//! lists are sorted by it (entries are only ever appended at the tail). A
//! wake snapshots the counter when it starts and only considers entries
//! with a smaller sequence number: that is how a broadcast that drops the
//! lock between batches stays atomic (waiters that register meanwhile are
//! newer than the snapshot and are not woken by it).

use std::num::NonZeroU64;

use slab::Slab;

use crate::entry::Entry;

/// "No entry": the end of a list.
const NIL: usize = usize::MAX;

/// A registered waiter's identity: slab key plus the sequence number it was
/// registered with (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Handle {
    seq: u64,
    /// The slab key (low 32 bits), the class (bit 32: exclusive) and bit
    /// 63, always set. Two `u64`s make the handle a pair of scalars, which
    /// is returned in two registers: as `u64`, `u32` and a byte it came
    /// back from `push_back` and `register` through memory, written piece
    /// by piece and read back whole (a store-forwarding stall on every
    /// sleep). The set bit leaves a niche, so `Option<Handle>` is a pair
    /// too.
    tag: NonZeroU64,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("seq", &self.seq)
            .field("key", &self.key())
            .field("class", &self.class())
            .finish()
    }
}

/// [`Handle::tag`]'s bit that is always set.
const TAG_SET: NonZeroU64 = NonZeroU64::new(1 << 63).unwrap();
/// [`Handle::tag`]'s class bit (set: [`Class::Exclusive`]).
const TAG_EXCLUSIVE: u64 = 1 << 32;

impl Handle {
    #[inline(always)]
    fn new(key: usize, seq: u64, class: Class) -> Handle {
        let class = match class {
            Class::Shared => 0,
            Class::Exclusive => TAG_EXCLUSIVE,
        };
        Handle {
            seq,
            tag: TAG_SET | class | u64::from(slot_key(key)),
        }
    }

    /// The registration sequence number: orders waiters by age.
    #[inline(always)]
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// The list the entry was linked on.
    #[inline(always)]
    pub(crate) fn class(&self) -> Class {
        if self.tag.get() & TAG_EXCLUSIVE == 0 {
            Class::Shared
        } else {
            Class::Exclusive
        }
    }

    /// The entry's slab key.
    #[inline(always)]
    fn key(&self) -> usize {
        self.tag.get() as u32 as usize
    }
}

/// Which of the two lists an entry is linked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Non-exclusive waiters: every matching one is woken by every wake.
    Shared,
    /// Exclusive waiters (kernel `WQ_FLAG_EXCLUSIVE`): a wake stops after `nr`.
    Exclusive,
}

#[derive(Debug)]
struct Node {
    seq: u64,
    prev: usize,
    next: usize,
    class: Class,
    entry: Entry,
}

/// Where the nodes live: one slot inline, the rest in a slab.
///
/// Most queues never have two waiters at once (a task's join queue, a
/// oneshot channel, a socket read by one task), so the inline slot spares
/// them the slab's heap allocation, and its `malloc`/`free`, at their first
/// sleep. Measured with callgrind (`SYNC_BENCH_CHILD=oneshot/ct`,
/// `RT_BENCH_CHILD=…`, scale 0.05): a oneshot send-and-receive 10 % fewer
/// instructions, ping-pong 2.5 % fewer; a herd of 1,000 waiters on one
/// queue pays 2.4 % more for the key test below. Keys: `0` is the inline
/// slot, `k + 1` the slab's key `k`.
///
/// A slab of more than [`SPILL_KEEP`] slots is freed when its last node
/// leaves (a queue that once had a million waiters kept some 60 MB for its
/// life: an independent probe). Below that it is kept, so a herd that
/// fills and empties a queue over and over allocates once: freed at every
/// emptying, a herd of 8,192 or 50,000 waiters cost 9-11 % more per
/// waiter, regrown by doubling each round (an independent review); a hint
/// of the last peak, to regrow in one step, cost the inline slot's
/// insertion 17 instructions or a herd's 2.6 % (callgrind). Above it, a
/// herd that big pays the regrowth.
#[derive(Debug)]
struct Nodes {
    inline: Option<Node>,
    spill: Slab<Node>,
}

/// Slab slots a queue keeps when its waiters are gone (see [`Nodes`]):
/// 4 MiB of nodes.
const SPILL_KEEP: usize = 1 << 16;

impl Nodes {
    const fn new() -> Self {
        Nodes {
            inline: None,
            spill: Slab::new(),
        }
    }

    fn len(&self) -> usize {
        usize::from(self.inline.is_some()) + self.spill.len()
    }

    /// The slab's slots (the inline one is not counted here).
    fn spilled_capacity(&self) -> usize {
        self.spill.capacity()
    }

    fn insert(&mut self, node: Node) -> usize {
        if self.inline.is_none() {
            self.inline = Some(node);
            0
        } else {
            self.spill.insert(node) + 1
        }
    }

    #[inline]
    fn get(&self, key: usize) -> Option<&Node> {
        match key {
            0 => self.inline.as_ref(),
            // `NIL - 1` is no slab key either.
            _ => self.spill.get(key - 1),
        }
    }

    #[inline]
    fn get_mut(&mut self, key: usize) -> Option<&mut Node> {
        match key {
            0 => self.inline.as_mut(),
            _ => self.spill.get_mut(key - 1),
        }
    }

    /// Takes the node at `key`, which must be occupied. A slab emptied
    /// after holding more than [`SPILL_KEEP`] waiters at once gives its
    /// room back (a queue that once had a million waiters kept some 60 MB
    /// for its life: an independent probe); below that it keeps it, so a
    /// herd that sleeps and wakes over and over does not allocate again.
    #[inline]
    fn remove(&mut self, key: usize) -> Node {
        match key {
            0 => self
                .inline
                .take()
                .expect("remove() of the empty inline slot"),
            _ if self.spill.len() == 1 => self.remove_last_spilled(key),
            _ => self.spill.remove(key - 1),
        }
    }

    /// The slab's last node: taken, and the slab freed if it is past
    /// [`SPILL_KEEP`]. Out of line, and decided before the removal, so the
    /// common removal stays as small as it was (a check after it moved
    /// the node through a temporary: a herd cost 3.5 % more instructions).
    #[cold]
    #[inline(never)]
    fn remove_last_spilled(&mut self, key: usize) -> Node {
        let node = self.spill.remove(key - 1);
        if self.spill.capacity() > SPILL_KEEP {
            self.spill = Slab::new();
        }
        node
    }
}

impl std::ops::Index<usize> for Nodes {
    type Output = Node;
    #[inline]
    fn index(&self, key: usize) -> &Node {
        self.get(key).expect("no node at this key")
    }
}

impl std::ops::IndexMut<usize> for Nodes {
    #[inline]
    fn index_mut(&mut self, key: usize) -> &mut Node {
        self.get_mut(key).expect("no node at this key")
    }
}

#[derive(Debug, Clone, Copy)]
struct Ends {
    head: usize,
    tail: usize,
}

impl Ends {
    const EMPTY: Ends = Ends {
        head: NIL,
        tail: NIL,
    };
}

/// Slab-backed waiter storage with two FIFO lists (see the module docs).
#[derive(Debug)]
pub(crate) struct WaitList {
    slab: Nodes,
    shared: Ends,
    exclusive: Ends,
    next_seq: u64,
}

// ===== impl WaitList =====

impl WaitList {
    pub(crate) const fn new() -> Self {
        WaitList {
            slab: Nodes::new(),
            shared: Ends::EMPTY,
            exclusive: Ends::EMPTY,
            next_seq: 0,
        }
    }

    /// Number of linked waiters.
    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    /// Slots set up (linked or free): the inline one once used, plus the
    /// slab's. Bounded by the peak `len()` rounded up to the slab's step.
    pub(crate) fn capacity(&self) -> usize {
        // The first insertion of all always takes the (then empty) inline
        // slot, so it has been used once anything was.
        usize::from(self.next_seq > 0) + self.slab.spilled_capacity()
    }

    /// The sequence number the next insertion will get. A wake takes this as
    /// its snapshot: entries with `seq < snapshot` existed when it started.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Every entry of `class` with a smaller sequence number is unlinked:
    /// the head's number (lists are sorted), or `next_seq` when empty.
    /// Never decreases.
    pub(crate) fn low_water(&self, class: Class) -> u64 {
        match self.ends(class).head {
            NIL => self.next_seq,
            head => self.slab[head].seq,
        }
    }

    /// Links `entry` at the tail of `class`'s list.
    pub(crate) fn push_back(&mut self, class: Class, entry: Entry) -> Handle {
        let seq = self.next_seq;
        self.next_seq += 1;
        let tail = self.ends(class).tail;
        let key = self.slab.insert(Node {
            seq,
            prev: tail,
            next: NIL,
            class,
            entry,
        });
        if tail == NIL {
            self.ends_mut(class).head = key;
        } else {
            self.slab[tail].next = key;
        }
        self.ends_mut(class).tail = key;
        Handle::new(key, seq, class)
    }

    /// Whether `handle` still names a linked entry.
    pub(crate) fn contains(&self, handle: Handle) -> bool {
        self.node(handle).is_some()
    }

    /// The entry behind `handle`, if it is still linked.
    pub(crate) fn get_mut(&mut self, handle: Handle) -> Option<&mut Entry> {
        match self.slab.get_mut(handle.key()) {
            Some(node) if node.seq == handle.seq => Some(&mut node.entry),
            _ => None,
        }
    }

    /// Unlinks and returns the entry behind `handle`; `None` if it is gone
    /// (woken, closed, or removed before).
    pub(crate) fn remove(&mut self, handle: Handle) -> Option<Entry> {
        self.node(handle)?;
        let node = self.slab.remove(handle.key());
        if node.prev == NIL {
            self.ends_mut(node.class).head = node.next;
        } else {
            self.slab[node.prev].next = node.next;
        }
        if node.next == NIL {
            self.ends_mut(node.class).tail = node.prev;
        } else {
            self.slab[node.next].prev = node.prev;
        }
        Some(node.entry)
    }

    /// Whether `class`'s list is empty (one load: its head).
    #[inline]
    pub(crate) fn is_empty_of(&self, class: Class) -> bool {
        self.ends(class).head == NIL
    }

    /// The oldest entry of `class`, if any.
    pub(crate) fn first(&self, class: Class) -> Option<Handle> {
        self.handle_at(self.ends(class).head)
    }

    /// The entry after `handle` on its list. `handle` must be linked.
    pub(crate) fn next(&self, handle: Handle) -> Option<Handle> {
        let node = self.node(handle).expect("next() on an unlinked handle");
        self.handle_at(node.next)
    }

    /// The head of `class`'s list, if it is older than `snapshot`: its
    /// handle and entry in one lookup (a wake's step at the head).
    #[inline]
    pub(crate) fn front_mut(
        &mut self,
        class: Class,
        snapshot: u64,
    ) -> Option<(Handle, &mut Entry)> {
        let head = self.ends(class).head;
        let node = self.slab.get_mut(head)?;
        if node.seq >= snapshot {
            return None;
        }
        let handle = Handle::new(head, node.seq, class);
        Some((handle, &mut node.entry))
    }

    /// Unlinks and returns the head of `class`'s list, which must not be
    /// empty: O(1), the wake's step after [`front_mut`](Self::front_mut)
    /// chose it.
    #[inline]
    pub(crate) fn pop_front_of(&mut self, class: Class) -> Entry {
        let head = self.ends(class).head;
        assert!(head != NIL, "pop_front_of() on an empty list");
        let node = self.slab.remove(head);
        self.ends_mut(class).head = node.next;
        if node.next == NIL {
            self.ends_mut(class).tail = NIL;
        } else {
            self.slab[node.next].prev = NIL;
        }
        node.entry
    }

    /// Unlinks and returns the oldest entry, non-exclusive list first.
    pub(crate) fn pop_front(&mut self) -> Option<Entry> {
        let handle = self
            .first(Class::Shared)
            .or_else(|| self.first(Class::Exclusive))?;
        self.remove(handle)
    }

    fn handle_at(&self, key: usize) -> Option<Handle> {
        if key == NIL {
            return None;
        }
        let node = &self.slab[key];
        Some(Handle::new(key, node.seq, node.class))
    }

    fn node(&self, handle: Handle) -> Option<&Node> {
        self.slab.get(handle.key()).filter(|n| n.seq == handle.seq)
    }

    fn ends(&self, class: Class) -> Ends {
        match class {
            Class::Shared => self.shared,
            Class::Exclusive => self.exclusive,
        }
    }

    fn ends_mut(&mut self, class: Class) -> &mut Ends {
        match class {
            Class::Shared => &mut self.shared,
            Class::Exclusive => &mut self.exclusive,
        }
    }
}

/// A slab key as a handle stores it. Four billion waiters linked at once
/// would need hundreds of gigabytes of entries first.
fn slot_key(key: usize) -> u32 {
    u32::try_from(key).expect("fewer than 2^32 waiters are linked at once")
}

#[cfg(test)]
mod tests;
