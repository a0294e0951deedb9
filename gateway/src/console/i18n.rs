//! The console's languages: Italian first, English available. Every text shown lives in the
//! catalogs under `gateway/console/i18n/`, one file per language with the same keys.

use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    It,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::It, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::It => "it",
            Lang::En => "en",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == code)
    }

    fn source(self) -> &'static str {
        match self {
            Lang::It => include_str!("../../console/i18n/it.json"),
            Lang::En => include_str!("../../console/i18n/en.json"),
        }
    }
}

type Catalog = HashMap<String, String>;

fn catalogs() -> &'static [(Lang, Catalog)] {
    static CATALOGS: OnceLock<Vec<(Lang, Catalog)>> = OnceLock::new();
    CATALOGS.get_or_init(|| {
        Lang::ALL
            .into_iter()
            // A broken catalog is caught by the unit tests; at run time it shows keys, not a panic.
            .map(|l| (l, serde_json::from_str(l.source()).unwrap_or_default()))
            .collect()
    })
}

/// The text for `key` in `lang`.
pub fn text(lang: Lang, key: &str) -> Option<&'static str> {
    catalogs()
        .iter()
        .find(|(l, _)| *l == lang)
        .and_then(|(_, c)| c.get(key))
        .map(String::as_str)
}

/// The language of a request: the visitor's choice (cookie), else the browser's preference among
/// ours, else Italian.
pub fn negotiate(choice: Option<&str>, accept_language: Option<&str>) -> Lang {
    if let Some(lang) = choice.and_then(Lang::from_code) {
        return lang;
    }
    let mut best: Option<(f32, Lang)> = None;
    for item in accept_language.unwrap_or("").split(',') {
        let mut parts = item.trim().split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        let primary = tag.split('-').next().unwrap_or("");
        if let Some(lang) = Lang::from_code(primary)
            && q > 0.0
            && best.is_none_or(|(b, _)| q > b)
        {
            best = Some((q, lang));
        }
    }
    best.map(|(_, l)| l).unwrap_or(Lang::It)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogs_parse_and_have_the_same_keys() {
        let it: Catalog = serde_json::from_str(Lang::It.source()).unwrap();
        let en: Catalog = serde_json::from_str(Lang::En.source()).unwrap();
        let mut a: Vec<_> = it.keys().collect();
        let mut b: Vec<_> = en.keys().collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        assert!(it.values().chain(en.values()).all(|v| !v.trim().is_empty()));
    }

    #[test]
    fn italian_unless_the_visitor_or_the_browser_prefers_english() {
        assert_eq!(negotiate(None, None), Lang::It);
        assert_eq!(negotiate(None, Some("de-DE,de;q=0.9")), Lang::It);
        assert_eq!(negotiate(None, Some("en-GB,en;q=0.9,it;q=0.8")), Lang::En);
        assert_eq!(negotiate(None, Some("it-IT,en;q=0.5")), Lang::It);
        assert_eq!(negotiate(Some("it"), Some("en")), Lang::It);
        assert_eq!(negotiate(Some("xx"), Some("en")), Lang::En);
    }
}
