//! Extractors whose rejections are the API's JSON errors, and the caller's identity.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Multipart, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use licet_engine::Actor;
use serde::de::DeserializeOwned;

use super::error::AppError;
use super::AppState;
use crate::keys::token_hash;
use crate::store::TokenOwner;

/// A JSON body; a malformed one is a JSON 400, a wrong shape a JSON 422.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> AppError {
    let text = rejection.body_text();
    match rejection.status() {
        StatusCode::BAD_REQUEST => AppError::MalformedJson(text),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::UnsupportedMediaType(
            "send the body as JSON with `Content-Type: application/json`".into(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
        _ => AppError::InvalidBody(text),
    }
}

/// For an optional field that may be left out but not sent as `null` (with `#[serde(default)]`).
pub(crate) fn not_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A JSON number that is an integer: `3` or `3.0` (JSON has one number type, and the OpenAPI
/// document's `integer` admits both).
fn integral(number: &serde_json::Number) -> Option<i64> {
    number.as_i64().or_else(|| {
        number
            .as_f64()
            .filter(|value| {
                value.fract() == 0.0
                    && *value > -9_223_372_036_854_775_808.0
                    && *value < 9_223_372_036_854_775_808.0
            })
            .map(|value| value as i64)
    })
}

/// Counters by name, each an integer of 64 bits (`3` or `3.0`).
pub(crate) fn integral_counters<'de, D>(
    deserializer: D,
) -> Result<std::collections::BTreeMap<String, i64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error as _;
    let numbers =
        <std::collections::BTreeMap<String, serde_json::Number> as serde::Deserialize>::deserialize(
            deserializer,
        )?;
    numbers
        .into_iter()
        .map(|(name, number)| {
            integral(&number)
                .map(|value| (name.clone(), value))
                .ok_or_else(|| {
                    D::Error::custom(format!(
                        "counter `{name}` must be an integer of 64 bits, not {number}"
                    ))
                })
        })
        .collect()
}

/// An optional count of 0 to 2^32 - 1 (`3` or `3.0`; `null` is absent).
pub(crate) fn integral_u32<'de, D>(deserializer: D) -> Result<Option<u32>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error as _;
    let Some(number) =
        <Option<serde_json::Number> as serde::Deserialize>::deserialize(deserializer)?
    else {
        return Ok(None);
    };
    integral(&number)
        .and_then(|value| u32::try_from(value).ok())
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("{number} is not an integer of 0 to 4294967295")))
}

/// A raw body; one over the body limit is a JSON 413, one that cannot be read a JSON 400.
#[derive(Debug, Clone)]
pub struct ApiBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(request, state)
            .await
            .map(ApiBytes)
            .map_err(|rejection: BytesRejection| {
                body_error(rejection.status(), rejection.body_text())
            })
    }
}

/// A `multipart/form-data` body; a wrong media type is a JSON 415, a missing or bad boundary a
/// JSON 400.
#[derive(Debug)]
pub struct ApiMultipart(pub Multipart);

impl<S: Send + Sync> FromRequest<S> for ApiMultipart {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_multipart = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("multipart/form-data"));
        if !is_multipart {
            return Err(AppError::UnsupportedMediaType(
                "send the form as `Content-Type: multipart/form-data; boundary=...`".into(),
            ));
        }
        Multipart::from_request(request, state)
            .await
            .map(ApiMultipart)
            .map_err(|rejection: MultipartRejection| {
                body_error(rejection.status(), rejection.body_text())
            })
    }
}

/// The error of a part of a multipart body that cannot be read.
pub fn multipart_error(error: &MultipartError) -> AppError {
    body_error(error.status(), error.body_text())
}

/// The JSON error of a body that could not be read, by the status axum gave it.
fn body_error(status: StatusCode, text: String) -> AppError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::UnsupportedMediaType(text),
        status if status.is_server_error() => AppError::Internal(text),
        _ => AppError::MalformedBody(text),
    }
}

