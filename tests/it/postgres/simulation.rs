//! The differential simulation: seeded random sequences of operations run against the
//! in-memory adapter (which executes the domain's rules directly) and against PostgreSQL
//! (which states them in SQL), each on its own `ManualClock` set to the same instants, and
//! every returned value compared. A fresh database per seed makes task ids line up, so tasks
//! are compared as whole structs, status included. A failure names the seed, the step and the
//! operation; rerun one seed with `PGQUEUE_SIM_SEED=<seed>`.

use chrono::{DateTime, TimeDelta, Utc};
use pgqueue_domain::{
    Duration, Namespace, NewTask, Outcome, Page, QueueMeta, QueueName, QueuePatch, Status,
    TaskFilter, TaskMeta, TickerMeta, TickerName, WorkerName,
};
use pgqueue_memory::MemoryStore;
use pgqueue_ports::{ManualClock, Store, TickerScope};
use pgqueue_tests::db::{TestDatabase, fresh_database};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::fmt::Debug;
use std::sync::Arc;

const STEPS: usize = 2_000;
const NAMESPACES: [&str; 2] = ["alpha", "beta"];
const QUEUES: [&str; 3] = ["q1", "q2", "q-3"];
const WORKERS: [&str; 3] = ["w1", "w2", "w3"];

/// Both stores, their clocks, and the database that must outlive the PostgreSQL one.
struct Sim {
    seed: u64,
    step: usize,
    memory: Arc<dyn Store>,
    postgres: Arc<dyn Store>,
    memory_clock: Arc<ManualClock>,
    postgres_clock: Arc<ManualClock>,
    /// Every task id either store handed out (they agree, or the run has already failed).
    ids: Vec<i64>,
    /// Tasks last seen retained, with their namespace and worker: most releases and
    /// heartbeats aim at them (random ids would rarely hit a retained task).
    held: Vec<(Namespace, i64, WorkerName)>,
    /// What the run got to exercise.
    coverage: Coverage,
    /// Per namespace, where each store's event reader stands (memory, PostgreSQL).
    cursors: Vec<(u64, u64)>,
    _db: TestDatabase,
}

impl Sim {
    async fn new(seed: u64) -> Sim {
        let start = DateTime::parse_from_rfc3339("2026-03-01T12:00:00.123456Z")
            .unwrap()
            .to_utc();
        let memory_clock = Arc::new(ManualClock::new(start));
        let postgres_clock = Arc::new(ManualClock::new(start));
        let db = fresh_database().await;
        let postgres = db.store(postgres_clock.clone()).await;
        Sim {
            seed,
            step: 0,
            memory: Arc::new(MemoryStore::new(memory_clock.clone())),
            postgres: Arc::new(postgres),
            memory_clock,
            postgres_clock,
            ids: Vec::new(),
            held: Vec::new(),
            coverage: Coverage::default(),
            cursors: vec![(0, 0); NAMESPACES.len()],
            _db: db,
        }
    }

    /// Runs `op` on both stores and insists on equal answers.
    async fn both<T: PartialEq + Debug>(&self, what: &str, op: impl AsyncFn(&dyn Store) -> T) -> T {
        let expected = op(self.memory.as_ref()).await;
        let actual = op(self.postgres.as_ref()).await;
        assert_eq!(
            actual, expected,
            "seed {} step {}: {what}: PostgreSQL (left) differs from memory (right)",
            self.seed, self.step
        );
        actual
    }

    /// Like [`Sim::both`], for operations that need to own the store (a Manager on it).
    async fn both_owned<T: PartialEq + Debug>(
        &self,
        what: &str,
        op: impl AsyncFn(Arc<dyn Store>) -> T,
    ) -> T {
        let expected = op(self.memory.clone()).await;
        let actual = op(self.postgres.clone()).await;
        assert_eq!(
            actual, expected,
            "seed {} step {}: {what}: PostgreSQL (left) differs from memory (right)",
            self.seed, self.step
        );
        actual
    }

    fn advance(&self, by: TimeDelta) {
        self.memory_clock.advance(by);
        self.postgres_clock.advance(by);
    }

