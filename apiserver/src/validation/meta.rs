//! `ObjectMeta` validation: names, namespace, labels, annotations, finalizers and immutable fields on update.

use super::names::{dns1035_label, dns1123_label, dns1123_subdomain, label_value, qualified_name};
use super::{q, str_at, FieldError};
use crate::resources::ResourceInfo;
use serde_json::{Map, Value};

/// kube-apiserver's limit on the total size of an object's annotations.
const TOTAL_ANNOTATION_SIZE: usize = 256 * 1024;

/// The name rule of a resource: services use DNS-1035 labels, namespaces RFC 1123 labels, the rest subdomains.
fn name_rule(resource: &ResourceInfo) -> fn(&str) -> Vec<String> {
    match resource.name {
        "services" => dns1035_label,
        "namespaces" => dns1123_label,
        _ => dns1123_subdomain,
    }
}

/// `generateName` prefixes may end in `-`; the check masks it as the real server does.
fn mask_trailing_dash(name: &str) -> String {
    match name.strip_suffix('-') {
        Some(stem) if name.len() > 1 => format!("{stem}a"),
        _ => name.to_string(),
    }
}

/// `ValidateLabels`: every key must be a qualified name and every value a valid label value.
pub(crate) fn labels(map: Option<&Map<String, Value>>, field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in map.into_iter().flatten() {
        for msg in qualified_name(k) {
            errs.push(FieldError::invalid(field, q(k), &msg));
        }
        let v = v.as_str().unwrap_or_default();
        for msg in label_value(v) {
            errs.push(FieldError::invalid(field, q(v), &msg));
        }
    }
    errs
}

/// `ValidateAnnotations`: keys are case-insensitive qualified names; the total size is bounded.
pub(crate) fn annotations(map: Option<&Map<String, Value>>, field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0;
    for (k, v) in map.into_iter().flatten() {
        for msg in qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(field, q(k), &msg));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE {
        errs.push(FieldError::too_long(field, TOTAL_ANNOTATION_SIZE));
    }
    errs
}

