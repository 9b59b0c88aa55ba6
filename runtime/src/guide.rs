//! Guides: longer walks through a task, each a page of its own. Every code
//! block in them runs as a doctest.
//!
//! - [Coming from tokio](coming_from_tokio): each tokio item and ours side
//!   by side; which tokio-ecosystem crates work on this runtime, which do
//!   not, and why; `futures::io` versus tokio's I/O traits.
//! - The test toolkit's guide is in [`test_util`](crate::test_util).
//!
//! The modules here hold no code; they are pages.

#[doc = include_str!("guide/coming_from_tokio.md")]
pub mod coming_from_tokio {}
