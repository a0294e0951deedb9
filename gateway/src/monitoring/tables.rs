//! The tables of a release: every indicator of the catalogue by ambito (and the regional total)
//! and period (each quarter and the year), alone and broken down by each of its breakdowns in
//! turn, every cell protected.
//!
//! How a cell is counted: records are grouped by unit (a person, or a record standing for
//! itself), each unit adds itself once to every cell it falls in, so a person served in three
//! ambiti counts once in each and once in the regional total; the cell keeps the count of units,
//! the sum of their record keys (the cell key), the sum of their fingerprints (which set of units
//! it is, to compare releases) and, for magnitudes, the sum and the largest contribution.
//!
//! How a cell is published:
//! - counts: the perturbation table applied to (count, cell key);
//! - magnitudes (bed-nights, items): the sum plus noise of up to `magnitude_noise` times the
//!   largest unit's contribution, with a sign and size from the cell key; suppressed unless the
//!   cell's *published* count of units reaches the threshold;
//! - rates and medians: computed from published figures and suppressed on the same rule.
//!   The rule looks at the published count, never the true one: otherwise a suppressed rate
//!   next to a published count of 3 would tell that the true count was 1 or 2.
//!   Suppressed cells carry OBS_STATUS `Q` and CONF_STATUS `C`; free ones `A` and `F`;
//!   a rate without a denominator (no places published) `M` and `F`.

use super::catalogue::{Catalogue, Dim, Indicator, Measure, ReferralEvent, TOTAL, UNKNOWN};
use super::cell_key::PTable;
use super::records::{Kind, StatRecord};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A period of the release: a quarter or the year, with its first and last day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub label: String,
    pub first: i32,
    pub last: i32,
}

impl Period {
    fn contains(&self, day: i32) -> bool {
        self.first <= day && day <= self.last
    }
}

/// What a release may be made for: `2026` (its four quarters and the year) or `2026-Q3`.
pub fn periods(spec: &str) -> Option<Vec<Period>> {
    use super::records::day_number;
    use time::{Date, Month};
    let quarter = |year: i32, q: u8| -> Option<Period> {
        let first_month = Month::try_from(3 * q - 2).ok()?;
        let last_month = Month::try_from(3 * q).ok()?;
        let first = Date::from_calendar_date(year, first_month, 1).ok()?;
        let last = Date::from_calendar_date(
            year,
            last_month,
            time::util::days_in_month(last_month, year),
        )
        .ok()?;
        Some(Period {
            label: format!("{year}-Q{q}"),
            first: day_number(first),
            last: day_number(last),
        })
    };
    let year_of = |s: &str| -> Option<i32> {
        (s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
            .filter(|y| (2000..=2100).contains(y))
    };
    if let Some((y, q)) = spec.split_once("-Q") {
        let year = year_of(y)?;
        let q: u8 = q.parse().ok().filter(|q| (1..=4).contains(q))?;
        return Some(vec![quarter(year, q)?]);
    }
    let year = year_of(spec)?;
    let mut out: Vec<Period> = (1..=4).filter_map(|q| quarter(year, q)).collect();
    let (first, last) = (out.first()?.first, out.last()?.last);
    out.push(Period {
        label: year.to_string(),
        first,
        last,
    });
    Some(out)
}

/// A referral as the monitoring sees it.
#[derive(Debug, Clone)]
pub struct ReferralFacts {
    pub fingerprint: u64,
    pub key: u32,
    pub sender: String,
    pub receiver: String,
    pub urgency: String,
    pub sent_day: Option<i32>,
    pub accepted_day: Option<i32>,
    pub rejected_day: Option<i32>,
    pub minutes_to_acceptance: Option<u32>,
    pub minutes_to_first_response: Option<u32>,
    pub sex: String,
    pub age_band: String,
    pub citizenship_group: String,
    pub ethos_light: Option<String>,
}

/// A statistical record as the tables read it: codes made small numbers once, when the record
/// arrives (`cube.rs`), so that a release does no string work per record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compact {
    pub fingerprint: u64,
    pub key: u32,
    /// Index into the cube's list of ambiti.
    pub ambito: u16,
    pub kind: Kind,
    /// Service type or kit type index; for interventions 0 when the person was reached.
    pub category: u16,
    /// Sex, age band, citizenship group, ETHOS Light value indexes.
    pub attrs: [u8; 4],
    pub start: i32,
    /// Last day, inclusive; `i32::MAX` while open.
    pub end: i32,
    pub quantity: u32,
    /// `u32::MAX` when none.
    pub minutes: u32,
}

