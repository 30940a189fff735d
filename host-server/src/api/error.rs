//! The one error type of the HTTP API: every refusal is `{ "code", "message", "rule" }` JSON.

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use licet_engine::report::Report as _;
use licet_engine::{Code, Decision};
use serde::Serialize;

use crate::error::StoreError;
use crate::service::ServiceError;

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// An engine code (SEATS_EXHAUSTED, ...) or an API code (MALFORMED_JSON, MALFORMED_BODY,
    /// INVALID_BODY, INVALID_QUERY, UNAUTHORIZED, ADMIN_REQUIRED, CLIENT_REQUIRED, NOT_FOUND,
    /// ROUTE_NOT_FOUND, METHOD_NOT_ALLOWED, ALREADY_EXISTS, UNKNOWN_PRODUCT, RATE_LIMITED,
    /// CONFLICT, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, STORAGE_UNAVAILABLE, INTERNAL).
    pub code: String,
    /// A sentence for people.
    pub message: String,
    /// The engine rule or API check that refused.
    pub rule: String,
}

/// Why a request was refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum AppError {
    /// The engine denied the request.
    Denied {
        /// The engine's code.
        code: Code,
        /// The deciding rule.
        rule: String,
        /// The engine's sentence.
        message: String,
    },
    /// The body is not JSON (400 `MALFORMED_JSON`).
    MalformedJson(String),
    /// A body that is not JSON cannot be read: a multipart form without a valid boundary, a
    /// broken part, or a body that stops early (400 `MALFORMED_BODY`).
    MalformedBody(String),
    /// The body is JSON but not the expected shape, or a parameter is invalid (422 `INVALID_BODY`).
    InvalidBody(String),
    /// A query parameter is out of range, e.g. a listing's `limit` (400 `INVALID_QUERY`).
    InvalidQuery(String),
    /// The body is not declared as JSON (415 `UNSUPPORTED_MEDIA_TYPE`).
    UnsupportedMediaType(String),
    /// The body is too large (413 `PAYLOAD_TOO_LARGE`).
    PayloadTooLarge,
    /// No or an unknown token (401 `UNAUTHORIZED`).
    Unauthorized(String),
    /// The caller may not use this route (403 `ADMIN_REQUIRED` or `CLIENT_REQUIRED`).
    Forbidden {
        /// `ADMIN_REQUIRED` or `CLIENT_REQUIRED`.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// The machine did not prove its dongle: no proof came with a request for a standalone
    /// dongle license, or the proof does not verify (403 `DONGLE_ABSENT`). A client error, unlike
    /// the server's own network dongle being absent (the engine's 503).
    DongleNotProven {
        /// `dongle.proof` or the engine's `dongle.present`.
        rule: String,
        /// Why.
        message: String,
    },
    /// The record does not exist (404 `NOT_FOUND`).
    NotFound(String),
    /// No such route (404 `ROUTE_NOT_FOUND`).
    RouteNotFound(String),
    /// The route exists but not with this method (405 `METHOD_NOT_ALLOWED`).
    MethodNotAllowed,
    /// The record exists already (409 `ALREADY_EXISTS`).
    AlreadyExists(String),
    /// The product is not licensed here (422 `UNKNOWN_PRODUCT`).
    UnknownProduct(String),
    /// Too many attempts (429 `RATE_LIMITED`).
    RateLimited {
        /// Seconds until the next attempt may succeed.
        retry_after: u64,
        /// What was limited.
        scope: &'static str,
    },
    /// A concurrent change got in the way; retry (409 `CONFLICT`). The text is logged, not
    /// answered.
    Conflict(String),
    /// Storage failed (503 `STORAGE_UNAVAILABLE`). The storage error and its causes are logged,
    /// not answered.
    Storage(String),
    /// Something that should not happen (500 `INTERNAL`). The text is logged, not answered.
    Internal(String),
    /// A transport plugin refused what arrived, or it carries no request the transport route
    /// takes (400 `TRANSPORT_REQUEST`).
    TransportRequest(String),
    /// A transport plugin failed: it trapped or hit a limit (500 `TRANSPORT_FAILED`). The text is
    /// logged, not answered.
    TransportFailed(String),
}

