//! Domain separation of signatures: one vendor key signs certificates, server licenses, exchange
//! response files, plugin manifests and product bundles, and here the same key is also a dongle's key. Each kind
//! signs its own context (`licet_engine::signature::SignedKind`), so a real signed document of
//! one kind, its signed bytes and signature spliced into another kind's container the way an
//! attacker would, is refused by that kind's real verifier at the signature, and verifies only
//! as itself.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey, SIGNATURE_LENGTH};
use licet_engine::bundle::{self, BundleError, BundledPlugin, PluginRole, ProductBundle};
use licet_engine::certificate::{
    self, Binding, BindingRule, Certificate, CertificateClaims, CertificateError, CertificateKind,
    TermKind,
};
use licet_engine::dongle::{DongleProof, DongleProofError, CHALLENGE_LEN};
use licet_engine::exchange::{
    ActivationRequest, ActivationResponse, ExchangeError, Nonce, RequestDigest, Role,
};
use licet_engine::server_license::{self, ServedKinds, ServerLicense, ServerLicenseClaims};
use licet_engine::signature::SignedKind;
use licet_engine::{Fingerprint, ProductRef};
use licet_plugin_host::{
    sign_plugin, verify_plugin, PluginError, SoftwareDongle, DEFAULT_DONGLE_PRODUCT_ID,
    DEFAULT_DONGLE_VENDOR_ID,
};

/// The fake component the plugin manifest names; only its hash matters to the signature check.
const WASM_NAME: &str = "dongle_hid.wasm";
const WASM_BYTES: &[u8] = b"\0asm stands in for the dongle plugin";
const LICENSE_KEY: &str = "GCAD-PRO-0001";

/// The exact bytes a document's signature covers, and the signature.
#[derive(Debug, Clone)]
struct Signed {
    kind: SignedKind,
    bytes: Vec<u8>,
    signature: Signature,
}

/// What a verifier made of a document presented to it.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The signature verified and the document was accepted.
    Verified,
    /// The verifier refused the signature.
    Refused,
    /// The verifier cannot be handed these bytes at all (a dongle signs 32-byte challenges only).
    NotPresentable,
}

/// One real document of every kind, all signed with the same key, and the containers they came in.
struct Documents {
    vendor: VerifyingKey,
    signed: Vec<Signed>,
    /// The activation response file, into which other kinds' bytes are spliced.
    response_file: String,
    /// The challenge the dongle answered.
    challenge: [u8; CHALLENGE_LEN],
    /// The dongle's serial (its public key is the vendor's).
    dongle_serial: String,
}

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 9, 0, 0).unwrap()
}

fn machine() -> Fingerprint {
    Fingerprint::from_pairs([("machine-id", "a1".repeat(32)), ("cpu", "c3".repeat(32))])
}

/// The binding rule signed with the fingerprint bindings.
fn rule() -> BindingRule {
    BindingRule {
        components: ["cpu", "disk", "mac", "machine-id"]
            .map(String::from)
            .to_vec(),
        match_at_least: 3,
        salt_id: "0123456789abcdef".to_owned(),
    }
}

fn certificate_claims() -> CertificateClaims {
    CertificateClaims {
        kind: CertificateKind::Activation,
        serial: "cert-0001".to_owned(),
        license_key: LICENSE_KEY.to_owned(),
        product: "gstarcad".to_owned(),
        edition: "professional".to_owned(),
        version: "2027".to_owned(),
        license_type: "standalone".to_owned(),
        term: TermKind::Perpetual,
        features: BTreeMap::from([("export-pdf".to_owned(), true)]),
        counters: BTreeMap::from([("max-layouts".to_owned(), 64)]),
        binding: Binding::Fingerprint(machine().components),
        binding_rule: Some(rule()),
        issued_at: at(1),
        not_before: at(1),
        expires_at: None,
        validate_after: Some(at(2)),
        offline_until: Some(at(31)),
        rollback_tolerance_seconds: 3600,
        policy_hash: certificate::policy_hash(b"policy"),
    }
}

