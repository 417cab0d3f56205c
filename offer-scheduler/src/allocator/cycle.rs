//! The stages of one allocation cycle, each a small function over shared cycle state.

use super::{Config, Framework, Offer, Snapshot, SorterKind};
use crate::quota::{headroom_surplus, DenseQuota};
use crate::resources::{NameIndex, Resources, Scalar, Value};
use crate::sorter::{Client, DrfSorter, RandomSorter, Sorter};
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Mutable state of one cycle, built from the snapshot.
pub(super) struct Cycle<'a> {
    snap: &'a Snapshot,
    cfg: &'a Config,
    now: Instant,
    seed: u64,
    idx: NameIndex,
    available: Vec<Resources>,
    roles: Box<dyn Sorter>,
    frameworks: HashMap<String, Box<dyn Sorter>>,
    fw_pos: HashMap<&'a str, usize>,
    quotas: HashMap<&'a str, DenseQuota>,
    /// Quota consumption per role: allocations plus unallocated reservations.
    consumed: HashMap<String, Vec<Scalar>>,
    /// Cluster-wide unreserved, unallocated scalars (the headroom pool).
    free_unreserved: Vec<Scalar>,
    /// Sum of unmet guarantees: held back from non-quota allocation.
    required: Vec<Scalar>,
    offers: BTreeMap<(usize, String, usize), Resources>,
    /// Agents whose total includes GPUs (GPU_RESOURCES capability rule).
    gpu_agents: Vec<bool>,
}

fn add(dst: &mut [Scalar], src: &[Scalar]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += *s;
    }
}

fn sub(dst: &mut [Scalar], src: &[Scalar]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = (*d - *s).max(Scalar::ZERO);
    }
}

/// Caps each unreserved scalar by `cap(index)`; drops scalars whose cap is `None`.
fn shrink_unreserved(
    r: &Resources,
    idx: &NameIndex,
    cap: impl Fn(usize) -> Option<Scalar>,
) -> Resources {
    r.iter()
        .filter_map(|res| match (&res.value, idx.get(&res.name)) {
            (Value::Scalar(v), Some(i)) => cap(i).map(|c| {
                let mut res = res.clone();
                res.value = Value::Scalar((*v).min(c));
                res
            }),
            _ => Some(res.clone()),
        })
        .collect()
}

impl<'a> Cycle<'a> {
    fn new_sorter(&self, salt: u64) -> Box<dyn Sorter> {
        match self.cfg.sorter {
            SorterKind::Drf => Box::new(DrfSorter::new()),
            SorterKind::Random => Box::new(RandomSorter::new(self.seed ^ salt)),
        }
    }

