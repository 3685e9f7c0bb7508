use super::*;
use crate::error::Error;
use pgqueue_domain::{Error as DomainError, Outcome, Queue, QueueMeta, TaskMeta, TickerMeta};
use pgqueue_ports::{MockStore, StoreError};
use serde_json::json;

fn manager(store: MockStore) -> Manager {
    Manager::new(Arc::new(store)).with_namespace("app").unwrap()
}

#[test]
fn namespaces_are_validated_and_the_system_one_refused() {
    let m = Manager::new(Arc::new(MockStore::new()));
    assert_eq!(m.namespace().as_str(), "default");
    assert!(matches!(
        m.with_namespace(""),
        Err(Error::Invalid(DomainError::MissingName("namespace")))
    ));
    assert!(matches!(
        m.with_namespace("pgqueue"),
        Err(Error::Invalid(DomainError::ReservedNamespace(_)))
    ));
    assert_eq!(
        m.with_namespace(" MyApp ").unwrap().namespace().as_str(),
        "myapp"
    );
}

#[tokio::test]
async fn storage_failures_become_storage_errors() {
    let mut store = MockStore::new();
    store
        .expect_get_queue()
        .returning(|_, _| Err(StoreError::Unavailable("connection refused".into())));
    let err = manager(store).get_queue("emails").await.unwrap_err();
    assert!(matches!(err, Error::Storage(m) if m.contains("connection refused")));
}

#[tokio::test]
async fn not_found_passes_through_with_its_message() {
    let mut store = MockStore::new();
    store
        .expect_get_task()
        .withf(|ns, id| ns.as_str() == "app" && *id == 42)
        .returning(|_, id| Err(StoreError::task_not_found(id)));
    assert_eq!(
        manager(store).get_task(42).await.unwrap_err(),
        Error::NotFound("task 42 not found".into())
    );
}

#[tokio::test]
async fn invalid_input_never_reaches_storage() {
    // A MockStore with no expectations panics on any call: these must fail before it.
    let m = manager(MockStore::new());
    assert!(matches!(
        m.get_queue("bad name").await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        m.create_task("q", TaskMeta::default()).await,
        Err(Error::Invalid(DomainError::MissingPayload))
    ));
    assert!(matches!(
        m.create_tasks("q", vec![]).await,
        Err(Error::Invalid(_))
    ));
    let too_many = vec![TaskMeta::new(json!(1)); MAX_BATCH + 1];
    assert!(matches!(
        m.create_tasks("q", too_many).await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        m.next_task(" ", &[]).await,
        Err(Error::Invalid(DomainError::MissingWorker))
    ));
    assert!(matches!(
        m.update_queue("q", QueueMeta::default()).await,
        Err(Error::Invalid(DomainError::NoPatchValues))
    ));
    assert!(matches!(
        m.update_ticker("t", TickerMeta::default()).await,
        Err(Error::Invalid(DomainError::NoPatchValues))
    ));
}

#[tokio::test]
async fn a_delay_in_the_past_is_checked_against_the_storage_clock() {
    let mut store = MockStore::new();
    let now = chrono::Utc::now();
    store.expect_now().times(1).returning(move || Ok(now));
    let meta = TaskMeta::new(json!(1)).delayed_until(now - chrono::TimeDelta::seconds(5));
    let err = manager(store).create_task("q", meta).await.unwrap_err();
    assert_eq!(err, Error::Invalid(DomainError::DelayedInPast));
}

#[tokio::test]
async fn undelayed_tasks_do_not_ask_the_clock() {
    let mut store = MockStore::new();
    store.expect_now().never();
    store
        .expect_create_tasks()
        .withf(|ns, q, t| ns.as_str() == "app" && q.as_str() == "emails" && t.len() == 2)
        .returning(|_, _, _| Err(StoreError::not_found("queue", "emails")));
    let err = manager(store)
        .create_tasks(
            " Emails ",
            vec![TaskMeta::new(json!(1)), TaskMeta::new(json!(2))],
        )
        .await
        .unwrap_err();
    assert_eq!(err, Error::NotFound("queue \"emails\" not found".into()));
}

#[tokio::test]
async fn a_ticker_queue_must_exist() {
    let mut store = MockStore::new();
    store
        .expect_get_queue()
        .withf(|_, q| q.as_str() == "reports")
        .returning(|_, q| Err(StoreError::not_found("queue", q)));
    store.expect_create_ticker().never();
    let meta = TickerMeta {
        ticker: Some("hourly".into()),
        queue: Some(Some("reports".into())),
        ..Default::default()
    };
    assert!(matches!(
        manager(store).create_ticker(meta).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn retaining_from_an_unknown_queue_is_not_found_but_an_empty_one_is_none() {
    let mut store = MockStore::new();
    store
        .expect_retain_tasks()
        .returning(|_, _, _, _| Ok(Default::default()));
    store
        .expect_get_queue()
        .withf(|_, q| q.as_str() == "ghost")
        .returning(|_, q| Err(StoreError::not_found("queue", q)));
    store
        .expect_get_queue()
        .withf(|_, q| q.as_str() == "empty")
        .returning(|ns, q| Ok(Queue::new(ns.clone(), q.clone())));
    let m = manager(store);
    assert!(matches!(
        m.next_task_from("w", "ghost").await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(m.next_task_from("w", "empty").await.unwrap(), None);
    assert_eq!(m.next_task("w", &["ghost"]).await.unwrap(), None);
}

#[tokio::test]
async fn refused_releases_are_conflicts() {
    let mut store = MockStore::new();
    store
        .expect_release_task()
        .returning(|_, _, _| Err(StoreError::Rule(DomainError::NotRetained)));
    let err = manager(store)
        .release_task(1, Outcome::done())
        .await
        .unwrap_err();
    assert_eq!(err, Error::Conflict("task is not retained".into()));
}
