//! `/openapi/v2` for older clients (kubectl ≤1.28 reads it for `explain` and for apply's patch metadata).
//! The Swagger 2.0 definitions are derived from the v3 document, and served as the gnostic
//! `openapi.v2.Document` protobuf that client-go insists on (it never parses JSON there), or as JSON.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};

/// The media type of the protobuf form.
/// (kube-openapi answers with the `.v1.0` spelling: Go's mime parser rejects the `@` clients send.)
pub const PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// The v2 document as (protobuf bytes, JSON), built once.
pub fn document() -> &'static (Vec<u8>, Value) {
    static DOC: OnceLock<(Vec<u8>, Value)> = OnceLock::new();
    DOC.get_or_init(|| {
        let v3 = super::core_v1_doc();
        let empty = Map::new();
        let schemas = v3
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        (encode_document(schemas), json_document(schemas))
    })
}

fn rewrite_ref(r: &str) -> String {
    r.replace("#/components/schemas/", "#/definitions/")
}

/// A single-`$ref` `allOf` (v3's way to attach a description to a reference) as its reference.
fn single_ref(schema: &Map<String, Value>) -> Option<&str> {
    let all = schema.get("allOf")?.as_array()?;
    match all.as_slice() {
        [one] => one.get("$ref")?.as_str(),
        _ => None,
    }
}

fn to_v2_json(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out = Map::new();
            if let Some(r) = single_ref(map) {
                out.insert("$ref".into(), json!(rewrite_ref(r)));
            }
            for (k, v) in map {
                match k.as_str() {
                    "$ref" => {
                        out.insert(k.clone(), json!(v.as_str().map(rewrite_ref)));
                    }
                    "allOf" if single_ref(map).is_some() => {}
                    "nullable" | "oneOf" | "anyOf" => {}
                    "properties" => {
                        let props = v
                            .as_object()
                            .map(|p| p.iter().map(|(n, s)| (n.clone(), to_v2_json(s))).collect())
                            .unwrap_or_default();
                        out.insert(k.clone(), Value::Object(props));
                    }
                    "items" | "additionalProperties" | "allOf" => {
                        out.insert(k.clone(), to_v2_json(v));
                    }
                    _ => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(to_v2_json).collect()),
        other => other.clone(),
    }
}

fn json_document(schemas: &Map<String, Value>) -> Value {
    let definitions: Map<String, Value> = schemas
        .iter()
        .map(|(n, s)| (n.clone(), to_v2_json(s)))
        .collect();
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": {},
        "definitions": definitions,
    })
}

/// A minimal protobuf writer: varints and length-delimited fields.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn tag(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    fn bytes(&mut self, field: u32, data: &[u8]) {
        self.tag(field, 2);
        self.varint(data.len() as u64);
        self.0.extend_from_slice(data);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn boolean(&mut self, field: u32, b: bool) {
        if b {
            self.tag(field, 0);
            self.varint(1);
        }
    }

    fn message(&mut self, field: u32, build: impl FnOnce(&mut Writer)) {
        let mut inner = Writer::default();
        build(&mut inner);
        self.bytes(field, &inner.0);
    }
}

/// gnostic `Any{yaml = 2}` carrying a JSON value as YAML.
fn any(w: &mut Writer, field: u32, value: &Value) {
    let yaml = serde_yaml::to_string(value).unwrap_or_default();
    w.message(field, |a| a.string(2, &yaml));
}

/// `NamedSchema{name = 1, value = 2}` entries.
fn named_schemas(w: &mut Writer, field: u32, map: &Map<String, Value>) {
    for (name, schema) in map {
        w.message(field, |ns| {
            ns.string(1, name);
            ns.message(2, |s| encode_schema(s, schema));
        });
    }
}

