//! Validators for schema v1, compiled once.
//!
//! Formats are checked (draft 2020-12 only annotates them unless asked) and references are
//! resolved only against the documents embedded here: a `$ref` to anything else is a build
//! error, never a network fetch. Violations carry the JSON pointer and the keyword that failed,
//! and their messages never repeat the offending value, so they can be returned and logged
//! without leaking the identifiers a caller sent.

use crate::{SCHEMA_BASE, codice_fiscale};
use jsonschema::{Registry, Validator};
use serde::Serialize;
use serde_json::Value;
use std::sync::OnceLock;

/// The entities of schema v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Entity {
    Person,
    Consent,
    Referral,
    Episode,
    Structure,
    Distribution,
    Intervention,
}

/// Every schema document: file name and text.
pub const DOCUMENTS: &[(&str, &str)] = &[
    ("common", include_str!("../json/common.schema.json")),
    ("person", include_str!("../json/person.schema.json")),
    ("consent", include_str!("../json/consent.schema.json")),
    ("referral", include_str!("../json/referral.schema.json")),
    ("episode", include_str!("../json/episode.schema.json")),
    ("structure", include_str!("../json/structure.schema.json")),
    (
        "distribution",
        include_str!("../json/distribution.schema.json"),
    ),
    (
        "intervention",
        include_str!("../json/intervention.schema.json"),
    ),
];

impl Entity {
    pub const ALL: [Entity; 7] = [
        Entity::Person,
        Entity::Consent,
        Entity::Referral,
        Entity::Episode,
        Entity::Structure,
        Entity::Distribution,
        Entity::Intervention,
    ];

    /// The short name used in file names and URIs.
    pub fn name(self) -> &'static str {
        match self {
            Entity::Person => "person",
            Entity::Consent => "consent",
            Entity::Referral => "referral",
            Entity::Episode => "episode",
            Entity::Structure => "structure",
            Entity::Distribution => "distribution",
            Entity::Intervention => "intervention",
        }
    }

    /// The entity with this short name.
    pub fn from_name(name: &str) -> Option<Entity> {
        Entity::ALL.into_iter().find(|e| e.name() == name)
    }

    /// The `$id` of this entity's schema.
    pub fn schema_id(self) -> String {
        format!("{SCHEMA_BASE}{}.schema.json", self.name())
    }

    /// The schema document, parsed.
    pub fn document(self) -> Option<Value> {
        document(self.name())
    }
}

/// A schema document by file name, parsed.
pub fn document(name: &str) -> Option<Value> {
    DOCUMENTS
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, text)| serde_json::from_str(text).ok())
}

/// One rule an instance broke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaViolation {
    /// JSON pointer (RFC 6901) to the offending part of the instance; "" is the whole document.
    pub pointer: String,
    /// The JSON Schema keyword (or `x-` rule of ours) that failed.
    pub keyword: String,
    /// What the rule requires, without the offending value.
    pub message: String,
}

/// Why the validators could not be built; a defect of the embedded documents.
#[derive(Debug, thiserror::Error)]
#[error("schema v1 documents are inconsistent: {0}")]
pub struct BuildError(String);

struct Compiled {
    validators: Vec<(Entity, Validator)>,
    /// A person's identity block alone, for questions asked by identity.
    identity: Validator,
}

fn compile() -> Result<Compiled, BuildError> {
    let mut builder = Registry::new();
    for (name, _) in DOCUMENTS {
        let doc = document(name).ok_or_else(|| BuildError(format!("{name} is not JSON")))?;
        builder = builder
            .add(format!("{SCHEMA_BASE}{name}.schema.json"), doc)
            .map_err(|e| BuildError(e.to_string()))?;
    }
    let registry = builder.prepare().map_err(|e| BuildError(e.to_string()))?;
    let mut validators = Vec::new();
    for entity in Entity::ALL {
        let doc = entity
            .document()
            .ok_or_else(|| BuildError(format!("{} is not JSON", entity.name())))?;
        let validator = jsonschema::draft202012::options()
            .offline()
            .should_validate_formats(true)
            .with_registry(&registry)
            .build(&doc)
            .map_err(|e| BuildError(format!("{}: {e}", entity.name())))?;
        validators.push((entity, validator));
    }
    let identity_ref =
        serde_json::json!({"$ref": format!("{SCHEMA_BASE}person.schema.json#/$defs/identity")});
    let identity = jsonschema::draft202012::options()
        .offline()
        .should_validate_formats(true)
        .with_registry(&registry)
        .build(&identity_ref)
        .map_err(|e| BuildError(format!("identity: {e}")))?;
    Ok(Compiled {
        validators,
        identity,
    })
}

fn compiled() -> Result<&'static Compiled, &'static BuildError> {
    static COMPILED: OnceLock<Result<Compiled, BuildError>> = OnceLock::new();
    COMPILED.get_or_init(compile).as_ref()
}

