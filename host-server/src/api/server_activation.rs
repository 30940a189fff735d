//! The activation center's routes for license servers: a customer's license server is activated
//! with a network license key, revalidated periodically and returned before it moves; each
//! allowed activation or revalidation answers a vendor-signed server license naming the license
//! server's own public key (see `licet_engine::server_license`).

use axum::extract::State;
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use licet_engine::certificate::verifying_key_from_bytes;
use licet_engine::policy::Method;
use licet_engine::{Action, Fingerprint, ProductRef};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::enduser::{answer, proven_dongle, Attempt, DecisionBody, DongleProofBody, Extras};
use super::error::AppError;
use super::extract::{ApiJson, Caller, Peer};
use super::openapi::schemas;
use super::AppState;

/// `POST /v1/server/activate`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ServerActivateRequest)]
pub struct ServerActivateBody {
    /// The network license key.
    #[schema(min_length = 1, max_length = 256)]
    pub key: String,
    /// Product, edition and version the license server will serve.
    #[schema(value_type = schemas::Target)]
    pub target: ProductRef,
    /// The license server's fingerprint: component name -> hashed value.
    #[schema(schema_with = schemas::fingerprint)]
    pub machine: Fingerprint,
    /// The license server's Ed25519 public key, base64 of its 32 bytes.
    #[schema(schema_with = schemas::server_key)]
    pub server_key: String,
    /// The license server's network dongle answering a challenge (network dongle licenses).
    #[serde(default)]
    pub dongle: Option<DongleProofBody>,
}

/// `POST /v1/server/validate` and `POST /v1/server/return`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ServerLicenseRequest)]
pub struct ServerLicenseBody {
    /// The network license key.
    #[schema(min_length = 1, max_length = 256)]
    pub key: String,
    /// The license server's fingerprint.
    #[schema(schema_with = schemas::fingerprint)]
    pub machine: Fingerprint,
    /// The license server's Ed25519 public key, base64 of its 32 bytes.
    #[schema(schema_with = schemas::server_key)]
    pub server_key: String,
    /// The license server's network dongle answering a challenge (network dongle licenses).
    #[serde(default)]
    pub dongle: Option<DongleProofBody>,
    /// The serial of the server license it holds (`sl-...`): required to return it, refused
    /// when it was returned before.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    pub certificate_serial: Option<String>,
}

/// The 32 bytes of a valid Ed25519 public key sent as base64.
fn server_key(text: &str) -> Result<[u8; 32], AppError> {
    let invalid = || {
        AppError::InvalidBody(
            "`server_key` is not an Ed25519 public key (base64 of 32 bytes)".to_owned(),
        )
    };
    if text.len() > 64 {
        return Err(invalid());
    }
    let bytes = STANDARD.decode(text).map_err(|_| invalid())?;
    let key = verifying_key_from_bytes(&bytes).map_err(|_| invalid())?;
    Ok(key.to_bytes())
}

async fn answer_server(
    state: &AppState,
    caller: &Caller,
    peer: &Peer,
    action: Action,
    key: &str,
    dongle: Option<DongleProofBody>,
) -> Result<Json<DecisionBody>, AppError> {
    let extras = Extras {
        client_dongle: proven_dongle(state, dongle)?,
        server_key: Some(server_key(key)?),
        ..Extras::default()
    };
    answer(state, caller, peer, action, Attempt::Counted, extras).await
}

/// `POST /v1/server/activate`: binds a network license key to a license server; answers
/// `ACTIVATED` and the server license.
#[utoipa::path(
    post,
    path = "/v1/server/activate",
    summary = "Activate a license server with a network license key (ACTIVATED + server license)",
    request_body = ServerActivateBody,
    responses((status = 200, description = "success", body = DecisionBody))
)]
pub async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    peer: Peer,
    ApiJson(body): ApiJson<ServerActivateBody>,
) -> Result<Json<DecisionBody>, AppError> {
    let action = Action::Activate {
        key: body.key,
        target: body.target,
        machine: body.machine,
        method: Method::Online,
    };
    answer_server(
        &state,
        &caller,
        &peer,
        action,
        &body.server_key,
        body.dongle,
    )
    .await
}

/// `POST /v1/server/validate`: the license server's periodic revalidation; answers `VALID` and a
/// fresh server license (more seats, a later expiry, new features), or the denial (`REVOKED`,
/// `EXPIRED`, `NOT_ACTIVATED` after a return or on another server).
#[utoipa::path(
    post,
    path = "/v1/server/validate",
    summary = "Revalidate a license server's server license (VALID + a fresh server license)",
    request_body = ServerLicenseBody,
    responses((status = 200, description = "success", body = DecisionBody))
)]
pub async fn validate(
    State(state): State<AppState>,
    caller: Caller,
    peer: Peer,
    ApiJson(body): ApiJson<ServerLicenseBody>,
) -> Result<Json<DecisionBody>, AppError> {
    let action = Action::Validate {
        key: body.key,
        machine: body.machine,
        certificate_serial: body.certificate_serial,
    };
    answer_server(
        &state,
        &caller,
        &peer,
        action,
        &body.server_key,
        body.dongle,
    )
    .await
}

/// `POST /v1/server/return`: gives the license server's activation back (before it moves to new
/// hardware); answers `RETURNED`.
#[utoipa::path(
    post,
    path = "/v1/server/return",
    summary = "Return a license server's activation before it moves (RETURNED)",
    request_body = ServerLicenseBody,
    responses((status = 200, description = "success", body = DecisionBody))
)]
pub async fn return_license(
    State(state): State<AppState>,
    caller: Caller,
    peer: Peer,
    ApiJson(body): ApiJson<ServerLicenseBody>,
) -> Result<Json<DecisionBody>, AppError> {
    let action = Action::Return {
        key: body.key,
        machine: body.machine,
        method: Method::Online,
        certificate_serial: body.certificate_serial,
    };
    answer_server(
        &state,
        &caller,
        &peer,
        action,
        &body.server_key,
        body.dongle,
    )
    .await
}
