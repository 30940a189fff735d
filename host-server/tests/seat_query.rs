//! The public `GET /v1/seats/query` of a license server answers from the store's count of held
//! seats, whatever the size of the pool: a pool of 2,100 seats holding 2,000 (more than any page
//! of leases) answers 100 free. The activation center and the license server run in this process
//! on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::Method;
use chrono::Utc;
use common::{call, generous_limits, gstarcad, machine, policy_paths, TestServer, ADMIN_TOKEN};
use licet_engine::Fingerprint;
use licet_server::api::router;
use licet_server::config::{AdminTokenConfig, Config, ServerRole};
use licet_server::dongle::NoDongle;
use licet_server::keys::{generate_key_pair, token_hash};
use licet_server::license_server::{status, FixedIdentity};
use licet_server::server::{build_state_with, BuildOptions};
use licet_server::service::OffsetClock;
use serde_json::{json, Value};

const POOL: u32 = 2_100;
const HELD: usize = 2_000;
const BORROWED: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seat_query_counts_a_large_pool_without_listing_it() {
    // The activation center, listening on 127.0.0.1.
    let center = TestServer::start(common::Backend::Sqlite).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = center
        .router
        .clone()
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let center_url = format!("http://{address}");

    // The license server, with its own key and database.
    let dir = tempfile::tempdir().unwrap();
    generate_key_pair(dir.path(), "server").unwrap();
    std::fs::copy(
        center.dir.path().join("vendor.pub"),
        dir.path().join("vendor.pub"),
    )
    .unwrap();
    let config = Config {
        role: ServerRole::LicenseServer,
        listen: "127.0.0.1:0".into(),
        database: format!("sqlite://{}", dir.path().join("licet.db").display()),
        policies: policy_paths(),
        server_key: Some(dir.path().join("server.secret")),
        vendor_public_key: Some(dir.path().join("vendor.pub")),
        center: Some(center_url.clone()),
        admin_tokens: vec![AdminTokenConfig {
            name: "tests".into(),
            sha256: token_hash(ADMIN_TOKEN),
        }],
        rate_limits: generous_limits(),
        ..Config::default()
    };
    let clock = Arc::new(OffsetClock::default());
    let state = build_state_with(
        &config,
        Arc::new(NoDongle),
        BuildOptions {
            identity: Some(Arc::new(FixedIdentity(Fingerprint::from_pairs([
                ("machine-id", "ls-id"),
                ("mac", "ls-mac"),
                ("cpu", "ls-cpu"),
                ("disk", "ls-disk"),
            ])))),
            clock: Some(clock.clone()),
        },
    )
    .await
    .unwrap();
    let ls = router(state.clone());
    let key = center.network_key(POOL).await;
    state
        .licensing
        .license_server()
        .unwrap()
        .activate_online(
            Some(&center_url),
            &key,
            "gstarcad",
            "professional",
            state.licensing.now(),
        )
        .await
        .unwrap();

    // 2,000 seats held, 3 of them borrowed.
    for n in 0..HELD - BORROWED {
        let body = json!({ "key": key, "target": gstarcad("professional"), "machine": machine(n), "session": format!("s{n:05}") });
        let (status, answer) =
            call(&ls, Method::POST, "/v1/seats/checkout", None, Some(body)).await;
        assert_eq!(status, 200, "{answer}");
    }
    let until = (Utc::now() + chrono::Duration::days(5)).to_rfc3339();
    for n in HELD - BORROWED..HELD {
        let body = json!({ "key": key, "target": gstarcad("professional"), "machine": machine(n), "session": format!("b{n:05}"), "until": until });
        let (status, answer) = call(&ls, Method::POST, "/v1/seats/borrow", None, Some(body)).await;
        assert_eq!(status, 200, "{answer}");
    }

    // Anonymous: the counts of the whole pool.
    let (status, query) = call(&ls, Method::GET, "/v1/seats/query", None, None).await;
    assert_eq!(status, 200, "{query}");
    let served = &query["licenses"][0];
    assert_eq!(served["key"], key.as_str());
    assert_eq!(
        (&served["seats"], &served["free"], &served["borrowed"]),
        (&json!(POOL), &json!(POOL as usize - HELD), &json!(BORROWED)),
        "{served}"
    );
    assert_eq!(served["status"], "serving");
    // The client reads the same answer.
    let parsed: licet_client::transport::SeatQuery = serde_json::from_value(query.clone()).unwrap();
    assert_eq!(parsed.licenses[0].free, POOL - HELD as u32);

    // A seat released, one taken: the count follows.
    let release = json!({ "key": key, "session": "s00042" });
    let (status, answer) = call(&ls, Method::POST, "/v1/seats/release", None, Some(release)).await;
    assert_eq!(status, 200, "{answer}");
    let (_, query) = call(&ls, Method::GET, "/v1/seats/query", None, None).await;
    assert_eq!(
        query["licenses"][0]["free"],
        json!(POOL as usize - HELD + 1)
    );

    // The administrator's status report: the counts, the first holders and how many more.
    let fresh = json!({ "key": key, "target": gstarcad("professional"), "machine": machine(9_999), "session": "s00042" });
    let (status, answer) = call(&ls, Method::POST, "/v1/seats/checkout", None, Some(fresh)).await;
    assert_eq!(status, 200, "{answer}");
    let report = status::status(&state.licensing).await.unwrap();
    let line = &report.licenses[0];
    assert_eq!(
        (
            line.used,
            line.borrowed,
            line.holders.len(),
            line.more_holders
        ),
        (
            HELD as u32,
            BORROWED as u32,
            status::MAX_HOLDERS as usize,
            (HELD - status::MAX_HOLDERS as usize) as u32
        )
    );
    assert_eq!(line.holders[0].session, "b01997");
    let text = status::render(&report);
    assert!(text.contains("and 1900 more"), "{text}");
    let holders = text
        .lines()
        .filter(|line| line.contains("session "))
        .count();
    assert_eq!(holders, status::MAX_HOLDERS as usize);
    let _: Value = serde_json::to_value(&report).unwrap();

    // Leases that lapsed stop counting, without a sweep.
    clock.advance(chrono::Duration::seconds(301));
    let (_, query) = call(&ls, Method::GET, "/v1/seats/query", None, None).await;
    let served = &query["licenses"][0];
    assert_eq!(
        (&served["free"], &served["borrowed"]),
        (&json!(POOL as usize - BORROWED), &json!(BORROWED)),
        "{served}"
    );
}
