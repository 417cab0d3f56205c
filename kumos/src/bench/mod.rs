//! `kumos bench`: the benchmark harness. Each section measures one part of Kumos against a
//! reference taken in the same run (ratios, not lone absolute times) and adds a Markdown part
//! and a JSON part to the report in `--out`.
//!
//! Section 1 ([`scheduling`]): end-to-end scheduling throughput against the store's raw put rate.

mod etcd;
mod scheduling;

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

/// Flags of `kumos bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Small sizes: the whole bench in under 5 minutes on a 2-core machine.
    #[arg(long)]
    pub quick: bool,
    /// Adds the 100k-pod, 10,000-agent run.
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
        for store in [scheduling::StoreKind::Embedded, scheduling::StoreKind::Etcd] {
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

/// `kumos bench`.
pub async fn run_bench(args: BenchArgs) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut md = String::from("# kumos bench\n\n");
    let mut report = json!({"machine": {"cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)}});

    let (section, text) = scheduling::run(
        &args.scheduling_runs(),
        args.concurrency,
        &tmp.path().join("scheduling"),
    )
    .await?;
    report["scheduling"] = section;
    md.push_str(&text);

    std::fs::create_dir_all(&args.out)?;
    std::fs::write(
        args.out.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(args.out.join("report.md"), &md)?;
    println!("{md}");
    Ok(())
}
