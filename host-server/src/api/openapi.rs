//! The OpenAPI 3 document of the API, served at `GET /v1/openapi.json`.

use axum::Json;
use serde_json::{json, Map, Value};

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

/// Every operation of the API.
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
        "post",
        "/v1/activate",
        "Activate a license key on a machine (ACTIVATED)",
        Public,
        Some("ActivateRequest"),
        200,
        "Decision",
    ),
    op(
        "post",
        "/v1/validate",
        "Periodic validation of an activation (VALID)",
        Public,
        Some("ValidateRequest"),
        200,
        "Decision",
    ),
    op(
        "post",
        "/v1/return",
        "Return (remove) the machine's activation (RETURNED)",
        Public,
        Some("ReturnRequest"),
        200,
        "Decision",
    ),
    op(
        "post",
        "/v1/transfer",
        "Move an activation to another machine (TRANSFERRED)",
        Public,
        Some("TransferRequest"),
        200,
        "Decision",
    ),
    op(
        "post",
        "/v1/seats/checkout",
        "Take a network seat; the same session gets its seat back (SEAT_GRANTED)",
        Public,
        Some("CheckoutRequest"),
        200,
        "Decision",
    ),
    op(
        "post",
        "/v1/seats/heartbeat",
        "Renew a seat lease (LEASE_RENEWED)",
        Public,
        Some("SessionRequest"),
        200,
        "Decision",
    ),
    op(
        "post",
        "/v1/seats/release",
        "Give a seat back (SEAT_RELEASED)",
        Public,
        Some("SessionRequest"),
        200,
        "Decision",
    ),
    op(
        "post",
        "/v1/seats/borrow",
        "Borrow a seat until a date (BORROWED)",
        Public,
        Some("BorrowRequest"),
        200,
        "Decision",
    ),
    op(
        "post",
        "/v1/seats/return-borrowed",
        "Return a borrowed seat early (BORROW_RETURNED)",
        Public,
        Some("SessionRequest"),
        200,
        "Decision",
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
        "/v1/trials/start",
        "Start or resume the machine's trial (TRIAL_STARTED)",
        Public,
        Some("TrialStartRequest"),
        200,
        "Decision",
    ),
    op(
        "post",
        "/v1/trials/validate",
        "Check the machine's trial (VALID)",
        Public,
        Some("TrialValidateRequest"),
        200,
        "Decision",
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
                json!({ "type": "integer" })
            } else {
                json!({ "type": "string" })
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
            "properties": { "file": { "type": "string", "format": "binary" } } } } })
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
                json!({ "type": "integer" }),
                "the rows after this ID: the previous page's Licet-Next",
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

fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties })
}

