//! An async runtime whose every sleep and wake goes through a kernel-style
//! [`waitq::WaitQueue`].
//!
//! This crate is a placeholder until the runtime issue lands: it only
//! re-exports the wait queue as `runtime::sync`, the place runtime users will
//! find it.
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub, missing_debug_implementations)]

/// The wait queue primitive every part of the runtime sleeps on.
pub mod sync {
    pub use waitq::*;
}
