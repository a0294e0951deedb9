//! Code lists as data: each file has code, Italian label, English label and the source.
//! Codes are stable identifiers: never reused or renamed, only deprecated.

use serde::Deserialize;
use std::sync::OnceLock;

/// One code list file.
#[derive(Debug, Clone, Deserialize)]
pub struct CodeList {
    pub id: String,
    pub version: String,
    pub title: String,
    pub source: String,
    pub codes: Vec<CodeEntry>,
}

/// One code with its labels; extra attributes (e.g. the ETHOS Light mapping) are kept as JSON.
#[derive(Debug, Clone, Deserialize)]
pub struct CodeEntry {
    pub code: String,
    pub label_it: String,
    pub label_en: String,
    #[serde(default)]
    pub deprecated: bool,
    #[serde(flatten)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

macro_rules! lists {
    ($($name:literal),* $(,)?) => {
        /// Every code list file shipped with schema v1, by id.
        pub const FILES: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("../codelists/", $name, ".json")))),*
        ];
    };
}

lists!(
    "age-band",
    "citizenship-group",
    "consent-status",
    "data-category",
    "ethos",
    "ethos-light",
    "evidence-kind",
    "exit-destination",
    "goods",
    "intervention-outcome",
    "legal-basis",
    "need",
    "purpose",
    "referral-status",
    "service-type",
    "sex",
    "special-category-condition",
    "target-group",
    "urgency",
);

/// All code lists, parsed once. A file that does not parse is a build defect caught by the
/// crate's tests, so here it is skipped rather than taking the process down.
pub fn all() -> &'static [CodeList] {
    static LISTS: OnceLock<Vec<CodeList>> = OnceLock::new();
    LISTS.get_or_init(|| {
        FILES
            .iter()
            .filter_map(|(_, text)| serde_json::from_str(text).ok())
            .collect()
    })
}

/// The code list with this id.
pub fn get(id: &str) -> Option<&'static CodeList> {
    all().iter().find(|l| l.id == id)
}

/// The ETHOS Light category of an ETHOS operational category, if it has one.
pub fn ethos_light(ethos: &str) -> Option<&'static str> {
    get("ethos")?
        .codes
        .iter()
        .find(|c| c.code == ethos)?
        .attributes
        .get("ethos_light")?
        .as_str()
}
