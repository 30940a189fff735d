//! Refusals found by review: exchange files get the JSON routes' field limits and must fit the
//! license type, exchange uploads and failed token checks are rate limited, and IPv6 clients are
//! limited by their /64.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request};
use chrono::{SubsecRound, Utc};
use common::{raw, TestServer, ADMIN_TOKEN};
use licet_engine::exchange::{
    ActivationRequest, ActivationResponse, Nonce, ReturnRequest, ReturnResponse, Role,
    ServerActivationResponse,
};
use licet_engine::{Fingerprint, ProductRef};
use licet_server::ratelimit::{Rate, RateLimits};
use serde_json::{json, Value};
use tower::ServiceExt;

fn fingerprint(n: usize) -> Fingerprint {
    Fingerprint::from_pairs([
        ("machine-id", format!("id-{n}")),
        ("mac", format!("mac-{n}")),
        ("cpu", format!("cpu-{n}")),
        ("disk", format!("disk-{n}")),
    ])
}

fn target() -> ProductRef {
    ProductRef {
        product: "gstarcad".into(),
        edition: "professional".into(),
        version: "2027".into(),
    }
}

/// The public key of a license server, one per seed.
fn server_key(seed: u8) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
        .verifying_key()
        .to_bytes()
}

fn activation(role: Role, key: &str, machine: Fingerprint, nonce: u8) -> ActivationRequest {
    ActivationRequest {
        role,
        license_key: key.to_owned(),
        target: target(),
        machine,
        nonce: Nonce([nonce; 32]),
        created_at: Utc::now().trunc_subsecs(0),
        server_key: (role == Role::LicenseServer).then(|| server_key(nonce)),
    }
}

async fn send_file(server: &TestServer, file: &str) -> (u16, Vec<u8>) {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/exchange")
        .header(header::CONTENT_TYPE, "application/xml")
        .body(Body::from(file.to_owned()))
        .unwrap();
    let response = server.router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, bytes.to_vec())
}

