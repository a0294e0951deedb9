//! Normalisation of identifying fields for this population: names written in many scripts and
//! spellings, given and family names swapped, particles, partial and placeholder birth dates.

use deunicode::deunicode;

/// Particles folded into the name they precede: "D'Angelo", "De Luca", "Abd al Rahman".
const PARTICLES: &[&str] = &[
    "D", "DA", "DAL", "DALLA", "DE", "DEI", "DEL", "DELLA", "DELLE", "DELLO", "DEGLI", "DI", "LA",
    "LE", "LO", "VAN", "VON", "DER", "DEN", "EL", "AL", "BEN", "BIN", "IBN", "ABU", "ABD", "ABDEL",
    "ABDUL", "OULD", "MC", "MAC", "SAN", "SANTA", "ST",
];

/// Spelling rules applied before comparison, so that transliterations of the same name meet:
/// Mohamed, Mohammed, Muhammad; Youssef, Yusuf, Jusuf; Khaled, Haled.
const SPELLING: &[(&str, &str)] = &[
    ("SCH", "S"),
    ("PH", "F"),
    ("KH", "K"),
    ("GH", "G"),
    ("TH", "T"),
    ("SH", "S"),
    ("CH", "K"),
    ("CK", "K"),
    ("DJ", "G"),
    ("DZ", "G"),
    ("OU", "U"),
    ("EE", "I"),
    ("W", "V"),
    ("J", "Y"),
    ("Q", "K"),
    ("C", "K"),
    ("X", "KS"),
    ("Z", "S"),
];

/// The name tokens of a person: ASCII, upper case, particles folded, in sorted order so that a
/// swapped given and family name give the same set.
pub fn name_tokens(parts: &[&str]) -> Vec<String> {
    let mut tokens = Vec::new();
    for part in parts {
        let ascii = deunicode(part).to_ascii_uppercase();
        let words: Vec<String> = ascii
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect();
        let mut pending = String::new();
        for (i, w) in words.iter().enumerate() {
            let is_last = i + 1 == words.len();
            if PARTICLES.contains(&w.as_str()) && !is_last {
                pending.push_str(w);
                continue;
            }
            pending.push_str(w);
            tokens.push(std::mem::take(&mut pending));
        }
        if !pending.is_empty() {
            tokens.push(pending);
        }
    }
    tokens.sort();
    tokens.dedup();
    tokens
}

/// A token after the spelling rules, with repeated letters collapsed.
pub fn spelled(token: &str) -> String {
    let mut s = token.to_owned();
    for (from, to) in SPELLING {
        if s.contains(from) {
            s = s.replace(from, to);
        }
    }
    collapse(&s)
}

/// The consonant skeleton: first letter, then consonants, repeats collapsed. Vowels carry most of
/// the variation between transliterations; the skeleton keeps what they share.
pub fn skeleton(token: &str) -> String {
    let s = spelled(token);
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        if i == 0 || !matches!(c, 'A' | 'E' | 'I' | 'O' | 'U' | 'Y' | 'H') {
            out.push(c);
        }
    }
    collapse(&out)
}

fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last = None;
    for c in s.chars() {
        if Some(c) != last {
            out.push(c);
        }
        last = Some(c);
    }
    out
}

/// A birth date as far as it is known. A placeholder (01/01 for undocumented people) keeps only
/// its year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BirthDate {
    pub year: Option<u16>,
    pub month: Option<u8>,
    pub day: Option<u8>,
}

pub fn birth_date(raw: Option<&str>, placeholder: bool) -> BirthDate {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return BirthDate::default();
    };
    // ISO (schema) or the dd/mm/yyyy that exports often carry.
    let (y, m, d) = if raw.contains('/') {
        let p: Vec<&str> = raw.split('/').collect();
        match p.as_slice() {
            [d, m, y] => (Some(*y), Some(*m), Some(*d)),
            [m, y] => (Some(*y), Some(*m), None),
            [y] => (Some(*y), None, None),
            _ => (None, None, None),
        }
    } else {
        let mut p = raw.split('-');
        (p.next(), p.next(), p.next())
    };
    let year = y
        .and_then(|y| y.parse::<u16>().ok())
        .filter(|y| (1900..=2100).contains(y));
    let month = m
        .and_then(|m| m.parse::<u8>().ok())
        .filter(|m| (1..=12).contains(m));
    let day = d
        .and_then(|d| d.parse::<u8>().ok())
        .filter(|d| (1..=31).contains(d));
    let placeholder = placeholder || (month == Some(1) && day == Some(1));
    if placeholder {
        BirthDate {
            year,
            month: None,
            day: None,
        }
    } else {
        BirthDate { year, month, day }
    }
}

/// Sex as one letter, or nothing when unknown.
pub fn sex(raw: Option<&str>) -> Option<char> {
    match raw.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        Some("male" | "m" | "maschio") => Some('M'),
        Some("female" | "f" | "femmina") => Some('F'),
        Some("other") => Some('X'),
        _ => None,
    }
}

/// ISO 3166-1 alpha-2, upper case.
pub fn country(raw: Option<&str>) -> Option<String> {
    raw.map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| c.len() == 2 && c.chars().all(|x| x.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accents_apostrophes_particles_and_order_fold() {
        assert_eq!(
            name_tokens(&["Anna Maria", "D'Angelo"]),
            ["ANNA", "DANGELO", "MARIA"]
        );
        assert_eq!(
            name_tokens(&["D'ANGELO", "anna maria"]),
            name_tokens(&["Anna Maria", "D'Angelo"])
        );
        assert_eq!(name_tokens(&["Nicolò", "De Luca"]), ["DELUCA", "NICOLO"]);
        assert_eq!(name_tokens(&["Ștefan", "Popescu"]), ["POPESCU", "STEFAN"]);
        assert_eq!(name_tokens(&["Мирослав"]), ["MIROSLAV"]);
    }

    #[test]
    fn transliterations_share_a_skeleton() {
        let s = |n: &str| skeleton(&name_tokens(&[n])[0]);
        assert_eq!(s("Mohamed"), s("Mohammed"));
        assert_eq!(s("Mohamed"), s("Muhammad"));
        assert_eq!(s("Youssef"), s("Yusuf"));
        assert_eq!(s("Jusuf"), s("Yusuf"));
        assert_eq!(s("Abd al-Rahman"), s("Abdelrahman"));
        assert_ne!(s("Mohamed"), s("Mario"));
    }

    #[test]
    fn placeholder_and_partial_birth_dates() {
        assert_eq!(
            birth_date(Some("1990-01-01"), false),
            BirthDate {
                year: Some(1990),
                month: None,
                day: None
            }
        );
        assert_eq!(
            birth_date(Some("10/12/1985"), false),
            BirthDate {
                year: Some(1985),
                month: Some(12),
                day: Some(10)
            }
        );
        assert_eq!(
            birth_date(Some("1961-01"), false),
            BirthDate {
                year: Some(1961),
                month: Some(1),
                day: None
            }
        );
        assert_eq!(birth_date(Some("1985-12-10"), true).month, None);
        assert_eq!(birth_date(None, false), BirthDate::default());
    }
}
