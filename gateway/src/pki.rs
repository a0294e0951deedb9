//! Certificates: loading PEM files, and the development PKI `raccordo serve` creates on first
//! start so that the quickstart works with no set-up.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
}

fn file_error(path: &Path, reason: impl ToString) -> PkiError {
    PkiError::File {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Every certificate in a PEM file, in order.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no certificate in the file"));
    }
    Ok(certs)
}

/// The private key in a PEM file.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, PkiError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error(path, e))
}

/// SHA-256 fingerprint of a DER certificate, as `sha256:<hex>`.
pub fn fingerprint(cert: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert);
    format!("sha256:{}", hex(digest.as_ref()))
}

pub fn hex(bytes: &[u8]) -> String {
    // A formatter call per byte showed in the referral path's profile; the crate does not.
    hex::encode(bytes)
}

/// Paths of the development PKI under a data directory.
pub struct DevPki {
    pub dir: PathBuf,
}

impl DevPki {
    pub fn new(data_dir: &Path) -> DevPki {
        DevPki {
            dir: data_dir.join("pki"),
        }
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.crt")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
    pub fn client_cert(&self, party: &str) -> PathBuf {
        self.dir.join("clients").join(format!("{party}.crt"))
    }
    pub fn client_key(&self, party: &str) -> PathBuf {
        self.dir.join("clients").join(format!("{party}.key"))
    }

    /// Creates whatever is missing: the CA, the server certificate for localhost, and a client
    /// certificate for each party. Existing files are left alone, so restarts keep identities.
    pub fn ensure(&self, parties: &[&str], now: OffsetDateTime) -> Result<(), PkiError> {
        std::fs::create_dir_all(self.dir.join("clients")).map_err(|e| file_error(&self.dir, e))?;
        let issuer = if self.ca_cert().exists() && self.ca_key().exists() {
            let key_pem = read(&self.ca_key())?;
            let key = KeyPair::from_pem(&key_pem)?;
            Issuer::from_ca_cert_pem(&read(&self.ca_cert())?, key)?
        } else {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params
                .distinguished_name
                .push(DnType::CommonName, "Raccordo development CA");
            params
                .distinguished_name
                .push(DnType::OrganizationName, "Regione Toscana (development)");
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            validity(&mut params, now, 3650);
            let cert = params.self_signed(&key)?;
            write(&self.ca_cert(), &cert.pem(), false)?;
            write(&self.ca_key(), &key.serialize_pem(), true)?;
            Issuer::new(params, key)
        };
        if !self.server_cert().exists() || !self.server_key().exists() {
            let names = vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ];
            let (cert, key) = leaf(
                &issuer,
                "localhost",
                names,
                ExtendedKeyUsagePurpose::ServerAuth,
                now,
            )?;
            write(&self.server_cert(), &cert, false)?;
            write(&self.server_key(), &key, true)?;
        }
        for party in parties {
            if !self.client_cert(party).exists() || !self.client_key(party).exists() {
                let (cert, key) = leaf(
                    &issuer,
                    party,
                    Vec::new(),
                    ExtendedKeyUsagePurpose::ClientAuth,
                    now,
                )?;
                write(&self.client_cert(party), &cert, false)?;
                write(&self.client_key(party), &key, true)?;
            }
        }
        Ok(())
    }
}

/// A certificate and key signed by `issuer`, as PEM.
pub fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    common_name: &str,
    names: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
    now: OffsetDateTime,
) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    validity(&mut params, now, 825);
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A self-contained CA for tests and sandboxes: certificates from it are "another CA" to a
/// gateway that does not trust it.
pub fn throwaway_ca(
    name: &str,
    now: OffsetDateTime,
) -> Result<(String, Issuer<'static, KeyPair>), PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params, now, 30);
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), Issuer::new(params, key)))
}

fn validity(params: &mut CertificateParams, now: OffsetDateTime, days: i64) {
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|e| file_error(path, e))
}

fn write(path: &Path, contents: &str, private: bool) -> Result<(), PkiError> {
    crate::files::write(path, contents.as_bytes(), private).map_err(|e| file_error(path, e))
}
