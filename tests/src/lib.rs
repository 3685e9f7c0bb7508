//! pgqueue's shared test harness: the storage contract suite, the test database, and helpers
//! to start servers and binaries. The tests themselves live in `it/` (one test binary, so the
//! dependency graph is linked once).

// The whole crate is tests and their harness: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod binary;
pub mod contract;
pub mod db;
pub mod logs;
pub mod pgbouncer;
pub mod runtime;
pub mod served;
