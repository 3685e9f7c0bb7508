//! Queues: their policy rows, listings, status counts and namespaces.

use crate::error::{PgError, conflict_on_unique};
use crate::schema::queues;
use crate::sql::{Now, status_sql, with_now};
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Double, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use pgqueue_domain::{
    Duration, Namespace, Page, Queue, QueueName, QueuePatch, Rate, Status, StatusCount,
};
use pgqueue_ports::{Listing, StoreError};

/// One row of `queues`.
#[derive(QueryableByName, Debug)]
#[diesel(table_name = queues)]
pub(crate) struct QueueRow {
    namespace: String,
    name: String,
    ttl: i64,
    retries: i32,
    retry_delay: i64,
    lease: i64,
    paused_at: Option<DateTime<Utc>>,
    max_running: Option<i32>,
    rate_per_second: Option<f64>,
    rate_burst: Option<i32>,
}

impl QueueRow {
    fn into_queue(self) -> Result<Queue, PgError> {
        let corrupt = |what: &str| {
            PgError::Store(StoreError::Unavailable(
                format!("queue {:?} has an invalid {what}", self.name).into(),
            ))
        };
        Ok(Queue {
            name: QueueName::parse(&self.name).map_err(|_| corrupt("name"))?,
            ttl: Duration::from_nanos(self.ttl),
            retries: u32::try_from(self.retries).map_err(|_| corrupt("retries"))?,
            retry_delay: Duration::from_nanos(self.retry_delay),
            lease: Duration::from_nanos(self.lease),
            namespace: Namespace::parse(&self.namespace).map_err(|_| corrupt("namespace"))?,
            paused_at: self.paused_at,
            max_running: self
                .max_running
                .map(u32::try_from)
                .transpose()
                .map_err(|_| corrupt("max_running"))?,
            rate: match (self.rate_per_second, self.rate_burst) {
                (Some(per_second), Some(burst)) => Some(
                    u32::try_from(burst)
                        .ok()
                        .and_then(|burst| Rate::new(per_second, burst).ok())
                        .ok_or_else(|| corrupt("rate"))?,
                ),
                _ => None,
            },
        })
    }
}

/// A count or burst as SQL's INTEGER (every one the domain allows fits).
fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The SET list that applies a patch's limits to the queue row (`$given_max`, `$max`,
/// `$given_rate`, `$per_second`, `$burst`): a limit given as `null` is removed, and a removed
/// rate takes its bucket with it (set again, it starts full). Bumps `claim_seq`, so a claim
/// that read the old limits starts over (`tasks/limited.rs`).
macro_rules! set_limits {
    ($given_max:literal, $max:literal, $given_rate:literal, $per_second:literal, $burst:literal) => {
        concat!(
            "claim_seq = queues.claim_seq + 1, max_running = CASE WHEN ",
            $given_max,
            " THEN ",
            $max,
            "::integer ELSE queues.max_running END, \
             rate_per_second = CASE WHEN ",
            $given_rate,
            " THEN ",
            $per_second,
            "::float8 ELSE queues.rate_per_second END, \
             rate_burst = CASE WHEN ",
            $given_rate,
            " THEN ",
            $burst,
            "::integer ELSE queues.rate_burst END, \
             rate_tokens = CASE WHEN ",
            $given_rate,
            " AND ",
            $per_second,
            "::float8 IS NULL THEN NULL ELSE queues.rate_tokens END, \
             rate_at = CASE WHEN ",
            $given_rate,
            " AND ",
            $per_second,
            "::float8 IS NULL THEN NULL ELSE queues.rate_at END"
        )
    };
}

/// Binds a patch's limits as the five parameters [`set_limits`] reads, in its order.
macro_rules! bind_limits {
    ($query:expr, $patch:expr) => {{
        let patch: &QueuePatch = $patch;
        let rate = patch.rate().flatten();
        $query
            .bind::<Bool, _>(patch.max_running().is_some())
            .bind::<Nullable<Integer>, _>(patch.max_running().flatten().map(int))
            .bind::<Bool, _>(patch.rate().is_some())
            .bind::<Nullable<Double>, _>(rate.map(|r| r.per_second()))
            .bind::<Nullable<Integer>, _>(rate.map(|r| int(r.burst())))
    }};
}