    fn now(&self) -> DateTime<Utc> {
        self.memory_clock.get()
    }

    /// The events each store recorded since the last look, per namespace, must be the same
    /// changes: compared as sorted lists, because within one operation the PostgreSQL adapter
    /// may write several statements (a redrive retries keyed tasks one by one) and so number
    /// the same events in another order than memory does.
    async fn compare_events(&mut self) {
        for (i, n) in NAMESPACES.iter().enumerate() {
            let n = Namespace::parse(n).unwrap();
            let (memory, memory_at) =
                drain_events(self.memory.as_ref(), &n, self.cursors[i].0).await;
            let (postgres, postgres_at) =
                drain_events(self.postgres.as_ref(), &n, self.cursors[i].1).await;
            assert_eq!(
                postgres, memory,
                "seed {} step {}: events of {n}: PostgreSQL (left) differs from memory (right)",
                self.seed, self.step
            );
            self.coverage.events += memory.len();
            self.cursors[i] = (memory_at, postgres_at);
        }
    }
}

/// What an event says, without its id; sorted.
type EventShape = (Option<i64>, String, Option<Status>, String, DateTime<Utc>);

/// Every event of `n` after `last`, as sorted shapes, and where the reader stands then.
async fn drain_events(store: &dyn Store, n: &Namespace, mut last: u64) -> (Vec<EventShape>, u64) {
    let mut shapes = Vec::new();
    loop {
        let page = store.read_events(n, Some(last), 1000).await.unwrap();
        assert!(!page.reset, "never reset: nothing is pruned");
        let done = page.events.is_empty();
        shapes.extend(page.events.into_iter().map(|e| {
            (
                e.task,
                e.kind.as_str().to_string(),
                e.status,
                e.queue.as_str().to_string(),
                e.at,
            )
        }));
        last = page.last;
        if done {
            shapes.sort();
            return (shapes, last);
        }
    }
}

/// Counts of outcomes that matter, to show a run was not trivially equal.
#[derive(Debug, Default)]
struct Coverage {
    retained: usize,
    released: usize,
    retried: usize,
    failed: usize,
    rescued: usize,
    cleaned: u64,
    ticks: usize,
    listed: usize,
    existing: usize,
    cancelled: usize,
    operated: usize,
    cron_fires: usize,
    limited: usize,
    events: usize,
}

fn ns(rng: &mut StdRng) -> Namespace {
    Namespace::parse(NAMESPACES[rng.random_range(0..NAMESPACES.len())]).unwrap()
}

/// A queue name; now and then one that does not exist.
fn queue(rng: &mut StdRng) -> QueueName {
    if rng.random_bool(0.05) {
        return QueueName::parse("missing").unwrap();
    }
    QueueName::parse(QUEUES[rng.random_range(0..QUEUES.len())]).unwrap()
}

fn worker(rng: &mut StdRng) -> WorkerName {
    WorkerName::parse(WORKERS[rng.random_range(0..WORKERS.len())]).unwrap()
}

fn payload(rng: &mut StdRng, step: usize) -> Value {
    match rng.random_range(0..4) {
        0 => Value::Null,
        1 => json!(step),
        2 => json!({"step": step, "tags": ["a", "b"], "nested": {"x": 1.5}}),
        _ => json!(format!("text {step}")),
    }
}

/// A queue policy with sub-microsecond parts, so truncation is exercised too.
fn policy(rng: &mut StdRng) -> QueuePatch {
    let ttls = [
        Duration::from_secs(90),
        Duration::from_nanos(600_000_000_999),
        Duration::from_hours(1),
    ];
    let delays = [
        Duration::ZERO,
        Duration::from_secs(5),
        Duration::from_nanos(30_000_000_500),
    ];
    let leases = [
        Duration::from_secs(20),
        Duration::from_nanos(60_000_001_001),
    ];
    QueueMeta {
        ttl: Some(ttls[rng.random_range(0..ttls.len())]),
        retries: Some(rng.random_range(0..4)),
        retry_delay: Some(delays[rng.random_range(0..delays.len())]),
        lease: Some(leases[rng.random_range(0..leases.len())]),
        // Limits: now set, now removed (null), now left as they are.
        max_running: match rng.random_range(0..4) {
            0 => Some(Some(rng.random_range(1..4))),
            1 => Some(None),
            _ => None,
        },
        rate: match rng.random_range(0..4) {
            0 => Some(Some(
                pgqueue_domain::Rate::new(
                    [0.5, 1.0, 3.0][rng.random_range(0..3)],
                    rng.random_range(1..4),
                )
                .unwrap(),
            )),
            1 => Some(None),
            _ => None,
        },
        ..Default::default()
    }
    .validate()
    .expect("the simulation's policies are valid")
}

