//! `kumos bench`, end to end at a tiny size: the real binary starts `kumos server` children on the
//! embedded store and on a real etcd, schedules an RC onto simulated agents and writes a report
//! with every figure of the scheduling section, its targets in the summary and the scaling curve. Fails (never skips) without etcd.

use std::path::Path;
use std::process::Command;

use serde_json::Value as Json;

#[test]
fn bench_reports_the_scheduling_section_on_both_stores() -> anyhow::Result<()> {
    let out = tempfile::tempdir()?;
    let status = Command::new(Path::new(env!("CARGO_BIN_EXE_kumos")))
        .args([
            "bench",
            "--pods",
            "40",
            "--agents",
            "4",
            "--concurrency",
            "8",
            "--sections",
            "1,5",
        ])
        .arg("--out")
        .arg(out.path())
        .status()?;
    assert!(status.success(), "kumos bench failed: {status}");
    let report: Json =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json"))?)?;
    let scheduling = &report["sections"]["1"]["figures"];
    let runs = scheduling["runs"].as_array().expect("scheduling runs");
    let stores: Vec<&str> = runs.iter().filter_map(|r| r["store"].as_str()).collect();
    assert_eq!(stores, ["embedded", "etcd"]);
    for r in runs {
        assert_eq!(r["pods"], 40);
        for field in [
            "pods_per_second",
            "writes_per_pod",
            "raw_puts_per_second",
            "ceiling_ratio",
        ] {
            let v = r[field].as_f64().unwrap_or(0.0);
            assert!(v > 0.0, "{field} = {v} in {r}");
        }
        let p50 = r["create_to_running_ms"]["p50"].as_f64().unwrap_or(-1.0);
        let p99 = r["create_to_running_ms"]["p99"].as_f64().unwrap_or(-1.0);
        assert!(p50 >= 0.0 && p99 >= p50, "{r}");
        assert!(r["verdict"].as_str().is_some_and(|v| v.contains("target")));
    }
    let points = scheduling["scaling_points"].as_array().expect("points");
    assert_eq!(points.len(), 1);
    assert_eq!(points[0]["agents"], 4);
    // The summary judges the embedded run against the pods/s target and the etcd run against the
    // fraction of the write ceiling.
    let targets = report["targets"].as_array().expect("targets");
    assert!(
        targets.iter().any(|t| t["name"]
            .as_str()
            .is_some_and(|n| n.contains("embedded store, 40 pods on 4 agents"))),
        "{targets:?}"
    );
    assert!(
        targets
            .iter()
            .any(|t| t["name"].as_str().is_some_and(|n| n.contains("on etcd"))),
        "{targets:?}"
    );
    let md = std::fs::read_to_string(out.path().join("report.md"))?;
    assert!(
        md.contains("## 1. End-to-end scheduling throughput"),
        "{md}"
    );
    assert!(
        md.contains("kube-scheduler scheduler_perf 680 pods/s")
            && md.contains("## 5. Scaling curve"),
        "{md}"
    );
    Ok(())
}
