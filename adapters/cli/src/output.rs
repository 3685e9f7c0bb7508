//! How client commands print (`docs/cli.md`): JSON for scripts (the default when stdout is
//! not a terminal, or with `--output json`), aligned tables for people (the default on a
//! terminal, or `--output table`), with durations written `1h 30m` and times `3m ago`.
//! Tables come from comfy-table and durations from humantime: maintained crates for what
//! would otherwise be a page of fiddly formatting.

use chrono::{DateTime, Utc};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// What client commands print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The JSON of the HTTP API, indented.
    Json,
    /// Aligned tables with human durations and relative times.
    Table,
}

static FORMAT: OnceLock<Format> = OnceLock::new();

/// Chooses the format once: `--output` when given, else tables on a terminal.
pub fn choose(flag: Option<&str>) {
    let format = match flag {
        Some("table") => Format::Table,
        Some(_) => Format::Json,
        None if std::io::IsTerminal::is_terminal(&std::io::stdout()) => Format::Table,
        None => Format::Json,
    };
    let _ = FORMAT.set(format);
}

/// The chosen format (JSON unless [`choose`] said otherwise).
pub fn format() -> Format {
    *FORMAT.get().unwrap_or(&Format::Json)
}

/// The columns people look for first, in this order; the rest follow by name.
const FIRST: &[&str] = &["id", "queue", "ticker", "status", "namespace"];

/// Fields holding durations (integer nanoseconds on the wire).
const DURATIONS: &[&str] = &["ttl", "retry_delay", "lease", "interval"];

/// `value` as a table (lists of objects, objects) or, for anything else, as JSON.
pub fn table(value: &Value, now: DateTime<Utc>) -> String {
    match value {
        Value::Object(o) if o.contains_key("count") && o.len() <= 2 => {
            let count = o.get("count").and_then(Value::as_u64).unwrap_or(0);
            let items = o
                .get("body")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if items.is_empty() {
                return format!("none ({count} in all)");
            }
            format!("{}\n{} of {count}", rows(&items, now), items.len())
        }
        Value::Array(items) if !items.is_empty() => rows(items, now),
        Value::Object(o) => fields(o, now),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

fn new_table() -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    t
}

/// One row per item, one column per field (in first-seen order).
fn rows(items: &[Value], now: DateTime<Utc>) -> String {
    let mut columns: Vec<String> = Vec::new();
    for item in items {
        if let Value::Object(o) = item {
            for k in o.keys() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
    }
    columns.sort_by_key(|c| FIRST.iter().position(|f| f == c).unwrap_or(FIRST.len()));
    if columns.is_empty() {
        return items
            .iter()
            .map(|v| cell("", v, now))
            .collect::<Vec<_>>()
            .join("\n");
    }
    let mut t = new_table();
    t.set_header(columns.clone());
    for item in items {
        t.add_row(
            columns
                .iter()
                .map(|c| cell(c, item.get(c).unwrap_or(&Value::Null), now)),
        );
    }
    t.to_string()
}

/// One row per field.
fn fields(o: &Map<String, Value>, now: DateTime<Utc>) -> String {
    let mut t = new_table();
    for (k, v) in o {
        t.add_row(vec![k.clone(), cell(k, v, now)]);
    }
    t.to_string()
}

/// One value as a person reads it.
fn cell(key: &str, v: &Value, now: DateTime<Utc>) -> String {
    match v {
        Value::Null => String::new(),
        Value::Number(n) if DURATIONS.contains(&key) => n
            .as_u64()
            .map(|ns| humantime::format_duration(std::time::Duration::from_nanos(ns)).to_string())
            .unwrap_or_else(|| n.to_string()),
        Value::String(s) if key.ends_with("_at") || key == "timestamp" => {
            match DateTime::parse_from_rfc3339(s) {
                Ok(t) => relative(t.to_utc(), now),
                Err(_) => s.clone(),
            }
        }
        Value::String(s) => s.clone(),
        Value::Bool(_) | Value::Number(_) => v.to_string(),
        other => {
            let text = other.to_string();
            if text.chars().count() > 60 {
                format!("{}…", text.chars().take(59).collect::<String>())
            } else {
                text
            }
        }
    }
}

/// `3m ago`, `in 2h 5m`, to the second.
fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds();
    let span = humantime::format_duration(std::time::Duration::from_secs(secs.unsigned_abs()));
    match secs {
        0 => "now".into(),
        s if s < 0 => format!("{span} ago"),
        _ => format!("in {span}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn lists_become_tables_with_human_durations_and_relative_times() {
        let now = at("2026-12-02T10:00:00Z");
        let list = json!({"count": 3, "body": [
            {"queue": "emails", "ttl": 3_600_000_000_000u64, "lease": 30_000_000_000u64},
            {"queue": "reports", "ttl": 5_400_000_000_000u64, "created_at": "2026-12-02T09:57:00Z"}
        ]});
        let out = table(&list, now);
        assert!(
            out.contains("emails") && out.contains("1h") && out.contains("30s"),
            "{out}"
        );
        assert!(out.contains("1h 30m") && out.contains("3m ago"), "{out}");
        assert!(out.ends_with("2 of 3"), "{out}");
        assert_eq!(table(&json!({"count": 0}), now), "none (0 in all)");
    }

    #[test]
    fn objects_become_field_tables_and_other_values_stay_json() {
        let now = at("2026-12-02T10:00:00Z");
        let task = json!({"id": 7, "payload": {"to": "ada"}, "dies_at": "2026-12-02T11:00:00Z", "result": null});
        let out = table(&task, now);
        assert!(
            out.contains("in 1h") && out.contains(r#"{"to":"ada"}"#),
            "{out}"
        );
        assert_eq!(table(&json!(null), now), "null");
    }
}
