//! Bearer-token authentication. Requests without the cluster token get 401 with a `Status` body; health
//! and `/version` stay open, as kube-apiserver allows them for unauthenticated users.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Paths served without authentication.
fn is_open(path: &str) -> bool {
    ["/healthz", "/livez", "/readyz"].iter().any(|p| {
        path == *p
            || path
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('/'))
    }) || path == "/version"
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from response times.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Wraps `app` so every request but the open paths must carry `Authorization: Bearer <token>`.
pub fn require_token(app: axum::Router, token: String) -> axum::Router {
    app.layer(axum::middleware::from_fn_with_state(Arc::new(token), check))
}

async fn check(State(token): State<Arc<String>>, request: Request, next: Next) -> Response {
    if is_open(request.uri().path()) {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(t) if same(t.as_bytes(), token.as_bytes()) => next.run(request).await,
        _ => ApiError::unauthorized().into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn call(path: &str, auth: Option<&str>) -> (u16, String) {
        let app = require_token(
            axum::Router::new()
                .route("/readyz", get(|| async { "ok" }))
                .route("/api/v1/pods", get(|| async { "pods" })),
            "secret".into(),
        );
        let mut req = axum::http::Request::get(path);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn missing_or_wrong_tokens_get_a_401_status() {
        let (s, body) = call("/api/v1/pods", None).await;
        assert_eq!(s, 401);
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status["reason"], "Unauthorized");
        assert_eq!(status["code"], 401);
        assert_eq!(call("/api/v1/pods", Some("Bearer nope")).await.0, 401);
        assert_eq!(
            call("/api/v1/pods", Some("Bearer secret")).await,
            (200, "pods".into())
        );
        assert_eq!(call("/readyz", None).await.0, 200);
        assert!(!is_open("/readyzz") && is_open("/livez/ping"));
    }
}
