//! The monitoring's routes: thin handlers over `ingest` and `release`. A release is computed on
//! the blocking pool, never on a worker that serves other requests.

use super::formats::{self, Format};
use super::records::Kind;
use super::{ingest, release};
use crate::api::{Caller, State, json_body, now};
use crate::problem::ApiError;
use actix_web::http::header::{self, Header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;
use std::collections::HashMap;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/v1/episodes",
        web::post()
            .to(|req, state, caller, payload| submit(Kind::Episode, req, state, caller, payload)),
    )
    .route(
        "/v1/distributions",
        web::post().to(|req, state, caller, payload| {
            submit(Kind::Distribution, req, state, caller, payload)
        }),
    )
    .route(
        "/v1/interventions",
        web::post().to(|req, state, caller, payload| {
            submit(Kind::Intervention, req, state, caller, payload)
        }),
    )
    .route("/v1/indicators", web::get().to(indicators))
    .route("/v1/releases", web::post().to(create_release))
    .route("/v1/releases", web::get().to(list_releases))
    .route("/v1/releases/signing-key", web::get().to(signing_key))
    .route("/v1/releases/{id}", web::get().to(get_release))
    .route("/v1/releases/{id}/data", web::get().to(release_data));
}

async fn submit(
    kind: Kind,
    req: HttpRequest,
    state: State,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(&req, payload, state.max_body_bytes).await?;
    let outcome = ingest::submit(&state, &caller.0, kind, &body, now())?;
    if let Some(ticket) = outcome.ticket {
        state.store.durable(ticket).await?;
    }
    let status = actix_web::http::StatusCode::from_u16(outcome.status)
        .unwrap_or(actix_web::http::StatusCode::OK);
    Ok(HttpResponse::build(status).json(outcome.body))
}

async fn indicators(state: State, _caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(&state.monitoring.catalogue)
}

fn manifest_body(entry: &release::Entry) -> serde_json::Value {
    json!({
        "id": entry.id,
        "seq": entry.seq,
        "period": entry.period,
        "manifest": entry.manifest,
        "signature": entry.signature,
        "ledger_hash": entry.hash,
        "data": format!("/v1/releases/{}/data", entry.id),
    })
}

async fn create_release(
    req: HttpRequest,
    state: State,
    Caller(caller): Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(&req, payload, state.max_body_bytes).await?;
    let worker = state.clone();
    let (entry, ticket) = web::block(move || release::create(&worker, &caller.id, &body, now()))
        .await
        .map_err(|_| ApiError::Internal)??;
    state.store.durable(ticket).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v1/releases/{}", entry.id)))
        .json(manifest_body(&entry)))
}

async fn list_releases(state: State, _caller: Caller) -> Result<HttpResponse, ApiError> {
    let (entries, verified) = release::list(&state)?;
    Ok(HttpResponse::Ok().json(json!({
        "ledger_verified": verified,
        "items": entries.iter().map(|e| json!({
            "id": e.id,
            "seq": e.seq,
            "period": e.period,
            "created_at": e.manifest["created_at"],
            "revision_of": e.manifest["revision_of"],
            "ledger_hash": e.hash,
        })).collect::<Vec<_>>(),
    })))
}

async fn signing_key(state: State, _caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(json!({"keys": [state.monitoring.signer.jwk()]}))
}

async fn get_release(
    state: State,
    _caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let entry = release::entry(&state, &id)?;
    Ok(HttpResponse::Ok().json(manifest_body(&entry)))
}

/// `?lang=it|en` for the names in SDMX-JSON and the labels in JSON.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DataQuery {
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    indicator: Option<String>,
}

async fn release_data(
    req: HttpRequest,
    state: State,
    _caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let q = web::Query::<DataQuery>::from_query(req.query_string()).map_err(|_| {
        ApiError::BadParameter {
            parameter: "query",
            message: "the parameters are lang=it|en and indicator=<id>".into(),
        }
    })?;
    let lang = match q.lang.as_deref() {
        None | Some("it") => "it",
        Some("en") => "en",
        Some(_) => {
            return Err(ApiError::BadParameter {
                parameter: "lang",
                message: "it or en".into(),
            });
        }
    };
    let ranked = header::Accept::parse(&req)
        .map(|a| a.ranked())
        .map_err(|_| ApiError::BadParameter {
            parameter: "Accept",
            message: "the Accept header could not be read".into(),
        })?;
    let format = Format::negotiate(&ranked).ok_or(ApiError::NotAcceptable {
        supported: formats::SUPPORTED,
    })?;
    let entry = release::entry(&state, &id)?;
    let mut tables = release::tables_of(&state, &entry)?;
    if let Some(ind) = &q.indicator {
        tables.retain(|t| &t.indicator == ind);
        if tables.is_empty() {
            return Err(ApiError::BadParameter {
                parameter: "indicator",
                message: "not an indicator of this release; see GET /v1/indicators".into(),
            });
        }
    }
    let catalogue = &state.monitoring.catalogue;
    let body = match format {
        Format::SdmxCsv => formats::sdmx_csv(catalogue, &tables),
        Format::Csv => formats::csv(catalogue, &tables),
        Format::Json => serde_json::to_vec(&formats::json(catalogue, &entry, &tables, lang))
            .map_err(|_| ApiError::Internal)?,
        Format::SdmxJson => {
            let names: HashMap<String, String> = state
                .registry
                .ambito_ids()
                .into_iter()
                .filter_map(|a| state.registry.get(&a).map(|p| (a, p.name.clone())))
                .collect();
            serde_json::to_vec(&formats::sdmx_json(
                catalogue, &entry, &tables, &names, lang,
            ))
            .map_err(|_| ApiError::Internal)?
        }
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, format.media_type()))
        .insert_header((header::VARY, "Accept"))
        .insert_header(("Content-Language", lang))
        .body(body))
}
