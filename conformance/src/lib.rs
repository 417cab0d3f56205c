//! Test fixtures for end-to-end tests: a real etcd, a real `kumos server` process, real kubectl, and
//! polling with deadlines.

pub mod dns;
pub mod docker;
pub mod etcd;
pub mod kubectl;
pub mod mesos;
pub mod server;

pub use etcd::EtcdProcess;
pub use kubectl::{kubectl_binaries, Kubectl};
pub use server::{ApiClient, KumosServer, Store};

use std::time::{Duration, Instant};

/// Polls `check` until it returns `Some`, or fails after `deadline` with `what` in the message.
pub fn eventually<T>(
    deadline: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check() {
            return Ok(v);
        }
        if Instant::now() > end {
            anyhow::bail!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
