//! The kubeconfig `kumos` writes for its users: the server URL, the CA and the bearer token.

use std::path::Path;

use base64::Engine;
use serde_json::json;

/// Renders a kubeconfig for `server` (with the CA when serving TLS, and the token when authenticating).
pub fn render(server: &str, ca_pem: Option<&str>, token: Option<&str>) -> anyhow::Result<String> {
    let mut cluster = json!({"server": server});
    if let Some(ca) = ca_pem {
        cluster["certificate-authority-data"] =
            json!(base64::engine::general_purpose::STANDARD.encode(ca));
    }
    let user = match token {
        Some(t) => json!({"token": t}),
        None => json!({}),
    };
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kumos", "cluster": cluster}],
        "users": [{"name": "admin", "user": user}],
        "contexts": [{"name": "kumos", "context": {"cluster": "kumos", "user": "admin"}}],
        "current-context": "kumos",
        "preferences": {},
    });
    Ok(serde_yaml::to_string(&config)?)
}

/// Writes the kubeconfig atomically, owner-readable only (it holds the token).
pub fn write(path: &Path, contents: &str) -> anyhow::Result<()> {
    apiserver::tls::write_file(path, contents.as_bytes(), true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_names_the_server_ca_and_token() {
        let text = render("https://127.0.0.1:6443", Some("PEM"), Some("tok")).unwrap();
        let v: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(v["current-context"], "kumos");
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            v["clusters"][0]["cluster"]["certificate-authority-data"],
            "UEVN"
        );
        assert_eq!(v["users"][0]["user"]["token"], "tok");
    }
}
