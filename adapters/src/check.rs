//! `raccordo adapter check`: what would happen to a sample export, before anything is sent.
//! Records that pass and fail (with where and why), required canonical fields the mapping
//! never fills, local codes without a translation, and the round trip local -> canonical ->
//! local with every field that does not come back equal.

use crate::codec::{self, CodecError};
use crate::convert::{self, Rejection};
use crate::mapping::MappingFile;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Debug, Serialize)]
pub struct Failure {
    pub location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    pub rejections: Vec<Rejection>,
}

#[derive(Debug, Serialize)]
pub struct Difference {
    pub location: String,
    pub field: String,
    pub local: String,
    pub back: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub mapping: String,
    pub sample: String,
    pub records: u64,
    pub passed: u64,
    pub failed: Vec<Failure>,
    /// Rejections counted by rule.
    pub by_rule: BTreeMap<String, u64>,
    /// Canonical fields the schema requires that no rule fills.
    pub required_not_mapped: Vec<String>,
    /// Local field -> local values its lookup cannot translate.
    pub untranslated: BTreeMap<String, BTreeSet<String>>,
    /// Fields of passing records that do not come back equal.
    pub round_trip: Vec<Difference>,
    /// Lookup -> canonical codes it cannot write back: an inbound referral using one of them
    /// cannot be written in the local format and waits in the quarantine. Not an error for
    /// what the ambito sends; complete the table before receiving.
    pub inbound_gaps: BTreeMap<String, Vec<String>>,
    /// With `--documents`: the canonical document of each passing record, to see what the
    /// mapping builds (derived values included).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<Value>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.required_not_mapped.is_empty() && self.round_trip.is_empty()
    }

    /// The report for people: one line per finding.
    pub fn text(&self) -> String {
        let mut out = format!(
            "{}: {} record(s), {} pass, {} fail\n",
            self.sample,
            self.records,
            self.passed,
            self.failed.len()
        );
        for f in &self.failed {
            for r in &f.rejections {
                out.push_str(&format!("  FAIL {}: {r}\n", f.location));
            }
        }
        for p in &self.required_not_mapped {
            out.push_str(&format!("  UNMAPPED required canonical field {p}\n"));
        }
        for (field, values) in &self.untranslated {
            let list: Vec<&str> = values.iter().map(String::as_str).collect();
            out.push_str(&format!("  UNTRANSLATED {field}: {}\n", list.join(", ")));
        }
        for (lookup, codes) in &self.inbound_gaps {
            out.push_str(&format!(
                "  INBOUND lookup {lookup} has no local code for: {}\n",
                codes.join(", ")
            ));
        }
        for d in &self.round_trip {
            out.push_str(&format!(
                "  ROUND TRIP {} field {}: {:?} came back as {:?}\n",
                d.location, d.field, d.local, d.back
            ));
        }
        out
    }
}

pub fn check(
    m: &MappingFile,
    mapping_name: &str,
    sample: &Path,
    current_year: i32,
) -> Result<Report, CodecError> {
    check_with(m, mapping_name, sample, current_year, false)
}

/// `check`, keeping the canonical documents when `documents` is set.
pub fn check_with(
    m: &MappingFile,
    mapping_name: &str,
    sample: &Path,
    current_year: i32,
    documents: bool,
) -> Result<Report, CodecError> {
    let mut report = Report {
        mapping: mapping_name.to_owned(),
        sample: sample.display().to_string(),
        records: 0,
        passed: 0,
        failed: Vec::new(),
        by_rule: BTreeMap::new(),
        required_not_mapped: required_not_mapped(m),
        untranslated: BTreeMap::new(),
        round_trip: Vec::new(),
        documents: Vec::new(),
        inbound_gaps: inbound_gaps(m),
    };
    for item in codec::read(m, sample)? {
        report.records += 1;
        let record = match item {
            Ok(r) => r,
            Err(u) => {
                *report.by_rule.entry("unreadable".into()).or_default() += 1;
                report.failed.push(Failure {
                    location: u.location.to_string(),
                    record_id: None,
                    rejections: vec![Rejection {
                        field: None,
                        pointer: None,
                        rule: "unreadable".into(),
                        reason: u.reason,
                    }],
                });
                continue;
            }
        };
        note_untranslated(m, &record, &mut report.untranslated);
        match convert::to_canonical(m, &record, current_year) {
            Ok(doc) => {
                report.passed += 1;
                round_trip(m, &record, &doc, &mut report.round_trip);
                if documents {
                    report.documents.push(doc);
                }
            }
            Err(rejections) => {
                for r in &rejections {
                    *report.by_rule.entry(r.rule.clone()).or_default() += 1;
                }
                report.failed.push(Failure {
                    location: record.location.to_string(),
                    record_id: record.value(&m.record.id).map(str::to_owned),
                    rejections,
                });
            }
        }
    }
    Ok(report)
}

