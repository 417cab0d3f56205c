//! `kumos bench`: the benchmark harness. Each section measures one part of Kumos against a
//! reference taken in the same run (ratios, not lone absolute times) and writes into one
//! [`report::Report`] (report.md and report.json under `--out`), whose summary lists every target:
//! end-to-end scheduling against the store's raw put rate (`scheduling`), the allocator cycle
//! (`allocator`), the API server against the raw store (`api_section`, `api`, `watch`), footprint
//! (`footprint`) and the scaling curve (`scaling`).

mod allocator;
mod api;
mod api_section;
mod etcd;
mod footprint;
mod host;
mod load;
mod report;
mod scaling;
mod scheduling;
mod stats;
mod watch;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde_json::json;

/// Flags of `kumos bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Small sizes: the whole bench in under 5 minutes on a 2-core machine.
    #[arg(long)]
    pub quick: bool,
    /// Adds the largest runs: scheduling 10k pods on 1,000 agents and 100k on 10,000, footprint
    /// with 100k pods.
    #[arg(long, conflicts_with = "quick")]
    pub large: bool,
    /// Scheduling section: pods in the RC (overrides the preset; runs both stores).
    #[arg(long)]
    pub pods: Option<usize>,
    /// Scheduling section: simulated agents, comma-separated (with `--pods`; default 100).
    #[arg(long, value_delimiter = ',')]
    pub agents: Vec<u32>,
    /// Concurrency of the raw-store reference puts (the framework's write cap).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Where the Markdown and JSON reports go.
    #[arg(long, default_value = "bench-report")]
    pub out: PathBuf,
    /// Sections to run (1 scheduling, 2 allocator, 3 API server, 4 footprint, 5 scaling curve).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4,5")]
    pub sections: Vec<u8>,
    /// Store of section 3's API server and its raw-store reference (etcd: a throwaway etcd child).
    #[arg(long, value_enum, default_value_t = crate::cli::StoreKind::Embedded)]
    pub store: crate::cli::StoreKind,
}

impl BenchArgs {
    fn scheduling_runs(&self) -> Vec<scheduling::Scenario> {
        let Some(pods) = self.pods else {
            return scheduling::preset(self.quick, self.large);
        };
        let agents = if self.agents.is_empty() {
            vec![100]
        } else {
            self.agents.clone()
        };
        let mut runs = Vec::new();
        for store in [crate::cli::StoreKind::Embedded, crate::cli::StoreKind::Etcd] {
            for a in &agents {
                runs.push(scheduling::Scenario {
                    pods,
                    agents: *a,
                    store,
                });
            }
        }
        runs
    }
}

struct ServerChild(Child);

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(dir: &Path, agents: u32) -> anyhow::Result<(ServerChild, String)> {
    start_server_with(dir, agents, &[])
}

/// The `kumos server` flags that store into the etcd at `endpoint` under `prefix`.
fn etcd_flags(endpoint: &str, prefix: &str) -> Vec<String> {
    [
        "--store",
        "etcd",
        "--etcd-endpoints",
        endpoint,
        "--etcd-prefix",
        prefix,
    ]
    .map(String::from)
    .to_vec()
}

/// [`start_server`] with more flags (e.g. [`etcd_flags`]).
fn start_server_with(
    dir: &Path,
    agents: u32,
    extra: &[String],
) -> anyhow::Result<(ServerChild, String)> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .arg("server")
        .arg("--data-dir")
        .arg(dir)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--master-listen",
            "127.0.0.1:0",
            "--insecure-http",
        ])
        .args(["--agents", &agents.to_string(), "--runtime", "simulated"])
        .args(["--agent-resources", "cpus:64;mem:262144"])
        .args(["--allocation-interval", "200ms"])
        .args(extra)
        .env("KUMOS_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .context("starting kumos server")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .context("kumos server did not print its URL")?
        .to_string();
    Ok((ServerChild(child), url))
}

