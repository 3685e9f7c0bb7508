//! pgqueue's storage on PostgreSQL: the [`Store`](pgqueue_ports::Store) port over diesel-async + bb8, with embedded
//! migrations and LISTEN/NOTIFY wake-ups.
//!
//! # Time
//! Every decision (is a task due, expired, has a ticker matured, when does a lease end) is
//! taken inside the statement that acts on it, at `coalesce($1, now())`: each statement binds
//! the store's [`Clock`](pgqueue_ports::Clock) answer as a nullable `timestamptz`. In production the clock is
//! [`StorageClock`](pgqueue_ports::StorageClock), which answers `NULL`, so every process uses the **database's** clock and
//! servers on different hosts agree. Tests and simulations pass a
//! [`ManualClock`](pgqueue_ports::ManualClock) and drive time by hand. `now()` is
//! transaction-start time, so one statement sees one instant; statements return it beside
//! their rows, and each returned task's status is derived from it with
//! `Status::derive`, exactly as the domain does. Durations are stored as BIGINT nanoseconds
//! and added as whole microseconds (`t + (ns / 1000) * interval '1 microsecond'`), like
//! `domain::time::add`.
//!
//! # Schema (`migrations/`)
//! - `queues (namespace, name)`: policy (`ttl`, `retries`, `retry_delay`, `lease`), with
//!   CHECKs mirroring the domain's ranges, `paused_at` while paused, and flow control:
//!   `max_running`, the rate (`rate_per_second`, `rate_burst`) and its token bucket
//!   (`rate_tokens` left at `rate_at`; NULL: full), and `claim_seq`, bumped by every claim of
//!   a limited queue and every change of its limits.
//! - `tasks (id)`: one row per task; `state` is the stored lifecycle state (`expired` is never
//!   stored, it is derived); `cancel_requested_at` while a retained task is asked to stop.
//!   No foreign key to `queues` (the second migration dropped it: its
//!   per-row check cost a row lock per inserted task): inserting locks the queue's row once
//!   per statement (`FOR KEY SHARE`), and deleting or renaming a queue deletes or renames its
//!   tasks in the same transaction, after locking that row, so no task outlives its queue.
//!   Aggressive per-table autovacuum settings, because tasks churn; [`Store::maintain`](pgqueue_ports::Store::maintain)
//!   (`maintenance.rs`) vacuums and analyses when autovacuum is off.
//! - `tickers (namespace, name)`: an `interval` or a `cron` expression with its `timezone`
//!   (a CHECK keeps exactly one), `next_at` (the next maturity, computed by the domain),
//!   `timestamp` of the last maturity, `paused_at`, optional `queue` with no
//!   foreign key (a deleted queue makes a maturity be skipped, not the ticker disappear).
//!
//! Indexes, each for one statement:
//! - `tasks_retainable_by_queue (namespace, queue, priority DESC, created_at, id) WHERE state
//!   IN ('new','retry')` and `tasks_retainable (namespace, priority DESC, created_at, id)` with
//!   the same predicate: the claim reads only waiting rows, already in claim order (higher
//!   priority first, then the oldest), for one queue or for several or any; finished rows
//!   never enter these indexes, so the claim does not slow down as history grows, and it
//!   never sorts the backlog (a plan test holds this with 1,000,000 waiting tasks).
//! - `tasks_late_by_queue (namespace, queue, priority DESC, created_at, id) WHERE state =
//!   'retry' OR (state = 'new' AND delayed_at IS NOT NULL)`: the tasks that became
//!   retainable after their creation. A one-queue claim walks each priority from a floor past
//!   the last task it took (`tasks/floors.rs`: under a held horizon the claim then does not
//!   step over the entries of every task claimed since), and reads these first, from below
//!   the floor.
//! - `tasks_unique_key (namespace, queue, unique_key) UNIQUE WHERE unique_key IS NOT NULL AND
//!   state IN ('new','retry','retained')`: a key is held once while its task waits or runs;
//!   tasks without a key are not in it.
//! - `tasks_retained (namespace, queue, lease_expires_at) WHERE state = 'retained'`: counting a
//!   limited queue's running tasks (a short range), and lease rescue (the whole index, as
//!   small as the number of tasks running).
//! - `tasks_finished (finished_at) WHERE state IN ('released','failed','cancelled')`:
//!   clean-up of finished tasks. Expired unfinished tasks have no index of their own (a third migration dropped
//!   `tasks_dies`: every create and claim paid for it, and generic claim plans picked it up
//!   and read every waiting task); the hourly clean-up finds them in its id-order scan.
//! - `tasks_queue (namespace, queue, id)`: listings, counts and `clean_queue` of one queue, and
//!   deleting or renaming a queue's tasks.
//!
//! Migrations are applied by [`PgStore::connect`], under a `pg_advisory_lock`, so several
//! processes may start at once. [`PgOptions::schema`] puts the tables in a schema of their own
//! (created if missing); every connection sets its `search_path` to it.
//!
//! # Claims
//! Retain, lease rescue and clean-up are each one `UPDATE`/`DELETE` over a
//! `SELECT … FOR UPDATE SKIP LOCKED` subquery (ticker claims are a compare-and-swap of the
//! stored `next_at` with the same `SKIP LOCKED` guard, see `tickers/claim.rs`): many processes share the work without blocking
//! each other and no row is handed out twice. Release and heartbeat are one `UPDATE` each,
//! fenced on the worker; only when they match nothing is the row read once to say why. Paused
//! queues are left out of a claim by one InitPlan over `queues` per statement, never by a
//! per-task lookup; so are queues with a limit, whose claims (`tasks/limited.rs`) read the
//! queue's count and bucket, ask the domain how many to take, and claim them in a statement
//! that goes ahead only if no other claim bumped the queue's `claim_seq` since the read:
//! exact across processes. Only a claim that came back short looks for limited queues.
//! `release_tasks` releases a batch in one statement over arrays. Creating tasks is one
//! `INSERT … SELECT … FROM unnest(…) WITH ORDINALITY` whatever the batch size. The hot-path
//! statements (create, retain, release, heartbeat) stay prepared on each pooled connection; the
//! others are hand-written SQL parsed per call (they are not on the hot path).
//!
//! Tickers have no foreign key to their queue: that the queue exists when a ticker is created
//! or updated is checked by the application core, like for every adapter; a queue deleted
//! later makes its maturities be claimed without a task (and logged).
//!
//! # Pool and errors
//! A bb8 pool whose checkout does no round trip (like `RecyclingMethod::Fast`) but drops
//! connections whose backend is gone; a statement that could not even be sent on such a
//! connection is retried once on another. Driver errors never leave the crate: unique
//! violations become `StoreError::Conflict`, pool timeouts and connection failures
//! `StoreError::Unavailable`.
//!
//! # NOTIFY protocol
//! Channel `pgqueue`. Creating tasks notifies `task:<namespace>:<queue>`
//! from the inserting statement itself, so a rolled-back insert (for example in a caller's
//! transaction, see [`enqueue_in`]) wakes nobody. Within [`PgOptions::notify_debounce`]
//! (2 ms) of a queue's last wake-up, a create inserts quietly instead and, once committed,
//! makes sure one trailing NOTIFY follows at the window's end (`debounce.rs`): a burst costs
//! a few NOTIFYs, not one per task, and no committed task goes unannounced. Creating, registering, updating or deleting
//! a ticker notifies `ticker:<namespace>`. An operator's retry and a queue's rename also
//! notify `floor:<namespace>:<queue>`: tasks wait below what claims know of that queue's
//! floors, and every store forgets them (`tasks/floors.rs`); so does a create whose
//! transaction was open more than a second before it. Each store runs one listener on a dedicated
//! connection and relays these as [`Wakeup`](pgqueue_ports::Wakeup)s on [`Store::signal`](pgqueue_ports::Store::signal);
//! after reconnecting it sends `Wakeup::Resync`.

mod listen;

mod cached;
mod connect;
mod debounce;
mod enqueue;
mod error;
mod events;
mod listing;
mod maintenance;
mod migrate;
mod options;
mod queues;
mod reindex;
mod schema;
mod sql;
mod store;
#[cfg(feature = "test-support")]
pub mod support;
mod tasks;
mod tickers;
mod tokens;

pub use enqueue::enqueue_in;
pub use error::{PgError, QueryError};
pub use migrate::MigrationState;
pub use options::PgOptions;
pub use store::PgStore;

// The connection type of `enqueue_in`, so callers need not name diesel-async's path.
pub use diesel_async::AsyncPgConnection;
