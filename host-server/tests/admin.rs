//! Administration, client accounts, authentication, extension, revocation and the audit log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::Method;
use common::{machine, ADMIN_TOKEN};
use serde_json::{json, Value};

fn designer() -> Value {
    json!({ "product": "acme-designer", "edition": "business", "version": "5" })
}

async fn acme_viewer_version(server: &common::TestServer) -> String {
    let (_, products) = server.admin(Method::GET, "/v1/admin/products", None).await;
    let viewer = products
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "acme-viewer")
        .unwrap();
    assert_eq!(viewer["model"], "web");
    viewer["version"].as_str().unwrap().to_owned()
}

on_both_backends! {
    async fn the_standard_model_cascades_order_features_and_clients_see_only_their_licenses(server) {
        let (status, acme) = server.admin(Method::POST, "/v1/admin/clients", Some(json!({ "id": "acme", "name": "Acme Ltd" }))).await;
        assert_eq!(status, 201, "{acme}");
        let acme_token = acme["token"].as_str().unwrap().to_owned();
        let (_, other) = server.admin(Method::POST, "/v1/admin/clients", Some(json!({ "id": "other", "name": "Other" }))).await;
        let other_token = other["token"].as_str().unwrap().to_owned();
        let (status, body) = server.admin(Method::POST, "/v1/admin/clients", Some(json!({ "id": "acme", "name": "again" }))).await;
        assert_eq!((status, body["code"].as_str()), (409, Some("ALREADY_EXISTS")), "{body}");

        let (status, order) = server.admin(Method::POST, "/v1/admin/orders", Some(json!({
            "id": "PO-1", "client": "acme", "product": "acme-designer", "features": { "export-dwg": true }, "counters": { "users": 5 }
        }))).await;
        assert_eq!(status, 201, "{order}");
        let (status, body) = server.admin(Method::POST, "/v1/admin/orders", Some(json!({
            "client": "acme", "product": "acme-designer", "features": { "teleport": true }
        }))).await;
        assert_eq!((status, body["code"].as_str()), (422, Some("INVALID_BODY")), "{body}");

        let (status, issued) = server.admin(Method::POST, "/v1/admin/licenses", Some(json!({
            "product": "acme-designer", "license_type": "standard", "edition": "business", "order": "PO-1",
            "counters": { "projects": 50 }, "count": 2
        }))).await;
        assert_eq!(status, 201, "{issued}");
        let keys: Vec<String> = issued["licenses"].as_array().unwrap().iter().map(|l| l["key"].as_str().unwrap().to_owned()).collect();
        assert_eq!(keys.len(), 2);
        let (status, body) = server.post("/v1/activate", json!({ "key": keys[0], "target": designer(), "machine": machine(1) })).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["claims"]["features"]["export-dwg"], true);
        assert_eq!(body["claims"]["counters"]["users"], 5);
        assert_eq!(body["claims"]["counters"]["projects"], 50);

        // Order-level change, picked up at the next validation.
        let (status, _) = server.admin(Method::PATCH, "/v1/admin/orders/PO-1", Some(json!({ "features": { "scripting": true } }))).await;
        assert_eq!(status, 200);
        let (_, body) = server.post("/v1/validate", json!({ "key": keys[0], "machine": machine(1) })).await;
        assert_eq!(body["claims"]["features"]["scripting"], true);

        let (status, mine) = server.call(Method::GET, "/v1/client/licenses", Some(&acme_token), None).await;
        assert_eq!(status, 200);
        assert_eq!(mine.as_array().unwrap().len(), 2);
        let (_, theirs) = server.call(Method::GET, "/v1/client/licenses", Some(&other_token), None).await;
        assert_eq!(theirs, json!([]));
        let path = format!("/v1/client/licenses/{}", keys[0]);
        let (status, detail) = server.call(Method::GET, &path, Some(&acme_token), None).await;
        assert_eq!(status, 200);
        assert_eq!(detail["owner"], "acme");
        let (status, body) = server.call(Method::GET, &path, Some(&other_token), None).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("ACCESS_DENIED")), "{body}");

        // A client acting on another client's license is refused by the engine.
        let (status, body) = server.call(Method::POST, "/v1/validate", Some(&other_token), Some(json!({ "key": keys[0], "machine": machine(1) }))).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("ACCESS_DENIED")), "{body}");
        let activation = detail["activations"][0]["id"].as_i64().unwrap();
        let removal = format!("/v1/client/licenses/{}/activations/{activation}", keys[0]);
        let (status, body) = server.call(Method::DELETE, &removal, Some(&other_token), None).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("ACCESS_DENIED")), "{body}");
        let (status, body) = server.call(Method::DELETE, &removal, Some(&acme_token), None).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("RETURNED")), "{body}");

        // Clients cannot administer; a rotated token stops working.
        let (status, body) = server.call(Method::GET, "/v1/admin/licenses", Some(&acme_token), None).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("ADMIN_REQUIRED")), "{body}");
        let (status, rotated) = server.admin(Method::POST, "/v1/admin/clients/acme/token", None).await;
        assert_eq!(status, 200);
        let (status, _) = server.call(Method::GET, "/v1/client/licenses", Some(&acme_token), None).await;
        assert_eq!(status, 401);
        let (status, _) = server.call(Method::GET, "/v1/client/licenses", Some(rotated["token"].as_str().unwrap()), None).await;
        assert_eq!(status, 200);
    }

    async fn administrators_need_a_valid_token(server) {
        let (status, body) = server.call(Method::GET, "/v1/admin/clients", None, None).await;
        assert_eq!((status, body["code"].as_str()), (401, Some("UNAUTHORIZED")), "{body}");
        let (status, body) = server.call(Method::GET, "/v1/admin/clients", Some("lct_admin_forged"), None).await;
        assert_eq!((status, body["code"].as_str()), (401, Some("UNAUTHORIZED")), "{body}");
        let (status, body) = server.admin(Method::POST, "/v1/admin/tokens", Some(json!({ "name": "ops" }))).await;
        assert_eq!(status, 201, "{body}");
        let token = body["token"].as_str().unwrap();
        let (status, _) = server.call(Method::GET, "/v1/admin/clients", Some(token), None).await;
        assert_eq!(status, 200);
        let (status, body) = server.call(Method::GET, "/v1/client/licenses", Some(ADMIN_TOKEN), None).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("CLIENT_REQUIRED")), "{body}");
    }

    async fn web_model_serials_grant_their_activations(server) {
        let (status, issued) = server.admin(Method::POST, "/v1/admin/serials", Some(json!({
            "product": "acme-viewer", "license_type": "serial", "edition": "standard", "count": 3, "features": {}
        }))).await;
        assert_eq!(status, 201, "{issued}");
        let serials = issued["licenses"].as_array().unwrap();
        assert_eq!(serials.len(), 3);
        assert!(serials.iter().all(|s| s["client"].is_null() && s["order"].is_null()));
        let viewer = json!({ "product": "acme-viewer", "edition": "standard", "version": acme_viewer_version(&server).await });
        let serial = serials[0]["key"].as_str().unwrap();
        let (status, body) = server.post("/v1/activate", json!({ "key": serial, "target": viewer, "machine": machine(1) })).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("ACTIVATED")), "{body}");
        let (status, body) = server.admin(Method::POST, "/v1/admin/serials", Some(json!({
            "product": "acme-designer", "license_type": "standard", "edition": "business"
        }))).await;
        assert_eq!((status, body["code"].as_str()), (422, Some("INVALID_BODY")), "{body}");
    }

    async fn extension_and_revocation_reach_clients_at_their_next_validation(server) {
        let key = server.issue(json!({ "product": "acme-designer", "license_type": "standard", "edition": "business" })).await;
        let (status, _) = server.post("/v1/activate", json!({ "key": key, "target": designer(), "machine": machine(1) })).await;
        assert_eq!(status, 200);
        let path = format!("/v1/admin/licenses/{key}");
        let (status, body) = server.call(Method::PATCH, &path, None, Some(json!({ "features": { "scripting": true } }))).await;
        assert_eq!(status, 401, "{body}");
        let expiry = "2031-01-01T00:00:00Z";
        let (status, body) = server.admin(Method::PATCH, &path, Some(json!({ "expires_at": expiry, "features": { "scripting": true }, "counters": { "projects": 99 } }))).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("EXTENDED")), "{body}");
        let (_, body) = server.post("/v1/validate", json!({ "key": key, "machine": machine(1) })).await;
        assert_eq!(body["claims"]["features"]["scripting"], true);
        assert_eq!(body["claims"]["counters"]["projects"], 99);
        assert_eq!(body["claims"]["expires_at"], expiry);

        let (status, body) = server.admin(Method::POST, &format!("{path}/revoke"), None).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("REVOCATION_APPLIED")), "{body}");
        let (status, body) = server.post("/v1/validate", json!({ "key": key, "machine": machine(1) })).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("REVOKED")), "{body}");

        let (status, audit) = server.admin(Method::GET, &format!("/v1/admin/audit?license={key}"), None).await;
        assert_eq!(status, 200);
        let codes: Vec<&str> = audit.as_array().unwrap().iter().map(|e| e["code"].as_str().unwrap()).collect();
        assert_eq!(codes, ["ACTIVATED", "EXTENDED", "VALID", "REVOCATION_APPLIED", "REVOKED"]);
        assert!(audit[1]["actor"].as_str().unwrap().starts_with("administrator:tests"));
    }

    async fn only_administrators_remove_limited_licenses(server) {
        let (_, _) = server.admin(Method::POST, "/v1/admin/clients", Some(json!({ "id": "lab", "name": "Lab" }))).await;
        let key = server.issue(json!({ "product": "acme-analyzer", "license_type": "limited", "edition": "pro", "client": "lab" })).await;
        let target = json!({ "product": "acme-analyzer", "edition": "pro", "version": "2" });
        let (status, body) = server.post("/v1/activate", json!({ "key": key, "target": target, "machine": machine(1) })).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = server.post("/v1/return", json!({ "key": key, "machine": machine(1) })).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("REMOVAL_FORBIDDEN")), "{body}");
        let (_, detail) = server.admin(Method::GET, &format!("/v1/admin/licenses/{key}"), None).await;
        let id = detail["activations"][0]["id"].as_i64().unwrap();
        assert!(detail["limited"]["expires_at"].is_string());
        let (status, body) = server.admin(Method::DELETE, &format!("/v1/admin/licenses/{key}/activations/{id}"), None).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("RETURNED")), "{body}");
        let (status, body) = server.admin(Method::DELETE, &format!("/v1/admin/licenses/{key}/activations/{id}"), None).await;
        assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")), "{body}");
    }

    async fn the_audit_log_is_append_only(server) {
        let key = server.standalone_key().await;
        let _ = server.post("/v1/activate", json!({ "key": key, "target": common::gstarcad("professional"), "machine": machine(1) })).await;
        let (_, audit) = server.admin(Method::GET, "/v1/admin/audit", None).await;
        let actions: Vec<&str> = audit.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["issue-licenses", "activate"]);
        let refused = match &server.database {
            licet_server::store::Database::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.execute("UPDATE audit SET code = 'FORGED'", []).is_err()
                    && conn.execute("DELETE FROM audit", []).is_err()
            }
            licet_server::store::Database::Postgres(url) => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(connection);
                client.execute("UPDATE audit SET code = 'FORGED'", &[]).await.is_err()
                    && client.execute("DELETE FROM audit", &[]).await.is_err()
            }
        };
        assert!(refused);
        let (_, again) = server.admin(Method::GET, "/v1/admin/audit", None).await;
        assert_eq!(again, audit);
    }

    async fn an_administrator_sets_and_removes_a_clients_password(server) {
        let (status, _) = server.admin(Method::POST, "/v1/admin/clients", Some(json!({ "id": "acme", "name": "Acme Ltd" }))).await;
        assert_eq!(status, 201);
        let licensing = &server.state.licensing;
        let (status, client) = server.admin(Method::POST, "/v1/admin/clients/acme/password", Some(json!({ "password": "a long enough password" }))).await;
        assert_eq!((status, client["id"].as_str()), (200, Some("acme")), "{client}");
        assert!(licensing.verify_client_password("acme", "a long enough password").await.unwrap());
        // Too short, unknown clients, other fields: refused, nothing changed.
        let (status, body) = server.admin(Method::POST, "/v1/admin/clients/acme/password", Some(json!({ "password": "short" }))).await;
        assert_eq!((status, body["code"].as_str()), (422, Some("INVALID_BODY")), "{body}");
        let (status, body) = server.admin(Method::POST, "/v1/admin/clients/acme/password", Some(json!({}))).await;
        assert_eq!((status, body["code"].as_str()), (422, Some("INVALID_BODY")), "{body}");
        let (status, body) = server.admin(Method::POST, "/v1/admin/clients/nobody/password", Some(json!({ "password": "a long enough password" }))).await;
        assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")), "{body}");
        assert!(licensing.verify_client_password("acme", "a long enough password").await.unwrap());
        // A client cannot set it.
        let (_, token) = server.admin(Method::POST, "/v1/admin/clients/acme/token", None).await;
        let token = token["token"].as_str().unwrap().to_owned();
        let (status, body) = server.call(Method::POST, "/v1/admin/clients/acme/password", Some(&token), Some(json!({ "password": "the client's own choice" }))).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("ADMIN_REQUIRED")), "{body}");

        let (status, _) = server.admin(Method::DELETE, "/v1/admin/clients/acme/password", None).await;
        assert_eq!(status, 200);
        assert!(!licensing.verify_client_password("acme", "a long enough password").await.unwrap());
        let (_, audit) = server.admin(Method::GET, "/v1/admin/audit", None).await;
        let actions: Vec<&str> = audit.as_array().unwrap().iter().filter_map(|entry| entry["action"].as_str()).collect();
        assert!(actions.contains(&"set-client-password") && actions.contains(&"clear-client-password"), "{actions:?}");
    }
}

