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

/// `POST /v1/admin/clients` body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewClient)]
pub struct NewClientBody {
    /// Identifier: letters, digits, `-`, `_`, `.`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    pub id: String,
    /// Display name.
    pub name: String,
}

/// A new client and its token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewClientAnswer {
    /// The client.
    pub client: ClientRecordBody,
    /// Its bearer token, shown once.
    pub token: String,
}

/// A client account.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Client)]
pub struct ClientRecordBody {
    /// Identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Whether it has a token.
    pub has_token: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<ClientRecord> for ClientRecordBody {
    fn from(record: ClientRecord) -> Self {
        ClientRecordBody {
            id: record.id,
            name: record.name,
            has_token: record.has_token,
            created_at: record.created_at,
        }
    }
}

/// `POST /v1/admin/clients`.
#[utoipa::path(
    post,
    path = "/v1/admin/clients",
    summary = "Create a client account and its token (shown once)",
    request_body = NewClientBody,
    responses((status = 201, description = "success", body = NewClientAnswer)),
    security(("administrator" = []))
)]
pub async fn create_client(
    State(state): State<AppState>,
    Admin(admin): Admin,
    peer: Peer,
    ApiJson(body): ApiJson<NewClientBody>,
) -> Result<(StatusCode, Json<NewClientAnswer>), AppError> {
    let actor = Caller::Administrator(admin).label(&peer);
    let (client, token) = state
        .licensing
        .create_client(&actor, &body.id, &body.name)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(NewClientAnswer {
            client: client.into(),
            token,
        }),
    ))
}

