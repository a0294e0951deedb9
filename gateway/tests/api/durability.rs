//! What is acknowledged survives a restart; the audit chain verifies, and tampering is found;
//! nothing in the store identifies a person in clear.

use crate::harness::{PLANTED, TestApp, referral};
use raccordo_gateway::store::audit::AuditEntry;

#[tokio::test]
async fn a_restart_keeps_every_acknowledged_referral() {
    let app = TestApp::spawn().await;
    let sends = (0..24).map(|i| {
        let app = &app;
        async move {
            let sender = if i % 2 == 0 { "prato" } else { "pisa" };
            let r = app
                .send_referral(sender, &referral(sender, "firenze"), Some(&format!("k{i}")))
                .await;
            assert_eq!(r.status, 201, "{}", r.text);
            (sender, r.body)
        }
    });
    let acknowledged = futures_util::future::join_all(sends).await;
    let id0 = acknowledged[0].1["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.set_status("firenze", &id0, "accepted", None)
            .await
            .status,
        200
    );

    let dir = app.stop().await;
    let app = TestApp::spawn_in(dir, |_| {}).await;
    for (sender, body) in &acknowledged {
        let id = body["id"].as_str().unwrap();
        let r = app.referral(sender, id).await;
        assert_eq!(r.status, 200, "{id} lost: {}", r.text);
        assert_eq!(r.body["person"], body["person"]);
        assert_eq!(r.body["created_at"], body["created_at"]);
    }
    assert_eq!(app.referral("prato", &id0).await.body["status"], "accepted");
    // The inbox survived too, in order, and idempotency keys still hold.
    let inbox = app.get("firenze", "/v1/inbox").await;
    assert_eq!(inbox.body["items"].as_array().unwrap().len(), 24);
    let again = app
        .send_referral("prato", &referral("prato", "firenze"), Some("k0"))
        .await;
    assert_eq!(again.body["id"], acknowledged[0].1["id"]);
    // Counts by status are rebuilt from the store.
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("raccordo_referrals{status=\"requested\"} 23"),
        "{metrics}"
    );
    assert!(
        metrics.contains("raccordo_referrals{status=\"accepted\"} 1"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_audit_chain_verifies_and_a_tampered_entry_is_found() {
    let app = TestApp::spawn().await;
    let id = app.create("prato", "firenze").await;
    app.referral("firenze", &id).await;
    app.set_status("firenze", &id, "accepted", None).await;
    app.referral("firenze", &id).await;
    let data = app.data_dir();
    let dir = app.stop().await;

    let report = crate::harness::verify_audit(&data).await;
    assert!(report.valid, "{report:?}");
    assert_eq!(report.entries, 5);

    // Every access is in the log, by whom and how.
    let raw = crate::harness::RawStore::open(&data).await;
    let entries: Vec<(Vec<u8>, AuditEntry)> = raw
        .prefix(b"audit/")
        .await
        .into_iter()
        .map(|(k, v)| (k, serde_json::from_slice(&v).unwrap()))
        .collect();
    let actions: Vec<(String, String)> = entries
        .iter()
        .map(|(_, e)| (e.record.actor.clone(), e.record.action.clone()))
        .collect();
    assert_eq!(
        actions,
        [
            ("prato", "consent.register"),
            ("prato", "referral.create"),
            ("firenze", "referral.read.triage"),
            ("firenze", "referral.status"),
            ("firenze", "referral.read.full"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );

    // Someone rewrites who read the record.
    let (key, mut entry) = entries[2].clone();
    entry.record.actor = "pisa".into();
    raw.put(&key, serde_json::to_vec(&entry).unwrap()).await;
    drop(raw);
    let report = crate::harness::verify_audit(&data).await;
    assert!(!report.valid);
    assert_eq!(report.first_broken.unwrap().seq, entries[2].1.seq);
    drop(dir);
}

#[tokio::test]
async fn removing_the_newest_audit_entry_is_found() {
    let app = TestApp::spawn().await;
    let id = app.create("prato", "firenze").await;
    app.referral("firenze", &id).await;
    let data = app.data_dir();
    let _dir = app.stop().await;
    {
        let raw = crate::harness::RawStore::open(&data).await;
        let (last, _) = raw.prefix(b"audit/").await.pop().unwrap();
        raw.remove(&last).await;
    }
    let report = crate::harness::verify_audit(&data).await;
    assert!(!report.valid, "{report:?}");
}

#[tokio::test]
async fn nothing_in_the_store_identifies_the_person_in_clear() {
    let app = TestApp::spawn().await;
    let id = app.create("prato", "firenze").await;
    app.set_status("firenze", &id, "accepted", None).await;
    app.referral("firenze", &id).await;
    let data = app.data_dir();
    let _dir = app.stop().await;
    let reason = "La persona si è trasferita a Firenze";
    let bytes = crate::harness::RawStore::open(&data)
        .await
        .all_bytes()
        .await;
    assert!(!bytes.is_empty());
    for planted in PLANTED.iter().chain([&reason, &"PO-2026-00412"]) {
        assert!(
            !bytes
                .windows(planted.len())
                .any(|w| w == planted.as_bytes()),
            "the store holds {planted} in clear"
        );
    }
}

/// A backup of a stopped gateway, restored with its keys into a new data directory, serves the
/// same referrals and the same release, byte for byte, and its audit chain verifies.
#[tokio::test]
async fn a_backup_restored_with_its_keys_serves_the_same_data() {
    let app = TestApp::spawn().await;
    let id = app.create("prato", "firenze").await;
    let before = app.referral("prato", &id).await;
    let episode = serde_json::json!({"id": "E-1", "ambito": "prato", "service_type": "night_shelter", "start": "2026-02-01"});
    assert_eq!(
        app.post("prato", "/v1/episodes", &episode).await.status,
        201
    );
    let release = app
        .post(
            "region",
            "/v1/releases",
            &serde_json::json!({"period": "2026"}),
        )
        .await;
    assert_eq!(release.status, 201, "{}", release.text);
    let rid = release.body["id"].as_str().unwrap().to_owned();
    let data = app
        .get("region", &format!("/v1/releases/{rid}/data"))
        .await
        .text;
    let old = app.stop().await;

    if crate::harness::postgres().is_some() {
        // PostgreSQL is backed up with its own tools (docs/operations.md); this is sled's format.
        return;
    }
    let file = old.path().join("backup.rbk");
    let store = raccordo_gateway::store::Store::open(&old.path().join("store")).unwrap();
    let report = store.backup(&file).unwrap();
    drop(store);
    assert!(report.entries > 10);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let fresh = tempfile::TempDir::new().unwrap();
    crate::harness::copy_dir(&old.path().join("keys"), &fresh.path().join("keys"));
    crate::harness::copy_dir(&old.path().join("pki"), &fresh.path().join("pki"));
    let (restored, audit) =
        raccordo_gateway::store::backup::restore(&file, &fresh.path().join("store")).unwrap();
    assert_eq!(restored.entries, report.entries);
    assert!(audit.valid && audit.entries > 0, "{audit:?}");

    let app = TestApp::spawn_in(fresh, |_| {}).await;
    let after = app.referral("prato", &id).await;
    assert_eq!(after.status, 200);
    assert_eq!(after.body, before.body);
    assert_eq!(
        app.get("region", &format!("/v1/releases/{rid}/data"))
            .await
            .text,
        data
    );
    // The restored cube counts the episode: a new release over the same data keeps its cells.
    let again = app
        .post(
            "region",
            "/v1/releases",
            &serde_json::json!({"period": "2026"}),
        )
        .await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.body["manifest"]["inputs"]["episodes"], 1);
}
