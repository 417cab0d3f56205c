//! The master's view of its agents: the operator API's `GET_AGENTS` call and its reply.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// How long one `GET_AGENTS` call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The master could not tell us its agents.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// The master URL is unusable.
    #[error("master URL {url:?}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The request failed.
    #[error("calling the master at {url}: {reason}")]
    Call {
        /// The operator endpoint.
        url: String,
        /// Why.
        reason: String,
    },
    /// The master answered with an error status.
    #[error("the master answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Response body.
        body: String,
    },
    /// The reply is not a `GET_AGENTS` response.
    #[error("unexpected GET_AGENTS reply: {0}")]
    Reply(String),
}

/// One agent as the master knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    /// `agent_info.id.value`.
    pub id: String,
    /// `agent_info.hostname`.
    pub hostname: String,
    /// Connected to the master (recovered agents that have not re-registered are not).
    pub active: bool,
    /// Scalar `cpus`.
    pub cpus: f64,
    /// Scalar `mem`, in MB.
    pub mem_mb: f64,
    /// Scalar `disk`, in MB.
    pub disk_mb: f64,
    /// TEXT and SCALAR attributes as (name, value) strings.
    pub attributes: Vec<(String, String)>,
}

/// Parses a `GET_AGENTS` reply: registered agents, then recovered ones (inactive).
pub fn parse_agents(reply: &Value) -> Result<Vec<Agent>, MasterError> {
    let body = reply
        .get("get_agents")
        .ok_or_else(|| MasterError::Reply("no get_agents field".into()))?;
    let mut out = Vec::new();
    for a in body
        .get("agents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let info = a
            .get("agent_info")
            .ok_or_else(|| MasterError::Reply("agent without agent_info".into()))?;
        let active = a.get("active").and_then(Value::as_bool).unwrap_or(false);
        out.push(agent(info, active)?);
    }
    for info in body
        .get("recovered_agents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push(agent(info, false)?);
    }
    Ok(out)
}

fn agent(info: &Value, active: bool) -> Result<Agent, MasterError> {
    let hostname = info
        .get("hostname")
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| MasterError::Reply("agent without hostname".into()))?;
    let id = info
        .pointer("/id/value")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let resources = info
        .get("resources")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let attributes = info
        .get("attributes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(attribute)
        .collect();
    Ok(Agent {
        id: id.to_string(),
        hostname: hostname.to_string(),
        active,
        cpus: scalar_sum(resources, "cpus"),
        mem_mb: scalar_sum(resources, "mem"),
        disk_mb: scalar_sum(resources, "disk"),
        attributes,
    })
}

/// The sum of the scalar resources named `name` (an agent may list one per role or reservation).
fn scalar_sum(resources: &[Value], name: &str) -> f64 {
    resources
        .iter()
        .filter(|r| r.get("name").and_then(Value::as_str) == Some(name))
        .filter_map(|r| r.pointer("/scalar/value").and_then(Value::as_f64))
        .sum()
}

fn attribute(a: &Value) -> Option<(String, String)> {
    let name = a.get("name")?.as_str()?.to_string();
    let value = match a.get("type")?.as_str()? {
        "TEXT" => a.pointer("/text/value")?.as_str()?.to_string(),
        "SCALAR" => format_number(a.pointer("/scalar/value")?.as_f64()?),
        _ => return None,
    };
    Some((name, value))
}

/// `2` for 2.0, `2.5` for 2.5.
pub fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A client of one master's operator API (plain HTTP).
#[derive(Clone)]
pub struct MasterClient {
    endpoint: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl MasterClient {
    /// A client for the master at `master_url` (`http://127.0.0.1:5050`).
    pub fn new(master_url: &str) -> Result<MasterClient, MasterError> {
        let base = master_url.trim_end_matches('/');
        if !base.starts_with("http://") {
            return Err(MasterError::Url {
                url: master_url.to_string(),
                reason: "only http:// masters are supported".into(),
            });
        }
        let endpoint = format!("{base}/api/v1");
        endpoint
            .parse::<http::Uri>()
            .map_err(|e| MasterError::Url {
                url: master_url.to_string(),
                reason: e.to_string(),
            })?;
        Ok(MasterClient {
            endpoint,
            http: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// Calls `GET_AGENTS`.
    pub async fn get_agents(&self) -> Result<Vec<Agent>, MasterError> {
        let call_err = |reason: String| MasterError::Call {
            url: self.endpoint.clone(),
            reason,
        };
        let req = http::Request::post(&self.endpoint)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from_static(br#"{"type":"GET_AGENTS"}"#)))
            .map_err(|e| call_err(e.to_string()))?;
        let call = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| call_err(e.to_string()))?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| call_err(e.to_string()))?
                .to_bytes();
            Ok::<_, MasterError>((status, body))
        };
        let (status, body) = tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| call_err(format!("no reply within {CALL_TIMEOUT:?}")))??;
        if !status.is_success() {
            return Err(MasterError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        let reply: Value =
            serde_json::from_slice(&body).map_err(|e| MasterError::Reply(e.to_string()))?;
        parse_agents(&reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_agents_resources_and_attributes() {
        let reply = json!({"type": "GET_AGENTS", "get_agents": {
            "agents": [{
                "agent_info": {"id": {"value": "a-1"}, "hostname": "agent-0", "port": 5051,
                    "resources": [
                        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2}},
                        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}, "role": "web"},
                        {"name": "mem", "type": "SCALAR", "scalar": {"value": 2048.0}},
                        {"name": "disk", "type": "SCALAR", "scalar": {"value": 10240}},
                        {"name": "ports", "type": "RANGES",
                         "ranges": {"range": [{"begin": 31000, "end": 32000}]}}],
                    "attributes": [
                        {"name": "rack", "type": "TEXT", "text": {"value": "r1"}},
                        {"name": "level", "type": "SCALAR", "scalar": {"value": 3}},
                        {"name": "s", "type": "SET", "set": {"item": ["a"]}}]},
                "active": true,
                "registered_time": {"nanoseconds": 1}}],
            "recovered_agents": [{"id": {"value": "a-2"}, "hostname": "agent-1", "port": 5051}]
        }});
        let agents = parse_agents(&reply).expect("parses");
        assert_eq!(
            agents[0],
            Agent {
                id: "a-1".into(),
                hostname: "agent-0".into(),
                active: true,
                cpus: 2.5,
                mem_mb: 2048.0,
                disk_mb: 10240.0,
                attributes: vec![("rack".into(), "r1".into()), ("level".into(), "3".into())],
            }
        );
        assert_eq!(agents[1].hostname, "agent-1");
        assert!(!agents[1].active, "recovered agents are not active");
        assert_eq!(agents[1].cpus, 0.0);
    }

    #[test]
    fn rejects_other_replies() {
        assert!(parse_agents(&json!({"type": "GET_HEALTH"})).is_err());
        let no_host = json!({"get_agents": {"agents": [{"agent_info": {"id": {"value": "x"}}}]}});
        assert!(parse_agents(&no_host).is_err());
        let empty = json!({"get_agents": {}});
        assert_eq!(parse_agents(&empty).expect("empty is fine"), vec![]);
    }

    #[test]
    fn master_urls_must_be_http() {
        assert!(MasterClient::new("https://127.0.0.1:5050").is_err());
        assert!(MasterClient::new("http://127.0.0.1:5050/").is_ok());
    }

    #[test]
    fn formats_numbers_like_labels_want() {
        assert_eq!(format_number(3.0), "3");
        assert_eq!(format_number(2.5), "2.5");
    }
}
