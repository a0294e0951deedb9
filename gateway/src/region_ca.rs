//! The Region's certificate authority for ambito systems (`raccordo pki`): create the CA, sign an
//! ambito's certificate request, list what was issued, revoke. The CA directory holds the CA key
//! and an index; the gateway needs only `ca.crt` and `revoked.json` from it.

use crate::pki::{self, PkiError};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
}

fn file_err(path: &Path, e: impl std::fmt::Display) -> CaError {
    CaError::File {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// One issued certificate, as the index records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IssuedRecord {
    pub serial: String,
    pub ambito: String,
    pub fingerprint: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub certificate: PathBuf,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<String>,
}

/// What the gateway reads to refuse revoked certificates (reloaded without a restart).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RevocationList {
    pub fingerprints: Vec<String>,
}

pub struct RegionCa {
    dir: PathBuf,
}

impl RegionCa {
    pub fn at(dir: &Path) -> RegionCa {
        RegionCa {
            dir: dir.to_owned(),
        }
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    fn index(&self) -> PathBuf {
        self.dir.join("index.json")
    }
    pub fn revoked(&self) -> PathBuf {
        self.dir.join("revoked.json")
    }

    /// Creates the CA; refuses to overwrite one.
    pub fn init(&self, name: &str, now: OffsetDateTime) -> Result<(), CaError> {
        if self.ca_key().exists() {
            return Err(CaError::Usage(format!(
                "{} already holds a CA",
                self.dir.display()
            )));
        }
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Regione Toscana");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(3650);
        let cert = params.self_signed(&key)?;
        crate::files::write(&self.ca_key(), key.serialize_pem().as_bytes(), true)
            .map_err(|e| file_err(&self.ca_key(), e))?;
        crate::files::write(&self.ca_cert(), cert.pem().as_bytes(), false)
            .map_err(|e| file_err(&self.ca_cert(), e))?;
        self.save_index(&[])?;
        self.write_revocations(&[])?;
        Ok(())
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, CaError> {
        let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| file_err(p, e));
        let key = KeyPair::from_pem(&read(&self.ca_key())?)?;
        Ok(Issuer::from_ca_cert_pem(&read(&self.ca_cert())?, key)?)
    }

    pub fn list(&self) -> Result<Vec<IssuedRecord>, CaError> {
        let text = std::fs::read_to_string(self.index()).map_err(|e| file_err(&self.index(), e))?;
        serde_json::from_str(&text).map_err(|e| file_err(&self.index(), e))
    }

    fn save_index(&self, records: &[IssuedRecord]) -> Result<(), CaError> {
        let json = serde_json::to_vec_pretty(records).map_err(|e| file_err(&self.index(), e))?;
        crate::files::write(&self.index(), &json, false).map_err(|e| file_err(&self.index(), e))
    }

    fn write_revocations(&self, records: &[IssuedRecord]) -> Result<(), CaError> {
        let list = RevocationList {
            fingerprints: records
                .iter()
                .filter(|r| r.revoked_at.is_some())
                .map(|r| r.fingerprint.clone())
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&list).map_err(|e| file_err(&self.revoked(), e))?;
        crate::files::write(&self.revoked(), &json, false).map_err(|e| file_err(&self.revoked(), e))
    }

    /// Signs a certificate for `ambito`: from its certificate request when given (the ambito
    /// keeps its key), otherwise with a new key written beside the certificate. Whatever the
    /// request asks for, the certificate names the ambito and allows client authentication only.
    pub fn issue(
        &self,
        ambito: &str,
        csr_pem: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(IssuedRecord, Option<PathBuf>), CaError> {
        if ambito.is_empty()
            || !ambito
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(CaError::Usage(
                "an ambito id is lower-case letters, digits and '-'".into(),
            ));
        }
        let issuer = self.issuer()?;
        let mut serial = [0u8; 16];
        SystemRandom::new()
            .fill(&mut serial)
            .map_err(|_| CaError::Usage("no randomness".into()))?;
        serial[0] &= 0x7f;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, ambito);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Regione Toscana - ambito");
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(825);
        let not_after = params.not_after;
        let serial_hex = pki::hex(&serial);
        let issued_dir = self.dir.join("issued");
        let cert_path = issued_dir.join(format!("{ambito}-{serial_hex}.crt"));
        let (cert, key_path) = match csr_pem {
            Some(pem) => {
                let mut csr = CertificateSigningRequestParams::from_pem(pem)?;
                csr.params = params;
                (csr.signed_by(&issuer)?, None)
            }
            None => {
                let key = KeyPair::generate()?;
                let cert = params.signed_by(&key, &issuer)?;
                let key_path = issued_dir.join(format!("{ambito}-{serial_hex}.key"));
                crate::files::write(&key_path, key.serialize_pem().as_bytes(), true)
                    .map_err(|e| file_err(&key_path, e))?;
                (cert, Some(key_path))
            }
        };
        crate::files::write(&cert_path, cert.pem().as_bytes(), false)
            .map_err(|e| file_err(&cert_path, e))?;
        let record = IssuedRecord {
            serial: serial_hex,
            ambito: ambito.to_owned(),
            fingerprint: pki::fingerprint(cert.der()),
            not_after,
            certificate: cert_path,
            revoked_at: None,
            revocation_reason: None,
        };
        let mut index = self.list()?;
        index.push(record.clone());
        self.save_index(&index)?;
        Ok((record, key_path))
    }