    pub fn new(snap: &'a Snapshot, cfg: &'a Config, now: Instant, seed: u64) -> Cycle<'a> {
        let mut idx = NameIndex::default();
        for a in &snap.agents {
            for n in a.total.scalar_names() {
                idx.intern(n);
            }
        }
        let mut c = Cycle {
            snap,
            cfg,
            now,
            seed,
            available: Vec::with_capacity(snap.agents.len()),
            roles: Box::new(DrfSorter::new()),
            frameworks: HashMap::new(),
            fw_pos: snap
                .frameworks
                .iter()
                .enumerate()
                .map(|(i, f)| (f.id.as_str(), i))
                .collect(),
            quotas: snap
                .quotas
                .iter()
                .map(|(r, q)| (r.as_str(), q.dense(&idx)))
                .collect(),
            consumed: HashMap::new(),
            free_unreserved: vec![Scalar::ZERO; idx.len()],
            required: vec![Scalar::ZERO; idx.len()],
            offers: BTreeMap::new(),
            gpu_agents: snap
                .agents
                .iter()
                .map(|a| a.total.scalar("gpus").is_positive())
                .collect(),
            idx,
        };
        c.roles = c.new_sorter(0);
        c.add_clients();
        c.add_agents();
        c.recompute_required();
        c
    }

    fn ensure_client(&mut self, role: &str, framework: &str) {
        if !self.roles.contains(role) {
            self.roles.add_client(role);
            self.roles
                .update_weight(role, self.snap.weights.get(role).copied().unwrap_or(1.0));
            let s = self.new_sorter(self.frameworks.len() as u64 + 1);
            self.frameworks.insert(role.to_string(), s);
        }
        if let Some(s) = self.frameworks.get_mut(role) {
            if !s.contains(framework) {
                s.add_client(framework);
                // Allocations of unknown or disconnected frameworks count but get no offers.
                let active = self
                    .fw_pos
                    .get(framework)
                    .is_some_and(|&i| self.snap.frameworks[i].active);
                if !active {
                    s.deactivate(framework);
                }
            }
        }
    }

    /// Adds roles and frameworks; as in Mesos, a suppressed framework is deactivated in its role's
    /// sorter and a role without offerable frameworks in the role sorter, so `sort()` skips them.
    fn add_clients(&mut self) {
        let mut offerable: HashMap<&str, bool> = HashMap::new();
        for f in self.snap.frameworks.iter().filter(|f| f.active) {
            for r in &f.roles {
                self.ensure_client(r, &f.id);
                let suppressed = f.suppressed_roles.contains(r);
                if suppressed {
                    if let Some(s) = self.frameworks.get_mut(r) {
                        s.deactivate(&f.id);
                    }
                }
                *offerable.entry(r.as_str()).or_default() |= !suppressed;
            }
        }
        for (role, any) in offerable {
            if !any {
                self.roles.deactivate(role);
            }
        }
    }

    fn add_agents(&mut self) {
        let mut total = vec![Scalar::ZERO; self.idx.len()];
        for (ai, a) in self.snap.agents.iter().enumerate() {
            let mut avail = a.total.clone();
            for al in &a.allocations {
                avail.subtract(&al.resources);
                let amounts = self.idx.amounts(&al.resources);
                if !self.roles.contains(&al.role) {
                    self.ensure_client(&al.role, &al.framework);
                    // Roles known only from allocations have nobody to offer to.
                    self.roles.deactivate(&al.role);
                }
                self.ensure_client(&al.role, &al.framework);
                self.roles.allocated(&al.role, ai, &amounts);
                if let Some(s) = self.frameworks.get_mut(&al.role) {
                    s.allocated(&al.framework, ai, &amounts);
                }
                self.consume(&al.role, &amounts);
            }
            for res in avail.reserved(None).iter() {
                let amounts = self.idx.amounts(&Resources::from_vec(vec![res.clone()]));
                self.consume(res.role(), &amounts);
            }
            if a.active {
                add(&mut total, &self.idx.amounts(&a.total));
                add(
                    &mut self.free_unreserved,
                    &self.idx.amounts(&avail.unreserved()),
                );
            }
            self.available
                .push(if a.active { avail } else { Resources::new() });
        }
        self.roles.set_total(&total);
        for s in self.frameworks.values_mut() {
            s.set_total(&total);
        }
    }

    fn consume(&mut self, role: &str, amounts: &[Scalar]) {
        let n = self.idx.len();
        add(
            self.consumed
                .entry(role.to_string())
                .or_insert_with(|| vec![Scalar::ZERO; n]),
            amounts,
        );
    }

    fn consumed_by(&self, role: &str) -> Vec<Scalar> {
        self.consumed
            .get(role)
            .cloned()
            .unwrap_or_else(|| vec![Scalar::ZERO; self.idx.len()])
    }

    fn recompute_required(&mut self) {
        let mut req = vec![Scalar::ZERO; self.idx.len()];
        for (role, q) in &self.quotas {
            add(&mut req, &q.unmet(&self.consumed_by(role)));
        }
        self.required = req;
    }

    /// Agents in a fresh random order each cycle, so no agent is systematically favoured.
    pub fn agent_order(&self, rng: &mut impl Rng) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.snap.agents.len())
            .filter(|&i| !self.available[i].is_empty())
            .collect();
        order.shuffle(rng);
        order
    }

    fn sorted_frameworks(&mut self, role: &str) -> Vec<Client> {
        self.frameworks
            .get_mut(role)
            .map(|s| s.sort())
            .unwrap_or_default()
    }

    /// The framework may be offered `agent` for `role` (active, subscribed, not suppressed, GPU rule).
    fn eligible(&self, fw: &str, role: &str, agent: usize) -> Option<&'a Framework> {
        let f = &self.snap.frameworks[*self.fw_pos.get(fw)?];
        let gpus = self.gpu_agents[agent];
        let ok = f.active
            && f.roles.iter().any(|r| r == role)
            && !f.suppressed_roles.contains(role)
            && (f.capabilities.gpu_resources || !gpus);
        ok.then_some(f)
    }

    /// Stage 1: satisfy unmet quota guarantees, in role-sorter order, before anyone else.
    /// Note the candidate is built lazily, so `surplus` is taken before any commit on this agent.
    pub fn quota_stage(&mut self, order: &[usize]) {
        if self.quotas.is_empty() {
            return;
        }
        for &a in order {
            for role in self.roles.sort() {
                let Some(q) = self.quotas.get(role.as_ref()) else {
                    continue;
                };
                let consumed = self.consumed_by(&role);
                let unmet = q.unmet(&consumed);
                let room = q.limit_room(&consumed);
                if unmet.iter().all(|s| *s == Scalar::ZERO) {
                    continue;
                }
                // Guaranteed names: up to the unmet guarantee. Other names (e.g. mem when only
                // cpus is guaranteed) come along from the headroom surplus so the offer is usable.
                let guarantee = q.guarantee.clone();
                let surplus = headroom_surplus(&self.free_unreserved, &self.required);
                let cap = move |i: usize| {
                    let want = if guarantee[i].is_positive() {
                        unmet[i]
                    } else {
                        surplus[i]
                    };
                    Some(room[i].map_or(want, |r| r.min(want)))
                };
                self.offer_to_first(a, &role, |c: &Self| c.role_resources(a, &role, &cap));
            }
        }
    }

    /// Stage 2: everything else by fair share, never eating into headroom or exceeding limits.
    pub fn fair_share_stage(&mut self, order: &[usize]) {
        for &a in order {
            for role in self.roles.sort() {
                if self.available[a].is_empty() {
                    break;
                }
                self.offer_to_first(a, &role, |c: &Self| c.fair_share_candidate(a, &role));
            }
        }
    }

    /// Stage-2 candidate: unreserved scalars capped by the headroom surplus and the role's limit.
    fn fair_share_candidate(&self, a: usize, role: &str) -> Resources {
        let room = self
            .quotas
            .get(role)
            .map(|q| q.limit_room(&self.consumed_by(role)));
        let surplus = headroom_surplus(&self.free_unreserved, &self.required);
        let cap = |i: usize| {
            let lim = room.as_ref().and_then(|r| r[i]);
            Some(lim.map_or(surplus[i], |l| l.min(surplus[i])))
        };
        self.role_resources(a, role, cap)
    }

    /// Resources on `a` for `role`: its reservations plus unreserved scalars capped by `cap`.
    fn role_resources(
        &self,
        a: usize,
        role: &str,
        cap: impl Fn(usize) -> Option<Scalar>,
    ) -> Resources {
        let avail = &self.available[a];
        let mut out = avail.filter(|r| r.is_reserved() && r.allocatable_to(role));
        out.add(&shrink_unreserved(&avail.unreserved(), &self.idx, cap));
        out
    }

    /// Offers the candidate to the first eligible, unfiltered framework of `role`; one framework
    /// per (agent, role, stage), as Mesos gives an agent's remaining resources to one framework.
    /// The candidate is built lazily, only once some framework is eligible.
    fn offer_to_first(&mut self, a: usize, role: &str, build: impl Fn(&Self) -> Resources) {
        let mut candidate: Option<Resources> = None;
        for fw in self.sorted_frameworks(role) {
            let Some(f) = self.eligible(&fw, role, a) else {
                continue;
            };
            let candidate = candidate.get_or_insert_with(|| build(self));
            if candidate.is_empty() {
                return;
            }
            let mut res = candidate.clone();
            if !f.capabilities.reservation_refinement {
                res = res.filter(|r| !r.is_refined());
            }
            if !self.allocatable(&res) {
                continue;
            }
            let agent_id = &self.snap.agents[a].id;
            if self.snap.filters.has_any(&f.id)
                && self
                    .snap
                    .filters
                    .is_filtered(&f.id, role, agent_id, &res, self.now)
            {
                continue;
            }
            self.commit(a, role, &fw, res);
            return;
        }
    }

    /// Mesos' min-allocatable check: any one of the configured minimums is met.
    fn allocatable(&self, r: &Resources) -> bool {
        if r.is_empty() {
            return false;
        }
        self.cfg.min_allocatable.is_empty()
            || self
                .cfg
                .min_allocatable
                .iter()
                .any(|min| min.iter().all(|(n, v)| r.scalar(n) >= *v))
    }

    fn commit(&mut self, a: usize, role: &str, fw: &str, res: Resources) {
        let amounts = self.idx.amounts(&res);
        self.available[a].subtract(&res);
        self.roles.allocated(role, a, &amounts);
        if let Some(s) = self.frameworks.get_mut(role) {
            s.allocated(fw, a, &amounts);
        }
        // Newly allocated reservations were already counted as consumed when unallocated.
        let unreserved = self.idx.amounts(&res.unreserved());
        self.consume(role, &unreserved);
        sub(&mut self.free_unreserved, &unreserved);
        if !self.quotas.is_empty() {
            self.recompute_required();
        }
        let fi = self.fw_pos.get(fw).copied().unwrap_or(usize::MAX);
        self.offers
            .entry((fi, role.to_string(), a))
            .or_default()
            .add(&res);
    }

    /// The cycle's offers, one per (framework, role, agent).
    pub fn into_offers(self) -> Vec<Offer> {
        let snap = self.snap;
        self.offers
            .into_iter()
            .filter_map(|((f, role, a), resources)| {
                Some(Offer {
                    framework: snap.frameworks.get(f)?.id.clone(),
                    role,
                    agent: snap.agents[a].id.clone(),
                    resources,
                })
            })
            .collect()
    }
}
