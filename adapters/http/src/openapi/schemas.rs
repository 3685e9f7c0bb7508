//! The components of the OpenAPI document: every wire shape, with the constraints the domain
//! enforces, taken from the domain's own constants so that a changed rule changes the
//! document too.

use pgqueue_app::MAX_RETAIN;
use pgqueue_domain::Status;
use pgqueue_domain::duration::MIN_PERIOD;
use pgqueue_domain::limits::{DEFAULT_BURST, MAX_BURST, MAX_RATE, MAX_RUNNING};
use pgqueue_domain::name::MAX_NAME_LEN;
use pgqueue_domain::page::MAX_LIMIT;
use pgqueue_domain::queue::MAX_RETRIES;
use pgqueue_domain::task::{MAX_KEY_LEN, MAX_PRIORITY, MIN_PRIORITY};
use pgqueue_domain::worker::MAX_WORKER_LEN;
use serde_json::{Value, json};

/// The inside of [`WS`], to exclude whitespace from other classes.
macro_rules! ws_chars {
    () => {
        "\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
    };
}

/// The characters Rust's `str::trim` removes (Unicode `White_Space`), as a regex class:
/// names and worker names are trimmed before they are checked.
pub(crate) const WS: &str = concat!("[", ws_chars!(), "]");

/// The characters `char::is_control` refuses in worker names.
const CONTROL: &str = "\\u0000-\\u001f\\u007f-\\u009f";

/// A name as users may send it: surrounding whitespace and any ASCII case (both are
/// normalised away), then `^[a-z][a-z0-9_-]{0,63}$`.
pub(crate) fn name_pattern() -> String {
    format!(
        "^{WS}*[A-Za-z][A-Za-z0-9_-]{{0,{}}}{WS}*$",
        MAX_NAME_LEN - 1
    )
}

/// A case-insensitive regex for one word: `[nN][eE][wW]`.
fn any_case(word: &str) -> String {
    word.chars()
        .map(|c| format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase()))
        .collect()
}

/// A `?status=` value naming one of `statuses`, in any case, trimmed; `optional`: an empty
/// value (ignored) is allowed too.
fn status_pattern(statuses: &[Status], optional: bool) -> String {
    let names: Vec<String> = statuses.iter().map(|s| any_case(s.as_str())).collect();
    let q = if optional { "?" } else { "" };
    format!("^{WS}*({}){q}{WS}*$", names.join("|"))
}

/// The statuses a `?status=` filter accepts.
fn status_filter_pattern() -> String {
    status_pattern(&Status::ALL, true)
}

/// A unique key: 1 to 255 characters without control characters, not trimmed.
fn key_pattern() -> String {
    format!("^[^{CONTROL}]{{1,{MAX_KEY_LEN}}}$")
}

/// A worker name: trimmed, then 1 to 255 characters without control characters.
fn worker_pattern() -> String {
    format!(
        "^{WS}*[^{CONTROL}{ws}]([^{CONTROL}]{{0,{}}}[^{CONTROL}{ws}])?{WS}*$",
        MAX_WORKER_LEN - 2,
        ws = ws_chars!()
    )
}

fn duration(minimum: i64, what: &str) -> Value {
    json!({
        "type": "integer", "minimum": minimum, "maximum": i64::MAX,
        "description": format!("{what}, integer nanoseconds (strings such as \"90s\" are accepted too)")
    })
}

fn timestamp(what: &str) -> Value {
    json!({"type": "string", "format": "date-time", "description": what})
}

/// A body that creates: its name is required (and not null).
fn creating(mut schema: Value, name: &str) -> Value {
    schema["required"] = json!([name]);
    schema
}

/// A body that patches: its name field renames, and `null` there means "keep the name".
fn renaming(mut schema: Value, name: &str) -> Value {
    let current = schema["properties"][name].take();
    schema["properties"][name] = json!({"oneOf": [current, {"type": "null"}]});
    schema
}

/// A list of names: repeatable and comma-separated, empty items ignored.
pub(crate) fn name_list_pattern() -> String {
    let item = format!(
        "{WS}*([A-Za-z][A-Za-z0-9_-]{{0,{}}}{WS}*)?",
        MAX_NAME_LEN - 1
    );
    format!("^{item}(,{item})*$")
}

