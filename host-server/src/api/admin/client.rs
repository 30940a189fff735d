//! The client account routes (`/v1/client/...`, client bearer token): the caller's own licenses
//! and the removal of their activations.

use super::*;

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

/// License `key` when `client` owns it; a license it does not own and one that does not exist
/// get the same refusal.
async fn owned_license(
    state: &AppState,
    client: &str,
    key: &str,
) -> Result<LicenseDetail, AppError> {
    let detail = state
        .licensing
        .license_detail(key)
        .await
        .map_err(|_| not_owner(client, key))?;
    if detail.owner.as_deref() != Some(client) {
        return Err(not_owner(client, key));
    }
    Ok(detail)
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
    owned_license(&state, &client, &key).await.map(Json)
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
    owned_license(&state, &client, &key).await?;
    let (action, dongle) = removal(&state, &key, id).await?;
    decide_as(&state, Caller::Client(client), &peer, action, dongle).await
}
