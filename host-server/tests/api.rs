//! The API's own refusals (bodies, routes, rate limits) and the OpenAPI document.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{header, Method, Request};
use common::{gstarcad, machine, raw, Backend, TestServer};
use licet_server::api::enduser::DECISION_ROUTES;
use licet_server::api::openapi::openapi;
use licet_server::ratelimit::{Rate, RateLimits};
use serde_json::json;

fn post(path: &str, content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut request = Request::builder().method(Method::POST).uri(path);
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    request.body(body.into()).unwrap()
}

#[tokio::test]
async fn malformed_bodies_get_json_errors() {
    let server = TestServer::start(Backend::Sqlite).await;
    let json_type = Some("application/json");
    let (status, body) = raw(&server.router, post("/v1/activate", json_type, "{not json")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("MALFORMED_JSON")),
        "{body}"
    );
    assert_eq!(body["rule"], "api.body");
    let (status, body) = raw(
        &server.router,
        post("/v1/activate", json_type, r#"{"key": "K"}"#),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("INVALID_BODY")),
        "{body}"
    );
    let unknown_field = json!({ "key": "K", "target": gstarcad("professional"), "machine": machine(1), "extra": 1 });
    let (status, body) = raw(
        &server.router,
        post("/v1/activate", json_type, unknown_field.to_string()),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("INVALID_BODY")),
        "{body}"
    );
    let (status, body) = raw(&server.router, post("/v1/activate", None, "{}")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (415, Some("UNSUPPORTED_MEDIA_TYPE")),
        "{body}"
    );
    let huge = format!(r#"{{"key": "{}"}}"#, "K".repeat(400 * 1024));
    let (status, body) = raw(&server.router, post("/v1/activate", json_type, huge)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("PAYLOAD_TOO_LARGE")),
        "{body}"
    );
    let long_key = json!({ "key": "K".repeat(300), "target": gstarcad("professional"), "machine": machine(1) });
    let (status, body) = server.post("/v1/activate", long_key).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("INVALID_BODY")),
        "{body}"
    );
    let no_machine = json!({ "key": "K", "target": gstarcad("professional"), "machine": {} });
    let (status, body) = server.post("/v1/activate", no_machine).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("INVALID_BODY")),
        "{body}"
    );
    let (status, body) = server.call(Method::GET, "/v1/nowhere", None, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("ROUTE_NOT_FOUND")),
        "{body}"
    );
    let (status, body) = server.call(Method::GET, "/v1/activate", None, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (405, Some("METHOD_NOT_ALLOWED")),
        "{body}"
    );
    let (status, body) = server
        .admin(Method::GET, "/v1/admin/audit?limit=many", None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("INVALID_BODY")),
        "{body}"
    );
    // Nothing was recorded for any of these.
    let (_, audit) = server.admin(Method::GET, "/v1/admin/audit", None).await;
    assert_eq!(audit, json!([]));
}

/// The body of a refusal, with its media type: every refusal is the JSON `Error`.
async fn refusal(server: &TestServer, request: Request<Body>) -> (u16, String, serde_json::Value) {
    use tower::ServiceExt as _;
    let response = server.router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let media = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let body =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)));
    (status, media, body)
}

