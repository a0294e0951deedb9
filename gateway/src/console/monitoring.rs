//! The console's monitoring page: one bar chart per indicator of the latest release, by ambito
//! and quarter, drawn on the server as SVG (the console runs no script), with confidential
//! cells drawn as such; and the form with which a regional analyst makes a release.

use super::{
    Lang, form_accepted, lang_of, message, render, see_other, serde_urlencoded_form, session_of,
};
use crate::api::State;
use crate::authorization::Role;
use crate::monitoring::catalogue::TOTAL;
use crate::monitoring::release::{self, Entry};
use crate::monitoring::tables::{ObsStatus, Table};
use crate::people::sessions::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use serde::Serialize;
use time::OffsetDateTime;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 8.0;
const BOTTOM: f64 = 36.0;
const TOP: f64 = 12.0;
/// Height of the mark that stands for a confidential cell.
const FLAG_HEIGHT: f64 = 14.0;

#[derive(Serialize)]
struct Bar {
    x: String,
    y: String,
    w: String,
    h: String,
    class: String,
    flag: &'static str,
    title: String,
}

#[derive(Serialize)]
struct Label {
    x: String,
    text: String,
}

#[derive(Serialize)]
struct Chart {
    id: String,
    label: String,
    unit: String,
    total: Option<String>,
    bars: Vec<Bar>,
    labels: Vec<Label>,
    width: f64,
    height: f64,
    baseline: String,
}

fn may_see(session: &Session) -> bool {
    session
        .roles
        .iter()
        .any(|r| matches!(r, Role::Analyst | Role::Admin))
}

fn number(v: f64, count: bool) -> String {
    if count {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.1}")
    }
}

fn chart(table: &Table, entry: &Entry, state: &State, lang: Lang) -> Chart {
    let catalogue = &state.monitoring.catalogue;
    let ind = catalogue
        .indicators
        .iter()
        .find(|i| i.id == table.indicator);
    let count = ind.is_none_or(|i| i.unit.is_count());
    let quarters: Vec<String> = release::period_of(entry)
        .into_iter()
        .filter(|p| p.contains("-Q"))
        .collect();
    let ambiti = state.registry.ambito_ids();
    let cells: Vec<_> = table
        .observations
        .iter()
        .filter(|o| o.breakdown.is_none())
        .collect();
    let max = cells
        .iter()
        .filter(|o| o.ambito != TOTAL && quarters.contains(&o.time_period))
        .filter_map(|o| o.value)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let group = (WIDTH - LEFT) / ambiti.len().max(1) as f64;
    let bar_w = group / (quarters.len() as f64 + 1.0);
    let plot = HEIGHT - BOTTOM - TOP;
    let mut bars = Vec::new();
    let mut labels = Vec::new();
    for (a, ambito) in ambiti.iter().enumerate() {
        let x0 = LEFT + a as f64 * group + bar_w / 2.0;
        let name = state
            .registry
            .get(ambito)
            .map_or_else(|| ambito.clone(), |p| p.name.clone());
        labels.push(Label {
            x: format!("{:.1}", x0 + bar_w * quarters.len() as f64 / 2.0),
            text: name.clone(),
        });
        for (q, quarter) in quarters.iter().enumerate() {
            let Some(o) = cells
                .iter()
                .find(|o| &o.ambito == ambito && &o.time_period == quarter)
            else {
                continue;
            };
            let x = x0 + q as f64 * bar_w;
            let (h, flag, title) = match (o.obs_status, o.value) {
                (ObsStatus::Q, _) => (
                    FLAG_HEIGHT,
                    "Q",
                    format!(
                        "{name} {quarter}: {}",
                        super::i18n::text(lang, "monitoring.flagged").unwrap_or("Q")
                    ),
                ),
                (ObsStatus::M, _) | (_, None) => (0.0, "M", format!("{name} {quarter}: M")),
                (ObsStatus::A, Some(v)) => (
                    v / max * plot,
                    "A",
                    format!("{name} {quarter}: {}", number(v, count)),
                ),
            };
            bars.push(Bar {
                x: format!("{x:.1}"),
                y: format!("{:.1}", HEIGHT - BOTTOM - h),
                w: format!("{:.1}", bar_w * 0.9),
                h: format!("{h:.1}"),
                class: if flag == "Q" {
                    "flagged".into()
                } else {
                    format!("q{}", q + 1)
                },
                flag,
                title,
            });
        }
    }
    let year = release::period_of(entry)
        .into_iter()
        .find(|p| !p.contains("-Q"));
    let total = year.and_then(|y| {
        cells
            .iter()
            .find(|o| o.ambito == TOTAL && o.time_period == y)
            .map(|o| o.value.map(|v| number(v, count)))
    });
    Chart {
        id: table.indicator.clone(),
        label: ind.map_or_else(
            || table.indicator.clone(),
            |i| i.label.get(lang.code()).to_owned(),
        ),
        unit: ind.map_or_else(String::new, |i| i.unit.as_str().to_owned()),
        total: total.flatten(),
        bars,
        labels,
        width: WIDTH,
        height: HEIGHT,
        baseline: format!("{:.1}", HEIGHT - BOTTOM),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    #[serde(default)]
    made: Option<String>,
}

pub(super) async fn page(req: HttpRequest, state: State) -> HttpResponse {
    show(&req, &state, None).await
}

async fn show(req: &HttpRequest, state: &State, refused: Option<String>) -> HttpResponse {
    if state.people.is_none() {
        return HttpResponse::NotFound().finish();
    }
    let lang = lang_of(req);
    let Some((_, session)) = session_of(req, state, OffsetDateTime::now_utc()) else {
        return see_other("/console/").finish();
    };
    if !may_see(&session) {
        return message(state, StatusCode::FORBIDDEN, lang, "forbidden");
    }
    let made = web::Query::<PageQuery>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.made.clone())
        .is_some();
    let latest = match release::list(state) {
        Ok((entries, _)) => entries.into_iter().last(),
        Err(_) => return HttpResponse::ServiceUnavailable().finish(),
    };
    let (charts, release_info) = match &latest {
        Some(entry) => match release::tables_of(state, entry) {
            Ok(tables) => (
                tables
                    .iter()
                    .map(|t| chart(t, entry, state, lang))
                    .collect::<Vec<_>>(),
                Some(context! {
                    id => entry.id,
                    period => entry.period,
                    created => entry.manifest["created_at"].as_str().unwrap_or(""),
                    quarters => release::period_of(entry).into_iter().filter(|p| p.contains("-Q")).collect::<Vec<_>>(),
                }),
            ),
            Err(e) => {
                tracing::error!(error = %e, "a release could not be shown");
                return HttpResponse::InternalServerError().finish();
            }
        },
        None => (Vec::new(), None),
    };
    render(
        state,
        if refused.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        },
        lang,
        "monitoring.html",
        context! {
            lang => lang.code(),
            csrf => session.csrf,
            can_make => session.roles.contains(&Role::Analyst),
            release => release_info,
            charts => charts,
            made => made,
            refused => refused,
        },
    )
}

