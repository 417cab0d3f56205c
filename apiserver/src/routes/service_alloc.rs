//! Service address allocation against the store: every reserved cluster IP is a key
//! `/registry/serviceips/<ip>` and every node port a key `/registry/servicenodeports/<port>`, created
//! with compare-and-swap, so two services never hold the same value and restarts never hand one out
//! twice. A write reserves first and stores the object second; a failure in between gives the
//! reservations back ([`Reserved::revert`]), and what an update or delete frees is released only once the
//! object is stored ([`Reserved::commit`], [`release`]). The decisions are in [`crate::service_alloc`].

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use rand::Rng;
use serde_json::{json, Value};

use super::AppState;
use crate::error::ApiError;
use crate::service_alloc::{self as plan, PortStep, Want};
use crate::storage::{Revision, Storage, StorageError};

const IP_PREFIX: &str = "/registry/serviceips/";
const PORT_PREFIX: &str = "/registry/servicenodeports/";

/// Random picks tried before listing what is taken (cheap while a range is sparse).
const RANDOM_TRIES: usize = 3;
/// Lost races for one value before giving up with a 500.
const MAX_ROUNDS: usize = 16;

fn ip_key(ip: Ipv4Addr) -> String {
    format!("{IP_PREFIX}{ip}")
}

fn port_key(port: i64) -> String {
    format!("{PORT_PREFIX}{port}")
}

