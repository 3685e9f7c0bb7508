//! The storage contract suite on the in-memory adapter.

use pgqueue_memory::MemoryStore;
use pgqueue_ports::ManualClock;
use pgqueue_tests::contract::Subject;
use std::sync::Arc;

/// A fresh in-memory store on the test's clock.
pub async fn subject(clock: Arc<ManualClock>) -> Subject {
    Subject {
        store: Arc::new(MemoryStore::new(clock.clone())),
        clock,
        guard: Box::new(()),
    }
}

pgqueue_tests::store_contract_tests!(subject);
