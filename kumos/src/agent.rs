//! The agent role: `kumos agent`, and the local agents of `kumos server`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kubelet_agent::agent::status::Backoff;
use kubelet_agent::agent::AgentConfig;
use kubelet_agent::containerizer::{
    Containerizer, DockerConfig, DockerContainerizer, ProcessContainerizer, SimulatedConfig,
    SimulatedContainerizer,
};
use offer_scheduler::resources::Resources;
use serde_json::{json, Value as Json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cli::{AgentArgs, Runtime, ServerArgs};
use crate::master::RunningMaster;

/// Resources of this machine, as Mesos detects them: every cpu, memory less 1 GiB (half when
/// the machine has under 2 GiB), a fixed 10 GiB of disk, and [`DEFAULT_PORTS`] (Mesos offers
/// 31000-32000, which lies inside Kubernetes' NodePort range 30000-32767 where the service
/// proxy listens on the same host).
pub fn detected_resources() -> String {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let total_mb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(2048, |kb| kb / 1024);
    let mem = if total_mb >= 2048 {
        total_mb - 1024
    } else {
        total_mb / 2
    };
    format!(
        "cpus:{cpus};mem:{mem};disk:10240;ports:[{}-{}]",
        DEFAULT_PORTS.0, DEFAULT_PORTS.1
    )
}

/// The port range agents offer unless `--resources` names one: below the NodePort range and below
/// Linux's ephemeral ports (32768+).
pub const DEFAULT_PORTS: (u32, u32) = (20000, 21000);

/// Ports each local agent of `kumos server` gets (agent `i` has slice `i % 100` of 20000-29999).
const LOCAL_AGENT_PORTS: u32 = 100;

/// Parses `--attributes "rack:r1;zone:a;level:2"` into Mesos `Attribute` JSON (numbers are
/// SCALAR, everything else TEXT).
pub fn parse_attributes(text: &str) -> anyhow::Result<Json> {
    let mut out = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once(':')
            .with_context(|| format!("attribute '{part}' is not name:value"))?;
        let (name, value) = (name.trim(), value.trim());
        anyhow::ensure!(!name.is_empty(), "attribute '{part}' has no name");
        out.push(match value.parse::<f64>() {
            Ok(v) if v.is_finite() => {
                json!({"name": name, "type": "SCALAR", "scalar": {"value": v}})
            }
            _ => json!({"name": name, "type": "TEXT", "text": {"value": value}}),
        });
    }
    Ok(Json::Array(out))
}

fn resources_json(text: &str) -> anyhow::Result<Json> {
    let r = Resources::parse(text).map_err(|e| anyhow::anyhow!("invalid --resources: {e}"))?;
    Ok(r.to_json())
}

/// How an agent runs its tasks.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Which containerizer.
    pub runtime: Runtime,
    /// Simulated runtime settings.
    pub sim: SimulatedConfig,
    /// dockerd's socket.
    pub docker_socket: PathBuf,
    /// Where published container ports listen.
    pub bind_address: std::net::IpAddr,
}

