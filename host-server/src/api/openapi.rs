//! The OpenAPI 3 document of the API, served at `GET /v1/openapi.json`.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Map, Value};

use super::enduser::DECISION_ROUTES;
use super::AppState;
use crate::service::Policies;

mod schemas;
use schemas::schemas;

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (an end user authenticates with the license key in the body; a client or
    /// administrator token may be sent to act as that account).
    Public,
    /// Administrator bearer token.
    Admin,
    /// Client account bearer token.
    Client,
}

/// One documented operation.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    /// `get`, `post`, `patch` or `delete`.
    pub method: &'static str,
    /// Path with `{parameters}`.
    pub path: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Schema of the JSON body, if any.
    pub request: Option<&'static str>,
    /// Status of success.
    pub status: u16,
    /// Schema of the success body.
    pub response: &'static str,
    /// Query parameters.
    pub query: &'static [&'static str],
}

const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    access: Access,
    request: Option<&'static str>,
    status: u16,
    response: &'static str,
) -> Operation {
    Operation {
        method,
        path,
        summary,
        access,
        request,
        status,
        response,
        query: &[],
    }
}

use Access::{Admin, Client, Public};

/// The operations of the API besides the end-user decision routes (see [`operations`]).
pub const OPERATIONS: &[Operation] = &[
    op(
        "get",
        "/v1/health",
        "Server status and licensed products",
        Public,
        None,
        200,
        "Health",
    ),
    op(
        "get",
        "/v1/openapi.json",
        "This document",
        Public,
        None,
        200,
        "Any",
    ),
    op(
        "get",
        "/v1/public-key",
        "The vendor public key that verifies certificates",
        Public,
        None,
        200,
        "PublicKey",
    ),
    op(
        "get",
        "/v1/seats/query",
        "What a license server serves: each network license with its free and borrowed seats, \
         counted by the store whatever the size of the pool (no lease is listed)",
        Public,
        None,
        200,
        "SeatQuery",
    ),
    op(
        "post",
        "/v1/server/activate",
        "Activate a license server with a network license key (ACTIVATED + server license)",
        Public,
        Some("ServerActivateRequest"),
        200,
        "Decision",
    ),
    op(
        "post",
        "/v1/server/validate",
        "Revalidate a license server's server license (VALID + a fresh server license)",
        Public,
        Some("ServerLicenseRequest"),
        200,
        "Decision",
    ),
    op(
        "post",
        "/v1/server/return",
        "Return a license server's activation before it moves (RETURNED)",
        Public,
        Some("ServerLicenseRequest"),
        200,
        "Decision",
    ),
    op(
        "post",
        "/v1/dongle/challenge",
        "A challenge for the machine's dongle to sign (standalone dongle licenses)",
        Public,
        None,
        200,
        "DongleChallenge",
    ),
    op(
        "get",
        "/metrics",
        "Prometheus metrics of this server (OpenMetrics text)",
        Admin,
        None,
        200,
        "Metrics",
    ),
    op(
        "get",
        "/v1/admin/products",
        "Licensed products, their editions, license types, features and counters",
        Admin,
        None,
        200,
        "ProductList",
    ),
    op(
        "post",
        "/v1/admin/tokens",
        "Create an administrator token (shown once)",
        Admin,
        Some("NewToken"),
        201,
        "Token",
    ),
    Operation {
        query: &["after", "limit"],
        ..op(
            "get",
            "/v1/admin/clients",
            "A page of client accounts, by identifier",
            Admin,
            None,
            200,
            "ClientList",
        )
    },
    op(
        "post",
        "/v1/admin/clients",
        "Create a client account and its token (shown once)",
        Admin,
        Some("NewClient"),
        201,
        "NewClientAnswer",
    ),
    op(
        "get",
        "/v1/admin/clients/{id}",
        "One client account",
        Admin,
        None,
        200,
        "Client",
    ),
    op(
        "post",
        "/v1/admin/clients/{id}/token",
        "Replace a client's token (shown once)",
        Admin,
        None,
        200,
        "Token",
    ),
    op(
        "post",
        "/v1/admin/clients/{id}/password",
        "Set a client's password of the client interface (hashed with argon2id)",
        Admin,
        Some("Password"),
        200,
        "Client",
    ),
    op(
        "delete",
        "/v1/admin/clients/{id}/password",
        "Remove a client's password (it signs in with its token only)",
        Admin,
        None,
        200,
        "Client",
    ),
    Operation {
        query: &["client", "after", "limit"],
        ..op(
            "get",
            "/v1/admin/orders",
            "A page of orders, by identifier",
            Admin,
            None,
            200,
            "OrderList",
        )
    },
    op(
        "post",
        "/v1/admin/orders",
        "Create an order for a client (standard model)",
        Admin,
        Some("NewOrder"),
        201,
        "Order",
    ),
    op(
        "get",
        "/v1/admin/orders/{id}",
        "One order",
        Admin,
        None,
        200,
        "Order",
    ),
    op(
        "patch",
        "/v1/admin/orders/{id}",
        "Set order-level features and counters",
        Admin,
        Some("Features"),
        200,
        "Order",
    ),
    Operation {
        query: &["product", "client", "order", "after", "limit"],
        ..op(
            "get",
            "/v1/admin/licenses",
            "A page of licenses, by key",
            Admin,
            None,
            200,
            "LicenseList",
        )
    },
    op(
        "post",
        "/v1/admin/licenses",
        "Issue license keys",
        Admin,
        Some("NewLicenses"),
        201,
        "Issued",
    ),
    op(
        "post",
        "/v1/admin/serials",
        "Issue serial numbers (web model)",
        Admin,
        Some("NewLicenses"),
        201,
        "Issued",
    ),
    op(
        "get",
        "/v1/admin/licenses/{key}",
        "A license with its owner, the first page of its activations and of its seats (the \
         next pages from .../activations and .../seats) and the seats held now",
        Admin,
        None,
        200,
        "LicenseDetail",
    ),
    Operation {
        query: &["after", "limit"],
        ..op(
            "get",
            "/v1/admin/licenses/{key}/activations",
            "A page of a license's activations, by ID",
            Admin,
            None,
            200,
            "ActivationList",
        )
    },
    Operation {
        query: &["after", "limit"],
        ..op(
            "get",
            "/v1/admin/licenses/{key}/seats",
            "A page of a license's seat leases and borrows (lapsed ones until swept), by session",
            Admin,
            None,
            200,
            "SeatList",
        )
    },
    op(
        "patch",
        "/v1/admin/licenses/{key}",
        "Extend expiry, features or counters (EXTENDED)",
        Admin,
        Some("Extend"),
        200,
        "Decision",
    ),
    op(
        "post",
        "/v1/admin/licenses/{key}/revoke",
        "Revoke a license (REVOCATION_APPLIED)",
        Admin,
        None,
        200,
        "Decision",
    ),
    op(
        "delete",
        "/v1/admin/licenses/{key}/activations/{id}",
        "Remove any activation, limited licenses included (RETURNED)",
        Admin,
        None,
        200,
        "Decision",
    ),
    op(
        "delete",
        "/v1/admin/licenses/{key}/seats/{session}",
        "Force-release a seat or borrowed seat",
        Admin,
        None,
        200,
        "Decision",
    ),
    Operation {
        query: &["product", "after", "limit"],
        ..op(
            "get",
            "/v1/admin/seats",
            "A page of the seats held and borrowed now, by license key then session (cursor \
             `LICENSE-KEY/SESSION`)",
            Admin,
            None,
            200,
            "SeatList",
        )
    },
    Operation {
        query: &["license", "after", "limit"],
        ..op(
            "get",
            "/v1/admin/audit",
            "A page of the append-only audit log, oldest first",
            Admin,
            None,
            200,
            "AuditList",
        )
    },
    Operation {
        query: &["product", "order", "after", "limit"],
        ..op(
            "get",
            "/v1/client/licenses",
            "A page of the calling client's licenses, by key",
            Client,
            None,
            200,
            "LicenseList",
        )
    },
    op(
        "get",
        "/v1/exchange",
        "The manual activation web page (HTML upload form)",
        Public,
        None,
        200,
        "HtmlPage",
    ),
    op(
        "post",
        "/v1/exchange",
        "Answer an activation or return request file with the signed response file",
        Public,
        Some("ExchangeFile"),
        200,
        "ExchangeFile",
    ),
    op(
        "post",
        "/v1/exchange/upload",
        "The upload form's target: multipart field `file`; answers the response file",
        Public,
        Some("Upload"),
        200,
        "ExchangeFile",
    ),
    op(
        "post",
        "/v1/transport/{name}",
        "A request through the transport plugin `name`, in its own encoding: an end-user request envelope or an exchange request file (see docs/plugins.md)",
        Public,
        Some("Any"),
        200,
        "Any",
    ),
    op(
        "get",
        "/v1/client/licenses/{key}",
        "One of the calling client's licenses",
        Client,
        None,
        200,
        "LicenseDetail",
    ),
    op(
        "delete",
        "/v1/client/licenses/{key}/activations/{id}",
        "Remove an activation of an own license as the policy allows (RETURNED)",
        Client,
        None,
        200,
        "Decision",
    ),
];

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let schema = if name == "id" && path.contains("/activations/") {
                json!({ "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX })
            } else {
                json!({ "type": "string", "minLength": 1 })
            };
            json!({ "name": name, "in": "path", "required": true, "schema": schema })
        })
        .collect()
}

