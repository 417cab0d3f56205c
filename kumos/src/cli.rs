//! Command-line interface: subcommands and their flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

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
    Server(ServerArgs),
    /// The API server alone.
    Apiserver(ApiArgs),
    /// The Mesos-style master alone (issue 4).
    Master,
    /// An agent alone (issue 5).
    Agent,
    /// The controllers alone (issue 6).
    Controllers,
}

/// Where objects are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// The durable embedded store under `--data-dir`.
    Embedded,
    /// An etcd v3 cluster (`--etcd-endpoints`).
    Etcd,
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

/// Flags of the API server role.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Directory for the store, certificates, token and kubeconfig.
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
}

/// Flags of the all-in-one server.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Local agents to run (they start once the agent issue lands).
    #[arg(long, default_value_t = 1)]
    pub agents: u32,
    /// How the local agents run tasks.
    #[arg(long, value_enum, default_value_t = Runtime::Process)]
    pub runtime: Runtime,
}

/// Runs the chosen subcommand.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Server(args) => {
            tracing::info!(
                agents = args.agents,
                runtime = ?args.runtime,
                "agents, the master and controllers are not built yet (issues 4-6); serving the API only"
            );
            crate::server::run_apiserver(args.api).await?;
        }
        Command::Apiserver(args) => crate::server::run_apiserver(args).await?,
        Command::Master => return Ok(not_yet("master", 4)),
        Command::Agent => return Ok(not_yet("agent", 5)),
        Command::Controllers => return Ok(not_yet("controllers", 6)),
    }
    Ok(ExitCode::SUCCESS)
}

fn not_yet(role: &str, issue: u32) -> ExitCode {
    eprintln!("kumos {role}: not implemented yet (see issue {issue})");
    ExitCode::from(2)
}
