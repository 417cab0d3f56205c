//! Service cluster IP allocation from a loopback block (127.96.0.0/12 by default, so one machine routes
//! every address without privileges). Each allocated address is a key in the store created with
//! compare-and-swap, so two services never get the same address and restarts never hand one out twice.
//! The configurable range, NodePorts and the proxy belong to the services issue.

use std::net::Ipv4Addr;

use rand::Rng;
use serde_json::{json, Value};

use crate::error::{ApiError, Cause};
use crate::storage::{Storage, StorageError};

/// The default service cluster IP range.
pub const DEFAULT_RANGE: (Ipv4Addr, u8) = (Ipv4Addr::new(127, 96, 0, 0), 12);

/// Random picks tried before scanning for a free address.
const RANDOM_TRIES: usize = 32;

fn key(ip: Ipv4Addr) -> String {
    format!("/registry/serviceips/{ip}")
}

fn range_text() -> String {
    format!("{}/{}", DEFAULT_RANGE.0, DEFAULT_RANGE.1)
}

/// The usable addresses: the block minus its network address and its first host (kube keeps that one for
/// the `kubernetes` service) and its broadcast address.
fn bounds() -> (u32, u32) {
    let base = u32::from(DEFAULT_RANGE.0);
    let size = 1u32 << (32 - DEFAULT_RANGE.1);
    (base + 2, base + size - 2)
}

fn in_range(ip: Ipv4Addr) -> bool {
    let (lo, hi) = bounds();
    (lo..=hi).contains(&u32::from(ip))
}

fn invalid(service: &str, ip: &str, why: String) -> ApiError {
    ApiError::invalid(
        "Service",
        service,
        vec![Cause {
            reason: "FieldValueInvalid".into(),
            message: format!(
                "Invalid value: []string{{\"{ip}\"}}: failed to allocate IP {ip}: {why}"
            ),
            field: "spec.clusterIPs".into(),
        }],
    )
}

/// Allocates the cluster IP of a new service in place (`spec.clusterIP`/`clusterIPs`): a requested address
/// is reserved or refused with 422; `None` (headless) and ExternalName services get nothing.
pub async fn allocate(storage: &dyn Storage, service: &mut Value) -> Result<(), ApiError> {
    let name = service
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if service.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName") {
        return Ok(());
    }
    let requested = service
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if requested == "None" {
        return Ok(());
    }
    let ip = if requested.is_empty() {
        allocate_any(storage, &name).await?
    } else {
        let ip: Ipv4Addr = requested
            .parse()
            .map_err(|_| invalid(&name, &requested, "not a valid IPv4 address".into()))?;
        if !in_range(ip) {
            return Err(invalid(
                &name,
                &requested,
                format!(
                    "provided IP is not in the valid range. The range of valid IPs is {}",
                    range_text()
                ),
            ));
        }
        match storage.create(&key(ip), name.clone().into_bytes()).await {
            Ok(_) => ip,
            Err(StorageError::AlreadyExists(_)) => {
                return Err(invalid(
                    &name,
                    &requested,
                    "provided IP is already allocated".into(),
                ))
            }
            Err(e) => return Err(ApiError::internal(e)),
        }
    };
    service["spec"]["clusterIP"] = json!(ip.to_string());
    service["spec"]["clusterIPs"] = json!([ip.to_string()]);
    Ok(())
}

async fn allocate_any(storage: &dyn Storage, service: &str) -> Result<Ipv4Addr, ApiError> {
    let (lo, hi) = bounds();
    let mut candidates: Vec<u32> = {
        let mut rng = rand::rng();
        (0..RANDOM_TRIES)
            .map(|_| rng.random_range(lo..=hi))
            .collect()
    };
    // After the random tries, walk the range once so a nearly full range still finds its last addresses.
    let mut scan = lo..=hi;
    loop {
        let next = match candidates.pop() {
            Some(c) => Some(c),
            None => scan.next(),
        };
        let Some(candidate) = next else {
            return Err(ApiError::internal(format!(
                "failed to allocate a serviceIP: range is full ({})",
                range_text()
            )));
        };
        let ip = Ipv4Addr::from(candidate);
        match storage.create(&key(ip), service.as_bytes().to_vec()).await {
            Ok(_) => return Ok(ip),
            Err(StorageError::AlreadyExists(_)) => continue,
            Err(e) => return Err(ApiError::internal(e)),
        }
    }
}

/// Releases the cluster IP held by a deleted (or never stored) service.
pub async fn release(storage: &dyn Storage, service: &Value) {
    let ip = service
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Ipv4Addr>().ok());
    if let Some(ip) = ip {
        // Best effort: a missing reservation means there is nothing to free.
        let _ = storage.delete(&key(ip), None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_is_loopback_and_skips_reserved_addresses() {
        let (lo, hi) = bounds();
        assert_eq!(Ipv4Addr::from(lo), Ipv4Addr::new(127, 96, 0, 2));
        assert_eq!(Ipv4Addr::from(hi), Ipv4Addr::new(127, 111, 255, 254));
        assert!(Ipv4Addr::from(lo).is_loopback() && Ipv4Addr::from(hi).is_loopback());
        assert!(!in_range(Ipv4Addr::new(10, 0, 0, 1)));
    }
}
