//! Cron maturities under contention: four `pgqueue run` servers on one database, each with
//! its scheduler, and a queue ticker firing every second (`* * * * * *`) for 20 seconds.
//! Afterwards the database holds one task per second: no second twice (no maturity claimed
//! by two servers) and no second skipped (none missed), allowing the first and the last.

use pgqueue_domain::{QueueMeta, TickerMeta};
use pgqueue_tests::binary::Server;
use pgqueue_tests::db::fresh_database;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_servers_fire_each_second_once() {
    let db = fresh_database().await;
    let mut servers = Vec::new();
    for _ in 0..4 {
        servers.push(Server::on(&db).await);
    }
    let client = servers[0].client();
    client
        .create_queue(&QueueMeta {
            queue: Some("beats".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .create_ticker(&TickerMeta {
            ticker: Some("every-second".into()),
            cron: Some("* * * * * *".into()),
            queue: Some(Some("beats".into())),
            ..Default::default()
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    client.pause_ticker("every-second", true).await.unwrap();
    // A fire in flight when the pause landed commits within moments.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let pg = db.client().await;
    let rows = pg
        .query(
            "SELECT extract(epoch FROM date_trunc('second', created_at))::bigint \
             FROM tasks WHERE namespace = 'default' AND queue = 'beats' ORDER BY created_at",
            &[],
        )
        .await
        .unwrap();
    let seconds: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert!(
        seconds.len() >= 18,
        "about 20 maturities in 20 s, got {}: {seconds:?}",
        seconds.len()
    );
    for pair in seconds.windows(2) {
        assert_ne!(pair[0], pair[1], "a second fired twice: {seconds:?}");
        assert_eq!(pair[1] - pair[0], 1, "a second was missed: {seconds:?}");
    }
    let ticker = client.get_ticker("every-second").await.unwrap();
    assert!(ticker.timestamp.is_some());
    for mut s in servers {
        s.signal(libc::SIGTERM);
        s.child.wait().await.unwrap();
    }
}
