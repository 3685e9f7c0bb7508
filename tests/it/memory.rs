//! The storage contract suite on the in-memory adapter.
