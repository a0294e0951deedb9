//! Linkage quality on two files whose true matches are known: what `raccordo linkage eval`
//! prints, so that the Region can set thresholds on its own data.

use super::encode::{Encoder, LinkRecord, Prepared};
use super::matcher::{self, Item};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{file}: {reason}")]
    Input { file: String, reason: String },
}

/// A record with its true entity.
pub struct Truthful {
    pub truth: String,
    pub record: LinkRecord,
}

/// Reads a CSV file by header names; absent columns are unknown fields.
pub fn read_csv(path: &Path, truth: &str) -> Result<Vec<Truthful>, EvalError> {
    let err = |reason: String| EvalError::Input {
        file: path.display().to_string(),
        reason,
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| err(e.to_string()))?;
    let headers = reader.headers().map_err(|e| err(e.to_string()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let truth_col = col(truth).ok_or_else(|| err(format!("no column named '{truth}'")))?;
    let cols: Vec<Option<usize>> = super::synth::COLUMNS.iter().map(|c| col(c)).collect();
    let mut out = Vec::new();
    for (line, row) in reader.records().enumerate() {
        let row = row.map_err(|e| err(format!("line {}: {e}", line + 2)))?;
        let get = |i: usize| {
            cols[i]
                .and_then(|c| row.get(c))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        out.push(Truthful {
            truth: row.get(truth_col).unwrap_or_default().to_owned(),
            record: LinkRecord {
                given_names: get(0),
                family_name: get(1),
                aliases: get(2)
                    .map(|a| {
                        a.split(';')
                            .map(|s| s.trim().to_owned())
                            .filter(|s| !s.is_empty())
                            .collect()
                    })
                    .unwrap_or_default(),
                birth_date: get(3),
                birth_date_is_placeholder: get(4)
                    .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1"),
                sex: get(5),
                country_of_birth: get(6),
            },
        });
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize)]
pub struct AtThreshold {
    pub threshold: f64,
    pub true_positives: u64,
    pub false_positives: u64,
    pub false_negatives: u64,
    pub true_negatives: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub left_records: usize,
    pub right_records: usize,
    pub true_matches: u64,
    pub candidate_pairs: usize,
    pub encode_seconds: f64,
    pub encode_records_per_second: f64,
    pub match_seconds: f64,
    pub thresholds: Vec<AtThreshold>,
}

/// Encodes both sides in parallel.
pub fn prepare(encoder: &Encoder, records: &[LinkRecord], threads: usize) -> Vec<Item> {
    let chunk = records.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = records
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|r| Item::new(encoder, Prepared::new(r)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

pub fn evaluate(
    encoder: &Encoder,
    left: &[Truthful],
    right: &[Truthful],
    thresholds: &[f64],
    threads: usize,
) -> Report {
    let started = Instant::now();
    let l: Vec<LinkRecord> = left.iter().map(|t| t.record.clone()).collect();
    let r: Vec<LinkRecord> = right.iter().map(|t| t.record.clone()).collect();
    let li = prepare(encoder, &l, threads);
    let ri = prepare(encoder, &r, threads);
    let encode_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let floor = thresholds.iter().copied().fold(f64::INFINITY, f64::min);
    let candidates = matcher::scored_pairs(encoder, &li, &ri, floor, threads);
    let candidate_pairs = candidates.len();
    let assigned = matcher::one_to_one(candidates);
    let match_seconds = started.elapsed().as_secs_f64();

    // True matches: pairs of records with the same truth value.
    let mut right_by_truth: HashMap<&str, u64> = HashMap::new();
    for t in right {
        *right_by_truth.entry(t.truth.as_str()).or_default() += 1;
    }
    let true_matches: u64 = left
        .iter()
        .map(|t| right_by_truth.get(t.truth.as_str()).copied().unwrap_or(0))
        .sum();
    let all_pairs = (left.len() as u64) * (right.len() as u64);
    let thresholds = thresholds
        .iter()
        .map(|&threshold| {
            let (mut tp, mut fp) = (0u64, 0u64);
            for (a, b, s) in &assigned {
                if *s >= threshold {
                    if left[*a as usize].truth == right[*b as usize].truth {
                        tp += 1;
                    } else {
                        fp += 1;
                    }
                }
            }
            let fn_ = true_matches.saturating_sub(tp);
            let precision = if tp + fp == 0 {
                1.0
            } else {
                tp as f64 / (tp + fp) as f64
            };
            let recall = if true_matches == 0 {
                1.0
            } else {
                tp as f64 / true_matches as f64
            };
            let f1 = if precision + recall == 0.0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            };
            AtThreshold {
                threshold,
                true_positives: tp,
                false_positives: fp,
                false_negatives: fn_,
                true_negatives: all_pairs.saturating_sub(tp + fp + fn_),
                precision,
                recall,
                f1,
            }
        })
        .collect();
    Report {
        left_records: left.len(),
        right_records: right.len(),
        true_matches,
        candidate_pairs,
        encode_seconds,
        encode_records_per_second: (left.len() + right.len()) as f64 / encode_seconds.max(1e-9),
        match_seconds,
        thresholds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linkage::synth::Population;

    fn truthful(rows: Vec<crate::linkage::synth::Observation>) -> Vec<Truthful> {
        rows.into_iter()
            .map(|o| Truthful {
                truth: o.entity.to_string(),
                record: o.record,
            })
            .collect()
    }

    /// Quality on names, birth date, sex and country of birth only, at the shipped threshold:
    /// a regression guard for the normalisation, the encoder and the matcher together.
    #[test]
    fn synthetic_registers_link_with_the_target_quality() {
        let defaults = crate::config::Settings::defaults().unwrap();
        let auto = defaults.linkage.auto_link_threshold;
        let encoder = Encoder::new([1; 32], [2; 32], [3; 32], [4; 32]);
        let mut population = Population::new(42, 6000);
        let (l, r) = population.two_registers(0.7);
        let report = evaluate(&encoder, &truthful(l), &truthful(r), &[auto], 2);
        let at = &report.thresholds[0];
        assert!(at.precision >= 0.98 && at.f1 >= 0.95, "{at:?}");
    }

    #[test]
    fn csv_columns_may_be_absent_and_are_read_by_name() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "family_name,id,given_names\nRossi,7,Mario\n").unwrap();
        let rows = read_csv(&path, "id").unwrap();
        assert_eq!(rows[0].truth, "7");
        assert_eq!(rows[0].record.given_names.as_deref(), Some("Mario"));
        assert_eq!(rows[0].record.birth_date, None);
        assert!(read_csv(&path, "entity").is_err());
    }
}

/// What `raccordo linkage bench` reports.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub people: usize,
    pub seed: u64,
    pub threads: usize,
    pub quality: Report,
    /// Baseline: one HMAC-SHA256 per record, the least any keyed encoder must do.
    pub baseline_hmac_per_second: f64,
    /// Encoded records per second relative to that baseline.
    pub encode_to_hmac_ratio: f64,
    /// Baseline: comparisons per second when every pair is scored (measured on a sample).
    pub brute_force_pairs_per_second: f64,
    /// The time scoring every pair would take at that rate, in seconds.
    pub brute_force_estimate_seconds: f64,
    /// Blocking's speed-up: brute-force estimate over the measured matching time.
    pub blocking_speedup: f64,
}

/// Encodes and matches two registers of a synthetic population, and measures the baselines in
/// the same run.
pub fn bench(
    encoder: &Encoder,
    people: usize,
    seed: u64,
    thresholds: &[f64],
    threads: usize,
) -> BenchReport {
    let mut population = super::synth::Population::new(seed, people);
    let (l, r) = population.two_registers(0.7);
    let to_truth = |rows: Vec<super::synth::Observation>| -> Vec<Truthful> {
        rows.into_iter()
            .map(|o| Truthful {
                truth: o.entity.to_string(),
                record: o.record,
            })
            .collect()
    };
    let (left, right) = (to_truth(l), to_truth(r));
    let quality = evaluate(encoder, &left, &right, thresholds, threads);

    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &[7u8; 32]);
    let sample = left.len().min(200_000);
    let started = Instant::now();
    let mut sink = 0u8;
    for t in left.iter().take(sample) {
        let name = t.record.family_name.as_deref().unwrap_or("");
        sink ^= aws_lc_rs::hmac::sign(&key, name.as_bytes()).as_ref()[0];
    }
    let hmac_rate = sample as f64 / started.elapsed().as_secs_f64().max(1e-9);
    std::hint::black_box(sink);

    let items: Vec<Item> = prepare(
        encoder,
        &left
            .iter()
            .take(2000)
            .map(|t| t.record.clone())
            .collect::<Vec<_>>(),
        1,
    );
    let others: Vec<Item> = prepare(
        encoder,
        &right
            .iter()
            .take(2000)
            .map(|t| t.record.clone())
            .collect::<Vec<_>>(),
        1,
    );
    let started = Instant::now();
    let mut acc = 0.0;
    for a in &items {
        for b in &others {
            acc += matcher::score(encoder, a, b);
        }
    }
    let pair_rate = (items.len() * others.len()) as f64 / started.elapsed().as_secs_f64().max(1e-9)
        * threads as f64;
    std::hint::black_box(acc);
    let brute = (left.len() as f64 * right.len() as f64) / pair_rate.max(1.0);
    BenchReport {
        people,
        seed,
        threads,
        baseline_hmac_per_second: hmac_rate,
        encode_to_hmac_ratio: quality.encode_records_per_second / hmac_rate.max(1.0),
        brute_force_pairs_per_second: pair_rate,
        brute_force_estimate_seconds: brute,
        blocking_speedup: brute / quality.match_seconds.max(1e-9),
        quality,
    }
}
