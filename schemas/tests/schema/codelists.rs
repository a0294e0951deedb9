use raccordo_schemas::codelist;
use std::collections::HashSet;

#[test]
fn every_code_list_parses_with_labels_and_source() {
    assert_eq!(codelist::all().len(), codelist::FILES.len());
    for list in codelist::all() {
        assert!(!list.source.is_empty(), "{} has no source", list.id);
        let mut seen = HashSet::new();
        for code in &list.codes {
            assert!(
                seen.insert(&code.code),
                "{}: duplicate {}",
                list.id,
                code.code
            );
            assert!(!code.label_it.is_empty() && !code.label_en.is_empty());
        }
    }
}

#[test]
fn schema_enums_are_exactly_the_code_lists() {
    let common = raccordo_schemas::validate::document("common").unwrap();
    for list in codelist::all() {
        let enum_values: Vec<&str> = common["$defs"][&list.id]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("common.schema.json has no $defs/{}", list.id))
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let codes: Vec<&str> = list.codes.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(enum_values, codes, "{} drifted from its code list", list.id);
    }
}

#[test]
fn ethos_maps_to_ethos_light_in_data() {
    assert_eq!(codelist::ethos_light("1"), Some("1"));
    assert_eq!(codelist::ethos_light("6"), Some("4"));
    assert_eq!(codelist::ethos_light("11"), Some("5"));
    assert_eq!(codelist::ethos_light("13"), None);
    let light: HashSet<String> = codelist::get("ethos-light")
        .unwrap()
        .codes
        .iter()
        .map(|c| c.code.clone())
        .collect();
    for code in &codelist::get("ethos").unwrap().codes {
        if let Some(l) = code.attributes["ethos_light"].as_str() {
            assert!(light.contains(l), "ETHOS {} maps to unknown {l}", code.code);
        }
    }
}
