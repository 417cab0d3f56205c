//! Section 3: API server throughput and latency (GET, LIST as JSON and as Table, create,
//! update at 1/16/64 clients) against a `kumos server --agents 0` child, each figure next to the
//! raw store doing the same reads and writes of the same objects at the same concurrency.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use apiserver::storage::Storage;
use serde_json::{json, Value as Json};

use super::load::{self, call, Bounds, Http, ACCEPT_TABLE};
use super::stats::{fmt_count, fmt_ms, fmt_ratio, ratio, Summary};

/// Sizes and bounds of section 3.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Pods per LIST (one namespace each); the largest also serves GET and update.
    pub list_sizes: Vec<usize>,
    /// Concurrent clients.
    pub concurrencies: Vec<usize>,
    /// Operations per (operation, concurrency) cell at most.
    pub max_ops: usize,
    /// Time per cell at most.
    pub max_time: Duration,
    /// Watch connections of the fan-out test.
    pub watchers: usize,
    /// Writes of the fan-out test.
    pub watch_writes: usize,
}

impl Plan {
    /// Quick: 1k pods, 2 s per cell, 1,000 watchers × 50 writes; full: 10k and 1k pods, 5 s
    /// per cell, 1,000 watchers × 200 writes.
    pub fn new(quick: bool) -> Plan {
        Plan {
            list_sizes: if quick {
                vec![1_000]
            } else {
                vec![10_000, 1_000]
            },
            concurrencies: vec![1, 16, 64],
            max_ops: if quick { 5_000 } else { 20_000 },
            max_time: Duration::from_secs(if quick { 2 } else { 5 }),
            watchers: 1_000,
            watch_writes: if quick { 50 } else { 200 },
        }
    }
}

/// The operations measured, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// GET one pod.
    Get,
    /// LIST one namespace of `n` pods as JSON.
    List(usize),
    /// LIST one namespace of `n` pods as a Table.
    ListTable(usize),
    /// POST a new pod.
    Create,
    /// PUT a pod with its current resourceVersion.
    Update,
}

impl Op {
    /// Row label.
    pub fn label(self) -> String {
        match self {
            Op::Get => "GET pod".into(),
            Op::List(n) => format!("LIST {} pods (JSON)", fmt_count(n as f64)),
            Op::ListTable(n) => format!("LIST {} pods (Table)", fmt_count(n as f64)),
            Op::Create => "create pod".into(),
            Op::Update => "update pod".into(),
        }
    }

    /// What the raw store does for this operation.
    pub fn reference_label(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::List(_) | Op::ListTable(_) => "range",
            Op::Create => "create (put if absent)",
            Op::Update => "update (put if revision)",
        }
    }
}

/// A pod like the ones section 1 schedules (~1 KB of JSON once defaulted).
pub fn pod(namespace: &str, name: &str) -> Json {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace,
            "labels": {"app": "bench", "tier": "backend", "bench.kumos.io/set": namespace}},
        "spec": {"containers": [{"name": "main", "image": "busybox",
            "command": ["sleep", "3600"], "ports": [{"containerPort": 8080, "name": "http"}],
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}})
}

fn pods_url(base: &str, ns: &str) -> String {
    format!("{base}/api/v1/namespaces/{ns}/pods")
}

fn key(ns: &str, name: &str) -> String {
    format!("/registry/pods/{ns}/{name}")
}

fn resource_version(bytes: &[u8]) -> anyhow::Result<i64> {
    let obj: Json = serde_json::from_slice(bytes)?;
    obj.pointer("/metadata/resourceVersion")
        .and_then(Json::as_str)
        .and_then(|v| v.parse().ok())
        .context("no numeric resourceVersion in the response")
}

/// Shared state of the measured cells: where the pods are and their current versions.
struct Fixture {
    client: Http,
    base: String,
    store: Arc<dyn Storage>,
    /// The namespace GET and update use, and its pod count.
    main_ns: String,
    main_n: usize,
    /// Current resourceVersion (API) and mod revision (store) of each pod of `main_ns`.
    api_rv: Vec<AtomicI64>,
    store_rev: Vec<AtomicI64>,
}

/// Creates `n` pods in `ns` through the API at 16 clients and the same objects in the raw store;
/// returns the API's creates per second.
async fn seed(fx: &Arc<Fixture>, ns: &str, n: usize, record_versions: bool) -> anyhow::Result<f64> {
    super::load::create_namespace(&fx.client, &fx.base, ns).await?;
    let (fx2, ns2) = (Arc::clone(fx), ns.to_string());
    let bounds = Bounds {
        concurrency: 16,
        max_ops: n,
        max_time: Duration::from_secs(3600),
    };
    let s = load::run(bounds, move |i| {
        let (fx, ns) = (Arc::clone(&fx2), ns2.clone());
        async move {
            let name = format!("pod-{i}");
            let body = pod(&ns, &name).to_string().into_bytes();
            let created = call(
                &fx.client,
                "POST",
                &pods_url(&fx.base, &ns),
                None,
                Some(body),
            )
            .await?;
            let kv = fx.store.create(&key(&ns, &name), created.to_vec()).await?;
            if record_versions {
                fx.api_rv[i].store(resource_version(&created)?, Ordering::Relaxed);
                fx.store_rev[i].store(kv.mod_revision, Ordering::Relaxed);
            }
            Ok(())
        }
    })
    .await?;
    anyhow::ensure!(s.errors == 0, "seeding {ns}: {} creates failed", s.errors);
    Ok(s.per_second)
}

