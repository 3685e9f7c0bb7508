//! Ending attempts: releases, one or many in one statement (domain: `Task::release`), and
//! heartbeats (domain: `Task::heartbeat`), both fenced on the worker.

use super::{TaskRow, get};
use crate::cached::cached;
use crate::error::PgError;
use crate::sql::{Now, end_attempt_set, holder_guard, lease_end, recorded, with_now};
use diesel::sql_types::{Array, BigInt, Bool, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pgqueue_domain::{Error as DomainError, Namespace, Outcome, State, Task, TaskId, WorkerName};
use pgqueue_ports::StoreError;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// Many releases in one statement: each `(id, fail, result, worker)` row of the arrays is
/// applied with the release rule; the rows that matched come back, the others changed nothing.
const RELEASE: &str = recorded!(
    concat!(
        with_now!(),
        ", r AS (SELECT * FROM unnest($3::bigint[], $4::bool[], $5::jsonb[], $6::text[]) \
                AS r(id, fail, result, worker))"
    ),
    concat!(
        "UPDATE tasks t SET ",
        end_attempt_set!("r.fail", "r.result"),
        " FROM r, queues q, c WHERE t.id = r.id AND t.namespace = $2 AND ",
        holder_guard!("r.worker"),
        " RETURNING t.*, c.now AS now"
    ),
    "(CASE ev.state WHEN 'released' THEN 'released' WHEN 'cancelled' THEN 'cancelled' \
       ELSE 'failed' END)"
);

/// The text of [`RELEASE`], for the plan tests (`support::release_statement`).
#[cfg(feature = "test-support")]
pub(crate) fn release_statement() -> &'static str {
    RELEASE
}

/// Why a release or heartbeat changed nothing: unknown task, not retained, or retained by
/// someone else (the same checks, in the same order, as the domain's `check_holder`).
async fn refusal(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    id: TaskId,
    worker: Option<&WorkerName>,
    heartbeat: bool,
) -> PgError {
    let task = match get(conn, now, ns, id).await {
        Ok(task) => task,
        Err(e) => return e,
    };
    if task.state() != State::Retained {
        return StoreError::Rule(DomainError::NotRetained).into();
    }
    match worker {
        Some(w) if task.worker() != Some(w.as_str()) => {
            StoreError::Rule(DomainError::NotRetainedBy(w.as_str().to_string())).into()
        }
        Some(_) if heartbeat && task.cancel_requested_at().is_some() => {
            StoreError::Rule(DomainError::Cancelled).into()
        }
        // The row changed between the update and this read (released and retained again by
        // the same worker): report the refusal the update saw.
        _ => StoreError::Rule(DomainError::NotRetained).into(),
    }
}

/// Releases several tasks in one round trip (plus one read per refused release). When a task
/// is named more than once, the releases depend on each other, so they are applied one
/// statement each, in the given order.
pub(crate) async fn release_many(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    releases: &[(TaskId, Outcome)],
) -> Result<Vec<Result<Task, PgError>>, PgError> {
    let mut seen = HashSet::new();
    if !releases.iter().all(|(id, _)| seen.insert(*id)) {
        let mut out = Vec::with_capacity(releases.len());
        for one in releases {
            match Box::pin(release_many(conn, now, ns, std::slice::from_ref(one)))
                .await?
                .pop()
            {
                Some(result) => out.push(result),
                None => out.push(Err(StoreError::task_not_found(one.0).into())),
            }
        }
        return Ok(out);
    }
    let ids: Vec<i64> = releases.iter().map(|(id, _)| *id).collect();
    let fails: Vec<bool> = releases.iter().map(|(_, o)| o.is_failure()).collect();
    let results: Vec<Option<&Value>> = releases.iter().map(|(_, o)| o.result()).collect();
    let workers: Vec<Option<&str>> = releases
        .iter()
        .map(|(_, o)| o.worker().map(WorkerName::as_str))
        .collect();
    /// Prepared once per connection: a server coalescing single releases sends this for
    /// batches of one or two, where parsing and planning would cost more than the update.
    struct Release;
    let rows: Vec<TaskRow> = cached::<Release, _>(
        diesel::sql_query(RELEASE)
            .bind::<Nullable<Timestamptz>, _>(now)
            .bind::<Text, _>(ns.as_str())
            .bind::<Array<BigInt>, _>(ids)
            .bind::<Array<Bool>, _>(fails)
            .bind::<Array<Nullable<Jsonb>>, _>(results)
            .bind::<Array<Nullable<Text>>, _>(workers),
    )
    .load(conn)
    .await?;
    let mut released: HashMap<TaskId, Task> = rows
        .into_iter()
        .map(|r| r.into_task().map(|t| (t.id, t)))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(releases.len());
    for (id, outcome) in releases {
        match released.remove(id) {
            Some(task) => out.push(Ok(task)),
            None => out.push(Err(
                refusal(conn, now, ns, *id, outcome.worker(), false).await
            )),
        }
    }
    Ok(out)
}

const HEARTBEAT: &str = concat!(
    with_now!(),
    "UPDATE tasks t SET lease_expires_at = ",
    lease_end!(),
    " FROM queues q, c WHERE t.id = $2 AND t.namespace = $3 AND ",
    holder_guard!("$4"),
    " AND t.cancel_requested_at IS NULL RETURNING t.*, c.now AS now"
);

/// Extends `worker`'s lease (domain rule `Task::heartbeat`).
pub(crate) async fn heartbeat(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    id: TaskId,
    worker: &WorkerName,
) -> Result<Task, PgError> {
    struct Heartbeat;
    let row: Option<TaskRow> = cached::<Heartbeat, _>(
        diesel::sql_query(HEARTBEAT)
            .bind::<Nullable<Timestamptz>, _>(now)
            .bind::<BigInt, _>(id)
            .bind::<Text, _>(ns.as_str())
            .bind::<Text, _>(worker.as_str()),
    )
    .load(conn)
    .await?
    .pop();
    match row {
        Some(row) => row.into_task(),
        None => Err(refusal(conn, now, ns, id, Some(worker), true).await),
    }
}
