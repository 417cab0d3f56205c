//! `kumos bench`: end-to-end scheduling throughput measured against the storage ceiling in the
//! same run. A `kumos server` child (embedded store, simulated agents) gets an RC of N pods; the
//! harness watches pods from creation to Running. The reference is the embedded store's own
//! put rate for ~1.5 KB values at the same concurrency, measured by this harness first, so the
//! report can say how close scheduling comes to what the store can write.
//!
//! Sections 2–5 live in their own modules and write into one [`report::Report`]: the allocator
//! cycle (`allocator`), the API server against the raw store (`api_section`, `api`, `watch`),
//! footprint (`footprint`) and the scaling curve (`scaling`); the summary lists every target.

mod allocator;
mod api;
mod api_section;
mod etcd;
mod footprint;
mod host;
mod load;
mod report;
mod scaling;
mod stats;
mod watch;

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use apiserver::storage::embedded::{EmbeddedConfig, EmbeddedStore};
use apiserver::storage::Storage;
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value as Json};

/// Flags of `kumos bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Small sizes, a few minutes at most on a 2-core machine.
    #[arg(long)]
    pub quick: bool,
    /// Pods in the RC (default 1000 with --quick, else 10000).
    #[arg(long)]
    pub pods: Option<usize>,
    /// Simulated agents (default 100).
    #[arg(long, default_value_t = 100)]
    pub agents: u32,
    /// Concurrency of the raw-store reference.
    #[arg(long, default_value_t = 16)]
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
    /// Also measure the footprint with 100k pods (several minutes).
    #[arg(long)]
    pub large: bool,
}

/// Puts per second of `count` ~1.5 KB values into a fresh embedded store, `concurrency` at once.
async fn raw_puts(dir: &Path, count: usize, concurrency: usize) -> anyhow::Result<f64> {
    let store = Arc::new(EmbeddedStore::open(
        dir,
        EmbeddedConfig {
            compaction_window: None,
        },
    )?);
    let value = vec![b'x'; 1500];
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let store = Arc::clone(&store);
        let value = value.clone();
        workers.spawn(async move {
            for i in (w..count).step_by(concurrency) {
                store
                    .create(&format!("/bench/{i:08}"), value.clone())
                    .await?;
            }
            Ok::<_, apiserver::storage::StorageError>(())
        });
    }
    while let Some(r) = workers.join_next().await {
        r??;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    store.close().await;
    Ok(rate)
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

/// [`start_server`] with more flags (e.g. `--store etcd`).
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

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn request(
    c: &HttpClient,
    method: &str,
    url: &str,
    body: Option<&Json>,
) -> anyhow::Result<Json> {
    let req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            body.map(Json::to_string).unwrap_or_default(),
        )))?;
    let resp = c.request(req).await?;
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok(serde_json::from_slice(&bytes).unwrap_or(Json::Null))
}

async fn revision(c: &HttpClient, base: &str) -> anyhow::Result<i64> {
    let list = request(c, "GET", &format!("{base}/api/v1/pods?limit=1"), None).await?;
    list.pointer("/metadata/resourceVersion")
        .and_then(Json::as_str)
        .and_then(|v| v.parse().ok())
        .context("no resourceVersion")
}

/// When each pod was first seen and when it was first seen Running.
#[derive(Default)]
struct Seen {
    created: HashMap<String, Instant>,
    running: HashMap<String, Instant>,
}

async fn watch_pods(
    c: HttpClient,
    base: String,
    n: usize,
    deadline: Duration,
) -> anyhow::Result<Seen> {
    let req = hyper::Request::get(format!("{base}/api/v1/namespaces/bench/pods?watch=1"))
        .body(Full::new(Bytes::new()))?;
    let mut body = c.request(req).await?.into_body();
    let mut seen = Seen::default();
    let mut buf = Vec::new();
    let end = Instant::now() + deadline;
    while seen.running.len() < n {
        let frame = tokio::time::timeout_at(end.into(), body.frame())
            .await
            .context("timed out before every pod was Running")?;
        let Some(frame) = frame else {
            anyhow::bail!("the watch ended")
        };
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let Ok(ev) = serde_json::from_slice::<Json>(&line) else {
                continue;
            };
            let pod = &ev["object"];
            let Some(name) = pod.pointer("/metadata/name").and_then(Json::as_str) else {
                continue;
            };
            let now = Instant::now();
            seen.created.entry(name.to_string()).or_insert(now);
            if pod.pointer("/status/phase") == Some(&json!("Running")) {
                seen.running.entry(name.to_string()).or_insert(now);
            }
        }
    }
    Ok(seen)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
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
    let mut failed = Vec::new();
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
            failed.push(n);
        }
    };
    if runs(1) {
        let r = scheduling(&args, &mut report).await;
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
    anyhow::ensure!(
        failed.is_empty(),
        "sections {failed:?} failed (see the report)"
    );
    Ok(())
}