/// One operation at one concurrency through the API.
async fn api_cell(fx: &Arc<Fixture>, op: Op, bounds: Bounds) -> anyhow::Result<Summary> {
    let fx = Arc::clone(fx);
    let c = bounds.concurrency;
    load::run(bounds, move |i| {
        let fx = Arc::clone(&fx);
        async move {
            let (main, n) = (fx.main_ns.as_str(), fx.main_n);
            match op {
                Op::Get => {
                    let url = format!("{}/pod-{}", pods_url(&fx.base, main), i % n);
                    call(&fx.client, "GET", &url, None, None).await?;
                }
                Op::List(size) | Op::ListTable(size) => {
                    let accept = matches!(op, Op::ListTable(_)).then_some(ACCEPT_TABLE);
                    let url = pods_url(&fx.base, &format!("pods-{size}"));
                    call(&fx.client, "GET", &url, accept, None).await?;
                }
                Op::Create => {
                    let body = pod("create", &format!("c{c}-{i}")).to_string().into_bytes();
                    call(
                        &fx.client,
                        "POST",
                        &pods_url(&fx.base, "create"),
                        None,
                        Some(body),
                    )
                    .await?;
                }
                Op::Update => {
                    let k = i % n;
                    let mut obj = pod(main, &format!("pod-{k}"));
                    obj["metadata"]["resourceVersion"] =
                        json!(fx.api_rv[k].load(Ordering::Relaxed).to_string());
                    obj["metadata"]["annotations"] = json!({"bench.kumos.io/op": i.to_string()});
                    let url = format!("{}/pod-{k}", pods_url(&fx.base, main));
                    let out = call(
                        &fx.client,
                        "PUT",
                        &url,
                        None,
                        Some(obj.to_string().into_bytes()),
                    )
                    .await?;
                    fx.api_rv[k].store(resource_version(&out)?, Ordering::Relaxed);
                }
            }
            Ok(())
        }
    })
    .await
}

/// The same operation on the raw store.
async fn store_cell(
    fx: &Arc<Fixture>,
    op: Op,
    bounds: Bounds,
    value: Arc<Vec<u8>>,
) -> anyhow::Result<Summary> {
    let fx = Arc::clone(fx);
    let c = bounds.concurrency;
    load::run(bounds, move |i| {
        let (fx, value) = (Arc::clone(&fx), Arc::clone(&value));
        async move {
            let (main, n) = (fx.main_ns.as_str(), fx.main_n);
            match op {
                Op::Get => {
                    fx.store
                        .get(&key(main, &format!("pod-{}", i % n)))
                        .await?
                        .context("missing")?;
                }
                Op::List(size) | Op::ListTable(size) => {
                    let l = fx
                        .store
                        .list(&format!("/registry/pods/pods-{size}/"), None, 0, 0)
                        .await?;
                    anyhow::ensure!(l.items.len() == size, "range returned {}", l.items.len());
                }
                Op::Create => {
                    fx.store
                        .create(&key("create", &format!("c{c}-{i}")), value.to_vec())
                        .await?;
                }
                Op::Update => {
                    let k = i % n;
                    let expected = fx.store_rev[k].load(Ordering::Relaxed);
                    let kv = fx
                        .store
                        .update(&key(main, &format!("pod-{k}")), value.to_vec(), expected)
                        .await?;
                    fx.store_rev[k].store(kv.mod_revision, Ordering::Relaxed);
                }
            }
            Ok(())
        }
    })
    .await
}

/// One measured row.
#[derive(Clone, Debug)]
pub struct Row {
    /// Operation.
    pub op: Op,
    /// Concurrent clients.
    pub concurrency: usize,
    /// Through the API.
    pub api: Summary,
    /// On the raw store.
    pub store: Summary,
}

/// What section 3 measured besides the rows.
#[derive(Clone, Debug, Default)]
pub struct Seeded {
    /// (pods, API creates/s while seeding them at 16 clients).
    pub rates: Vec<(usize, f64)>,
}

