//! The web console for people: sign-in through the Region's identity provider (authorization
//! code with PKCE), a home page per role, sign-out. Served on the people listener only.
//!
//! Cookies are `__Host-` prefixed (Secure, Path=/, no Domain), HttpOnly and SameSite=Lax: Lax and
//! not Strict because the provider's redirect back is a cross-site navigation that must carry
//! the sign-in cookie. Every form carries the session's CSRF token, compared in constant time,
//! and a cross-origin `Origin` is refused.

pub mod i18n;
mod monitoring;
pub mod pages;

use crate::api::State;
use crate::people::sessions::{self, PendingSignIn, Session};
use crate::store::Read;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use i18n::Lang;
use minijinja::context;
use time::OffsetDateTime;

const SESSION_COOKIE: &str = "__Host-raccordo_session";
const SIGN_IN_COOKIE: &str = "__Host-raccordo_signin";
const LANG_COOKIE: &str = "__Host-raccordo_lang";

/// The messages the console can show instead of a page (keys `error.<code>`).
pub const MESSAGES: [&str; 6] = [
    "csrf",
    "sign_in_state",
    "sign_in_refused",
    "provider_unavailable",
    "not_found",
    "forbidden",
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/console", web::get().to(to_home))
        .route("/console/", web::get().to(home))
        .route("/console/login", web::get().to(sign_in))
        .route("/console/callback", web::get().to(callback))
        .route("/console/logout", web::post().to(sign_out))
        .route("/console/monitoring", web::get().to(monitoring::page))
        .route(
            "/console/monitoring/releases",
            web::post().to(monitoring::make_release),
        )
        .route("/console/static/console.css", web::get().to(stylesheet));
}

/// Whether a route belongs to the console (authenticated by session, not by the API's rules).
pub fn is_console(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

fn lang_of(req: &HttpRequest) -> Lang {
    i18n::negotiate(
        req.cookie(LANG_COOKIE).as_ref().map(|c| c.value()),
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

fn cookie(name: &str, value: String, max_age: time::Duration) -> Cookie<'static> {
    Cookie::build(name.to_owned(), value)
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(max_age)
        .finish()
}

fn expired(name: &str) -> Cookie<'static> {
    cookie(name, String::new(), time::Duration::ZERO)
}

/// A console page with the headers every console response carries.
fn page(state: &State, status: StatusCode, lang: Lang, html: String) -> HttpResponse {
    let form_action = state
        .people
        .as_ref()
        .map(|p| p.issuer_origin())
        .unwrap_or_default();
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_LANGUAGE, lang.code()))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            format!(
                "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; \
                 frame-ancestors 'none'; form-action 'self' {form_action}"
            ),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Not "no-referrer": with it browsers send `Origin: null` on the console's own forms,
        // and the origin check below could not tell them from a sandboxed attacker.
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html)
}

fn render(
    state: &State,
    status: StatusCode,
    lang: Lang,
    name: &str,
    ctx: minijinja::Value,
) -> HttpResponse {
    match pages::render(name, ctx) {
        Ok(html) => page(state, status, lang, html),
        Err(e) => {
            tracing::error!(error = %e, template = name, "console page failed to render");
            HttpResponse::InternalServerError().finish()
        }
    }
}

fn message(state: &State, status: StatusCode, lang: Lang, code: &'static str) -> HttpResponse {
    render(
        state,
        status,
        lang,
        "message.html",
        context! { lang => lang.code(), code => code },
    )
}