/// A known task id, or now and then one that does not exist.
fn task_id(sim: &Sim, rng: &mut StdRng) -> i64 {
    if sim.ids.is_empty() || rng.random_bool(0.05) {
        return 1_000_000 + rng.random_range(0..10);
    }
    // Prefer recent tasks: they are the ones still in play.
    let n = sim.ids.len();
    let from = n.saturating_sub(30);
    sim.ids[rng.random_range(from..n)]
}

/// A target for a release or heartbeat: mostly a held task with its namespace and holder,
/// sometimes anything (wrong namespace, unknown id, another worker).
fn target(sim: &Sim, rng: &mut StdRng) -> (Namespace, i64, WorkerName) {
    if !sim.held.is_empty() && rng.random_bool(0.75) {
        let (n, id, w) = sim.held[rng.random_range(0..sim.held.len())].clone();
        let w = if rng.random_bool(0.9) { w } else { worker(rng) };
        return (n, id, w);
    }
    (ns(rng), task_id(sim, rng), worker(rng))
}

fn fence(rng: &mut StdRng, outcome: Outcome, w: WorkerName) -> Outcome {
    if rng.random_bool(0.6) {
        outcome.by(w)
    } else {
        outcome
    }
}

async fn setup(sim: &mut Sim, rng: &mut StdRng) {
    for n in NAMESPACES {
        let n = Namespace::parse(n).unwrap();
        for q in QUEUES {
            let q = QueueName::parse(q).unwrap();
            let patch = policy(rng);
            sim.both("create_queue", async |s| {
                s.create_queue(&n, &q, &patch).await
            })
            .await
            .unwrap();
        }
        for (name, secs) in [("tick", 45), ("slow", 100)] {
            let name = TickerName::parse(name).unwrap();
            let patch = TickerMeta {
                interval: Some(Duration::from_nanos(secs * 1_000_000_000 + 777)),
                payload: Some(json!({"ticker": secs})),
                ..Default::default()
            }
            .validate()
            .unwrap();
            sim.both("create_ticker", async |s| {
                s.create_ticker(&n, &name, &patch).await
            })
            .await
            .unwrap();
        }
        let to_queue = TickerMeta {
            interval: Some(Duration::from_secs(120)),
            queue: Some(Some("q1".into())),
            ..Default::default()
        }
        .validate()
        .unwrap();
        let name = TickerName::parse("feeder").unwrap();
        sim.both("create_ticker(queue)", async |s| {
            s.create_ticker(&n, &name, &to_queue).await
        })
        .await
        .unwrap();
        let on_cron = TickerMeta {
            cron: Some("*/7 * * * *".into()),
            timezone: Some("Europe/Berlin".into()),
            queue: Some(Some("q2".into())),
            ..Default::default()
        }
        .validate()
        .unwrap();
        let name = TickerName::parse("cronic").unwrap();
        sim.both("create_ticker(cron)", async |s| {
            s.create_ticker(&n, &name, &on_cron).await
        })
        .await
        .unwrap();
    }
}

