//! The cluster CA and serving certificate kept in the data directory: created on first start, reused after
//! (the serving certificate is re-issued by the same CA when the requested names change; the CA never is).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Failures while creating or loading TLS material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or writing a file in the data directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Generating or parsing a key or certificate failed.
    #[error("certificate generation failed: {0}")]
    Cert(#[from] rcgen::Error),
    /// A stored file is not valid PEM.
    #[error("{0}: not a valid PEM file")]
    Pem(PathBuf),
    /// rustls refused the certificate or key.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The CA (for kubeconfigs) and the server's rustls configuration.
pub struct TlsMaterial {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The serving configuration (ALPN h2 and http/1.1).
    pub server_config: Arc<rustls::ServerConfig>,
}

const CA_NAME: &str = "kumos-ca";

fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_after = rcgen::date_time_ymd(2100, 1, 1);
    Ok(params)
}

fn read(path: &Path) -> Result<Option<String>, TlsError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes a file atomically (temp + rename); `secret` files are readable by the owner only.
pub fn write_file(path: &Path, contents: &[u8], secret: bool) -> Result<(), TlsError> {
    let io_err = |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, contents).map_err(io_err)?;
    if secret {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600)).map_err(io_err)?;
    }
    fs::rename(&tmp, path).map_err(io_err)
}

/// Loads the CA and serving certificate from `dir`, creating what is missing. The serving certificate
/// covers 127.0.0.1, ::1, localhost and `hosts`.
pub fn load_or_create(dir: &Path, hosts: &[String]) -> Result<TlsMaterial, TlsError> {
    fs::create_dir_all(dir).map_err(|source| TlsError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let (ca_crt, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
    let (ca_pem, ca_key_pair) = match (read(&ca_crt)?, read(&ca_key)?) {
        (Some(pem), Some(key)) => (pem, KeyPair::from_pem(&key)?),
        _ => {
            let key = KeyPair::generate()?;
            let cert = ca_params()?.self_signed(&key)?;
            write_file(&ca_key, key.serialize_pem().as_bytes(), true)?;
            write_file(&ca_crt, cert.pem().as_bytes(), false)?;
            (cert.pem(), key)
        }
    };
    let mut names: Vec<String> = vec!["127.0.0.1".into(), "::1".into(), "localhost".into()];
    for h in hosts {
        if !names.contains(h) {
            names.push(h.clone());
        }
    }
    let (srv_crt, srv_key, srv_names) = (
        dir.join("server.crt"),
        dir.join("server.key"),
        dir.join("server.names"),
    );
    let wanted = names.join("\n");
    let (cert_pem, key_pem) = match (read(&srv_crt)?, read(&srv_key)?, read(&srv_names)?) {
        (Some(c), Some(k), Some(n)) if n == wanted => (c, k),
        _ => {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(names.clone())?;
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, "kumos-apiserver");
            params.distinguished_name = dn;
            params.not_after = rcgen::date_time_ymd(2100, 1, 1);
            let issuer = Issuer::new(ca_params()?, &ca_key_pair);
            let cert = params.signed_by(&key, &issuer)?;
            write_file(&srv_key, key.serialize_pem().as_bytes(), true)?;
            write_file(&srv_crt, cert.pem().as_bytes(), false)?;
            write_file(&srv_names, wanted.as_bytes(), false)?;
            (cert.pem(), key.serialize_pem())
        }
    };
    let server_config = server_config(&cert_pem, &ca_pem, &key_pem, &srv_crt, &srv_key)?;
    Ok(TlsMaterial {
        ca_pem,
        server_config,
    })
}

fn server_config(
    cert_pem: &str,
    ca_pem: &str,
    key_pem: &str,
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut chain: Vec<CertificateDer<'static>> = Vec::new();
    for pem in [cert_pem, ca_pem] {
        for cert in rustls_pemfile::certs(&mut pem.as_bytes()) {
            chain.push(cert.map_err(|_| TlsError::Pem(cert_path.to_path_buf()))?);
        }
    }
    let key = rustls_pemfile::pkcs8_private_keys(&mut key_pem.as_bytes())
        .next()
        .and_then(Result::ok)
        .map(|k: PrivatePkcs8KeyDer<'static>| PrivateKeyDer::Pkcs8(k))
        .ok_or_else(|| TlsError::Pem(key_path.to_path_buf()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Loads the bearer token from `dir/token`, creating a random one (32 bytes, hex) on first start.
pub fn load_or_create_token(dir: &Path) -> Result<String, TlsError> {
    load_or_create_secret(&dir.join("token"))
}

/// Reads a secret from `path`, or creates one (32 random bytes, hex, mode 0600) when the file is
/// missing or empty.
pub fn load_or_create_secret(path: &Path) -> Result<String, TlsError> {
    if let Some(secret) = read(path)? {
        let secret = secret.trim().to_string();
        if !secret.is_empty() {
            return Ok(secret);
        }
    }
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_file(path, secret.as_bytes(), true)?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn material_is_reused_and_the_ca_survives_a_name_change() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), &[]).unwrap();
        let cert = fs::read_to_string(dir.path().join("server.crt")).unwrap();
        let again = load_or_create(dir.path(), &[]).unwrap();
        assert_eq!(first.ca_pem, again.ca_pem);
        assert_eq!(
            cert,
            fs::read_to_string(dir.path().join("server.crt")).unwrap()
        );
        let renamed = load_or_create(dir.path(), &["kumos.example".into()]).unwrap();
        assert_eq!(first.ca_pem, renamed.ca_pem);
        assert_ne!(
            cert,
            fs::read_to_string(dir.path().join("server.crt")).unwrap()
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.path().join("ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn tokens_are_random_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let token = load_or_create_token(dir.path()).unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(token, load_or_create_token(dir.path()).unwrap());
    }
}
