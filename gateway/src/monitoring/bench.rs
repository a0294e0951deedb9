//! `raccordo monitoring bench`: a release over a synthetic population of statistical records,
//! every indicator with every breakdown, timed phase by phase against a baseline measured in the
//! same run (one group-by count over the same records, the least any table tool does).

use super::catalogue::Catalogue;
use super::cell_key::{PTable, Params};
use super::records::{Kind, StatRecord, UnitKeys, day_number};
use super::tables::{self, Input, Protection, ReferralFacts};
use crate::store::{Store, StoreError};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// Why the bench could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Catalogue(#[from] super::catalogue::CatalogueError),
    #[error(transparent)]
    Table(#[from] super::cell_key::PTableError),
}

#[derive(Debug, Serialize)]
pub struct ReleaseBench {
    pub machine: crate::bench::Machine,
    pub threads: usize,
    pub records: usize,
    pub persons: usize,
    pub referrals: usize,
    pub observations: usize,
    /// Baseline: one pass over the cube counting records by (ambito, category) in a hash map.
    pub baseline_group_by_seconds: f64,
    /// At start: reading every statistical record back on one thread without decoding.
    pub scan_seconds: f64,
    /// At start: loading the cube (reading and decoding every record, two threads).
    pub load_seconds: f64,
    /// A release: copying the cube's rows.
    pub copy_seconds: f64,
    /// Every indicator, every breakdown, every cell perturbed.
    pub compute_seconds: f64,
    /// All four formats.
    pub render_seconds: f64,
    /// A release: copy, compute and render (the tables are stored as JSON besides).
    pub release_seconds: f64,
    pub release_to_baseline_ratio: f64,
    pub target_seconds: f64,
    pub target_met: bool,
    /// The in-memory cube (rows and index).
    pub cube_bytes: usize,
    /// The whole run's peak, which includes generating the synthetic records and writing them
    /// to sled, not only the release.
    pub peak_rss_kib: u64,
}

/// A seeded population: one person in three has several records, some in several ambiti.
pub fn synthetic(
    records: usize,
    seed: u64,
    ambiti: &[String],
) -> (Vec<StatRecord>, Vec<ReferralFacts>, usize) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let keys = UnitKeys::new(&[42; 32]);
    let persons = (records / 3).max(1);
    let services = [
        "case_management",
        "night_shelter",
        "housing_first",
        "housing_led",
        "day_centre",
        "fictitious_residence",
    ];
    let kits = [
        "underwear",
        "personal_hygiene",
        "emergency",
        "bedding",
        "clothing",
    ];
    let sexes = ["female", "male", "male", "male", "unknown"];
    let ages = ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"];
    let cits = ["italian", "eu", "non_eu", "non_eu"];
    let start = day_number(time::macros::date!(2026 - 01 - 01));
    let mut out = Vec::with_capacity(records);
    for i in 0..records {
        let person = rng.random_range(0..persons);
        let unit = keys.person(&format!("p{person}"));
        let ambito = &ambiti[(person + usize::from(rng.random_bool(0.1))) % ambiti.len()];
        let day = start + rng.random_range(0..365);
        let (kind, category, end, quantity, minutes) = match i % 10 {
            0..=5 => {
                let s = services[rng.random_range(0..services.len())];
                let end = rng.random_bool(0.7).then(|| day + rng.random_range(1..120));
                (Kind::Episode, s, end, 1, None)
            }
            6..=8 => (
                Kind::Distribution,
                kits[rng.random_range(0..kits.len())],
                Some(day),
                rng.random_range(1..5),
                None,
            ),
            _ => {
                let reached = rng.random_bool(0.8);
                (
                    Kind::Intervention,
                    if reached { "reached" } else { "not_found" },
                    Some(day),
                    1,
                    reached.then(|| rng.random_range(10..400)),
                )
            }
        };
        out.push(StatRecord {
            kind,
            ambito: ambito.clone(),
            fingerprint: unit.fingerprint,
            key: unit.key,
            category: category.to_owned(),
            start: day,
            end,
            quantity,
            minutes,
            sex: Some(sexes[person % sexes.len()].to_owned()),
            age_band: Some(ages[person % ages.len()].to_owned()),
            citizenship_group: Some(cits[person % cits.len()].to_owned()),
            ethos_light: Some(((person % 6) + 1).to_string()),
        });
    }
    let referrals = (records / 100).max(1);
    let facts = (0..referrals)
        .map(|i| {
            let unit = keys.record("referral", "bench", &i.to_string());
            let sent = start + rng.random_range(0..365);
            let accepted = rng.random_bool(0.7);
            let minutes = rng.random_range(5..3000);
            ReferralFacts {
                fingerprint: unit.fingerprint,
                key: unit.key,
                sender: ambiti[i % ambiti.len()].clone(),
                receiver: ambiti[(i + 1) % ambiti.len()].clone(),
                urgency: ["immediate", "urgent", "ordinary"][i % 3].to_owned(),
                sent_day: Some(sent),
                accepted_day: accepted.then_some(sent + (minutes / 1440) as i32),
                rejected_day: (!accepted).then_some(sent),
                minutes_to_acceptance: accepted.then_some(minutes),
                minutes_to_first_response: Some(minutes),
                sex: sexes[i % sexes.len()].to_owned(),
                age_band: ages[i % ages.len()].to_owned(),
                citizenship_group: cits[i % cits.len()].to_owned(),
                ethos_light: Some("1".to_owned()),
            }
        })
        .collect();
    (out, facts, persons)
}

