//! Filling in what a codice fiscale says (birth date, sex, place of birth) when the local
//! system did not record it. Values the record has are never overwritten.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

/// Cadastral (Belfiore) code -> ISTAT code of the municipalities of Tuscany (ISTAT's list,
/// `reference/toscana-comuni.csv`). Places elsewhere in Italy give country IT only.
fn tuscan_municipalities() -> &'static HashMap<String, String> {
    static TABLE: OnceLock<HashMap<String, String>> = OnceLock::new();
    TABLE.get_or_init(|| {
        include_str!("../reference/toscana-comuni.csv")
            .lines()
            .skip(1)
            .filter_map(|l| {
                let cols: Vec<&str> = l.split(',').collect();
                Some((
                    cols.get(4)?.trim().to_owned(),
                    cols.first()?.trim().to_owned(),
                ))
            })
            .collect()
    })
}

/// Foreign-country codes (`Z...`) of the Agenzia delle Entrate seen most in this population;
/// a mapping adds others in `[derive.countries]`.
const COUNTRIES: [(&str, &str); 4] = [
    ("Z330", "MA"),
    ("Z100", "AL"),
    ("Z129", "RO"),
    ("Z210", "CN"),
];

/// Fills the identity object holding the codice fiscale at `cf_pointer`.
pub fn from_codice_fiscale(
    doc: &mut Value,
    cf_pointer: &str,
    countries: &BTreeMap<String, String>,
    current_year: i32,
) {
    let Some(code) = doc
        .pointer(cf_pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return;
    };
    let Some(d) = raccordo_schemas::codice_fiscale::decode(&code, current_year) else {
        return;
    };
    let parent = cf_pointer.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
    let Some(Value::Object(identity)) = doc.pointer_mut(parent) else {
        return;
    };
    identity.entry("birth_date").or_insert_with(|| {
        format!(
            "{:04}-{:02}-{:02}",
            d.birth_year, d.birth_month, d.birth_day
        )
        .into()
    });
    identity
        .entry("sex")
        .or_insert_with(|| if d.female { "female" } else { "male" }.into());
    if d.place.starts_with('Z') {
        let country = countries.get(&d.place).map(String::as_str).or_else(|| {
            COUNTRIES
                .iter()
                .find(|(z, _)| *z == d.place)
                .map(|(_, c)| *c)
        });
        if let Some(c) = country {
            identity
                .entry("country_of_birth")
                .or_insert_with(|| c.into());
        }
    } else {
        identity
            .entry("country_of_birth")
            .or_insert_with(|| "IT".into());
        if let Some(istat) = tuscan_municipalities().get(&d.place) {
            identity
                .entry("municipality_of_birth")
                .or_insert_with(|| istat.clone().into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn derives_what_is_missing_and_keeps_what_is_there() {
        let mut doc =
            json!({"person": {"identity": {"codice_fiscale": "MHMSLM85T10Z330X", "sex": "male"}}});
        from_codice_fiscale(
            &mut doc,
            "/person/identity/codice_fiscale",
            &BTreeMap::new(),
            2026,
        );
        assert_eq!(doc["person"]["identity"]["birth_date"], "1985-12-10");
        assert_eq!(doc["person"]["identity"]["country_of_birth"], "MA");
        // Born in Prato (G999), female.
        let first15 = b"BNCGLI90A41G999";
        let code = format!(
            "{}{}",
            std::str::from_utf8(first15).unwrap(),
            raccordo_schemas::codice_fiscale::check_character(first15) as char
        );
        let mut doc = json!({"identity": {"codice_fiscale": code}});
        from_codice_fiscale(&mut doc, "/identity/codice_fiscale", &BTreeMap::new(), 2026);
        assert_eq!(doc["identity"]["sex"], "female");
        assert_eq!(doc["identity"]["birth_date"], "1990-01-01");
        assert_eq!(doc["identity"]["municipality_of_birth"], "100005");
        assert_eq!(doc["identity"]["country_of_birth"], "IT");
    }
}
