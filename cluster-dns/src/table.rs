//! The record table: every name the cluster DNS answers for, built from Services and Endpoints as the
//! Kubernetes DNS specification (github.com/kubernetes/dns, docs/specification.md, schema 1.0.1)
//! describes them. Pure: no I/O, no DNS wire types.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, Service};

/// The schema version published in `dns-version.<zone>. TXT`.
pub const SCHEMA_VERSION: &str = "1.0.1";
/// SRV priority of every record (not prescribed by the specification; CoreDNS's value).
pub const SRV_PRIORITY: u16 = 0;
/// SRV weight of every record.
pub const SRV_WEIGHT: u16 = 100;

/// One record's data. Names are lowercase, absolute, without the trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Data {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// A service location.
    Srv {
        /// RFC 2782 priority.
        priority: u16,
        /// RFC 2782 weight.
        weight: u16,
        /// The port.
        port: u16,
        /// The target host name.
        target: String,
    },
    /// An alias (ExternalName services).
    Cname(String),
    /// Text (the schema version).
    Txt(String),
    /// A reverse mapping (cluster IPs).
    Ptr(String),
}

/// The record types a question can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `A`.
    A,
    /// `SRV`.
    Srv,
    /// `CNAME`.
    Cname,
    /// `TXT`.
    Txt,
    /// `PTR`.
    Ptr,
    /// `ANY`: every record of the name.
    Any,
    /// Anything else (AAAA, MX...): the name may exist, but has no such records.
    Other,
}

impl Data {
    fn kind(&self) -> Kind {
        match self {
            Data::A(_) => Kind::A,
            Data::Srv { .. } => Kind::Srv,
            Data::Cname(_) => Kind::Cname,
            Data::Txt(_) => Kind::Txt,
            Data::Ptr(_) => Kind::Ptr,
        }
    }
}

/// What a question gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The name's records of the asked type (for an alias, its CNAME).
    Found(Vec<Data>),
    /// The name exists but has no records of that type (NOERROR, empty answer).
    NoData,
    /// No such name in a zone we serve (NXDOMAIN).
    NxDomain,
    /// Not a name we serve (no upstream here: REFUSED).
    NotOurs,
}

/// Every record of the cluster's zone, and the reverse names of its cluster IPs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    domain: String,
    records: BTreeMap<String, BTreeSet<Data>>,
    /// Names that own no records but have descendants that do (`svc.<zone>`, `<ns>.svc.<zone>`, ...).
    interior: BTreeSet<String>,
}

/// Lowercase, without a trailing dot.
pub fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The reverse name of an address: `d.c.b.a.in-addr.arpa`.
fn reverse(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("{d}.{c}.{b}.{a}.in-addr.arpa")
}

/// An endpoint's _hostname_: its `hostname`, else its pod's name (every Kumos pod shares 127.0.0.1, so
/// the address cannot tell endpoints apart), else the address with dashes.
fn hostname(address: &EndpointAddress) -> String {
    if let Some(h) = address.hostname.as_deref().filter(|h| is_label(h)) {
        return h.to_ascii_lowercase();
    }
    let pod = address
        .target_ref
        .as_ref()
        .filter(|r| r.kind.as_deref() == Some("Pod"))
        .and_then(|r| r.name.as_deref())
        .filter(|n| is_label(n));
    match pod {
        Some(name) => name.to_ascii_lowercase(),
        None => address.ip.replace(['.', ':'], "-"),
    }
}

impl Table {
    /// A table with only the zone's own records.
    pub fn empty(domain: &str) -> Table {
        Table::build(domain, [], [])
    }

