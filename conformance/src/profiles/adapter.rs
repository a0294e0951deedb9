//! Profile `adapter`: a mapping file with a clean and a dirty sample export. Everything it
//! produces conforms to the schema, every code translates both ways, the round trip loses
//! nothing, bad records are refused with a reason, and identities stay in the identity block.

use super::run_case;
use crate::model::{Case, Finding, Level, TestResult};
use raccordo_adapters::MappingFile;
use raccordo_adapters::{check, codec};
use serde_json::Value;
use std::path::Path;

pub const CASES: &[Case] = &[
    Case {
        id: "ADP-MAP-001",
        group: "mapping",
        title: "The mapping file loads and is consistent",
        requirement: "onboarding §2-3",
        level: Level::Must,
    },
    Case {
        id: "ADP-SCHEMA-001",
        group: "schema",
        title: "Every clean record becomes a document valid against schema v1",
        requirement: "schemas/json, issue 5",
        level: Level::Must,
    },
    Case {
        id: "ADP-REQ-001",
        group: "schema",
        title: "Every field the schema requires is mapped",
        requirement: "onboarding §2",
        level: Level::Must,
    },
    Case {
        id: "ADP-LOST-001",
        group: "round-trip",
        title: "Every column of the export is read by some rule",
        requirement: "issue 5: losing nothing",
        level: Level::Must,
    },
    Case {
        id: "ADP-RT-001",
        group: "round-trip",
        title: "Clean records come back field for field (local -> canonical -> local)",
        requirement: "onboarding §4",
        level: Level::Must,
    },
    Case {
        id: "ADP-CODES-001",
        group: "codes",
        title: "Every local code in the samples has a translation",
        requirement: "onboarding §4",
        level: Level::Must,
    },
    Case {
        id: "ADP-CODES-002",
        group: "codes",
        title: "Every code of the common code lists can be written back locally",
        requirement: "onboarding §4 (INBOUND)",
        level: Level::Should,
    },
    Case {
        id: "ADP-QUAR-001",
        group: "quarantine",
        title: "Every dirty record is refused with a rule and a reason",
        requirement: "onboarding §6",
        level: Level::Must,
    },
    Case {
        id: "ADP-PRIV-001",
        group: "privacy",
        title: "Names and codice fiscale never reach fields shared without sealing (outside identity, reason, local case reference)",
        requirement: "ARCHITECTURE invariant 2",
        level: Level::Must,
    },
];

fn strings(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => out.push((at.to_owned(), s.clone())),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| strings(x, &format!("{at}/{i}"), out)),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, x)| strings(x, &format!("{at}/{k}"), out)),
        _ => {}
    }
}

/// Runs the plan. `current_year` is passed in, as everywhere in the core.
/// The samples of an adapter run: a clean export, and optionally a dirty one with the
/// rejections it must produce (`expected.json`: record ids, rules and fields); without them every
/// dirty record must be refused.
pub struct Samples<'a> {
    pub clean: &'a Path,
    pub dirty: Option<&'a Path>,
    pub expected: Option<&'a Path>,
}

