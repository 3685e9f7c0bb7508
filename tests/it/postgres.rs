//! The PostgreSQL adapter against a real database.
