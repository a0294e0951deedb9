//! One field, both ways. The way in turns local text into a canonical JSON value (trim, case,
//! dates, lookups, lists, types); the way out turns it back, so that a round trip can show
//! exactly which fields do not come back equal.

use crate::mapping::{Case, FieldRule, MappingFile, ValueType};
use serde_json::Value;
use time::format_description::OwnedFormatItem;

/// Why a local value could not be taken in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub rule: &'static str,
    pub message: String,
}

fn err(rule: &'static str, message: String) -> FieldError {
    FieldError { rule, message }
}

pub fn parse_offset(s: &str) -> Option<time::UtcOffset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    // Unsigned, then narrowed: `--128:00` must not negate i8::MIN.
    let h = i8::try_from(h.parse::<u8>().ok()?).ok()?;
    let m = i8::try_from(m.parse::<u8>().ok()?).ok()?;
    time::UtcOffset::from_hms(sign * h, sign * m, 0).ok()
}

fn apply_case(s: String, case: Option<Case>) -> String {
    match case {
        None => s,
        Some(Case::Upper) => s.to_uppercase(),
        Some(Case::Lower) => s.to_lowercase(),
        Some(Case::Title) => s
            .split(' ')
            .map(|w| {
                let lower = w.to_lowercase();
                let mut chars = lower.chars();
                match chars.next() {
                    Some(first) => first.to_uppercase().chain(chars).collect(),
                    None => String::new(),
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

thread_local! {
    /// Parsed date formats: a mapping names a handful, and parsing one per value was a tenth of
    /// the conversion time. Each distinct format is parsed once per thread and kept for the
    /// life of the process (a handful of small values).
    static FORMATS: std::cell::RefCell<std::collections::HashMap<String, &'static OwnedFormatItem>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

fn format(fmt: &str) -> Result<&'static OwnedFormatItem, FieldError> {
    FORMATS.with(|cache| {
        if let Some(f) = cache.borrow().get(fmt) {
            return Ok(*f);
        }
        let parsed: &'static OwnedFormatItem = Box::leak(Box::new(
            time::format_description::parse_owned::<2>(fmt)
                .map_err(|e| err("mapping", format!("format {fmt:?}: {e}")))?,
        ));
        cache.borrow_mut().insert(fmt.to_owned(), parsed);
        Ok(parsed)
    })
}

/// One scalar value, local text -> canonical.
fn scalar_in(m: &MappingFile, rule: &FieldRule, raw: &str) -> Result<Value, FieldError> {
    use std::borrow::Cow;
    // Borrowed until a step must change it: most values are copied once, into the document.
    let mut s: Cow<'_, str> = Cow::Borrowed(if rule.trim { raw.trim() } else { raw });
    if let Some(fmt) = &rule.date {
        let d = time::Date::parse(&s, format(fmt)?)
            .map_err(|_| err("date", format!("{s:?} is not a date in the format {fmt}")))?;
        s = Cow::Owned(d.to_string());
    } else if let Some(fmt) = &rule.datetime {
        let items = format(fmt)?;
        let at = match time::OffsetDateTime::parse(&s, items) {
            Ok(t) => t,
            Err(_) => {
                let local = time::PrimitiveDateTime::parse(&s, items).map_err(|_| {
                    err(
                        "datetime",
                        format!("{s:?} is not a date and time in the format {fmt}"),
                    )
                })?;
                let offset = rule
                    .utc_offset
                    .as_deref()
                    .and_then(parse_offset)
                    .unwrap_or(time::UtcOffset::UTC);
                local.assume_offset(offset)
            }
        };
        s = Cow::Owned(
            at.format(&time::format_description::well_known::Rfc3339)
                .map_err(|e| err("datetime", e.to_string()))?,
        );
    }
    if rule.case.is_some() {
        s = Cow::Owned(apply_case(s.into_owned(), rule.case));
    }
    if let Some(table) = &rule.lookup {
        let Some(entries) = m.lookups.get(table) else {
            return Err(err("mapping", format!("lookup {table:?} is missing")));
        };
        let canonical = entries.get(s.as_ref()).ok_or_else(|| {
            err(
                "lookup",
                format!("local code {s:?} has no translation in lookup {table:?}"),
            )
        })?;
        s = Cow::Borrowed(canonical.as_str());
    }
    match rule.value_type {
        None | Some(ValueType::String) => Ok(Value::String(s.into_owned())),
        t => typed(&s, t, m.codec.decimal_comma),
    }
}

/// A constant or default from the mapping (canonical form), with the rule's type.
pub fn canonical_text(rule: &FieldRule, s: &str) -> Result<Value, FieldError> {
    typed(s, rule.value_type, false)
}

fn typed(s: &str, t: Option<ValueType>, decimal_comma: bool) -> Result<Value, FieldError> {
    Ok(match t {
        None | Some(ValueType::String) => Value::String(s.to_owned()),
        Some(ValueType::Integer) => Value::from(
            s.parse::<i64>()
                .map_err(|_| err("type", format!("{s:?} is not a whole number")))?,
        ),
        Some(ValueType::Number) => {
            let text = if decimal_comma {
                s.replace('.', "").replace(',', ".")
            } else {
                s.to_owned()
            };
            let n: f64 = text
                .parse()
                .map_err(|_| err("type", format!("{s:?} is not a number")))?;
            serde_json::Number::from_f64(n)
                .map(Value::Number)
                .ok_or_else(|| err("type", format!("{s:?} is not a finite number")))?
        }
        Some(ValueType::Boolean) => match s {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => {
                return Err(err(
                    "type",
                    format!("{s:?} is not true or false (translate it with a lookup)"),
                ));
            }
        },
    })
}

/// One value per target pointer; nearly always one, kept inline.
pub type TakenIn = smallvec::SmallVec<[Value; 1]>;

/// The canonical values of a rule, one per target pointer, from the local values (several when
/// the local side repeats an element or holds an array).
pub fn take_in(m: &MappingFile, rule: &FieldRule, local: &[String]) -> Result<TakenIn, FieldError> {
    let targets = rule.canonical.pointers();
    if let Some(sep) = &rule.join {
        let raw = local.first().map(String::as_str).unwrap_or("");
        let raw = if rule.trim { raw.trim() } else { raw };
        let parts: Vec<&str> = raw.splitn(targets.len(), sep.as_str()).collect();
        if parts.len() != targets.len() {
            return Err(err(
                "join",
                format!("expected {} parts separated by {sep:?}", targets.len()),
            ));
        }
        return parts.iter().map(|p| scalar_in(m, rule, p)).collect();
    }
    let value = if let Some(sep) = &rule.split {
        Value::Array(
            local
                .iter()
                .flat_map(|v| v.split(sep.as_str()))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|i| scalar_in(m, rule, i))
                .collect::<Result<_, _>>()?,
        )
    } else if local.len() > 1
        || targets
            .first()
            .is_some_and(|t| m.list_targets.contains(t.as_str()))
    {
        // Repeated local values, or a single one where the schema holds a list.
        Value::Array(
            local
                .iter()
                .map(|i| scalar_in(m, rule, i))
                .collect::<Result<_, _>>()?,
        )
    } else {
        scalar_in(m, rule, local.first().map(String::as_str).unwrap_or(""))?
    };
    Ok(smallvec::smallvec![value])
}

/// One scalar canonical value -> local text.
fn scalar_out(m: &MappingFile, rule: &FieldRule, v: &Value) -> Result<String, FieldError> {
    let mut s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if m.codec.decimal_comma => n.to_string().replace('.', ","),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => {
            return Err(err(
                "type",
                format!("cannot write {other} as one local value"),
            ));
        }
    };
    if let Some(table) = &rule.lookup {
        let entries = m
            .lookups
            .get(table)
            .ok_or_else(|| err("mapping", format!("lookup {table:?} is missing")))?;
        // The first local code that translates to this canonical code, in the table's order.
        s = entries
            .iter()
            .find(|(_, canonical)| **canonical == s)
            .map(|(local, _)| local.clone())
            .ok_or_else(|| {
                err(
                    "lookup",
                    format!("canonical code {s:?} has no local code in lookup {table:?}"),
                )
            })?;
    }
    s = apply_case(s, rule.local_case);
    if let Some(fmt) = &rule.date {
        let d = time::Date::parse(
            &s,
            &time::macros::format_description!("[year]-[month]-[day]"),
        )
        .map_err(|_| err("date", format!("{s:?} is not a full date")))?;
        s = d
            .format(format(fmt)?)
            .map_err(|e| err("date", e.to_string()))?;
    } else if let Some(fmt) = &rule.datetime {
        let mut t = time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
            .map_err(|_| err("datetime", format!("{s:?} is not an RFC 3339 date-time")))?;
        if let Some(o) = rule.utc_offset.as_deref().and_then(parse_offset) {
            // 9999-12-31T23:30:00Z has no date at +01:00: to_offset would panic.
            t = t.checked_to_offset(o).ok_or_else(|| {
                err(
                    "datetime",
                    format!("{s:?} has no date at the offset {o} (past year 9999)"),
                )
            })?;
        }
        s = t
            .format(format(fmt)?)
            .map_err(|e| err("datetime", e.to_string()))?;
    }
    Ok(s)
}

/// The local values of a rule from the canonical values at its targets (`None` where absent).
pub fn give_out(
    m: &MappingFile,
    rule: &FieldRule,
    canonical: &[Option<&Value>],
) -> Result<Vec<String>, FieldError> {
    if let Some(sep) = &rule.join {
        let parts = canonical
            .iter()
            .map(|v| v.map(|v| scalar_out(m, rule, v)).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        if parts.iter().all(Option::is_none) {
            return Ok(Vec::new());
        }
        return Ok(vec![
            parts.into_iter().flatten().collect::<Vec<_>>().join(sep),
        ]);
    }
    match canonical.first().copied().flatten() {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            let values = items
                .iter()
                .map(|i| scalar_out(m, rule, i))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(match &rule.split {
                Some(sep) => vec![values.join(sep)],
                None => values,
            })
        }
        Some(v) => Ok(vec![scalar_out(m, rule, v)?]),
    }
}

/// Sets `value` at a JSON pointer, creating objects on the way.
pub fn set_pointer(doc: &mut Value, pointer: &str, value: Value) {
    let mut at = doc;
    let mut parts = pointer.split('/').skip(1).peekable();
    while let Some(raw) = parts.next() {
        let part = if raw.contains('~') {
            std::borrow::Cow::Owned(raw.replace("~1", "/").replace("~0", "~"))
        } else {
            std::borrow::Cow::Borrowed(raw)
        };
        if !at.is_object() {
            *at = Value::Object(serde_json::Map::new());
        }
        let Value::Object(map) = at else { return };
        if parts.peek().is_none() {
            map.insert(part.into_owned(), value);
            return;
        }
        if !map.contains_key(part.as_ref()) {
            map.insert(part.to_string(), Value::Object(serde_json::Map::new()));
        }
        let Some(next) = map.get_mut(part.as_ref()) else {
            return;
        };
        at = next;
    }
}

/// Builds a document from (pointer segments, value) pairs in one pass: with the pairs sorted,
/// each object's keys arrive together and each map is built once, in bulk, instead of walking
/// from the root for every value. A later pair for the same pointer wins, as successive sets
/// would.
pub fn build_document(pairs: &mut [(&[String], Value)]) -> Value {
    if !pairs.is_sorted_by(|a, b| a.0 <= b.0) {
        pairs.sort_by(|a, b| a.0.cmp(b.0));
    }
    build_level(pairs, 0)
}

fn build_level(items: &mut [(&[String], Value)], depth: usize) -> Value {
    let mut entries: Vec<(String, Value)> = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let Some(key) = items[i].0.get(depth) else {
            i += 1;
            continue;
        };
        let mut j = i + 1;
        while j < items.len() && items[j].0.get(depth) == Some(key) {
            j += 1;
        }
        let group = &mut items[i..j];
        // Sorted, a pointer ending here comes before the longer ones beneath it.
        let value = match group.iter().position(|(s, _)| s.len() > depth + 1) {
            None => group
                .last_mut()
                .map(|(_, v)| std::mem::take(v))
                .unwrap_or_default(),
            Some(first_nested) => build_level(&mut group[first_nested..], depth + 1),
        };
        entries.push((key.clone(), value));
        i = j;
    }
    // Keys arrive sorted: the map is built in bulk.
    Value::Object(entries.into_iter().collect())
}

