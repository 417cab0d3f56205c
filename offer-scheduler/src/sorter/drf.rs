//! Dominant Resource Fairness: share = max_r(allocated_r / total_r) / weight, ties by name.

use super::{Amounts, Client, Clients, Sorter};
use crate::resources::Scalar;

/// DRF sorter. Shares are cached per client and the order is maintained incrementally: one
/// allocation moves one client by binary search instead of re-sorting everyone.
#[derive(Debug, Default)]
pub struct DrfSorter {
    clients: Clients,
    total: Vec<Scalar>,
    shares: Vec<f64>,
    order: Vec<usize>,
    dirty: bool,
}

impl DrfSorter {
    /// An empty sorter.
    pub fn new() -> DrfSorter {
        DrfSorter::default()
    }

    /// The client's weighted dominant share (0 when unknown).
    pub fn share(&self, client: &str) -> f64 {
        self.clients
            .position(client)
            .map_or(0.0, |i| self.compute_share(i))
    }

    fn compute_share(&self, i: usize) -> f64 {
        let c = &self.clients.list[i];
        let mut share = 0.0f64;
        for (a, t) in c.total.iter().zip(&self.total) {
            if t.is_positive() {
                share = share.max(a.0 as f64 / t.0 as f64);
            }
        }
        share / c.weight
    }

    fn less(&self, a: usize, b: usize) -> std::cmp::Ordering {
        let list = &self.clients.list;
        self.shares[a]
            .total_cmp(&self.shares[b])
            .then_with(|| list[a].name.cmp(&list[b].name))
    }

    fn refresh(&mut self, i: usize) {
        self.shares[i] = self.compute_share(i);
        if self.dirty {
            return;
        }
        if let Some(pos) = self.order.iter().position(|&x| x == i) {
            self.order.remove(pos);
            let at = self.order.partition_point(|&x| self.less(x, i).is_lt());
            self.order.insert(at, i);
        }
    }

    fn rebuild(&mut self) {
        self.shares = (0..self.clients.list.len())
            .map(|i| self.compute_share(i))
            .collect();
        self.order = (0..self.clients.list.len()).collect();
        self.dirty = true;
    }
}

impl Sorter for DrfSorter {
    fn add_client(&mut self, client: &str) {
        if self.clients.add(client) {
            let i = self.clients.list.len() - 1;
            self.shares.push(self.compute_share(i));
            self.order.push(i);
            self.dirty = true;
        }
    }

    fn remove_client(&mut self, client: &str) {
        if self.clients.remove(client) {
            self.rebuild();
        }
    }

    fn activate(&mut self, client: &str) {
        self.clients.set_active(client, true);
    }

    fn deactivate(&mut self, client: &str) {
        self.clients.set_active(client, false);
    }

    fn update_weight(&mut self, client: &str, weight: f64) {
        if weight.is_finite() && weight > 0.0 {
            self.clients.set_weight(client, weight);
            self.rebuild();
        }
    }

    fn set_total(&mut self, total: &Amounts) {
        self.total = total.to_vec();
        self.rebuild();
    }

    fn allocated(&mut self, client: &str, agent: usize, amounts: &Amounts) {
        if let Some(i) = self.clients.allocated(client, agent, amounts) {
            self.refresh(i);
        }
    }

    fn unallocated(&mut self, client: &str, agent: usize, amounts: &Amounts) {
        if let Some(i) = self.clients.unallocated(client, agent, amounts) {
            self.refresh(i);
        }
    }

    fn allocation(&self, client: &str) -> Vec<Scalar> {
        self.clients.allocation(client)
    }

    fn allocation_on(&self, client: &str, agent: usize) -> Vec<Scalar> {
        self.clients.allocation_on(client, agent)
    }

    fn contains(&self, client: &str) -> bool {
        self.clients.get(client).is_some()
    }

    fn sort(&mut self) -> Vec<Client> {
        if self.dirty {
            let mut order = std::mem::take(&mut self.order);
            order.sort_by(|&a, &b| self.less(a, b));
            self.order = order;
            self.dirty = false;
        }
        self.order
            .iter()
            .map(|&i| &self.clients.list[i])
            .filter(|c| c.active)
            .map(|c| c.name.clone())
            .collect()
    }
}
