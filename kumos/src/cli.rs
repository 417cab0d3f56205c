//! Command-line interface: subcommands and their flags.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Kumos: a Kubernetes-compatible control plane with a Mesos-style offer scheduler.
#[derive(Debug, Parser)]
#[command(name = "kumos", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Everything in one process: API server, controllers, master and local agents.
    Server(Box<ServerArgs>),
    /// The API server alone.
    Apiserver(ApiserverArgs),
    /// The Mesos-style master alone.
    Master(MasterOnlyArgs),
    /// One agent, registered with a master.
    Agent(AgentArgs),
    /// Measure end-to-end scheduling throughput against the storage ceiling (writes a report).
    Bench(crate::bench::BenchArgs),
    /// The controllers alone, against a running API server.
    Controllers(ControllersArgs),
}

/// Where objects are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// The durable embedded store under `--data-dir`.
    Embedded,
    /// An etcd v3 cluster (`--etcd-endpoints`).
    Etcd,
}

impl StoreKind {
    /// The flag value: `embedded` or `etcd`.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Embedded => "embedded",
            StoreKind::Etcd => "etcd",
        }
    }
}

/// How agents run tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Runtime {
    /// Docker containers (via the Docker API).
    Docker,
    /// Plain processes.
    Process,
    /// Simulated tasks, for scale tests.
    Simulated,
}

/// Where state is kept: shared by every role that stores something.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory for the store, certificates, tokens, secrets and the kubeconfig.
    #[arg(long, env = "KUMOS_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Storage backend.
    #[arg(long, value_enum, default_value_t = StoreKind::Embedded)]
    pub store: StoreKind,
    /// etcd endpoints, comma-separated (with `--store etcd`).
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    pub etcd_endpoints: Vec<String>,
    /// Prefix for every etcd key (lets several clusters share one etcd).
    #[arg(long, default_value = "")]
    pub etcd_prefix: String,
    /// Revisions of history the embedded store keeps for watches before compacting.
    #[arg(long, default_value_t = 100_000)]
    pub compaction_window: i64,
    /// MiB of store pages the embedded store caches in memory.
    #[arg(long, default_value_t = 64)]
    pub store_cache_mb: usize,
}

/// Flags of the API server role.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Events each resource's watch cache keeps for watches resuming from a resourceVersion; older
    /// resourceVersions get 410 Expired.
    #[arg(long, default_value_t = 10_000)]
    pub default_watch_cache_size: usize,
    /// Address to serve the API on (port 0 picks a free port; the kubeconfig records the real one).
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Extra names or addresses for the serving certificate, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub tls_san: Vec<String>,
    /// Serve plain HTTP without authentication (tests only).
    #[arg(long)]
    pub insecure_http: bool,
    /// IPv4 block (/12 to /30) service cluster IPs are allocated from; the default lies inside
    /// 127.0.0.0/8, so this machine routes every service address without privileges.
    #[arg(long, default_value = "127.96.0.0/12")]
    pub service_cluster_ip_range: apiserver::service_alloc::IpRange,
    /// Ports `type: NodePort` (and LoadBalancer) services get their node ports from.
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: apiserver::service_alloc::PortRange,
}

/// Flags of `kumos apiserver`.
#[derive(Debug, Clone, Args)]
pub struct ApiserverArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The master's URL, for finding the agent of a node without an address (`pods/log`).
    #[arg(long)]
    pub master_url: Option<String>,
    /// File holding the agent secret the API server presents to agents (`pods/log`).
    #[arg(long)]
    pub agent_secret_file: Option<PathBuf>,
}

/// Parses `15s`, `500ms`, `2m`, `1h`, `15secs` (Mesos spelling) or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration '{text}': expected e.g. 15s, 500ms, 2m"))?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => n,
        "ms" | "msecs" => n / 1000.0,
        "m" | "min" | "mins" => n * 60.0,
        "h" | "hrs" => n * 3600.0,
        other => return Err(format!("invalid duration unit '{other}' in '{text}'")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("invalid duration '{text}': {e}"))
}

