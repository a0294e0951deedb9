use crate::harness::{PLANTED, TestApp, assert_problem, referral};
use serde_json::json;

#[tokio::test]
async fn sender_gets_201_with_location_and_the_full_referral() {
    let app = TestApp::spawn().await;
    let body = referral("prato", "firenze");
    let r = app.send_referral("prato", &body, Some("po-412")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap();
    assert_eq!(
        r.headers["location"],
        format!("/v1/referrals/{id}").as_str()
    );
    assert_eq!(r.body["status"], "requested");
    assert_eq!(r.body["person"], body["person"]);
    assert_eq!(r.body["reason"], body["reason"]);
    // The served document is itself valid schema v1.
    raccordo_schemas::validate(raccordo_schemas::Entity::Referral, &r.body).unwrap();
    // Urgent: 24 hours to a first response.
    let created = time::OffsetDateTime::parse(
        r.body["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let due = time::OffsetDateTime::parse(
        r.body["due_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(due - created, time::Duration::hours(24));
}

#[tokio::test]
async fn idempotency_key_same_body_same_referral_other_body_refused() {
    let app = TestApp::spawn().await;
    let body = referral("prato", "firenze");
    let first = app.send_referral("prato", &body, Some("po-412")).await;
    assert_eq!(first.status, 201);
    // Same content, keys in another order: still the same request.
    let reordered: serde_json::Value =
        serde_json::from_str(&serde_json::to_string(&body).unwrap()).unwrap();
    let again = app.send_referral("prato", &reordered, Some("po-412")).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.headers["idempotent-replayed"], "true");

    let mut other = body.clone();
    other["urgency"] = "immediate".into();
    let refused = app.send_referral("prato", &other, Some("po-412")).await;
    assert_problem(&refused, 409, "idempotency-key-reused");

    // The same key from another sender is another key.
    let pisa = app
        .send_referral("pisa", &referral("pisa", "firenze"), Some("po-412"))
        .await;
    assert_eq!(pisa.status, 201);
    assert_ne!(pisa.body["id"], first.body["id"]);

    // Firenze got exactly two referrals, not three.
    let inbox = app.get("firenze", "/v1/inbox").await;
    assert_eq!(inbox.body["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn bad_json_and_schema_violations_are_problems_and_store_nothing() {
    let app = TestApp::spawn().await;
    let r = app
        .client("prato")
        .post(app.url("/v1/referrals"))
        .header("content-type", "application/json")
        .body("{\"sender\": \"prato\",\n \"receiver\": ")
        .send()
        .await
        .unwrap();
    let r = crate::harness::read(r).await;
    assert_problem(&r, 400, "invalid-json");
    assert!(
        r.body["detail"].as_str().unwrap().contains("line 2"),
        "{}",
        r.text
    );

    let mut body = referral("prato", "firenze");
    body["person"]["profile"]["ethos"] = "99".into();
    body["person"]["identity"]["birth_date"] = "10/12/1985".into();
    let r = app.send_referral("prato", &body, None).await;
    assert_problem(&r, 422, "schema-violation");
    let pointers: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert!(pointers.contains(&"/person/profile/ethos"), "{pointers:?}");
    assert!(
        pointers.contains(&"/person/identity/birth_date"),
        "{pointers:?}"
    );
    assert!(
        !r.text.contains("10/12/1985"),
        "the problem echoes the value: {}",
        r.text
    );

    let mut body = referral("prato", "firenze");
    body["status"] = "accepted".into();
    let r = app.send_referral("prato", &body, None).await;
    assert_problem(&r, 422, "schema-violation");
    assert_eq!(r.body["errors"][0]["pointer"], "/status");
    assert_eq!(r.body["errors"][0]["keyword"], "readOnly");

    let r = app
        .client("prato")
        .post(app.url("/v1/referrals"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_problem(
        &crate::harness::read(r).await,
        415,
        "unsupported-media-type",
    );

    let r = app
        .client("prato")
        .post(app.url("/v1/referrals"))
        .header("content-type", "application/json")
        .body(vec![b' '; 300 * 1024])
        .send()
        .await
        .unwrap();
    assert_problem(&crate::harness::read(r).await, 413, "payload-too-large");

    // Nothing reached the receiver, and no referral exists.
    let inbox = app.get("firenze", "/v1/inbox").await;
    assert_eq!(inbox.body["items"], json!([]));
    assert!(
        app.metrics()
            .await
            .contains("raccordo_referrals{status=\"requested\"} 0")
    );
}

#[tokio::test]
async fn a_party_sends_only_in_its_own_name_to_a_known_ambito() {
    let app = TestApp::spawn().await;
    let r = app
        .send_referral("pisa", &referral("prato", "firenze"), None)
        .await;
    assert_problem(&r, 403, "sender-mismatch");

    let r = app
        .send_referral("prato", &referral("prato", "bologna"), None)
        .await;
    assert_problem(&r, 422, "unknown-receiver");
    assert_eq!(r.body["errors"][0]["pointer"], "/receiver");

    let r = app
        .send_referral("prato", &referral("prato", "prato"), None)
        .await;
    assert_problem(&r, 422, "schema-violation");
    assert_eq!(r.body["errors"][0]["pointer"], "/receiver");

    let mut body = referral("prato", "firenze");
    body["target_structure"] = "nowhere".into();
    let r = app.send_referral("prato", &body, None).await;
    assert_problem(&r, 422, "unknown-structure");
}

#[tokio::test]
async fn a_referral_needs_a_legal_basis_that_covers_it() {
    let app = TestApp::spawn().await;
    let mut body = referral("prato", "firenze");
    body["legal_basis"]["recipients"] = json!(["pisa"]);
    let r = app.send_referral("prato", &body, None).await;
    assert_problem(&r, 422, "legal-basis-insufficient");
    assert_eq!(r.body["errors"][0]["pointer"], "/legal_basis");

    body["legal_basis"]["recipients"] = json!(["firenze"]);
    body["legal_basis"]["status"] = "withdrawn".into();
    assert_problem(
        &app.send_referral("prato", &body, None).await,
        422,
        "legal-basis-insufficient",
    );

    // A draft may wait for its basis; sending it may not.
    let draft = app
        .client("prato")
        .post(app.url("/v1/referrals?draft=true"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let draft = crate::harness::read(draft).await;
    assert_eq!(draft.status, 201, "{}", draft.text);
    let id = draft.body["id"].as_str().unwrap();
    let r = app.set_status("prato", id, "requested", None).await;
    assert_problem(&r, 422, "legal-basis-insufficient");
}

#[tokio::test]
async fn receiver_sees_triage_before_acceptance_and_identity_after() {
    let app = TestApp::spawn().await;
    let body = referral("prato", "firenze");
    let id = app.create("prato", "firenze").await;

    let triage = app.referral("firenze", &id).await;
    assert_eq!(triage.status, 200);
    assert_eq!(triage.headers["raccordo-view"], "triage");
    for planted in PLANTED {
        assert!(!triage.text.contains(planted), "triage leaks {planted}");
    }
    assert!(triage.body.get("person").is_none() && triage.body.get("reason").is_none());
    assert!(triage.body.get("local_case_ref").is_none());
    assert_eq!(triage.body["profile"], body["person"]["profile"]);
    assert_eq!(triage.body["urgency"], "urgent");
    assert_eq!(
        triage.body["requested_services"],
        body["requested_services"]
    );

    // Acknowledging is not accepting.
    assert_eq!(
        app.set_status("firenze", &id, "received", None)
            .await
            .status,
        200
    );
    assert_eq!(
        app.referral("firenze", &id).await.headers["raccordo-view"],
        "triage"
    );

    assert_eq!(
        app.set_status("firenze", &id, "accepted", None)
            .await
            .status,
        200
    );
    let full = app.referral("firenze", &id).await;
    assert_eq!(full.headers["raccordo-view"], "full");
    assert_eq!(full.body["person"]["identity"], body["person"]["identity"]);
    assert_eq!(full.body["local_case_ref"], body["local_case_ref"]);
}

#[tokio::test]
async fn identity_is_withheld_when_the_basis_does_not_cover_it() {
    let app = TestApp::spawn().await;
    let mut body = referral("prato", "firenze");
    body["legal_basis"]["data_categories"] = json!(["social"]);
    let r = app.send_referral("prato", &body, None).await;
    let id = r.body["id"].as_str().unwrap();
    app.set_status("firenze", id, "accepted", None).await;
    let full = app.referral("firenze", id).await;
    assert_eq!(full.headers["raccordo-view"], "full");
    assert!(
        full.body["person"].get("identity").is_none(),
        "{}",
        full.text
    );
    assert_eq!(full.body["person"]["profile"], body["person"]["profile"]);
}

#[tokio::test]
async fn other_ambiti_cannot_read_a_referral_or_its_history() {
    let app = TestApp::spawn().await;
    let id = app.create("prato", "firenze").await;
    for path in [
        format!("/v1/referrals/{id}"),
        format!("/v1/referrals/{id}/history"),
    ] {
        // Another ambito cannot tell the referral exists; the Region may not read referrals.
        assert_problem(&app.get("pisa", &path).await, 404, "not-found");
        assert_problem(&app.get("region", &path).await, 403, "not-permitted");
        assert_eq!(app.get("prato", &path).await.status, 200);
        assert_eq!(app.get("firenze", &path).await.status, 200);
    }
    assert_problem(
        &app.set_status("pisa", &id, "accepted", None).await,
        404,
        "not-found",
    );
    assert_problem(
        &app.get(
            "prato",
            "/v1/referrals/00000000-0000-4000-8000-000000000000",
        )
        .await,
        404,
        "not-found",
    );
}
