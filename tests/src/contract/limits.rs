//! Flow control: `max_running` and `rate` decide how many tasks a claim gets, slots come back
//! as soon as a task stops being retained, and removing a limit takes effect at once.

use super::*;
use pgqueue_domain::{Limit, QueueName, Rate};

async fn limited_queue(m: &Manager, name: &str, max_running: Option<u32>, rate: Option<Rate>) {
    let q = m
        .create_queue(QueueMeta {
            queue: Some(name.into()),
            lease: Some(Duration::from_secs(30)),
            max_running: max_running.map(|n| Some(i64::from(n))),
            rate: rate.map(Some),
            ..Default::default()
        })
        .await
        .expect("create a limited queue");
    assert_eq!((q.max_running, q.rate), (max_running, rate));
}

/// The limits a store's claim of `n` for worker `w` reported, and how many tasks it got.
async fn claim(s: &Subject, m: &Manager, queues: &[&str], n: u32) -> (usize, Vec<Limit>) {
    let queues: Vec<QueueName> = queues
        .iter()
        .map(|q| QueueName::parse(q).unwrap())
        .collect();
    let got = s
        .store
        .retain_tasks(m.namespace(), &worker("w"), &queues, n)
        .await
        .unwrap();
    (
        got.tasks.len(),
        got.limited.iter().map(|l| l.limit).collect(),
    )
}

/// `max_running` caps the retained tasks; release, rescue and cancel of a waiting task give
/// the slot back at once; a cancel request holds it until the worker stops; an expired task
/// holds none; `null` removes the limit for the next claim.
pub async fn max_running_caps_what_is_retained_and_slots_come_back(s: Subject) {
    let m = s.manager("capped");
    limited_queue(&m, "api", Some(2), None).await;
    for i in 0..8 {
        task(&m, "api", json!(i)).await;
    }
    let held = m.next_tasks("w", &["api"], 5).await.unwrap();
    assert_eq!(held.len(), 2, "two slots");
    assert_eq!(
        claim(&s, &m, &["api"], 3).await,
        (0, vec![Limit::MaxRunning])
    );
    m.release_task(held[0].id, Outcome::done()).await.unwrap();
    let third = m.next_tasks("w", &["api"], 5).await.unwrap();
    assert_eq!(third.len(), 1, "a release frees its slot at once");
    // A cancel request does not free the slot: the handler may still be running.
    m.cancel_task(held[1].id).await.unwrap();
    assert_eq!(
        claim(&s, &m, &["api"], 1).await,
        (0, vec![Limit::MaxRunning])
    );
    m.release_task(held[1].id, fail(json!("stopped")))
        .await
        .unwrap();
    assert_eq!(claim(&s, &m, &["api"], 1).await, (1, vec![]));
    // A dead worker's slot comes back when its lease is rescued.
    s.advance(secs(31));
    assert_eq!(s.store.rescue_leases(100).await.unwrap().len(), 2);
    assert_eq!(
        claim(&s, &m, &["api"], 5).await,
        (2, vec![Limit::MaxRunning])
    );
    // Removing the limit takes effect on the next claim.
    m.update_queue(
        "api",
        QueueMeta {
            max_running: Some(None),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let rest = m.next_tasks("w", &["api"], 10).await.unwrap();
    // Of the 8: 1 released, 1 cancelled, 2 held, 2 rescued (backing off): 2 due.
    assert_eq!(rest.len(), 2);
    assert_eq!(m.get_queue("api").await.unwrap().max_running, None);
}

/// A rate admits its burst, then one task per `1 / per_second` on the store's clock; a
/// refused claim says how long until the next token; `null` removes the rate.
pub async fn a_rate_admits_its_burst_then_keeps_the_pace(s: Subject) {
    let m = s.manager("paced");
    limited_queue(&m, "mail", None, Some(Rate::new(2.0, 3).unwrap())).await;
    for i in 0..20 {
        task(&m, "mail", json!(i)).await;
    }
    assert_eq!(claim(&s, &m, &["mail"], 10).await, (3, vec![Limit::Rate]));
    let refused = s
        .store
        .retain_tasks(
            m.namespace(),
            &worker("w"),
            &[QueueName::parse("mail").unwrap()],
            1,
        )
        .await
        .unwrap();
    assert!(refused.tasks.is_empty());
    assert_eq!(
        refused.limited[0].retry_in,
        Some(Duration::from_millis(500))
    );
    s.advance(TimeDelta::milliseconds(400));
    assert_eq!(claim(&s, &m, &["mail"], 10).await, (0, vec![Limit::Rate]));
    s.advance(TimeDelta::milliseconds(100));
    assert_eq!(claim(&s, &m, &["mail"], 10).await, (1, vec![Limit::Rate]));
    // A quiet minute refills no more than the burst.
    s.advance(mins(1));
    assert_eq!(claim(&s, &m, &["mail"], 10).await, (3, vec![Limit::Rate]));
    // Enough tasks for the tokens: nothing was refused.
    s.advance(secs(1));
    assert_eq!(claim(&s, &m, &["mail"], 2).await, (2, vec![]));
    m.update_queue(
        "mail",
        QueueMeta {
            rate: Some(None),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(claim(&s, &m, &["mail"], 20).await, (11, vec![]));
}

/// A claim over several queues takes the unlimited queues' tasks first, then each limited
/// queue's as far as it admits; a paused limited queue gives nothing; limits follow a rename
/// and are listed with the queue.
pub async fn limited_queues_share_a_claim_with_unlimited_ones(s: Subject) {
    let m = s.manager("mixed");
    limited_queue(&m, "slow", Some(1), None).await;
    queue(&m, "fast").await;
    let slow = task(&m, "slow", json!("slow")).await;
    s.advance(secs(1));
    task(&m, "slow", json!("slow 2")).await;
    let fast = task(&m, "fast", json!("fast")).await;
    let got = m.next_tasks("w", &[], 5).await.unwrap();
    let ids: Vec<i64> = got.iter().map(|t| t.id).collect();
    assert_eq!(
        ids,
        vec![fast.id, slow.id],
        "unlimited first, then one of slow"
    );
    m.pause_queue("slow").await.unwrap();
    m.release_task(slow.id, Outcome::done()).await.unwrap();
    assert_eq!(claim(&s, &m, &["slow", "fast"], 5).await, (0, vec![]));
    m.resume_queue("slow").await.unwrap();
    let renamed = m
        .update_queue(
            "slow",
            QueueMeta {
                queue: Some("slower".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.max_running, Some(1));
    let listed = m.list_queues(Page::default()).await.unwrap();
    assert_eq!(listed.items[1].max_running, Some(1), "{listed:?}");
    assert_eq!(claim(&s, &m, &[], 5).await, (1, vec![]));
    task(&m, "slower", json!("slow 3")).await;
    assert_eq!(
        claim(&s, &m, &["slower"], 5).await,
        (0, vec![Limit::MaxRunning])
    );
}
