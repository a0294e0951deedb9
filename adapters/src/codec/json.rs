//! JSON documents and FHIR R4 bundles.
//!
//! Local paths are JSON pointers with two additions: `*` takes every element of an array, and
//! `name[key=value]` takes the element of the array `name` whose `key` is `value` (FHIR's
//! identifiers and extensions: `/Patient/identifier[system=http://hl7.it/sid/codiceFiscale]/value`).
//! A FHIR bundle is one record; its resources are reached by type (`/Patient/...`,
//! `/ServiceRequest/...`), the first resource of each type.

use super::{CodecError, Fields, LocalRecord, Location, Records, Unreadable, file_error};
use crate::mapping::{FieldRule, LocalType, MappingFile};
use serde_json::{Map, Value};
use std::path::Path;

enum Step<'a> {
    Key(String),
    All,
    Select {
        name: String,
        key: &'a str,
        value: &'a str,
    },
}

/// The segments of a path: split on `/` except inside `[...]`, so that a selector's value may
/// be a URL (`identifier[system=http://hl7.it/sid/codiceFiscale]`).
fn segments(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in path.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '/' if depth == 0 => {
                out.push(&path[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&path[start..]);
    out
}

fn steps(path: &str) -> Vec<Step<'_>> {
    segments(path)
        .into_iter()
        .skip(1)
        .map(|seg| {
            if seg == "*" {
                return Step::All;
            }
            if let Some(open) = seg.find('[')
                && seg.ends_with(']')
                && let Some((key, value)) = seg[open + 1..seg.len() - 1].split_once('=')
            {
                return Step::Select {
                    name: seg[..open].to_owned(),
                    key,
                    value,
                };
            }
            Step::Key(seg.replace("~1", "/").replace("~0", "~"))
        })
        .collect()
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Every scalar a path reaches (arrays at the end are spread).
pub fn values(doc: &Value, path: &str) -> Vec<String> {
    let mut current: Vec<&Value> = vec![doc];
    for step in steps(path) {
        let mut next = Vec::new();
        for v in current {
            match (&step, v) {
                (Step::Key(k), Value::Object(m)) => next.extend(m.get(k)),
                (Step::Key(k), Value::Array(a)) => {
                    next.extend(k.parse::<usize>().ok().and_then(|i| a.get(i)))
                }
                (Step::All, Value::Array(a)) => next.extend(a.iter()),
                (Step::Select { name, key, value }, Value::Object(m)) => {
                    if let Some(Value::Array(a)) = m.get(name) {
                        next.extend(
                            a.iter()
                                .filter(|e| e.get(*key).and_then(Value::as_str) == Some(*value)),
                        );
                    }
                }
                _ => {}
            }
        }
        current = next;
    }
    current
        .into_iter()
        .flat_map(|v| match v {
            Value::Array(a) => a.iter().filter_map(scalar).collect::<Vec<_>>(),
            other => scalar(other).into_iter().collect(),
        })
        .collect()
}

/// Sets a path, creating objects, arrays and selected elements on the way. Several values at a
/// path become an array.
pub fn set(doc: &mut Value, path: &str, vals: &[String], kind: Option<LocalType>) {
    set_at(doc, &steps(path), vals, kind);
}

/// A local value in the JSON type the local system uses.
fn typed_value(v: &str, kind: Option<LocalType>) -> Value {
    match kind {
        Some(LocalType::Boolean) => match v {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(v.to_owned()),
        },
        Some(LocalType::Number) => v
            .parse::<serde_json::Number>()
            .map(Value::Number)
            .unwrap_or_else(|_| Value::String(v.to_owned())),
        _ => Value::String(v.to_owned()),
    }
}

fn set_at(at: &mut Value, steps: &[Step<'_>], vals: &[String], kind: Option<LocalType>) {
    let Some((step, rest)) = steps.split_first() else {
        *at = match vals {
            [one] => typed_value(one, kind),
            many => Value::Array(many.iter().map(|v| typed_value(v, kind)).collect()),
        };
        return;
    };
    match step {
        Step::Key(k) => {
            if let (Ok(i), Value::Array(a)) = (k.parse::<usize>(), &mut *at) {
                while a.len() <= i {
                    a.push(Value::Null);
                }
                set_at(&mut a[i], rest, vals, kind);
                return;
            }
            if !at.is_object() {
                *at = Value::Object(Map::new());
            }
            let Value::Object(m) = at else { return };
            let next_is_index =
                matches!(rest.first(), Some(Step::Key(n)) if n.parse::<usize>().is_ok());
            let child = m.entry(k.clone()).or_insert(if next_is_index {
                Value::Array(Vec::new())
            } else {
                Value::Null
            });
            set_at(child, rest, vals, kind);
        }
        Step::All => {
            if rest.is_empty() {
                *at = Value::Array(vals.iter().map(|v| typed_value(v, kind)).collect());
                return;
            }
            // `/list/*/code`: one element per value, each with the rest of the path.
            if !at.is_array() {
                *at = Value::Array(Vec::new());
            }
            let Value::Array(a) = at else { return };
            for (i, v) in vals.iter().enumerate() {
                if a.len() <= i {
                    a.push(Value::Null);
                }
                set_at(&mut a[i], rest, std::slice::from_ref(v), kind);
            }
        }
        Step::Select { name, key, value } => {
            if !at.is_object() {
                *at = Value::Object(Map::new());
            }
            let Value::Object(m) = at else { return };
            let arr = m
                .entry(name.clone())
                .or_insert_with(|| Value::Array(Vec::new()));
            if !arr.is_array() {
                *arr = Value::Array(Vec::new());
            }
            let Value::Array(a) = arr else { return };
            let pos = match a
                .iter()
                .position(|e| e.get(*key).and_then(Value::as_str) == Some(*value))
            {
                Some(p) => p,
                None => {
                    let mut o = Map::new();
                    o.insert((*key).to_owned(), Value::String((*value).to_owned()));
                    a.push(Value::Object(o));
                    a.len() - 1
                }
            };
            set_at(&mut a[pos], rest, vals, kind);
        }
    }
}

/// A FHIR bundle seen as one record: each resource type at the top, the first of its kind.
fn bundle_view(bundle: &Value) -> Value {
    let mut view = Map::new();
    if let Some(Value::Array(entries)) = bundle.get("entry") {
        for e in entries {
            if let Some(r) = e.get("resource")
                && let Some(t) = r.get("resourceType").and_then(Value::as_str)
                && !view.contains_key(t)
            {
                view.insert(t.to_owned(), r.clone());
            }
        }
    }
    Value::Object(view)
}

fn record(doc: &Value, wanted: &[String], location: Location) -> LocalRecord {
    let fields = wanted
        .iter()
        .map(|w| (std::sync::Arc::from(w.as_str()), values(doc, w)))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    LocalRecord { location, fields }
}

pub fn read(
    mapping: &MappingFile,
    path: &Path,
    wanted: &[String],
    fhir: bool,
) -> Result<Records, CodecError> {
    let bytes = std::fs::read(path).map_err(|e| file_error(path, e))?;
    let enc = super::encoding(&mapping.codec.encoding).unwrap_or(encoding_rs::UTF_8);
    let text = enc.decode(&bytes).0.into_owned();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let wanted = wanted.to_vec();
    let pointer = mapping.codec.records.clone();
    let mut out: Vec<Result<LocalRecord, Unreadable>> = Vec::new();
    let documents: Vec<(Option<u64>, Result<Value, String>)> =
        match serde_json::from_str::<Value>(&text) {
            Ok(doc) => vec![(None, Ok(doc))],
            // Not one document: one per line (NDJSON).
            Err(_) => text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, l)| {
                    (
                        Some(i as u64 + 1),
                        serde_json::from_str(l).map_err(|e| e.to_string()),
                    )
                })
                .collect(),
        };
    let mut index = 0u64;
    for (line, doc) in documents {
        let doc = match doc {
            Ok(d) => d,
            Err(e) => {
                out.push(Err(Unreadable {
                    location: Location {
                        file: name.clone(),
                        line,
                        element: None,
                        index,
                    },
                    reason: format!("not JSON: {e}"),
                }));
                index += 1;
                continue;
            }
        };
        let items: Vec<(String, &Value)> = if pointer.is_empty() {
            vec![(String::new(), &doc)]
        } else {
            match doc.pointer(&pointer) {
                Some(Value::Array(a)) => a
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (format!("{pointer}/{i}"), v))
                    .collect(),
                _ => {
                    return Err(file_error(
                        path,
                        format!("no array of records at {pointer}"),
                    ));
                }
            }
        };
        for (element, item) in items {
            let location = Location {
                file: name.clone(),
                line,
                element: (!element.is_empty()).then_some(element),
                index,
            };
            index += 1;
            if fhir {
                if item.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
                    out.push(Err(Unreadable {
                        location,
                        reason: "not a FHIR Bundle".into(),
                    }));
                    continue;
                }
                out.push(Ok(record(&bundle_view(item), &wanted, location)));
            } else {
                out.push(Ok(record(item, &wanted, location)));
            }
        }
    }
    Ok(Box::new(out.into_iter()))
}

