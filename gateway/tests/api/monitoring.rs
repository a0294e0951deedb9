//! Anonymised monitoring, black box: ambiti report episodes, distributions and street-unit
//! interventions; the Region makes releases and pulls them in four formats.

use crate::harness::{TestApp, assert_problem, read};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};

const SDMX_CSV: &str = "application/vnd.sdmx.data+csv; version=2.0.0";
const SDMX_JSON: &str = "application/vnd.sdmx.data+json; version=2.0.0";

fn person(cf: &str, sex: &str, age: &str) -> Value {
    json!({
        "identity": {"codice_fiscale": cf},
        "profile": {"ethos": "2", "age_band": age, "sex": sex, "citizenship_group": "non_eu"}
    })
}

fn episode(ambito: &str, id: &str, service: &str, start: &str, person: Value) -> Value {
    json!({"id": id, "ambito": ambito, "service_type": service, "start": start, "person": person})
}

/// Publishes the truth: no noise and a threshold of 1, to check the counting itself.
fn exact(s: &mut raccordo_gateway::config::Settings) {
    s.monitoring.threshold = 1;
    s.monitoring.max_noise = 0;
    s.monitoring.magnitude_noise = 0.0;
}

impl TestApp {
    /// GET as a party with an Accept header: status, content type and body text.
    pub async fn get_with_accept(
        &self,
        party: &str,
        path: &str,
        accept: &str,
    ) -> (u16, Value, String, String) {
        let mut req = self.client(party).get(self.url(path));
        if !accept.is_empty() {
            req = req.header("Accept", accept);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let ctype = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, body, ctype, text)
    }

    async fn release(&self, period: &str) -> Value {
        let r = self
            .post("region", "/v1/releases", &json!({"period": period}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body
    }

    async fn data(&self, id: &str) -> Value {
        let (status, body, ctype, _) = self
            .get_with_accept(
                "region",
                &format!("/v1/releases/{id}/data"),
                "application/json",
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(ctype, "application/json");
        body
    }
}

fn cell<'a>(
    data: &'a Value,
    indicator: &str,
    ambito: &str,
    period: &str,
    breakdown: Option<(&str, &str)>,
) -> &'a Value {
    let ind = data["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == indicator)
        .unwrap();
    ind["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| {
            o["ambito"] == ambito
                && o["time_period"] == period
                && match breakdown {
                    None => [
                        "sex",
                        "age_band",
                        "citizenship_group",
                        "ethos_light",
                        "service_type",
                        "kit_type",
                    ]
                    .iter()
                    .all(|d| o.get(*d).is_none()),
                    Some((d, v)) => o[d] == v,
                }
        })
        .unwrap_or_else(|| panic!("{indicator} {ambito} {period} {breakdown:?}"))
}

#[tokio::test]
async fn records_arrive_one_by_one_or_in_batches_and_bad_ones_are_named() {
    let app = TestApp::spawn_with(exact).await;
    let batch = json!([
        episode("prato", "EP-1", "case_management", "2026-02-01", person("RSSMRA80A01H501U", "male", "45-54")),
        episode("prato", "EP-2", "night_shelter", "2026-02-03", person("VRDLGI75B42D612T", "female", "45-54")),
        episode("prato", "EP-3", "night_shelter", "2026-02-03", json!({"profile": {"ethos": "2", "age_band": "45-54", "sex": "martian", "citizenship_group": "eu"}})),
        {"ambito": "prato", "service_type": "day_centre", "start": "2026-02-03"},
    ]);
    let r = app.post("prato", "/v1/episodes", &batch).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["recorded"], 2);
    assert_eq!(r.body["refused"], 2);
    let refused = &r.body["results"][2]["problem"];
    assert_eq!(refused["code"], "schema-violation");
    assert_eq!(refused["errors"][0]["pointer"], "/2/person/profile/sex");
    assert_eq!(r.body["results"][3]["problem"]["code"], "local-id-required");
    assert!(
        !r.text.contains("martian"),
        "a refusal never echoes the value"
    );

