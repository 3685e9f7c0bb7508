//! Claim floors: where a one-queue claim starts walking each priority of its queue
//! (docs/adr/0002-hot-path-storage.md, "the design for the product").
//!
//! A claim updates the rows it takes, and while any transaction holds the horizon (an idle
//! `BEGIN` elsewhere, a long report) no vacuum may remove the entries those rows leave in the
//! claim index. A claim that walks the index from its head steps over every one of them, so
//! its cost grows for as long as the horizon is held (measured: A's claim 1.0 → 3.8 ms in a
//! pinned minute on a deep queue, and behind its rate within 20 s on a near-empty one). Within
//! one priority the index is in claim order, so the claim starts each priority (a *lane*)
//! past the last task this store took from it: its **floor**, a row comparison on
//! `(created_at, id)`. The floor is a hint kept in this store's memory, never stored: the
//! rule that decides which task comes first (`Task::claim_order`) and the one that hands a
//! task out once (the row lock and the state condition) are the statement's as before.
//!
//! A floor can pass a task that is not taken: a task that became retainable later (a retry,
//! a delayed task: read first from `tasks_late_by_queue`, below the floor), an insert that
//! committed after a claim passed it (a create in flight, or one inside a longer transaction:
//! `enqueue_in`), a claim that rolled back, another process's claims, a queue renamed or an
//! operator's retry. Three walks find such tasks:
//!
//! - once every [`PERIOD`], one claim of each lane starts [`TRAILING`] earlier than its
//!   floor, from the tasks created that long before it (it steps over the dead entries of
//!   those few seconds only): a task whose transaction lasted less than about that long is
//!   taken within a period;
//! - every [`FORGET_AFTER`] the queue's lanes and floors are forgotten, and the next claim
//!   walks from the head, as every claim did before (under a held horizon, that one claim
//!   pays the walk over everything claimed since);
//! - at once, where this store knows something waits below a floor: a failed claim, an
//!   operator's retry, a queue deleted or renamed — its own, or another process's, which
//!   says so with a `floor:<namespace>:<queue>` notification (`listen.rs`); a create sends
//!   one too when its transaction was open over a second before it (`create.rs`), as an
//!   `enqueue_in` at the end of a long transaction is.
//!
//! A claim in flight while its queue is forgotten began before what was forgotten for (its
//! snapshot may not see the retried task) and must not learn floors above it: every forget
//! starts a new [`Seen`] epoch, and a claim learns only within the epoch its lanes came from.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pgqueue_domain::{Namespace, QueueName, Task};

/// How often a lane's claim starts from an older floor, to take what committed behind it.
pub(crate) const PERIOD: Duration = Duration::from_secs(1);

/// How far before its floor that walk starts, in creation time: a task whose transaction
/// (creation to commit) lasted up to about this long is found by it.
const TRAILING: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

/// How long a queue's lanes and floors are kept before the next claim walks from the head:
/// the longest a task committed behind a floor can wait.
pub(crate) const FORGET_AFTER: Duration = Duration::from_secs(60);

/// The key of a task in its lane: `(created_at, id)`.
type Floor = (DateTime<Utc>, i64);

/// What this store knows of one queue's lanes.
#[derive(Debug)]
struct Known {
    /// When the first of these lanes was learnt.
    born: Instant,
    /// When the last period ended.
    period: Instant,
    /// Each lane's floor by priority.
    lanes: BTreeMap<i16, Floor>,
}

/// The lanes a claim reads, highest priority first, with their floors (the statement's
/// `$6`, `$7`, `$8`).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Lanes {
    pub(crate) priorities: Vec<i16>,
    pub(crate) created_at: Vec<DateTime<Utc>>,
    pub(crate) ids: Vec<i64>,
}

/// The epoch a claim's lanes were read in: what it learns counts only if no queue was
/// forgotten since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen(u64);

/// What the lock guards: every queue's lanes and the number of forgets so far.
#[derive(Debug, Default)]
struct State {
    queues: HashMap<(Namespace, QueueName), Known>,
    epoch: u64,
}

/// The floors of every queue this store claims from.
#[derive(Debug, Default)]
pub(crate) struct Floors {
    state: Mutex<State>,
}

impl Floors {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves hints at worst: keep using them.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lanes of `queue` and the floor to read each from at `now`: none once they are
    /// older than [`FORGET_AFTER`] (they are dropped, so the claim walks from the head); at
    /// the end of a [`PERIOD`], [`TRAILING`] before each floor (the trailing walk); with the
    /// epoch to learn in.
    pub(crate) fn lanes(&self, ns: &Namespace, queue: &QueueName, now: Instant) -> (Lanes, Seen) {
        let mut state = self.state();
        let seen = Seen(state.epoch);
        let key = (ns.clone(), queue.clone());
        let Some(known) = state.queues.get_mut(&key) else {
            return (Lanes::default(), seen);
        };
        if now.duration_since(known.born) >= FORGET_AFTER {
            state.queues.remove(&key);
            return (Lanes::default(), seen);
        }
        let trailing = now.duration_since(known.period) >= PERIOD;
        if trailing {
            known.period = now;
        }
        let mut out = Lanes::default();
        for (p, floor) in known.lanes.iter().rev() {
            let (at, id) = if trailing {
                // Checked: a floor near the calendar's start must not panic the claim.
                let at = floor.0.checked_sub_signed(TRAILING);
                (at.unwrap_or(DateTime::<Utc>::MIN_UTC), 0)
            } else {
                *floor
            };
            out.priorities.push(*p);
            out.created_at.push(at);
            out.ids.push(id);
        }
        (out, seen)
    }

