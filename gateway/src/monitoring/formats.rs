//! A release's data in four formats, chosen by content negotiation:
//! - SDMX-CSV 2.0.0 (`application/vnd.sdmx.data+csv; version=2.0.0`): STRUCTURE, STRUCTURE_ID,
//!   ACTION, the dimensions in the structure's order (TIME_PERIOD last), OBS_VALUE, then the
//!   attributes; RFC 4180 quoting and CRLF; missing values as empty fields.
//! - SDMX-JSON 2.0.0 (`application/vnd.sdmx.data+json; version=2.0.0`): one structure with every
//!   dimension at observation level, a flat `observations` object keyed by value indexes, each
//!   observation `[OBS_VALUE, UNIT_MEASURE, OBS_STATUS, CONF_STATUS]` (attribute values as indexes).
//! - Plain CSV (`text/csv`) and JSON (`application/json`, the default) for spreadsheets and
//!   scripts, with the same flags.
//!
//! One shape of data for all four: every dimension has a value in every row, `_T` for a total.

use super::catalogue::{Catalogue, Dim, TOTAL, UnitMeasure};
use super::release::Entry;
use super::tables::{ConfStatus, ObsStatus, Observation, Table};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub const SDMX_CSV: &str = "application/vnd.sdmx.data+csv; version=2.0.0";
pub const SDMX_JSON: &str = "application/vnd.sdmx.data+json; version=2.0.0";
pub const CSV: &str = "text/csv; charset=utf-8; header=present";
pub const JSON: &str = "application/json";
pub const SUPPORTED: &[&str] = &[SDMX_CSV, SDMX_JSON, "text/csv", JSON];
pub const SDMX_JSON_SCHEMA: &str = "https://raw.githubusercontent.com/sdmx-twg/sdmx-json/master/data-message/tools/schemas/2.0.0/sdmx-json-data-schema.json";

/// The agency and dataflow the Region publishes under.
pub const AGENCY: &str = "RT";
pub const DATAFLOW: &str = "DF_RACCORDO_MONITORING";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    SdmxCsv,
    SdmxJson,
    Csv,
    Json,
}

impl Format {
    pub fn media_type(self) -> &'static str {
        match self {
            Format::SdmxCsv => SDMX_CSV,
            Format::SdmxJson => SDMX_JSON,
            Format::Csv => CSV,
            Format::Json => JSON,
        }
    }

    /// The best format for an `Accept` header's media ranges, in the client's order of
    /// preference; `None` when none can be produced. SDMX types with a `version` other than
    /// 2.0.0 (or 2) are not produced.
    pub fn negotiate(ranked: &[actix_web::mime::Mime]) -> Option<Format> {
        if ranked.is_empty() {
            return Some(Format::Json);
        }
        for m in ranked {
            let version_ok = m
                .get_param("version")
                .is_none_or(|v| matches!(v.as_str(), "2.0.0" | "2.0" | "2"));
            let found = match (m.type_().as_str(), m.subtype().as_str(), m.suffix()) {
                ("application", "vnd.sdmx.data", Some(s)) if s == "csv" && version_ok => {
                    Some(Format::SdmxCsv)
                }
                ("application", "vnd.sdmx.data", Some(s)) if s == "json" && version_ok => {
                    Some(Format::SdmxJson)
                }
                ("text", "csv", _) => Some(Format::Csv),
                ("application", "json", _) | ("application", "*", _) | ("*", "*", _) => {
                    Some(Format::Json)
                }
                _ => None,
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }
}

/// The dimensions of the dataflow, in order; TIME_PERIOD is last.
const DIMS: [Dim; 6] = Dim::ALL;

fn dim_values(o: &Observation) -> [&str; 6] {
    let mut v = [TOTAL; 6];
    if let Some((d, code)) = &o.breakdown
        && let Some(i) = DIMS.iter().position(|x| x == d)
    {
        v[i] = code.as_str();
    }
    v
}

fn value_text(v: Option<f64>, count: bool) -> String {
    match v {
        None => String::new(),
        Some(x) if count => format!("{}", x.round() as i64),
        Some(x) => format!("{x:.1}"),
    }
}

fn obs_status(s: ObsStatus) -> &'static str {
    match s {
        ObsStatus::A => "A",
        ObsStatus::M => "M",
        ObsStatus::Q => "Q",
    }
}

fn conf_status(s: ConfStatus) -> &'static str {
    match s {
        ConfStatus::F => "F",
        ConfStatus::C => "C",
    }
}

fn structure_id(catalogue: &Catalogue) -> String {
    format!("{AGENCY}:{DATAFLOW}({})", catalogue.version)
}

/// Rows of every table, with the indicator and its unit.
fn rows<'a>(
    catalogue: &'a Catalogue,
    tables: &'a [Table],
) -> impl Iterator<Item = (&'a str, &'static str, bool, &'a Observation)> {
    tables.iter().flat_map(move |t| {
        let unit = catalogue
            .indicators
            .iter()
            .find(|i| i.id == t.indicator)
            .map(|i| i.unit);
        let (unit_id, count) = unit.map_or(("", true), |u| (u.as_str(), u.is_count()));
        t.observations
            .iter()
            .map(move |o| (t.indicator.as_str(), unit_id, count, o))
    })
}

