//! Weight and quota calls (UPDATE_WEIGHTS, GET_QUOTA, SET_QUOTA, UPDATE_QUOTA) and
//! RESERVE_RESOURCES / UNRESERVE_RESOURCES.

use super::{bad, invalid, live_tasks, missing, put_list, scalar_resource, OperatorReply, Reply};
use crate::master::proto::id_of;
use crate::master::{state, Master};
use crate::quota::Quota;
use crate::resources::{ReservationKind, Resources, Scalar, Value};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;

/// Mesos' `roles::validate`.
pub(super) fn validate_role(role: &str) -> Result<(), String> {
    if role == "*" {
        return Ok(());
    }
    if role.starts_with('/') {
        return Err(format!("Role '{role}' cannot start with a slash"));
    }
    if role.ends_with('/') {
        return Err(format!("Role '{role}' cannot end with a slash"));
    }
    if role.contains("//") {
        return Err(format!("Role '{role}' cannot contain two adjacent slashes"));
    }
    if role.is_empty() {
        return Err("Role names cannot be the empty string".into());
    }
    for c in role.split('/') {
        if matches!(c, "." | ".." | "*") {
            return Err(format!("Role '{role}' cannot include '{c}' as a component"));
        }
        if c.starts_with('-') {
            return Err(format!(
                "Role component '{c}' is invalid because it starts with a dash"
            ));
        }
        if c.chars().any(|ch| ch.is_whitespace() || ch == '\u{8}') {
            return Err(format!(
                "Role component '{c}' is invalid because it contains backspace or whitespace"
            ));
        }
    }
    Ok(())
}

pub(super) fn update_weights(m: &mut Master, body: &Json) -> Reply {
    let prefix = "Failed to validate update weights request JSON";
    let mut updates = Vec::new();
    for w in body
        .get("weight_infos")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let weight = w
            .get("weight")
            .and_then(Json::as_f64)
            .ok_or_else(|| missing("update_weights.weight_infos[].weight"))?;
        let role = w
            .get("role")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string();
        validate_role(&role).map_err(|e| bad(format!("{prefix}: Invalid role '{role}': {e}")))?;
        if weight <= 0.0 {
            return Err(bad(format!(
                "{prefix} for role '{role}': Invalid weight '{weight}': Weights must be positive"
            )));
        }
        updates.push((role, weight));
    }
    m.update_weights(updates);
    Ok(OperatorReply::Ok)
}

/// Mesos' `stringify(ResourceQuantities)`.
pub(super) fn quantities_string(q: &BTreeMap<String, Scalar>) -> String {
    if q.is_empty() {
        return "{}".into();
    }
    let parts: Vec<String> = q.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    parts.join("; ")
}

pub(super) fn scalar_map(q: &BTreeMap<String, Scalar>) -> Json {
    Json::Object(
        q.iter()
            .map(|(k, v)| (k.clone(), json!({"value": v.as_f64()})))
            .collect(),
    )
}

pub(super) fn get_quota(m: &Master) -> Json {
    let mut status = json!({});
    let infos = m
        .quotas()
        .iter()
        .map(|(role, q)| {
            let mut info = json!({ "role": role });
            put_list(
                &mut info,
                "guarantee",
                q.guarantee
                    .iter()
                    .map(|(n, v)| scalar_resource(n, *v))
                    .collect(),
            );
            info
        })
        .collect();
    put_list(&mut status, "infos", infos);
    let configs = m
        .quotas()
        .iter()
        .map(|(role, q)| {
            let mut c = json!({ "role": role });
            if !q.guarantee.is_empty() {
                c["guarantees"] = scalar_map(&q.guarantee);
            }
            if !q.limit.is_empty() {
                c["limits"] = scalar_map(&q.limit);
            }
            c
        })
        .collect();
    put_list(&mut status, "configs", configs);
    json!({ "status": status })
}

/// Scalar capacity of all registered agents.
pub(super) fn cluster_capacity(m: &Master) -> BTreeMap<String, Scalar> {
    let mut cap: BTreeMap<String, Scalar> = BTreeMap::new();
    for a in m.agents().filter(|a| state::is_registered(a)) {
        for r in a.total.iter() {
            if let Value::Scalar(s) = r.value {
                *cap.entry(r.name.clone()).or_default() += s;
            }
        }
    }
    cap
}

