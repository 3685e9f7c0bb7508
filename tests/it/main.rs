//! The one integration-test binary: every suite is a module, so the graph links once.

// The whole crate is tests and their harness: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod bench;
mod cli;
mod dashboard;
mod deploy;
mod events;
mod hardening;
mod http;
mod memory;
mod pgbouncer;
mod postgres;
mod tls;
