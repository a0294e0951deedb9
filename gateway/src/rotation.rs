//! `raccordo keys rotate`: moves the gateway's pseudonyms and linkage encodings to a new key
//! epoch, with the gateway stopped (sled admits one process).

use crate::config::Config;
use crate::keys::MasterKey;
use crate::persons::{self, RotationReport};
use crate::pseudonym::Pseudonymiser;
use crate::store::{Read, Store};
use crate::vault::Vault;

#[derive(Debug, thiserror::Error)]
#[error("key rotation: {0}")]
pub struct RotationError(String);

fn err(e: impl std::fmt::Display) -> RotationError {
    RotationError(e.to_string())
}

/// Rotates the data directory of `config` from its current epoch to the next.
pub fn rotate(
    config: &Config,
    now: time::OffsetDateTime,
) -> Result<(u32, RotationReport), RotationError> {
    if let crate::store::StoreConfig::Sled { dir, .. } = &config.store
        && !dir.exists()
    {
        return Err(RotationError(format!(
            "{} holds no store",
            config.data_dir.display()
        )));
    }
    let master =
        MasterKey::load_or_create(&config.master_key, &config.master_key_file).map_err(err)?;
    let store = Store::open_with(&config.store).map_err(err)?;
    let from_epoch = store
        .get::<u32>(persons::EPOCH_KEY)
        .map_err(err)?
        .unwrap_or(1);
    let to_epoch = from_epoch + 1;
    let vault = Vault::new(master.derive("raccordo/v1/vault-kek").map_err(err)?).map_err(err)?;
    let encoder = crate::linkage::keys::encoder(&master, to_epoch).map_err(err)?;
    let from = Pseudonymiser::new(master.clone(), from_epoch).map_err(err)?;
    let to = Pseudonymiser::new(master, to_epoch).map_err(err)?;
    let report = persons::rotate(&store, &vault, &from, &to, &encoder, now).map_err(err)?;
    store.close().map_err(err)?;
    Ok((to_epoch, report))
}

/// The instant type rotation takes; re-exported so the command line needs no time crate.
pub type Now = time::OffsetDateTime;

/// The clock, read once by the command line.
pub fn now() -> Now {
    time::OffsetDateTime::now_utc()
}