impl Compact {
    pub fn from_record(r: &StatRecord, ambito: u16, dims: &Dims) -> Compact {
        let category = match r.kind {
            Kind::Episode => u16::from(dims.idx(Dim::ServiceType, Some(&r.category))),
            Kind::Distribution => u16::from(dims.idx(Dim::KitType, Some(&r.category))),
            Kind::Intervention => u16::from(r.category != "reached"),
        };
        Compact {
            fingerprint: r.fingerprint,
            key: r.key,
            ambito,
            kind: r.kind,
            category,
            attrs: [
                dims.idx(Dim::Sex, r.sex.as_deref()),
                dims.idx(Dim::AgeBand, r.age_band.as_deref()),
                dims.idx(Dim::CitizenshipGroup, r.citizenship_group.as_deref()),
                dims.idx(Dim::EthosLight, r.ethos_light.as_deref()),
            ],
            start: r.start,
            end: r.end.unwrap_or(i32::MAX),
            quantity: r.quantity,
            minutes: r.minutes.unwrap_or(u32::MAX),
        }
    }
}

/// Everything a release is computed from.
pub struct Input<'a> {
    pub records: &'a [Compact],
    /// The names behind `Compact::ambito`.
    pub record_ambiti: &'a [String],
    pub referrals: &'a [ReferralFacts],
    /// Places published by each ambito, by service type.
    pub places: &'a HashMap<(String, String), u64>,
    /// The ambiti of the network, in the order tables list them.
    pub ambiti: &'a [String],
    pub periods: &'a [Period],
    /// The last day the data can describe (the release's date): open episodes run until it.
    pub as_of: i32,
}

/// Disclosure-control settings beside the perturbation table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Protection {
    /// Noise on magnitudes, as a fraction of the largest contribution in the cell.
    pub magnitude_noise: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObsStatus {
    /// Normal value.
    A,
    /// Missing: not applicable here.
    M,
    /// Missing: suppressed.
    Q,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfStatus {
    /// Free.
    F,
    /// Confidential.
    C,
}

/// One published cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub ambito: String,
    pub time_period: String,
    /// The breakdown this cell is in, or none for the indicator's own total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<(Dim, String)>,
    pub value: Option<f64>,
    pub obs_status: ObsStatus,
    pub conf_status: ConfStatus,
}

/// One indicator's observations and, for each, a fingerprint of what it was computed from
/// (kept inside the gateway: two releases must publish the same value where it is equal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub indicator: String,
    pub observations: Vec<Observation>,
    #[serde(default)]
    pub inputs: Vec<u64>,
}

