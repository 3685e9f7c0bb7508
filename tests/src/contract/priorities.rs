//! Priorities and unique keys: higher priority runs first, across queues too; a key held by
//! a waiting or retained task answers that task instead of creating another.

use super::*;
use pgqueue_domain::Created;

fn meta(payload: serde_json::Value) -> TaskMeta {
    TaskMeta::new(payload)
}

async fn create(m: &Manager, queue: &str, meta: TaskMeta) -> Created {
    m.create_task(queue, meta).await.expect("create task")
}

/// Retains take higher priority first, then the oldest (creation, then id), from one queue,
/// several and any; a claim for several callers hands them out in that order.
pub async fn retain_order_is_priority_then_age(s: Subject) {
    let m = s.manager("prio");
    for q in ["a", "b"] {
        queue(&m, q).await;
    }
    let low_a = create(&m, "a", meta(json!("low a")).priority(-100))
        .await
        .into_task();
    let mid_a = create(&m, "a", meta(json!("mid a"))).await.into_task();
    s.advance(secs(1));
    let high_b = create(&m, "b", meta(json!("high b")).priority(100))
        .await
        .into_task();
    let mid_b = create(&m, "b", meta(json!("mid b"))).await.into_task();
    let high_a = create(&m, "a", meta(json!("high a")).priority(100))
        .await
        .into_task();
    assert_eq!(
        (high_b.priority(), low_a.priority(), mid_a.priority()),
        (100, -100, 0)
    );
    // One queue: priority, then age.
    let one = m.next_tasks("peek", &["a"], 2).await.unwrap();
    assert_eq!(
        one.iter().map(|t| t.id).collect::<Vec<_>>(),
        [high_a.id, mid_a.id]
    );
    // Several, and any: the same order across queues.
    let several = m.next_tasks("w", &["a", "b"], 2).await.unwrap();
    assert_eq!(
        several.iter().map(|t| t.id).collect::<Vec<_>>(),
        [high_b.id, mid_b.id]
    );
    let rest = m.next_tasks("w", &[], 5).await.unwrap();
    assert_eq!(rest.iter().map(|t| t.id).collect::<Vec<_>>(), [low_a.id]);
    // The k-th in claim order goes to the k-th caller.
    let x = create(&m, "a", meta(json!("x")).priority(-1))
        .await
        .into_task();
    let y = create(&m, "b", meta(json!("y")).priority(7))
        .await
        .into_task();
    let workers = [worker("first"), worker("second")];
    let got = s
        .store
        .retain_tasks_for(m.namespace(), &workers, &[])
        .await
        .unwrap()
        .tasks;
    let shape: Vec<(i64, Option<&str>)> = got.iter().map(|t| (t.id, t.worker())).collect();
    assert_eq!(shape, [(y.id, Some("first")), (x.id, Some("second"))]);
    assert!(matches!(
        m.create_task("a", meta(json!(1)).priority(101)).await,
        Err(Error::Invalid(_))
    ));
}

