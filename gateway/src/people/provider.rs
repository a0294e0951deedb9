//! The Region's identity provider, as this relying party sees it: discovery, the sign-in with the
//! authorization code flow and PKCE, ID token checks (through the openidconnect crate), and the
//! provider's signing keys for access tokens, cached and refreshed once when an unknown key id
//! arrives.
//!
//! The provider is contacted lazily, on the first sign-in or token, so the gateway starts (and
//! keeps serving the ambiti) while the provider is down.

use super::PeopleConfig;
use crate::authorization::Role;
use crate::metrics::Metrics;
use jsonwebtoken::jwk::JwkSet;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, LogoutRequest, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, Scope, TokenResponse,
};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Discovery is repeated after this long, so that a provider's new endpoints are picked up.
const DISCOVERY_LIFETIME: Duration = Duration::from_secs(3600);
/// The provider's keys are fetched again after this long, on the next token.
const KEYS_LIFETIME: Duration = Duration::from_secs(600);
/// Documents from the provider larger than this are refused.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider could not be reached or answered with an error.
    #[error("identity provider unavailable: {0}")]
    Unavailable(String),
    /// The provider's answer fails a check (ID token signature, nonce, issuer...).
    #[error("identity provider answer refused: {0}")]
    Refused(String),
    #[error("identity provider configuration: {0}")]
    Config(String),
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

struct Discovered {
    client: OidcClient,
    end_session: Option<openidconnect::EndSessionUrl>,
    jwks_uri: String,
    at: Instant,
}

/// A sign-in sent to the provider: what the browser is redirected to, and what must be kept
/// until it comes back.
pub struct SignInStart {
    pub url: String,
    pub state: String,
    pub pkce_verifier: String,
    pub nonce: String,
}

/// A person the provider vouched for.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// Keyed pseudonym of the provider's subject: what the audit log records.
    pub actor: String,
    pub name: String,
    pub roles: Vec<Role>,
}

