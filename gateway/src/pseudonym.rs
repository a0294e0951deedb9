//! Pseudonyms: keyed HMAC-SHA256 of an identifier under a key derived for one domain (the
//! gateway's own regional domain, or one ambito), purpose and key epoch; 128 bits, written in
//! Crockford base32 with its check symbol, so that a mistyped pseudonym is detected.
//!
//! The same person has a different pseudonym in every ambito, so no ambito can join its data
//! with another's; only the gateway holds the regional ones.

use crate::keys::{KeyError, MasterKey};
use aws_lc_rs::hmac;
use raccordo_schemas::codice_fiscale;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CHECK: &[u8; 37] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U";

/// 128 bits as 26 base32 symbols and a check symbol (value mod 37).
pub fn encode(bytes: [u8; 16]) -> String {
    let value = u128::from_be_bytes(bytes);
    let mut out = String::with_capacity(27);
    for i in (0..26).rev() {
        let index = ((value >> (i * 5)) & 31) as usize;
        out.push(ALPHABET[index] as char);
    }
    out.push(CHECK[(value % 37) as usize] as char);
    out
}

/// Whether a pseudonym is well formed and its check symbol matches.
pub fn is_valid(p: &str) -> bool {
    let b = p.as_bytes();
    if b.len() != 27 {
        return false;
    }
    let mut value: u128 = 0;
    for (i, c) in b[..26].iter().enumerate() {
        let Some(d) = ALPHABET.iter().position(|a| a == c) else {
            return false;
        };
        // The first symbol carries only the top 3 bits of 128.
        if i == 0 && d > 7 {
            return false;
        }
        value = (value << 5) | d as u128;
    }
    CHECK[(value % 37) as usize] == b[26]
}

/// The epoch of the ambito-facing pseudonyms.
pub const AMBITO_EPOCH: u32 = 1;

/// Keys of one epoch.
pub struct Pseudonymiser {
    master: MasterKey,
    pub epoch: u32,
    codice_fiscale: hmac::Key,
}

impl Pseudonymiser {
    pub fn new(master: MasterKey, epoch: u32) -> Result<Pseudonymiser, KeyError> {
        let cf = master.derive(&format!(
            "raccordo/v1/pseudonym/regional/codice-fiscale/epoch-{epoch}"
        ))?;
        Ok(Pseudonymiser {
            master,
            epoch,
            codice_fiscale: hmac::Key::new(hmac::HMAC_SHA256, &cf),
        })
    }

    fn tag(key: &hmac::Key, data: &[u8]) -> String {
        let t = hmac::sign(key, data);
        let mut b = [0u8; 16];
        b.copy_from_slice(&t.as_ref()[..16]);
        encode(b)
    }

    /// The regional pseudonym of a codice fiscale (omocodia undone), held by the gateway alone.
    pub fn codice_fiscale(&self, cf: &str) -> Option<String> {
        let cf = codice_fiscale::normalise(cf).ok()?;
        Some(Self::tag(&self.codice_fiscale, cf.as_bytes()))
    }

    /// The pseudonym of a person (by linkage id) in one ambito's domain. Ambiti keep these in
    /// their own systems, so they follow their own epoch (`AMBITO_EPOCH`), not the linkage
    /// rotation, which re-derives only what the gateway stores.
    pub fn for_ambito(&self, ambito: &str, linkage_id: &str) -> Result<String, KeyError> {
        let key = self.master.derive(&format!(
            "raccordo/v1/pseudonym/{ambito}/person/epoch-{AMBITO_EPOCH}"
        ))?;
        Ok(Self::tag(
            &hmac::Key::new(hmac::HMAC_SHA256, &key),
            linkage_id.as_bytes(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> Pseudonymiser {
        Pseudonymiser::new(MasterKey::ephemeral().unwrap(), 1).unwrap()
    }

    #[test]
    fn encoding_has_a_working_check_symbol() {
        let s = encode([0xAB; 16]);
        assert_eq!(s.len(), 27);
        assert!(is_valid(&s));
        let mut typo = s.clone().into_bytes();
        typo[5] = if typo[5] == b'0' { b'1' } else { b'0' };
        assert!(!is_valid(std::str::from_utf8(&typo).unwrap()));
        assert!(is_valid(&encode([0; 16])) && is_valid(&encode([0xFF; 16])));
    }

    #[test]
    fn codice_fiscale_pseudonyms_ignore_omocodia_and_case() {
        let p = p();
        let mut omo = *b"RSSMRA80A01H50M_";
        omo[15] = codice_fiscale::check_character(&omo[..15]);
        let omo = String::from_utf8(omo.to_vec()).unwrap();
        assert_eq!(p.codice_fiscale("RSSMRA80A01H501U"), p.codice_fiscale(&omo));
        assert_eq!(
            p.codice_fiscale("rssmra80a01h501u"),
            p.codice_fiscale("RSSMRA80A01H501U")
        );
        assert!(
            !p.codice_fiscale("RSSMRA80A01H501U")
                .unwrap()
                .contains("RSS")
        );
        assert_eq!(p.codice_fiscale("not a code"), None);
    }

    #[test]
    fn pseudonyms_differ_across_ambiti_and_epochs_and_are_stable_within() {
        let master_bytes = "cd".repeat(32);
        let m = || {
            MasterKey::load_or_create(
                &crate::secret::Secret::new(master_bytes.clone()),
                std::path::Path::new("/nonexistent"),
            )
            .unwrap()
        };
        let e1 = Pseudonymiser::new(m(), 1).unwrap();
        let e2 = Pseudonymiser::new(m(), 2).unwrap();
        let prato = e1.for_ambito("prato", "L-1").unwrap();
        assert_eq!(prato, e1.for_ambito("prato", "L-1").unwrap());
        assert_eq!(
            prato,
            Pseudonymiser::new(m(), 1)
                .unwrap()
                .for_ambito("prato", "L-1")
                .unwrap()
        );
        assert_ne!(prato, e1.for_ambito("firenze", "L-1").unwrap());
        assert_ne!(prato, e1.for_ambito("prato", "L-2").unwrap());
        assert_eq!(
            prato,
            e2.for_ambito("prato", "L-1").unwrap(),
            "ambiti keep their pseudonyms across linkage rotations"
        );
        assert_ne!(
            e1.codice_fiscale("RSSMRA80A01H501U"),
            e2.codice_fiscale("RSSMRA80A01H501U")
        );
        assert!(is_valid(&prato));
    }
}
