//! pgqueue's application core.
//!
//! The [`Manager`] is the one entry point for every interface: the HTTP adapter, the CLI and
//! embedding Rust programs all drive the same methods, so validation and rules are applied
//! once. It is bound to one namespace and talks to storage only through the
//! [`pgqueue_ports::Store`] port, so any adapter (PostgreSQL, memory, an embedder's own) fits.
//!
//! Architecture invariant: no I/O of its own (no SQL, no HTTP, no files); everything external
//! goes through a port. Background loops (worker runtime, ticker scheduler, maintenance) live
//! here too because they are rules about *when* to call the ports, not about how.

pub mod auth;
mod coalesce;
pub mod error;
pub mod manager;
pub mod observer;
pub mod runtime;
pub mod worker;

pub use error::{Error, Result};
pub use manager::{MAX_BATCH, MAX_REDRIVE, MAX_RETAIN, MAX_WAIT, Manager};
pub use observer::{NoopObserver, Observer};
pub use pgqueue_domain as domain;
pub use pgqueue_ports as ports;
pub use runtime::{Runtime, RuntimeConfig};
pub use worker::{TaskContext, Worker, WorkerReport};