/// A body that patches: at least one field that changes something must be given. A `null`
/// changes nothing, except in the fields listed in `null_changes` (a ticker's `payload` may
/// become `null`, its `queue` is removed by `null`).
fn patching(mut schema: Value, fields: &[&str], null_changes: &[&str]) -> Value {
    let any: Vec<Value> = fields
        .iter()
        .map(|f| {
            if null_changes.contains(f) {
                json!({"required": [f]})
            } else {
                json!({"required": [f], "properties": {*f: {"not": {"type": "null"}}}})
            }
        })
        .collect();
    schema["anyOf"] = Value::Array(any);
    schema
}

fn queue_meta() -> Value {
    json!({
        "type": "object", "additionalProperties": false,
        "properties": {
            "queue": {"$ref": "#/components/schemas/Name"},
            "ttl": nullable(duration(MIN_PERIOD.as_nanos(), "how long a task may live")),
            "retries": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_RETRIES,
                        "description": "maximum number of attempts"},
            "retry_delay": nullable(duration(0, "base of the backoff: the k-th failure waits retry_delay × k²")),
            "lease": nullable(duration(MIN_PERIOD.as_nanos(), "how long one attempt may hold a task without a heartbeat")),
            "namespace": {"type": ["string", "null"], "description": "ignored: the namespace is the server's"},
            "paused_at": {"type": ["string", "null"], "format": "date-time", "description": "ignored: pause and resume have their own routes"},
            "max_running": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_RUNNING,
                            "description": "at most this many of its tasks retained at once, across every server and worker; null removes the limit"},
            "rate": {"oneOf": [rate(), {"type": "null"}],
                     "description": "at most per_second retains per second, bursts of at most burst (a token bucket on the database clock, shared by every process); null removes the limit"}
        }
    })
}

fn rate() -> Value {
    json!({
        "type": "object", "additionalProperties": false, "required": ["per_second"],
        "properties": {
            "per_second": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_RATE,
                           "description": "retains per second on average (fractions allowed: 0.5 is one every 2 s)"},
            "burst": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_BURST,
                      "description": format!("the most retains at once after a quiet spell (default {DEFAULT_BURST})")}
        }
    })
}

fn ticker_meta() -> Value {
    json!({
        "type": "object", "additionalProperties": false,
        "properties": {
            "ticker": {"$ref": "#/components/schemas/TickerName"},
            "payload": {"$ref": "#/components/schemas/Storable",
                        "description": "delivered with every maturity, or the payload of the tasks it creates"},
            "interval": nullable(duration(MIN_PERIOD.as_nanos(), "time between maturities; not with cron")),
            "period": nullable(duration(MIN_PERIOD.as_nanos(), "alias of interval")),
            "cron": {"type": ["string", "null"],
                     "description": "a cron expression: 5 fields (minute hour day-of-month month day-of-week), 6 (seconds first), or @yearly, @monthly, @weekly, @daily, @hourly; not with interval. An invalid expression, or one that never matches, is refused with 400 naming it",
                     "examples": ["30 2 * * *", "*/15 * * * *", "0 9 * * MON-FRI", "@hourly"]},
            "timezone": {"type": ["string", "null"],
                         "description": "the IANA time zone the cron expression is read in (default UTC); unknown zones are refused with 400",
                         "examples": ["UTC", "Europe/Berlin", "America/New_York"]},
            "queue": {"oneOf": [{"$ref": "#/components/schemas/Name"}, {"type": "null"},
                                {"type": "string", "pattern": format!("^{WS}*$")}],
                      "description": "when set, every maturity becomes a task there; null or blank removes it"},
            "priority": {"type": ["integer", "null"], "minimum": MIN_PRIORITY, "maximum": MAX_PRIORITY,
                         "description": "the priority of the tasks it creates; null resets it to 0"},
            "namespace": {"type": ["string", "null"], "description": "ignored"},
            "timestamp": {"type": ["string", "null"], "format": "date-time", "description": "ignored"},
            "paused_at": {"type": ["string", "null"], "format": "date-time", "description": "ignored: pause and resume have their own routes"},
            "next_at": {"type": ["string", "null"], "format": "date-time", "description": "ignored: it follows from the schedule"}
        }
    })
}

fn nullable(mut schema: Value) -> Value {
    if let Some(t) = schema["type"].as_str().map(str::to_string) {
        schema["type"] = json!([t, "null"]);
    }
    schema
}

