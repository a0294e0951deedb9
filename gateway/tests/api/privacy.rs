//! Pseudonyms, linkage at ingress, consent withdrawal and erasure, through the API.

use crate::harness::{TestApp, assert_problem, referral};
use serde_json::json;

#[tokio::test]
async fn the_same_person_has_one_pseudonym_per_ambito_and_different_ones_across_ambiti() {
    let app = TestApp::spawn().await;
    // Two referrals about the same person (same codice fiscale), from two senders.
    let a = app
        .send_referral("prato", &referral("prato", "firenze"), None)
        .await;
    let b = app
        .send_referral("pisa", &referral("pisa", "firenze"), None)
        .await;
    let prato_ref = a.body["person_ref"].as_str().unwrap().to_owned();
    let pisa_ref = b.body["person_ref"].as_str().unwrap().to_owned();
    assert_ne!(
        prato_ref, pisa_ref,
        "two ambiti must not be able to join their data"
    );
    assert!(raccordo_gateway::pseudonym::is_valid(&prato_ref));

    // Prato sends the same person again with the name written differently and no codice fiscale:
    // linkage by encodings recognises the person, and Prato sees the same pseudonym.
    let mut again = referral("prato", "lucca");
    let identity = again["person"]["identity"].as_object_mut().unwrap();
    identity.remove("codice_fiscale");
    identity.insert("given_names".into(), json!("Mohammed"));
    identity.insert("family_name".into(), json!("SALIM"));
    let c = app.send_referral("prato", &again, None).await;
    assert_eq!(c.status, 201, "{}", c.text);
    assert_eq!(
        c.body["person_ref"],
        prato_ref.as_str(),
        "the same person, recognised without a codice fiscale"
    );

    // Firenze, once it has accepted both, sees one person too, under its own pseudonym.
    for r in [&a, &b] {
        let id = r.body["id"].as_str().unwrap();
        app.set_status("firenze", id, "accepted", None).await;
    }
    let fa = app
        .referral("firenze", a.body["id"].as_str().unwrap())
        .await;
    let fb = app
        .referral("firenze", b.body["id"].as_str().unwrap())
        .await;
    assert_eq!(fa.body["person_ref"], fb.body["person_ref"]);
    assert_ne!(fa.body["person_ref"], prato_ref.as_str());

    // Someone else entirely is someone else.
    let mut other = referral("prato", "firenze");
    other["person"]["identity"] = json!({"given_names": "Giulia", "family_name": "Rossi", "birth_date": "1970-03-02", "sex": "female", "country_of_birth": "IT"});
    let d = app.send_referral("prato", &other, None).await;
    assert_ne!(d.body["person_ref"], prato_ref.as_str());
}