/// Rows of the computation: records interned to small numbers.
#[derive(Clone, Copy)]
struct Row {
    /// The unit's fingerprint: uniformly random, so it groups rows by unit as it is.
    fingerprint: u64,
    key: u32,
    /// Ambito index (sender for referrals).
    ambito: u16,
    /// Receiver index (referrals).
    receiver: u16,
    kind: RowKind,
    /// Index of the category in its code list (service type, kit type, outcome); u16::MAX if
    /// unknown.
    category: u16,
    /// Value indices of sex, age band, citizenship group, ETHOS Light.
    attrs: [u8; 4],
    start: i32,
    /// Last day, inclusive; i32::MAX while open.
    end: i32,
    quantity: u32,
    minutes: u32,
    /// Referrals: days of acceptance and rejection (i32::MIN when none) and minutes.
    accepted: i32,
    rejected: i32,
    urgency: u8,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum RowKind {
    Episode,
    Distribution,
    Intervention,
    Referral,
}

const NONE_DAY: i32 = i32::MIN;

fn urgency_index(code: &str) -> u8 {
    raccordo_schemas::codelist::get("urgency")
        .and_then(|l| l.codes.iter().position(|c| c.code == code))
        .map_or(u8::MAX, |i| i as u8)
}

/// The value index of a code in a dimension (`_U` when absent or unknown).
pub struct Dims {
    values: HashMap<Dim, Vec<String>>,
    /// Looked up for every field of every record: a fast non-cryptographic hash (the keys are
    /// code lists, not attacker-chosen in bulk).
    index: HashMap<Dim, HashMap<String, u8, foldhash::fast::FixedState>>,
}

impl Default for Dims {
    fn default() -> Dims {
        Dims::new()
    }
}

impl Dims {
    pub fn new() -> Dims {
        let mut values = HashMap::new();
        let mut index = HashMap::new();
        for d in Dim::ALL {
            let v = d.values();
            let mut m = HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0));
            m.extend(v.iter().enumerate().map(|(i, c)| (c.clone(), i as u8)));
            index.insert(d, m);
            values.insert(d, v);
        }
        Dims { values, index }
    }

    pub fn idx(&self, d: Dim, code: Option<&str>) -> u8 {
        let unknown = self.values.get(&d).map_or(0, |v| v.len().saturating_sub(1)) as u8;
        code.and_then(|c| self.index.get(&d)?.get(c).copied())
            .unwrap_or(unknown)
    }

    fn count(&self, d: Dim) -> usize {
        self.values.get(&d).map_or(1, Vec::len)
    }

    fn code(&self, d: Dim, i: usize) -> &str {
        self.values
            .get(&d)
            .and_then(|v| v.get(i))
            .map_or(UNKNOWN, String::as_str)
    }
}

fn intern(input: &Input<'_>, dims: &Dims) -> Vec<Row> {
    let mut ambito_index: HashMap<&str, u16, foldhash::fast::FixedState> =
        HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0));
    ambito_index.extend(
        input
            .ambiti
            .iter()
            .enumerate()
            .map(|(i, a)| (a.as_str(), i as u16)),
    );
    let amb = |a: &str| ambito_index.get(a).copied().unwrap_or(u16::MAX);
    let remap: Vec<u16> = input.record_ambiti.iter().map(|a| amb(a)).collect();
    let mut rows = Vec::with_capacity(input.records.len() + input.referrals.len());
    for r in input.records {
        rows.push(Row {
            key: r.key,
            fingerprint: r.fingerprint,
            ambito: remap
                .get(usize::from(r.ambito))
                .copied()
                .unwrap_or(u16::MAX),
            receiver: u16::MAX,
            kind: match r.kind {
                Kind::Episode => RowKind::Episode,
                Kind::Distribution => RowKind::Distribution,
                Kind::Intervention => RowKind::Intervention,
            },
            category: r.category,
            attrs: r.attrs,
            start: r.start,
            end: r.end,
            quantity: r.quantity,
            minutes: r.minutes,
            accepted: NONE_DAY,
            rejected: NONE_DAY,
            urgency: 0,
        });
    }
    for f in input.referrals {
        rows.push(Row {
            key: f.key,
            fingerprint: f.fingerprint,
            ambito: amb(&f.sender),
            receiver: amb(&f.receiver),
            kind: RowKind::Referral,
            category: 0,
            attrs: [
                dims.idx(Dim::Sex, Some(&f.sex)),
                dims.idx(Dim::AgeBand, Some(&f.age_band)),
                dims.idx(Dim::CitizenshipGroup, Some(&f.citizenship_group)),
                dims.idx(Dim::EthosLight, f.ethos_light.as_deref()),
            ],
            start: f.sent_day.unwrap_or(NONE_DAY),
            end: f.sent_day.unwrap_or(NONE_DAY),
            // Referrals carry the minutes to the first response in `quantity`.
            quantity: f.minutes_to_first_response.unwrap_or(u32::MAX),
            minutes: f.minutes_to_acceptance.unwrap_or(u32::MAX),
            accepted: f.accepted_day.unwrap_or(NONE_DAY),
            rejected: f.rejected_day.unwrap_or(NONE_DAY),
            urgency: urgency_index(&f.urgency),
        });
    }
    rows
}

