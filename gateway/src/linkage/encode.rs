//! Bloom-filter encodings of identifying fields (cryptographic long-term keys, after Schnell et
//! al. 2009): each field's tokens are hashed with a keyed HMAC into one 1024-bit filter. Name
//! tokens are salted with the year of birth, the practical defence against graph attacks on
//! unsalted encodings. Encodings and blocking keys are computed and compared only inside the
//! gateway; they never leave it.

use super::normalise::{self, BirthDate};
use aws_lc_rs::hmac;

/// Bits of each field's filter.
pub const BITS: usize = 256;
const WORDS: usize = BITS / 64;

/// Hash functions per token, by field.
const K_NAME_BIGRAM: usize = 6;
const K_NAME_SKELETON: usize = 10;
const K_YEAR: usize = 12;
const K_MONTH: usize = 8;
const K_DAY: usize = 8;
const K_SEX: usize = 8;
const K_COUNTRY: usize = 8;

/// A Bloom filter of one field (or one name token). Stored as hex.
#[derive(Clone, PartialEq, Eq)]
pub struct Filter(pub [u64; WORDS]);

impl serde::Serialize for Filter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::pki::hex(&self.to_bytes()))
    }
}

impl<'de> serde::Deserialize<'de> for Filter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Filter, D::Error> {
        use serde::de::Error;
        let text = <&str>::deserialize(d)?;
        let bytes: Option<Vec<u8>> = (0..text.len())
            .step_by(2)
            .map(|i| {
                text.get(i..i + 2)
                    .and_then(|p| u8::from_str_radix(p, 16).ok())
            })
            .collect();
        bytes
            .and_then(|b| Filter::from_bytes(&b))
            .ok_or_else(|| D::Error::custom("not a filter"))
    }
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Filter({} bits set)", self.ones())
    }
}

impl Default for Filter {
    fn default() -> Self {
        Filter([0; WORDS])
    }
}

impl Filter {
    fn set(&mut self, bit: usize) {
        self.0[bit / 64] |= 1 << (bit % 64);
    }

    pub fn ones(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    /// Dice coefficient: 2|A∩B| / (|A| + |B|).
    pub fn dice(&self, other: &Filter) -> f64 {
        let mut common = 0u32;
        let mut total = 0u32;
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            common += (a & b).count_ones();
            total += a.count_ones() + b.count_ones();
        }
        if total == 0 {
            0.0
        } else {
            2.0 * f64::from(common) / f64::from(total)
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Filter> {
        if bytes.len() != BITS / 8 {
            return None;
        }
        let mut f = Filter::default();
        for (i, chunk) in bytes.chunks_exact(8).enumerate() {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            f.0[i] = u64::from_le_bytes(w);
        }
        Some(f)
    }
}

/// The identifying fields linkage works with; any of them may be unknown.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkRecord {
    pub given_names: Option<String>,
    pub family_name: Option<String>,
    pub aliases: Vec<String>,
    pub birth_date: Option<String>,
    pub birth_date_is_placeholder: bool,
    pub sex: Option<String>,
    pub country_of_birth: Option<String>,
}

impl LinkRecord {
    pub fn from_identity(i: &raccordo_schemas::Identity) -> LinkRecord {
        LinkRecord {
            given_names: i.given_names.clone(),
            family_name: i.family_name.clone(),
            aliases: i.aliases.clone(),
            birth_date: i.birth_date.clone(),
            birth_date_is_placeholder: i.birth_date_is_placeholder.unwrap_or(false),
            sex: i.sex.clone(),
            country_of_birth: i.country_of_birth.clone(),
        }
    }
}

/// The encoding of a record: field-level Bloom filters, one per name token (for each spelling
/// of the name: the registered one, then each alias) salted with `salt_year`, and one each for
/// the birth date, sex and country of birth when known.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Encoded {
    pub salt_year: Option<u16>,
    pub names: Vec<Vec<Filter>>,
    pub year: Option<Filter>,
    pub month: Option<Filter>,
    pub day: Option<Filter>,
    /// Day and month as an unordered pair, so that a swap of the two is recognised.
    pub day_month: Option<Filter>,
    pub sex: Option<Filter>,
    pub country: Option<Filter>,
}

