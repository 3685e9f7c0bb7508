//! The worker runtime: run a handler for every task of the queues it serves.
//!
//! A user registers one async handler per queue and calls [`Worker::run`]. The runtime
//! retains at most `concurrency + prefetch` tasks at a time (claiming as many as it may hold
//! in one statement), runs handlers concurrently up to `concurrency`, releases each task
//! with the handler's value or its error text, turns a panic into a failure, heartbeats
//! every task it holds (running or waiting for a slot), and on shutdown stops retaining and
//! waits for the tasks it holds.
//!
//! It sleeps on the store's wake-up signal when there is nothing to do, with a slow poll as a
//! safety net (delayed tasks and backoffs become due without any signal).

use crate::coalesce::{Releaser, WORKER_FLUSHERS};
use crate::error::{Error, Result};
use crate::manager::{Manager, held_back_for};
use futures::FutureExt;
use futures::future::BoxFuture;
use pgqueue_domain::{QueueName, Task, WorkerName};
use pgqueue_ports::{Retained, Wakeup};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};
use tokio::task::JoinSet;

/// A queue's handler: the task payload in, a result value or an error text out.
type Handler = Arc<
    dyn Fn(Value, TaskContext) -> BoxFuture<'static, std::result::Result<Value, String>>
        + Send
        + Sync,
>;

/// What a handler knows about the task it runs, beside its payload: which task it is, and
/// whether an operator asked it to stop. The runtime learns of a cancel at the task's next
/// heartbeat (every half lease) and then fires [`TaskContext::cancelled`]; a handler that
/// stops early should return an error, which ends the task `cancelled`.
#[derive(Debug, Clone)]
pub struct TaskContext {
    id: pgqueue_domain::TaskId,
    queue: QueueName,
    cancel: tokio_util::sync::CancellationToken,
}

impl TaskContext {
    /// The task's id.
    pub fn id(&self) -> pgqueue_domain::TaskId {
        self.id
    }

    /// The task's queue.
    pub fn queue(&self) -> &QueueName {
        &self.queue
    }

    /// Whether the task was cancelled while it ran.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Resolves once the task was cancelled (never, if it is not): race it with the work,
    /// e.g. in `tokio::select!`.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// The cancellation token itself, to hand to code that takes one.
    pub fn token(&self) -> tokio_util::sync::CancellationToken {
        self.cancel.clone()
    }
}

/// Numbers a runtime's default name within this process.
static RUNTIMES: AtomicU64 = AtomicU64::new(0);

/// What a run did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WorkerReport {
    /// Tasks released as successes.
    pub succeeded: u64,
    /// Tasks released as failures (including panics).
    pub failed: u64,
    /// Tasks given up without a release: rescued from under the handler, refused releases,
    /// or still running when the grace period ended (left to lease rescue).
    pub abandoned: u64,
}

/// A worker runtime under construction; [`Worker::run`] starts it.
pub struct Worker {
    manager: Manager,
    handlers: HashMap<QueueName, Handler>,
    concurrency: usize,
    prefetch: Option<usize>,
    name: String,
    poll_interval: Duration,
    grace_period: Duration,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("name", &self.name)
            .field("queues", &self.handlers.keys().collect::<Vec<_>>())
            .field("concurrency", &self.concurrency)
            .field("prefetch", &self.prefetch)
            .finish_non_exhaustive()
    }
}

/// `<hostname>@<pid>`, with `-<k>` for the k-th runtime of a process: fencing needs the name
/// to differ between processes on one host, not just between hosts.
fn default_name() -> String {
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into());
    let k = RUNTIMES.fetch_add(1, Ordering::Relaxed) + 1;
    let pid = std::process::id();
    if k == 1 {
        format!("{host}@{pid}")
    } else {
        format!("{host}@{pid}-{k}")
    }
}

impl Worker {
    /// A runtime for `manager`'s namespace with no handler yet, concurrency = number of CPUs.
    pub fn new(manager: Manager) -> Self {
        Self {
            manager,
            handlers: HashMap::new(),
            concurrency: std::thread::available_parallelism().map_or(4, |n| n.get()),
            prefetch: None,
            name: default_name(),
            poll_interval: Duration::from_secs(1),
            grace_period: Duration::from_secs(30),
        }
    }

    /// Registers the handler for `queue`. It gets the payload; `Ok(value)` releases the task
    /// with `value` as its result, `Err(e)` as a failure with `e.to_string()` as a JSON string.
    pub fn handle<F, Fut, E>(self, queue: &str, handler: F) -> Result<Self>
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<Value, E>> + Send + 'static,
        E: Display,
    {
        self.handle_with_context(queue, move |payload, _| handler(payload))
    }

