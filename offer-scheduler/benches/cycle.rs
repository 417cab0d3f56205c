//! Allocation-cycle benchmark (no criterion): one cycle at 1k/10k agents × 10/100/1k frameworks.
//!
//! Run: `cargo bench -p offer-scheduler --bench cycle` (each case is repeated at most 3 times
//! and stops early after 2 s, so the whole run stays bounded).

use offer_scheduler::allocator::{allocate, Agent, Allocation, Framework, Snapshot};
use offer_scheduler::resources::Resources;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::time::{Duration, Instant};

/// Cluster where every agent is half allocated, so each agent still yields one offer.
fn snapshot(agents: usize, frameworks: usize, suppress_all_but_one: bool) -> Snapshot {
    let total =
        Resources::parse("cpus:8;mem:16384;disk:102400;ports:[31000-32000]").unwrap_or_default();
    let used = Resources::parse("cpus:4;mem:8192;ports:[31000-31499]").unwrap_or_default();
    let frameworks: Vec<Framework> = (0..frameworks)
        .map(|i| Framework {
            id: format!("fw-{i}"),
            roles: vec![format!("role-{i}")],
            active: true,
            suppressed_roles: if suppress_all_but_one && i > 0 {
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
    Snapshot {
        agents,
        frameworks,
        ..Snapshot::default()
    }
}

/// On-CPU time of this thread in ns (Linux schedstat), so a loaded shared machine does not
/// inflate the figure; `None` where unavailable.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn measure(agents: usize, frameworks: usize, suppress: bool) {
    let snap = snapshot(agents, frameworks, suppress);
    let mut rng = StdRng::seed_from_u64(7);
    let mut best = Duration::MAX;
    let mut best_cpu = u64::MAX;
    let mut offers = 0;
    let started = Instant::now();
    for _ in 0..3 {
        let (t, cpu) = (Instant::now(), thread_cpu_ns());
        offers = allocate(&snap, Instant::now(), &mut rng).len();
        best = best.min(t.elapsed());
        if let (Some(a), Some(b)) = (cpu, thread_cpu_ns()) {
            best_cpu = best_cpu.min(b.saturating_sub(a));
        }
        if started.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    let case = if suppress {
        "all-but-one suppressed"
    } else {
        "all active"
    };
    println!(
        "| {agents:>6} | {frameworks:>5} | {case:<22} | {:>9.1} | {:>9.1} | {offers:>6} |",
        best.as_secs_f64() * 1000.0,
        best_cpu as f64 / 1e6
    );
}

fn main() {
    println!("| agents | frameworks | case | wall ms (best) | thread CPU ms (best) | offers |");
    println!("|---|---|---|---|---|---|");
    for agents in [1_000, 10_000] {
        for frameworks in [10, 100, 1_000] {
            measure(agents, frameworks, false);
        }
    }
    for frameworks in [10, 100, 1_000] {
        measure(10_000, frameworks, true);
    }
}
