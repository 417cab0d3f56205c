//! Swagger 2.0 JSON → gnostic's `openapi.v2.Document` protobuf, the body old kubectl asks `/openapi/v2` for.
//!
//! Field numbers follow gnostic-models `openapiv2/OpenAPIv2.proto`. Maps are repeated `Named*` pairs in
//! document order; `x-*` keys become `NamedAny` vendor extensions whose `Any.yaml` holds the value as YAML
//! (kubectl yaml-decodes them, e.g. `x-kubernetes-group-version-kind`). proto3 defaults (empty strings,
//! `false`, 0) are omitted except inside a oneof, where presence is the point.

use serde_json::{Map, Value};

use super::wire::{any, Msg};

fn obj(v: &Value) -> Option<&Map<String, Value>> {
    v.as_object()
}

/// Encodes a Swagger 2.0 document as `openapi.v2.Document`.
pub(super) fn document(doc: &Value) -> Vec<u8> {
    let empty = Map::new();
    let d = obj(doc).unwrap_or(&empty);
    let mut m = Msg::default();
    m.str_of(1, d, "swagger");
    if let Some(info) = d.get("info").and_then(obj) {
        let mut i = Msg::default();
        i.str_of(1, info, "title");
        i.str_of(2, info, "version");
        i.str_of(3, info, "description");
        i.extensions(7, info);
        m.msg(2, i);
    }
    m.str_of(3, d, "host");
    m.str_of(4, d, "basePath");
    m.strings_of(5, d, "schemes");
    m.strings_of(6, d, "consumes");
    m.strings_of(7, d, "produces");
    if let Some(paths) = d.get("paths").and_then(obj) {
        let mut p = Msg::default();
        p.extensions(1, paths);
        for (name, item) in paths.iter().filter(|(k, _)| !k.starts_with("x-")) {
            p.msg(2, named(name, path_item(item)));
        }
        m.msg(8, p);
    }
    if let Some(defs) = d.get("definitions").and_then(obj) {
        let mut p = Msg::default();
        for (name, s) in defs {
            p.msg(1, named(name, schema(s)));
        }
        m.msg(9, p);
    }
    for req in d
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut r = Msg::default();
        for (name, scopes) in obj(req).into_iter().flatten() {
            let mut arr = Msg::default();
            for s in scopes
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                arr.bytes(1, s.as_bytes());
            }
            r.msg(1, named(name, arr));
        }
        m.msg(12, r);
    }
    if let Some(defs) = d.get("securityDefinitions").and_then(obj) {
        let mut p = Msg::default();
        for (name, s) in defs {
            p.msg(1, named(name, security_scheme(s)));
        }
        m.msg(13, p);
    }
    m.extensions(16, d);
    m.0
}

/// `Named*{name=1, value=2}`.
fn named(name: &str, value: Msg) -> Msg {
    let mut m = Msg::default();
    m.string(1, name);
    m.msg(2, value);
    m
}

/// `SecurityDefinitionsItem`: only the `apiKey` and `basic` kinds kube publishes.
fn security_scheme(v: &Value) -> Msg {
    let empty = Map::new();
    let s = obj(v).unwrap_or(&empty);
    let mut item = Msg::default();
    let mut m = Msg::default();
    if s.get("type").and_then(Value::as_str) == Some("basic") {
        m.str_of(1, s, "type");
        m.str_of(2, s, "description");
        m.extensions(3, s);
        item.msg(1, m);
    } else {
        m.str_of(1, s, "type");
        m.str_of(2, s, "name");
        m.str_of(3, s, "in");
        m.str_of(4, s, "description");
        m.extensions(5, s);
        item.msg(2, m);
    }
    item
}

fn path_item(v: &Value) -> Msg {
    let empty = Map::new();
    let p = obj(v).unwrap_or(&empty);
    let mut m = Msg::default();
    m.str_of(1, p, "$ref");
    for (field, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        if let Some(op) = p.get(method) {
            m.msg(field, operation(op));
        }
    }
    for param in p
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.msg(9, parameters_item(param));
    }
    m.extensions(10, p);
    m
}

fn operation(v: &Value) -> Msg {
    let empty = Map::new();
    let o = obj(v).unwrap_or(&empty);
    let mut m = Msg::default();
    m.strings_of(1, o, "tags");
    m.str_of(2, o, "summary");
    m.str_of(3, o, "description");
    m.str_of(5, o, "operationId");
    m.strings_of(6, o, "produces");
    m.strings_of(7, o, "consumes");
    for param in o
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.msg(8, parameters_item(param));
    }
    if let Some(rs) = o.get("responses").and_then(obj) {
        let mut r = Msg::default();
        for (code, resp) in rs.iter().filter(|(k, _)| !k.starts_with("x-")) {
            r.msg(1, named(code, response_value(resp)));
        }
        r.extensions(2, rs);
        m.msg(9, r);
    }
    m.strings_of(10, o, "schemes");
    m.bool_of(11, o, "deprecated");
    m.extensions(13, o);
    m
}

/// `ResponseValue{response=1 | json_reference=2}`.
fn response_value(v: &Value) -> Msg {
    let empty = Map::new();
    let r = obj(v).unwrap_or(&empty);
    let mut value = Msg::default();
    if let Some(reference) = r.get("$ref").and_then(Value::as_str) {
        let mut j = Msg::default();
        j.string(1, reference);
        value.msg(2, j);
        return value;
    }
    let mut m = Msg::default();
    m.str_of(1, r, "description");
    if let Some(s) = r.get("schema") {
        // SchemaItem{schema=1}
        let mut item = Msg::default();
        item.msg(1, schema(s));
        m.msg(2, item);
    }
    m.extensions(5, r);
    value.msg(1, m);
    value
}