fn write_csv(header: Vec<String>, records: impl Iterator<Item = Vec<String>>) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let _ = w.write_record(&header);
    for r in records {
        let _ = w.write_record(&r);
    }
    w.into_inner().unwrap_or_default()
}

pub fn sdmx_csv(catalogue: &Catalogue, tables: &[Table]) -> Vec<u8> {
    let mut header: Vec<String> = ["STRUCTURE", "STRUCTURE_ID", "ACTION", "INDICATOR", "AMBITO"]
        .map(str::to_owned)
        .to_vec();
    header.extend(DIMS.iter().map(|d| d.sdmx_id().to_owned()));
    header.extend(
        [
            "TIME_PERIOD",
            "OBS_VALUE",
            "UNIT_MEASURE",
            "OBS_STATUS",
            "CONF_STATUS",
        ]
        .map(str::to_owned),
    );
    let sid = structure_id(catalogue);
    write_csv(
        header,
        rows(catalogue, tables).map(|(ind, unit, count, o)| {
            let mut r = vec![
                "dataflow".to_owned(),
                sid.clone(),
                "I".to_owned(),
                ind.to_owned(),
                o.ambito.clone(),
            ];
            r.extend(dim_values(o).iter().map(|s| (*s).to_owned()));
            r.extend([
                o.time_period.clone(),
                value_text(o.value, count),
                unit.to_owned(),
                obs_status(o.obs_status).to_owned(),
                conf_status(o.conf_status).to_owned(),
            ]);
            r
        }),
    )
}

pub fn csv(catalogue: &Catalogue, tables: &[Table]) -> Vec<u8> {
    let mut header: Vec<String> = vec!["indicator".into(), "ambito".into(), "time_period".into()];
    header.extend(DIMS.iter().map(|d| d.as_str().to_owned()));
    header.extend(["value", "unit", "obs_status", "conf_status"].map(str::to_owned));
    write_csv(
        header,
        rows(catalogue, tables).map(|(ind, unit, count, o)| {
            let mut r = vec![ind.to_owned(), o.ambito.clone(), o.time_period.clone()];
            r.extend(dim_values(o).iter().map(|s| (*s).to_owned()));
            r.extend([
                value_text(o.value, count),
                unit.to_owned(),
                obs_status(o.obs_status).to_owned(),
                conf_status(o.conf_status).to_owned(),
            ]);
            r
        }),
    )
}

fn number(v: Option<f64>, count: bool) -> Value {
    match v {
        None => Value::Null,
        Some(x) if count => json!(x.round() as i64),
        Some(x) => json!(x),
    }
}

