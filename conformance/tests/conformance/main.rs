//! The kit proves itself: our gateway and the reference adapters come out conformant, and
//! adapters broken on purpose (one fault each) are caught by the test meant for each fault.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is the point

use raccordo_conformance::model::{Outcome, Verdict};
use raccordo_conformance::profiles::{adapter, gateway};
use std::path::{Path, PathBuf};

mod faulty;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sample(ambito: &str, stem: &str) -> PathBuf {
    let dir = root().join(format!("adapters/fixtures/{ambito}"));
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_stem().is_some_and(|s| s == stem))
        .unwrap()
}

fn run_adapter(mapping: &Path, ambito: &str) -> Vec<raccordo_conformance::model::TestResult> {
    let expected = root().join(format!("adapters/fixtures/{ambito}/expected.json"));
    let (clean, dirty) = (sample(ambito, "clean"), sample(ambito, "dirty"));
    let samples = adapter::Samples {
        clean: &clean,
        dirty: Some(&dirty),
        expected: Some(&expected),
    };
    adapter::run(mapping, &samples, None, 2026)
}

#[test]
fn the_reference_adapters_are_conformant() {
    for ambito in ["prato", "firenze", "livorno", "pisa", "grosseto"] {
        let mapping = root().join(format!("deploy/ambiti/{ambito}/mapping.toml"));
        let results = run_adapter(&mapping, ambito);
        assert_eq!(results.len(), adapter::CASES.len());
        let verdict = Verdict::of(&results);
        assert!(
            matches!(
                verdict,
                Verdict::Conformant | Verdict::ConformantWithWarnings
            ),
            "{ambito}: {:#?}",
            results
                .iter()
                .filter(|r| r.outcome != Outcome::Pass)
                .collect::<Vec<_>>()
        );
    }
}

/// Prato's mapping with one fault: `from` replaced by `to`.
fn broken(scratch: &Path, name: &str, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join("deploy/ambiti/prato/mapping.toml")).unwrap();
    assert!(text.contains(from), "{name}: the fault must apply");
    let path = scratch.join(format!("{name}.toml"));
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    path
}

#[test]
fn broken_adapters_are_each_caught_by_the_test_meant_for_the_fault() {
    let scratch = tempfile::TempDir::new().unwrap();
    let s = scratch.path();
    let faults = [
        // A lost field: nobody reads the alias column any more.
        (
            broken(
                s,
                "lost-field",
                "canonical = \"/person/identity/aliases\"\nlocal = \"ALIAS\"",
                "canonical = \"/person/identity/aliases\"\nlocal = \"ALIAS_NON_ESISTE\"",
            ),
            "ADP-LOST-001",
        ),
        // A wrong code: "urgente" is not in the code list.
        (
            broken(s, "wrong-code", "U = \"urgent\"", "U = \"urgente\""),
            "ADP-SCHEMA-001",
        ),
        // A leaked identifier: the surname written as the consent's witness.
        (
            broken(
                s,
                "leak",
                "canonical = \"/legal_basis/evidence/witnessed_by\"\nlocal = \"OPERATORE\"",
                "canonical = \"/legal_basis/evidence/witnessed_by\"\nlocal = \"COGNOME\"",
            ),
            "ADP-PRIV-001",
        ),
        // A field that does not come back: names left in title case on the way out.
        (
            broken(
                s,
                "round-trip",
                "local = \"COGNOME\"\ncase = \"title\"\nlocal_case = \"upper\"",
                "local = \"COGNOME\"\ncase = \"title\"",
            ),
            "ADP-RT-001",
        ),
        // A record the local system cancelled is sent anyway.
        (
            broken(s, "no-reject", "is = [\"ANNULLATA\"]", "is = [\"MAI\"]"),
            "ADP-QUAR-001",
        ),
        // An untranslatable code in the export.
        (
            broken(
                s,
                "missing-code",
                "\nACC = \"night_shelter\"",
                "\nACCX = \"night_shelter\"",
            ),
            "ADP-CODES-001",
        ),
    ];
    for (mapping, meant) in faults {
        let results = run_adapter(&mapping, "prato");
        let r = results.iter().find(|r| r.id == meant).unwrap();
        assert_eq!(
            r.outcome,
            Outcome::Fail,
            "{}: {meant} should catch it: {results:#?}",
            mapping.display()
        );
        assert_eq!(Verdict::of(&results), Verdict::NotConformant);
        assert_eq!(Verdict::of(&results).exit_code(), 1);
    }
}

