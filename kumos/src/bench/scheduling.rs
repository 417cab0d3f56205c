//! Section 1, end-to-end scheduling throughput: a `kumos server` child (simulated agents) gets an
//! RC of N pods and the harness watches them from creation to Running, on the embedded store and
//! on etcd. The reference is the same store's raw put rate for ~1.5 KB values at the same
//! concurrency, measured by this harness in the same run, so the report can say how close
//! scheduling comes to what the store can write: pods/s × store writes per pod ÷ raw puts/s.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use apiserver::storage::embedded::{EmbeddedConfig, EmbeddedStore};
use apiserver::storage::Storage;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value as Json};

use super::etcd::Etcd;
use super::stats::percentile;
use crate::cli::StoreKind;

/// Published anchors printed beside the results (not measured here).
pub const ANCHOR_KUBE_SCHEDULER: f64 = 680.0;
/// Nomad's C1M containers per second.
pub const ANCHOR_NOMAD_C1M: f64 = 3750.0;
/// Target pods/s on the embedded store at 1,000 agents.
pub const TARGET_EMBEDDED_PODS_PER_S: f64 = 5000.0;
/// Target fraction of the storage ceiling on etcd.
pub const TARGET_ETCD_CEILING: f64 = 0.8;
/// The size of a raw reference put (a pod object is about this big).
const RAW_VALUE_BYTES: usize = 1500;

/// One scheduling run to make.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// Pods in the RC.
    pub pods: usize,
    /// Simulated agents.
    pub agents: u32,
    /// Store.
    pub store: StoreKind,
}

/// The runs of a preset: quick (1k pods on 100 agents, both stores), full (1k pods on 100 and
/// 1,000 agents and 10k pods on 100, embedded; 1k on 1,000 and 10k on 100 on etcd) and large
/// (adds 10k pods on 1,000 agents and 100k pods on 10,000 agents, embedded).
pub fn preset(quick: bool, large: bool) -> Vec<Scenario> {
    let s = |pods, agents, store| Scenario {
        pods,
        agents,
        store,
    };
    use StoreKind::{Embedded, Etcd};
    if quick {
        return vec![s(1000, 100, Embedded), s(1000, 100, Etcd)];
    }
    let mut runs = vec![
        s(1000, 100, Embedded),
        s(1000, 1000, Embedded),
        s(10_000, 100, Embedded),
        s(1000, 1000, Etcd),
        s(10_000, 100, Etcd),
    ];
    if large {
        runs.push(s(10_000, 1000, Embedded));
        runs.push(s(100_000, 10_000, Embedded));
    }
    runs
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    scenario: Scenario,
    pods_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    writes_per_pod: f64,
    pod_writes_per_pod: f64,
    event_writes_per_pod: f64,
    raw_puts_per_s: f64,
    ceiling: f64,
}

impl Outcome {
    fn verdict(&self) -> String {
        match self.scenario.store {
            StoreKind::Embedded if self.scenario.agents >= 1000 => format!(
                "target ≥{TARGET_EMBEDDED_PODS_PER_S:.0} pods/s: {}",
                met(self.pods_per_s >= TARGET_EMBEDDED_PODS_PER_S)
            ),
            StoreKind::Embedded => format!(
                "target ≥{TARGET_EMBEDDED_PODS_PER_S:.0} pods/s (set at 1,000 agents): {}",
                met(self.pods_per_s >= TARGET_EMBEDDED_PODS_PER_S)
            ),
            StoreKind::Etcd => format!(
                "target ≥{TARGET_ETCD_CEILING} of the ceiling: {}",
                met(self.ceiling >= TARGET_ETCD_CEILING)
            ),
        }
    }

