//! The schemas of the OpenAPI document: answers as the server writes them, requests with the
//! limits the server checks (`crate::fields`, identifiers, base64 keys and proofs) and the names
//! the loaded policies declare.

use serde_json::{json, Value};

use super::reference;
use crate::fields::{MAX_COMPONENTS, MAX_FIELD};
use crate::service::Policies;

/// Canonical base64 of 32 bytes: 43 characters, the last of them with its two low bits clear,
/// and one `=`.
const BASE64_32: &str = "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$";

/// An object of an answer.
fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties })
}

/// An object of a request: any other property is refused.
fn closed(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties,
            "additionalProperties": false })
}

/// What the loaded policies declare, across products.
#[derive(Debug, Default)]
struct Declared {
    products: Vec<String>,
    versions: Vec<String>,
    editions: Vec<String>,
    license_types: Vec<String>,
    features: Vec<String>,
    counters: Vec<String>,
}

impl Declared {
    fn of(policies: &Policies) -> Declared {
        let mut declared = Declared::default();
        for policy in policies.values() {
            declared.products.push(policy.product.id.clone());
            declared.versions.push(policy.product.version.clone());
            declared
                .editions
                .extend(policy.product.editions.iter().cloned());
            declared
                .license_types
                .extend(policy.license_types.keys().cloned());
            declared
                .features
                .extend(policy.product.features.keys().cloned());
            declared
                .counters
                .extend(policy.product.counters.keys().cloned());
        }
        for names in [
            &mut declared.products,
            &mut declared.versions,
            &mut declared.editions,
            &mut declared.license_types,
            &mut declared.features,
            &mut declared.counters,
        ] {
            names.sort();
            names.dedup();
        }
        declared
    }
}

/// The API's field limit: 1 to `MAX_FIELD` characters.
fn field() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": MAX_FIELD })
}

/// A field that may be left out or sent as `null`.
fn optional_field() -> Value {
    json!({ "type": ["string", "null"], "minLength": 1, "maxLength": MAX_FIELD })
}

/// An identifier of a client, an order or a token's holder.
fn identifier() -> Value {
    json!({ "type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$" })
}

