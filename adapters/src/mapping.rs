//! The mapping file: what an ambito writes, instead of code, to connect its local system. It is
//! TOML, strict (an unknown key is an error with its line), and checked as a whole when loaded:
//! every lookup named exists, every date format parses, every canonical pointer is a pointer.
//! See `docs/onboarding-an-ambito.md` for the guide and `deploy/ambiti/*/mapping.toml` for
//! complete examples.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    pub adapter: AdapterSection,
    pub codec: CodecSettings,
    pub record: RecordSection,
    #[serde(default)]
    pub fields: Vec<FieldRule>,
    #[serde(default)]
    pub rejects: Vec<RejectRule>,
    #[serde(default)]
    pub lookups: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    pub derive: DeriveSection,
    /// How status events about this ambito's referrals are written locally.
    #[serde(default)]
    pub status_fields: Vec<FieldRule>,
    /// Canonical pointers that hold lists, from the schema (filled when loaded).
    #[serde(skip)]
    pub list_targets: std::collections::HashSet<String>,
    /// The field rules in the order of their canonical pointers (filled when loaded), so that
    /// a record's values arrive sorted and its document is built in one pass.
    #[serde(skip)]
    pub order: Vec<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterSection {
    /// The ambito this adapter speaks for (its id in the gateway's registry).
    pub ambito: String,
    /// The canonical entity the records become: referral, structure, consent, episode,
    /// distribution, person.
    pub entity: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodecKind {
    Csv,
    Xml,
    Json,
    Fhir,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodecSettings {
    pub kind: CodecKind,
    /// utf-8, windows-1252 or iso-8859-1 (any WHATWG label encoding_rs knows).
    #[serde(default = "utf8")]
    pub encoding: String,
    /// CSV: one character; default ",".
    #[serde(default)]
    pub delimiter: Option<String>,
    /// CSV: the quote character; default '"'.
    #[serde(default)]
    pub quote: Option<String>,
    /// CSV: whether the first row names the columns (else columns are "#1", "#2", ...).
    #[serde(default = "yes")]
    pub header: bool,
    /// Numbers written with a decimal comma (12,5).
    #[serde(default)]
    pub decimal_comma: bool,
    /// XML: the path of the record element (`/export/caso`); JSON: the pointer to the array of
    /// records (`/data/items`; empty: the document is one record, or one per line).
    #[serde(default)]
    pub records: String,
    /// XML: namespace prefixes used in paths -> namespace URIs.
    #[serde(default)]
    pub namespaces: BTreeMap<String, String>,
}

fn utf8() -> String {
    "utf-8".into()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSection {
    /// The local field holding the record's own id: idempotency keys and quarantine entries
    /// name it.
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Case {
    Upper,
    Lower,
    Title,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    String,
    Integer,
    Number,
    Boolean,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalType {
    String,
    Number,
    Boolean,
}

/// One canonical pointer, or several filled from one local field split by `join`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Targets {
    One(String),
    Many(Vec<String>),
}

impl Targets {
    pub fn pointers(&self) -> &[String] {
        match self {
            Targets::One(p) => std::slice::from_ref(p),
            Targets::Many(ps) => ps,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// Where the value goes in the canonical document (JSON pointer).
    pub canonical: Targets,
    /// Where it comes from locally: a CSV column, an XML path, a JSON pointer.
    #[serde(default)]
    pub local: Option<String>,
    /// A fixed canonical value (with no `local`, nothing is written back).
    #[serde(default)]
    pub constant: Option<String>,
    /// Used when the local value is missing or empty.
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default = "yes")]
    pub trim: bool,
    /// Case applied on the way in (towards the canonical document).
    #[serde(default)]
    pub case: Option<Case>,
    /// Case applied on the way out (towards the local system).
    #[serde(default)]
    pub local_case: Option<Case>,
    /// A local date, in `time`'s format description syntax, e.g. "[day]/[month]/[year]".
    #[serde(default)]
    pub date: Option<String>,
    /// A local date and time, e.g. "[day]/[month]/[year] [hour]:[minute]"; read at
    /// `utc_offset` when the format has no offset.
    #[serde(default)]
    pub datetime: Option<String>,
    #[serde(default)]
    pub utc_offset: Option<String>,
    /// A table in `[lookups]` translating local codes to canonical ones (and back).
    #[serde(default)]
    pub lookup: Option<String>,
    /// A local list in one field, with this separator.
    #[serde(default)]
    pub split: Option<String>,
    /// With several canonical targets: the separator between their parts in the local field.
    #[serde(default)]
    pub join: Option<String>,
    #[serde(default, rename = "type")]
    pub value_type: Option<ValueType>,
    /// JSON and FHIR: the JSON type of the local value when written (default string).
    #[serde(default)]
    pub local_type: Option<LocalType>,
    /// A record without this value is rejected.
    #[serde(default)]
    pub required: bool,
    /// The targets' pointer segments (filled when loaded).
    #[serde(skip)]
    pub segments: Vec<Vec<String>>,
    #[serde(skip)]
    pub hint: crate::codec::Hint,
    /// Apply this rule only when the condition holds.
    #[serde(default)]
    pub when: Option<Condition>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub local: String,
    /// Holds when the local value is one of these.
    #[serde(default)]
    pub is: Vec<String>,
    /// Holds when the local value is present and not empty (true) or missing or empty (false).
    #[serde(default)]
    pub present: Option<bool>,
    #[serde(skip)]
    pub hint: crate::codec::Hint,
}

/// A record matching the condition is rejected with the reason.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectRule {
    pub when: Condition,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeriveSection {
    /// The canonical pointer of the codice fiscale: when set, a missing birth date, sex and
    /// place of birth are derived from it.
    #[serde(default)]
    pub codice_fiscale: Option<String>,
    /// Where the derived values go; defaults are the person identity's fields beside it.
    #[serde(default)]
    pub countries: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

impl MappingFile {
    pub fn load(path: &Path) -> Result<MappingFile, MappingError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| MappingError::Invalid {
            file: file.clone(),
            message: e.to_string(),
        })?;
        Self::parse(&text, &file)
    }

    pub fn parse(text: &str, file: &str) -> Result<MappingFile, MappingError> {
        let invalid = |message: String| MappingError::Invalid {
            file: file.to_owned(),
            message,
        };
        let mut mapping: MappingFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        mapping.check().map_err(invalid)?;
        for rule in mapping
            .fields
            .iter_mut()
            .chain(mapping.status_fields.iter_mut())
        {
            rule.segments = rule
                .canonical
                .pointers()
                .iter()
                .map(|p| crate::transform::pointer_segments(p))
                .collect();
        }
        let mut order: Vec<usize> = (0..mapping.fields.len()).collect();
        order.sort_by(|a, b| {
            mapping.fields[*a]
                .segments
                .cmp(&mapping.fields[*b].segments)
        });
        mapping.order = order;
        if let Some(entity) = raccordo_schemas::Entity::from_name(&mapping.adapter.entity) {
            mapping.list_targets = mapping
                .fields
                .iter()
                .flat_map(|f| f.canonical.pointers())
                .filter(|p| crate::schema_shape::is_list(entity, p))
                .cloned()
                .collect();
        }
        Ok(mapping)
    }

    /// Everything a mapping can get wrong that the TOML grammar cannot say.
    fn check(&self) -> Result<(), String> {
        if raccordo_schemas::Entity::from_name(&self.adapter.entity).is_none() {
            return Err(format!(
                "adapter.entity: unknown entity {:?}",
                self.adapter.entity
            ));
        }
        if crate::codec::encoding(&self.codec.encoding).is_none() {
            return Err(format!(
                "codec.encoding: unknown encoding {:?}",
                self.codec.encoding
            ));
        }
        for (what, c) in [
            ("delimiter", &self.codec.delimiter),
            ("quote", &self.codec.quote),
        ] {
            if c.as_ref().is_some_and(|c| c.len() != 1) {
                return Err(format!("codec.{what}: one ASCII character"));
            }
        }
        let all = self
            .fields
            .iter()
            .map(|f| ("fields", f))
            .chain(self.status_fields.iter().map(|f| ("status_fields", f)));
        for (i, (section, f)) in all.enumerate() {
            let at = format!("{section}[{i}] ({})", f.canonical.pointers().join(", "));
            for p in f.canonical.pointers() {
                if !p.starts_with('/') {
                    return Err(format!("{at}: canonical must be a JSON pointer (/a/b)"));
                }
            }
            if f.local.is_none() && f.constant.is_none() {
                return Err(format!("{at}: needs `local` or `constant`"));
            }
            if matches!(f.canonical, Targets::Many(_)) && f.join.is_none() {
                return Err(format!("{at}: several canonical targets need `join`"));
            }
            if let Some(l) = &f.lookup
                && !self.lookups.contains_key(l)
            {
                return Err(format!("{at}: lookup {l:?} is not in [lookups]"));
            }
            for (name, fmt) in [("date", &f.date), ("datetime", &f.datetime)] {
                if let Some(fmt) = fmt {
                    time::format_description::parse_borrowed::<2>(fmt)
                        .map_err(|e| format!("{at}: {name} format {fmt:?}: {e}"))?;
                }
            }
            if let Some(o) = &f.utc_offset {
                crate::transform::parse_offset(o)
                    .ok_or_else(|| format!("{at}: utc_offset {o:?} is not like +01:00"))?;
            }
        }
        Ok(())
    }

    /// Every local field the mapping reads: what codecs must extract.
    pub fn local_fields(&self) -> Vec<String> {
        let mut out = vec![self.record.id.clone()];
        let conditions = self
            .fields
            .iter()
            .filter_map(|f| f.when.as_ref())
            .chain(self.rejects.iter().map(|r| &r.when))
            .map(|c| c.local.clone());
        out.extend(self.fields.iter().filter_map(|f| f.local.clone()));
        out.extend(conditions);
        let mut seen = std::collections::HashSet::new();
        out.retain(|f| seen.insert(f.clone()));
        out
    }
}
