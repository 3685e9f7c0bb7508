//! The storage contract suite (filled in by the foundation work).
