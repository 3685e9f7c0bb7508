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

/// A fresh in-memory store on this process's clock.
pub async fn realtime() -> pgqueue_tests::runtime::Realtime {
    pgqueue_tests::runtime::Realtime {
        store: Arc::new(MemoryStore::default()),
        guard: Box::new(()),
    }
}

mod runtime {
    pgqueue_tests::runtime_tests!(super::realtime);
}
