//! Two gateway processes of one deployment on one PostgreSQL database, serving the same ambiti at
//! once, as behind a load balancer. Runs in the PostgreSQL pass of the suite (`.ci/test`); sled
//! is one gateway's store by design and has no such mode.

use crate::harness::{TestApp, referral, twin_dir};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_on_one_database_behave_as_one() {
    if crate::harness::postgres().is_none() {
        return; // the sled pass: nothing to share
    }
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_in(twin_dir(a.dir.path()), |_| {}).await;

    // Firenze waits on gateway B while Prato sends through gateway A: B's long-poll wakes on A's
    // commit (notification), not on its own writes.
    let started = Instant::now();
    let waiting = b.get("firenze", "/v1/inbox?wait=20");
    let sending = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        a.create("prato", "firenze").await
    };
    let (woken, first) = tokio::join!(waiting, sending);
    assert_eq!(woken.body["items"][0]["referral"], first.as_str());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "B woke after {:?}",
        started.elapsed()
    );

    // Both gateways take referrals at once; every request is also sent a second time, to the
    // other gateway, with the same idempotency key (a client retrying through the balancer).
    let mut sends = Vec::new();
    for i in 0..40 {
        let key = format!("scale-out-{i}");
        let (first, second) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let body = referral("prato", "firenze");
        sends.push(async move {
            let (x, y) = tokio::join!(
                first.send_referral("prato", &body, Some(&key)),
                second.send_referral("prato", &body, Some(&key)),
            );
            (key, x, y)
        });
    }
    let results = futures_util::future::join_all(sends).await;
    let mut ids = HashMap::new();
    for (key, x, y) in &results {
        assert!(
            [200, 201].contains(&x.status) && [200, 201].contains(&y.status),
            "{key}: {} {} / {} {}",
            x.status,
            x.text,
            y.status,
            y.text
        );
        assert_eq!(x.body["id"], y.body["id"], "{key} made two referrals");
        assert!(
            x.status == 201 || y.status == 201,
            "{key}: one of the two created it"
        );
        ids.insert(key.clone(), x.body["id"].as_str().unwrap().to_owned());
    }
    let unique: HashSet<&String> = ids.values().collect();
    assert_eq!(unique.len(), 40, "no two keys share an id");

    // Firenze's inbox, read through either gateway, holds each referral exactly once, in one
    // order, with strictly increasing cursors.
    for gateway in [&a, &b] {
        let seen =
            crate::harness::inbox_referrals(gateway.client("firenze"), &gateway.url("")).await;
        assert_eq!(seen.len(), 41, "{seen:?}");
        let distinct: HashSet<&String> = seen.iter().collect();
        assert_eq!(distinct.len(), 41, "an event was doubled");
        for id in ids.values() {
            assert!(seen.contains(id), "{id} is missing from the inbox");
        }
    }

    // Each gateway reads what the other wrote, and the lifecycle moves through both.
    let id = &ids["scale-out-0"];
    let accepted = b.set_status("firenze", id, "accepted", None).await;
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    let seen_by_a = a.referral("prato", id).await;
    assert_eq!(seen_by_a.body["status"], "accepted");

    // One audit chain, valid, with every write of both gateways in it.
    let dir_b = b.stop().await;
    let dir_a = a.stop().await;
    let report = crate::harness::verify_audit(dir_a.path()).await;
    assert!(report.valid, "{report:?}");
    // Per referral at least its consent and creation; plus the reads and the status change.
    assert!(report.entries > 2 * 41, "{report:?}");
    drop(dir_b);
}