pub fn json(catalogue: &Catalogue, entry: &Entry, tables: &[Table], lang: &str) -> Value {
    let indicators: Vec<Value> = tables
        .iter()
        .map(|t| {
            let ind = catalogue.indicators.iter().find(|i| i.id == t.indicator);
            let count = ind.is_none_or(|i| i.unit.is_count());
            json!({
                "id": t.indicator,
                "label": ind.map(|i| i.label.get(lang)),
                "unit": ind.map(|i| i.unit.as_str()),
                "observations": t.observations.iter().map(|o| {
                    let mut m = Map::new();
                    m.insert("ambito".into(), json!(o.ambito));
                    m.insert("time_period".into(), json!(o.time_period));
                    if let Some((d, code)) = &o.breakdown {
                        m.insert(d.as_str().into(), json!(code));
                    }
                    m.insert("value".into(), number(o.value, count));
                    m.insert("obs_status".into(), json!(obs_status(o.obs_status)));
                    m.insert("conf_status".into(), json!(conf_status(o.conf_status)));
                    Value::Object(m)
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "release": entry.id,
        "period": entry.period,
        "created_at": entry.manifest["created_at"],
        "catalogue_version": catalogue.version,
        "indicators": indicators,
    })
}

/// An SDMX code id must match `^[A-Za-z0-9_@$-]+$`; others (e.g. `65+`) go as a `value`.
fn sdmx_value(id: &str, name: &str) -> Value {
    if !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'@' | b'$' | b'-'))
    {
        json!({"id": id, "name": name})
    } else {
        json!({"value": id})
    }
}

fn code_name(d: Dim, code: &str, lang: &str) -> String {
    match code {
        TOTAL => if lang == "en" { "Total" } else { "Totale" }.to_owned(),
        super::catalogue::UNKNOWN => if lang == "en" { "Unknown" } else { "Non noto" }.to_owned(),
        _ => raccordo_schemas::codelist::get(d.code_list())
            .and_then(|l| l.codes.iter().find(|c| c.code == code))
            .map_or_else(
                || code.to_owned(),
                |c| {
                    if lang == "en" {
                        c.label_en.clone()
                    } else {
                        c.label_it.clone()
                    }
                },
            ),
    }
}

pub fn sdmx_json(
    catalogue: &Catalogue,
    entry: &Entry,
    tables: &[Table],
    ambito_names: &HashMap<String, String>,
    lang: &str,
) -> Value {
    // The values each dimension takes, in first-seen order.
    let mut seen: Vec<Vec<String>> = vec![Vec::new(); DIMS.len() + 3];
    let mut index: Vec<HashMap<String, usize>> = vec![HashMap::new(); DIMS.len() + 3];
    let mut position = |d: usize, v: &str| -> usize {
        if let Some(i) = index[d].get(v) {
            return *i;
        }
        let i = seen[d].len();
        seen[d].push(v.to_owned());
        index[d].insert(v.to_owned(), i);
        i
    };
    let units = UnitMeasure::ALL.map(UnitMeasure::as_str);
    let mut observations = Map::new();
    for (ind, unit, count, o) in rows(catalogue, tables) {
        let mut key = vec![position(0, ind), position(1, &o.ambito)];
        for (k, v) in dim_values(o).iter().enumerate() {
            key.push(position(2 + k, v));
        }
        key.push(position(DIMS.len() + 2, &o.time_period));
        let key: Vec<String> = key.iter().map(usize::to_string).collect();
        observations.insert(
            key.join(":"),
            json!([
                number(o.value, count),
                units.iter().position(|u| *u == unit),
                match o.obs_status {
                    ObsStatus::A => 0,
                    ObsStatus::M => 1,
                    ObsStatus::Q => 2,
                },
                match o.conf_status {
                    ConfStatus::F => 0,
                    ConfStatus::C => 1,
                },
            ]),
        );
    }
    let name_of = |d: usize, v: &str| -> String {
        match d {
            0 => catalogue
                .indicators
                .iter()
                .find(|i| i.id == v)
                .map_or_else(|| v.to_owned(), |i| i.label.get(lang).to_owned()),
            1 => ambito_names.get(v).cloned().unwrap_or_else(|| {
                if v == TOTAL {
                    "Regione Toscana".to_owned()
                } else {
                    v.to_owned()
                }
            }),
            d if d >= 2 && d < DIMS.len() + 2 => code_name(DIMS[d - 2], v, lang),
            _ => v.to_owned(),
        }
    };
    let mut dim_ids = vec![
        ("INDICATOR", "Indicatore"),
        ("AMBITO", "Ambito territoriale"),
    ];
    dim_ids.extend(DIMS.iter().map(|d| (d.sdmx_id(), d.as_str())));
    dim_ids.push(("TIME_PERIOD", "Periodo"));
    let dimensions: Vec<Value> = dim_ids
        .iter()
        .enumerate()
        .map(|(i, (id, name))| {
            let mut v = json!({
                "id": id,
                "name": name,
                "keyPosition": i,
                "values": seen[i].iter().map(|c| sdmx_value(c, &name_of(i, c))).collect::<Vec<_>>(),
            });
            if *id == "TIME_PERIOD" {
                v["roles"] = json!(["TIME_PERIOD"]);
            }
            v
        })
        .collect();
    let urn = format!(
        "urn:sdmx:org.sdmx.infomodel.datastructure.Dataflow={}",
        structure_id(catalogue)
    );
    json!({
        "meta": {
            "schema": SDMX_JSON_SCHEMA,
            "id": format!("RACCORDO-{}", entry.id),
            "test": false,
            "prepared": entry.manifest["created_at"],
            "contentLanguages": [lang],
            "name": catalogue.title,
            "sender": {"id": AGENCY, "name": "Regione Toscana"},
        },
        "data": {
            "structures": [{
                "links": [{"rel": "dataflow", "urn": urn}],
                "name": catalogue.title,
                "dimensions": {"dataSet": [], "series": [], "observation": dimensions},
                "measures": {"observation": [{"id": "OBS_VALUE", "name": "Valore"}]},
                "attributes": {
                    "dataSet": [],
                    "series": [],
                    "observation": [
                        {
                            "id": "UNIT_MEASURE",
                            "name": "Unità di misura",
                            "relationship": {"observation": {}},
                            "values": units.iter().map(|u| json!({"id": u, "name": u})).collect::<Vec<_>>(),
                        },
                        {
                            "id": "OBS_STATUS",
                            "name": "Stato dell'osservazione",
                            "relationship": {"observation": {}},
                            "values": [
                                {"id": "A", "name": "Normal value"},
                                {"id": "M", "name": "Missing value; data cannot exist"},
                                {"id": "Q", "name": "Missing value; suppressed"},
                            ],
                        },
                        {
                            "id": "CONF_STATUS",
                            "name": "Stato di riservatezza",
                            "relationship": {"observation": {}},
                            "values": [
                                {"id": "F", "name": "Free"},
                                {"id": "C", "name": "Confidential statistical information"},
                            ],
                        },
                    ],
                },
                "annotations": [],
                "dataSets": [0],
            }],
            "dataSets": [{
                "structure": 0,
                "action": "Information",
                "links": [{"rel": "dataflow", "urn": urn}],
                "reportingBegin": entry.manifest["time_periods"][0],
                "observations": observations,
            }],
        },
    })
}