/// An operator's step: cancel, retry, redrive, delete, purge, pause or resume.
async fn operate(sim: &mut Sim, rng: &mut StdRng) {
    let n = ns(rng);
    match rng.random_range(0..8) {
        0 | 1 => {
            let (n, id, _) = target(sim, rng);
            let done = sim
                .both(&format!("cancel_task({n}, {id})"), async |s| {
                    s.cancel_task(&n, id).await
                })
                .await;
            sim.coverage.cancelled += usize::from(done.is_ok());
        }
        2 => {
            let id = task_id(sim, rng);
            let done = sim
                .both(&format!("retry_task({n}, {id})"), async |s| {
                    s.retry_task(&n, id).await
                })
                .await;
            sim.coverage.operated += usize::from(done.is_ok());
        }
        3 => {
            let q = queue(rng);
            let statuses = [
                [Status::Failed].as_slice(),
                &[Status::Expired, Status::Cancelled],
            ][rng.random_range(0..2)];
            let limit = rng.random_range(1..5);
            sim.both(
                &format!("retry_tasks({n}, {q}, {statuses:?}, {limit})"),
                async |s| s.retry_tasks(&n, &q, statuses, limit).await,
            )
            .await
            .ok();
        }
        4 => {
            let id = task_id(sim, rng);
            let done = sim
                .both(&format!("delete_task({n}, {id})"), async |s| {
                    s.delete_task(&n, id).await
                })
                .await;
            sim.coverage.operated += usize::from(done.is_ok());
        }
        5 => {
            let q = rng.random_bool(0.5).then(|| queue(rng));
            let statuses = [
                [Status::Released].as_slice(),
                &[Status::Cancelled, Status::Expired],
            ][rng.random_range(0..2)];
            sim.both(
                &format!("purge_tasks({n}, {q:?}, {statuses:?})"),
                async |s| s.purge_tasks(&n, q.clone(), statuses).await,
            )
            .await
            .ok();
        }
        6 => {
            let q = queue(rng);
            let paused = rng.random_bool(0.5);
            sim.both(&format!("pause_queue({n}, {q}, {paused})"), async |s| {
                s.pause_queue(&n, &q, paused).await
            })
            .await
            .ok();
        }
        _ => {
            let names = ["tick", "slow", "feeder"];
            let name = TickerName::parse(names[rng.random_range(0..names.len())]).unwrap();
            let paused = rng.random_bool(0.5);
            sim.both(&format!("pause_ticker({n}, {name}, {paused})"), async |s| {
                s.pause_ticker(&n, &name, paused).await
            })
            .await
            .ok();
        }
    }
}