/// The schemas of the document, for a server licensing `policies`.
pub(super) fn schemas(policies: &Policies) -> Value {
    let declared = Declared::of(policies);
    let string = json!({ "type": "string" });
    let key = field();
    let session = field();
    let product = json!({ "type": "string", "enum": declared.products });
    let edition = json!({ "type": "string", "enum": declared.editions });
    let input_machine = json!({ "type": "object", "minProperties": 1, "maxProperties": MAX_COMPONENTS,
        "propertyNames": { "minLength": 1, "maxLength": MAX_FIELD },
        "additionalProperties": field(),
        "description": "fingerprint components: name -> hashed value, e.g. machine-id, mac, cpu, disk" });
    let input_features = json!({ "type": "object", "propertyNames": { "enum": declared.features },
        "additionalProperties": { "type": "boolean" } });
    let input_counters = json!({ "type": "object", "propertyNames": { "enum": declared.counters },
        "additionalProperties": { "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX } });
    let input_method = json!({ "type": ["string", "null"], "enum": ["online", "manual", null] });
    let strict_time = json!({ "type": "string", "format": "date-time" });
    let input_term = json!({ "description": "\"perpetual\" or { \"rental\": { \"ends_at\": date-time } }",
        "oneOf": [ { "type": "string", "enum": ["perpetual"] },
                   { "type": "object", "required": ["rental"], "additionalProperties": false,
                     "properties": { "rental": { "type": "object", "required": ["ends_at"], "properties": { "ends_at": strict_time } } } } ] });
    let serial = optional_field();
    let server_key = json!({ "type": "string", "pattern": BASE64_32,
        "description": "the license server's Ed25519 public key, base64 of 32 bytes" });
    let dongle_proof =
        json!({ "oneOf": [ { "type": "null" }, { "$ref": "#/components/schemas/DongleProof" } ] });
    let time = json!({ "type": "string", "format": "date-time" });
    let features = json!({ "type": "object", "additionalProperties": { "type": "boolean" } });
    let counters = json!({ "type": "object", "additionalProperties": { "type": "integer" } });
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
    let mut license_detail = license.clone();
    if let Some(properties) = license_detail["properties"].as_object_mut() {
        properties.remove("seats");
        for (name, schema) in [
            (
                "seat_count",
                json!({ "type": ["integer", "null"], "description": "seats of a network license (the license's `seats`; null: the type's default)" }),
            ),
            ("owner", json!({ "type": ["string", "null"] })),
            (
                "activations",
                json!({ "description": "the first 100, by ID", "allOf": [reference("ActivationList")] }),
            ),
            (
                "activations_next",
                json!({ "type": ["string", "null"], "description": "when there are more: the `after` of the next page of /v1/admin/licenses/{key}/activations" }),
            ),
            (
                "seats",
                json!({ "description": "the first 100 leases, by session", "allOf": [reference("SeatList")] }),
            ),
            (
                "seats_next",
                json!({ "type": ["string", "null"], "description": "when there are more: the `after` of the next page of /v1/admin/licenses/{key}/seats" }),
            ),
            (
                "seats_held",
                json!({ "type": "integer", "description": "seats held or borrowed now, as the store counts them" }),
            ),
        ] {
            properties.insert(name.to_owned(), schema);
        }
    }
    if let Some(required) = license_detail["required"].as_array_mut() {
        required.extend(["activations", "seats", "seats_held"].map(Value::from));
    }
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
    json!({
        "Any": {},
        "Error": object(&["code", "message", "rule"], json!({
            "code": { "type": "string", "description": "engine code (SEATS_EXHAUSTED, ...) or API code (MALFORMED_JSON, MALFORMED_BODY, INVALID_BODY, INVALID_QUERY, UNAUTHORIZED, ADMIN_REQUIRED, CLIENT_REQUIRED, NOT_FOUND, ROUTE_NOT_FOUND, METHOD_NOT_ALLOWED, ALREADY_EXISTS, UNKNOWN_PRODUCT, RATE_LIMITED, CONFLICT, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, STORAGE_UNAVAILABLE, INTERNAL)" },
            "message": string, "rule": string
        })),
        "Decision": object(&["verdict", "code", "rule", "message"], json!({
            "verdict": { "type": "string", "enum": ["allow"] }, "code": string, "rule": string, "message": string,
            "certificate": { "type": "string", "description": "armored signed certificate (-----BEGIN LICET CERTIFICATE-----)" },
            "claims": { "type": "object", "description": "the certificate's claims, for display; verify the certificate" },
            "lease_expires_at": time,
            "server_license": { "type": "string", "description": "armored vendor-signed server license (-----BEGIN LICET SERVER LICENSE-----): granted to a license server, or the license a license server's certificate is signed under" }
        })),
        "ServerActivateRequest": closed(&["key", "target", "machine", "server_key"], json!({ "key": key, "target": reference("Target"), "machine": input_machine, "server_key": server_key, "dongle": dongle_proof })),
        "ServerLicenseRequest": closed(&["key", "machine", "server_key"], json!({ "key": key, "machine": input_machine, "server_key": server_key, "dongle": dongle_proof, "certificate_serial": serial })),
        "Target": object(&["product", "edition", "version"], json!({ "product": product, "edition": edition, "version": { "type": "string", "enum": declared.versions } })),
        "ActivateRequest": closed(&["key", "target", "machine"], json!({ "key": key, "target": reference("Target"), "machine": input_machine, "method": input_method, "dongle": dongle_proof })),
        "ValidateRequest": closed(&["key", "machine"], json!({ "key": key, "machine": input_machine, "certificate_serial": serial, "dongle": dongle_proof })),
        "ReturnRequest": closed(&["key", "machine"], json!({ "key": key, "machine": input_machine, "method": input_method, "certificate_serial": serial, "dongle": dongle_proof })),
        "DongleProof": closed(&["challenge", "proof"], json!({
            "challenge": { "type": "string", "pattern": BASE64_32, "description": "the challenge of POST /v1/dongle/challenge, base64 of 32 bytes" },
            "proof": { "type": "string", "pattern": "^[A-Za-z0-9+/]{128}$", "description": "the dongle's public key and its signature of the challenge, base64 of 96 bytes" } })),
        "DongleChallenge": object(&["challenge", "expires_at"], json!({ "challenge": string, "expires_at": { "type": "string", "format": "date-time" } })),
        "TransferRequest": closed(&["key", "from", "to"], json!({ "key": key, "from": input_machine, "to": input_machine })),
        "CheckoutRequest": closed(&["key", "target", "machine", "session"], json!({ "key": key, "target": reference("Target"), "machine": input_machine, "session": session })),
        "SessionRequest": closed(&["key", "session"], json!({ "key": key, "session": session })),
        "ReturnBorrowedRequest": closed(&["key", "session"], json!({ "key": key, "session": session, "certificate_serial": serial })),
        "BorrowRequest": closed(&["key", "target", "machine", "session", "until"], json!({ "key": key, "target": reference("Target"), "machine": input_machine, "session": session, "until": strict_time })),
        "TrialStartRequest": closed(&["target", "machine"], json!({ "target": reference("Target"), "machine": input_machine })),
        "TrialValidateRequest": closed(&["product", "machine"], json!({ "product": product, "machine": input_machine })),
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
        "NewToken": closed(&["name"], json!({ "name": identifier() })),
        "Token": object(&["token"], json!({ "token": string })),
        "Client": client,
        "ClientList": { "type": "array", "items": reference("Client") },
        "Password": closed(&["password"], json!({ "password": { "type": "string", "minLength": 10, "maxLength": 256 } })),
        "NewClient": closed(&["id", "name"], json!({ "id": identifier(), "name": string })),
        "NewClientAnswer": object(&["client", "token"], json!({ "client": reference("Client"), "token": string })),
        "Order": order,
        "OrderList": { "type": "array", "items": reference("Order") },
        "NewOrder": closed(&["client", "product"], json!({ "id": { "type": ["string", "null"], "pattern": "^[A-Za-z0-9._-]{1,128}$" }, "client": identifier(), "product": product, "features": input_features, "counters": input_counters })),
        "Features": closed(&[], json!({ "features": input_features, "counters": input_counters })),
        "License": license,
        "LicenseList": { "type": "array", "items": reference("License") },
        "NewLicenses": closed(&["product", "license_type", "edition"], json!({
            "product": product, "license_type": { "type": "string", "enum": declared.license_types }, "edition": edition,
            "version": { "type": ["string", "null"], "enum": declared.versions.iter().map(|v| Value::from(v.as_str())).chain([Value::Null]).collect::<Vec<_>>() }, "order": optional_field(), "client": optional_field(),
            "term": input_term, "seats": { "type": ["integer", "null"], "minimum": 0, "maximum": u32::MAX }, "features": input_features, "counters": input_counters,
            "dongle": optional_field(), "key": { "type": ["string", "null"], "pattern": "^[A-Za-z0-9._-]{1,128}$" },
            "count": { "type": "integer", "minimum": 1, "maximum": crate::admin::MAX_ISSUE } })),
        "Issued": object(&["licenses"], json!({ "licenses": reference("LicenseList") })),
        "LicenseDetail": license_detail,
        "ActivationList": { "type": "array", "items": object(&["id", "binding", "activated_at"], json!({ "id": { "type": "integer" }, "binding": binding, "activated_at": time })) },
        "Extend": closed(&[], json!({ "expires_at": strict_time, "features": input_features, "counters": input_counters, "seats": { "type": ["integer", "null"], "minimum": 0, "maximum": u32::MAX } })),
        "Seat": seat,
        "SeatList": { "type": "array", "items": reference("Seat") },
        "AuditList": { "type": "array", "items": object(&["id", "at", "actor", "action", "verdict", "code", "rule", "message", "detail"], json!({
            "id": { "type": "integer" }, "at": time, "actor": string, "action": string, "license_key": { "type": ["string", "null"] },
            "verdict": { "type": "string", "enum": ["allow", "deny"] }, "code": string, "rule": string, "message": string,
            "detail": { "type": "string", "description": "JSON text" } })) }
    })
}
