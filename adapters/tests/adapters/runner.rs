//! The runner against a real gateway: each record submitted exactly once, bad ones quarantined
//! with their reason while the rest go on, files moved only when done, restarts and outages
//! survived, inbound items written in the local format.

use crate::gateway::Gateway;
use crate::reference::{fixture, mapping};
use raccordo_adapters::quarantine::Quarantine;
use raccordo_adapters::runner::{Runner, RunnerConfig};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use tempfile::TempDir;

/// Where a test runner reads from.
enum Source {
    Folder,
    Api(String),
}

fn runner_for(
    ambito: &str,
    gw_url: &str,
    certs: (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf),
    work: &Path,
    source: Source,
    every: u64,
) -> Runner {
    let (ca, cert, key) = certs;
    let export = work.join("export");
    std::fs::create_dir_all(&export).unwrap();
    let (watch, poll) = match source {
        Source::Folder => (Some(export), None),
        Source::Api(url) => (None, Some(url)),
    };
    Runner::new(RunnerConfig {
        mapping: mapping(ambito),
        gateway: gw_url.to_owned(),
        ca,
        cert,
        key,
        watch,
        poll,
        inbound: work.join("inbound"),
        quarantine: work.join("quarantine"),
        state: work.join("state"),
        interval: Duration::from_millis(100),
        max_backoff: Duration::from_millis(200),
        checkpoint_every: every,
    })
    .unwrap()
}

/// Prato's runner on its export folder.
fn runner(
    gw_url: &str,
    certs: (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf),
    work: &Path,
    every: u64,
) -> Runner {
    runner_for("prato", gw_url, certs, work, Source::Folder, every)
}

fn drop_file(work: &Path, from: &Path, name: &str) {
    std::fs::copy(from, work.join("export").join(name)).unwrap();
}