    // A correction replaces; another ambito's record is refused.
    let again = episode(
        "prato",
        "EP-1",
        "case_management",
        "2026-01-15",
        person("RSSMRA80A01H501U", "male", "45-54"),
    );
    assert_eq!(app.post("prato", "/v1/episodes", &again).await.status, 200);
    let r = app.post("firenze", "/v1/episodes", &again).await;
    assert_problem(&r, 403, "not-owner");
    let r = app
        .post("prato", "/v1/distributions", &json!({"id": "D-1", "ambito": "prato", "kit_type": "emergency", "quantity": 2, "date": "2026-02-04", "site": "stazione"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .post("prato", "/v1/interventions", &json!({"id": "I-1", "ambito": "prato", "signalled_at": "2026-02-04T22:00:00+01:00", "outcome": "reached"}))
        .await;
    assert_problem(&r, 422, "schema-violation");
    // Only ambiti report; the Region does not.
    assert_eq!(app.post("region", "/v1/episodes", &again).await.status, 403);

    // Nothing identifying is kept with the statistics: the raw store holds no name or code.
    let dir = app.stop().await;
    let raw = crate::harness::RawStore::open(dir.path())
        .await
        .all_bytes()
        .await;
    let haystack = String::from_utf8_lossy(&raw);
    for planted in ["RSSMRA80A01H501U", "EP-1", "stazione"] {
        assert!(
            !haystack.contains(planted),
            "{planted} is in the store in clear"
        );
    }
}

#[tokio::test]
async fn a_person_counts_once_in_each_ambito_and_once_in_the_region() {
    let app = TestApp::spawn_with(exact).await;
    let rossi = person("RSSMRA80A01H501U", "male", "45-54");
    let verdi = person("VRDLGI75B42D612T", "female", "25-34");
    for (ambito, id, who, start) in [
        ("prato", "P-1", rossi.clone(), "2026-01-10"),
        ("prato", "P-2", rossi.clone(), "2026-05-10"),
        ("firenze", "F-1", rossi.clone(), "2026-05-20"),
        ("siena", "S-1", verdi.clone(), "2026-08-01"),
    ] {
        let r = app
            .post(
                ambito,
                "/v1/episodes",
                &episode(ambito, id, "case_management", start, who),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let shelter = json!({"id": "F-2", "ambito": "firenze", "service_type": "night_shelter", "start": "2026-03-01", "end": "2026-03-11", "person": verdi});
    assert_eq!(
        app.post("firenze", "/v1/episodes", &shelter).await.status,
        201
    );
    let places = json!({
        "id": "firenze-dormitorio", "ambito": "firenze", "name": "Dormitorio", "service_type": "night_shelter",
        "target_groups": ["men"], "municipality": "048017", "capacity": {"places": 10, "free_places": 2, "updated_at": "2026-03-01T08:00:00Z"}
    });
    let r = app
        .put("firenze", "/v1/structures/firenze-dormitorio", &places)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    // The same person signalled twice to Livorno's street unit: reached in 90 minutes once,
    // in five hours the other time. Signals, not people, are what the share counts.
    for (id, reached) in [
        ("I-1", "2026-02-01T23:30:00+01:00"),
        ("I-2", "2026-02-03T03:00:00+01:00"),
    ] {
        let signal = json!({
            "id": id, "ambito": "livorno", "outcome": "reached",
            "signalled_at": if id == "I-1" { "2026-02-01T22:00:00+01:00" } else { "2026-02-02T22:00:00+01:00" },
            "reached_at": reached, "person": rossi,
        });
        assert_eq!(
            app.post("livorno", "/v1/interventions", &signal)
                .await
                .status,
            201
        );
    }
    let release = app.release("2026").await;
    let data = app.data(release["id"].as_str().unwrap()).await;
    let v = |ind, amb, per, b| cell(&data, ind, amb, per, b)["value"].clone();
    assert_eq!(
        v("STREET_REACHED_3H", "livorno", "2026-Q1", None),
        json!(50.0)
    );
    assert_eq!(v("PERSONS_IN_CHARGE", "prato", "2026", None), 1);
    assert_eq!(v("PERSONS_IN_CHARGE", "firenze", "2026", None), 1);
    assert_eq!(v("PERSONS_IN_CHARGE", "siena", "2026", None), 1);
    assert_eq!(
        v("PERSONS_IN_CHARGE", "_T", "2026", None),
        2,
        "Rossi counts once in the Region"
    );
    assert_eq!(v("PERSONS_IN_CHARGE", "prato", "2026-Q1", None), 1);
    assert_eq!(v("PERSONS_IN_CHARGE", "prato", "2026-Q2", None), 1);
    assert_eq!(
        v("PERSONS_IN_CHARGE", "_T", "2026-Q2", Some(("sex", "male"))),
        1
    );
    assert_eq!(
        v("PERSONS_IN_CHARGE", "_T", "2026", Some(("sex", "female"))),
        1
    );
    // Ten nights in March (the day of leaving is not a night), in 31 days of ten places.
    assert_eq!(v("SHELTER_BED_NIGHTS", "firenze", "2026-Q1", None), 10);
    assert_eq!(
        v("SHELTER_OCCUPANCY", "firenze", "2026-Q1", None),
        json!(1.1)
    );
    assert_eq!(
        cell(&data, "SHELTER_OCCUPANCY", "prato", "2026-Q1", None)["obs_status"],
        "M"
    );
}

#[tokio::test]
async fn a_release_is_signed_immutable_and_consistent_with_its_revisions() {
    let app = TestApp::spawn().await;
    for i in 0..40 {
        let ambito = ["prato", "firenze", "pisa"][i % 3];
        let who = json!({"profile": {"ethos": "1", "age_band": "35-44", "sex": if i % 2 == 0 { "male" } else { "female" }, "citizenship_group": "italian"}});
        let r = app
            .post(
                ambito,
                "/v1/episodes",
                &episode(ambito, &format!("E{i}"), "housing_first", "2026-04-01", who),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let first = app.release("2026").await;
    let id = first["id"].as_str().unwrap().to_owned();

    // The manifest is signed with the key the gateway publishes, and names every table's digest,
    // which is the SHA-256 of that table's SDMX-CSV.
    let keys = app.get("region", "/v1/releases/signing-key").await;
    let jwk = &keys.body["keys"][0];
    assert_eq!(jwk["kty"], "OKP");
    let key = jsonwebtoken::DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let signed =
        jsonwebtoken::decode::<Value>(first["signature"].as_str().unwrap(), &key, &validation)
            .unwrap();
    assert_eq!(signed.claims, first["manifest"]);
    let tables = first["manifest"]["tables"].as_array().unwrap();
    assert!(tables.len() >= 12);
    for t in tables {
        let ind = t["indicator"].as_str().unwrap();
        let (status, _, ctype, text) = app
            .get_with_accept(
                "region",
                &format!("/v1/releases/{id}/data?indicator={ind}"),
                SDMX_CSV,
            )
            .await;
        assert_eq!((status, ctype.as_str()), (200, SDMX_CSV));
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(t["sha256"], hex, "{ind}");
    }
    let before = app
        .get_with_accept("region", &format!("/v1/releases/{id}/data"), SDMX_CSV)
        .await
        .3;

    // No route changes a release.
    for method in ["PUT", "DELETE", "PATCH", "POST"] {
        let res = read(
            app.client("region")
                .request(
                    method.parse().unwrap(),
                    app.url(&format!("/v1/releases/{id}")),
                )
                .json(&json!({"period": "2025"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(
            res.status >= 400,
            "{method} changed a release: {}",
            res.status
        );
    }

    // A revision after late records: unchanged cells keep their values, and the first release
    // is served exactly as before.
    let late = json!({"profile": {"ethos": "1", "age_band": "35-44", "sex": "male", "citizenship_group": "italian"}});
    assert_eq!(
        app.post(
            "siena",
            "/v1/episodes",
            &episode("siena", "late", "housing_first", "2026-11-01", late)
        )
        .await
        .status,
        201
    );
    let second = app.release("2026").await;
    assert_eq!(second["manifest"]["revision_of"], id.as_str());
    let consistency = &second["manifest"]["consistency"];
    assert!(
        consistency["cells_unchanged"].as_u64().unwrap() > 1000,
        "{consistency}"
    );
    assert!(consistency["cells_unchanged"].as_u64() < consistency["cells_compared"].as_u64());
    assert_eq!(
        app.get_with_accept("region", &format!("/v1/releases/{id}/data"), SDMX_CSV)
            .await
            .3,
        before
    );
    let d1 = app.data(&id).await;
    let d2 = app.data(second["id"].as_str().unwrap()).await;
    assert_eq!(
        cell(&d1, "PERSONS_HOUSED", "prato", "2026-Q2", None),
        cell(&d2, "PERSONS_HOUSED", "prato", "2026-Q2", None)
    );
    let ledger = app.get("region", "/v1/releases").await;
    assert_eq!(ledger.body["ledger_verified"], true);
    assert_eq!(ledger.body["items"].as_array().unwrap().len(), 2);

    // Changing the perturbation after a release would let the noise be differenced away: the
    // next release is refused, and says why.
    let dir = app.stop().await;
    let app = TestApp::spawn_in(dir, |s| s.monitoring.variance = 1.0).await;
    let r = app
        .post("region", "/v1/releases", &json!({"period": "2026"}))
        .await;
    assert_problem(&r, 409, "release-inconsistent");

    // A table altered in the store is never served.
    let dir = app.stop().await;
    {
        let raw = crate::harness::RawStore::open(dir.path()).await;
        let key = format!("release-table/{id}/PERSONS_HOUSED");
        let mut table: Value =
            serde_json::from_slice(&raw.get(key.as_bytes()).await.unwrap()).unwrap();
        table["observations"][0]["value"] = json!(1.0);
        raw.put(key.as_bytes(), serde_json::to_vec(&table).unwrap())
            .await;
    }
    let app = TestApp::spawn_in(dir, |_| {}).await;
    let (status, body, _, _) = app
        .get_with_accept("region", &format!("/v1/releases/{id}/data"), "text/csv")
        .await;
    assert_eq!(status, 500);
    assert_eq!(body["code"], "integrity-check-failed");
}

#[tokio::test]
async fn each_format_follows_its_specification() {
    let app = TestApp::spawn().await;
    for i in 0..30 {
        let ambito = ["livorno", "lucca"][i % 2];
        let who = json!({"profile": {"ethos": "3", "age_band": "65+", "sex": "male", "citizenship_group": "eu"}});
        app.post(
            ambito,
            "/v1/episodes",
            &episode(
                ambito,
                &format!("E{i}"),
                "case_management",
                "2026-07-01",
                who,
            ),
        )
        .await;
        app.post(ambito, "/v1/distributions", &json!({"id": format!("D{i}"), "ambito": ambito, "kit_type": "bedding", "quantity": 1 + i % 3, "date": "2026-07-02", "site": "centro"})).await;
        let reached = json!({"id": format!("I{i}"), "ambito": ambito, "signalled_at": "2026-07-03T21:00:00+02:00", "reached_at": format!("2026-07-03T{}:30:00+02:00", 21 + i % 3), "outcome": "reached"});
        assert_eq!(
            app.post(ambito, "/v1/interventions", &reached).await.status,
            201
        );
    }
    let release = app.release("2026-Q3").await;
    let id = release["id"].as_str().unwrap();
    let path = format!("/v1/releases/{id}/data");

    // SDMX-CSV 2.0.0: media type, columns in order, one structure, RFC 4180 line ends.
    let (status, _, ctype, text) = app.get_with_accept("region", &path, SDMX_CSV).await;
    assert_eq!((status, ctype.as_str()), (200, SDMX_CSV));
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "every line ends with CRLF"
    );
    assert_eq!(
        lines[0],
        "STRUCTURE,STRUCTURE_ID,ACTION,INDICATOR,AMBITO,SEX,AGE_BAND,CITIZENSHIP,ETHOS_LIGHT,SERVICE_TYPE,KIT_TYPE,TIME_PERIOD,OBS_VALUE,UNIT_MEASURE,OBS_STATUS,CONF_STATUS"
    );
    let mut statuses = BTreeSet::new();
    for line in &lines[1..] {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 16, "{line}");
        assert_eq!(
            &f[..3],
            ["dataflow", "RT:DF_RACCORDO_MONITORING(1.0.0)", "I"]
        );
        assert_eq!(f[11], "2026-Q3");
        match (f[14], f[15]) {
            ("Q", "C") => assert_eq!(f[12], "", "a suppressed cell has no value: {line}"),
            ("A", "F") => assert!(!f[12].is_empty(), "{line}"),
            ("M", "F") => assert_eq!(f[12], ""),
            other => panic!("flags {other:?}"),
        }
        statuses.insert(f[14].to_owned());
        if ["persons", "referrals"].contains(&f[13]) {
            let n: u32 = f[12].parse().unwrap();
            assert!(n == 0 || n >= 3, "{line}");
        }
    }
    assert!(
        statuses.contains("Q") && statuses.contains("A"),
        "{statuses:?}"
    );

    // SDMX-JSON 2.0.0: what its schema requires, and the same figures as the plain JSON.
    let (status, msg, ctype, _) = app.get_with_accept("region", &path, SDMX_JSON).await;
    assert_eq!((status, ctype.as_str()), (200, SDMX_JSON));
    assert!(
        msg["meta"]["schema"]
            .as_str()
            .unwrap()
            .ends_with("/2.0.0/sdmx-json-data-schema.json")
    );
    for k in ["id", "prepared", "sender"] {
        assert!(!msg["meta"][k].is_null(), "meta.{k}");
    }
    assert!(
        time::OffsetDateTime::parse(
            msg["meta"]["prepared"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );
    let structure = &msg["data"]["structures"][0];
    let dims = structure["dimensions"]["observation"].as_array().unwrap();
    let ids: Vec<&str> = dims.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "INDICATOR",
            "AMBITO",
            "SEX",
            "AGE_BAND",
            "CITIZENSHIP",
            "ETHOS_LIGHT",
            "SERVICE_TYPE",
            "KIT_TYPE",
            "TIME_PERIOD"
        ]
    );
    for (i, d) in dims.iter().enumerate() {
        assert_eq!(d["keyPosition"], i);
        let values = d["values"].as_array().unwrap();
        assert!(!values.is_empty());
        let distinct: BTreeSet<String> = values.iter().map(|v| v.to_string()).collect();
        assert_eq!(distinct.len(), values.len(), "values are unique");
        for v in values {
            match (v.get("id"), v.get("value")) {
                (Some(id), None) => assert!(
                    is_sdmx_code_id(id.as_str().unwrap()) && v.get("name").is_some(),
                    "{v}"
                ),
                (None, Some(_)) => {}
                _ => panic!("{v}"),
            }
        }
    }
    let attrs = structure["attributes"]["observation"].as_array().unwrap();
    assert!(attrs.iter().all(|a| a["relationship"].is_object()));
    let set = &msg["data"]["dataSets"][0];
    assert_eq!(
        (set["structure"].as_u64(), set["action"].as_str()),
        (Some(0), Some("Information"))
    );
    assert!(!set["links"].as_array().unwrap().is_empty());
    let observations = set["observations"].as_object().unwrap();
    let plain = app.data(id).await;
    let mut decoded: HashMap<(String, String), Value> = HashMap::new();
    for (key, obs) in observations {
        let idx: Vec<usize> = key.split(':').map(|p| p.parse().unwrap()).collect();
        assert_eq!(idx.len(), dims.len());
        let at = |d: usize| -> String {
            let v = &dims[d]["values"][idx[d]];
            v.get("id")
                .or(v.get("value"))
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        };
        let obs = obs.as_array().unwrap();
        assert_eq!(obs.len(), 1 + attrs.len());
        for (a, attr) in attrs.iter().enumerate() {
            let i = obs[1 + a].as_u64().unwrap() as usize;
            assert!(i < attr["values"].as_array().unwrap().len());
        }
        if (2..8).all(|d| at(d) == "_T") {
            decoded.insert((at(0), at(1)), obs[0].clone());
        }
    }
    for ind in [
        "PERSONS_IN_CHARGE",
        "GOODS_DISTRIBUTED",
        "STREET_REACHED_3H",
    ] {
        for amb in ["livorno", "lucca", "_T"] {
            assert_eq!(
                decoded[&(ind.to_owned(), amb.to_owned())],
                cell(&plain, ind, amb, "2026-Q3", None)["value"],
                "{ind} {amb}"
            );
        }
    }

    // Plain CSV, JSON by default, and a clear refusal for what cannot be produced.
    let (status, _, ctype, text) = app.get_with_accept("region", &path, "text/csv").await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/csv"));
    assert!(text.starts_with("indicator,ambito,time_period,sex,age_band"));
    let (_, _, ctype, _) = app.get_with_accept("region", &path, "").await;
    assert_eq!(ctype, "application/json");
    for unsupported in [
        "application/xml",
        "application/vnd.sdmx.data+csv; version=1.0.0",
    ] {
        let (status, body, ctype, _) = app.get_with_accept("region", &path, unsupported).await;
        assert_eq!(
            (status, ctype.as_str()),
            (406, "application/problem+json"),
            "{unsupported}"
        );
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("vnd.sdmx.data+csv")
        );
    }
    // Ambiti do not pull releases; the Region does.
    let r = app.get("prato", &path).await;
    assert_eq!(r.status, 403);
}

/// SDMX-JSON's pattern for code ids: `^[A-Za-z0-9_@$-]+$`.
fn is_sdmx_code_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'@' | b'$' | b'-'))
}

#[tokio::test]
async fn a_release_needs_a_period_it_can_be_made_for() {
    let app = TestApp::spawn().await;
    for (body, pointer) in [
        (json!({}), ""),
        (json!({"period": "2026-Q5"}), "/period"),
        (json!({"period": "26"}), "/period"),
        (json!({"period": 2026}), "/period"),
        (json!({"period": "2026", "colour": "red"}), "/colour"),
    ] {
        let r = app.post("region", "/v1/releases", &body).await;
        assert_eq!(r.status, 422, "{}", r.text);
        assert_eq!(r.body["errors"][0]["pointer"], pointer, "{}", r.text);
    }
}
