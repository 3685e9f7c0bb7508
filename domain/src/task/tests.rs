use super::*;
use crate::queue::QueueMeta;
use chrono::TimeDelta;
use proptest::prelude::*;
use serde_json::json;

fn t0() -> Timestamp {
    chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .to_utc()
}
fn queue() -> Queue {
    Queue::new(Namespace::default(), QueueName::parse("emails").unwrap())
}
fn worker(w: &str) -> WorkerName {
    WorkerName::parse(w).unwrap()
}
fn new_task(q: &Queue) -> Task {
    Task::create(
        1,
        q,
        TaskMeta::new(json!({"to":"a@b"})).validate().unwrap(),
        t0(),
    )
}
fn mins(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

#[test]
fn creation_sets_dies_at_and_keeps_the_queues_retries() {
    let q = queue();
    let t = new_task(&q);
    assert_eq!(t.status, Status::New);
    assert_eq!(t.dies_at, t0() + TimeDelta::hours(1));
    assert_eq!((t.retries, t.max_retries), (3, 3));
    let delayed = TaskMeta::new(json!(1)).delayed_until(t0() + mins(10));
    let t = Task::create(2, &q, delayed.validate().unwrap(), t0());
    assert_eq!(t.dies_at, t0() + mins(70));
    assert!(!t.is_retainable(t0()));
    assert!(t.is_retainable(t0() + mins(10)));
}

#[test]
fn a_payload_is_required_but_null_is_a_payload() {
    assert_eq!(
        TaskMeta::default().validate().unwrap_err(),
        Error::MissingPayload
    );
    let m: TaskMeta = serde_json::from_str(r#"{"payload":null}"#).unwrap();
    assert_eq!(m.validate().unwrap().payload(), &Value::Null);
    let m: TaskMeta = serde_json::from_str(r#"{}"#).unwrap();
    assert!(m.validate().is_err());
}

#[test]
fn a_delay_in_the_past_is_refused() {
    let meta = TaskMeta::new(json!(1)).delayed_until(t0() - TimeDelta::seconds(1));
    let new = meta.validate().unwrap();
    assert_eq!(new.check_delay(t0()).unwrap_err(), Error::DelayedInPast);
    // At the store a delay that passed in transit is due at once, on every adapter.
    let t = Task::create(1, &queue(), new, t0());
    assert!(t.is_retainable(t0()));
    assert_eq!(t.dies_at, t0() + TimeDelta::hours(1));
}

#[test]
fn payloads_and_delays_are_checked_at_the_edge() {
    let nul = TaskMeta::new(json!({"k": "a\u{0}b"}));
    assert_eq!(
        nul.validate().unwrap_err().to_string(),
        "payload contains \\u0000, which cannot be stored"
    );
    let far = chrono::DateTime::parse_from_rfc3339("9999-12-31T00:00:00Z")
        .unwrap()
        .to_utc();
    let mut q = queue();
    q.ttl = Duration::from_hours(48);
    let t = Task::create(
        1,
        &q,
        TaskMeta::new(json!(1))
            .delayed_until(far)
            .validate()
            .unwrap(),
        t0(),
    );
    assert_eq!(
        t.dies_at,
        time::MAX_TIMESTAMP,
        "computed times stop at 9999-12-31"
    );
}

#[test]
fn restore_refuses_impossible_rows() {
    let t = new_task(&queue());
    let mut r = TaskRecord {
        id: t.id,
        queue: t.queue.clone(),
        namespace: t.namespace.clone(),
        payload: t.payload.clone(),
        result: None,
        worker: None,
        created_at: t.created_at,
        delayed_at: None,
        started_at: None,
        finished_at: None,
        dies_at: t.dies_at,
        lease_expires_at: None,
        retries: 3,
        max_retries: 3,
        state: State::New,
        priority: 0,
        unique_key: None,
        cancel_requested_at: None,
    };
    assert_eq!(Task::restore(r.clone(), t0()).unwrap(), t);
    r.retries = 4;
    assert!(Task::restore(r.clone(), t0()).is_err());
    r.retries = 3;
    r.state = State::Retained;
    assert!(Task::restore(r.clone(), t0()).is_err());
    r.state = State::Released;
    assert!(Task::restore(r, t0()).is_err());
}

#[test]
fn the_view_has_the_wire_shape_of_the_task() {
    let q = queue();
    let mut t = new_task(&q);
    t.retain(&worker("w"), q.lease, t0()).unwrap();
    t.release(
        &Outcome::failure(json!({"e": 1})).unwrap(),
        q.retry_delay,
        t0(),
    )
    .unwrap();
    for task in [new_task(&q), t] {
        let wire = serde_json::to_value(&task).unwrap();
        let view = TaskView::from(&task);
        assert_eq!(serde_json::to_value(&view).unwrap(), wire);
        let back: TaskView = serde_json::from_value(wire).unwrap();
        assert_eq!(back, view);
    }
}

#[test]
fn a_queue_without_attempts_fails_tasks_at_once() {
    let mut q = queue();
    q.apply(
        &QueueMeta {
            retries: Some(0),
            ..Default::default()
        }
        .validate()
        .unwrap(),
    );
    let mut t = new_task(&q);
    assert_eq!(
        (t.status, t.retries, t.finished_at),
        (Status::Failed, 0, Some(t0()))
    );
    assert!(!t.is_retainable(t0()));
    assert_eq!(
        t.retain(&worker("w"), q.lease, t0()),
        Err(Error::NotAvailable)
    );
}

#[test]
fn retain_sets_worker_start_and_lease_and_clears_the_result() {
    let q = queue();
    let mut t = new_task(&q);
    t.result = Some(json!("old"));
    t.retain(&worker("host@1"), q.lease, t0()).unwrap();
    assert_eq!(t.status, Status::Retained);
    assert_eq!(t.worker.as_deref(), Some("host@1"));
    assert_eq!(t.started_at, Some(t0()));
    assert_eq!(t.lease_expires_at, Some(t0() + mins(5)));
    assert_eq!(t.result, None);
    assert_eq!(
        t.retain(&worker("other"), q.lease, t0()),
        Err(Error::NotAvailable)
    );
}

#[test]
fn success_releases_with_the_result() {
    let q = queue();
    let mut t = new_task(&q);
    t.retain(&worker("w"), q.lease, t0()).unwrap();
    t.release(
        &Outcome::success(Some(json!({"ok":true}))).unwrap(),
        q.retry_delay,
        t0() + mins(1),
    )
    .unwrap();
    assert_eq!(t.status, Status::Released);
    assert_eq!(t.finished_at, Some(t0() + mins(1)));
    assert_eq!(t.result, Some(json!({"ok":true})));
    assert_eq!(t.retries, 3);
}

/// The worked example of `docs/lifecycle.md`: 3 retries, 2 minutes → waits of 2 and 8 minutes, then `failed`.
#[test]
fn failures_back_off_quadratically_then_fail() {
    let q = queue();
    let mut t = new_task(&q);
    let mut now = t0();
    let mut waits = vec![];
    for attempt in 1..=3 {
        t.retain(&worker("w"), q.lease, now).unwrap();
        let err = json!({"attempt": attempt});
        t.release(&Outcome::failure(err.clone()).unwrap(), q.retry_delay, now)
            .unwrap();
        assert_eq!(t.result, Some(err), "the error payload is stored as sent");
        if let Some(d) = t.delayed_at.filter(|_| t.state == State::Retry) {
            waits.push(d - now);
            assert!(!t.is_retainable(d - TimeDelta::microseconds(1)));
            now = d;
        }
    }
    assert_eq!(waits, vec![mins(2), mins(8)]);
    assert_eq!(t.status, Status::Failed);
    assert_eq!(t.retries, 0);
    assert_eq!(t.finished_at, Some(now));
    assert_eq!(t.started_at, Some(now), "the last attempt's start is kept");
}

#[test]
fn retry_clears_start_and_lease() {
    let q = queue();
    let mut t = new_task(&q);
    t.retain(&worker("w"), q.lease, t0()).unwrap();
    t.release(
        &Outcome::failure(json!("boom")).unwrap(),
        q.retry_delay,
        t0(),
    )
    .unwrap();
    assert_eq!((t.status, t.retries), (Status::Retry, 2));
    assert_eq!((t.started_at, t.lease_expires_at), (None, None));
    assert_eq!(t.delayed_at, Some(t0() + mins(2)));
}

#[test]
fn only_retained_tasks_are_released() {
    let q = queue();
    let mut t = new_task(&q);
    assert_eq!(
        t.release(&Outcome::done(), q.retry_delay, t0()),
        Err(Error::NotRetained)
    );
    t.retain(&worker("w"), q.lease, t0()).unwrap();
    t.release(&Outcome::done(), q.retry_delay, t0()).unwrap();
    assert_eq!(
        t.release(&Outcome::done(), q.retry_delay, t0()),
        Err(Error::NotRetained)
    );
}

#[test]
fn a_task_that_expired_while_new_cannot_be_released() {
    let q = queue();
    let mut t = new_task(&q);
    let late = t.dies_at;
    assert_eq!(t.clone().observe(late).status, Status::Expired);
    assert_eq!(
        t.retain(&worker("w"), q.lease, late),
        Err(Error::NotAvailable)
    );
    assert_eq!(
        t.release(&Outcome::done(), q.retry_delay, late),
        Err(Error::NotRetained)
    );
}

#[test]
fn a_retained_task_past_dies_at_may_still_be_released() {
    let q = queue();
    let mut t = new_task(&q);
    t.retain(&worker("w"), q.lease, t0()).unwrap();
    let late = t.dies_at + mins(1);
    assert_eq!(t.clone().observe(late).status, Status::Expired);
    t.heartbeat(&worker("w"), q.lease, late).unwrap();
    assert_eq!(t.lease_expires_at, Some(late + mins(5)));
    t.release(&Outcome::done(), q.retry_delay, late).unwrap();
    assert_eq!(t.status, Status::Released);
}

#[test]
fn fencing_refuses_another_workers_release_and_heartbeat() {
    let q = queue();
    let mut t = new_task(&q);
    t.retain(&worker("a"), q.lease, t0()).unwrap();
    let before = t.clone();
    assert_eq!(
        t.release(&Outcome::done().by(worker("b")), q.retry_delay, t0()),
        Err(Error::NotRetainedBy("b".into()))
    );
    assert_eq!(
        t.heartbeat(&worker("b"), q.lease, t0()),
        Err(Error::NotRetainedBy("b".into()))
    );
    assert_eq!(t, before, "a refused transition changes nothing");
    t.release(&Outcome::done().by(worker("a")), q.retry_delay, t0())
        .unwrap();
    assert_eq!(t.status, Status::Released);
}

#[test]
fn heartbeat_extends_the_lease_and_rescue_waits_for_it() {
    let q = queue();
    let mut t = new_task(&q);
    t.retain(&worker("a"), q.lease, t0()).unwrap();
    t.heartbeat(&worker("a"), q.lease, t0() + mins(4)).unwrap();
    assert_eq!(t.lease_expires_at, Some(t0() + mins(9)));
    assert_eq!(
        t.rescue(q.retry_delay, t0() + mins(6)),
        Err(Error::LeaseNotExpired)
    );
    t.rescue(q.retry_delay, t0() + mins(9)).unwrap();
    assert_eq!(t.status, Status::Retry);
    assert_eq!(t.retries, 2);
    assert_eq!(t.result, Some(json!({"error":"lease expired"})));
    assert_eq!(t.delayed_at, Some(t0() + mins(11)));
    assert_eq!(
        t.heartbeat(&worker("a"), q.lease, t0() + mins(9)),
        Err(Error::NotRetained)
    );
}

#[test]
fn rescue_of_the_last_attempt_fails_the_task() {
    let mut q = queue();
    q.retries = 1;
    let mut t = new_task(&q);
    t.retain(&worker("a"), q.lease, t0()).unwrap();
    t.rescue(q.retry_delay, t0() + mins(5)).unwrap();
    assert_eq!(
        (t.status, t.finished_at),
        (Status::Failed, Some(t0() + mins(5)))
    );
}

#[test]
fn rescue_leaves_an_expired_task_expired() {
    let mut q = queue();
    q.ttl = Duration::from_mins(3);
    let mut t = new_task(&q);
    t.retain(&worker("a"), q.lease, t0()).unwrap();
    assert!(!t.is_rescuable(t0() + mins(5)));
    assert_eq!(
        t.rescue(q.retry_delay, t0() + mins(5)),
        Err(Error::LeaseNotExpired)
    );
    assert_eq!(t.clone().observe(t0() + mins(5)).status, Status::Expired);
}

#[test]
fn cleanup_waits_one_ttl_after_the_end() {
    let q = queue();
    let mut t = new_task(&q);
    assert!(
        !t.is_cleanable(q.ttl, t0() + TimeDelta::hours(1)),
        "expired at 1h, kept until 2h"
    );
    assert!(t.is_cleanable(q.ttl, t0() + TimeDelta::hours(2)));
    t.retain(&worker("a"), q.lease, t0()).unwrap();
    t.release(&Outcome::done(), q.retry_delay, t0() + mins(1))
        .unwrap();
    assert_eq!(t.ended_at(t0() + TimeDelta::hours(5)), Some(t0() + mins(1)));
    assert!(!t.is_cleanable(q.ttl, t0() + mins(60)));
    assert!(t.is_cleanable(q.ttl, t0() + mins(61)));
}

#[test]
fn wire_shape_omits_nulls_and_keeps_payload() {
    let t = Task::create(
        7,
        &queue(),
        TaskMeta::new(Value::Null).validate().unwrap(),
        t0(),
    );
    let v = serde_json::to_value(&t).unwrap();
    assert_eq!(v["payload"], Value::Null);
    assert!(v.as_object().unwrap().contains_key("payload"));
    assert!(!v.as_object().unwrap().contains_key("result"));
    assert_eq!(v["status"], "new");
    assert_eq!(v["retries"], 3);
    assert_eq!(v["created_at"], "2026-01-01T00:00:00Z");
    assert!(!v.as_object().unwrap().contains_key("max_retries"));
}

#[derive(Debug, Clone)]
enum Op {
    Retain,
    Succeed,
    Fail,
    Heartbeat,
    Rescue,
    Advance(i64),
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Retain),
        Just(Op::Succeed),
        Just(Op::Fail),
        Just(Op::Heartbeat),
        Just(Op::Rescue),
        (0i64..400).prop_map(Op::Advance),
    ]
}

proptest! {
    /// Once released or failed, no transition brings a task back.
    #[test]
    fn terminal_states_never_come_back(ops in proptest::collection::vec(any_op(), 1..60), retries in 0u32..5) {
        let mut q = queue();
        q.retries = retries;
        let mut t = Task::create(1, &q, TaskMeta::new(json!(1)).validate().unwrap(), t0());
        let mut now = t0();
        let mut ended: Option<Status> = None;
        for op in ops {
            let _ = match op {
                Op::Retain => t.retain(&worker("w"), q.lease, now),
                Op::Succeed => t.release(&Outcome::done(), q.retry_delay, now),
                Op::Fail => t.release(&Outcome::failure(json!("e")).unwrap(), q.retry_delay, now),
                Op::Heartbeat => t.heartbeat(&worker("w"), q.lease, now),
                Op::Rescue => t.rescue(q.retry_delay, now),
                Op::Advance(s) => { now += TimeDelta::seconds(s); Ok(()) }
            };
            let status = t.clone().observe(now).status;
            if let Some(end) = ended {
                prop_assert_eq!(status, end);
            }
            if matches!(status, Status::Released | Status::Failed) {
                ended = Some(status);
            }
            prop_assert!(t.retries <= t.max_retries);
        }
    }

    /// Each further failure waits longer than the one before (for a positive base).
    #[test]
    fn backoff_grows_with_k(base_ms in 1i64..1_000_000, k in 1u32..1_000) {
        let base = Duration::from_millis(base_ms);
        prop_assert!(backoff(base, k + 1) > backoff(base, k));
        prop_assert_eq!(backoff(base, k).as_nanos(), base.as_nanos() * i64::from(k) * i64::from(k));
    }
}

#[test]
fn priorities_order_claims_and_keys_are_held_while_waiting_or_retained() {
    let q = queue();
    let make = |id, meta: TaskMeta, at| Task::create(id, &q, meta.validate().unwrap(), at);
    let low = make(1, TaskMeta::new(json!(1)), t0());
    let high = make(2, TaskMeta::new(json!(2)).priority(5), t0() + mins(1));
    let older_high = make(3, TaskMeta::new(json!(3)).priority(5), t0());
    let mut tasks = [low.clone(), high.clone(), older_high.clone()];
    tasks.sort_by_key(Task::claim_order);
    assert_eq!(tasks.map(|t| t.id), [3, 2, 1]);
    assert!(TaskMeta::new(json!(1)).priority(101).validate().is_err());
    assert!(TaskMeta::new(json!(1)).unique_key("").validate().is_err());

    let mut keyed = make(4, TaskMeta::new(json!(4)).unique_key("k"), t0());
    assert!(keyed.holds_key(t0()));
    assert!(!keyed.gives_up_key(t0()));
    keyed.retain(&worker("w"), q.lease, t0()).unwrap();
    assert!(keyed.holds_key(t0()), "retained tasks hold their key");
    let expired = keyed.dies_at + mins(1);
    assert!(!keyed.holds_key(expired));
    assert!(
        keyed.gives_up_key(expired),
        "an expired task gives its key up"
    );
    keyed.give_up_key(expired);
    assert_eq!(keyed.unique_key(), None);
    let mut done = make(5, TaskMeta::new(json!(5)).unique_key("k"), t0());
    done.retain(&worker("w"), q.lease, t0()).unwrap();
    done.release(&Outcome::done(), q.retry_delay, t0()).unwrap();
    assert!(
        !done.holds_key(t0()) && !done.gives_up_key(t0()),
        "ended tasks keep their key for inspection but hold nothing"
    );
    let wire = serde_json::to_value(&high).unwrap();
    assert_eq!(wire["priority"], 5);
    assert!(wire.get("unique_key").is_none());
}

#[test]
fn cancel_ends_a_waiting_task_and_asks_a_retained_one_to_stop() {
    let q = queue();
    let mut waiting = new_task(&q);
    assert_eq!(waiting.cancel(t0()).unwrap(), Cancelled::Now);
    assert_eq!(
        (waiting.status, waiting.finished_at),
        (Status::Cancelled, Some(t0()))
    );
    assert_eq!(waiting.cancel(t0()), Err(Error::TaskEnded));
    assert!(waiting.is_cleanable(q.ttl, t0() + TimeDelta::hours(1)));

    let mut running = new_task(&q);
    running.retain(&worker("w"), q.lease, t0()).unwrap();
    assert_eq!(running.cancel(t0()).unwrap(), Cancelled::Requested);
    running.cancel(t0() + mins(1)).unwrap();
    assert_eq!(
        running.cancel_requested_at,
        Some(t0()),
        "the first request is kept"
    );
    assert_eq!(running.status, Status::Retained);
    assert_eq!(
        running.heartbeat(&worker("w"), q.lease, t0()),
        Err(Error::Cancelled)
    );
    let mut failing = running.clone();
    failing
        .release(
            &Outcome::failure(json!("stopped")).unwrap(),
            q.retry_delay,
            t0(),
        )
        .unwrap();
    assert_eq!(
        (failing.status, failing.cancel_requested_at),
        (Status::Cancelled, None)
    );
    assert_eq!(failing.finished_at, Some(t0()));
    let mut done = running.clone();
    done.release(&Outcome::done(), q.retry_delay, t0()).unwrap();
    assert_eq!(
        (done.status, done.cancel_requested_at),
        (Status::Released, None)
    );
    let mut lapsed = running;
    lapsed.rescue(q.retry_delay, t0() + mins(5)).unwrap();
    assert_eq!(
        lapsed.status,
        Status::Cancelled,
        "a lease running out ends it cancelled"
    );
    let mut expired = new_task(&q);
    assert_eq!(expired.cancel(expired.dies_at), Err(Error::TaskEnded));
}

#[test]
fn retry_resets_an_ended_task_that_did_not_do_its_work() {
    let mut q = queue();
    let mut t = new_task(&q);
    t.retain(&worker("w"), q.lease, t0()).unwrap();
    t.release(&Outcome::done(), q.retry_delay, t0()).unwrap();
    assert_eq!(t.clone().retry(&q, t0()), Err(Error::NotRetryable));
    let mut waiting = new_task(&q);
    assert_eq!(waiting.retry(&q, t0()), Err(Error::NotEnded));
    let mut failed = new_task(&q);
    for _ in 0..3 {
        failed.state = State::New;
        failed.delayed_at = None;
        failed.retain(&worker("w"), q.lease, t0()).unwrap();
        failed
            .release(&Outcome::failure(json!("x")).unwrap(), q.retry_delay, t0())
            .unwrap();
    }
    assert_eq!(failed.status, Status::Failed);
    q.retries = 5;
    let later = t0() + mins(30);
    failed.retry(&q, later).unwrap();
    assert_eq!(
        (
            failed.status,
            failed.retries,
            failed.max_retries,
            failed.result.clone(),
            failed.worker.clone()
        ),
        (Status::New, 5, 5, None, None)
    );
    assert_eq!(
        (failed.started_at, failed.finished_at, failed.delayed_at),
        (None, None, None)
    );
    assert_eq!(failed.dies_at, later + TimeDelta::hours(1));
    let mut expired = new_task(&q);
    expired.retry(&q, expired.dies_at).unwrap();
    assert_eq!(expired.status, Status::New);
}

#[test]
fn only_tasks_no_worker_holds_are_deleted() {
    let q = queue();
    let mut t = new_task(&q);
    assert!(t.check_deletable().is_ok());
    t.retain(&worker("w"), q.lease, t0()).unwrap();
    assert_eq!(t.check_deletable(), Err(Error::StillRetained));
    assert_eq!(
        Error::StillRetained.to_string(),
        "task is retained: cancel it first"
    );
}
