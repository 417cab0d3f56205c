//! Field selectors: `f=v`, `f==v`, `f!=v` terms, checked against the field labels each resource supports.

use crate::error::ApiError;
use crate::resources::ResourceInfo;
use serde_json::Value;

/// How a selectable field's value is rendered when absent or non-string (as Go's typed fields would be).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    Str,
    Bool,
    Int,
}

/// The field labels a resource can be selected by: (label, JSON pointer, kind). `None` means the resource
/// has no registered conversion, so kube-apiserver's default (name/namespace only) message applies.
fn supported_fields(
    resource: &ResourceInfo,
) -> Option<&'static [(&'static str, &'static str, FieldKind)]> {
    use FieldKind::*;
    const NAME: (&str, &str, FieldKind) = ("metadata.name", "/metadata/name", Str);
    const NS: (&str, &str, FieldKind) = ("metadata.namespace", "/metadata/namespace", Str);
    Some(match resource.name {
        "pods" => &[
            NAME,
            NS,
            ("spec.nodeName", "/spec/nodeName", Str),
            ("spec.restartPolicy", "/spec/restartPolicy", Str),
            ("spec.schedulerName", "/spec/schedulerName", Str),
            ("spec.serviceAccountName", "/spec/serviceAccountName", Str),
            ("spec.hostNetwork", "/spec/hostNetwork", Bool),
            ("status.phase", "/status/phase", Str),
            ("status.podIP", "/status/podIPs/0/ip", Str),
            ("status.podIPs", "/status/podIPs", Str),
            ("status.nominatedNodeName", "/status/nominatedNodeName", Str),
        ],
        "events" => &[
            NAME,
            NS,
            ("involvedObject.kind", "/involvedObject/kind", Str),
            ("involvedObject.namespace", "/involvedObject/namespace", Str),
            ("involvedObject.name", "/involvedObject/name", Str),
            ("involvedObject.uid", "/involvedObject/uid", Str),
            (
                "involvedObject.apiVersion",
                "/involvedObject/apiVersion",
                Str,
            ),
            (
                "involvedObject.resourceVersion",
                "/involvedObject/resourceVersion",
                Str,
            ),
            ("involvedObject.fieldPath", "/involvedObject/fieldPath", Str),
            ("reason", "/reason", Str),
            ("reportingComponent", "/reportingComponent", Str),
            ("source", "/source/component", Str),
            ("type", "/type", Str),
        ],
        "namespaces" => &[NAME, ("status.phase", "/status/phase", Str)],
        "nodes" => &[NAME, ("spec.unschedulable", "/spec/unschedulable", Bool)],
        "replicationcontrollers" => &[NAME, NS, ("status.replicas", "/status/replicas", Int)],
        "services" => &[
            NAME,
            NS,
            ("spec.clusterIP", "/spec/clusterIP", Str),
            ("spec.type", "/spec/type", Str),
        ],
        "secrets" => &[NAME, NS, ("type", "/type", Str)],
        _ => return None,
    })
}

/// Every JSON pointer a field selector of `resource` may read (including the fallbacks of
/// `status.podIP` and `source`), so a cache can keep just these parts of an object.
pub fn selectable_pointers(resource: &ResourceInfo) -> Vec<&'static str> {
    let mut out = vec!["/metadata/name", "/metadata/namespace"];
    for (_, pointer, _) in supported_fields(resource).unwrap_or_default() {
        out.push(pointer);
    }
    out.extend(["/status/podIP", "/reportingComponent"]);
    out
}

/// One `field op value` term.
#[derive(Debug, Clone, PartialEq)]
struct Term {
    field: &'static str,
    pointer: &'static str,
    kind: FieldKind,
    value: String,
    negated: bool,
}

impl Term {
    fn actual(&self, object: &Value) -> String {
        // `status.podIPs` is accepted as a label but absent from the real server's field set, so it is "".
        if self.field == "status.podIPs" {
            return String::new();
        }
        let v = object.pointer(self.pointer);
        // `status.podIP` is read from `status.podIPs[0]` in the real server; fall back to the singular field.
        let v = match (v, self.field) {
            (None | Some(Value::Null), "status.podIP") => object.pointer("/status/podIP"),
            // An event's `source` falls back to its reporting controller.
            (None | Some(Value::Null), "source") => object.pointer("/reportingComponent"),
            _ => v,
        };
        match (v, self.kind) {
            (Some(Value::String(s)), _) => s.clone(),
            (Some(Value::Bool(b)), _) => b.to_string(),
            (Some(Value::Number(n)), _) => n.to_string(),
            (_, FieldKind::Bool) => "false".to_string(),
            (_, FieldKind::Int) => "0".to_string(),
            _ => String::new(),
        }
    }
}

/// A parsed field selector, checked against the fields a resource supports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector {
    terms: Vec<Term>,
}

/// Splits on commas that are not escaped by a backslash (escapes are kept for `unescape`).
fn split_terms(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            cur.push(c);
            escaped = true;
        } else if c == ',' {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// Finds the first operator position: `!=`, `==` or `=`.
fn split_term(term: &str) -> Option<(&str, &str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for op in ["!=", "==", "="] {
            if let Some(rhs) = rest.strip_prefix(op) {
                return Some((&term[..i], op, rhs));
            }
        }
    }
    None
}

