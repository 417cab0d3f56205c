//! Section 3, watch fan-out: W watch connections on one namespace, then writes one at a time;
//! per write, the time from sending it to its delivery on the last watcher. The reference is W
//! watches straight on the raw store, written the same way.

use std::future::Future;
use std::time::{Duration, Instant};

use apiserver::storage::{Storage, WatchEvent};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value as Json};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

use super::load::{call, client, Http};
use super::stats::percentile;

/// How long one write may take to reach every watcher before it counts as incomplete.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(60);

/// Outcome of a fan-out run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fanout {
    /// Watch connections.
    pub watchers: usize,
    /// Writes measured (after one warm-up write).
    pub writes: usize,
    /// Per write: ms from sending it to the last watcher's delivery (complete writes only).
    pub last_ms: Vec<f64>,
    /// Per write: ms to the first watcher's delivery.
    pub first_ms: Vec<f64>,
    /// Writes some watcher did not get within the deadline.
    pub incomplete: usize,
}

impl Fanout {
    /// (p50, p99) of the time to the last delivery.
    pub fn last_p50_p99(&self) -> (f64, f64) {
        let mut v = self.last_ms.clone();
        v.sort_by(f64::total_cmp);
        (percentile(&v, 0.5), percentile(&v, 0.99))
    }

    /// p50 of the time to the first delivery.
    pub fn first_p50(&self) -> f64 {
        let mut v = self.first_ms.clone();
        v.sort_by(f64::total_cmp);
        percentile(&v, 0.5)
    }

    /// As JSON.
    pub fn to_json(&self) -> Json {
        let (p50, p99) = self.last_p50_p99();
        json!({"watchers": self.watchers, "writes": self.writes, "incomplete": self.incomplete,
            "last_delivery_ms": {"p50": p50, "p99": p99}, "first_delivery_ms": {"p50": self.first_p50()}})
    }
}

/// The write index encoded in an object name `w-<i>`.
pub fn write_index(name: &str) -> Option<usize> {
    name.rsplit('/').next()?.strip_prefix("w-")?.parse().ok()
}

/// Writes 0..=writes one at a time (0 warms up and is not counted); after each, waits for its
/// delivery on every watcher (`rx` carries (index, arrival)).
async fn drive<F, Fut>(
    watchers: usize,
    writes: usize,
    rx: &mut UnboundedReceiver<(usize, Instant)>,
    mut write: F,
) -> anyhow::Result<Fanout>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut out = Fanout {
        watchers,
        writes,
        ..Fanout::default()
    };
    for idx in 0..=writes {
        let sent = Instant::now();
        write(idx).await?;
        let (mut count, mut first, mut last) = (0usize, None, sent);
        let end = tokio::time::Instant::now() + DELIVERY_DEADLINE;
        while count < watchers {
            match tokio::time::timeout_at(end, rx.recv()).await {
                Ok(Some((i, at))) if i == idx => {
                    count += 1;
                    if first.is_none() {
                        first = Some(at);
                    }
                    last = last.max(at);
                }
                Ok(Some(_)) => {} // a late delivery of an earlier, incomplete write
                Ok(None) => anyhow::bail!("every watcher ended"),
                Err(_) => break,
            }
        }
        if idx == 0 {
            anyhow::ensure!(
                count == watchers,
                "only {count} of {watchers} watchers got the warm-up write"
            );
            continue;
        }
        if count < watchers {
            out.incomplete += 1;
            continue;
        }
        let ms = |t: Instant| t.duration_since(sent).as_secs_f64() * 1000.0;
        out.last_ms.push(ms(last));
        out.first_ms.push(first.map_or(0.0, ms));
    }
    Ok(out)
}

/// One API watcher: streams `url`, reporting each `w-<i>` pod it sees, until `stop`.
async fn api_watcher(
    c: Http,
    url: String,
    tx: UnboundedSender<(usize, Instant)>,
    ready: tokio::sync::mpsc::Sender<()>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let req = hyper::Request::get(url).body(Full::new(Bytes::new()))?;
    let resp = c.request(req).await?;
    anyhow::ensure!(resp.status().is_success(), "watch: {}", resp.status());
    ready.send(()).await?;
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    loop {
        let frame = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            f = body.frame() => f,
        };
        let Some(frame) = frame else { return Ok(()) };
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        let now = Instant::now();
        buf.extend_from_slice(&data);
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let Ok(ev) = serde_json::from_slice::<Json>(&line) else {
                continue;
            };
            if let Some(i) = ev
                .pointer("/object/metadata/name")
                .and_then(Json::as_str)
                .and_then(write_index)
            {
                let _ = tx.send((i, now));
            }
        }
    }
}