/// Every schema of the document, by name.
pub(crate) fn schemas() -> Value {
    let statuses: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    json!({
        "Name": {"type": "string", "pattern": name_pattern(),
                 "description": "trimmed and lower-cased, then ^[a-z][a-z0-9_-]{0,63}$"},
        "TickerName": {"allOf": [{"$ref": "#/components/schemas/Name"}],
                       "not": {"type": "string", "pattern": format!("^{WS}*{}{WS}*$", any_case("next"))},
                       "description": "a name other than next (which would hide GET /ticker/next)"},
        "Worker": {"type": "string", "pattern": worker_pattern(),
                   "description": "trimmed, then 1 to 255 bytes without control characters"},
        "Status": {"type": "string", "enum": statuses},
        "Storable": {
            "description": "any JSON value PostgreSQL can keep: no \\u0000 in any string or key, numbers within numeric's range",
            "anyOf": [
                {"type": ["null", "boolean", "number"]},
                {"type": "string", "pattern": "^[^\\u0000]*$"},
                {"type": "array", "items": {"$ref": "#/components/schemas/Storable"}},
                {"type": "object", "propertyNames": {"pattern": "^[^\\u0000]*$"},
                 "additionalProperties": {"$ref": "#/components/schemas/Storable"}}
            ]
        },
        "Error": {
            "type": "object", "required": ["object", "code", "reason"],
            "properties": {
                "object": {"type": "string", "enum": ["error"]},
                "code": {"type": "integer", "description": "the HTTP status again"},
                "reason": {"type": "string"},
                "detail": {"description": "context, when there is any (e.g. the allowed methods of a 405)"}
            }
        },
        "Queue": {
            "type": "object", "required": ["queue", "ttl", "retries", "retry_delay", "lease", "namespace"],
            "properties": {
                "queue": {"type": "string"}, "ttl": {"type": "integer"}, "retries": {"type": "integer"},
                "retry_delay": {"type": "integer"}, "lease": {"type": "integer"},
                "namespace": {"type": "string"},
                "paused_at": timestamp("since when no task of it is retained (absent: not paused)"),
                "max_running": {"type": "integer", "description": "at most this many retained at once (absent: no limit)"},
                "rate": {"type": "object", "required": ["per_second", "burst"],
                         "properties": {"per_second": {"type": "number"}, "burst": {"type": "integer"}},
                         "description": "the rate limit (absent: none)"}
            }
        },
        "NewQueue": creating(queue_meta(), "queue"),
        "QueuePatch": patching(renaming(queue_meta(), "queue"), &["queue", "ttl", "retries", "retry_delay", "lease", "max_running", "rate"], &["max_running", "rate"]),
        "Task": {
            "type": "object",
            "required": ["id", "queue", "namespace", "payload", "created_at", "dies_at", "retries", "status", "priority"],
            "properties": {
                "id": {"type": "integer"}, "queue": {"type": "string"}, "namespace": {"type": "string"},
                "payload": {"description": "any JSON value, null included, exactly as sent"},
                "result": {"description": "the last attempt's result or error payload"},
                "worker": {"type": "string"},
                "created_at": timestamp("when it was created"),
                "delayed_at": timestamp("not to be retained before this"),
                "started_at": timestamp("when the current or last attempt started"),
                "finished_at": timestamp("when it ended for good"),
                "dies_at": timestamp("when it expires if it has not finished"),
                "lease_expires_at": timestamp("when the current attempt's lease runs out"),
                "retries": {"type": "integer", "description": "attempts left"},
                "status": {"$ref": "#/components/schemas/Status"},
                "priority": {"type": "integer", "minimum": MIN_PRIORITY, "maximum": MAX_PRIORITY,
                             "description": "higher runs first"},
                "unique_key": {"type": "string", "description": "while the task waits or runs, creates with this key answer it"},
                "cancel_requested_at": timestamp("when an operator asked the worker holding it to stop")
            }
        },
        "NewTask": {
            "type": "object", "additionalProperties": false, "required": ["queue", "payload"],
            "properties": {
                "queue": {"$ref": "#/components/schemas/Name"},
                "payload": {"$ref": "#/components/schemas/Storable", "description": "any JSON value, null included"},
                "delayed_at": {"type": ["string", "null"], "format": "date-time",
                               "description": "not to be retained before this; not in the past"},
                "priority": {"type": ["integer", "null"], "minimum": MIN_PRIORITY, "maximum": MAX_PRIORITY,
                             "description": "higher runs first; default 0"},
                "unique_key": {"type": ["string", "null"], "pattern": key_pattern(),
                               "description": "1 to 255 bytes without control characters: while a task with this key of the queue waits or runs, a create answers it (200) instead of creating another"},
                "namespace": {"type": ["string", "null"], "description": "ignored"}
            }
        },
        "Release": {
            "type": "object", "additionalProperties": false,
            "properties": {
                "result": {"$ref": "#/components/schemas/Storable",
                           "description": "the result (success) or the error payload (failure)"},
                "fail": {"type": ["boolean", "null"], "description": "the attempt failed"},
                "worker": {"oneOf": [{"$ref": "#/components/schemas/Worker"}, {"type": "null"}],
                           "description": "refuse unless this worker holds the task"}
            }
        },
        "ReleaseItem": {
            "type": "object", "additionalProperties": false, "required": ["id"],
            "description": "one release; values PATCH /task/{id} would refuse (a result that cannot be stored, a bad worker name) are refused for this item alone, with code 400 in its answer",
            "properties": {
                "id": {"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX, "description": "the task"},
                "result": {"description": "the result (success) or the error payload (failure)"},
                "fail": {"type": ["boolean", "null"], "description": "the attempt failed"},
                "worker": {"type": ["string", "null"], "description": "refuse unless this worker holds the task"}
            }
        },
        "ReleaseAnswer": {
            "type": "object", "required": ["id", "code"],
            "properties": {
                "id": {"type": "integer"},
                "code": {"type": "integer", "enum": [200, 400, 404, 409],
                         "description": "what PATCH /task/{id} would have answered for this item"},
                "task": {"$ref": "#/components/schemas/Task", "description": "the task after the release (code 200)"},
                "reason": {"type": "string", "description": "why it was refused (other codes)"}
            }
        },
        "Ticker": {
            "type": "object", "required": ["ticker", "payload", "namespace", "next_at"],
            "properties": {
                "ticker": {"type": "string"}, "payload": {},
                "interval": {"type": "integer", "description": "an interval ticker's interval (absent for a cron ticker)"},
                "cron": {"type": "string", "description": "a cron ticker's expression (absent for an interval ticker)"},
                "timezone": {"type": "string", "description": "the IANA zone a cron ticker's expression is read in"},
                "next_at": timestamp("its next maturity"),
                "namespace": {"type": "string"}, "timestamp": timestamp("when it last fired"),
                "queue": {"type": "string"},
                "priority": {"type": "integer", "description": "the priority of the tasks it creates"},
                "paused_at": timestamp("since when it does not fire (absent: not paused)")
            }
        },
        "NewTicker": creating(ticker_meta(), "ticker"),
        "TickerPatch": patching(renaming(ticker_meta(), "ticker"), &["ticker", "payload", "interval", "period", "cron", "timezone", "queue", "priority"], &["payload", "queue", "priority"]),
        "TickerEvent": {
            "type": "object", "required": ["event", "data"],
            "properties": {
                "event": {"type": "string", "enum": ["ticker"]},
                "data": {"type": "string", "contentMediaType": "application/json",
                         "contentSchema": {"$ref": "#/components/schemas/Ticker"}}
            }
        },
        "TaskEventFrame": {
            "type": "object", "required": ["event", "id", "data"],
            "description": "one event of GET /events: `event: task` (task events) or `event: queue` (paused, resumed)",
            "properties": {
                "event": {"type": "string", "enum": ["task", "queue"]},
                "id": {"type": "string", "pattern": "^[0-9]+$"},
                "data": {"type": "string", "contentMediaType": "application/json",
                         "contentSchema": {"$ref": "#/components/schemas/TaskEventData"}}
            }
        },
        "ResetEvent": {
            "type": "object", "required": ["event", "id"],
            "description": "the Last-Event-ID sent was no longer kept (or never given out); the stream goes on after `id`, the newest",
            "properties": {
                "event": {"type": "string", "enum": ["reset"]},
                "id": {"type": "string", "pattern": "^[0-9]+$"},
                "data": {"type": "string", "maxLength": 0}
            }
        },
        "TaskEventData": {
            "type": "object", "required": ["queue", "namespace", "event", "at"],
            "properties": {
                "id": {"type": "integer", "description": "the task (task events only)"},
                "queue": {"type": "string"},
                "namespace": {"type": "string"},
                "event": {"type": "string", "enum": pgqueue_domain::EventKind::ALL.map(|k| k.as_str())},
                "status": {"type": "string", "description": "the task's status after the change (task events only)"},
                "at": {"type": "string", "format": "date-time"}
            }
        },
        "PingEvent": {
            "type": "object", "required": ["event"],
            "properties": {"event": {"type": "string", "enum": ["ping"]}, "data": {"type": "string", "maxLength": 0}}
        }
    })
}

/// The parameters routes share.
pub(crate) fn parameters() -> Value {
    let retryable: Vec<Status> = Status::ALL
        .into_iter()
        .filter(|s| s.is_retryable())
        .collect();
    let purgeable: Vec<Status> = Status::ALL
        .into_iter()
        .filter(|s| *s != Status::Retained)
        .collect();
    let count = json!({"anyOf": [{"type": "integer", "minimum": 0, "maximum": u64::MAX},
                                 {"type": "string", "maxLength": 0}]});
    let mut limit = count.clone();
    limit["description"] = json!(format!(
        "rows to return (default and cap {MAX_LIMIT}: more is answered as {MAX_LIMIT}; empty means the default)"
    ));
    let mut offset = count;
    offset["description"] = json!("rows to skip (default 0; empty means the default)");
    json!({
        "offset": {"name": "offset", "in": "query", "schema": offset},
        "limit": {"name": "limit", "in": "query", "schema": limit},
        "retainLimit": {"name": "limit", "in": "query",
                        "schema": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_RETAIN},
                                             {"type": "string", "maxLength": 0}]},
                        "description": format!("retain up to this many tasks (1 to {MAX_RETAIN}); given, the answer is a list (possibly empty), never 204")},
        "wait": {"name": "wait", "in": "query",
                 "schema": {"type": "string", "pattern": "^([0-9]{1,10}|[0-9]{1,2}(ms|s))?$"},
                 "description": "when nothing is available, wait up to this long (at most 60s; e.g. 30s, 500ms, or integer nanoseconds) for a task, woken as soon as one arrives"},
        "worker": {"name": "worker", "in": "query", "required": true,
                   "schema": {"$ref": "#/components/schemas/Worker"}},
        "statusFilter": {"name": "status", "in": "query",
                         "schema": {"type": "string", "pattern": status_filter_pattern()},
                         "description": "only tasks in this status (any case); empty means no filter"},
        "retryStatuses": {"name": "status", "in": "query", "style": "form", "explode": true,
                     "schema": {"type": "array", "items": {"type": "string", "pattern": status_pattern(&retryable, true)}},
                     "description": "which ended tasks to retry: failed (default), expired, cancelled (repeatable; any case)"},
        "purgeStatuses": {"name": "status", "in": "query", "required": true, "style": "form", "explode": true,
                     "schema": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": status_pattern(&purgeable, false)}},
                     "description": "which tasks to delete, by status (required, repeatable; retained tasks are never purged)"},
        "queueFilter": {"name": "queue", "in": "query",
                        "schema": {"type": "string", "pattern": format!("^{WS}*([A-Za-z][A-Za-z0-9_-]{{0,{}}}{WS}*)?$", MAX_NAME_LEN - 1)},
                        "description": "only this queue's tasks; empty means no filter"}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whitespace class lists exactly what `trim` removes.
    #[test]
    fn the_whitespace_class_is_rusts_whitespace() {
        let ranges: &[(u32, u32)] = &[
            (0x9, 0xd),
            (0x20, 0x20),
            (0x85, 0x85),
            (0xa0, 0xa0),
            (0x1680, 0x1680),
            (0x2000, 0x200a),
            (0x2028, 0x2029),
            (0x202f, 0x202f),
            (0x205f, 0x205f),
            (0x3000, 0x3000),
        ];
        for c in (0..=0x10ffffu32).filter_map(char::from_u32) {
            let listed = ranges.iter().any(|(a, b)| (*a..=*b).contains(&(c as u32)));
            assert_eq!(c.is_whitespace(), listed, "{:x}", c as u32);
        }
        assert!(WS.contains("\\u2000-\\u200a") && WS.contains("\\u0085"));
    }

    #[test]
    fn patterns_follow_the_domain_constants() {
        assert!(name_pattern().contains("{0,63}"));
        assert!(worker_pattern().contains("{0,253}"));
        assert_eq!(any_case("next"), "[nN][eE][xX][tT]");
    }
}