    fn json(&self) -> Json {
        json!({
            "pods": self.scenario.pods, "agents": self.scenario.agents,
            "store": self.scenario.store.name(),
            "pods_per_second": self.pods_per_s,
            "create_to_running_ms": {"p50": self.p50_ms, "p99": self.p99_ms},
            "writes_per_pod": self.writes_per_pod,
            "writes_per_pod_breakdown": {"pod": self.pod_writes_per_pod, "event": self.event_writes_per_pod,
                "other": self.writes_per_pod - self.pod_writes_per_pod - self.event_writes_per_pod},
            "raw_puts_per_second": self.raw_puts_per_s,
            "ceiling_ratio": self.ceiling,
            "verdict": self.verdict(),
        })
    }
}

fn met(ok: bool) -> &'static str {
    if ok {
        "MET"
    } else {
        "MISSED"
    }
}

/// Runs every scenario; returns the JSON section and its Markdown.
pub async fn run(
    scenarios: &[Scenario],
    concurrency: usize,
    work: &Path,
) -> anyhow::Result<(Json, String)> {
    let mut etcd: Option<Etcd> = None;
    let mut raw: HashMap<&'static str, f64> = HashMap::new();
    let mut outcomes = Vec::new();
    for (i, sc) in scenarios.iter().enumerate() {
        let dir = work.join(format!("run-{i}"));
        std::fs::create_dir_all(&dir)?;
        let endpoint = match sc.store {
            StoreKind::Embedded => None,
            StoreKind::Etcd => {
                if etcd.is_none() {
                    let d = work.join("etcd");
                    std::fs::create_dir_all(&d)?;
                    etcd = Some(Etcd::start(&d).await?);
                }
                etcd.as_ref().map(|e| e.endpoint.clone())
            }
        };
        // The ceiling: the same store's raw put rate, measured once per store in this run.
        let raw_rate = match raw.get(sc.store.name()) {
            Some(r) => *r,
            None => {
                let count = (sc.pods * 4).clamp(8000, 40_000);
                eprintln!(
                    "kumos bench: raw {} puts ({count} × {RAW_VALUE_BYTES} B, {concurrency} at once)",
                    sc.store.name()
                );
                let r = match &endpoint {
                    None => raw_embedded_puts(&dir.join("raw"), count, concurrency).await?,
                    Some(ep) => raw_etcd_puts(ep, count, concurrency).await?,
                };
                raw.insert(sc.store.name(), r);
                r
            }
        };
        eprintln!(
            "kumos bench: {} pods on {} simulated agents ({} store)",
            sc.pods,
            sc.agents,
            sc.store.name()
        );
        let prefix = format!("/bench-{i}");
        // A run that fails (e.g. runs out of time) is reported with its error; the others still run.
        match run_one(*sc, &dir, endpoint.as_deref(), &prefix, raw_rate).await {
            Ok(o) => {
                eprintln!(
                    "kumos bench:   {:.0} pods/s, p50 {:.0} ms, p99 {:.0} ms, {:.1} writes/pod, ceiling ratio {:.2}",
                    o.pods_per_s, o.p50_ms, o.p99_ms, o.writes_per_pod, o.ceiling
                );
                outcomes.push(Ok(o));
            }
            Err(e) => {
                eprintln!("kumos bench:   failed: {e:#}");
                outcomes.push(Err((*sc, format!("{e:#}"))));
            }
        }
    }
    Ok((
        section_json(&outcomes, concurrency),
        markdown(&outcomes, concurrency),
    ))
}

/// A run's figures, or the scenario and why it has none.
type RunResult = Result<Outcome, (Scenario, String)>;

fn run_json(r: &RunResult) -> Json {
    match r {
        Ok(o) => o.json(),
        Err((sc, error)) => json!({
            "pods": sc.pods, "agents": sc.agents, "store": sc.store.name(), "error": error,
        }),
    }
}

fn section_json(outcomes: &[RunResult], concurrency: usize) -> Json {
    // (agents, pods/s) on the embedded store, for the scaling curve.
    let points: Vec<Json> = outcomes
        .iter()
        .flatten()
        .filter(|o| o.scenario.store == StoreKind::Embedded)
        .map(|o| json!({"agents": o.scenario.agents, "pods": o.scenario.pods, "pods_per_second": o.pods_per_s}))
        .collect();
    json!({
        "runs": outcomes.iter().map(run_json).collect::<Vec<_>>(),
        "scaling_points": points,
        "raw_put_concurrency": concurrency,
        "anchors": {"kube_scheduler_perf_pods_per_second": ANCHOR_KUBE_SCHEDULER,
                    "nomad_c1m_containers_per_second": ANCHOR_NOMAD_C1M},
    })
}

