//! Section 3's run: one `kumos server --agents 0` child and a raw store reference in this
//! process; the measurements are `api` (request matrix) and `watch` (fan-out).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use apiserver::storage::embedded::{EmbeddedConfig, EmbeddedStore};
use apiserver::storage::etcd::{EtcdConfig, EtcdStore};
use apiserver::storage::Storage;
use serde_json::json;

use super::api::{self, Plan};
use super::footprint::{rss_kib, Footprint, SETTLE};
use super::load::{self, call};
use super::report::Report;
use super::stats::{fmt_count, fmt_ms, fmt_ratio, ratio};
use super::watch::{self, Fanout};
use super::BenchArgs;
use crate::cli::StoreKind;

/// Runs section 3 and adds the server's RSS, idle and after seeding, to `fp`.
pub async fn run(
    args: &BenchArgs,
    tmp: &Path,
    report: &mut Report,
    fp: &mut Footprint,
) -> anyhow::Result<()> {
    let plan = Plan::new(args.quick);
    // With etcd: one etcd child; the server under one prefix, the reference under another.
    let etcd = match args.store {
        StoreKind::Etcd => Some(super::etcd::Etcd::start(&tmp.join("etcd")).await?),
        StoreKind::Embedded => None,
    };
    let extra = match &etcd {
        Some(e) => super::etcd_flags(&e.endpoint, "/kumos"),
        None => Vec::new(),
    };
    let (server, base) = super::start_server_with(&tmp.join("api-server"), 0, &extra)?;
    let pid = server.0.id();
    let c = load::client();
    load::wait_ready(&c, &base, Duration::from_secs(60)).await?;
    tokio::time::sleep(SETTLE).await;
    let store_label = args.store.name();
    if let Some(kib) = rss_kib(pid) {
        fp.rss
            .push((format!("idle, 0 agents, {store_label} store"), kib));
    }
    let mut embedded = None;
    let store: Arc<dyn Storage> = match &etcd {
        Some(e) => Arc::new(
            EtcdStore::connect(
                std::slice::from_ref(&e.endpoint),
                EtcdConfig {
                    key_prefix: "/bench-reference".into(),
                    ..EtcdConfig::default()
                },
            )
            .await?,
        ),
        None => {
            let s = Arc::new(EmbeddedStore::open(
                &tmp.join("api-reference"),
                EmbeddedConfig {
                    compaction_window: None,
                    ..Default::default()
                },
            )?);
            embedded = Some(Arc::clone(&s));
            s
        }
    };
    let (rows, seeded) = api::measure(&plan, &base, Arc::clone(&store), |n| {
        if let Some(kib) = rss_kib(pid) {
            fp.rss.push((
                format!(
                    "{} pods, 0 agents, {store_label} store",
                    fmt_count(n as f64)
                ),
                kib,
            ));
        }
    })
    .await?;

    eprintln!(
        "kumos bench: watch fan-out, {} watchers × {} writes (API)",
        plan.watchers, plan.watch_writes
    );
    let api_fanout = watch::api(&base, plan.watchers, plan.watch_writes).await?;
    eprintln!("kumos bench: watch fan-out on the raw store");
    let sample = call(
        &c,
        "GET",
        &format!("{base}/api/v1/namespaces/watch/pods/w-0"),
        None,
        None,
    )
    .await?;
    let store_fanout = watch::store(
        Arc::clone(&store),
        plan.watchers,
        plan.watch_writes,
        sample.to_vec(),
    )
    .await?;
    drop(store);
    if let Some(e) = embedded {
        e.close().await;
    }
    drop(server);
    let etcd_used = etcd.is_some();
    drop(etcd);

    let mut md = format!(
        "A `kumos server --insecure-http --agents 0` child ({store_label} store, controllers on, plain HTTP on \
loopback), driven by raw hyper HTTP/1.1 clients in this process: each cell runs at most {} operations \
or {} s. Pods are ~1 KB (one container, labels, requests). GET and update use the {}-pod namespace; \
update is a PUT with the current resourceVersion. Reference, same run, same concurrency: {} \
doing the storage operation under the API request on the same \
objects (the pods' JSON as the API returned it). API ÷ store is the throughput ratio.\n\n",
        plan.max_ops,
        plan.max_time.as_secs(),
        fmt_count(plan.list_sizes.iter().copied().max().unwrap_or(0) as f64),
        if etcd_used { "the same etcd under another key prefix, through Kumos' etcd `Storage` backend in the harness," }
        else { "a fresh embedded store opened by the harness" },
    );
    md += &api::table(&rows, store_label);
    md += "\nSeeding (creates through the API at 16 clients, timed apart from the table): ";
    md += &seeded
        .rates
        .iter()
        .map(|(n, r)| {
            format!(
                "{} pods at {} creates/s",
                fmt_count(*n as f64),
                fmt_count(*r)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    md += ".\n\n";
    md += &fanout_table(&api_fanout, &store_fanout, store_label);
    report.section(
        3,
        "API server",
        md,
        json!({"requests": api::rows_json(&rows),
            "seed_creates_per_second": seeded.rates.iter().map(|(n, r)| json!({"pods": n, "per_second": r})).collect::<Vec<_>>(),
            "watch_fanout": {"api": api_fanout.to_json(), "store": store_fanout.to_json()}}),
    );
    Ok(())
}

/// The fan-out rows: API and raw store, with the ratio of the p99s.
pub fn fanout_table(api: &Fanout, store: &Fanout, store_label: &str) -> String {
    let mut md = format!(
        "Watch fan-out: {} watch connections on one namespace (`?watch=1`), then {} pod creates one \
at a time (after one warm-up); per write, the time from sending it to its arrival on the last \
watcher. Reference: {} watches straight on the {store_label} store, written the same way.\n\n\
| path | writes complete | first delivery p50 ms | last delivery p50 ms | last delivery p99 ms | p99 ÷ store p99 |\n\
|---|---|---|---|---|---|\n",
        api.watchers, api.writes, store.watchers
    );
    let (_, store_p99) = store.last_p50_p99();
    let store_name = format!("{store_label} store");
    for (name, f) in [("API server", api), (store_name.as_str(), store)] {
        let (p50, p99) = f.last_p50_p99();
        md += &format!(
            "| {name} | {} / {} | {} | {} | {} | {} |\n",
            f.writes - f.incomplete,
            f.writes,
            fmt_ms(f.first_p50()),
            fmt_ms(p50),
            fmt_ms(p99),
            fmt_ratio(ratio(p99, store_p99)),
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fanout_rows() {
        let api = Fanout {
            watchers: 1000,
            writes: 2,
            last_ms: vec![40.0, 60.0],
            first_ms: vec![1.0, 2.0],
            incomplete: 0,
        };
        let store = Fanout {
            watchers: 1000,
            writes: 2,
            last_ms: vec![10.0, 20.0],
            first_ms: vec![0.5, 0.5],
            incomplete: 1,
        };
        let md = fanout_table(&api, &store, "embedded");
        assert!(
            md.contains("| API server | 2 / 2 | 2.00 | 60.0 | 60.0 | 3.00 |"),
            "{md}"
        );
        assert!(
            md.contains("| embedded store | 1 / 2 | 0.500 | 20.0 | 20.0 | 1.00 |"),
            "{md}"
        );
    }
}
