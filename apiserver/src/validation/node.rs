//! Node validation (`ValidateNode`, `ValidateNodeUpdate`): taints, pod CIDRs and the fields that are set once.

use super::names::{label_value, qualified_name};
use super::{arr_at, q, str_at, FieldError};
use serde_json::Value;
use std::collections::HashSet;

const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// Whether `s` is a CIDR (`10.0.0.0/24`, `fd00::/64`).
fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let max = match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => 32,
        Ok(std::net::IpAddr::V6(_)) => 128,
        Err(_) => return false,
    };
    bits.parse::<u8>().is_ok_and(|b| b <= max)
}

/// `ValidateNode`'s spec part.
pub(crate) fn node(object: &Value) -> Vec<FieldError> {
    let spec = object.get("spec").unwrap_or(&Value::Null);
    let mut errs = Vec::new();
    let mut unique: HashSet<(String, String)> = HashSet::new();
    // The real server reports taints under `metadata.taints`.
    for (i, taint) in arr_at(spec, "taints").iter().enumerate() {
        let base = format!("metadata.taints[{i}]");
        let key = str_at(taint, "key");
        for msg in qualified_name(key) {
            errs.push(FieldError::invalid(&format!("{base}.key"), q(key), &msg));
        }
        let value = str_at(taint, "value");
        let msgs = label_value(value);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                &format!("{base}.value"),
                q(value),
                &msgs.join(";"),
            ));
        }
        let effect = str_at(taint, "effect");
        if effect.is_empty() {
            errs.push(FieldError::required(&format!("{base}.effect"), ""));
        } else if !TAINT_EFFECTS.contains(&effect) {
            errs.push(FieldError::not_supported(
                &format!("{base}.effect"),
                effect,
                TAINT_EFFECTS,
            ));
        }
        if !unique.insert((effect.to_string(), key.to_string())) {
            errs.push(FieldError::new(
                "FieldValueDuplicate",
                &base,
                format!(
                    "Duplicate value: core.Taint{{Key:{}, Value:{}, Effect:{}, TimeAdded:(*v1.Time)(nil)}}: taints must be unique by key and effect pair",
                    q(key),
                    q(value),
                    q(effect)
                ),
            ));
        }
    }
    for (i, cidr) in arr_at(spec, "podCIDRs").iter().enumerate() {
        let cidr = cidr.as_str().unwrap_or_default();
        if !is_cidr(cidr) {
            errs.push(FieldError::invalid(
                &format!("spec.podCIDRs[{i}]"),
                q(cidr),
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ));
        }
    }
    errs
}

/// `ValidateNodeUpdate`: pod CIDRs and the provider ID may only go from unset to set.
pub(crate) fn node_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let (spec, old_spec) = (&new["spec"], &old["spec"]);
    let mut errs = Vec::new();
    let cidrs = arr_at(spec, "podCIDRs");
    let old_cidrs = arr_at(old_spec, "podCIDRs");
    let cidr_msg = "node updates may not change podCIDR except from \"\" to valid";
    if !old_cidrs.is_empty() {
        if cidrs.len() != old_cidrs.len() {
            errs.push(FieldError::forbidden("spec.podCIDRs", cidr_msg));
        } else {
            for (o, n) in old_cidrs.iter().zip(cidrs) {
                if o != n {
                    errs.push(FieldError::forbidden("spec.podCIDRs", cidr_msg));
                }
            }
        }
    }
    let old_provider = str_at(old_spec, "providerID");
    if !old_provider.is_empty() && old_provider != str_at(spec, "providerID") {
        errs.push(FieldError::forbidden(
            "spec.providerID",
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    errs.extend(node(new));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msgs(errs: Vec<FieldError>) -> Vec<String> {
        errs.into_iter()
            .map(|e| format!("{}: {}", e.field, e.body))
            .collect()
    }

    #[test]
    fn taints_and_cidrs() {
        assert!(node(&json!({"spec": {"podCIDRs": ["10.0.0.0/24"],
            "taints": [{"key": "k", "effect": "NoSchedule"}]}}))
        .is_empty());
        assert_eq!(
            msgs(node(&json!({"spec": {"podCIDRs": ["10.0.0.0"], "taints": [
                {"key": "k", "effect": "Sometimes"}, {"key": "k", "effect": "Sometimes"}]}}))),
            vec![
                "metadata.taints[0].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
                "metadata.taints[1].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
                "metadata.taints[1]: Duplicate value: core.Taint{Key:\"k\", Value:\"\", Effect:\"Sometimes\", TimeAdded:(*v1.Time)(nil)}: taints must be unique by key and effect pair",
                "spec.podCIDRs[0]: Invalid value: \"10.0.0.0\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ]
        );
    }

    #[test]
    fn set_once_fields() {
        let old = json!({"spec": {"podCIDRs": ["10.0.0.0/24"], "providerID": "kumos://a"}});
        assert!(node_update(&old, &old).is_empty());
        let new = json!({"spec": {"podCIDRs": ["10.0.1.0/24"], "providerID": "kumos://b"}});
        assert_eq!(
            msgs(node_update(&new, &old)),
            vec![
                "spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid",
                "spec.providerID: Forbidden: node updates may not change providerID except from \"\" to valid",
            ]
        );
        let unset = json!({"spec": {}});
        assert!(node_update(&old, &unset).is_empty());
    }
}
