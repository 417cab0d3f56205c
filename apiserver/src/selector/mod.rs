//! Label and field selectors: parsing (`a=b,c in (x,y),!d`) and matching against JSON objects. Pure.

// `ApiError` (the shared error type fixed by the module interfaces) is larger than clippy's threshold;
// boxing it belongs in error.rs, not here.
#![allow(clippy::result_large_err)]

mod field;
mod label;

pub use field::{selectable_pointers, FieldSelector};

use crate::error::ApiError;
use serde_json::Value;

/// The operator of one label requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelOp {
    /// `in (a,b)`, `=`, `==`: the key exists with one of the values.
    In,
    /// `notin (a,b)`, `!=`: the key is absent or has none of the values.
    NotIn,
    /// `key`: the key exists.
    Exists,
    /// `!key`: the key is absent.
    DoesNotExist,
    /// `key>n`: the value is an integer greater than n.
    GreaterThan,
    /// `key<n`: the value is an integer less than n.
    LessThan,
}

/// One label requirement (`key op values`).
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// The operator.
    pub op: LabelOp,
    /// The values (sorted, deduplicated); empty for exists / does-not-exist.
    pub values: Vec<String>,
}

impl Requirement {
    fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let value = labels
            .and_then(|l| l.get(&self.key))
            .and_then(Value::as_str);
        match (self.op, value) {
            (LabelOp::In, Some(v)) => self.values.iter().any(|x| x == v),
            (LabelOp::In, None) => false,
            (LabelOp::NotIn, Some(v)) => !self.values.iter().any(|x| x == v),
            (LabelOp::NotIn, None) => true,
            (LabelOp::Exists, v) => v.is_some(),
            (LabelOp::DoesNotExist, v) => v.is_none(),
            (LabelOp::GreaterThan | LabelOp::LessThan, Some(v)) => {
                let (Ok(have), Some(Ok(want))) = (
                    v.parse::<i64>(),
                    self.values.first().map(|w| w.parse::<i64>()),
                ) else {
                    return false;
                };
                if self.op == LabelOp::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
            (LabelOp::GreaterThan | LabelOp::LessThan, None) => false,
        }
    }
}

/// A parsed label selector (`=`, `==`, `!=`, `in`, `notin`, exists, `!` not-exists).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    /// The requirements, sorted by key; all must match. Empty matches everything.
    pub requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter; errors are 400 BadRequest with kube-apiserver's text.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut requirements = label::parse(s).map_err(ApiError::bad_request)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }

    /// The equality selector of a label map (a replication controller's or service's `spec.selector`).
    /// Non-string values are treated as empty strings.
    pub fn from_map(map: &serde_json::Map<String, Value>) -> Self {
        let mut requirements: Vec<Requirement> = map
            .iter()
            .map(|(k, v)| Requirement {
                key: k.clone(),
                op: LabelOp::In,
                values: vec![v.as_str().unwrap_or_default().to_string()],
            })
            .collect();
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector { requirements }
    }

    /// Whether the selector matches everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object's `metadata.labels` match.
    pub fn matches(&self, object: &Value) -> bool {
        self.matches_labels(
            object
                .pointer("/metadata/labels")
                .and_then(Value::as_object),
        )
    }

    /// Whether a label map (e.g. a pod template's labels) matches.
    pub fn matches_labels(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(labels: Value) -> Value {
        json!({"metadata": {"name": "p", "labels": labels}})
    }

    fn err(s: &str) -> String {
        let e = LabelSelector::parse(s).unwrap_err();
        assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));
        e.message
    }

    #[test]
    fn empty_selector_matches_everything() {
        let s = LabelSelector::parse("").unwrap();
        assert!(s.is_empty());
        assert!(s.matches(&json!({"metadata": {}})));
        assert!(LabelSelector::parse("  ").unwrap().is_empty());
    }

    #[test]
    fn equality_and_inequality() {
        let a = pod(json!({"app": "web", "tier": "fe"}));
        let b = pod(json!({"app": "db"}));
        let s = LabelSelector::parse("app=web").unwrap();
        assert!(s.matches(&a) && !s.matches(&b));
        assert!(LabelSelector::parse("app == web").unwrap().matches(&a));
        let ne = LabelSelector::parse("tier!=fe").unwrap();
        assert!(!ne.matches(&a));
        assert!(ne.matches(&b), "!= matches when the key is absent");
        let both = LabelSelector::parse(" app = web , tier = fe ").unwrap();
        assert!(both.matches(&a) && !both.matches(&b));
        assert!(!s.matches(&json!({"metadata": {}})));
    }

    #[test]
    fn set_based_and_existence() {
        let a = pod(json!({"env": "prod", "x": ""}));
        let b = pod(json!({"env": "dev"}));
        let c = pod(json!({}));
        let s = LabelSelector::parse("env in (prod, qa)").unwrap();
        assert!(s.matches(&a) && !s.matches(&b) && !s.matches(&c));
        let n = LabelSelector::parse("env notin (prod)").unwrap();
        assert!(!n.matches(&a) && n.matches(&b) && n.matches(&c));
        let e = LabelSelector::parse("env").unwrap();
        assert!(e.matches(&a) && !e.matches(&c));
        let ne = LabelSelector::parse("!env").unwrap();
        assert!(!ne.matches(&a) && ne.matches(&c));
        let empty_value = LabelSelector::parse("x=").unwrap();
        assert!(empty_value.matches(&a) && !empty_value.matches(&b));
        let mixed = LabelSelector::parse("env,!missing,x in (,y)").unwrap();
        assert!(mixed.matches(&a));
        let in_keyword = LabelSelector::parse("k in (in,notin)").unwrap();
        assert_eq!(in_keyword.requirements[0].values, vec!["in", "notin"]);
    }

    #[test]
    fn map_selectors() {
        let m = json!({"app": "web", "tier": "fe"});
        let s = LabelSelector::from_map(m.as_object().unwrap());
        assert!(s.matches(&pod(json!({"app": "web", "tier": "fe", "x": "y"}))));
        assert!(!s.matches(&pod(json!({"app": "web"}))));
        assert!(LabelSelector::from_map(&serde_json::Map::new()).is_empty());
    }

    #[test]
    fn greater_and_less_than() {
        let a = pod(json!({"n": "5"}));
        assert!(LabelSelector::parse("n>3").unwrap().matches(&a));
        assert!(!LabelSelector::parse("n<3").unwrap().matches(&a));
        assert_eq!(
            err("n>x"),
            "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
    }

    #[test]
    fn syntax_errors_use_apimachinery_text() {
        assert_eq!(
            err("a in b"),
            "unable to parse requirement: found 'b' expected: '('"
        );
        assert_eq!(
            err("a in (b"),
            "unable to parse requirement: found '', expected: ',' or ')'"
        );
        assert_eq!(err("a,"), "found '', expected: identifier after ','");
        assert_eq!(
            err("a b"),
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(err("a=b c"), "found 'c', expected: ',' or 'end of string'");
        assert_eq!(
            err("=a"),
            "found '=', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            err("a=(b)"),
            "unable to parse requirement: found '(', expected: identifier"
        );
    }

    #[test]
    fn invalid_keys_and_values_are_rejected() {
        assert_eq!(
            err("-a=b"),
            "unable to parse requirement: <nil>: Invalid value: \"-a\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
        assert_eq!(
            err("a=-b"),
            "unable to parse requirement: values[0][a]: Invalid value: \"-b\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
    }
}
