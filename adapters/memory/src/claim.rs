//! Retaining in memory: the unlimited queues' tasks in claim order, then each limited queue
//! in name order, as far as its limits admit (domain: `Limits::admit`). The PostgreSQL
//! adapter claims in the same order, so the differential simulation can compare them.

use crate::state::State;
use chrono::{DateTime, Utc};
use pgqueue_domain::{EventKind, Namespace, QueueName, Task, TaskEvent, TaskId, WorkerName};
use pgqueue_ports::{Limited, Retained, StoreResult};

impl State {
    /// Retains one task for each of `workers`, in claim order: the k-th task goes to the
    /// k-th worker.
    pub(crate) fn retain_tasks(
        &mut self,
        ns: &Namespace,
        workers: &[&WorkerName],
        queues: &[QueueName],
        now: DateTime<Utc>,
    ) -> StoreResult<Retained> {
        let wanted = |q: &QueueName| queues.is_empty() || queues.contains(q);
        let limited: Vec<QueueName> = self
            .queues
            .values()
            .filter(|q| &q.namespace == ns && wanted(&q.name))
            .filter(|q| q.paused_at.is_none() && q.limits().any())
            .map(|q| q.name.clone())
            .collect();
        let mut chosen = self.waiting(ns, now, |q| {
            wanted(q) && !limited.contains(q) && !self.is_paused(ns, q)
        });
        chosen.truncate(workers.len());
        let mut out = Retained::default();
        for queue in limited {
            let asked = workers.len().saturating_sub(chosen.len());
            if asked == 0 {
                break;
            }
            let (ids, refused) = self.admit(ns, &queue, asked, now);
            chosen.extend(ids);
            out.limited.extend(refused);
        }
        for (id, worker) in chosen.into_iter().zip(workers) {
            let task = self.transition(ns, id, now, |t, q, now| t.retain(worker, q.lease, now))?;
            out.tasks.push(task);
        }
        let events = TaskEvent::of_all(&out.tasks, |_| Some(EventKind::Retained), now);
        self.events.record(events);
        Ok(out)
    }

    /// The retainable tasks of `ns` whose queue passes `queue`, in claim order.
    fn waiting(
        &self,
        ns: &Namespace,
        now: DateTime<Utc>,
        queue: impl Fn(&QueueName) -> bool,
    ) -> Vec<TaskId> {
        let mut candidates: Vec<&Task> = self
            .tasks
            .values()
            .filter(|t| &t.namespace == ns && queue(&t.queue) && t.is_retainable(now))
            .collect();
        candidates.sort_by_key(|t| t.claim_order());
        candidates.into_iter().map(|t| t.id).collect()
    }

    /// The tasks of a limited queue a claim for `asked` more may take, debiting its rate,
    /// and the limit that refused the rest (if tasks were left waiting).
    fn admit(
        &mut self,
        ns: &Namespace,
        queue: &QueueName,
        asked: usize,
        now: DateTime<Utc>,
    ) -> (Vec<TaskId>, Option<Limited>) {
        let key = (ns.clone(), queue.clone());
        let Some(limits) = self.queues.get(&key).map(|q| q.limits()) else {
            return (Vec::new(), None);
        };
        let running = self
            .tasks
            .values()
            .filter(|t| &t.namespace == ns && &t.queue == queue && t.holds_slot(now))
            .count() as u64;
        let asked = u32::try_from(asked).unwrap_or(u32::MAX);
        let admission = limits.admit(running, asked, self.buckets.get(&key).copied(), now);
        let mut ids = self.waiting(ns, now, |q| q == queue);
        let more = ids.len() > admission.granted() as usize;
        ids.truncate(admission.granted() as usize);
        let taken = ids.len() as u32;
        if let Some(b) = admission.bucket_after(taken) {
            self.buckets.insert(key, b);
        }
        let refused = admission.refused_by(taken, more).map(|limit| Limited {
            queue: queue.clone(),
            limit,
            retry_in: admission.next_token_in(taken),
        });
        (ids, refused)
    }
}
