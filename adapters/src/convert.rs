//! A whole record, both ways. In: rejections first, then each field rule, then what the codice
//! fiscale says, then the common schema; every failure names the local field and the canonical
//! pointer, so that an integrator knows which column to fix. Out: each rule in reverse.

use crate::codec::{Fields, LocalRecord};
use crate::mapping::{Condition, FieldRule, MappingFile};
use crate::transform;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why a record cannot go to the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The local field at fault, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The canonical pointer at fault, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// The rule that failed: required, date, lookup, type, join, reject, schema keyword...
    pub rule: String,
    pub reason: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(field) = &self.field {
            write!(f, "field {field}: ")?;
        }
        if let Some(p) = &self.pointer {
            write!(f, "{p}: ")?;
        }
        write!(f, "{} ({})", self.reason, self.rule)
    }
}

/// Whether a rule's condition holds for a record.
pub fn holds(c: &Condition, record: &LocalRecord) -> bool {
    let value = record
        .fields
        .get_hinted(&c.local, &c.hint)
        .and_then(|v| v.first())
        .map(|s| s.trim())
        .filter(|s| !s.is_empty());
    if let Some(present) = c.present
        && present != value.is_some()
    {
        return false;
    }
    c.is.is_empty() || value.is_some_and(|v| c.is.iter().any(|x| x == v))
}

/// The canonical document of a local record, validated against the common schema.
pub fn to_canonical(
    m: &MappingFile,
    record: &LocalRecord,
    current_year: i32,
) -> Result<Value, Vec<Rejection>> {
    let mut rejections = Vec::new();
    for r in &m.rejects {
        if holds(&r.when, record) {
            rejections.push(Rejection {
                field: Some(r.when.local.clone()),
                pointer: None,
                rule: "reject".into(),
                reason: r.reason.clone(),
            });
        }
    }
    if !rejections.is_empty() {
        return Err(rejections);
    }
    let mut pairs: Vec<(&[String], Value)> = Vec::with_capacity(m.fields.len());
    for rule in m.order.iter().filter_map(|&i| m.fields.get(i)) {
        if rule.when.as_ref().is_some_and(|c| !holds(c, record)) {
            continue;
        }
        let targets = rule.canonical.pointers();
        let present = rule
            .local
            .as_ref()
            .and_then(|f| record.fields.get_hinted(f, &rule.hint))
            .filter(|v| v.iter().any(|s| !s.trim().is_empty()));
        // Constants and defaults are written in canonical form already.
        let values = match (present, rule.constant.as_ref().or(rule.default.as_ref())) {
            (Some(local), _) => transform::take_in(m, rule, local),
            (None, Some(fixed)) => match &rule.split {
                Some(sep) => Ok(smallvec::smallvec![Value::Array(
                    fixed
                        .split(sep.as_str())
                        .map(|s| Value::String(s.trim().to_owned()))
                        .collect(),
                )]),
                None => transform::canonical_text(rule, fixed).map(|v| smallvec::smallvec![v]),
            },
            (None, None) => {
                if rule.required {
                    rejections.push(Rejection {
                        field: rule.local.clone(),
                        pointer: targets.first().map(|p| (*p).to_owned()),
                        rule: "required".into(),
                        reason: "the value is missing".into(),
                    });
                }
                continue;
            }
        };
        match values {
            Ok(values) => {
                for (segments, v) in rule.segments.iter().zip(values) {
                    pairs.push((segments.as_slice(), v));
                }
            }
            Err(e) => rejections.push(Rejection {
                field: rule.local.clone(),
                pointer: targets.first().map(|p| (*p).to_owned()),
                rule: e.rule.into(),
                reason: e.message,
            }),
        }
    }
    if !rejections.is_empty() {
        return Err(rejections);
    }
    let mut doc = transform::build_document(&mut pairs);
    if let Some(cf) = &m.derive.codice_fiscale {
        crate::derive::from_codice_fiscale(&mut doc, cf, &m.derive.countries, current_year);
    }
    let entity = raccordo_schemas::Entity::from_name(&m.adapter.entity)
        .unwrap_or(raccordo_schemas::Entity::Referral);
    if let Err(violations) = raccordo_schemas::validate(entity, &doc) {
        return Err(violations
            .into_iter()
            .map(|v| {
                // "x is a required property" is reported at the parent: point at x itself, so
                // that the rule (and the local field) meant to fill it can be named.
                let pointer = match (v.keyword.as_str(), v.message.split('"').nth(1)) {
                    ("required", Some(name)) => format!("{}/{name}", v.pointer),
                    _ => v.pointer,
                };
                Rejection {
                    field: local_field_for(m, &pointer),
                    pointer: Some(pointer),
                    rule: v.keyword,
                    reason: v.message,
                }
            })
            .collect());
    }
    Ok(doc)
}

/// The local field whose rule writes at (or above) a canonical pointer.
pub fn local_field_for(m: &MappingFile, pointer: &str) -> Option<String> {
    m.fields
        .iter()
        .filter(|r| r.local.is_some())
        .filter_map(|r| {
            r.canonical
                .pointers()
                .iter()
                .filter(|p| pointer == p.as_str() || pointer.starts_with(&format!("{p}/")))
                .map(|p| (p.len(), r.local.clone()))
                .max_by_key(|(len, _)| *len)
        })
        .max_by_key(|(len, _)| *len)
        .and_then(|(_, l)| l)
}

/// The local fields of a canonical document, by `rules` in reverse. Rules without a local field
/// (constants) write nothing; a value without a local translation is an error naming the field.
pub fn to_local(
    m: &MappingFile,
    rules: &[FieldRule],
    doc: &Value,
) -> Result<Fields, Vec<Rejection>> {
    let mut fields = Fields::new();
    let mut problems = Vec::new();
    for rule in rules {
        let Some(local) = &rule.local else { continue };
        // Several rules may read one local field (SESSO for identity and profile): the first
        // that yields a value writes it.
        if fields.contains_key(local.as_str()) {
            continue;
        }
        let values: Vec<Option<&Value>> = rule
            .canonical
            .pointers()
            .iter()
            .map(|p| doc.pointer(p))
            .collect();
        match transform::give_out(m, rule, &values) {
            Ok(v) if v.is_empty() => {}
            Ok(v) => {
                fields.insert(local.as_str().into(), v);
            }
            Err(e) => problems.push(Rejection {
                field: Some(local.clone()),
                pointer: rule.canonical.pointers().first().map(|p| (*p).to_owned()),
                rule: e.rule.into(),
                reason: e.message,
            }),
        }
    }
    if let Some(id) = doc.get("id").and_then(Value::as_str)
        && !fields.contains_key(m.record.id.as_str())
    {
        fields.insert(m.record.id.as_str().into(), vec![id.to_owned()]);
    }
    if problems.is_empty() {
        Ok(fields)
    } else {
        Err(problems)
    }
}
