//! The desired state of a proxy, free of I/O: Services and Endpoints → the listeners to run (address,
//! port, protocol) with their backends and session affinity, and the difference between two such tables.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::{EndpointPort, Endpoints, Service, ServicePort};

/// Kubernetes' default `sessionAffinityConfig.clientIP.timeoutSeconds` (3 hours).
pub const DEFAULT_AFFINITY_TIMEOUT: Duration = Duration::from_secs(10_800);

/// A transport protocol the proxy forwards (SCTP ports are not proxied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP: one upstream connection per accepted connection.
    Tcp,
    /// UDP: one upstream socket per client address.
    Udp,
}

impl Protocol {
    /// From a Service or Endpoints port's `protocol` (absent means TCP).
    pub fn parse(protocol: Option<&str>) -> Option<Protocol> {
        match protocol.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            _ => None,
        }
    }

    /// Lower-case spelling, as in `80/tcp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// Where one listener listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListenerKey {
    /// The cluster IP, or the node's address for a NodePort.
    pub ip: IpAddr,
    /// The Service port or the NodePort.
    pub port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

impl std::fmt::Display for ListenerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}",
            SocketAddr::new(self.ip, self.port),
            self.protocol.as_str()
        )
    }
}

/// Session affinity of a Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affinity {
    /// Every connection is balanced on its own.
    None,
    /// Connections from one client IP go to the same backend until it has been idle `timeout`.
    ClientIp {
        /// `sessionAffinityConfig.clientIP.timeoutSeconds`.
        timeout: Duration,
    },
}

/// The Service a listener belongs to (what events are about).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// uid, when known.
    pub uid: Option<String>,
}

/// What one listener does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// Its Service.
    pub service: ServiceRef,
    /// The Service port's name (empty for a single unnamed port).
    pub port_name: String,
    /// Whether this is the NodePort listener (rather than the cluster IP one).
    pub node_port: bool,
    /// Ready endpoints, sorted and without duplicates.
    pub backends: Vec<SocketAddr>,
    /// Session affinity.
    pub affinity: Affinity,
}

impl ListenerSpec {
    /// How kube-proxy names a service port: `namespace/name:port` (`namespace/name` when unnamed).
    pub fn describe(&self) -> String {
        let base = format!("{}/{}", self.service.namespace, self.service.name);
        if self.port_name.is_empty() {
            base
        } else {
            format!("{base}:{}", self.port_name)
        }
    }
}

/// Every listener a proxy should run.
pub type Table = BTreeMap<ListenerKey, ListenerSpec>;

/// Builds the table for `services` and `endpoints`; NodePorts listen on `node_ip` (none without it).
///
/// Services of type ExternalName and headless Services (`clusterIP: None`) get no listener. A
/// Service without a selector is proxied like any other, to the Endpoints someone wrote for it.
/// When two Services claim the same address, port and protocol, the first by namespace and name wins.
pub fn build<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    endpoints: impl IntoIterator<Item = &'a Endpoints>,
    node_ip: Option<IpAddr>,
) -> Table {
    let endpoints: HashMap<(&str, &str), &Endpoints> = endpoints
        .into_iter()
        .filter_map(|e| {
            Some((
                (
                    e.metadata.namespace.as_deref()?,
                    e.metadata.name.as_deref()?,
                ),
                e,
            ))
        })
        .collect();
    let mut services: Vec<&Service> = services.into_iter().collect();
    services.sort_by_key(|s| (s.metadata.namespace.clone(), s.metadata.name.clone()));
    let mut table = Table::new();
    for svc in services {
        let (Some(namespace), Some(name)) = (
            svc.metadata.namespace.as_deref(),
            svc.metadata.name.as_deref(),
        ) else {
            continue;
        };
        let Some(spec) = &svc.spec else { continue };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let ips = cluster_ips(svc);
        let node_ports = matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer"));
        let service = ServiceRef {
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid: svc.metadata.uid.clone(),
        };
        let affinity = affinity(svc);
        let ep = endpoints.get(&(namespace, name)).copied();
        for port in spec.ports.iter().flatten() {
            let Some(protocol) = Protocol::parse(port.protocol.as_deref()) else {
                continue;
            };
            let listener = ListenerSpec {
                service: service.clone(),
                port_name: port.name.clone().unwrap_or_default(),
                node_port: false,
                backends: ep.map(|e| backends(e, port, protocol)).unwrap_or_default(),
                affinity,
            };
            let mut add = |ip: IpAddr, number: i32, node_port: bool| {
                let Ok(number) = u16::try_from(number) else {
                    return;
                };
                if number == 0 {
                    return;
                }
                let key = ListenerKey {
                    ip,
                    port: number,
                    protocol,
                };
                table.entry(key).or_insert_with(|| ListenerSpec {
                    node_port,
                    ..listener.clone()
                });
            };
            for ip in &ips {
                add(*ip, port.port, false);
            }
            if let (true, Some(ip), Some(np)) = (node_ports, node_ip, port.node_port) {
                if !ips.is_empty() {
                    add(ip, np, true);
                }
            }
        }
    }
    table
}