fn server_license_claims() -> ServerLicenseClaims {
    ServerLicenseClaims {
        serial: "sl-cert-0002".to_owned(),
        license_key: "GCAD-NET-0002".to_owned(),
        product: "gstarcad".to_owned(),
        edition: "professional".to_owned(),
        version: "2027".to_owned(),
        license_type: "network".to_owned(),
        term: TermKind::Rental,
        seats: 5,
        lease_seconds: 900,
        borrow_max_seconds: Some(7 * 86_400),
        kinds: ServedKinds {
            seat: true,
            borrow: true,
        },
        features: BTreeMap::new(),
        counters: BTreeMap::new(),
        binding: Binding::Fingerprint(machine().components),
        binding_rule: Some(rule()),
        server_key: SigningKey::from_bytes(&[0x53; 32])
            .verifying_key()
            .to_bytes(),
        issued_at: at(1),
        not_before: at(1),
        expires_at: Some(at(28)),
        offline_until: at(8),
        policy_hash: certificate::policy_hash(b"policy"),
    }
}

/// Splits a `signed bytes ‖ signature` container.
fn split_container(kind: SignedKind, container: &[u8]) -> Signed {
    let (bytes, signature) = container.split_at(container.len() - SIGNATURE_LENGTH);
    Signed {
        kind,
        bytes: bytes.to_vec(),
        signature: Signature::from_slice(signature).unwrap(),
    }
}

/// The text of the one `<name>` leaf of an exchange file.
fn leaf<'a>(file: &'a str, name: &str) -> &'a str {
    let open = format!("<{name}>");
    let start = file.find(&open).unwrap() + open.len();
    let end = start + file[start..].find(&format!("</{name}>")).unwrap();
    &file[start..end]
}

/// The exchange file with the text of its `<name>` leaf replaced.
fn splice(file: &str, name: &str, text: &str) -> String {
    let old = leaf(file, name);
    let start = old.as_ptr() as usize - file.as_ptr() as usize;
    format!("{}{text}{}", &file[..start], &file[start + old.len()..])
}

/// Writes a plugin directory holding exactly `manifest`, `signature` and the fake component.
fn write_plugin(dir: &Path, manifest: &[u8], signature: &Signature) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(WASM_NAME), WASM_BYTES).unwrap();
    std::fs::write(dir.join("plugin.json"), manifest).unwrap();
    std::fs::write(
        dir.join("plugin.sig"),
        format!("{}\n", STANDARD.encode(signature.to_bytes())),
    )
    .unwrap();
}