/// Status and error code of an answer that is expected to be a JSON error.
async fn refusal(server: &TestServer, file: &str) -> (u16, String, String) {
    let (status, body) = send_file(server, file).await;
    let error: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| panic!("{status}: {}", String::from_utf8_lossy(&body)));
    (
        status,
        error["code"].as_str().unwrap_or_default().to_owned(),
        error["rule"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn activates(server: &TestServer, request: &ActivationRequest) -> ActivationResponse {
    let (status, body) = send_file(server, &request.to_xml().unwrap()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    ActivationResponse::from_xml(&body, &server.state.licensing.verifying_key()).unwrap()
}

async fn audit_of(server: &TestServer, key: &str) -> Vec<Value> {
    let (status, log) = server
        .admin(Method::GET, &format!("/v1/admin/audit?license={key}"), None)
        .await;
    assert_eq!(status, 200, "{log}");
    log.as_array().unwrap().clone()
}

fn limits(per_key: u32, per_address: u32) -> RateLimits {
    RateLimits {
        per_key: Rate {
            burst: per_key,
            per_minute: 1,
        },
        per_address: Rate {
            burst: per_address,
            per_minute: 1,
        },
        max_tracked: 1000,
    }
}

on_both_backends! {
    async fn exchange_files_get_the_field_limits_of_the_json_routes(server) {
        let key = server.standalone_key().await;
        let mut huge = fingerprint(1);
        huge.components.insert("mac".into(), "m".repeat(4000));
        let mut many = fingerprint(1);
        for index in 0..40 {
            many.components.insert(format!("extra-{index}"), format!("value-{index}"));
        }
        let mut long_name = fingerprint(1);
        long_name.components.insert("n".repeat(300), "value".into());
        for (nonce, machine) in [huge, many, long_name].into_iter().enumerate() {
            let file = activation(Role::Machine, &key, machine, 10 + nonce as u8).to_xml().unwrap();
            let (status, code, rule) = refusal(&server, &file).await;
            assert_eq!((status, code.as_str(), rule.as_str()), (422, "EXCHANGE_MALFORMED", "exchange.file"));
        }
        let long_key = format!("{key}-{}", "K".repeat(400));
        let file = activation(Role::Machine, &long_key, fingerprint(1), 20).to_xml().unwrap();
        assert_eq!(refusal(&server, &file).await.1, "EXCHANGE_MALFORMED");
        // Nothing was stored or audited: the key's one activation is still free.
        assert!(audit_of(&server, &key).await.iter().all(|entry| entry["action"] == "issue" || entry["code"] == "ADMIN_CHANGE"));
        let response = activates(&server, &activation(Role::Machine, &key, fingerprint(2), 30)).await;
        assert_eq!(response.update_counter(), 1);
    }

    async fn an_exchange_file_must_fit_the_license_type(server) {
        // A license server's file for a standalone license is denied and changes nothing.
        let standalone = server.standalone_key().await;
        let file = activation(Role::LicenseServer, &standalone, fingerprint(1), 1).to_xml().unwrap();
        assert_eq!(refusal(&server, &file).await, (403, "WRONG_LICENSE_TYPE".into(), "exchange.role".into()));
        let denials: Vec<Value> = audit_of(&server, &standalone).await.into_iter().filter(|entry| entry["verdict"] == "deny").collect();
        assert_eq!(denials.len(), 1, "{denials:?}");
        assert_eq!(denials[0]["code"], "WRONG_LICENSE_TYPE");
        let response = activates(&server, &activation(Role::Machine, &standalone, fingerprint(2), 2)).await;
        assert_eq!(response.update_counter(), 1);

        // A return must carry the same role.
        let serial = response.certificate().claims().serial.clone();
        let give_back = ReturnRequest {
            role: Role::LicenseServer,
            license_key: standalone.clone(),
            target: target(),
            machine: fingerprint(2),
            nonce: Nonce([3; 32]),
            created_at: Utc::now().trunc_subsecs(0),
            certificate_serial: serial.clone(),
        };
        assert_eq!(refusal(&server, &give_back.to_xml().unwrap()).await.1, "WRONG_LICENSE_TYPE");
        let give_back = ReturnRequest { role: Role::Machine, nonce: Nonce([4; 32]), ..give_back };
        let (status, body) = send_file(&server, &give_back.to_xml().unwrap()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let returned = ReturnResponse::from_xml(&body, &server.state.licensing.verifying_key()).unwrap();
        assert_eq!(returned.update_counter(), 2);

        // A machine's file for a network license is denied; the license server's is answered.
        let network = server.network_key(5).await;
        let file = activation(Role::Machine, &network, fingerprint(5), 5).to_xml().unwrap();
        assert_eq!(refusal(&server, &file).await.1, "WRONG_LICENSE_TYPE");
        // The license server's file is answered with a vendor-signed server license bound to its
        // fingerprint and naming the key the request carried.
        let request = activation(Role::LicenseServer, &network, fingerprint(5), 6);
        let (status, body) = send_file(&server, &request.to_xml().unwrap()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let response = ServerActivationResponse::from_xml(&body, &server.state.licensing.verifying_key()).unwrap();
        assert_eq!(response.update_counter(), 1);
        let granted = response.server_license().claims();
        assert_eq!((granted.license_key.as_str(), granted.seats, granted.server_key), (network.as_str(), 5, server_key(6)));
        assert!(ActivationResponse::from_xml(&body, &server.state.licensing.verifying_key()).is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_uploads_are_limited_per_key() {
    let server = TestServer::start_with(common::Backend::Sqlite, limits(2, 1000)).await;
    let key = server.standalone_key().await;
    activates(&server, &activation(Role::Machine, &key, fingerprint(1), 1)).await;
    let other = activation(Role::Machine, &key, fingerprint(2), 2)
        .to_xml()
        .unwrap();
    // Two failures from this address use up the key's bucket of two.
    for _ in 0..2 {
        assert_eq!(refusal(&server, &other).await.1, "ACTIVATION_LIMIT_REACHED");
    }
    let (status, code, rule) = refusal(&server, &other).await;
    assert_eq!(
        (status, code.as_str(), rule.as_str()),
        (429, "RATE_LIMITED", "api.rate_limit.key")
    );
    // Another key is not held back.
    let second = server.standalone_key().await;
    activates(
        &server,
        &activation(Role::Machine, &second, fingerprint(3), 3),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_uploads_naming_unknown_keys_cost_the_address() {
    let server = TestServer::start_with(common::Backend::Sqlite, limits(100, 4)).await;
    // Each unknown key costs the attempt and the penalty: two guesses empty a bucket of four.
    for guess in 0..2u8 {
        let file = activation(
            Role::Machine,
            &format!("GSCAD-NOPE-{guess}"),
            fingerprint(1),
            guess,
        )
        .to_xml()
        .unwrap();
        assert_eq!(refusal(&server, &file).await.1, "LICENSE_NOT_FOUND");
    }
    let file = activation(Role::Machine, "GSCAD-NOPE-9", fingerprint(1), 9)
        .to_xml()
        .unwrap();
    let (status, code, rule) = refusal(&server, &file).await;
    assert_eq!(
        (status, code.as_str(), rule.as_str()),
        (429, "RATE_LIMITED", "api.rate_limit.address")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_that_do_not_parse_are_charged_to_the_address() {
    let server = TestServer::start_with(common::Backend::Sqlite, limits(100, 3)).await;
    for _ in 0..3 {
        let (status, code, _) = refusal(&server, "<licet-activation-request><oops/>").await;
        assert_eq!((status, code.as_str()), (422, "EXCHANGE_MALFORMED"));
    }
    let (status, code, _) = refusal(&server, "<licet-activation-request><oops/>").await;
    assert_eq!((status, code.as_str()), (429, "RATE_LIMITED"));
}

async fn with_token(server: &TestServer, peer: &str, token: &str) -> (u16, Value) {
    let mut request = Request::builder()
        .method(Method::GET)
        .uri("/v1/client/licenses")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let address: SocketAddr = peer.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(address));
    raw(&server.router, request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_block_the_address_before_the_store_is_asked() {
    let server = TestServer::start_with(common::Backend::Sqlite, limits(100, 3)).await;
    let (status, created) = server
        .admin(
            Method::POST,
            "/v1/admin/clients",
            Some(json!({ "id": "acme", "name": "Acme" })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let client_token = created["token"].as_str().unwrap().to_owned();
    assert_eq!(
        with_token(&server, "192.0.2.10:4000", &client_token)
            .await
            .0,
        200
    );
    for attempt in 0..3 {
        let (status, body) =
            with_token(&server, "192.0.2.10:4000", &format!("lct_bad_{attempt}")).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("UNAUTHORIZED")),
            "{body}"
        );
    }
    let (status, body) = with_token(&server, "192.0.2.10:4001", "lct_bad_more").await;
    assert_eq!(
        (status, body["code"].as_str(), body["rule"].as_str()),
        (429, Some("RATE_LIMITED"), Some("api.rate_limit.address")),
        "{body}"
    );
    // While blocked, even a valid token from that address is not looked up.
    assert_eq!(
        with_token(&server, "192.0.2.10:4002", &client_token)
            .await
            .0,
        429
    );
    // Other addresses are unaffected.
    assert_eq!(
        with_token(&server, "192.0.2.11:4000", &client_token)
            .await
            .0,
        200
    );
    // The configured administrator token is checked without the store and is never limited.
    let (status, body) = with_token(&server, "192.0.2.10:4003", ADMIN_TOKEN).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("CLIENT_REQUIRED")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_clients_are_limited_by_their_64_prefix() {
    let server = TestServer::start_with(common::Backend::Sqlite, limits(100, 3)).await;
    for host in 1..=3 {
        let (status, _) =
            with_token(&server, &format!("[2001:db8:7:7::{host}]:5000"), "lct_bad").await;
        assert_eq!(status, 401);
    }
    let (status, body) = with_token(&server, "[2001:db8:7:7:ffff::1]:5000", "lct_bad").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("RATE_LIMITED")),
        "{body}"
    );
    let (status, _) = with_token(&server, "[2001:db8:7:8::1]:5000", "lct_bad").await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_lookups_do_not_wait_for_the_sqlite_writer() {
    let server = TestServer::start(common::Backend::Sqlite).await;
    let path = server
        .state
        .licensing
        .store()
        .sqlite_path()
        .unwrap()
        .to_owned();
    // Another process holds SQLite's write lock (as a long write or a flood of writes would).
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (status, body) = with_token(&server, "192.0.2.20:4000", "lct_unknown").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("UNAUTHORIZED")),
        "{body}"
    );
    holder.execute_batch("ROLLBACK").unwrap();
}
