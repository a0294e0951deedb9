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
        .get(
            "firenze",
            &format!("/v1/referrals/{}", a.body["id"].as_str().unwrap()),
        )
        .await;
    let fb = app
        .get(
            "firenze",
            &format!("/v1/referrals/{}", b.body["id"].as_str().unwrap()),
        )
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
    let before = app.get("firenze", &format!("/v1/referrals/{id}")).await;
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

    let after = app.get("firenze", &format!("/v1/referrals/{id}")).await;
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
        "region-only",
    );
    let r = app
        .post("region", "/v1/erasures", &json!({"referral": a_id}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Both referrals were about the same person: neither identity can be read any more.
    for (party, id) in [("prato", &a_id), ("firenze", &b_id), ("pisa", &b_id)] {
        let v = app.get(party, &format!("/v1/referrals/{id}")).await;
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
