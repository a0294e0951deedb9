//! Pseudonyms: keyed HMAC-SHA256 of a normalised identifier, so the same person gets the same
//! pseudonym and nobody without the key can go back. The next stage (per-ambito domains, key
//! epochs, linkage without a codice fiscale) extends this module; callers only ever see
//! `Pseudonymiser::subject`.

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use raccordo_schemas::{Identity, codice_fiscale};

pub struct Pseudonymiser {
    regional: hmac::Key,
    rng: SystemRandom,
}

impl Pseudonymiser {
    pub fn new(regional_key: [u8; 32]) -> Pseudonymiser {
        Pseudonymiser {
            regional: hmac::Key::new(hmac::HMAC_SHA256, &regional_key),
            rng: SystemRandom::new(),
        }
    }

    /// The regional pseudonym of the person: stable when a codice fiscale is known, otherwise a
    /// fresh random one (linkage without it comes with probabilistic matching).
    pub fn subject(&self, identity: Option<&Identity>) -> Result<String, RandomUnavailable> {
        let cf = identity
            .and_then(|i| i.codice_fiscale.as_deref())
            .and_then(|cf| codice_fiscale::normalise(cf).ok());
        let bytes: [u8; 16] = match cf {
            Some(cf) => {
                let tag = hmac::sign(&self.regional, cf.as_bytes());
                let mut out = [0u8; 16];
                out.copy_from_slice(&tag.as_ref()[..16]);
                out
            }
            None => {
                let mut out = [0u8; 16];
                self.rng.fill(&mut out).map_err(|_| RandomUnavailable)?;
                out
            }
        };
        Ok(format!("p{}", crate::pki::hex(&bytes)))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomUnavailable;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_codice_fiscale_same_pseudonym_including_omocodia() {
        let p = Pseudonymiser::new([3u8; 32]);
        let a = Identity {
            codice_fiscale: Some("RSSMRA80A01H501U".into()),
            ..Identity::default()
        };
        let mut omo = *b"RSSMRA80A01H50M_";
        omo[15] = codice_fiscale::check_character(&omo[..15]);
        let b = Identity {
            codice_fiscale: Some(String::from_utf8(omo.to_vec()).unwrap()),
            ..Identity::default()
        };
        assert_eq!(p.subject(Some(&a)).unwrap(), p.subject(Some(&b)).unwrap());
        assert!(!p.subject(Some(&a)).unwrap().contains("RSS"));
        assert_ne!(p.subject(None).unwrap(), p.subject(None).unwrap());
        let other = Pseudonymiser::new([4u8; 32]);
        assert_ne!(
            p.subject(Some(&a)).unwrap(),
            other.subject(Some(&a)).unwrap()
        );
    }
}
