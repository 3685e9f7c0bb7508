//! Keeping hand-written hot-path statements prepared.
//!
//! diesel caches prepared statements only for queries whose type identifies their SQL;
//! `sql_query` cannot (its text is a runtime string), so it is parsed and planned on every
//! call: an extra round trip and a fresh plan. [`Cached`] marks a `sql_query` whose text is a
//! constant with a type of its own, so diesel-async prepares it once per connection. Used for
//! retain, release and heartbeat, where it measured about a third faster.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::QueryResult;
use std::marker::PhantomData;

/// A statement `Q` whose SQL is the constant named by the marker type `Id`.
pub(crate) struct Cached<Id, Q> {
    query: Q,
    id: PhantomData<fn() -> Id>,
}

/// Marks `query` (built from a constant SQL text) as the statement `Id`.
pub(crate) fn cached<Id: 'static, Q>(query: Q) -> Cached<Id, Q> {
    Cached {
        query,
        id: PhantomData,
    }
}

impl<Id: 'static, Q> QueryId for Cached<Id, Q> {
    type QueryId = Id;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<Id, Q: Query> Query for Cached<Id, Q> {
    type SqlType = Q::SqlType;
}

impl<Id, Q: QueryFragment<Pg>> QueryFragment<Pg> for Cached<Id, Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.query.walk_ast(pass)
    }

    /// The text is constant and the bind types are fixed, so the prepared statement may be
    /// reused (`sql_query` itself must say no: its text could be anything).
    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}