/// The one row of a keyed statement, or NotFound.
fn first(rows: Vec<QueueRow>, name: &QueueName) -> Result<Queue, PgError> {
    rows.into_iter()
        .next()
        .ok_or_else(|| StoreError::not_found("queue", name).into())
        .and_then(QueueRow::into_queue)
}

fn retries(n: Option<u32>) -> Option<i32> {
    n.map(|n| i32::try_from(n).unwrap_or(i32::MAX))
}

/// The queue, or NotFound.
pub(crate) async fn get(
    conn: &mut AsyncPgConnection,
    ns: &Namespace,
    name: &QueueName,
) -> Result<Queue, PgError> {
    let row: Option<QueueRow> = crate::listing::by_key(conn, "queues", ns, name.as_str()).await?;
    first(row.into_iter().collect(), name)
}

/// The queue with the defaults and then the patch (its name ignored).
fn with_defaults(ns: &Namespace, name: &QueueName, patch: &QueuePatch) -> Queue {
    Queue::from_patch(ns.clone(), name.clone(), patch)
}

const INSERT: &str = "INSERT INTO queues (namespace, name, ttl, retries, retry_delay, lease, \
       max_running, rate_per_second, rate_burst) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Binds the new queue `q` as [`INSERT`]'s parameters.
macro_rules! bind_insert {
    ($query:expr, $q:expr) => {{
        let q: &Queue = $q;
        $query
            .bind::<Text, _>(q.namespace.as_str())
            .bind::<Text, _>(q.name.as_str())
            .bind::<BigInt, _>(q.ttl.as_nanos())
            .bind::<Integer, _>(retries(Some(q.retries)).unwrap_or(0))
            .bind::<BigInt, _>(q.retry_delay.as_nanos())
            .bind::<BigInt, _>(q.lease.as_nanos())
            .bind::<Nullable<Integer>, _>(q.max_running.map(int))
            .bind::<Nullable<Double>, _>(q.rate.map(|r| r.per_second()))
            .bind::<Nullable<Integer>, _>(q.rate.map(|r| int(r.burst())))
    }};
}

/// Creates the queue; Conflict if it exists.
pub(crate) async fn create(
    conn: &mut AsyncPgConnection,
    ns: &Namespace,
    name: &QueueName,
    patch: &QueuePatch,
) -> Result<Queue, PgError> {
    let q = with_defaults(ns, name, patch);
    let rows: Vec<QueueRow> = bind_insert!(diesel::sql_query(format!("{INSERT} RETURNING *")), &q)
        .load(conn)
        .await
        .map_err(|e| conflict_on_unique(e.into(), "queue already exists"))?;
    first(rows, name)
}

/// Upsert: creates with defaults + patch, or applies the patch's fields to the existing one.
pub(crate) async fn register(
    conn: &mut AsyncPgConnection,
    ns: &Namespace,
    name: &QueueName,
    patch: &QueuePatch,
) -> Result<Queue, PgError> {
    let q = with_defaults(ns, name, patch);
    let sql = format!(
        "{INSERT} ON CONFLICT (namespace, name) DO UPDATE SET \
           ttl = coalesce($10, queues.ttl), retries = coalesce($11, queues.retries), \
           retry_delay = coalesce($12, queues.retry_delay), lease = coalesce($13, queues.lease), \
           {} RETURNING *",
        set_limits!("$14", "$15", "$16", "$17", "$18")
    );
    let query = bind_insert!(diesel::sql_query(sql), &q)
        .bind::<Nullable<BigInt>, _>(patch.ttl().map(Duration::as_nanos))
        .bind::<Nullable<Integer>, _>(retries(patch.retries()))
        .bind::<Nullable<BigInt>, _>(patch.retry_delay().map(Duration::as_nanos))
        .bind::<Nullable<BigInt>, _>(patch.lease().map(Duration::as_nanos));
    let rows: Vec<QueueRow> = bind_limits!(query, patch).load(conn).await?;
    first(rows, name)
}

