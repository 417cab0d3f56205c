//! Section 4: footprint of `kumos server` — time from spawning it to `/readyz` answering 200
//! (best of a few fresh starts), resident memory idle and with many pods stored.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::load::{self, call, Bounds};
use super::report::{Report, Target};
use super::stats::{fmt_count, fmt_ms, kib_to_mb, percentile};

/// Idle RSS target (MB).
pub const TARGET_IDLE_MB: f64 = 40.0;
/// Start-to-ready target (ms).
pub const TARGET_READY_MS: f64 = 500.0;
/// How long a server sits after readiness before its idle RSS is read.
pub const SETTLE: Duration = Duration::from_secs(2);

/// `VmRSS` in KiB from the text of `/proc/<pid>/status`.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Resident memory of process `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    parse_vm_rss(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// What section 4 reports; sections 3 and 4 both fill it.
#[derive(Clone, Debug, Default)]
pub struct Footprint {
    /// Spawn-to-ready times of fresh starts (ms).
    pub ready_ms: Vec<f64>,
    /// RSS after readiness and a short settle, 1 simulated agent (KiB).
    pub idle_kib: Option<u64>,
    /// (what was stored, RSS in KiB), e.g. ("idle, 0 agents", …), ("1,000 pods, 0 agents", …).
    pub rss: Vec<(String, u64)>,
}

/// Starts `starts` fresh servers (1 simulated agent, a new data dir each), timing spawn to
/// `/readyz` 200; reads the idle RSS of the last one after [`SETTLE`].
pub async fn measure_startup(tmp: &Path, starts: usize, fp: &mut Footprint) -> anyhow::Result<()> {
    let c = load::client();
    for k in 0..starts {
        let t = Instant::now();
        let (server, base) = super::start_server(&tmp.join(format!("startup-{k}")), 1)?;
        load::wait_ready(&c, &base, Duration::from_secs(60)).await?;
        fp.ready_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if k + 1 == starts {
            tokio::time::sleep(SETTLE).await;
            fp.idle_kib = rss_kib(server.0.id());
        }
    }
    Ok(())
}

/// `--large`: a fresh server (0 agents) with `pods` pods created through the API at 16 clients.
pub async fn measure_large(tmp: &Path, pods: usize, fp: &mut Footprint) -> anyhow::Result<()> {
    let c = load::client();
    let (server, base) = super::start_server(&tmp.join("large"), 0)?;
    load::wait_ready(&c, &base, Duration::from_secs(60)).await?;
    load::create_namespace(&c, &base, "large").await?;
    eprintln!("kumos bench: creating {pods} pods for the large footprint");
    let url = Arc::new(format!("{base}/api/v1/namespaces/large/pods"));
    let bounds = Bounds {
        concurrency: 16,
        max_ops: pods,
        max_time: Duration::from_secs(3600),
    };
    let s = load::run(bounds, move |i| {
        let (c, url) = (c.clone(), Arc::clone(&url));
        async move {
            let body = super::api::pod("large", &format!("pod-{i}"))
                .to_string()
                .into_bytes();
            call(&c, "POST", &url, None, Some(body)).await.map(drop)
        }
    })
    .await?;
    anyhow::ensure!(s.errors == 0, "{} creates failed", s.errors);
    tokio::time::sleep(SETTLE).await;
    if let Some(kib) = rss_kib(server.0.id()) {
        fp.rss
            .push((format!("{} pods, 0 agents", fmt_count(pods as f64)), kib));
    }
    Ok(())
}

/// Renders section 4 and its targets.
pub fn add_section(fp: &Footprint, report: &mut Report) {
    let mut sorted = fp.ready_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let best = sorted.first().copied();
    let idle_mb = fp.idle_kib.map(kib_to_mb);
    let mut md = format!(
        "`kumos server --insecure-http --runtime simulated` children, embedded store, controllers on. \
Start to ready: from spawning the process on a fresh `--data-dir` to `/readyz` answering 200 \
(polled every 5 ms), {} starts. RSS is `VmRSS` of `/proc/<pid>/status`, read {} s after readiness \
or after the last write.\n\n\
| figure | measured | target | measured ÷ target |\n|---|---|---|---|\n",
        fp.ready_ms.len(),
        SETTLE.as_secs()
    );
    md += &format!(
        "| start → /readyz, best (median) | {} ms ({} ms) | ≤ 500 ms | {} |\n",
        best.map_or("–".into(), fmt_ms),
        fmt_ms(percentile(&sorted, 0.5)),
        super::stats::fmt_ratio(best.and_then(|b| super::stats::ratio(b, TARGET_READY_MS))),
    );
    md += &format!(
        "| idle RSS, 1 simulated agent | {} MB | ≤ 40 MB | {} |\n",
        idle_mb.map_or("–".into(), |m| format!("{m:.1}")),
        super::stats::fmt_ratio(idle_mb.and_then(|m| super::stats::ratio(m, TARGET_IDLE_MB))),
    );
    for (what, kib) in &fp.rss {
        md += &format!("| RSS, {what} | {:.1} MB | – | – |\n", kib_to_mb(*kib));
    }
    report.targets.push(Target::at_most(
        "`kumos server` start → /readyz (best)",
        TARGET_READY_MS,
        "ms",
        best,
    ));
    report.targets.push(Target::at_most(
        "`kumos server` idle RSS",
        TARGET_IDLE_MB,
        "MB",
        idle_mb,
    ));
    let rss: Vec<_> = fp
        .rss
        .iter()
        .map(|(w, k)| json!({"what": w, "rss_mb": kib_to_mb(*k)}))
        .collect();
    report.section(
        4,
        "Footprint",
        md,
        json!({"ready_ms": fp.ready_ms, "idle_rss_mb": idle_mb, "rss": rss,
            "targets": {"idle_rss_mb": TARGET_IDLE_MB, "ready_ms": TARGET_READY_MS}}),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::Verdict;

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\tkumos\nVmPeak:\t  900 kB\nVmRSS:\t   31234 kB\nThreads:\t9\n";
        assert_eq!(parse_vm_rss(status), Some(31234));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert!(rss_kib(std::process::id()).is_some_and(|k| k > 0));
    }

    #[test]
    fn section_judges_both_targets() {
        let fp = Footprint {
            ready_ms: vec![700.0, 300.0, 400.0],
            idle_kib: Some(50_000),
            rss: vec![("1,000 pods, 0 agents".into(), 80_000)],
        };
        let mut r = Report::default();
        add_section(&fp, &mut r);
        assert_eq!(r.targets[0].measured, Some(300.0));
        assert_eq!(r.targets[0].verdict(), Verdict::Met);
        assert_eq!(r.targets[1].verdict(), Verdict::Missed); // 51.2 MB
        let md = &r.sections[0].markdown;
        assert!(
            md.contains(
                "| start → /readyz, best (median) | 300.0 ms (400.0 ms) | ≤ 500 ms | 0.60 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| idle RSS, 1 simulated agent | 51.2 MB | ≤ 40 MB | 1.28 |"),
            "{md}"
        );
        assert!(
            md.contains("| RSS, 1,000 pods, 0 agents | 81.9 MB |"),
            "{md}"
        );
    }
}