/// The unescaped segments of a JSON pointer.
pub fn pointer_segments(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_offset_is_a_sign_and_unsigned_hours_and_minutes() {
        let at = |h, m| time::UtcOffset::from_hms(h, m, 0).ok();
        assert_eq!(super::parse_offset("+01:00"), at(1, 0));
        assert_eq!(super::parse_offset("-05:30"), at(-5, -30));
        // Seen while writing the mapping-file fuzz target: `-` then `-128` negated i8::MIN, an
        // overflow panic in debug builds (the fuzz build has no overflow checks, so it wrapped).
        for bad in [
            "--128:00", "+-1:00", "-00:-128", "+128:00", "+01", "", "01:00",
        ] {
            assert_eq!(super::parse_offset(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_date_time_past_year_9999_at_the_local_offset_is_refused_not_a_panic() {
        // Same class as the intervention the json_ingest fuzz target was written around: a
        // canonical date-time from another ambito, written out at Prato's +01:00.
        let m = crate::MappingFile::parse(crate::bench::PRATO_MAPPING, "prato").unwrap();
        let rule = m
            .fields
            .iter()
            .find(|f| f.datetime.is_some() && f.utc_offset.is_some())
            .unwrap();
        let late = serde_json::json!("9999-12-31T23:30:00Z");
        assert!(super::give_out(&m, rule, &[Some(&late)]).is_err());
        let fine = serde_json::json!("2026-01-15T07:40:00Z");
        assert_eq!(
            super::give_out(&m, rule, &[Some(&fine)]).unwrap(),
            vec!["15/01/2026 08:40".to_owned()]
        );
    }
}