/// Flags of the master role.
#[derive(Debug, Clone, Args)]
pub struct MasterArgs {
    /// Address of the Mesos v1 HTTP API (scheduler, operator, state) and the agent protocol.
    #[arg(long, default_value = "127.0.0.1:5050")]
    pub master_listen: SocketAddr,
    /// Time between allocation cycles; events (new agent, REVIVE, freed resources) also trigger one.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub allocation_interval: Duration,
    /// An agent silent this long has missed one ping.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub agent_ping_timeout: Duration,
    /// Missed pings after which an agent is unreachable (its tasks are LOST).
    #[arg(long, default_value_t = 5)]
    pub max_agent_ping_timeouts: u32,
    /// How long agents known before a master restart have to re-register.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub agent_reregister_timeout: Duration,
    /// Rescind offers outstanding this long (default: never).
    #[arg(long, value_parser = parse_duration)]
    pub offer_timeout: Option<Duration>,
    /// Interval of HEARTBEAT events to schedulers (Mesos: 15 s).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub scheduler_heartbeat_interval: Duration,
    /// File holding the shared secret agents authenticate with (created when missing;
    /// default DATA_DIR/agent-secret).
    #[arg(long)]
    pub agent_secret_file: Option<PathBuf>,
}

/// Flags of `kumos agent`.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// The master's URL.
    #[arg(long, default_value = "http://127.0.0.1:5050")]
    pub master: String,
    /// File holding the master's agent secret (or set KUMOS_AGENT_SECRET).
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// Work directory: checkpoints and task sandboxes.
    #[arg(long, env = "KUMOS_AGENT_WORK_DIR", default_value_os_t = crate::agent::default_work_dir())]
    pub work_dir: PathBuf,
    /// Resources, e.g. `cpus:4;mem:8192;disk:20000;ports:[20000-21000]`, with roles for static
    /// reservations (`cpus(web):2`). Default: detected from the machine.
    #[arg(long)]
    pub resources: Option<String>,
    /// Attributes, e.g. `rack:r1;zone:a`.
    #[arg(long)]
    pub attributes: Option<String>,
    /// Hostname reported to the master (default: this machine's).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Address of the agent's HTTP endpoint (container logs for the API server).
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: IpAddr,
    /// Port of the agent's HTTP endpoint (0 picks a free one; the master learns the real one).
    #[arg(long, default_value_t = 5051)]
    pub port: u16,
    /// How tasks run.
    #[arg(long, value_enum, default_value_t = Runtime::Process)]
    pub runtime: Runtime,
    /// dockerd's socket (with `--runtime docker`).
    #[arg(long, default_value = "/var/run/docker.sock")]
    pub docker_socket: PathBuf,
    /// Address container ports are published on (never 0.0.0.0 by default).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: std::net::IpAddr,

    /// First retry of an unacknowledged status update (doubling up to 60 s).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub status_update_retry: Duration,
    /// Simulated runtime: time from launch to TASK_RUNNING.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub sim_start_delay: Duration,
    /// Simulated runtime: lifetime of tasks whose command it does not interpret (default: until killed).
    #[arg(long, value_parser = parse_duration)]
    pub sim_lifetime: Option<Duration>,
    /// Kubeconfig of the API server: when given, the agent runs the service proxy (cluster IPs,
    /// and NodePorts on `--ip`).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Run the service proxy (with `--kubeconfig`); `--proxy=false` turns it off.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub proxy: bool,
}

/// Flags of `kumos master`.
#[derive(Debug, Clone, Args)]
pub struct MasterOnlyArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub master: MasterArgs,
}

/// Where the cluster DNS listens: an address, or none (`off` or an empty value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsAddress(pub Option<SocketAddr>);

fn parse_dns_address(text: &str) -> Result<DnsAddress, String> {
    match text.trim() {
        "" | "off" => Ok(DnsAddress(None)),
        t => t.parse().map(|a| DnsAddress(Some(a))).map_err(|_| {
            format!("invalid cluster DNS address '{text}': expected IP:PORT (e.g. 127.0.0.10:53) or off")
        }),
    }
}

fn parse_cluster_domain(text: &str) -> Result<String, String> {
    let domain = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if domain.is_empty() || domain.len() > 253 || !domain.split('.').all(label_ok) {
        return Err(format!(
            "invalid cluster domain '{text}': expected a DNS name such as cluster.local"
        ));
    }
    Ok(domain)
}

/// Flags of the cluster DNS (`server` and `controllers`).
#[derive(Debug, Clone, Args)]
pub struct DnsArgs {
    /// UDP and TCP address of the cluster DNS; `off` (or "") disables it. Port 53 needs root; when the
    /// address cannot be bound, Kumos logs an error and runs without DNS.
    #[arg(long, default_value = "127.0.0.10:53", value_parser = parse_dns_address)]
    pub cluster_dns_address: DnsAddress,
    /// The cluster domain: services are `<svc>.<ns>.svc.<domain>`.
    #[arg(long, default_value = "cluster.local", value_parser = parse_cluster_domain)]
    pub cluster_domain: String,
}

