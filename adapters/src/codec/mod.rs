//! Local records in and out. A record is the local fields a mapping asks for, each with its
//! values (several when an XML element repeats or a JSON pointer reaches an array), and where
//! it came from (file and line, or element, or pointer) so that a rejection can say where.

pub mod csv;
pub mod json;
pub mod xml;

use crate::mapping::{CodecKind, MappingFile};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Field name -> values, kept sorted by name in one vector. Names are shared (`Arc<str>`): a CSV
/// export repeats the same few dozen names on every row, and a CSV codec that knows its header
/// order fills a record with pushes alone; a tree map cost a quarter of the conversion time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(Vec<(Arc<str>, Values)>);

/// Where a field was found in the last record (see [`Fields::get_hinted`]).
#[derive(Debug, Default)]
pub struct Hint(std::sync::atomic::AtomicUsize);

impl Clone for Hint {
    fn clone(&self) -> Hint {
        Hint(std::sync::atomic::AtomicUsize::new(
            self.0.load(std::sync::atomic::Ordering::Relaxed),
        ))
    }
}

/// The values of one field: nearly always one, kept inline without an allocation of its own.
pub type Values = smallvec::SmallVec<[String; 1]>;

impl Fields {
    pub fn new() -> Fields {
        Fields(Vec::new())
    }

    /// Fields from pairs already sorted by name (as `sorted_order` gives), without comparing.
    pub(crate) fn from_sorted(pairs: Vec<(Arc<str>, Values)>) -> Fields {
        Fields(pairs)
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| (**k).cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&Values> {
        self.position(name).ok().map(|i| &self.0[i].1)
    }

    /// `get`, trying first the position where `hint` found this name last time: records of
    /// one file share their layout, so a mapping rule finds its field at once.
    pub fn get_hinted(&self, name: &str, hint: &Hint) -> Option<&Values> {
        use std::sync::atomic::Ordering::Relaxed;
        let guess = hint.0.load(Relaxed);
        if let Some((k, v)) = self.0.get(guess)
            && **k == *name
        {
            return Some(v);
        }
        let i = self.position(name).ok()?;
        hint.0.store(i, Relaxed);
        Some(&self.0[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    pub fn insert(&mut self, name: Arc<str>, values: impl Into<Values>) {
        let values = values.into();
        match self.position(&name) {
            Ok(i) => self.0[i].1 = values,
            Err(i) => self.0.insert(i, (name, values)),
        }
    }

    /// The values of a field, created empty when missing.
    pub fn values_mut(&mut self, name: &str) -> &mut Values {
        let i = match self.position(name) {
            Ok(i) => i,
            Err(i) => {
                self.0.insert(i, (Arc::from(name), Values::new()));
                i
            }
        };
        &mut self.0[i].1
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.0.retain(|(k, _)| keep(k));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &Values)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a Arc<str>, &'a Values);
    type IntoIter = Box<dyn Iterator<Item = Self::Item> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl FromIterator<(Arc<str>, Vec<String>)> for Fields {
    fn from_iter<I: IntoIterator<Item = (Arc<str>, Vec<String>)>>(iter: I) -> Fields {
        let mut f = Fields::new();
        for (k, v) in iter {
            f.insert(k, v);
        }
        f
    }
}

impl Serialize for Fields {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(&**k, v.as_slice())?;
        }
        map.end()
    }
}

impl<'de> serde::Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Fields, D::Error> {
        let map = BTreeMap::<String, Vec<String>>::deserialize(d)?;
        Ok(map.into_iter().map(|(k, v)| (Arc::from(k), v)).collect())
    }
}

/// The positions of `names` in name order: a reader that fills records in this order builds
/// each one without comparing names.
pub(crate) fn sorted_order(names: &[Arc<str>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|a, b| names[*a].cmp(&names[*b]));
    // A repeated column name keeps its first occurrence.
    order.dedup_by(|a, b| names[*a] == names[*b]);
    order
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// XML element path, or JSON pointer, of the record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub element: Option<String>,
    /// 0-based position of the record in its file: what checkpoints count.
    pub index: u64,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(e) = &self.element {
            write!(f, " {e}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct LocalRecord {
    pub location: Location,
    pub fields: Fields,
}

impl LocalRecord {
    /// The first value of a field, if present and not blank.
    pub fn value(&self, field: &str) -> Option<&str> {
        self.fields
            .get(field)
            .and_then(|v| v.first())
            .map(String::as_str)
            .filter(|s| !s.trim().is_empty())
    }
}

/// A record the codec could not read (a CSV row with the wrong number of fields, say): it goes
/// to quarantine and the file goes on.
#[derive(Debug, Clone)]
pub struct Unreadable {
    pub location: Location,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("{file}: {message}")]
    File { file: String, message: String },
}

pub type Records = Box<dyn Iterator<Item = Result<LocalRecord, Unreadable>> + Send>;

pub fn encoding(label: &str) -> Option<&'static encoding_rs::Encoding> {
    encoding_rs::Encoding::for_label(label.as_bytes())
}

/// Opens a local file as a stream of records (streaming for CSV; XML and JSON documents are
/// read whole).
pub fn read(mapping: &MappingFile, path: &Path) -> Result<Records, CodecError> {
    let wanted = mapping.local_fields();
    match mapping.codec.kind {
        CodecKind::Csv => csv::read(mapping, path),
        CodecKind::Xml => xml::read(mapping, path, &wanted),
        CodecKind::Json => json::read(mapping, path, &wanted, false),
        CodecKind::Fhir => json::read(mapping, path, &wanted, true),
    }
}

/// Writes records in the local format and encoding; `rules` (the mapping's fields, or its
/// status fields) decide the columns.
pub fn write(
    mapping: &MappingFile,
    rules: &[crate::mapping::FieldRule],
    records: &[Fields],
) -> Result<Vec<u8>, CodecError> {
    let text = match mapping.codec.kind {
        CodecKind::Csv => return csv::write(mapping, rules, records),
        CodecKind::Xml => xml::write(mapping, records),
        CodecKind::Json => json::write(mapping, rules, records, false),
        CodecKind::Fhir => json::write(mapping, rules, records, true),
    };
    let enc = encoding(&mapping.codec.encoding).unwrap_or(encoding_rs::UTF_8);
    Ok(enc.encode(&text).0.into_owned())
}

/// The file extension of the local format.
pub fn extension(mapping: &MappingFile) -> &'static str {
    match mapping.codec.kind {
        CodecKind::Csv => "csv",
        CodecKind::Xml => "xml",
        CodecKind::Json | CodecKind::Fhir => "json",
    }
}

pub(crate) fn file_error(path: &Path, message: impl std::fmt::Display) -> CodecError {
    CodecError::File {
        file: path.display().to_string(),
        message: message.to_string(),
    }
}

/// The fields a mapping writes, in order: the record id first, then each rule's local field.
pub(crate) fn columns(mapping: &MappingFile, rules: &[crate::mapping::FieldRule]) -> Vec<String> {
    let mut out = vec![mapping.record.id.clone()];
    for r in rules {
        if let Some(l) = &r.local
            && !out.contains(l)
        {
            out.push(l.clone());
        }
    }
    out
}
