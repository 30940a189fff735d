//! Orders: creating them, listing them and setting their features and counters.

use super::*;

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
    #[serde(default, deserialize_with = "crate::api::extract::integral_counters")]
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
    #[serde(default, deserialize_with = "crate::api::extract::integral_counters")]
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
