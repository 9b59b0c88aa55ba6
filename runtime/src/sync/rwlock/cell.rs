//! Where an [`RwLock`](super::RwLock)'s value lives, reached without
//! `unsafe`: readers share it through an `Arc` (each read guard holds a
//! clone, so `&T` lives as long as the guard), the writer reaches it
//! through `Arc::get_mut` (no reader holds a clone while a writer holds
//! the lock: read guards drop their clone before they give back their
//! permit). The value moves into its `Arc` at the first read (one
//! allocation for the lock's life), so `const_new` needs no allocation.

use std::sync::Arc;

/// The value of an `RwLock`.
#[derive(Debug)]
pub(super) enum Slot<T> {
    /// Never read yet.
    Here(T),
    /// Read at least once.
    Shared(Arc<T>),
    /// Moved into an owned write guard for the time it holds the lock.
    Out,
}

impl<T> Slot<T> {
    /// A reader's handle (the caller holds a read permit).
    pub(super) fn share(&mut self) -> Arc<T> {
        if let Slot::Here(_) = self {
            if let Slot::Here(value) = std::mem::replace(self, Slot::Out) {
                *self = Slot::Shared(Arc::new(value));
            }
        }
        match self {
            Slot::Shared(value) => value.clone(),
            _ => unreachable!("a reader finds the value in place"),
        }
    }

    pub(super) fn get(&self) -> &T {
        match self {
            Slot::Here(value) => value,
            Slot::Shared(value) => value,
            Slot::Out => unreachable!("the value is in place while a guard holds the lock"),
        }
    }

    /// The writer's access (the caller holds every permit, so no reader
    /// holds a clone).
    pub(super) fn get_mut(&mut self) -> &mut T {
        match self {
            Slot::Here(value) => value,
            Slot::Shared(value) => match Arc::get_mut(value) {
                Some(value) => value,
                None => unreachable!("no reader holds the value while a writer does"),
            },
            Slot::Out => unreachable!("the value is in place while a guard holds the lock"),
        }
    }

    pub(super) fn into_inner(self) -> T {
        match self {
            Slot::Here(value) => value,
            Slot::Shared(value) => match Arc::try_unwrap(value) {
                Ok(value) => value,
                Err(_) => unreachable!("no reader outlives the lock"),
            },
            Slot::Out => unreachable!("no owned guard outlives the lock"),
        }
    }
}
