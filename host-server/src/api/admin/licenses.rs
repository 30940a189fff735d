//! Licenses: issuing keys and serials, listing them, and the administrator's decisions on one
//! (extending, revoking, removing an activation, releasing a seat).

use super::*;

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
    #[serde(default, deserialize_with = "crate::api::extract::integral_u32")]
    #[schema(minimum = 0, maximum = 4294967295u32)]
    pub seats: Option<u32>,
    /// License-level features.
    #[serde(default)]
    #[schema(schema_with = schemas::feature_map)]
    pub features: BTreeMap<String, bool>,
    /// License-level counters.
    #[serde(default, deserialize_with = "crate::api::extract::integral_counters")]
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
    #[serde(default, deserialize_with = "crate::api::extract::integral_u32")]
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
    #[serde(default, deserialize_with = "crate::api::extract::not_null")]
    #[schema(value_type = DateTime<Utc>)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Features to set.
    #[serde(default)]
    #[schema(schema_with = schemas::feature_map)]
    pub features: BTreeMap<String, bool>,
    /// Counters to set.
    #[serde(default, deserialize_with = "crate::api::extract::integral_counters")]
    #[schema(schema_with = schemas::counter_map)]
    pub counters: BTreeMap<String, i64>,
    /// New seat count of a network license (more seats bought); its license server picks it up
    /// at its next revalidation.
    #[serde(default, deserialize_with = "crate::api::extract::integral_u32")]
    #[schema(minimum = 0, maximum = 4294967295u32)]
    pub seats: Option<u32>,
}

/// Decides `action` for `caller`, answering the decision or its refusal.
pub(super) async fn decide_as(
    state: &AppState,
    caller: Caller,
    peer: &Peer,
    action: Action,
    client_dongle: Option<String>,
) -> Result<Json<DecisionBody>, AppError> {
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
    decide_as(&state, Caller::Administrator(admin), &peer, action, None).await
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
    decide_as(
        &state,
        Caller::Administrator(admin),
        &peer,
        Action::Revoke { key },
        None,
    )
    .await
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
    decide_as(&state, Caller::Administrator(admin), &peer, action, dongle).await
}

pub(super) async fn removal(
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
    decide_as(&state, Caller::Administrator(admin), &peer, action, None).await
}
