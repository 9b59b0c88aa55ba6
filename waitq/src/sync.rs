//! The only module that names `std::sync`: a single seam where a model
//! checker or the runtime's deterministic toolkit can swap the primitives.

pub(crate) use std::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
pub(crate) use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