/// A stable identity for this agent's containers (Docker labels), kept in its work directory so
/// a restarted agent finds its containers again.
fn container_identity(work_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = work_dir.join("container-identity");
    if let Ok(id) = std::fs::read_to_string(&path) {
        if !id.trim().is_empty() {
            return Ok(id.trim().to_string());
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    std::fs::write(&path, &id).with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}

async fn containerizer(
    rt: &RuntimeConfig,
    work_dir: &std::path::Path,
    events: tokio::sync::mpsc::UnboundedSender<kubelet_agent::containerizer::TaskEvent>,
) -> anyhow::Result<Arc<dyn Containerizer>> {
    Ok(match rt.runtime {
        Runtime::Process => Arc::new(ProcessContainerizer::new(events)),
        Runtime::Simulated => Arc::new(SimulatedContainerizer::new(events, rt.sim)),
        Runtime::Docker => {
            let mut cfg =
                DockerConfig::new(rt.docker_socket.clone(), container_identity(work_dir)?);
            cfg.bind_address = rt.bind_address;
            let d = DockerContainerizer::new(events, cfg)
                .await
                .with_context(|| {
                    format!("connecting to dockerd at {}", rt.docker_socket.display())
                })?;
            Arc::new(d)
        }
    })
}

/// Agents running in this process.
pub struct LocalAgents {
    tracker: TaskTracker,
    token: CancellationToken,
}

impl LocalAgents {
    /// Stops every agent (their tasks are killed) and waits for them.
    pub async fn shutdown(self) {
        self.token.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

async fn spawn_agent(
    tracker: &TaskTracker,
    cfg: AgentConfig,
    rt: &RuntimeConfig,
    token: CancellationToken,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.work_dir)
        .with_context(|| format!("creating {}", cfg.work_dir.display()))?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let c = containerizer(rt, &cfg.work_dir, tx).await?;
    tracker.spawn(async move {
        if let Err(err) = kubelet_agent::agent::run(cfg, c, rx, token).await {
            tracing::error!(%err, "agent stopped");
        }
    });
    Ok(())
}

/// Starts `--agents` agents in this process, registered with `master`. Agent `i` gets its own
/// work directory, hostname `agent-<i>` and a disjoint slice of the port range, since all of
/// them share this host's network.
pub async fn start_local_agents(
    args: &ServerArgs,
    master: &RunningMaster,
    shutdown: CancellationToken,
) -> anyhow::Result<LocalAgents> {
    let tracker = TaskTracker::new();
    let token = shutdown.child_token();
    let base = args.agent_resources.clone().unwrap_or_else(|| {
        let ports = format!(";ports:[{}-{}]", DEFAULT_PORTS.0, DEFAULT_PORTS.1);
        detected_resources().replace(&ports, "")
    });
    for i in 0..args.agents {
        let lo = DEFAULT_PORTS.0 + (i % 100) * LOCAL_AGENT_PORTS;
        let resources = if base.contains("ports:") {
            base.clone()
        } else {
            format!("{base};ports:[{lo}-{}]", lo + LOCAL_AGENT_PORTS - 1)
        };
        let cfg = AgentConfig {
            master_url: format!("http://{}", master.addr),
            secret: master.secret.clone(),
            work_dir: args.api.store.data_dir.join("agents").join(i.to_string()),
            hostname: format!("agent-{i}"),
            // Local agents share this host: each listens on a free loopback port.
            ip: std::net::Ipv4Addr::LOCALHOST.into(),
            port: 0,
            resources: resources_json(&resources)?,
            attributes: json!([]),
            backoff: Backoff::default(),
        };
        let rt = RuntimeConfig {
            runtime: args.runtime,
            sim: SimulatedConfig::default(),
            docker_socket: args.docker_socket.clone(),
            bind_address: args.bind_address,
        };
        spawn_agent(&tracker, cfg, &rt, token.clone()).await?;
    }
    Ok(LocalAgents { tracker, token })
}

/// `kumos agent`: one agent, until a signal arrives.
pub async fn run_agent(args: AgentArgs) -> anyhow::Result<()> {
    let secret = match (&args.secret_file, std::env::var("KUMOS_AGENT_SECRET")) {
        (Some(path), _) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the agent secret {}", path.display()))?
            .trim()
            .to_string(),
        (None, Ok(s)) => s,
        (None, Err(_)) => anyhow::bail!(
            "the agent needs the master's agent secret: --secret-file PATH or KUMOS_AGENT_SECRET"
        ),
    };
    let resources = args.resources.clone().unwrap_or_else(detected_resources);
    let cfg = AgentConfig {
        master_url: args.master.trim_end_matches('/').to_string(),
        secret,
        work_dir: args.work_dir.clone(),
        hostname: args.hostname.clone().unwrap_or_else(default_hostname),
        ip: args.ip,
        port: args.port,
        resources: resources_json(&resources)?,
        attributes: parse_attributes(args.attributes.as_deref().unwrap_or(""))?,
        backoff: Backoff {
            initial: args.status_update_retry,
            max: Duration::from_secs(60).max(args.status_update_retry),
        },
    };
    let rt = RuntimeConfig {
        runtime: args.runtime,
        sim: SimulatedConfig {
            start_delay: args.sim_start_delay,
            lifetime: args.sim_lifetime,
        },
        docker_socket: args.docker_socket.clone(),
        bind_address: args.bind_address,
    };
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    if let (Some(kubeconfig), true) = (&args.kubeconfig, args.proxy) {
        let client = controllers::client_from_kubeconfig(kubeconfig).await?;
        let config = service_proxy::WatchConfig::new(Some(args.ip));
        tracker.spawn(service_proxy::run(client, config, token.clone()));
    }
    spawn_agent(&tracker, cfg, &rt, token.clone()).await?;
    tracker.close();
    println!(
        "kumos: agent of {} (work dir {})",
        args.master,
        args.work_dir.display()
    );
    crate::server::signals(token.clone()).await;
    tracker.wait().await;
    Ok(())
}

fn default_hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The default work directory when neither flag nor env names one.
pub fn default_work_dir() -> PathBuf {
    PathBuf::from("/var/lib/kumos/agent")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_text_and_scalar() {
        let a = parse_attributes("rack:r1; level:2").unwrap();
        assert_eq!(
            a[0],
            json!({"name": "rack", "type": "TEXT", "text": {"value": "r1"}})
        );
        assert_eq!(
            a[1],
            json!({"name": "level", "type": "SCALAR", "scalar": {"value": 2.0}})
        );
        assert!(parse_attributes("rack").is_err());
        assert_eq!(parse_attributes("").unwrap(), json!([]));
    }

    #[test]
    fn detected_resources_parse() {
        assert!(Resources::parse(&detected_resources()).is_ok());
    }
}
