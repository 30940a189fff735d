//! Attacks on the rate limits and the audit log through the real router: client tokens are
//! limited, a stranger's failures on a key do not lock its owner out, made-up seat sessions
//! cost the address and do not fill the audit log, and a client token cannot tell a foreign key
//! from a missing one, and requests for the transport plugins cost the address like bad keys
//! (an address the limiter refuses gets no plugin call).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request};
use common::{gstarcad, machine, raw, Backend, TestServer};
use licet_server::ratelimit::{Rate, RateLimits};
use serde_json::{json, Value};

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

/// A JSON POST from `address`, with a bearer `token` if given.
async fn post_from(
    server: &TestServer,
    address: &str,
    token: Option<&str>,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let peer: SocketAddr = format!("{address}:40000").parse().unwrap();
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let mut request = request
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    raw(&server.router, request).await
}

async fn client_token(server: &TestServer, id: &str) -> String {
    let (status, client) = server
        .admin(
            Method::POST,
            "/v1/admin/clients",
            Some(json!({ "id": id, "name": id })),
        )
        .await;
    assert_eq!(status, 201, "{client}");
    client["token"].as_str().unwrap().to_owned()
}

async fn audit_rows(server: &TestServer, key: &str, action: &str) -> usize {
    let (status, log) = server
        .admin(
            Method::GET,
            &format!("/v1/admin/audit?license={key}&limit=1000"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{log}");
    log.as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["action"] == action)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tokens_are_rate_limited_like_anonymous_callers() {
    let server = TestServer::start_with(Backend::Sqlite, limits(1000, 5)).await;
    let token = client_token(&server, "acme").await;
    let mut refused = None;
    for guess in 0..20 {
        let (status, body) = post_from(
            &server,
            "192.0.2.10",
            Some(&token),
            "/v1/validate",
            json!({ "key": format!("GSCAD-GUESS-{guess:04}"), "machine": machine(1) }),
        )
        .await;
        if status == 429 {
            refused = Some((guess, body));
            break;
        }
    }
    let (guess, body) = refused.expect("a client token was never rate limited");
    assert!(guess <= 5, "refused only after {guess} guesses");
    assert_eq!(body["rule"], "api.rate_limit.address", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_failed_validations_do_not_lock_the_owner_out() {
    let server = TestServer::start_with(Backend::Sqlite, limits(3, 1000)).await;
    let key = server.standalone_key().await;
    let owner = "192.0.2.1";
    let (status, body) = post_from(
        &server,
        owner,
        None,
        "/v1/activate",
        json!({ "key": key, "target": gstarcad("professional"), "machine": machine(1) }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // A stranger validates the known key from another machine until refused.
    let stranger = "198.51.100.7";
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let (status, _) = post_from(
            &server,
            stranger,
            None,
            "/v1/validate",
            json!({ "key": key, "machine": machine(9) }),
        )
        .await;
        statuses.push(status);
    }
    assert!(
        statuses.contains(&429),
        "the stranger was never limited: {statuses:?}"
    );
    // The owner's validations go on, more often than the key's burst.
    for _ in 0..5 {
        let (status, body) = post_from(
            &server,
            owner,
            None,
            "/v1/validate",
            json!({ "key": key, "machine": machine(1) }),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (200, Some("VALID")),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_heartbeats_cost_the_address_and_do_not_fill_the_audit_log() {
    const HEARTBEATS: usize = 300;
    let server = TestServer::start_with(Backend::Sqlite, limits(1000, 20)).await;
    let key = server.network_key(5).await;
    let mut answered = 0;
    let mut limited = 0;
    for n in 0..HEARTBEATS {
        let (status, body) = post_from(
            &server,
            "203.0.113.5",
            None,
            "/v1/seats/heartbeat",
            json!({ "key": key, "session": format!("made-up-{n}") }),
        )
        .await;
        match status {
            429 => limited += 1,
            _ => {
                assert_eq!(body["code"], "LEASE_NOT_FOUND", "{body}");
                answered += 1;
            }
        }
    }
    assert!(
        answered <= 21,
        "{answered} made-up heartbeats reached the service"
    );
    assert_eq!(answered + limited, HEARTBEATS);
    // Not one audit row per made-up session: they are counted instead.
    assert_eq!(audit_rows(&server, &key, "heartbeat").await, 0);
    assert_eq!(server.state.licensing.unaudited_denials(), answered as u64);
    // Another address is not held back, and real decisions are still audited.
    let (status, body) = post_from(
        &server,
        "203.0.113.99",
        None,
        "/v1/seats/checkout",
        json!({ "key": key, "target": gstarcad("professional"), "machine": machine(1), "session": "real" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post_from(
        &server,
        "203.0.113.99",
        None,
        "/v1/seats/heartbeat",
        json!({ "key": key, "session": "real" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(audit_rows(&server, &key, "checkout").await, 1);
    assert_eq!(audit_rows(&server, &key, "heartbeat").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_token_cannot_tell_a_foreign_key_from_a_missing_one() {
    let server = TestServer::start_with(Backend::Sqlite, limits(1000, 1000)).await;
    let token = client_token(&server, "snoop").await;
    let foreign = server.standalone_key().await;
    // A made-up key of the same shape as the real one.
    let missing: String = foreign
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { 'Z' } else { c })
        .collect();
    for path in ["/v1/validate", "/v1/activate"] {
        let body = |key: &str| json!({ "key": key, "target": gstarcad("professional"), "machine": machine(1) });
        let body = |key: &str| {
            let mut value = body(key);
            if path == "/v1/validate" {
                value.as_object_mut().unwrap().remove("target");
            }
            value
        };
        let (foreign_status, foreign_answer) =
            post_from(&server, "192.0.2.50", Some(&token), path, body(&foreign)).await;
        let (missing_status, missing_answer) =
            post_from(&server, "192.0.2.50", Some(&token), path, body(&missing)).await;
        assert_eq!(foreign_status, missing_status, "{path}");
        assert_eq!(
            (
                foreign_answer["code"].clone(),
                foreign_answer["rule"].clone()
            ),
            (
                missing_answer["code"].clone(),
                missing_answer["rule"].clone()
            ),
            "{path}: {foreign_answer} vs {missing_answer}"
        );
        assert_eq!(
            foreign_answer["message"]
                .as_str()
                .unwrap()
                .replace(&foreign, "KEY"),
            missing_answer["message"]
                .as_str()
                .unwrap()
                .replace(&missing, "KEY"),
        );
        assert_eq!(
            (foreign_status, foreign_answer["code"].as_str()),
            (403, Some("ACCESS_DENIED"))
        );
    }
    for key in [&foreign, &missing] {
        let (status, answer) = server
            .call(
                Method::GET,
                &format!("/v1/client/licenses/{key}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (403, Some("ACCESS_DENIED"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_refusals_are_counted_in_the_metrics() {
    let server = TestServer::start_with(Backend::Sqlite, limits(100, 2)).await;
    let guess = |n: usize| json!({ "key": format!("GUESS-{n:04}"), "target": gstarcad("professional"), "machine": machine(1) });
    let mut refused = 0;
    for n in 0..5 {
        let (status, _) = post_from(&server, "192.0.2.7", None, "/v1/activate", guess(n)).await;
        refused += usize::from(status == 429);
    }
    assert_eq!(refused, 3);
    let (status, body) = server.admin(Method::GET, "/metrics", None).await;
    assert_eq!(status, 200, "{body}");
    let text = body.as_str().unwrap();
    let line = r#"licet_rate_limited_total{route="/v1/activate"} "#;
    assert!(text.lines().any(|l| l == format!("{line}3")), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_for_a_transport_costs_the_address_and_a_refused_address_gets_no_plugin_call() {
    let server = TestServer::start_with(Backend::Sqlite, limits(1000, 3)).await;
    let (_, _, app) = common::with_text_transport(&server);

    // Blocks the plugin cannot read cost one attempt each, like keys that do not exist.
    let garbage = "<script>alert(1)</script>";
    let mut answers = Vec::new();
    for _ in 0..6 {
        let (status, body) = common::paste_text(&app, Some("192.0.2.40"), garbage).await;
        answers.push((status, body["code"].as_str().map(str::to_owned)));
    }
    let read = answers.iter().filter(|(status, _)| *status != 429).count();
    assert!(
        read <= 3,
        "{read} unreadable blocks reached the plugin: {answers:?}"
    );
    assert_eq!(answers.last().unwrap().0, 429, "{answers:?}");

    // An address locked out by made-up keys gets its paste refused before the plugin reads it.
    let locked = "192.0.2.41";
    for guess in 0..3 {
        let (status, body) = post_from(
            &server,
            locked,
            None,
            "/v1/validate",
            json!({ "key": format!("GSCAD-GUESS-{guess:04}"), "machine": machine(1) }),
        )
        .await;
        assert_ne!(status, 200, "{body}");
    }
    let calls = common::plugin_calls(&server);
    let (status, body) = common::paste_text(&app, Some(locked), garbage).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["rule"], "api.rate_limit.address", "{body}");
    assert_eq!(
        common::plugin_calls(&server),
        calls,
        "the plugin read the paste"
    );

    // Another address still reaches the plugin (its refusal is the plugin's own).
    let (status, body) = common::paste_text(&app, Some("192.0.2.42"), garbage).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(common::plugin_calls(&server), calls + 1);
}
