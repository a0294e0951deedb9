//! Comparing encodings: blocking to find candidates, Dice to score them, and a one-to-one
//! assignment that takes the best pairs first.

use super::encode::{Encoded, Encoder, Filter, Prepared};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// A record ready for matching.
pub struct Item {
    pub prepared: Prepared,
    /// The encoding salted with the record's own year of birth (unsalted when it has none).
    pub encoded: Encoded,
    /// The unsalted encoding, computed only when the record meets one without a year of birth.
    unsalted: OnceLock<Encoded>,
    /// Encodings salted with a neighbouring year, computed when the record meets a namesake whose
    /// year differs by what looks like a typing error.
    resalted: Mutex<Vec<Arc<Encoded>>>,
    pub blocks: Vec<u64>,
}

impl Item {
    pub fn new(encoder: &Encoder, prepared: Prepared) -> Item {
        let encoded = encoder.encode(&prepared, prepared.birth.year);
        let blocks = encoder.blocks(&prepared);
        Item {
            prepared,
            encoded,
            unsalted: OnceLock::new(),
            resalted: Mutex::default(),
            blocks,
        }
    }

    fn salted_with(&self, encoder: &Encoder, year: u16) -> Arc<Encoded> {
        let Ok(mut cache) = self.resalted.lock() else {
            return Arc::new(encoder.encode(&self.prepared, Some(year)));
        };
        if let Some(e) = cache.iter().find(|e| e.salt_year == Some(year)) {
            return Arc::clone(e);
        }
        let e = Arc::new(encoder.encode(&self.prepared, Some(year)));
        cache.push(Arc::clone(&e));
        e
    }

    fn unsalted(&self, encoder: &Encoder) -> &Encoded {
        if self.prepared.birth.year.is_none() {
            return &self.encoded;
        }
        self.unsalted
            .get_or_init(|| encoder.encode(&self.prepared, None))
    }
}

/// Field weights of the score; a field unknown on either side counts as half agreeing, so that
/// missing data neither proves nor disproves a match.
const W_NAMES: f64 = 0.48;
const W_YEAR: f64 = 0.20;
const W_MONTH: f64 = 0.12;
const W_DAY: f64 = 0.12;
const W_COUNTRY: f64 = 0.08;
const UNKNOWN: f64 = 0.5;
/// Known and different sex or country of birth is strong evidence against a match: the score is
/// multiplied by these factors.
const SEX_DIFFERS: f64 = 0.6;
const COUNTRY_DIFFERS: f64 = 0.85;

/// Years that a typing error could turn into one another.
fn near_years(a: u16, b: u16) -> bool {
    let (sa, sb) = (a.to_string(), b.to_string());
    let swapped = sa.len() == 4 && sb.len() == 4 && {
        let (x, y) = (sa.as_bytes(), sb.as_bytes());
        x[..2] == y[..2] && x[2] == y[3] && x[3] == y[2]
    };
    a.abs_diff(b) <= 1 || swapped
}

/// Name agreement: for each token of the shorter name, its best match in the longer one
/// (Monge-Elkan), discounted when the longer name has tokens the shorter lacks.
fn names_score(a: &[Vec<Filter>], b: &[Vec<Filter>]) -> Option<f64> {
    let mut best: Option<f64> = None;
    for x in a {
        for y in b {
            let (short, long) = if x.len() <= y.len() { (x, y) } else { (y, x) };
            if short.is_empty() {
                continue;
            }
            let me: f64 = short
                .iter()
                .map(|s| long.iter().map(|l| s.dice(l)).fold(0.0, f64::max))
                .sum::<f64>()
                / short.len() as f64;
            let coverage = short.len() as f64 / long.len() as f64;
            let score = me * (0.8 + 0.2 * coverage);
            best = Some(best.map_or(score, |b: f64| b.max(score)));
        }
    }
    best
}

fn field(a: Option<&Filter>, b: Option<&Filter>) -> f64 {
    match (a, b) {
        (Some(a), Some(b)) => a.dice(b),
        _ => UNKNOWN,
    }
}

