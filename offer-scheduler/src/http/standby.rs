//! What a standby master answers: scheduler and redirect endpoints send clients to the leader
//! (307 with `Location: //leader:port/...`, which pymesos follows), or 503 while no master leads.

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// The answer of a standby master to a request for `path`, given the leader's `host:port`.
pub fn standby_response(path: &str, leader: Option<&str>) -> Response {
    let Some(leader) = leader else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "No leader elected",
        )
            .into_response();
    };
    let location = match path {
        "/redirect" | "/master/redirect" => format!("//{leader}"),
        other => format!("//{leader}{other}"),
    };
    Response::builder()
        .status(StatusCode::TEMPORARY_REDIRECT)
        .header(header::LOCATION, location)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_to_the_leader_or_503() {
        let r = standby_response("/api/v1/scheduler", Some("127.0.0.1:5051"));
        assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(
            r.headers()[header::LOCATION],
            "//127.0.0.1:5051/api/v1/scheduler"
        );
        let r = standby_response("/master/redirect", Some("127.0.0.1:5051"));
        assert_eq!(r.headers()[header::LOCATION], "//127.0.0.1:5051");
        assert_eq!(
            standby_response("/api/v1/scheduler", None).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