#[tokio::test]
async fn raw_and_multipart_bodies_are_refused_with_json_errors() {
    let server = TestServer::start(Backend::Sqlite).await;
    // An exchange file over the body limit, and over the file limit.
    let cases = [
        (
            post("/v1/exchange", Some("application/xml"), vec![b'x'; 400 * 1024]),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            post("/v1/exchange", Some("application/xml"), vec![b'x'; 100 * 1024]),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        // A form without a boundary, with a boundary its body does not use, a broken part.
        (
            post("/v1/exchange/upload", Some("multipart/form-data"), "file=1"),
            400,
            "MALFORMED_BODY",
        ),
        (
            post(
                "/v1/exchange/upload",
                Some("multipart/form-data; boundary=XYZ"),
                "--ABC\r\ncontent-disposition: form-data; name=\"file\"\r\n\r\nx\r\n--ABC--\r\n",
            ),
            400,
            "MALFORMED_BODY",
        ),
        (
            post(
                "/v1/exchange/upload",
                Some("multipart/form-data; boundary=XYZ"),
                "--XYZ\r\nno headers end here",
            ),
            400,
            "MALFORMED_BODY",
        ),
        // Not a form at all.
        (
            post("/v1/exchange/upload", Some("application/json"), "{}"),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            post("/v1/exchange/upload", None, "x"),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        // A form over the body limit.
        (
            post(
                "/v1/exchange/upload",
                Some("multipart/form-data; boundary=XYZ"),
                format!(
                    "--XYZ\r\ncontent-disposition: form-data; name=\"file\"\r\n\r\n{}\r\n--XYZ--\r\n",
                    "x".repeat(400 * 1024)
                ),
            ),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
    ];
    for (request, expected, code) in cases {
        let what = format!(
            "{} {:?}",
            request.uri(),
            request.headers().get(header::CONTENT_TYPE)
        );
        let (status, media, body) = refusal(&server, request).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (expected, Some(code)),
            "{what}: {body}"
        );
        assert_eq!(media, "application/json", "{what}");
        assert!(
            body["message"].is_string() && body["rule"] == "api.body",
            "{what}: {body}"
        );
    }
}

#[tokio::test]
async fn guessing_keys_is_rate_limited() {
    let limits = RateLimits {
        per_key: Rate {
            burst: 3,
            per_minute: 1,
        },
        per_address: Rate {
            burst: 8,
            per_minute: 1,
        },
        max_tracked: 1000,
    };
    let server = TestServer::start_with(Backend::Sqlite, limits).await;
    let key = server.standalone_key().await;
    let attempt = |key: &str, n: usize| json!({ "key": key, "target": gstarcad("professional"), "machine": machine(n) });
    // Per key: after one activation and three failed ones from this address, the next attempt
    // on the key is refused.
    for n in 0..4 {
        let (status, _) = server.post("/v1/activate", attempt(&key, n)).await;
        assert_ne!(status, 429);
    }
    let (status, body) = server.post("/v1/activate", attempt(&key, 9)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("RATE_LIMITED")),
        "{body}"
    );
    assert_eq!(body["rule"], "api.rate_limit.key");
    // Per address: guessing other keys exhausts the address, seat traffic included.
    let mut refused = None;
    for guess in 0..10 {
        let (status, body) = server
            .post("/v1/activate", attempt(&format!("GUESS-{guess}"), 1))
            .await;
        if status == 429 {
            refused = Some(body);
            break;
        }
        assert_eq!(body["code"], "LICENSE_NOT_FOUND");
    }
    let refused = refused.expect("the address was never limited");
    assert_eq!(refused["rule"], "api.rate_limit.address");
    let (status, _) = server
        .post(
            "/v1/seats/heartbeat",
            json!({ "key": "GUESS", "session": "s" }),
        )
        .await;
    assert_eq!(status, 429);
    // Administrators are not limited.
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/validate",
            Some(common::ADMIN_TOKEN),
            Some(json!({ "key": key, "machine": machine(0) })),
        )
        .await;
    assert_ne!(status, 429);
}

/// The operations of the document, as (method, path).
fn documented(document: &serde_json::Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.insert((method.clone(), path.clone()));
        }
    }
    operations
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_exists() {
    // The API's routes are added only with their documentation: handlers through `routes!`,
    // the decision routes with the path items made from their table. A plain `.route(` would
    // add a route the document does not know.
    for (file, source) in [
        ("api/mod.rs", include_str!("../src/api/mod.rs")),
        (
            "api/enduser/mod.rs",
            include_str!("../src/api/enduser/mod.rs"),
        ),
        (
            "api/enduser/bodies.rs",
            include_str!("../src/api/enduser/bodies.rs"),
        ),
    ] {
        let plain_route = source
            .match_indices(".route(")
            .any(|(at, call)| !source[at + call.len()..].starts_with(')'));
        assert!(
            !plain_route && !source.contains(".nest("),
            "{file} adds a route without its documentation"
        );
    }
    let server = TestServer::start(Backend::Sqlite).await;
    let document = openapi(server.state.licensing.policies()).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let documented = documented(&document);
    assert!(documented.len() >= 51, "{documented:?}");
    for route in &DECISION_ROUTES {
        assert!(
            documented.contains(&("post".to_owned(), route.path.to_owned())),
            "{}",
            route.path
        );
    }
    let (status, served) = server
        .call(Method::GET, "/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(served, document);
    // No name the policies declare is left unfilled.
    assert!(!document.to_string().contains("x-licet-declared"));
    for (method, path) in &documented {
        let operation = &document["paths"][path][method];
        assert!(operation["summary"].is_string(), "{method} {path}");
        assert!(
            operation["responses"]["default"].is_object(),
            "{method} {path}"
        );
        // Every referenced schema exists.
        for reference in operation.to_string().split("#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(
                document["components"]["schemas"][name].is_object(),
                "{name}"
            );
        }
        // The router answers it (with whatever refusal), never with "no such route".
        let concrete = path
            .replace("{id}", "1")
            .replace("{key}", "K")
            .replace("{session}", "s")
            .replace("{name}", "t");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let (status, body) = server.admin(method.clone(), &concrete, None).await;
        assert!(
            body["code"] != "ROUTE_NOT_FOUND" && body["code"] != "METHOD_NOT_ALLOWED",
            "{method} {path}: {status} {body}"
        );
    }
    for schema in document["components"]["schemas"]
        .as_object()
        .unwrap()
        .values()
    {
        for reference in schema.to_string().split("#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(
                document["components"]["schemas"][name].is_object(),
                "{name}"
            );
        }
    }
}