fn documents(scratch: &Path) -> Documents {
    let key = SigningKey::from_bytes(&[0x4c; 32]);
    let vendor = key.verifying_key();
    let mut signed = Vec::new();

    // A certificate.
    let certificate = certificate::issue(certificate_claims(), &key);
    signed.push(Signed {
        kind: SignedKind::Certificate,
        bytes: certificate.signed_bytes().to_vec(),
        signature: *certificate.signature(),
    });

    // A server license.
    let server_license = server_license::issue(server_license_claims(), &key);
    signed.push(split_container(
        SignedKind::ServerLicense,
        &server_license.to_bytes(),
    ));

    // An activation response file answering a machine's request, carrying the certificate.
    let request = ActivationRequest {
        role: Role::Machine,
        license_key: LICENSE_KEY.to_owned(),
        target: ProductRef {
            product: "gstarcad".to_owned(),
            edition: "professional".to_owned(),
            version: "2027".to_owned(),
        },
        machine: machine(),
        nonce: Nonce([0x6e; 32]),
        created_at: at(1),
        server_key: None,
    };
    let request_file = request.to_xml().unwrap();
    let response = ActivationResponse::issue(
        &request,
        RequestDigest::of(request_file.as_bytes()),
        certificate,
        1,
        at(1),
        &key,
    )
    .unwrap();
    let response_file = response.to_xml();
    signed.push(Signed {
        kind: SignedKind::ExchangeResponse,
        bytes: response.signed_bytes().to_vec(),
        signature: Signature::from_slice(
            &STANDARD.decode(leaf(&response_file, "signature")).unwrap(),
        )
        .unwrap(),
    });

    // A plugin manifest, signed by the plugin host's signing function.
    let plugin_dir = scratch.join("signed-plugin");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    std::fs::write(plugin_dir.join(WASM_NAME), WASM_BYTES).unwrap();
    std::fs::write(
        plugin_dir.join("plugin.json"),
        format!(
            r#"{{"name":"dongle-hid","version":"0.1.0","world":"hardware-check","wasm":"{WASM_NAME}",
                "config":{{"vendor-id":"0x1209","product-id":"0x4c43"}},
                "allow":{{"hid":[{{"vendor_id":4617,"product_id":19523}}]}}}}"#
        ),
    )
    .unwrap();
    sign_plugin(&plugin_dir, &key).unwrap();
    let manifest = std::fs::read(plugin_dir.join("plugin.json")).unwrap();
    let signature_text = std::fs::read_to_string(plugin_dir.join("plugin.sig")).unwrap();
    signed.push(Signed {
        kind: SignedKind::PluginManifest,
        bytes: manifest,
        signature: Signature::from_slice(&STANDARD.decode(signature_text.trim()).unwrap()).unwrap(),
    });

    // A dongle's answer to a challenge, by a dongle whose key is the vendor's.
    let dongle = SoftwareDongle {
        vendor_id: DEFAULT_DONGLE_VENDOR_ID,
        product_id: DEFAULT_DONGLE_PRODUCT_ID,
        signing_key: key.clone(),
    };
    let challenge = [0xc7; CHALLENGE_LEN];
    let proof = dongle.answer(&challenge);
    assert_eq!(proof.public_key, vendor.to_bytes());
    signed.push(Signed {
        kind: SignedKind::DongleProof,
        bytes: challenge.to_vec(),
        signature: Signature::from_bytes(&proof.signature),
    });

    // A product bundle, carrying the signed plugin.
    let bundle = ProductBundle {
        product: "gstarcad".to_owned(),
        policy_yaml: "product: gstarcad\n".to_owned(),
        servers: vec!["activation.example.com:8440".to_owned()],
        server_certificate: None,
        roles: BTreeMap::from([(PluginRole::Dongle, "dongle-hid".to_owned())]),
        plugins: BTreeMap::from([(
            "dongle-hid".to_owned(),
            BundledPlugin {
                manifest: std::fs::read(plugin_dir.join("plugin.json")).unwrap(),
                manifest_signature: STANDARD.decode(signature_text.trim()).unwrap(),
                wasm: WASM_BYTES.to_vec(),
            },
        )]),
    };
    let bundle_file = bundle.sign(&key).unwrap();
    signed.push(Signed {
        kind: SignedKind::ProductBundle,
        bytes: bundle.content_bytes(),
        signature: Signature::from_slice(&bundle_file[bundle_file.len() - SIGNATURE_LENGTH..])
            .unwrap(),
    });

    assert_eq!(
        signed
            .iter()
            .map(|document| document.kind)
            .collect::<Vec<_>>(),
        SignedKind::ALL,
        "one document of every kind"
    );
    Documents {
        vendor,
        signed,
        response_file,
        challenge,
        dongle_serial: dongle.serial(),
    }
}

/// Presents `bytes` and `signature` to the real public verifier of `verifier`, in that kind's
/// container. Any answer but acceptance or a refusal of the signature fails the test: an error
/// after the signature check means the signature was accepted.
fn present(
    documents: &Documents,
    scratch: &Path,
    verifier: SignedKind,
    bytes: &[u8],
    signature: &Signature,
) -> Outcome {
    let vendor = &documents.vendor;
    let unexpected = |error: &dyn std::fmt::Display| -> Outcome {
        panic!("{verifier:?} verifier: neither accepted nor refused at the signature: {error}")
    };
    match verifier {
        SignedKind::Certificate => {
            let container = [bytes, &signature.to_bytes()].concat();
            match Certificate::from_bytes(&container, vendor) {
                Ok(_) => Outcome::Verified,
                Err(CertificateError::BadSignature) => Outcome::Refused,
                Err(error) => unexpected(&error),
            }
        }
        SignedKind::ServerLicense => {
            let container = [bytes, &signature.to_bytes()].concat();
            match ServerLicense::from_bytes(&container, vendor) {
                Ok(_) => Outcome::Verified,
                Err(CertificateError::BadSignature) => Outcome::Refused,
                Err(error) => unexpected(&error),
            }
        }
        SignedKind::ExchangeResponse => {
            let file = splice(&documents.response_file, "signed", &STANDARD.encode(bytes));
            let file = splice(&file, "signature", &STANDARD.encode(signature.to_bytes()));
            match ActivationResponse::from_xml(file.as_bytes(), vendor) {
                Ok(_) => Outcome::Verified,
                Err(ExchangeError::BadSignature) => Outcome::Refused,
                Err(error) => unexpected(&error),
            }
        }
        SignedKind::PluginManifest => {
            let dir = tempfile::tempdir_in(scratch).unwrap();
            write_plugin(dir.path(), bytes, signature);
            match verify_plugin(dir.path(), vendor) {
                Ok(_) => Outcome::Verified,
                Err(PluginError::BadSignature { .. }) => Outcome::Refused,
                Err(error) => unexpected(&error),
            }
        }
        SignedKind::DongleProof => {
            let Ok(challenge) = <[u8; CHALLENGE_LEN]>::try_from(bytes) else {
                return Outcome::NotPresentable;
            };
            let proof = DongleProof {
                public_key: vendor.to_bytes(),
                signature: signature.to_bytes(),
            };
            match proof.verify(&challenge) {
                Ok(serial) => {
                    assert_eq!(challenge, documents.challenge);
                    assert_eq!(serial, documents.dongle_serial);
                    Outcome::Verified
                }
                Err(DongleProofError::Signature) => Outcome::Refused,
                Err(error) => unexpected(&error),
            }
        }
        SignedKind::ProductBundle => {
            match ProductBundle::verify(&bundle::seal(bytes, signature), vendor) {
                Ok(_) => Outcome::Verified,
                Err(BundleError::BadSignature) => Outcome::Refused,
                Err(error) => unexpected(&error),
            }
        }
        other => panic!("no verifier for {other:?}: add the new kind to this test"),
    }
}