/// `ParametersItem{parameter=1 | json_reference=2}`.
fn parameters_item(v: &Value) -> Msg {
    let empty = Map::new();
    let p = obj(v).unwrap_or(&empty);
    let mut item = Msg::default();
    if let Some(reference) = p.get("$ref").and_then(Value::as_str) {
        let mut j = Msg::default();
        j.string(1, reference);
        item.msg(2, j);
        return item;
    }
    // Parameter{body_parameter=1 | non_body_parameter=2}
    let mut param = Msg::default();
    match p.get("in").and_then(Value::as_str).unwrap_or("") {
        "body" => {
            let mut b = Msg::default();
            b.str_of(1, p, "description");
            b.str_of(2, p, "name");
            b.str_of(3, p, "in");
            b.bool_of(4, p, "required");
            if let Some(s) = p.get("schema") {
                b.msg(5, schema(s));
            }
            b.extensions(6, p);
            param.msg(1, b);
        }
        location => {
            // NonBodyParameter{header=1, form_data=2, query=3, path=4}; query and form data share a layout
            // with `allow_empty_value` at 5, header and path shift everything after `name` down by one.
            let (oneof, shift) = match location {
                "header" => (1, 1),
                "formData" => (2, 0),
                "path" => (4, 1),
                _ => (3, 0),
            };
            let mut s = Msg::default();
            s.bool_of(1, p, "required");
            s.str_of(2, p, "in");
            s.str_of(3, p, "description");
            s.str_of(4, p, "name");
            if shift == 0 {
                s.bool_of(5, p, "allowEmptyValue");
            }
            let f = |n: u32| n - shift;
            s.str_of(f(6), p, "type");
            s.str_of(f(7), p, "format");
            s.str_of(f(9), p, "collectionFormat");
            s.any_of(f(10), p, "default");
            s.double_of(f(11), p, "maximum");
            s.bool_of(f(12), p, "exclusiveMaximum");
            s.double_of(f(13), p, "minimum");
            s.bool_of(f(14), p, "exclusiveMinimum");
            s.int_of(f(15), p, "maxLength");
            s.int_of(f(16), p, "minLength");
            s.str_of(f(17), p, "pattern");
            s.int_of(f(18), p, "maxItems");
            s.int_of(f(19), p, "minItems");
            s.bool_of(f(20), p, "uniqueItems");
            for e in p
                .get("enum")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                s.msg(f(21), any(e));
            }
            s.double_of(f(22), p, "multipleOf");
            s.extensions(f(23), p);
            let mut non_body = Msg::default();
            non_body.msg(oneof, s);
            param.msg(2, non_body);
        }
    }
    item.msg(1, param);
    item
}

/// `Schema` (recursively).
fn schema(v: &Value) -> Msg {
    let empty = Map::new();
    let s = obj(v).unwrap_or(&empty);
    let mut m = Msg::default();
    m.str_of(1, s, "$ref");
    m.str_of(2, s, "format");
    m.str_of(3, s, "title");
    m.str_of(4, s, "description");
    m.any_of(5, s, "default");
    m.double_of(6, s, "multipleOf");
    m.double_of(7, s, "maximum");
    m.bool_of(8, s, "exclusiveMaximum");
    m.double_of(9, s, "minimum");
    m.bool_of(10, s, "exclusiveMinimum");
    m.int_of(11, s, "maxLength");
    m.int_of(12, s, "minLength");
    m.str_of(13, s, "pattern");
    m.int_of(14, s, "maxItems");
    m.int_of(15, s, "minItems");
    m.bool_of(16, s, "uniqueItems");
    m.int_of(17, s, "maxProperties");
    m.int_of(18, s, "minProperties");
    m.strings_of(19, s, "required");
    for e in s
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.msg(20, any(e));
    }
    match s.get("additionalProperties") {
        // AdditionalPropertiesItem{schema=1 | boolean=2}
        Some(Value::Bool(b)) => {
            let mut a = Msg::default();
            a.bool_always(2, *b);
            m.msg(21, a);
        }
        Some(sub @ Value::Object(_)) => {
            let mut a = Msg::default();
            a.msg(1, schema(sub));
            m.msg(21, a);
        }
        _ => {}
    }
    match s.get("type") {
        // TypeItem{repeated value=1}
        Some(Value::String(t)) => {
            let mut t_msg = Msg::default();
            t_msg.bytes(1, t.as_bytes());
            m.msg(22, t_msg);
        }
        Some(Value::Array(_)) => {
            let mut t_msg = Msg::default();
            t_msg.strings_of(1, s, "type");
            m.msg(22, t_msg);
        }
        _ => {}
    }
    match s.get("items") {
        // ItemsItem{repeated schema=1}
        Some(Value::Array(items)) => {
            let mut i = Msg::default();
            for item in items {
                i.msg(1, schema(item));
            }
            m.msg(23, i);
        }
        Some(item @ Value::Object(_)) => {
            let mut i = Msg::default();
            i.msg(1, schema(item));
            m.msg(23, i);
        }
        _ => {}
    }
    for sub in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.msg(24, schema(sub));
    }
    if let Some(props) = s.get("properties").and_then(obj) {
        // Properties{repeated NamedSchema additional_properties=1}
        let mut p = Msg::default();
        for (name, sub) in props {
            p.msg(1, named(name, schema(sub)));
        }
        m.msg(25, p);
    }
    m.str_of(26, s, "discriminator");
    m.bool_of(27, s, "readOnly");
    m.any_of(30, s, "example");
    m.extensions(31, s);
    m
}