/// Sum of guarantees over `quotas`; the first name `capacity` cannot cover, if any.
pub(super) fn overcommitted(
    quotas: &BTreeMap<String, Quota>,
    capacity: &BTreeMap<String, Scalar>,
) -> Option<BTreeMap<String, Scalar>> {
    let mut total: BTreeMap<String, Scalar> = BTreeMap::new();
    for q in quotas.values() {
        for (n, v) in &q.guarantee {
            *total.entry(n.clone()).or_default() += *v;
        }
    }
    total
        .iter()
        .any(|(n, v)| capacity.get(n).copied().unwrap_or_default() < *v)
        .then_some(total)
}

pub(super) fn set_quota(m: &mut Master, body: &Json) -> Reply {
    let req = body
        .get("quota_request")
        .ok_or_else(|| missing("set_quota.quota_request"))?;
    let fail = |msg: String| bad(format!("Failed to validate set quota request: {msg}"));
    let list = req.get("guarantee").cloned().unwrap_or(json!([]));
    let parsed = Resources::from_json(&list)
        .map_err(|e| fail(format!("QuotaInfo with invalid resource: {e}")))?;
    let role = req
        .get("role")
        .and_then(Json::as_str)
        .ok_or_else(|| fail("QuotaInfo must specify a role".into()))?;
    validate_role(role).map_err(|e| fail(format!("QuotaInfo with invalid role: {e}")))?;
    if parsed.is_empty() {
        return Err(fail("QuotaInfo with empty 'guarantee'".into()));
    }
    let mut guarantee = BTreeMap::new();
    for r in list.as_array().into_iter().flatten() {
        let name = r.get("name").and_then(Json::as_str).unwrap_or("");
        if r.get("reservations")
            .is_some_and(|x| x.as_array().is_some_and(|a| !a.is_empty()))
            || r.get("role")
                .and_then(Json::as_str)
                .is_some_and(|x| x != "*")
        {
            return Err(fail(
                "QuotaInfo must not contain any ReservationInfo".into(),
            ));
        }
        if r.get("disk").is_some() {
            return Err(fail("QuotaInfo must not contain DiskInfo".into()));
        }
        if r.get("revocable").is_some() {
            return Err(fail("QuotaInfo must not contain RevocableInfo".into()));
        }
        if r.get("type").and_then(Json::as_str) != Some("SCALAR") {
            return Err(fail(
                "QuotaInfo must not include non-scalar resources".into(),
            ));
        }
        if guarantee.contains_key(name) {
            return Err(fail(format!(
                "QuotaInfo contains duplicate resource name '{name}'"
            )));
        }
        guarantee.insert(name.to_string(), parsed.scalar(name));
    }
    if m.quotas().contains_key(role) {
        return Err(fail(format!(
            "Cannot set quota for role '{role}' which already has quota"
        )));
    }
    if role.contains('/') {
        return Err(bad(format!(
            "Setting quota on nested role '{role}' is not supported yet"
        )));
    }
    let quota = Quota {
        limit: guarantee.clone(),
        guarantee,
    };
    if !req.get("force").and_then(Json::as_bool).unwrap_or(false) {
        let mut all = m.quotas().clone();
        all.insert(role.to_string(), quota.clone());
        let cap = cluster_capacity(m);
        if let Some(total) = overcommitted(&all, &cap) {
            return Err((
                409,
                format!(
                    "Quota guarantees overcommit the cluster (use 'force' to bypass this check): \
                     Total quota guarantees '{}' exceed cluster capacity '{}'",
                    quantities_string(&total),
                    quantities_string(&cap)
                ),
            ));
        }
    }
    m.set_quota(role, Some(quota));
    Ok(OperatorReply::Ok)
}

/// A `map<string, Value.Scalar>` from JSON.
pub(super) fn read_scalar_map(j: Option<&Json>) -> Result<BTreeMap<String, Scalar>, String> {
    let mut out = BTreeMap::new();
    for (k, v) in j.and_then(Json::as_object).into_iter().flatten() {
        let f = v
            .get("value")
            .and_then(Json::as_f64)
            .ok_or_else(|| format!("Missing required fields: value in '{k}'"))?;
        let s = Scalar::from_f64(f)
            .filter(|s| *s >= Scalar::ZERO)
            .ok_or_else(|| format!("{{'{k}': {f}}} is invalid: values must be non-negative"))?;
        out.insert(k.clone(), s);
    }
    Ok(out)
}