#[test]
fn every_kind_verifies_as_itself_and_as_no_other() {
    let scratch = tempfile::tempdir().unwrap();
    let documents = documents(scratch.path());
    for document in &documents.signed {
        for verifier in SignedKind::ALL {
            let outcome = present(
                &documents,
                scratch.path(),
                verifier,
                &document.bytes,
                &document.signature,
            );
            let cell = format!("{:?} presented as {verifier:?}", document.kind);
            if verifier == document.kind {
                assert_eq!(outcome, Outcome::Verified, "{cell}");
            } else if verifier == SignedKind::DongleProof {
                // A dongle verifier takes a 32-byte challenge, no other document is that short;
                // a dongle's signature is checked against the signed documents above.
                assert_eq!(outcome, Outcome::NotPresentable, "{cell}");
            } else {
                assert_eq!(outcome, Outcome::Refused, "{cell}");
            }
        }
    }
}

#[test]
fn a_signature_with_another_documents_bytes_is_refused_by_every_verifier() {
    // The signatures are not interchangeable within a kind's container either: each kind's
    // container with its own bytes and another kind's signature is refused.
    let scratch = tempfile::tempdir().unwrap();
    let documents = documents(scratch.path());
    for bytes_of in &documents.signed {
        for signature_of in &documents.signed {
            if bytes_of.kind == signature_of.kind {
                continue;
            }
            let outcome = present(
                &documents,
                scratch.path(),
                bytes_of.kind,
                &bytes_of.bytes,
                &signature_of.signature,
            );
            assert_eq!(
                outcome,
                Outcome::Refused,
                "{:?} bytes with the {:?} signature",
                bytes_of.kind,
                signature_of.kind
            );
        }
    }
}

#[test]
fn every_kind_signs_its_own_context() {
    let scratch = tempfile::tempdir().unwrap();
    let documents = documents(scratch.path());
    for document in &documents.signed {
        // Never the bare bytes: a signature without a context would verify here.
        assert!(
            documents
                .vendor
                .verify_strict(&document.bytes, &document.signature)
                .is_err(),
            "{:?} signs its bytes without a context",
            document.kind
        );
        for kind in SignedKind::ALL {
            let verified = kind
                .verify(&document.bytes, &document.signature, &documents.vendor)
                .is_ok();
            assert_eq!(
                verified,
                kind == document.kind,
                "{:?} checked in the {kind:?} context",
                document.kind
            );
        }
    }
}

#[test]
fn every_context_is_distinct_and_documented() {
    let guide = include_str!("../../docs/certificates.md");
    for kind in SignedKind::ALL {
        let context = kind.context();
        let label = context
            .strip_suffix(b"\0")
            .filter(|label| !label.is_empty())
            .and_then(|label| std::str::from_utf8(label).ok())
            .unwrap_or_else(|| panic!("the {kind:?} context {context:?} is not a NUL-ended label"));
        assert!(
            guide.contains(&format!("`{label}\\0`")),
            "docs/certificates.md does not list the {kind:?} context `{label}\\0`"
        );
        for other in SignedKind::ALL {
            if other != kind {
                assert!(
                    !other.context().starts_with(context),
                    "{kind:?} / {other:?}"
                );
            }
        }
    }
}
