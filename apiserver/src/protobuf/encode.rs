//! Test-only protobuf writer for hand-built request bodies.

/// A message under construction; fields are appended in call order.
#[derive(Debug, Clone, Default)]
pub struct Msg(pub Vec<u8>);

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Msg {
    /// An empty message.
    pub fn new() -> Self {
        Msg::default()
    }

    fn tag(mut self, number: u32, wire_type: u8) -> Self {
        varint(&mut self.0, (u64::from(number) << 3) | u64::from(wire_type));
        self
    }

    /// A varint field (negative numbers as 10-byte two's complement, like Go).
    pub fn int(self, number: u32, v: i64) -> Self {
        let mut m = self.tag(number, 0);
        varint(&mut m.0, v as u64);
        m
    }

    /// A length-delimited field.
    pub fn bytes(self, number: u32, b: &[u8]) -> Self {
        let mut m = self.tag(number, 2);
        varint(&mut m.0, b.len() as u64);
        m.0.extend_from_slice(b);
        m
    }

    /// A string field.
    pub fn str(self, number: u32, s: &str) -> Self {
        self.bytes(number, s.as_bytes())
    }

    /// An embedded message field.
    pub fn msg(self, number: u32, m: Msg) -> Self {
        self.bytes(number, &m.0)
    }

    /// One `map<string,string>` entry.
    pub fn entry(self, number: u32, key: &str, value: &str) -> Self {
        self.msg(number, Msg::new().str(1, key).str(2, value))
    }

    /// The full request body: magic plus `runtime.Unknown` around `raw`.
    pub fn body(api_version: &str, kind: &str, raw: Msg) -> Vec<u8> {
        let type_meta = Msg::new().str(1, api_version).str(2, kind);
        let unknown = Msg::new().msg(1, type_meta).msg(2, raw);
        [&super::MAGIC[..], &unknown.0].concat()
    }
}

use super::schema::{Scalar, Schema, Shape, Ty};
use base64::Engine as _;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

impl Msg {
    /// Appends a fixed64 field.
    fn fixed64(self, number: u32, v: u64) -> Self {
        let mut m = self.tag(number, 1);
        m.0.extend_from_slice(&v.to_le_bytes());
        m
    }
}

/// Encodes Go-style JSON `object` as message `name`, driven by the schema (the decoder's inverse).
pub fn from_json(schema: &Schema, name: &str, object: &Map<String, Value>) -> Msg {
    let Some(message) = schema.message(name) else {
        return Msg::new();
    };
    let mut out = Msg::new();
    for field in &message.fields {
        if field.inline {
            if let Ty::Message(inner) = field.ty {
                out = out.msg(field.number, from_json(schema, inner, object));
            }
            continue;
        }
        match (field.shape, object.get(field.name)) {
            (_, None | Some(Value::Null)) => {}
            (Shape::Repeated, Some(Value::Array(items))) => {
                for item in items {
                    out = value(schema, out, field.number, field.ty, item);
                }
            }
            (Shape::Map, Some(Value::Object(map))) => {
                for (key, item) in map {
                    let entry = value(schema, Msg::new().str(1, key), 2, field.ty, item);
                    out = out.msg(field.number, entry);
                }
            }
            (_, Some(item)) => out = value(schema, out, field.number, field.ty, item),
        }
    }
    out
}

fn value(schema: &Schema, out: Msg, number: u32, ty: Ty, item: &Value) -> Msg {
    match (ty, item) {
        (Ty::Quantity, Value::String(s)) => out.msg(number, Msg::new().str(1, s)),
        (Ty::Scalar(Scalar::String), Value::String(s)) => out.str(number, s),
        (Ty::Scalar(Scalar::Bytes), Value::String(s)) => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(s)
                .unwrap_or_default();
            out.bytes(number, &raw)
        }
        (Ty::Scalar(Scalar::Bool), Value::Bool(b)) => out.int(number, i64::from(*b)),
        (Ty::Scalar(Scalar::Double), Value::Number(n)) => {
            out.fixed64(number, n.as_f64().unwrap_or_default().to_bits())
        }
        (Ty::Scalar(_), Value::Number(n)) => out.int(number, n.as_i64().unwrap_or_default()),
        (Ty::Time | Ty::MicroTime, Value::String(s)) => {
            let at = OffsetDateTime::parse(s, &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH);
            let ts = Msg::new()
                .int(1, at.unix_timestamp())
                .int(2, i64::from(at.nanosecond()));
            out.msg(number, ts)
        }
        (Ty::Time | Ty::MicroTime, _) => out.msg(number, Msg::new()),
        (Ty::IntOrString, Value::String(s)) => out.msg(number, Msg::new().int(1, 1).str(3, s)),
        (Ty::IntOrString, Value::Number(n)) => out.msg(
            number,
            Msg::new().int(1, 0).int(2, n.as_i64().unwrap_or_default()),
        ),
        (Ty::RawJson, raw) => out.msg(number, Msg::new().str(1, &raw.to_string())),
        (Ty::Message(name), Value::Object(map)) => out.msg(number, from_json(schema, name, map)),
        _ => out,
    }
}
