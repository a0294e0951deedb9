//! HTTP routes of API v1. Handlers are thin: they authenticate the caller from its
//! certificate, read the clock once, call the core, wait for durability, and answer.

use crate::inbox;
use crate::problem::ApiError;
use crate::referrals;
use crate::registry::Party;
use crate::state::AppState;
use crate::store::Read;
use crate::structures;
use crate::tls::{Listener, PeerFingerprint};
use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde_json::json;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

pub type State = web::Data<AppState>;

/// The OpenAPI 3.1 description of this API.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Every route: method, path template, handler. The OpenAPI document is checked against it.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/referrals", web::post().to(create_referral))
        .route("/v1/referrals/{id}", web::get().to(get_referral))
        .route("/v1/referrals/{id}/status", web::post().to(change_status))
        .route("/v1/referrals/{id}/history", web::get().to(history))
        .route("/v1/inbox", web::get().to(inbox_list))
        .route("/v1/consents", web::post().to(record_consent))
        .route("/v1/consents/{id}", web::get().to(get_consent))
        .route(
            "/v1/consents/{id}/withdraw",
            web::post().to(withdraw_consent),
        )
        .route("/v1/erasures", web::post().to(erase))
        .route("/v1/linkage/known", web::post().to(known_elsewhere))
        .route("/v1/access-reports", web::post().to(access_report))
        .route("/v1/linkage/reviews", web::get().to(reviews))
        .route("/v1/linkage/reviews/{id}", web::post().to(decide_review))
        .route("/v1/structures", web::get().to(search_structures))
        .route("/v1/structures/{id}", web::put().to(publish_structure))
        .route("/v1/me", web::get().to(me))
        .route("/v1/openapi.json", web::get().to(openapi))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
    crate::monitoring::http::configure(cfg);
}

/// The caller the guard authenticated: a party by its certificate, or a person by a token.
pub struct Caller(pub Arc<Party>);

#[derive(Clone)]
struct Principal(Arc<Party>);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let party = req
            .extensions()
            .get::<Principal>()
            .map(|p| Arc::clone(&p.0));
        ready(party.map(Caller).ok_or(ApiError::UnknownCertificate))
    }
}

pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Reads a JSON body up to the configured limit.
pub(crate) async fn json_body(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<serde_json::Value, ApiError> {
    Ok(raw_json_body(req, payload, limit).await?.1)
}

/// The body as received (for signatures over it) and parsed.
async fn raw_json_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<(web::Bytes, serde_json::Value), ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|m| {
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        });
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::BadParameter {
            parameter: "body",
            message: "the body could not be read".into(),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let value = referrals::parse_json(&body)?;
    Ok((body, value))
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    match req.headers().get("Idempotency-Key") {
        None => Ok(None),
        Some(v) => {
            let s = v.to_str().ok().filter(|s| {
                (1..=255).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
            });
            s.map(|s| Some(s.to_owned())).ok_or(ApiError::BadParameter {
                parameter: "Idempotency-Key",
                message: "must be 1 to 255 visible ASCII characters".into(),
            })
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateQuery {
    #[serde(default)]
    draft: bool,
}

async fn create_referral(
    req: HttpRequest,
    state: State,
    Caller(caller): Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<CreateQuery>::from_query(req.query_string()).map_err(|_| {
        ApiError::BadParameter {
            parameter: "draft",
            message: "the only query parameter is draft=true|false".into(),
        }
    })?;
    let key = idempotency_key(&req)?;
    let (raw, body) = raw_json_body(&req, payload, state.max_body_bytes).await?;
    let signature = verify_signature(&req, &state, &caller, &raw)?;
    let (created, ticket) = referrals::create(
        &state,
        &caller,
        &body,
        referrals::Options {
            idempotency_key: key.as_deref(),
            as_draft: query.draft,
            signature,
        },
        now(),
    )?;
    state.store.durable(ticket).await?;
    let mut response = HttpResponse::Created();
    response.insert_header((header::LOCATION, format!("/v1/referrals/{}", created.id)));
    if created.replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(response.json(created.referral))
}

/// The ModI signature of a request body, verified when present and demanded when the party's
/// configuration requires it.
fn verify_signature(
    req: &HttpRequest,
    state: &AppState,
    caller: &Party,
    body: &[u8],
) -> Result<Option<crate::signature::Verified>, ApiError> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    match header("Agid-JWT-Signature") {
        None if caller.signed_requests == crate::signature::SignaturePolicy::Required => {
            Err(ApiError::Forbidden {
                code: "signature-required",
                message: "this party must sign its requests: send Digest and Agid-JWT-Signature (ModI INTEGRITY_REST_01)".into(),
            })
        }
        None => Ok(None),
        Some(token) => {
            let peer = req.conn_data::<PeerFingerprint>().ok_or(ApiError::UnknownCertificate)?;
            let verified = crate::signature::verify(
                header("Digest"),
                token,
                body,
                &peer.0,
                &state.signature_audience,
                now().unix_timestamp(),
            )?;
            Ok(Some(verified))
        }
    }
}

async fn get_referral(
    state: State,
    Caller(caller): Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (body, view, ticket) = referrals::read(&state, &caller, &id, now())?;
    // The audit entry of this read is on disk before the data leaves.
    state.store.durable(ticket).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Raccordo-View", view.as_str()))
        .json(body))
}

async fn change_status(
    req: HttpRequest,
    state: State,
    Caller(caller): Caller,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(&req, payload, state.max_body_bytes).await?;
    let change = referrals::parse_status_change(&body)?;
    let (body, ticket) = referrals::change_status(&state, &caller, &id, change, now())?;
    state.store.durable(ticket).await?;
    Ok(HttpResponse::Ok().json(body))
}

async fn history(
    state: State,
    Caller(caller): Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(referrals::history(&state, &caller, &id, now())?))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct InboxQuery {
    after: Option<String>,
    wait: Option<String>,
}

async fn inbox_list(
    req: HttpRequest,
    state: State,
    Caller(caller): Caller,
) -> Result<HttpResponse, ApiError> {
    let q = web::Query::<InboxQuery>::from_query(req.query_string()).map_err(|_| {
        ApiError::BadParameter {
            parameter: "query",
            message: "the inbox takes only 'after' (a cursor) and 'wait' (seconds)".into(),
        }
    })?;
    let after = inbox::parse_cursor(q.after.as_deref())?;
    let wait = match q.wait.as_deref() {
        None => 0,
        Some(w) => w.parse::<u64>().map_err(|_| ApiError::BadParameter {
            parameter: "wait",
            message: "seconds, a whole number".into(),
        })?,
    };
    let page = inbox::list(&state, &caller.id, after, Duration::from_secs(wait), now).await?;
    Ok(HttpResponse::Ok().json(json!({"items": page.items, "next_cursor": page.next_cursor})))
}

async fn record_consent(
    req: HttpRequest,
    state: State,
    Caller(caller): Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(&req, payload, state.max_body_bytes).await?;
    let (out, ticket) = crate::consents::record(&state, &caller, &body, now())?;
    state.store.durable(ticket).await?;
    let id = out["id"].as_str().unwrap_or_default().to_owned();
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v1/consents/{id}")))
        .json(out))
}

async fn get_consent(
    state: State,
    Caller(caller): Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(crate::consents::get(&state, &caller, &id)?))
}

async fn withdraw_consent(
    req: HttpRequest,
    state: State,
    Caller(caller): Caller,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(&req, payload, state.max_body_bytes).await?;
    let reason = match body.get("reason") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(r)) if !r.is_empty() && r.chars().count() <= 2000 => {
            Some(r.clone())
        }
        Some(_) => {
            return Err(ApiError::violation(
                "schema-violation",
                "The withdrawal is malformed",
                "/reason",
                "type",
                "'reason' must be a string of 1 to 2000 characters",
            ));
        }
    };
    let (out, ticket) = crate::consents::withdraw(&state, &caller, &id, reason, now())?;
    state.store.durable(ticket).await?;
    Ok(HttpResponse::Ok().json(out))
}

/// The person a request about a person names: `{"referral": id}` (a referral about them) or
/// `{"person": {"identity": {...}}}` (looked up as linkage would, creating nothing).
fn person_named(state: &AppState, body: &serde_json::Value) -> Result<String, ApiError> {
    if let Some(referral) = body.get("referral").and_then(|v| v.as_str()) {
        let stored: referrals::StoredReferral = state
            .store
            .get(&crate::store::keys::referral(referral))?
            .ok_or(ApiError::NotFound { what: "referral" })?;
        return Ok(stored.person);
    }
    let identity = identity_named(body)?;
    crate::persons::find(state, &state.store, Some(&identity))?
        .person
        .map(|p| p.id)
        .ok_or(ApiError::NotFound { what: "person" })
}

