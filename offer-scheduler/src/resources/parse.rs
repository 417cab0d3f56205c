//! Agent `--resources` text (`cpus(web):2;mem:4096;ports:[31000-32000]`) or JSON array parsing.

use super::{Ranges, Reservation, ReservationKind, Resource, Resources, Scalar, Value, UNRESERVED};
use std::collections::BTreeSet;

/// Why a resource string or JSON document was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// An entry has no `name:value` shape.
    #[error("bad resource '{0}': expected 'name(role):value'")]
    Syntax(String),
    /// The resource name is empty or contains reserved characters.
    #[error("bad resource name in '{0}'")]
    Name(String),
    /// The role in parentheses is invalid.
    #[error("bad role '{role}' in '{entry}'")]
    Role {
        /// Offending role.
        role: String,
        /// Whole entry.
        entry: String,
    },
    /// The value is not a number, `[a-b,...]` ranges, or a `{a,b}` set.
    #[error("bad value '{value}' for resource '{name}'")]
    Value {
        /// Resource name.
        name: String,
        /// Offending value text.
        value: String,
    },
    /// A scalar is negative, NaN or infinite.
    #[error("invalid scalar {value} for resource '{name}': must be a finite non-negative number")]
    Scalar {
        /// Resource name.
        name: String,
        /// Offending value text.
        value: String,
    },
    /// The same name appears with different value types.
    #[error("resource '{0}' appears with different types")]
    MixedTypes(String),
    /// Malformed JSON resource.
    #[error("invalid resource JSON: {0}")]
    Json(String),
}

/// Roles are non-empty, not `.`/`..`, no whitespace/control characters; `*` means unreserved.
pub(crate) fn valid_role(role: &str) -> bool {
    role == UNRESERVED
        || (!role.is_empty()
            && role.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && !seg.starts_with('-')
                    && !seg
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || c == '*')
            }))
}

impl Resources {
    /// Parses `--resources`: either the `name(role):value;...` text or a JSON array of resources.
    pub fn parse(text: &str) -> Result<Resources, ParseError> {
        let text = text.trim();
        let list =
            if text.starts_with('[') && serde_json::from_str::<serde_json::Value>(text).is_ok() {
                Resources::from_json_str(text)?.0
            } else {
                text.split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(parse_entry)
                    .collect::<Result<Vec<_>, _>>()?
            };
        check_types(&list)?;
        Ok(Resources::from_vec(list))
    }
}

fn check_types(list: &[Resource]) -> Result<(), ParseError> {
    for (i, a) in list.iter().enumerate() {
        if list[..i]
            .iter()
            .any(|b| b.name == a.name && b.value.kind() != a.value.kind())
        {
            return Err(ParseError::MixedTypes(a.name.clone()));
        }
    }
    Ok(())
}

fn parse_entry(entry: &str) -> Result<Resource, ParseError> {
    let (head, value) = entry
        .split_once(':')
        .ok_or_else(|| ParseError::Syntax(entry.to_string()))?;
    let head = head.trim();
    let (name, role) = match head.split_once('(') {
        Some((n, rest)) => {
            let role = rest
                .strip_suffix(')')
                .ok_or_else(|| ParseError::Syntax(entry.to_string()))?;
            (n.trim(), role.trim())
        }
        None => (head, UNRESERVED),
    };
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || "(){}[]".contains(c)) {
        return Err(ParseError::Name(entry.to_string()));
    }
    if !valid_role(role) {
        return Err(ParseError::Role {
            role: role.to_string(),
            entry: entry.to_string(),
        });
    }
    let reservations = if role == UNRESERVED {
        Vec::new()
    } else {
        vec![Reservation {
            kind: ReservationKind::Static,
            role: role.to_string(),
            principal: None,
        }]
    };
    Ok(Resource {
        name: name.to_string(),
        value: parse_value(name, value.trim())?,
        reservations,
    })
}

fn parse_value(name: &str, v: &str) -> Result<Value, ParseError> {
    let bad = || ParseError::Value {
        name: name.to_string(),
        value: v.to_string(),
    };
    if let Some(inner) = v.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        let mut pairs = Vec::new();
        for part in inner.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (b, e) = part.split_once('-').ok_or_else(bad)?;
            let b: u64 = b.trim().parse().map_err(|_| bad())?;
            let e: u64 = e.trim().parse().map_err(|_| bad())?;
            if b > e {
                return Err(bad());
            }
            pairs.push((b, e));
        }
        return Ok(Value::Ranges(Ranges::new(pairs)));
    }
    if let Some(inner) = v.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        let items = inner
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        return Ok(Value::Set(items));
    }
    let f: f64 = v.parse().map_err(|_| bad())?;
    scalar_value(name, f, v)
}

pub(crate) fn scalar_value(name: &str, f: f64, text: &str) -> Result<Value, ParseError> {
    match Scalar::from_f64(f) {
        Some(s) if f >= 0.0 => Ok(Value::Scalar(s)),
        _ => Err(ParseError::Scalar {
            name: name.to_string(),
            value: text.to_string(),
        }),
    }
}

/// Collects a set from string items (shared with the JSON decoder).
pub(crate) fn set_of(items: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    items.into_iter().collect()
}