/// Fan-out through the API server at `base`.
pub async fn api(base: &str, watchers: usize, writes: usize) -> anyhow::Result<Fanout> {
    let c = client();
    super::load::create_namespace(&c, base, "watch").await?;
    let url = format!("{base}/api/v1/namespaces/watch/pods?watch=1");
    let (tx, mut rx) = unbounded_channel();
    let stop = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    // Open the connections in batches, each connected (headers received) before the next.
    for batch in (0..watchers).collect::<Vec<_>>().chunks(100) {
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(batch.len());
        for _ in batch {
            tasks.spawn(api_watcher(
                c.clone(),
                url.clone(),
                tx.clone(),
                ready_tx.clone(),
                stop.clone(),
            ));
        }
        drop(ready_tx);
        for _ in batch {
            if ready_rx.recv().await.is_none() {
                break;
            }
        }
    }
    drop(tx);
    let pods = format!("{base}/api/v1/namespaces/watch/pods");
    let result = drive(watchers, writes, &mut rx, |i| {
        let (c, pods) = (c.clone(), pods.clone());
        async move {
            let body = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("w-{i}")},
                "spec": {"containers": [{"name": "main", "image": "busybox"}]}});
            call(&c, "POST", &pods, None, Some(body.to_string().into_bytes())).await.map(drop)
        }
    })
    .await;
    stop.cancel();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(Err(e)) = joined {
            eprintln!("kumos bench: a watcher failed: {e:#}");
        }
    }
    result
}

/// Fan-out on the raw store: `watchers` watches on one prefix, `value` written under new keys.
pub async fn store(
    store: std::sync::Arc<dyn Storage>,
    watchers: usize,
    writes: usize,
    value: Vec<u8>,
) -> anyhow::Result<Fanout> {
    let prefix = "/registry/pods/watch-reference/";
    let from = store.current_revision().await?;
    let (tx, mut rx) = unbounded_channel();
    let stop = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..watchers {
        let mut stream = store.watch(prefix, from).await?;
        let (tx, stop) = (tx.clone(), stop.clone());
        tasks.spawn(async move {
            loop {
                let ev = tokio::select! {
                    () = stop.cancelled() => return,
                    ev = stream.next() => ev,
                };
                let Some(Ok(ev)) = ev else { return };
                if let (WatchEvent::Put { .. }, Some(i)) = (&ev, write_index(ev.key())) {
                    let _ = tx.send((i, Instant::now()));
                }
            }
        });
    }
    drop(tx);
    let result = drive(watchers, writes, &mut rx, |i| {
        let (store, value) = (std::sync::Arc::clone(&store), value.clone());
        async move {
            store.create(&format!("{prefix}w-{i}"), value).await?;
            Ok(())
        }
    })
    .await;
    stop.cancel();
    while tasks.join_next().await.is_some() {}
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_indices() {
        assert_eq!(write_index("w-12"), Some(12));
        assert_eq!(write_index("/registry/pods/watch/w-3"), Some(3));
        assert_eq!(write_index("pod-3"), None);
        assert_eq!(write_index("w-x"), None);
    }

    #[tokio::test]
    async fn drive_times_each_write_to_its_last_delivery() {
        let (tx, mut rx) = unbounded_channel();
        let out = drive(3, 2, &mut rx, |i| {
            let tx = tx.clone();
            async move {
                // Deliveries of this write to 3 watchers, plus a stray one of an older write.
                for _ in 0..3 {
                    tx.send((i, Instant::now()))?;
                }
                if i == 2 {
                    tx.send((1, Instant::now()))?;
                }
                Ok(())
            }
        })
        .await;
        let out = out.unwrap_or_default();
        assert_eq!((out.watchers, out.writes, out.incomplete), (3, 2, 0));
        assert_eq!(out.last_ms.len(), 2);
        assert!(out.last_ms.iter().zip(&out.first_ms).all(|(l, f)| l >= f));
    }

    #[test]
    fn fanout_percentiles() {
        let f = Fanout {
            watchers: 2,
            writes: 3,
            last_ms: vec![30.0, 10.0, 20.0],
            first_ms: vec![1.0, 3.0, 2.0],
            incomplete: 0,
        };
        assert_eq!(f.last_p50_p99(), (20.0, 30.0));
        assert_eq!(f.first_p50(), 2.0);
        assert_eq!(f.to_json()["last_delivery_ms"]["p99"], 30.0);
    }
}
