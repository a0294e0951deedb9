//! The API's one error type, and its one mapping to HTTP: RFC 9457 problem details.
//!
//! Every refusal says which rule failed and where (a JSON pointer for body errors, the parameter
//! name for query errors), carries a stable `code`, and never repeats a value the caller sent or
//! anything about another party.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use raccordo_schemas::SchemaViolation;
use serde::Serialize;
use std::fmt;

pub const PROBLEM_BASE: &str = "https://raccordo.regione.toscana.it/problems/";
pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug)]
pub enum ApiError {
    /// The body is not JSON.
    InvalidJson {
        line: usize,
        column: usize,
        message: String,
    },
    /// The body is JSON but breaks the schema or a rule of the gateway.
    Unprocessable {
        code: &'static str,
        title: &'static str,
        violations: Vec<SchemaViolation>,
    },
    /// A query parameter or header is malformed.
    BadParameter {
        parameter: &'static str,
        message: String,
    },
    /// The client certificate is valid but not registered to any party.
    UnknownCertificate,
    /// No valid bearer token (people listener): 401 with `WWW-Authenticate`.
    Unauthorized {
        code: &'static str,
        message: String,
    },
    /// The caller is known but may not do this.
    Forbidden {
        code: &'static str,
        message: String,
    },
    /// Nothing with this id is visible to the caller (whether or not it exists).
    NotFound {
        what: &'static str,
    },
    /// The lifecycle does not allow this move now.
    Conflict {
        code: &'static str,
        message: String,
    },
    PayloadTooLarge {
        limit: usize,
    },
    /// The caller's rate limit is exhausted.
    TooManyRequests {
        retry_after_secs: u64,
    },
    UnsupportedMediaType,
    /// The store could not make a write durable; nothing was acknowledged.
    Unavailable,
    /// The identity provider's keys could not be fetched to check a token.
    IdentityProviderUnavailable,
    /// None of the media types the client accepts can be produced.
    NotAcceptable {
        supported: &'static [&'static str],
    },
    /// Stored data no longer matches the digest it was signed with.
    Integrity {
        message: String,
    },
    Internal,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    code: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [SchemaViolation],
    #[serde(skip_serializing_if = "Option::is_none")]
    parameter: Option<&'a str>,
}

impl ApiError {
    pub fn violation(
        code: &'static str,
        title: &'static str,
        pointer: &str,
        keyword: &str,
        message: &str,
    ) -> ApiError {
        ApiError::Unprocessable {
            code,
            title,
            violations: vec![SchemaViolation {
                pointer: pointer.to_owned(),
                keyword: keyword.to_owned(),
                message: message.to_owned(),
            }],
        }
    }

    /// Schema violations of a document nested at `at` in the request body.
    pub fn schema_at(at: &str, violations: Vec<SchemaViolation>) -> ApiError {
        ApiError::schema(
            violations
                .into_iter()
                .map(|mut v| {
                    v.pointer = format!("{at}{}", v.pointer);
                    v
                })
                .collect(),
        )
    }

    pub fn schema(violations: Vec<SchemaViolation>) -> ApiError {
        ApiError::Unprocessable {
            code: "schema-violation",
            title: "The document does not conform to schema v1",
            violations,
        }
    }