/// `ValidateObjectMeta` for a create or update of `resource`.
pub(crate) fn object_meta(resource: &ResourceInfo, object: &Value) -> Vec<FieldError> {
    let meta = object.get("metadata").unwrap_or(&Value::Null);
    let rule = name_rule(resource);
    let mut errs = Vec::new();
    let generate_name = str_at(meta, "generateName");
    if !generate_name.is_empty() {
        for msg in rule(&mask_trailing_dash(generate_name)) {
            errs.push(FieldError::invalid(
                "metadata.generateName",
                q(generate_name),
                &msg,
            ));
        }
    }
    let name = str_at(meta, "name");
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for msg in rule(name) {
            errs.push(FieldError::invalid("metadata.name", q(name), &msg));
        }
    }
    let namespace = str_at(meta, "namespace");
    if resource.namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required("metadata.namespace", ""));
        } else {
            for msg in dns1123_label(namespace) {
                errs.push(FieldError::invalid(
                    "metadata.namespace",
                    q(namespace),
                    &msg,
                ));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    if let Some(generation) = meta.get("generation").and_then(Value::as_i64) {
        if generation < 0 {
            errs.push(FieldError::invalid(
                "metadata.generation",
                generation,
                "must be greater than or equal to 0",
            ));
        }
    }
    errs.extend(labels(
        meta.get("labels").and_then(Value::as_object),
        "metadata.labels",
    ));
    errs.extend(annotations(
        meta.get("annotations").and_then(Value::as_object),
        "metadata.annotations",
    ));
    for owner in meta
        .get("ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        owner_reference(owner, &mut errs);
    }
    let finalizers: Vec<&str> = meta
        .get("finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|f| f.as_str().unwrap_or_default())
        .collect();
    for f in &finalizers {
        for msg in qualified_name(f) {
            errs.push(FieldError::invalid("metadata.finalizers", q(f), &msg));
        }
    }
    if finalizers.contains(&"orphan") && finalizers.contains(&"foregroundDeletion") {
        let list: Vec<String> = finalizers.iter().map(|f| q(f)).collect();
        errs.push(FieldError::invalid(
            "metadata.finalizers",
            format!("[]string{{{}}}", list.join(", ")),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    // core/v1's extra rule: a finalizer without a domain must be one of the standard ones.
    for f in &finalizers {
        errs.extend(kube_finalizer_name(f, "metadata.finalizers"));
    }
    errs
}

/// `validateKubeFinalizerName`: unqualified finalizers must be standard (`kubernetes`, `orphan`,
/// `foregroundDeletion`).
pub(crate) fn kube_finalizer_name(f: &str, field: &str) -> Option<FieldError> {
    (!f.contains('/') && !["kubernetes", "orphan", "foregroundDeletion"].contains(&f)).then(|| {
        FieldError::invalid(
            field,
            q(f),
            "name is neither a standard finalizer name nor is it fully qualified",
        )
    })
}

/// `validateOwnerReference`: the fields a reference needs (the field path has no index, as in the real server).
fn owner_reference(owner: &Value, errs: &mut Vec<FieldError>) {
    let api_version = str_at(owner, "apiVersion");
    // `group/version` or a bare `version`; the version part must be non-empty.
    let version = api_version.rsplit_once('/').map_or(api_version, |(_, v)| v);
    if version.is_empty() {
        errs.push(FieldError::invalid(
            "metadata.ownerReferences.apiVersion",
            q(api_version),
            "version must not be empty",
        ));
    }
    for key in ["kind", "name", "uid"] {
        let v = str_at(owner, key);
        if v.is_empty() {
            errs.push(FieldError::invalid(
                &format!("metadata.ownerReferences.{key}"),
                q(v),
                "must not be empty",
            ));
        }
    }
}

/// `ValidateObjectMetaUpdate`: identity fields cannot change.
pub(crate) fn object_meta_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let (new_meta, old_meta) = (
        new.get("metadata").unwrap_or(&Value::Null),
        old.get("metadata").unwrap_or(&Value::Null),
    );
    let mut errs = Vec::new();
    for key in ["name", "namespace", "uid"] {
        let (n, o) = (str_at(new_meta, key), str_at(old_meta, key));
        // An update without a uid keeps the stored one (as the real registry does).
        if n != o && !(key == "uid" && n.is_empty()) {
            errs.push(FieldError::invalid(
                &format!("metadata.{key}"),
                q(n),
                "field is immutable",
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::by_name;
    use serde_json::json;

    fn messages(resource: &str, obj: Value) -> Vec<String> {
        object_meta(by_name(resource).unwrap(), &obj)
            .into_iter()
            .map(|e| format!("{}: {}", e.field, e.body))
            .collect()
    }

    #[test]
    fn names_follow_each_resources_rule() {
        assert_eq!(
            messages("services", json!({"metadata": {"name": "1web", "namespace": "d"}})),
            vec!["metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]
        );
        assert_eq!(
            messages("namespaces", json!({"metadata": {"name": "a.b"}})),
            vec!["metadata.name: Invalid value: \"a.b\": must not contain dots"]
        );
        assert!(messages(
            "configmaps",
            json!({"metadata": {"name": "a.b", "namespace": "d"}})
        )
        .is_empty());
        assert_eq!(
            messages("configmaps", json!({"metadata": {"namespace": "d"}})),
            vec!["metadata.name: Required value: name or generateName is required"]
        );
        assert_eq!(
            messages("configmaps", json!({"metadata": {"name": "x"}})),
            vec!["metadata.namespace: Required value"]
        );
        assert_eq!(
            messages(
                "nodes",
                json!({"metadata": {"name": "x", "namespace": "d"}})
            ),
            vec!["metadata.namespace: Forbidden: not allowed on this type"]
        );
        assert!(messages(
            "pods",
            json!({"metadata": {"name": "x", "generateName": "web-", "namespace": "d"}})
        )
        .is_empty());
    }

    #[test]
    fn labels_annotations_and_finalizers() {
        let m = messages(
            "configmaps",
            json!({"metadata": {"name": "x", "namespace": "d", "labels": {"a/b/c": "ok", "k": "bad value"},
                "annotations": {"Example.com/Key": "any value", "-bad": ""},
                "finalizers": ["example.com/f", "bad/f/x", "custom"]}}),
        );
        assert_eq!(m.len(), 5, "{m:?}");
        assert_eq!(
            m[4],
            "metadata.finalizers: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified"
        );
        assert!(m[0].starts_with(
            "metadata.labels: Invalid value: \"a/b/c\": a qualified name must consist of"
        ));
        assert!(m[1].starts_with(
            "metadata.labels: Invalid value: \"bad value\": a valid label must be an empty string"
        ));
        assert!(m[2].starts_with(
            "metadata.annotations: Invalid value: \"-bad\": name part must consist of"
        ));
        assert!(m[3]
            .starts_with("metadata.finalizers: Invalid value: \"bad/f/x\": a qualified name must"));
        assert_eq!(
            messages("configmaps", json!({"metadata": {"name": "x", "namespace": "d",
                "finalizers": ["orphan", "foregroundDeletion"],
                "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p"}]}})),
            vec![
                "metadata.ownerReferences.uid: Invalid value: \"\": must not be empty",
                "metadata.finalizers: Invalid value: []string{\"orphan\", \"foregroundDeletion\"}: finalizer orphan and foregroundDeletion cannot be both set",
            ]
        );
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE);
        assert_eq!(
            messages(
                "configmaps",
                json!({"metadata": {"name": "x", "namespace": "d", "annotations": {"a": big}}})
            ),
            vec!["metadata.annotations: Too long: must have at most 262144 bytes"]
        );
    }

    #[test]
    fn identity_is_immutable() {
        let old = json!({"metadata": {"name": "a", "namespace": "d", "uid": "1"}});
        let new = json!({"metadata": {"name": "a", "namespace": "d", "uid": "2"}});
        let errs = object_meta_update(&new, &old);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.uid");
        assert_eq!(errs[0].body, "Invalid value: \"2\": field is immutable");
        assert!(object_meta_update(&old, &old).is_empty());
    }
}
