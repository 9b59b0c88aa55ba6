//! Weak memory for the toolkit's atomics: a store buffer per task
//! (`Check::weak_memory`, bug class 4 of the toolkit's guide).
//!
//! The model is x86's TSO with every task on a core of its own: a store
//! weaker than `SeqCst` through [`crate::sync::atomic`] goes to memory at
//! once (so the storing task, and the program after the run, see it), but
//! other tasks keep reading the value it replaced until the store drains.
//! That is kept as a *hidden* old value per address, owned by the task
//! whose buffer holds the store; nothing needs writing back on a drain,
//! which is why the buffer needs no reference to the atomic.
//!
//! A task's buffer drains at a full barrier of that task: a
//! read-modify-write or `SeqCst` store, `fence(SeqCst)`, a wait-queue or
//! lock operation (they take a lock: a locked instruction on x86), a
//! publishing operation of the runtime's primitives (a spawn, a task's
//! wake, a semaphore release: `waitq::hook::barrier`; a channel's wake
//! after a send: `WaitQueue::waitqueue_active_after_barrier`), and the
//! end of its poll
//! (the runtime's poll ends with a read-modify-write of the task's state).
//! So the window is inside one poll, and other tasks run in it only at
//! the poll's decision points: a `waitrt::sync::atomic` access, and
//! `waitqueue_active()`, which is a decision point *after* its read while
//! the task has buffered stores (so that a waiter can link between the
//! waker's peek and what the waker does with it).
//!
//! Not modelled: stores of two tasks to one address both buffered. A
//! store or read-modify-write that reaches an address another task's
//! buffer holds drains that task's whole buffer first (in order, as a
//! store buffer drains: once that store is visible, so are the task's
//! earlier ones).

use std::collections::BTreeMap;

use super::{current, Sim};

/// The store buffers of one run.
#[derive(Default)]
pub(super) struct WeakMemory {
    /// Per address with a buffered store: its owner and the value other
    /// tasks still read.
    hidden: BTreeMap<usize, (u32, u64)>,
}

impl WeakMemory {
    fn drain(&mut self, slot: u32) {
        self.hidden.retain(|_, (owner, _)| *owner != slot);
    }

    /// Drains the whole buffer of the task whose buffered store hides
    /// `addr`, if any: a store buffer drains in order, so once that store
    /// is visible (another task's store or read-modify-write reached it)
    /// so is every store the task made before it.
    fn drain_holder_of(&mut self, addr: usize) {
        if let Some(&(owner, _)) = self.hidden.get(&addr) {
            self.drain(owner);
        }
    }

    fn owns_any(&self, slot: u32) -> bool {
        self.hidden.values().any(|(owner, _)| *owner == slot)
    }
}

impl Sim {
    /// The running task, when this run models weak memory.
    fn weak_current(&self) -> Option<u32> {
        if !self.cfg.weak_memory {
            return None;
        }
        let st = self.st.borrow();
        if st.in_driver || st.failure.is_some() {
            return None;
        }
        st.running.last().copied()
    }

    /// A full barrier of the running task: its buffer drains.
    pub(super) fn weak_barrier(&self) {
        if let Some(slot) = self.weak_current() {
            self.st.borrow_mut().weak.drain(slot);
        }
    }

    /// Whether the running task has stores in its buffer.
    pub(super) fn weak_buffered(&self) -> bool {
        self.weak_current()
            .is_some_and(|slot| self.st.borrow().weak.owns_any(slot))
    }

    /// A poll of `slot` ended: its buffer drains.
    pub(super) fn weak_poll_end(&self, slot: u32) {
        self.st.borrow_mut().weak.drain(slot);
    }
}

// ===== what `crate::sync::atomic` calls (only while a hook is installed) =====

/// A load of `addr` by the running task: the value it must see instead of
/// memory's, if another task's buffer holds a store to it.
pub(crate) fn load(addr: usize) -> Option<u64> {
    let sim = current()?;
    let slot = sim.weak_current()?;
    let st = sim.st.borrow();
    match st.weak.hidden.get(&addr) {
        Some(&(owner, old)) if owner != slot => Some(old),
        _ => None,
    }
}

/// A store to `addr`, about to replace `old` in memory. A `SeqCst` one
/// is a full barrier; a weaker one is buffered: other tasks keep seeing
/// `old` (or the older value a store already buffered by this task hid).
pub(crate) fn store(addr: usize, old: u64, seq_cst: bool) {
    let Some(sim) = current() else { return };
    let Some(slot) = sim.weak_current() else {
        return;
    };
    let mut st = sim.st.borrow_mut();
    if seq_cst {
        st.weak.drain(slot);
        st.weak.drain_holder_of(addr);
        return;
    }
    match st.weak.hidden.get(&addr) {
        Some(&(owner, _)) if owner == slot => {} // the older value stays hidden
        _ => {
            // Another task's buffered store to it drains first, with all
            // that task's earlier stores (see the module docs): `old` is
            // that store's value.
            st.weak.drain_holder_of(addr);
            st.weak.hidden.insert(addr, (slot, old));
        }
    }
}

/// A read-modify-write of `addr`: a full barrier of the running task, and
/// any buffered store to `addr` drains first.
pub(crate) fn read_modify_write(addr: usize) {
    let Some(sim) = current() else { return };
    let Some(slot) = sim.weak_current() else {
        return;
    };
    let mut st = sim.st.borrow_mut();
    st.weak.drain(slot);
    st.weak.drain_holder_of(addr);
}

/// `fence(SeqCst)`: a full barrier of the running task.
pub(crate) fn fence() {
    if let Some(sim) = current() {
        sim.weak_barrier();
    }
}

/// The atomic at `addr` goes away (or is accessed exclusively): nothing
/// of it stays buffered, so an atomic made later at the same address
/// starts clean.
pub(crate) fn forget(addr: usize) {
    if let Some(sim) = current() {
        sim.st.borrow_mut().weak.hidden.remove(&addr);
    }
}
