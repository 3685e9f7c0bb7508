//! Group commit: many concurrent single-task calls, one statement.
//!
//! A worker runtime's handlers each release one task, and an HTTP server's clients each
//! retain and release one task per request. Sent one by one, every call is its own statement
//! and its own commit, and the database's CPU goes to statement overhead rather than tasks.
//! Here each call is handed to a few flusher tasks, which send whatever has queued up meanwhile
//! as one call (`release_tasks`, `retain_tasks_for`): under load batches grow by themselves,
//! and a lone call goes out at once, so nothing waits for a timer. Every caller still gets its
//! own answer, and only once the statement that carried it has committed.
//!
//! One caller's bad input must never fail another caller's request. Requests are validated
//! before they join a batch (worker names and results are domain values that cannot hold
//! what the store refuses); and should a shared statement fail anyway, each of its calls is
//! sent again on its own, so only a call that fails by itself gets an error.

use crate::error::{Error, Result};
use crate::manager::Manager;
use pgqueue_domain::{Outcome, QueueName, Task, TaskId, WorkerName};
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};

/// Most calls carried by one statement.
const MAX_BATCH: usize = 500;
/// Statements of one kind a server keeps in flight at once (each on its own connection).
/// One: concurrent requests then queue up behind it and share the next statement, which
/// is what the database's CPU needs (an HTTP drain with 8 clients measured ~3,000 tasks/s
/// with one, ~2,600 with two, ~2,100 with four). Retains never wait on a lock (SKIP
/// LOCKED), so one slow statement cannot hold the others up for long.
const SERVER_FLUSHERS: usize = 1;
/// Release statements a worker runtime keeps in flight: its handlers finish in bursts, and
/// more flushers drained them faster at concurrency 8.
pub(crate) const WORKER_FLUSHERS: usize = 4;