#[tokio::test]
async fn each_record_goes_once_and_bad_ones_wait_in_quarantine_with_their_reason() {
    let gw = Gateway::start().await;
    let work = TempDir::new().unwrap();
    let r = runner(&gw.url(), gw.cert("prato"), work.path(), 50);
    drop_file(work.path(), &fixture("prato", "clean.csv"), "a-clean.csv");
    drop_file(work.path(), &fixture("prato", "dirty.csv"), "b-dirty.csv");

    let c = r.cycle().await.unwrap();
    // dirty.csv repeats clean.csv's first form: same local id, same content, sent once.
    assert_eq!(
        (c.submitted, c.replayed, c.quarantined, c.files_done),
        (3, 1, 5, 2),
        "{c:?}"
    );
    assert_eq!(gw.requested_of("firenze").await.len(), 1);
    assert_eq!(gw.requested_of("pisa").await.len(), 1);
    assert_eq!(gw.requested_of("livorno").await.len(), 1);
    assert!(work.path().join("export/done/a-clean.csv").exists());
    assert!(work.path().join("export/done/b-dirty.csv").exists());
    assert!(!work.path().join("export/a-clean.csv").exists());

    let q = Quarantine::new(&work.path().join("quarantine")).unwrap();
    let entries = q.entries("b-dirty.csv").unwrap();
    let summary: Vec<(String, String, Option<String>)> = entries
        .iter()
        .map(|e| {
            (
                e.location.clone(),
                e.rejections[0].rule.clone(),
                e.rejections[0].field.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "b-dirty.csv:3".into(),
                "lookup".into(),
                Some("SERVIZI".into())
            ),
            ("b-dirty.csv:4".into(), "unreadable".into(), None),
            (
                "b-dirty.csv:5".into(),
                "date".into(),
                Some("DATA_NASCITA".into())
            ),
            (
                "b-dirty.csv:6".into(),
                "reject".into(),
                Some("STATO_SCHEDA".into())
            ),
            (
                "b-dirty.csv:7".into(),
                "required".into(),
                Some("MOTIVO".into())
            ),
        ]
    );
    assert_eq!(entries[0].record_id.as_deref(), Some("PO-2026-00430"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(work.path().join("quarantine/b-dirty.csv.jsonl"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "quarantine holds local records: owner only"
        );
    }

    // The same export dropped again: nothing is submitted twice.
    drop_file(
        work.path(),
        &fixture("prato", "clean.csv"),
        "c-clean-again.csv",
    );
    let c = r.cycle().await.unwrap();
    assert_eq!((c.submitted, c.replayed), (0, 3), "{c:?}");
    assert_eq!(gw.requested_of("firenze").await.len(), 1);
}

async fn requested_total(gw: &Gateway) -> u64 {
    let text = gw
        .client("region")
        .get(format!("{}/metrics", gw.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("raccordo_referrals{status=\"requested\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_crash_mid_file_then_a_restart_neither_loses_nor_duplicates() {
    let gw = Gateway::start().await;
    let work = TempDir::new().unwrap();
    let export = work.path().join("export");
    std::fs::create_dir_all(&export).unwrap();
    raccordo_adapters::bench::synthesise(&export.join("big.csv"), 300).unwrap();

    let first = runner(&gw.url(), gw.cert("prato"), work.path(), 7);
    let task = tokio::spawn(async move { first.cycle().await.map(|_| ()) });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while requested_total(&gw).await < 12 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the runner made no progress"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The crash: the runner stops at whatever await it is in.
    task.abort();
    let _ = task.await;
    let before = requested_total(&gw).await;
    assert!(
        before < 300,
        "the crash came too late to test anything ({before})"
    );
    assert!(
        export.join("big.csv").exists(),
        "a file half done stays in the export folder"
    );

    let second = runner(&gw.url(), gw.cert("prato"), work.path(), 7);
    let c = second.cycle().await.unwrap();
    assert_eq!(
        requested_total(&gw).await,
        300,
        "every record arrived, once"
    );
    assert_eq!(c.submitted + before, 300, "{c:?}");
    assert!(
        c.replayed <= 7,
        "at most one checkpoint's worth is sent again: {c:?}"
    );
    assert!(export.join("done/big.csv").exists());
    let mut ids = Vec::new();
    for party in ["firenze", "pisa", "livorno", "siena"] {
        ids.extend(gw.requested_of(party).await);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_restarted_mid_file_loses_and_doubles_nothing() {
    let gw = Gateway::start().await;
    let port = gw.port;
    let work = TempDir::new().unwrap();
    let export = work.path().join("export");
    std::fs::create_dir_all(&export).unwrap();
    raccordo_adapters::bench::synthesise(&export.join("big.csv"), 300).unwrap();
    let r = runner(&gw.url(), gw.cert("prato"), work.path(), 7);
    let task = tokio::spawn(async move { r.cycle().await.unwrap() });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while requested_total(&gw).await < 30 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the runner made no progress"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The gateway goes away mid-file (an upgrade, a restart) and comes back on the same store.
    let dir = gw.stop().await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!task.is_finished(), "the runner waits for the gateway");
    let gw = Gateway::start_in(dir, port).await;
    let c = tokio::time::timeout(Duration::from_secs(90), task)
        .await
        .expect("the runner finished once the gateway was back")
        .unwrap();
    assert_eq!(requested_total(&gw).await, 300, "{c:?}");
    let mut ids = Vec::new();
    for party in ["firenze", "pisa", "livorno", "siena"] {
        ids.extend(gw.requested_of(party).await);
    }
    let sent = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!((sent, ids.len()), (300, 300), "each record once");
    assert!(export.join("done/big.csv").exists());
}

#[tokio::test]
async fn a_gateway_that_is_down_is_waited_for_and_nothing_is_lost() {
    let dir = TempDir::new().unwrap();
    let pki = raccordo_gateway::pki::DevPki::new(dir.path());
    pki.ensure(
        &["prato", "firenze", "pisa", "livorno", "region"],
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let work = TempDir::new().unwrap();
    let r = runner(
        &format!("https://localhost:{port}"),
        (
            pki.ca_cert(),
            pki.client_cert("prato"),
            pki.client_key("prato"),
        ),
        work.path(),
        50,
    );
    drop_file(work.path(), &fixture("prato", "clean.csv"), "clean.csv");
    let task = tokio::spawn(async move { r.cycle().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !task.is_finished(),
        "nothing to send to yet: the runner keeps retrying"
    );
    assert!(work.path().join("export/clean.csv").exists());

    let gw = Gateway::start_in(dir, port).await;
    let c = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.submitted, 3, "{c:?}");
    assert_eq!(requested_total(&gw).await, 3);
}

#[tokio::test]
async fn inbound_referrals_and_status_events_are_written_in_the_local_format() {
    let gw = Gateway::start().await;
    let work = TempDir::new().unwrap();
    let r = runner(&gw.url(), gw.cert("prato"), work.path(), 50);

    // Firenze asks Prato to take someone in.
    let mut referral: Value = serde_json::from_str(
        &std::fs::read_to_string(
            crate::reference::root()
                .join("schemas/examples/referral/valid/prato-to-firenze-with-consent.json"),
        )
        .unwrap(),
    )
    .unwrap();
    referral.as_object_mut().unwrap().remove("target_structure");
    referral["sender"] = json!("firenze");
    referral["receiver"] = json!("prato");
    referral["legal_basis"]["recipients"] = json!(["prato"]);
    referral["urgency"] = json!("immediate");
    let sent = gw
        .client("firenze")
        .post(format!("{}/v1/referrals", gw.url()))
        .json(&referral)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 201);

    // Prato's own export goes to Firenze, which accepts it.
    drop_file(work.path(), &fixture("prato", "clean.csv"), "clean.csv");
    r.cycle().await.unwrap();
    let to_firenze = gw.requested_of("firenze").await;
    let accepted = gw
        .client("firenze")
        .post(format!(
            "{}/v1/referrals/{}/status",
            gw.url(),
            to_firenze[0]
        ))
        .json(&json!({"status": "accepted"}))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
    let c = r.cycle().await.unwrap();
    assert!(c.inbound_written >= 1, "{c:?}");

    let mut files: Vec<_> = std::fs::read_dir(work.path().join("inbound"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let read = |p: &Path| {
        encoding_rs::WINDOWS_1252
            .decode(&std::fs::read(p).unwrap())
            .0
            .into_owned()
    };
    let inbound_referral = files
        .iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("referral-")
        })
        .unwrap();
    let text = read(inbound_referral);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(';').collect();
    let row: Vec<&str> = lines.next().unwrap().split(';').collect();
    let col = |name: &str| {
        row[header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("{name} in {header:?}"))]
    };
    assert_eq!(col("URGENZA"), "I", "{text}");
    assert_eq!(col("SERVIZI"), "ACC,CM", "{text}");
    assert_eq!(col("AMBITO_DESTINAZIONE"), "PRATO", "{text}");
    // Until Prato accepts, the gateway shows it the triage view: no identity to write.
    assert_eq!(col("COGNOME"), "", "{text}");
    assert!(
        !col("ID_SCHEDA").is_empty(),
        "the gateway's referral id, to answer with"
    );

    let status = files
        .iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("status-")
        })
        .unwrap();
    let text = read(status);
    assert!(
        text.starts_with("ID_SCHEDA;ID_INVIO_REGIONALE;ESITO;AMBITO;DATA_ESITO"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "PO-2026-00412;{};ACCETTATO;FIRENZE;",
            to_firenze[0]
        )),
        "{text}"
    );

    // The cursor moved past them: a new cycle writes nothing again.
    let c = r.cycle().await.unwrap();
    assert_eq!(c.inbound_written, 0);
}

/// A local JSON web API, served the way Livorno's product serves its referrals page.
fn local_api(body: Vec<u8>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://127.0.0.1:{port}/api/v2/segnalazioni?stato=inviata")
}

#[tokio::test]
async fn a_polled_local_api_is_submitted_once_and_unchanged_records_are_not_resent() {
    let gw = Gateway::start().await;
    let work = TempDir::new().unwrap();
    let url = local_api(std::fs::read(fixture("livorno", "clean.json")).unwrap());
    let r = runner_for(
        "livorno",
        &gw.url(),
        gw.cert("livorno"),
        work.path(),
        Source::Api(url),
        50,
    );
    let c = r.cycle().await.unwrap();
    assert_eq!((c.submitted, c.quarantined), (4, 0), "{c:?}");
    let c = r.cycle().await.unwrap();
    assert_eq!(
        (c.submitted, c.replayed),
        (0, 0),
        "an unchanged page sends nothing: {c:?}"
    );
    assert_eq!(requested_total(&gw).await, 4);
}

/// Every reference adapter, run for real: its clean export reaches the gateway whole, its dirty
/// one is quarantined record by record.
#[tokio::test]
async fn every_reference_adapter_runs_against_a_real_gateway() {
    let gw = Gateway::start().await;
    let mut total = 0;
    for ambito in ["prato", "firenze", "livorno", "pisa", "grosseto"] {
        let work = TempDir::new().unwrap();
        let export = work.path().join("export");
        std::fs::create_dir_all(&export).unwrap();
        let expected: Value =
            serde_json::from_slice(&std::fs::read(fixture(ambito, "expected.json")).unwrap())
                .unwrap();
        for entry in std::fs::read_dir(fixture(ambito, "")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("clean.") || name.starts_with("dirty.") {
                std::fs::copy(&path, export.join(&name)).unwrap();
            }
        }
        let r = runner_for(
            ambito,
            &gw.url(),
            gw.cert(ambito),
            work.path(),
            Source::Folder,
            50,
        );
        let c = r.cycle().await.unwrap();
        let clean = expected["clean"].as_u64().unwrap();
        let dirty = expected["dirty"].as_array().unwrap().len() as u64;
        // Prato's dirty export repeats one clean form, which the gateway recognises.
        assert_eq!(c.submitted, clean, "{ambito}: {c:?}");
        let inbound = Quarantine::new(&work.path().join("quarantine"))
            .unwrap()
            .entries("inbox")
            .unwrap();
        assert!(
            inbound.is_empty(),
            "{ambito}: inbound items not writable locally: {inbound:#?}"
        );
        assert_eq!(c.quarantined, dirty, "{ambito}: {c:?}");
        assert_eq!(c.files_done, 2, "{ambito}: {c:?}");
        total += clean;
        assert_eq!(requested_total(&gw).await, total, "{ambito}");
    }
}

/// Prato's episodes for the monitoring: submitted once each by local id (a second run replaces
/// them with themselves), a record with an unknown service quarantined, and the gateway's release
/// counting exactly the episodes that went through.
#[tokio::test]
async fn episodes_reach_the_monitoring_once_each() {
    let gw = Gateway::start().await;
    let work = TempDir::new().unwrap();
    let (ca, cert, key) = gw.cert("prato");
    let export = work.path().join("export");
    std::fs::create_dir_all(&export).unwrap();
    let mapping = raccordo_adapters::mapping::MappingFile::load(
        &crate::reference::root().join("deploy/ambiti/prato/episodes.toml"),
    )
    .unwrap();
    let r = Runner::new(RunnerConfig {
        mapping,
        gateway: gw.url(),
        ca,
        cert,
        key,
        watch: Some(export.clone()),
        poll: None,
        inbound: work.path().join("inbound"),
        quarantine: work.path().join("quarantine"),
        state: work.path().join("state"),
        interval: Duration::from_millis(100),
        max_backoff: Duration::from_millis(200),
        checkpoint_every: 10,
    })
    .unwrap();
    let sample = fixture("prato-episodes", "export.csv");
    std::fs::copy(&sample, export.join("a.csv")).unwrap();
    let c = r.cycle().await.unwrap();
    assert_eq!(
        (c.submitted, c.replayed, c.quarantined, c.files_done),
        (2, 0, 1, 1),
        "{c:?}"
    );
    std::fs::copy(&sample, export.join("b.csv")).unwrap();
    let c = r.cycle().await.unwrap();
    assert_eq!((c.submitted, c.replayed, c.quarantined), (0, 2, 1), "{c:?}");
    assert_eq!(
        c.inbound_written, 0,
        "an episode runner leaves the inbox to the referral runner"
    );

    let release = gw
        .client("region")
        .post(format!("{}/v1/releases", gw.url()))
        .json(&json!({"period": "2026"}))
        .send()
        .await
        .unwrap();
    assert_eq!(release.status(), 201);
    let body: Value = release.json().await.unwrap();
    assert_eq!(body["manifest"]["inputs"]["episodes"], 2, "{body}");
}