    /// The table for `domain` (e.g. `cluster.local`) from every Service and Endpoints object.
    pub fn build<'a>(
        domain: &str,
        services: impl IntoIterator<Item = &'a Service>,
        endpoints: impl IntoIterator<Item = &'a Endpoints>,
    ) -> Table {
        let mut table = Table {
            domain: normalize(domain),
            ..Table::default()
        };
        let zone = table.domain.clone();
        table.add(
            format!("dns-version.{zone}"),
            Data::Txt(SCHEMA_VERSION.into()),
        );
        let by_name: BTreeMap<(&str, &str), &Endpoints> = endpoints
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
        for service in services {
            let (Some(ns), Some(name)) = (
                service.metadata.namespace.as_deref(),
                service.metadata.name.as_deref(),
            ) else {
                continue;
            };
            let Some(spec) = service.spec.as_ref() else {
                continue;
            };
            let fqdn = normalize(&format!("{name}.{ns}.svc.{zone}"));
            if spec.type_.as_deref() == Some("ExternalName") {
                if let Some(target) = spec.external_name.as_deref().filter(|t| !t.is_empty()) {
                    table.add(fqdn, Data::Cname(normalize(target)));
                }
                continue;
            }
            match spec.cluster_ip.as_deref() {
                Some("None") => {
                    let eps = by_name.get(&(ns, name)).copied();
                    table.add_headless(&fqdn, eps);
                }
                Some(ip) => {
                    let Ok(ip) = ip.parse::<Ipv4Addr>() else {
                        continue;
                    };
                    table.add(fqdn.clone(), Data::A(ip));
                    table.add(reverse(ip), Data::Ptr(fqdn.clone()));
                    for port in spec.ports.iter().flatten() {
                        let (name, protocol) = (port.name.as_deref(), port.protocol.as_deref());
                        table.add_srv(&fqdn, name, protocol, port.port, &fqdn);
                    }
                }
                // Not allocated yet: no records.
                None => {}
            }
        }
        table.index_interior();
        table
    }

    /// The SRV record `_<name>._<protocol>.<fqdn>` → `target:port` of a named port (unnamed ports
    /// and out-of-range numbers get none).
    fn add_srv(
        &mut self,
        fqdn: &str,
        name: Option<&str>,
        protocol: Option<&str>,
        port: i32,
        target: &str,
    ) {
        let (Some(name), Ok(port)) = (name.filter(|n| !n.is_empty()), u16::try_from(port)) else {
            return;
        };
        let protocol = protocol.unwrap_or("TCP");
        self.add(
            normalize(&format!("_{name}._{protocol}.{fqdn}")),
            Data::Srv {
                priority: SRV_PRIORITY,
                weight: SRV_WEIGHT,
                port,
                target: target.to_string(),
            },
        );
    }

    /// A headless service: an A record per ready address on the service name and on
    /// `<hostname>.<service>`, and an SRV record per ready address and named port.
    fn add_headless(&mut self, fqdn: &str, endpoints: Option<&Endpoints>) {
        let subsets = endpoints.and_then(|e| e.subsets.as_ref());
        for subset in subsets.into_iter().flatten() {
            for address in subset.addresses.iter().flatten() {
                let Ok(ip) = address.ip.parse::<Ipv4Addr>() else {
                    continue;
                };
                let host = format!("{}.{fqdn}", hostname(address));
                self.add(fqdn.to_string(), Data::A(ip));
                self.add(host.clone(), Data::A(ip));
                for port in subset.ports.iter().flatten() {
                    let (name, protocol) = (port.name.as_deref(), port.protocol.as_deref());
                    self.add_srv(fqdn, name, protocol, port.port, &host);
                }
            }
        }
    }

    fn add(&mut self, name: String, data: Data) {
        self.records.entry(name).or_default().insert(data);
    }

    /// Records every ancestor of an owned name inside the zone, the zone itself included.
    fn index_interior(&mut self) {
        let zone = self.domain.clone();
        let mut interior = BTreeSet::new();
        interior.insert(zone.clone());
        for name in self.records.keys() {
            let mut rest = name.as_str();
            while let Some((_, parent)) = rest.split_once('.') {
                if parent.len() < zone.len() {
                    break;
                }
                interior.insert(parent.to_string());
                rest = parent;
            }
        }
        self.interior = interior;
    }

    /// The cluster domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Whether `name` (normalized) is the zone or inside it.
    fn in_zone(&self, name: &str) -> bool {
        name == self.domain || name.ends_with(&format!(".{}", self.domain))
    }

    /// Answers a question for `name` (any case, trailing dot or not).
    pub fn lookup(&self, name: &str, kind: Kind) -> Lookup {
        let name = normalize(name);
        if let Some(records) = self.records.get(&name) {
            let matching: Vec<Data> = records
                .iter()
                .filter(|d| kind == Kind::Any || d.kind() == kind || d.kind() == Kind::Cname)
                .cloned()
                .collect();
            return match matching.is_empty() {
                true => Lookup::NoData,
                false => Lookup::Found(matching),
            };
        }
        if !self.in_zone(&name) {
            return Lookup::NotOurs;
        }
        if let Some(ip) = self.pod_address(&name) {
            return match kind {
                Kind::A | Kind::Any => Lookup::Found(vec![Data::A(ip)]),
                _ => Lookup::NoData,
            };
        }
        match self.interior.contains(&name) {
            true => Lookup::NoData,
            false => Lookup::NxDomain,
        }
    }

    /// `<a>-<b>-<c>-<d>.<ns>.pod.<zone>` (the specification's deprecated but required pod records).
    fn pod_address(&self, name: &str) -> Option<Ipv4Addr> {
        let rest = name.strip_suffix(&format!(".pod.{}", self.domain))?;
        let (dashed, ns) = rest.split_once('.')?;
        if ns.contains('.') || !is_label(ns) {
            return None;
        }
        dashed.replace('-', ".").parse().ok()
    }

    /// The A records of `name`, for the additional section of SRV answers.
    pub fn addresses(&self, name: &str) -> Vec<Ipv4Addr> {
        self.records
            .get(&normalize(name))
            .into_iter()
            .flatten()
            .filter_map(|d| match d {
                Data::A(ip) => Some(*ip),
                _ => None,
            })
            .collect()
    }

    /// How many names own records (for logs).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no name owns records (never: the schema version is always there).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    fn endpoints(v: serde_json::Value) -> Endpoints {
        serde_json::from_value(v).unwrap()
    }

    fn table() -> Table {
        let services = vec![
            service(
                json!({"metadata": {"name": "web", "namespace": "demo"}, "spec": {
                "clusterIP": "127.96.0.7", "ports": [
                    {"name": "http", "port": 80, "protocol": "TCP"},
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                    {"port": 9000}]}}),
            ),
            service(
                json!({"metadata": {"name": "db", "namespace": "demo"}, "spec": {
                "clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}}),
            ),
            service(
                json!({"metadata": {"name": "empty", "namespace": "demo"}, "spec": {
                "clusterIP": "None"}}),
            ),
            service(
                json!({"metadata": {"name": "ext", "namespace": "demo"}, "spec": {
                "type": "ExternalName", "externalName": "www.example.com."}}),
            ),
            service(json!({"metadata": {"name": "pending", "namespace": "demo"}, "spec": {}})),
        ];
        let eps = vec![
            endpoints(
                json!({"metadata": {"name": "db", "namespace": "demo"}, "subsets": [{
                "addresses": [
                    {"ip": "127.0.0.1", "targetRef": {"kind": "Pod", "name": "db-abcde"}},
                    {"ip": "127.0.0.1", "targetRef": {"kind": "Pod", "name": "db-fghij"}},
                    {"ip": "10.1.2.3", "hostname": "pet-0"}],
                "notReadyAddresses": [{"ip": "10.9.9.9"}],
                "ports": [{"name": "pg", "port": 31005, "protocol": "TCP"}]}]}),
            ),
            endpoints(
                json!({"metadata": {"name": "empty", "namespace": "demo"}, "subsets": [{
                "notReadyAddresses": [{"ip": "10.9.9.9"}], "ports": [{"port": 1}]}]}),
            ),
        ];
        Table::build("cluster.local.", &services, &eps)
    }

    #[test]
    fn cluster_ip_services_have_a_srv_and_ptr_records() {
        let t = table();
        assert_eq!(
            t.lookup("web.demo.svc.cluster.local.", Kind::A),
            Lookup::Found(vec![Data::A(Ipv4Addr::new(127, 96, 0, 7))])
        );
        assert_eq!(
            t.lookup("WEB.Demo.SVC.cluster.LOCAL", Kind::A),
            Lookup::Found(vec![Data::A(Ipv4Addr::new(127, 96, 0, 7))]),
            "names are case-insensitive"
        );
        assert_eq!(
            t.lookup("_http._tcp.web.demo.svc.cluster.local", Kind::Srv),
            Lookup::Found(vec![Data::Srv {
                priority: 0,
                weight: 100,
                port: 80,
                target: "web.demo.svc.cluster.local".into()
            }])
        );
        assert!(matches!(
            t.lookup("_dns._udp.web.demo.svc.cluster.local", Kind::Srv),
            Lookup::Found(_)
        ));
        assert_eq!(
            t.lookup("_dns._tcp.web.demo.svc.cluster.local", Kind::Srv),
            Lookup::NxDomain
        );
        assert_eq!(
            t.lookup("7.0.96.127.in-addr.arpa.", Kind::Ptr),
            Lookup::Found(vec![Data::Ptr("web.demo.svc.cluster.local".into())])
        );
        // The name exists, but has no AAAA.
        assert_eq!(
            t.lookup("web.demo.svc.cluster.local", Kind::Other),
            Lookup::NoData
        );
    }

    #[test]
    fn headless_services_list_ready_endpoints() {
        let t = table();
        assert_eq!(
            t.lookup("db.demo.svc.cluster.local", Kind::A),
            Lookup::Found(vec![
                Data::A(Ipv4Addr::new(10, 1, 2, 3)),
                Data::A(Ipv4Addr::new(127, 0, 0, 1)),
            ])
        );
        let Lookup::Found(srv) = t.lookup("_pg._tcp.db.demo.svc.cluster.local", Kind::Srv) else {
            panic!("no SRV");
        };
        let targets: Vec<&str> = srv
            .iter()
            .map(|d| match d {
                Data::Srv {
                    target,
                    port: 31005,
                    ..
                } => target.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            targets,
            [
                "db-abcde.db.demo.svc.cluster.local",
                "db-fghij.db.demo.svc.cluster.local",
                "pet-0.db.demo.svc.cluster.local"
            ]
        );
        assert_eq!(
            t.addresses("pet-0.db.demo.svc.cluster.local"),
            [Ipv4Addr::new(10, 1, 2, 3)]
        );
        // No ready endpoints: NXDOMAIN, as the specification asks.
        assert_eq!(
            t.lookup("empty.demo.svc.cluster.local", Kind::A),
            Lookup::NxDomain
        );
    }

    #[test]
    fn other_names_of_the_zone() {
        let t = table();
        assert_eq!(
            t.lookup("ext.demo.svc.cluster.local", Kind::A),
            Lookup::Found(vec![Data::Cname("www.example.com".into())])
        );
        assert_eq!(
            t.lookup("dns-version.cluster.local", Kind::Txt),
            Lookup::Found(vec![Data::Txt(SCHEMA_VERSION.into())])
        );
        assert_eq!(
            t.lookup("10-1-2-3.demo.pod.cluster.local", Kind::A),
            Lookup::Found(vec![Data::A(Ipv4Addr::new(10, 1, 2, 3))])
        );
        assert_eq!(
            t.lookup("pending.demo.svc.cluster.local", Kind::A),
            Lookup::NxDomain
        );
        assert_eq!(
            t.lookup("missing.demo.svc.cluster.local", Kind::A),
            Lookup::NxDomain
        );
        for interior in [
            "demo.svc.cluster.local",
            "svc.cluster.local",
            "cluster.local",
        ] {
            assert_eq!(t.lookup(interior, Kind::A), Lookup::NoData, "{interior}");
        }
        assert_eq!(t.lookup("example.com", Kind::A), Lookup::NotOurs);
        assert_eq!(t.lookup("notcluster.local", Kind::A), Lookup::NotOurs);
        assert_eq!(
            t.lookup("1.0.0.10.in-addr.arpa", Kind::Ptr),
            Lookup::NotOurs
        );
    }

    #[test]
    fn an_empty_cluster_still_has_its_zone() {
        let t = Table::empty("Cluster.Local");
        assert_eq!(t.domain(), "cluster.local");
        assert_eq!(
            t.lookup("x.default.svc.cluster.local", Kind::A),
            Lookup::NxDomain
        );
        assert_eq!(t.lookup("cluster.local", Kind::A), Lookup::NoData);
        assert!(!t.is_empty());
    }
}
