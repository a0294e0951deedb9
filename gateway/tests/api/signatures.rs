//! Signed requests (ModI INTEGRITY_REST_01 and ID_AUTH_REST_02), with real keys and certificates.

use crate::harness::{TestApp, assert_problem, referral};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use raccordo_gateway::pki;
use raccordo_gateway::signature::digest_header;
use serde_json::json;

const AUDIENCE: &str = "https://raccordo.regione.toscana.it";

struct Sig<'a> {
    signer: &'a str,
    jti: String,
    aud: &'a str,
    exp_in: i64,
    sign_digest: bool,
}

impl Sig<'_> {
    fn new(signer: &str) -> Sig<'_> {
        Sig {
            signer,
            jti: uuid::Uuid::new_v4().to_string(),
            aud: AUDIENCE,
            exp_in: 120,
            sign_digest: true,
        }
    }
}

fn token(app: &TestApp, body: &[u8], s: &Sig<'_>) -> String {
    let pki = app.pki();
    let cert = pki::load_certificates(&pki.client_cert(s.signer)).unwrap();
    let key = pki::load_private_key(&pki.client_key(s.signer)).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.x5c = Some(vec![
        base64::engine::general_purpose::STANDARD.encode(cert[0].as_ref()),
    ]);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut claims = json!({"aud": s.aud, "iat": now, "exp": now + s.exp_in, "jti": s.jti, "signed_headers": []});
    if s.sign_digest {
        claims["signed_headers"] =
            json!([{"digest": digest_header(body)}, {"content-type": "application/json"}]);
    }
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_ec_der(key.secret_der()),
    )
    .unwrap()
}

async fn send(app: &TestApp, body: &[u8], digest: &str, token: &str) -> crate::harness::Response {
    let r = app
        .client("prato")
        .post(app.url("/v1/referrals"))
        .header("content-type", "application/json")
        .header("Digest", digest)
        .header("Agid-JWT-Signature", token)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    crate::harness::read(r).await
}

#[tokio::test]
async fn a_signed_referral_is_accepted_once_and_every_forgery_is_named() {
    let app = TestApp::spawn().await;
    let body = serde_json::to_vec(&referral("prato", "firenze")).unwrap();
    let digest = digest_header(&body);

    let sig = Sig::new("prato");
    let ok = send(&app, &body, &digest, &token(&app, &body, &sig)).await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    // The same jti again is a replay, even for a fresh body.
    let other = serde_json::to_vec(&referral("prato", "lucca")).unwrap();
    let mut replay = Sig::new("prato");
    replay.jti = sig.jti.clone();
    assert_problem(
        &send(
            &app,
            &other,
            &digest_header(&other),
            &token(&app, &other, &replay),
        )
        .await,
        409,
        "signature-replayed",
    );

    // A body changed after signing.
    let t = token(&app, &body, &Sig::new("prato"));
    assert_problem(
        &send(&app, &other, &digest, &t).await,
        403,
        "digest-mismatch",
    );
    // A digest that the signature does not cover.
    let mut unsigned = Sig::new("prato");
    unsigned.sign_digest = false;
    assert_problem(
        &send(&app, &body, &digest, &token(&app, &body, &unsigned)).await,
        403,
        "digest-not-signed",
    );
    // Signed by another ambito's key, sent on Prato's connection.
    assert_problem(
        &send(
            &app,
            &body,
            &digest,
            &token(&app, &body, &Sig::new("firenze")),
        )
        .await,
        403,
        "signature-certificate-mismatch",
    );
    // Expired; meant for another audience; not a JWT (alg none).
    let mut expired = Sig::new("prato");
    expired.exp_in = -120;
    assert_problem(
        &send(&app, &body, &digest, &token(&app, &body, &expired)).await,
        403,
        "signature-expired",
    );
    let mut elsewhere = Sig::new("prato");
    elsewhere.aud = "https://elsewhere.example";
    assert_problem(
        &send(&app, &body, &digest, &token(&app, &body, &elsewhere)).await,
        403,
        "signature-invalid",
    );
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(json!({"aud": AUDIENCE, "jti": "x"}))
    );
    assert_problem(
        &send(&app, &body, &digest, &none).await,
        403,
        "signature-invalid",
    );
    // A signature whose bytes were altered.
    let mut t = token(&app, &body, &Sig::new("prato"));
    let last = t.pop().unwrap();
    t.push(if last == 'A' { 'B' } else { 'A' });
    assert_problem(
        &send(&app, &body, &digest, &t).await,
        403,
        "signature-invalid",
    );

    // Only the first, valid request created anything.
    let inbox = app.get("firenze", "/v1/inbox").await;
    assert_eq!(inbox.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_party_that_must_sign_cannot_send_unsigned() {
    let app = TestApp::spawn_with(|s| {
        let prato = s.ambiti.iter_mut().find(|a| a.id == "prato").unwrap();
        prato.signed_requests = raccordo_gateway::signature::SignaturePolicy::Required;
    })
    .await;
    assert_problem(
        &app.send_referral("prato", &referral("prato", "firenze"), None)
            .await,
        403,
        "signature-required",
    );
    let body = serde_json::to_vec(&referral("prato", "firenze")).unwrap();
    let r = send(
        &app,
        &body,
        &digest_header(&body),
        &token(&app, &body, &Sig::new("prato")),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // Others are not affected.
    assert_eq!(
        app.send_referral("pisa", &referral("pisa", "firenze"), None)
            .await
            .status,
        201
    );
}
