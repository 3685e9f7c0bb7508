//! The ports: what pgqueue's application core needs from the outside world.
//!
//! The core (`pgqueue-app`) talks only to these traits; adapters implement them
//! (`pgqueue-postgres`, `pgqueue-memory`, or an embedder's own). They are async because real
//! storage is I/O, and `mockall`-annotated (feature `mocks`) so the core's orchestration can be
//! unit-tested without any storage.
//!
//! Architecture invariant: this crate holds traits and plain data only; no logic beyond
//! conversions, no I/O.

pub mod clock;
pub mod error;
pub mod signal;
pub mod store;
pub mod tokens;

pub use clock::{Clock, ManualClock, StorageClock, SystemClock};
pub use error::{Failure, StoreError, StoreResult};
pub use signal::{Signal, Wakeup};
pub use store::{
    EventPage, FiredTicker, Limited, Listing, Maintenance, Retained, Store, TickerScope,
};
pub use tokens::{TokenRecord, TokenStore};

#[cfg(feature = "mocks")]
pub use clock::MockClock;
#[cfg(feature = "mocks")]
pub use store::MockStore;
#[cfg(feature = "mocks")]
pub use tokens::MockTokenStore;
