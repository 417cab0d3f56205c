//! Protobuf wire primitives for the gnostic encoder: varints, length-delimited fields, and readers that pull
//! typed fields out of a JSON object (omitting proto3 defaults).

use serde_json::{Map, Value};

/// A protobuf message under construction.
#[derive(Default)]
pub(super) struct Msg(pub(super) Vec<u8>);

impl Msg {
    pub(super) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    pub(super) fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }
    pub(super) fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    /// A string field; empty strings are the proto3 default and omitted.
    pub(super) fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }
    pub(super) fn bool_always(&mut self, field: u32, b: bool) {
        self.key(field, 0);
        self.varint(u64::from(b));
    }
    pub(super) fn bool(&mut self, field: u32, b: bool) {
        if b {
            self.bool_always(field, b);
        }
    }
    pub(super) fn int64(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, 0);
            // Two's complement, as protobuf encodes negative int64.
            self.varint(v as u64);
        }
    }
    pub(super) fn double(&mut self, field: u32, v: f64) {
        if v != 0.0 {
            self.key(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }
    pub(super) fn msg(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }

    // Helpers reading a JSON object's fields.
    pub(super) fn str_of(&mut self, field: u32, o: &Map<String, Value>, key: &str) {
        if let Some(s) = o.get(key).and_then(Value::as_str) {
            self.string(field, s);
        }
    }
    pub(super) fn bool_of(&mut self, field: u32, o: &Map<String, Value>, key: &str) {
        self.bool(field, o.get(key).and_then(Value::as_bool).unwrap_or(false));
    }
    pub(super) fn int_of(&mut self, field: u32, o: &Map<String, Value>, key: &str) {
        if let Some(v) = o.get(key).and_then(Value::as_i64) {
            self.int64(field, v);
        }
    }
    pub(super) fn double_of(&mut self, field: u32, o: &Map<String, Value>, key: &str) {
        if let Some(v) = o.get(key).and_then(Value::as_f64) {
            self.double(field, v);
        }
    }
    pub(super) fn strings_of(&mut self, field: u32, o: &Map<String, Value>, key: &str) {
        for s in o.get(key).and_then(Value::as_array).into_iter().flatten() {
            if let Some(s) = s.as_str() {
                self.bytes(field, s.as_bytes());
            }
        }
    }
    pub(super) fn any_of(&mut self, field: u32, o: &Map<String, Value>, key: &str) {
        if let Some(v) = o.get(key) {
            self.msg(field, any(v));
        }
    }
    /// Every `x-*` key as a repeated `NamedAny`.
    pub(super) fn extensions(&mut self, field: u32, o: &Map<String, Value>) {
        for (k, v) in o.iter().filter(|(k, _)| k.starts_with("x-")) {
            let mut named = Msg::default();
            named.string(1, k);
            named.msg(2, any(v));
            self.msg(field, named);
        }
    }
}

/// `Any{yaml}`: the value as YAML, as gnostic's compiler keeps unknown-typed values.
pub(super) fn any(v: &Value) -> Msg {
    let yaml = serde_yaml::to_string(v).unwrap_or_else(|_| v.to_string());
    let mut m = Msg::default();
    m.string(2, &yaml);
    m
}