fn markdown(outcomes: &[RunResult], concurrency: usize) -> String {
    let mut md = String::from(
        "\
An RC of N pods on M simulated agents, timed from the RC's creation until every pod is Running. \
Writes/pod = store revisions consumed ÷ pods (pod / event / other: master records, RC status, \
nodes). Ceiling ratio = pods/s × writes/pod ÷ raw puts/s of the same store (~1.5 KB values, ",
    );
    md.push_str(&format!(
        "{concurrency} at once, measured in this run).\n\n\
| store | pods | agents | pods/s | p50 create→Running | p99 | writes/pod (pod/event/other) | raw puts/s | ceiling ratio | verdict |\n\
|---|---|---|---|---|---|---|---|---|---|\n"
    ));
    for o in outcomes {
        let o = match o {
            Ok(o) => o,
            Err((sc, error)) => {
                md.push_str(&format!(
                    "| {} | {} | {} | failed: {} | | | | | | figure missing |\n",
                    sc.store.name(),
                    sc.pods,
                    sc.agents,
                    error.replace('|', "/"),
                ));
                continue;
            }
        };
        md.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.0} ms | {:.0} ms | {:.1} ({:.1}/{:.1}/{:.1}) | {:.0} | {:.2} | {} |\n",
            o.scenario.store.name(),
            o.scenario.pods,
            o.scenario.agents,
            o.pods_per_s,
            o.p50_ms,
            o.p99_ms,
            o.writes_per_pod,
            o.pod_writes_per_pod,
            o.event_writes_per_pod,
            o.writes_per_pod - o.pod_writes_per_pod - o.event_writes_per_pod,
            o.raw_puts_per_s,
            o.ceiling,
            o.verdict(),
        ));
    }
    md.push_str(&format!(
        "\nAnchors (published, not measured here): kube-scheduler scheduler_perf \
{ANCHOR_KUBE_SCHEDULER:.0} pods/s (5k nodes, 10k pods); Nomad C1M {ANCHOR_NOMAD_C1M:.0} containers/s.\n"
    ));
    md
}

