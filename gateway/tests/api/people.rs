//! People calling the API with access tokens from a real OpenID provider: tokens obtained
//! through the real client-credentials grant pass, and each forged or stale one is refused with
//! the rule it broke. The provider signs with a key this test holds, so the negative cases carry
//! the provider's real signature and fail only on the rule under test.

use crate::harness::{Response, TestApp, assert_problem};
use crate::oidc::{AUDIENCE, Provider, SigningKey, free_port};
use base64::Engine;
use serde_json::{Value, json};
use tempfile::TempDir;

struct World {
    app: TestApp,
    provider: Provider,
    key: SigningKey,
}

async fn world(min_refresh_seconds: u64) -> World {
    let dir = TempDir::new().unwrap();
    let key = SigningKey::generate(dir.path(), "k1");
    let console_port = free_port();
    let provider = Provider::start(dir.path(), 0, console_port, std::slice::from_ref(&key));
    let app = TestApp::spawn_in(dir, |s| {
        provider.configure(s, console_port);
        s.people.jwks_min_refresh_seconds = min_refresh_seconds;
    })
    .await;
    World { app, provider, key }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl World {
    fn claims(&self) -> Value {
        json!({
            "iss": self.provider.issuer, "aud": AUDIENCE, "sub": "forged-client",
            "iat": now(), "exp": now() + 300, "roles": ["admin"],
        })
    }

    async fn token(&self, role: &str) -> String {
        self.provider.token_for(self.app.dir.path(), role).await
    }

    fn refused(r: &Response, code: &str) {
        assert_problem(r, 401, code);
        let challenge = r.headers["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert!(challenge.contains(code), "{challenge}");
    }

    async fn jwks_fetches(&self) -> u64 {
        let metrics = self.app.metrics().await;
        metrics
            .lines()
            .find(|l| {
                l.contains("identity_provider_fetches_total{document=\"jwks\",outcome=\"ok\"}")
            })
            .and_then(|l| l.rsplit(' ').next())
            .map(|v| v.parse().unwrap())
            .unwrap_or(0)
    }
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[tokio::test]
async fn tokens_from_the_real_grant_pass_with_the_roles_they_carry() {
    let w = world(30).await;
    let analyst = w.token("analyst").await;
    let me = w.app.get_as(&analyst, "/v1/me").await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["roles"], json!(["analyst"]));
    let id = me.body["id"].as_str().unwrap();
    assert!(
        id.starts_with("staff:") && !id.contains("analyst-tool"),
        "{id}"
    );
    assert_eq!(w.app.get_as(&analyst, "/v1/structures").await.status, 200);

    // A role the table does not give this route: refused, naming the route and the roles.
    let r = w.app.get_as(&analyst, "/v1/linkage/reviews").await;
    assert_problem(&r, 403, "not-permitted");
    assert!(
        r.body["detail"].as_str().unwrap().contains("analyst"),
        "{}",
        r.text
    );
    let admin = w.token("admin").await;
    assert_eq!(
        w.app.get_as(&admin, "/v1/linkage/reviews").await.status,
        200
    );

    // A valid token that grants no role opens nothing, and the refusal says so.
    let nobody = w.token("none").await;
    let me = w.app.get_as(&nobody, "/v1/me").await;
    assert_problem(&me, 403, "not-permitted");
    assert!(
        me.body["detail"]
            .as_str()
            .unwrap()
            .contains("holds no role"),
        "{}",
        me.text
    );
    assert_problem(
        &w.app.get_as(&nobody, "/v1/structures").await,
        403,
        "not-permitted",
    );

    // The people listener never lets a person act as an ambito.
    let r = w.app.get_as(&admin, "/v1/inbox").await;
    assert_problem(&r, 403, "not-permitted");
}

#[tokio::test]
async fn every_cell_of_the_table_holds_for_people() {
    let w = world(30).await;
    for role in ["analyst", "admin", "dpo", "integrator"] {
        let token = w.token(role).await;
        let parsed = raccordo_gateway::authorization::Role::person_role(role).unwrap();
        for (method, route, allowed) in raccordo_gateway::authorization::RULES {
            let path = route.replace("{id}", "00000000-0000-4000-8000-000000000000");
            let r = crate::harness::read(
                w.app
                    .people_client()
                    .request(method.parse().unwrap(), w.app.people_url(&path))
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body("{}")
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            if allowed.contains(&parsed) {
                assert!(
                    !(r.status == 403 || r.status == 401),
                    "{method} {route} should be open to {role}: {}",
                    r.text
                );
            } else {
                assert_problem(&r, 403, "not-permitted");
            }
        }
    }
}

#[tokio::test]
async fn the_negative_matrix_each_token_refused_for_its_own_reason() {
    let w = world(1).await;
    let people = w.app.people_client();

    let r =
        crate::harness::read(people.get(w.app.people_url("/v1/me")).send().await.unwrap()).await;
    World::refused(&r, "bearer-token-required");

    let mut c = w.claims();
    c["exp"] = json!(now() - 3600);
    World::refused(
        &w.app.get_as(&w.key.sign(&c), "/v1/me").await,
        "token-expired",
    );

    let mut c = w.claims();
    c["nbf"] = json!(now() + 3600);
    World::refused(
        &w.app.get_as(&w.key.sign(&c), "/v1/me").await,
        "token-not-yet-valid",
    );

    let mut c = w.claims();
    c["aud"] = json!("https://another-api.example");
    World::refused(
        &w.app.get_as(&w.key.sign(&c), "/v1/me").await,
        "token-wrong-audience",
    );

    let mut c = w.claims();
    c["iss"] = json!("https://impostor.example");
    World::refused(
        &w.app.get_as(&w.key.sign(&c), "/v1/me").await,
        "token-wrong-issuer",
    );

    // Bad signature: a real token with its payload changed.
    let real = w.token("analyst").await;
    let parts: Vec<&str> = real.split('.').collect();
    let mut payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    payload["roles"] = json!(["admin"]);
    let tampered = format!("{}.{}.{}", parts[0], b64(&payload), parts[2]);
    World::refused(
        &w.app.get_as(&tampered, "/v1/me").await,
        "token-bad-signature",
    );

    // alg none, and HMAC keyed with the provider's public key: refused by the allow-list.
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": "k1"})),
        b64(&w.claims())
    );
    let r = w.app.get_as(&unsigned, "/v1/me").await;
    World::refused(&r, "token-algorithm-not-allowed");
    assert!(
        r.body["detail"].as_str().unwrap().contains("none"),
        "{}",
        r.text
    );
    let public_pem = std::fs::read(&w.key.pem).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("k1".into());
    let hmac = jsonwebtoken::encode(
        &header,
        &w.claims(),
        &jsonwebtoken::EncodingKey::from_secret(&public_pem),
    )
    .unwrap();
    World::refused(
        &w.app.get_as(&hmac, "/v1/me").await,
        "token-algorithm-not-allowed",
    );

    // Unknown key id: one refresh of the provider's keys, then refused; a second unknown kid
    // within jwks_min_refresh_seconds does not make the gateway fetch again.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let before = w.jwks_fetches().await;
    let stranger = SigningKey::generate(w.app.dir.path(), "stranger");
    World::refused(
        &w.app.get_as(&stranger.sign(&w.claims()), "/v1/me").await,
        "token-unknown-key",
    );
    let after_one = w.jwks_fetches().await;
    assert_eq!(after_one, before + 1);
    let other = SigningKey::generate(w.app.dir.path(), "stranger-2");
    World::refused(
        &w.app.get_as(&other.sign(&w.claims()), "/v1/me").await,
        "token-unknown-key",
    );
    assert_eq!(
        w.jwks_fetches().await,
        after_one,
        "at most one refresh per interval"
    );

    // Garbage.
    World::refused(
        &w.app.get_as("not-a-jwt", "/v1/me").await,
        "token-malformed",
    );

    // The mTLS listener is not the people listener: a token there identifies no one.
    let r = crate::harness::read(
        w.app
            .client("prato")
            .get(w.app.url("/v1/me"))
            .bearer_auth(&real)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        r.body["id"], "prato",
        "the certificate decides there: {}",
        r.text
    );
}

#[tokio::test]
async fn a_rotated_provider_key_is_picked_up_and_a_retired_one_is_refused() {
    let w = world(0).await;
    let old = w.token("analyst").await;
    assert_eq!(w.app.get_as(&old, "/v1/me").await.status, 200);

    // The provider rotates: k2 signs, k1 is still published for tokens already issued.
    let World {
        app,
        provider,
        key: k1,
    } = w;
    let port = provider.port;
    provider.stop();
    let k2 = SigningKey::generate(app.dir.path(), "k2");
    let console_port = app.people_port.unwrap();
    let provider = Provider::start(
        app.dir.path(),
        port,
        console_port,
        &[k2.clone(), k1.clone()],
    );
    let new = provider.token_for(app.dir.path(), "analyst").await;
    assert_eq!(
        app.get_as(&new, "/v1/me").await.status,
        200,
        "new key fetched on first sight"
    );
    assert_eq!(
        app.get_as(&old, "/v1/me").await.status,
        200,
        "old key still published"
    );

    // k1 is retired: once the gateway refreshes (on the next unknown kid), k1 tokens fail.
    provider.stop();
    let provider = Provider::start(
        app.dir.path(),
        port,
        console_port,
        std::slice::from_ref(&k2),
    );
    let k3 = SigningKey::generate(app.dir.path(), "k3");
    let claims = json!({"iss": provider.issuer, "aud": AUDIENCE, "sub": "x", "exp": now() + 60});
    World::refused(
        &app.get_as(&k3.sign(&claims), "/v1/me").await,
        "token-unknown-key",
    );
    World::refused(&app.get_as(&old, "/v1/me").await, "token-unknown-key");
    assert_eq!(app.get_as(&new, "/v1/me").await.status, 200);
    drop(provider);
}