    fn parts(&self) -> (StatusCode, &str, &str, String) {
        match self {
            ApiError::InvalidJson { line, column, message } => (
                StatusCode::BAD_REQUEST,
                "invalid-json",
                "The body is not valid JSON",
                format!("{message} at line {line}, column {column}"),
            ),
            ApiError::Unprocessable { code, title, violations } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                code,
                title,
                match violations.as_slice() {
                    [one] => format!("{} (at '{}', rule '{}')", one.message, one.pointer, one.keyword),
                    many => format!("{} rules failed; see errors", many.len()),
                },
            ),
            ApiError::BadParameter { parameter, message } => (
                StatusCode::BAD_REQUEST,
                "bad-parameter",
                "A parameter is malformed",
                format!("{parameter}: {message}"),
            ),
            ApiError::UnknownCertificate => (
                StatusCode::FORBIDDEN,
                "unknown-client-certificate",
                "The client certificate is not registered",
                "the certificate was issued by the Region's CA but is not listed for any party in the \
                 gateway's registry; ask the Region to register it"
                    .into(),
            ),
            ApiError::Unauthorized { code, message } => (
                StatusCode::UNAUTHORIZED,
                code,
                "A valid access token from the Region's identity provider is required",
                message.clone(),
            ),
            ApiError::Forbidden { code, message } => {
                (StatusCode::FORBIDDEN, code, "The caller may not do this", message.clone())
            }
            ApiError::NotFound { what } => (
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                format!("no {what} with this id is visible to the caller"),
            ),
            ApiError::Conflict { code, message } => {
                (StatusCode::CONFLICT, code, "The request conflicts with the current state", message.clone())
            }
            ApiError::PayloadTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "The body is too large",
                format!("bodies are limited to {limit} bytes"),
            ),
            ApiError::TooManyRequests { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                format!("this party's rate limit is exhausted; retry after {retry_after_secs} s"),
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "The body must be JSON",
                "send Content-Type: application/json".into(),
            ),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "store-unavailable",
                "The gateway could not store the request durably",
                "nothing was recorded; retry with the same Idempotency-Key".into(),
            ),
            ApiError::IdentityProviderUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "identity-provider-unavailable",
                "The identity provider could not be reached",
                "the gateway could not fetch the identity provider's keys to check the token; retry later".into(),
            ),
            ApiError::NotAcceptable { supported } => (
                StatusCode::NOT_ACCEPTABLE,
                "not-acceptable",
                "None of the accepted media types can be produced",
                format!("ask in Accept for one of: {}", supported.join(", ")),
            ),
            ApiError::Integrity { message } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "integrity-check-failed",
                "Stored data failed its integrity check",
                message.clone(),
            ),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "the gateway failed; the incident is logged".into(),
            ),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (status, code, _, detail) = self.parts();
        write!(f, "{} {code}: {detail}", status.as_u16())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.parts().0;
        let body = self.problem_at("");
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        match self {
            ApiError::Unavailable => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            ApiError::TooManyRequests { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            ApiError::Unauthorized { code, .. } => {
                // RFC 6750: invalid_request when no token came, invalid_token otherwise.
                let error = if *code == "bearer-token-required" {
                    "invalid_request"
                } else {
                    "invalid_token"
                };
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!(
                        "Bearer realm=\"raccordo\", error=\"{error}\", error_description=\"{code}\""
                    ),
                ));
            }
            _ => {}
        }
        response.body(serde_json::to_vec(&body).unwrap_or_default())
    }
}

impl ApiError {
    /// The problem document, with every pointer under `at` (the place of one record in a
    /// batch).
    pub fn problem_at(&self, at: &str) -> serde_json::Value {
        let (status, code, title, mut detail) = self.parts();
        let (errors, parameter): (Vec<SchemaViolation>, _) = match self {
            ApiError::Unprocessable { violations, .. } => (
                violations
                    .iter()
                    .map(|v| SchemaViolation {
                        pointer: format!("{at}{}", v.pointer),
                        ..v.clone()
                    })
                    .collect(),
                None,
            ),
            ApiError::BadParameter { parameter, .. } => (Vec::new(), Some(*parameter)),
            _ => (Vec::new(), None),
        };
        if !at.is_empty()
            && let [one] = errors.as_slice()
        {
            detail = format!(
                "{} (at '{}', rule '{}')",
                one.message, one.pointer, one.keyword
            );
        }
        serde_json::to_value(Problem {
            kind: format!("{PROBLEM_BASE}{code}"),
            title,
            status: status.as_u16(),
            detail,
            code,
            errors: &errors,
            parameter,
        })
        .unwrap_or_default()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        tracing::error!(error = %e, "store failure");
        ApiError::Unavailable
    }
}

impl From<crate::vault::VaultError> for ApiError {
    fn from(e: crate::vault::VaultError) -> ApiError {
        tracing::error!(error = %e, "vault failure");
        ApiError::Internal
    }
}

impl From<crate::keys::KeyError> for ApiError {
    fn from(e: crate::keys::KeyError) -> ApiError {
        tracing::error!(error = %e, "key derivation failure");
        ApiError::Internal
    }
}
