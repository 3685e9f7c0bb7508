//! Namespaces never see each other's data.

use super::*;

/// Namespaces never see each other's queues, tasks or tickers.
pub async fn namespaces_are_isolated(s: Subject) {
    let a = s.manager("tenant-a");
    let b = s.manager("tenant-b");
    queue(&a, "q").await;
    queue(&b, "q").await;
    let ta = task(&a, "q", json!("a")).await;
    assert!(matches!(b.get_task(ta.id).await, Err(Error::NotFound(_))));
    assert!(matches!(
        b.release_task(ta.id, Outcome::done()).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(b.next_task("w", &[]).await.unwrap(), None);
    assert_eq!(b.list_tasks(&TaskFilter::default()).await.unwrap().count, 0);
    b.update_queue(
        "q",
        QueueMeta {
            retries: Some(9),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(a.get_queue("q").await.unwrap().retries, 3);
    b.delete_queue("q").await.unwrap();
    assert!(a.get_task(ta.id).await.is_ok());
    a.create_ticker(TickerMeta {
        ticker: Some("t".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(matches!(b.get_ticker("t").await, Err(Error::NotFound(_))));
    assert_eq!(b.next_ticker().await.unwrap(), None);
    let c = s.manager("tenant-c");
    c.create_ticker(TickerMeta {
        ticker: Some("only".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let names: Vec<String> = a
        .list_namespaces()
        .await
        .unwrap()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(names, vec!["tenant-a", "tenant-c"]);
}
