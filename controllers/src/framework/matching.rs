//! Packing pending pods into offers (pure). Several pods may share one offer; each pod goes to
//! the fitting offer with the most cpu left (spreading, like kube-scheduler's LeastAllocated), and
//! a pod that fits nowhere gets kube-scheduler's per-node reasons.

use super::demand::Demand;
use std::collections::{BTreeMap, BTreeSet};

/// An offer as the matcher sees it.
#[derive(Clone, Debug, Default)]
pub struct OfferView {
    /// Offer id.
    pub id: String,
    /// Agent id.
    pub agent_id: String,
    /// Agent hostname (= node name).
    pub hostname: String,
    /// Agent labels (attributes plus `kubernetes.io/hostname`).
    pub labels: BTreeMap<String, String>,
    /// Offered cpus.
    pub cpus: f64,
    /// Offered memory (MB).
    pub mem: f64,
    /// Offered ports.
    pub ports: BTreeSet<u16>,
}

/// A pod placed on an offer.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    /// Index of the offer.
    pub offer: usize,
    /// Index of the pod.
    pub pod: usize,
    /// Host port per wanted port, in the demand's order.
    pub host_ports: Vec<u16>,
}

/// Why a pod did not fit an offer (first failing check, as kube reports one reason per node).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unfit {
    /// Node selector or affinity.
    Affinity,
    /// Not enough cpu.
    Cpu,
    /// Not enough memory.
    Memory,
    /// Host ports taken.
    Ports,
}

impl Unfit {
    fn text(self) -> &'static str {
        match self {
            Unfit::Affinity => "node(s) didn't match Pod's node affinity/selector",
            Unfit::Cpu => "Insufficient cpu",
            Unfit::Memory => "Insufficient memory",
            Unfit::Ports => "node(s) didn't have free ports for the requested pod ports",
        }
    }
}

/// kube-scheduler's message: `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't
/// match Pod's node affinity/selector.`
pub fn unschedulable_message(nodes: usize, reasons: &BTreeMap<Unfit, usize>) -> String {
    let mut parts: Vec<String> = reasons
        .iter()
        .map(|(r, n)| format!("{n} {}", r.text()))
        .collect();
    parts.sort();
    format!("0/{nodes} nodes are available: {}.", parts.join(", "))
}

const EPS: f64 = 1e-9;

/// A pod that fit nowhere: its index and how many nodes failed for each reason.
pub type Unplaced = (usize, BTreeMap<Unfit, usize>);

/// Places `pods` (in priority order) on `offers`. Returns the placements and, for each pod that
/// fits nowhere, its per-reason node counts.
pub fn place(offers: &[OfferView], pods: &[Demand]) -> (Vec<Placement>, Vec<Unplaced>) {
    let mut left: Vec<(f64, f64, BTreeSet<u16>)> = offers
        .iter()
        .map(|o| (o.cpus, o.mem, o.ports.clone()))
        .collect();
    let mut placements = Vec::new();
    let mut unfit = Vec::new();
    for (pi, d) in pods.iter().enumerate() {
        let mut reasons: BTreeMap<Unfit, usize> = BTreeMap::new();
        let mut best: Option<(usize, Vec<u16>)> = None;
        for (oi, o) in offers.iter().enumerate() {
            let (cpus, mem, ports) = &left[oi];
            let why = if !d.fits_labels(&o.labels) {
                Some(Unfit::Affinity)
            } else if d.total_cpus() > cpus + EPS {
                Some(Unfit::Cpu)
            } else if d.total_mem() > mem + EPS {
                Some(Unfit::Memory)
            } else {
                None
            };
            if let Some(r) = why {
                *reasons.entry(r).or_default() += 1;
                continue;
            }
            let Some(host_ports) = assign_ports(d, ports) else {
                *reasons.entry(Unfit::Ports).or_default() += 1;
                continue;
            };
            if best.as_ref().is_none_or(|(b, _)| left[*b].0 < *cpus) {
                best = Some((oi, host_ports));
            }
        }
        match best {
            Some((oi, host_ports)) => {
                let l = &mut left[oi];
                l.0 -= d.total_cpus();
                l.1 -= d.total_mem();
                for p in &host_ports {
                    l.2.remove(p);
                }
                placements.push(Placement {
                    offer: oi,
                    pod: pi,
                    host_ports,
                });
            }
            None => unfit.push((pi, reasons)),
        }
    }
    (placements, unfit)
}