async fn step(sim: &mut Sim, rng: &mut StdRng) {
    let step = sim.step;
    if rng.random_bool(0.1) {
        return operate(sim, rng).await;
    }
    match rng.random_range(0..100) {
        0..=17 => {
            let (n, q) = (ns(rng), queue(rng));
            let count = rng.random_range(1..4);
            let now = sim.now();
            let tasks: Vec<NewTask> = (0..count)
                .map(|_| {
                    TaskMeta {
                        payload: Some(payload(rng, step)),
                        // Some delays have passed already: the store treats them as due.
                        delayed_at: rng.random_bool(0.3).then(|| {
                            now + TimeDelta::microseconds(rng.random_range(-30_000_000..90_000_000))
                        }),
                        // A few priorities, so claims order by them; a few keys, so creates
                        // answer waiting tasks, within a batch and across batches.
                        priority: rng
                            .random_bool(0.4)
                            .then(|| [-100, -5, 0, 3, 100][rng.random_range(0..5)]),
                        unique_key: rng
                            .random_bool(0.3)
                            .then(|| format!("k{}", rng.random_range(0..6))),
                    }
                    .validate()
                    .unwrap()
                })
                .collect();
            let made = sim
                .both(&format!("create_tasks({n}, {q}, {count})"), async |s| {
                    s.create_tasks(&n, &q, &tasks).await
                })
                .await;
            if let Ok(made) = made {
                sim.coverage.existing += made.iter().filter(|c| !c.is_new()).count();
                sim.ids
                    .extend(made.iter().filter(|c| c.is_new()).map(|c| c.task().id));
            }
        }
        18..=35 => {
            let (n, w) = (ns(rng), worker(rng));
            let queues: Vec<QueueName> = match rng.random_range(0..4) {
                0 => vec![],
                1 => vec![queue(rng)],
                _ => vec![queue(rng), queue(rng)],
            };
            let limit = rng.random_range(0..4);
            if rng.random_bool(0.3) {
                // The claim for several callers at once, as group commit sends it.
                let workers: Vec<WorkerName> = (0..limit).map(|_| worker(rng)).collect();
                let got = sim
                    .both(
                        &format!("retain_tasks_for({n}, {workers:?}, {queues:?})"),
                        async |s| s.retain_tasks_for(&n, &workers, &queues).await,
                    )
                    .await;
                if let Ok(got) = got {
                    sim.coverage.retained += got.tasks.len();
                    sim.coverage.limited += got.limited.len();
                    sim.held.extend(
                        got.tasks
                            .iter()
                            .zip(&workers)
                            .map(|(t, w)| (n.clone(), t.id, w.clone())),
                    );
                }
                return;
            }
            let got = sim
                .both(
                    &format!("retain_tasks({n}, {w}, {queues:?}, {limit})"),
                    async |s| s.retain_tasks(&n, &w, &queues, limit).await,
                )
                .await;
            if let Ok(got) = got {
                sim.coverage.retained += got.tasks.len();
                sim.coverage.limited += got.limited.len();
                sim.held
                    .extend(got.tasks.into_iter().map(|t| (n.clone(), t.id, w.clone())));
            }
        }
        36..=47 => {
            let (n, id, w) = target(sim, rng);
            let result = payload(rng, step);
            let outcome = fence(rng, Outcome::success(Some(result)).unwrap(), w);
            let done = sim
                .both(
                    &format!("release_task({n}, {id}, {outcome:?})"),
                    async |s| s.release_task(&n, id, &outcome).await,
                )
                .await;
            if done.is_ok() {
                sim.coverage.released += 1;
                sim.held.retain(|(_, held, _)| *held != id);
            }
        }
        48..=57 => {
            let (n, id, w) = target(sim, rng);
            let outcome = fence(rng, Outcome::failure(json!({"error": step})).unwrap(), w);
            let done = sim
                .both(
                    &format!("release_task({n}, {id}, {outcome:?})"),
                    async |s| s.release_task(&n, id, &outcome).await,
                )
                .await;
            if done.is_ok() {
                sim.held.retain(|(_, held, _)| *held != id);
            }
            match done.map(|t| t.status()) {
                Ok(Status::Retry) => sim.coverage.retried += 1,
                Ok(_) => sim.coverage.failed += 1,
                Err(_) => {}
            }
        }
        58..=61 => {
            let n = ns(rng);
            let releases: Vec<(i64, Outcome)> = (0..rng.random_range(1..4))
                .map(|_| {
                    let (_, id, w) = target(sim, rng);
                    let o = if rng.random_bool(0.5) {
                        Outcome::done()
                    } else {
                        Outcome::failure(json!("batch")).unwrap()
                    };
                    (id, fence(rng, o, w))
                })
                .collect();
            sim.both(&format!("release_tasks({n}, {releases:?})"), async |s| {
                s.release_tasks(&n, &releases).await
            })
            .await
            .ok();
        }
        62..=67 => {
            let (n, id, w) = target(sim, rng);
            sim.both(&format!("heartbeat({n}, {id}, {w})"), async |s| {
                s.heartbeat(&n, id, &w).await
            })
            .await
            .ok();
        }
        68..=79 => {
            let by = if rng.random_bool(0.1) {
                TimeDelta::minutes(rng.random_range(5..70))
            } else {
                TimeDelta::microseconds(rng.random_range(1..40_000_000))
            };
            sim.advance(by);
        }
        80..=83 => {
            let limit = rng.random_range(1..6);
            let rescued = sim
                .both(&format!("rescue_leases({limit})"), async |s| {
                    s.rescue_leases(limit).await
                })
                .await;
            sim.coverage.rescued += rescued.map_or(0, |v| v.len());
        }
        84..=86 => {
            let limit = rng.random_range(1..6);
            let cleaned = sim
                .both(&format!("clean_up({limit})"), async |s| {
                    s.clean_up(limit).await
                })
                .await;
            sim.coverage.cleaned += cleaned.unwrap_or(0);
        }
        87 => {
            let (n, q) = (ns(rng), queue(rng));
            sim.both(&format!("clean_queue({n}, {q})"), async |s| {
                s.clean_queue(&n, &q).await
            })
            .await
            .ok();
        }
        88..=90 => {
            let n = ns(rng);
            let claimed = sim
                .both(&format!("claim_ticker({n})"), async |s| {
                    s.claim_ticker(&n).await
                })
                .await;
            sim.coverage.ticks += usize::from(matches!(claimed, Ok(Some(_))));
        }
        91..=92 => {
            let limit = rng.random_range(1..4);
            let fired = sim
                .both(&format!("fire_queue_tickers({limit})"), async |s| {
                    s.fire_queue_tickers(limit).await
                })
                .await;
            if let Ok(fired) = fired {
                sim.coverage.cron_fires += fired
                    .iter()
                    .filter(|f| f.ticker.schedule.cron().is_some())
                    .count();
                sim.ids
                    .extend(fired.iter().filter_map(|f| f.task.as_ref().map(|t| t.id)));
            }
        }
        93 if rng.random_bool(0.5) => {
            let n = ns(rng);
            let names = ["tick", "slow", "tock", "feeder", "cronic"];
            let name = TickerName::parse(names[rng.random_range(0..names.len())]).unwrap();
            let patch = TickerMeta {
                ticker: rng
                    .random_bool(0.3)
                    .then(|| names[rng.random_range(0..names.len())].to_string()),
                payload: rng.random_bool(0.5).then(|| payload(rng, step)),
                interval: rng
                    .random_bool(0.4)
                    .then(|| Duration::from_nanos(rng.random_range(100_000_000..200_000_000_000))),
                ..Default::default()
            };
            // Sometimes a cron schedule instead (or just a new zone, refused on an interval
            // ticker by both).
            let patch = if patch.interval.is_none() && rng.random_bool(0.4) {
                let exprs = ["*/5 * * * *", "@hourly", "30 2 * * *", "*/20 * * * * *"];
                let zones = ["UTC", "Europe/Berlin", "America/New_York"];
                TickerMeta {
                    cron: rng
                        .random_bool(0.8)
                        .then(|| exprs[rng.random_range(0..exprs.len())].to_string()),
                    timezone: rng
                        .random_bool(0.5)
                        .then(|| zones[rng.random_range(0..zones.len())].to_string()),
                    ..patch
                }
            } else {
                patch
            };
            let patch = patch.validate().unwrap();
            if rng.random_bool(0.5) {
                sim.both(
                    &format!("update_ticker({n}, {name}, {patch:?})"),
                    async |s| s.update_ticker(&n, &name, &patch).await,
                )
                .await
                .ok();
            } else {
                sim.both(
                    &format!("register_ticker({n}, {name}, {patch:?})"),
                    async |s| s.register_ticker(&n, &name, &patch).await,
                )
                .await
                .ok();
            }
            sim.both("list_namespaces", async |s| s.list_namespaces().await)
                .await
                .ok();
        }
        93 => {
            let n = ns(rng);
            let scope = if rng.random_bool(0.5) {
                TickerScope::Queued
            } else {
                TickerScope::Deliveries(n)
            };
            sim.both(&format!("next_maturity({scope:?})"), async |s| {
                s.next_maturity(&scope).await
            })
            .await
            .ok();
        }
        94..=95 => {
            let n = ns(rng);
            let filter = TaskFilter {
                queue: rng.random_bool(0.5).then(|| queue(rng)),
                status: rng
                    .random_bool(0.7)
                    .then(|| Status::ALL[rng.random_range(0..Status::ALL.len())]),
                page: Page::new(Some(rng.random_range(0..5)), Some(rng.random_range(0..20))),
            };
            sim.both(&format!("list_tasks({n}, {filter:?})"), async |s| {
                s.list_tasks(&n, &filter).await
            })
            .await
            .ok();
        }
        96 => {
            let n = ns(rng);
            sim.both(&format!("queue_statuses({n})"), async |s| {
                s.queue_statuses(&n).await
            })
            .await
            .ok();
        }
        97 => {
            let (n, id) = (ns(rng), task_id(sim, rng));
            sim.both(&format!("get_task({n}, {id})"), async |s| {
                s.get_task(&n, id).await
            })
            .await
            .ok();
        }
        98 => {
            let (n, q) = (ns(rng), queue(rng));
            sim.both(&format!("delete_queue({n}, {q})"), async |s| {
                s.delete_queue(&n, &q).await
            })
            .await
            .ok();
            let patch = policy(rng);
            sim.both(&format!("register_queue({n}, {q}, {patch:?})"), async |s| {
                s.register_queue(&n, &q, &patch).await
            })
            .await
            .ok();
        }
        99 if rng.random_bool(0.3) => {
            // Out-of-range input through the Manager, as users reach the stores: both refuse
            // alike, before anything reaches storage.
            let (n, q) = (ns(rng), queue(rng));
            let meta = match rng.random_range(0..4) {
                0 => QueueMeta {
                    ttl: Some(Duration::from_nanos(60)),
                    ..Default::default()
                },
                1 => QueueMeta {
                    lease: Some(Duration::ZERO),
                    ..Default::default()
                },
                2 => QueueMeta {
                    retries: Some(1001),
                    ..Default::default()
                },
                _ => QueueMeta {
                    retry_delay: Some(Duration::from_secs(-1)),
                    ..Default::default()
                },
            };
            let refused = sim
                .both_owned(
                    &format!("update_queue({n}, {q}, {meta:?}) via the Manager"),
                    async |s| {
                        let m = pgqueue_app::Manager::new(s)
                            .with_namespace(n.as_str())
                            .unwrap();
                        m.update_queue(q.as_str(), meta.clone()).await.map(|_| ())
                    },
                )
                .await;
            assert!(
                matches!(refused, Err(pgqueue_app::Error::Invalid(_))),
                "{refused:?}"
            );
        }
        _ => {
            let (n, q) = (ns(rng), queue(rng));
            let patch = policy(rng);
            sim.both(&format!("update_queue({n}, {q}, {patch:?})"), async |s| {
                s.update_queue(&n, &q, &patch).await
            })
            .await
            .ok();
        }
    }
}