/// Applies the patch; a new name renames, and the queue's tasks follow in the same
/// transaction. The update locks the queue's row first, so an insert into the queue either
/// committed before (its tasks are renamed by the second statement, which sees them) or
/// waits and then finds no queue by the old name.
pub(crate) async fn update(
    conn: &mut AsyncPgConnection,
    ns: &Namespace,
    name: &QueueName,
    patch: &QueuePatch,
) -> Result<Queue, PgError> {
    conn.transaction(async |conn| -> Result<Queue, PgError> {
        let queue = update_row(conn, ns, name, patch).await?;
        if queue.name != *name {
            diesel::sql_query("UPDATE tasks SET queue = $3 WHERE namespace = $1 AND queue = $2")
                .bind::<Text, _>(ns.as_str())
                .bind::<Text, _>(name.as_str())
                .bind::<Text, _>(queue.name.as_str())
                .execute(conn)
                .await?;
        }
        Ok(queue)
    })
    .await
}

async fn update_row(
    conn: &mut AsyncPgConnection,
    ns: &Namespace,
    name: &QueueName,
    patch: &QueuePatch,
) -> Result<Queue, PgError> {
    let query = diesel::sql_query(concat!(
        "UPDATE queues SET name = coalesce($3, name), ttl = coalesce($4, ttl), \
           retries = coalesce($5, retries), retry_delay = coalesce($6, retry_delay), \
           lease = coalesce($7, lease), ",
        set_limits!("$8", "$9", "$10", "$11", "$12"),
        " WHERE namespace = $1 AND name = $2 RETURNING *"
    ))
    .bind::<Text, _>(ns.as_str())
    .bind::<Text, _>(name.as_str())
    .bind::<Nullable<Text>, _>(patch.name().map(QueueName::as_str))
    .bind::<Nullable<BigInt>, _>(patch.ttl().map(Duration::as_nanos))
    .bind::<Nullable<Integer>, _>(retries(patch.retries()))
    .bind::<Nullable<BigInt>, _>(patch.retry_delay().map(Duration::as_nanos))
    .bind::<Nullable<BigInt>, _>(patch.lease().map(Duration::as_nanos));
    let rows: Vec<QueueRow> = bind_limits!(query, patch)
        .load(conn)
        .await
        .map_err(|e| conflict_on_unique(e.into(), "queue already exists"))?;
    first(rows, name)
}

/// Deletes the queue and its tasks in one transaction; returns the queue. Deleting the
/// queue's row first waits for inserts into it to commit (they lock it), and the tasks are
/// deleted by a second statement, which sees them.
pub(crate) async fn delete(
    conn: &mut AsyncPgConnection,
    ns: &Namespace,
    name: &QueueName,
) -> Result<Queue, PgError> {
    conn.transaction(async |conn| -> Result<Queue, PgError> {
        let rows: Vec<QueueRow> =
            diesel::sql_query("DELETE FROM queues WHERE namespace = $1 AND name = $2 RETURNING *")
                .bind::<Text, _>(ns.as_str())
                .bind::<Text, _>(name.as_str())
                .load(conn)
                .await?;
        let queue = first(rows, name)?;
        diesel::sql_query("DELETE FROM tasks WHERE namespace = $1 AND queue = $2")
            .bind::<Text, _>(ns.as_str())
            .bind::<Text, _>(name.as_str())
            .execute(conn)
            .await?;
        Ok(queue)
    })
    .await
}

