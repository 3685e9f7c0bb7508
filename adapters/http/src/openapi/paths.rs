//! The operations of the OpenAPI document, one per entry of the router's table
//! ([`crate::router::ROUTES`]): a route cannot exist without its description, which a test
//! checks in both directions.

use super::parts::*;
use crate::router::Verb;
use pgqueue_app::{MAX_BATCH, MAX_REDRIVE, MAX_RETAIN};
use pgqueue_domain::ticker::MAX_SCHEDULE;
use serde_json::{Value, json};

/// `PUT /task`: retain from any of the given queues.
fn retain_any() -> Value {
    op(
        "retainTask",
        "Retain the oldest available task of the given queues (none: any queue); with limit, up to that many; with wait, wait for one",
        vec![
            param("worker"),
            param("retainLimit"),
            param("wait"),
            json!({"name": "queue", "in": "query", "style": "form", "explode": true,
                "schema": {"type": "array", "items": {"type": "string", "pattern": super::schemas::name_list_pattern()}},
                "description": "queues to take from (repeatable, or comma-separated); names that match no queue match nothing; empty values are ignored"}),
        ],
        None,
        vec![
            (
                200,
                "the retained task (with limit: a list, possibly empty)",
                retained(),
            ),
            (204, "no task is available (never with limit)", None),
        ],
        &[400],
    )
}