/// The normalised fields of a record, kept only while encoding.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// One token set per spelling of the name: the registered name first, then each alias.
    pub names: Vec<Vec<String>>,
    pub birth: BirthDate,
    pub sex: Option<char>,
    pub country: Option<String>,
}

impl Prepared {
    pub fn new(r: &LinkRecord) -> Prepared {
        let mut names = Vec::new();
        let primary: Vec<&str> = [r.given_names.as_deref(), r.family_name.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        let primary = normalise::name_tokens(&primary);
        if !primary.is_empty() {
            names.push(primary);
        }
        // An alias stands for the given names: "Gianni" for Giovanni Rossi is "Gianni Rossi".
        for alias in &r.aliases {
            let parts: Vec<&str> = std::iter::once(alias.as_str())
                .chain(r.family_name.as_deref())
                .collect();
            let tokens = normalise::name_tokens(&parts);
            if !tokens.is_empty() && !names.contains(&tokens) {
                names.push(tokens);
            }
        }
        Prepared {
            names,
            birth: normalise::birth_date(r.birth_date.as_deref(), r.birth_date_is_placeholder),
            sex: normalise::sex(r.sex.as_deref()),
            country: normalise::country(r.country_of_birth.as_deref()),
        }
    }
}

/// The keys of one epoch, one per field, derived from the master secret by the caller.
pub struct Encoder {
    names: hmac::Key,
    dates: hmac::Key,
    other: hmac::Key,
    blocking: hmac::Key,
}

impl Encoder {
    pub fn new(names: [u8; 32], dates: [u8; 32], other: [u8; 32], blocking: [u8; 32]) -> Encoder {
        let k = |b: [u8; 32]| hmac::Key::new(hmac::HMAC_SHA256, &b);
        Encoder {
            names: k(names),
            dates: k(dates),
            other: k(other),
            blocking: k(blocking),
        }
    }

    fn add(filter: &mut Filter, key: &hmac::Key, token: &[u8], k: usize) {
        let tag = hmac::sign(key, token);
        let t = tag.as_ref();
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&t[..8]);
        b.copy_from_slice(&t[8..16]);
        let h1 = u64::from_le_bytes(a);
        let h2 = u64::from_le_bytes(b) | 1;
        for i in 0..k as u64 {
            filter.set((h1.wrapping_add(i.wrapping_mul(h2)) % BITS as u64) as usize);
        }
    }

    /// The encoding of a prepared record, names salted with `salt_year` (the record's own year
    /// of birth, or another when comparing across a missing or mistyped year).
    pub fn encode(&self, p: &Prepared, salt_year: Option<u16>) -> Encoded {
        let mut buf = Vec::with_capacity(32);
        let one = |token: &[u8], k: usize| {
            let mut f = Filter::default();
            Self::add(&mut f, &self.dates, token, k);
            f
        };
        let year = p.birth.year.map(|y| {
            let b = y.to_le_bytes();
            one(&[b'Y', b[0], b[1]], K_YEAR)
        });
        let month = p.birth.month.map(|m| one(&[b'M', m], K_MONTH));
        let day = p.birth.day.map(|d| one(&[b'D', d], K_DAY));
        let day_month = p
            .birth
            .day
            .zip(p.birth.month)
            .map(|(d, m)| one(&[b'P', d.min(m), d.max(m)], K_DAY));
        let sex = p.sex.map(|s| {
            let mut f = Filter::default();
            Self::add(&mut f, &self.other, &[b'S', s as u8], K_SEX);
            f
        });
        let country = p.country.as_ref().map(|c| {
            let mut f = Filter::default();
            let mut token = vec![b'C'];
            token.extend_from_slice(c.as_bytes());
            Self::add(&mut f, &self.other, &token, K_COUNTRY);
            f
        });
        let salt = salt_year.unwrap_or(0).to_le_bytes();
        let names = p
            .names
            .iter()
            .map(|tokens| {
                tokens
                    .iter()
                    .map(|t| {
                        let mut f = Filter::default();
                        let spelled = normalise::spelled(t);
                        let padded: Vec<u8> = std::iter::once(b'_')
                            .chain(spelled.bytes())
                            .chain(std::iter::once(b'_'))
                            .collect();
                        for pair in padded.windows(2) {
                            buf.clear();
                            buf.extend_from_slice(&salt);
                            buf.push(b'N');
                            buf.extend_from_slice(pair);
                            Self::add(&mut f, &self.names, &buf, K_NAME_BIGRAM);
                        }
                        buf.clear();
                        buf.extend_from_slice(&salt);
                        buf.push(b'K');
                        buf.extend_from_slice(normalise::skeleton(t).as_bytes());
                        Self::add(&mut f, &self.names, &buf, K_NAME_SKELETON);
                        f
                    })
                    .collect()
            })
            .collect();
        Encoded {
            salt_year,
            names,
            year,
            month,
            day,
            day_month,
            sex,
            country,
        }
    }

