//! `/healthz`, `/livez`, `/readyz` and their per-check sub-paths, answered like kube-apiserver.

use axum::extract::{Path, RawQuery};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The checks each endpoint reports in `?verbose` output.
const CHECKS: &[&str] = &["ping", "log", "etcd", "poststarthook/start-apiserver"];

/// Health routes. Stateless: the server is healthy whenever it can answer.
pub(super) fn router() -> axum::Router {
    let mut router = axum::Router::new();
    for endpoint in ["healthz", "livez", "readyz"] {
        router = router
            .route(
                &format!("/{endpoint}"),
                get(move |q: RawQuery| async move { overall(endpoint, q.0.as_deref()) }),
            )
            .route(
                &format!("/{endpoint}/{{*check}}"),
                get(move |Path(check): Path<String>| async move { single(&check) }),
            );
    }
    router
}

/// A `text/plain` response as kube writes health output.
fn text(code: StatusCode, body: String) -> Response {
    let mut res = (code, body).into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// Whether the query asks for verbose output (`?verbose`, `?verbose=true`, `?verbose=1`).
fn verbose(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&').any(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            k == "verbose" && v != "false" && v != "0"
        })
    })
}

/// The body of `/{endpoint}`: `ok`, or one `[+]check ok` line per check when verbose.
pub(super) fn overall_body(endpoint: &str, query: Option<&str>) -> String {
    if !verbose(query) {
        return "ok".into();
    }
    let mut body: String = CHECKS.iter().map(|c| format!("[+]{c} ok\n")).collect();
    body.push_str(&format!("{endpoint} check passed\n"));
    body
}

fn overall(endpoint: &str, query: Option<&str>) -> Response {
    text(StatusCode::OK, overall_body(endpoint, query))
}

fn single(check: &str) -> Response {
    if CHECKS.contains(&check) {
        text(StatusCode::OK, "ok".into())
    } else {
        text(StatusCode::NOT_FOUND, "404 page not found\n".into())
    }
}
