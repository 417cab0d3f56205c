//! Service address allocation, the pure part: the `--service-cluster-ip-range` and
//! `--service-node-port-range` values, and what a create or update of a Service must reserve and release
//! (kube-apiserver's `allocateCreate` / `allocateUpdate`, `initNodePorts`, `updateNodePorts`), with the
//! exact error texts of its ipallocator and portallocator. The store side lives in
//! `routes::service_alloc`.

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;

use serde_json::Value;

use crate::error::{ApiError, Cause};

/// A `--service-cluster-ip-range` or `--service-node-port-range` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// Not `a.b.c.d/n`.
    #[error("invalid service cluster IP range {0:?}: expected an IPv4 CIDR such as 127.96.0.0/12")]
    NotCidr(String),
    /// A prefix length that leaves no usable address, or more than the allocator tracks.
    #[error(
        "invalid service cluster IP range {0:?}: the prefix length must be between /12 and /30 \
         (a larger block is more than the allocator tracks; a smaller one holds no service address)"
    )]
    CidrSize(String),
    /// Not `first-last`, `first+size` or one port.
    #[error("invalid service node port range {0:?}: expected FIRST-LAST such as 30000-32767")]
    NotPortRange(String),
    /// Ports outside 1-65535 or a last port before the first.
    #[error("invalid service node port range {0:?}: ports must be within 1-65535, first <= last")]
    PortBounds(String),
}

/// An IPv4 block services take their cluster IPs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: u32,
    prefix: u8,
}

impl IpRange {
    /// Parses `a.b.c.d/n` (host bits are masked off, as Go's `net.ParseCIDR` does).
    pub fn parse(text: &str) -> Result<IpRange, RangeError> {
        let not_cidr = || RangeError::NotCidr(text.to_string());
        let (addr, prefix) = text.trim().split_once('/').ok_or_else(not_cidr)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| not_cidr())?;
        let prefix: u8 = prefix.parse().map_err(|_| not_cidr())?;
        if !(12..=30).contains(&prefix) {
            return Err(RangeError::CidrSize(text.to_string()));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(IpRange {
            network: u32::from(addr) & mask,
            prefix,
        })
    }

    /// The addresses handed to services: the block minus its network address, its first host (kube
    /// gives that one to the `kubernetes` service) and its broadcast address.
    pub fn usable(&self) -> (u32, u32) {
        let size = 1u32 << (32 - self.prefix);
        (self.network + 2, self.network + size - 2)
    }

    /// The network address (what kube's dry-run allocator answers instead of a free address).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network)
    }

    /// Whether `ip` is one of the [`usable`](Self::usable) addresses.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let (lo, hi) = self.usable();
        (lo..=hi).contains(&u32::from(ip))
    }
}

impl Default for IpRange {
    /// 127.96.0.0/12: inside 127.0.0.0/8, so one machine routes every service address without
    /// privileges.
    fn default() -> Self {
        IpRange {
            network: u32::from(Ipv4Addr::new(127, 96, 0, 0)),
            prefix: 12,
        }
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }
}

impl std::str::FromStr for IpRange {
    type Err = RangeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IpRange::parse(s)
    }
}

/// The ports `type: NodePort` services take their node ports from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// The first port.
    pub first: u16,
    /// The last port (inclusive).
    pub last: u16,
}

impl PortRange {
    /// Parses `30000-32767`, `30000+2767` (Go's `net.ParsePortRange`) or a single port.
    pub fn parse(text: &str) -> Result<PortRange, RangeError> {
        let t = text.trim();
        let bad = || RangeError::NotPortRange(text.to_string());
        let port = |s: &str| s.trim().parse::<u32>().map_err(|_| bad());
        let (first, last) = if let Some((a, b)) = t.split_once('-') {
            (port(a)?, port(b)?)
        } else if let Some((a, b)) = t.split_once('+') {
            let a = port(a)?;
            (a, a + port(b)?)
        } else {
            let a = port(t)?;
            (a, a)
        };
        if first == 0 || last > 65535 || last < first {
            return Err(RangeError::PortBounds(text.to_string()));
        }
        Ok(PortRange {
            first: first as u16,
            last: last as u16,
        })
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: i64) -> bool {
        (i64::from(self.first)..=i64::from(self.last)).contains(&port)
    }
}

