//! The test database harness (filled in by the PostgreSQL work).
