//! Pod update rules (`ValidatePodUpdate`): only images, deadlines, tolerations (additions) and a negative grace
//! period may change.

use super::pod::pod;
use super::{arr_at, obj_at, str_at, FieldError};
use serde_json::{Map, Value};

const MAX_INT32: i64 = i32::MAX as i64;

const UPDATABLE: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `ValidatePodUpdate`: the new pod must be valid and its spec may change only in the updatable fields.
pub(crate) fn pod_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = pod(new);
    let (Some(new_spec), Some(old_spec)) = (obj_at(new, "spec"), obj_at(old, "spec")) else {
        return errs;
    };
    let (new_v, old_v) = (&new["spec"], &old["spec"]);
    if arr_at(new_v, "containers").len() != arr_at(old_v, "containers").len() {
        errs.push(FieldError::forbidden(
            "spec.containers",
            "pod updates may not add or remove containers",
        ));
        return errs;
    }
    if arr_at(new_v, "initContainers").len() != arr_at(old_v, "initContainers").len() {
        errs.push(FieldError::forbidden(
            "spec.initContainers",
            "pod updates may not add or remove containers",
        ));
        return errs;
    }
    let new_ads = new_spec
        .get("activeDeadlineSeconds")
        .and_then(Value::as_i64);
    let old_ads = old_spec
        .get("activeDeadlineSeconds")
        .and_then(Value::as_i64);
    match (new_ads, old_ads) {
        (Some(n), _) if !(0..=MAX_INT32).contains(&n) => {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                n,
                "must be between 0 and 2147483647, inclusive",
            ));
            return errs;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                n,
                "must be less than or equal to previous value",
            ));
            return errs;
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            "null",
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    // Existing tolerations may only gain siblings.
    let new_tolerations = arr_at(new_v, "tolerations");
    for old_t in arr_at(old_v, "tolerations") {
        let same = |t: &&Value| {
            ["key", "operator", "value", "effect"]
                .iter()
                .all(|k| str_at(t, k) == str_at(old_t, k))
        };
        if !new_tolerations.iter().any(|t| same(&t)) {
            errs.push(FieldError::forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }
    // Undo the allowed changes; anything left differing is forbidden.
    let mut munged = new_spec.clone();
    for key in ["containers", "initContainers"] {
        if let Some(list) = munged.get_mut(key).and_then(Value::as_array_mut) {
            for (i, c) in list.iter_mut().enumerate() {
                if let (Some(c), Some(image)) = (c.as_object_mut(), old_v[key][i].get("image")) {
                    c.insert("image".into(), image.clone());
                }
            }
        }
    }
    for key in ["activeDeadlineSeconds", "tolerations"] {
        restore(&mut munged, old_spec, key);
    }
    let old_grace = old_spec
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64);
    let new_grace = new_spec
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64);
    if matches!((old_grace, new_grace), (Some(o), Some(1)) if o < 0) {
        restore(&mut munged, old_spec, "terminationGracePeriodSeconds");
    }
    if &munged != old_spec {
        errs.push(FieldError::forbidden(
            "spec",
            &format!(
                "pod updates may not change fields other than {UPDATABLE}\n{}",
                diff(old_spec, &munged)
            ),
        ));
    }
    errs
}

fn restore(target: &mut Map<String, Value>, from: &Map<String, Value>, key: &str) {
    match from.get(key) {
        Some(v) => target.insert(key.to_string(), v.clone()),
        None => target.remove(key),
    };
}

/// A compact rendering of the differing spec fields, in the spirit of the real server's `cmp.Diff`.
fn diff(old: &Map<String, Value>, new: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = String::from("  core.PodSpec{\n");
    for k in keys {
        let (o, n) = (old.get(k), new.get(k));
        if o == n {
            continue;
        }
        let field = {
            let mut c = k.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        };
        if let Some(o) = o {
            out.push_str(&format!("- \t{field}: {o},\n"));
        }
        if let Some(n) = n {
            out.push_str(&format!("+ \t{field}: {n},\n"));
        }
    }
    out.push_str("  }\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::validation::pod::tests::{msgs, valid_pod};

    #[test]
    fn updates_may_change_only_images_and_deadlines() {
        let old = valid_pod();
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("nginx:2");
        new["metadata"]["labels"] = json!({"a": "b"});
        assert!(pod_update(&new, &old).is_empty());
        new["spec"]["nodeName"] = json!("n1");
        let errs = pod_update(&new, &old);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec");
        assert!(errs[0].body.starts_with("Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n  core.PodSpec{\n"));
        assert!(errs[0].body.contains("+ \tNodeName: \"n1\","));
        let mut more = old.clone();
        let c = more["spec"]["containers"][0].clone();
        more["spec"]["containers"] = json!([c.clone(), {"name": "d", "image": "x", "imagePullPolicy": "Always", "terminationMessagePolicy": "File"}]);
        assert_eq!(
            msgs(pod_update(&more, &old)),
            vec!["spec.containers: Forbidden: pod updates may not add or remove containers"]
        );
        let mut deadline = old.clone();
        deadline["spec"]["activeDeadlineSeconds"] = json!(10);
        assert!(pod_update(&deadline, &old).is_empty());
        let mut later = deadline.clone();
        later["spec"]["activeDeadlineSeconds"] = json!(20);
        assert_eq!(
            msgs(pod_update(&later, &deadline)),
            vec!["spec.activeDeadlineSeconds: Invalid value: 20: must be less than or equal to previous value"]
        );
    }
}
