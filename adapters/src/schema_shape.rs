//! What the common schema says about a canonical pointer: whether it holds a list, and which
//! fields are required. Read from the schema documents themselves (following `$ref`s across
//! them), so that mappings need not repeat it.

use serde_json::Value;

fn resolve(doc: &Value, schema: &Value) -> Option<(Value, Value)> {
    let r = schema.get("$ref")?.as_str()?;
    let (file, fragment) = r.split_once('#').unwrap_or((r, ""));
    let target_doc = if file.is_empty() {
        doc.clone()
    } else {
        raccordo_schemas::validate::document(file.trim_end_matches(".schema.json"))?
    };
    let target = target_doc.pointer(fragment)?.clone();
    Some((target_doc, target))
}

/// Follows `$ref`s to the schema that describes a value.
fn concrete(doc: Value, schema: Value, depth: usize) -> (Value, Value) {
    if depth > 12 {
        return (doc, schema);
    }
    match resolve(&doc, &schema) {
        Some((d, s)) => concrete(d, s, depth + 1),
        None => (doc, schema),
    }
}

/// Whether the value at `pointer` in a document of `entity` is an array.
pub fn is_list(entity: raccordo_schemas::Entity, pointer: &str) -> bool {
    let Some(root) = entity.document() else {
        return false;
    };
    let (mut doc, mut schema) = (root.clone(), root);
    for part in pointer.split('/').skip(1) {
        let (d, s) = concrete(doc, schema, 0);
        let Some(next) = s.get("properties").and_then(|p| p.get(part)).cloned() else {
            return false;
        };
        doc = d;
        schema = next;
    }
    let (doc, s) = concrete(doc, schema, 0);
    if s.get("type").and_then(Value::as_str) == Some("array") {
        return true;
    }
    // `oneOf: [array, "any"]` (consent recipients): a list unless the one special value.
    ["oneOf", "anyOf"].iter().any(|k| {
        s.get(*k).and_then(Value::as_array).is_some_and(|alts| {
            alts.iter().any(|a| {
                concrete(doc.clone(), a.clone(), 0)
                    .1
                    .get("type")
                    .and_then(Value::as_str)
                    == Some("array")
            })
        })
    })
}

/// The codes the schema allows at `pointer` (for a list, in its items): what a lookup must be
/// able to write back for every inbound document. `None` when the place is not a code list.
pub fn codes_at(entity: raccordo_schemas::Entity, pointer: &str) -> Option<Vec<String>> {
    let root = entity.document()?;
    let (mut doc, mut schema) = (root.clone(), root);
    for part in pointer.split('/').skip(1) {
        let (d, s) = concrete(doc, schema, 0);
        schema = s.get("properties").and_then(|p| p.get(part)).cloned()?;
        doc = d;
    }
    let (doc, mut s) = concrete(doc, schema, 0);
    if s.get("type").and_then(Value::as_str) == Some("array") {
        let items = s.get("items").cloned()?;
        s = concrete(doc, items, 0).1;
    }
    let codes: Vec<String> = s
        .get("enum")?
        .as_array()?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    (!codes.is_empty()).then_some(codes)
}

/// Collects the pointers of required, writable fields under `schema` into `out`.
pub fn required(doc: &Value, schema: &Value, at: &str, out: &mut Vec<String>, depth: usize) {
    if depth > 12 {
        return;
    }
    if let Some((d, s)) = resolve(doc, schema) {
        required(&d, &s, at, out, depth + 1);
        return;
    }
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    let names: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for name in names {
        let Some(prop) = props.get(name) else {
            continue;
        };
        if prop.get("readOnly") == Some(&Value::Bool(true)) {
            continue;
        }
        let pointer = format!("{at}/{name}");
        let nested = resolve(doc, prop)
            .map(|(_, s)| s)
            .unwrap_or_else(|| prop.clone());
        if nested.get("properties").is_some() {
            required(doc, prop, &pointer, out, depth + 1);
        } else {
            out.push(pointer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raccordo_schemas::Entity;

    #[test]
    fn lists_are_known_from_the_schema() {
        assert!(is_list(Entity::Referral, "/requested_services"));
        assert!(is_list(Entity::Referral, "/person/identity/citizenships"));
        assert!(is_list(Entity::Referral, "/legal_basis/recipients"));
        assert!(!is_list(Entity::Referral, "/person/identity/family_name"));
        assert!(!is_list(Entity::Referral, "/no/such/field"));
        let services = codes_at(Entity::Referral, "/requested_services").unwrap();
        assert!(services.contains(&"housing_first".to_owned()) && services.len() > 10);
        assert_eq!(codes_at(Entity::Referral, "/reason"), None);
    }
}
