//! Service validation (`ValidateService`, cluster IP fields) and the update rules for allocated IPs.

use super::meta::labels;
use super::names::{dns1123_label, dns1123_subdomain, port_name, port_num};
use super::{arr_at, obj_at, q, str_at, FieldError};
use serde_json::Value;
use std::collections::HashSet;

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const AFFINITIES: &[&str] = &["ClientIP", "None"];
const TRAFFIC_POLICIES: &[&str] = &["Cluster", "Local"];
const IP_FAMILIES: &[&str] = &["IPv4", "IPv6"];
const IP_FAMILY_POLICIES: &[&str] = &["PreferDualStack", "RequireDualStack", "SingleStack"];
const INVALID_IP: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

/// The strings of the array at `v[key]`.
fn strings<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    arr_at(v, key)
        .iter()
        .map(|s| s.as_str().unwrap_or_default())
        .collect()
}

/// Go's `%#v` of a `[]string`.
fn go_strings(list: &[&str]) -> String {
    if list.is_empty() {
        return "[]string(nil)".to_string();
    }
    let quoted: Vec<String> = list.iter().map(|s| q(s)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

fn is_headless(spec: &Value) -> bool {
    strings(spec, "clusterIPs") == ["None"] || str_at(spec, "clusterIP") == "None"
}

/// `ValidateService`'s spec part, in the real server's order.
pub(crate) fn service(object: &Value) -> Vec<FieldError> {
    let spec = object.get("spec").unwrap_or(&Value::Null);
    let mut errs = Vec::new();
    let ty = str_at(spec, "type");
    let headless = is_headless(spec);
    let ports = arr_at(spec, "ports");
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    match ty {
        "LoadBalancer" | "NodePort" if headless => errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            q("None"),
            &format!("may not be set to 'None' for {ty} services"),
        )),
        "ExternalName" => {
            if !strings(spec, "clusterIPs").is_empty() || !str_at(spec, "clusterIP").is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
            if !strings(spec, "ipFamilies").is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                ));
            }
            if spec.get("ipFamilyPolicy").is_some_and(|p| !p.is_null()) {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                ));
            }
            let external = str_at(spec, "externalName");
            let cname = external.strip_suffix('.').unwrap_or(external);
            if cname.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            }
            for msg in dns1123_subdomain(cname)
                .into_iter()
                .filter(|_| !cname.is_empty())
            {
                errs.push(FieldError::invalid("spec.externalName", q(cname), &msg));
            }
        }
        _ => {}
    }
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        service_port(
            port,
            ports.len() > 1,
            &mut names,
            &format!("spec.ports[{i}]"),
            &mut errs,
        );
    }
    if spec.get("selector").is_some_and(Value::is_object) {
        errs.extend(labels(obj_at(spec, "selector"), "spec.selector"));
    }
    let affinity = str_at(spec, "sessionAffinity");
    if affinity.is_empty() {
        errs.push(FieldError::required("spec.sessionAffinity", ""));
    } else if !AFFINITIES.contains(&affinity) {
        errs.push(FieldError::not_supported(
            "spec.sessionAffinity",
            affinity,
            AFFINITIES,
        ));
    }
    if affinity == "None"
        && spec
            .get("sessionAffinityConfig")
            .is_some_and(|c| !c.is_null())
    {
        errs.push(FieldError::forbidden(
            "spec.sessionAffinityConfig",
            "must not be set when session affinity is None",
        ));
    }
    cluster_ips(spec, ty, &mut errs);
    for (i, ip) in strings(spec, "externalIPs").iter().enumerate() {
        if !is_ip(ip) {
            errs.push(FieldError::invalid(
                &format!("spec.externalIPs[{i}]"),
                q(ip),
                INVALID_IP,
            ));
        }
    }
    if ty.is_empty() {
        errs.push(FieldError::required("spec.type", ""));
    } else if !SERVICE_TYPES.contains(&ty) {
        errs.push(FieldError::not_supported("spec.type", ty, SERVICE_TYPES));
    }
    let node_port = |p: &Value| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
    if ty == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if node_port(port) != 0 {
                errs.push(FieldError::forbidden(
                    &format!("spec.ports[{i}].nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let np = node_port(port);
        if np != 0 && !node_ports.insert((str_at(port, "protocol"), np)) {
            errs.push(FieldError::duplicate(
                &format!("spec.ports[{i}].nodePort"),
                np,
            ));
        }
    }
    let mut seen = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let protocol = str_at(port, "protocol");
        let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
        if !seen.insert((protocol, number)) {
            errs.push(FieldError::duplicate(
                &format!("spec.ports[{i}]"),
                format!(
                    "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{number}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                    q(protocol)
                ),
            ));
        }
    }
    let allocate_set = spec
        .get("allocateLoadBalancerNodePorts")
        .is_some_and(|v| !v.is_null());
    if allocate_set && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if ty == "LoadBalancer" && !allocate_set {
        // The real server reports this one without the `spec.` prefix.
        errs.push(FieldError::required("allocateLoadBalancerNodePorts", ""));
    }
    traffic_policies(spec, ty, &mut errs);
    errs
}

fn traffic_policies(spec: &Value, ty: &str, errs: &mut Vec<FieldError>) {
    let external_access = ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && !arr_at(spec, "externalIPs").is_empty());
    let etp = str_at(spec, "externalTrafficPolicy");
    if !external_access {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                "spec.externalTrafficPolicy",
                q(etp),
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required("spec.externalTrafficPolicy", ""));
    } else if !TRAFFIC_POLICIES.contains(&etp) {
        errs.push(FieldError::not_supported(
            "spec.externalTrafficPolicy",
            etp,
            TRAFFIC_POLICIES,
        ));
    }
    match spec.get("internalTrafficPolicy").and_then(Value::as_str) {
        None if matches!(ty, "ClusterIP" | "NodePort" | "LoadBalancer") => {
            errs.push(FieldError::required("spec.internalTrafficPolicy", ""))
        }
        Some(itp) if !TRAFFIC_POLICIES.contains(&itp) => errs.push(FieldError::not_supported(
            "spec.internalTrafficPolicy",
            itp,
            TRAFFIC_POLICIES,
        )),
        _ => {}
    }
}

