//! What every controller gets: a kube client for our own API server (over its real HTTP API, as a
//! third-party controller would talk to it) and a shutdown token.

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::path::Path;
use tokio_util::sync::CancellationToken;

/// A controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The kubeconfig could not be read.
    #[error("reading kubeconfig {path}: {source}")]
    Kubeconfig {
        /// Its path.
        path: String,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The client could not be built.
    #[error("building the Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

/// Shared by the controllers.
#[derive(Clone)]
pub struct Context {
    /// Client of the Kumos API server.
    pub client: Client,
    /// Cancelled on shutdown.
    pub shutdown: CancellationToken,
}

/// A client from a kubeconfig file (the one `kumos server` writes).
pub async fn client_from_kubeconfig(path: &Path) -> Result<Client, ContextError> {
    let kc = Kubeconfig::read_from(path).map_err(|source| ContextError::Kubeconfig {
        path: path.display().to_string(),
        source,
    })?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|source| ContextError::Kubeconfig {
            path: path.display().to_string(),
            source,
        })?;
    Ok(Client::try_from(config)?)
}