impl DnsArgs {
    /// The DNS configuration, or `None` when disabled.
    pub fn config(&self) -> Option<cluster_dns::DnsConfig> {
        self.cluster_dns_address
            .0
            .map(|address| cluster_dns::DnsConfig {
                address,
                domain: self.cluster_domain.clone(),
            })
    }
}

/// Flags of `kumos controllers`.
#[derive(Debug, Clone, Args)]
pub struct ControllersArgs {
    /// Kubeconfig of the API server (the one `kumos apiserver` writes in its data directory).
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// The master's URL.
    #[arg(long, default_value = "http://127.0.0.1:5050")]
    pub master: String,
    /// Controllers to run: `*` (all), names to enable, `-name` to disable (framework,
    /// replication, gc, endpoints, nodes), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
    /// How long a node may be not Ready before its pods are deleted.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub pod_eviction_timeout: Duration,
    #[command(flatten)]
    pub dns: DnsArgs,
}

/// Flags of the all-in-one server.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub master: MasterArgs,
    /// Local agents to run in this process.
    #[arg(long, default_value_t = 1)]
    pub agents: u32,
    /// Controllers to run: `*` (all), names to enable, `-name` to disable (framework,
    /// replication, gc, endpoints, nodes), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
    /// How long a node may be not Ready before its pods are deleted.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub pod_eviction_timeout: Duration,
    #[command(flatten)]
    pub dns: DnsArgs,

    /// Resources of each local agent (default: this machine's cpus and memory, and a slice of
    /// 100 ports per agent from 20000).
    #[arg(long)]
    pub agent_resources: Option<String>,
    /// How the local agents run tasks.
    #[arg(long, value_enum, default_value_t = Runtime::Process)]
    pub runtime: Runtime,
    /// dockerd's socket (with `--runtime docker`).
    #[arg(long, default_value = "/var/run/docker.sock")]
    pub docker_socket: PathBuf,
    /// Address container ports are published on (never 0.0.0.0 by default).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: std::net::IpAddr,
    /// Run the service proxy the local agents share (cluster IPs, NodePorts on 127.0.0.1);
    /// `--proxy=false` turns it off.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub proxy: bool,
}

/// Runs the chosen subcommand.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Server(args) => {
            crate::server::run_server(*args).await?;
        }
        Command::Apiserver(args) => crate::server::run_apiserver(args).await?,
        Command::Master(args) => crate::master::run_master(args).await?,
        Command::Agent(args) => crate::agent::run_agent(args).await?,
        Command::Bench(args) => crate::bench::run_bench(args).await?,
        Command::Controllers(args) => {
            let config = controllers::ControllersConfig {
                master_url: args.master,
                controllers: args.controllers,
                pod_eviction_timeout: args.pod_eviction_timeout,
            };
            crate::server::run_controllers_only(args.kubeconfig, config, args.dns.config()).await?
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("15secs"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn service_ranges_are_checked_at_startup() {
        let parse = |extra: &[&str]| {
            let mut args = vec!["kumos", "apiserver", "--data-dir", "/tmp/x"];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args)
        };
        assert!(parse(&[]).is_ok());
        assert!(parse(&["--service-cluster-ip-range", "127.50.0.0/29"]).is_ok());
        let err = parse(&["--service-cluster-ip-range", "127.0.0.0/8"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("prefix length must be between /12 and /30"),
            "{err}"
        );
        let err = parse(&["--service-node-port-range", "32767-30000"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid service node port range"), "{err}");
    }

    #[test]
    fn dns_flags() {
        assert_eq!(parse_dns_address("off"), Ok(DnsAddress(None)));
        assert_eq!(parse_dns_address(""), Ok(DnsAddress(None)));
        assert_eq!(
            parse_dns_address("127.0.0.10:53"),
            Ok(DnsAddress(Some("127.0.0.10:53".parse().unwrap())))
        );
        assert!(parse_dns_address("127.0.0.10").is_err());
        assert_eq!(
            parse_cluster_domain("Cluster.Local."),
            Ok("cluster.local".into())
        );
        assert!(parse_cluster_domain("bad_domain").is_err());
        assert!(parse_cluster_domain("").is_err());
    }
}