    /// Learns from the tasks a claim of `queue` took: each one's lane moves its floor up to
    /// it (concurrent claims keep the larger), and a lane seen for the first time is known
    /// from now on; nothing, if a queue was forgotten since the claim read its lanes in
    /// `seen`.
    pub(crate) fn learn(
        &self,
        ns: &Namespace,
        queue: &QueueName,
        taken: &[Task],
        seen: Seen,
        now: Instant,
    ) {
        let mut state = self.state();
        if taken.is_empty() || state.epoch != seen.0 {
            return;
        }
        let known = state
            .queues
            .entry((ns.clone(), queue.clone()))
            .or_insert_with(|| Known {
                born: now,
                period: now,
                lanes: BTreeMap::new(),
            });
        for task in taken.iter().filter(|t| &t.queue == queue) {
            let key = (task.created_at, task.id);
            known
                .lanes
                .entry(task.priority())
                .and_modify(|f| *f = (*f).max(key))
                .or_insert(key);
        }
    }

    /// Forgets what is known of `queue`: something may now wait below its floors.
    pub(crate) fn forget(&self, ns: &Namespace, queue: &QueueName) {
        let mut state = self.state();
        state.epoch += 1;
        state.queues.remove(&(ns.clone(), queue.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lanes_of(l: &Lanes) -> Vec<(i16, i64)> {
        l.priorities
            .iter()
            .copied()
            .zip(l.ids.iter().copied())
            .collect()
    }

    #[test]
    fn an_unknown_queue_has_no_lanes() {
        let f = Floors::default();
        let (ns, q) = (Namespace::default(), QueueName::parse("q").unwrap());
        assert_eq!(f.lanes(&ns, &q, Instant::now()).0, Lanes::default());
    }

    #[test]
    fn floors_trail_each_period_and_are_forgotten_after_a_while_or_when_told() {
        let f = Floors::default();
        let (ns, q) = (Namespace::default(), QueueName::parse("q").unwrap());
        let t0 = Instant::now();
        f.known_for_tests(&ns, &q, &[(0, 5), (10, 3)], t0);
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let lanes = f.lanes(&ns, &q, t0).0;
        assert_eq!(lanes_of(&lanes), vec![(10, 3), (0, 5)]);
        assert_eq!(lanes.created_at, vec![at, at]);
        // A period later, one claim starts TRAILING before each floor; the next from it.
        let trailing = f.lanes(&ns, &q, t0 + PERIOD).0;
        assert_eq!(lanes_of(&trailing), vec![(10, 0), (0, 0)]);
        assert_eq!(trailing.created_at, vec![at - TRAILING, at - TRAILING]);
        assert_eq!(
            lanes_of(&f.lanes(&ns, &q, t0 + PERIOD).0),
            vec![(10, 3), (0, 5)]
        );
        assert_eq!(f.lanes(&ns, &q, t0 + FORGET_AFTER).0, Lanes::default());
        f.known_for_tests(&ns, &q, &[(0, 5)], t0);
        f.forget(&ns, &q);
        assert_eq!(f.lanes(&ns, &q, t0).0, Lanes::default());
    }

    #[test]
    fn a_claim_that_read_its_lanes_before_a_forget_learns_nothing() {
        let f = Floors::default();
        let (ns, q) = (Namespace::default(), QueueName::parse("q").unwrap());
        let queue = pgqueue_domain::Queue::new(ns.clone(), q.clone());
        let taken = |id| {
            let new = pgqueue_domain::TaskMeta::new(serde_json::json!(id));
            Task::create(
                id,
                &queue,
                new.validate().unwrap(),
                DateTime::<Utc>::UNIX_EPOCH,
            )
        };
        let t0 = Instant::now();
        // In flight while the queue is forgotten (an operator's retry committed meanwhile):
        // learning from it would put the floor above the retried task again.
        let (_, before) = f.lanes(&ns, &q, t0);
        f.forget(&ns, &q);
        f.learn(&ns, &q, &[taken(7)], before, t0);
        assert_eq!(f.lanes(&ns, &q, t0).0, Lanes::default(), "nothing learnt");
        // A claim that read its lanes after the forget learns.
        let (_, after) = f.lanes(&ns, &q, t0);
        f.learn(&ns, &q, &[taken(7)], after, t0);
        assert_eq!(lanes_of(&f.lanes(&ns, &q, t0).0), vec![(0, 7)]);
    }

    #[test]
    fn a_floor_at_the_calendars_start_trails_to_it_without_panicking() {
        let f = Floors::default();
        let (ns, q) = (Namespace::default(), QueueName::parse("q").unwrap());
        let t0 = Instant::now();
        f.known_for_tests(&ns, &q, &[(0, 5)], t0);
        if let Some(k) = f.state().queues.get_mut(&(ns.clone(), q.clone())) {
            k.lanes.insert(0, (DateTime::<Utc>::MIN_UTC, 5));
        }
        let trailing = f.lanes(&ns, &q, t0 + PERIOD).0;
        assert_eq!(trailing.created_at, vec![DateTime::<Utc>::MIN_UTC]);
        assert_eq!(trailing.ids, vec![0]);
    }

    impl Floors {
        fn known_for_tests(&self, ns: &Namespace, q: &QueueName, lanes: &[(i16, i64)], t: Instant) {
            let at = DateTime::<Utc>::UNIX_EPOCH;
            self.state().queues.insert(
                (ns.clone(), q.clone()),
                Known {
                    born: t,
                    period: t,
                    lanes: lanes.iter().map(|(p, id)| (*p, (at, *id))).collect(),
                },
            );
        }
    }
}
