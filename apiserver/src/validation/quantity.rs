//! Resource quantities (`500m`, `1Gi`, `1e3`): parsing with apimachinery's error texts, and container
//! `resources` validation (names, non-negative values, requests within limits).

use super::names::qualified_name;
use super::{obj_at, path, q, FieldError};
use serde_json::Value;

/// apimachinery's `ErrFormatWrong`.
pub const FORMAT_WRONG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
const NUMERIC: &str = "unable to parse quantity's numeric part";
const SUFFIX: &str = "unable to parse quantity's suffix";

/// Parses a quantity to its value, or the real parser's error message.
pub fn parse(s: &str) -> Result<f64, &'static str> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let negative = s.starts_with('-');
    let split = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(split);
    // The suffix part is `[eEinumkKMGTP]*[-+]?[0-9]*`.
    let letters_end = suffix
        .find(|c: char| !"eEinumkKMGTP".contains(c))
        .unwrap_or(suffix.len());
    let rest = &suffix[letters_end..];
    let rest_digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
    if number.is_empty() || !rest_digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FORMAT_WRONG);
    }
    let value: f64 = number.parse().map_err(|_| NUMERIC)?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        other => {
            let exp = other
                .strip_prefix(['e', 'E'])
                .and_then(|e| e.parse::<i32>().ok())
                .ok_or(SUFFIX)?;
            10f64.powi(exp)
        }
    };
    Ok(if negative {
        -value * scale
    } else {
        value * scale
    })
}

/// A quantity as JSON (string or number): its text and value.
fn quantity(v: &Value) -> Option<(String, f64)> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    parse(&text).ok().map(|value| (text, value))
}

const CONTAINER_RESOURCES: &[&str] = &["cpu", "memory", "ephemeral-storage"];
const STANDARD_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
    "storage",
    "requests.storage",
];

/// Resources whose requests may be below their limits (others must request exactly their limit).
fn overcommit_allowed(name: &str) -> bool {
    (!name.contains('/') || name.contains("kubernetes.io/")) && !name.starts_with("hugepages-")
}

/// `validateContainerResourceName`.
fn resource_name(name: &str, field: &str, errs: &mut Vec<FieldError>) {
    let msgs = qualified_name(name);
    let unqualified = !name.contains('/');
    if !msgs.is_empty() {
        for msg in msgs {
            errs.push(FieldError::invalid(field, q(name), &msg));
        }
    } else if unqualified && !STANDARD_RESOURCES.contains(&name) && !name.starts_with("hugepages-")
    {
        errs.push(FieldError::invalid(
            field,
            q(name),
            "must be a standard resource type or fully qualified",
        ));
    }
    if unqualified && !CONTAINER_RESOURCES.contains(&name) && !name.starts_with("hugepages-") {
        errs.push(FieldError::invalid(
            field,
            q(name),
            "must be a standard resource for containers",
        ));
    }
}

/// `ValidateResourceQuantityValue`.
fn quantity_value(name: &str, text: &str, value: f64, field: &str, errs: &mut Vec<FieldError>) {
    if value < 0.0 {
        errs.push(FieldError::invalid(
            field,
            q(text),
            "must be greater than or equal to 0",
        ));
    }
    let integer_only = name.contains('/') && !name.contains("kubernetes.io/");
    if integer_only && value.fract() != 0.0 {
        // A Quantity prints through its String method, unquoted.
        errs.push(FieldError::invalid(field, text, "must be an integer"));
    }
}

/// `ValidateContainerResourceRequirements` for the container at `base`.
pub(crate) fn container_resources(c: &Value, base: &str, errs: &mut Vec<FieldError>) {
    let resources = c.get("resources").unwrap_or(&Value::Null);
    let lim_path = path(base, "resources.limits");
    let req_path = path(base, "resources.requests");
    let limits = obj_at(resources, "limits");
    for (name, v) in limits.into_iter().flatten() {
        let field = format!("{lim_path}[{name}]");
        resource_name(name, &field, errs);
        if let Some((text, value)) = quantity(v) {
            quantity_value(name, &text, value, &field, errs);
        }
    }
    for (name, v) in obj_at(resources, "requests").into_iter().flatten() {
        let field = format!("{req_path}[{name}]");
        resource_name(name, &field, errs);
        let Some((text, value)) = quantity(v) else {
            continue;
        };
        quantity_value(name, &text, value, &field, errs);
        match limits.and_then(|l| l.get(name)).and_then(quantity) {
            Some((limit_text, limit)) => {
                if value != limit && !overcommit_allowed(name) {
                    errs.push(FieldError::invalid(
                        &req_path,
                        q(&text),
                        &format!("must be equal to {name} limit of {limit_text}"),
                    ));
                } else if value > limit {
                    errs.push(FieldError::invalid(
                        &req_path,
                        q(&text),
                        &format!("must be less than or equal to {name} limit of {limit_text}"),
                    ));
                }
            }
            None if !overcommit_allowed(name) => errs.push(FieldError::required(
                &lim_path,
                "Limit must be set for non overcommitable resources",
            )),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_like_apimachinery() {
        assert_eq!(parse("500m"), Ok(0.5));
        assert_eq!(parse("1Gi"), Ok(1073741824.0));
        assert_eq!(parse("1e3"), Ok(1000.0));
        assert_eq!(parse("2"), Ok(2.0));
        assert_eq!(parse("-1"), Ok(-1.0));
        assert_eq!(parse("1KB"), Err(FORMAT_WRONG));
        assert_eq!(parse("abc"), Err(FORMAT_WRONG));
        assert_eq!(parse("1K"), Err(SUFFIX));
        assert_eq!(parse("1.2.3"), Err(NUMERIC));
    }

    fn msgs(c: Value) -> Vec<String> {
        let mut errs = Vec::new();
        container_resources(&c, "spec.containers[0]", &mut errs);
        errs.into_iter()
            .map(|e| format!("{}: {}", e.field, e.body))
            .collect()
    }

    #[test]
    fn requests_within_limits() {
        assert!(
            msgs(json!({"resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "500m"}}}))
                .is_empty()
        );
        assert_eq!(
            msgs(json!({"resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "2"}}})),
            vec!["spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"]
        );
        assert_eq!(
            msgs(json!({"resources": {"requests": {"example.com/gpu": "1"}}})),
            vec!["spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources"]
        );
    }

    #[test]
    fn names_and_values() {
        assert_eq!(
            msgs(json!({"resources": {"limits": {"gpu": "1", "memory": "-1"}}})),
            vec![
                "spec.containers[0].resources.limits[gpu]: Invalid value: \"gpu\": must be a standard resource type or fully qualified",
                "spec.containers[0].resources.limits[gpu]: Invalid value: \"gpu\": must be a standard resource for containers",
                "spec.containers[0].resources.limits[memory]: Invalid value: \"-1\": must be greater than or equal to 0",
            ]
        );
    }
}
