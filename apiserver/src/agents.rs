//! Reaching the agents (Kumos' kubelets) from the API server, for `pods/log`.
//!
//! An agent's endpoint comes from its Node object (`status.addresses` InternalIP and
//! `status.daemonEndpoints.kubeletEndpoint.Port`, as kube-apiserver finds a kubelet) or, when
//! the Node does not say, from the master: `GET {master}/slaves` names the agent with the node's
//! hostname and its port; the hostname is used when it resolves, else the master's host (local
//! agents of `kumos server` share the master's host). Requests carry the agent secret.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// How long to wait for an agent's (or the master's) response headers.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for a node's hostname to resolve.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
/// Error bodies longer than this are cut.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// What the API server knows to reach agents.
#[derive(Clone, Debug, Default)]
pub struct AgentAccess {
    /// The master's URL (`http://host:port`), for finding agents by hostname.
    pub master_url: Option<String>,
    /// The agent secret, sent as `Authorization: Bearer`.
    pub secret: Option<String>,
}

/// Why an agent request failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// No agent secret was configured.
    #[error("the API server has no agent secret (--agent-secret-file)")]
    NoSecret,
    /// Neither the Node nor the master tells where the node's agent is.
    #[error("cannot find the agent of node {0:?}")]
    NoAgent(String),
    /// The agent or the master could not be reached.
    #[error("{url}: {message}")]
    Transport {
        /// What was asked.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The agent answered an error.
    #[error("agent answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Its (plain text) body, trimmed.
        body: String,
    },
}

/// An agent's HTTP endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl Endpoint {
    fn url(&self, path_and_query: &str) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}{path_and_query}", self.host, self.port)
        } else {
            format!("http://{}:{}{path_and_query}", self.host, self.port)
        }
    }
}

/// The endpoint a Node object names: its InternalIP and kubelet port.
pub fn node_endpoint(node: &Value) -> Option<Endpoint> {
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)?;
    let host = node
        .pointer("/status/addresses")?
        .as_array()?
        .iter()
        .find(|a| a.get("type").and_then(Value::as_str) == Some("InternalIP"))?
        .get("address")?
        .as_str()
        .filter(|a| !a.is_empty())?
        .to_string();
    Some(Endpoint { host, port })
}

/// An HTTP client for agents and the master.
#[derive(Clone)]
pub struct AgentClient {
    access: AgentAccess,
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient")
            .field("master_url", &self.access.master_url)
            .finish_non_exhaustive()
    }
}

impl AgentClient {
    /// A client with these settings.
    pub fn new(access: AgentAccess) -> AgentClient {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        AgentClient {
            access,
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    async fn send(
        &self,
        url: &str,
        bearer: Option<&str>,
    ) -> Result<hyper::Response<Incoming>, AgentError> {
        let transport = |message: String| AgentError::Transport {
            url: url.to_string(),
            message,
        };
        let mut req = hyper::Request::get(url);
        if let Some(b) = bearer {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {b}"));
        }
        let req = req
            .body(Empty::new())
            .map_err(|e| transport(e.to_string()))?;
        match tokio::time::timeout(RESPONSE_TIMEOUT, self.client.request(req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(transport(e.to_string())),
            Err(_) => Err(transport("timed out".into())),
        }
    }

    /// Where node `node_name`'s agent listens: from its Node object when that says, else from
    /// the master.
    pub async fn endpoint(
        &self,
        node_name: &str,
        node: Option<&Value>,
    ) -> Result<Endpoint, AgentError> {
        if let Some(e) = node.and_then(node_endpoint) {
            return Ok(e);
        }
        let no_agent = || AgentError::NoAgent(node_name.to_string());
        let master = self.access.master_url.as_deref().ok_or_else(no_agent)?;
        let master = master.trim_end_matches('/');
        let url = format!("{master}/slaves");
        let resp = self.send(&url, None).await?;
        let status = resp.status().as_u16();
        let body = read_body(resp.into_body(), usize::MAX).await;
        if status != 200 {
            return Err(AgentError::Transport {
                url,
                message: format!("master answered {status}"),
            });
        }
        let slaves: Value = serde_json::from_slice(&body).map_err(|e| AgentError::Transport {
            url: url.clone(),
            message: e.to_string(),
        })?;
        let port = slaves
            .get("slaves")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|s| {
                s.get("hostname").and_then(Value::as_str) == Some(node_name)
                    && s.get("active").and_then(Value::as_bool) != Some(false)
            })
            .and_then(|s| s.get("port")?.as_u64())
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(no_agent)?;
        let lookup = tokio::net::lookup_host((node_name, port));
        let resolves = match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
            Ok(Ok(mut addrs)) => addrs.next().is_some(),
            _ => false,
        };
        let host = if resolves {
            node_name.to_string()
        } else {
            master
                .parse::<hyper::Uri>()
                .ok()
                .and_then(|u| u.host().map(|h| h.trim_matches(['[', ']']).to_string()))
                .ok_or_else(no_agent)?
        };
        Ok(Endpoint { host, port })
    }

    /// `GET path_and_query` on the agent; a non-2xx answer becomes [`AgentError::Status`].
    pub async fn get(
        &self,
        endpoint: &Endpoint,
        path_and_query: &str,
    ) -> Result<hyper::Response<Incoming>, AgentError> {
        let secret = self.access.secret.as_deref().ok_or(AgentError::NoSecret)?;
        let resp = self
            .send(&endpoint.url(path_and_query), Some(secret))
            .await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body = read_body(resp.into_body(), MAX_ERROR_BODY).await;
        Err(AgentError::Status {
            status,
            body: String::from_utf8_lossy(&body).trim().to_string(),
        })
    }
}

/// Reads a body up to `limit` bytes (errors end it early).
async fn read_body(mut body: Incoming, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < limit {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            _ => break,
        }
    }
    out.truncate(limit);
    out
}
