//! `raccordo adapter bench`: CSV to validated canonical JSON, on one thread, over a synthetic
//! Windows-1252 export in the Prato layout; the baseline in the same run is reading and
//! decoding the same file without converting. Peak resident memory is read before and after,
//! to show that the conversion streams.

use crate::codec;
use crate::convert;
use crate::mapping::MappingFile;
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

pub const PRATO_MAPPING: &str = include_str!("../../deploy/ambiti/prato/mapping.toml");

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub rows: u64,
    pub file_bytes: u64,
    pub baseline_read_seconds: f64,
    pub baseline_records_per_second: f64,
    pub convert_seconds: f64,
    pub records_per_second: f64,
    pub ratio_to_baseline: f64,
    pub passed: u64,
    pub failed: u64,
    pub peak_rss_mib_before: f64,
    pub peak_rss_mib_after: f64,
    pub threads: u32,
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

/// Writes `rows` synthetic records in the Prato layout (Windows-1252, `;`, dd/mm/yyyy).
pub fn synthesise(path: &Path, rows: u64) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let header = "ID_SCHEDA;DATA_SEGNALAZIONE;COGNOME;NOME;ALIAS;CODICE_FISCALE;DATA_NASCITA;SESSO;STATO_NASCITA;CITTADINANZA;DOCUMENTI;AMBITO_DESTINAZIONE;URGENZA;SERVIZI;MOTIVO;BASE_GIURIDICA;CONSENSO_DAL;CONSENSO_AL;CONSENSO_MODALITA;OPERATORE;LINGUA;ETHOS;FASCIA_ETA;GRUPPO_CITTADINANZA;BISOGNI;STATO_SCHEDA\r\n";
    out.write_all(header.as_bytes())?;
    let families = [
        "ROSSI", "NICCOLÒ", "MOHAMED", "POPESCU", "HOXHA", "BIANCHI", "DIALLO", "CHEN",
    ];
    let given = [
        "MARIO", "SALIM", "ANDREI", "ILIR", "GIULIA", "AMINATA", "WEI", "JOSÉ",
    ];
    let targets = ["FIRENZE", "PISA", "LIVORNO", "SIENA"];
    for i in 0..rows {
        let f = families[(i % 8) as usize];
        let g = given[(i / 8 % 8) as usize];
        let line = format!(
            "PO-{i:08};{:02}/11/2026 {:02}:{:02};{f};{g};;;{:02}/{:02}/{};{};MA;MA;S;{};{};ACC,CM;Richiesta di posto letto per l'inverno, persona già seguita dall'unità di strada.;CONSENSO;01/11/2026;31/10/2027;ORALE;operatrice di strada;ar;1;35-44;EXTRA_UE;ALLOGGIO,SALUTE;ATTIVA\r\n",
            1 + i % 28,
            i % 24,
            i % 60,
            1 + i % 28,
            1 + i % 12,
            1950 + i % 50,
            if i % 2 == 0 { "M" } else { "F" },
            targets[(i % 4) as usize],
            ["U", "I", "O"][(i % 3) as usize],
        );
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&line);
        out.write_all(&bytes)?;
    }
    out.flush()
}

pub fn run(rows: u64, scratch: &Path) -> Result<BenchReport, String> {
    let mapping = MappingFile::parse(PRATO_MAPPING, "deploy/ambiti/prato/mapping.toml")
        .map_err(|e| e.to_string())?;
    let file = scratch.join("prato-bench.csv");
    synthesise(&file, rows).map_err(|e| e.to_string())?;
    let file_bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    raccordo_schemas::validate::warm_up().map_err(|e| e.to_string())?;

    let started = Instant::now();
    let mut read = 0u64;
    for r in codec::read(&mapping, &file).map_err(|e| e.to_string())? {
        read += u64::from(r.is_ok());
    }
    let baseline = started.elapsed().as_secs_f64();

    let before = peak_rss_mib();
    let started = Instant::now();
    let (mut passed, mut failed, mut bytes_out) = (0u64, 0u64, 0usize);
    for r in codec::read(&mapping, &file).map_err(|e| e.to_string())? {
        let Ok(record) = r else {
            failed += 1;
            continue;
        };
        match convert::to_canonical(&mapping, &record, 2026) {
            Ok(doc) => {
                // Serialised as it would be sent.
                bytes_out += serde_json::to_vec(&doc).map(|v| v.len()).unwrap_or(0);
                passed += 1;
            }
            Err(_) => failed += 1,
        }
    }
    let convert_seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&file);
    std::hint::black_box(bytes_out);
    Ok(BenchReport {
        rows,
        file_bytes,
        baseline_read_seconds: baseline,
        baseline_records_per_second: read as f64 / baseline.max(1e-9),
        convert_seconds,
        records_per_second: (passed + failed) as f64 / convert_seconds.max(1e-9),
        ratio_to_baseline: baseline / convert_seconds.max(1e-9),
        passed,
        failed,
        peak_rss_mib_before: before,
        peak_rss_mib_after: peak_rss_mib(),
        threads: 1,
    })
}
