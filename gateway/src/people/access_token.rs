//! Bearer access tokens (JWT, RFC 9068) from the Region's identity provider. Checked in this
//! order, and refused with the first rule that fails: an algorithm on the allow-list, a key the
//! provider publishes, the signature, the issuer, the audience, expiry and not-before (with the
//! configured leeway), a subject. Time is passed in.

use super::provider::IdentityProvider;
use crate::metrics::Metrics;
use crate::registry::Party;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};

/// Why a token is refused. Each has a stable code; the message says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRefusal {
    Malformed,
    AlgorithmNotAllowed(String),
    UnknownKey,
    BadSignature,
    WrongIssuer,
    WrongAudience,
    Expired,
    NotYetValid,
    MissingClaim(&'static str),
    /// The provider's keys could not be fetched: not the caller's fault.
    ProviderUnavailable,
}

impl TokenRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            TokenRefusal::Malformed => "token-malformed",
            TokenRefusal::AlgorithmNotAllowed(_) => "token-algorithm-not-allowed",
            TokenRefusal::UnknownKey => "token-unknown-key",
            TokenRefusal::BadSignature => "token-bad-signature",
            TokenRefusal::WrongIssuer => "token-wrong-issuer",
            TokenRefusal::WrongAudience => "token-wrong-audience",
            TokenRefusal::Expired => "token-expired",
            TokenRefusal::NotYetValid => "token-not-yet-valid",
            TokenRefusal::MissingClaim(_) => "token-missing-claim",
            TokenRefusal::ProviderUnavailable => "identity-provider-unavailable",
        }
    }

    pub fn message(&self, p: &super::PeopleConfig) -> String {
        match self {
            TokenRefusal::Malformed => "the bearer token is not a compact JWS (header.payload.signature)".into(),
            TokenRefusal::AlgorithmNotAllowed(alg) => format!(
                "the token's algorithm {alg:?} is not on the allow-list ({}); tokens must be signed asymmetrically",
                p.algorithms.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ")
            ),
            TokenRefusal::UnknownKey => "the token's key id (kid) is not among the identity provider's published keys, even after fetching them again".into(),
            TokenRefusal::BadSignature => "the token's signature does not verify with the identity provider's key".into(),
            TokenRefusal::WrongIssuer => format!("the token was not issued by {}", p.issuer),
            TokenRefusal::WrongAudience => format!("the token is not meant for this API: its aud must include {}", p.audience),
            TokenRefusal::Expired => "the token has expired; obtain a new one".into(),
            TokenRefusal::NotYetValid => "the token is not valid yet (nbf in the future); check the clocks".into(),
            TokenRefusal::MissingClaim(c) => format!("the token lacks the {c} claim"),
            TokenRefusal::ProviderUnavailable => "the identity provider's keys could not be fetched; retry later".into(),
        }
    }
}

/// Checks a bearer token at `now` (seconds since the epoch) and names the person behind it.
pub async fn verify(
    provider: &IdentityProvider,
    metrics: &Metrics,
    token: &str,
    now: i64,
) -> Result<Party, TokenRefusal> {
    let p = &provider.config;
    let header_json = token
        .split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .filter(|_| token.split('.').count() == 3)
        .ok_or(TokenRefusal::Malformed)?;
    let alg_name = header_json["alg"].as_str().unwrap_or("");
    // Read the algorithm ourselves first, so that `none` and HMAC are named in the refusal
    // instead of failing somewhere inside the parser.
    let alg = p
        .algorithms
        .iter()
        .copied()
        .find(|a| format!("{a:?}") == alg_name)
        .ok_or_else(|| TokenRefusal::AlgorithmNotAllowed(alg_name.chars().take(16).collect()))?;
    let kid = header_json["kid"]
        .as_str()
        .ok_or(TokenRefusal::UnknownKey)?;
    let jwk = provider
        .key(metrics, kid)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "identity provider keys unavailable");
            TokenRefusal::ProviderUnavailable
        })?
        .ok_or(TokenRefusal::UnknownKey)?;
    if let Some(key_alg) = jwk.common.key_algorithm
        && format!("{key_alg:?}") != alg_name
    {
        return Err(TokenRefusal::AlgorithmNotAllowed(alg_name.to_owned()));
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| TokenRefusal::UnknownKey)?;
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[p.issuer.as_str()]);
    validation.set_audience(&[p.audience.as_str()]);
    // Expiry and not-before are checked below against the `now` passed in.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidRsaKey(_) => TokenRefusal::BadSignature,
            ErrorKind::InvalidIssuer => TokenRefusal::WrongIssuer,
            ErrorKind::InvalidAudience => TokenRefusal::WrongAudience,
            ErrorKind::MissingRequiredClaim(c) if c == "iss" => TokenRefusal::WrongIssuer,
            ErrorKind::MissingRequiredClaim(c) if c == "aud" => TokenRefusal::WrongAudience,
            ErrorKind::InvalidAlgorithm => TokenRefusal::AlgorithmNotAllowed(alg_name.to_owned()),
            _ => TokenRefusal::Malformed,
        })?
        .claims;
    if claims.get("iss").is_none() {
        return Err(TokenRefusal::WrongIssuer);
    }
    if claims.get("aud").is_none() {
        return Err(TokenRefusal::WrongAudience);
    }
    let leeway = i64::try_from(p.leeway_seconds).unwrap_or(0);
    let exp = claims["exp"]
        .as_i64()
        .ok_or(TokenRefusal::MissingClaim("exp"))?;
    if now > exp.saturating_add(leeway) {
        return Err(TokenRefusal::Expired);
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf.as_i64().ok_or(TokenRefusal::Malformed)?;
        if now.saturating_add(leeway) < nbf {
            return Err(TokenRefusal::NotYetValid);
        }
    }
    let subject = claims["sub"]
        .as_str()
        .ok_or(TokenRefusal::MissingClaim("sub"))?;
    Ok(Party::person(
        provider.actor(subject),
        super::provider::display_name(&claims),
        p.roles_in(&claims),
    ))
}