/// The media type and schema of a body named `name`.
fn content(name: &str) -> Value {
    match name {
        "ExchangeFile" => {
            json!({ "application/xml": { "schema": { "type": "string", "description": "an exchange file (see docs/exchange-files.md)" } } })
        }
        "HtmlPage" => json!({ "text/html": { "schema": { "type": "string" } } }),
        "Metrics" => json!({ crate::metrics::CONTENT_TYPE: { "schema": { "type": "string" } } }),
        "Upload" => {
            json!({ "multipart/form-data": { "schema": { "type": "object", "required": ["file"],
            "properties": { "file": { "type": "string", "format": "binary" } },
            "additionalProperties": false } } })
        }
        _ => json!({ "application/json": { "schema": reference(name) } }),
    }
}

fn operation(operation: &Operation) -> Value {
    let mut parameters = path_parameters(operation.path);
    let by_id = operation.path.ends_with("audit") || operation.path.ends_with("activations");
    parameters.extend(operation.query.iter().map(|name| {
        let (schema, description) = match *name {
            "limit" => (
                json!({ "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 }),
                "at most this many rows; outside 1 to 1000 is a 400 INVALID_QUERY",
            ),
            "after" if by_id => (
                json!({ "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX }),
                "the rows after this ID: the previous page's Licet-Next",
            ),
            "after" if operation.path == "/v1/admin/seats" => (
                json!({ "type": "string", "pattern": "^$|/" }),
                "the rows after this cursor (`LICENSE-KEY/SESSION`): the previous page's Licet-Next",
            ),
            "after" => (
                json!({ "type": "string" }),
                "the rows after this cursor: the previous page's Licet-Next",
            ),
            _ => (json!({ "type": "string" }), "filter"),
        };
        json!({ "name": name, "in": "query", "required": false, "schema": schema,
                "description": description })
    }));
    let paged = operation.query.contains(&"limit");
    let mut value = json!({
        "summary": operation.summary,
        "parameters": parameters,
        "responses": {
            operation.status.to_string(): {
                "description": "success",
                "content": content(operation.response)
            },
            "default": {
                "description": "refusal: an engine code (403, 404, 409, 422, 503) or an API code (400, 401, 405, 413, 415, 429, 500)",
                "content": { "application/json": { "schema": reference("Error") } }
            }
        }
    });
    if paged {
        value["responses"][operation.status.to_string()]["headers"] = json!({ "Licet-Next": {
            "description": "present when more rows exist: the `after` of the next page",
            "schema": { "type": "string" } } });
    }
    if let Some(request) = operation.request {
        value["requestBody"] = json!({ "required": true, "content": content(request) });
    }
    match operation.access {
        Access::Public => {}
        Access::Admin => value["security"] = json!([{ "administrator": [] }]),
        Access::Client => value["security"] = json!([{ "client": [] }]),
    }
    value
}

/// Every documented operation: the end-user decision routes of
/// [`DECISION_ROUTES`](super::enduser::DECISION_ROUTES), which the router is made from too, and
/// [`OPERATIONS`].
pub fn operations() -> Vec<Operation> {
    let decisions = DECISION_ROUTES.iter().map(|route| {
        op(
            "post",
            route.path,
            route.summary,
            Access::Public,
            Some(route.schema),
            200,
            "Decision",
        )
    });
    decisions.chain(OPERATIONS.iter().copied()).collect()
}

/// The OpenAPI document of a server licensing `policies` (products, editions, license types,
/// features and counters are named as they declare them).
pub fn openapi(policies: &Policies) -> Value {
    let mut paths = Map::new();
    for item in &operations() {
        let entry = paths
            .entry(item.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[item.method] = operation(item);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Licet server API",
            "version": "1",
            "description": "Activation center and network license server. Allowed requests answer a Decision; every refusal answers an Error with an engine or API code."
        },
        "paths": paths,
        "components": {
            "schemas": schemas(policies),
            "securitySchemes": {
                "administrator": { "type": "http", "scheme": "bearer", "description": "administrator token" },
                "client": { "type": "http", "scheme": "bearer", "description": "client account token" }
            }
        }
    })
}

/// `GET /v1/openapi.json`.
pub async fn document(State(state): State<AppState>) -> Json<Value> {
    Json(openapi(state.licensing.policies()))
}