#[test]
fn the_document_states_the_limits_the_server_checks() {
    use licet_server::fields::{MAX_COMPONENTS, MAX_FIELD};
    let document = openapi(&Default::default()).unwrap();
    let schemas = &document["components"]["schemas"];
    let activate = &schemas["ActivateRequest"]["properties"];
    assert_eq!(activate["key"]["maxLength"], MAX_FIELD);
    assert_eq!(activate["machine"]["maxProperties"], MAX_COMPONENTS);
    let validate = &schemas["ValidateRequest"]["properties"];
    assert_eq!(validate["certificate_serial"]["maxLength"], MAX_FIELD);
    assert_eq!(
        schemas["SessionRequest"]["properties"]["session"]["maxLength"],
        MAX_FIELD
    );
    let issue = &schemas["NewLicenses"]["properties"];
    assert_eq!(issue["count"]["maximum"], licet_server::admin::MAX_ISSUE);
    assert_eq!(issue["seats"]["maximum"], u32::MAX);
    assert_eq!(issue["dongle"]["maxLength"], MAX_FIELD);
    assert_eq!(
        schemas["Extend"]["properties"]["seats"]["maximum"],
        u32::MAX
    );
    assert_eq!(
        schemas["ActivateRequest"]["additionalProperties"],
        json!(false)
    );
}

#[tokio::test]
async fn a_license_detail_writes_each_key_once() {
    let server = TestServer::start(Backend::Sqlite).await;
    let key = server.network_key(3).await;
    let request = Request::builder()
        .uri(format!("/v1/admin/licenses/{key}"))
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", common::ADMIN_TOKEN),
        )
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = refusal(&server, request).await;
    assert_eq!(status, 200, "{body}");
    // The page of seats is `seats`; the license's pool is `seat_count`.
    assert_eq!(body["seats"], json!([]), "{body}");
    assert_eq!(body["seat_count"], 3, "{body}");
    assert_eq!(body["seats_held"], 0, "{body}");
    let request = Request::builder()
        .uri(format!("/v1/admin/licenses/{key}"))
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", common::ADMIN_TOKEN),
        )
        .body(Body::empty())
        .unwrap();
    use tower::ServiceExt as _;
    let response = server.router.clone().oneshot(request).await.unwrap();
    let text = String::from_utf8(
        axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert_eq!(text.matches("\"seats\":").count(), 1, "{text}");
}

#[tokio::test]
async fn an_extension_refuses_an_expiry_that_is_not_a_date() {
    let server = TestServer::start(Backend::Sqlite).await;
    let key = server.standalone_key().await;
    let path = format!("/v1/admin/licenses/{key}");
    for wrong in [
        json!(null),
        json!(5),
        json!(true),
        json!("tomorrow"),
        json!({}),
    ] {
        let (status, body) = server
            .admin(Method::PATCH, &path, Some(json!({ "expires_at": wrong })))
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("INVALID_BODY")),
            "{wrong}: {body}"
        );
    }
    let (status, body) = server
        .admin(Method::PATCH, &path, Some(json!({ "features": {} })))
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn counts_and_counters_take_integral_json_numbers_only() {
    let server = TestServer::start(Backend::Sqlite).await;
    let key = server.network_key(2).await;
    let path = format!("/v1/admin/licenses/{key}");
    // `3.0` is the integer 3 in JSON; a fraction, or a number beyond 64 bits, is not.
    let (status, body) = server
        .admin(
            Method::PATCH,
            &path,
            Some(json!({ "seats": 3.0, "counters": { "plot-sheets": 40.0 } })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, detail) = server.admin(Method::GET, &path, None).await;
    assert_eq!(detail["seat_count"], 3, "{detail}");
    for wrong in [
        json!({ "seats": 3.5 }),
        json!({ "seats": -1 }),
        json!({ "seats": 4294967296u64 }),
        json!({ "counters": { "plot-sheets": 0.5 } }),
        json!({ "counters": { "plot-sheets": 1e19 } }),
        json!({ "counters": { "plot-sheets": "1" } }),
    ] {
        let (status, body) = server
            .admin(Method::PATCH, &path, Some(wrong.clone()))
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("INVALID_BODY")),
            "{wrong}: {body}"
        );
    }
}