/// `GET /v1/admin/clients`: a page of clients, by identifier.
#[utoipa::path(
    get,
    path = "/v1/admin/clients",
    summary = "A page of client accounts, by identifier",
    params(PageQuery),
    responses((status = 200, description = "success", body = Vec<ClientRecordBody>, headers(("Licet-Next" = String, description = "present when more rows exist: the `after` of the next page")))),
    security(("administrator" = []))
)]
pub async fn clients(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<PageAnswer<ClientRecordBody>, AppError> {
    let page = query.page()?;
    let clients = state.licensing.clients_page(&page).await?;
    Ok(PageAnswer(clients.map(Into::into)))
}

/// `GET /v1/admin/clients/{id}`.
#[utoipa::path(
    get,
    path = "/v1/admin/clients/{id}",
    summary = "One client account",
    params(("id" = String, Path, min_length = 1, description = "the identifier")),
    responses((status = 200, description = "success", body = ClientRecordBody)),
    security(("administrator" = []))
)]
pub async fn client(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ClientRecordBody>, AppError> {
    Ok(Json(state.licensing.client(&id).await?.into()))
}

/// `POST /v1/admin/clients/{id}/token`: replaces the client's token.
#[utoipa::path(
    post,
    path = "/v1/admin/clients/{id}/token",
    summary = "Replace a client's token (shown once)",
    params(("id" = String, Path, min_length = 1, description = "the identifier")),
    responses((status = 200, description = "success", body = TokenBody)),
    security(("administrator" = []))
)]
pub async fn rotate_client_token(
    State(state): State<AppState>,
    Admin(admin): Admin,
    peer: Peer,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TokenBody>, AppError> {
    let actor = Caller::Administrator(admin).label(&peer);
    let token = state.licensing.rotate_client_token(&actor, &id).await?;
    Ok(Json(TokenBody { token }))
}

/// `POST /v1/admin/clients/{id}/password` body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Password)]
pub struct PasswordBody {
    /// The client's new password for the client interface (10 to 256 characters).
    #[schema(min_length = 10, max_length = 256)]
    pub password: String,
}

/// `POST /v1/admin/clients/{id}/password`: sets the client's password of the client interface
/// (hashed with argon2id and a random salt); audited.
#[utoipa::path(
    post,
    path = "/v1/admin/clients/{id}/password",
    summary = "Set a client's password of the client interface (hashed with argon2id)",
    params(("id" = String, Path, min_length = 1, description = "the identifier")),
    request_body = PasswordBody,
    responses((status = 200, description = "success", body = ClientRecordBody)),
    security(("administrator" = []))
)]
pub async fn set_client_password(
    State(state): State<AppState>,
    Admin(admin): Admin,
    peer: Peer,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<Json<ClientRecordBody>, AppError> {
    let actor = Caller::Administrator(admin).label(&peer);
    state
        .licensing
        .set_client_password(&actor, &id, Some(&body.password))
        .await?;
    Ok(Json(state.licensing.client(&id).await?.into()))
}

/// `DELETE /v1/admin/clients/{id}/password`: removes the client's password (it then signs in
/// with its token only); audited.
#[utoipa::path(
    delete,
    path = "/v1/admin/clients/{id}/password",
    summary = "Remove a client's password (it signs in with its token only)",
    params(("id" = String, Path, min_length = 1, description = "the identifier")),
    responses((status = 200, description = "success", body = ClientRecordBody)),
    security(("administrator" = []))
)]
pub async fn clear_client_password(
    State(state): State<AppState>,
    Admin(admin): Admin,
    peer: Peer,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ClientRecordBody>, AppError> {
    let actor = Caller::Administrator(admin).label(&peer);
    state
        .licensing
        .set_client_password(&actor, &id, None)
        .await?;
    Ok(Json(state.licensing.client(&id).await?.into()))
}

/// `POST /v1/admin/orders` body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewOrder)]
pub struct NewOrderBody {
    /// Identifier; generated when absent.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    pub id: Option<String>,
    /// Owning client.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    pub client: String,
    /// Product.
    #[schema(schema_with = schemas::product)]
    pub product: String,
    /// Order-level features.
    #[serde(default)]
    #[schema(schema_with = schemas::feature_map)]
    pub features: BTreeMap<String, bool>,
    /// Order-level counters.
    #[serde(default, deserialize_with = "super::extract::integral_counters")]
    #[schema(schema_with = schemas::counter_map)]
    pub counters: BTreeMap<String, i64>,
}

/// `POST /v1/admin/orders`.
#[utoipa::path(
    post,
    path = "/v1/admin/orders",
    summary = "Create an order for a client (standard model)",
    request_body = NewOrderBody,
    responses((status = 201, description = "success", body = OrderRecord)),
    security(("administrator" = []))
)]
pub async fn create_order(
    State(state): State<AppState>,
    Admin(admin): Admin,
    peer: Peer,
    ApiJson(body): ApiJson<NewOrderBody>,
) -> Result<(StatusCode, Json<OrderRecord>), AppError> {
    let actor = Caller::Administrator(admin).label(&peer);
    let order = state
        .licensing
        .create_order(
            &actor,
            NewOrder {
                id: body.id,
                client: body.client,
                product: body.product,
                features: body.features,
                counters: body.counters,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(order)))
}

/// Query of `GET /v1/admin/orders`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrdersQuery {
    /// Only this client's orders.
    #[param(nullable = false)]
    pub client: Option<String>,
    /// The rows after this cursor: the previous page's `Licet-Next`.
    #[param(nullable = false)]
    pub after: Option<String>,
    /// At most this many rows; outside 1 to 1000 is a 400 `INVALID_QUERY`.
    #[param(minimum = 1, maximum = 1000, default = 100, nullable = false)]
    pub limit: Option<i64>,
}

/// `GET /v1/admin/orders`: a page of orders, by identifier.
#[utoipa::path(
    get,
    path = "/v1/admin/orders",
    summary = "A page of orders, by identifier",
    params(OrdersQuery),
    responses((status = 200, description = "success", body = Vec<OrderRecord>, headers(("Licet-Next" = String, description = "present when more rows exist: the `after` of the next page")))),
    security(("administrator" = []))
)]
pub async fn orders(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<OrdersQuery>,
) -> Result<PageAnswer<OrderRecord>, AppError> {
    let page = page_request(query.limit, query.after)?;
    Ok(PageAnswer(
        state
            .licensing
            .orders_page(query.client.as_deref(), &page)
            .await?,
    ))
}

