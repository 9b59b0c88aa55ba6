//! The list against a `VecDeque` model, and key reuse (ABA).

use std::collections::VecDeque;

use super::*;
use crate::entry::{Entry, Notifier, TaskState};

fn entry(tag: u32) -> Entry {
    Entry::new(Notifier::None, TaskState::Uninterruptible, tag)
}

fn order(list: &WaitList, class: Class) -> Vec<u32> {
    let mut out = Vec::new();
    let mut pos = list.first(class);
    while let Some(h) = pos {
        out.push(list.node(h).unwrap().entry.key);
        pos = list.next(h);
    }
    out
}

#[test]
fn fifo_per_class() {
    let mut list = WaitList::new();
    list.push_back(Class::Shared, entry(1));
    list.push_back(Class::Exclusive, entry(2));
    list.push_back(Class::Shared, entry(3));
    list.push_back(Class::Exclusive, entry(4));
    assert_eq!(order(&list, Class::Shared), [1, 3]);
    assert_eq!(order(&list, Class::Exclusive), [2, 4]);
    assert_eq!(list.pop_front().unwrap().key, 1);
    assert_eq!(list.pop_front().unwrap().key, 3);
    assert_eq!(list.pop_front().unwrap().key, 2);
    assert_eq!(list.len(), 1);
}

#[test]
fn stale_handle_never_touches_new_occupant_of_its_slot() {
    let mut list = WaitList::new();
    let a = list.push_back(Class::Exclusive, entry(1));
    assert!(list.remove(a).is_some());
    // Slab reuses the most recently freed key first: same key, new seq.
    let b = list.push_back(Class::Exclusive, entry(2));
    assert_eq!(a.key(), b.key());
    assert_ne!(a.seq, b.seq);
    assert!(!list.contains(a));
    assert!(list.get_mut(a).is_none());
    assert!(
        list.remove(a).is_none(),
        "stale handle removed the new entry"
    );
    assert_eq!(list.get_mut(b).unwrap().key, 2);
    assert_eq!(list.len(), 1);
}

#[test]
fn sequence_numbers_order_each_list() {
    let mut list = WaitList::new();
    let mut handles = Vec::new();
    for i in 0..10 {
        let class = if i % 3 == 0 {
            Class::Exclusive
        } else {
            Class::Shared
        };
        handles.push(list.push_back(class, entry(i)));
    }
    for class in [Class::Shared, Class::Exclusive] {
        let mut last = None;
        let mut pos = list.first(class);
        while let Some(h) = pos {
            assert!(last < Some(h.seq()));
            last = Some(h.seq());
            pos = list.next(h);
        }
    }
    assert_eq!(list.next_seq(), 10);
}

/// Random inserts and removals (head, tail, middle, stale) against a model.
#[test]
fn matches_vecdeque_model() {
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut list = WaitList::new();
    let mut model: [VecDeque<(Handle, u32)>; 2] = [VecDeque::new(), VecDeque::new()];
    let mut dead: Vec<Handle> = Vec::new();
    let mut peak = 0;
    let mut marks = [0u64; 2];
    for step in 0..200_000u32 {
        let c = (next() % 2) as usize;
        let class = [Class::Shared, Class::Exclusive][c];
        match next() % 4 {
            0 | 1 => {
                let h = list.push_back(class, entry(step));
                model[c].push_back((h, step));
            }
            2 if !model[c].is_empty() => {
                let i = (next() as usize) % model[c].len();
                let (h, tag) = model[c].remove(i).unwrap();
                assert_eq!(list.remove(h).unwrap().key, tag);
                dead.push(h);
            }
            3 if next() % 2 == 0 => {
                // Head pop with a snapshot: only entries older than it.
                let snapshot = list.next_seq().saturating_sub(next() % 4);
                let front = list.front_mut(class, snapshot).map(|(h, e)| (h, e.key));
                let popped = match front {
                    Some((_, key)) if key % 7 != 0 => Some(list.pop_front_of(class)),
                    _ => None,
                };
                match model[c].front() {
                    Some(&(h, tag)) if h.seq() < snapshot && tag % 7 != 0 => {
                        assert_eq!(front.unwrap().0, h);
                        assert_eq!(popped.unwrap().key, tag);
                        dead.push(model[c].pop_front().unwrap().0);
                    }
                    _ => assert!(popped.is_none()),
                }
            }
            _ => {
                if let Some(&h) = dead.get((next() as usize) % dead.len().max(1)) {
                    assert!(list.remove(h).is_none());
                }
            }
        }
        peak = peak.max(list.len());
        // The low-water mark only grows and never covers a linked entry.
        for (c, class) in [Class::Shared, Class::Exclusive].into_iter().enumerate() {
            let mark = list.low_water(class);
            assert!(mark >= marks[c], "low-water mark went down");
            marks[c] = mark;
            if let Some(&(h, _)) = model[c].front() {
                assert!(h.seq() >= mark, "a linked entry is below the mark");
            }
        }
        if step % 1000 == 0 {
            for (c, class) in [Class::Shared, Class::Exclusive].into_iter().enumerate() {
                let want: Vec<u32> = model[c].iter().map(|&(_, t)| t).collect();
                assert_eq!(order(&list, class), want);
            }
        }
    }
    while list.pop_front().is_some() {}
    assert_eq!(list.len(), 0);
    // The inline slot, plus a slab grown by doubling (from 4) to the rest.
    assert!(list.capacity() <= 1 + (peak - 1).next_power_of_two().max(4));
    assert_eq!(list.first(Class::Shared), None);
    assert_eq!(list.first(Class::Exclusive), None);
}

/// A handle is two words and `Option<Handle>` too (it comes back from
/// `push_back` and `WaitQueue::register` in two registers), and its packed
/// key and class read back as they were linked.
#[test]
fn handle_is_two_words_and_packs_key_and_class() {
    assert_eq!(std::mem::size_of::<Handle>(), 16);
    assert_eq!(std::mem::size_of::<Option<Handle>>(), 16);
    let mut list = WaitList::new();
    let mut handles = Vec::new();
    for i in 0..6u32 {
        let class = if i % 2 == 0 {
            Class::Shared
        } else {
            Class::Exclusive
        };
        handles.push((list.push_back(class, entry(i)), class));
    }
    for (i, (handle, class)) in handles.iter().enumerate() {
        assert_eq!(handle.class(), *class);
        assert_eq!(handle.key(), i);
        assert_eq!(list.get_mut(*handle).unwrap().key as usize, i);
    }
    let big = Handle::new(u32::MAX as usize - 1, 7, Class::Exclusive);
    assert_eq!(
        (big.key(), big.seq(), big.class()),
        (u32::MAX as usize - 1, 7, Class::Exclusive)
    );
}

#[test]
fn handle_debug_shows_its_parts() {
    let handle = Handle::new(5, 9, Class::Exclusive);
    assert_eq!(
        format!("{handle:?}"),
        "Handle { seq: 9, key: 5, class: Exclusive }"
    );
}
