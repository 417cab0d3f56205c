//! A throwaway etcd for the benchmark: the `etcd` binary on free loopback ports, its data in a
//! temporary directory, killed when dropped. Missing etcd is an error, never a skipped section.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// How long etcd may take to accept client connections.
const STARTUP: Duration = Duration::from_secs(60);

/// A running etcd child.
pub struct Etcd {
    child: Child,
    /// Its client URL (`http://127.0.0.1:PORT`).
    pub endpoint: String,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn binary() -> anyhow::Result<PathBuf> {
    let fixed = PathBuf::from("/usr/bin/etcd");
    if fixed.is_file() {
        return Ok(fixed);
    }
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("etcd"))
                .find(|c| c.is_file())
        })
        .context("etcd not found (install etcd-server): the etcd section needs it")
}

impl Etcd {
    /// Starts etcd with its data under `dir` and waits until a client can read from it.
    pub async fn start(dir: &Path) -> anyhow::Result<Etcd> {
        let (client, peer) = (free_port()?, free_port()?);
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        std::fs::create_dir_all(dir)?;
        let log = std::fs::File::create(dir.join("etcd.log"))?;
        let child = Command::new(binary()?)
            .arg("--name=kumos-bench")
            .arg(format!("--data-dir={}", dir.join("etcd").display()))
            .arg(format!("--listen-client-urls={endpoint}"))
            .arg(format!("--advertise-client-urls={endpoint}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=kumos-bench={peer_url}"))
            // The benchmark writes far more than etcd's 2 GiB default quota allows for 100k pods.
            .arg("--quota-backend-bytes=8589934592")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting etcd")?;
        let mut etcd = Etcd { child, endpoint };
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(status) = etcd.child.try_wait()? {
                anyhow::bail!(
                    "etcd exited at startup ({status}); see {}",
                    dir.join("etcd.log").display()
                );
            }
            if let Ok(mut c) = etcd_client::Client::connect([&etcd.endpoint], None).await {
                if c.get("health-probe", None).await.is_ok() {
                    return Ok(etcd);
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "etcd never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
