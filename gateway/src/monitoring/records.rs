//! Statistical records: what the gateway keeps of an episode, a distribution or a street-unit
//! intervention once it has been received. Identity, free text, the structure's name and the
//! local references are dropped at ingress; the person is kept only as a *unit*, a keyed hash of
//! the regional linkage id, so that a person served in three ambiti is one unit everywhere.
//!
//! Each unit's hash also gives its *record key* for the cell key method: fixed for a person for
//! as long as the monitoring key lasts, whatever table or release the person falls in.

use crate::problem::ApiError;
use aws_lc_rs::hmac;
use raccordo_schemas::{Distribution, Episode, Intervention, Profile};
use serde::{Deserialize, Serialize};

/// Which input a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Episode,
    Distribution,
    Intervention,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Episode => "episode",
            Kind::Distribution => "distribution",
            Kind::Intervention => "intervention",
        }
    }
}

/// A statistical unit: a keyed 64-bit fingerprint (for counting distinct units and comparing
/// cells across releases) and the 32-bit record key. Both come from one HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Unit {
    pub fingerprint: u64,
    pub key: u32,
}

impl Unit {
    /// Before linking.
    pub const PENDING: Unit = Unit {
        fingerprint: 0,
        key: 0,
    };
}

/// Derives units: from a person's linkage id, or from a record that names no person.
pub struct UnitKeys {
    key: hmac::Key,
}

impl UnitKeys {
    pub fn new(secret: &[u8; 32]) -> UnitKeys {
        UnitKeys {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    fn unit(&self, domain: &str, parts: &[&str]) -> Unit {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(domain.as_bytes());
        for p in parts {
            ctx.update(&[0x1f]);
            ctx.update(p.as_bytes());
        }
        let tag = ctx.sign();
        let t = tag.as_ref();
        let mut fp = [0u8; 8];
        fp.copy_from_slice(&t[..8]);
        let mut rk = [0u8; 4];
        rk.copy_from_slice(&t[8..12]);
        Unit {
            fingerprint: u64::from_be_bytes(fp),
            key: u32::from_be_bytes(rk),
        }
    }

    /// The unit of a person, by regional linkage id.
    pub fn person(&self, linkage_id: &str) -> Unit {
        self.unit("person", &[linkage_id])
    }

    /// The unit of a record about nobody in particular, or an event counted as such (a
    /// referral, an intervention): the record is its own unit.
    pub fn record(&self, kind: &str, ambito: &str, local_id: &str) -> Unit {
        self.unit("record", &[kind, ambito, local_id])
    }
}

/// The breakdown attributes of a person, from the schema's non-identifying profile; absent
/// profiles give `None` everywhere (published under the unknown code).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub sex: Option<String>,
    pub age_band: Option<String>,
    pub citizenship_group: Option<String>,
    pub ethos_light: Option<String>,
}

impl Attributes {
    pub fn from_profile(profile: Option<&Profile>) -> Attributes {
        let Some(p) = profile else {
            return Attributes::default();
        };
        Attributes {
            sex: Some(p.sex.clone()),
            age_band: Some(p.age_band.clone()),
            citizenship_group: Some(p.citizenship_group.clone()),
            ethos_light: raccordo_schemas::codelist::ethos_light(&p.ethos).map(str::to_owned),
        }
    }
}

/// A statistical record. Stored in postcard's compact binary form behind a version byte
/// (`encode`, `decode`): a release reads every record back, and JSON's size and parsing were
/// most of a release's time over a million records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatRecord {
    pub kind: Kind,
    pub ambito: String,
    pub fingerprint: u64,
    pub key: u32,
    /// Service type (episodes), kit type (distributions) or outcome (interventions).
    pub category: String,
    pub start: i32,
    /// Last day (episodes; open episodes have none), or the day itself for one-day events.
    pub end: Option<i32>,
    /// Items (distributions); 1 otherwise.
    pub quantity: u32,
    /// Minutes from signal to reaching the person (interventions reached).
    pub minutes: Option<u32>,
    pub sex: Option<String>,
    pub age_band: Option<String>,
    pub citizenship_group: Option<String>,
    pub ethos_light: Option<String>,
}

/// The first byte of a stored record: the layout's version.
const FORMAT_V1: u8 = 1;