/// The identity in `{"person": {"identity": {...}}}`, checked against schema v1.
fn identity_named(body: &serde_json::Value) -> Result<raccordo_schemas::Identity, ApiError> {
    let identity = body.pointer("/person/identity").cloned().ok_or_else(|| {
        ApiError::violation(
            "schema-violation",
            "The request is malformed",
            "/person/identity",
            "required",
            "name the person by a referral about them ({\"referral\": id}) or by identity ({\"person\": {\"identity\": ...}})",
        )
    })?;
    raccordo_schemas::validate::validate_identity(&identity)
        .map_err(|v| ApiError::schema_at("/person/identity", v))?;
    serde_json::from_value(identity).map_err(|_| ApiError::Internal)
}

async fn erase(
    req: HttpRequest,
    state: State,
    Caller(caller): Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(&req, payload, state.max_body_bytes).await?;
    let person = person_named(&state, &body)?;
    let ticket = crate::persons::erase(&state, &caller, &person, now())?;
    state.store.durable(ticket).await?;
    Ok(HttpResponse::Ok().json(json!({"status": "erased"})))
}

async fn known_elsewhere(
    req: HttpRequest,
    state: State,
    Caller(caller): Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(&req, payload, state.max_body_bytes).await?;
    let identity = identity_named(&body)?;
    let (out, ticket) = crate::persons::known_elsewhere(&state, &caller, &identity, now())?;
    state.store.durable(ticket).await?;
    Ok(HttpResponse::Ok().json(out))
}

async fn access_report(
    req: HttpRequest,
    state: State,
    Caller(caller): Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(&req, payload, state.max_body_bytes).await?;
    let person = person_named(&state, &body)?;
    let (entries, ticket) = crate::access_report::report(&state, &caller, &person, now())?;
    state.store.durable(ticket).await?;
    let wants_text = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/plain"));
    Ok(if wants_text {
        HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(crate::access_report::text(&entries))
    } else {
        HttpResponse::Ok().json(json!({"entries": entries}))
    })
}

async fn reviews(state: State, Caller(caller): Caller) -> Result<HttpResponse, ApiError> {
    let (out, ticket) = crate::persons::reviews(&state, &caller, now())?;
    state.store.durable(ticket).await?;
    Ok(HttpResponse::Ok().json(out))
}

async fn decide_review(
    req: HttpRequest,
    state: State,
    Caller(caller): Caller,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(&req, payload, state.max_body_bytes).await?;
    let same = match body.get("decision").and_then(|d| d.as_str()) {
        Some("link") => true,
        Some("separate") => false,
        _ => {
            return Err(ApiError::violation(
                "schema-violation",
                "The decision is malformed",
                "/decision",
                "enum",
                "'decision' must be 'link' or 'separate'",
            ));
        }
    };
    let ticket = crate::persons::decide(&state, &caller, &id, same, now())?;
    state.store.durable(ticket).await?;
    Ok(HttpResponse::Ok()
        .json(json!({"id": id.as_str(), "decision": if same { "link" } else { "separate" }})))
}

async fn publish_structure(
    req: HttpRequest,
    state: State,
    Caller(caller): Caller,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(&req, payload, state.max_body_bytes).await?;
    let (structure, created, ticket) = structures::publish(&state, &caller, &id, &body)?;
    state.store.durable(ticket).await?;
    Ok(if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    }
    .json(structure))
}

async fn search_structures(
    req: HttpRequest,
    state: State,
    _caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let q = web::Query::<structures::Query>::from_query(req.query_string()).map_err(|e| {
        ApiError::BadParameter {
            parameter: "query",
            message: format!(
                "filters are service_type, target_group, ambito and available=true|false ({e})"
            ),
        }
    })?;
    let items = structures::search(&state, &q)?;
    Ok(HttpResponse::Ok().json(json!({"items": items})))
}

/// Who the gateway takes the caller for, and with which roles: the first call an integrator
/// makes to check their certificate or token.
async fn me(Caller(caller): Caller) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "id": caller.id,
        "name": caller.name,
        "kind": caller.kind.as_str(),
        "roles": caller.roles,
    }))
}

async fn openapi(_caller: Caller) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI)
}

pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

pub(crate) async fn readyz(state: State) -> HttpResponse {
    match state.store.ping() {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready"})),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable"}))
        }
    }
}