#[tokio::test]
async fn our_gateway_is_conformant_and_its_bundle_verifies_offline() {
    raccordo_gateway::tls::install_default_provider();
    let data = tempfile::TempDir::new().unwrap();
    let (url, _, _) = raccordo_conformance::profiles::sandbox_gateway(data.path())
        .await
        .unwrap();
    let pki = raccordo_gateway::pki::DevPki::new(data.path());
    let party = |id: &str| gateway::Party {
        id: id.into(),
        cert: pki.client_cert(id),
        key: pki.client_key(id),
    };
    let target = gateway::Target {
        url,
        ca: pki.ca_cert(),
        sender: party("prato"),
        receiver: party("firenze"),
    };
    let scratch = tempfile::TempDir::new().unwrap();
    let results = gateway::run(&target, 7, None, scratch.path()).await;
    assert_eq!(results.len(), gateway::CASES.len());
    let failing: Vec<_> = results
        .iter()
        .filter(|r| r.outcome != Outcome::Pass)
        .collect();
    assert!(failing.is_empty(), "{failing:#?}");

    // The same seed plants the same values: one test replays on its own.
    let one = gateway::run(&target, 7, Some("REF-SEND-003"), scratch.path()).await;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].outcome, Outcome::Pass);

    // The bundle: reports, redacted traffic, signed by the sender's certificate.
    let report = raccordo_conformance::report("gateway", gateway::CASES, &target.url, 7, results);
    let bundle = scratch.path().join("bundle");
    let fingerprint = gateway::server_fingerprint(&target).await.unwrap();
    raccordo_conformance::bundle::write(
        &bundle,
        &report,
        &fingerprint,
        &target.sender.cert,
        &target.sender.key,
    )
    .unwrap();
    let verified = raccordo_conformance::bundle::verify(&bundle).unwrap();
    assert_eq!(verified.manifest.verdict, Verdict::Conformant);
    assert!(verified.signer.contains("prato"), "{}", verified.signer);
    let traffic = std::fs::read_to_string(bundle.join("traffic.jsonl")).unwrap();
    assert!(traffic.contains("[redacted]"), "identifiers are redacted");
    let junit = std::fs::read_to_string(bundle.join("junit.xml")).unwrap();
    assert!(
        junit.contains("tests=\"12\" failures=\"0\" errors=\"0\""),
        "{junit}"
    );
    let html = std::fs::read_to_string(bundle.join("report.html")).unwrap();
    assert!(html.contains("REF-SEND-002") && !html.contains("<script"));

    // Any change after signing is found.
    let mut report_json = std::fs::read_to_string(bundle.join("report.json")).unwrap();
    report_json =
        report_json
            .replacen("\"fail\"", "\"pass\"", 1)
            .replacen("not_conformant", "conformant", 1)
            + " ";
    std::fs::write(bundle.join("report.json"), report_json).unwrap();
    assert!(raccordo_conformance::bundle::verify(&bundle).is_err());
}

#[tokio::test]
async fn gateways_broken_on_purpose_are_each_caught_by_the_test_meant_for_the_fault() {
    raccordo_gateway::tls::install_default_provider();
    let data = tempfile::TempDir::new().unwrap();
    let (upstream, _, _) = raccordo_conformance::profiles::sandbox_gateway(data.path())
        .await
        .unwrap();
    let pki = raccordo_gateway::pki::DevPki::new(data.path());
    let party = |id: &str| gateway::Party {
        id: id.into(),
        cert: pki.client_cert(id),
        key: pki.client_key(id),
    };
    let scratch = tempfile::TempDir::new().unwrap();
    for (seed, (fault, meant)) in [
        (faulty::Fault::ReusedKey, "REF-SEND-002"),
        (faulty::Fault::ForbiddenMove, "REF-LIFE-001"),
        (faulty::Fault::LeakedIdentifier, "PRIV-001"),
    ]
    .into_iter()
    .enumerate()
    {
        let port = faulty::start(data.path(), &upstream, fault);
        let target = gateway::Target {
            url: format!("https://localhost:{port}"),
            ca: pki.ca_cert(),
            sender: party("prato"),
            receiver: party("firenze"),
        };
        let results = gateway::run(&target, seed as u64, None, scratch.path()).await;
        let r = results.iter().find(|r| r.id == meant).unwrap();
        assert_eq!(
            r.outcome,
            Outcome::Fail,
            "{fault:?} should fail {meant}: {results:#?}"
        );
        assert_eq!(Verdict::of(&results), Verdict::NotConformant, "{fault:?}");
    }
}