/// `GET /v1/admin/orders/{id}`.
#[utoipa::path(
    get,
    path = "/v1/admin/orders/{id}",
    summary = "One order",
    params(("id" = String, Path, min_length = 1, description = "the identifier")),
    responses((status = 200, description = "success", body = OrderRecord)),
    security(("administrator" = []))
)]
pub async fn order(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<OrderRecord>, AppError> {
    Ok(Json(state.licensing.order(&id).await?))
}

/// `PATCH /v1/admin/orders/{id}` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Features)]
pub struct FeaturesBody {
    /// Features to set.
    #[serde(default)]
    #[schema(schema_with = schemas::feature_map)]
    pub features: BTreeMap<String, bool>,
    /// Counters to set.
    #[serde(default, deserialize_with = "super::extract::integral_counters")]
    #[schema(schema_with = schemas::counter_map)]
    pub counters: BTreeMap<String, i64>,
}

/// `PATCH /v1/admin/orders/{id}`: sets order-level features and counters.
#[utoipa::path(
    patch,
    path = "/v1/admin/orders/{id}",
    summary = "Set order-level features and counters",
    params(("id" = String, Path, min_length = 1, description = "the identifier")),
    request_body = FeaturesBody,
    responses((status = 200, description = "success", body = OrderRecord)),
    security(("administrator" = []))
)]
pub async fn update_order(
    State(state): State<AppState>,
    Admin(admin): Admin,
    peer: Peer,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<FeaturesBody>,
) -> Result<Json<OrderRecord>, AppError> {
    let actor = Caller::Administrator(admin).label(&peer);
    Ok(Json(
        state
            .licensing
            .update_order(&actor, &id, body.features, body.counters)
            .await?,
    ))
}

/// `POST /v1/admin/licenses` and `POST /v1/admin/serials` body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewLicenses)]
pub struct NewLicensesBody {
    /// Product.
    #[schema(schema_with = schemas::product)]
    pub product: String,
    /// License type.
    #[schema(schema_with = schemas::license_type)]
    pub license_type: String,
    /// Edition.
    #[schema(schema_with = schemas::edition)]
    pub edition: String,
    /// Version; the policy's when absent.
    #[serde(default)]
    #[schema(schema_with = schemas::optional_version)]
    pub version: Option<String>,
    /// Order (standard model).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    pub order: Option<String>,
    /// Owning client of a license outside any order.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    pub client: Option<String>,
    /// `"perpetual"` (default) or `{ "rental": { "ends_at": "..." } }`.
    #[serde(default)]
    #[schema(schema_with = schemas::input_term)]
    pub term: Term,
    /// Seats of a network license.
    #[serde(default, deserialize_with = "super::extract::integral_u32")]
    #[schema(minimum = 0, maximum = 4294967295u32)]
    pub seats: Option<u32>,
    /// License-level features.
    #[serde(default)]
    #[schema(schema_with = schemas::feature_map)]
    pub features: BTreeMap<String, bool>,
    /// License-level counters.
    #[serde(default, deserialize_with = "super::extract::integral_counters")]
    #[schema(schema_with = schemas::counter_map)]
    pub counters: BTreeMap<String, i64>,
    /// Dongle serial of a dongle license.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    pub dongle: Option<String>,
    /// The key to use (issuing one license).
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    pub key: Option<String>,
    /// How many to issue (1 to 1000, default 1).
    #[serde(default, deserialize_with = "super::extract::integral_u32")]
    #[schema(minimum = 1, maximum = 1000)]
    pub count: Option<u32>,
}

impl From<NewLicensesBody> for NewLicenses {
    fn from(body: NewLicensesBody) -> Self {
        NewLicenses {
            product: body.product,
            license_type: body.license_type,
            edition: body.edition,
            version: body.version,
            order: body.order,
            client: body.client,
            term: body.term,
            seats: body.seats,
            features: body.features,
            counters: body.counters,
            dongle: body.dongle,
            key: body.key,
            count: body.count.unwrap_or(1),
        }
    }
}

/// Issued licenses.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Issued)]
pub struct IssuedBody {
    /// The licenses, with their keys.
    pub licenses: Vec<LicenseRecord>,
}