/// Per-cell accumulators of one indicator.
#[derive(Clone, Default)]
struct Acc {
    n: Vec<u32>,
    ckey: Vec<u32>,
    fp: Vec<u64>,
    sum: Vec<u64>,
    max: Vec<u64>,
}

impl Acc {
    fn new(cells: usize) -> Acc {
        Acc {
            n: vec![0; cells],
            ckey: vec![0; cells],
            fp: vec![0; cells],
            sum: vec![0; cells],
            max: vec![0; cells],
        }
    }

    fn add(&mut self, cell: usize, key: u32, fp: u64, value: u64) {
        self.n[cell] += 1;
        self.ckey[cell] = self.ckey[cell].wrapping_add(key);
        self.fp[cell] = self.fp[cell].wrapping_add(fp);
        self.sum[cell] += value;
        self.max[cell] = self.max[cell].max(value);
    }

    fn merge(&mut self, other: &Acc) {
        for c in 0..self.n.len() {
            self.n[c] += other.n[c];
            self.ckey[c] = self.ckey[c].wrapping_add(other.ckey[c]);
            self.fp[c] = self.fp[c].wrapping_add(other.fp[c]);
            self.sum[c] += other.sum[c];
            self.max[c] = self.max[c].max(other.max[c]);
        }
    }
}

/// The cell layout of one indicator: period × (ambiti + total) × slots, where slot 0 is the
/// indicator's own total and each breakdown's values follow.
struct Layout {
    periods: usize,
    ambiti: usize,
    /// (dimension, first slot) of each breakdown.
    breakdowns: Vec<(Dim, usize)>,
    slots: usize,
}

impl Layout {
    fn new(ind: &Indicator, periods: usize, ambiti: usize, dims: &Dims) -> Layout {
        let mut slots = 1;
        let mut breakdowns = Vec::new();
        for d in &ind.breakdowns {
            breakdowns.push((*d, slots));
            slots += dims.count(*d);
        }
        Layout {
            periods,
            ambiti: ambiti + 1,
            breakdowns,
            slots,
        }
    }

    fn cells(&self) -> usize {
        self.periods * self.ambiti * self.slots
    }

    fn cell(&self, period: usize, ambito: usize, slot: usize) -> usize {
        (period * self.ambiti + ambito) * self.slots + slot
    }
}

/// What one row adds to an indicator in one period: (ambito index, value, in the numerator).
/// `None` when the row does not count there.
fn contribution(
    m: &Measure,
    row: &Row,
    p: &Period,
    as_of: i32,
    services: &[u16],
    urgency: u8,
) -> Option<(u16, u64, bool)> {
    let active =
        |row: &Row| -> bool { row.start <= p.last && row.start <= as_of && row.end >= p.first };
    match m {
        Measure::PersonsActive { .. } => {
            (row.kind == RowKind::Episode && services.contains(&row.category) && active(row))
                .then_some((row.ambito, 1, true))
        }
        Measure::PersonsStarting { .. } => (row.kind == RowKind::Episode
            && services.contains(&row.category)
            && p.contains(row.start)
            && row.start <= as_of)
            .then_some((row.ambito, 1, true)),
        Measure::BedNights { .. } | Measure::Occupancy { .. } => {
            if row.kind != RowKind::Episode || !services.contains(&row.category) {
                return None;
            }
            // A night is each day from arrival to the day before leaving.
            let last_night = if row.end == i32::MAX {
                as_of.min(p.last)
            } else {
                (row.end - 1).min(p.last).min(as_of)
            };
            let first = row.start.max(p.first);
            let nights = i64::from(last_night) - i64::from(first) + 1;
            (nights > 0).then_some((row.ambito, nights as u64, true))
        }
        Measure::Items => (row.kind == RowKind::Distribution && p.contains(row.start)).then_some((
            row.ambito,
            u64::from(row.quantity),
            true,
        )),
        Measure::Referrals { event } => {
            if row.kind != RowKind::Referral {
                return None;
            }
            let (day, ambito) = match event {
                ReferralEvent::Sent => (row.start, row.ambito),
                ReferralEvent::Accepted => (row.accepted, row.receiver),
                ReferralEvent::Rejected => (row.rejected, row.receiver),
            };
            (day != NONE_DAY && p.contains(day)).then_some((ambito, 1, true))
        }
        Measure::MedianHoursToAcceptance => (row.kind == RowKind::Referral
            && row.accepted != NONE_DAY
            && p.contains(row.accepted)
            && row.minutes != u32::MAX)
            .then_some((row.receiver, u64::from(row.minutes), true)),
        Measure::ReferralsAnsweredWithin { hours, .. } => {
            if row.kind != RowKind::Referral
                || row.urgency != urgency
                || row.start == NONE_DAY
                || !p.contains(row.start)
            {
                return None;
            }
            let within = row.quantity != u32::MAX && row.quantity <= hours * 60;
            Some((row.receiver, 1, within))
        }
        Measure::ReachedWithin { hours } => {
            if row.kind != RowKind::Intervention || !p.contains(row.start) {
                return None;
            }
            let within = row.category == 0 && row.minutes != u32::MAX && row.minutes <= hours * 60;
            Some((row.ambito, 1, within))
        }
    }
}

