//! `--store etcd`: a throwaway single-member etcd child on free loopback ports, for the API
//! server child to store into and for the raw-store reference to range and put on.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// A running etcd, killed when dropped.
pub struct Etcd {
    child: Child,
    /// The client URL, `http://127.0.0.1:<port>`.
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

/// `/usr/bin/etcd`, else the first `etcd` on `PATH`.
fn find() -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/bin/etcd");
    if fixed.is_file() {
        return Some(fixed);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join("etcd"))
        .find(|c| c.is_file())
}

/// Starts etcd with its data under `dir` and waits until a client can read from it.
pub async fn start(dir: &Path) -> anyhow::Result<Etcd> {
    let binary = find().context("--store etcd: no etcd binary (install etcd-server)")?;
    let (client, peer) = (free_port()?, free_port()?);
    let endpoint = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    std::fs::create_dir_all(dir)?;
    let log = std::fs::File::create(dir.join("etcd.log"))?;
    let child = Command::new(&binary)
        .arg("--name=bench")
        .arg(format!("--data-dir={}", dir.join("data").display()))
        .arg(format!("--listen-client-urls={endpoint}"))
        .arg(format!("--advertise-client-urls={endpoint}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=bench={peer_url}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let mut etcd = Etcd { child, endpoint };
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = etcd.child.try_wait()? {
            anyhow::bail!(
                "etcd exited during startup ({status}), see {}",
                dir.join("etcd.log").display()
            );
        }
        if let Ok(mut c) = etcd_client::Client::connect([etcd.endpoint.as_str()], None).await {
            if c.get("health-probe", None).await.is_ok() {
                return Ok(etcd);
            }
        }
        anyhow::ensure!(Instant::now() < end, "etcd did not answer within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