/// The Service's cluster IPs (`clusterIPs`, else `clusterIP`); none when headless or unset.
fn cluster_ips(svc: &Service) -> Vec<IpAddr> {
    let Some(spec) = &svc.spec else {
        return Vec::new();
    };
    let listed: Vec<&String> = match &spec.cluster_ips {
        Some(ips) if !ips.is_empty() => ips.iter().collect(),
        _ => spec.cluster_ip.iter().collect(),
    };
    listed.into_iter().filter_map(|s| s.parse().ok()).collect()
}

fn affinity(svc: &Service) -> Affinity {
    let Some(spec) = &svc.spec else {
        return Affinity::None;
    };
    if spec.session_affinity.as_deref() != Some("ClientIP") {
        return Affinity::None;
    }
    let timeout = spec
        .session_affinity_config
        .as_ref()
        .and_then(|c| c.client_ip.as_ref())
        .and_then(|c| c.timeout_seconds)
        .and_then(|t| u64::try_from(t).ok())
        .filter(|t| *t > 0)
        .map_or(DEFAULT_AFFINITY_TIMEOUT, Duration::from_secs);
    Affinity::ClientIp { timeout }
}

/// The ready addresses of `ep` on the endpoint port matching `port` (same name and protocol).
fn backends(ep: &Endpoints, port: &ServicePort, protocol: Protocol) -> Vec<SocketAddr> {
    let name = port.name.as_deref().unwrap_or("");
    let matches = |p: &EndpointPort| {
        p.name.as_deref().unwrap_or("") == name
            && Protocol::parse(p.protocol.as_deref()) == Some(protocol)
    };
    let mut out = Vec::new();
    for subset in ep.subsets.iter().flatten() {
        let Some(number) = subset
            .ports
            .iter()
            .flatten()
            .find(|p| matches(p))
            .and_then(|p| u16::try_from(p.port).ok())
            .filter(|p| *p != 0)
        else {
            continue;
        };
        for addr in subset.addresses.iter().flatten() {
            if let Ok(ip) = addr.ip.parse::<IpAddr>() {
                out.push(SocketAddr::new(ip, number));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// What changes between two tables.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Diff {
    /// Listeners to start (in the new table only).
    pub start: Vec<ListenerKey>,
    /// Listeners to stop (in the old table only).
    pub stop: Vec<ListenerKey>,
    /// Listeners in both whose backends, affinity or Service changed.
    pub update: Vec<ListenerKey>,
}

impl Diff {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.start.is_empty() && self.stop.is_empty() && self.update.is_empty()
    }
}

/// The changes that turn `old` into `new`.
pub fn diff(old: &Table, new: &Table) -> Diff {
    let mut d = Diff::default();
    for (key, spec) in new {
        match old.get(key) {
            None => d.start.push(*key),
            Some(prev) if prev != spec => d.update.push(*key),
            Some(_) => {}
        }
    }
    d.stop = old
        .keys()
        .filter(|k| !new.contains_key(k))
        .copied()
        .collect();
    d
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
