use crate::harness::{TestApp, assert_problem};
use std::time::{Duration, Instant};

#[tokio::test]
async fn inbox_is_ordered_resumable_and_private() {
    let app = TestApp::spawn().await;
    let a = app.create("prato", "firenze").await;
    let b = app.create("pisa", "firenze").await;
    let c = app.create("prato", "lucca").await;

    let page = app.get("firenze", "/v1/inbox").await;
    let items = page.body["items"].as_array().unwrap();
    let ids: Vec<&str> = items
        .iter()
        .map(|i| i["referral"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [a.as_str(), b.as_str()]);
    assert!(items.iter().all(|i| i["type"] == "referral.requested"));
    for item in items {
        for planted in crate::harness::PLANTED {
            assert!(!item.to_string().contains(planted));
        }
    }
    // Lucca sees only its own; Prato (a sender) has nothing yet.
    let lucca = app.get("lucca", "/v1/inbox").await;
    assert_eq!(lucca.body["items"][0]["referral"], c.as_str());
    assert_eq!(lucca.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.get("prato", "/v1/inbox").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // Resuming from the cursor gives only what came after.
    let cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
    app.set_status("prato", &a, "cancelled", Some("la persona è rientrata"))
        .await;
    let next = app
        .get("firenze", &format!("/v1/inbox?after={cursor}"))
        .await;
    let items = next.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", next.text);
    assert_eq!(items[0]["type"], "referral.status-changed");
    assert_eq!(items[0]["status"], "cancelled");
    assert_eq!(items[0]["previous_status"], "requested");
    assert_eq!(items[0]["reason"], "la persona è rientrata");
    let last = next.body["next_cursor"].as_str().unwrap();
    assert_eq!(
        app.get("firenze", &format!("/v1/inbox?after={last}"))
            .await
            .body["items"],
        serde_json::json!([])
    );

    // The sender hears the receiver's decisions.
    app.set_status("firenze", &b, "accepted", None).await;
    let pisa = app.get("pisa", "/v1/inbox").await;
    assert_eq!(pisa.body["items"][0]["status"], "accepted");
    assert_eq!(pisa.body["items"][0]["by"], "firenze");

    assert_problem(
        &app.get("firenze", "/v1/inbox?after=xyz").await,
        400,
        "bad-parameter",
    );
    assert_problem(
        &app.get("firenze", "/v1/inbox?colour=red").await,
        400,
        "bad-parameter",
    );
}

#[tokio::test]
async fn long_poll_returns_as_soon_as_something_arrives() {
    let app = TestApp::spawn().await;
    let started = Instant::now();
    let waiting = app.get("firenze", "/v1/inbox?wait=20");
    let sending = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.create("prato", "firenze").await
    };
    let (page, id) = tokio::join!(waiting, sending);
    assert_eq!(
        page.body["items"][0]["referral"],
        id.as_str(),
        "{}",
        page.text
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the long-poll waited for its timeout"
    );

    // With nothing to deliver it waits, then answers with an empty page.
    let cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
    let started = Instant::now();
    let empty = app
        .get("firenze", &format!("/v1/inbox?after={cursor}&wait=1"))
        .await;
    assert_eq!(empty.body["items"], serde_json::json!([]));
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn overdue_referrals_are_flagged_and_counted() {
    // Immediate referrals get no time at all here, so they are overdue at once.
    let app = TestApp::spawn_with(|s| s.service_levels.immediate_minutes = 0).await;
    let mut body = crate::harness::referral("prato", "firenze");
    body["urgency"] = "immediate".into();
    let r = app.send_referral("prato", &body, None).await;
    let overdue_id = r.body["id"].as_str().unwrap().to_owned();
    let on_time = app.create("pisa", "firenze").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let inbox = app.get("firenze", "/v1/inbox").await;
    let flag = |id: &str| {
        inbox.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["referral"] == id)
            .unwrap()["overdue"]
            .clone()
    };
    assert_eq!(flag(&overdue_id), true);
    assert_eq!(flag(&on_time), false);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("raccordo_referrals_overdue{urgency=\"immediate\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("raccordo_referrals_overdue{urgency=\"urgent\"} 0"),
        "{metrics}"
    );

    // A first response clears it.
    app.set_status("firenze", &overdue_id, "accepted", None)
        .await;
    assert!(
        app.metrics()
            .await
            .contains("raccordo_referrals_overdue{urgency=\"immediate\"} 0")
    );
}