pub struct IdentityProvider {
    pub config: PeopleConfig,
    http: reqwest::Client,
    /// Keys the provider's subjects into actor names, so that a subject that is a codice fiscale
    /// never reaches the audit log.
    actor_key: aws_lc_rs::hmac::Key,
    discovered: tokio::sync::RwLock<Option<Arc<Discovered>>>,
    keys: RwLock<Arc<JwkSet>>,
    /// When the key set was last fetched; held while looking up and fetching, so concurrent
    /// misses fetch once.
    last_key_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl IdentityProvider {
    pub fn new(
        config: PeopleConfig,
        actor_key: [u8; 32],
    ) -> Result<IdentityProvider, ProviderError> {
        let builder = reqwest::Client::builder()
            // Following redirects from the provider would open the gateway to request forgery.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5));
        let builder = match &config.ca_file {
            Some(path) => {
                let roots = super::roots(path).map_err(ProviderError::Config)?;
                let mut tls = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| ProviderError::Config(e.to_string()))?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                tls.alpn_protocols = vec![b"http/1.1".to_vec()];
                builder.use_preconfigured_tls(tls)
            }
            None => builder,
        };
        let http = builder
            .build()
            .map_err(|e| ProviderError::Config(e.to_string()))?;
        Ok(IdentityProvider {
            config,
            http,
            actor_key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &actor_key),
            discovered: tokio::sync::RwLock::new(None),
            keys: RwLock::new(Arc::new(JwkSet { keys: Vec::new() })),
            last_key_fetch: tokio::sync::Mutex::new(None),
        })
    }

    /// The audit name of a subject: `staff:` and 128 bits of a keyed hash.
    pub fn actor(&self, subject: &str) -> String {
        let tag = aws_lc_rs::hmac::sign(&self.actor_key, subject.as_bytes());
        let hex = crate::pki::hex(tag.as_ref());
        format!("staff:{}", &hex[..32])
    }

    async fn discovered(
        &self,
        metrics: &Metrics,
        force: bool,
    ) -> Result<Arc<Discovered>, ProviderError> {
        if !force
            && let Some(d) = self.discovered.read().await.as_ref()
            && d.at.elapsed() < DISCOVERY_LIFETIME
        {
            return Ok(Arc::clone(d));
        }
        let mut slot = self.discovered.write().await;
        if !force
            && let Some(d) = slot.as_ref()
            && d.at.elapsed() < DISCOVERY_LIFETIME
        {
            return Ok(Arc::clone(d));
        }
        let result = self.discover().await;
        metrics.provider_fetched("discovery", result.is_ok());
        let d = Arc::new(result?);
        *slot = Some(Arc::clone(&d));
        Ok(d)
    }

    async fn discover(&self) -> Result<Discovered, ProviderError> {
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| ProviderError::Config(format!("issuer: {e}")))?;
        let http = |request| exchange(&self.http, request);
        let metadata = ProviderMetadataWithLogout::discover_async(issuer, &http)
            .await
            .map_err(|e| ProviderError::Unavailable(error_chain(&e)))?;
        let end_session = metadata.additional_metadata().end_session_endpoint.clone();
        let jwks_uri = metadata.jwks_uri().url().to_string();
        let redirect = RedirectUrl::new(self.config.redirect_uri())
            .map_err(|e| ProviderError::Config(format!("public_url: {e}")))?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(
                self.config.client_secret.expose().clone(),
            )),
        )
        .set_redirect_uri(redirect);
        Ok(Discovered {
            client,
            end_session,
            jwks_uri,
            at: Instant::now(),
        })
    }

    /// Starts a sign-in: the provider's authorization URL with PKCE (S256), a state and a nonce.
    pub async fn start_sign_in(
        &self,
        metrics: &Metrics,
        lang: &str,
    ) -> Result<SignInStart, ProviderError> {
        let d = self.discovered(metrics, false).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = d
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("roles".into()))
            .add_extra_param("ui_locales", lang)
            .set_pkce_challenge(challenge)
            .url();
        Ok(SignInStart {
            url: url.to_string(),
            state: state.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
        })
    }

    /// Redeems the code (with the PKCE verifier) and checks the ID token: signature with an
    /// allowed algorithm, issuer, audience, expiry and nonce.
    pub async fn finish_sign_in(
        &self,
        metrics: &Metrics,
        code: &str,
        pkce_verifier: String,
        nonce: &str,
    ) -> Result<SignedIn, ProviderError> {
        let d = self.discovered(metrics, false).await?;
        let http = |request| exchange(&self.http, request);
        let response = d
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| ProviderError::Config(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier))
            .request_async(&http)
            .await
            .map_err(|e| ProviderError::Refused(format!("token request: {}", error_chain(&e))))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| ProviderError::Refused("the token response has no ID token".into()))?;
        let nonce = Nonce::new(nonce.to_owned());
        let algs: Vec<CoreJwsSigningAlgorithm> = self
            .config
            .algorithms
            .iter()
            .filter_map(|a| core_alg(*a))
            .collect();
        let checked = id_token
            .claims(
                &d.client.id_token_verifier().set_allowed_algs(algs.clone()),
                &nonce,
            )
            .map(|_| ());
        if let Err(first) = checked {
            // The provider may have rotated its keys since discovery: discover again, once.
            let fresh = self.discovered(metrics, true).await?;
            id_token
                .claims(
                    &fresh.client.id_token_verifier().set_allowed_algs(algs),
                    &nonce,
                )
                .map_err(|e| {
                    ProviderError::Refused(format!("ID token: {e} (before rediscovery: {first})"))
                })?;
        }
        // The token's signature and claims are verified above; its payload is read again as
        // plain JSON only to reach the configured roles claim, wherever it nests.
        let claims = payload(&id_token.to_string())
            .ok_or_else(|| ProviderError::Refused("ID token payload unreadable".into()))?;
        let subject = claims["sub"]
            .as_str()
            .ok_or_else(|| ProviderError::Refused("ID token without sub".into()))?;
        Ok(SignedIn {
            actor: self.actor(subject),
            name: display_name(&claims),
            roles: self.config.roles_in(&claims),
        })
    }

    /// Where to send the browser to end the provider's session too (RP-initiated logout), when
    /// the provider offers it.
    pub async fn logout_url(&self, metrics: &Metrics) -> Option<String> {
        let d = self.discovered(metrics, false).await.ok()?;
        let end = d.end_session.clone()?;
        let back = PostLogoutRedirectUrl::new(self.config.console_url()).ok()?;
        Some(
            LogoutRequest::from(end)
                .set_client_id(ClientId::new(self.config.client_id.clone()))
                .set_post_logout_redirect_uri(back)
                .http_get_url()
                .to_string(),
        )
    }

    /// The origin of the provider, for the console's form-action policy.
    pub fn issuer_origin(&self) -> String {
        let rest = self.config.issuer.trim_start_matches("https://");
        let host = rest.split('/').next().unwrap_or(rest);
        format!("https://{host}")
    }

    /// The verification key with this id, fetching the key set again (at most once per
    /// `jwks_min_refresh`) when it is not known.
    pub async fn key(
        &self,
        metrics: &Metrics,
        kid: &str,
    ) -> Result<Option<jsonwebtoken::jwk::Jwk>, ProviderError> {
        // A key is trusted from the cache while the cache is fresh, so that a key the provider
        // withdraws stops being accepted within KEYS_LIFETIME even if no unknown key id comes.
        let cached = |last: Option<Instant>| {
            let fresh = last.is_some_and(|at| at.elapsed() < KEYS_LIFETIME);
            let key = self.keys.read().ok().and_then(|set| set.find(kid).cloned());
            (fresh, key)
        };
        let mut last = self.last_key_fetch.lock().await;
        let (fresh, key) = cached(*last);
        if fresh && key.is_some() {
            return Ok(key);
        }
        if last.is_some_and(|at| at.elapsed() < self.config.jwks_min_refresh) {
            return Ok(key);
        }
        *last = Some(Instant::now());
        let fetched = self.fetch_keys(metrics).await;
        metrics.provider_fetched("jwks", fetched.is_ok());
        let set = match fetched {
            Ok(set) => Arc::new(set),
            // The provider is down: a key it published before stays usable meanwhile.
            Err(_) if key.is_some() => return Ok(key),
            Err(e) => return Err(e),
        };
        if let Ok(mut slot) = self.keys.write() {
            *slot = Arc::clone(&set);
        }
        Ok(set.find(kid).cloned())
    }

    /// Takes `set` as the provider's keys, as if fetched just now: for the fuzz targets, which
    /// have no provider to reach (see [`crate::fuzzing`]).
    #[doc(hidden)]
    pub async fn preload_keys(&self, set: JwkSet) {
        let mut last = self.last_key_fetch.lock().await;
        if let Ok(mut slot) = self.keys.write() {
            *slot = Arc::new(set);
        }
        *last = Some(Instant::now());
    }

    async fn fetch_keys(&self, metrics: &Metrics) -> Result<JwkSet, ProviderError> {
        let d = self.discovered(metrics, false).await?;
        let response = self
            .http
            .get(&d.jwks_uri)
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(ProviderError::Unavailable(format!(
                "jwks: HTTP {}",
                response.status()
            )));
        }
        let body = read_limited(response).await?;
        serde_json::from_slice(&body).map_err(|e| ProviderError::Refused(format!("jwks: {e}")))
    }
}

