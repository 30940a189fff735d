//! The versioned JSON HTTP API (`/v1/...`).

pub mod admin;
pub mod enduser;
pub mod error;
pub mod exchange;
pub mod extract;
pub mod listing;
pub mod openapi;
pub mod server_activation;
pub mod transport;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::Uri;
use axum::{Extension, Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::ratelimit::RateLimiter;
use crate::service::Licensing;
use error::AppError;

/// The largest request body accepted, in bytes.
pub const MAX_BODY: usize = 256 * 1024;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The licensing service.
    pub licensing: Licensing,
    /// The activation attempt limiter.
    pub limiter: Arc<RateLimiter>,
    /// Administrator tokens from the configuration: SHA-256 hex -> name.
    pub admin_tokens: Arc<BTreeMap<String, String>>,
    /// The key of the web pages' session cookies ([`crate::web`]).
    pub web: Arc<crate::web::WebSecret>,
    /// The server's metrics (`GET /metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// The routes of the API with their OpenAPI document: each handler carries its
/// `#[utoipa::path]`, so a route cannot be added without its documentation. The end-user
/// decision routes come from their table ([`enduser::decision_routes`]).
pub fn api() -> OpenApiRouter<AppState> {
    enduser::decision_routes(OpenApiRouter::with_openapi(openapi::base()))
        .routes(routes!(health))
        .routes(routes!(crate::metrics::serve))
        .routes(routes!(openapi::document))
        .routes(routes!(public_key))
        .routes(routes!(seats_query))
        .routes(routes!(enduser::dongle_challenge))
        .routes(routes!(server_activation::activate))
        .routes(routes!(server_activation::validate))
        .routes(routes!(server_activation::return_license))
        .routes(routes!(admin::products))
        .routes(routes!(admin::create_token))
        .routes(routes!(admin::clients, admin::create_client))
        .routes(routes!(admin::client))
        .routes(routes!(admin::rotate_client_token))
        .routes(routes!(
            admin::set_client_password,
            admin::clear_client_password
        ))
        .routes(routes!(admin::orders, admin::create_order))
        .routes(routes!(admin::order, admin::update_order))
        .routes(routes!(admin::licenses, admin::issue_licenses))
        .routes(routes!(admin::issue_serials))
        .routes(routes!(admin::license, admin::extend_license))
        .routes(routes!(admin::revoke_license))
        .routes(routes!(listing::license_activations))
        .routes(routes!(listing::license_seats))
        .routes(routes!(admin::remove_activation))
        .routes(routes!(admin::release_seat))
        .routes(routes!(admin::seats))
        .routes(routes!(admin::audit))
        .routes(routes!(admin::client_licenses))
        .routes(routes!(admin::client_license))
        .routes(routes!(admin::client_remove_activation))
        .routes(routes!(exchange::page, exchange::exchange))
        .routes(routes!(exchange::upload))
        .routes(routes!(transport::accept))
}

/// The API router: [`api`]'s routes, the web pages, and the layers every request goes through.
pub fn router(state: AppState) -> Router {
    let (api, document) = api().split_for_parts();
    api.merge(crate::web::routes())
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(openapi::Document::new(document)))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(error::log_failures))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::count_requests,
        ))
        .with_state(state)
}

pub(crate) async fn route_not_found(uri: Uri) -> AppError {
    AppError::RouteNotFound(uri.path().to_owned())
}

pub(crate) async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}

/// `GET /v1/health`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// `sqlite` or `postgres`.
    #[schema(schema_with = openapi::schemas::storage)]
    pub storage: String,
    /// Licensed products.
    pub products: Vec<String>,
}

#[utoipa::path(
    get,
    path = "/v1/health",
    summary = "Server status and licensed products",
    responses((status = 200, description = "success", body = Health))
)]
async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        storage: state.licensing.store().backend_name().into(),
        products: state.licensing.policies().keys().cloned().collect(),
    })
}

/// `GET /v1/public-key`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = PublicKey)]
pub struct PublicKeyBody {
    /// The vendor's public key file line (`licet-ed25519-public:<base64>`).
    pub public_key: String,
    /// On a license server, its own public key, which signs the seat and borrow certificates it
    /// serves (named by its server licenses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub server_key: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/public-key",
    summary = "The vendor public key that verifies certificates",
    responses((status = 200, description = "success", body = PublicKeyBody))
)]
async fn public_key(State(state): State<AppState>) -> Json<PublicKeyBody> {
    let line = |key: ed25519_dalek::VerifyingKey| {
        format!("licet-ed25519-public:{}", STANDARD.encode(key.as_bytes()))
    };
    Json(match state.licensing.license_server() {
        Some(server) => PublicKeyBody {
            public_key: line(server.vendor_key()),
            server_key: Some(line(server.public_key())),
        },
        None => PublicKeyBody {
            public_key: line(state.licensing.verifying_key()),
            server_key: None,
        },
    })
}

/// `GET /v1/seats/query` (no token): what a license server serves, each network license with its
/// seats, free seats, borrowed seats and status (an activation center answers an empty list).
/// Refused while the caller's address is rate limited.
#[utoipa::path(
    get,
    path = "/v1/seats/query",
    summary = "What a license server serves: each network license with its free and borrowed \
               seats, counted by the store whatever the size of the pool (no lease is listed)",
    responses((status = 200, description = "success", body = crate::license_server::status::SeatQueryBody))
)]
async fn seats_query(
    State(state): State<AppState>,
    peer: extract::Peer,
) -> Result<Json<crate::license_server::status::SeatQueryBody>, AppError> {
    state.limiter.check(&peer.0)?;
    Ok(Json(
        crate::license_server::status::seat_query(&state.licensing).await?,
    ))
}
