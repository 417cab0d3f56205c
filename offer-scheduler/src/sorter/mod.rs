//! Client sorters deciding who is offered first: DRF and a weighted random sorter behind one trait.

mod drf;
mod random;
#[cfg(test)]
mod tests;

use crate::resources::Scalar;
use std::collections::HashMap;
use std::sync::Arc;

pub use drf::DrfSorter;
pub use random::RandomSorter;

/// A sorter client (a role, or a framework within a role). `Arc` so `sort()` is cheap per agent.
pub type Client = Arc<str>;

/// Scalar amounts indexed by a per-cycle [`crate::resources::NameIndex`] (dense, no hashing).
pub type Amounts = [Scalar];

/// The sorter interface shared by [`DrfSorter`] and [`RandomSorter`] (Mesos `Sorter`).
pub trait Sorter {
    /// Adds an (active) client; adding an existing client is a no-op.
    fn add_client(&mut self, client: &str);
    /// Removes a client and its allocations.
    fn remove_client(&mut self, client: &str);
    /// Includes the client in `sort()` again.
    fn activate(&mut self, client: &str);
    /// Excludes the client from `sort()` but keeps its allocations.
    fn deactivate(&mut self, client: &str);
    /// Sets a weight (> 0; others are ignored). May precede `add_client`, as Mesos' weights do.
    fn update_weight(&mut self, client: &str, weight: f64);
    /// Sets the total pool that shares are computed against.
    fn set_total(&mut self, total: &Amounts);
    /// Records `amounts` allocated to `client` on `agent`.
    fn allocated(&mut self, client: &str, agent: usize, amounts: &Amounts);
    /// Records `amounts` returned by `client` on `agent` (saturating).
    fn unallocated(&mut self, client: &str, agent: usize, amounts: &Amounts);
    /// The client's total allocation (empty when unknown).
    fn allocation(&self, client: &str) -> Vec<Scalar>;
    /// The client's allocation on one agent (empty when none).
    fn allocation_on(&self, client: &str, agent: usize) -> Vec<Scalar>;
    /// True when the client was added.
    fn contains(&self, client: &str) -> bool;
    /// Active clients, the one to offer to first at the front.
    fn sort(&mut self) -> Vec<Client>;
}

/// One client's bookkeeping, shared by both sorters.
#[derive(Debug)]
pub(crate) struct ClientState {
    pub name: Client,
    pub active: bool,
    /// Cached from `Clients::weights` so share computation does no hashing.
    pub weight: f64,
    pub total: Vec<Scalar>,
    pub per_agent: HashMap<usize, Vec<Scalar>>,
}

/// Client table shared by both sorters: insertion-ordered with a name index.
#[derive(Debug, Default)]
pub(crate) struct Clients {
    pub list: Vec<ClientState>,
    index: HashMap<Client, usize>,
    pub weights: HashMap<String, f64>,
}

fn add_into(dst: &mut Vec<Scalar>, src: &Amounts) {
    if dst.len() < src.len() {
        dst.resize(src.len(), Scalar::ZERO);
    }
    for (d, s) in dst.iter_mut().zip(src) {
        *d += *s;
    }
}

fn sub_from(dst: &mut [Scalar], src: &Amounts) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = (*d - *s).max(Scalar::ZERO);
    }
}

impl Clients {
    pub fn get(&self, client: &str) -> Option<&ClientState> {
        self.index.get(client).map(|&i| &self.list[i])
    }

    pub fn position(&self, client: &str) -> Option<usize> {
        self.index.get(client).copied()
    }

    pub fn weight(&self, client: &str) -> f64 {
        self.weights.get(client).copied().unwrap_or(1.0)
    }

    pub fn add(&mut self, client: &str) -> bool {
        if self.index.contains_key(client) {
            return false;
        }
        let name: Client = Arc::from(client);
        self.index.insert(name.clone(), self.list.len());
        let weight = self.weight(client);
        self.list.push(ClientState {
            name,
            active: true,
            weight,
            total: Vec::new(),
            per_agent: HashMap::new(),
        });
        true
    }

    pub fn remove(&mut self, client: &str) -> bool {
        let Some(i) = self.index.remove(client) else {
            return false;
        };
        self.list.remove(i);
        // Rare operation: reindex rather than keep tombstones in the hot path.
        for (j, c) in self.list.iter().enumerate().skip(i) {
            self.index.insert(c.name.clone(), j);
        }
        true
    }

    pub fn set_weight(&mut self, client: &str, weight: f64) {
        self.weights.insert(client.to_string(), weight);
        if let Some(&i) = self.index.get(client) {
            self.list[i].weight = weight;
        }
    }

    pub fn set_active(&mut self, client: &str, active: bool) {
        if let Some(&i) = self.index.get(client) {
            self.list[i].active = active;
        }
    }

    pub fn allocated(&mut self, client: &str, agent: usize, amounts: &Amounts) -> Option<usize> {
        let i = *self.index.get(client)?;
        let c = &mut self.list[i];
        add_into(&mut c.total, amounts);
        add_into(c.per_agent.entry(agent).or_default(), amounts);
        Some(i)
    }

    pub fn unallocated(&mut self, client: &str, agent: usize, amounts: &Amounts) -> Option<usize> {
        let i = *self.index.get(client)?;
        let c = &mut self.list[i];
        sub_from(&mut c.total, amounts);
        if let Some(a) = c.per_agent.get_mut(&agent) {
            sub_from(a, amounts);
            if a.iter().all(|s| *s == Scalar::ZERO) {
                c.per_agent.remove(&agent);
            }
        }
        Some(i)
    }

    pub fn allocation(&self, client: &str) -> Vec<Scalar> {
        self.get(client)
            .map(|c| c.total.clone())
            .unwrap_or_default()
    }

    pub fn allocation_on(&self, client: &str, agent: usize) -> Vec<Scalar> {
        self.get(client)
            .and_then(|c| c.per_agent.get(&agent).cloned())
            .unwrap_or_default()
    }
}
