//! The linkage keys of an epoch, derived from the master secret.

use super::Encoder;
use crate::config::Config;
use crate::keys::{KeyError, MasterKey};

/// The encoder of `epoch`.
pub fn encoder(master: &MasterKey, epoch: u32) -> Result<Encoder, KeyError> {
    let k = |field: &str| master.derive(&format!("raccordo/v1/linkage/{field}/epoch-{epoch}"));
    Ok(Encoder::new(
        k("names")?,
        k("dates")?,
        k("other")?,
        k("blocking")?,
    ))
}

/// The encoder a configured gateway uses now: its master key when one exists, or a throw-away
/// key (scores do not depend on which key is used, only on its being the same on both sides).
pub fn encoder_for(config: &Config) -> Result<Encoder, KeyError> {
    let master = if !config.master_key.expose().is_empty() || config.master_key_file.exists() {
        MasterKey::load_or_create(&config.master_key, &config.master_key_file)?
    } else {
        MasterKey::ephemeral()?
    };
    // Scores do not depend on the epoch either; the first one is as good as any.
    encoder(&master, 1)
}
