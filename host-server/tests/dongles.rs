//! Standalone dongle licenses: a request proves the dongle's presence by its signature of a
//! challenge this server issued; a serial alone proves nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::{gstarcad, machine};
use ed25519_dalek::{Signer, SigningKey};
use licet_engine::dongle::{dongle_serial, signed_message, DongleProof};
use serde_json::{json, Value};

/// The dongle's answer to `challenge` (base64), as the request field `dongle`.
fn answer(dongle: &SigningKey, challenge: &str) -> Value {
    let bytes: [u8; 32] = STANDARD.decode(challenge).unwrap().try_into().unwrap();
    let proof = DongleProof {
        public_key: dongle.verifying_key().to_bytes(),
        signature: dongle.sign(&signed_message(&bytes)).to_bytes(),
    };
    json!({ "challenge": challenge, "proof": STANDARD.encode(proof.to_bytes()) })
}

fn serial(dongle: &SigningKey) -> String {
    dongle_serial(&dongle.verifying_key().to_bytes())
}

on_both_backends! {
    async fn a_standalone_dongle_license_activates_only_where_its_dongle_answers(server) {
        let dongle = SigningKey::from_bytes(&[21; 32]);
        let key = server.issue(json!({
            "product": "gstarcad", "license_type": "standalone-dongle", "edition": "professional",
            "dongle": serial(&dongle)
        })).await;
        let activate = |proof: Option<Value>| {
            let mut body = json!({ "key": key, "target": gstarcad("professional"), "machine": machine(1) });
            if let Some(proof) = proof {
                body["dongle"] = proof;
            }
            body
        };
        let challenge = || async {
            let (status, body) = server.post("/v1/dongle/challenge", json!(null)).await;
            assert_eq!(status, 200, "{body}");
            body["challenge"].as_str().unwrap().to_owned()
        };

        // No proof: the machine's dongle is absent, a client error (the server's own dongle
        // being absent is the 503).
        let (status, body) = server.post("/v1/activate", activate(None)).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("DONGLE_ABSENT")), "{body}");
        // Another dongle proves itself, but it does not hold this license.
        let other = SigningKey::from_bytes(&[22; 32]);
        let (status, body) = server.post("/v1/activate", activate(Some(answer(&other, &challenge().await)))).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("DONGLE_MISMATCH")), "{body}");
        // A challenge this server did not issue, or an answer to another challenge: the machine
        // did not prove its dongle, a client error.
        let forged = STANDARD.encode([7u8; 32]);
        let (status, body) = server.post("/v1/activate", activate(Some(answer(&dongle, &forged)))).await;
        assert_eq!((status, body["code"].as_str(), body["rule"].as_str()), (403, Some("DONGLE_ABSENT"), Some("dongle.proof")), "{body}");
        let mut swapped = answer(&dongle, &challenge().await);
        swapped["challenge"] = json!(challenge().await);
        let (status, body) = server.post("/v1/activate", activate(Some(swapped))).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("DONGLE_ABSENT")), "{body}");
        // A proof of the wrong shape is malformed input: not base64, a challenge or an answer of
        // the wrong length (base64 of nothing included).
        let good = answer(&dongle, &challenge().await);
        let short_challenge = json!({ "challenge": STANDARD.encode([1u8; 31]), "proof": good["proof"] });
        let short_proof = json!({ "challenge": good["challenge"], "proof": STANDARD.encode([1u8; 95]) });
        let empty = json!({ "challenge": "", "proof": "" });
        for proof in [json!({ "challenge": "%%", "proof": "" }), short_challenge, short_proof, empty] {
            let (status, body) = server.post("/v1/activate", activate(Some(proof.clone()))).await;
            assert_eq!((status, body["code"].as_str()), (422, Some("INVALID_BODY")), "{proof} {body}");
        }

        // The license's dongle answers: the certificate is bound to the dongle, not the machine.
        let (status, body) = server.post("/v1/activate", activate(Some(answer(&dongle, &challenge().await)))).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("ACTIVATED")), "{body}");
        assert_eq!(body["claims"]["binding"]["dongle"].as_str(), Some(serial(&dongle).as_str()), "{body}");
        // The dongle moved to another machine: validation there passes with a fresh proof.
        let validate = json!({ "key": key, "machine": machine(2), "dongle": answer(&dongle, &challenge().await) });
        let (status, body) = server.post("/v1/validate", validate).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("VALID")), "{body}");
        let (status, body) = server.post("/v1/validate", json!({ "key": key, "machine": machine(2) })).await;
        assert_eq!((status, body["code"].as_str(), body["rule"].as_str()), (403, Some("DONGLE_ABSENT"), Some("dongle.present")), "{body}");
    }
}
