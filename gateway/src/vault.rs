//! The identity vault: envelope encryption with one data key per person.
//!
//! Each person (regional linkage id) gets a random AES-256-GCM data key, stored only wrapped by
//! a key-encryption key derived from the master secret. Everything identifying about the person
//! (identity, free text) is sealed under that data key, bound to the record it belongs to.
//! Destroying the wrapped key makes all of it unreadable at once, wherever it is stored:
//! crypto-shredding, which is how erasure works without rewriting history.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("identity could not be sealed")]
    Seal,
    #[error("identity could not be opened (wrong key, erased, or altered)")]
    Open,
}

/// A person's data key, wrapped by the key-encryption key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey(#[serde(with = "hex_bytes")] pub Vec<u8>);

/// Nonce and ciphertext of a sealed value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ciphertext(#[serde(with = "hex_bytes")] pub Vec<u8>);

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

    /// A new data key for `owner` (the person's linkage id), wrapped.
    pub fn new_data_key(&self, owner: &str) -> Result<WrappedKey, VaultError> {
        let mut key = [0u8; 32];
        self.rng.fill(&mut key).map_err(|_| VaultError::Seal)?;
        Ok(WrappedKey(self.encrypt(&self.kek, &key, owner)?))
    }

    fn unwrap_key(&self, wrapped: &WrappedKey, owner: &str) -> Result<LessSafeKey, VaultError> {
        let key = self.decrypt(&self.kek, &wrapped.0, owner)?;
        Ok(LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &key).map_err(|_| VaultError::Open)?,
        ))
    }

    /// Seals `value` under the owner's data key, bound to `context` (the record it belongs to),
    /// so that a sealed value moved to another record does not open.
    pub fn seal<T: Serialize>(
        &self,
        key: &WrappedKey,
        owner: &str,
        value: &T,
        context: &str,
    ) -> Result<Ciphertext, VaultError> {
        let dek = self.unwrap_key(key, owner).map_err(|_| VaultError::Seal)?;
        let plaintext = serde_json::to_vec(value).map_err(|_| VaultError::Seal)?;
        Ok(Ciphertext(self.encrypt(&dek, &plaintext, context)?))
    }

    pub fn open<T: DeserializeOwned>(
        &self,
        key: &WrappedKey,
        owner: &str,
        sealed: &Ciphertext,
        context: &str,
    ) -> Result<T, VaultError> {
        let dek = self.unwrap_key(key, owner)?;
        let plaintext = self.decrypt(&dek, &sealed.0, context)?;
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
    fn seals_and_opens_only_with_its_key_owner_and_context() {
        let vault = Vault::new([1u8; 32]).unwrap();
        let identity = Identity {
            family_name: Some("Rossi".into()),
            ..Identity::default()
        };
        let key = vault.new_data_key("L1").unwrap();
        let sealed = vault.seal(&key, "L1", &identity, "ref-1").unwrap();
        let bytes = serde_json::to_vec(&sealed).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("Rossi"));
        assert_eq!(
            vault
                .open::<Identity>(&key, "L1", &sealed, "ref-1")
                .unwrap(),
            identity
        );
        assert!(
            vault
                .open::<Identity>(&key, "L1", &sealed, "ref-2")
                .is_err(),
            "another record"
        );
        assert!(
            vault
                .open::<Identity>(&key, "L2", &sealed, "ref-1")
                .is_err(),
            "another owner"
        );
        let other_key = vault.new_data_key("L1").unwrap();
        assert!(
            vault
                .open::<Identity>(&other_key, "L1", &sealed, "ref-1")
                .is_err(),
            "another data key"
        );
        let other = Vault::new([2u8; 32]).unwrap();
        assert!(
            other
                .open::<Identity>(&key, "L1", &sealed, "ref-1")
                .is_err(),
            "another master"
        );
    }
}
