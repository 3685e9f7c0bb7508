//! The claim must walk an index in claim order whatever the backlog: with 1,000,000 waiting
//! tasks of mixed priorities in four queues, and with 20,000 in a single queue (the shape of
//! the drain benchmark, where a column with one distinct value turns careless estimates into
//! "one row"), each variant of the claim statement (one queue, several, any), planned
//! generically as pooled connections plan it, uses its partial index, never sorts the backlog
//! and never scans `tasks` sequentially. The index predicates must match the
//! claim's WHERE text for the planner to use them, so this fails when either side changes
//! alone. (The only Sorts allowed are of the claimed rows, to number them for their callers
//! and pair them with the workers: above the claim's Limit, or of its `picked` CTE.)

use pgqueue_domain::{Namespace, QueueMeta, QueueName};
use pgqueue_ports::{StorageClock, Store};
use pgqueue_postgres::support;
use pgqueue_tests::db::fresh_database;
use serde_json::Value;
use std::sync::Arc;

/// Every node of a JSON plan, depth first.
fn nodes(plan: &Value, out: &mut Vec<Value>) {
    out.push(plan.clone());
    if let Some(children) = plan["Plans"].as_array() {
        for c in children {
            nodes(c, out);
        }
    }
}

/// The nodes of `statement`'s plan, and the plan as text.
async fn explain(client: &tokio_postgres::Client, statement: &str) -> (Vec<Value>, String) {
    explain_with(client, "FORMAT JSON", statement).await
}

