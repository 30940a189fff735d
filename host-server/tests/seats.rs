//! Activation, seat pool, borrowing and trials through the HTTP API, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::Method;
use chrono::{Duration, Utc};
use common::{call, gstarcad, machine};
use serde_json::json;

fn checkout(key: &str, session: &str, n: usize) -> serde_json::Value {
    json!({ "key": key, "target": gstarcad("professional"), "machine": machine(n), "session": session })
}

on_both_backends! {
    async fn activation_is_bound_to_one_machine_until_returned(server) {
        let key = server.standalone_key().await;
        let activate = |n: usize| json!({ "key": key, "target": gstarcad("professional"), "machine": machine(n) });
        let (status, body) = server.post("/v1/activate", activate(1)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["code"], "ACTIVATED");
        let certificate = body["certificate"].as_str().unwrap();
        let verified = licet_engine::certificate::Certificate::from_armored(
            certificate,
            &server.state.licensing.verifying_key(),
        )
        .unwrap();
        assert_eq!(verified.claims().license_key, key);

        let (status, body) = server.post("/v1/activate", activate(2)).await;
        assert_eq!((status, body["code"].as_str()), (409, Some("ACTIVATION_LIMIT_REACHED")), "{body}");
        assert_eq!(body["rule"], "license.activations");

        let (status, body) = server.post("/v1/validate", json!({ "key": key, "machine": machine(1) })).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("VALID")), "{body}");
        let current = body["claims"]["serial"].as_str().unwrap().to_owned();
        let (status, body) = server.post("/v1/validate", json!({ "key": key, "machine": machine(2) })).await;
        assert_eq!((status, body["code"].as_str()), (409, Some("FINGERPRINT_MISMATCH")), "{body}");

        // A return presents the activation's current certificate: none, or another one, frees nothing.
        let (status, body) = server.post("/v1/return", json!({ "key": key, "machine": machine(1) })).await;
        assert_eq!((status, body["code"].as_str()), (409, Some("CERTIFICATE_NOT_CURRENT")), "{body}");
        let (status, body) = server.post("/v1/return", json!({ "key": key, "machine": machine(1), "certificate_serial": "0123456789abcdef01234567" })).await;
        assert_eq!((status, body["code"].as_str()), (409, Some("CERTIFICATE_NOT_CURRENT")), "{body}");
        let (status, body) = server.post("/v1/return", json!({ "key": key, "machine": machine(1), "certificate_serial": current })).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("RETURNED")), "{body}");
        // The returned certificate presented again is refused.
        let (status, body) = server.post("/v1/validate", json!({ "key": key, "machine": machine(1), "certificate_serial": current })).await;
        assert_eq!((status, body["code"].as_str()), (409, Some("EXCHANGE_SERIAL_RETURNED")), "{body}");
        let (status, body) = server.post("/v1/activate", activate(2)).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("ACTIVATED")), "{body}");

        let (status, body) = server.post("/v1/transfer", json!({ "key": key, "from": machine(2), "to": machine(3) })).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("TRANSFERRED")), "{body}");
        let (status, detail) = server.admin(Method::GET, &format!("/v1/admin/licenses/{key}"), None).await;
        assert_eq!(status, 200);
        let activations = detail["activations"].as_array().unwrap();
        assert_eq!(activations.len(), 1);
        assert_eq!(activations[0]["binding"]["fingerprint"]["machine-id"], "id-3");
    }

    async fn unknown_keys_and_wrong_editions_are_refused_with_engine_codes(server) {
        let (status, body) = server.post("/v1/activate", json!({ "key": "NOPE", "target": gstarcad("professional"), "machine": machine(1) })).await;
        assert_eq!((status, body["code"].as_str()), (404, Some("LICENSE_NOT_FOUND")), "{body}");
        let key = server.standalone_key().await;
        let (status, body) = server.post("/v1/activate", json!({ "key": key, "target": gstarcad("standard"), "machine": machine(1) })).await;
        assert_eq!((status, body["code"].as_str()), (422, Some("EDITION_MISMATCH")), "{body}");
        assert_eq!(body["rule"], "license.edition");
        let (status, body) = server.post("/v1/trials/start", json!({ "target": { "product": "nothing", "edition": "x", "version": "1" }, "machine": machine(1) })).await;
        assert_eq!((status, body["code"].as_str()), (422, Some("UNKNOWN_PRODUCT")), "{body}");
    }

    async fn checkout_is_idempotent_per_session_and_seats_are_exact(server) {
        let key = server.network_key(2).await;
        let (status, first) = server.post("/v1/seats/checkout", checkout(&key, "s1", 1)).await;
        assert_eq!((status, first["code"].as_str()), (200, Some("SEAT_GRANTED")), "{first}");
        // A reconnect of the same session gets its own seat back, not a second one.
        let (status, again) = server.post("/v1/seats/checkout", checkout(&key, "s1", 1)).await;
        assert_eq!((status, again["code"].as_str()), (200, Some("SEAT_GRANTED")), "{again}");
        let (status, _) = server.post("/v1/seats/checkout", checkout(&key, "s2", 2)).await;
        assert_eq!(status, 200);
        let (status, body) = server.post("/v1/seats/checkout", checkout(&key, "s3", 3)).await;
        assert_eq!((status, body["code"].as_str()), (409, Some("SEATS_EXHAUSTED")), "{body}");

        let (_, seats) = server.admin(Method::GET, "/v1/admin/seats?product=gstarcad", None).await;
        let sessions: Vec<&str> = seats.as_array().unwrap().iter().map(|s| s["session"].as_str().unwrap()).collect();
        assert_eq!(sessions, ["s1", "s2"]);

        let (status, body) = server.post("/v1/seats/heartbeat", json!({ "key": key, "session": "s1" })).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("LEASE_RENEWED")), "{body}");
        assert!(body["lease_expires_at"].is_string());
        let (status, body) = server.post("/v1/seats/release", json!({ "key": key, "session": "s2" })).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("SEAT_RELEASED")), "{body}");
        let (status, _) = server.post("/v1/seats/checkout", checkout(&key, "s3", 3)).await;
        assert_eq!(status, 200);
        let (status, body) = server.post("/v1/seats/release", json!({ "key": key, "session": "s2" })).await;
        assert_eq!((status, body["code"].as_str()), (404, Some("LEASE_NOT_FOUND")), "{body}");
    }

    async fn a_lapsed_lease_returns_its_seat(server) {
        let key = server.network_key(1).await;
        let (status, _) = server.post("/v1/seats/checkout", checkout(&key, "crashed", 1)).await;
        assert_eq!(status, 200);
        let (status, _) = server.post("/v1/seats/checkout", checkout(&key, "waiting", 2)).await;
        assert_eq!(status, 409);
        server.clock.advance(Duration::seconds(301));
        let (status, body) = server.post("/v1/seats/checkout", checkout(&key, "waiting", 2)).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("SEAT_GRANTED")), "{body}");
        let (status, body) = server.post("/v1/seats/heartbeat", json!({ "key": key, "session": "crashed" })).await;
        assert_eq!((status, body["code"].as_str()), (409, Some("LEASE_EXPIRED")), "{body}");
        // Lapsed rows are swept an hour after they ended; the seat count stays exact.
        server.clock.advance(Duration::hours(2));
        let swept = server.state.licensing.sweep_leases(server.state.licensing.now()).await.unwrap();
        assert_eq!(swept, 2);
        let (status, _) = server.post("/v1/seats/checkout", checkout(&key, "next", 3)).await;
        assert_eq!(status, 200);
    }

    async fn the_stores_seat_count_follows_every_way_a_seat_ends(server) {
        let key = server.network_key(2).await;
        let take = |session: &'static str, n: usize| checkout(&key, session, n);
        let code = |body: &serde_json::Value| body["code"].as_str().map(str::to_owned);
        // A lapsed lease taken back by its own session counts once.
        assert_eq!(server.post("/v1/seats/checkout", take("a", 1)).await.0, 200);
        server.clock.advance(Duration::seconds(301));
        assert_eq!(server.post("/v1/seats/checkout", take("a", 1)).await.0, 200);
        assert_eq!(server.post("/v1/seats/checkout", take("b", 2)).await.0, 200);
        let (status, body) = server.post("/v1/seats/checkout", take("c", 3)).await;
        assert_eq!((status, code(&body).as_deref()), (409, Some("SEATS_EXHAUSTED")), "{body}");
        // Leases that lapsed with no request since are still counted by the store until the
        // sweep deletes them; the sweep takes them off the count.
        server.clock.advance(Duration::hours(2));
        let swept = server.state.licensing.sweep_leases(server.state.licensing.now()).await.unwrap();
        assert_eq!(swept, 2);
        assert_eq!(server.post("/v1/seats/checkout", take("c", 3)).await.0, 200);
        assert_eq!(server.post("/v1/seats/checkout", take("d", 4)).await.0, 200);
        // An administrator's force-release frees its seat at once.
        let (status, body) = server.admin(Method::DELETE, &format!("/v1/admin/licenses/{key}/seats/c"), None).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = server.post("/v1/seats/checkout", take("e", 5)).await;
        assert_eq!((status, code(&body).as_deref()), (200, Some("SEAT_GRANTED")), "{body}");
        let (status, body) = server.post("/v1/seats/checkout", take("f", 6)).await;
        assert_eq!((status, code(&body).as_deref()), (409, Some("SEATS_EXHAUSTED")), "{body}");
    }

    async fn borrowed_seats_are_listed_and_can_be_returned_or_force_released(server) {
        let key = server.network_key(2).await;
        let until = (Utc::now() + Duration::days(7)).to_rfc3339();
        let borrow = |session: &str, n: usize| json!({ "key": key, "target": gstarcad("professional"), "machine": machine(n), "session": session, "until": until });
        let (status, body) = server.post("/v1/seats/borrow", borrow("laptop", 1)).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("BORROWED")), "{body}");
        assert!(body["certificate"].is_string());
        let laptop = body["claims"]["serial"].as_str().unwrap().to_owned();
        let (status, _) = server.post("/v1/seats/borrow", borrow("other", 2)).await;
        assert_eq!(status, 200);
        let (_, detail) = server.admin(Method::GET, &format!("/v1/admin/licenses/{key}"), None).await;
        let states: Vec<&str> = detail["seats"].as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap()).collect();
        assert_eq!(states, ["borrowed", "borrowed"]);
        let (status, body) = server.post("/v1/seats/checkout", checkout(&key, "desk", 3)).await;
        assert_eq!((status, body["code"].as_str()), (409, Some("SEATS_EXHAUSTED")), "{body}");

        let (status, body) = server.post("/v1/seats/return-borrowed", json!({ "key": key, "session": "laptop" })).await;
        assert_eq!((status, body["code"].as_str()), (409, Some("CERTIFICATE_NOT_CURRENT")), "{body}");
        let (status, body) = server.post("/v1/seats/return-borrowed", json!({ "key": key, "session": "laptop", "certificate_serial": laptop })).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("BORROW_RETURNED")), "{body}");
        let (status, body) = server.admin(Method::DELETE, &format!("/v1/admin/licenses/{key}/seats/other"), None).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("BORROW_RETURNED")), "{body}");
        let (_, seats) = server.admin(Method::GET, "/v1/admin/seats", None).await;
        assert_eq!(seats, json!([]));

        let too_long = json!({ "key": key, "target": gstarcad("professional"), "machine": machine(4), "session": "far", "until": (Utc::now() + Duration::days(90)).to_rfc3339() });
        let (status, body) = server.post("/v1/seats/borrow", too_long).await;
        assert_eq!((status, body["code"].as_str()), (422, Some("BORROW_TOO_LONG")), "{body}");
    }

    async fn a_network_dongle_pool_serves_only_while_the_dongle_is_present(server) {
        let key = server.issue(json!({
            "product": "gstarcad", "license_type": "network-dongle", "edition": "professional", "dongle": common::NETWORK_DONGLE
        })).await;
        let (status, body) = server.post("/v1/seats/checkout", checkout(&key, "s1", 1)).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("SEAT_GRANTED")), "{body}");
        server.dongle.unplug();
        let (status, body) = server.post("/v1/seats/checkout", checkout(&key, "s2", 2)).await;
        assert_eq!((status, body["code"].as_str()), (503, Some("DONGLE_ABSENT")), "{body}");
        let (status, body) = server.post("/v1/seats/heartbeat", json!({ "key": key, "session": "s1" })).await;
        assert_eq!((status, body["code"].as_str()), (503, Some("DONGLE_ABSENT")), "{body}");
        server.dongle.replace("ND-9999");
        server.dongle.plug();
        let (status, body) = server.post("/v1/seats/checkout", checkout(&key, "s2", 2)).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("DONGLE_MISMATCH")), "{body}");
        server.dongle.replace(common::NETWORK_DONGLE);
        let (status, _) = server.post("/v1/seats/checkout", checkout(&key, "s2", 2)).await;
        assert_eq!(status, 200);
    }

    async fn a_trial_runs_once_per_machine_even_with_a_changed_component(server) {
        let start = |m: serde_json::Value| json!({ "target": gstarcad("professional"), "machine": m });
        let (status, body) = server.post("/v1/trials/start", start(machine(1))).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("TRIAL_STARTED")), "{body}");
        let first_end = body["claims"]["expires_at"].clone();
        // A new network card: 3 of 4 components still match, so it is the same machine.
        let mut changed = machine(1);
        changed["mac"] = json!("new-card");
        server.clock.advance(Duration::days(3));
        let (status, body) = server.post("/v1/trials/start", start(changed.clone())).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("TRIAL_STARTED")), "{body}");
        assert_eq!(body["claims"]["expires_at"], first_end);
        let (status, body) = server.post("/v1/trials/validate", json!({ "product": "gstarcad", "machine": changed })).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("VALID")), "{body}");
        server.clock.advance(Duration::days(40));
        let (status, body) = server.post("/v1/trials/start", start(machine(1))).await;
        assert_eq!((status, body["code"].as_str()), (409, Some("TRIAL_ALREADY_USED")), "{body}");
        let (status, body) = server.post("/v1/trials/validate", json!({ "product": "gstarcad", "machine": machine(2) })).await;
        assert_eq!((status, body["code"].as_str()), (404, Some("TRIAL_NOT_STARTED")), "{body}");
    }

    async fn racing_clients_get_exactly_the_seats_there_are(server) {
        const SEATS: usize = 5;
        const CLIENTS: usize = 24;
        let key = server.network_key(SEATS as u32).await;
        // Two independent routers with their own stores and connections on the same database.
        let (replica, _) = server.replica().await;
        let mut tasks = Vec::new();
        for n in 0..CLIENTS {
            let router = if n % 2 == 0 { server.router.clone() } else { replica.clone() };
            let body = checkout(&key, &format!("session-{n}"), n);
            tasks.push(tokio::spawn(async move {
                call(&router, Method::POST, "/v1/seats/checkout", None, Some(body)).await
            }));
        }
        let mut granted = 0;
        for task in tasks {
            let (status, body) = task.await.unwrap();
            match status {
                200 => granted += 1,
                409 => assert_eq!(body["code"], "SEATS_EXHAUSTED"),
                other => panic!("unexpected {other}: {body}"),
            }
        }
        assert_eq!(granted, SEATS);
        let (_, seats) = server.admin(Method::GET, "/v1/admin/seats", None).await;
        assert_eq!(seats.as_array().unwrap().len(), SEATS);
    }

    async fn reconnects_racing_on_one_session_hold_one_seat(server) {
        let key = server.network_key(3).await;
        let (replica, _) = server.replica().await;
        let mut tasks = Vec::new();
        for n in 0..12 {
            let router = if n % 2 == 0 { server.router.clone() } else { replica.clone() };
            let body = checkout(&key, "the-session", 7);
            tasks.push(tokio::spawn(async move {
                call(&router, Method::POST, "/v1/seats/checkout", None, Some(body)).await.0
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), 200);
        }
        let (_, seats) = server.admin(Method::GET, "/v1/admin/seats", None).await;
        assert_eq!(seats.as_array().unwrap().len(), 1);
    }
}
