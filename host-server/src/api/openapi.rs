//! The OpenAPI 3.1 document of the API, served at `GET /v1/openapi.json`.
//!
//! The document is made with the router: every route of [`super::api`] is a handler with its
//! `#[utoipa::path]` (or, for the end-user decision routes, the path item made from
//! [`DECISION_ROUTES`](super::enduser::DECISION_ROUTES) beside the route), and every schema is
//! derived from the body type the handler reads or writes. The names the loaded policies
//! declare are filled in when the document is served ([`schemas::Declared`]).

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use serde_json::Value;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, RefOr, ResponseBuilder,
};
use utoipa::{PartialSchema as _, ToSchema as _};

use super::error::{AppError, ErrorBody};
use super::AppState;
use crate::service::Policies;

pub mod schemas;

/// The description of the refusal every operation may answer.
const REFUSAL: &str = "refusal: an engine code (403, 404, 409, 422, 503) or an API code (400, \
                       401, 405, 413, 415, 429, 500)";

/// The document's information, its security schemes and the error schema, before the routes
/// add their operations.
pub(crate) fn base() -> OpenApi {
    let bearer = |description: &str| {
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(description))
                .build(),
        )
    };
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Licet server API")
                .version("1")
                .description(Some(
                    "Activation center and network license server. Allowed requests answer a \
                     Decision; every refusal answers an Error with an engine or API code.",
                ))
                .build(),
        )
        .components(Some(
            ComponentsBuilder::new()
                .schema(ErrorBody::name(), ErrorBody::schema())
                .security_scheme("administrator", bearer("administrator token"))
                .security_scheme("client", bearer("client account token"))
                .build(),
        ))
        .build()
}

/// Adds the refusal answer to every operation of `document`.
fn add_refusals(document: &mut OpenApi) {
    let refusal = ResponseBuilder::new()
        .description(REFUSAL)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(schemas::reference::<ErrorBody>()))
                .build(),
        )
        .build();
    for item in document.paths.paths.values_mut() {
        let operations: [&mut Option<Operation>; 8] = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            operation
                .responses
                .responses
                .insert("default".to_owned(), RefOr::T(refusal.clone()));
        }
    }
}

/// The document the routes made, which `GET /v1/openapi.json` serves with the names the loaded
/// policies declare.
#[derive(Clone)]
pub struct Document(Arc<OpenApi>);

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document")
            .field("paths", &self.0.paths.paths.len())
            .finish_non_exhaustive()
    }
}

impl Document {
    /// The document of `api`'s routes, with the refusal every operation may answer.
    pub(crate) fn new(mut document: OpenApi) -> Document {
        add_refusals(&mut document);
        Document(Arc::new(document))
    }

    /// The document as JSON for a server licensing `policies`: the products, versions,
    /// editions, license types, features and counters as they declare them.
    pub fn for_policies(&self, policies: &Policies) -> Result<Value, serde_json::Error> {
        let mut value = serde_json::to_value(self.0.as_ref())?;
        schemas::Declared::of(policies).fill(&mut value);
        Ok(value)
    }
}

/// The OpenAPI document of a server licensing `policies`, as `GET /v1/openapi.json` serves it.
pub fn openapi(policies: &Policies) -> Result<Value, serde_json::Error> {
    let (_, document) = super::api().split_for_parts();
    Document::new(document).for_policies(policies)
}

/// `GET /v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    summary = "This document",
    responses((status = 200, description = "success", body = Value))
)]
pub async fn document(
    State(state): State<AppState>,
    Extension(document): Extension<Document>,
) -> Result<Json<Value>, AppError> {
    document
        .for_policies(state.licensing.policies())
        .map(Json)
        .map_err(|error| AppError::Internal(format!("the OpenAPI document: {error}")))
}