pub fn run(
    records: usize,
    seed: u64,
    threads: usize,
    scratch: &Path,
) -> Result<ReleaseBench, BenchError> {
    let ambiti: Vec<String> = [
        "arezzo", "carrara", "firenze", "grosseto", "livorno", "lucca", "pisa", "pistoia", "prato",
        "siena",
    ]
    .map(str::to_owned)
    .to_vec();
    let (stat, referrals, persons) = synthetic(records, seed, &ambiti);
    let store = Store::open(scratch)?;
    for (c, chunk) in stat.chunks(10_000).enumerate() {
        let (_, _ticket) = store.write(|txn| -> Result<(), StoreError> {
            for (i, r) in chunk.iter().enumerate() {
                let i = c * 10_000 + i;
                let key = super::ingest::key(r.kind, &r.ambito, &i.to_string());
                txn.put_bytes(&key, r.encode());
            }
            Ok(())
        })?;
    }
    store.close()?;
    drop(stat);

    drop(store);

    // Each reading starts from a freshly opened store (sled's cache empty; the operating
    // system's page cache warm, as on a gateway that has been serving).
    let store = Store::open(scratch)?;
    let t = Instant::now();
    let cube = super::cube::Cube::load(&store, threads)?;
    let load_seconds = t.elapsed().as_secs_f64();
    drop(store);

    // Reading alone on one thread, to tell the store's share of loading from decoding's.
    let store = Store::open(scratch)?;
    let t = Instant::now();
    let mut bytes = 0usize;
    store.visit_prefix(super::ingest::PREFIX, |_, v| {
        bytes += v.len();
        Ok(())
    })?;
    std::hint::black_box(bytes);
    let scan_seconds = t.elapsed().as_secs_f64();
    drop(store);

    let t = Instant::now();
    let mut counts: HashMap<(u16, u16), u64> = HashMap::new();
    for r in cube.rows() {
        *counts.entry((r.ambito, r.category)).or_default() += 1;
    }
    let baseline = t.elapsed().as_secs_f64();
    std::hint::black_box(&counts);

    let catalogue = Catalogue::shipped()?;
    let ptable = PTable::build(Params {
        threshold: 3,
        max_noise: 5,
        variance: 3.0,
    })?;
    let periods = tables::periods("2026").unwrap_or_default();
    let places: HashMap<(String, String), u64> = ambiti
        .iter()
        .map(|a| ((a.clone(), "night_shelter".to_owned()), 40))
        .collect();
    // What a release does first: copy the cube's rows, so that ingest can go on.
    let t = Instant::now();
    let rows = cube.rows().to_vec();
    let record_ambiti = cube.ambiti().to_vec();
    let copy_seconds = t.elapsed().as_secs_f64();
    let input = Input {
        records: &rows,
        record_ambiti: &record_ambiti,
        referrals: &referrals,
        places: &places,
        ambiti: &ambiti,
        periods: &periods,
        as_of: day_number(time::macros::date!(2027 - 01 - 15)),
    };
    let t = Instant::now();
    let tables = tables::compute(
        &catalogue,
        &input,
        &ptable,
        Protection {
            magnitude_noise: 0.1,
        },
        threads,
    );
    let compute_seconds = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let entry = super::release::Entry {
        seq: 1,
        id: "bench".into(),
        period: "2026".into(),
        manifest: serde_json::json!({"created_at": "2027-01-15T10:00:00Z", "time_periods": ["2026-Q1"]}),
        signature: String::new(),
        hash: String::new(),
        previous: String::new(),
    };
    let names = HashMap::new();
    let sizes = [
        super::formats::sdmx_csv(&catalogue, &tables).len(),
        super::formats::csv(&catalogue, &tables).len(),
        serde_json::to_vec(&super::formats::sdmx_json(
            &catalogue, &entry, &tables, &names, "it",
        ))
        .map_or(0, |v| v.len()),
        serde_json::to_vec(&super::formats::json(&catalogue, &entry, &tables, "it"))
            .map_or(0, |v| v.len()),
    ];
    std::hint::black_box(sizes);
    let render_seconds = t.elapsed().as_secs_f64();
    let release_seconds = copy_seconds + compute_seconds + render_seconds;
    Ok(ReleaseBench {
        machine: crate::bench::machine(),
        threads,
        records: cube.len(),
        copy_seconds,
        persons,
        referrals: referrals.len(),
        observations: tables.iter().map(|t| t.observations.len()).sum(),
        baseline_group_by_seconds: baseline,
        scan_seconds,
        load_seconds,
        compute_seconds,
        render_seconds,
        release_seconds,
        release_to_baseline_ratio: release_seconds / baseline.max(1e-9),
        target_seconds: 2.0,
        target_met: release_seconds < 2.0,
        cube_bytes: cube.approx_bytes(),
        peak_rss_kib: crate::bench::proc_status_kib(std::process::id(), "VmHWM:"),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bench_reads_back_every_record_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let report = super::run(3000, 1, 2, &dir.path().join("store")).unwrap();
        assert_eq!(report.records, 3000);
        assert!(report.observations > 10_000);
    }
}