fn core_alg(a: jsonwebtoken::Algorithm) -> Option<CoreJwsSigningAlgorithm> {
    use jsonwebtoken::Algorithm as A;
    Some(match a {
        A::RS256 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        A::RS384 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
        A::RS512 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
        A::PS256 => CoreJwsSigningAlgorithm::RsaSsaPssSha256,
        A::PS384 => CoreJwsSigningAlgorithm::RsaSsaPssSha384,
        A::PS512 => CoreJwsSigningAlgorithm::RsaSsaPssSha512,
        A::ES256 => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        A::ES384 => CoreJwsSigningAlgorithm::EcdsaP384Sha384,
        A::EdDSA => CoreJwsSigningAlgorithm::EdDsa,
        _ => return None,
    })
}

/// The JSON payload of a compact JWS, unverified: call only on a verified token.
pub(crate) fn payload(token: &str) -> Option<serde_json::Value> {
    use base64::Engine;
    let part = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// What the console greets a person by: their name, else their preferred username.
pub(crate) fn display_name(claims: &serde_json::Value) -> String {
    ["name", "preferred_username", "given_name"]
        .iter()
        .find_map(|k| claims[*k].as_str())
        .unwrap_or("")
        .chars()
        .take(80)
        .collect()
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, ProviderError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ProviderError::Unavailable(error_chain(&e)))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(ProviderError::Refused("document larger than 1 MiB".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// openidconnect's HTTP client, over the gateway's reqwest (rustls on aws-lc-rs), so that the
/// crate's own reqwest and its ring backend stay out of the build.
async fn exchange(
    client: &reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, HttpError> {
    let request = reqwest::Request::try_from(request).map_err(|e| HttpError(error_chain(&e)))?;
    let response = client
        .execute(request)
        .await
        .map_err(|e| HttpError(error_chain(&e)))?;
    let mut builder = openidconnect::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = read_limited(response)
        .await
        .map_err(|e| HttpError(e.to_string()))?;
    builder.body(body).map_err(|e| HttpError(e.to_string()))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
