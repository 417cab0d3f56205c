//! Renders a schema-described protobuf message as the JSON Go's `encoding/json` would write for the same
//! Kubernetes struct: `omitempty` zero values dropped, structs always present, pointers present iff set,
//! sorted map keys, base64 bytes, RFC3339 times, int-or-string and Quantity strings.

use super::schema::{Field, Message, Scalar, Schema, Shape, Ty};
use super::wire::{read_varint, Fields, WireError, WireValue};
use base64::Engine as _;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Deeper nesting than any Kubernetes object has; bounds recursion on hostile input.
const MAX_DEPTH: usize = 64;

/// Why a message could not be decoded (always a client error).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// Broken wire format.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A known field arrived with a wire type its schema type cannot have.
    #[error("proto: wrong wireType = {wire_type} for field {field}")]
    WrongWireType {
        /// JSON name of the field.
        field: &'static str,
        /// The wire type seen.
        wire_type: u8,
    },
    /// A timestamp outside the years 0..=9999.
    #[error("proto: timestamp out of range for field {0}")]
    BadTime(&'static str),
    /// A double that JSON cannot represent (NaN, infinity).
    #[error("json: unsupported value for field {0}")]
    BadNumber(&'static str),
    /// A raw-JSON field (`RawExtension`, `FieldsV1`) that is not JSON.
    #[error("invalid JSON in field {0}")]
    BadJson(&'static str),
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("proto: message nesting too deep")]
    TooDeep,
    /// The schema refers to a message it does not define (a build defect).
    #[error("schema has no message {0}")]
    MissingMessage(&'static str),
}

/// What has been read for one field so far.
enum Slot<'a> {
    Empty,
    One(Value),
    /// A singular embedded message seen one or more times: protobuf merges repeats, which is the same
    /// as decoding the concatenated bytes.
    Parts(Vec<&'a [u8]>),
    Many(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

/// Decodes message `name` from `bytes` into a JSON object.
pub fn message(
    schema: &Schema,
    name: &'static str,
    bytes: &[u8],
    depth: usize,
) -> Result<Map<String, Value>, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    let msg = schema
        .message(name)
        .ok_or(DecodeError::MissingMessage(name))?;
    let mut slots: Vec<Slot> = msg.fields.iter().map(|_| Slot::Empty).collect();
    for item in Fields::new(bytes) {
        let (number, value) = item?;
        let Some((index, field)) = msg.field(number) else {
            continue; // unknown fields are skipped, as gogo-protobuf does
        };
        read_field(schema, field, value, &mut slots[index], depth)?;
    }
    emit(schema, msg, slots, depth)
}

fn read_field<'a>(
    schema: &Schema,
    field: &Field,
    value: WireValue<'a>,
    slot: &mut Slot<'a>,
    depth: usize,
) -> Result<(), DecodeError> {
    match field.shape {
        Shape::Single => match (field.ty, value, slot) {
            (Ty::Message(_), WireValue::Bytes(part), Slot::Parts(parts)) => parts.push(part),
            (Ty::Message(_), WireValue::Bytes(part), slot) => *slot = Slot::Parts(vec![part]),
            (_, _, slot) => *slot = Slot::One(single(schema, field, field.ty, value, depth)?),
        },
        Shape::Repeated => {
            let mut items = Vec::new();
            match (field.ty, value) {
                // Packed encoding of a repeated numeric field: one length-delimited run of values.
                (
                    Ty::Scalar(s @ (Scalar::Int32 | Scalar::Int64 | Scalar::Bool)),
                    WireValue::Bytes(mut run),
                ) => {
                    while !run.is_empty() {
                        items.push(varint_value(s, read_varint(&mut run)?));
                    }
                }
                (Ty::Scalar(Scalar::Double), WireValue::Bytes(run)) => {
                    for chunk in run.chunks(8) {
                        let raw: [u8; 8] =
                            chunk.try_into().map_err(|_| WireError::UnexpectedEof)?;
                        items.push(double(field, u64::from_le_bytes(raw))?);
                    }
                }
                (ty, value) => items.push(single(schema, field, ty, value, depth)?),
            }
            match slot {
                Slot::Many(existing) => existing.extend(items),
                _ => *slot = Slot::Many(items),
            }
        }
        Shape::Map => {
            let WireValue::Bytes(entry) = value else {
                return Err(wrong(field, value));
            };
            let (mut key, mut val) = (String::new(), None);
            for item in Fields::new(entry) {
                match item? {
                    (1, WireValue::Bytes(k)) => key = String::from_utf8_lossy(k).into_owned(),
                    (1, other) => return Err(wrong(field, other)),
                    (2, v) => val = Some(single(schema, field, field.ty, v, depth)?),
                    _ => {}
                }
            }
            let val = match val {
                Some(v) => v,
                None => zero(schema, field.ty, depth)?,
            };
            match slot {
                Slot::Map(map) => {
                    map.insert(key, val);
                }
                _ => *slot = Slot::Map(BTreeMap::from([(key, val)])),
            }
        }
    }
    Ok(())
}

fn wrong(field: &Field, value: WireValue<'_>) -> DecodeError {
    DecodeError::WrongWireType {
        field: field.name,
        wire_type: value.wire_type(),
    }
}

fn varint_value(scalar: Scalar, raw: u64) -> Value {
    match scalar {
        // Go truncates to the declared width, so do we.
        Scalar::Int32 => Value::from(raw as i32),
        Scalar::Bool => Value::Bool(raw != 0),
        _ => Value::from(raw as i64),
    }
}

fn double(field: &Field, bits: u64) -> Result<Value, DecodeError> {
    serde_json::Number::from_f64(f64::from_bits(bits))
        .map(Value::Number)
        .ok_or(DecodeError::BadNumber(field.name))
}

/// Decodes one wire value of type `ty`.
fn single(
    schema: &Schema,
    field: &Field,
    ty: Ty,
    value: WireValue<'_>,
    depth: usize,
) -> Result<Value, DecodeError> {
    match (ty, value) {
        (Ty::Scalar(s @ (Scalar::Int32 | Scalar::Int64 | Scalar::Bool)), WireValue::Varint(v)) => {
            Ok(varint_value(s, v))
        }
        (Ty::Scalar(Scalar::Double), WireValue::Fixed64(bits)) => double(field, bits),
        // Go keeps invalid UTF-8 in strings and encoding/json writes it as U+FFFD.
        (Ty::Scalar(Scalar::String), WireValue::Bytes(b)) => {
            Ok(Value::String(String::from_utf8_lossy(b).into_owned()))
        }
        (Ty::Scalar(Scalar::Bytes), WireValue::Bytes(b)) => Ok(Value::String(
            base64::engine::general_purpose::STANDARD.encode(b),
        )),
        (Ty::Time, WireValue::Bytes(b)) => timestamp(field, b, false),
        (Ty::MicroTime, WireValue::Bytes(b)) => timestamp(field, b, true),
        (Ty::Quantity, WireValue::Bytes(b)) => Ok(match string_field(field, b, 1)? {
            Some(s) if !s.is_empty() => Value::String(s),
            _ => Value::String("0".into()),
        }),
        (Ty::IntOrString, WireValue::Bytes(b)) => int_or_string(field, b),
        (Ty::RawJson, WireValue::Bytes(b)) => raw_json(field, b),
        (Ty::Message(name), WireValue::Bytes(b)) => {
            Ok(Value::Object(message(schema, name, b, depth + 1)?))
        }
        (_, other) => Err(wrong(field, other)),
    }
}

/// The JSON of a struct-typed field that was not sent (Go still encodes the zero struct).
fn zero(schema: &Schema, ty: Ty, depth: usize) -> Result<Value, DecodeError> {
    Ok(match ty {
        Ty::Scalar(Scalar::String) => Value::String(String::new()),
        Ty::Scalar(Scalar::Bytes) | Ty::Time | Ty::MicroTime | Ty::RawJson => Value::Null,
        Ty::Scalar(Scalar::Bool) => Value::Bool(false),
        Ty::Scalar(_) | Ty::IntOrString => Value::from(0),
        Ty::Quantity => Value::String("0".into()),
        Ty::Message(name) => Value::Object(message(schema, name, &[], depth + 1)?),
    })
}

fn is_zero_scalar(value: &Value) -> bool {
    match value {
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(b) => !b,
        Value::Null => true,
        _ => false,
    }
}

/// Writes the collected fields in Go declaration order with Go's omission rules.
fn emit(
    schema: &Schema,
    msg: &Message,
    slots: Vec<Slot<'_>>,
    depth: usize,
) -> Result<Map<String, Value>, DecodeError> {
    let mut out = Map::new();
    for (field, slot) in msg.fields.iter().zip(slots) {
        let value = match slot {
            Slot::Many(items) if !items.is_empty() => Value::Array(items),
            Slot::Map(map) if !map.is_empty() => Value::Object(map.into_iter().collect()),
            Slot::Parts(parts) => match field.ty {
                Ty::Message(name) => {
                    Value::Object(message(schema, name, &parts.concat(), depth + 1)?)
                }
                _ => continue,
            },
            Slot::One(v) if field.ptr => v,
            Slot::One(v) if matches!(field.ty, Ty::Scalar(_)) && is_zero_scalar(&v) => {
                match field.keep {
                    true => v,
                    false => continue,
                }
            }
            Slot::One(v) => v,
            // Unset: nil slices, maps and pointers are `null` without omitempty, else dropped.
            _ if field.shape != Shape::Single || field.ptr => match field.keep {
                true => Value::Null,
                false => continue,
            },
            _ if matches!(field.ty, Ty::Scalar(_)) && !field.keep => continue,
            _ => zero(schema, field.ty, depth)?,
        };
        match (field.inline, value) {
            (true, Value::Object(inner)) => out.extend(inner),
            (true, _) => {}
            (false, value) => {
                out.insert(field.name.to_string(), value);
            }
        }
    }
    Ok(out)
}

/// Reads the string field `number` of a small helper message (e.g. `Quantity.string`).
fn string_field(field: &Field, bytes: &[u8], number: u32) -> Result<Option<String>, DecodeError> {
    let mut found = None;
    for item in Fields::new(bytes) {
        match item? {
            (n, WireValue::Bytes(b)) if n == number => {
                found = Some(String::from_utf8_lossy(b).into_owned())
            }
            (n, other) if n == number => return Err(wrong(field, other)),
            _ => {}
        }
    }
    Ok(found)
}

/// `intstr.IntOrString{type=1, intVal=2, strVal=3}`: type 1 means the string form.
fn int_or_string(field: &Field, bytes: &[u8]) -> Result<Value, DecodeError> {
    let (mut kind, mut int, mut string) = (0u64, 0i32, String::new());
    for item in Fields::new(bytes) {
        match item? {
            (1, WireValue::Varint(v)) => kind = v,
            (2, WireValue::Varint(v)) => int = v as i32,
            (3, WireValue::Bytes(b)) => string = String::from_utf8_lossy(b).into_owned(),
            (1..=3, other) => return Err(wrong(field, other)),
            _ => {}
        }
    }
    Ok(match kind {
        1 => Value::String(string),
        _ => Value::from(int),
    })
}

/// `Timestamp{seconds=1, nanos=2}`; an empty message is Go's zero time, which encodes as `null`.
fn timestamp(field: &Field, bytes: &[u8], micro: bool) -> Result<Value, DecodeError> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let (mut seconds, mut nanos) = (0i64, 0i64);
    for item in Fields::new(bytes) {
        match item? {
            (1, WireValue::Varint(v)) => seconds = v as i64,
            (2, WireValue::Varint(v)) => nanos = i64::from(v as i32),
            (1 | 2, other) => return Err(wrong(field, other)),
            _ => {}
        }
    }
    let bad = || DecodeError::BadTime(field.name);
    // Go normalises nanos outside 0..1e9 into the seconds.
    let seconds = seconds
        .checked_add(nanos.div_euclid(1_000_000_000))
        .ok_or_else(bad)?;
    let nanos = nanos.rem_euclid(1_000_000_000);
    let at = OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| bad())?;
    let text = at.format(&Rfc3339).map_err(|_| bad())?;
    if !micro {
        return Ok(Value::String(text));
    }
    // RFC3339Micro: always six fractional digits before the `Z`.
    let base = text.strip_suffix('Z').ok_or_else(bad)?;
    Ok(Value::String(format!("{base}.{:06}Z", nanos / 1000)))
}

/// `RawExtension{raw=1}` / `FieldsV1{Raw=1}`: JSON bytes that Go writes verbatim.
fn raw_json(field: &Field, bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut raw: Option<&[u8]> = None;
    for item in Fields::new(bytes) {
        match item? {
            (1, WireValue::Bytes(b)) => raw = Some(b),
            (1, other) => return Err(wrong(field, other)),
            _ => {}
        }
    }
    match raw {
        None | Some([]) => Ok(Value::Null),
        Some(json) => serde_json::from_slice(json).map_err(|_| DecodeError::BadJson(field.name)),
    }
}