fn assign_ports(d: &Demand, free: &BTreeSet<u16>) -> Option<Vec<u16>> {
    let mut free = free.clone();
    let mut out = Vec::with_capacity(d.ports.len());
    // Fixed host ports first, so "any port" wants never steal them.
    for w in &d.ports {
        if let Some(h) = w.host_port {
            if !free.remove(&h) {
                return None;
            }
        }
    }
    for w in &d.ports {
        match w.host_port {
            Some(h) => out.push(h),
            None => out.push(free.pop_first()?),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::demand::PortWant;

    fn offer(id: &str, cpus: f64, mem: f64, labels: &[(&str, &str)]) -> OfferView {
        OfferView {
            id: id.into(),
            agent_id: format!("agent-{id}"),
            hostname: id.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cpus,
            mem,
            ports: (31000..31003).collect(),
        }
    }

    fn pod(cpus: f64, mem: f64) -> Demand {
        Demand {
            cpus: vec![cpus],
            mem: vec![mem],
            ports: Vec::new(),
            node_selector: BTreeMap::new(),
            affinity: Vec::new(),
        }
    }

    #[test]
    fn packs_several_pods_into_one_offer_and_spreads() {
        let offers = [offer("a", 1.0, 1000.0, &[]), offer("b", 0.5, 1000.0, &[])];
        let pods = [
            pod(0.3, 100.0),
            pod(0.3, 100.0),
            pod(0.3, 100.0),
            pod(0.3, 100.0),
        ];
        let (placed, unfit) = place(&offers, &pods);
        assert!(unfit.is_empty());
        let on: Vec<usize> = placed.iter().map(|p| p.offer).collect();
        // a (1.0) → b (0.5 vs a's 0.7: a) ... spread by the most cpu left.
        assert_eq!(on, vec![0, 0, 1, 0]);
    }

    #[test]
    fn reasons_per_node_in_kube_words() {
        let offers = [
            offer("a", 1.0, 1000.0, &[("zone", "x")]),
            offer("b", 1.0, 10.0, &[("zone", "y")]),
        ];
        let mut p = pod(0.5, 100.0);
        p.node_selector.insert("zone".into(), "y".into());
        let (placed, unfit) = place(&offers, &[pod(4.0, 1.0), p]);
        assert!(placed.is_empty());
        assert_eq!(
            unschedulable_message(2, &unfit[0].1),
            "0/2 nodes are available: 2 Insufficient cpu."
        );
        assert_eq!(
            unschedulable_message(2, &unfit[1].1),
            "0/2 nodes are available: 1 Insufficient memory, 1 node(s) didn't match Pod's node affinity/selector."
        );
    }

    #[test]
    fn host_ports_fixed_and_any() {
        let offers = [offer("a", 4.0, 4000.0, &[])];
        let mut p = pod(0.1, 10.0);
        p.ports = vec![
            PortWant {
                container: "c".into(),
                name: Some("http".into()),
                container_port: 8080,
                host_port: None,
            },
            PortWant {
                container: "c".into(),
                name: None,
                container_port: 9090,
                host_port: Some(31000),
            },
        ];
        let (placed, _) = place(&offers, &[p.clone(), p.clone()]);
        assert_eq!(placed.len(), 1, "the second pod wants 31000 too");
        assert_eq!(placed[0].host_ports, vec![31001, 31000]);
    }
}