pub fn write(mapping: &MappingFile, rules: &[FieldRule], records: &[Fields], fhir: bool) -> String {
    let kind_of = |path: &str| {
        rules
            .iter()
            .find(|r| r.local.as_deref() == Some(path))
            .and_then(|r| r.local_type)
    };
    let docs: Vec<Value> = records
        .iter()
        .map(|fields| {
            let mut doc = Value::Object(Map::new());
            for (path, vals) in fields {
                if path.starts_with('/') {
                    set(&mut doc, path, vals, kind_of(path));
                }
            }
            if fhir { to_bundle(doc) } else { doc }
        })
        .collect();
    if mapping.codec.records.is_empty() {
        docs.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    } else {
        let mut doc = Value::Object(Map::new());
        crate::transform::set_pointer(&mut doc, &mapping.codec.records, Value::Array(docs));
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    }
}

fn to_bundle(view: Value) -> Value {
    let entries: Vec<Value> = match view {
        Value::Object(m) => m
            .into_iter()
            .map(|(t, mut r)| {
                if let Value::Object(o) = &mut r {
                    o.insert("resourceType".into(), Value::String(t));
                }
                serde_json::json!({ "resource": r })
            })
            .collect(),
        _ => Vec::new(),
    };
    serde_json::json!({ "resourceType": "Bundle", "type": "collection", "entry": entries })
}