/// The number on the line of `metrics` that starts with `series` (name and labels), if any.
fn metric(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

mod metrics {
    use super::*;

    on_both_backends! {
        async fn metrics_count_requests_and_decisions_for_administrators_only(server) {
            let key = server.network_key(1).await;
            let checkout = |session: &str| json!({ "key": key, "target": common::gstarcad("professional"), "machine": machine(1), "session": session });
            let (status, body) = server.post("/v1/seats/checkout", checkout("s1")).await;
            assert_eq!(status, 200, "{body}");
            let (status, body) = server.post("/v1/seats/checkout", checkout("s2")).await;
            assert_eq!(body["code"], "SEATS_EXHAUSTED", "{status} {body}");

            let (status, body) = server.call(Method::GET, "/metrics", None, None).await;
            assert_eq!((status, body["code"].as_str()), (401, Some("UNAUTHORIZED")), "{body}");
            let (status, body) = server.admin(Method::GET, "/metrics", None).await;
            assert_eq!(status, 200, "{body}");
            let text = body.as_str().unwrap();
            assert!(text.ends_with("# EOF\n"), "{text}");
            assert_eq!(metric(text, r#"licet_http_requests_total{route="/v1/seats/checkout",status="200"}"#), Some(1.0), "{text}");
            assert_eq!(metric(text, r#"licet_http_requests_total{route="/v1/admin/licenses",status="201"}"#), Some(1.0), "{text}");
            assert_eq!(metric(text, r#"licet_decisions_total{action="checkout",verdict="allow",code="SEAT_GRANTED"}"#), Some(1.0), "{text}");
            assert_eq!(metric(text, r#"licet_decisions_total{action="checkout",verdict="deny",code="SEATS_EXHAUSTED"}"#), Some(1.0), "{text}");
            assert_eq!(metric(text, r#"licet_decision_duration_seconds_count{action="checkout"}"#), Some(2.0), "{text}");
            assert!(metric(text, "licet_store_transaction_duration_seconds_count").unwrap() >= 3.0, "{text}");
            // Each pool's seats, held and borrowed, by license.
            let series = |name: &str| format!(r#"{name}{{license="{key}"}}"#);
            assert_eq!(metric(text, &series("licet_seats")), Some(1.0), "{text}");
            assert_eq!(metric(text, &series("licet_seats_held")), Some(1.0), "{text}");
            assert_eq!(metric(text, &series("licet_seats_borrowed")), Some(0.0), "{text}");
            // Route patterns only: no path, and so no session, in any label.
            assert!(!text.contains("\"s1\"") && !text.contains(&format!("/{key}")), "{text}");

            // A lease that lapsed is not in use, before any request for its license sweeps it.
            server.clock.advance(chrono::Duration::seconds(301));
            let (_, body) = server.admin(Method::GET, "/metrics", None).await;
            let text = body.as_str().unwrap();
            assert_eq!(metric(text, &series("licet_seats_held")), Some(0.0), "{text}");
        }
    }
}
