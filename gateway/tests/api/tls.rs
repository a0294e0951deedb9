//! The handshake: no certificate, or one from another CA, never reaches the API.

use crate::harness::{TestApp, assert_problem};
use raccordo_gateway::{client, pki};
use rcgen::{ExtendedKeyUsagePurpose, Issuer, KeyPair};

/// A certificate and key written to files, as clients load them; the directory lives as long
/// as the returned guard.
fn written(
    cert: String,
    key: String,
) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::TempDir::new().unwrap();
    let (crt_path, key_path) = (dir.path().join("c.crt"), dir.path().join("c.key"));
    std::fs::write(&crt_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    (dir, crt_path, key_path)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(" / ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

async fn handshake_refused(
    app: &TestApp,
    identity: Option<(&std::path::Path, &std::path::Path)>,
) -> String {
    let config = client::tls_config(&app.pki().ca_cert(), identity).unwrap();
    let c = reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .build()
        .unwrap();
    let err = c
        .get(app.url("/healthz"))
        .send()
        .await
        .expect_err("the request must not get through");
    error_chain(&err)
}

#[tokio::test]
async fn no_client_certificate_is_refused_at_the_handshake() {
    let app = TestApp::spawn().await;
    let chain = handshake_refused(&app, None).await;
    assert!(
        chain.contains("CertificateRequired") || chain.contains("certificate"),
        "{chain}"
    );
    assert!(
        !app.metrics().await.contains("route=\"/healthz\""),
        "the request reached the API"
    );
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_at_the_handshake() {
    let app = TestApp::spawn().await;
    let now = time::OffsetDateTime::now_utc();
    let (_, issuer) = pki::throwaway_ca("Another CA", now).unwrap();
    let (cert, key) = pki::leaf(
        &issuer,
        "prato",
        vec![],
        ExtendedKeyUsagePurpose::ClientAuth,
        now,
    )
    .unwrap();
    let (_dir, crt, key) = written(cert, key);
    let chain = handshake_refused(&app, Some((&crt, &key))).await;
    assert!(
        chain.contains("UnknownCA") || chain.contains("BadCertificate") || chain.contains("alert"),
        "{chain}"
    );
}

#[tokio::test]
async fn a_valid_but_unregistered_certificate_gets_a_clear_403() {
    let app = TestApp::spawn().await;
    let pki = app.pki();
    let now = time::OffsetDateTime::now_utc();
    let ca_key = KeyPair::from_pem(&std::fs::read_to_string(pki.ca_key()).unwrap()).unwrap();
    let issuer =
        Issuer::from_ca_cert_pem(&std::fs::read_to_string(pki.ca_cert()).unwrap(), ca_key).unwrap();
    let (cert, key) = pki::leaf(
        &issuer,
        "bologna",
        vec![],
        ExtendedKeyUsagePurpose::ClientAuth,
        now,
    )
    .unwrap();
    let (_dir, crt, key) = written(cert, key);
    let c = client::mtls_client(&pki.ca_cert(), &crt, &key).unwrap();
    let r = crate::harness::read(c.get(app.url("/v1/inbox")).send().await.unwrap()).await;
    assert_problem(&r, 403, "unknown-client-certificate");
}

#[tokio::test]
async fn a_revoked_certificate_is_refused_without_a_restart() {
    let app = TestApp::spawn_with(|s| s.tls.revocation_reload_seconds = 1).await;
    assert_eq!(app.get("prato", "/healthz").await.status, 200);
    let prato = pki::load_certificates(&app.pki().client_cert("prato")).unwrap();
    let list = raccordo_gateway::region_ca::RevocationList {
        fingerprints: vec![pki::fingerprint(&prato[0])],
    };
    std::fs::write(
        app.dir.path().join("pki/revoked.json"),
        serde_json::to_vec(&list).unwrap(),
    )
    .unwrap();
    let mut refused = false;
    for _ in 0..30 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let r = app.get("prato", "/v1/inbox").await;
        if r.status == 403 {
            assert_problem(&r, 403, "certificate-revoked");
            refused = true;
            break;
        }
    }
    assert!(refused, "the revocation did not take effect");
    assert_eq!(
        app.get("firenze", "/v1/inbox").await.status,
        200,
        "only the revoked certificate is refused"
    );
}

#[tokio::test]
async fn during_a_rotation_an_ambito_may_present_either_of_two_certificates() {
    // A second certificate for Prato, from the same CA, listed next to the first.
    let dir = tempfile::TempDir::new().unwrap();
    let first = TestApp::spawn_in(dir, |_| {}).await;
    let pki = first.pki();
    let ca_key = KeyPair::from_pem(&std::fs::read_to_string(pki.ca_key()).unwrap()).unwrap();
    let issuer =
        Issuer::from_ca_cert_pem(&std::fs::read_to_string(pki.ca_cert()).unwrap(), ca_key).unwrap();
    let (cert, key) = pki::leaf(
        &issuer,
        "prato",
        vec![],
        ExtendedKeyUsagePurpose::ClientAuth,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let new_cert = first.dir.path().join("pki/clients/prato-2.crt");
    let new_key = first.dir.path().join("pki/clients/prato-2.key");
    std::fs::write(&new_cert, cert).unwrap();
    std::fs::write(&new_key, key).unwrap();
    let dir = first.stop().await;
    let app = TestApp::spawn_in(dir, |s| {
        let prato = s.ambiti.iter_mut().find(|a| a.id == "prato").unwrap();
        prato.certificates.push("pki/clients/prato-2.crt".into());
    })
    .await;
    let rotated = client::mtls_client(&app.pki().ca_cert(), &new_cert, &new_key).unwrap();
    let body = crate::harness::referral("prato", "firenze");
    let r = crate::harness::read(
        rotated
            .post(app.url("/v1/referrals"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        r.status, 201,
        "the new certificate speaks for Prato: {}",
        r.text
    );
    assert_eq!(
        app.get("prato", "/v1/inbox").await.status,
        200,
        "and the old one still does"
    );
}