#[tokio::test]
async fn withdrawal_blocks_the_next_release_holds_the_referral_and_tells_both_parties() {
    let app = TestApp::spawn().await;
    let sent = app
        .send_referral("prato", &referral("prato", "firenze"), None)
        .await;
    let id = sent.body["id"].as_str().unwrap().to_owned();
    let consent = sent.body["consent_id"].as_str().unwrap().to_owned();
    app.set_status("firenze", &id, "accepted", None).await;
    let before = app.referral("firenze", &id).await;
    assert!(
        before.body["person"]["identity"].is_object(),
        "identity released before withdrawal"
    );
    let firenze_cursor = app.get("firenze", "/v1/inbox").await.body["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();

    // Only the ambito that recorded it (or the Region) may see or withdraw it.
    assert_problem(
        &app.post(
            "firenze",
            &format!("/v1/consents/{consent}/withdraw"),
            &json!({}),
        )
        .await,
        404,
        "not-found",
    );
    let r = app
        .post(
            "prato",
            &format!("/v1/consents/{consent}/withdraw"),
            &json!({"reason": "la persona ha revocato il consenso"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["referrals_on_hold"], 1);

    let after = app.referral("firenze", &id).await;
    assert_eq!(after.body["status"], "on-hold");
    assert!(
        after.body["person"].get("identity").is_none(),
        "identity released after withdrawal: {}",
        after.text
    );
    let last = after.body["status_history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["by"], "gateway");
    assert!(
        last["reason"]
            .as_str()
            .unwrap()
            .contains("consent withdrawn")
    );

    let events = app
        .get("firenze", &format!("/v1/inbox?after={firenze_cursor}"))
        .await;
    assert!(
        events.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "consent.withdrawn" && e["referral"] == id.as_str()),
        "{}",
        events.text
    );
    let prato_events = app.get("prato", "/v1/inbox").await;
    assert!(
        prato_events.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "consent.withdrawn")
    );

    let c = app.get("prato", &format!("/v1/consents/{consent}")).await;
    assert_eq!(c.body["consent"]["status"], "withdrawn");
    assert!(
        app.metrics()
            .await
            .contains("raccordo_referrals{status=\"on-hold\"} 1")
    );
}

#[tokio::test]
async fn a_draft_cannot_be_sent_once_its_consent_is_withdrawn() {
    let app = TestApp::spawn().await;
    let r = app
        .client("prato")
        .post(app.url("/v1/referrals?draft=true"))
        .json(&referral("prato", "firenze"))
        .send()
        .await
        .unwrap();
    let r = crate::harness::read(r).await;
    let id = r.body["id"].as_str().unwrap();
    let consent = r.body["consent_id"].as_str().unwrap();
    app.post(
        "prato",
        &format!("/v1/consents/{consent}/withdraw"),
        &json!({}),
    )
    .await;
    assert_problem(
        &app.set_status("prato", id, "requested", None).await,
        422,
        "legal-basis-insufficient",
    );
}

#[tokio::test]
async fn consents_recorded_outside_a_referral_link_to_the_person() {
    let app = TestApp::spawn().await;
    let body = referral("prato", "firenze");
    let r = app
        .post(
            "prato",
            "/v1/consents",
            &json!({"person": body["person"], "consent": body["legal_basis"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let sent = app.send_referral("prato", &body, None).await;
    assert_eq!(r.body["person_ref"], sent.body["person_ref"]);
    let bad = app.post("prato", "/v1/consents", &json!({"person": body["person"], "consent": {"basis": "public_task", "special_category_condition": "none"}})).await;
    assert_problem(&bad, 422, "schema-violation");
    assert_eq!(bad.body["errors"][0]["pointer"], "/consent/basis");
    let bad = app
        .post(
            "prato",
            "/v1/consents",
            &json!({"person": {"profile": {}}, "consent": body["legal_basis"]}),
        )
        .await;
    assert_problem(&bad, 422, "schema-violation");
    assert!(
        bad.body["errors"][0]["pointer"]
            .as_str()
            .unwrap()
            .starts_with("/person/profile")
    );
}

#[tokio::test]
async fn erasure_leaves_no_readable_identity_and_keeps_the_rest() {
    let app = TestApp::spawn().await;
    let a = app
        .send_referral("prato", &referral("prato", "firenze"), None)
        .await;
    let b = app
        .send_referral("pisa", &referral("pisa", "firenze"), None)
        .await;
    let (a_id, b_id) = (
        a.body["id"].as_str().unwrap().to_owned(),
        b.body["id"].as_str().unwrap().to_owned(),
    );
    app.set_status("firenze", &b_id, "accepted", None).await;

    assert_problem(
        &app.post("prato", "/v1/erasures", &json!({"referral": a_id}))
            .await,
        403,
        "not-permitted",
    );
    let r = app
        .post("region", "/v1/erasures", &json!({"referral": a_id}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Both referrals were about the same person: neither identity can be read any more.
    for (party, id) in [("prato", &a_id), ("firenze", &b_id), ("pisa", &b_id)] {
        let v = app.referral(party, id).await;
        assert_eq!(v.status, 200);
        assert!(
            v.body["person"].get("identity").is_none(),
            "{party} still reads an identity: {}",
            v.text
        );
        for planted in crate::harness::PLANTED {
            assert!(!v.text.contains(planted), "{planted} is still readable");
        }
        assert_eq!(v.body["reason"], raccordo_gateway::referrals::ERASED);
        assert_eq!(
            v.body["person"]["profile"]["ethos"], "1",
            "the profile stays for statistics"
        );
    }
    // Nothing links to the erased person: the same codice fiscale is a new person now.
    let c = app
        .send_referral("prato", &referral("prato", "firenze"), None)
        .await;
    assert_ne!(c.body["person_ref"], a.body["person_ref"]);
}

#[tokio::test]
async fn known_elsewhere_says_yes_or_no_and_how_many_never_which() {
    let app = TestApp::spawn().await;
    let body = referral("prato", "firenze");
    app.send_referral("prato", &body, None).await;
    let ask = |party: &'static str, identity: serde_json::Value| {
        let app = &app;
        async move {
            app.post(
                party,
                "/v1/linkage/known",
                &json!({"person": {"identity": identity}}),
            )
            .await
        }
    };
    let r = ask("pisa", body["person"]["identity"].clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"known": true, "ambiti": 2}),
        "only yes/no and a count"
    );
    // Without the codice fiscale, by name and birth date.
    let mut by_name = body["person"]["identity"].clone();
    by_name.as_object_mut().unwrap().remove("codice_fiscale");
    assert_eq!(
        ask("pisa", by_name).await.body,
        json!({"known": true, "ambiti": 2})
    );
    // The sender itself is not counted.
    assert_eq!(
        ask("prato", body["person"]["identity"].clone()).await.body,
        json!({"known": true, "ambiti": 1})
    );
    let stranger = json!({"given_names": "Giulia", "family_name": "Rossi", "birth_date": "1970-03-02", "sex": "female", "country_of_birth": "IT"});
    assert_eq!(
        ask("pisa", stranger).await.body,
        json!({"known": false, "ambiti": 0})
    );
    let bad = ask("pisa", json!({"codice_fiscale": "nope"})).await;
    assert_problem(&bad, 422, "schema-violation");
    assert_eq!(
        bad.body["errors"][0]["pointer"],
        "/person/identity/codice_fiscale"
    );
}

#[tokio::test]
async fn the_review_band_goes_to_a_regional_operator_whose_decision_links() {
    let app = TestApp::spawn().await;
    let first = app
        .send_referral("prato", &referral("prato", "firenze"), None)
        .await;
    // Same names, but no codice fiscale, birth date or country: not enough to link on its own.
    let mut weak = referral("pisa", "firenze");
    weak["person"]["identity"] =
        json!({"given_names": "Salim", "family_name": "Mohamed", "sex": "male"});
    let second = app.send_referral("pisa", &weak, None).await;
    assert_eq!(second.status, 201, "{}", second.text);
    let before = app
        .post(
            "lucca",
            "/v1/linkage/known",
            &json!({"person": {"identity": {"codice_fiscale": "MHMSLM85T10Z330X"}}}),
        )
        .await;
    assert_eq!(
        before.body["ambiti"], 2,
        "the weak registration (Pisa) is its own person until reviewed"
    );

    assert_problem(
        &app.get("prato", "/v1/linkage/reviews").await,
        403,
        "not-permitted",
    );
    let reviews = app.get("region", "/v1/linkage/reviews").await;
    let items = reviews.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", reviews.text);
    assert_eq!(items[0]["new"][0]["given_names"], "Salim");
    assert_eq!(
        items[0]["candidate"][0]["codice_fiscale"],
        "MHMSLM85T10Z330X"
    );
    let review = items[0]["id"].as_str().unwrap();
    let r = app
        .post(
            "region",
            &format!("/v1/linkage/reviews/{review}"),
            &json!({"decision": "link"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        app.get("region", "/v1/linkage/reviews").await.body["items"],
        json!([])
    );

    // From now on the two registrations are one person: Firenze sees one pseudonym.
    for r in [&first, &second] {
        app.set_status("firenze", r.body["id"].as_str().unwrap(), "accepted", None)
            .await;
    }
    let a = app
        .referral("firenze", first.body["id"].as_str().unwrap())
        .await;
    let b = app
        .referral("firenze", second.body["id"].as_str().unwrap())
        .await;
    assert_eq!(a.body["person_ref"], b.body["person_ref"]);
    let after = app
        .post(
            "lucca",
            "/v1/linkage/known",
            &json!({"person": {"identity": {"codice_fiscale": "MHMSLM85T10Z330X"}}}),
        )
        .await;
    assert_eq!(after.body, json!({"known": true, "ambiti": 3}));
}

#[tokio::test]
async fn the_dpo_gets_who_saw_what_when_and_why_as_json_and_text() {
    let app = TestApp::spawn().await;
    let sent = app
        .send_referral("prato", &referral("prato", "firenze"), None)
        .await;
    let id = sent.body["id"].as_str().unwrap();
    app.referral("firenze", id).await;
    app.set_status("firenze", id, "accepted", None).await;
    app.referral("firenze", id).await;

    assert_problem(
        &app.post("prato", "/v1/access-reports", &json!({"referral": id}))
            .await,
        403,
        "not-permitted",
    );
    let r = app
        .post("region", "/v1/access-reports", &json!({"referral": id}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let entries = r.body["entries"].as_array().unwrap();
    let seen: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["who"].as_str().unwrap(), e["purpose"].as_str().unwrap()))
        .collect();
    assert!(
        seen.contains(&("prato", "referral")) && seen.contains(&("firenze", "referral")),
        "{seen:?}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["who"] == "firenze"
                && e["what"].as_str().unwrap().contains("identifying part"))
    );
    assert!(
        entries
            .iter()
            .any(|e| e["who"] == "prato" && e["purpose"] == "consent management")
    );
    for planted in crate::harness::PLANTED {
        assert!(!r.text.contains(planted));
    }
    let text = app
        .client("region")
        .post(app.url("/v1/access-reports"))
        .header("accept", "text/plain")
        .json(&json!({"referral": id}))
        .send()
        .await
        .unwrap();
    assert!(
        text.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = text.text().await.unwrap();
    assert!(
        text.contains("art. 15") && text.contains("firenze") && text.contains("[referral]"),
        "{text}"
    );
}

#[tokio::test]
async fn identities_of_closed_referrals_are_purged_after_the_retention_period() {
    let app = TestApp::spawn_with(|s| {
        s.retention.closed_referral_days = 0;
        s.retention.sweep_interval_seconds = 1;
    })
    .await;
    let closed = app.create("prato", "firenze").await;
    let open = app.create("pisa", "firenze").await;
    app.set_status("firenze", &closed, "rejected", Some("nessun posto"))
        .await;
    let mut purged = false;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let v = app.referral("prato", &closed).await;
        if v.body["reason"] == raccordo_gateway::referrals::ERASED {
            assert!(v.body["person"].get("identity").is_none());
            assert_eq!(v.body["status"], "rejected");
            purged = true;
            break;
        }
    }
    assert!(purged, "the closed referral kept its identity");
    let still = app.referral("pisa", &open).await;
    assert!(
        still.body["person"]["identity"].is_object(),
        "an open referral lost its identity"
    );
}

#[tokio::test]
async fn key_rotation_keeps_every_link() {
    let app = TestApp::spawn().await;
    let first = app
        .send_referral("prato", &referral("prato", "firenze"), None)
        .await;
    let prato_ref = first.body["person_ref"].clone();
    let data = app.data_dir();
    let dir = app.stop().await;

    let settings = crate::harness::settings_for(&data).await;
    let config = raccordo_gateway::Config::from_settings(settings).unwrap();
    let (epoch, report) =
        raccordo_gateway::rotation::rotate(&config, time::OffsetDateTime::now_utc()).unwrap();
    assert_eq!(epoch, 2);
    assert_eq!(report.moved, 1);
    assert!(crate::harness::verify_audit(&data).await.valid);
    let app = TestApp::spawn_in(dir, |_| {}).await;
    // By codice fiscale under the new keys...
    let again = app
        .send_referral("prato", &referral("prato", "lucca"), None)
        .await;
    assert_eq!(again.body["person_ref"], prato_ref);
    // ...and by name, birth date, sex and country under the new encodings.
    let mut by_name = referral("prato", "siena");
    by_name["person"]["identity"]
        .as_object_mut()
        .unwrap()
        .remove("codice_fiscale");
    let third = app.send_referral("prato", &by_name, None).await;
    assert_eq!(third.body["person_ref"], prato_ref);
    // What was sealed before the rotation still opens.
    let old = app
        .referral("prato", first.body["id"].as_str().unwrap())
        .await;
    assert_eq!(
        old.body["person"]["identity"]["codice_fiscale"],
        "MHMSLM85T10Z330X"
    );
    let data = app.data_dir();
    let _dir = app.stop().await;
    let raw = crate::harness::RawStore::open(&data).await;
    assert_eq!(
        raw.prefix(b"cfidx/1/").await.len(),
        0,
        "the old epoch's index is gone"
    );
    assert_eq!(raw.prefix(b"cfidx/2/").await.len(), 1);
}

#[tokio::test]
async fn the_dpo_can_name_the_person_by_identity() {
    let app = TestApp::spawn().await;
    let body = referral("prato", "firenze");
    let sent = app.send_referral("prato", &body, None).await;
    let by_identity = json!({"person": {"identity": body["person"]["identity"]}});
    let r = app.post("region", "/v1/access-reports", &by_identity).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["who"] == "prato")
    );
    let stranger = json!({"person": {"identity": {"given_names": "Giulia", "family_name": "Rossi", "birth_date": "1970-03-02"}}});
    assert_problem(
        &app.post("region", "/v1/access-reports", &stranger).await,
        404,
        "not-found",
    );
    assert_eq!(
        app.post("region", "/v1/erasures", &by_identity)
            .await
            .status,
        200
    );
    let v = app
        .referral("prato", sent.body["id"].as_str().unwrap())
        .await;
    assert!(v.body["person"].get("identity").is_none());
    // Once erased, the identity leads nowhere.
    assert_problem(
        &app.post("region", "/v1/access-reports", &by_identity).await,
        404,
        "not-found",
    );
}
