//! One allocation cycle over an immutable [`Snapshot`] of the cluster: pure, deterministic per RNG.

mod cycle;
#[cfg(test)]
mod tests;

use crate::filter::Filters;
use crate::quota::QuotaTable;
use crate::resources::{Resources, Scalar};
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// Resources held by one framework under one role on an agent (offered or used by tasks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// Framework id.
    pub framework: String,
    /// Role the resources are allocated to.
    pub role: String,
    /// The resources.
    pub resources: Resources,
}

/// An agent as the allocator sees it.
#[derive(Clone, Debug)]
pub struct Agent {
    /// Agent id.
    pub id: String,
    /// Everything the agent offers (`--resources` plus dynamic reservations).
    pub total: Resources,
    /// Outstanding offers and running tasks.
    pub allocations: Vec<Allocation>,
    /// Inactive (e.g. deactivated or unreachable) agents are skipped.
    pub active: bool,
}

/// Framework capabilities the allocator honours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `GPU_RESOURCES`: without it, agents with GPUs are never offered to the framework.
    pub gpu_resources: bool,
    /// `RESERVATION_REFINEMENT`: without it, refined reservations are stripped from offers.
    pub reservation_refinement: bool,
}

/// A framework as the allocator sees it.
#[derive(Clone, Debug, Default)]
pub struct Framework {
    /// Framework id.
    pub id: String,
    /// Subscribed roles.
    pub roles: Vec<String>,
    /// Roles for which the framework called SUPPRESS.
    pub suppressed_roles: BTreeSet<String>,
    /// Capabilities.
    pub capabilities: Capabilities,
    /// Disconnected frameworks are not offered anything.
    pub active: bool,
}

/// Everything one cycle reads.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Agents.
    pub agents: Vec<Agent>,
    /// Frameworks.
    pub frameworks: Vec<Framework>,
    /// Role weights (default 1).
    pub weights: BTreeMap<String, f64>,
    /// Role quotas.
    pub quotas: QuotaTable,
    /// Refused-offer filters.
    pub filters: Filters,
}

impl Snapshot {
    /// SUPPRESS: stop offers to the named roles (all subscribed roles when empty).
    pub fn suppress(&mut self, framework: &str, roles: &[String]) {
        if let Some(f) = self.frameworks.iter_mut().find(|f| f.id == framework) {
            let roles = if roles.is_empty() {
                f.roles.clone()
            } else {
                roles.to_vec()
            };
            f.suppressed_roles.extend(roles);
        }
    }

    /// REVIVE: clear filters and un-suppress the named roles (all when empty).
    pub fn revive(&mut self, framework: &str, roles: &[String]) {
        self.filters.revive(framework, roles);
        if let Some(f) = self.frameworks.iter_mut().find(|f| f.id == framework) {
            if roles.is_empty() {
                f.suppressed_roles.clear();
            } else {
                f.suppressed_roles.retain(|r| !roles.contains(r));
            }
        }
    }

    /// Records an offer as allocated on its agent (what the master does when sending it).
    pub fn record(&mut self, offer: &Offer) {
        if let Some(a) = self.agents.iter_mut().find(|a| a.id == offer.agent) {
            a.allocations.push(Allocation {
                framework: offer.framework.clone(),
                role: offer.role.clone(),
                resources: offer.resources.clone(),
            });
        }
    }
}

/// Which sorter orders roles and frameworks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SorterKind {
    /// Dominant Resource Fairness (Mesos' default).
    #[default]
    Drf,
    /// Weighted random; seeded from the cycle's RNG.
    Random,
}

/// Allocator settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Sorter for roles and frameworks.
    pub sorter: SorterKind,
    /// An offer must contain at least one of these (Mesos `--min_allocatable_resources`,
    /// default `cpus:0.01|mem:32`).
    pub min_allocatable: Vec<Vec<(String, Scalar)>>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            sorter: SorterKind::Drf,
            min_allocatable: vec![
                vec![("cpus".to_string(), Scalar(10))],
                vec![("mem".to_string(), Scalar::from_units(32))],
            ],
        }
    }
}

/// Resources offered to one framework for one role on one agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// Framework id.
    pub framework: String,
    /// Role the resources are allocated to (Mesos `allocation_info.role`).
    pub role: String,
    /// Agent id.
    pub agent: String,
    /// Offered resources.
    pub resources: Resources,
}

/// One allocation cycle with the default [`Config`].
pub fn allocate(snapshot: &Snapshot, now: Instant, rng: &mut impl Rng) -> Vec<Offer> {
    allocate_with(snapshot, &Config::default(), now, rng)
}

/// One allocation cycle: quota-guarantee stage, then fair-share stage, agents shuffled.
pub fn allocate_with(
    snapshot: &Snapshot,
    config: &Config,
    now: Instant,
    rng: &mut impl Rng,
) -> Vec<Offer> {
    let mut c = cycle::Cycle::new(snapshot, config, now, rng.random());
    let order = c.agent_order(rng);
    c.quota_stage(&order);
    c.fair_share_stage(&order);
    c.into_offers()
}
