//! The indicator catalogue: what is published, as data (`schemas/indicators/catalogue.json`),
//! versioned. Each indicator names one measure from a small vocabulary the engine knows; an
//! unknown measure, breakdown or code is an error when the catalogue is loaded, not at release.

use serde::{Deserialize, Serialize};

pub const CATALOGUE: &str = include_str!("../../../schemas/indicators/catalogue.json");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    pub id: String,
    pub version: String,
    pub title: String,
    pub note: String,
    pub indicators: Vec<Indicator>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    pub it: String,
    pub en: String,
}

impl Text {
    pub fn get(&self, lang: &str) -> &str {
        if lang == "en" { &self.en } else { &self.it }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Indicator {
    pub id: String,
    pub label: Text,
    pub definition: Text,
    pub numerator: Text,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominator: Option<Text>,
    pub unit: UnitMeasure,
    pub measure: Measure,
    pub breakdowns: Vec<Dim>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitMeasure {
    Persons,
    BedNights,
    Items,
    Referrals,
    Hours,
    Percent,
}

impl UnitMeasure {
    pub const ALL: [UnitMeasure; 6] = [
        UnitMeasure::Persons,
        UnitMeasure::BedNights,
        UnitMeasure::Items,
        UnitMeasure::Referrals,
        UnitMeasure::Hours,
        UnitMeasure::Percent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UnitMeasure::Persons => "persons",
            UnitMeasure::BedNights => "bed_nights",
            UnitMeasure::Items => "items",
            UnitMeasure::Referrals => "referrals",
            UnitMeasure::Hours => "hours",
            UnitMeasure::Percent => "percent",
        }
    }

    /// Whether values are whole numbers.
    pub fn is_count(self) -> bool {
        !matches!(self, UnitMeasure::Hours | UnitMeasure::Percent)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferralEvent {
    Sent,
    Accepted,
    Rejected,
}

/// The vocabulary of measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Measure {
    /// Distinct persons with an episode of these service types active on some day of the period.
    PersonsActive { service_types: Vec<String> },
    /// Distinct persons with an episode of these service types starting in the period.
    PersonsStarting { service_types: Vec<String> },
    /// Nights in episodes of these service types within the period.
    BedNights { service_types: Vec<String> },
    /// Bed-nights over the places published for these service types times the period's days.
    Occupancy { service_types: Vec<String> },
    /// Items distributed.
    Items,
    /// Referrals reaching a status in the period (sent by the sender, the others by the
    /// receiver).
    Referrals { event: ReferralEvent },
    /// Median hours from sending to acceptance, by receiver.
    MedianHoursToAcceptance,
    /// Share of the referrals of an urgency sent in the period answered within so many hours.
    ReferralsAnsweredWithin { urgency: String, hours: u32 },
    /// Share of street-unit signals in the period where the person was reached within so many
    /// hours.
    ReachedWithin { hours: u32 },
}

/// Breakdown dimensions beyond ambito and period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dim {
    Sex,
    AgeBand,
    CitizenshipGroup,
    EthosLight,
    ServiceType,
    KitType,
}

/// The code for "not known" in every breakdown (SDMX's `_U`), and the total (`_T`).
pub const UNKNOWN: &str = "_U";
pub const TOTAL: &str = "_T";

impl Dim {
    pub const ALL: [Dim; 6] = [
        Dim::Sex,
        Dim::AgeBand,
        Dim::CitizenshipGroup,
        Dim::EthosLight,
        Dim::ServiceType,
        Dim::KitType,
    ];

    /// The code list the dimension's values come from.
    pub fn code_list(self) -> &'static str {
        match self {
            Dim::Sex => "sex",
            Dim::AgeBand => "age-band",
            Dim::CitizenshipGroup => "citizenship-group",
            Dim::EthosLight => "ethos-light",
            Dim::ServiceType => "service-type",
            Dim::KitType => "goods",
        }
    }

    /// The SDMX dimension id.
    pub fn sdmx_id(self) -> &'static str {
        match self {
            Dim::Sex => "SEX",
            Dim::AgeBand => "AGE_BAND",
            Dim::CitizenshipGroup => "CITIZENSHIP",
            Dim::EthosLight => "ETHOS_LIGHT",
            Dim::ServiceType => "SERVICE_TYPE",
            Dim::KitType => "KIT_TYPE",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dim::Sex => "sex",
            Dim::AgeBand => "age_band",
            Dim::CitizenshipGroup => "citizenship_group",
            Dim::EthosLight => "ethos_light",
            Dim::ServiceType => "service_type",
            Dim::KitType => "kit_type",
        }
    }