    /// Revokes by serial; the revocation list the gateway reloads is rewritten at once.
    pub fn revoke(
        &self,
        serial: &str,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<IssuedRecord, CaError> {
        let mut index = self.list()?;
        let record = index
            .iter_mut()
            .find(|r| r.serial.eq_ignore_ascii_case(serial))
            .ok_or_else(|| CaError::Usage(format!("no certificate with serial {serial}")))?;
        if record.revoked_at.is_none() {
            record.revoked_at = Some(now);
            record.revocation_reason = Some(reason.to_owned());
        }
        let revoked = record.clone();
        self.save_index(&index)?;
        self.write_revocations(&index)?;
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_issue_from_a_request_list_and_revoke() {
        let dir = tempfile::TempDir::new().unwrap();
        let ca = RegionCa::at(dir.path());
        let now = OffsetDateTime::now_utc();
        ca.init("Regione Toscana - Raccordo CA", now).unwrap();
        assert!(ca.init("again", now).is_err(), "a CA is never overwritten");

        // The ambito makes its own key and request; its requested name is not trusted.
        let key = KeyPair::generate().unwrap();
        let mut asked = CertificateParams::new(vec!["evil.example".to_owned()]).unwrap();
        asked.distinguished_name.push(DnType::CommonName, "region");
        let csr = asked.serialize_request(&key).unwrap().pem().unwrap();
        let (record, key_path) = ca.issue("grosseto", Some(&csr), now).unwrap();
        assert!(key_path.is_none());
        let cert = pki::load_certificates(&record.certificate).unwrap();
        assert_eq!(pki::fingerprint(&cert[0]), record.fingerprint);
        let text = String::from_utf8_lossy(&cert[0]).into_owned();
        assert!(
            !text.contains("evil.example"),
            "the requested name was copied"
        );

        let (second, key_path) = ca.issue("grosseto", None, now).unwrap();
        assert!(key_path.unwrap().exists());
        assert_eq!(ca.list().unwrap().len(), 2);
        ca.revoke(&record.serial, "key compromise", now).unwrap();
        let list: RevocationList =
            serde_json::from_str(&std::fs::read_to_string(ca.revoked()).unwrap()).unwrap();
        assert_eq!(list.fingerprints, vec![record.fingerprint.clone()]);
        assert!(!list.fingerprints.contains(&second.fingerprint));
        assert!(ca.revoke("ffff", "x", now).is_err());
        assert!(ca.issue("Not An Id", None, now).is_err());
    }
}
