//! Signed requests after the Italian interoperability patterns (AgID ModI): INTEGRITY_REST_01
//! (a `Digest` header over the body, signed inside an `Agid-JWT-Signature` JWT) and
//! ID_AUTH_REST_02 (a unique `jti` against replay). The JWT must be signed with the key of the
//! same certificate the client presented on the TLS connection (x5c), so the signature and the
//! channel name the same ambito; the token is kept with the referral as evidence that the sender
//! sent exactly this body.

use crate::problem::ApiError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

/// Whether an ambito must sign its requests (configuration, per ambito).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignaturePolicy {
    #[default]
    Optional,
    Required,
}

/// Algorithms accepted; never `none`, never HMAC (there is no shared secret to use).
const ALLOWED: [Algorithm; 5] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::EdDSA,
];
/// Longest lifetime a signature may claim, and the clock skew tolerated.
const MAX_LIFETIME_SECS: i64 = 300;
const LEEWAY_SECS: u64 = 30;

#[derive(Debug, Deserialize)]
struct Claims {
    jti: String,
    iat: i64,
    exp: i64,
    #[serde(default)]
    signed_headers: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// A verified signature: what the store keeps as evidence and uses against replay.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verified {
    pub token: String,
    /// SHA-256 of the jti, as stored (a jti may embed local identifiers).
    pub jti_digest: String,
    pub expires: i64,
}

fn refuse(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Forbidden {
        code,
        message: message.into(),
    }
}

/// `SHA-256=<base64>` of a body.
pub fn digest_header(body: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body);
    format!("SHA-256={}", STANDARD.encode(d.as_ref()))
}

/// The public key of a DER certificate, in the form jsonwebtoken verifies with.
fn key_of(cert: &[u8]) -> Result<DecodingKey, ApiError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|_| refuse("signature-invalid", "the x5c certificate cannot be parsed"))?;
    let spki = parsed.public_key();
    let bits = spki.subject_public_key.data.as_ref();
    let oid = spki.algorithm.algorithm.to_id_string();
    match oid.as_str() {
        "1.2.840.10045.2.1" => Ok(DecodingKey::from_ec_der(bits)),
        "1.2.840.113549.1.1.1" => Ok(DecodingKey::from_rsa_der(bits)),
        "1.3.101.112" => Ok(DecodingKey::from_ed_der(bits)),
        _ => Err(refuse(
            "signature-invalid",
            "the x5c certificate's key type is not supported",
        )),
    }
}

/// Verifies the signature of a request body. `peer` is the fingerprint of the TLS client
/// certificate; `audience` the gateway's own identifier.
pub fn verify(
    digest: Option<&str>,
    token: &str,
    body: &[u8],
    peer: &str,
    audience: &str,
    now: i64,
) -> Result<Verified, ApiError> {
    let computed = digest_header(body);
    let digest = digest.ok_or_else(|| {
        refuse(
            "digest-missing",
            "a signed request carries a Digest header: SHA-256=<base64 of the body's SHA-256>",
        )
    })?;
    if digest.trim() != computed {
        return Err(refuse(
            "digest-mismatch",
            "the Digest header does not match the body received",
        ));
    }
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| refuse("signature-invalid", "Agid-JWT-Signature is not a JWT"))?;
    if !ALLOWED.contains(&header.alg) {
        return Err(refuse(
            "signature-invalid",
            format!(
                "algorithm {:?} is not accepted; use ES256, ES384, RS256, PS256 or EdDSA",
                header.alg
            ),
        ));
    }
    let chain = header
        .x5c_der()
        .ok()
        .flatten()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            refuse(
                "signature-invalid",
                "the JWT header must carry the signing certificate in x5c",
            )
        })?;
    if crate::pki::fingerprint(&chain[0]) != peer {
        return Err(refuse(
            "signature-certificate-mismatch",
            "the JWT must be signed with the key of the certificate used on this connection",
        ));
    }
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iat", "aud"]);
    validation.leeway = LEEWAY_SECS;
    let data =
        jsonwebtoken::decode::<Claims>(token, &key_of(&chain[0])?, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind::*;
            match e.kind() {
                ExpiredSignature => refuse("signature-expired", "the JWT has expired"),
                ImmatureSignature => refuse("signature-invalid", "the JWT is not valid yet"),
                InvalidAudience => refuse(
                    "signature-invalid",
                    format!("the JWT audience must be '{audience}'"),
                ),
                MissingRequiredClaim(c) => refuse(
                    "signature-invalid",
                    format!("the JWT lacks the claim '{c}'"),
                ),
                InvalidSignature => {
                    refuse("signature-invalid", "the JWT signature does not verify")
                }
                _ => refuse("signature-invalid", "the JWT cannot be verified"),
            }
        })?;
    let claims = data.claims;
    if claims.iat > now + LEEWAY_SECS as i64 || claims.exp - claims.iat > MAX_LIFETIME_SECS {
        return Err(refuse(
            "signature-invalid",
            format!("iat must not be in the future and exp at most {MAX_LIFETIME_SECS} s after it"),
        ));
    }
    let signed = claims
        .signed_headers
        .iter()
        .any(|h| h.get("digest").and_then(|d| d.as_str()) == Some(computed.as_str()));
    if !signed {
        return Err(refuse(
            "digest-not-signed",
            "signed_headers must include {\"digest\": <the Digest header>}",
        ));
    }
    if claims.jti.is_empty() || claims.jti.len() > 256 {
        return Err(refuse(
            "signature-invalid",
            "jti must be 1 to 256 characters",
        ));
    }
    Ok(Verified {
        token: token.to_owned(),
        jti_digest: crate::pki::hex(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, claims.jti.as_bytes()).as_ref(),
        ),
        expires: claims.exp,
    })
}