    /// The codes of the dimension, then `_U`.
    pub fn values(self) -> Vec<String> {
        let mut v: Vec<String> = raccordo_schemas::codelist::get(self.code_list())
            .map(|l| l.codes.iter().map(|c| c.code.clone()).collect())
            .unwrap_or_default();
        v.push(UNKNOWN.to_owned());
        v
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("indicator catalogue: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("indicator catalogue: {indicator}: {message}")]
    Invalid { indicator: String, message: String },
}

impl Catalogue {
    /// The catalogue shipped with this version, checked.
    pub fn shipped() -> Result<Catalogue, CatalogueError> {
        Catalogue::parse(CATALOGUE)
    }

    pub fn parse(text: &str) -> Result<Catalogue, CatalogueError> {
        let c: Catalogue = serde_json::from_str(text)?;
        let mut seen = std::collections::HashSet::new();
        for ind in &c.indicators {
            let bad = |message: String| CatalogueError::Invalid {
                indicator: ind.id.clone(),
                message,
            };
            if !seen.insert(ind.id.as_str()) {
                return Err(bad("appears twice".into()));
            }
            if ind.id.is_empty()
                || !ind
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(bad("ids are upper-case letters, digits and '_'".into()));
            }
            let services = match &ind.measure {
                Measure::PersonsActive { service_types }
                | Measure::PersonsStarting { service_types }
                | Measure::BedNights { service_types }
                | Measure::Occupancy { service_types } => service_types.as_slice(),
                _ => &[],
            };
            let known = Dim::ServiceType.values();
            if let Some(s) = services.iter().find(|s| !known.contains(s)) {
                return Err(bad(format!("unknown service type {s:?}")));
            }
            if let Measure::ReferralsAnsweredWithin { urgency, .. } = &ind.measure
                && raccordo_schemas::codelist::get("urgency")
                    .is_none_or(|l| !l.codes.iter().any(|c| &c.code == urgency))
            {
                return Err(bad(format!("unknown urgency {urgency:?}")));
            }
            let allowed: &[Dim] = match &ind.measure {
                Measure::Items => &[Dim::KitType],
                Measure::Occupancy { .. }
                | Measure::MedianHoursToAcceptance
                | Measure::ReferralsAnsweredWithin { .. }
                | Measure::ReachedWithin { .. } => &[],
                Measure::PersonsActive { .. } | Measure::PersonsStarting { .. } => &[
                    Dim::Sex,
                    Dim::AgeBand,
                    Dim::CitizenshipGroup,
                    Dim::EthosLight,
                    Dim::ServiceType,
                ],
                _ => &[
                    Dim::Sex,
                    Dim::AgeBand,
                    Dim::CitizenshipGroup,
                    Dim::EthosLight,
                ],
            };
            if let Some(d) = ind.breakdowns.iter().find(|d| !allowed.contains(d)) {
                return Err(bad(format!(
                    "breakdown {} does not apply to this measure",
                    d.as_str()
                )));
            }
            let ratio = matches!(
                ind.measure,
                Measure::Occupancy { .. }
                    | Measure::ReferralsAnsweredWithin { .. }
                    | Measure::ReachedWithin { .. }
            );
            if ratio != (ind.unit == UnitMeasure::Percent) || ratio != ind.denominator.is_some() {
                return Err(bad(
                    "rates are in percent and name their denominator; nothing else does".into(),
                ));
            }
        }
        Ok(c)
    }

    /// A digest of the catalogue as published, recorded in every release.
    pub fn digest(&self) -> String {
        crate::canonical::digest(&serde_json::to_value(self).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalogue_loads_and_covers_the_issue() {
        let c = Catalogue::shipped().unwrap();
        let ids: Vec<&str> = c.indicators.iter().map(|i| i.id.as_str()).collect();
        for id in [
            "PERSONS_IN_CHARGE",
            "PERSONS_HOUSED",
            "SHELTER_BED_NIGHTS",
            "SHELTER_OCCUPANCY",
            "GOODS_DISTRIBUTED",
            "REFERRALS_SENT",
            "REFERRALS_ACCEPTED",
            "REFERRALS_REJECTED",
            "REFERRAL_ACCEPTANCE_MEDIAN_HOURS",
            "IMMEDIATE_ANSWERED_3H",
            "FICTITIOUS_RESIDENCES",
        ] {
            assert!(ids.contains(&id), "{id} missing");
        }
    }

    #[test]
    fn mistakes_in_the_catalogue_are_named() {
        let good = CATALOGUE;
        let typo = good.replacen("\"case_management\"", "\"case_managment\"", 1);
        let err = Catalogue::parse(&typo).unwrap_err().to_string();
        assert!(
            err.contains("PERSONS_IN_CHARGE") && err.contains("case_managment"),
            "{err}"
        );
        let bad_dim = good.replacen(
            "\"breakdowns\": [\"kit_type\"]",
            "\"breakdowns\": [\"sex\"]",
            1,
        );
        let err = Catalogue::parse(&bad_dim).unwrap_err().to_string();
        assert!(err.contains("GOODS_DISTRIBUTED"), "{err}");
        let unknown = good.replacen("\"kind\": \"items\"", "\"kind\": \"average\"", 1);
        assert!(Catalogue::parse(&unknown).is_err());
    }
}