#[derive(serde::Deserialize)]
struct ReleaseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    period: String,
}

/// Makes a release from the form: analysts only, same origin, the session's CSRF token.
pub(super) async fn make_release(req: HttpRequest, state: State, body: web::Bytes) -> HttpResponse {
    let Some(provider) = state.people.as_ref() else {
        return HttpResponse::NotFound().finish();
    };
    let lang = lang_of(&req);
    let Some((_, session)) = session_of(&req, &state, OffsetDateTime::now_utc()) else {
        return see_other("/console/").finish();
    };
    let form: Option<ReleaseForm> = serde_urlencoded_form(&body);
    let period = form
        .as_ref()
        .map(|f| f.period.trim().to_owned())
        .unwrap_or_default();
    if !form_accepted(
        &req,
        &provider.config.public_url,
        &session,
        form.map(|f| f.csrf),
    ) {
        return message(&state, StatusCode::FORBIDDEN, lang, "csrf");
    }
    if !session.roles.contains(&Role::Analyst) {
        return message(&state, StatusCode::FORBIDDEN, lang, "forbidden");
    }
    let worker = state.clone();
    let actor = session.actor.clone();
    let made = web::block(move || {
        release::create(
            &worker,
            &actor,
            &serde_json::json!({"period": period}),
            OffsetDateTime::now_utc(),
        )
    })
    .await;
    match made {
        Ok(Ok((_, ticket))) => {
            if state.store.durable(ticket).await.is_err() {
                return HttpResponse::ServiceUnavailable().finish();
            }
            see_other("/console/monitoring?made=1").finish()
        }
        Ok(Err(e)) => show(&req, &state, Some(e.to_string())).await,
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}