/// Computes every table of the catalogue. `threads` splits the units between threads.
pub fn compute(
    catalogue: &Catalogue,
    input: &Input<'_>,
    ptable: &PTable,
    protection: Protection,
    threads: usize,
) -> Vec<Table> {
    let dims = Dims::new();
    let mut rows = intern(input, &dims);
    // Group by kind, then unit: each unit adds itself once to each cell, and each indicator
    // reads only the groups of the one kind of record it counts.
    rows.sort_unstable_by_key(|r| (r.kind as u8, r.fingerprint));
    let groups = group_bounds(&rows);
    catalogue
        .indicators
        .iter()
        .map(|ind| {
            compute_one(
                ind, input, &rows, &groups, &dims, ptable, protection, threads,
            )
        })
        .collect()
}

fn group_bounds(rows: &[Row]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=rows.len() {
        if i == rows.len()
            || rows[i].fingerprint != rows[start].fingerprint
            || rows[i].kind != rows[start].kind
        {
            out.push((start, i));
            start = i;
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn compute_one(
    ind: &Indicator,
    input: &Input<'_>,
    rows: &[Row],
    groups: &[(usize, usize)],
    dims: &Dims,
    ptable: &PTable,
    protection: Protection,
    threads: usize,
) -> Table {
    let layout = Layout::new(ind, input.periods.len(), input.ambiti.len(), dims);
    let kind = match ind.measure {
        Measure::PersonsActive { .. }
        | Measure::PersonsStarting { .. }
        | Measure::BedNights { .. }
        | Measure::Occupancy { .. } => RowKind::Episode,
        Measure::Items => RowKind::Distribution,
        Measure::ReachedWithin { .. } => RowKind::Intervention,
        Measure::Referrals { .. }
        | Measure::MedianHoursToAcceptance
        | Measure::ReferralsAnsweredWithin { .. } => RowKind::Referral,
    };
    let from = groups.partition_point(|g| rows[g.0].kind < kind);
    let to = groups.partition_point(|g| rows[g.0].kind <= kind);
    let groups = &groups[from..to];
    let services: Vec<u16> = match &ind.measure {
        Measure::PersonsActive { service_types }
        | Measure::PersonsStarting { service_types }
        | Measure::BedNights { service_types }
        | Measure::Occupancy { service_types } => service_types
            .iter()
            .map(|s| u16::from(dims.idx(Dim::ServiceType, Some(s))))
            .collect(),
        _ => Vec::new(),
    };
    let urgency = match &ind.measure {
        Measure::ReferralsAnsweredWithin { urgency, .. } => urgency_index(urgency),
        _ => u8::MAX,
    };
    let is_median = matches!(ind.measure, Measure::MedianHoursToAcceptance);
    let two_parts = matches!(
        ind.measure,
        Measure::ReferralsAnsweredWithin { .. } | Measure::ReachedWithin { .. }
    );

    let work = |range: &[(usize, usize)]| -> (Acc, Acc, Vec<Vec<u32>>) {
        let cells = layout.cells();
        let mut all = Acc::new(cells);
        let mut within = if two_parts {
            Acc::new(cells)
        } else {
            Acc::default()
        };
        let mut values: Vec<Vec<u32>> = if is_median {
            vec![Vec::new(); cells]
        } else {
            Vec::new()
        };
        let mut touched: Vec<(u32, u64, bool)> = Vec::new();
        for &(from, to) in range {
            touched.clear();
            for row in &rows[from..to] {
                for (pi, p) in input.periods.iter().enumerate() {
                    let Some((amb, value, num)) =
                        contribution(&ind.measure, row, p, input.as_of, &services, urgency)
                    else {
                        continue;
                    };
                    let mut ambs = [usize::MAX, input.ambiti.len()];
                    if usize::from(amb) < input.ambiti.len() {
                        ambs[0] = usize::from(amb);
                    }
                    for a in ambs.into_iter().filter(|a| *a != usize::MAX) {
                        let mut push = |slot: usize| {
                            touched.push((layout.cell(pi, a, slot) as u32, value, num));
                        };
                        push(0);
                        for (d, first) in &layout.breakdowns {
                            let v = match d {
                                Dim::Sex => row.attrs[0],
                                Dim::AgeBand => row.attrs[1],
                                Dim::CitizenshipGroup => row.attrs[2],
                                Dim::EthosLight => row.attrs[3],
                                Dim::ServiceType | Dim::KitType => {
                                    row.category.min(u16::from(u8::MAX)) as u8
                                }
                            };
                            push(first + usize::from(v));
                        }
                    }
                }
            }
            if touched.is_empty() {
                continue;
            }
            let (key, fp) = (rows[from].key, rows[from].fingerprint);
            touched.sort_unstable_by_key(|t| t.0);
            let mut i = 0;
            while i < touched.len() {
                let cell = touched[i].0;
                let (mut sum, mut any_num) = (0u64, false);
                while i < touched.len() && touched[i].0 == cell {
                    sum += touched[i].1;
                    any_num |= touched[i].2;
                    i += 1;
                }
                let c = cell as usize;
                all.add(c, key, fp, sum);
                if two_parts && any_num {
                    within.add(c, key, fp, 1);
                }
                if is_median {
                    values[c].push(u32::try_from(sum).unwrap_or(u32::MAX));
                }
            }
        }
        (all, within, values)
    };

    let threads = threads.clamp(1, 16);
    let chunk = groups.len().div_ceil(threads).max(1);
    let parts: Vec<(Acc, Acc, Vec<Vec<u32>>)> = if threads == 1 || groups.len() < 10_000 {
        vec![work(groups)]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = groups.chunks(chunk).map(|c| s.spawn(|| work(c))).collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        })
    };
    let mut parts = parts.into_iter();
    let (mut all, mut within, mut values) = parts.next().unwrap_or_else(|| {
        (
            Acc::new(layout.cells()),
            Acc::new(layout.cells()),
            Vec::new(),
        )
    });
    for (a, w, v) in parts {
        all.merge(&a);
        if two_parts {
            within.merge(&w);
        }
        if is_median {
            for (mine, theirs) in values.iter_mut().zip(v) {
                mine.extend(theirs);
            }
        }
    }
    publish(
        ind,
        input,
        &layout,
        dims,
        &all,
        &within,
        &mut values,
        ptable,
        protection,
    )
}

/// Mixes a cell key into a number in [-1, 1] for magnitude noise, independent of the count's
/// use of the same key.
fn signed_fraction(ckey: u32) -> f64 {
    let mut z = u64::from(ckey) ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

fn mix(parts: &[u64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

#[allow(clippy::too_many_arguments)]
fn publish(
    ind: &Indicator,
    input: &Input<'_>,
    layout: &Layout,
    dims: &Dims,
    all: &Acc,
    within: &Acc,
    values: &mut [Vec<u32>],
    ptable: &PTable,
    protection: Protection,
) -> Table {
    let threshold = ptable.params.threshold;
    let mut observations = Vec::with_capacity(layout.cells());
    let mut inputs = Vec::with_capacity(layout.cells());
    let suppressed = |obs: &mut Observation| {
        obs.value = None;
        obs.obs_status = ObsStatus::Q;
        obs.conf_status = ConfStatus::C;
    };
    for (pi, period) in input.periods.iter().enumerate() {
        for a in 0..layout.ambiti {
            let ambito = input.ambiti.get(a).map_or(TOTAL, String::as_str);
            let mut slots: Vec<(usize, Option<(Dim, String)>)> = vec![(0, None)];
            for (d, first) in &layout.breakdowns {
                for v in 0..dims.count(*d) {
                    slots.push((first + v, Some((*d, dims.code(*d, v).to_owned()))));
                }
            }
            for (slot, breakdown) in slots {
                let c = layout.cell(pi, a, slot);
                let n = all.n[c];
                let published_n = ptable.perturb(n, all.ckey[c]);
                let mut obs = Observation {
                    ambito: ambito.to_owned(),
                    time_period: period.label.clone(),
                    breakdown,
                    value: None,
                    obs_status: ObsStatus::A,
                    conf_status: ConfStatus::F,
                };
                let mut input_fp = vec![all.fp[c], u64::from(n), all.sum[c]];
                match &ind.measure {
                    Measure::PersonsActive { .. }
                    | Measure::PersonsStarting { .. }
                    | Measure::Referrals { .. } => {
                        obs.value = Some(f64::from(published_n));
                    }
                    Measure::BedNights { .. } | Measure::Items => {
                        if published_n < threshold {
                            suppressed(&mut obs);
                        } else {
                            obs.value = Some(perturbed_magnitude(all, c, protection));
                        }
                        input_fp.push(all.max[c]);
                    }
                    Measure::Occupancy { service_types } => {
                        let places: u64 = if a < input.ambiti.len() {
                            service_types
                                .iter()
                                .map(|s| {
                                    input
                                        .places
                                        .get(&(input.ambiti[a].clone(), s.clone()))
                                        .copied()
                                        .unwrap_or(0)
                                })
                                .sum()
                        } else {
                            input
                                .places
                                .iter()
                                .filter(|((_, s), _)| service_types.contains(s))
                                .map(|(_, p)| *p)
                                .sum()
                        };
                        let days =
                            (i64::from(period.last.min(input.as_of)) - i64::from(period.first) + 1)
                                .max(0) as u64;
                        let capacity = places * days;
                        input_fp.extend([all.max[c], capacity]);
                        if capacity == 0 {
                            obs.obs_status = ObsStatus::M;
                        } else if published_n < threshold {
                            suppressed(&mut obs);
                        } else {
                            let nights = perturbed_magnitude(all, c, protection);
                            obs.value = Some(round1(nights / capacity as f64 * 100.0));
                        }
                    }
                    Measure::MedianHoursToAcceptance => {
                        let v = &mut values[c];
                        v.sort_unstable();
                        input_fp.push(mix(&v.iter().map(|x| u64::from(*x)).collect::<Vec<_>>()));
                        if published_n < threshold {
                            suppressed(&mut obs);
                        } else {
                            let mid = v.len() / 2;
                            let minutes = if v.len() % 2 == 1 {
                                f64::from(v[mid])
                            } else {
                                (f64::from(v[mid - 1]) + f64::from(v[mid])) / 2.0
                            };
                            obs.value = Some(round1(minutes / 60.0));
                        }
                    }
                    Measure::ReferralsAnsweredWithin { .. } | Measure::ReachedWithin { .. } => {
                        let num = ptable.perturb(within.n[c], within.ckey[c]);
                        input_fp.extend([within.fp[c], u64::from(within.n[c])]);
                        if published_n < threshold {
                            suppressed(&mut obs);
                        } else {
                            let share = f64::from(num.min(published_n)) / f64::from(published_n);
                            obs.value = Some(round1(share * 100.0));
                        }
                    }
                }
                inputs.push(mix(&input_fp));
                observations.push(obs);
            }
        }
    }
    Table {
        indicator: ind.id.clone(),
        observations,
        inputs,
    }
}

fn perturbed_magnitude(all: &Acc, c: usize, protection: Protection) -> f64 {
    let noise = signed_fraction(all.ckey[c]) * protection.magnitude_noise * all.max[c] as f64;
    (all.sum[c] as f64 + noise).round().max(0.0)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