/// `POST /v1/admin/licenses`: issues license keys.
#[utoipa::path(
    post,
    path = "/v1/admin/licenses",
    summary = "Issue license keys",
    request_body = NewLicensesBody,
    responses((status = 201, description = "success", body = IssuedBody)),
    security(("administrator" = []))
)]
pub async fn issue_licenses(
    State(state): State<AppState>,
    Admin(admin): Admin,
    peer: Peer,
    ApiJson(body): ApiJson<NewLicensesBody>,
) -> Result<(StatusCode, Json<IssuedBody>), AppError> {
    let actor = Caller::Administrator(admin).label(&peer);
    let licenses = state.licensing.issue_licenses(&actor, body.into()).await?;
    Ok((StatusCode::CREATED, Json(IssuedBody { licenses })))
}

/// `POST /v1/admin/serials`: issues serial numbers (web model).
#[utoipa::path(
    post,
    path = "/v1/admin/serials",
    summary = "Issue serial numbers (web model)",
    request_body = NewLicensesBody,
    responses((status = 201, description = "success", body = IssuedBody)),
    security(("administrator" = []))
)]
pub async fn issue_serials(
    State(state): State<AppState>,
    Admin(admin): Admin,
    peer: Peer,
    ApiJson(body): ApiJson<NewLicensesBody>,
) -> Result<(StatusCode, Json<IssuedBody>), AppError> {
    let actor = Caller::Administrator(admin).label(&peer);
    let licenses = state.licensing.issue_serials(&actor, body.into()).await?;
    Ok((StatusCode::CREATED, Json(IssuedBody { licenses })))
}

/// Query of the license listings.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LicensesQuery {
    /// Only this product.
    #[param(nullable = false)]
    pub product: Option<String>,
    /// Only this client's licenses (on `/v1/client/licenses`, the calling client's own whatever
    /// this says).
    #[param(nullable = false)]
    pub client: Option<String>,
    /// Only this order's licenses.
    #[param(nullable = false)]
    pub order: Option<String>,
    /// The rows after this cursor: the previous page's `Licet-Next`.
    #[param(nullable = false)]
    pub after: Option<String>,
    /// At most this many rows; outside 1 to 1000 is a 400 `INVALID_QUERY`.
    #[param(minimum = 1, maximum = 1000, default = 100, nullable = false)]
    pub limit: Option<i64>,
}

/// `GET /v1/admin/licenses`: a page of licenses, by key.
#[utoipa::path(
    get,
    path = "/v1/admin/licenses",
    summary = "A page of licenses, by key",
    params(LicensesQuery),
    responses((status = 200, description = "success", body = Vec<LicenseRecord>, headers(("Licet-Next" = String, description = "present when more rows exist: the `after` of the next page")))),
    security(("administrator" = []))
)]
pub async fn licenses(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<LicensesQuery>,
) -> Result<PageAnswer<LicenseRecord>, AppError> {
    let page = page_request(query.limit, query.after)?;
    let filter = LicenseFilter {
        product: query.product,
        client: query.client,
        order: query.order,
        ..LicenseFilter::default()
    };
    Ok(PageAnswer(
        state.licensing.licenses_page(filter, &page).await?,
    ))
}