/// A vendor's system, scripted: does what each step asks, retrying (or not) when told to wait.
async fn scripted_system(
    sandbox_url: String,
    client: reqwest::Client,
    (cert, key): (PathBuf, PathBuf),
    ambito: String,
    retries: bool,
    mut steps: tokio::sync::mpsc::UnboundedReceiver<raccordo_conformance::profiles::client::Step>,
) {
    use raccordo_conformance::profiles::client::Step;
    let mut n = 0;
    while let Some(step) = steps.recv().await {
        match step {
            Step::Send { to } => {
                n += 1;
                let key = format!("vendor-{ambito}-{n}");
                let body = serde_json::json!({
                    "sender": ambito, "receiver": to, "urgency": "ordinary",
                    "requested_services": ["case_management"],
                    "reason": "Presa in carico condivisa (sistema di prova).",
                    "legal_basis": {"basis": "public_task", "special_category_condition": "none"},
                    "person": {"profile": {"ethos": "3", "age_band": "45-54", "sex": "male", "citizenship_group": "italian"}}
                });
                loop {
                    let r = client
                        .post(format!("{sandbox_url}/v1/referrals"))
                        .header("Idempotency-Key", &key)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    let status = r.status().as_u16();
                    if !(status == 429 || status == 503) || !retries {
                        break;
                    }
                    let wait: u64 = r.headers()["retry-after"]
                        .to_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
                }
            }
            Step::ReadInbox => {
                let page: serde_json::Value = client
                    .get(format!("{sandbox_url}/v1/inbox"))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let cursor = page["next_cursor"].as_str().unwrap().to_owned();
                client
                    .get(format!("{sandbox_url}/v1/inbox?after={cursor}"))
                    .send()
                    .await
                    .unwrap();
            }
            Step::SendSigned { to } => {
                n += 1;
                let body = serde_json::to_vec(&serde_json::json!({
                    "sender": ambito, "receiver": to, "urgency": "ordinary",
                    "requested_services": ["case_management"],
                    "reason": "Presa in carico condivisa, firmata (sistema di prova).",
                    "legal_basis": {"basis": "public_task", "special_category_condition": "none"},
                    "person": {"profile": {"ethos": "3", "age_band": "45-54", "sex": "male", "citizenship_group": "italian"}}
                }))
                .unwrap();
                let digest = raccordo_gateway::signature::digest_header(&body);
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
                let certificate = raccordo_gateway::pki::load_certificates(&cert).unwrap();
                header.x5c = Some(vec![base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    certificate[0].as_ref(),
                )]);
                let claims = serde_json::json!({
                    "aud": "https://raccordo.regione.toscana.it", "iat": now, "exp": now + 120,
                    "jti": format!("vendor-sig-{n}"),
                    "signed_headers": [{"digest": digest}, {"content-type": "application/json"}]
                });
                let der = raccordo_gateway::pki::load_private_key(&key).unwrap();
                let token = jsonwebtoken::encode(
                    &header,
                    &claims,
                    &jsonwebtoken::EncodingKey::from_ec_der(der.secret_der()),
                )
                .unwrap();
                client
                    .post(format!("{sandbox_url}/v1/referrals"))
                    .header("Idempotency-Key", format!("vendor-{ambito}-{n}"))
                    .header("content-type", "application/json")
                    .header("Digest", digest)
                    .header("Agid-JWT-Signature", token)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
            }
            Step::Accept { referral } => {
                client
                    .post(format!("{sandbox_url}/v1/referrals/{referral}/status"))
                    .json(&serde_json::json!({"status": "accepted"}))
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

#[tokio::test]
async fn an_ambito_client_that_behaves_is_conformant_and_one_that_does_not_retry_is_caught() {
    use raccordo_conformance::profiles::client;
    raccordo_gateway::tls::install_default_provider();
    for retries in [true, false] {
        let data = tempfile::TempDir::new().unwrap();
        let sandbox = client::Sandbox::start(data.path(), "prato").await.unwrap();
        let http = raccordo_gateway::client::mtls_client(&sandbox.ca, &sandbox.cert, &sandbox.key)
            .unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let identity = (sandbox.cert.clone(), sandbox.key.clone());
        let system = tokio::spawn(scripted_system(
            sandbox.url.clone(),
            http,
            identity,
            "prato".into(),
            retries,
            rx,
        ));
        let instruct = move |step: client::Step| {
            let _ = tx.send(step);
        };
        let results =
            client::run(&sandbox, std::time::Duration::from_secs(5), None, &instruct).await;
        drop(instruct);
        let _ = system.await;
        sandbox.stop().await;
        assert_eq!(results.len(), client::CASES.len());
        if retries {
            let failing: Vec<_> = results
                .iter()
                .filter(|r| r.outcome != Outcome::Pass)
                .collect();
            assert!(failing.is_empty(), "{failing:#?}");
        } else {
            let r = results.iter().find(|r| r.id == "CLI-RETRY-001").unwrap();
            assert_eq!(r.outcome, Outcome::Fail, "{results:#?}");
            assert_eq!(Verdict::of(&results), Verdict::NotConformant);
        }
    }
}
