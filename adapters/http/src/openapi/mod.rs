//! The OpenAPI document, built from the router's table and the domain's constants rather
//! than written beside the code: a route, a field or a constraint cannot be added without
//! the document saying so (tests check both directions), and a schema-conformance fuzzer
//! (schemathesis, in CI) checks that the server answers as the document says.

mod parts;
mod paths;
mod schemas;

use crate::router::ROUTES;
use serde_json::{Value, json};

/// The document, with its server URL set to `prefix`.
pub(crate) fn document(prefix: &str) -> Value {
    let mut paths = serde_json::Map::new();
    for (verb, pattern) in ROUTES {
        let Some(op) = paths::operation(*verb, pattern) else {
            continue;
        };
        let entry = paths
            .entry(pattern.to_string())
            .or_insert_with(|| json!({}));
        entry[verb.as_str().to_ascii_lowercase()] = op;
    }
    for (path, item) in paths::health() {
        paths.insert(path.to_string(), item);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "pgqueue",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A PostgreSQL-backed task queue. Durations are integer nanoseconds; lists are {count, body}; every error is {object: \"error\", code, reason, detail?}."
        },
        "servers": [{"url": if prefix.is_empty() { "/" } else { prefix }}],
        "paths": paths,
        "components": {
            "schemas": schemas::schemas(),
            "parameters": schemas::parameters(),
            "responses": {"Error": {"description": "the error envelope",
                                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::Verb;

    #[test]
    fn every_route_is_described_and_nothing_else() {
        let doc = document("/api");
        let mut described = 0;
        for (verb, pattern) in ROUTES {
            assert!(
                paths::operation(*verb, pattern).is_some(),
                "{verb:?} {pattern} has no description"
            );
            assert!(doc["paths"][pattern][verb.as_str().to_ascii_lowercase()].is_object());
            described += 1;
        }
        let in_doc: usize = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(path, _)| !["/healthz", "/readyz"].contains(&path.as_str()))
            .map(|(_, p)| p.as_object().unwrap().len())
            .sum();
        assert_eq!(in_doc, described);
        assert!(paths::operation(Verb::Other, "/task").is_none());
    }

    /// The health checks are described at the host's root, outside the prefix.
    #[test]
    fn health_checks_are_described_outside_the_prefix() {
        let doc = document("/api");
        assert_eq!(doc["servers"][0]["url"], "/api");
        for (path, status) in [("/healthz", "ok"), ("/readyz", "ready")] {
            let item = &doc["paths"][path];
            assert_eq!(item["servers"], json!([{"url": "/"}]), "{path}");
            let ok = &item["get"]["responses"]["200"]["content"]["application/json"]["schema"];
            assert_eq!(ok["properties"]["status"]["const"], status, "{path}");
        }
        assert!(doc["paths"]["/readyz"]["get"]["responses"]["503"].is_object());
    }

    /// Every `$ref` of the document points at a component that exists.
    #[test]
    fn every_reference_resolves() {
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|x| refs(x, out));
                }
                Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
                _ => {}
            }
        }
        let doc = document("/api");
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let path: Vec<&str> = r.trim_start_matches("#/").split('/').collect();
            let target = path.iter().fold(&doc, |v, k| &v[*k]);
            assert!(!target.is_null(), "{r} does not resolve");
        }
    }

    /// Every field the server writes is described, and every required field is always
    /// written: the schemas follow the wire types.
    #[test]
    fn schemas_describe_the_wire_shapes() {
        use pgqueue_domain::{Namespace, Queue, QueueName, Task, TaskMeta, Ticker, TickerName};
        let mut q = Queue::new(Namespace::default(), QueueName::parse("q").unwrap());
        q.max_running = Some(3);
        q.rate = Some(pgqueue_domain::Rate::new(2.5, 4).unwrap());
        let t = Task::create(
            1,
            &q,
            TaskMeta::new(json!(1)).validate().unwrap(),
            chrono::Utc::now(),
        );
        let mut k = Ticker::new(
            Namespace::default(),
            TickerName::parse("k").unwrap(),
            chrono::Utc::now(),
        );
        k.queue = Some(q.name.clone());
        k.timestamp = Some(chrono::Utc::now());
        let cron_patch = pgqueue_domain::TickerMeta {
            cron: Some("@daily".into()),
            timezone: Some("Europe/Berlin".into()),
            ..Default::default()
        }
        .validate()
        .unwrap();
        let c = Ticker::from_patch(
            Namespace::default(),
            TickerName::parse("c").unwrap(),
            &cron_patch,
            chrono::Utc::now(),
        )
        .unwrap();
        let schemas = schemas::schemas();
        for (name, value, optional) in [
            (
                "Queue",
                serde_json::to_value(&q).unwrap(),
                vec!["paused_at"],
            ),
            (
                "Task",
                serde_json::to_value(&t).unwrap(),
                vec![
                    "result",
                    "worker",
                    "delayed_at",
                    "started_at",
                    "finished_at",
                    "lease_expires_at",
                    "unique_key",
                    "cancel_requested_at",
                ],
            ),
            (
                "Ticker",
                serde_json::to_value(&k).unwrap(),
                vec!["priority", "paused_at", "cron", "timezone"],
            ),
            (
                "Ticker",
                serde_json::to_value(&c).unwrap(),
                vec!["priority", "paused_at", "interval", "timestamp", "queue"],
            ),
        ] {
            let props = schemas[name]["properties"].as_object().unwrap();
            let written: Vec<&String> = value.as_object().unwrap().keys().collect();
            for key in &written {
                assert!(props.contains_key(*key), "{name}.{key} is not described");
            }
            for key in props.keys() {
                assert!(
                    written.contains(&key) || optional.contains(&key.as_str()),
                    "{name}.{key} is described but not written"
                );
            }
            for req in schemas[name]["required"].as_array().unwrap() {
                assert!(
                    written.iter().any(|k| *k == req),
                    "{name} requires {req} but it was not written"
                );
            }
        }
    }
}