/// [`explain`] with EXPLAIN's `options` (which must include `FORMAT JSON`).
pub(super) async fn explain_with(
    client: &tokio_postgres::Client,
    options: &str,
    statement: &str,
) -> (Vec<Value>, String) {
    // The simple protocol answers in text (the plan's type is json).
    let answer = client
        .simple_query(&format!("EXPLAIN ({options}) {statement}"))
        .await
        .unwrap();
    let text = answer
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap();
    let plan: Value = serde_json::from_str(&text).unwrap();
    let mut all = Vec::new();
    nodes(&plan[0]["Plan"], &mut all);
    (all, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_claim_variant_walks_its_index_in_claim_order() {
    check_filled(&["q0", "q1", "q2", "q3"], 1_000_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_queue_backlog_is_claimed_through_its_index() {
    check_filled(&["q1"], 20_000).await;
}

/// Fills a fresh database with `rows` waiting tasks spread over `queues` (which must include
/// `q1`), and checks the claim plans.
async fn check_filled(queues: &[&str], rows: u64) {
    let db = fresh_database().await;
    let store = db.store(Arc::new(StorageClock)).await;
    let client = filled(&db, &store, queues, rows).await;
    check_plans(&client, queues).await;
}

/// The shape of `W2_queues`: 1,000 queues of 20 tasks, claimed by a worker that names all of
/// them, on claim indexes a previous drain left four times their size (below the rebuild
/// threshold, as any busy queue's are). With the queue filter written as an array of the
/// 1,000 names that every row is compared with, the several-queues claim was planned as a
/// sort of the whole backlog there (40 ms per claim, against ~1 ms walking the index).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_naming_a_thousand_queues_walks_the_index_and_reads_queues_once() {
    let names: Vec<String> = (0..1000).map(|i| format!("q{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let db = fresh_database().await;
    let store = db.store(Arc::new(StorageClock)).await;
    let client = filled(&db, &store, &names, 80_000).await;
    for step in ["DELETE FROM tasks WHERE id % 4 <> 0", "VACUUM tasks"] {
        client.batch_execute(step).await.unwrap();
    }
    check_plans(&client, &names).await;

    // Run (and rolled back), a claim looks at a handful of `queues` rows, not all 1,000: the
    // several-queues claim probed each of the 1,000 names by key (3 ms of an 8-ms claim of
    // 64 tasks in `W2_queues`), the any-queue claim read every queue of the namespace.
    // (`check_plans` prepared both on this connection.)
    let all = format!("ARRAY['{}']", names.join("', '"));
    for (variant, queues) in [("several", all.as_str()), ("any", "ARRAY[]::text[]")] {
        client.batch_execute("BEGIN").await.unwrap();
        let (plan, text) = explain_with(
            &client,
            "ANALYZE, FORMAT JSON",
            &format!("EXECUTE claim_{variant}(NULL, 'big', ARRAY['w', 'w'], {queues}, 2)"),
        )
        .await;
        client.batch_execute("ROLLBACK").await.unwrap();
        // Each loop of a node costs at least one look, and each row it read (kept or not) one.
        let looked: f64 = plan
            .iter()
            .filter(|n| n["Relation Name"] == "queues")
            .map(|n| {
                let f = |k: &str| n[k].as_f64().unwrap_or(0.0);
                f("Actual Loops") * (f("Actual Rows") + f("Rows Removed by Filter")).max(1.0)
            })
            .sum();
        assert!(
            looked <= 10.0,
            "{variant}: {looked} looks at queues in {text}"
        );
        // The paused and limited ones (none here) through their index.
        assert!(
            !plan
                .iter()
                .any(|n| n["Node Type"] == "Seq Scan" && n["Relation Name"] == "queues"),
            "{variant}: a sequential scan of queues in {text}"
        );
    }
}

/// Prepares the claim statement's `variant` (`any`, `one`, `several`) as `claim_{variant}`.
async fn prepare_claim(client: &tokio_postgres::Client, variant: &str) {
    let (_, sql) = support::claim_statements()
        .into_iter()
        .find(|(v, _)| *v == variant)
        .unwrap();
    // The one-queue claim also takes the lanes it knows and their floors (none here).
    let floors = if variant == "one" {
        ", smallint[], timestamptz[], bigint[]"
    } else {
        ""
    };
    client
        .batch_execute(&format!(
            "PREPARE claim_{variant} (timestamptz, text, text[], text[], bigint{floors}) AS {sql}"
        ))
        .await
        .unwrap();
}

/// The arguments after the limit for `variant`: no known lanes for the one-queue claim.
fn no_floors(variant: &str) -> &'static str {
    if variant == "one" {
        ", ARRAY[]::smallint[], ARRAY[]::timestamptz[], ARRAY[]::bigint[]"
    } else {
        ""
    }
}

/// Creates `queues` in namespace `big` with `rows` waiting tasks spread over them, and
/// answers a plain connection to the database.
async fn filled(
    db: &pgqueue_tests::db::TestDatabase,
    store: &pgqueue_postgres::PgStore,
    queues: &[&str],
    rows: u64,
) -> tokio_postgres::Client {
    let ns = Namespace::parse("big").unwrap();
    let queues: Vec<QueueName> = queues
        .iter()
        .map(|q| QueueName::parse(q).unwrap())
        .collect();
    for q in &queues {
        let patch = QueueMeta::default().validate().unwrap();
        store.create_queue(&ns, q, &patch).await.unwrap();
    }
    support::insert_waiting(store, &ns, &queues, rows)
        .await
        .unwrap();
    db.client().await
}

/// Checks each claim variant's generic plan on the tasks of `queues` (which include `q1`) in
/// namespace `big`; the several-queues variant names every queue (or `q1` and `q2` when there
/// is only `q1`).
async fn check_plans(client: &tokio_postgres::Client, queues: &[&str]) {
    let several_queues = queues.len() > 1;
    // Both tables analysed, as autovacuum leaves them (pgqueue's own maintenance analyses
    // only `tasks`): the statistics of `queues` change the estimate of the queue filter.
    client.batch_execute("ANALYZE tasks, queues").await.unwrap();
    client
        .batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    for (variant, _) in support::claim_statements() {
        prepare_claim(client, variant).await;
        let queues = match variant {
            "any" => "ARRAY[]::text[]".to_string(),
            "one" => "ARRAY['q1']".to_string(),
            _ if several_queues => format!("ARRAY['{}']", queues.join("', '")),
            _ => "ARRAY['q1', 'q2']".to_string(),
        };
        let (all, text) = explain(
            client,
            &format!(
                "EXECUTE claim_{variant}(NULL, 'big', ARRAY['w', 'w'], {queues}, 2{})",
                no_floors(variant)
            ),
        )
        .await;
        for sort in all.iter().filter(|n| n["Node Type"] == "Sort") {
            let mut below = Vec::new();
            nodes(sort, &mut below);
            // Sorting the claimed rows (the `picked` CTE, to pair them with the workers) is
            // as cheap as numbering them, and so is sorting the lanes of a one-queue claim
            // (no task beneath).
            assert!(
                below
                    .iter()
                    .any(|n| n["Node Type"] == "Limit" || n["CTE Name"] == "picked")
                    || !below.iter().any(|n| n["Relation Name"] == "tasks"),
                "{variant}: a Sort over the backlog (no Limit beneath it) in {text}"
            );
        }
        assert!(
            !all.iter()
                .any(|n| n["Node Type"] == "Seq Scan" && n["Relation Name"] == "tasks"),
            "{variant}: a sequential scan of tasks in {text}"
        );
        if variant == "one" {
            one_queue_claim_stays_below_jit(client).await;
        }
        // With one queue in the table both claim indexes hold the same rows in the same
        // order, and either is right; with several, one queue must use its own.
        let expected: &[&str] = match (variant, several_queues) {
            (_, false) => &["tasks_retainable_by_queue", "tasks_retainable"],
            ("one", true) => &["tasks_retainable_by_queue"],
            (_, true) => &["tasks_retainable"],
        };
        assert!(
            all.iter()
                .any(|n| expected.iter().any(|e| n["Index Name"] == *e)),
            "{variant}: none of {expected:?} used in {text}"
        );
    }
}

/// The one-queue claim with a known lane, planned generically on this backlog, is estimated
/// below PostgreSQL's default `jit_above_cost` (100,000): its lanes must not be guessed by
/// the thousand. With the lanes' gaps from a `generate_series` the estimate was 1,010 lanes
/// and, on a deep queue's statistics, past the threshold: where JIT is on, every claim then
/// compiled itself (~100 ms). Expects `claim_one` prepared.
async fn one_queue_claim_stays_below_jit(client: &tokio_postgres::Client) {
    let (all, text) = explain(
        client,
        "EXECUTE claim_one(NULL, 'big', ARRAY['w', 'w'], ARRAY['q1'], 2, \
           ARRAY[0]::smallint[], ARRAY[now()], ARRAY[0]::bigint[])",
    )
    .await;
    for scan in all.iter().filter(|n| n["Node Type"] == "Function Scan") {
        let rows = scan["Plan Rows"].as_f64().unwrap();
        assert!(
            rows <= 10.0,
            "one: a function guessed at {rows} rows in {text}"
        );
    }
    let cost = all[0]["Total Cost"].as_f64().unwrap();
    assert!(
        cost < 100_000.0,
        "one: estimated at {cost} with a known lane (JIT would compile it) in {text}"
    );
}

/// Pooled connections, which run the hot path, plan their statements once and never JIT
/// them (`connect.rs`): this server has JIT on, as PostgreSQL's default is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_connections_plan_generically_and_never_jit() {
    let db = fresh_database().await;
    let store = db.store(Arc::new(StorageClock)).await;
    let jit = support::pooled_setting(&store, "jit").await.unwrap();
    assert_eq!(jit, "off");
    let plans = support::pooled_setting(&store, "plan_cache_mode")
        .await
        .unwrap();
    assert_eq!(plans, "force_generic_plan");
}

/// The batched release finds its tasks by id, whatever the statistics say about the retained
/// ones. Planned generically with few tasks retained, it used to read every entry of
/// `tasks_retained` in the namespace and hash-join them with the ids: cheap by the
/// statistics, but that index holds every running task of the namespace and one dead entry
/// per task claimed since the last vacuum, so each release paid for all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_release_probes_each_task_by_id() {
    let db = fresh_database().await;
    let store = db.store(Arc::new(StorageClock)).await;
    let client = filled(&db, &store, &["q1"], 20_000).await;
    // A drain's moment: a few tasks retained among many waiting.
    client
        .batch_execute(
            "UPDATE tasks SET state = 'retained', worker = 'w', started_at = now(), \
               lease_expires_at = now() + interval '1 hour' \
             WHERE id IN (SELECT id FROM tasks ORDER BY id LIMIT 16); \
             ANALYZE tasks; SET plan_cache_mode = force_generic_plan",
        )
        .await
        .unwrap();
    client
        .batch_execute(&format!(
            "PREPARE release (timestamptz, text, bigint[], bool[], jsonb[], text[]) AS {}",
            support::release_statement()
        ))
        .await
        .unwrap();
    let (all, text) = explain(
        &client,
        "EXECUTE release(NULL, 'big', ARRAY[1, 2]::bigint[], ARRAY[false, false], \
           ARRAY[NULL, NULL]::jsonb[], ARRAY['w', 'w'])",
    )
    .await;
    let on_tasks: Vec<&Value> = all
        .iter()
        .filter(|n| n["Relation Name"] == "tasks" && n["Node Type"] != "ModifyTable")
        .collect();
    assert!(!on_tasks.is_empty(), "tasks not read in {text}");
    for n in on_tasks {
        assert_eq!(
            n["Index Name"], "tasks_pkey",
            "tasks must be read by id in {text}"
        );
    }
}

/// A queue after a burst: 400,000 tasks created and all but 10,000 deleted, then vacuumed.
/// Answers a plain connection to the database.
async fn after_a_burst(
    db: &pgqueue_tests::db::TestDatabase,
    store: &pgqueue_postgres::PgStore,
) -> tokio_postgres::Client {
    let client = filled(db, store, &["q1"], 400_000).await;
    for step in ["DELETE FROM tasks WHERE id > 10000", "VACUUM tasks"] {
        client.batch_execute(step).await.unwrap();
    }
    client
}

/// The size of an index in pages.
async fn pages(client: &tokio_postgres::Client, index: &str) -> i64 {
    client
        .query_one(
            "SELECT (pg_relation_size($1::text::regclass) / 8192)::bigint",
            &[&index],
        )
        .await
        .unwrap()
        .get(0)
}

/// The generic claim plan once a burst has come and gone: the claim indexes keep their peak
/// size (vacuum frees pages but never gives them back), so the planner prices a walk of
/// them at thousands of pages and the generic claim reads the whole table and sorts it
/// instead, on every claim. The maintenance pass rebuilds such indexes; afterwards the claim
/// walks its index again and the index is the size of what it holds (but not while a long
/// transaction is open, which a concurrent rebuild would wait for).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_rebuilds_the_indexes_a_burst_left_empty() {
    let db = fresh_database().await;
    let store = db.store(Arc::new(StorageClock)).await;
    let client = after_a_burst(&db, &store).await;
    let before = pages(&client, "tasks_retainable").await;
    assert!(
        before > 1024,
        "the burst grew the claim index: {before} pages"
    );

    // A transaction open for longer than a queue's own would keep a concurrent rebuild
    // waiting: none is started while it lasts.
    let holder = db.hold_horizon().await;
    tokio::time::sleep(std::time::Duration::from_millis(5_500)).await;
    let done = store.maintain(true).await.unwrap();
    assert_eq!(done.reindexed, 0, "{done:?}");
    assert_eq!(pages(&client, "tasks_retainable").await, before);
    holder.batch_execute("COMMIT").await.unwrap();

    // Nor while another build of the table's indexes runs (another process's pass): this
    // one would wait for it and then rebuild again what that one rebuilt.
    let (writer, rebuild) = super::rebuild::stalled_rebuild(&db, "tasks_finished").await;
    let done = tokio::time::timeout(std::time::Duration::from_secs(30), store.maintain(true))
        .await
        .expect("the pass waited for the other build")
        .unwrap();
    assert_eq!(done.reindexed, 0, "{done:?}");
    writer.batch_execute("COMMIT").await.unwrap();
    rebuild.await.unwrap().unwrap();

    let done = store.maintain(true).await.unwrap();
    assert!(done.reindexed >= 2, "both claim indexes rebuilt: {done:?}");
    let after = pages(&client, "tasks_retainable").await;
    assert!(
        after < 200,
        "rebuilt to the size of 10,000 entries: {before} → {after} pages"
    );
    // Nothing left to rebuild.
    assert_eq!(store.maintain(true).await.unwrap().reindexed, 0);

    client
        .batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    prepare_claim(&client, "one").await;
    let (all, text) = explain(
        &client,
        &format!(
            "EXECUTE claim_one(NULL, 'big', ARRAY['w', 'w'], ARRAY['q1'], 2{})",
            no_floors("one")
        ),
    )
    .await;
    assert!(
        !all.iter()
            .any(|n| n["Node Type"] == "Seq Scan" && n["Relation Name"] == "tasks"),
        "a sequential scan of tasks in {text}"
    );
}

/// A store connected as a least-privilege runtime role (docs/deploy.md: it may read and
/// write the tables, not own them), created by `client` (the owner) if it does not exist.
pub(super) async fn runtime_role_store(
    db: &pgqueue_tests::db::TestDatabase,
    client: &tokio_postgres::Client,
) -> pgqueue_postgres::PgStore {
    client
        .batch_execute(
            "DO $$ BEGIN CREATE ROLE pgqueue_test_runtime LOGIN; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; \
             GRANT USAGE ON SCHEMA public TO pgqueue_test_runtime; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public \
               TO pgqueue_test_runtime; \
             GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO pgqueue_test_runtime",
        )
        .await
        .unwrap();
    let mut url = url::Url::parse(db.url()).unwrap();
    url.set_username("pgqueue_test_runtime").unwrap();
    pgqueue_postgres::PgStore::connect(
        url.as_str(),
        pgqueue_postgres::PgOptions {
            pool_size: 2,
            migrate: false,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// A least-privilege runtime role (docs/deploy.md: it may read and write the tables, not own
/// them) may not rebuild an index: its maintenance leaves the bloated index alone and the
/// pass still succeeds, instead of failing every 10 s. It says so once, naming an index and
/// what to run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_owns_nothing_leaves_bloated_indexes_alone() {
    let (logs, _guard) = pgqueue_tests::logs::Logs::capture();
    let db = fresh_database().await;
    let owner = db.store(Arc::new(StorageClock)).await;
    let client = after_a_burst(&db, &owner).await;
    let runtime = runtime_role_store(&db, &client).await;
    let before = pages(&client, "tasks_retainable").await;
    for _ in 0..2 {
        let done = runtime.maintain(true).await.unwrap();
        assert_eq!(done.reindexed, 0, "{done:?}");
    }
    assert_eq!(pages(&client, "tasks_retainable").await, before);
    let said = logs.lines_with("only its owner may rebuild it");
    assert_eq!(said.len(), 1, "said once over two passes: {said:?}");
    assert!(
        said[0].contains("index=tasks_") && said[0].contains("REINDEX INDEX CONCURRENTLY"),
        "{said:?}"
    );
    // The owner still can.
    assert!(owner.maintain(true).await.unwrap().reindexed >= 2);
}
