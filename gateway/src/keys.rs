//! The key hierarchy: one master secret, and keys derived from it with HKDF-SHA256 for each
//! use, so that compromising one derived key reveals neither the master nor its siblings.

use crate::secret::Secret;
use aws_lc_rs::hkdf;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("master key: {0}")]
    Master(String),
    #[error("key derivation failed")]
    Derive,
}

/// The 32-byte master secret.
#[derive(Clone)]
pub struct MasterKey(Secret<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// From 64 hex characters (the environment), or else from the file, created when missing.
    pub fn load_or_create(hex: &Secret<String>, file: &Path) -> Result<MasterKey, KeyError> {
        if !hex.expose().is_empty() {
            return parse_hex(hex.expose().trim())
                .map(|k| MasterKey(Secret::new(k)))
                .ok_or_else(|| {
                    KeyError::Master("RACCORDO_KEYS__MASTER_KEY is not 64 hex characters".into())
                });
        }
        if file.exists() {
            let bytes = std::fs::read(file)
                .map_err(|e| KeyError::Master(format!("{}: {e}", file.display())))?;
            let key: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| KeyError::Master(format!("{}: expected 32 bytes", file.display())))?;
            return Ok(MasterKey(Secret::new(key)));
        }
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| KeyError::Master("no randomness".into()))?;
        crate::files::write(file, &key, true)
            .map_err(|e| KeyError::Master(format!("{}: {e}", file.display())))?;
        Ok(MasterKey(Secret::new(key)))
    }

    /// A random key that lives only in memory, for tools that need consistent keys within a run.
    pub fn ephemeral() -> Result<MasterKey, KeyError> {
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| KeyError::Master("no randomness".into()))?;
        Ok(MasterKey(Secret::new(key)))
    }

    /// A 32-byte key for one purpose, named by `info` (e.g. `raccordo/v1/vault-kek`).
    pub fn derive(&self, info: &str) -> Result<[u8; 32], KeyError> {
        struct Len32;
        impl hkdf::KeyType for Len32 {
            fn len(&self) -> usize {
                32
            }
        }
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"raccordo key hierarchy v1");
        let prk = salt.extract(self.0.expose());
        let info = [info.as_bytes()];
        let okm = prk.expand(&info, Len32).map_err(|_| KeyError::Derive)?;
        let mut out = [0u8; 32];
        okm.fill(&mut out).map_err(|_| KeyError::Derive)?;
        Ok(out)
    }
}

fn parse_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_differ_by_purpose_and_are_stable() {
        let m = MasterKey(Secret::new([7u8; 32]));
        let a = m.derive("raccordo/v1/vault-kek").unwrap();
        let b = m.derive("raccordo/v1/pseudonym/regional/1").unwrap();
        assert_ne!(a, b);
        assert_eq!(a, m.derive("raccordo/v1/vault-kek").unwrap());
    }

    #[test]
    fn hex_master_key_from_environment() {
        let hex = Secret::new("ab".repeat(32));
        let m = MasterKey::load_or_create(&hex, Path::new("/nonexistent/never-read")).unwrap();
        assert_eq!(m.0.expose(), &[0xab; 32]);
        assert!(MasterKey::load_or_create(&Secret::new("zz".into()), Path::new("/x")).is_err());
    }
}
