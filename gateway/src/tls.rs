//! The server's rustls configuration: mutual TLS is mandatory, so a client without a
//! certificate from the configured CA never completes the handshake.

use crate::config::{Config, TlsSource};
use crate::pki::{self, DevPki, PkiError};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("tls: {0}")]
    Rustls(String),
}

/// Builds the server configuration, creating the development PKI first when configured so.
pub fn server_config(
    config: &Config,
    now: time::OffsetDateTime,
) -> Result<rustls::ServerConfig, TlsError> {
    let (ca, cert, key) = match &config.tls {
        TlsSource::Development => {
            let dev = DevPki::new(&config.data_dir);
            let parties: Vec<&str> = config
                .ambiti
                .iter()
                .filter(|a| {
                    a.certificates
                        .iter()
                        .any(|c| config.data_path(c) == dev.client_cert(&a.id))
                })
                .map(|a| a.id.as_str())
                .collect();
            dev.ensure(&parties, now)?;
            (dev.ca_cert(), dev.server_cert(), dev.server_key())
        }
        TlsSource::Files { ca, cert, key } => (ca.clone(), cert.clone(), key.clone()),
    };
    let mut roots = RootCertStore::empty();
    for c in pki::load_certificates(&ca)? {
        roots
            .add(c)
            .map_err(|e| TlsError::Rustls(format!("{}: {e}", ca.display())))?;
    }
    let provider = provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(pki::load_certificates(&cert)?, pki::load_private_key(&key)?)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(server)
}

/// The one crypto backend of the project. Configurations name it explicitly, so nothing depends
/// on which provider happens to be the process default.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Makes aws-lc-rs the process-wide default too, for libraries that ask for the default. Call
/// at the start of `main` and of every test harness; later calls are harmless.
pub fn install_default_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The fingerprint of the client's own certificate: the first of the presented chain.
#[derive(Debug, Clone)]
pub struct PeerFingerprint(pub String);

/// Records the client certificate of each new connection (actix `on_connect`).
pub fn on_connect(connection: &dyn std::any::Any, ext: &mut actix_web::dev::Extensions) {
    use actix_tls::accept::rustls_0_23::TlsStream;
    if let Some(tls) = connection.downcast_ref::<TlsStream<actix_web::rt::net::TcpStream>>() {
        let (_, session) = tls.get_ref();
        if let Some(cert) = session.peer_certificates().and_then(|c| c.first()) {
            ext.insert(PeerFingerprint(pki::fingerprint(cert)));
        }
    }
}