/// Runs one seeded sequence to the end, comparing every answer.
async fn simulate(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sim = Sim::new(seed).await;
    setup(&mut sim, &mut rng).await;
    for i in 0..STEPS {
        sim.step = i;
        step(&mut sim, &mut rng).await;
        sim.compare_events().await;
    }
    // The final state agrees too, everywhere.
    for n in NAMESPACES {
        let n = Namespace::parse(n).unwrap();
        let all = TaskFilter {
            page: Page::new(None, Some(100)),
            ..Default::default()
        };
        let listed = sim
            .both("final list_tasks", async |s| s.list_tasks(&n, &all).await)
            .await
            .unwrap();
        sim.both("final queue_statuses", async |s| s.queue_statuses(&n).await)
            .await
            .unwrap();
        sim.both("final list_tickers", async |s| {
            s.list_tickers(&n, Page::default()).await
        })
        .await
        .unwrap();
        sim.coverage.listed += listed.items.len();
    }
    // The run must have exercised the interesting paths, or agreement means little.
    let c = &sim.coverage;
    assert!(
        sim.ids.len() > 50
            && c.retained > 20
            && c.released > 5
            && c.retried + c.failed > 5
            && c.existing > 5
            && c.cancelled > 2
            && c.operated > 3
            && c.cron_fires > 0
            && c.limited > 3
            && c.events > 200,
        "seed {seed}: the run exercised too little: {} tasks, {c:?}",
        sim.ids.len()
    );
}

/// Seeds from `PGQUEUE_SIM_SEED` (one run) or the given default.
fn seed(default: u64) -> u64 {
    std::env::var("PGQUEUE_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[tokio::test]
async fn postgres_agrees_with_memory_seed_1() {
    simulate(seed(1)).await;
}

#[tokio::test]
async fn postgres_agrees_with_memory_seed_2() {
    simulate(seed(2)).await;
}

#[tokio::test]
async fn postgres_agrees_with_memory_seed_3() {
    simulate(seed(3)).await;
}

#[tokio::test]
async fn postgres_agrees_with_memory_seed_4() {
    simulate(seed(4)).await;
}
