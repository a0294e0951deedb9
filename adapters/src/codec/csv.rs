//! Delimited text: any single-byte delimiter and quote, a header row or column positions
//! (`#1`, `#2`...), any encoding. Rows are read as bytes and decoded field by field, so a
//! Windows-1252 export streams in constant memory.

use super::{CodecError, Fields, LocalRecord, Location, Records, Unreadable, file_error};
use crate::mapping::MappingFile;
use std::path::Path;

fn byte(setting: &Option<String>, default: u8) -> u8 {
    setting
        .as_ref()
        .and_then(|s| s.bytes().next())
        .unwrap_or(default)
}

/// Counts lines as bytes pass: the csv crate's own line numbers drift on CRLF files, and a
/// rejection must name the line an operator will find in an editor.
struct Lines<R> {
    inner: R,
    offset: u64,
    /// Offsets of newlines not yet passed by a record start.
    pending: std::sync::Arc<std::sync::Mutex<(u64, std::collections::VecDeque<u64>)>>,
}

impl<R: std::io::Read> std::io::Read for Lines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut p) = self.pending.lock() {
            for (i, b) in buf[..n].iter().enumerate() {
                if *b == b'\n' {
                    p.1.push_back(self.offset + i as u64);
                }
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// The 1-based line of a record starting at byte `start`, forgetting newlines before it. On
/// CRLF files the csv crate puts the start on the `\n` that ends the previous line, so a newline
/// at `start` itself counts as passed.
fn line_at(
    pending: &std::sync::Mutex<(u64, std::collections::VecDeque<u64>)>,
    start: u64,
) -> Option<u64> {
    let mut p = pending.lock().ok()?;
    while p.1.front().is_some_and(|&nl| nl <= start) {
        p.1.pop_front();
        p.0 += 1;
    }
    Some(p.0 + 1)
}

pub fn read(mapping: &MappingFile, path: &Path) -> Result<Records, CodecError> {
    let pending = std::sync::Arc::new(std::sync::Mutex::new((
        0u64,
        std::collections::VecDeque::new(),
    )));
    let file = Lines {
        inner: std::fs::File::open(path).map_err(|e| file_error(path, e))?,
        offset: 0,
        pending: std::sync::Arc::clone(&pending),
    };
    let enc = super::encoding(&mapping.codec.encoding).unwrap_or(encoding_rs::UTF_8);
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(byte(&mapping.codec.delimiter, b','))
        .quote(byte(&mapping.codec.quote, b'"'))
        .has_headers(false)
        .flexible(true)
        .from_reader(std::io::BufReader::with_capacity(1 << 16, file));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let decode =
        move |bytes: &[u8]| -> String { enc.decode_without_bom_handling(bytes).0.into_owned() };
    let mut header: Option<Vec<std::sync::Arc<str>>> = None;
    let mut order: Vec<usize> = Vec::new();
    if mapping.codec.header {
        let mut first = ::csv::ByteRecord::new();
        let got = reader
            .read_byte_record(&mut first)
            .map_err(|e| file_error(path, e))?;
        if !got {
            return Ok(Box::new(std::iter::empty()));
        }
        let mut names: Vec<String> = first.iter().map(|f| decode(f).trim().to_owned()).collect();
        if let Some(n) = names.first_mut() {
            *n = n.trim_start_matches('\u{feff}').to_owned();
        }
        let names: Vec<std::sync::Arc<str>> = names.into_iter().map(std::sync::Arc::from).collect();
        order = super::sorted_order(&names);
        header = Some(names);
    }
    let mut index = 0u64;
    let mut row = ::csv::ByteRecord::new();
    Ok(Box::new(std::iter::from_fn(move || {
        loop {
            match reader.read_byte_record(&mut row) {
                Ok(false) => return None,
                Err(e) => {
                    let line = e.position().and_then(|p| line_at(&pending, p.byte()));
                    let location = Location {
                        file: name.clone(),
                        line,
                        element: None,
                        index,
                    };
                    index += 1;
                    // A broken row is quarantined; reading goes on from the next one.
                    return Some(Err(Unreadable {
                        location,
                        reason: format!("unreadable row: {e}"),
                    }));
                }
                Ok(true) => {}
            }
            if row.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
                continue;
            }
            let location = Location {
                file: name.clone(),
                line: row.position().and_then(|p| line_at(&pending, p.byte())),
                element: None,
                index,
            };
            index += 1;
            let fields = match &header {
                Some(names) => {
                    if row.len() != names.len() {
                        return Some(Err(Unreadable {
                            location,
                            reason: format!(
                                "the row has {} fields, the header {}",
                                row.len(),
                                names.len()
                            ),
                        }));
                    }
                    Fields::from_sorted(
                        order
                            .iter()
                            .map(|&i| {
                                (
                                    std::sync::Arc::clone(&names[i]),
                                    smallvec::smallvec![decode(&row[i])],
                                )
                            })
                            .collect(),
                    )
                }
                None => {
                    // Sorted once: inserting `#1`, `#2`... one by one shifted the fields already
                    // there (`#10` sorts before `#2`), quadratic in a row's width.
                    let names: Vec<std::sync::Arc<str>> = (1..=row.len())
                        .map(|i| std::sync::Arc::from(format!("#{i}")))
                        .collect();
                    Fields::from_sorted(
                        super::sorted_order(&names)
                            .into_iter()
                            .map(|i| {
                                (
                                    std::sync::Arc::clone(&names[i]),
                                    smallvec::smallvec![decode(&row[i])],
                                )
                            })
                            .collect(),
                    )
                }
            };
            return Some(Ok(LocalRecord { location, fields }));
        }
    })))
}

pub fn write(
    mapping: &MappingFile,
    rules: &[crate::mapping::FieldRule],
    records: &[Fields],
) -> Result<Vec<u8>, CodecError> {
    let columns = super::columns(mapping, rules);
    let mut out = ::csv::WriterBuilder::new()
        .delimiter(byte(&mapping.codec.delimiter, b','))
        .quote(byte(&mapping.codec.quote, b'"'))
        .from_writer(Vec::new());
    let enc = super::encoding(&mapping.codec.encoding).unwrap_or(encoding_rs::UTF_8);
    let encode = |s: &str| -> Vec<u8> { enc.encode(s).0.into_owned() };
    let fail = |e: ::csv::Error| CodecError::File {
        file: "output".into(),
        message: e.to_string(),
    };
    if mapping.codec.header {
        out.write_record(columns.iter().map(|c| encode(c)))
            .map_err(fail)?;
    }
    for r in records {
        let row: Vec<Vec<u8>> = columns
            .iter()
            .map(|c| encode(&r.get(c.as_str()).map(|v| v.join(" ")).unwrap_or_default()))
            .collect();
        out.write_record(&row).map_err(fail)?;
    }
    out.into_inner().map_err(|e| CodecError::File {
        file: "output".into(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_wide_row_without_a_header_reads_in_linear_time_with_positional_names() {
        // Found by review next to the XML codec's wide records: 100,000 columns without a
        // header inserted `#1`, `#2`... one at a time into the sorted fields.
        let text = include_str!("../../../deploy/ambiti/prato/mapping.toml")
            .replace("header = true", "header = false");
        let m = crate::MappingFile::parse(&text, "prato-headerless").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("wide.csv");
        let wide: Vec<String> = (1..=100_000).map(|i| format!("v{i}")).collect();
        std::fs::write(&file, format!("a;b;c\n{}\n", wide.join(";"))).unwrap();
        let started = std::time::Instant::now();
        let records: Vec<_> = super::read(&m, &file).unwrap().collect();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let narrow = records[0].as_ref().unwrap();
        assert_eq!(
            (narrow.value("#1"), narrow.value("#3"), narrow.value("#4")),
            (Some("a"), Some("c"), None)
        );
        let wide = records[1].as_ref().unwrap();
        assert_eq!(wide.value("#10"), Some("v10"));
        assert_eq!(wide.value("#2"), Some("v2"));
        assert_eq!(wide.value("#100000"), Some("v100000"));
    }
}