/// The match score of two records, from 0 to 1. Name filters are salted with the year of birth;
/// when the years differ (one unknown, or a likely typing error) one side is re-encoded with the
/// other's salt: the gateway holds the fields of the record it is encoding, so it can.
pub fn score(encoder: &Encoder, a: &Item, b: &Item) -> f64 {
    let resalted;
    let (ea, eb): (&Encoded, &Encoded) = match (a.prepared.birth.year, b.prepared.birth.year) {
        (Some(x), Some(y)) if x != y && near_years(x, y) => {
            resalted = a.salted_with(encoder, y);
            (&*resalted, &b.encoded)
        }
        (Some(_), Some(_)) | (None, None) => (&a.encoded, &b.encoded),
        (Some(_), None) => (a.unsalted(encoder), &b.encoded),
        (None, Some(_)) => (&a.encoded, b.unsalted(encoder)),
    };
    compare(ea, eb)
}

/// The score of two encodings with the same salt.
pub fn compare(ea: &Encoded, eb: &Encoded) -> f64 {
    let names = names_score(&ea.names, &eb.names).unwrap_or(UNKNOWN);
    let country = field(ea.country.as_ref(), eb.country.as_ref());
    let mut month = field(ea.month.as_ref(), eb.month.as_ref());
    let mut day = field(ea.day.as_ref(), eb.day.as_ref());
    if month < 0.5 && day < 0.5 && field(ea.day_month.as_ref(), eb.day_month.as_ref()) > 0.99 {
        // Day and month swapped: agreement, slightly discounted.
        (month, day) = (0.8, 0.8);
    }
    let base = W_NAMES * names
        + W_YEAR * field(ea.year.as_ref(), eb.year.as_ref())
        + W_MONTH * month
        + W_DAY * day
        + W_COUNTRY * country;
    let sex_factor = if field(ea.sex.as_ref(), eb.sex.as_ref()) < 0.5 {
        SEX_DIFFERS
    } else {
        1.0
    };
    let country_factor = if country < 0.5 { COUNTRY_DIFFERS } else { 1.0 };
    base * sex_factor * country_factor
}

/// The score of a record being registered (its fields in hand) against a stored encoding: when
/// the salts differ because a year is unknown or one typo away, the new record is re-encoded with
/// the stored record's salt.
pub fn score_against(encoder: &Encoder, new: &Prepared, own: &Encoded, stored: &Encoded) -> f64 {
    let resalt = match (own.salt_year, stored.salt_year) {
        (a, b) if a == b => false,
        (Some(a), Some(b)) => near_years(a, b),
        _ => true,
    };
    if resalt {
        compare(&encoder.encode(new, stored.salt_year), stored)
    } else {
        compare(own, stored)
    }
}

/// An index of items by blocking key.
pub struct BlockIndex {
    map: HashMap<u64, Vec<u32>>,
}

impl BlockIndex {
    pub fn new(items: &[Item]) -> BlockIndex {
        let mut map: HashMap<u64, Vec<u32>> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            for b in &item.blocks {
                map.entry(*b).or_default().push(i as u32);
            }
        }
        BlockIndex { map }
    }

    /// Items sharing at least one blocking key with `blocks`, each once.
    pub fn candidates(&self, blocks: &[u64]) -> Vec<u32> {
        let mut out: Vec<u32> = blocks
            .iter()
            .filter_map(|b| self.map.get(b))
            .flatten()
            .copied()
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Every candidate pair (left index, right index, score) scoring at least `floor`, found with
/// `threads` threads.
pub fn scored_pairs(
    encoder: &Encoder,
    left: &[Item],
    right: &[Item],
    floor: f64,
    threads: usize,
) -> Vec<(u32, u32, f64)> {
    let index = BlockIndex::new(right);
    let chunk = left.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = left
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                let index = &index;
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for (i, a) in part.iter().enumerate() {
                        let li = (c * chunk + i) as u32;
                        for ri in index.candidates(&a.blocks) {
                            let s = score(encoder, a, &right[ri as usize]);
                            if s >= floor {
                                out.push((li, ri, s));
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// Best pairs first, each record used at most once.
pub fn one_to_one(mut pairs: Vec<(u32, u32, f64)>) -> Vec<(u32, u32, f64)> {
    pairs.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    let mut used_l = std::collections::HashSet::new();
    let mut used_r = std::collections::HashSet::new();
    pairs
        .into_iter()
        .filter(|(l, r, _)| {
            if used_l.contains(l) || used_r.contains(r) {
                return false;
            }
            used_l.insert(*l);
            used_r.insert(*r);
            true
        })
        .collect()
}
