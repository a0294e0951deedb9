//! Anonymised monitoring: statistical records at ingress, indicator tables protected with the
//! cell key method, and immutable, signed releases the Region publishes.
//!
//! - `records.rs`: what an episode, distribution or street-unit intervention becomes when it
//!   arrives (no identity, no free text; the person as a keyed unit).
//! - `ingest.rs`: the API's side of receiving them.
//! - `catalogue.rs`: the indicator catalogue (data, versioned).
//! - `cube.rs`: the statistical records in memory, compact, for releases.
//! - `cell_key.rs`: record keys, cell keys and the perturbation table.
//! - `tables.rs`: counting and publishing every cell of every indicator.
//! - `release.rs`: the ledger of releases, their signed manifests and the check that unchanged
//!   cells keep their values.
//! - `formats.rs`: SDMX-CSV 2.0, SDMX-JSON 2.0, plain CSV and JSON.
//! - `http.rs`: the routes.
//! - `bench.rs`: `raccordo bench release`.

pub mod bench;
pub mod catalogue;
pub mod cell_key;
pub mod cube;
pub mod formats;
pub mod http;
pub mod ingest;
pub mod records;
pub mod release;
pub mod tables;

#[cfg(test)]
mod disclosure_tests;

use crate::keys::{KeyError, MasterKey};
use serde::Deserialize;

/// The `[monitoring]` section of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringSettings {
    pub threshold: u32,
    pub max_noise: u32,
    pub variance: f64,
    pub magnitude_noise: f64,
    pub threads: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum MonitoringError {
    #[error(transparent)]
    Table(#[from] cell_key::PTableError),
    #[error(transparent)]
    Catalogue(#[from] catalogue::CatalogueError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("monitoring: magnitude_noise must be between 0 and 1")]
    MagnitudeNoise,
    #[error("monitoring: the release signing key could not be made")]
    Signer,
}

/// What the monitoring runs on: built once at start.
pub struct Monitoring {
    pub catalogue: catalogue::Catalogue,
    pub ptable: cell_key::PTable,
    pub protection: tables::Protection,
    pub units: records::UnitKeys,
    pub signer: release::Signer,
    pub threads: usize,
    pub cube: std::sync::RwLock<cube::Cube>,
}

impl Monitoring {
    pub fn new(s: &MonitoringSettings, master: &MasterKey) -> Result<Monitoring, MonitoringError> {
        if !(0.0..=1.0).contains(&s.magnitude_noise) {
            return Err(MonitoringError::MagnitudeNoise);
        }
        let ptable = cell_key::PTable::build(cell_key::Params {
            threshold: s.threshold,
            max_noise: s.max_noise,
            variance: s.variance,
        })?;
        let threads = if s.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            s.threads
        };
        Ok(Monitoring {
            catalogue: catalogue::Catalogue::shipped()?,
            ptable,
            protection: tables::Protection {
                magnitude_noise: s.magnitude_noise,
            },
            units: records::UnitKeys::new(&master.derive("raccordo/v1/monitoring/record-keys")?),
            signer: release::Signer::new(&master.derive("raccordo/v1/monitoring/release-signing")?)
                .ok_or(MonitoringError::Signer)?,
            threads,
            cube: std::sync::RwLock::new(cube::Cube::default()),
        })
    }
}
