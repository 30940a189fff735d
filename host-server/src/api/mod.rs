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
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

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

/// The API router.
pub fn router(state: AppState) -> Router {
    // The end-user decision routes, from their one table.
    let decisions = enduser::DECISION_ROUTES
        .iter()
        .fold(Router::new(), |router, route| {
            router.route(route.path, route.handler())
        });
    decisions
        .route("/v1/health", get(health))
        .route("/metrics", get(crate::metrics::serve))
        .route("/v1/openapi.json", get(openapi::document))
        .route("/v1/public-key", get(public_key))
        .route("/v1/seats/query", get(seats_query))
        .route("/v1/dongle/challenge", post(enduser::dongle_challenge))
        .route("/v1/server/activate", post(server_activation::activate))
        .route("/v1/server/validate", post(server_activation::validate))
        .route("/v1/server/return", post(server_activation::return_license))
        .route("/v1/admin/products", get(admin::products))
        .route("/v1/admin/tokens", post(admin::create_token))
        .route(
            "/v1/admin/clients",
            get(admin::clients).post(admin::create_client),
        )
        .route("/v1/admin/clients/{id}", get(admin::client))
        .route(
            "/v1/admin/clients/{id}/token",
            post(admin::rotate_client_token),
        )
        .route(
            "/v1/admin/clients/{id}/password",
            post(admin::set_client_password).delete(admin::clear_client_password),
        )
        .route(
            "/v1/admin/orders",
            get(admin::orders).post(admin::create_order),
        )
        .route(
            "/v1/admin/orders/{id}",
            get(admin::order).patch(admin::update_order),
        )
        .route(
            "/v1/admin/licenses",
            get(admin::licenses).post(admin::issue_licenses),
        )
        .route("/v1/admin/serials", post(admin::issue_serials))
        .route(
            "/v1/admin/licenses/{key}",
            get(admin::license).patch(admin::extend_license),
        )
        .route(
            "/v1/admin/licenses/{key}/revoke",
            post(admin::revoke_license),
        )
        .route(
            "/v1/admin/licenses/{key}/activations",
            get(listing::license_activations),
        )
        .route(
            "/v1/admin/licenses/{key}/seats",
            get(listing::license_seats),
        )
        .route(
            "/v1/admin/licenses/{key}/activations/{id}",
            delete(admin::remove_activation),
        )
        .route(
            "/v1/admin/licenses/{key}/seats/{session}",
            delete(admin::release_seat),
        )
        .route("/v1/admin/seats", get(admin::seats))
        .route("/v1/admin/audit", get(admin::audit))
        .route("/v1/client/licenses", get(admin::client_licenses))
        .route("/v1/client/licenses/{key}", get(admin::client_license))
        .route(
            "/v1/client/licenses/{key}/activations/{id}",
            delete(admin::client_remove_activation),
        )
        .route("/v1/exchange", get(exchange::page).post(exchange::exchange))
        .route("/v1/exchange/upload", post(exchange::upload))
        .route("/v1/transport/{name}", post(transport::accept))
        .merge(crate::web::routes())
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub storage: String,
    /// Licensed products.
    pub products: Vec<String>,
}

async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        storage: state.licensing.store().backend_name().into(),
        products: state.licensing.policies().keys().cloned().collect(),
    })
}

/// `GET /v1/public-key`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublicKeyBody {
    /// The vendor's public key file line (`licet-ed25519-public:<base64>`).
    pub public_key: String,
    /// On a license server, its own public key, which signs the seat and borrow certificates it
    /// serves (named by its server licenses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_key: Option<String>,
}

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
async fn seats_query(
    State(state): State<AppState>,
    peer: extract::Peer,
) -> Result<Json<crate::license_server::status::SeatQueryBody>, AppError> {
    state
        .limiter
        .check(&peer.0)
        .map_err(|limit| AppError::RateLimited {
            retry_after: limit.retry_after,
            scope: limit.scope,
        })?;
    Ok(Json(
        crate::license_server::status::seat_query(&state.licensing).await?,
    ))
}
