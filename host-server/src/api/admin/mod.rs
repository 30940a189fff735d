//! Administrator routes (`/v1/admin/...`, administrator bearer token) and client account routes
//! (`/v1/client/...`, client bearer token).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use licet_engine::policy::{LicenseKind, Method, Model};
use licet_engine::state::Term;
use licet_engine::{Action, Code};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::enduser::DecisionBody;
use super::error::AppError;
use super::extract::{Admin, ApiJson, ApiPath, ApiQuery, Caller, ClientAccount, Peer};
use super::listing::{page_request, PageAnswer, PageQuery};
use super::openapi::schemas;
use super::AppState;
use crate::admin::{LicenseDetail, NewLicenses, NewOrder, SeatView};
use crate::service::{binding_as_machine, RequestContext};
use crate::store::{AuditEntry, ClientRecord, LicenseFilter, LicenseRecord, OrderRecord};

mod accounts;
mod client;
mod licenses;
mod orders;

pub use accounts::*;
pub use client::*;
pub use licenses::*;
pub use orders::*;

/// A product as administrators see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProductView {
    /// Identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Editions.
    pub editions: Vec<String>,
    /// `standard` or `web`.
    #[schema(schema_with = schemas::model)]
    pub model: String,
    /// Activations per serial (web model).
    pub activations_per_serial: Option<u32>,
    /// Default features.
    pub features: BTreeMap<String, bool>,
    /// Default counters.
    pub counters: BTreeMap<String, i64>,
    /// License types: name -> kind and default seats.
    pub license_types: BTreeMap<String, LicenseTypeView>,
    /// Identifier of the policy.
    pub policy: String,
}

/// A license type of a product.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LicenseTypeView {
    /// `standalone`, `network`, `standalone-dongle` or `network-dongle`.
    pub kind: String,
    /// Default seats of network types.
    pub default_seats: Option<u32>,
    /// Whether seats can be borrowed, and for how many days at most.
    pub borrow_max_days: Option<i64>,
    /// Activation methods.
    #[schema(schema_with = schemas::methods)]
    pub activation: Vec<Method>,
}

/// `GET /v1/admin/products`.
#[utoipa::path(
    get,
    path = "/v1/admin/products",
    summary = "Licensed products, their editions, license types, features and counters",
    responses((status = 200, description = "success", body = Vec<ProductView>)),
    security(("administrator" = []))
)]
pub async fn products(State(state): State<AppState>, _admin: Admin) -> Json<Vec<ProductView>> {
    let views = state
        .licensing
        .policies()
        .values()
        .map(|policy| ProductView {
            id: policy.product.id.clone(),
            name: policy.product.name.clone(),
            version: policy.product.version.clone(),
            editions: policy.product.editions.clone(),
            model: match policy.model {
                Model::Standard => "standard".into(),
                Model::Web { .. } => "web".into(),
            },
            activations_per_serial: match policy.model {
                Model::Web {
                    activations_per_serial,
                } => Some(activations_per_serial),
                Model::Standard => None,
            },
            features: policy.product.features.clone(),
            counters: policy.product.counters.clone(),
            license_types: policy
                .license_types
                .iter()
                .map(|(name, license_type)| {
                    (
                        name.clone(),
                        LicenseTypeView {
                            kind: license_type.kind.as_str().to_owned(),
                            default_seats: match license_type.kind {
                                LicenseKind::Network | LicenseKind::NetworkDongle => {
                                    license_type.default_seats
                                }
                                _ => None,
                            },
                            borrow_max_days: license_type.borrowing.map(|b| b.max.num_days()),
                            activation: license_type.activation.iter().copied().collect(),
                        },
                    )
                })
                .collect(),
            policy: policy.id.clone(),
        })
        .collect();
    Json(views)
}

/// `POST /v1/admin/tokens` body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewToken)]
pub struct NewTokenBody {
    /// Name of the token's holder.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    pub name: String,
}

/// A token, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Token)]
pub struct TokenBody {
    /// The bearer token; only its hash is stored.
    pub token: String,
}

/// `POST /v1/admin/tokens`: a new administrator token.
#[utoipa::path(
    post,
    path = "/v1/admin/tokens",
    summary = "Create an administrator token (shown once)",
    request_body = NewTokenBody,
    responses((status = 201, description = "success", body = TokenBody)),
    security(("administrator" = []))
)]
pub async fn create_token(
    State(state): State<AppState>,
    Admin(admin): Admin,
    peer: Peer,
    ApiJson(body): ApiJson<NewTokenBody>,
) -> Result<(StatusCode, Json<TokenBody>), AppError> {
    let actor = Caller::Administrator(admin).label(&peer);
    let token = state
        .licensing
        .create_admin_token(&actor, &body.name)
        .await?;
    Ok((StatusCode::CREATED, Json(TokenBody { token })))
}

/// Query of `GET /v1/admin/seats`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SeatsQuery {
    /// Only this product.
    #[param(nullable = false)]
    pub product: Option<String>,
    /// The rows after this cursor (`LICENSE-KEY/SESSION`): the previous page's `Licet-Next`.
    #[param(pattern = "^$|/", nullable = false)]
    pub after: Option<String>,
    /// At most this many rows; outside 1 to 1000 is a 400 `INVALID_QUERY`.
    #[param(minimum = 1, maximum = 1000, default = 100, nullable = false)]
    pub limit: Option<i64>,
}

/// `GET /v1/admin/seats`: who holds each seat and each borrowed seat now, by license key then
/// session.
#[utoipa::path(
    get,
    path = "/v1/admin/seats",
    summary = "A page of the seats held and borrowed now, by license key then session (cursor `LICENSE-KEY/SESSION`)",
    params(SeatsQuery),
    responses((status = 200, description = "success", body = Vec<SeatView>, headers(("Licet-Next" = String, description = "present when more rows exist: the `after` of the next page")))),
    security(("administrator" = []))
)]
pub async fn seats(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<SeatsQuery>,
) -> Result<PageAnswer<SeatView>, AppError> {
    let page = page_request(query.limit, query.after)?;
    Ok(PageAnswer(
        state
            .licensing
            .held_seats_page(query.product.as_deref(), &page)
            .await?,
    ))
}

/// Query of `GET /v1/admin/audit`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only entries about this license.
    #[param(nullable = false)]
    pub license: Option<String>,
    /// The rows after this ID: the previous page's `Licet-Next`.
    #[param(
        minimum = -9223372036854775808i64,
        maximum = 9223372036854775807i64,
        nullable = false
    )]
    pub after: Option<i64>,
    /// At most this many rows; outside 1 to 1000 is a 400 `INVALID_QUERY`.
    #[param(minimum = 1, maximum = 1000, default = 100, nullable = false)]
    pub limit: Option<i64>,
}

/// `GET /v1/admin/audit`: the append-only audit log, oldest first.
#[utoipa::path(
    get,
    path = "/v1/admin/audit",
    summary = "A page of the append-only audit log, oldest first",
    params(AuditQuery),
    responses((status = 200, description = "success", body = Vec<AuditEntry>, headers(("Licet-Next" = String, description = "present when more rows exist: the `after` of the next page")))),
    security(("administrator" = []))
)]
pub async fn audit(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<PageAnswer<AuditEntry>, AppError> {
    let page = page_request(query.limit, query.after.map(|after| after.to_string()))?;
    Ok(PageAnswer(
        state
            .licensing
            .audit_page(query.license.as_deref(), &page)
            .await?,
    ))
}
