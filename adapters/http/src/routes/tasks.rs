//! `P/task` routes: create (one or a batch), read, list, retain, release and heartbeat.

use crate::body;
use crate::envelope::{self, ListEnvelope};
use crate::error::HttpError;
use crate::query::Query;
use pgqueue_app::{MAX_BATCH, Manager};
use pgqueue_domain::{Created, Outcome, TaskFilter, TaskId, TaskMeta, Timestamp, WorkerName};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use warp::http::StatusCode;
use warp::reply::Response;

/// One task to create, as `POST P/task` takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTaskBody {
    /// The queue; required.
    #[serde(default)]
    queue: Option<String>,
    /// Required; an explicit `null` is a payload, an absent field is not.
    #[serde(default, deserialize_with = "present")]
    payload: Option<Value>,
    /// Not before this.
    #[serde(default)]
    delayed_at: Option<Timestamp>,
    /// −100 to 100; higher runs first.
    #[serde(default, deserialize_with = "pgqueue_domain::json::optional_integer")]
    priority: Option<i64>,
    /// While a task with this key waits or runs, creating another answers it.
    #[serde(default)]
    unique_key: Option<String>,
    /// Accepted for wire compatibility; the namespace is the server's.
    #[serde(default, rename = "namespace")]
    _namespace: Option<String>,
}

/// Maps a present JSON value, `null` included, to `Some`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// How a worker releases a task: `PATCH P/task/{id}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseBody {
    /// The result (success) or the error payload (failure).
    #[serde(default)]
    result: Option<Value>,
    /// Whether the attempt failed.
    #[serde(default)]
    fail: Option<bool>,
    /// When given, only this worker may release (fencing).
    #[serde(default)]
    worker: Option<String>,
}

/// `GET P/task?queue&status&offset&limit`: tasks ordered by id.
pub(crate) async fn list(m: &Manager, q: &Query) -> Result<Response, HttpError> {
    let filter = TaskFilter {
        queue: q.queue()?,
        status: q.status()?,
        page: q.page()?,
    };
    Ok(envelope::list(m.list_tasks(&filter).await?))
}

/// `POST P/task`: one task object → 201 Task, or 200 with the task that already holds its
/// unique key; an array → 201 list envelope of the tasks in input order (a held or repeated
/// key answers the one task), all or nothing. Every task of a batch must name the same
/// queue: a batch is one insert into one queue.
pub(crate) async fn create(m: &Manager, bytes: &[u8]) -> Result<Response, HttpError> {
    let is_batch = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'[');
    if !is_batch {
        let one: NewTaskBody = body::parse_object(bytes)?;
        let queue = one.queue.clone().unwrap_or_default();
        return Ok(match m.create_task(&queue, meta(one)).await? {
            Created::New(task) => envelope::json(StatusCode::CREATED, &task),
            Created::Existing(task) => envelope::json(StatusCode::OK, &task),
        });
    }
    let many: Vec<NewTaskBody> = body::parse::<Vec<body::Object<NewTaskBody>>>(bytes)?
        .into_iter()
        .map(|o| o.0)
        .collect();
    let queue = batch_queue(&many)?;
    let tasks: Vec<_> = m
        .create_tasks(&queue, many.into_iter().map(meta).collect())
        .await?
        .into_iter()
        .map(Created::into_task)
        .collect();
    Ok(envelope::json(
        StatusCode::CREATED,
        &ListEnvelope {
            count: tasks.len() as u64,
            body: tasks,
        },
    ))
}

fn meta(b: NewTaskBody) -> TaskMeta {
    TaskMeta {
        payload: b.payload,
        delayed_at: b.delayed_at,
        priority: b.priority,
        unique_key: b.unique_key,
    }
}

/// The one queue a batch names (compared after normalisation by the Manager's rules:
/// trimmed and lower-cased).
fn batch_queue(batch: &[NewTaskBody]) -> Result<String, HttpError> {
    let norm = |b: &NewTaskBody| b.queue.as_deref().unwrap_or("").trim().to_lowercase();
    let Some(first) = batch.first() else {
        return Err(HttpError::bad_request(
            "empty batch: at least one task is required",
        ));
    };
    if batch.len() > MAX_BATCH {
        return Err(HttpError::bad_request(format!(
            "batch too large: at most {MAX_BATCH} tasks, got {}",
            batch.len()
        )));
    }
    let queue = norm(first);
    if let Some((i, other)) = batch.iter().enumerate().find(|(_, b)| norm(b) != queue) {
        return Err(HttpError::bad_request(format!(
            "every task of a batch must name the same queue: task 0 names {:?}, task {i} names {:?}",
            first.queue.as_deref().unwrap_or(""),
            other.queue.as_deref().unwrap_or("")
        )));
    }
    Ok(queue)
}

/// `GET P/task/{id}`.
pub(crate) async fn get(m: &Manager, id: TaskId) -> Result<Response, HttpError> {
    Ok(envelope::json(StatusCode::OK, &m.get_task(id).await?))
}

/// `PUT P/task?worker=W[&queue=a&queue=b]`: 200 with the retained task, 204 when none.
pub(crate) async fn retain_any(m: &Manager, q: &Query) -> Result<Response, HttpError> {
    let worker = q.worker()?;
    let queues = q.all("queue");
    retained(m.next_task(worker, &queues).await?)
}

/// `PUT P/task/{queue}?worker=W`: like `retain_any` on one queue, which must exist.
pub(crate) async fn retain_from(
    m: &Manager,
    queue: &str,
    q: &Query,
) -> Result<Response, HttpError> {
    let worker = q.worker()?;
    retained(m.next_task_from(worker, queue).await?)
}

fn retained(task: Option<pgqueue_domain::Task>) -> Result<Response, HttpError> {
    Ok(match task {
        Some(t) => envelope::json(StatusCode::OK, &t),
        None => envelope::empty(StatusCode::NO_CONTENT),
    })
}

/// `PATCH P/task/{id}`: releases with success or failure; an empty body is `{}` (success
/// without a result).
pub(crate) async fn release(m: &Manager, id: TaskId, bytes: &[u8]) -> Result<Response, HttpError> {
    let req: ReleaseBody = if body::is_blank(bytes) {
        ReleaseBody::default()
    } else {
        body::parse_object(bytes)?
    };
    let mut outcome = if req.fail.unwrap_or(false) {
        Outcome::failure(req.result.unwrap_or(Value::Null))?
    } else {
        Outcome::success(req.result)?
    };
    if let Some(worker) = &req.worker {
        outcome = outcome.by(WorkerName::parse(worker)?);
    }
    Ok(envelope::json(
        StatusCode::OK,
        &m.release_task(id, outcome).await?,
    ))
}

/// `POST P/task/{id}/heartbeat?worker=W`: extends the worker's lease.
pub(crate) async fn heartbeat(m: &Manager, id: TaskId, q: &Query) -> Result<Response, HttpError> {
    Ok(envelope::json(
        StatusCode::OK,
        &m.heartbeat(id, q.worker()?).await?,
    ))
}
