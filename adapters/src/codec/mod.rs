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

/// Field name -> values. Names are shared (`Arc<str>`): a CSV export repeats the same few dozen
/// names on every row, and copying them was a tenth of the conversion time.
pub type Fields = BTreeMap<std::sync::Arc<str>, Vec<String>>;

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