/// The HTTP status of an engine denial.
pub fn denial_status(code: Code) -> StatusCode {
    match code {
        Code::LicenseNotFound
        | Code::LeaseNotFound
        | Code::BorrowNotFound
        | Code::NotActivated
        | Code::TrialNotStarted => StatusCode::NOT_FOUND,
        Code::SeatsExhausted
        | Code::NoSeats
        | Code::ActivationLimitReached
        | Code::TransferLimitReached
        | Code::TrialAlreadyUsed
        | Code::FingerprintMismatch
        | Code::LeaseExpired
        | Code::ServedElsewhere
        | Code::ExchangeSerialReturned
        | Code::BorrowSerialReturned
        | Code::CertificateNotCurrent => StatusCode::CONFLICT,
        Code::InvalidRequest
        | Code::ProductMismatch
        | Code::VersionMismatch
        | Code::EditionMismatch
        | Code::BorrowTooLong
        | Code::ExchangeMalformed => StatusCode::UNPROCESSABLE_ENTITY,
        Code::DongleAbsent => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::FORBIDDEN,
    }
}

impl AppError {
    /// The error of a denied decision.
    pub fn denied(decision: &Decision) -> Self {
        AppError::Denied {
            code: decision.code,
            rule: decision.rule.clone(),
            message: decision.message.clone(),
        }
    }

    /// Status and body.
    pub fn parts(&self) -> (StatusCode, ErrorBody) {
        let body = |code: &str, rule: &str, message: String| ErrorBody {
            code: code.to_owned(),
            message,
            rule: rule.to_owned(),
        };
        match self {
            AppError::Denied {
                code,
                rule,
                message,
            } => (
                denial_status(*code),
                body(code.as_str(), rule, message.clone()),
            ),
            AppError::MalformedJson(message) => (
                StatusCode::BAD_REQUEST,
                body("MALFORMED_JSON", "api.body", message.clone()),
            ),
            AppError::MalformedBody(message) => (
                StatusCode::BAD_REQUEST,
                body("MALFORMED_BODY", "api.body", message.clone()),
            ),
            AppError::InvalidBody(message) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                body("INVALID_BODY", "api.body", message.clone()),
            ),
            AppError::InvalidQuery(message) => (
                StatusCode::BAD_REQUEST,
                body("INVALID_QUERY", "api.query", message.clone()),
            ),
            AppError::UnsupportedMediaType(message) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                body("UNSUPPORTED_MEDIA_TYPE", "api.body", message.clone()),
            ),
            AppError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                body(
                    "PAYLOAD_TOO_LARGE",
                    "api.body",
                    "the request body is too large".into(),
                ),
            ),
            AppError::Unauthorized(message) => (
                StatusCode::UNAUTHORIZED,
                body("UNAUTHORIZED", "api.auth", message.clone()),
            ),
            AppError::Forbidden { code, message } => (
                StatusCode::FORBIDDEN,
                body(code, "api.auth", message.clone()),
            ),
            AppError::DongleNotProven { rule, message } => (
                StatusCode::FORBIDDEN,
                body(Code::DongleAbsent.as_str(), rule, message.clone()),
            ),
            AppError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                body(
                    "NOT_FOUND",
                    "api.resource",
                    format!("{what} does not exist"),
                ),
            ),
            AppError::RouteNotFound(path) => (
                StatusCode::NOT_FOUND,
                body(
                    "ROUTE_NOT_FOUND",
                    "api.route",
                    format!("no route `{path}`; see /v1/openapi.json"),
                ),
            ),
            AppError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                body(
                    "METHOD_NOT_ALLOWED",
                    "api.route",
                    "this route does not take this method".into(),
                ),
            ),
            AppError::AlreadyExists(what) => (
                StatusCode::CONFLICT,
                body(
                    "ALREADY_EXISTS",
                    "api.resource",
                    format!("{what} already exists"),
                ),
            ),
            AppError::UnknownProduct(product) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                body(
                    "UNKNOWN_PRODUCT",
                    "api.product",
                    format!("product `{product}` is not licensed by this server"),
                ),
            ),
            AppError::RateLimited { retry_after, scope } => (
                StatusCode::TOO_MANY_REQUESTS,
                body(
                    "RATE_LIMITED",
                    &format!("api.rate_limit.{scope}"),
                    format!("too many attempts; retry in {retry_after} s"),
                ),
            ),
            // The details of these stay in the server's log (see the `From` conversions and
            // `IntoResponse`); clients get a fixed sentence.
            AppError::Conflict(_) => (
                StatusCode::CONFLICT,
                body(
                    "CONFLICT",
                    "api.store",
                    "a concurrent change got in the way; retry".into(),
                ),
            ),
            AppError::Storage(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                body(
                    "STORAGE_UNAVAILABLE",
                    "api.store",
                    "storage failed; nothing was changed".into(),
                ),
            ),
            AppError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                body(
                    "INTERNAL",
                    "api.internal",
                    "the server failed to answer; the failure is logged".into(),
                ),
            ),
            AppError::TransportRequest(message) => (
                StatusCode::BAD_REQUEST,
                body("TRANSPORT_REQUEST", "api.transport", message.clone()),
            ),
            AppError::TransportFailed(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                body(
                    "TRANSPORT_FAILED",
                    "api.transport",
                    "the transport plugin failed; the failure is logged".into(),
                ),
            ),
        }
    }
}