impl Default for PortRange {
    /// kube-apiserver's default, 30000-32767.
    fn default() -> Self {
        PortRange {
            first: 30000,
            last: 32767,
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl std::str::FromStr for PortRange {
    type Err = RangeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PortRange::parse(s)
    }
}

/// Both ranges, as the API server was configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServiceRanges {
    /// `--service-cluster-ip-range`.
    pub cluster_ip: IpRange,
    /// `--service-node-port-range`.
    pub node_port: PortRange,
}

/// A value to reserve: any free one, or the one the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want<T> {
    /// The next free value.
    Any,
    /// Exactly this one (422 when outside the range or taken).
    This(T),
}

/// What one port of the service needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortStep {
    /// Reserve a node port for `spec.ports[index]`.
    Reserve { index: usize, want: Want<i64> },
    /// `spec.ports[index]` shares the node port of `spec.ports[from]` (same port number, another
    /// protocol), reserved by an earlier step.
    Share { index: usize, from: usize },
}

/// The reservations a write needs, in order: the cluster IP, then the node ports. Releases of what the
/// old object held are computed after the reservations filled the new object in ([`released`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The cluster IP to reserve, if any.
    pub cluster_ip: Option<Want<String>>,
    /// The node ports to reserve.
    pub ports: Vec<PortStep>,
    /// The health-check node port of a `LoadBalancer` with `externalTrafficPolicy: Local`.
    pub health_check: Option<Want<i64>>,
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn ports(spec: &Value) -> &[Value] {
    spec.get("ports")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn node_port(port: &Value) -> i64 {
    port.get("nodePort").and_then(Value::as_i64).unwrap_or(0)
}

/// Whether the type exposes node ports (NodePort and LoadBalancer).
fn has_node_ports(spec: &Value) -> bool {
    matches!(str_at(spec, "type"), "NodePort" | "LoadBalancer")
}

/// `shouldAllocateNodePorts`: NodePort always, LoadBalancer unless `allocateLoadBalancerNodePorts: false`.
fn should_allocate_node_ports(spec: &Value) -> bool {
    match str_at(spec, "type") {
        "NodePort" => true,
        "LoadBalancer" => spec.get("allocateLoadBalancerNodePorts") != Some(&Value::Bool(false)),
        _ => false,
    }
}

/// `NeedsHealthCheck`: a LoadBalancer that keeps traffic on the node.
fn needs_health_check(spec: &Value) -> bool {
    str_at(spec, "type") == "LoadBalancer" && str_at(spec, "externalTrafficPolicy") == "Local"
}

fn wanted_health_check(spec: &Value) -> Want<i64> {
    match spec
        .get("healthCheckNodePort")
        .and_then(Value::as_i64)
        .unwrap_or(0)
    {
        0 => Want::Any,
        n => Want::This(n),
    }
}

fn is_headless(spec: &Value) -> bool {
    str_at(spec, "clusterIP") == "None"
}

/// The cluster IP a service without one needs (none for ExternalName and headless services).
fn wanted_ip(spec: &Value) -> Option<Want<String>> {
    if str_at(spec, "type") == "ExternalName" || is_headless(spec) {
        return None;
    }
    match str_at(spec, "clusterIP") {
        "" => Some(Want::Any),
        ip => Some(Want::This(ip.to_string())),
    }
}

/// What creating `service` reserves (`allocateCreate`).
pub fn plan_create(service: &Value) -> Plan {
    let spec = service.get("spec").unwrap_or(&Value::Null);
    let mut plan = Plan {
        cluster_ip: wanted_ip(spec),
        ports: Vec::new(),
        health_check: needs_health_check(spec).then(|| wanted_health_check(spec)),
    };
    if !has_node_ports(spec) {
        return plan;
    }
    // `initNodePorts`: ports with the same number (TCP and UDP) share one node port.
    let all = ports(spec);
    let mut by_number: HashMap<i64, (usize, i64)> = HashMap::new();
    for (index, port) in all.iter().enumerate() {
        let np = node_port(port);
        if np == 0 && !should_allocate_node_ports(spec) {
            continue;
        }
        let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
        match by_number.get(&number) {
            None => {
                let requested = all
                    .iter()
                    .filter(|p| p.get("port").and_then(Value::as_i64).unwrap_or(0) == number)
                    .map(node_port)
                    .find(|n| *n != 0)
                    .unwrap_or(0);
                let want = match requested {
                    0 => Want::Any,
                    n => Want::This(n),
                };
                plan.ports.push(PortStep::Reserve { index, want });
                by_number.insert(number, (index, requested));
            }
            Some(&(from, shared)) => {
                if np == 0 || np == shared {
                    plan.ports.push(PortStep::Share { index, from });
                } else {
                    plan.ports.push(PortStep::Reserve {
                        index,
                        want: Want::This(np),
                    });
                }
            }
        }
    }
    plan
}

/// What updating `old` to `new` reserves (`allocateUpdate`): a cluster IP when an ExternalName service
/// becomes another type, node ports that are new or requested anew.
pub fn plan_update(new: &Value, old: &Value) -> Plan {
    let (spec, old_spec) = (
        new.get("spec").unwrap_or(&Value::Null),
        old.get("spec").unwrap_or(&Value::Null),
    );
    let mut plan = Plan::default();
    if str_at(old_spec, "type") == "ExternalName" && str_at(spec, "type") != "ExternalName" {
        plan.cluster_ip = wanted_ip(spec);
    }
    if !needs_health_check(old_spec) && needs_health_check(spec) {
        plan.health_check = Some(wanted_health_check(spec));
    }
    if !has_node_ports(spec) {
        return plan;
    }
    // `updateNodePorts`: keep what the old object held, reserve the rest.
    let held = held_node_ports(old);
    let mut requested = Vec::new();
    for (index, port) in ports(spec).iter().enumerate() {
        let np = node_port(port);
        if np == 0 && !should_allocate_node_ports(spec) {
            continue;
        }
        if np == 0 {
            plan.ports.push(PortStep::Reserve {
                index,
                want: Want::Any,
            });
        } else if !held.contains(&np) && !requested.contains(&np) {
            requested.push(np);
            plan.ports.push(PortStep::Reserve {
                index,
                want: Want::This(np),
            });
        }
    }
    plan
}

/// The cluster IP a stored service holds (ExternalName and headless services hold none).
pub fn held_ip(service: &Value) -> Option<Ipv4Addr> {
    let spec = service.get("spec")?;
    if str_at(spec, "type") == "ExternalName" {
        return None;
    }
    str_at(spec, "clusterIP").parse().ok()
}

/// The node ports a stored service holds (its health-check node port included).
pub fn held_node_ports(service: &Value) -> Vec<i64> {
    let spec = service.get("spec").unwrap_or(&Value::Null);
    let health_check = spec.get("healthCheckNodePort").and_then(Value::as_i64);
    let mut held: Vec<i64> = ports(spec)
        .iter()
        .map(node_port)
        .chain(health_check)
        .filter(|n| *n != 0)
        .collect();
    held.sort_unstable();
    held.dedup();
    held
}

/// What the old object held and the new one (reservations filled in) no longer does: released once the
/// update is stored.
pub fn released(new: &Value, old: &Value) -> (Option<Ipv4Addr>, Vec<i64>) {
    let ip = held_ip(old).filter(|ip| held_ip(new) != Some(*ip));
    let new_ports = held_node_ports(new);
    let ports = held_node_ports(old)
        .into_iter()
        .filter(|p| !new_ports.contains(p))
        .collect();
    (ip, ports)
}

/// Go's `%#v` of the one-element `[]string` kube reports for a cluster IP.
fn go_ips(ip: &str) -> String {
    format!("[]string{{{ip:?}}}")
}

/// 422 for a requested cluster IP the allocator refused.
pub fn ip_refused(service: &str, ip: &str, why: &str) -> ApiError {
    ApiError::invalid(
        "Service",
        service,
        vec![Cause::invalid(
            "spec.clusterIPs",
            &go_ips(ip),
            &format!("failed to allocate IP {ip}: {why}"),
        )],
    )
}

/// The allocator's text for an address outside the range.
pub fn ip_not_in_range(ip: &str, range: &IpRange) -> String {
    format!("the provided IP ({ip}) is not in the valid range. The range of valid IPs is {range}")
}

/// The allocator's text for a taken address.
pub const IP_TAKEN: &str = "provided IP is already allocated";

/// 500 when no address is left, as kube-apiserver answers.
pub fn ip_range_full() -> ApiError {
    ApiError::internal("failed to allocate a serviceIP: range is full")
}

/// 422 for a requested node port the allocator refused.
pub fn port_refused(service: &str, index: usize, port: i64, why: &str) -> ApiError {
    ApiError::invalid(
        "Service",
        service,
        vec![Cause::invalid(
            &format!("spec.ports[{index}].nodePort"),
            &port.to_string(),
            why,
        )],
    )
}

/// The allocator's text for a port outside the range.
pub fn port_not_in_range(range: &PortRange) -> String {
    format!("provided port is not in the valid range. The range of valid ports is {range}")
}

/// The allocator's text for a taken port.
pub const PORT_TAKEN: &str = "provided port is already allocated";

/// 500 when the health-check node port cannot be had (kube-apiserver wraps these in an internal error).
pub fn health_check_refused(requested: i64, why: &str) -> ApiError {
    match requested {
        0 => ApiError::internal(format!(
            "failed to allocate a HealthCheck NodePort 0: {why}"
        )),
        n => ApiError::internal(format!(
            "failed to allocate requested HealthCheck NodePort {n}: {why}"
        )),
    }
}

/// 500 when no node port is left, as kube-apiserver answers.
pub fn port_range_full() -> ApiError {
    ApiError::internal("failed to allocate a nodePort: range is full")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ip_ranges_parse_and_skip_reserved_addresses() {
        let r = IpRange::default();
        assert_eq!(r.to_string(), "127.96.0.0/12");
        let (lo, hi) = r.usable();
        assert_eq!(Ipv4Addr::from(lo), Ipv4Addr::new(127, 96, 0, 2));
        assert_eq!(Ipv4Addr::from(hi), Ipv4Addr::new(127, 111, 255, 254));
        let small = IpRange::parse("127.50.0.9/29").unwrap();
        assert_eq!(small.to_string(), "127.50.0.8/29");
        let (lo, hi) = small.usable();
        assert_eq!(hi - lo + 1, 5);
        assert!(small.contains(Ipv4Addr::new(127, 50, 0, 10)));
        assert!(!small.contains(Ipv4Addr::new(127, 50, 0, 9)));
        assert!(!small.contains(Ipv4Addr::new(127, 50, 0, 15)));
        assert!(matches!(
            IpRange::parse("10.0.0.0"),
            Err(RangeError::NotCidr(_))
        ));
        assert!(matches!(
            IpRange::parse("x/12"),
            Err(RangeError::NotCidr(_))
        ));
        assert!(matches!(
            IpRange::parse("fd00::/112"),
            Err(RangeError::NotCidr(_))
        ));
        assert!(matches!(
            IpRange::parse("10.0.0.0/8"),
            Err(RangeError::CidrSize(_))
        ));
        assert!(matches!(
            IpRange::parse("10.0.0.0/31"),
            Err(RangeError::CidrSize(_))
        ));
        assert_eq!(
            IpRange::parse("10.0.0.0/30").unwrap().usable().0,
            u32::from(Ipv4Addr::new(10, 0, 0, 2))
        );
    }

    #[test]
    fn port_ranges_parse_like_go() {
        assert_eq!(PortRange::default().to_string(), "30000-32767");
        assert_eq!(
            PortRange::parse("30000+2767").unwrap(),
            PortRange::default()
        );
        assert_eq!(
            PortRange::parse(" 31000 ").unwrap().to_string(),
            "31000-31000"
        );
        assert!(matches!(
            PortRange::parse("a-b"),
            Err(RangeError::NotPortRange(_))
        ));
        assert!(matches!(
            PortRange::parse("0-10"),
            Err(RangeError::PortBounds(_))
        ));
        assert!(matches!(
            PortRange::parse("200-100"),
            Err(RangeError::PortBounds(_))
        ));
        assert!(matches!(
            PortRange::parse("65000-70000"),
            Err(RangeError::PortBounds(_))
        ));
        assert!(PortRange::default().contains(30000) && !PortRange::default().contains(32768));
    }

    fn svc(spec: Value) -> Value {
        json!({"metadata": {"name": "s"}, "spec": spec})
    }

    #[test]
    fn create_plans_by_type() {
        let plain = plan_create(&svc(json!({"type": "ClusterIP", "ports": [{"port": 80}]})));
        assert_eq!(plain.cluster_ip, Some(Want::Any));
        assert!(plain.ports.is_empty());
        let chosen = plan_create(&svc(
            json!({"type": "ClusterIP", "clusterIP": "127.96.0.9"}),
        ));
        assert_eq!(chosen.cluster_ip, Some(Want::This("127.96.0.9".into())));
        assert_eq!(
            plan_create(&svc(json!({"clusterIP": "None"}))).cluster_ip,
            None
        );
        let ext = plan_create(&svc(json!({"type": "ExternalName", "externalName": "a.b"})));
        assert_eq!(ext, Plan::default());
        let np = plan_create(&svc(json!({"type": "NodePort", "ports": [
            {"port": 80}, {"port": 443, "nodePort": 30443}]})));
        assert_eq!(
            np.ports,
            vec![
                PortStep::Reserve {
                    index: 0,
                    want: Want::Any
                },
                PortStep::Reserve {
                    index: 1,
                    want: Want::This(30443)
                },
            ]
        );
    }

    #[test]
    fn ports_with_one_number_share_a_node_port() {
        let plan = plan_create(&svc(json!({"type": "NodePort", "ports": [
            {"port": 53, "protocol": "TCP"}, {"port": 53, "protocol": "UDP", "nodePort": 30053}]})));
        assert_eq!(
            plan.ports,
            vec![
                PortStep::Reserve {
                    index: 0,
                    want: Want::This(30053)
                },
                PortStep::Share { index: 1, from: 0 },
            ]
        );
    }

    #[test]
    fn load_balancers_may_skip_node_ports() {
        let plan = plan_create(&svc(
            json!({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false,
            "ports": [{"port": 80}, {"port": 81, "nodePort": 30081}]}),
        ));
        assert_eq!(
            plan.ports,
            vec![PortStep::Reserve {
                index: 1,
                want: Want::This(30081)
            }]
        );
    }

    #[test]
    fn updates_reserve_only_what_is_new() {
        let old = svc(json!({"type": "NodePort", "clusterIP": "127.96.0.5",
            "ports": [{"port": 80, "nodePort": 30080}]}));
        let new = svc(json!({"type": "NodePort", "clusterIP": "127.96.0.5",
            "ports": [{"port": 80, "nodePort": 30080}, {"port": 81}, {"port": 82, "nodePort": 30082}]}));
        let plan = plan_update(&new, &old);
        assert_eq!(plan.cluster_ip, None);
        assert_eq!(
            plan.ports,
            vec![
                PortStep::Reserve {
                    index: 1,
                    want: Want::Any
                },
                PortStep::Reserve {
                    index: 2,
                    want: Want::This(30082)
                },
            ]
        );
        // NodePort → ClusterIP releases the node ports, keeps the IP.
        let back =
            svc(json!({"type": "ClusterIP", "clusterIP": "127.96.0.5", "ports": [{"port": 80}]}));
        assert_eq!(plan_update(&back, &old), Plan::default());
        assert_eq!(released(&back, &old), (None, vec![30080]));
        // → ExternalName releases the IP too.
        let ext = svc(json!({"type": "ExternalName", "externalName": "x.y"}));
        assert_eq!(
            released(&ext, &old),
            (Some(Ipv4Addr::new(127, 96, 0, 5)), vec![30080])
        );
        // ExternalName → ClusterIP reserves an IP.
        let plan = plan_update(&back, &ext);
        assert_eq!(plan.cluster_ip, Some(Want::This("127.96.0.5".into())));
        let fresh = svc(json!({"type": "ClusterIP", "ports": [{"port": 80}]}));
        assert_eq!(plan_update(&fresh, &ext).cluster_ip, Some(Want::Any));
    }

    #[test]
    fn local_load_balancers_get_a_health_check_port() {
        let lb = svc(
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}),
        );
        assert_eq!(plan_create(&lb).health_check, Some(Want::Any));
        let mut chosen = lb.clone();
        chosen["spec"]["healthCheckNodePort"] = json!(30500);
        assert_eq!(plan_create(&chosen).health_check, Some(Want::This(30500)));
        let cluster = svc(
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Cluster", "ports": [{"port": 80}]}),
        );
        assert_eq!(plan_create(&cluster).health_check, None);
        assert_eq!(plan_update(&lb, &cluster).health_check, Some(Want::Any));
        let mut held = chosen.clone();
        held["spec"]["ports"][0]["nodePort"] = json!(30080);
        assert_eq!(held_node_ports(&held), vec![30080, 30500]);
        assert_eq!(
            health_check_refused(0, "range is full").message,
            "Internal error occurred: failed to allocate a HealthCheck NodePort 0: range is full"
        );
    }

    #[test]
    fn errors_use_the_allocators_texts() {
        let e = ip_refused(
            "web",
            "10.0.0.1",
            &ip_not_in_range("10.0.0.1", &IpRange::default()),
        );
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "Service \"web\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.0.0.1\"}: failed to \
             allocate IP 10.0.0.1: the provided IP (10.0.0.1) is not in the valid range. The range of valid \
             IPs is 127.96.0.0/12"
        );
        let e = port_refused("web", 1, 30001, PORT_TAKEN);
        assert_eq!(
            e.message,
            "Service \"web\" is invalid: spec.ports[1].nodePort: Invalid value: 30001: provided port is already allocated"
        );
        let full = ip_range_full();
        assert_eq!((full.code, full.reason.as_str()), (500, "InternalError"));
        assert_eq!(
            full.message,
            "Internal error occurred: failed to allocate a serviceIP: range is full"
        );
        assert_eq!(
            port_range_full().message,
            "Internal error occurred: failed to allocate a nodePort: range is full"
        );
    }
}