/// Compiles every validator now, so that a defect shows at start-up rather than on the first
/// request.
pub fn warm_up() -> Result<(), &'static BuildError> {
    compiled().map(|_| ())
}

/// What a validator reports, as violations that name the pointer and keyword and never repeat
/// the value.
fn schema_violations(validator: &Validator, instance: &Value) -> Vec<SchemaViolation> {
    // Most instances are valid: answering that stops at nothing, where listing errors walks
    // every keyword to collect them.
    if validator.is_valid(instance) {
        return Vec::new();
    }
    validator
        .iter_errors(instance)
        .map(|error| SchemaViolation {
            pointer: error.instance_path().as_str().to_owned(),
            keyword: error.kind().keyword().to_owned(),
            message: error.masked().to_string(),
        })
        .collect()
}

fn build_violation(e: &BuildError) -> Vec<SchemaViolation> {
    vec![SchemaViolation {
        pointer: String::new(),
        keyword: "x-schema-build".into(),
        message: e.to_string(),
    }]
}

/// Validates an instance against the schema of `entity`, then against the rules JSON Schema
/// cannot say (check characters, capacity, date order). Returns every violation found.
pub fn validate(entity: Entity, instance: &Value) -> Result<(), Vec<SchemaViolation>> {
    let compiled = compiled().map_err(build_violation)?;
    let Some((_, validator)) = compiled.validators.iter().find(|(e, _)| *e == entity) else {
        return Err(vec![]);
    };
    let mut violations = schema_violations(validator, instance);
    if violations.is_empty() {
        semantic_rules(entity, instance, &mut violations);
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

/// Validates a person's identity block on its own (pointers relative to the block).
pub fn validate_identity(instance: &Value) -> Result<(), Vec<SchemaViolation>> {
    let compiled = compiled().map_err(build_violation)?;
    let mut violations = schema_violations(&compiled.identity, instance);
    if violations.is_empty() {
        person_rules(
            &serde_json::json!({ "identity": instance }),
            "",
            &mut violations,
        );
        for v in &mut violations {
            v.pointer = v.pointer.trim_start_matches("/identity").to_owned();
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

fn semantic_rules(entity: Entity, instance: &Value, out: &mut Vec<SchemaViolation>) {
    match entity {
        Entity::Person => person_rules(instance, "", out),
        Entity::Referral => {
            person_rules(&instance["person"], "/person", out);
            consent_rules(&instance["legal_basis"], "/legal_basis", out);
            if instance["sender"].is_string() && instance["sender"] == instance["receiver"] {
                out.push(violation(
                    "/receiver",
                    "x-distinct-parties",
                    "the receiver must be another ambito than the sender",
                ));
            }
        }
        Entity::Consent => consent_rules(instance, "", out),
        Entity::Episode | Entity::Distribution => {
            if instance.get("person").is_some() {
                person_rules(&instance["person"], "/person", out);
            }
            if let (Some(start), Some(end)) = (instance["start"].as_str(), instance["end"].as_str())
                && end < start
            {
                out.push(violation(
                    "/end",
                    "x-date-order",
                    "end must not precede start",
                ));
            }
        }
        Entity::Intervention => {
            if instance.get("person").is_some() {
                person_rules(&instance["person"], "/person", out);
            }
            let at = |f: &str| {
                instance[f].as_str().and_then(|t| {
                    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                        .ok()
                })
            };
            if let (Some(signalled), Some(reached)) = (at("signalled_at"), at("reached_at"))
                && reached < signalled
            {
                out.push(violation(
                    "/reached_at",
                    "x-date-order",
                    "reached_at must not precede signalled_at",
                ));
            }
        }
        Entity::Structure => {
            let capacity = &instance["capacity"];
            if let (Some(places), Some(free)) = (
                capacity["places"].as_u64(),
                capacity["free_places"].as_u64(),
            ) && free > places
            {
                out.push(violation(
                    "/capacity/free_places",
                    "x-capacity",
                    "free_places must not exceed places",
                ));
            }
        }
    }
}

fn person_rules(person: &Value, at: &str, out: &mut Vec<SchemaViolation>) {
    if let Some(cf) = person["identity"]["codice_fiscale"].as_str()
        && let Err(e) = codice_fiscale::normalise(cf)
    {
        out.push(violation(
            &format!("{at}/identity/codice_fiscale"),
            "x-codice-fiscale",
            &e.to_string(),
        ));
    }
}

fn consent_rules(consent: &Value, at: &str, out: &mut Vec<SchemaViolation>) {
    if let (Some(from), Some(until)) = (
        consent["valid_from"].as_str(),
        consent["valid_until"].as_str(),
    ) && until < from
    {
        out.push(violation(
            &format!("{at}/valid_until"),
            "x-date-order",
            "valid_until must not precede valid_from",
        ));
    }
}

fn violation(pointer: &str, keyword: &str, message: &str) -> SchemaViolation {
    SchemaViolation {
        pointer: pointer.to_owned(),
        keyword: keyword.to_owned(),
        message: message.to_owned(),
    }
}