    /// Registers a handler for `queue` that also gets the task's [`TaskContext`], to see a
    /// cancel and stop early.
    pub fn handle_with_context<F, Fut, E>(mut self, queue: &str, handler: F) -> Result<Self>
    where
        F: Fn(Value, TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<Value, E>> + Send + 'static,
        E: Display,
    {
        let queue = QueueName::parse(queue)?;
        let handler = Arc::new(handler);
        self.handlers.insert(
            queue,
            Arc::new(move |payload, ctx| {
                let fut = handler(payload, ctx);
                async move { fut.await.map_err(|e| e.to_string()) }.boxed()
            }),
        );
        Ok(self)
    }

    /// How many handlers may run at once (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// How many tasks may wait for a free slot, retained ahead (default: as many as the
    /// concurrency). A claim then brings back up to `concurrency + prefetch` tasks in one
    /// statement instead of one slot's worth, and a freed slot finds its next task waiting.
    /// Waiting tasks are heartbeated like running ones; 0 claims only for free slots.
    pub fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = Some(n);
        self
    }

    /// The worker name sent with every retain, heartbeat and release.
    pub fn name(mut self, name: &str) -> Result<Self> {
        self.name = WorkerName::parse(name)?.to_string();
        Ok(self)
    }

    /// How often to look for work when no wake-up came (delays and backoffs end silently).
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every.max(Duration::from_millis(10));
        self
    }

    /// How long shutdown waits for handlers in flight before leaving them to lease rescue.
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace_period = grace;
        self
    }

    /// The worker name in use.
    pub fn worker_name(&self) -> &str {
        &self.name
    }

    /// Starts one job per claimed task, each holding one of the claim's permits; unused
    /// permits are freed when `permits` is dropped.
    fn start_jobs(
        &self,
        tasks: Vec<Task>,
        mut permits: Vec<OwnedSemaphorePermit>,
        running: &mut JoinSet<()>,
        crew: &Arc<Crew>,
    ) {
        for task in tasks {
            let Some(permit) = permits.pop() else { break };
            let Some(handler) = self.handlers.get(&task.queue).cloned() else {
                // Cannot happen: we only retain from our queues. Leave it to lease rescue.
                continue;
            };
            let job = Job {
                crew: crew.clone(),
                handler,
                task,
            };
            running.spawn(job.run(permit));
        }
    }

    /// Runs until `shutdown` resolves, then stops retaining, waits up to the grace period
    /// for handlers in flight, and returns what it did. Storage errors are logged and
    /// retried; they never end the run.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<WorkerReport> {
        if self.handlers.is_empty() {
            return Err(Error::invalid(
                "handlers",
                "register at least one handler before running",
            ));
        }
        let worker = WorkerName::parse(&self.name)?;
        let queues: Vec<QueueName> = self.handlers.keys().cloned().collect();
        let queue_names: Vec<&str> = queues.iter().map(|q| q.as_str()).collect();
        let slots = Arc::new(Semaphore::new(self.concurrency));
        // Tasks held (running or waiting for a slot): what a claim may ask for.
        let held = Arc::new(Semaphore::new(
            self.concurrency + self.prefetch.unwrap_or(self.concurrency),
        ));
        let report = Arc::new(Counters::default());
        let mut running = JoinSet::new();
        let crew = Arc::new(Crew {
            manager: self.manager.clone(),
            releaser: Releaser::start(self.manager.clone(), WORKER_FLUSHERS),
            worker: worker.clone(),
            report: report.clone(),
            slots,
        });
        let mut wakeups = self.manager.store().signal().subscribe();
        let mut signal_closed = false;
        tokio::pin!(shutdown);
        tracing::info!(worker = %worker, queues = ?queue_names, concurrency = self.concurrency, "worker started");

        let mut claims: JoinSet<(Result<Retained>, Vec<OwnedSemaphorePermit>, u64)> =
            JoinSet::new();
        // Jobs ended so far: a claim held back by a limit that a job ended during (its
        // release freed a slot the claim may not have seen) looks again at once.
        let mut ended: u64 = 0;
        let mut idle = false;
        // Whether the last claim was held back by a queue limit: then claims ask only for
        // free handler slots (a task buffered ahead would hold one of the queue's slots
        // without running), and a finished job (its release durable) is worth a new look.
        let mut limited = false;
        let poll = tokio::time::sleep(self.poll_interval);
        tokio::pin!(poll);
        let queues = Arc::new(queues);

        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                // Claim as many tasks as may be held, with up to two claims in flight so the
                // next batch is on its way while the previous one is being handed out.
                permit = held.clone().acquire_owned(), if !idle && claims.len() < MAX_CLAIMS_IN_FLIGHT => {
                    let Ok(first) = permit else { break };
                    let mut permits = vec![first];
                    // Handlers that finished together free their slots within a few polls:
                    // let them, so one claim fills all of them instead of one per slot.
                    for _ in 0..4 {
                        tokio::task::yield_now().await;
                    }
                    let cap = if limited { crew.slots.available_permits().max(1) } else { usize::MAX };
                    while permits.len() < cap {
                        let Ok(p) = held.clone().try_acquire_owned() else { break };
                        permits.push(p);
                    }
                    let (manager, name, queues) = (self.manager.clone(), worker.clone(), queues.clone());
                    let seen = ended;
                    claims.spawn(async move {
                        let result = manager.claim(&name, &queues, permits.len() as u32).await;
                        (result, permits, seen)
                    });
                }
                Some(done) = claims.join_next(), if !claims.is_empty() => {
                    let Ok((result, permits, seen)) = done else { continue };
                    let asked = permits.len();
                    match result {
                        Ok(retained) => {
                            let got = retained.tasks.len();
                            let held_back = held_back_for(&retained, self.poll_interval);
                            limited = held_back.is_some();
                            self.start_jobs(retained.tasks, permits, &mut running, &crew);
                            if let Some(wait) = held_back {
                                // Held back by a limit: sleep until a job of ours ends, the
                                // rate's next token, or a short poll (another process may
                                // free a slot), never spinning. A job that ended while the
                                // claim was out may have freed a slot it did not see: then
                                // look again at once.
                                if seen == ended {
                                    idle = true;
                                    poll.as_mut().reset(tokio::time::Instant::now() + wait);
                                }
                            } else if got < asked && !wakeup_pending(&mut wakeups, &self.manager, &queues) {
                                // Drained: sleep until a wake-up for one of our queues or the
                                // safety poll (delays and backoffs end without a signal).
                                idle = true;
                                poll.as_mut().reset(tokio::time::Instant::now() + self.poll_interval);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "retaining tasks failed; retrying");
                            idle = true;
                            poll.as_mut().reset(tokio::time::Instant::now() + self.poll_interval);
                        }
                    }
                }
                _ = &mut poll, if idle => idle = false,
                w = wakeups.recv(), if idle && !signal_closed => {
                    signal_closed = matches!(w, Err(broadcast::error::RecvError::Closed));
                    if self.manager.concerns(&w, &queues) {
                        idle = false;
                    }
                }
                Some(_) = running.join_next(), if !running.is_empty() => {
                    ended += 1;
                    if limited {
                        idle = false;
                    }
                }
            }
        }
        // Claims still in flight hold tasks for us now: run them like the others.
        while let Some(done) = claims.join_next().await {
            if let Ok((Ok(retained), permits, _)) = done {
                self.start_jobs(retained.tasks, permits, &mut running, &crew);
            }
        }

        tracing::info!(worker = %worker, in_flight = running.len(), "worker stopping");
        let drained = tokio::time::timeout(self.grace_period, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            let left = running.len() as u64;
            tracing::warn!(worker = %worker, left, "grace period over; leaving tasks to lease rescue");
            report.abandoned.fetch_add(left, Ordering::Relaxed);
            running.shutdown().await;
        }
        Ok(report.snapshot())
    }
}

/// Claim statements a runtime keeps in flight at once.
const MAX_CLAIMS_IN_FLIGHT: usize = 2;

/// Whether a wake-up for our queues arrived while we were busy (so the claim that just came
/// back short may have missed a task). Drains what is buffered, so stale wake-ups from a busy
/// period cost one extra look at most, not one each.
fn wakeup_pending(
    wakeups: &mut broadcast::Receiver<Wakeup>,
    m: &Manager,
    queues: &[QueueName],
) -> bool {
    let mut pending = false;
    loop {
        match wakeups.try_recv() {
            Ok(w) => pending |= m.concerns(&Ok(w), queues),
            Err(broadcast::error::TryRecvError::Lagged(_)) => pending = true,
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => {
                return pending;
            }
        }
    }
}

mod job;

use job::{Counters, Crew, Job};

#[cfg(test)]
mod tests;
