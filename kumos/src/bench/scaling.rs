//! Section 5: how cost grows with cluster size — allocator cycle time against agents (section 2)
//! and scheduling throughput against cluster size (section 1), with the log-log slope between
//! neighbouring sizes so superlinear growth shows as a number above 1.

use std::collections::BTreeSet;

use serde_json::json;

use super::report::Report;
use super::stats::{fmt_count, fmt_ms};

/// The exponent k in cost ∝ size^k between two points: 1 linear, 2 quadratic; `None` when
/// either point is not positive or the sizes are equal.
pub fn growth_exponent(size1: f64, cost1: f64, size2: f64, cost2: f64) -> Option<f64> {
    let ok = size1 > 0.0 && size2 > 0.0 && cost1 > 0.0 && cost2 > 0.0 && size1 != size2;
    ok.then(|| (cost2 / cost1).ln() / (size2 / size1).ln())
}

fn fmt_exp(k: Option<f64>) -> String {
    k.map_or("–".into(), |k| format!("{k:.2}"))
}

/// Renders section 5 from the points sections 1 and 2 left in the report.
pub fn add_section(report: &mut Report) {
    let agents: BTreeSet<usize> = report.cycle_points.iter().map(|p| p.agents).collect();
    let frameworks: BTreeSet<usize> = report.cycle_points.iter().map(|p| p.frameworks).collect();
    let cycle = |a: usize, f: usize| {
        report
            .cycle_points
            .iter()
            .find(|p| p.agents == a && p.frameworks == f)
            .map(|p| p.wall_ms)
    };
    let mut md = String::from(
        "Allocator cycle wall time (ms, all frameworks active) against agents; *k* is the exponent \
in time ∝ agents^k from the previous row (1 = linear, above 1 = superlinear).\n\n| agents |",
    );
    for f in &frameworks {
        md += &format!(" {} frameworks | k |", fmt_count(*f as f64));
    }
    md += "\n|---|";
    md += &"---|---|".repeat(frameworks.len());
    md.push('\n');
    let mut prev: Option<usize> = None;
    for &a in &agents {
        md += &format!("| {} |", fmt_count(a as f64));
        for &f in &frameworks {
            let now = cycle(a, f);
            let k = prev.and_then(|p| growth_exponent(p as f64, cycle(p, f)?, a as f64, now?));
            md += &format!(" {} | {} |", now.map_or("–".into(), fmt_ms), fmt_exp(k));
        }
        md.push('\n');
        prev = Some(a);
    }
    if agents.is_empty() {
        md += "| (section 2 did not run) |\n";
    }

    let mut pods = report.pods_points.clone();
    pods.sort_by_key(|p| (p.agents, p.pods));
    md += "\nEnd-to-end scheduling throughput against cluster size (section 1's runs); *k* is the \
exponent in time per pod ∝ pods^k from the previous row.\n\n\
| simulated agents | pods | pods/s | k |\n|---|---|---|---|\n";
    let mut prev: Option<(usize, f64)> = None;
    for p in &pods {
        let k = prev.and_then(|(n, rate)| {
            growth_exponent(n as f64, 1.0 / rate, p.pods as f64, 1.0 / p.pods_per_second)
        });
        md += &format!(
            "| {} | {} | {} | {} |\n",
            fmt_count(f64::from(p.agents)),
            fmt_count(p.pods as f64),
            fmt_count(p.pods_per_second),
            fmt_exp(k)
        );
        prev = Some((p.pods, p.pods_per_second));
    }
    if pods.is_empty() {
        md += "| (section 1 did not run) | | | |\n";
    } else if pods.len() == 1 {
        md += "\nOne scheduling run only (`--quick` runs one size); a full run adds sizes.\n";
    }
    let cycles: Vec<_> = report
        .cycle_points
        .iter()
        .map(|p| json!({"agents": p.agents, "frameworks": p.frameworks, "wall_ms": p.wall_ms}))
        .collect();
    let runs: Vec<_> = pods
        .iter()
        .map(|p| json!({"agents": p.agents, "pods": p.pods, "pods_per_second": p.pods_per_second}))
        .collect();
    report.section(
        5,
        "Scaling curve",
        md,
        json!({"allocator": cycles, "scheduling": runs}),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::{CyclePoint, PodsPoint};

    #[test]
    fn exponents() {
        let k = growth_exponent(1_000.0, 10.0, 10_000.0, 100.0).unwrap_or(0.0);
        assert!((k - 1.0).abs() < 1e-9);
        let k = growth_exponent(1_000.0, 10.0, 10_000.0, 1_000.0).unwrap_or(0.0);
        assert!((k - 2.0).abs() < 1e-9);
        assert_eq!(growth_exponent(1.0, 0.0, 2.0, 1.0), None);
        assert_eq!(growth_exponent(5.0, 1.0, 5.0, 2.0), None);
    }

    #[test]
    fn tables_show_what_exists() {
        let mut r = Report::default();
        for (a, f, ms) in [(1_000, 10, 10.0), (10_000, 10, 200.0), (1_000, 100, 12.0)] {
            r.cycle_points.push(CyclePoint {
                agents: a,
                frameworks: f,
                wall_ms: ms,
            });
        }
        r.pods_points.push(PodsPoint {
            agents: 100,
            pods: 1_000,
            pods_per_second: 8.0,
        });
        add_section(&mut r);
        let md = &r.sections[0].markdown;
        assert!(
            md.contains("| agents | 10 frameworks | k | 100 frameworks | k |"),
            "{md}"
        );
        assert!(md.contains("| 1,000 | 10.0 | – | 12.0 | – |"), "{md}");
        assert!(md.contains("| 10,000 | 200.0 | 1.30 | – | – |"), "{md}");
        assert!(md.contains("| 100 | 1,000 | 8 | – |"), "{md}");
        assert!(md.contains("One scheduling run only"));

        let mut empty = Report::default();
        add_section(&mut empty);
        assert!(empty.sections[0].markdown.contains("section 2 did not run"));
        assert!(empty.sections[0].markdown.contains("section 1 did not run"));
    }
}
