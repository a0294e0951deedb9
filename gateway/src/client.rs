//! An HTTPS client that presents a party's certificate: used by the load generator, the tests,
//! and later by the adapter runner and the conformance kit.

use crate::pki::{self, PkiError};
use rustls::RootCertStore;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("client tls: {0}")]
    Tls(String),
    #[error("client: {0}")]
    Http(#[from] reqwest::Error),
}

/// TLS settings that trust `ca` and present `cert`/`key` (both optional: a client without a
/// certificate is how tests prove that one is required).
pub fn tls_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<rustls::ClientConfig, ClientError> {
    let mut roots = RootCertStore::empty();
    for c in pki::load_certificates(ca)? {
        roots.add(c).map_err(|e| ClientError::Tls(e.to_string()))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(pki::load_certificates(cert)?, pki::load_private_key(key)?)
            .map_err(|e| ClientError::Tls(e.to_string()))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A client for one party, identified by its certificate.
pub fn mtls_client(ca: &Path, cert: &Path, key: &Path) -> Result<reqwest::Client, ClientError> {
    let config = tls_config(ca, Some((cert, key)))?;
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .pool_max_idle_per_host(1)
        .build()?)
}
