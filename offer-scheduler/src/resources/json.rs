//! Mesos v1 JSON shape of `Resource`: `{"name","type","scalar"|"ranges"|"set","role","reservations"}`.

use super::parse::{scalar_value, set_of, valid_role, ParseError};
use super::{Ranges, Reservation, ReservationKind, Resource, Resources, Value, UNRESERVED};
use serde_json::{json, Map, Value as Json};

impl Reservation {
    fn to_json(&self) -> Json {
        let mut m = Map::new();
        let kind = match self.kind {
            ReservationKind::Static => "STATIC",
            ReservationKind::Dynamic => "DYNAMIC",
        };
        m.insert("type".into(), json!(kind));
        m.insert("role".into(), json!(self.role));
        if let Some(p) = &self.principal {
            m.insert("principal".into(), json!(p));
        }
        Json::Object(m)
    }

    fn from_json(j: &Json) -> Result<Reservation, ParseError> {
        let role = j
            .get("role")
            .and_then(Json::as_str)
            .ok_or_else(|| ParseError::Json("reservation without 'role'".into()))?;
        if !valid_role(role) || role == UNRESERVED {
            return Err(ParseError::Json(format!(
                "invalid reservation role '{role}'"
            )));
        }
        let kind = match j.get("type").and_then(Json::as_str) {
            Some("STATIC") => ReservationKind::Static,
            Some("DYNAMIC") => ReservationKind::Dynamic,
            other => {
                return Err(ParseError::Json(format!(
                    "invalid reservation type {other:?}"
                )))
            }
        };
        Ok(Reservation {
            kind,
            role: role.to_string(),
            principal: j
                .get("principal")
                .and_then(Json::as_str)
                .map(str::to_string),
        })
    }
}

impl Resource {
    /// Mesos v1 JSON; `role` is always present (legacy readers), `reservations` when reserved.
    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        match &self.value {
            Value::Scalar(s) => {
                m.insert("type".into(), json!("SCALAR"));
                m.insert("scalar".into(), json!({ "value": s.as_f64() }));
            }
            Value::Ranges(r) => {
                let range: Vec<Json> = r
                    .pairs()
                    .iter()
                    .map(|(b, e)| json!({"begin": b, "end": e}))
                    .collect();
                m.insert("type".into(), json!("RANGES"));
                m.insert("ranges".into(), json!({ "range": range }));
            }
            Value::Set(s) => {
                m.insert("type".into(), json!("SET"));
                m.insert("set".into(), json!({ "item": s }));
            }
        }
        m.insert("role".into(), json!(self.role()));
        if self.is_reserved() {
            let res: Vec<Json> = self.reservations.iter().map(Reservation::to_json).collect();
            m.insert("reservations".into(), Json::Array(res));
        }
        Json::Object(m)
    }

    /// Decodes both the refined (`reservations`) and the legacy (`role` + `reservation`) formats.
    pub fn from_json(j: &Json) -> Result<Resource, ParseError> {
        let name = j
            .get("name")
            .and_then(Json::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ParseError::Json("resource without 'name'".into()))?;
        let value = decode_value(name, j)?;
        let reservations = match j.get("reservations").and_then(Json::as_array) {
            Some(list) if !list.is_empty() => list
                .iter()
                .map(Reservation::from_json)
                .collect::<Result<_, _>>()?,
            _ => legacy_reservation(j)?,
        };
        Ok(Resource {
            name: name.to_string(),
            value,
            reservations,
        })
    }
}

fn legacy_reservation(j: &Json) -> Result<Vec<Reservation>, ParseError> {
    let role = j.get("role").and_then(Json::as_str).unwrap_or(UNRESERVED);
    if !valid_role(role) {
        return Err(ParseError::Json(format!("invalid role '{role}'")));
    }
    if role == UNRESERVED {
        return Ok(Vec::new());
    }
    // A legacy `reservation` object marks a dynamic reservation; its absence a static one.
    let (kind, principal) = match j.get("reservation") {
        Some(r) => (
            ReservationKind::Dynamic,
            r.get("principal")
                .and_then(Json::as_str)
                .map(str::to_string),
        ),
        None => (ReservationKind::Static, None),
    };
    Ok(vec![Reservation {
        kind,
        role: role.to_string(),
        principal,
    }])
}

fn decode_value(name: &str, j: &Json) -> Result<Value, ParseError> {
    let bad = |what: &str| ParseError::Json(format!("resource '{name}': {what}"));
    match j.get("type").and_then(Json::as_str) {
        Some("SCALAR") => {
            let v = j
                .pointer("/scalar/value")
                .and_then(Json::as_f64)
                .ok_or_else(|| bad("missing scalar.value"))?;
            scalar_value(name, v, &v.to_string())
        }
        Some("RANGES") => {
            let list = j
                .pointer("/ranges/range")
                .and_then(Json::as_array)
                .map_or(&[][..], Vec::as_slice);
            let mut pairs = Vec::new();
            for r in list {
                let b = r
                    .get("begin")
                    .and_then(Json::as_u64)
                    .ok_or_else(|| bad("range without begin"))?;
                let e = r
                    .get("end")
                    .and_then(Json::as_u64)
                    .ok_or_else(|| bad("range without end"))?;
                if b > e {
                    return Err(bad("range begin > end"));
                }
                pairs.push((b, e));
            }
            Ok(Value::Ranges(Ranges::new(pairs)))
        }
        Some("SET") => {
            let items = j
                .pointer("/set/item")
                .and_then(Json::as_array)
                .map_or(&[][..], Vec::as_slice);
            let items = items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad("set item not a string"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Value::Set(set_of(items)))
        }
        other => Err(bad(&format!("unknown type {other:?}"))),
    }
}

impl Resources {
    /// JSON array in Mesos v1 shape.
    pub fn to_json(&self) -> Json {
        Json::Array(self.iter().map(Resource::to_json).collect())
    }

    /// Decodes a JSON array of resources.
    pub fn from_json(j: &Json) -> Result<Resources, ParseError> {
        let list = j
            .as_array()
            .ok_or_else(|| ParseError::Json("expected an array".into()))?;
        let v = list
            .iter()
            .map(Resource::from_json)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Resources::from_vec(v))
    }

    /// Decodes a JSON text array of resources.
    pub fn from_json_str(s: &str) -> Result<Resources, ParseError> {
        let j: Json = serde_json::from_str(s).map_err(|e| ParseError::Json(e.to_string()))?;
        Resources::from_json(&j)
    }
}

/// The port numbers of every `ports` RANGES entry in a Mesos `Resource` JSON list, in order
/// (each range capped at 4096 ports, so a malformed range cannot blow up).
pub fn ports_of(resources: &Json) -> Vec<u16> {
    let mut out = Vec::new();
    for r in resources.as_array().into_iter().flatten() {
        if r.get("name").and_then(Json::as_str) != Some("ports") {
            continue;
        }
        let ranges = r.pointer("/ranges/range").and_then(Json::as_array);
        for range in ranges.into_iter().flatten() {
            let b = range.get("begin").and_then(Json::as_u64).unwrap_or(0);
            let e = range.get("end").and_then(Json::as_u64).unwrap_or(0);
            out.extend((b..=e.min(b + 4096)).filter_map(|p| u16::try_from(p).ok()));
        }
    }
    out
}