async fn metrics(state: State, _caller: Caller) -> Result<HttpResponse, ApiError> {
    let overdue = crate::overdue::count(&state.store, now())?;
    state.metrics.set_overdue(&overdue);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render()))
}

/// The middleware around every route: authenticates, authorises and rate-limits, then calls
/// the handler, or answers the refusal as problem+json.
pub async fn authorize(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    match guard(&req).await {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        Err(refusal) => Ok(req.error_response(refusal).map_into_right_body()),
    }
}

/// The caller on the systems listener: the party its certificate is registered to.
fn certificate_party(req: &ServiceRequest, state: &AppState) -> Result<Arc<Party>, ApiError> {
    let fingerprint = req
        .request()
        .conn_data::<PeerFingerprint>()
        .ok_or(ApiError::UnknownCertificate)?;
    let party = state
        .registry
        .by_fingerprint(&fingerprint.0)
        .ok_or(ApiError::UnknownCertificate)?;
    if state.revocations.is_revoked(&fingerprint.0) {
        return Err(ApiError::Forbidden {
            code: "certificate-revoked",
            message: "the Region revoked this certificate; present its replacement".into(),
        });
    }
    Ok(party)
}

/// The caller on the people listener: the person behind a bearer access token.
async fn token_person(req: &ServiceRequest, state: &AppState) -> Result<Arc<Party>, ApiError> {
    let Some(provider) = state.people.as_ref() else {
        return Err(ApiError::Internal);
    };
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Unauthorized {
            code: "bearer-token-required",
            message: "send 'Authorization: Bearer <access token>' with a token from the Region's identity provider".into(),
        })?;
    match crate::people::access_token::verify(
        provider,
        &state.metrics,
        token,
        now().unix_timestamp(),
    )
    .await
    {
        Ok(person) => Ok(Arc::new(person)),
        Err(refusal) => {
            state.metrics.token_refused(refusal.code());
            Err(match refusal {
                crate::people::access_token::TokenRefusal::ProviderUnavailable => {
                    ApiError::IdentityProviderUnavailable
                }
                r => ApiError::Unauthorized {
                    code: r.code(),
                    message: r.message(&provider.config),
                },
            })
        }
    }
}

/// Authentication, authorisation and rate limits, checked before any handler runs: one place
/// for all three. A route that exists but has no rule is refused (unknown means no); a method
/// the route does not serve passes on, so that actix answers 405.
async fn guard(req: &ServiceRequest) -> Result<(), ApiError> {
    let Some(state) = req.app_data::<State>().cloned() else {
        return Err(ApiError::Internal);
    };
    let listener = req
        .request()
        .conn_data::<Listener>()
        .copied()
        .unwrap_or(Listener::Systems);
    let party = match listener {
        Listener::Systems => certificate_party(req, &state)?,
        // The console authenticates its visitors by session; it has no API rules.
        Listener::People if crate::console::is_console(req.path()) => return Ok(()),
        Listener::People => token_person(req, &state).await?,
    };
    req.extensions_mut().insert(Principal(Arc::clone(&party)));
    let Some(route) = req.match_pattern() else {
        return Ok(());
    };
    let method = req.method().as_str();
    match crate::authorization::check(method, &route, &party.roles) {
        Ok(()) => {}
        Err(crate::authorization::Refusal::NotPermitted { allowed }) => {
            let names: Vec<&str> = allowed.iter().map(|k| k.as_str()).collect();
            let held: Vec<&str> = party.roles.iter().map(|k| k.as_str()).collect();
            return Err(ApiError::Forbidden {
                code: "not-permitted",
                message: format!(
                    "{method} {route} is for the roles {}; the caller holds {}",
                    names.join(" or "),
                    if held.is_empty() {
                        "no role".to_owned()
                    } else {
                        held.join(" and ")
                    }
                ),
            });
        }
        Err(crate::authorization::Refusal::NoRule) => {
            if !crate::authorization::RULES
                .iter()
                .any(|(_, r, _)| *r == route)
            {
                return Err(ApiError::Forbidden {
                    code: "no-rule",
                    message: "no authorisation rule covers this route, so it is refused".into(),
                });
            }
        }
    }
    state
        .rate_limiter
        .take(&party.id, std::time::Instant::now())
        .map_err(|wait| ApiError::TooManyRequests {
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        })
}

/// Answer for routes that do not exist, in the same problem format.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound { what: "route" })
}
