//! Server-side Tables (`meta.k8s.io/v1 Table`) with the columns kubectl shows against a real cluster. Pure.
//!
//! `columns` holds kube-apiserver's column definitions, `rows` the per-resource cell printers, and this
//! file the Table envelope plus the shared formatting helpers (`HumanDuration`, label sets).

mod columns;
mod pod;
mod rows;

use crate::resources::ResourceInfo;
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// How much of each object a Table row carries (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object.
    None,
    /// `PartialObjectMetadata` (the default).
    #[default]
    Metadata,
    /// The full object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query value (`None`, `Metadata`, `Object`); `None` for anything else.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "None" => Some(IncludeObject::None),
            "Metadata" => Some(IncludeObject::Metadata),
            "Object" => Some(IncludeObject::Object),
            _ => None,
        }
    }
}

/// Builds a Table for `objects` (`now` is for AGE). The caller sets `metadata.resourceVersion`/`continue`.
pub fn build_table(
    resource: &ResourceInfo,
    objects: &[Value],
    include: IncludeObject,
    now: OffsetDateTime,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let printed = rows::print(resource.name, obj, now);
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array(printed.cells));
            if let Some(conditions) = printed.conditions {
                row.insert("conditions".into(), conditions);
            }
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => {
                    row.insert("object".into(), partial_metadata(obj));
                }
                IncludeObject::Object => {
                    row.insert("object".into(), obj.clone());
                }
            }
            Value::Object(row)
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": columns::for_resource(resource.name),
        "rows": rows,
    })
}

/// The `PartialObjectMetadata` form of an object: only its metadata.
fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// Go's `duration.HumanDuration`: a short, rounded-down rendering of an elapsed time in seconds.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{}h", hours / 24, h)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{}d", hours / 24 / 365, days)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Parses an RFC 3339 timestamp field; absent or malformed values count as the zero time.
fn parse_time(value: Option<&Value>) -> Option<OffsetDateTime> {
    value
        .and_then(Value::as_str)
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
}

/// kube's `translateTimestampSince`: `<unknown>` for a missing time, else the human age.
fn since(value: Option<&Value>, now: OffsetDateTime) -> String {
    match parse_time(value) {
        Some(t) => human_duration(elapsed_seconds(t, now)),
        None => "<unknown>".into(),
    }
}

/// Whole seconds from `t` to `now`, truncated toward zero like Go's `Duration.Seconds()` cast.
fn elapsed_seconds(t: OffsetDateTime, now: OffsetDateTime) -> i64 {
    (now - t).whole_seconds()
}

/// Go's `labels.FormatLabels`: `k=v` pairs sorted by key, comma-joined, `<none>` when empty.
fn format_labels(map: Option<&Value>) -> String {
    let Some(map) = map.and_then(Value::as_object) else {
        return "<none>".into();
    };
    if map.is_empty() {
        return "<none>".into();
    }
    let mut pairs: Vec<(&String, String)> = map
        .iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A string field at a JSON pointer, empty when absent.
fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// An integer field at a JSON pointer, zero when absent.
fn int_at(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// An array field at a JSON pointer, empty when absent.
fn array_at<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::by_name;
    use time::macros::datetime;

    #[test]
    fn human_duration_matches_go() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (123, "2m3s"),
            (180, "3m"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600 + 4 * 60, "3h4m"),
            (5 * 3600, "5h"),
            (10 * 3600, "10h"),
            (51 * 3600, "2d3h"),
            (72 * 3600, "3d"),
            (30 * 86400, "30d"),
            (800 * 86400, "2y70d"),
            (365 * 2 * 86400, "2y"),
            (3000 * 86400, "8y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
    }

    #[test]
    fn since_handles_missing_and_bad_times() {
        let now = datetime!(2024-01-01 00:10:00 UTC);
        assert_eq!(since(None, now), "<unknown>");
        assert_eq!(since(Some(&json!("garbage")), now), "<unknown>");
        assert_eq!(since(Some(&json!("2024-01-01T00:00:00Z")), now), "10m");
    }

    #[test]
    fn labels_are_sorted() {
        assert_eq!(format_labels(Some(&json!({"b": "2", "a": "1"}))), "a=1,b=2");
        assert_eq!(format_labels(Some(&json!({}))), "<none>");
        assert_eq!(format_labels(None), "<none>");
    }

    #[test]
    fn include_object_controls_row_object() {
        let cm = json!({"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "c", "namespace": "default", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "data": {"a": "1"}});
        let now = datetime!(2024-01-01 00:00:05 UTC);
        let cms = by_name("configmaps").unwrap();
        let t = build_table(cms, std::slice::from_ref(&cm), IncludeObject::None, now);
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"], json!({}));
        assert!(t["rows"][0].get("object").is_none());
        let t = build_table(cms, std::slice::from_ref(&cm), IncludeObject::Metadata, now);
        assert_eq!(
            t["rows"][0]["object"],
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": cm["metadata"]})
        );
        let t = build_table(cms, std::slice::from_ref(&cm), IncludeObject::Object, now);
        assert_eq!(t["rows"][0]["object"], cm);
        assert_eq!(t["rows"][0]["cells"], json!(["c", 1, "5s"]));
    }

    #[test]
    fn include_object_parses_query_values() {
        assert_eq!(IncludeObject::parse("None"), Some(IncludeObject::None));
        assert_eq!(IncludeObject::parse("Object"), Some(IncludeObject::Object));
        assert_eq!(IncludeObject::parse("x"), None);
    }
}