pub(super) fn update_quota(m: &mut Master, body: &Json) -> Reply {
    let fail = |msg: String| bad(format!("Invalid QuotaConfig: {msg}"));
    let mut updates = Vec::new();
    for c in body
        .get("quota_configs")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let role = c
            .get("role")
            .and_then(Json::as_str)
            .ok_or_else(|| fail("'QuotaConfig.role' must be set".into()))?;
        if role.contains('/') {
            return Err(bad(format!(
                "Updating quota on nested role '{role}' is not supported yet"
            )));
        }
        validate_role(role).map_err(|e| fail(format!("Invalid 'QuotaConfig.role': {e}")))?;
        let guarantee = read_scalar_map(c.get("guarantees"))
            .map_err(|e| fail(format!("Invalid 'QuotaConfig.guarantees': {e}")))?;
        let limit = read_scalar_map(c.get("limits"))
            .map_err(|e| fail(format!("Invalid 'QuotaConfig.limits': {e}")))?;
        if guarantee
            .iter()
            .any(|(n, g)| limit.get(n).is_some_and(|l| l < g))
        {
            return Err(fail(format!(
                "'QuotaConfig.guarantees' {{{}}} is not contained within the 'QuotaConfig.limits' {{{}}}",
                quantities_string(&guarantee),
                quantities_string(&limit)
            )));
        }
        updates.push((role.to_string(), Quota { guarantee, limit }));
    }
    if !body.get("force").and_then(Json::as_bool).unwrap_or(false) {
        let mut all = m.quotas().clone();
        all.extend(updates.iter().cloned());
        let cap = cluster_capacity(m);
        if let Some(total) = overcommitted(&all, &cap) {
            return Err(fail(format!(
                "total quota guarantees '{}' exceed cluster capacity '{}' (use 'force' flag to bypass this check)",
                quantities_string(&total),
                quantities_string(&cap)
            )));
        }
    }
    for (role, q) in updates {
        let empty = q.guarantee.is_empty() && q.limit.is_empty();
        m.set_quota(&role, (!empty).then_some(q));
    }
    Ok(OperatorReply::Ok)
}

/// RESERVE_RESOURCES / UNRESERVE_RESOURCES: offers on the agent are rescinded until the
/// unallocated pool covers the operation (as Mesos' `_operation` does), then it is applied.
pub(super) fn reservation(m: &mut Master, body: &Json, field: &str, reserve: bool) -> Reply {
    let aid = id_of(body, "agent_id").ok_or_else(|| missing(&format!("{field}.agent_id")))?;
    let list = body.get("resources").cloned().unwrap_or(json!([]));
    let res = Resources::from_json(&list).map_err(|e| invalid(&e.to_string()))?;
    let agent = m
        .agents
        .get(&aid)
        .filter(|a| state::is_registered(a))
        .ok_or_else(|| bad("No agent found with specified ID"))?;
    let prefix = if reserve {
        format!(
            "Invalid RESERVE operation on agent {aid} at {} ({}): ",
            state::agent_pid(agent),
            agent.hostname
        )
    } else {
        "Invalid UNRESERVE operation: ".to_string()
    };
    for r in res.iter() {
        if r.reservations.last().map(|x| x.kind) != Some(ReservationKind::Dynamic) {
            return Err(bad(format!(
                "{prefix}Resource {r} is not dynamically reserved"
            )));
        }
    }
    if reserve
        && list
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r.get("allocation_info").is_some())
    {
        return Err(bad(format!(
            "{prefix}A reserve operation was attempted with an allocated resource, but the \
             operator API only allows reservations to be made to unallocated resources"
        )));
    }
    let consumed: Resources = if reserve {
        res.iter()
            .map(|r| {
                let mut r = r.clone();
                r.reservations.pop();
                r
            })
            .collect()
    } else {
        res.clone()
    };
    let mut available = agent.total.clone();
    for t in live_tasks(m, |t| t.agent == aid) {
        available.subtract(&t.resources);
    }
    let offers: Vec<(String, Resources)> = m
        .offers()
        .filter(|o| o.agent == aid)
        .map(|o| (o.id.clone(), o.resources.clone()))
        .collect();
    for (_, r) in &offers {
        available.subtract(r);
    }
    for (oid, r) in offers {
        if available.contains(&consumed) {
            break;
        }
        let mut rest = consumed.clone();
        rest.subtract(&r);
        if rest != consumed {
            m.remove_offers(|o| o.id == oid, true);
            available.add(&r);
        }
    }
    if !available.contains(&consumed) || !m.apply_reservation(&aid, &list, reserve, None) {
        return Err((409, format!("{available} does not contain {consumed}")));
    }
    Ok(OperatorReply::Accepted)
}