/// gnostic `openapi.v2.Schema` (field numbers from OpenAPIv2.proto).
fn encode_schema(w: &mut Writer, schema: &Value) {
    let Some(map) = schema.as_object() else {
        return;
    };
    if let Some(r) = map
        .get("$ref")
        .and_then(Value::as_str)
        .or_else(|| single_ref(map))
    {
        w.string(1, &rewrite_ref(r));
    }
    let text = |k: &str| map.get(k).and_then(Value::as_str).unwrap_or_default();
    w.string(2, text("format"));
    w.string(3, text("title"));
    w.string(4, text("description"));
    if let Some(default) = map.get("default") {
        any(w, 5, default);
    }
    for required in map
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.string(19, required.as_str().unwrap_or_default());
    }
    for value in map
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        any(w, 20, value);
    }
    match map.get("additionalProperties") {
        Some(Value::Bool(b)) => w.message(21, |a| a.boolean(2, *b)),
        Some(s @ Value::Object(_)) => {
            w.message(21, |a| a.message(1, |inner| encode_schema(inner, s)))
        }
        _ => {}
    }
    if let Some(t) = map.get("type").and_then(Value::as_str) {
        w.message(22, |ti| ti.string(1, t));
    }
    match map.get("items") {
        Some(s @ Value::Object(_)) => {
            w.message(23, |i| i.message(1, |inner| encode_schema(inner, s)))
        }
        Some(Value::Array(all)) => w.message(23, |i| {
            for s in all {
                i.message(1, |inner| encode_schema(inner, s));
            }
        }),
        _ => {}
    }
    if single_ref(map).is_none() {
        for s in map
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            w.message(24, |inner| encode_schema(inner, s));
        }
    }
    if let Some(props) = map.get("properties").and_then(Value::as_object) {
        w.message(25, |p| named_schemas(p, 1, props));
    }
    if map.get("readOnly") == Some(&Value::Bool(true)) {
        w.boolean(27, true);
    }
    for (name, value) in map.iter().filter(|(k, _)| k.starts_with("x-")) {
        w.message(31, |na| {
            na.string(1, name);
            any(na, 2, value);
        });
    }
}

fn encode_document(schemas: &Map<String, Value>) -> Vec<u8> {
    let mut doc = Writer::default();
    doc.string(1, "2.0");
    doc.message(2, |info| {
        info.string(1, "Kubernetes");
        info.string(2, "v1.33.0");
    });
    doc.message(8, |_| {});
    doc.message(9, |defs| named_schemas(defs, 1, schemas));
    doc.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the length-delimited fields numbered `field` of a message.
    fn fields(mut buf: &[u8], field: u64) -> Vec<&[u8]> {
        fn varint(buf: &mut &[u8]) -> u64 {
            let mut v = 0u64;
            for shift in (0..64).step_by(7) {
                let b = buf[0];
                *buf = &buf[1..];
                v |= u64::from(b & 0x7f) << shift;
                if b < 0x80 {
                    break;
                }
            }
            v
        }
        let mut out = Vec::new();
        while !buf.is_empty() {
            let key = varint(&mut buf);
            match key & 7 {
                0 => {
                    varint(&mut buf);
                }
                2 => {
                    let len = varint(&mut buf) as usize;
                    if key >> 3 == field {
                        out.push(&buf[..len]);
                    }
                    buf = &buf[len..];
                }
                other => panic!("unexpected wire type {other}"),
            }
        }
        out
    }

    fn definition<'a>(doc: &'a [u8], name: &str) -> &'a [u8] {
        let defs = fields(doc, 9)[0];
        fields(defs, 1)
            .into_iter()
            .find(|ns| fields(ns, 1)[0] == name.as_bytes())
            .map(|ns| fields(ns, 2)[0])
            .unwrap_or_else(|| panic!("no definition {name}"))
    }

    #[test]
    fn pods_carry_their_kind_and_merge_keys_in_protobuf() {
        let (proto, json) = document();
        assert_eq!(fields(proto, 1)[0], b"2.0");
        let pod = definition(proto, "io.k8s.api.core.v1.Pod");
        let extensions: Vec<&[u8]> = fields(pod, 31);
        let gvk = extensions
            .iter()
            .find(|na| fields(na, 1)[0] == b"x-kubernetes-group-version-kind")
            .expect("gvk extension");
        let yaml = std::str::from_utf8(fields(fields(gvk, 2)[0], 2)[0]).unwrap();
        assert!(
            yaml.contains("kind: Pod") && yaml.contains("version: v1"),
            "{yaml}"
        );

        let spec = definition(proto, "io.k8s.api.core.v1.PodSpec");
        let props = fields(spec, 25)[0];
        let containers = fields(props, 1)
            .into_iter()
            .find(|ns| fields(ns, 1)[0] == b"containers")
            .map(|ns| fields(ns, 2)[0])
            .unwrap();
        let keys: Vec<&[u8]> = fields(containers, 31)
            .into_iter()
            .map(|na| fields(na, 1)[0])
            .collect();
        assert!(keys.contains(&&b"x-kubernetes-patch-merge-key"[..]));
        let item = fields(fields(containers, 23)[0], 1)[0];
        assert_eq!(
            fields(item, 1)[0],
            b"#/definitions/io.k8s.api.core.v1.Container"
        );

        let json_ref = &json["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]
            ["containers"]["items"]["$ref"];
        assert_eq!(json_ref, "#/definitions/io.k8s.api.core.v1.Container");
    }
}
