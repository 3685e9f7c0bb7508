//! pgqueue's storage ports in memory.
//!
//! Built directly on the domain's transition functions: every operation takes one lock,
//! applies the rule with the store's `now`, and writes the result back, so concurrent callers
//! see the same atomicity a database statement gives (no task handed to two retainers).
//! Useful for embedding pgqueue without a database, for demos (`pgqueue run` with no URL),
//! and as the executable model the PostgreSQL adapter is compared against in the
//! differential simulation. Nothing is persisted.
//!
//! Architecture invariant: no rule is written here that is not in `pgqueue-domain`; this
//! crate only selects, orders and stores.

mod claim;
mod events;
mod operate;
mod queues;
mod state;
mod store;
mod tasks;
mod tickers;
mod tokens;

pub use store::MemoryStore;