fn schemas() -> Value {
    let string = json!({ "type": "string" });
    let time = json!({ "type": "string", "format": "date-time" });
    let machine = json!({ "type": "object", "additionalProperties": { "type": "string" },
        "description": "fingerprint components: name -> hashed value, e.g. machine-id, mac, cpu, disk" });
    let features = json!({ "type": "object", "additionalProperties": { "type": "boolean" } });
    let counters = json!({ "type": "object", "additionalProperties": { "type": "integer" } });
    let method = json!({ "type": "string", "enum": ["online", "manual"] });
    let term = json!({ "description": "\"perpetual\" or { \"rental\": { \"ends_at\": date-time } }",
        "oneOf": [ { "type": "string", "enum": ["perpetual"] },
                   { "type": "object", "properties": { "rental": { "type": "object", "properties": { "ends_at": time } } } } ] });
    let binding = json!({ "description": "{ \"fingerprint\": { name: value } } or { \"dongle\": serial }", "type": "object" });
    let license = object(
        &[
            "key",
            "product",
            "license_type",
            "edition",
            "version",
            "status",
        ],
        json!({
            "key": string, "product": string, "license_type": string, "edition": string, "version": string,
            "term": term, "seats": { "type": ["integer", "null"] }, "features": features, "counters": counters,
            "status": { "type": "string", "enum": ["enabled", "revoked"] }, "dongle": { "type": ["string", "null"] },
            "client": { "type": ["string", "null"] }, "order": { "type": ["string", "null"] },
            "limited": { "type": ["object", "null"] }, "created_at": time
        }),
    );
    let seat = object(
        &[
            "license_key",
            "session",
            "binding",
            "leased_at",
            "expires_at",
            "state",
        ],
        json!({
            "license_key": string, "session": string, "binding": binding, "leased_at": time, "expires_at": time,
            "borrowed_until": { "type": ["string", "null"], "format": "date-time" },
            "state": { "type": "string", "enum": ["held", "borrowed", "lapsed"] }
        }),
    );
    let client = object(
        &["id", "name", "has_token", "created_at"],
        json!({
            "id": string, "name": string, "has_token": { "type": "boolean" }, "created_at": time
        }),
    );
    let order = object(
        &["id", "client", "product"],
        json!({
            "id": string, "client": string, "product": string, "features": features, "counters": counters, "created_at": time
        }),
    );
    let target = object(
        &["product", "edition", "version"],
        json!({ "product": string, "edition": string, "version": string }),
    );
    json!({
        "Any": {},
        "Error": object(&["code", "message", "rule"], json!({
            "code": { "type": "string", "description": "engine code (SEATS_EXHAUSTED, ...) or API code (MALFORMED_JSON, INVALID_BODY, INVALID_QUERY, UNAUTHORIZED, ADMIN_REQUIRED, CLIENT_REQUIRED, NOT_FOUND, ROUTE_NOT_FOUND, METHOD_NOT_ALLOWED, ALREADY_EXISTS, UNKNOWN_PRODUCT, RATE_LIMITED, CONFLICT, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, STORAGE_UNAVAILABLE, INTERNAL)" },
            "message": string, "rule": string
        })),
        "Decision": object(&["verdict", "code", "rule", "message"], json!({
            "verdict": { "type": "string", "enum": ["allow"] }, "code": string, "rule": string, "message": string,
            "certificate": { "type": "string", "description": "armored signed certificate (-----BEGIN LICET CERTIFICATE-----)" },
            "claims": { "type": "object", "description": "the certificate's claims, for display; verify the certificate" },
            "lease_expires_at": time,
            "server_license": { "type": "string", "description": "armored vendor-signed server license (-----BEGIN LICET SERVER LICENSE-----): granted to a license server, or the license a license server's certificate is signed under" }
        })),
        "ServerActivateRequest": object(&["key", "target", "machine", "server_key"], json!({ "key": string, "target": reference("Target"), "machine": machine, "server_key": { "type": "string", "description": "the license server's Ed25519 public key, base64 of 32 bytes" }, "dongle": reference("DongleProof") })),
        "ServerLicenseRequest": object(&["key", "machine", "server_key"], json!({ "key": string, "machine": machine, "server_key": { "type": "string", "description": "the license server's Ed25519 public key, base64 of 32 bytes" }, "dongle": reference("DongleProof") })),
        "Target": target,
        "ActivateRequest": object(&["key", "target", "machine"], json!({ "key": string, "target": reference("Target"), "machine": machine, "method": method, "dongle": reference("DongleProof") })),
        "ValidateRequest": object(&["key", "machine"], json!({ "key": string, "machine": machine, "dongle": reference("DongleProof") })),
        "ReturnRequest": object(&["key", "machine"], json!({ "key": string, "machine": machine, "method": method, "dongle": reference("DongleProof") })),
        "DongleProof": object(&["challenge", "proof"], json!({ "challenge": string, "proof": string })),
        "DongleChallenge": object(&["challenge", "expires_at"], json!({ "challenge": string, "expires_at": { "type": "string", "format": "date-time" } })),
        "TransferRequest": object(&["key", "from", "to"], json!({ "key": string, "from": machine, "to": machine })),
        "CheckoutRequest": object(&["key", "target", "machine", "session"], json!({ "key": string, "target": reference("Target"), "machine": machine, "session": string })),
        "SessionRequest": object(&["key", "session"], json!({ "key": string, "session": string })),
        "BorrowRequest": object(&["key", "target", "machine", "session", "until"], json!({ "key": string, "target": reference("Target"), "machine": machine, "session": string, "until": time })),
        "TrialStartRequest": object(&["target", "machine"], json!({ "target": reference("Target"), "machine": machine })),
        "TrialValidateRequest": object(&["product", "machine"], json!({ "product": string, "machine": machine })),
        "Health": object(&["status", "storage", "products"], json!({ "status": string, "storage": { "type": "string", "enum": ["sqlite", "postgres"] }, "products": { "type": "array", "items": string } })),
        "PublicKey": object(&["public_key"], json!({ "public_key": string, "server_key": { "type": "string", "description": "a license server's own public key, which signs the certificates it serves" } })),
        "SeatQuery": object(&["licenses"], json!({ "licenses": { "type": "array", "items": object(
            &["key", "product", "edition", "version", "seats", "free", "borrowed", "borrow_max_days", "expires_at", "status"],
            json!({ "key": string, "product": string, "edition": string, "version": string,
                    "seats": { "type": "integer" },
                    "free": { "type": "integer", "description": "the pool less the seats held now, as the store counts them; 0 while not serving" },
                    "borrowed": { "type": "integer", "description": "seats borrowed now, counted up to 1000" },
                    "borrow_max_days": { "type": ["integer", "null"] },
                    "expires_at": { "type": ["string", "null"], "format": "date-time" },
                    "status": { "type": "string", "description": "`serving`, or `CODE: why` (SERVER_LICENSE_INVALID, SERVER_LICENSE_EXPIRED, REVOKED)" } })) } })),
        "ProductList": { "type": "array", "items": object(&["id", "name", "version", "editions", "model"], json!({
            "id": string, "name": string, "version": string, "editions": { "type": "array", "items": string },
            "model": { "type": "string", "enum": ["standard", "web"] }, "activations_per_serial": { "type": ["integer", "null"] },
            "features": features, "counters": counters, "license_types": { "type": "object" }, "policy": string })) },
        "NewToken": object(&["name"], json!({ "name": string })),
        "Token": object(&["token"], json!({ "token": string })),
        "Client": client,
        "ClientList": { "type": "array", "items": reference("Client") },
        "Password": object(&["password"], json!({ "password": { "type": "string", "minLength": 10, "maxLength": 256 } })),
        "NewClient": object(&["id", "name"], json!({ "id": string, "name": string })),
        "NewClientAnswer": object(&["client", "token"], json!({ "client": reference("Client"), "token": string })),
        "Order": order,
        "OrderList": { "type": "array", "items": reference("Order") },
        "NewOrder": object(&["client", "product"], json!({ "id": string, "client": string, "product": string, "features": features, "counters": counters })),
        "Features": object(&[], json!({ "features": features, "counters": counters })),
        "License": license,
        "LicenseList": { "type": "array", "items": reference("License") },
        "NewLicenses": object(&["product", "license_type", "edition"], json!({
            "product": string, "license_type": string, "edition": string, "version": string, "order": string, "client": string,
            "term": term, "seats": { "type": "integer" }, "features": features, "counters": counters, "dongle": string,
            "key": string, "count": { "type": "integer", "minimum": 1, "maximum": 1000 } })),
        "Issued": object(&["licenses"], json!({ "licenses": reference("LicenseList") })),
        "LicenseDetail": { "allOf": [ reference("License"), object(&["activations", "seats", "seats_held"], json!({
            "owner": { "type": ["string", "null"] },
            "activations": { "description": "the first 100, by ID", "allOf": [reference("ActivationList")] },
            "activations_next": { "type": ["string", "null"], "description": "when there are more: the `after` of the next page of /v1/admin/licenses/{key}/activations" },
            "seats": { "description": "the first 100 leases, by session", "allOf": [reference("SeatList")] },
            "seats_next": { "type": ["string", "null"], "description": "when there are more: the `after` of the next page of /v1/admin/licenses/{key}/seats" },
            "seats_held": { "type": "integer", "description": "seats held or borrowed now, as the store counts them" } })) ] },
        "ActivationList": { "type": "array", "items": object(&["id", "binding", "activated_at"], json!({ "id": { "type": "integer" }, "binding": binding, "activated_at": time })) },
        "Extend": object(&[], json!({ "expires_at": time, "features": features, "counters": counters, "seats": { "type": ["integer", "null"], "minimum": 0, "maximum": 1000000 } })),
        "Seat": seat,
        "SeatList": { "type": "array", "items": reference("Seat") },
        "AuditList": { "type": "array", "items": object(&["id", "at", "actor", "action", "verdict", "code", "rule", "message", "detail"], json!({
            "id": { "type": "integer" }, "at": time, "actor": string, "action": string, "license_key": { "type": ["string", "null"] },
            "verdict": { "type": "string", "enum": ["allow", "deny"] }, "code": string, "rule": string, "message": string,
            "detail": { "type": "string", "description": "JSON text" } })) }
    })
}

/// The OpenAPI document.
pub fn openapi() -> Value {
    let mut paths = Map::new();
    for item in OPERATIONS {
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
            "schemas": schemas(),
            "securitySchemes": {
                "administrator": { "type": "http", "scheme": "bearer", "description": "administrator token" },
                "client": { "type": "http", "scheme": "bearer", "description": "client account token" }
            }
        }
    })
}

/// `GET /v1/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(openapi())
}