fn note_untranslated(
    m: &MappingFile,
    record: &codec::LocalRecord,
    out: &mut BTreeMap<String, BTreeSet<String>>,
) {
    for rule in &m.fields {
        let (Some(field), Some(table)) = (&rule.local, &rule.lookup) else {
            continue;
        };
        if rule
            .when
            .as_ref()
            .is_some_and(|c| !convert::holds(c, record))
        {
            continue;
        }
        let Some(entries) = m.lookups.get(table) else {
            continue;
        };
        for raw in record.fields.get(field.as_str()).into_iter().flatten() {
            let items: Vec<&str> = match &rule.split {
                Some(sep) => raw.split(sep.as_str()).collect(),
                None => vec![raw.as_str()],
            };
            for item in items.into_iter().map(str::trim).filter(|s| !s.is_empty()) {
                let key = match rule.case {
                    Some(crate::mapping::Case::Upper) => item.to_uppercase(),
                    Some(crate::mapping::Case::Lower) => item.to_lowercase(),
                    _ => item.to_owned(),
                };
                if !entries.contains_key(&key) {
                    out.entry(field.clone())
                        .or_default()
                        .insert(item.to_owned());
                }
            }
        }
    }
}

fn round_trip(
    m: &MappingFile,
    record: &codec::LocalRecord,
    doc: &Value,
    out: &mut Vec<Difference>,
) {
    let back = match convert::to_local(m, &m.fields, doc) {
        Ok(b) => b,
        Err(problems) => {
            for p in problems {
                out.push(Difference {
                    location: record.location.to_string(),
                    field: p.field.unwrap_or_default(),
                    local: String::new(),
                    back: format!("not writable: {}", p.reason),
                });
            }
            return;
        }
    };
    // Only the fields a rule read for this record: a conditional rule that did not apply
    // neither took a field in nor owes it back.
    let mut fields: Vec<&String> = m
        .fields
        .iter()
        .filter(|r| r.when.as_ref().is_none_or(|c| convert::holds(c, record)))
        .filter_map(|r| r.local.as_ref())
        .collect();
    fields.sort();
    fields.dedup();
    for field in fields {
        let norm = |v: Option<&codec::Values>| -> String {
            v.map(|v| v.iter().map(|s| s.trim()).collect::<Vec<_>>().join("|"))
                .unwrap_or_default()
        };
        let original = norm(record.fields.get(field.as_str()));
        let returned = norm(back.get(field.as_str()));
        // A field empty locally that comes back filled (derived from the codice fiscale, a
        // default) lost nothing; only what was there and changed is a difference.
        if !original.is_empty() && original != returned {
            out.push(Difference {
                location: record.location.to_string(),
                field: field.clone(),
                local: original,
                back: returned,
            });
        }
    }
}

/// For each lookup used on a code-list field, the codes of that list it cannot write back.
pub fn inbound_gaps(m: &MappingFile) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Some(entity) = raccordo_schemas::Entity::from_name(&m.adapter.entity) else {
        return out;
    };
    for rule in &m.fields {
        let (Some(table), Some(_)) = (&rule.lookup, &rule.local) else {
            continue;
        };
        let Some(entries) = m.lookups.get(table) else {
            continue;
        };
        for pointer in rule.canonical.pointers() {
            let Some(codes) = crate::schema_shape::codes_at(entity, pointer) else {
                continue;
            };
            let missing: Vec<String> = codes
                .into_iter()
                .filter(|c| !entries.values().any(|v| v == c))
                .collect();
            if !missing.is_empty() {
                let gaps = out.entry(table.clone()).or_default();
                for c in missing {
                    if !gaps.contains(&c) {
                        gaps.push(c);
                    }
                }
            }
        }
    }
    out
}

/// Pointers the entity's schema requires (following `$ref`s across the schema documents),
/// minus read-only ones, that no rule's target covers.
pub fn required_not_mapped(m: &MappingFile) -> Vec<String> {
    let Some(entity) = raccordo_schemas::Entity::from_name(&m.adapter.entity) else {
        return Vec::new();
    };
    let Some(root) = entity.document() else {
        return Vec::new();
    };
    let mut required = Vec::new();
    crate::schema_shape::required(&root, &root, "", &mut required, 0);
    let targets: Vec<&str> = m
        .fields
        .iter()
        .flat_map(|r| r.canonical.pointers())
        .map(String::as_str)
        .collect();
    let derived: Vec<String> = match &m.derive.codice_fiscale {
        Some(cf) => {
            let parent = cf.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
            ["birth_date", "sex", "country_of_birth"]
                .iter()
                .map(|f| format!("{parent}/{f}"))
                .collect()
        }
        None => Vec::new(),
    };
    required
        .into_iter()
        .filter(|p| {
            !targets.iter().any(|t| {
                t == p || t.starts_with(&format!("{p}/")) || p.starts_with(&format!("{t}/"))
            }) && !derived.contains(p)
        })
        .collect()
}