impl AppError {
    /// What is logged and never answered: the cause of a failure the server is to blame for.
    pub(crate) fn failure(&self) -> Option<Failure> {
        match self {
            AppError::Storage(cause) => Some(Failure(format!("storage: {cause}"))),
            AppError::Internal(cause) => Some(Failure(format!("internal error: {cause}"))),
            AppError::TransportFailed(cause) => Some(Failure(format!("transport plugin: {cause}"))),
            _ => None,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Conflict(message) = &self {
            tracing::debug!("conflict: {message}");
        }
        let (status, body) = self.parts();
        let mut response = (status, axum::Json(body)).into_response();
        if let AppError::RateLimited { retry_after, .. } = &self {
            if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        if let Some(failure) = self.failure() {
            response.extensions_mut().insert(failure);
        }
        response
    }
}

/// The cause of a failure the server is to blame for (storage, an internal error, a transport
/// plugin that trapped), carried from the answer that hides it to [`log_failures`], which logs it
/// once. It is a response extension and never leaves the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

/// The layer that logs each [`Failure`] once, with the request's method, route pattern and status,
/// and takes it off the answer.
pub async fn log_failures(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "-".to_owned(), |path| path.as_str().to_owned());
    let mut response = next.run(request).await;
    if let Some(Failure(cause)) = response.extensions_mut().remove::<Failure>() {
        let status = response.status().as_u16();
        tracing::error!(%method, route, status, "{cause}");
    }
    response
}

impl From<crate::ratelimit::Limited> for AppError {
    fn from(limit: crate::ratelimit::Limited) -> AppError {
        AppError::RateLimited {
            retry_after: limit.retry_after,
            scope: limit.scope,
        }
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::AlreadyExists(what) => AppError::AlreadyExists(what),
            StoreError::NotFound(what) => AppError::NotFound(what),
            StoreError::Conflict(message) => AppError::Conflict(message),
            other => AppError::Storage(other.report()),
        }
    }
}

impl From<crate::listing::PageError> for AppError {
    fn from(error: crate::listing::PageError) -> Self {
        AppError::InvalidQuery(error.report())
    }
}

impl From<ServiceError> for AppError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Store(error) => error.into(),
            ServiceError::UnknownProduct(product) => AppError::UnknownProduct(product),
            ServiceError::Invalid(message) => AppError::InvalidBody(message),
            ServiceError::NotFound(what) => AppError::NotFound(what),
            ServiceError::AlreadyExists(what) => AppError::AlreadyExists(what),
            ServiceError::Exchange { code, message } => AppError::Denied {
                code,
                rule: "exchange.file".into(),
                message,
            },
            other => AppError::Internal(other.report()),
        }
    }
}
