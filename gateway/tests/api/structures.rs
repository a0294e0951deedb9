use crate::harness::{TestApp, assert_problem, example, referral};
use serde_json::json;

#[tokio::test]
async fn ambiti_publish_structures_and_anyone_finds_a_free_bed() {
    let app = TestApp::spawn().await;
    let shelter = example("structure/valid/night-shelter.json");
    let r = app
        .put(
            "firenze",
            "/v1/structures/firenze-asilo-notturno-1",
            &shelter,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let mut full = shelter.clone();
    full["id"] = "firenze-pieno".into();
    full["capacity"]["free_places"] = 0.into();
    assert_eq!(
        app.put("firenze", "/v1/structures/firenze-pieno", &full)
            .await
            .status,
        201
    );
    let winter = example("structure/valid/winter-plan-no-capacity-yet.json");
    assert_eq!(
        app.put("pisa", "/v1/structures/pisa-freddo-2", &winter)
            .await
            .status,
        201
    );

    let all = app
        .get("prato", "/v1/structures?service_type=night_shelter")
        .await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 3);
    let free = app
        .get(
            "prato",
            "/v1/structures?service_type=night_shelter&available=true",
        )
        .await;
    let ids: Vec<&str> = free.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["firenze-asilo-notturno-1"]);
    let pets = app
        .get("prato", "/v1/structures?target_group=with_pets")
        .await;
    assert_eq!(pets.body["items"][0]["id"], "pisa-freddo-2");

    // Updating free places replaces the record.
    let mut update = shelter.clone();
    update["capacity"]["free_places"] = 0.into();
    assert_eq!(
        app.put(
            "firenze",
            "/v1/structures/firenze-asilo-notturno-1",
            &update
        )
        .await
        .status,
        200
    );
    let free = app.get("prato", "/v1/structures?available=true").await;
    assert_eq!(free.body["items"], json!([]));

    // Now a referral can target the published structure.
    let mut body = referral("prato", "firenze");
    body["target_structure"] = "firenze-asilo-notturno-1".into();
    assert_eq!(app.send_referral("prato", &body, None).await.status, 201);
}

#[tokio::test]
async fn structures_are_published_only_by_their_ambito_and_checked() {
    let app = TestApp::spawn().await;
    let shelter = example("structure/valid/night-shelter.json");
    assert_problem(
        &app.put("prato", "/v1/structures/firenze-asilo-notturno-1", &shelter)
            .await,
        403,
        "not-owner",
    );
    assert_problem(
        &app.put("firenze", "/v1/structures/other-id", &shelter)
            .await,
        422,
        "id-mismatch",
    );
    let mut bad = shelter.clone();
    bad["capacity"]["free_places"] = 61.into();
    let r = app
        .put("firenze", "/v1/structures/firenze-asilo-notturno-1", &bad)
        .await;
    assert_problem(&r, 422, "schema-violation");
    assert_eq!(r.body["errors"][0]["pointer"], "/capacity/free_places");
    assert_problem(
        &app.get("prato", "/v1/structures?service_type=hotel").await,
        400,
        "bad-parameter",
    );
}
