//! The one integration-test binary: every suite is a module, so the graph links once.

mod cli;
mod hardening;
mod http;
mod memory;
mod postgres;
