//! Redaction of recorded traffic: the identifiers the kit planted, anything shaped like a
//! codice fiscale, and credentials, replaced before anything is written or shown.

/// Replaces each planted value and every 16-character codice fiscale shape with `[redacted]`,
/// and bearer tokens and signatures with `[credential]`.
pub fn redact(text: &str, planted: &[String]) -> String {
    let mut out = text.to_owned();
    for p in planted.iter().filter(|p| p.len() >= 3) {
        out = out.replace(p.as_str(), "[redacted]");
    }
    let mut cleaned = String::with_capacity(out.len());
    let chars: Vec<char> = out.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if i + 16 <= chars.len() && looks_like_codice_fiscale(&chars[i..i + 16]) {
            cleaned.push_str("[redacted]");
            i += 16;
        } else {
            cleaned.push(chars[i]);
            i += 1;
        }
    }
    for marker in ["Bearer ", "Agid-JWT-Signature: "] {
        let mut from = 0;
        while let Some(rel) = cleaned[from..].find(marker) {
            let start = from + rel + marker.len();
            let end = cleaned[start..]
                .find(|c: char| c.is_whitespace() || c == '"')
                .map(|e| start + e)
                .unwrap_or(cleaned.len());
            cleaned.replace_range(start..end, "[credential]");
            from = start + "[credential]".len();
        }
    }
    cleaned
}

fn looks_like_codice_fiscale(c: &[char]) -> bool {
    let letter = |i: usize| c[i].is_ascii_uppercase();
    let digitish = |i: usize| c[i].is_ascii_digit() || "LMNPQRSTUV".contains(c[i]);
    (0..6).all(letter)
        && digitish(6)
        && digitish(7)
        && letter(8)
        && digitish(9)
        && digitish(10)
        && letter(11)
        && (12..15).all(digitish)
        && letter(15)
}

#[cfg(test)]
mod tests {
    #[test]
    fn planted_values_codes_and_tokens_go() {
        let text = "name Salim code MHMSLM85T10Z330X auth Bearer abc.def.ghi end";
        let r = super::redact(text, &["Salim".into()]);
        assert_eq!(
            r,
            "name [redacted] code [redacted] auth Bearer [credential] end"
        );
    }
}
