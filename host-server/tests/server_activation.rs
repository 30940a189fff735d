//! The activation center's side of license servers: activation, revalidation and return through
//! `/v1/server/...`, the vendor-signed server license they answer, and one server per pool.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::Method;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::{gstarcad, machine};
use ed25519_dalek::SigningKey;
use licet_engine::certificate::Binding;
use licet_engine::server_license::ServerLicense;
use serde_json::{json, Value};

/// The public key of the license server numbered `n`, base64.
fn server_key(n: u8) -> String {
    STANDARD.encode(SigningKey::from_bytes(&[n; 32]).verifying_key().to_bytes())
}

fn activation(key: &str, n: usize) -> Value {
    json!({ "key": key, "target": gstarcad("professional"), "machine": machine(n),
            "server_key": server_key(u8::try_from(n).unwrap()) })
}

fn revalidation(key: &str, n: usize) -> Value {
    json!({ "key": key, "machine": machine(n), "server_key": server_key(u8::try_from(n).unwrap()) })
}

fn checkout(key: &str, session: &str, n: usize) -> Value {
    json!({ "key": key, "target": gstarcad("professional"), "machine": machine(n), "session": session })
}

on_both_backends! {
    async fn a_license_server_is_granted_a_vendor_signed_server_license(server) {
        let key = server.network_key(4).await;
        let (status, body) = server.post("/v1/server/activate", activation(&key, 1)).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("ACTIVATED")), "{body}");
        assert!(body.get("certificate").is_none(), "{body}");
        let granted = ServerLicense::from_armored(
            body["server_license"].as_str().unwrap(),
            &server.state.licensing.verifying_key(),
        )
        .unwrap();
        let claims = granted.claims();
        assert_eq!(claims.license_key, key);
        assert_eq!((claims.edition.as_str(), claims.version.as_str()), ("professional", "2027"));
        assert_eq!(claims.seats, 4);
        assert_eq!(claims.lease_seconds, 300);
        assert_eq!(claims.borrow_max_seconds, Some(30 * 86_400));
        assert!(claims.kinds.seat && claims.kinds.borrow);
        assert_eq!(STANDARD.encode(claims.server_key), server_key(1));
        let Binding::Fingerprint(bound) = &claims.binding else { panic!("{claims:?}") };
        assert_eq!(bound["machine-id"], "id-1");
        assert!(claims.offline_until > claims.issued_at);

        // One license server per key: a second one is refused until the first returns it.
        let (status, body) = server.post("/v1/server/activate", activation(&key, 2)).await;
        assert_eq!((status, body["code"].as_str()), (409, Some("ACTIVATION_LIMIT_REACHED")), "{body}");
        // The center does not serve the seats of a pool its license server serves.
        let (status, body) = server.post("/v1/seats/checkout", checkout(&key, "s1", 7)).await;
        assert_eq!((status, body["code"].as_str()), (409, Some("SERVED_ELSEWHERE")), "{body}");
        assert_eq!(body["rule"], "license_server.pool");

        // The return presents the serial of the server license the license server holds.
        let (status, body) = server.post("/v1/server/return", revalidation(&key, 1)).await;
        assert_eq!((status, body["code"].as_str()), (409, Some("CERTIFICATE_NOT_CURRENT")), "{body}");
        let mut returning = revalidation(&key, 1);
        returning["certificate_serial"] = json!(claims.serial);
        let (status, body) = server.post("/v1/server/return", returning.clone()).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("RETURNED")), "{body}");
        let (status, body) = server.post("/v1/server/validate", revalidation(&key, 1)).await;
        assert_eq!((status, body["code"].as_str()), (404, Some("NOT_ACTIVATED")), "{body}");
        let (status, body) = server.post("/v1/server/validate", returning).await;
        assert_eq!((status, body["code"].as_str()), (409, Some("EXCHANGE_SERIAL_RETURNED")), "{body}");
        let (status, body) = server.post("/v1/server/activate", activation(&key, 2)).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("ACTIVATED")), "{body}");
    }

    async fn revalidation_picks_up_seats_bought_extension_and_revocation(server) {
        let key = server.network_key(2).await;
        let (status, _) = server.post("/v1/server/activate", activation(&key, 3)).await;
        assert_eq!(status, 200);
        let (status, body) = server
            .admin(Method::PATCH, &format!("/v1/admin/licenses/{key}"), Some(json!({ "seats": 9, "features": { "cloud-collaboration": true } })))
            .await;
        assert_eq!((status, body["code"].as_str()), (200, Some("EXTENDED")), "{body}");
        let (status, body) = server.post("/v1/server/validate", revalidation(&key, 3)).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("VALID")), "{body}");
        let fresh = ServerLicense::from_armored(
            body["server_license"].as_str().unwrap(),
            &server.state.licensing.verifying_key(),
        )
        .unwrap();
        assert_eq!(fresh.claims().seats, 9);
        assert!(fresh.claims().features["cloud-collaboration"]);

        // Another machine's (or key's) revalidation does not get the server license.
        let (status, body) = server.post("/v1/server/validate", revalidation(&key, 4)).await;
        assert_eq!((status, body["code"].as_str()), (409, Some("FINGERPRINT_MISMATCH")), "{body}");

        let (status, _) = server.admin(Method::POST, &format!("/v1/admin/licenses/{key}/revoke"), None).await;
        assert_eq!(status, 200);
        let (status, body) = server.post("/v1/server/validate", revalidation(&key, 3)).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("REVOKED")), "{body}");
    }

    async fn only_network_licenses_activate_license_servers_and_only_there(server) {
        let standalone = server.standalone_key().await;
        let (status, body) = server.post("/v1/server/activate", activation(&standalone, 1)).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("WRONG_LICENSE_TYPE")), "{body}");
        assert_eq!(body["rule"], "license_server.activation");

        let network = server.network_key(2).await;
        let on_a_machine = json!({ "key": network, "target": gstarcad("professional"), "machine": machine(1) });
        let (status, body) = server.post("/v1/activate", on_a_machine).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("WRONG_LICENSE_TYPE")), "{body}");

        for bad in ["", "not base64!", &STANDARD.encode([1u8; 31]), &STANDARD.encode([0u8; 32])] {
            let mut body = activation(&network, 1);
            body["server_key"] = json!(bad);
            let (status, answer) = server.post("/v1/server/activate", body).await;
            assert_eq!((status, answer["code"].as_str()), (422, Some("INVALID_BODY")), "{bad:?}: {answer}");
        }
        // Nothing was activated by the refusals.
        let (status, body) = server.post("/v1/server/activate", activation(&network, 1)).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("ACTIVATED")), "{body}");
    }

    async fn a_pool_the_center_serves_is_not_also_given_to_a_license_server(server) {
        let key = server.network_key(2).await;
        let (status, _) = server.post("/v1/seats/checkout", checkout(&key, "hosted", 1)).await;
        assert_eq!(status, 200);
        let (status, body) = server.post("/v1/server/activate", activation(&key, 2)).await;
        assert_eq!((status, body["code"].as_str()), (409, Some("SERVED_ELSEWHERE")), "{body}");
        let (status, _) = server.post("/v1/seats/release", json!({ "key": key, "session": "hosted" })).await;
        assert_eq!(status, 200);
        let (status, body) = server.post("/v1/server/activate", activation(&key, 2)).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("ACTIVATED")), "{body}");
    }
}
