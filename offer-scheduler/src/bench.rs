//! Allocation-cycle benchmark fixtures, shared by `cargo bench --bench cycle` and `kumos bench`
//! so both measure the same cluster: one source for the setup and the measurement.
//!
//! Every agent has `cpus:8;mem:16384;disk:102400;ports:[31000-32000]` and is already half
//! allocated (`cpus:4;mem:8192;ports:[31000-31499]`, spread round-robin over the frameworks), so
//! every agent yields one offer. Each framework subscribes to its own role (hierarchical DRF: a
//! role sorter, then a framework sorter per role).

use crate::allocator::{allocate, Agent, Allocation, Framework, Snapshot};
use crate::resources::Resources;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::time::{Duration, Instant};

/// What the frameworks have done before the measured cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Every framework active, no filters.
    AllActive,
    /// Every framework but one has SUPPRESSed its role.
    AllButOneSuppressed,
    /// Every framework declined every offer of one earlier cycle (refuse_seconds 3600), so one
    /// refused-offer filter per agent is installed and checked (Mesos' DeclineOffers benchmark).
    FiltersActive,
}

impl Scenario {
    /// A short name for reports.
    pub fn label(self) -> &'static str {
        match self {
            Scenario::AllActive => "all active",
            Scenario::AllButOneSuppressed => "all-but-one suppressed",
            Scenario::FiltersActive => "filters active",
        }
    }
}

/// The cluster of `agents` × `frameworks` in `scenario`, ready for one cycle.
pub fn snapshot(agents: usize, frameworks: usize, scenario: Scenario) -> Snapshot {
    let frameworks = frameworks.max(1);
    let total =
        Resources::parse("cpus:8;mem:16384;disk:102400;ports:[31000-32000]").unwrap_or_default();
    let used = Resources::parse("cpus:4;mem:8192;ports:[31000-31499]").unwrap_or_default();
    let suppress = scenario == Scenario::AllButOneSuppressed;
    let frameworks: Vec<Framework> = (0..frameworks)
        .map(|i| Framework {
            id: format!("fw-{i}"),
            roles: vec![format!("role-{i}")],
            active: true,
            suppressed_roles: if suppress && i > 0 {
                [format!("role-{i}")].into()
            } else {
                Default::default()
            },
            ..Framework::default()
        })
        .collect();
    let agents = (0..agents)
        .map(|i| {
            let f = &frameworks[i % frameworks.len()];
            Agent {
                id: format!("agent-{i}"),
                total: total.clone(),
                allocations: vec![Allocation {
                    framework: f.id.clone(),
                    role: f.roles[0].clone(),
                    resources: used.clone(),
                }],
                active: true,
            }
        })
        .collect();
    let mut snap = Snapshot {
        agents,
        frameworks,
        ..Snapshot::default()
    };
    if scenario == Scenario::FiltersActive {
        let now = Instant::now();
        let mut rng = StdRng::seed_from_u64(11);
        for offer in allocate(&snap, now, &mut rng) {
            snap.filters.decline(
                &offer.framework,
                &offer.role,
                &offer.agent,
                offer.resources,
                Some(3600.0),
                now,
            );
        }
    }
    snap
}

/// On-CPU time of the calling thread in ns (Linux schedstat), so a loaded shared machine does
/// not inflate the figure; `None` where unavailable.
pub fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// The best of a few cycles over one snapshot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CycleTiming {
    /// Agents in the cluster.
    pub agents: usize,
    /// Frameworks in the cluster.
    pub frameworks: usize,
    /// Best wall time of one cycle.
    pub wall: Duration,
    /// Best on-CPU time of the measuring thread for one cycle (`None` without schedstat).
    pub cpu: Option<Duration>,
    /// Offers the cycle made.
    pub offers: usize,
    /// Cycles run.
    pub runs: usize,
}

/// Builds the snapshot (not timed), then runs at most `max_runs` cycles, stopping early once
/// `budget` has passed; reports the best. Runs on the calling thread (blocking).
pub fn measure(
    agents: usize,
    frameworks: usize,
    scenario: Scenario,
    max_runs: usize,
    budget: Duration,
) -> CycleTiming {
    let snap = snapshot(agents, frameworks, scenario);
    let mut rng = StdRng::seed_from_u64(7);
    let mut best = Duration::MAX;
    let mut best_cpu: Option<u64> = None;
    let mut offers = 0;
    let mut runs = 0;
    let started = Instant::now();
    while runs < max_runs.max(1) {
        let (t, cpu) = (Instant::now(), thread_cpu_ns());
        offers = allocate(&snap, Instant::now(), &mut rng).len();
        best = best.min(t.elapsed());
        if let (Some(a), Some(b)) = (cpu, thread_cpu_ns()) {
            let spent = b.saturating_sub(a);
            best_cpu = Some(best_cpu.map_or(spent, |c| c.min(spent)));
        }
        runs += 1;
        if started.elapsed() > budget {
            break;
        }
    }
    CycleTiming {
        agents,
        frameworks,
        wall: best,
        cpu: best_cpu.map(Duration::from_nanos),
        offers,
        runs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_agent_yields_one_offer() {
        let snap = snapshot(20, 3, Scenario::AllActive);
        assert_eq!(snap.agents.len(), 20);
        assert_eq!(snap.frameworks.len(), 3);
        let offers = allocate(&snap, Instant::now(), &mut StdRng::seed_from_u64(1));
        assert_eq!(offers.len(), 20);
    }

    #[test]
    fn suppressed_leaves_one_framework_offered() {
        let snap = snapshot(10, 4, Scenario::AllButOneSuppressed);
        let offers = allocate(&snap, Instant::now(), &mut StdRng::seed_from_u64(1));
        assert!(offers.iter().all(|o| o.framework == "fw-0"));
    }

    #[test]
    fn filters_steer_offers_away_from_the_declining_framework() {
        let snap = snapshot(10, 2, Scenario::FiltersActive);
        for a in &snap.agents {
            let declined = ["fw-0", "fw-1"].iter().any(|f| {
                snap.filters.has_any(f)
                    && snap.filters.is_filtered(
                        f,
                        &format!("role-{}", &f[3..]),
                        &a.id,
                        &Resources::parse("cpus:4").unwrap_or_default(),
                        Instant::now(),
                    )
            });
            assert!(declined, "agent {} has no filter", a.id);
        }
        // Every offer of the measured cycle goes to a framework that has not declined that agent.
        let now = Instant::now();
        for o in allocate(&snap, now, &mut StdRng::seed_from_u64(2)) {
            assert!(!snap
                .filters
                .is_filtered(&o.framework, &o.role, &o.agent, &o.resources, now));
        }
    }

    #[test]
    fn measure_reports_the_cluster() {
        let t = measure(5, 2, Scenario::AllActive, 2, Duration::from_secs(60));
        assert_eq!((t.agents, t.frameworks, t.offers), (5, 2, 5));
        assert!(t.runs >= 1 && t.runs <= 2);
    }
}
