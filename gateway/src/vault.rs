//! The identity vault. Each identity is encrypted with its own data key (AES-256-GCM); the data
//! key is stored wrapped by a key-encryption key derived from the master secret. Destroying a
//! wrapped data key makes that identity unreadable everywhere (crypto-shredding), which is how
//! erasure will work without rewriting history.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("identity could not be sealed")]
    Seal,
    #[error("identity could not be opened (wrong key, or the record was altered)")]
    Open,
}

/// What the store keeps: nothing readable without the master secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealedIdentity {
    /// Nonce and ciphertext of the data key under the key-encryption key.
    #[serde(with = "hex_bytes")]
    pub wrapped_key: Vec<u8>,
    /// Nonce and ciphertext of the identity (JSON) under the data key.
    #[serde(with = "hex_bytes")]
    pub ciphertext: Vec<u8>,
}

/// Bytes as a hex string: a JSON array of numbers would triple the size of every sealed record.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::pki::hex(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <&str>::deserialize(d)?;
        if text.len() % 2 != 0 {
            return Err(D::Error::custom("odd number of hex digits"));
        }
        (0..text.len())
            .step_by(2)
            .map(|i| {
                text.get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                    .ok_or_else(|| D::Error::custom("not hex"))
            })
            .collect()
    }
}

pub struct Vault {
    kek: LessSafeKey,
    rng: SystemRandom,
}

impl Vault {
    pub fn new(kek: [u8; 32]) -> Result<Vault, VaultError> {
        let key = UnboundKey::new(&AES_256_GCM, &kek).map_err(|_| VaultError::Seal)?;
        Ok(Vault {
            kek: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
    }

    /// Encrypts an identity, bound to `context` (the record it belongs to) so that a sealed
    /// identity moved to another record does not open.
    pub fn seal<T: Serialize>(
        &self,
        identity: &T,
        context: &str,
    ) -> Result<SealedIdentity, VaultError> {
        let mut data_key = [0u8; 32];
        self.rng.fill(&mut data_key).map_err(|_| VaultError::Seal)?;
        let plaintext = serde_json::to_vec(identity).map_err(|_| VaultError::Seal)?;
        let dek = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &data_key).map_err(|_| VaultError::Seal)?,
        );
        Ok(SealedIdentity {
            ciphertext: self.encrypt(&dek, &plaintext, context)?,
            wrapped_key: self.encrypt(&self.kek, &data_key, context)?,
        })
    }

    pub fn open<T: DeserializeOwned>(
        &self,
        sealed: &SealedIdentity,
        context: &str,
    ) -> Result<T, VaultError> {
        let data_key = self.decrypt(&self.kek, &sealed.wrapped_key, context)?;
        let dek = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &data_key).map_err(|_| VaultError::Open)?,
        );
        let plaintext = self.decrypt(&dek, &sealed.ciphertext, context)?;
        serde_json::from_slice(&plaintext).map_err(|_| VaultError::Open)
    }

    fn encrypt(
        &self,
        key: &LessSafeKey,
        plaintext: &[u8],
        context: &str,
    ) -> Result<Vec<u8>, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| VaultError::Seal)?;
        let mut buf = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context.as_bytes()),
            &mut buf,
        )
        .map_err(|_| VaultError::Seal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    fn decrypt(
        &self,
        key: &LessSafeKey,
        sealed: &[u8],
        context: &str,
    ) -> Result<Vec<u8>, VaultError> {
        if sealed.len() < NONCE_LEN {
            return Err(VaultError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| VaultError::Open)?;
        let mut buf = body.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| VaultError::Open)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raccordo_schemas::Identity;

    #[test]
    fn seals_and_opens_only_in_its_context() {
        let vault = Vault::new([1u8; 32]).unwrap();
        let identity = Identity {
            family_name: Some("Rossi".into()),
            ..Identity::default()
        };
        let sealed = vault.seal(&identity, "ref-1").unwrap();
        let bytes = serde_json::to_vec(&sealed).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("Rossi"));
        assert_eq!(vault.open::<Identity>(&sealed, "ref-1").unwrap(), identity);
        assert!(vault.open::<Identity>(&sealed, "ref-2").is_err());
        let other = Vault::new([2u8; 32]).unwrap();
        assert!(other.open::<Identity>(&sealed, "ref-1").is_err());
    }
}