/// While a task with the key is new, retry or retained, a create answers it; once it ended,
/// the key is free; an expired holder gives its key up.
pub async fn unique_keys_answer_the_task_that_holds_them(s: Subject) {
    let m = s.manager("unique");
    queue(&m, "q").await;
    queue(&m, "other").await;
    let first = create(&m, "q", meta(json!(1)).unique_key("k")).await;
    let Created::New(first) = first else {
        panic!("the first create makes a task");
    };
    assert_eq!(first.unique_key().map(|k| k.as_str()), Some("k"));
    let again = create(&m, "q", meta(json!(2)).unique_key("k")).await;
    assert_eq!(again, Created::Existing(first.clone()));
    // Keys are per queue.
    assert!(
        create(&m, "other", meta(json!(3)).unique_key("k"))
            .await
            .is_new()
    );
    // Retained and retry tasks keep their key.
    let held = m.next_task("w", &["q"]).await.unwrap().unwrap();
    assert_eq!(
        create(&m, "q", meta(json!(4)).unique_key("k"))
            .await
            .task()
            .id,
        first.id
    );
    m.release_task(held.id, fail(json!("boom")).by(worker("w")))
        .await
        .unwrap();
    let retry = create(&m, "q", meta(json!(5)).unique_key("k")).await;
    assert!(!retry.is_new());
    assert_eq!(retry.task().status(), Status::Retry);
    // Once it ends, the key is free again; the ended task keeps its key for inspection.
    s.advance(mins(2));
    let held = m.next_task("w", &["q"]).await.unwrap().unwrap();
    m.release_task(held.id, Outcome::done()).await.unwrap();
    let fresh = create(&m, "q", meta(json!(6)).unique_key("k")).await;
    assert!(fresh.is_new() && fresh.task().id != first.id);
    assert_eq!(
        m.get_task(first.id)
            .await
            .unwrap()
            .unique_key()
            .map(|k| k.as_str()),
        Some("k")
    );
    // An expired holder gives the key up to the next create.
    s.advance(TimeDelta::hours(2));
    let after = create(&m, "q", meta(json!(7)).unique_key("k")).await;
    assert!(after.is_new());
    let expired = m.get_task(fresh.task().id).await.unwrap();
    assert_eq!(
        (expired.status(), expired.unique_key()),
        (Status::Expired, None)
    );
    assert!(matches!(
        m.create_task("q", meta(json!(1)).unique_key("")).await,
        Err(Error::Invalid(_))
    ));
}

/// In a batch, repeats of a key (of each other or of a waiting task) answer the one task,
/// in input order; new tasks get increasing ids.
pub async fn batches_answer_each_key_with_one_task(s: Subject) {
    let m = s.manager("ubatch");
    queue(&m, "q").await;
    let held = create(&m, "q", meta(json!("held")).unique_key("held"))
        .await
        .into_task();
    let batch = m
        .create_tasks(
            "q",
            vec![
                meta(json!("a")).unique_key("a"),
                meta(json!("plain")),
                meta(json!("a again")).unique_key("a"),
                meta(json!("held again")).unique_key("held"),
                meta(json!("b")).unique_key("b"),
            ],
        )
        .await
        .unwrap();
    let shape: Vec<(bool, serde_json::Value)> = batch
        .iter()
        .map(|c| (c.is_new(), c.task().payload.clone()))
        .collect();
    assert_eq!(
        shape,
        [
            (true, json!("a")),
            (true, json!("plain")),
            (false, json!("a")),
            (false, json!("held")),
            (true, json!("b")),
        ]
    );
    assert_eq!(batch[2].task().id, batch[0].task().id);
    assert_eq!(batch[3].task().id, held.id);
    assert!(batch[0].task().id < batch[1].task().id && batch[1].task().id < batch[4].task().id);
    let count = m
        .list_tasks(&TaskFilter {
            queue: Some(pgqueue_domain::QueueName::parse("q").unwrap()),
            ..Default::default()
        })
        .await
        .unwrap()
        .count;
    assert_eq!(count, 4, "held, a, plain, b");
}

/// A ticker's priority is the priority of the tasks its maturities create.
pub async fn ticker_tasks_take_the_tickers_priority(s: Subject) {
    let m = s.manager("tprio");
    queue(&m, "reports").await;
    m.create_ticker(TickerMeta {
        ticker: Some("urgent".into()),
        queue: Some(Some("reports".into())),
        priority: Some(Some(42)),
        ..Default::default()
    })
    .await
    .unwrap();
    let fired = s.store.fire_queue_tickers(10).await.unwrap();
    assert_eq!(fired[0].task.as_ref().map(|t| t.priority()), Some(42));
    assert_eq!(m.get_ticker("urgent").await.unwrap().priority, Some(42));
    let reset = m
        .update_ticker(
            "urgent",
            TickerMeta {
                priority: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(reset.priority, None);
}