fn see_other(location: &str) -> actix_web::HttpResponseBuilder {
    let mut r = HttpResponse::SeeOther();
    r.insert_header((header::LOCATION, location.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    r
}

fn session_of(req: &HttpRequest, state: &State, now: OffsetDateTime) -> Option<(String, Session)> {
    let token = req.cookie(SESSION_COOKIE)?.value().to_owned();
    match sessions::find(&state.store, &token, now) {
        Ok(s) => s.map(|s| (token, s)),
        Err(e) => {
            tracing::error!(error = %e, "reading a console session");
            None
        }
    }
}

async fn to_home() -> HttpResponse {
    see_other("/console/").finish()
}

#[derive(serde::Deserialize)]
struct HomeQuery {
    lang: Option<String>,
}

async fn home(req: HttpRequest, state: State) -> HttpResponse {
    if state.people.is_none() {
        return HttpResponse::NotFound().finish();
    }
    if let Ok(q) = web::Query::<HomeQuery>::from_query(req.query_string())
        && let Some(lang) = q.lang.as_deref().and_then(Lang::from_code)
    {
        return see_other("/console/")
            .cookie(cookie(
                LANG_COOKIE,
                lang.code().into(),
                time::Duration::days(365),
            ))
            .finish();
    }
    let lang = lang_of(&req);
    let now = OffsetDateTime::now_utc();
    let Some((_, session)) = session_of(&req, &state, now) else {
        return render(
            &state,
            StatusCode::OK,
            lang,
            "signin.html",
            context! { lang => lang.code() },
        );
    };
    let pending_reviews = state
        .store
        .keys_with_prefix(b"review/")
        .map(|k| k.len())
        .unwrap_or(0);
    let roles: Vec<&str> = session.roles.iter().map(|r| r.as_str()).collect();
    render(
        &state,
        StatusCode::OK,
        lang,
        "home.html",
        context! {
            lang => lang.code(),
            name => session.name,
            roles => roles,
            csrf => session.csrf,
            pending_reviews => pending_reviews,
        },
    )
}

async fn sign_in(req: HttpRequest, state: State) -> HttpResponse {
    let Some(provider) = state.people.as_ref() else {
        return HttpResponse::NotFound().finish();
    };
    let lang = lang_of(&req);
    let start = match provider.start_sign_in(&state.metrics, lang.code()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "sign-in could not start");
            return message(
                &state,
                StatusCode::SERVICE_UNAVAILABLE,
                lang,
                "provider_unavailable",
            );
        }
    };
    let now = OffsetDateTime::now_utc();
    let pending = PendingSignIn {
        pkce_verifier: start.pkce_verifier,
        nonce: start.nonce,
        expires: now + sessions::SIGN_IN_LIFETIME,
    };
    let stored = match sessions::begin_sign_in(&state.store, &start.state, &pending) {
        Ok(ticket) => state.store.durable(ticket).await,
        Err(e) => Err(e),
    };
    if let Err(e) = stored {
        tracing::error!(error = %e, "storing a sign-in");
        return HttpResponse::ServiceUnavailable().finish();
    }
    see_other(&start.url)
        .cookie(cookie(
            SIGN_IN_COOKIE,
            start.state,
            sessions::SIGN_IN_LIFETIME,
        ))
        .finish()
}

