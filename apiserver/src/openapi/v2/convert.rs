//! OpenAPI v3 → Swagger 2.0: the same schemas and operations, in the shape kube's `/openapi/v2` has.
//!
//! Schemas move from `#/components/schemas/X` to `#/definitions/X`; a `$ref` wrapped in a single-element
//! `allOf` (how v3 attaches a description to a reference) becomes a bare `$ref` with the description beside
//! it, as kube's v2 document writes it — old kubectl's schema parser only follows bare `$ref`s. Request
//! bodies become `in: body` parameters, response `content` becomes `schema` plus `produces`.

use serde_json::{json, Map, Value};

const V3_PREFIX: &str = "#/components/schemas/";
const V2_PREFIX: &str = "#/definitions/";

/// Converts a v3 document (`openapi`, `info`, `paths`, `components`) into a Swagger 2.0 document.
pub(super) fn swagger(v3: &Value) -> Value {
    let definitions: Map<String, Value> = v3
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), schema(v))).collect())
        .unwrap_or_default();
    let paths: Map<String, Value> = v3
        .get("paths")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), path_item(v))).collect())
        .unwrap_or_default();
    let mut doc = json!({
        "swagger": "2.0",
        "info": v3.get("info").cloned().unwrap_or_else(|| json!({})),
        "paths": paths,
        "definitions": definitions,
    });
    if let Some(schemes) = v3
        .pointer("/components/securitySchemes")
        .and_then(Value::as_object)
    {
        doc["securityDefinitions"] = Value::Object(schemes.clone());
        let names: Vec<Value> = schemes.keys().map(|k| json!({ k.as_str(): [] })).collect();
        doc["security"] = Value::Array(names);
    }
    doc
}

/// `#/components/schemas/X` → `#/definitions/X`; anything else unchanged.
fn rewrite_ref(r: &Value) -> Value {
    match r.as_str().and_then(|s| s.strip_prefix(V3_PREFIX)) {
        Some(name) => Value::String(format!("{V2_PREFIX}{name}")),
        None => r.clone(),
    }
}

/// The `$ref` of an `allOf` holding exactly one reference.
fn single_all_of_ref(m: &Map<String, Value>) -> Option<&Value> {
    match m.get("allOf")?.as_array()?.as_slice() {
        [only] => only.get("$ref"),
        _ => None,
    }
}

/// Converts one schema (recursively).
pub(super) fn schema(v: &Value) -> Value {
    let Some(m) = v.as_object() else {
        return v.clone();
    };
    let mut out = Map::new();
    let folded = single_all_of_ref(m);
    if let Some(r) = folded {
        out.insert("$ref".into(), rewrite_ref(r));
    }
    for (k, val) in m {
        match k.as_str() {
            "$ref" => {
                out.insert(k.clone(), rewrite_ref(val));
            }
            // The reference carries the type; a default beside it is not Swagger.
            "allOf" | "default" if folded.is_some() => {}
            // OpenAPI 3 only.
            "nullable" | "oneOf" | "anyOf" | "not" | "writeOnly" | "deprecated" => {}
            "properties" => {
                let props: Map<String, Value> = val
                    .as_object()
                    .map(|p| p.iter().map(|(n, s)| (n.clone(), schema(s))).collect())
                    .unwrap_or_default();
                out.insert(k.clone(), Value::Object(props));
            }
            "items" | "additionalProperties" => {
                out.insert(k.clone(), schema(val));
            }
            "allOf" => {
                let all = val
                    .as_array()
                    .map(|a| a.iter().map(schema).collect())
                    .unwrap_or_default();
                out.insert(k.clone(), Value::Array(all));
            }
            _ => {
                out.insert(k.clone(), val.clone());
            }
        }
    }
    Value::Object(out)
}

/// A v3 parameter: its `schema` (type, uniqueItems, items) is flattened into the parameter.
fn parameter(p: &Value) -> Value {
    let Some(m) = p.as_object() else {
        return p.clone();
    };
    if let Some(r) = m.get("$ref") {
        let r = r
            .as_str()
            .map(|s| s.replace("#/components/parameters/", "#/parameters/"));
        return json!({ "$ref": r });
    }
    let mut out = Map::new();
    for (k, val) in m {
        match k.as_str() {
            "schema" => {
                if let Some(s) = val.as_object() {
                    for (sk, sv) in s {
                        out.insert(sk.clone(), schema(sv));
                    }
                }
            }
            "style" | "explode" | "deprecated" | "example" | "examples" | "content" => {}
            _ => {
                out.insert(k.clone(), val.clone());
            }
        }
    }
    Value::Object(out)
}

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch"];

fn path_item(item: &Value) -> Value {
    let Some(m) = item.as_object() else {
        return item.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        if METHODS.contains(&k.as_str()) {
            out.insert(k.clone(), operation(v));
        } else if k == "parameters" {
            out.insert(k.clone(), parameters(v));
        } else if k.starts_with("x-") || k == "$ref" {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

fn parameters(v: &Value) -> Value {
    Value::Array(
        v.as_array()
            .map(|a| a.iter().map(parameter).collect())
            .unwrap_or_default(),
    )
}

/// The media types of a v3 `content` map, and the schema of its first entry.
fn media(content: Option<&Value>) -> (Vec<Value>, Option<Value>) {
    let Some(c) = content.and_then(Value::as_object) else {
        return (vec![], None);
    };
    let types = c.keys().map(|k| Value::String(k.clone())).collect();
    let schema = c.values().find_map(|m| m.get("schema")).map(schema);
    (types, schema)
}

fn operation(op: &Value) -> Value {
    let Some(m) = op.as_object() else {
        return op.clone();
    };
    let mut out = Map::new();
    let mut params: Vec<Value> = m
        .get("parameters")
        .map(parameters)
        .and_then(|p| p.as_array().cloned())
        .unwrap_or_default();
    let mut consumes = vec![];
    if let Some(body) = m.get("requestBody") {
        let (types, body_schema) = media(body.get("content"));
        consumes = types;
        // kube puts the body parameter first.
        params.insert(
            0,
            json!({"name": "body", "in": "body", "required": body.get("required").cloned().unwrap_or(json!(false)),
                "schema": body_schema.unwrap_or_else(|| json!({}))}),
        );
    }
    let mut produces: Vec<Value> = vec![];
    let mut responses = Map::new();
    if let Some(rs) = m.get("responses").and_then(Value::as_object) {
        for (code, r) in rs {
            let (types, s) = media(r.get("content"));
            for t in types {
                if !produces.contains(&t) {
                    produces.push(t);
                }
            }
            let mut resp =
                json!({"description": r.get("description").cloned().unwrap_or(json!(""))});
            if let Some(s) = s {
                resp["schema"] = s;
            }
            responses.insert(code.clone(), resp);
        }
    }
    for (k, v) in m {
        match k.as_str() {
            "tags" | "summary" | "description" | "operationId" | "deprecated" => {
                out.insert(k.clone(), v.clone());
            }
            _ if k.starts_with("x-") => {
                out.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
    if !consumes.is_empty() {
        out.insert("consumes".into(), Value::Array(consumes));
    }
    if !produces.is_empty() {
        out.insert("produces".into(), Value::Array(produces));
    }
    out.insert("schemes".into(), json!(["https"]));
    if !params.is_empty() {
        out.insert("parameters".into(), Value::Array(params));
    }
    out.insert("responses".into(), Value::Object(responses));
    Value::Object(out)
}