/// Section 1: end-to-end scheduling throughput against the raw store's put rate.
async fn scheduling(args: &BenchArgs, report: &mut report::Report) -> anyhow::Result<()> {
    let pods = args.pods.unwrap_or(if args.quick { 1000 } else { 10000 });
    let tmp = tempfile::tempdir()?;
    eprintln!(
        "kumos bench: raw store puts ({} at concurrency {})",
        pods * 4,
        args.concurrency
    );
    let raw = raw_puts(&tmp.path().join("raw"), pods * 4, args.concurrency).await?;

    eprintln!(
        "kumos bench: {pods} pods on {} simulated agents",
        args.agents
    );
    let (_server, base) = start_server(&tmp.path().join("server"), args.agents)?;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let ready_by = Instant::now() + Duration::from_secs(60);
    while request(&client, "GET", &format!("{base}/readyz"), None)
        .await
        .is_err()
    {
        anyhow::ensure!(Instant::now() < ready_by, "kumos server never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}});
    request(
        &client,
        "POST",
        &format!("{base}/api/v1/namespaces"),
        Some(&ns),
    )
    .await?;
    let before = revision(&client, &base).await?;
    let watcher = tokio::spawn(watch_pods(
        client.clone(),
        base.clone(),
        pods,
        Duration::from_secs(600),
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rc = json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "bench"},
        "spec": {"replicas": pods, "selector": {"app": "bench"}, "template": {
            "metadata": {"labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}});
    let started = Instant::now();
    request(
        &client,
        "POST",
        &format!("{base}/api/v1/namespaces/bench/replicationcontrollers"),
        Some(&rc),
    )
    .await?;
    let seen = watcher.await??;
    let last = seen.running.values().max().copied().unwrap_or(started);
    let elapsed = last.duration_since(started).as_secs_f64();
    let after = revision(&client, &base).await?;
    let mut latencies: Vec<f64> = seen
        .running
        .iter()
        .filter_map(|(n, r)| Some(r.duration_since(*seen.created.get(n)?).as_secs_f64() * 1000.0))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pods_per_s = pods as f64 / elapsed;
    let writes_per_pod = (after - before) as f64 / pods as f64;
    let ceiling_ratio = pods_per_s * writes_per_pod / raw;
    let figures = json!({
        "pods": pods, "agents": args.agents, "store": "embedded",
        "pods_per_second": pods_per_s,
        "create_to_running_ms": {"p50": percentile(&latencies, 0.5), "p99": percentile(&latencies, 0.99)},
        "writes_per_pod": writes_per_pod,
        "raw_puts_per_second": raw,
        "ceiling_ratio": ceiling_ratio,
        "anchors": {"kube_scheduler_perf_pods_per_second": 680, "nomad_c1m_containers_per_second": 3750},
    });
    let md = format!(
        "| pods | simulated agents | pods/s | p50 create→Running | p99 | writes/pod | raw puts/s (same run) | pods/s × writes/pod ÷ raw puts/s |\n\
|---|---|---|---|---|---|---|---|\n\
| {pods} | {agents} | {pods_per_s:.0} | {p50:.0} ms | {p99:.0} ms | {writes_per_pod:.1} | {raw:.0} | {ceiling_ratio:.2} |\n\n\
Anchors (published, not measured here): kube-scheduler scheduler_perf 680 pods/s (5k nodes, 10k pods); \
Nomad C1M 3,750 containers/s.\n",
        agents = args.agents,
        p50 = percentile(&latencies, 0.5),
        p99 = percentile(&latencies, 0.99),
    );
    report.section(1, "End-to-end scheduling (embedded store)", md, figures);
    report.pods_points.push(report::PodsPoint {
        agents: args.agents,
        pods,
        pods_per_second: pods_per_s,
    });
    report.targets.push(report::Target::at_least(
        "End-to-end scheduling, embedded store",
        5_000.0,
        "pods/s",
        Some(pods_per_s),
    ));
    Ok(())
}