fn owner(service: &Value) -> Vec<u8> {
    let meta = |k: &str| {
        service
            .pointer(&format!("/metadata/{k}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    format!("{}/{}", meta("namespace"), meta("name")).into_bytes()
}

fn name_of(service: &Value) -> String {
    service
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// What one write reserved (given back on failure) and what it frees once stored.
#[derive(Debug, Default)]
#[must_use = "commit or revert the reservations"]
pub struct Reserved {
    ips: Vec<Ipv4Addr>,
    ports: Vec<i64>,
    release_ip: Option<Ipv4Addr>,
    release_ports: Vec<i64>,
}

impl Reserved {
    /// The object was stored: free what the old object held and the new one does not.
    pub async fn commit(self, storage: &dyn Storage) {
        release_values(storage, self.release_ip, &self.release_ports).await;
    }

    /// The object was not stored: give back what this write reserved.
    pub async fn revert(self, storage: &dyn Storage) {
        for ip in self.ips {
            let _ = storage.delete(&ip_key(ip), None).await;
        }
        for port in self.ports {
            let _ = storage.delete(&port_key(port), None).await;
        }
    }
}

async fn release_values(storage: &dyn Storage, ip: Option<Ipv4Addr>, ports: &[i64]) {
    // Best effort: a missing reservation means there is nothing to free.
    if let Some(ip) = ip {
        let _ = storage.delete(&ip_key(ip), None).await;
    }
    for port in ports {
        let _ = storage.delete(&port_key(*port), None).await;
    }
}

/// Reserves the cluster IP and node ports of a new service and fills them in. With `dry_run` nothing is
/// written: requested values are checked (range, taken) and automatic ones are filled with the range's
/// first value, as kube's dry-run allocators do.
pub async fn reserve_create(
    state: &AppState,
    service: &mut Value,
    dry_run: bool,
) -> Result<Reserved, ApiError> {
    let steps = plan::plan_create(service);
    run(state, service, steps, dry_run, Reserved::default()).await
}

/// Reserves what an update adds (a cluster IP for a former ExternalName service, new node ports) and
/// notes what it frees, released by [`Reserved::commit`].
pub async fn reserve_update(
    state: &AppState,
    service: &mut Value,
    old: &Value,
    dry_run: bool,
) -> Result<Reserved, ApiError> {
    let steps = plan::plan_update(service, old);
    let mut reserved = run(state, service, steps, dry_run, Reserved::default()).await?;
    if !dry_run {
        let (ip, ports) = plan::released(service, old);
        reserved.release_ip = ip;
        reserved.release_ports = ports;
    }
    Ok(reserved)
}

async fn run(
    state: &AppState,
    service: &mut Value,
    steps: plan::Plan,
    dry_run: bool,
    mut reserved: Reserved,
) -> Result<Reserved, ApiError> {
    let storage = state.storage();
    let result = reserve_all(state, service, steps, dry_run, &mut reserved).await;
    match result {
        Ok(()) => Ok(reserved),
        Err(err) => {
            reserved.revert(storage).await;
            Err(err)
        }
    }
}

async fn reserve_all(
    state: &AppState,
    service: &mut Value,
    steps: plan::Plan,
    dry_run: bool,
    reserved: &mut Reserved,
) -> Result<(), ApiError> {
    let storage = state.storage();
    let ranges = state.service_ranges();
    let name = name_of(service);
    let who = owner(service);
    if let Some(want) = steps.cluster_ip {
        let ip = match want {
            // kube's dry-run allocator does not look for a free value ("racy and not worth the
            // effort"): it answers with the range's network address.
            Want::Any if dry_run => Some(ranges.cluster_ip.network()),
            Want::Any => {
                let (lo, hi) = ranges.cluster_ip.usable();
                let found = next_free(storage, IP_PREFIX, lo, hi, &who, |v| {
                    ip_key(Ipv4Addr::from(v))
                })
                .await?
                .ok_or_else(plan::ip_range_full)?;
                let ip = Ipv4Addr::from(found);
                reserved.ips.push(ip);
                Some(ip)
            }
            Want::This(text) => {
                let ip: Ipv4Addr = text.parse().map_err(|_| {
                    plan::ip_refused(
                        &name,
                        &text,
                        &plan::ip_not_in_range(&text, &ranges.cluster_ip),
                    )
                })?;
                if !ranges.cluster_ip.contains(ip) {
                    return Err(plan::ip_refused(
                        &name,
                        &text,
                        &plan::ip_not_in_range(&text, &ranges.cluster_ip),
                    ));
                }
                if take(storage, &ip_key(ip), &who, dry_run).await? {
                    if !dry_run {
                        reserved.ips.push(ip);
                    }
                } else {
                    return Err(plan::ip_refused(&name, &text, plan::IP_TAKEN));
                }
                Some(ip)
            }
        };
        if let (Some(ip), Some(spec)) = (ip, service.get_mut("spec")) {
            spec["clusterIP"] = json!(ip.to_string());
            spec["clusterIPs"] = json!([ip.to_string()]);
        }
    }
    for step in steps.ports {
        let (index, port) = match step {
            PortStep::Share { index, from } => {
                let shared = service
                    .pointer(&format!("/spec/ports/{from}/nodePort"))
                    .cloned();
                (index, shared.and_then(|v| v.as_i64()))
            }
            PortStep::Reserve {
                index,
                want: Want::Any,
            } if dry_run => (index, Some(i64::from(ranges.node_port.first))),
            PortStep::Reserve {
                index,
                want: Want::Any,
            } => {
                let range = ranges.node_port;
                let found = next_free(
                    storage,
                    PORT_PREFIX,
                    u32::from(range.first),
                    u32::from(range.last),
                    &who,
                    |v| port_key(i64::from(v)),
                )
                .await?
                .ok_or_else(plan::port_range_full)?;
                reserved.ports.push(i64::from(found));
                (index, Some(i64::from(found)))
            }
            PortStep::Reserve {
                index,
                want: Want::This(port),
            } => {
                if !ranges.node_port.contains(port) {
                    return Err(plan::port_refused(
                        &name,
                        index,
                        port,
                        &plan::port_not_in_range(&ranges.node_port),
                    ));
                }
                if !take(storage, &port_key(port), &who, dry_run).await? {
                    return Err(plan::port_refused(&name, index, port, plan::PORT_TAKEN));
                }
                if !dry_run {
                    reserved.ports.push(port);
                }
                (index, Some(port))
            }
        };
        if let (Some(port), Some(p)) = (port, service.pointer_mut(&format!("/spec/ports/{index}")))
        {
            if let Some(p) = p.as_object_mut() {
                p.insert("nodePort".into(), json!(port));
            }
        }
    }
    if let Some(want) = steps.health_check {
        let port = reserve_health_check(state, want, &who, dry_run, reserved).await?;
        if let Some(spec) = service.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("healthCheckNodePort".into(), json!(port));
        }
    }
    Ok(())
}

/// `allocHealthCheckNodePort`: the requested port or any free one, failures as internal errors.
async fn reserve_health_check(
    state: &AppState,
    want: Want<i64>,
    who: &[u8],
    dry_run: bool,
    reserved: &mut Reserved,
) -> Result<i64, ApiError> {
    let range = state.service_ranges().node_port;
    let storage = state.storage();
    match want {
        Want::Any if dry_run => Ok(i64::from(range.first)),
        Want::Any => {
            let found = next_free(
                storage,
                PORT_PREFIX,
                u32::from(range.first),
                u32::from(range.last),
                who,
                |v| port_key(i64::from(v)),
            )
            .await?
            .ok_or_else(|| plan::health_check_refused(0, "range is full"))?;
            reserved.ports.push(i64::from(found));
            Ok(i64::from(found))
        }
        Want::This(port) => {
            if !range.contains(port) {
                return Err(plan::health_check_refused(
                    port,
                    &plan::port_not_in_range(&range),
                ));
            }
            if !take(storage, &port_key(port), who, dry_run).await? {
                return Err(plan::health_check_refused(port, plan::PORT_TAKEN));
            }
            if !dry_run {
                reserved.ports.push(port);
            }
            Ok(port)
        }
    }
}

/// Reserves `key` (or, dry run, checks it is free); false when it is taken.
async fn take(
    storage: &dyn Storage,
    key: &str,
    who: &[u8],
    dry_run: bool,
) -> Result<bool, ApiError> {
    if dry_run {
        return match storage.get(key).await {
            Ok(found) => Ok(found.is_none()),
            Err(e) => Err(ApiError::internal(e)),
        };
    }
    match storage.create(key, who.to_vec()).await {
        Ok(_) => Ok(true),
        Err(StorageError::AlreadyExists(_)) => Ok(false),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// Reserves a free value in `lo..=hi`: a few random picks, then a scan of what the store says is free
/// (from a random start); `None` when every value is taken.
async fn next_free(
    storage: &dyn Storage,
    prefix: &str,
    lo: u32,
    hi: u32,
    who: &[u8],
    key: impl Fn(u32) -> String,
) -> Result<Option<u32>, ApiError> {
    let picks: Vec<u32> = {
        let mut rng = rand::rng();
        (0..RANDOM_TRIES)
            .map(|_| rng.random_range(lo..=hi))
            .collect()
    };
    for candidate in picks {
        if take(storage, &key(candidate), who, false).await? {
            return Ok(Some(candidate));
        }
    }
    for _ in 0..MAX_ROUNDS {
        let listed = storage
            .list(prefix, None, 0, 0)
            .await
            .map_err(ApiError::internal)?;
        let taken: HashSet<String> = listed.items.into_iter().map(|kv| kv.key).collect();
        let size = u64::from(hi - lo) + 1;
        let start = rand::rng().random_range(0..size);
        let free = (0..size)
            .map(|i| lo + ((start + i) % size) as u32)
            .find(|v| !taken.contains(&key(*v)));
        let Some(candidate) = free else {
            return Ok(None);
        };
        if take(storage, &key(candidate), who, false).await? {
            return Ok(Some(candidate));
        }
        // Lost a race for it: look again.
    }
    Err(ApiError::internal(
        "failed to allocate: too many concurrent allocations, try again",
    ))
}

/// Releases the cluster IP and node ports a deleted (or never stored) service held.
pub async fn release(storage: &dyn Storage, service: &Value) {
    release_values(
        storage,
        plan::held_ip(service),
        &plan::held_node_ports(service),
    )
    .await;
}

/// Reservations no stored service holds, by key, with the revision they were last written at.
async fn orphans(storage: &dyn Storage) -> Result<HashMap<String, Revision>, StorageError> {
    let mut held = HashSet::new();
    for kv in storage.list("/registry/services/", None, 0, 0).await?.items {
        let Ok(service) = serde_json::from_slice::<Value>(&kv.value) else {
            continue;
        };
        held.extend(plan::held_ip(&service).map(ip_key));
        held.extend(plan::held_node_ports(&service).into_iter().map(port_key));
    }
    let mut orphans = HashMap::new();
    for prefix in [IP_PREFIX, PORT_PREFIX] {
        for kv in storage.list(prefix, None, 0, 0).await?.items {
            if !held.contains(&kv.key) {
                orphans.insert(kv.key, kv.mod_revision);
            }
        }
    }
    Ok(orphans)
}

/// Frees reservations left behind by an API server that stopped between reserving and storing a
/// service (kube-apiserver's repair controllers do the same). A reservation counts as leaked only when no
/// service holds it twice, `pause` apart, and it was not rewritten in between, so a create in flight on
/// another API server is never robbed. Returns how many were freed.
pub async fn repair(storage: &dyn Storage, pause: Duration) -> Result<usize, StorageError> {
    let first = orphans(storage).await?;
    if first.is_empty() {
        return Ok(0);
    }
    tokio::time::sleep(pause).await;
    let second = orphans(storage).await?;
    let mut freed = 0;
    for (key, revision) in second {
        if first.get(&key) != Some(&revision) {
            continue;
        }
        match storage.delete(&key, Some(revision)).await {
            Ok(_) => {
                tracing::info!(%key, "released a service allocation no service holds");
                freed += 1;
            }
            Err(StorageError::NotFound(_)) | Err(StorageError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(freed)
}
