//! People: the Region's analysts, administrators and data protection officer, and vendors'
//! integrators. They hold no certificates; they sign in through the Region's identity provider
//! with OpenID Connect (to the console, [`crate::console`]) and call the API with its access
//! tokens. Everything here is served on the people listener only; the mTLS listener never
//! accepts a token.
//!
//! - [`provider`]: discovery, the HTTP client towards the provider, the cached key set.
//! - [`access_token`]: bearer JWT checks (issuer, audience, expiry, not-before, algorithm).
//! - [`sessions`]: console sessions and sign-ins in progress, kept in the store.

pub mod access_token;
pub mod provider;
pub mod sessions;

use crate::authorization::Role;
use crate::config::{ConfigError, PeopleSettings};
use crate::secret::Secret;
use jsonwebtoken::Algorithm;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The resolved `[people]` section.
#[derive(Debug, Clone)]
pub struct PeopleConfig {
    pub listen: SocketAddr,
    /// Origin and path prefix browsers use, without a trailing slash.
    pub public_url: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret<String>,
    pub ca_file: Option<PathBuf>,
    pub audience: String,
    pub algorithms: Vec<Algorithm>,
    /// `roles_claim` split on dots.
    pub roles_claim: Vec<String>,
    /// Claim value -> role.
    pub role_values: Vec<(String, Role)>,
    pub leeway_seconds: u64,
    pub session_lifetime: Duration,
    pub jwks_min_refresh: Duration,
}

/// Asymmetric algorithms only: with HMAC, a verifier holding a public key could be fooled into
/// using it as the shared secret.
const ACCEPTABLE: [(&str, Algorithm); 9] = [
    ("RS256", Algorithm::RS256),
    ("RS384", Algorithm::RS384),
    ("RS512", Algorithm::RS512),
    ("PS256", Algorithm::PS256),
    ("PS384", Algorithm::PS384),
    ("PS512", Algorithm::PS512),
    ("ES256", Algorithm::ES256),
    ("ES384", Algorithm::ES384),
    ("EdDSA", Algorithm::EdDSA),
];

impl PeopleConfig {
    pub fn from_settings(
        s: &PeopleSettings,
        resolve: &dyn Fn(&str) -> PathBuf,
    ) -> Result<Option<PeopleConfig>, ConfigError> {
        if s.issuer.is_empty() {
            return Ok(None);
        }
        let invalid = |m: String| ConfigError::Invalid(format!("people: {m}"));
        if !s.issuer.starts_with("https://") || !s.public_url.starts_with("https://") {
            return Err(invalid(
                "issuer and public_url must be https:// URLs".into(),
            ));
        }
        let algorithms = s
            .algorithms
            .iter()
            .map(|name| {
                ACCEPTABLE
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, a)| *a)
                    .ok_or_else(|| {
                        invalid(format!(
                            "algorithm {name:?} is not accepted; choose among RS*, PS*, ES256, ES384, EdDSA"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if algorithms.is_empty() {
            return Err(invalid("algorithms is empty".into()));
        }
        let mut role_values = Vec::new();
        for (name, values) in &s.roles {
            let role = Role::person_role(name).ok_or_else(|| {
                invalid(format!(
                    "roles: {name:?} is not a role people may hold (analyst, admin, dpo, integrator)"
                ))
            })?;
            role_values.extend(values.iter().map(|v| (v.clone(), role)));
        }
        let client_secret = if !s.client_secret.expose().is_empty() {
            s.client_secret.clone()
        } else if !s.client_secret_file.is_empty() {
            let path = resolve(&s.client_secret_file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| invalid(format!("client_secret_file {}: {e}", path.display())))?;
            Secret::new(text.trim().to_owned())
        } else {
            return Err(invalid(
                "set client_secret_file or RACCORDO_PEOPLE__CLIENT_SECRET".into(),
            ));
        };
        Ok(Some(PeopleConfig {
            listen: s.listen,
            public_url: s.public_url.trim_end_matches('/').to_owned(),
            issuer: s.issuer.clone(),
            client_id: s.client_id.clone(),
            client_secret,
            ca_file: (!s.ca_file.is_empty()).then(|| resolve(&s.ca_file)),
            audience: s.audience.clone(),
            algorithms,
            roles_claim: s.roles_claim.split('.').map(str::to_owned).collect(),
            role_values,
            leeway_seconds: s.leeway_seconds,
            session_lifetime: Duration::from_secs(s.session_hours.max(1).saturating_mul(3600)),
            jwks_min_refresh: Duration::from_secs(s.jwks_min_refresh_seconds),
        }))
    }

    /// The roles a set of claims grants, in the table's order, without repeats.
    pub fn roles_in(&self, claims: &serde_json::Value) -> Vec<Role> {
        let mut at = claims;
        for part in &self.roles_claim {
            match at.get(part) {
                Some(v) => at = v,
                None => return Vec::new(),
            }
        }
        let values: Vec<&str> = match at {
            serde_json::Value::Array(items) => items.iter().filter_map(|v| v.as_str()).collect(),
            serde_json::Value::String(one) => one.split(' ').collect(),
            _ => Vec::new(),
        };
        let mut roles: Vec<Role> = self
            .role_values
            .iter()
            .filter(|(v, _)| values.contains(&v.as_str()))
            .map(|(_, r)| *r)
            .collect();
        roles.sort();
        roles.dedup();
        roles
    }

    pub fn redirect_uri(&self) -> String {
        format!("{}/console/callback", self.public_url)
    }

    pub fn console_url(&self) -> String {
        format!("{}/console/", self.public_url)
    }
}

/// Reads a PEM bundle of CAs for the provider's TLS.
pub(crate) fn roots(path: &Path) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in crate::pki::load_certificates(path).map_err(|e| e.to_string())? {
        roots
            .add(c)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings() -> PeopleSettings {
        let mut s = crate::config::Settings::defaults().unwrap().people;
        s.issuer = "https://id.example".into();
        s.client_secret = Secret::new("x".into());
        s
    }

    #[test]
    fn roles_come_from_the_configured_claim_path_and_unknown_values_grant_nothing() {
        let mut s = settings();
        s.roles_claim = "realm_access.roles".into();
        s.roles.insert(
            "admin".into(),
            vec!["raccordo-admin".into(), "admin".into()],
        );
        let c = PeopleConfig::from_settings(&s, &|p: &str| PathBuf::from(p))
            .unwrap()
            .unwrap();
        let claims = json!({"realm_access": {"roles": ["raccordo-admin", "dpo", "region", "x"]}});
        assert_eq!(c.roles_in(&claims), vec![Role::Admin, Role::Dpo]);
        assert!(c.roles_in(&json!({"roles": ["admin"]})).is_empty());
    }

    #[test]
    fn hmac_none_and_people_holding_system_roles_are_refused_at_start() {
        for alg in ["HS256", "none"] {
            let mut s = settings();
            s.algorithms = vec![alg.into()];
            let e = PeopleConfig::from_settings(&s, &|p: &str| PathBuf::from(p)).unwrap_err();
            assert!(e.to_string().contains(alg), "{e}");
        }
        let mut s = settings();
        s.roles.insert("region".into(), vec!["boss".into()]);
        assert!(PeopleConfig::from_settings(&s, &|p: &str| PathBuf::from(p)).is_err());
        let mut s = settings();
        s.issuer = "http://id.example".into();
        assert!(PeopleConfig::from_settings(&s, &|p: &str| PathBuf::from(p)).is_err());
    }
}