    /// Keyed blocking keys: records are compared only when they share one. Several passes, so
    /// that an error in any one field does not hide a true match.
    pub fn blocks(&self, p: &Prepared) -> Vec<u64> {
        let mut keys = Vec::new();
        let mut push = |parts: &[&[u8]]| {
            let mut ctx = hmac::Context::with_key(&self.blocking);
            for part in parts {
                ctx.update(part);
                ctx.update(b"|");
            }
            let tag = ctx.sign();
            let mut w = [0u8; 8];
            w.copy_from_slice(&tag.as_ref()[..8]);
            keys.push(u64::from_le_bytes(w));
        };
        let year = p.birth.year.map(|y| y.to_le_bytes());
        let sex = p.sex.map(|s| [s as u8]);
        // Decades of birth: the record's own, or every decade when the year is unknown, so that
        // a record without a year still meets its namesakes.
        let decades: Vec<[u8; 2]> = match p.birth.year {
            Some(y) => vec![(y / 10).to_le_bytes()],
            None => (190..=210u16).map(|d| d.to_le_bytes()).collect(),
        };
        for tokens in &p.names {
            for t in tokens {
                let sk = normalise::skeleton(t);
                let prefix = &sk.as_bytes()[..sk.len().min(3)];
                if let Some(y) = &year {
                    push(&[b"NY", prefix, y]);
                }
                for d in &decades {
                    push(&[b"ND", prefix, sex.as_ref().map_or(&b"?"[..], |s| &s[..]), d]);
                }
            }
        }
        if let (Some(y), Some(m), Some(d)) = (p.birth.year, p.birth.month, p.birth.day) {
            push(&[b"DOB", &y.to_le_bytes(), &[m, d]]);
        }
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoder() -> Encoder {
        Encoder::new([1; 32], [2; 32], [3; 32], [4; 32])
    }

    fn rec(given: &str, family: &str, birth: &str, sex: &str, country: &str) -> LinkRecord {
        LinkRecord {
            given_names: Some(given.into()),
            family_name: Some(family.into()),
            birth_date: Some(birth.into()),
            sex: Some(sex.into()),
            country_of_birth: Some(country.into()),
            ..LinkRecord::default()
        }
    }

    #[test]
    fn keys_change_everything() {
        let p = Prepared::new(&rec("Anna", "Bianchi", "1970", "female", "IT"));
        let a = encoder().encode(&p, p.birth.year);
        let b = Encoder::new([9; 32], [2; 32], [3; 32], [4; 32]).encode(&p, p.birth.year);
        assert!(a.names[0][0].dice(&b.names[0][0]) < 0.5);
        assert_eq!(
            a.year,
            encoder().encode(&p, None).year,
            "dates are not salted"
        );
        assert_ne!(
            a.names,
            encoder().encode(&p, None).names,
            "names are salted with the year"
        );
        assert_eq!(
            Filter::from_bytes(&a.names[0][0].to_bytes()),
            Some(a.names[0][0].clone())
        );
    }
}
