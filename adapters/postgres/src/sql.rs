//! The SQL fragments every statement shares, each written once.
//!
//! Statements are constant strings (so the hot ones can stay prepared), assembled with
//! `concat!` from these fragments; a fragment that restates a domain rule names the rule,
//! and the tests at the bottom pin the constants it shares with the domain.
//!
//! Time: every statement takes the clock's answer as `$1` and works at `coalesce($1, now())`
//! (the CTE `c`, see [`with_now`]), and returns that instant beside its rows so that each
//! returned task's status is derived in Rust exactly as the domain does.

use chrono::{DateTime, Utc};

/// The instant every statement works at: the pinned clock, or `None` for the database's.
pub(crate) type Now = Option<DateTime<Utc>>;

/// `c.now` as the first CTE of every statement.
macro_rules! with_now {
    () => {
        "WITH c AS (SELECT coalesce($1::timestamptz, now()) AS now) "
    };
}
pub(crate) use with_now;

/// A BIGINT-nanoseconds duration as an interval of whole microseconds, the resolution of
/// `timestamptz` (domain: `Duration::as_micros`).
macro_rules! micros {
    ($nanos:literal) => {
        concat!("((", $nanos, ") / 1000) * interval '1 microsecond'")
    };
}
pub(crate) use micros;

/// `$t` plus the BIGINT-nanoseconds duration `$nanos`, stopping at the last instant RFC 3339
/// can write (domain: `time::add`, `time::MAX_TIMESTAMP`); NULL when `$t` is NULL (`least`
/// alone would skip the NULL and answer the maximum).
macro_rules! plus {
    ($t:literal, $nanos:literal) => {
        concat!(
            "(CASE WHEN (",
            $t,
            ") IS NOT NULL THEN least((",
            $t,
            ") + ",
            $crate::sql::micros!($nanos),
            ", '9999-12-31 23:59:59.999999+00'::timestamptz) END)"
        )
    };
}
pub(crate) use plus;

/// When an attempt starting at `c.now` in queue `q` loses its lease (domain: `Task::retain`,
/// `Task::heartbeat`).
macro_rules! lease_end {
    () => {
        $crate::sql::plus!("c.now", "q.lease")
    };
}
pub(crate) use lease_end;

/// The stored states of an ended task (domain: `State::is_finished`).
macro_rules! ended_states {
    () => {
        "('released', 'failed', 'cancelled')"
    };
}
pub(crate) use ended_states;

/// The stored states of a task that has not ended: it may expire, and it holds its unique key
/// while it has not (the partial unique index's predicate).
macro_rules! open_states {
    () => {
        "('new', 'retry', 'retained')"
    };
}
pub(crate) use open_states;

/// The derived status of the row `$t` (an alias with `state` and `dies_at`) at `c.now`
/// (domain: `Status::derive`).
macro_rules! status_of {
    ($t:literal) => {
        concat!(
            "(CASE WHEN ",
            $t,
            ".state IN ",
            $crate::sql::ended_states!(),
            " THEN ",
            $t,
            ".state WHEN ",
            $t,
            ".dies_at <= c.now THEN 'expired' ELSE ",
            $t,
            ".state END)"
        )
    };
}
pub(crate) use status_of;

/// The derived status of task `t` at `c.now` (domain: `Status::derive`).
macro_rules! status_sql {
    () => {
        $crate::sql::status_of!("t")
    };
}
pub(crate) use status_sql;

/// Task `r` may be retained at `c.now`: waiting, due and not expired (domain:
/// `Task::is_retainable`). The claim indexes' predicate is its first condition.
macro_rules! retainable {
    () => {
        "r.state IN ('new', 'retry') AND (r.delayed_at IS NULL OR r.delayed_at <= c.now) \
         AND r.dies_at > c.now"
    };
}
pub(crate) use retainable;

/// Task `t` may be released or heartbeated by worker `$worker` (NULL: anyone), joined to its
/// queue `q` (domain: `Task::check_holder`). A heartbeat adds that nobody asked it to stop.
///
/// The state is compared with a one-row subquery, not the literal, so that no partial index
/// on `state = 'retained'` can serve the statement: the tasks are then found by id through
/// the primary key, whatever the statistics say. With the literal, a generic plan of the
/// batched release read every `tasks_retained` entry of the namespace and hash-joined them
/// with the ids: cheap while few tasks are retained and the index is clean, but that index
/// holds one dead entry per task claimed since the last vacuum, and every running task of
/// the namespace, so each release grew with both (`tests/it/postgres/plans.rs`).
macro_rules! holder_guard {
    ($worker:literal) => {
        concat!(
            "t.state = (SELECT 'retained'::text) AND (",
            $worker,
            "::text IS NULL OR t.worker = ",
            $worker,
            ") AND q.namespace = t.namespace AND q.name = t.queue"
        )
    };
}
pub(crate) use holder_guard;