/// Query parameters; invalid ones are a JSON 422.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|rejection: QueryRejection| AppError::InvalidBody(rejection.body_text()))
    }
}

/// Path parameters; invalid ones are a JSON 422.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ApiPath(value))
            .map_err(|rejection: PathRejection| AppError::InvalidBody(rejection.body_text()))
    }
}

/// The client's network address, or `local` when the request did not come over a socket.
#[derive(Debug, Clone)]
pub struct Peer(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer::of(parts))
    }
}

impl Peer {
    /// The peer of a request.
    fn of(parts: &Parts) -> Peer {
        Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "local".to_owned(), |info| info.0.ip().to_string()),
        )
    }
}

/// Who calls: an end user (no token), a client account or an administrator (bearer token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No token: authenticated by the license key in the body.
    EndUser,
    /// A client account's token.
    Client(String),
    /// An administrator token and its name.
    Administrator(String),
}

impl Caller {
    /// The engine's actor.
    pub fn actor(&self) -> Actor {
        match self {
            Caller::EndUser => Actor::EndUser,
            Caller::Client(id) => Actor::Client(id.clone()),
            Caller::Administrator(_) => Actor::Administrator,
        }
    }

    /// The kind of caller, for the log: `end-user`, `client` or `administrator`.
    pub fn kind(&self) -> &'static str {
        match self {
            Caller::EndUser => "end-user",
            Caller::Client(_) => "client",
            Caller::Administrator(_) => "administrator",
        }
    }

    /// The audit log's name for the caller at `peer`.
    pub fn label(&self, peer: &Peer) -> String {
        match self {
            Caller::EndUser => format!("end-user@{}", peer.0),
            Caller::Client(id) => format!("client:{id}@{}", peer.0),
            Caller::Administrator(name) => format!("administrator:{name}@{}", peer.0),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Ok(Caller::EndUser);
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty() && token.len() <= 256)
            .ok_or_else(|| AppError::Unauthorized("use `Authorization: Bearer <token>`".into()))?;
        // Configured administrator tokens are known without the store (and are never limited).
        if let Some(name) = state.admin_tokens.get(&token_hash(token)) {
            return Ok(Caller::Administrator(name.clone()));
        }
        // Every unknown token costs the address one attempt; while the address is blocked, no
        // token is looked up in the store at all.
        let peer = Peer::of(parts);
        state.limiter.check(&peer.0)?;
        match state.licensing.token_owner(token).await? {
            Some(TokenOwner::Administrator(name)) => Ok(Caller::Administrator(name)),
            Some(TokenOwner::Client(id)) => Ok(Caller::Client(id)),
            None => {
                state.limiter.penalize(&peer.0);
                Err(AppError::Unauthorized("the token is not valid".into()))
            }
        }
    }
}

/// An administrator, or a refusal.
#[derive(Debug, Clone)]
pub struct Admin(pub String);

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Administrator(name) => Ok(Admin(name)),
            Caller::EndUser => Err(AppError::Unauthorized(
                "administrator routes need `Authorization: Bearer <administrator token>`".into(),
            )),
            Caller::Client(_) => Err(AppError::Forbidden {
                code: "ADMIN_REQUIRED",
                message: "only administrators may use this route".into(),
            }),
        }
    }
}

/// A client account, or a refusal.
#[derive(Debug, Clone)]
pub struct ClientAccount(pub String);

impl FromRequestParts<AppState> for ClientAccount {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Client(id) => Ok(ClientAccount(id)),
            Caller::EndUser => Err(AppError::Unauthorized(
                "client routes need `Authorization: Bearer <client token>`".into(),
            )),
            Caller::Administrator(_) => Err(AppError::Forbidden {
                code: "CLIENT_REQUIRED",
                message: "this route is for client accounts; administrators use /v1/admin".into(),
            }),
        }
    }
}