pub fn run(
    mapping: &Path,
    samples: &Samples<'_>,
    only: Option<&str>,
    current_year: i32,
) -> Vec<TestResult> {
    let (clean, dirty) = (samples.clean, samples.dirty);
    let mut results = Vec::new();
    let loaded = MappingFile::load(mapping);
    run_case(&CASES[0], only, &mut results, |_| match &loaded {
        Ok(_) => Finding::Holds,
        Err(e) => Finding::Broken(e.to_string()),
    });
    let Ok(m) = loaded else {
        return results;
    };
    let name = mapping.display().to_string();
    let report = check::check_with(&m, &name, clean, current_year, true);
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            for case in &CASES[1..] {
                run_case(case, only, &mut results, |_| {
                    Finding::CouldNotRun(e.to_string())
                });
            }
            return results;
        }
    };
    run_case(&CASES[1], only, &mut results, |_| {
        if report.records == 0 {
            return Finding::CouldNotRun("the clean sample has no records".into());
        }
        match report.failed.first() {
            None => Finding::Holds,
            Some(f) => Finding::Broken(format!(
                "{} of {} clean records fail; first: {}: {}",
                report.failed.len(),
                report.records,
                f.location,
                f.rejections
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        }
    });
    run_case(&CASES[2], only, &mut results, |_| {
        if report.required_not_mapped.is_empty() {
            Finding::Holds
        } else {
            Finding::Broken(format!(
                "not mapped: {}",
                report.required_not_mapped.join(", ")
            ))
        }
    });
    run_case(&CASES[3], only, &mut results, |_| {
        let read = m.local_fields();
        let mut unread: Vec<String> = Vec::new();
        if let Ok(records) = codec::read(&m, clean) {
            for r in records.flatten() {
                for (field, values) in &r.fields {
                    if values.iter().any(|v| !v.trim().is_empty())
                        && !read.iter().any(|f| f.as_str() == &**field)
                        && !unread.iter().any(|u| u.as_str() == &**field)
                    {
                        unread.push(field.to_string());
                    }
                }
            }
        }
        if unread.is_empty() {
            Finding::Holds
        } else {
            Finding::Broken(format!(
                "columns with data that no rule reads: {}",
                unread.join(", ")
            ))
        }
    });
    run_case(&CASES[4], only, &mut results, |_| {
        match report.round_trip.first() {
            None => Finding::Holds,
            Some(d) => Finding::Broken(format!(
                "{} differences; first: {} field {}: {:?} came back as {:?}",
                report.round_trip.len(),
                d.location,
                d.field,
                d.local,
                d.back
            )),
        }
    });
    run_case(&CASES[5], only, &mut results, |_| {
        if report.untranslated.is_empty() {
            Finding::Holds
        } else {
            Finding::Broken(
                report
                    .untranslated
                    .iter()
                    .map(|(f, v)| {
                        format!("{f}: {}", v.iter().cloned().collect::<Vec<_>>().join(", "))
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        }
    });
    run_case(&CASES[6], only, &mut results, |_| {
        if report.inbound_gaps.is_empty() {
            Finding::Holds
        } else {
            Finding::Broken(
                report
                    .inbound_gaps
                    .iter()
                    .map(|(l, c)| format!("lookup {l}: {}", c.join(", ")))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        }
    });
    run_case(&CASES[7], only, &mut results, |_| {
        let Some(dirty) = dirty else {
            return Finding::NotApplicable("no dirty sample given (--dirty)".into());
        };
        let r = match check::check(&m, &name, dirty, current_year) {
            Err(e) => return Finding::CouldNotRun(e.to_string()),
            Ok(r) if r.records == 0 => {
                return Finding::CouldNotRun("the dirty sample has no records".into());
            }
            Ok(r) => r,
        };
        if let Some(f) = r
            .failed
            .iter()
            .find(|f| f.rejections.iter().any(|x| x.reason.trim().is_empty()))
        {
            return Finding::Broken(format!("{}: refused without a reason", f.location));
        }
        let Some(expected) = samples.expected else {
            return if r.passed > 0 {
                Finding::Broken(format!(
                    "{} of {} dirty records were accepted",
                    r.passed, r.records
                ))
            } else {
                Finding::Holds
            };
        };
        let want: Value = match std::fs::read(expected)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => return Finding::CouldNotRun(format!("{}: {e}", expected.display())),
        };
        let got: Vec<(Option<String>, String, Option<String>)> = r
            .failed
            .iter()
            .flat_map(|f| {
                f.rejections
                    .iter()
                    .map(move |x| (f.record_id.clone(), x.rule.clone(), x.field.clone()))
            })
            .collect();
        let listed: Vec<(Option<String>, String, Option<String>)> = want["dirty"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|d| {
                        (
                            d["record_id"].as_str().map(str::to_owned),
                            d["rule"].as_str().unwrap_or("").to_owned(),
                            d["field"].as_str().map(str::to_owned),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        match listed.iter().find(|l| !got.contains(l)) {
            Some((id, rule, field)) => Finding::Broken(format!(
                "record {} was not refused by rule {rule} on field {}",
                id.as_deref().unwrap_or("(unreadable)"),
                field.as_deref().unwrap_or("-")
            )),
            None if got.len() > listed.len() => Finding::Broken(format!(
                "{} refusals beyond the {} expected",
                got.len() - listed.len(),
                listed.len()
            )),
            None => Finding::Holds,
        }
    });
    run_case(&CASES[8], only, &mut results, |_| {
        for doc in &report.documents {
            // The identifying values (codes like sex or country are not identifiers alone).
            let mut identity = Vec::new();
            for field in ["codice_fiscale", "given_names", "family_name", "aliases"] {
                if let Some(v) = doc.pointer(&format!("/person/identity/{field}")) {
                    strings(v, &format!("/person/identity/{field}"), &mut identity);
                }
            }
            let mut elsewhere = Vec::new();
            strings(doc, "", &mut elsewhere);
            for (at, text) in &elsewhere {
                // Identity, the free-text reason and the local case reference are sealed
                // together in the gateway's vault; everything else is shared pseudonymously.
                if at.starts_with("/person/identity") || at == "/reason" || at == "/local_case_ref"
                {
                    continue;
                }
                let lower = text.to_lowercase();
                if let Some((from, _)) = identity
                    .iter()
                    .find(|(_, v)| v.chars().count() >= 4 && lower.contains(&v.to_lowercase()))
                {
                    // The values themselves are not repeated in the report.
                    return Finding::Broken(format!("a value of {from} appears in {at}"));
                }
            }
        }
        Finding::Holds
    });
    // Messages may quote local values (a malformed date, say): the report keeps the rule and
    // the place, never the value.
    for r in &mut results {
        r.message = without_values(&r.message);
    }
    results
}

/// Replaces every quoted value in a message with `"…"`.
fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        if c == '"' {
            if !quoted {
                out.push_str("\"…");
            } else {
                out.push('"');
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    crate::redact::redact(&out, &[])
}