/// The SET list that ends an attempt of task `t` in queue `q` (domain: `Task::release`,
/// `Task::fail_attempt`): `$fail` (an SQL boolean) says whether it failed, `$result` is the
/// stored result. Success → `released`. Failure uses one attempt: asked to stop →
/// `cancelled`; attempts left → `retry` after `retry_delay × k²` (k = failures so far, this
/// one included); none left → `failed`. The cancel request ends with the attempt.
macro_rules! end_attempt_set {
    ($fail:literal, $result:literal) => {
        concat!(
            "retries = CASE WHEN ",
            $fail,
            " THEN greatest(t.retries - 1, 0) ELSE t.retries END, result = ",
            $result,
            ", lease_expires_at = NULL, cancel_requested_at = NULL, state = CASE WHEN NOT ",
            $fail,
            " THEN 'released' WHEN t.cancel_requested_at IS NOT NULL THEN 'cancelled' \
              WHEN t.retries - 1 > 0 THEN 'retry' ELSE 'failed' END, started_at = CASE WHEN ",
            $crate::sql::backs_off!($fail),
            " THEN NULL ELSE t.started_at END, finished_at = CASE WHEN ",
            $crate::sql::backs_off!($fail),
            " THEN t.finished_at ELSE c.now END, delayed_at = CASE WHEN ",
            $crate::sql::backs_off!($fail),
            " THEN ",
            $crate::sql::plus!(
                "c.now",
                "least(q.retry_delay::numeric * (t.max_retries - t.retries + 1) \
                   * (t.max_retries - t.retries + 1), 9223372036854775807)::bigint"
            ),
            " ELSE t.delayed_at END"
        )
    };
}
pub(crate) use end_attempt_set;

/// Whether ending an attempt of `t` (failed when `$fail`) leaves it waiting for a retry: it
/// failed, nobody asked it to stop, and attempts remain.
macro_rules! backs_off {
    ($fail:literal) => {
        concat!(
            "(",
            $fail,
            " AND t.cancel_requested_at IS NULL AND t.retries - 1 > 0)"
        )
    };
}
pub(crate) use backs_off;

/// The CTE `recorded` (with its leading comma): the events of the rows of CTE `$rows`
/// (tasks after — or, deleted, as of — the change, with `id`, `namespace`, `queue`, `state`
/// and `dies_at`) as ONE row of `task_events`, element by element in task id order (domain:
/// `TaskEvent::of_all`). `$kind` is each row's event kind, an SQL text over `ev` (NULL: that
/// row is no event); the status is the row's at `c.now`. No row changed, no event row.
macro_rules! record_events {
    ($rows:literal, $kind:expr) => {
        concat!(
            ", recorded AS (INSERT INTO task_events (at, namespaces, queues, tasks, kinds, statuses) \
               SELECT (SELECT now FROM c), array_agg(e.namespace ORDER BY e.id), array_agg(e.queue ORDER BY e.id), \
                 array_agg(e.id ORDER BY e.id), array_agg(e.kind ORDER BY e.id), \
                 array_agg(e.status ORDER BY e.id) \
               FROM (SELECT ev.id, ev.namespace, ev.queue, ",
            $kind,
            " AS kind, ",
            $crate::sql::status_of!("ev"),
            " AS status FROM ",
            $rows,
            " ev, c) e WHERE e.kind IS NOT NULL HAVING count(*) > 0)"
        )
    };
}
pub(crate) use record_events;

/// `$stmt`, a data-modifying statement on tasks returning `t.*, c.now AS now` after the CTEs
/// `$ctes` (which start with [`with_now`]), with its events recorded in the same statement
/// ([`record_events`]): it answers the same rows.
macro_rules! recorded {
    ($ctes:expr, $stmt:expr, $kind:expr) => {
        concat!(
            $ctes,
            ", changed AS (",
            $stmt,
            ")",
            $crate::sql::record_events!("changed", $kind),
            " SELECT * FROM changed"
        )
    };
}
pub(crate) use recorded;

/// A page bound as SQL's BIGINT.
pub(crate) fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use pgqueue_domain::time::MAX_TIMESTAMP_SQL;

    #[test]
    fn computed_times_stop_where_the_domain_stops_them() {
        assert!(plus!("x", "y").contains(MAX_TIMESTAMP_SQL));
    }

    #[test]
    fn the_lease_end_is_now_plus_the_queue_lease_in_microseconds() {
        assert_eq!(
            lease_end!(),
            "(CASE WHEN (c.now) IS NOT NULL THEN least((c.now) + ((q.lease) / 1000) \
             * interval '1 microsecond', '9999-12-31 23:59:59.999999+00'::timestamptz) END)"
        );
    }
}