/// Seeds the pods and measures every (operation, concurrency) cell through `base` and on
/// `store`. `after_first_seed` is called once the largest namespace is seeded (footprint).
pub async fn measure(
    plan: &Plan,
    base: &str,
    store: Arc<dyn Storage>,
    mut after_first_seed: impl FnMut(usize),
) -> anyhow::Result<(Vec<Row>, Seeded)> {
    let main_n = plan.list_sizes.iter().copied().max().unwrap_or(1_000);
    let fx = Arc::new(Fixture {
        client: load::client(),
        base: base.to_string(),
        store,
        main_ns: format!("pods-{main_n}"),
        main_n,
        api_rv: (0..main_n).map(|_| AtomicI64::new(0)).collect(),
        store_rev: (0..main_n).map(|_| AtomicI64::new(0)).collect(),
    });
    let mut seeded = Seeded::default();
    let mut sizes = plan.list_sizes.clone();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    sizes.dedup();
    for (idx, &n) in sizes.iter().enumerate() {
        eprintln!("kumos bench: seeding {n} pods through the API (16 clients) and the raw store");
        let rate = seed(&fx, &format!("pods-{n}"), n, idx == 0).await?;
        seeded.rates.push((n, rate));
        if idx == 0 {
            after_first_seed(n);
        }
    }
    super::load::create_namespace(&fx.client, base, "create").await?;
    let sample = call(
        &fx.client,
        "GET",
        &format!("{}/pod-0", pods_url(base, &fx.main_ns)),
        None,
        None,
    )
    .await?;
    let value = Arc::new(sample.to_vec());

    let mut ops = vec![Op::Get];
    for &n in &plan.list_sizes {
        ops.extend([Op::List(n), Op::ListTable(n)]);
    }
    ops.extend([Op::Create, Op::Update]);
    let mut rows = Vec::new();
    for &op in &ops {
        for &concurrency in &plan.concurrencies {
            let max_ops = match op {
                Op::Update => plan.max_ops.min(main_n),
                _ => plan.max_ops,
            };
            let bounds = Bounds {
                concurrency,
                max_ops,
                max_time: plan.max_time,
            };
            eprintln!("kumos bench: {} at {concurrency} clients", op.label());
            let api = api_cell(&fx, op, bounds).await?;
            let store = store_cell(&fx, op, bounds, Arc::clone(&value)).await?;
            rows.push(Row {
                op,
                concurrency,
                api,
                store,
            });
        }
    }
    Ok((rows, seeded))
}

/// The rows as Markdown: API and raw store side by side with the ratio.
pub fn table(rows: &[Row], store_label: &str) -> String {
    let mut md = format!(
        "| operation | clients | API req/s | p50 ms | p99 ms | {store_label} op | store ops/s | p50 ms | p99 ms | API ÷ store |\n\
|---|---|---|---|---|---|---|---|---|---|\n"
    );
    for r in rows {
        let errors = if r.api.errors + r.store.errors > 0 {
            format!(" ({} API / {} store errors)", r.api.errors, r.store.errors)
        } else {
            String::new()
        };
        md += &format!(
            "| {}{errors} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.op.label(),
            r.concurrency,
            fmt_count(r.api.per_second),
            fmt_ms(r.api.p50_ms),
            fmt_ms(r.api.p99_ms),
            r.op.reference_label(),
            fmt_count(r.store.per_second),
            fmt_ms(r.store.p50_ms),
            fmt_ms(r.store.p99_ms),
            fmt_ratio(ratio(r.api.per_second, r.store.per_second)),
        );
    }
    md
}

/// The rows as JSON.
pub fn rows_json(rows: &[Row]) -> Json {
    Json::Array(
        rows.iter()
            .map(|r| {
                json!({"operation": r.op.label(), "clients": r.concurrency,
                    "api": r.api.to_json(), "store": r.store.to_json(),
                    "ratio": ratio(r.api.per_second, r.store.per_second)})
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(per_second: f64) -> Summary {
        Summary {
            ok: 10,
            errors: 0,
            per_second,
            p50_ms: 1.5,
            p99_ms: 12.34,
        }
    }

    #[test]
    fn plans() {
        let q = Plan::new(true);
        assert_eq!(q.list_sizes, vec![1_000]);
        assert_eq!(q.concurrencies, vec![1, 16, 64]);
        assert_eq!(q.watchers, 1_000);
        assert!(Plan::new(false).list_sizes.contains(&10_000));
    }

    #[test]
    fn table_shows_the_ratio_to_the_store() {
        let rows = vec![
            Row {
                op: Op::List(1_000),
                concurrency: 16,
                api: summary(50.0),
                store: summary(200.0),
            },
            Row {
                op: Op::Get,
                concurrency: 1,
                api: summary(2_000.0),
                store: summary(0.0),
            },
        ];
        let md = table(&rows, "embedded");
        assert!(md.contains("| embedded op |"));
        assert!(
            md.contains("| LIST 1,000 pods (JSON) | 16 | 50 | 1.50 | 12.3 | range | 200 | 1.50 | 12.3 | 0.25 |"),
            "{md}"
        );
        assert!(md.contains("| GET pod | 1 | 2,000 |"));
        assert!(md.ends_with("| – |\n"));
        assert_eq!(rows_json(&rows)[0]["ratio"], 0.25);
    }

    #[test]
    fn the_pod_names_itself() {
        let p = pod("ns", "a");
        assert_eq!(p["metadata"]["name"], "a");
        assert_eq!(p["metadata"]["namespace"], "ns");
        assert_eq!(
            resource_version(br#"{"metadata":{"resourceVersion":"42"}}"#).ok(),
            Some(42)
        );
        assert!(resource_version(b"{}").is_err());
    }
}
