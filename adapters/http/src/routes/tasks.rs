//! `P/task` routes: create (one or a batch), read, list, retain, release and heartbeat.

use crate::body;
use crate::envelope::{self, ListEnvelope};
use crate::error::HttpError;
use crate::query::Query;
use pgqueue_app::{MAX_BATCH, MAX_RETAIN, Manager};
use pgqueue_domain::{Created, Outcome, TaskFilter, TaskId, TaskMeta, Timestamp, WorkerName};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::future::Future;
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

/// `PUT P/task?worker=W[&queue=a&queue=b][&limit=N][&wait=D]`: 200 with the retained task,
/// 204 when none; with `limit`, 200 with a list (possibly empty); with `wait`, the answer
/// waits up to `D` for a task (`stop`: the server shutting down ends the wait).
pub(crate) async fn retain_any(
    m: &Manager,
    q: &Query,
    stop: impl Future<Output = ()> + Send,
) -> Result<Response, HttpError> {
    let worker = q.worker()?;
    let queues = q.all("queue");
    let (limit, wait) = (q.number("limit")?, q.wait()?);
    if limit.is_none() && wait.is_none() {
        return retained(m.next_task(worker, &queues).await?);
    }
    let limit_n = limit.map_or(1, |n| u32::try_from(n).unwrap_or(u32::MAX));
    let tasks = m
        .retain_waiting(worker, &queues, limit_n, wait.unwrap_or_default(), stop)
        .await?;
    answer(limit.is_some(), tasks)
}

/// `PUT P/task/{queue}?worker=W[&limit=N][&wait=D]`: like `retain_any` on one queue, which
/// must exist.
pub(crate) async fn retain_from(
    m: &Manager,
    queue: &str,
    q: &Query,
    stop: impl Future<Output = ()> + Send,
) -> Result<Response, HttpError> {
    let worker = q.worker()?;
    let (limit, wait) = (q.number("limit")?, q.wait()?);
    if limit.is_none() && wait.is_none() {
        return retained(m.next_task_from(worker, queue).await?);
    }
    // A wait on a queue that does not exist is answered at once.
    m.get_queue(queue).await?;
    let limit_n = limit.map_or(1, |n| u32::try_from(n).unwrap_or(u32::MAX));
    let tasks = m
        .retain_waiting(worker, &[queue], limit_n, wait.unwrap_or_default(), stop)
        .await?;
    answer(limit.is_some(), tasks)
}

/// A list when the caller gave `limit`, else one task or 204.
fn answer(listed: bool, mut tasks: Vec<pgqueue_domain::Task>) -> Result<Response, HttpError> {
    if listed {
        return Ok(envelope::json(
            StatusCode::OK,
            &ListEnvelope {
                count: tasks.len() as u64,
                body: tasks,
            },
        ));
    }
    retained(tasks.pop())
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
    Ok(envelope::json(
        StatusCode::OK,
        &m.release_task(id, req.outcome()?).await?,
    ))
}

impl ReleaseBody {
    /// The outcome it asks for, checked (a result the store could not keep, a bad worker
    /// name).
    fn outcome(self) -> Result<Outcome, pgqueue_domain::Error> {
        let mut outcome = if self.fail.unwrap_or(false) {
            Outcome::failure(self.result.unwrap_or(Value::Null))?
        } else {
            Outcome::success(self.result)?
        };
        if let Some(worker) = &self.worker {
            outcome = outcome.by(WorkerName::parse(worker)?);
        }
        Ok(outcome)
    }
}

/// One release of `PATCH P/task`: a task id and what `PATCH P/task/{id}` takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseItem {
    #[serde(deserialize_with = "task_id")]
    id: TaskId,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    fail: Option<bool>,
    #[serde(default)]
    worker: Option<String>,
}

/// A task id in any integral JSON spelling (`7`, `7.0`), as JSON Schema counts integers.
fn task_id<'de, D: Deserializer<'de>>(d: D) -> Result<TaskId, D::Error> {
    use serde::de::Error as _;
    pgqueue_domain::json::optional_integer(d)?
        .ok_or_else(|| D::Error::custom("invalid id: expected an integer, got null"))
}

/// What `PATCH P/task` says of one release, in input order.
#[derive(Debug, Serialize)]
struct ReleaseAnswer {
    id: TaskId,
    code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<pgqueue_domain::Task>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl ReleaseAnswer {
    fn refused(id: TaskId, err: HttpError) -> Self {
        Self {
            id,
            code: err.status().as_u16(),
            task: None,
            reason: Some(err.to_string()),
        }
    }
}

/// `PATCH P/task` with `[{"id":…, "result":…, "fail":…, "worker":…}, …]` (1 to
/// [`MAX_RETAIN`]): each release on its own, answered in input order with its code (200,
/// 400 for an item the server cannot take, 404, 409) and the task or the reason. A
/// malformed body is refused whole; one item's refusal never affects another.
pub(crate) async fn release_many(m: &Manager, bytes: &[u8]) -> Result<Response, HttpError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[') {
        return Err(HttpError::bad_request(
            r#"a batch release is a JSON array such as [{"id": 1, "result": {}}]"#,
        ));
    }
    let items: Vec<ReleaseItem> = body::parse::<Vec<body::Object<ReleaseItem>>>(bytes)?
        .into_iter()
        .map(|o| o.0)
        .collect();
    if items.is_empty() || items.len() > MAX_RETAIN as usize {
        return Err(HttpError::bad_request(format!(
            "a batch release takes 1 to {MAX_RETAIN} items, got {}",
            items.len()
        )));
    }
    // Each item is answered at once (refused here) or by the store (released), in order.
    let mut refused: Vec<Option<ReleaseAnswer>> = Vec::with_capacity(items.len());
    let mut releases = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::new();
    for item in items {
        let id = item.id;
        let body = ReleaseBody {
            result: item.result,
            fail: item.fail,
            worker: item.worker,
        };
        if !seen.insert(id) {
            let twice = format!("task {id} is released twice in this batch");
            refused.push(Some(ReleaseAnswer::refused(
                id,
                HttpError::bad_request(twice),
            )));
            continue;
        }
        match body.outcome() {
            Ok(outcome) => {
                refused.push(None);
                releases.push((id, outcome));
            }
            Err(e) => refused.push(Some(ReleaseAnswer::refused(id, e.into()))),
        }
    }
    let results = m.release_tasks(&releases).await?;
    let mut released = releases.iter().map(|(id, _)| *id).zip(results);
    let mut body = Vec::with_capacity(refused.len());
    for answer in refused {
        body.push(match answer {
            Some(refusal) => refusal,
            None => match released.next() {
                Some((_, Ok(task))) => ReleaseAnswer {
                    id: task.id,
                    code: StatusCode::OK.as_u16(),
                    task: Some(task),
                    reason: None,
                },
                Some((id, Err(e))) => ReleaseAnswer::refused(id, e.into()),
                None => {
                    return Err(HttpError::Unavailable(
                        "the store answered fewer releases than it was given".into(),
                    ));
                }
            },
        });
    }
    Ok(envelope::json(
        StatusCode::OK,
        &ListEnvelope {
            count: body.len() as u64,
            body,
        },
    ))
}

/// `POST P/task/{id}/heartbeat?worker=W`: extends the worker's lease.
pub(crate) async fn heartbeat(m: &Manager, id: TaskId, q: &Query) -> Result<Response, HttpError> {
    Ok(envelope::json(
        StatusCode::OK,
        &m.heartbeat(id, q.worker()?).await?,
    ))
}
