//! Allocation-cycle benchmark (no criterion): one cycle at 1k/10k agents × 10/100/1k frameworks.
//! The cluster and the measurement are `offer_scheduler::bench`, shared with `kumos bench`.
//!
//! Run: `cargo bench -p offer-scheduler --bench cycle` (each case is repeated at most 3 times
//! and stops early after 2 s, so the whole run stays bounded).

use offer_scheduler::bench::{measure, Scenario};
use std::time::Duration;

fn row(agents: usize, frameworks: usize, scenario: Scenario) {
    let t = measure(agents, frameworks, scenario, 3, Duration::from_secs(2));
    println!(
        "| {agents:>6} | {frameworks:>5} | {:<22} | {:>9.1} | {:>9.1} | {:>6} |",
        scenario.label(),
        t.wall.as_secs_f64() * 1000.0,
        t.cpu.map_or(f64::NAN, |c| c.as_secs_f64() * 1000.0),
        t.offers,
    );
}

fn main() {
    println!("| agents | frameworks | case | wall ms (best) | thread CPU ms (best) | offers |");
    println!("|---|---|---|---|---|---|");
    for agents in [1_000, 10_000] {
        for frameworks in [10, 100, 1_000] {
            row(agents, frameworks, Scenario::AllActive);
        }
    }
    for scenario in [Scenario::AllButOneSuppressed, Scenario::FiltersActive] {
        for frameworks in [10, 100, 1_000] {
            row(10_000, frameworks, scenario);
        }
    }
}