/// Pauses (keeping the first pause's time) or resumes the queue; resuming notifies its
/// channel so idle workers look at once.
pub(crate) async fn pause(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    name: &QueueName,
    paused: bool,
) -> Result<Queue, PgError> {
    let rows: Vec<QueueRow> = diesel::sql_query(concat!(
        with_now!(),
        ", q AS (UPDATE queues SET paused_at = CASE WHEN $4 THEN coalesce(paused_at, c.now) END \
           FROM c WHERE namespace = $2 AND name = $3 RETURNING queues.*), \
         recorded AS (INSERT INTO task_events (at, namespaces, queues, tasks, kinds, statuses) \
           SELECT c.now, ARRAY[q.namespace], ARRAY[q.name], ARRAY[NULL::bigint], \
             ARRAY[CASE WHEN $4 THEN 'paused' ELSE 'resumed' END], ARRAY[NULL::text] FROM q, c) \
         SELECT q.* FROM q LEFT JOIN (SELECT pg_notify('pgqueue', 'task:' || $2 || ':' || $3) \
           FROM q WHERE NOT $4) AS woken ON true"
    ))
    .bind::<Nullable<Timestamptz>, _>(now)
    .bind::<Text, _>(ns.as_str())
    .bind::<Text, _>(name.as_str())
    .bind::<diesel::sql_types::Bool, _>(paused)
    .load(conn)
    .await?;
    first(rows, name)
}

/// Queues by name, one page, with the total.
pub(crate) async fn list(
    conn: &mut AsyncPgConnection,
    ns: &Namespace,
    page: Page,
) -> Result<Listing<Queue>, PgError> {
    let (count, rows) = crate::listing::by_name::<QueueRow>(conn, "queues", ns, page).await?;
    let items = rows
        .into_iter()
        .map(QueueRow::into_queue)
        .collect::<Result<_, _>>()?;
    Ok(Listing { count, items })
}

#[derive(QueryableByName)]
struct StatusRow {
    #[diesel(sql_type = Text)]
    queue: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// Every queue × every status (in `Status::ALL` order), zeros included.
pub(crate) async fn statuses(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
) -> Result<Vec<StatusCount>, PgError> {
    let sql = format!(
        "{}SELECT t.queue AS queue, {} AS status, count(*) AS count \
         FROM tasks t CROSS JOIN c WHERE t.namespace = $2 GROUP BY 1, 2",
        with_now!(),
        status_sql!()
    );
    let counts: Vec<StatusRow> = diesel::sql_query(sql)
        .bind::<Nullable<Timestamptz>, _>(now)
        .bind::<Text, _>(ns.as_str())
        .load(conn)
        .await?;
    let names: Vec<NameRow> = diesel::sql_query(
        "SELECT name FROM queues WHERE namespace = $1 ORDER BY name COLLATE \"C\"",
    )
    .bind::<Text, _>(ns.as_str())
    .load(conn)
    .await?;
    let mut out = Vec::with_capacity(names.len() * Status::ALL.len());
    for NameRow { name } in names {
        let queue =
            QueueName::parse(&name).map_err(|e| StoreError::Unavailable(e.to_string().into()))?;
        for status in Status::ALL {
            let count = counts
                .iter()
                .find(|c| c.queue == name && c.status == status.as_str())
                .map_or(0, |c| u64::try_from(c.count).unwrap_or(0));
            out.push(StatusCount {
                queue: queue.clone(),
                status,
                count,
            });
        }
    }
    Ok(out)
}

#[derive(QueryableByName)]
struct NameRow {
    #[diesel(sql_type = Text)]
    name: String,
}

/// Namespaces that have a queue or a ticker, sorted.
pub(crate) async fn namespaces(conn: &mut AsyncPgConnection) -> Result<Vec<Namespace>, PgError> {
    let rows: Vec<NameRow> = diesel::sql_query(
        "SELECT name FROM (SELECT namespace AS name FROM queues \
         UNION SELECT namespace FROM tickers) AS n ORDER BY name COLLATE \"C\"",
    )
    .load(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Namespace::parse(&r.name)
                .map_err(|e| StoreError::Unavailable(e.to_string().into()).into())
        })
        .collect()
}
