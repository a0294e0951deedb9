//! Entry points for the fuzz targets in `gateway/fuzz/` (cargo-fuzz) and for the unit test that
//! replays their corpora on stable Rust. Each one runs the product's own functions on outside
//! input, the way the API calls them; nothing here reimplements a check. Not an API: the names
//! and the fixtures may change with the targets.

use crate::monitoring::records::Kind;
use crate::people::access_token::TokenRefusal;
use crate::people::provider::IdentityProvider;
use crate::problem::ApiError;
use crate::registry::Party;
use std::sync::OnceLock;

/// The clock the `jwt` and `signature` targets pass in (the seed tokens of `gateway/fuzz/seed.py`
/// are valid at this instant). Far ahead, because jsonwebtoken checks a signature's `exp`
/// against the system clock, while the gateway checks `iat` against the time it passes in.
pub const NOW: i64 = 4_000_000_000;
/// The request body the seed signatures of the `signature` target sign.
pub const SIGNED_BODY: &[u8] = br#"{"fuzz":true}"#;
pub const SIGNATURE_AUDIENCE: &str = "https://raccordo.example.test";
pub const ISSUER: &str = "https://id.example.test/realms/region";
pub const AUDIENCE: &str = "raccordo-api";

/// A file of `gateway/fuzz/fixtures/`, read when first needed rather than built in, so that
/// building the gateway needs nothing from the fuzz crate: `jwks.json` (the identity provider's
/// published keys the `jwt` target trusts) and `signer.der` (the TLS client certificate the
/// `signature` target takes as the peer's).
fn fixture(name: &str) -> Option<Vec<u8>> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/fixtures")
            .join(name),
    )
    .ok()
}

fn signer() -> Option<&'static [u8]> {
    static SIGNER: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    SIGNER.get_or_init(|| fixture("signer.der")).as_deref()
}

/// A JSON request body for the referral and monitoring routes: parsed as the API's body reader
/// parses it, then every check a route runs on it before the store is touched (a referral's
/// read-only members, schema v1 and its type; a status change; each statistical kind, one record
/// or a batch), with the problem document a refusal renders.
pub fn json_ingest(data: &[u8]) {
    let body = match crate::referrals::parse_json(data) {
        Ok(body) => body,
        Err(e) => {
            std::hint::black_box(e.problem_at(""));
            return;
        }
    };
    let refused = |e: ApiError, at: &str| {
        std::hint::black_box(e.problem_at(at));
    };
    if let Err(e) = crate::referrals::checked_input(&body) {
        refused(e, "");
    }
    if let Err(e) = crate::referrals::parse_status_change(&body) {
        refused(e, "");
    }
    for kind in [Kind::Episode, Kind::Distribution, Kind::Intervention] {
        match body.as_array() {
            None => {
                if let Err(e) = crate::monitoring::ingest::reduce(kind, &body) {
                    refused(e, "");
                }
            }
            Some(items) if (1..=crate::monitoring::ingest::MAX_BATCH).contains(&items.len()) => {
                for (i, item) in items.iter().enumerate() {
                    if let Err(e) = crate::monitoring::ingest::reduce(kind, item) {
                        refused(e, &format!("/{i}"));
                    }
                }
            }
            Some(_) => {}
        }
    }
}

struct People {
    runtime: tokio::runtime::Runtime,
    provider: IdentityProvider,
    metrics: crate::metrics::Metrics,
}

fn people() -> Option<&'static People> {
    static PEOPLE: OnceLock<Option<People>> = OnceLock::new();
    PEOPLE
        .get_or_init(|| {
            use crate::authorization::Role;
            use jsonwebtoken::Algorithm;
            crate::tls::install_default_provider();
            let config = crate::people::PeopleConfig {
                listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                public_url: "https://raccordo.example.test".into(),
                issuer: ISSUER.into(),
                client_id: "raccordo".into(),
                client_secret: crate::secret::Secret::new("fuzz".into()),
                ca_file: None,
                audience: AUDIENCE.into(),
                algorithms: vec![
                    Algorithm::RS256,
                    Algorithm::PS256,
                    Algorithm::ES256,
                    Algorithm::ES384,
                    Algorithm::EdDSA,
                ],
                roles_claim: vec!["realm_access".into(), "roles".into()],
                role_values: vec![
                    ("raccordo-analyst".into(), Role::Analyst),
                    ("raccordo-admin".into(), Role::Admin),
                    ("raccordo-dpo".into(), Role::Dpo),
                ],
                leeway_seconds: 30,
                session_lifetime: std::time::Duration::from_secs(3600),
                // Never fetch the keys again: there is no provider to reach.
                jwks_min_refresh: std::time::Duration::from_secs(100 * 365 * 86_400),
            };
            let runtime = tokio::runtime::Builder::new_current_thread().build().ok()?;
            let provider = IdentityProvider::new(config, [7; 32]).ok()?;
            let metrics = crate::metrics::Metrics::new().ok()?;
            let keys = serde_json::from_slice(&fixture("jwks.json")?).ok()?;
            runtime.block_on(provider.preload_keys(keys));
            Some(People {
                runtime,
                provider,
                metrics,
            })
        })
        .as_ref()
}