/// Takes the first waiting item, then whatever else is already queued, up to `MAX_BATCH`.
/// `None` once every sender is gone.
async fn next_batch<T>(rx: &Mutex<mpsc::UnboundedReceiver<T>>) -> Option<Vec<T>> {
    let mut rx = rx.lock().await;
    let mut batch = vec![rx.recv().await?];
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// Starts `flushers` tasks that each take batches from one queue and `flush` them; they stop
/// when every sender of the returned channel is dropped.
fn start_flushers<T, F, Fut>(flushers: usize, flush: F) -> mpsc::UnboundedSender<T>
where
    T: Send + 'static,
    F: Fn(Vec<T>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let (tx, rx) = mpsc::unbounded_channel::<T>();
    let rx = Arc::new(Mutex::new(rx));
    for _ in 0..flushers.max(1) {
        let (rx, flush) = (rx.clone(), flush.clone());
        tokio::spawn(async move {
            while let Some(batch) = next_batch(&rx).await {
                flush(batch).await;
            }
        });
    }
    tx
}

fn stopped() -> Error {
    Error::Storage("group commit flusher stopped".into())
}

/// A release waiting to be flushed, and who to tell when it is durable.
type PendingRelease = (TaskId, Outcome, oneshot::Sender<Result<Task>>);

/// Group commit of releases through [`Manager::release_tasks`].
#[derive(Clone)]
pub(crate) struct Releaser {
    tx: mpsc::UnboundedSender<PendingRelease>,
}

impl Releaser {
    /// Starts `flushers` flushers on `manager` (which must not itself coalesce).
    pub(crate) fn start(manager: Manager, flushers: usize) -> Self {
        let tx = start_flushers(flushers, move |batch: Vec<PendingRelease>| {
            let manager = manager.clone();
            async move {
                let releases: Vec<(TaskId, Outcome)> =
                    batch.iter().map(|(id, o, _)| (*id, o.clone())).collect();
                match manager.release_tasks(&releases).await {
                    Ok(results) => {
                        for ((_, _, reply), result) in batch.into_iter().zip(results) {
                            let _ = reply.send(result);
                        }
                    }
                    Err(e) if batch.len() == 1 => {
                        for (_, _, reply) in batch {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, calls = batch.len(), "a shared release failed; releasing each call on its own");
                        for (id, outcome, reply) in batch {
                            let one = manager.release_tasks(&[(id, outcome)]).await;
                            let result =
                                one.and_then(|mut r| r.pop().unwrap_or_else(|| Err(stopped())));
                            let _ = reply.send(result);
                        }
                    }
                }
            }
        });
        Self { tx }
    }

    /// Releases one task and waits until it is durable (or refused).
    pub(crate) async fn release(&self, id: TaskId, outcome: Outcome) -> Result<Task> {
        let (reply, answer) = oneshot::channel();
        self.tx.send((id, outcome, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// A retain waiting to be flushed, and who to give the task to.
type PendingRetain = (
    WorkerName,
    Vec<QueueName>,
    oneshot::Sender<Result<Option<Task>>>,
);

/// Group commit of single-task retains through [`Manager::retain_for`]: the retains of one
/// batch that name the same queues are one claim, the k-th oldest task to the k-th caller.
#[derive(Clone)]
pub(crate) struct Retainer {
    tx: mpsc::UnboundedSender<PendingRetain>,
}

impl Retainer {
    /// Starts the flushers on `manager` (which must not itself coalesce).
    pub(crate) fn start(manager: Manager) -> Self {
        let tx = start_flushers(SERVER_FLUSHERS, move |batch: Vec<PendingRetain>| {
            let manager = manager.clone();
            async move {
                for (queues, callers) in by_queues(batch) {
                    let workers: Vec<WorkerName> = callers.iter().map(|(w, _)| w.clone()).collect();
                    match manager.retain_for(&workers, &queues).await {
                        Ok(tasks) => {
                            let mut tasks = tasks.into_iter();
                            for (_, reply) in callers {
                                let _ = reply.send(Ok(tasks.next()));
                            }
                        }
                        Err(e) if callers.len() == 1 => {
                            for (_, reply) in callers {
                                let _ = reply.send(Err(e.clone()));
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, calls = callers.len(), "a shared retain failed; retaining for each call on its own");
                            for (worker, reply) in callers {
                                let one = manager
                                    .retain_for(std::slice::from_ref(&worker), &queues)
                                    .await;
                                let _ = reply.send(one.map(|mut t| t.pop()));
                            }
                        }
                    }
                }
            }
        });
        Self { tx }
    }

    /// Retains the oldest available task of `queues` (empty: any) for `worker`.
    pub(crate) async fn retain(
        &self,
        worker: WorkerName,
        queues: Vec<QueueName>,
    ) -> Result<Option<Task>> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((worker, queues, reply))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The callers grouped by the queues they asked for, groups and callers in arrival order.
type Callers = Vec<(WorkerName, oneshot::Sender<Result<Option<Task>>>)>;

fn by_queues(batch: Vec<PendingRetain>) -> Vec<(Vec<QueueName>, Callers)> {
    let mut groups: Vec<(Vec<QueueName>, Callers)> = Vec::new();
    for (worker, queues, reply) in batch {
        match groups.iter_mut().find(|(q, _)| *q == queues) {
            Some((_, callers)) => callers.push((worker, reply)),
            None => groups.push((queues, vec![(worker, reply)])),
        }
    }
    groups
}

/// Both halves, as a [`Manager`] built with [`Manager::with_group_commit`] holds them.
pub(crate) struct GroupCommit {
    pub(crate) releases: Releaser,
    pub(crate) retains: Retainer,
}

impl GroupCommit {
    /// Starts both on `plain`, a manager that does not coalesce.
    pub(crate) fn start(plain: Manager) -> Self {
        Self {
            releases: Releaser::start(plain.clone(), SERVER_FLUSHERS),
            retains: Retainer::start(plain),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgqueue_ports::{MockStore, StoreError};
    use std::sync::Arc;

    /// A shared release statement that fails (here: whenever it carries task 13) is sent
    /// again call by call: only the call that fails on its own gets the error.
    #[tokio::test(flavor = "current_thread")]
    async fn one_failing_call_does_not_fail_the_others_in_its_statement() {
        let shared = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let saw_shared = shared.clone();
        let mut store = MockStore::new();
        store.expect_release_tasks().returning(move |ns, releases| {
            if releases.len() > 1 {
                saw_shared.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            if releases.iter().any(|(id, _)| *id == 13) {
                return Err(StoreError::Unavailable("poisoned statement".into()));
            }
            let q = pgqueue_domain::Queue::new(ns.clone(), QueueName::parse("q").unwrap());
            let now = chrono::Utc::now();
            Ok(releases
                .iter()
                .map(|(id, _)| {
                    let new = pgqueue_domain::TaskMeta::new(serde_json::json!(1))
                        .validate()
                        .unwrap();
                    Ok(Task::create(*id, &q, new, now))
                })
                .collect())
        });
        let manager = Manager::new(Arc::new(store));
        let releaser = Releaser::start(manager, 1);
        let calls: Vec<_> = [1, 2, 13, 4, 5]
            .into_iter()
            .map(|id| {
                let r = releaser.clone();
                tokio::spawn(async move { (id, r.release(id, Outcome::done()).await) })
            })
            .collect();
        for call in calls {
            let (id, result) = call.await.unwrap();
            match id {
                13 => assert!(matches!(result, Err(Error::Storage(_))), "{result:?}"),
                _ => assert_eq!(result.map(|t| t.id), Ok(id)),
            }
        }
        assert!(
            shared.load(std::sync::atomic::Ordering::SeqCst),
            "the calls shared a statement"
        );
    }

    fn q(names: &[&str]) -> Vec<QueueName> {
        names.iter().map(|n| QueueName::parse(n).unwrap()).collect()
    }

    #[test]
    fn retains_are_grouped_by_the_queues_they_name_in_arrival_order() {
        let mut batch = Vec::new();
        let mut answers = Vec::new();
        for (w, qs) in [
            ("a", q(&["x"])),
            ("b", q(&[])),
            ("c", q(&["x"])),
            ("d", q(&[])),
        ] {
            let (tx, rx) = oneshot::channel();
            batch.push((WorkerName::parse(w).unwrap(), qs, tx));
            answers.push(rx);
        }
        let groups = by_queues(batch);
        let shape: Vec<(Vec<QueueName>, Vec<&str>)> = groups
            .iter()
            .map(|(qs, callers)| {
                (
                    qs.clone(),
                    callers.iter().map(|(w, _)| w.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![(q(&["x"]), vec!["a", "c"]), (q(&[]), vec!["b", "d"])]
        );
    }
}