impl StatRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_V1];
        // Serialising plain data into a Vec cannot fail; an empty record would be refused
        // when read back.
        if let Ok(body) = postcard::to_allocvec(self) {
            out.extend_from_slice(&body);
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<StatRecord> {
        match bytes.split_first() {
            Some((&FORMAT_V1, body)) => postcard::from_bytes(body).ok(),
            _ => None,
        }
    }
}

impl StatRecord {
    fn new(
        kind: Kind,
        ambito: String,
        unit: Unit,
        category: String,
        attributes: Attributes,
    ) -> StatRecord {
        StatRecord {
            kind,
            ambito,
            fingerprint: unit.fingerprint,
            key: unit.key,
            category,
            start: 0,
            end: None,
            quantity: 1,
            minutes: None,
            sex: attributes.sex,
            age_band: attributes.age_band,
            citizenship_group: attributes.citizenship_group,
            ethos_light: attributes.ethos_light,
        }
    }
}

pub fn day_number(d: time::Date) -> i32 {
    (d.to_julian_day()
        - time::Date::from_calendar_date(1970, time::Month::January, 1)
            .map(|e| e.to_julian_day())
            .unwrap_or(2_440_588))
    .clamp(i32::MIN / 2, i32::MAX / 2)
}

pub fn date_of(day: i32) -> Option<time::Date> {
    time::Date::from_julian_day(day + 2_440_588).ok()
}

/// The part of an input that the monitoring keeps, and what the gateway needs to file it: the
/// local id and the person (for linking).
/// Its unit is set once the person has been linked (`Reduced::unit`).
pub struct Reduced {
    pub record: StatRecord,
    pub local_id: String,
    pub person: Option<raccordo_schemas::Person>,
}

impl Reduced {
    pub fn set_unit(&mut self, unit: Unit) {
        self.record.fingerprint = unit.fingerprint;
        self.record.key = unit.key;
    }
}

fn local_id(id: Option<&String>) -> Result<String, ApiError> {
    id.cloned().ok_or_else(|| {
        ApiError::violation(
            "local-id-required",
            "A statistical record needs its local id",
            "",
            "required",
            "'id' (the record's id in the local system) is required here, so that a correction sent later replaces the record instead of counting it twice",
        )
    })
}

pub fn from_episode(e: Episode) -> Result<Reduced, ApiError> {
    let unit = Unit::PENDING;
    let attributes = Attributes::from_profile(e.person.as_ref().map(|p| &p.profile));
    Ok(Reduced {
        local_id: local_id(e.id.as_ref())?,
        record: StatRecord {
            start: day_number(e.start),
            end: e.end.map(day_number),
            ..StatRecord::new(Kind::Episode, e.ambito, unit, e.service_type, attributes)
        },
        person: e.person,
    })
}

pub fn from_distribution(d: Distribution) -> Result<Reduced, ApiError> {
    let unit = Unit::PENDING;
    let attributes = Attributes::from_profile(d.person.as_ref().map(|p| &p.profile));
    let day = day_number(d.date);
    Ok(Reduced {
        local_id: local_id(d.id.as_ref())?,
        record: StatRecord {
            start: day,
            end: Some(day),
            quantity: d.quantity,
            ..StatRecord::new(Kind::Distribution, d.ambito, unit, d.kit_type, attributes)
        },
        person: d.person,
    })
}

pub fn from_intervention(i: Intervention) -> Result<Reduced, ApiError> {
    let unit = Unit::PENDING;
    let attributes = Attributes::from_profile(i.person.as_ref().map(|p| &p.profile));
    // The day of the signal in Italian civil time is the day it belongs to.
    let rome = rome_offset(i.signalled_at);
    // An instant at the edge of the supported years (9999-12-31T23:30:00Z) has no date in Rome.
    let local = i.signalled_at.checked_to_offset(rome).ok_or_else(|| {
        ApiError::violation(
            "schema-violation",
            "The document does not conform to schema v1",
            "/signalled_at",
            "format",
            "signalled_at is outside the years the gateway can date (1 to 9999 in Italian time)",
        )
    })?;
    let day = day_number(local.date());
    let minutes = i.reached_at.map(|r| {
        let m = (r - i.signalled_at).whole_minutes();
        u32::try_from(m.max(0)).unwrap_or(u32::MAX)
    });
    Ok(Reduced {
        local_id: local_id(i.id.as_ref())?,
        record: StatRecord {
            start: day,
            end: Some(day),
            minutes,
            ..StatRecord::new(Kind::Intervention, i.ambito, unit, i.outcome, attributes)
        },
        person: i.person,
    })
}