/// `GET /v1/admin/licenses/{key}`: the license, its owner, the first page of its activations and
/// of its seats, and the seats held now.
#[utoipa::path(
    get,
    path = "/v1/admin/licenses/{key}",
    summary = "A license with its owner, the first page of its activations and of its seats (the next pages from .../activations and .../seats) and the seats held now",
    params(("key" = String, Path, min_length = 1, description = "the license key")),
    responses((status = 200, description = "success", body = LicenseDetail)),
    security(("administrator" = []))
)]
pub async fn license(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<LicenseDetail>, AppError> {
    Ok(Json(state.licensing.license_detail(&key).await?))
}

/// `PATCH /v1/admin/licenses/{key}` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Extend)]
pub struct ExtendBody {
    /// New expiry (RFC 3339); absent leaves it, `null` is refused.
    #[serde(default, deserialize_with = "super::extract::not_null")]
    #[schema(value_type = DateTime<Utc>)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Features to set.
    #[serde(default)]
    #[schema(schema_with = schemas::feature_map)]
    pub features: BTreeMap<String, bool>,
    /// Counters to set.
    #[serde(default, deserialize_with = "super::extract::integral_counters")]
    #[schema(schema_with = schemas::counter_map)]
    pub counters: BTreeMap<String, i64>,
    /// New seat count of a network license (more seats bought); its license server picks it up
    /// at its next revalidation.
    #[serde(default, deserialize_with = "super::extract::integral_u32")]
    #[schema(minimum = 0, maximum = 4294967295u32)]
    pub seats: Option<u32>,
}

async fn admin_decision(
    state: &AppState,
    admin: String,
    peer: &Peer,
    action: Action,
    client_dongle: Option<String>,
) -> Result<Json<DecisionBody>, AppError> {
    let caller = Caller::Administrator(admin);
    let context = RequestContext {
        actor_label: caller.label(peer),
        client_dongle,
        product: None,
        server_key: None,
    };
    let outcome = state
        .licensing
        .decide(caller.actor(), action, context)
        .await?;
    DecisionBody::from_outcome(outcome).map(Json)
}

/// `PATCH /v1/admin/licenses/{key}`: extends expiry, features or counters (`EXTENDED`).
#[utoipa::path(
    patch,
    path = "/v1/admin/licenses/{key}",
    summary = "Extend expiry, features or counters (EXTENDED)",
    params(("key" = String, Path, min_length = 1, description = "the license key")),
    request_body = ExtendBody,
    responses((status = 200, description = "success", body = DecisionBody)),
    security(("administrator" = []))
)]
pub async fn extend_license(
    State(state): State<AppState>,
    Admin(admin): Admin,
    peer: Peer,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<ExtendBody>,
) -> Result<Json<DecisionBody>, AppError> {
    let action = Action::Extend {
        key,
        expires_at: body.expires_at,
        features: body.features,
        counters: body.counters,
        seats: body.seats,
    };
    admin_decision(&state, admin, &peer, action, None).await
}

/// `POST /v1/admin/licenses/{key}/revoke` (`REVOCATION_APPLIED`).
#[utoipa::path(
    post,
    path = "/v1/admin/licenses/{key}/revoke",
    summary = "Revoke a license (REVOCATION_APPLIED)",
    params(("key" = String, Path, min_length = 1, description = "the license key")),
    responses((status = 200, description = "success", body = DecisionBody)),
    security(("administrator" = []))
)]
pub async fn revoke_license(
    State(state): State<AppState>,
    Admin(admin): Admin,
    peer: Peer,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<DecisionBody>, AppError> {
    admin_decision(&state, admin, &peer, Action::Revoke { key }, None).await
}

/// `DELETE /v1/admin/licenses/{key}/activations/{id}`: removes any activation, limited licenses
/// included (`RETURNED`).
#[utoipa::path(
    delete,
    path = "/v1/admin/licenses/{key}/activations/{id}",
    summary = "Remove any activation, limited licenses included (RETURNED)",
    params(("key" = String, Path, min_length = 1, description = "the license key"), ("id" = i64, Path, minimum = -9223372036854775808i64, maximum = 9223372036854775807i64, description = "the activation's identifier")),
    responses((status = 200, description = "success", body = DecisionBody)),
    security(("administrator" = []))
)]
pub async fn remove_activation(
    State(state): State<AppState>,
    Admin(admin): Admin,
    peer: Peer,
    ApiPath((key, id)): ApiPath<(String, i64)>,
) -> Result<Json<DecisionBody>, AppError> {
    let (action, dongle) = removal(&state, &key, id).await?;
    admin_decision(&state, admin, &peer, action, dongle).await
}

async fn removal(
    state: &AppState,
    key: &str,
    id: i64,
) -> Result<(Action, Option<String>), AppError> {
    let activation = state.licensing.license_activation(key, id).await?;
    let (machine, dongle) = binding_as_machine(&activation.activation.binding);
    Ok((
        Action::Return {
            key: key.to_owned(),
            machine,
            method: Method::Online,
            certificate_serial: None,
        },
        dongle,
    ))
}

