//! Load generation: a raw hyper client over loopback and a runner that keeps `concurrency`
//! workers busy until a count or a time bound is reached, timing each operation.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::stats::Summary;

/// The harness' HTTP/1.1 client (one connection per concurrent request, kept alive).
pub type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// A new client.
pub fn client() -> Http {
    Client::builder(TokioExecutor::new()).build_http()
}

/// The Accept header that asks for a `meta.k8s.io/v1` Table (what kubectl get sends).
pub const ACCEPT_TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// Creates namespace `name` through the API server at `base`.
pub async fn create_namespace(c: &Http, base: &str, name: &str) -> anyhow::Result<()> {
    let ns =
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    let url = format!("{base}/api/v1/namespaces");
    call(c, "POST", &url, None, Some(ns.to_string().into_bytes())).await?;
    Ok(())
}

/// Sends one request and reads the whole body; non-2xx is an error naming the status and body.
pub async fn call(
    c: &Http,
    method: &str,
    url: &str,
    accept: Option<&str>,
    body: Option<Vec<u8>>,
) -> anyhow::Result<Bytes> {
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    if let Some(accept) = accept {
        req = req.header("accept", accept);
    }
    let req = req.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
    let resp = c
        .request(req)
        .await
        .with_context(|| format!("{method} {url}"))?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    anyhow::ensure!(
        status.is_success(),
        "{method} {url}: {status}: {}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
    );
    Ok(bytes)
}

/// Waits until `GET {base}/readyz` answers 200, polling every 5 ms, for at most `deadline`.
pub async fn wait_ready(c: &Http, base: &str, deadline: Duration) -> anyhow::Result<()> {
    let end = Instant::now() + deadline;
    loop {
        if call(c, "GET", &format!("{base}/readyz"), None, None)
            .await
            .is_ok()
        {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < end,
            "{base}/readyz did not answer 200 within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Bounds of one load run.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Concurrent workers.
    pub concurrency: usize,
    /// Operations started at most.
    pub max_ops: usize,
    /// No operation starts after this much time.
    pub max_time: Duration,
}

/// Runs `op(i)` for i = 0, 1, … on `concurrency` workers until `max_ops` have started or
/// `max_time` has passed; returns the rate and latencies of the successful ones. The workers
/// are owned by a `JoinSet` and all joined before returning.
pub async fn run<F, Fut>(bounds: Bounds, op: F) -> anyhow::Result<Summary>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..bounds.concurrency.max(1) {
        let (op, next) = (Arc::clone(&op), Arc::clone(&next));
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            let mut first_error = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= bounds.max_ops || started.elapsed() >= bounds.max_time {
                    break;
                }
                let t = Instant::now();
                match op(i).await {
                    Ok(()) => latencies.push(t.elapsed().as_secs_f64() * 1000.0),
                    Err(e) => {
                        errors += 1;
                        if first_error.is_none() {
                            first_error = Some(e);
                        }
                    }
                }
            }
            (latencies, errors, first_error)
        });
    }
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    while let Some(joined) = workers.join_next().await {
        let (l, e, f) = joined?;
        all.extend(l);
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    let elapsed = started.elapsed();
    if let Some(e) = first_error {
        eprintln!("kumos bench: {errors} operations failed, the first: {e:#}");
    }
    Ok(Summary::from_latencies(all, errors, elapsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_each_index_once_up_to_the_count() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        let summary = run(
            Bounds {
                concurrency: 4,
                max_ops: 50,
                max_time: Duration::from_secs(600),
            },
            move |i| {
                let s = Arc::clone(&s);
                async move {
                    s.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push(i);
                    anyhow::ensure!(i % 10 != 3, "op {i} fails");
                    Ok(())
                }
            },
        )
        .await
        .unwrap_or_default();
        let mut seen = seen.lock().map(|v| v.clone()).unwrap_or_default();
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
        assert_eq!((summary.ok, summary.errors), (45, 5));
    }
}