/// `kumos bench`: every selected section, then report.md and report.json under `--out`. A
/// section that fails is reported as failed and the command fails after writing the report.
pub async fn run_bench(args: BenchArgs) -> anyhow::Result<()> {
    let nofile = host::raise_nofile()?;
    let command: Vec<String> = std::env::args().collect();
    let mut report = report::Report {
        header: vec![
            format!("Command: `{}`", command.join(" ")),
            format!("Date: {}", host::now_utc()),
            format!("Machine: {}", host::machine()),
        ],
        ..report::Report::default()
    };
    let tmp = tempfile::tempdir()?;
    let mut fp = footprint::Footprint::default();
    let started = Instant::now();
    let mut durations = Vec::new();
    let mut section_start = Instant::now();
    let runs = |n: u8| args.sections.contains(&n);
    let mut outcome = |n: u8, title: &str, r: anyhow::Result<()>, report: &mut report::Report| {
        durations.push(format!(
            "{n}: {:.0} s",
            section_start.elapsed().as_secs_f64()
        ));
        section_start = Instant::now();
        if let Err(e) = r {
            eprintln!("kumos bench: section {n} failed: {e:#}");
            report.section(
                n,
                title,
                format!("**Failed:** {e:#}\n"),
                json!({"error": format!("{e:#}")}),
            );
            report.failed.push(format!("{n}. {title}: {e:#}"));
        }
    };
    if runs(1) {
        let r = scheduling(&args, &tmp.path().join("scheduling"), &mut report).await;
        outcome(1, "End-to-end scheduling", r, &mut report);
    }
    if runs(2) {
        let r = allocator::run(args.quick, &mut report).await;
        outcome(2, "Allocator cycle", r, &mut report);
    }
    if runs(3) {
        let r = if nofile < 2_200 {
            Err(anyhow::anyhow!(
                "RLIMIT_NOFILE is {nofile}: 1,000 watchers need ~2,200"
            ))
        } else {
            api_section::run(&args, tmp.path(), &mut report, &mut fp).await
        };
        outcome(3, "API server", r, &mut report);
    }
    if runs(4) {
        let mut r = footprint::measure_startup(tmp.path(), 3, &mut fp).await;
        if r.is_ok() && args.large {
            r = footprint::measure_large(tmp.path(), 100_000, &mut fp).await;
        }
        footprint::add_section(&fp, &mut report);
        outcome(4, "Footprint", r, &mut report);
    }
    if runs(5) {
        scaling::add_section(&mut report);
    }
    report.header.push(format!(
        "Duration: {:.0} s (sections {})",
        started.elapsed().as_secs_f64(),
        durations.join(", ")
    ));
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(
        args.out.join("report.json"),
        serde_json::to_string_pretty(&report.json())?,
    )?;
    let md = report.markdown();
    std::fs::write(args.out.join("report.md"), &md)?;
    println!("{md}");
    // Failed sections and failed runs alike are listed in the report as missing figures.
    anyhow::ensure!(
        report.failed.is_empty(),
        "failed, their figures missing (see the report): {}",
        report.failed.join("; ")
    );
    Ok(())
}

/// Section 1: end-to-end scheduling throughput against the raw store's put rate, on the
/// embedded store and on etcd.
async fn scheduling(
    args: &BenchArgs,
    work: &Path,
    report: &mut report::Report,
) -> anyhow::Result<()> {
    let (section, text) = scheduling::run(&args.scheduling_runs(), args.concurrency, work).await?;
    for run in section["runs"].as_array().into_iter().flatten() {
        let (pods, agents) = (run["pods"].as_u64(), run["agents"].as_u64());
        let (Some(pods), Some(agents)) = (pods, agents) else {
            continue;
        };
        let agents = u32::try_from(agents).unwrap_or(u32::MAX);
        let label = format!("{pods} pods on {agents} agents");
        if let Some(error) = run["error"].as_str() {
            report.failed.push(format!(
                "1. End-to-end scheduling, {} store, {label}: {error}",
                run["store"].as_str().unwrap_or_default()
            ));
        }
        if run["store"] == "embedded" {
            let pods_per_second = run["pods_per_second"].as_f64();
            if let Some(pods_per_second) = pods_per_second {
                report.pods_points.push(report::PodsPoint {
                    agents,
                    pods: usize::try_from(pods).unwrap_or(usize::MAX),
                    pods_per_second,
                });
            }
            report.targets.push(report::Target::at_least(
                &format!("End-to-end scheduling, embedded store, {label}"),
                scheduling::TARGET_EMBEDDED_PODS_PER_S,
                "pods/s",
                pods_per_second,
            ));
        } else {
            report.targets.push(report::Target::at_least(
                &format!("End-to-end scheduling on etcd, fraction of the write ceiling, {label}"),
                scheduling::TARGET_ETCD_CEILING,
                "",
                run["ceiling_ratio"].as_f64(),
            ));
        }
    }
    report.section(1, "End-to-end scheduling throughput", text, section);
    Ok(())
}