#[derive(serde::Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn callback(req: HttpRequest, state: State) -> HttpResponse {
    let Some(provider) = state.people.as_ref() else {
        return HttpResponse::NotFound().finish();
    };
    let lang = lang_of(&req);
    let refuse = |status, code| {
        let mut r = message(&state, status, lang, code);
        let _ = r.add_removal_cookie(&expired(SIGN_IN_COOKIE));
        r
    };
    let Ok(q) = web::Query::<CallbackQuery>::from_query(req.query_string()) else {
        return refuse(StatusCode::BAD_REQUEST, "sign_in_state");
    };
    if let Some(error) = &q.error {
        // The provider's own wording is not echoed: only that it refused, and its error code in
        // the log.
        tracing::info!(error = %error.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(40).collect::<String>(), "the identity provider refused a sign-in");
        return refuse(StatusCode::FORBIDDEN, "sign_in_refused");
    }
    let (Some(code), Some(returned_state)) = (&q.code, &q.state) else {
        return refuse(StatusCode::BAD_REQUEST, "sign_in_state");
    };
    // The state must be the one this browser was given: a sign-in started elsewhere (login CSRF)
    // is refused.
    let started_here = req.cookie(SIGN_IN_COOKIE).is_some_and(|c| {
        aws_lc_rs::constant_time::verify_slices_are_equal(
            c.value().as_bytes(),
            returned_state.as_bytes(),
        )
        .is_ok()
    });
    if !started_here {
        return refuse(StatusCode::BAD_REQUEST, "sign_in_state");
    }
    let now = OffsetDateTime::now_utc();
    let pending = match sessions::take_sign_in(&state.store, returned_state, now) {
        Ok((Some(p), ticket)) => match state.store.durable(ticket).await {
            Ok(()) => p,
            Err(_) => return HttpResponse::ServiceUnavailable().finish(),
        },
        Ok((None, _)) => return refuse(StatusCode::BAD_REQUEST, "sign_in_state"),
        Err(_) => return HttpResponse::ServiceUnavailable().finish(),
    };
    let person = match provider
        .finish_sign_in(&state.metrics, code, pending.pkce_verifier, &pending.nonce)
        .await
    {
        Ok(p) => p,
        Err(crate::people::provider::ProviderError::Unavailable(e)) => {
            tracing::warn!(error = %e, "sign-in could not finish");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "provider_unavailable");
        }
        Err(e) => {
            tracing::warn!(error = %e, "sign-in refused");
            return refuse(StatusCode::FORBIDDEN, "sign_in_refused");
        }
    };
    let csrf = match sessions::random_token() {
        Ok(t) => t,
        Err(_) => return HttpResponse::ServiceUnavailable().finish(),
    };
    let lifetime = provider.config.session_lifetime;
    let session = Session {
        actor: person.actor,
        name: person.name,
        roles: person.roles,
        csrf,
        expires: now + lifetime,
    };
    let token = match sessions::open(&state.store, &session, now) {
        Ok((token, ticket)) => match state.store.durable(ticket).await {
            Ok(()) => token,
            Err(_) => return HttpResponse::ServiceUnavailable().finish(),
        },
        Err(_) => return HttpResponse::ServiceUnavailable().finish(),
    };
    let max_age = time::Duration::try_from(lifetime).unwrap_or(time::Duration::hours(8));
    let mut r = see_other("/console/")
        .cookie(cookie(SESSION_COOKIE, token, max_age))
        .finish();
    let _ = r.add_removal_cookie(&expired(SIGN_IN_COOKIE));
    r
}

#[derive(serde::Deserialize)]
struct SignOutForm {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(req: HttpRequest, state: State, body: web::Bytes) -> HttpResponse {
    let Some(provider) = state.people.as_ref() else {
        return HttpResponse::NotFound().finish();
    };
    let lang = lang_of(&req);
    let now = OffsetDateTime::now_utc();
    let Some((token, session)) = session_of(&req, &state, now) else {
        return see_other("/console/").finish();
    };
    let form: Option<SignOutForm> = serde_urlencoded_form(&body);
    if !form_accepted(
        &req,
        &provider.config.public_url,
        &session,
        form.map(|f| f.csrf),
    ) {
        return message(&state, StatusCode::FORBIDDEN, lang, "csrf");
    }
    match sessions::close(&state.store, &token, &session.actor, now) {
        Ok(ticket) => {
            if state.store.durable(ticket).await.is_err() {
                return HttpResponse::ServiceUnavailable().finish();
            }
        }
        Err(_) => return HttpResponse::ServiceUnavailable().finish(),
    }
    let next = provider
        .logout_url(&state.metrics)
        .await
        .unwrap_or_else(|| "/console/".to_owned());
    let mut r = see_other(&next).finish();
    let _ = r.add_removal_cookie(&expired(SESSION_COOKIE));
    r
}

/// Whether a console form may act: same origin (or no Origin header), and the session's CSRF
/// token, compared in constant time.
fn form_accepted(
    req: &HttpRequest,
    public_url: &str,
    session: &Session,
    csrf: Option<String>,
) -> bool {
    let same_origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|o| o == origin(public_url));
    let token_matches = csrf.is_some_and(|c| {
        aws_lc_rs::constant_time::verify_slices_are_equal(c.as_bytes(), session.csrf.as_bytes())
            .is_ok()
    });
    if !same_origin || !token_matches {
        tracing::warn!(
            same_origin,
            token_matches,
            "console form refused: cross-origin or without this session's CSRF token"
        );
    }
    same_origin && token_matches
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// A urlencoded form body, or `None` when it is not one.
fn serde_urlencoded_form<T: serde::de::DeserializeOwned>(body: &[u8]) -> Option<T> {
    web::Query::<T>::from_query(std::str::from_utf8(body).ok()?)
        .ok()
        .map(web::Query::into_inner)
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(pages::STYLESHEET)
}
