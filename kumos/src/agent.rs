//! The agent role: `kumos agent` and the local agents of `kumos server`.

use tokio_util::sync::CancellationToken;

use crate::cli::ServerArgs;
use crate::master::RunningMaster;

/// Local agents started by `kumos server`.
pub struct LocalAgents {}

impl LocalAgents {
    /// Stops every agent.
    pub async fn shutdown(self) {}
}

/// Starts `--agents` agents in this process, registered with `master`.
pub async fn start_local_agents(
    _args: &ServerArgs,
    _master: &RunningMaster,
    _shutdown: CancellationToken,
) -> anyhow::Result<LocalAgents> {
    Ok(LocalAgents {})
}
