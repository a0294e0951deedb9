//! The handshake: no certificate, or one from another CA, never reaches the API.

use crate::harness::{TestApp, assert_problem};
use raccordo_gateway::{client, pki};
use rcgen::{ExtendedKeyUsagePurpose, Issuer, KeyPair};

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
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(dir.path().join("c.crt"), cert).unwrap();
    std::fs::write(dir.path().join("c.key"), key).unwrap();
    let chain = handshake_refused(
        &app,
        Some((&dir.path().join("c.crt"), &dir.path().join("c.key"))),
    )
    .await;
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
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(dir.path().join("c.crt"), cert).unwrap();
    std::fs::write(dir.path().join("c.key"), key).unwrap();
    let c = client::mtls_client(
        &pki.ca_cert(),
        &dir.path().join("c.crt"),
        &dir.path().join("c.key"),
    )
    .unwrap();
    let r = crate::harness::read(c.get(app.url("/v1/inbox")).send().await.unwrap()).await;
    assert_problem(&r, 403, "unknown-client-certificate");
}