/// `DELETE /v1/admin/licenses/{key}/seats/{session}`: force-releases a seat or borrowed seat.
#[utoipa::path(
    delete,
    path = "/v1/admin/licenses/{key}/seats/{session}",
    summary = "Force-release a seat or borrowed seat",
    params(("key" = String, Path, min_length = 1, description = "the license key"), ("session" = String, Path, min_length = 1, description = "the session holding the seat")),
    responses((status = 200, description = "success", body = DecisionBody)),
    security(("administrator" = []))
)]
pub async fn release_seat(
    State(state): State<AppState>,
    Admin(admin): Admin,
    peer: Peer,
    ApiPath((key, session)): ApiPath<(String, String)>,
) -> Result<Json<DecisionBody>, AppError> {
    let seat = state.licensing.license_seat(&key, &session).await?;
    let action = if seat.state == "borrowed" {
        Action::ReturnBorrowed {
            key,
            session,
            certificate_serial: None,
        }
    } else {
        Action::Release { key, session }
    };
    admin_decision(&state, admin, &peer, action, None).await
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

// ---- client accounts -------------------------------------------------------------------------

/// `GET /v1/client/licenses`: a page of the caller's own licenses, by key.
#[utoipa::path(
    get,
    path = "/v1/client/licenses",
    summary = "A page of the calling client's licenses, by key",
    params(LicensesQuery),
    responses((status = 200, description = "success", body = Vec<LicenseRecord>, headers(("Licet-Next" = String, description = "present when more rows exist: the `after` of the next page")))),
    security(("client" = []))
)]
pub async fn client_licenses(
    State(state): State<AppState>,
    ClientAccount(client): ClientAccount,
    ApiQuery(query): ApiQuery<LicensesQuery>,
) -> Result<PageAnswer<LicenseRecord>, AppError> {
    let page = page_request(query.limit, query.after)?;
    let filter = LicenseFilter {
        product: query.product,
        client: Some(client),
        order: query.order,
        ..LicenseFilter::default()
    };
    Ok(PageAnswer(
        state.licensing.licenses_page(filter, &page).await?,
    ))
}

fn not_owner(client: &str, key: &str) -> AppError {
    AppError::Denied {
        code: Code::AccessDenied,
        rule: "access.owner".into(),
        message: format!("client `{client}` does not own license `{key}`"),
    }
}

/// `GET /v1/client/licenses/{key}`: one of the caller's licenses.
#[utoipa::path(
    get,
    path = "/v1/client/licenses/{key}",
    summary = "One of the calling client's licenses",
    params(("key" = String, Path, min_length = 1, description = "the license key")),
    responses((status = 200, description = "success", body = LicenseDetail)),
    security(("client" = []))
)]
pub async fn client_license(
    State(state): State<AppState>,
    ClientAccount(client): ClientAccount,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<LicenseDetail>, AppError> {
    let detail = state
        .licensing
        .license_detail(&key)
        .await
        .map_err(|_| not_owner(&client, &key))?;
    if detail.owner.as_deref() != Some(client.as_str()) {
        return Err(not_owner(&client, &key));
    }
    Ok(Json(detail))
}

/// `DELETE /v1/client/licenses/{key}/activations/{id}`: removes an activation of the caller's
/// license, as the policy allows end users (`RETURNED`).
#[utoipa::path(
    delete,
    path = "/v1/client/licenses/{key}/activations/{id}",
    summary = "Remove an activation of an own license as the policy allows (RETURNED)",
    params(("key" = String, Path, min_length = 1, description = "the license key"), ("id" = i64, Path, minimum = -9223372036854775808i64, maximum = 9223372036854775807i64, description = "the activation's identifier")),
    responses((status = 200, description = "success", body = DecisionBody)),
    security(("client" = []))
)]
pub async fn client_remove_activation(
    State(state): State<AppState>,
    ClientAccount(client): ClientAccount,
    peer: Peer,
    ApiPath((key, id)): ApiPath<(String, i64)>,
) -> Result<Json<DecisionBody>, AppError> {
    let detail = state
        .licensing
        .license_detail(&key)
        .await
        .map_err(|_| not_owner(&client, &key))?;
    if detail.owner.as_deref() != Some(client.as_str()) {
        return Err(not_owner(&client, &key));
    }
    let (action, dongle) = removal(&state, &key, id).await?;
    let caller = Caller::Client(client);
    let context = RequestContext {
        actor_label: caller.label(&peer),
        client_dongle: dongle,
        product: None,
        server_key: None,
    };
    let outcome = state
        .licensing
        .decide(caller.actor(), action, context)
        .await?;
    DecisionBody::from_outcome(outcome).map(Json)
}
