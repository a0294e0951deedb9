//! The Italian codice fiscale: check character and omocodia.
//!
//! When two people would get the same code, the Agenzia delle Entrate replaces digits, from the
//! right, with letters (omocodia). Linkage must treat both spellings as the same person, so the
//! substitutions are undone before pseudonymisation.

/// Positions (0-based) that hold digits in a regular code and letters under omocodia.
const DIGIT_POSITIONS: [usize; 7] = [6, 7, 9, 10, 12, 13, 14];
/// Letters that stand for 0..=9 under omocodia.
const OMOCODIA: &[u8; 10] = b"LMNPQRSTUV";
/// Values of characters in odd (1-based) positions, for A..=Z; digits use the value of the
/// letter at the same index (0 -> A, 1 -> B, ...).
const ODD: [u32; 26] = [
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
];

/// Why a code is not a valid codice fiscale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodiceFiscaleError {
    #[error("a codice fiscale has 16 characters (or 11 digits when provisional)")]
    Length,
    #[error("character {0} is not allowed at that position")]
    Character(usize),
    #[error("the check character does not match")]
    CheckCharacter,
}

/// Upper-cases, strips blanks and checks a codice fiscale; returns the normalised code with
/// omocodia undone. An 11-digit provisional code is returned as is.
pub fn normalise(raw: &str) -> Result<String, CodiceFiscaleError> {
    let code: String = raw
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if code.len() == 11 && code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(code);
    }
    check(&code)?;
    let mut bytes = code.into_bytes();
    for &i in &DIGIT_POSITIONS {
        if let Some(d) = OMOCODIA.iter().position(|&l| l == bytes[i]) {
            bytes[i] = b'0' + d as u8;
        }
    }
    // The check character covers the printed code; recompute it for the de-omocodised one.
    bytes[15] = check_character(&bytes[..15]);
    String::from_utf8(bytes).map_err(|_| CodiceFiscaleError::Character(0))
}

/// What a 16-character codice fiscale says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub birth_year: i32,
    pub birth_month: u8,
    pub birth_day: u8,
    pub female: bool,
    /// The cadastral (Belfiore) code of the municipality of birth, or `Z...` for a country.
    pub place: String,
}

/// Months as the codice fiscale writes them.
const MONTHS: &[u8; 12] = b"ABCDEHLMPRST";

/// Reads birth date, sex and place of birth out of a valid code (omocodia undone). The century
/// is the latest one that does not put the birth after `current_year`. Provisional 11-digit
/// codes carry none of this: `None`.
pub fn decode(raw: &str, current_year: i32) -> Option<Decoded> {
    let code = normalise(raw).ok()?;
    if code.len() != 16 {
        return None;
    }
    let b = code.as_bytes();
    let two = |i: usize| -> Option<u32> { code.get(i..i + 2)?.parse().ok() };
    let yy = i32::try_from(two(6)?).ok()?;
    let month = MONTHS.iter().position(|&m| m == b[8])? as u8 + 1;
    let mut day = two(9)?;
    let female = day > 40;
    if female {
        day -= 40;
    }
    if !(1..=31).contains(&day) {
        return None;
    }
    let mut year = 2000 + yy;
    if year > current_year {
        year -= 100;
    }
    Some(Decoded {
        birth_year: year,
        birth_month: month,
        birth_day: day as u8,
        female,
        place: code.get(11..15)?.to_owned(),
    })
}

/// Checks the shape and the check character of a 16-character code.
pub fn check(code: &str) -> Result<(), CodiceFiscaleError> {
    let bytes = code.as_bytes();
    if bytes.len() != 16 {
        return Err(CodiceFiscaleError::Length);
    }
    for (i, &b) in bytes.iter().enumerate() {
        let ok = if DIGIT_POSITIONS.contains(&i) {
            b.is_ascii_digit() || OMOCODIA.contains(&b)
        } else {
            b.is_ascii_uppercase()
        };
        if !ok {
            return Err(CodiceFiscaleError::Character(i + 1));
        }
    }
    if check_character(&bytes[..15]) != bytes[15] {
        return Err(CodiceFiscaleError::CheckCharacter);
    }
    Ok(())
}

/// The check character of the first 15 characters.
pub fn check_character(first15: &[u8]) -> u8 {
    let sum: u32 = first15
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            let index = if b.is_ascii_digit() {
                b - b'0'
            } else {
                b.wrapping_sub(b'A')
            } as usize;
            if i % 2 == 0 {
                ODD.get(index).copied().unwrap_or(0)
            } else {
                index as u32
            }
        })
        .sum();
    b'A' + (sum % 26) as u8
}

#[cfg(test)]
mod tests {
    #[test]
    fn decode_reads_birth_sex_and_place_and_undoes_omocodia() {
        let d = super::decode("MHMSLM85T10Z330X", 2026).unwrap();
        assert_eq!((d.birth_year, d.birth_month, d.birth_day), (1985, 12, 10));
        assert!(!d.female);
        assert_eq!(d.place, "Z330");
        // RSSMRA + 1 Jan 2001 female (day 41), Prato (G999): a later century only when not
        // in the future.
        let code = format!(
            "RSSMRA01A41G999{}",
            super::check_character(b"RSSMRA01A41G999") as char
        );
        let d = super::decode(&code, 2026).unwrap();
        assert_eq!((d.birth_year, d.birth_day, d.female), (2001, 1, true));
        assert_eq!(super::decode(&code, 2000).unwrap().birth_year, 1901);
        assert!(super::decode("12345678901", 2026).is_none());
    }

    use super::*;

    #[test]
    fn known_code_checks() {
        // The textbook example: Mario Rossi, born in Rome on 1 January 1980.
        assert_eq!(check("RSSMRA80A01H501U"), Ok(()));
        assert_eq!(
            check("RSSMRA80A01H501V"),
            Err(CodiceFiscaleError::CheckCharacter)
        );
        assert_eq!(check("RSSMRA80A01H50"), Err(CodiceFiscaleError::Length));
    }

    #[test]
    fn omocodia_is_undone() {
        // Last digit 1 -> M; the check character is recomputed by the issuer.
        let mut omo = *b"RSSMRA80A01H50M_";
        omo[15] = check_character(&omo[..15]);
        let omo = std::str::from_utf8(&omo).unwrap_or_default().to_owned();
        assert_eq!(check(&omo), Ok(()));
        assert_eq!(normalise(&omo), Ok("RSSMRA80A01H501U".to_owned()));
        assert_eq!(
            normalise(" rssmra80a01h501u "),
            Ok("RSSMRA80A01H501U".to_owned())
        );
    }

    #[test]
    fn provisional_code_passes() {
        assert_eq!(normalise("12345678901"), Ok("12345678901".to_owned()));
    }
}
