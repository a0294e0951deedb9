//! The evidence bundle: a folder with the reports, the redacted traffic and a manifest that names
//! every file by its SHA-256, signed (a JWS with the signer's certificate in `x5c`) by the key
//! of the party that ran the kit. `raccordo conformance verify` checks it offline: every digest,
//! then the signature over the manifest.

use crate::report::Report;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub kit_version: String,
    pub profile: String,
    pub plan_digest: String,
    pub target: String,
    /// The target's identity: the gateway's server certificate, or the mapping file's digest.
    pub target_fingerprint: String,
    pub seed: u64,
    pub time: String,
    pub verdict: crate::model::Verdict,
    /// File name -> `sha256:<hex>`.
    pub files: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{0}")]
    Io(String),
    #[error("the bundle does not verify: {0}")]
    Invalid(String),
}

fn io(e: impl std::fmt::Display) -> BundleError {
    BundleError::Io(e.to_string())
}

pub fn sha256(bytes: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    format!("sha256:{}", raccordo_gateway::pki::hex(d.as_ref()))
}

#[derive(Serialize, Deserialize)]
struct Claims {
    manifest: String,
    iat: i64,
}

/// Writes the bundle into `dir` and signs it with `cert`/`key` (PEM; P-256).
pub fn write(
    dir: &Path,
    report: &Report,
    target_fingerprint: &str,
    cert: &Path,
    key: &Path,
) -> Result<(), BundleError> {
    std::fs::create_dir_all(dir).map_err(io)?;
    let traffic: String = report
        .results
        .iter()
        .flat_map(|r| {
            r.exchanges
                .iter()
                .map(move |e| serde_json::json!({"test": r.id, "exchange": e}).to_string() + "\n")
        })
        .collect();
    let files: Vec<(&str, String)> = vec![
        ("report.json", report.json()),
        ("junit.xml", report.junit()),
        ("report.html", report.html()),
        ("report.tap", report.tap()),
        ("traffic.jsonl", traffic),
    ];
    let mut digests = BTreeMap::new();
    for (name, text) in &files {
        std::fs::write(dir.join(name), text).map_err(io)?;
        digests.insert((*name).to_owned(), sha256(text.as_bytes()));
    }
    let manifest = Manifest {
        kit_version: report.kit_version.clone(),
        profile: report.profile.clone(),
        plan_digest: report.plan_digest.clone(),
        target: report.target.clone(),
        target_fingerprint: target_fingerprint.to_owned(),
        seed: report.seed,
        time: report.started.clone(),
        verdict: report.verdict,
        files: digests,
    };
    let manifest_text = serde_json::to_string_pretty(&manifest).map_err(io)?;
    std::fs::write(dir.join("manifest.json"), &manifest_text).map_err(io)?;

    let cert_der = raccordo_gateway::pki::load_certificates(cert)
        .map_err(io)?
        .into_iter()
        .next()
        .ok_or_else(|| BundleError::Io("no certificate to sign with".into()))?;
    let key_pem = std::fs::read_to_string(key).map_err(io)?;
    let pkcs8 = rcgen::KeyPair::from_pem(&key_pem)
        .map_err(io)?
        .serialize_der();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.x5c = Some(vec![
        base64::engine::general_purpose::STANDARD.encode(cert_der.as_ref()),
    ]);
    let claims = Claims {
        manifest: sha256(manifest_text.as_bytes()),
        iat: time::OffsetDateTime::now_utc().unix_timestamp(),
    };
    let jws = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_der(&pkcs8),
    )
    .map_err(io)?;
    std::fs::write(dir.join("manifest.jws"), jws).map_err(io)?;
    Ok(())
}

/// A throw-away certificate to sign a bundle with when the integrator names none: the bundle is
/// then tamper-evident but says nothing of who ran it.
pub fn ephemeral_signer(
    dir: &Path,
) -> Result<(std::path::PathBuf, std::path::PathBuf), BundleError> {
    let now = time::OffsetDateTime::now_utc();
    let (_, issuer) =
        raccordo_gateway::pki::throwaway_ca("Raccordo conformance kit (unsigned run)", now)
            .map_err(io)?;
    let (cert, key) = raccordo_gateway::pki::leaf(
        &issuer,
        "conformance-kit",
        Vec::new(),
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        now,
    )
    .map_err(io)?;
    let (c, k) = (dir.join("signer.crt"), dir.join("signer.key"));
    std::fs::write(&c, cert).map_err(io)?;
    std::fs::write(&k, key).map_err(io)?;
    Ok((c, k))
}

/// What a verified bundle says: its manifest and who signed it.
#[derive(Debug, Serialize)]
pub struct Verified {
    pub manifest: Manifest,
    pub signer: String,
    pub signer_fingerprint: String,
}

/// Checks a bundle offline: each file against the manifest, the manifest against the signature.
pub fn verify(dir: &Path) -> Result<Verified, BundleError> {
    let manifest_text = std::fs::read_to_string(dir.join("manifest.json")).map_err(io)?;
    let manifest: Manifest = serde_json::from_str(&manifest_text)
        .map_err(|e| BundleError::Invalid(format!("manifest: {e}")))?;
    for (name, digest) in &manifest.files {
        let bytes = std::fs::read(dir.join(name))
            .map_err(|e| BundleError::Invalid(format!("{name}: {e}")))?;
        if &sha256(&bytes) != digest {
            return Err(BundleError::Invalid(format!(
                "{name} was changed after signing"
            )));
        }
    }
    let jws = std::fs::read_to_string(dir.join("manifest.jws")).map_err(io)?;
    let header = jsonwebtoken::decode_header(jws.trim())
        .map_err(|e| BundleError::Invalid(format!("signature: {e}")))?;
    if header.alg != jsonwebtoken::Algorithm::ES256 {
        return Err(BundleError::Invalid("the signature must be ES256".into()));
    }
    let cert_der = header
        .x5c
        .as_ref()
        .and_then(|c| c.first())
        .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
        .ok_or_else(|| BundleError::Invalid("the signature carries no certificate (x5c)".into()))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert_der)
        .map_err(|e| BundleError::Invalid(format!("x5c: {e}")))?;
    let key = jsonwebtoken::DecodingKey::from_ec_der(
        parsed.public_key().subject_public_key.data.as_ref(),
    );
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Claims>(jws.trim(), &key, &validation)
        .map_err(|e| BundleError::Invalid(format!("signature: {e}")))?
        .claims;
    if claims.manifest != sha256(manifest_text.as_bytes()) {
        return Err(BundleError::Invalid(
            "manifest.json was changed after signing".into(),
        ));
    }
    Ok(Verified {
        manifest,
        signer: parsed.subject().to_string(),
        signer_fingerprint: raccordo_gateway::pki::fingerprint(&cert_der),
    })
}