/// Puts per second of `count` ~1.5 KB values into a fresh embedded store, `concurrency` at once.
async fn raw_embedded_puts(dir: &Path, count: usize, concurrency: usize) -> anyhow::Result<f64> {
    let store = Arc::new(EmbeddedStore::open(
        dir,
        EmbeddedConfig {
            compaction_window: None,
            ..Default::default()
        },
    )?);
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let store = Arc::clone(&store);
        workers.spawn(async move {
            for i in (w..count).step_by(concurrency) {
                store
                    .create(&format!("/bench/{i:08}"), vec![b'x'; RAW_VALUE_BYTES])
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

/// Puts per second of `count` ~1.5 KB values into etcd with etcd-client, `concurrency` at once.
async fn raw_etcd_puts(endpoint: &str, count: usize, concurrency: usize) -> anyhow::Result<f64> {
    let client = etcd_client::Client::connect([endpoint], None).await?;
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let mut kv = client.kv_client();
        workers.spawn(async move {
            for i in (w..count).step_by(concurrency) {
                kv.put(format!("/raw/{i:08}"), vec![b'x'; RAW_VALUE_BYTES], None)
                    .await?;
            }
            Ok::<_, etcd_client::Error>(())
        });
    }
    while let Some(r) = workers.join_next().await {
        r??;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    // The raw keys would otherwise count as the server's data.
    client
        .kv_client()
        .delete(
            "/raw/",
            Some(etcd_client::DeleteOptions::new().with_prefix()),
        )
        .await?;
    Ok(rate)
}

/// A `kumos server` child for `sc`: the harness's simulated agents, on etcd under `prefix` when
/// `etcd` names an endpoint.
fn start_server(
    dir: &Path,
    sc: Scenario,
    etcd: Option<&str>,
    prefix: &str,
) -> anyhow::Result<(super::ServerChild, String)> {
    // Watches that the server cuts off (slow readers) resume from where they were; keep enough history.
    let mut extra = vec![
        "--default-watch-cache-size".to_string(),
        (sc.pods * 2).max(10_000).to_string(),
    ];
    if let Some(ep) = etcd {
        extra.extend(super::etcd_flags(ep, prefix));
    }
    super::start_server_with(&dir.join("server"), sc.agents, &extra)
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
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    anyhow::ensure!(
        status.is_success(),
        "{method} {url}: {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    Ok(serde_json::from_slice(&bytes).unwrap_or(Json::Null))
}

async fn revision(c: &HttpClient, base: &str) -> anyhow::Result<i64> {
    let list = request(c, "GET", &format!("{base}/api/v1/pods?limit=1"), None).await?;
    list.pointer("/metadata/resourceVersion")
        .and_then(Json::as_str)
        .and_then(|v| v.parse().ok())
        .context("no resourceVersion")
}

/// When each pod was first seen and first seen Running, and how many writes the watches saw.
#[derive(Default)]
struct Seen {
    created: HashMap<String, Instant>,
    running: HashMap<String, Instant>,
    pod_writes: usize,
}

/// Reads a watch's JSON lines, calling `each` per event until it returns false. A watch the server ends
/// (a slow reader is cut off, as kube-apiserver does) is resumed from the last resourceVersion seen, as
/// a reflector would; `url` must already carry a query.
async fn watch_lines(
    c: &HttpClient,
    url: &str,
    end: Instant,
    mut each: impl FnMut(&Json) -> bool,
) -> anyhow::Result<()> {
    let mut last_rv: Option<String> = None;
    loop {
        let url = match &last_rv {
            Some(rv) => format!("{url}&resourceVersion={rv}"),
            None => url.to_string(),
        };
        let req = hyper::Request::get(&url).body(Full::new(Bytes::new()))?;
        let mut body = c.request(req).await?.into_body();
        let mut buf = Vec::new();
        loop {
            let frame = tokio::time::timeout_at(end.into(), body.frame())
                .await
                .context("timed out before every pod was Running")?;
            let Some(frame) = frame else { break };
            let Ok(data) = frame?.into_data() else {
                continue;
            };
            buf.extend_from_slice(&data);
            let mut start = 0;
            while let Some(nl) = buf[start..].iter().position(|b| *b == b'\n') {
                let line = &buf[start..start + nl];
                start += nl + 1;
                let Ok(ev) = serde_json::from_slice::<Json>(line) else {
                    continue;
                };
                anyhow::ensure!(ev["type"] != "ERROR", "the watch of {url} failed: {ev}");
                if let Some(rv) = ev.pointer("/object/metadata/resourceVersion") {
                    last_rv = rv.as_str().map(str::to_string);
                }
                if !each(&ev) {
                    return Ok(());
                }
            }
            buf.drain(..start);
        }
        anyhow::ensure!(last_rv.is_some(), "the watch of {url} ended at once");
    }
}

async fn watch_pods(c: HttpClient, base: String, n: usize, end: Instant) -> anyhow::Result<Seen> {
    let mut seen = Seen::default();
    let url = format!("{base}/api/v1/namespaces/bench/pods?watch=1");
    watch_lines(&c, &url, end, |ev| {
        let pod = &ev["object"];
        let Some(name) = pod.pointer("/metadata/name").and_then(Json::as_str) else {
            return true;
        };
        seen.pod_writes += 1;
        let now = Instant::now();
        seen.created.entry(name.to_string()).or_insert(now);
        if pod.pointer("/status/phase") == Some(&json!("Running")) {
            seen.running.entry(name.to_string()).or_insert(now);
        }
        seen.running.len() < n
    })
    .await?;
    Ok(seen)
}

/// Counts event writes (creations and count bumps) in the bench namespace until cancelled.
async fn count_events(
    c: HttpClient,
    base: String,
    stop: tokio_util::sync::CancellationToken,
) -> usize {
    let mut n = 0usize;
    let url = format!("{base}/api/v1/namespaces/bench/events?watch=1");
    let far = Instant::now() + Duration::from_secs(24 * 3600);
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = watch_lines(&c, &url, far, |_| { n += 1; true }) => {}
    }
    n
}

async fn run_one(
    sc: Scenario,
    dir: &Path,
    etcd: Option<&str>,
    prefix: &str,
    raw: f64,
) -> anyhow::Result<Outcome> {
    let (server, base) = start_server(dir, sc, etcd, prefix)?;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    // Every agent registered (one Node each) before the clock starts.
    let ready_by = Instant::now() + Duration::from_secs(120 + u64::from(sc.agents) / 20);
    loop {
        let nodes = request(&client, "GET", &format!("{base}/api/v1/nodes"), None)
            .await
            .ok()
            .and_then(|l| l.get("items").and_then(Json::as_array).map(Vec::len));
        if nodes.unwrap_or(0) >= sc.agents as usize {
            break;
        }
        anyhow::ensure!(
            Instant::now() < ready_by,
            "only {nodes:?} of {} agents registered",
            sc.agents
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
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
    let end =
        Instant::now() + Duration::from_secs(600 + sc.pods as u64 / 20 + u64::from(sc.agents));
    let watcher = tokio::spawn(watch_pods(client.clone(), base.clone(), sc.pods, end));
    let stop = tokio_util::sync::CancellationToken::new();
    let events = tokio::spawn(count_events(client.clone(), base.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rc = json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "bench"},
        "spec": {"replicas": sc.pods, "selector": {"app": "bench"}, "template": {
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
    stop.cancel();
    let event_writes = events.await.unwrap_or(0);
    drop(server);
    let mut latencies: Vec<f64> = seen
        .running
        .iter()
        .filter_map(|(n, r)| Some(r.duration_since(*seen.created.get(n)?).as_secs_f64() * 1000.0))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pods = sc.pods as f64;
    let pods_per_s = pods / elapsed.max(1e-9);
    let writes_per_pod = (after - before) as f64 / pods;
    Ok(Outcome {
        scenario: sc,
        pods_per_s,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        writes_per_pod,
        pod_writes_per_pod: seen.pod_writes as f64 / pods,
        event_writes_per_pod: event_writes as f64 / pods,
        raw_puts_per_s: raw,
        ceiling: pods_per_s * writes_per_pod / raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets() {
        let quick = preset(true, false);
        assert_eq!(quick.len(), 2);
        assert!(quick.iter().all(|s| s.pods == 1000 && s.agents == 100));
        assert!(quick.iter().any(|s| s.store == StoreKind::Etcd));
        let full = preset(false, false);
        for store in [StoreKind::Embedded, StoreKind::Etcd] {
            assert!(full.iter().any(|s| s.agents == 1000 && s.store == store));
            assert!(full.iter().any(|s| s.pods == 10_000 && s.store == store));
        }
        assert!(preset(false, true)
            .iter()
            .any(|s| s.pods == 100_000 && s.agents == 10_000));
    }

    #[test]
    fn a_failed_run_is_reported_with_its_error_and_no_figures() {
        let sc = Scenario {
            pods: 10,
            agents: 2,
            store: StoreKind::Embedded,
        };
        let runs = vec![Err((sc, "timed out | late".to_string()))];
        let md = markdown(&runs, 4);
        assert!(md.contains("| embedded | 10 | 2 | failed: timed out / late |"));
        assert!(md.contains("figure missing"));
        let j = section_json(&runs, 4);
        assert_eq!(j["runs"][0]["error"], "timed out | late");
        assert!(j["runs"][0].get("pods_per_second").is_none());
        assert_eq!(j["scaling_points"], json!([]));
    }
}
