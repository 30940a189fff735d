//! How the administrator API answers a page of a listing: the page's rows as a JSON array, and
//! the `after` cursor of the next page in the [`NEXT_HEADER`] header when more rows exist (absent
//! on the last page). The listings of one license's activations and seats are here too.

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::error::AppError;
use super::extract::{Admin, ApiPath, ApiQuery};
use super::AppState;
use crate::admin::SeatView;
use crate::listing::{Page, PageRequest};
use crate::store::ActivationRecord;

/// The response header naming the `after` cursor of the next page.
pub const NEXT_HEADER: &str = "licet-next";

/// A page as an answer: the rows as a JSON array, the next cursor in [`NEXT_HEADER`].
#[derive(Debug, Clone)]
pub struct PageAnswer<T>(pub Page<T>);

impl<T: Serialize> IntoResponse for PageAnswer<T> {
    fn into_response(self) -> Response {
        let Page { items, next } = self.0;
        let mut response = Json(items).into_response();
        if let Some(value) = next.and_then(|next| HeaderValue::from_str(&next).ok()) {
            response.headers_mut().insert(NEXT_HEADER, value);
        }
        response
    }
}

/// The page asked for by a listing's `limit` and `after` parameters; a limit outside 1 to 1000
/// is a 400 `INVALID_QUERY`.
pub fn page_request(limit: Option<i64>, after: Option<String>) -> Result<PageRequest, AppError> {
    Ok(PageRequest::new(limit, after)?)
}

/// Query of the listings that take only a page: `limit` and `after`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The rows after this cursor: the previous page's `Licet-Next`.
    #[param(nullable = false)]
    pub after: Option<String>,
    /// At most this many rows; outside 1 to 1000 is a 400 `INVALID_QUERY`.
    #[param(minimum = 1, maximum = 1000, default = 100, nullable = false)]
    pub limit: Option<i64>,
}

/// Query of a listing by stored identifier: `limit` and an `after` identifier.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IdPageQuery {
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

impl IdPageQuery {
    /// The page asked for.
    pub fn page(self) -> Result<PageRequest, AppError> {
        page_request(self.limit, self.after.map(|after| after.to_string()))
    }
}

impl PageQuery {
    /// The page asked for.
    pub fn page(self) -> Result<PageRequest, AppError> {
        page_request(self.limit, self.after)
    }
}

/// `GET /v1/admin/licenses/{key}/activations`: the license's activations, by identifier.
#[utoipa::path(
    get,
    path = "/v1/admin/licenses/{key}/activations",
    summary = "A page of a license's activations, by ID",
    params(("key" = String, Path, min_length = 1, description = "the license key"), IdPageQuery),
    responses((status = 200, description = "success", body = Vec<ActivationRecord>, headers(("Licet-Next" = String, description = "present when more rows exist: the `after` of the next page")))),
    security(("administrator" = []))
)]
pub async fn license_activations(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(key): ApiPath<String>,
    ApiQuery(query): ApiQuery<IdPageQuery>,
) -> Result<PageAnswer<ActivationRecord>, AppError> {
    let page = query.page()?;
    Ok(PageAnswer(
        state.licensing.activations_page(&key, &page).await?,
    ))
}

/// `GET /v1/admin/licenses/{key}/seats`: the license's seat leases and borrows, by session.
#[utoipa::path(
    get,
    path = "/v1/admin/licenses/{key}/seats",
    summary = "A page of a license's seat leases and borrows (lapsed ones until swept), by session",
    params(("key" = String, Path, min_length = 1, description = "the license key"), PageQuery),
    responses((status = 200, description = "success", body = Vec<SeatView>, headers(("Licet-Next" = String, description = "present when more rows exist: the `after` of the next page")))),
    security(("administrator" = []))
)]
pub async fn license_seats(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(key): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<PageAnswer<SeatView>, AppError> {
    let page = query.page()?;
    Ok(PageAnswer(
        state.licensing.license_seats_page(&key, &page).await?,
    ))
}