/// `ValidateServiceClusterIPsRelatedFields`.
fn cluster_ips(spec: &Value, ty: &str, errs: &mut Vec<FieldError>) {
    if ty == "ExternalName" {
        return;
    }
    let ip = str_at(spec, "clusterIP");
    let ips = strings(spec, "clusterIPs");
    if !ip.is_empty() {
        match ips.first() {
            None => errs.push(FieldError::required("spec.clusterIPs", "")),
            Some(first) if *first != ip => errs.push(FieldError::invalid(
                "spec.clusterIPs",
                go_strings(&ips),
                "first value must match `clusterIP`",
            )),
            _ => {}
        }
    } else if !ips.is_empty() {
        errs.push(FieldError::invalid(
            "spec.clusterIPs",
            go_strings(&ips),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let mut seen = HashSet::new();
    for (i, family) in strings(spec, "ipFamilies").iter().enumerate() {
        let field = format!("spec.ipFamilies[{i}]");
        if !IP_FAMILIES.contains(family) {
            errs.push(FieldError::not_supported(&field, family, IP_FAMILIES));
        }
        if !seen.insert(*family) {
            errs.push(FieldError::duplicate(&field, q(family)));
        }
    }
    if let Some(policy) = spec.get("ipFamilyPolicy").and_then(Value::as_str) {
        if !IP_FAMILY_POLICIES.contains(&policy) {
            errs.push(FieldError::not_supported(
                "spec.ipFamilyPolicy",
                policy,
                IP_FAMILY_POLICIES,
            ));
        }
    }
    for (i, candidate) in ips.iter().enumerate() {
        if i == 0 && *candidate == "None" {
            if ips.len() > 1 {
                errs.push(FieldError::invalid(
                    "spec.clusterIPs",
                    go_strings(&ips),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        if !is_ip(candidate) {
            errs.push(FieldError::invalid(
                &format!("spec.clusterIPs[{i}]"),
                q(candidate),
                INVALID_IP,
            ));
        }
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid(
            "spec.clusterIPs",
            go_strings(&ips),
            "may only hold up to 2 values",
        ));
    }
}

fn service_port(
    port: &Value,
    require_name: bool,
    names: &mut HashSet<String>,
    base: &str,
    errs: &mut Vec<FieldError>,
) {
    let name = str_at(port, "name");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(&format!("{base}.name"), ""));
    } else if !name.is_empty() {
        for msg in dns1123_label(name) {
            errs.push(FieldError::invalid(&format!("{base}.name"), q(name), &msg));
        }
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(&format!("{base}.name"), q(name)));
        }
    }
    let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
    for msg in port_num(number) {
        errs.push(FieldError::invalid(&format!("{base}.port"), number, &msg));
    }
    let protocol = str_at(port, "protocol");
    if protocol.is_empty() {
        errs.push(FieldError::required(&format!("{base}.protocol"), ""));
    } else if !PROTOCOLS.contains(&protocol) {
        errs.push(FieldError::not_supported(
            &format!("{base}.protocol"),
            protocol,
            PROTOCOLS,
        ));
    }
    match port.get("targetPort") {
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(0);
            for msg in port_num(n) {
                errs.push(FieldError::invalid(&format!("{base}.targetPort"), n, &msg));
            }
        }
        Some(Value::String(s)) => {
            for msg in port_name(s) {
                errs.push(FieldError::invalid(
                    &format!("{base}.targetPort"),
                    q(s),
                    &msg,
                ));
            }
        }
        _ => {}
    }
}

/// `validateUpgradeDowngradeClusterIPs`: allocated cluster IPs may not change (ExternalName excepted).
pub(crate) fn service_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let (new_spec, old_spec) = (&new["spec"], &old["spec"]);
    let mut errs = Vec::new();
    if str_at(new_spec, "type") == "ExternalName" || str_at(old_spec, "type") == "ExternalName" {
        return errs;
    }
    if is_headless(new_spec) && is_headless(old_spec) {
        return errs;
    }
    let (new_ips, old_ips) = (
        strings(new_spec, "clusterIPs"),
        strings(old_spec, "clusterIPs"),
    );
    let changed = |i: usize| {
        FieldError::invalid(
            &format!("spec.clusterIPs[{i}]"),
            go_strings(&new_ips),
            "may not change once set",
        )
    };
    if new_ips.len() == old_ips.len() {
        for (i, ip) in old_ips.iter().enumerate() {
            if new_ips.get(i) != Some(ip) {
                errs.push(changed(i));
            }
        }
    } else if old_ips.len() > new_ips.len() {
        if new_ips.is_empty() {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                go_strings(&new_ips),
                "primary clusterIP can not be unset",
            ));
        } else if new_ips[0] != old_ips[0] {
            errs.push(changed(0));
        }
    } else if !old_ips.is_empty() && new_ips.first() != old_ips.first() {
        errs.push(changed(0));
    }
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

    fn svc(spec: Value) -> Value {
        let mut s = json!({"type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster"});
        if let (Some(base), Some(extra)) = (s.as_object_mut(), spec.as_object()) {
            base.extend(extra.clone());
        }
        json!({"metadata": {"name": "s"}, "spec": s})
    }

    #[test]
    fn ports() {
        assert!(service(&svc(
            json!({"ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}]})
        ))
        .is_empty());
        assert_eq!(
            msgs(service(&svc(json!({})))),
            vec!["spec.ports: Required value"]
        );
        assert!(service(&svc(json!({"clusterIP": "None", "clusterIPs": ["None"]}))).is_empty());
        assert_eq!(
            msgs(service(&svc(
                json!({"ports": [{"port": 0, "protocol": "TCP"}, {"port": 81, "protocol": "TCP", "name": "b"}]})
            ))),
            vec![
                "spec.ports[0].name: Required value",
                "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            ]
        );
        assert_eq!(
            msgs(service(&svc(
                json!({"ports": [{"port": 1, "protocol": "TCP", "nodePort": 30000}]})
            ))),
            vec!["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
        );
        assert_eq!(
            msgs(service(&svc(json!({"ports": [{"port": 1, "protocol": "TCP", "name": "a"}, {"port": 1, "protocol": "TCP", "name": "b"}]})))),
            vec!["spec.ports[1]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:1, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}"]
        );
    }

    #[test]
    fn types_and_policies() {
        assert_eq!(
            msgs(service(&svc(json!({"type": "Fancy", "ports": [{"port": 1, "protocol": "TCP"}]})))),
            vec!["spec.type: Unsupported value: \"Fancy\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""]
        );
        assert_eq!(
            msgs(service(&svc(
                json!({"type": "ExternalName", "internalTrafficPolicy": null})
            ))),
            vec!["spec.externalName: Required value"]
        );
        assert!(service(&svc(
            json!({"type": "ExternalName", "externalName": "db.example.com."})
        ))
        .is_empty());
        assert_eq!(
            msgs(service(&svc(
                json!({"type": "NodePort", "ports": [{"port": 1, "protocol": "TCP"}]})
            ))),
            vec!["spec.externalTrafficPolicy: Required value"]
        );
        assert_eq!(
            msgs(service(&svc(json!({"externalTrafficPolicy": "Local", "ports": [{"port": 1, "protocol": "TCP"}]})))),
            vec!["spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services"]
        );
    }

    #[test]
    fn cluster_ip_fields() {
        let ok = svc(
            json!({"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "ports": [{"port": 1, "protocol": "TCP"}]}),
        );
        assert!(service(&ok).is_empty());
        assert_eq!(
            msgs(service(&svc(json!({"clusterIP": "x", "clusterIPs": ["x"], "ports": [{"port": 1, "protocol": "TCP"}]})))),
            vec!["spec.clusterIPs[0]: Invalid value: \"x\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
        );
        assert_eq!(
            msgs(service(&svc(json!({"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.2"], "ports": [{"port": 1, "protocol": "TCP"}]})))),
            vec!["spec.clusterIPs: Invalid value: []string{\"10.0.0.2\"}: first value must match `clusterIP`"]
        );
    }

    #[test]
    fn cluster_ip_is_immutable() {
        let old = svc(json!({"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"]}));
        let new = svc(json!({"clusterIP": "10.0.0.2", "clusterIPs": ["10.0.0.2"]}));
        assert_eq!(
            msgs(service_update(&new, &old)),
            vec!["spec.clusterIPs[0]: Invalid value: []string{\"10.0.0.2\"}: may not change once set"]
        );
        assert_eq!(
            msgs(service_update(&svc(json!({})), &old)),
            vec!["spec.clusterIPs[0]: Invalid value: []string(nil): primary clusterIP can not be unset"]
        );
        assert!(service_update(&old, &old).is_empty());
    }
}
