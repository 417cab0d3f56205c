//! `kumos`: one binary for every role. `server` runs everything in one process (the API server, the
//! controllers, the master and local agents); the other subcommands run one role each.

mod agent;
mod bench;
mod cli;
mod kubeconfig;
mod leader;
mod master;
mod server;

use clap::Parser;

/// mimalloc instead of glibc's malloc: the API server, the controllers and the master allocate and free
/// many small JSON nodes from many threads, where glibc spent a third of the CPU and left the heap
/// fragmented (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KUMOS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("kumos: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("kumos: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