fn unescape(s: &str) -> Result<String, String> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::new();
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{c}"
                    ))
                }
            }
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' || c == '=' {
            return Err(format!("invalid field selector: unescaped character {c}"));
        } else {
            out.push(c);
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".to_string());
    }
    Ok(out)
}

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter; unsupported field labels → 400 BadRequest.
    pub fn parse(resource: &ResourceInfo, s: &str) -> Result<Self, ApiError> {
        let mut parts = split_terms(s);
        // The real server sorts the terms, so the first failing term in sorted order is reported.
        parts.sort();
        let fields = supported_fields(resource);
        let mut terms = Vec::new();
        for part in parts.iter().filter(|p| !p.is_empty()) {
            let Some((lhs, op, rhs)) = split_term(part) else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let value = unescape(rhs).map_err(ApiError::bad_request)?;
            // `spec.host` is a legacy alias of `spec.nodeName` on pods.
            let label = if resource.name == "pods" && lhs == "spec.host" {
                "spec.nodeName"
            } else {
                lhs
            };
            let found = match fields {
                Some(list) => list
                    .iter()
                    .find(|(name, _, _)| *name == label)
                    .ok_or_else(|| {
                        ApiError::bad_request(format!("field label not supported: {lhs}"))
                    })?,
                None => {
                    const DEFAULT: &[(&str, &str, FieldKind)] = &[
                        ("metadata.name", "/metadata/name", FieldKind::Str),
                        ("metadata.namespace", "/metadata/namespace", FieldKind::Str),
                    ];
                    DEFAULT.iter().find(|(name, _, _)| *name == label).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "\"{lhs}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                        ))
                    })?
                }
            };
            terms.push(Term {
                field: found.0,
                pointer: found.1,
                kind: found.2,
                value,
                negated: op == "!=",
            });
        }
        Ok(FieldSelector { terms })
    }

    /// Whether the selector matches everything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether an object matches.
    pub fn matches(&self, object: &Value) -> bool {
        self.terms
            .iter()
            .all(|t| (t.actual(object) == t.value) != t.negated)
    }

    /// `Some(name)` when the selector pins `metadata.name` to one value (lets a watch/list narrow).
    pub fn exact_name(&self) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == "metadata.name" && !t.negated)
            .map(|t| t.value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::by_name;
    use serde_json::json;

    fn parse(resource: &str, s: &str) -> Result<FieldSelector, ApiError> {
        FieldSelector::parse(by_name(resource).unwrap(), s)
    }

    #[test]
    fn pod_fields_match_by_path() {
        let pod = json!({"metadata": {"name": "a", "namespace": "ns"},
            "spec": {"nodeName": "n1", "hostNetwork": true},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}]}});
        assert!(parse("pods", "spec.nodeName=n1").unwrap().matches(&pod));
        assert!(parse("pods", "spec.host==n1").unwrap().matches(&pod));
        assert!(!parse("pods", "spec.nodeName!=n1").unwrap().matches(&pod));
        assert!(parse("pods", "spec.nodeName=").unwrap().matches(&json!({})));
        assert!(parse("pods", "spec.hostNetwork=true")
            .unwrap()
            .matches(&pod));
        assert!(parse("pods", "spec.hostNetwork=false")
            .unwrap()
            .matches(&json!({})));
        assert!(parse("pods", "status.podIPs=").unwrap().matches(&pod));
        assert!(parse("pods", "status.podIP=10.0.0.1")
            .unwrap()
            .matches(&pod));
        let both = parse("pods", "metadata.namespace=ns,status.phase!=Pending").unwrap();
        assert!(both.matches(&pod));
        assert!(parse("pods", "").unwrap().is_empty());
    }

    #[test]
    fn other_resources() {
        let node = json!({"metadata": {"name": "n"}, "spec": {}});
        assert!(parse("nodes", "spec.unschedulable=false")
            .unwrap()
            .matches(&node));
        let rc = json!({"status": {"replicas": 3}});
        assert!(parse("replicationcontrollers", "status.replicas=3")
            .unwrap()
            .matches(&rc));
        let ev = json!({"source": {"component": "kubelet"}, "involvedObject": {"kind": "Pod"}});
        assert!(parse("events", "source=kubelet,involvedObject.kind=Pod")
            .unwrap()
            .matches(&ev));
        let new_style = json!({"reportingComponent": "kubelet"});
        assert!(parse("events", "source=kubelet")
            .unwrap()
            .matches(&new_style));
        let ns = json!({"status": {"phase": "Active"}});
        assert!(parse("namespaces", "status.phase=Active")
            .unwrap()
            .matches(&ns));
    }

    #[test]
    fn unsupported_labels_use_the_real_messages() {
        let e = parse("pods", "spec.foo=x").unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "field label not supported: spec.foo")
        );
        let e = parse("nodes", "metadata.namespace=x").unwrap_err();
        assert_eq!(e.message, "field label not supported: metadata.namespace");
        let e = parse("configmaps", "data.x=y").unwrap_err();
        assert_eq!(
            e.message,
            "\"data.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        assert!(parse("configmaps", "metadata.namespace=default").is_ok());
    }

    #[test]
    fn syntax_errors() {
        let e = parse("pods", "foo").unwrap_err();
        assert_eq!(e.message, "invalid selector: 'foo'; can't understand 'foo'");
        let e = parse("pods", "metadata.name=a=b").unwrap_err();
        assert_eq!(e.message, "invalid field selector: unescaped character =");
        let s = parse("pods", "metadata.name=a\\,b").unwrap();
        assert_eq!(s.exact_name(), Some("a,b"));
    }

    #[test]
    fn exact_name() {
        assert_eq!(
            parse("pods", "metadata.name==x").unwrap().exact_name(),
            Some("x")
        );
        assert_eq!(
            parse("pods", "metadata.name!=x").unwrap().exact_name(),
            None
        );
        assert_eq!(parse("pods", "spec.nodeName=x").unwrap().exact_name(), None);
    }
}
