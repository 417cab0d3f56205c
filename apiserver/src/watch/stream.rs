//! One client watch: the initial events (synthetic ADDED, or history replayed from a resourceVersion), then
//! live events, bookmarks, a timeout, and the end of the stream on shutdown, lag or a cache reset.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::http::header;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio::time::{Instant, Interval};

use super::cache::{EventType, Message, WatchCache};
use super::cached::Cached;
use super::filter::{selects, visible};
use super::{Transform, WatchRequest};
use crate::error::{ApiError, Cause};
use crate::storage::Revision;

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Current state as synthetic ADDED events, then changes.
    Now,
    /// Every change after this revision.
    After(Revision),
}

fn parse_start(req: &WatchRequest) -> Result<Start, ApiError> {
    match req.resource_version.as_deref() {
        None | Some("") | Some("0") => Ok(Start::Now),
        Some(rv) => rv.parse::<Revision>().map(Start::After).map_err(|_| {
            ApiError::bad_request(format!(
                "invalid resource version: strconv.ParseUint: parsing \"{rv}\": invalid syntax"
            ))
        }),
    }
}

/// `sendInitialEvents` needs `resourceVersionMatch=NotOlderThan` and bookmarks, as kube-apiserver checks.
fn check_initial_events(req: &WatchRequest) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    if req.send_initial_events.is_some() {
        if req.resource_version_match.as_deref() != Some("NotOlderThan") {
            causes.push(Cause {
                reason: "FieldValueForbidden".into(),
                message: "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into(),
                field: "resourceVersionMatch".into(),
            });
        }
        if !req.allow_bookmarks {
            causes.push(Cause {
                reason: "FieldValueForbidden".into(),
                message: "Forbidden: sendInitialEvents requires allowWatchBookmarks=true".into(),
                field: "allowWatchBookmarks".into(),
            });
        }
    } else if req.resource_version_match.is_some() {
        causes.push(Cause {
            reason: "FieldValueForbidden".into(),
            message: "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided".into(),
            field: "resourceVersionMatch".into(),
        });
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("ListOptions", "", causes))
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut bytes =
        serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// An event line around JSON serialized once in the cache: no per-watcher encoding.
fn raw_line(kind: EventType, object: &[u8]) -> Bytes {
    let kind = kind.as_str();
    let mut bytes = Vec::with_capacity(object.len() + kind.len() + 24);
    bytes.extend_from_slice(b"{\"type\":\"");
    bytes.extend_from_slice(kind.as_bytes());
    bytes.extend_from_slice(b"\",\"object\":");
    bytes.extend_from_slice(object);
    bytes.extend_from_slice(b"}\n");
    Bytes::from(bytes)
}

struct Watcher {
    cache: Arc<WatchCache>,
    req: WatchRequest,
    transform: Option<Transform>,
    pending: VecDeque<Bytes>,
    rx: broadcast::Receiver<Message>,
    /// The newest revision this client has been brought up to.
    last: Revision,
    bookmarks: Option<Interval>,
    deadline: Option<Instant>,
    done: bool,
}

impl Watcher {
    fn event_line(&self, kind: EventType, object: &Cached) -> Bytes {
        match &self.transform {
            Some(t) => line(kind.as_str(), &t(&object.object())),
            None => raw_line(kind, object.json()),
        }
    }

    fn bookmark(&self, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": self.last.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(
            "BOOKMARK",
            &json!({"kind": self.cache.resource.kind, "apiVersion": "v1", "metadata": metadata}),
        )
    }

    async fn next_line(&mut self) -> Option<Bytes> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Some(line);
            }
            if self.done {
                return None;
            }
            let deadline = self.deadline;
            let timeout = async move {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            let bookmark = async {
                match self.bookmarks.as_mut() {
                    Some(i) => {
                        i.tick().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.cache.shutdown.cancelled() => return None,
                _ = timeout => return None,
                _ = bookmark => return Some(self.bookmark(false)),
                msg = self.rx.recv() => match msg {
                    Ok(Message::Event(event)) if event.revision > self.last => {
                        self.last = event.revision;
                        if let Some(kind) = visible(&self.req, &event) {
                            return Some(self.event_line(kind, &event.object));
                        }
                    }
                    Ok(Message::Event(_)) => {}
                    // A reset loses history and a lagging client has missed events: end the stream so the
                    // client re-lists and re-watches, as with kube-apiserver.
                    Ok(Message::Reset) | Err(_) => return None,
                },
            }
        }
    }
}

/// Serves a watch as newline-delimited JSON events.
pub fn serve(
    cache: Arc<WatchCache>,
    req: WatchRequest,
    transform: Option<Transform>,
) -> Result<Response, ApiError> {
    let start = parse_start(&req)?;
    check_initial_events(&req)?;
    let mut watcher = {
        let state = cache.lock();
        // Subscribing under the lock: every event after this snapshot reaches the receiver.
        let rx = cache.tx.subscribe();
        let mut watcher = Watcher {
            cache: cache.clone(),
            req,
            transform,
            pending: VecDeque::new(),
            rx,
            last: state.revision,
            bookmarks: None,
            deadline: None,
            done: false,
        };
        let initial = match (start, watcher.req.send_initial_events) {
            (_, Some(send)) => send,
            (Start::Now, None) => true,
            (Start::After(_), None) => false,
        };
        if initial {
            for obj in state
                .objects
                .values()
                .filter(|o| selects(&watcher.req, o.skeleton()))
            {
                let line = watcher.event_line(EventType::Added, obj);
                watcher.pending.push_back(line);
            }
        } else if let Start::After(rv) = start {
            if rv < state.oldest {
                let status =
                    ApiError::expired(format!("too old resource version: {rv} ({})", state.oldest));
                watcher.pending.push_back(line("ERROR", &status.status()));
                watcher.done = true;
            } else {
                for event in state.events.iter().filter(|e| e.revision > rv) {
                    if let Some(kind) = visible(&watcher.req, event) {
                        let line = watcher.event_line(kind, &event.object);
                        watcher.pending.push_back(line);
                    }
                }
                watcher.last = state.revision.max(rv);
            }
        }
        if watcher.req.send_initial_events == Some(true) {
            let end = watcher.bookmark(true);
            watcher.pending.push_back(end);
        }
        watcher
    };
    if watcher.req.allow_bookmarks {
        let period = cache.config.bookmark_interval;
        watcher.bookmarks = Some(tokio::time::interval_at(Instant::now() + period, period));
    }
    watcher.deadline = watcher.req.timeout.map(|t| Instant::now() + t);
    let stream = futures::stream::unfold(watcher, |mut w| async move {
        w.next_line().await.map(|l| (Ok::<_, Infallible>(l), w))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(stream))
        .map_err(ApiError::internal)
}
