//! The pieces every operation of the document is built from: references, content,
//! parameters and the operation object itself.

use serde_json::{Value, json};

pub(super) fn schema(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

pub(super) fn param(name: &str) -> Value {
    json!({"$ref": format!("#/components/parameters/{name}")})
}

pub(super) fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

pub(super) fn list_of(item: Value) -> Value {
    json!({
        "type": "object", "required": ["count"],
        "properties": {
            "count": {"type": "integer", "description": "total before pagination"},
            "body": {"type": "array", "items": item, "description": "omitted when empty"}
        }
    })
}

pub(super) fn count() -> Value {
    json!({"type": "object", "required": ["count"], "properties": {"count": {"type": "integer", "minimum": 0}}})
}

pub(super) fn body(schema: Value) -> Value {
    json!({"required": true, "content": json_content(schema)})
}

pub(super) fn path_name(what: &str) -> Value {
    json!({"name": "name", "in": "path", "required": true, "schema": schema("Name"),
           "description": format!("the {what}'s name")})
}

pub(super) fn task_id() -> Value {
    json!({"name": "id", "in": "path", "required": true,
           "schema": {"type": "integer", "format": "int64", "minimum": i64::MIN, "maximum": i64::MAX},
           "description": "the task's id"})
}

/// The answers every operation may give besides its own: the limits of `limits.rs`, and
/// storage failures.
const COMMON_ERRORS: [u16; 3] = [414, 431, 503];

/// An operation: its id, summary, parameters, body and answers (`(status, description,
/// content)`; errors are the envelope).
pub(super) fn op(
    id: &str,
    summary: &str,
    params: Vec<Value>,
    body: Option<Value>,
    ok: Vec<(u16, &str, Option<Value>)>,
    errors: &[u16],
) -> Value {
    let mut responses = serde_json::Map::new();
    for (status, description, content) in ok {
        let mut r = json!({"description": description});
        if let Some(c) = content {
            r["content"] = c;
        }
        responses.insert(status.to_string(), r);
    }
    let has_body = body.is_some();
    let mut codes: Vec<u16> = errors.iter().chain(COMMON_ERRORS.iter()).copied().collect();
    if has_body {
        codes.extend([408, 413]);
    }
    codes.sort_unstable();
    codes.dedup();
    for code in codes {
        responses.insert(
            code.to_string(),
            json!({"$ref": "#/components/responses/Error"}),
        );
    }
    let mut o = json!({"operationId": id, "summary": summary, "responses": responses});
    if !params.is_empty() {
        o["parameters"] = Value::Array(params);
    }
    if let Some(b) = body {
        o["requestBody"] = b;
    }
    o
}

pub(super) fn ok(schema: Value) -> Option<Value> {
    Some(json_content(schema))
}

/// Links from an answer to the operations that take what it names, for stateful testing:
/// `(operation, parameter, expression)`.
pub(super) fn links(pairs: &[(&str, &str, &str)]) -> Value {
    let mut out = serde_json::Map::new();
    for (operation, parameter, expression) in pairs {
        out.insert(
            operation.to_string(),
            json!({"operationId": operation, "parameters": {*parameter: expression}}),
        );
    }
    Value::Object(out)
}

/// Adds `links` to the answer `status` of operation `o`.
pub(super) fn with_links(mut o: Value, status: u16, pairs: &[(&str, &str, &str)]) -> Value {
    o["responses"][status.to_string()]["links"] = links(pairs);
    o
}