/// A bearer token, as the people listener checks it, against a provider whose keys are the
/// fixture's. `None` only when the fixture cannot be built, or the input is not UTF-8 (an HTTP
/// header value never is).
pub fn jwt(data: &[u8]) -> Option<Result<Party, TokenRefusal>> {
    let token = std::str::from_utf8(data).ok()?;
    let p = people()?;
    let result = p.runtime.block_on(crate::people::access_token::verify(
        &p.provider,
        &p.metrics,
        token,
        NOW,
    ));
    if let Err(refusal) = &result {
        std::hint::black_box(refusal.message(&p.provider.config));
    }
    Some(result)
}

/// An `Agid-JWT-Signature` header, as the API checks it on a signed request. The first byte of
/// `data` picks the caller: 0, a request with the body's right `Digest` on the fixture's TLS
/// certificate; 1, the same without a `Digest`; 2, a peer holding whatever certificate the
/// token's `x5c` names (so that any certificate reaches the key and signature checks). The rest
/// is the token. `None` when the input is empty or not UTF-8, or the fixture is missing.
pub fn signature(data: &[u8]) -> Option<Result<crate::signature::Verified, ApiError>> {
    let (mode, rest) = data.split_first()?;
    let token = std::str::from_utf8(rest).ok()?;
    let digest = crate::signature::digest_header(SIGNED_BODY);
    let peer = match mode % 3 {
        2 => jsonwebtoken::decode_header(token)
            .ok()
            .and_then(|h| h.x5c_der().ok().flatten())
            .and_then(|chain| chain.first().map(|c| crate::pki::fingerprint(c)))
            .unwrap_or_default(),
        _ => crate::pki::fingerprint(signer()?),
    };
    let result = crate::signature::verify(
        (mode % 3 != 1).then_some(digest.as_str()),
        token,
        SIGNED_BODY,
        &peer,
        SIGNATURE_AUDIENCE,
        NOW,
    );
    if let Err(e) = &result {
        std::hint::black_box(e.problem_at(""));
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    //! Replays the committed corpora, regression inputs and named fixture tokens of the fuzz
    //! targets, so that stable CI keeps what fuzzing found fixed. A panic fails the test.

    use std::path::{Path, PathBuf};

    fn inputs(target: &str) -> Vec<PathBuf> {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut out = Vec::new();
        for dir in ["corpus", "regressions", "fixtures"] {
            if let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) {
                out.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()));
            }
        }
        out.sort();
        out
    }

    fn replay(target: &str, run: impl Fn(&[u8])) -> usize {
        let files = inputs(target);
        for f in &files {
            // A fuzzer running meanwhile may have replaced the file.
            if let Ok(data) = std::fs::read(f) {
                run(&data);
            }
        }
        assert!(!files.is_empty(), "no corpus for {target}");
        files.len()
    }

    #[test]
    fn fuzz_corpus_json_ingest_replays_without_panic() {
        replay("json_ingest", super::json_ingest);
    }

    #[test]
    fn fuzz_corpus_jwt_replays_without_panic_and_the_seed_tokens_hold() {
        replay("jwt", |d| {
            let _ = super::jwt(d);
        });
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fixtures/jwt");
        let seed = |name: &str| std::fs::read(fuzz.join(name)).unwrap();
        for ok in ["es-ok", "ed-ok", "rs-ok", "ps-ok"] {
            let party = super::jwt(&seed(ok)).unwrap();
            assert!(party.is_ok(), "{ok}: {party:?}");
        }
        use crate::people::access_token::TokenRefusal as R;
        for (name, refusal) in [
            ("wrong-iss", R::WrongIssuer),
            ("wrong-aud", R::WrongAudience),
            ("expired", R::Expired),
            ("not-yet", R::NotYetValid),
            ("no-sub", R::MissingClaim("sub")),
            ("unknown-kid", R::UnknownKey),
            ("none", R::AlgorithmNotAllowed("none".into())),
        ] {
            assert_eq!(
                super::jwt(&seed(name)).unwrap().unwrap_err(),
                refusal,
                "{name}"
            );
        }
    }

    #[test]
    fn fuzz_corpus_signature_replays_without_panic_and_the_seed_signature_holds() {
        replay("signature", |d| {
            let _ = super::signature(d);
        });
        let seed =
            std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fixtures/signature/ok"))
                .unwrap();
        let verified = super::signature(&seed).unwrap();
        assert!(verified.is_ok(), "{verified:?}");
    }
}
