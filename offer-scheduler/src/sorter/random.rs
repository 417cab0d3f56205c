//! Weighted random sorter: a seeded weighted shuffle (Efraimidis–Spirakis keys `u^(1/w)`).

use super::{Amounts, Client, Clients, Sorter};
use crate::resources::Scalar;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Random sorter: each `sort()` is an independent shuffle where heavier clients tend to come first.
#[derive(Debug)]
pub struct RandomSorter {
    clients: Clients,
    rng: StdRng,
}

impl RandomSorter {
    /// A sorter whose shuffles are reproducible from `seed`.
    pub fn new(seed: u64) -> RandomSorter {
        RandomSorter {
            clients: Clients::default(),
            rng: StdRng::seed_from_u64(seed),
        }
    }
}

impl Sorter for RandomSorter {
    fn add_client(&mut self, client: &str) {
        self.clients.add(client);
    }

    fn remove_client(&mut self, client: &str) {
        self.clients.remove(client);
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
        }
    }

    fn set_total(&mut self, _total: &Amounts) {}

    fn allocated(&mut self, client: &str, agent: usize, amounts: &Amounts) {
        self.clients.allocated(client, agent, amounts);
    }

    fn unallocated(&mut self, client: &str, agent: usize, amounts: &Amounts) {
        self.clients.unallocated(client, agent, amounts);
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
        let mut keyed: Vec<(f64, Client)> = Vec::new();
        for c in self.clients.list.iter().filter(|c| c.active) {
            let u: f64 = self.rng.random_range(f64::MIN_POSITIVE..1.0);
            keyed.push((u.powf(1.0 / c.weight), c.name.clone()));
        }
        keyed.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        keyed.into_iter().map(|(_, c)| c).collect()
    }
}