/// The health checks (`/healthz`, `/readyz`), which live outside the API prefix: each path
/// item overrides the document's server (the prefix) with the host's root.
pub(super) fn health() -> [(&'static str, Value); 2] {
    let status = |s: &str| {
        ok(json!({"type": "object", "required": ["status"],
                  "properties": {"status": {"type": "string", "const": s}}}))
    };
    let root = || json!([{"url": "/"}]);
    [
        (
            "/healthz",
            json!({"servers": root(), "get": op(
                "healthz",
                "Liveness: 200 while the process serves (open with --auth)",
                vec![],
                None,
                vec![(200, "the process serves", status("ok"))],
                &[],
            )}),
        ),
        (
            "/readyz",
            json!({"servers": root(), "get": op(
                "readyz",
                "Readiness: 200 when the storage answers and its schema is current, else 503 naming why (open with --auth)",
                vec![],
                None,
                vec![(200, "ready to serve", status("ready"))],
                &[503],
            )}),
        ),
    ]
}

/// A retain's 200: one task, or with `limit` a list.
fn retained() -> Option<Value> {
    ok(json!({"oneOf": [schema("Task"), list_of(schema("Task"))]}))
}

/// The operation of `verb pattern`, or `None` for a route the document does not know (a test
/// fails then).
pub(crate) fn operation(verb: Verb, pattern: &str) -> Option<Value> {
    let page = || vec![param("offset"), param("limit")];
    let queue = || ok(schema("Queue"));
    let task = || ok(schema("Task"));
    let ticker = || ok(schema("Ticker"));
    let sse = || json!({"text/event-stream": {"schema": {"oneOf": [schema("TickerEvent"), schema("PingEvent")]}}});
    Some(match (verb, pattern) {
        (Verb::Get, "/namespace") => op(
            "listNamespaces",
            "Namespaces that have a queue or a ticker, sorted",
            vec![],
            None,
            vec![(
                200,
                "the namespaces",
                ok(list_of(json!({"type": "string"}))),
            )],
            &[],
        ),
        (Verb::Get, "/queue") => op(
            "listQueues",
            "Queues ordered by name",
            page(),
            None,
            vec![(200, "a page of queues", ok(list_of(schema("Queue"))))],
            &[400],
        ),
        (Verb::Post, "/queue") => with_links(
            op(
                "createQueue",
                "Create a queue (defaults, then the given fields)",
                vec![],
                Some(body(schema("NewQueue"))),
                vec![(201, "the queue", queue())],
                &[400, 409],
            ),
            201,
            &[
                ("getQueue", "name", "$response.body#/queue"),
                ("updateQueue", "name", "$response.body#/queue"),
                ("deleteQueue", "name", "$response.body#/queue"),
                ("retainTaskFrom", "id", "$response.body#/queue"),
            ],
        ),
        (Verb::Get, "/queue/{name}") => op(
            "getQueue",
            "One queue",
            vec![path_name("queue")],
            None,
            vec![(200, "the queue", queue())],
            &[400, 404],
        ),
        (Verb::Patch, "/queue/{name}") => op(
            "updateQueue",
            "Change the given fields; `queue` renames (its tasks follow)",
            vec![path_name("queue")],
            Some(body(schema("QueuePatch"))),
            vec![(200, "the queue after the change", queue())],
            &[400, 404, 409],
        ),
        (Verb::Delete, "/queue/{name}") => op(
            "deleteQueue",
            "Delete a queue and its tasks",
            vec![path_name("queue")],
            None,
            vec![(200, "the deleted queue", queue())],
            &[400, 404],
        ),
        (Verb::Get, "/task") => op(
            "listTasks",
            "Tasks ordered by id, this namespace only",
            vec![
                param("queueFilter"),
                param("statusFilter"),
                param("offset"),
                param("limit"),
            ],
            None,
            vec![(200, "a page of tasks", ok(list_of(schema("Task"))))],
            &[400],
        ),
        (Verb::Post, "/task") => op(
            "createTasks",
            &format!(
                "Create one task, or a batch (a JSON array of at most {MAX_BATCH} tasks of one queue, all or nothing)"
            ),
            vec![],
            Some(body(
                json!({"oneOf": [schema("NewTask"), {"type": "array", "minItems": 1, "maxItems": MAX_BATCH, "items": schema("NewTask")}]}),
            )),
            vec![(
                201,
                "the task, or a list of the batch's tasks",
                ok(json!({"oneOf": [schema("Task"), list_of(schema("Task"))]})),
            )],
            &[400, 404],
        ),
        (Verb::Put, "/task") => with_links(
            retain_any(),
            200,
            &[
                ("releaseTask", "id", "$response.body#/id"),
                ("heartbeat", "id", "$response.body#/id"),
                ("getTask", "id", "$response.body#/id"),
            ],
        ),
        (Verb::Patch, "/task") => op(
            "releaseTasks",
            &format!(
                "Release up to {MAX_RETAIN} retained tasks, each on its own: answered in input order with the code PATCH /task/{{id}} would give"
            ),
            vec![],
            Some(body(
                json!({"type": "array", "minItems": 1, "maxItems": MAX_RETAIN, "items": schema("ReleaseItem")}),
            )),
            vec![(
                200,
                "one answer per item",
                ok(list_of(schema("ReleaseAnswer"))),
            )],
            &[400],
        ),
        (Verb::Get, "/task/{id}") => op(
            "getTask",
            "One task",
            vec![task_id()],
            None,
            vec![(200, "the task", task())],
            &[400, 404],
        ),
        (Verb::Put, "/task/{id}") => op(
            "retainTaskFrom",
            "Retain the oldest available task of one queue, which must exist",
            vec![
                json!({"name": "id", "in": "path", "required": true, "schema": schema("Name"),
                        "description": "for PUT, this segment is the queue's name"}),
                param("worker"),
                param("retainLimit"),
                param("wait"),
            ],
            None,
            vec![
                (
                    200,
                    "the retained task (with limit: a list, possibly empty)",
                    retained(),
                ),
                (204, "no task is available (never with limit)", None),
            ],
            &[400, 404],
        ),
        (Verb::Patch, "/task/{id}") => op(
            "releaseTask",
            "Release a retained task with success or failure (an empty body is success without a result)",
            vec![task_id()],
            Some(json!({"required": false, "content": json_content(schema("Release"))})),
            vec![(200, "the task after the release", task())],
            &[400, 404, 409],
        ),
        (Verb::Post, "/task/{id}/heartbeat") => op(
            "heartbeat",
            "Extend the lease of a task the worker holds",
            vec![task_id(), param("worker")],
            None,
            vec![(200, "the task with its new lease", task())],
            &[400, 404, 409],
        ),
        (Verb::Get, "/ticker") => op(
            "listTickers",
            "Tickers ordered by name; with Accept: text/event-stream, the stream of GET /ticker/next",
            page(),
            None,
            vec![(
                200,
                "a page of tickers, or the event stream",
                Some({
                    let mut c = json_content(list_of(schema("Ticker")));
                    c["text/event-stream"] = sse()["text/event-stream"].clone();
                    c
                }),
            )],
            &[400],
        ),
        (Verb::Post, "/ticker") => with_links(
            op(
                "createTicker",
                "Create a ticker; it fires at the next poll",
                vec![],
                Some(body(schema("NewTicker"))),
                vec![(201, "the ticker", ticker())],
                &[400, 404, 409],
            ),
            201,
            &[
                // Not updateTicker: an update naming a missing queue is a 404 that stateful
                // checks read as the created ticker having vanished.
                ("getTicker", "name", "$response.body#/ticker"),
                ("deleteTicker", "name", "$response.body#/ticker"),
            ],
        ),
        (Verb::Get, "/ticker/next") => op(
            "nextTicker",
            "Server-sent events: each matured ticker without a queue, once, to one subscriber; pings every 10 s",
            vec![],
            None,
            vec![(200, "the event stream", Some(sse()))],
            &[],
        ),
        (Verb::Get, "/ticker/{name}") => op(
            "getTicker",
            "One ticker",
            vec![path_name("ticker")],
            None,
            vec![(200, "the ticker", ticker())],
            &[400, 404],
        ),
        (Verb::Patch, "/ticker/{name}") => op(
            "updateTicker",
            "Change the given fields; `ticker` renames; the last firing is kept",
            vec![path_name("ticker")],
            Some(body(schema("TickerPatch"))),
            vec![(200, "the ticker after the change", ticker())],
            &[400, 404, 409],
        ),
        (Verb::Delete, "/ticker/{name}") => op(
            "deleteTicker",
            "Delete a ticker",
            vec![path_name("ticker")],
            None,
            vec![(200, "the deleted ticker", ticker())],
            &[400, 404],
        ),
        (Verb::Delete, "/task") => op(
            "purgeTasks",
            "Delete the tasks in the given statuses (required; never retained ones), of one queue or all",
            vec![param("purgeStatuses"), param("queueFilter")],
            None,
            vec![(200, "how many were deleted", ok(count()))],
            &[400],
        ),
        (Verb::Delete, "/task/{id}") => op(
            "deleteTask",
            "Delete a task no worker holds",
            vec![task_id()],
            None,
            vec![(200, "the deleted task", task())],
            &[400, 404, 409],
        ),
        (Verb::Post, "/task/{id}/cancel") => op(
            "cancelTask",
            "Cancel a task: a waiting one ends cancelled now; a retained one is asked to stop (its worker learns it at its next heartbeat)",
            vec![task_id()],
            None,
            vec![(200, "the task after the cancel", task())],
            &[400, 404, 409],
        ),
        (Verb::Post, "/task/{id}/retry") => op(
            "retryTask",
            "Retry a failed, expired or cancelled task: new again with the queue's attempts",
            vec![task_id()],
            None,
            vec![(200, "the task, new again", task())],
            &[400, 404, 409],
        ),
        (Verb::Post, "/queue/{name}/retry") => op(
            "retryTasks",
            "Redrive: retry the queue's tasks in the given statuses (default failed; only failed, expired, cancelled), oldest first",
            vec![
                path_name("queue"),
                param("retryStatuses"),
                json!({"name": "limit", "in": "query", "schema": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": u64::MAX}, {"type": "string", "maxLength": 0}]},
                        "description": format!("at most this many (default and cap {MAX_REDRIVE})")}),
            ],
            None,
            vec![(200, "how many were retried", ok(count()))],
            &[400, 404],
        ),
        (Verb::Post, "/queue/{name}/pause") => op(
            "pauseQueue",
            "Pause a queue: no task of it is retained until it is resumed (idempotent)",
            vec![path_name("queue")],
            None,
            vec![(200, "the paused queue", queue())],
            &[400, 404],
        ),
        (Verb::Post, "/queue/{name}/resume") => op(
            "resumeQueue",
            "Resume a queue; idle workers wake at once",
            vec![path_name("queue")],
            None,
            vec![(200, "the queue", queue())],
            &[400, 404],
        ),
        (Verb::Get, "/ticker/{name}/schedule") => op(
            "tickerSchedule",
            "A ticker's next maturities strictly after a time, assuming each fires on time",
            vec![
                path_name("ticker"),
                json!({"name": "n", "in": "query",
                       "schema": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_SCHEDULE},
                                            {"type": "string", "maxLength": 0}]},
                       "description": "how many (default 5)"}),
                json!({"name": "from", "in": "query",
                       "schema": {"anyOf": [{"type": "string", "format": "date-time"},
                                            {"type": "string", "maxLength": 0}]},
                       "description": "RFC 3339 (default: now)"}),
            ],
            None,
            vec![(
                200,
                "the maturities, earliest first",
                Some(json_content(json!({
                    "type": "object", "required": ["count"],
                    "properties": {
                        "count": {"type": "integer", "minimum": 1, "maximum": MAX_SCHEDULE},
                        "body": {"type": "array", "items": {"type": "string", "format": "date-time"}}
                    }
                }))),
            )],
            &[400, 404],
        ),
        (Verb::Post, "/ticker/{name}/pause") => op(
            "pauseTicker",
            "Pause a ticker: it does not fire until resumed",
            vec![path_name("ticker")],
            None,
            vec![(200, "the paused ticker", ticker())],
            &[400, 404],
        ),
        (Verb::Post, "/ticker/{name}/resume") => op(
            "resumeTicker",
            "Resume a ticker: it fires once if it matured meanwhile",
            vec![path_name("ticker")],
            None,
            vec![(200, "the ticker", ticker())],
            &[400, 404],
        ),
        (Verb::Get, "/events") => op(
            "events",
            "Server-sent events: the namespace's task and queue events, each with its id; reconnect with Last-Event-ID to get every later event once, in order, within the retention window; pings every 10 s",
            vec![
                json!({"name": "queue", "in": "query", "style": "form", "explode": true,
                    "schema": {"type": "array", "items": {"type": "string", "pattern": super::schemas::name_list_pattern()}},
                    "description": "only these queues (repeatable, or comma-separated)"}),
                json!({"name": "event", "in": "query", "style": "form", "explode": true,
                    "schema": {"type": "array", "items": {"type": "string", "enum": pgqueue_domain::EventKind::ALL.map(|k| k.as_str())}},
                    "description": "only these kinds (repeatable, or comma-separated)"}),
                json!({"name": "Last-Event-ID", "in": "header", "required": false,
                    "schema": {"type": "string", "pattern": "^[0-9]*$"},
                    "description": "the id of the last event the client saw"}),
            ],
            None,
            vec![(
                200,
                "the event stream",
                Some(
                    json!({"text/event-stream": {"schema": {"oneOf": [schema("TaskEventFrame"), schema("ResetEvent"), schema("PingEvent")]}}}),
                ),
            )],
            &[400],
        ),
        (Verb::Get, "/metrics") => op(
            "metrics",
            "Prometheus metrics",
            vec![],
            None,
            vec![(
                200,
                "the text exposition format",
                Some(json!({"text/plain": {"schema": {"type": "string"}}})),
            )],
            &[],
        ),
        (Verb::Get, "/openapi.json") => op(
            "openapi",
            "This document",
            vec![],
            None,
            vec![(200, "OpenAPI 3.1", ok(json!({"type": "object"})))],
            &[],
        ),
        _ => return None,
    })
}
