use raccordo_schemas::{
    Distribution, Entity, Episode, Intervention, LegalBasis, Person, Referral, ReferralStatus,
    Structure, validate,
};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn examples(entity: Entity, kind: &str) -> Vec<(PathBuf, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(entity.name())
        .join(kind);
    let mut out: Vec<(PathBuf, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, value)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no {kind} examples for {}", entity.name());
    out
}

/// Deserialises into the Rust type and serialises back.
fn round_trip(entity: Entity, value: &Value) -> Value {
    fn rt<T: serde::de::DeserializeOwned + serde::Serialize>(v: &Value) -> Value {
        let typed: T = serde_json::from_value(v.clone()).unwrap();
        serde_json::to_value(&typed).unwrap()
    }
    match entity {
        Entity::Person => rt::<Person>(value),
        Entity::Consent => rt::<LegalBasis>(value),
        Entity::Referral => rt::<Referral>(value),
        Entity::Episode => rt::<Episode>(value),
        Entity::Structure => rt::<Structure>(value),
        Entity::Distribution => rt::<Distribution>(value),
        Entity::Intervention => rt::<Intervention>(value),
    }
}

#[test]
fn every_valid_example_passes_and_round_trips() {
    for entity in Entity::ALL {
        for (path, value) in examples(entity, "valid") {
            if let Err(v) = validate(entity, &value) {
                panic!("{} should be valid: {v:?}", path.display());
            }
            let back = round_trip(entity, &value);
            assert_eq!(back, value, "{} does not round-trip", path.display());
            assert!(
                validate(entity, &back).is_ok(),
                "{}: serialised form invalid",
                path.display()
            );
        }
    }
}

#[test]
fn every_invalid_example_fails_at_the_pointer_it_names() {
    for entity in Entity::ALL {
        for (path, doc) in examples(entity, "invalid") {
            let pointer = doc["expect"]["pointer"].as_str().unwrap();
            let keyword = doc["expect"]["keyword"].as_str().unwrap();
            let violations = match validate(entity, &doc["instance"]) {
                Ok(()) => panic!("{} should be invalid", path.display()),
                Err(v) => v,
            };
            assert!(
                violations
                    .iter()
                    .any(|v| v.pointer == pointer && v.keyword == keyword),
                "{}: expected {keyword} at {pointer:?}, got {violations:?}",
                path.display()
            );
        }
    }
}

#[test]
fn violation_messages_never_repeat_the_value() {
    let mut doc: Value = examples(Entity::Referral, "valid")[0].1.clone();
    doc["person"]["identity"]["codice_fiscale"] = "ZZZSECRET123".into();
    doc["person"]["identity"]["birth_date"] = "SECRETDATE".into();
    let violations = validate(Entity::Referral, &doc).unwrap_err();
    assert_eq!(violations.len(), 2, "{violations:?}");
    for v in violations {
        assert!(!v.message.contains("SECRET"), "{v:?} leaks the value");
    }
}

#[test]
fn codice_fiscale_check_character_is_enforced() {
    let mut doc: Value = examples(Entity::Person, "valid")
        .into_iter()
        .find(|(p, _)| p.ends_with("full-identity.json"))
        .unwrap()
        .1;
    doc["identity"]["codice_fiscale"] = "MHMSLM85T10Z330K".into();
    let violations = validate(Entity::Person, &doc).unwrap_err();
    assert_eq!(violations[0].pointer, "/identity/codice_fiscale");
    assert_eq!(violations[0].keyword, "x-codice-fiscale");
}

#[test]
fn every_value_the_types_serialise_validates() {
    // Every status the Rust enum can produce is accepted by the schema inside a served referral.
    let (_, base) = examples(Entity::Referral, "valid")
        .into_iter()
        .find(|(p, _)| p.ends_with("as-served-accepted.json"))
        .unwrap();
    let referral: Referral = serde_json::from_value(base).unwrap();
    for status in ReferralStatus::ALL {
        let mut r = referral.clone();
        r.status = Some(status);
        r.status_history[0].status = status;
        r.status_history[0].reason = status.requires_reason().then(|| "motivo".to_owned());
        let value = serde_json::to_value(&r).unwrap();
        assert!(
            validate(Entity::Referral, &value).is_ok(),
            "{status:?} does not validate"
        );
        assert_eq!(ReferralStatus::parse(status.as_str()), Some(status));
    }
}

#[test]
fn remote_references_are_not_fetched() {
    // A schema that points outside the embedded documents must not build: the validators are
    // offline by construction.
    let schema = serde_json::json!({"$ref": "https://example.org/elsewhere.json"});
    assert!(
        jsonschema::draft202012::options()
            .offline()
            .build(&schema)
            .is_err()
    );
}

#[test]
fn an_identity_block_validates_on_its_own() {
    use raccordo_schemas::validate::validate_identity;
    let person = examples(Entity::Person, "valid")
        .into_iter()
        .find(|(p, _)| p.ends_with("full-identity.json"))
        .unwrap()
        .1;
    assert_eq!(validate_identity(&person["identity"]), Ok(()));
    let v =
        validate_identity(&serde_json::json!({"codice_fiscale": "MHMSLM85T10Z330K"})).unwrap_err();
    assert_eq!(
        (v[0].pointer.as_str(), v[0].keyword.as_str()),
        ("/codice_fiscale", "x-codice-fiscale")
    );
    let v = validate_identity(&serde_json::json!({"sex": "male"})).unwrap_err();
    assert_eq!(v[0].keyword, "anyOf");
}