/// Central European time, with summer time from the last Sunday of March to the last Sunday of
/// October (at 01:00 UTC), as the EU rule has it.
pub fn rome_offset(t: time::OffsetDateTime) -> time::UtcOffset {
    // Winter time for an instant with no UTC date (past the end of year 9999 once in UTC).
    let Some(utc) = t.checked_to_offset(time::UtcOffset::UTC) else {
        return time::UtcOffset::from_hms(1, 0, 0).unwrap_or(time::UtcOffset::UTC);
    };
    let year = utc.year();
    let last_sunday = |month: time::Month| -> Option<time::OffsetDateTime> {
        let days = time::util::days_in_month(month, year);
        let last = time::Date::from_calendar_date(year, month, days).ok()?;
        let back = last.weekday().number_days_from_sunday();
        let d = last - time::Duration::days(i64::from(back));
        Some(d.with_hms(1, 0, 0).ok()?.assume_utc())
    };
    let summer = match (
        last_sunday(time::Month::March),
        last_sunday(time::Month::October),
    ) {
        (Some(from), Some(to)) => utc >= from && utc < to,
        _ => false,
    };
    time::UtcOffset::from_hms(if summer { 2 } else { 1 }, 0, 0).unwrap_or(time::UtcOffset::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn units_are_stable_keyed_and_distinct() {
        let a = UnitKeys::new(&[7; 32]);
        let b = UnitKeys::new(&[8; 32]);
        assert_eq!(a.person("p-1"), a.person("p-1"));
        assert_ne!(a.person("p-1"), a.person("p-2"));
        assert_ne!(a.person("p-1"), b.person("p-1"), "the key matters");
        assert_ne!(a.person("x"), a.record("episode", "prato", "x"));
    }

    #[test]
    fn records_round_trip_their_stored_form() {
        let r = StatRecord {
            end: Some(20_500),
            minutes: Some(75),
            ..StatRecord::new(
                Kind::Intervention,
                "livorno".into(),
                UnitKeys::new(&[1; 32]).person("p"),
                "reached".into(),
                Attributes::default(),
            )
        };
        let bytes = r.encode();
        assert_eq!(StatRecord::decode(&bytes), Some(r));
        assert_eq!(StatRecord::decode(&bytes[1..]), None, "no version byte");
        assert_eq!(
            StatRecord::decode(&bytes[..bytes.len() - 1]),
            None,
            "truncated"
        );
    }

    #[test]
    fn days_and_civil_time() {
        assert_eq!(day_number(date!(1970 - 01 - 01)), 0);
        assert_eq!(
            date_of(day_number(date!(2026 - 03 - 31))),
            Some(date!(2026 - 03 - 31))
        );
        assert_eq!(
            rome_offset(datetime!(2026-01-15 12:00 UTC)).whole_hours(),
            1
        );
        assert_eq!(
            rome_offset(datetime!(2026-07-15 12:00 UTC)).whole_hours(),
            2
        );
        // Summer time starts on 29 March 2026 at 01:00 UTC.
        assert_eq!(
            rome_offset(datetime!(2026-03-29 00:59 UTC)).whole_hours(),
            1
        );
        assert_eq!(
            rome_offset(datetime!(2026-03-29 01:00 UTC)).whole_hours(),
            2
        );
    }

    #[test]
    fn an_intervention_signalled_at_the_end_of_year_9999_is_refused_not_a_panic() {
        // Seen while writing the json_ingest fuzz target: to_offset panicked past year 9999.
        let mut body: serde_json::Value = serde_json::from_str(include_str!(
            "../../../schemas/examples/intervention/valid/not-found.json"
        ))
        .unwrap();
        body.as_object_mut().unwrap().remove("reached_at");
        for at in ["9999-12-31T23:30:00Z", "9999-12-31T23:30:00-01:00"] {
            body["signalled_at"] = at.into();
            let i = serde_json::from_value(body.clone()).unwrap();
            assert!(from_intervention(i).is_err(), "{at}");
        }
        assert_eq!(
            rome_offset(datetime!(9999-12-31 23:30 -1:00)).whole_hours(),
            1
        );
    }
}
