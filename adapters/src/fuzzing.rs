//! Entry points for the fuzz targets in `gateway/fuzz/` (cargo-fuzz) and for the unit test that
//! replays their corpora on stable Rust. Each runs the adapters' own functions on outside input
//! as the runner and `adapter check` do; nothing here reimplements a check. Not an API.

use crate::codec;
use crate::convert;
use crate::mapping::MappingFile;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The year conversions are run in (it decides age bands).
const YEAR: i32 = 2026;

/// A mapping file's text, as `MappingFile::load` reads it after the file.
pub fn mapping_file(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(m) = MappingFile::parse(text, "fuzz.toml")
    {
        std::hint::black_box(m.local_fields());
    }
}

/// The deployed mappings the codec targets read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    /// Prato: CSV, Windows-1252, `;`, a header row.
    Csv,
    /// Firenze: XML with a namespace.
    Xml,
    /// Livorno: one JSON document with an array of records.
    Json,
    /// Pisa: FHIR R4 Bundles, one per line.
    Fhir,
}

impl Export {
    fn mapping(self) -> Option<&'static MappingFile> {
        static CSV: OnceLock<Option<MappingFile>> = OnceLock::new();
        static XML: OnceLock<Option<MappingFile>> = OnceLock::new();
        static JSON: OnceLock<Option<MappingFile>> = OnceLock::new();
        static FHIR: OnceLock<Option<MappingFile>> = OnceLock::new();
        let (cell, text, name) = match self {
            Export::Csv => (
                &CSV,
                include_str!("../../deploy/ambiti/prato/mapping.toml"),
                "prato",
            ),
            Export::Xml => (
                &XML,
                include_str!("../../deploy/ambiti/firenze/mapping.toml"),
                "firenze",
            ),
            Export::Json => (
                &JSON,
                include_str!("../../deploy/ambiti/livorno/mapping.toml"),
                "livorno",
            ),
            Export::Fhir => (
                &FHIR,
                include_str!("../../deploy/ambiti/pisa/mapping.toml"),
                "pisa",
            ),
        };
        cell.get_or_init(|| MappingFile::parse(text, name).ok())
            .as_ref()
    }
}

/// A local export file with `data` as its content, read by the codec of `export`'s mapping and
/// each record converted to the canonical document, as the runner does with a file it picks up.
/// The file is written to the temporary directory and removed, since codecs read paths.
pub fn export(export: Export, data: &[u8]) {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let Some(m) = export.mapping() else { return };
    let path = std::env::temp_dir().join(format!(
        "raccordo-fuzz-{}-{}.{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        codec::extension(m)
    ));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(records) = codec::read(m, &path) {
        for item in records {
            match item {
                Ok(record) => {
                    std::hint::black_box(convert::to_canonical(m, &record, YEAR).is_ok());
                }
                Err(unreadable) => {
                    std::hint::black_box(unreadable.location.to_string());
                }
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

#[cfg(test)]
mod tests {
    //! Replays the committed corpora and regression inputs of the fuzz targets
    //! (`gateway/fuzz/corpus/<target>`, `gateway/fuzz/regressions/<target>`), so that stable CI
    //! keeps what fuzzing found fixed. A panic fails the test.

    use super::Export;
    use std::path::{Path, PathBuf};

    fn replay(target: &str, run: impl Fn(&[u8])) {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gateway/fuzz");
        let mut files: Vec<PathBuf> = Vec::new();
        for dir in ["corpus", "regressions"] {
            if let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) {
                files.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()));
            }
        }
        assert!(!files.is_empty(), "no corpus for {target}");
        files.sort();
        for f in files {
            // A fuzzer running meanwhile may have replaced the file.
            if let Ok(data) = std::fs::read(&f) {
                run(&data);
            }
        }
    }

    #[test]
    fn fuzz_corpus_mapping_file_replays_without_panic() {
        replay("mapping_file", super::mapping_file);
    }

    #[test]
    fn fuzz_corpus_csv_codec_replays_without_panic() {
        replay("csv_codec", |d| super::export(Export::Csv, d));
    }

    #[test]
    fn fuzz_corpus_xml_codec_replays_without_panic() {
        replay("xml_codec", |d| super::export(Export::Xml, d));
    }

    #[test]
    fn fuzz_corpus_json_codec_replays_without_panic() {
        replay("json_codec", |d| super::export(Export::Json, d));
    }

    #[test]
    fn fuzz_corpus_fhir_codec_replays_without_panic() {
        replay("fhir_codec", |d| super::export(Export::Fhir, d));
    }

    #[test]
    fn the_deployed_mappings_behind_the_codec_targets_load() {
        for e in [Export::Csv, Export::Xml, Export::Json, Export::Fhir] {
            assert!(e.mapping().is_some(), "{e:?}");
        }
    }
}
