//! Guides: longer walks through a task, each a page of its own. Every code
//! block in them runs as a doctest.
//!
//! - [Coming from tokio](coming_from_tokio): each tokio item and ours side
//!   by side; which tokio-ecosystem crates work on this runtime, which do
//!   not, and why; `futures::io` versus tokio's I/O traits.
//! - [Write a server](write_a_server): an accept loop that backs off when
//!   out of file descriptors, a task per connection, graceful shutdown on
//!   Ctrl-C and `SIGTERM` with a deadline, and how to test all of it.
//! - The test toolkit's guide is in [`test_util`](crate::test_util).
//!
//! The modules here hold no code; they are pages.

#[doc = include_str!("guide/coming_from_tokio.md")]
pub mod coming_from_tokio {}

#[doc = include_str!("guide/write_a_server.md")]
pub mod write_a_server {}
