//! Shared helpers for the top-level tests and benches.
