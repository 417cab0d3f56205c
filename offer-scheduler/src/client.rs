//! A client for the master's RecordIO APIs (the Mesos v1 scheduler API, and the Kumos agent
//! protocol shaped like it): SUBSCRIBE opens an event stream, other calls carry its stream id.

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value as Json;

/// Talking to the master failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request could not be built (bad master URL).
    #[error("invalid request to {url}: {message}")]
    Request {
        /// Master URL.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// Connection or transfer failure.
    #[error("cannot reach the master: {0}")]
    Transport(String),
    /// The master answered with an error status.
    #[error("master answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Response body.
        body: String,
    },
    /// A record on the stream is not valid RecordIO/JSON.
    #[error("malformed record from the master: {0}")]
    Malformed(String),
}

/// An HTTP client for one endpoint of one master.
#[derive(Clone)]
pub struct MasterClient {
    client: Client<HttpConnector, Full<Bytes>>,
    url: String,
    path: String,
    authorization: Option<String>,
}

/// The event stream of a subscription.
pub struct EventStream {
    body: hyper::body::Incoming,
    buf: BytesMut,
    /// The stream id to send with calls.
    pub stream_id: String,
}

impl MasterClient {
    /// A client for `path` (e.g. `/api/v1/scheduler`) of the master at `url`
    /// (e.g. `http://127.0.0.1:5050`), sending `authorization` as the Authorization header.
    pub fn new(url: &str, path: &str, authorization: Option<String>) -> MasterClient {
        MasterClient {
            client: Client::builder(TokioExecutor::new()).build_http(),
            url: url.trim_end_matches('/').to_string(),
            path: path.to_string(),
            authorization,
        }
    }

    fn request(
        &self,
        body: &Json,
        stream: Option<&str>,
    ) -> Result<hyper::Request<Full<Bytes>>, ClientError> {
        let mut b = hyper::Request::post(format!("{}{}", self.url, self.path))
            .header("content-type", "application/json")
            .header("accept", "application/json");
        if let Some(a) = &self.authorization {
            b = b.header("authorization", a);
        }
        if let Some(s) = stream {
            b = b.header("mesos-stream-id", s);
        }
        b.body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| ClientError::Request {
                url: self.url.clone(),
                message: e.to_string(),
            })
    }

    async fn send(
        &self,
        body: &Json,
        stream: Option<&str>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let resp = self
            .client
            .request(self.request(body, stream)?)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        Err(ClientError::Status {
            status: status.as_u16(),
            body,
        })
    }

    /// SUBSCRIBE: returns the event stream.
    pub async fn subscribe(&self, call: &Json) -> Result<EventStream, ClientError> {
        let resp = self.send(call, None).await?;
        let stream_id = resp
            .headers()
            .get("mesos-stream-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Ok(EventStream {
            body: resp.into_body(),
            buf: BytesMut::new(),
            stream_id,
        })
    }

    /// A call on an established stream (answered 202).
    pub async fn call(&self, call: &Json, stream: &str) -> Result<(), ClientError> {
        let resp = self.send(call, Some(stream)).await?;
        let _ = resp.into_body().collect().await;
        Ok(())
    }
}

impl EventStream {
    /// The next event; `Ok(None)` when the master ended the stream.
    pub async fn next(&mut self) -> Result<Option<Json>, ClientError> {
        loop {
            if let Some(record) = take_record(&mut self.buf)? {
                return serde_json::from_slice(&record)
                    .map(Some)
                    .map_err(|e| ClientError::Malformed(e.to_string()));
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(ClientError::Transport(e.to_string())),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

/// Splits one `<len>\n<bytes>` record off the front of `buf`, if complete.
pub fn take_record(buf: &mut BytesMut) -> Result<Option<Bytes>, ClientError> {
    let Some(nl) = buf.iter().position(|b| *b == b'\n') else {
        if buf.len() > 20 {
            return Err(ClientError::Malformed("record length too long".into()));
        }
        return Ok(None);
    };
    let len: usize = std::str::from_utf8(&buf[..nl])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| ClientError::Malformed("bad record length".into()))?;
    if buf.len() < nl + 1 + len {
        return Ok(None);
    }
    buf.advance(nl + 1);
    Ok(Some(buf.split_to(len).freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_split_across_chunks() {
        let mut buf = BytesMut::from(&b"7\n{\"a\":1"[..]);
        assert!(take_record(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"}2\n{}");
        assert_eq!(take_record(&mut buf).unwrap().unwrap(), &b"{\"a\":1}"[..]);
        assert_eq!(take_record(&mut buf).unwrap().unwrap(), &b"{}"[..]);
        assert!(take_record(&mut buf).unwrap().is_none());
        let mut bad = BytesMut::from(&b"x\n{}"[..]);
        assert!(take_record(&mut bad).is_err());
    }
}
