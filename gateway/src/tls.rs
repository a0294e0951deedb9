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

/// The CA, certificate and key files of the server, creating the development PKI first when
/// configured so.
fn material(
    config: &Config,
    now: time::OffsetDateTime,
) -> Result<(std::path::PathBuf, std::path::PathBuf, std::path::PathBuf), TlsError> {
    Ok(match &config.tls {
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
    })
}

/// The systems listener: mutual TLS, a client certificate from the configured CA required.
pub fn server_config(
    config: &Config,
    now: time::OffsetDateTime,
) -> Result<rustls::ServerConfig, TlsError> {
    let (ca, cert, key) = material(config, now)?;
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

/// The people listener: the same server certificate, no client certificate asked for (people
/// authenticate with the identity provider's tokens instead).
pub fn people_server_config(
    config: &Config,
    now: time::OffsetDateTime,
) -> Result<rustls::ServerConfig, TlsError> {
    let (_, cert, key) = material(config, now)?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_no_client_auth()
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

/// Which listener a connection came in on: systems (mTLS, certificates) or people (tokens and
/// the console).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Systems,
    People,
}

/// Records, for each new connection (actix `on_connect`), the listener it came in on and the
/// client certificate it presented.
pub fn on_connect(
    connection: &dyn std::any::Any,
    ext: &mut actix_web::dev::Extensions,
    people_port: Option<u16>,
) {
    use actix_tls::accept::rustls_0_23::TlsStream;
    if let Some(tls) = connection.downcast_ref::<TlsStream<actix_web::rt::net::TcpStream>>() {
        let (tcp, session) = tls.get_ref();
        let port = tcp.local_addr().ok().map(|a| a.port());
        ext.insert(if port.is_some() && port == people_port {
            Listener::People
        } else {
            Listener::Systems
        });
        if let Some(cert) = session.peer_certificates().and_then(|c| c.first()) {
            ext.insert(PeerFingerprint(pki::fingerprint(cert)));
        }
    }
}
