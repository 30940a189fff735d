//! The four exchange file kinds: their exact text, round trips, signatures, and hostile input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use licet_engine::certificate::{
    self, Binding, BindingRule, Certificate, CertificateClaims, CertificateKind, TermKind,
};
use licet_engine::exchange::{
    ActivationRequest, ActivationResponse, ExchangeError, Nonce, RequestDigest, ReturnRequest,
    ReturnResponse, Role, MAX_FILE_BYTES,
};
use licet_engine::{Code, Fingerprint, ProductRef};
use proptest::prelude::*;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn vendor() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

fn machine() -> Fingerprint {
    Fingerprint::from_pairs([
        ("cpu", "c1f04a7d"),
        ("disk", "d49e22b0"),
        ("mac", "9a6b31c8"),
        ("machine-id", "5e8f0d13"),
    ])
}

fn target() -> ProductRef {
    ProductRef {
        product: "gstarcad".into(),
        edition: "professional".into(),
        version: "2027".into(),
    }
}

fn activation_request() -> ActivationRequest {
    ActivationRequest {
        role: Role::Machine,
        license_key: "GCAD-PRO-0001".into(),
        target: target(),
        machine: machine(),
        nonce: Nonce([0x11; 32]),
        created_at: at("2027-01-04T09:00:00Z"),
        server_key: None,
    }
}

fn return_request() -> ReturnRequest {
    ReturnRequest {
        role: Role::Machine,
        license_key: "GCAD-PRO-0001".into(),
        target: target(),
        machine: machine(),
        nonce: Nonce([0x22; 32]),
        created_at: at("2027-03-01T16:30:00Z"),
        certificate_serial: "3f2a9c0d11e4b7a85c6d0e12".into(),
    }
}

fn certificate_for(key: &str, machine: &Fingerprint, signer: &SigningKey) -> Certificate {
    let claims = CertificateClaims {
        kind: CertificateKind::Activation,
        serial: "3f2a9c0d11e4b7a85c6d0e12".into(),
        license_key: key.into(),
        product: "gstarcad".into(),
        edition: "professional".into(),
        version: "2027".into(),
        license_type: "standalone-key".into(),
        term: TermKind::Perpetual,
        features: BTreeMap::from([("drawing".into(), true)]),
        counters: BTreeMap::new(),
        binding: Binding::Fingerprint(machine.components.clone()),
        binding_rule: Some(BindingRule {
            components: ["cpu", "disk", "mac", "machine-id"]
                .map(String::from)
                .to_vec(),
            match_at_least: 3,
            salt_id: "0123456789abcdef".into(),
        }),
        issued_at: at("2027-01-05T10:00:00Z"),
        not_before: at("2027-01-05T10:00:00Z"),
        expires_at: None,
        validate_after: Some(at("2027-01-06T10:00:00Z")),
        offline_until: Some(at("2027-01-20T10:00:00Z")),
        rollback_tolerance_seconds: 3600,
        policy_hash: [9u8; 32],
    };
    certificate::issue(claims, signer)
}

fn activation_response() -> ActivationResponse {
    let request = activation_request();
    let file = request.to_xml().unwrap();
    ActivationResponse::issue(
        &request,
        RequestDigest::of(file.as_bytes()),
        certificate_for(&request.license_key, &request.machine, &vendor()),
        1,
        at("2027-01-05T10:00:00Z"),
        &vendor(),
    )
    .unwrap()
}

fn return_response() -> ReturnResponse {
    let request = return_request();
    let file = request.to_xml().unwrap();
    ReturnResponse::issue(
        &request,
        RequestDigest::of(file.as_bytes()),
        2,
        at("2027-03-02T08:15:00Z"),
        &vendor(),
    )
    .unwrap()
}

fn parse_activation_request(text: &str) -> Result<ActivationRequest, ExchangeError> {
    ActivationRequest::from_xml(text.as_bytes())
}

fn parse_activation_response(text: &str) -> Result<ActivationResponse, ExchangeError> {
    ActivationResponse::from_xml(text.as_bytes(), &vendor().verifying_key())
}

fn parse_return_response(text: &str) -> Result<ReturnResponse, ExchangeError> {
    ReturnResponse::from_xml(text.as_bytes(), &vendor().verifying_key())
}

// ---- exact text --------------------------------------------------------------------------------

#[test]
fn activation_request_text_is_stable() {
    insta::assert_snapshot!(activation_request().to_xml().unwrap());
}

#[test]
fn return_request_text_is_stable() {
    insta::assert_snapshot!(return_request().to_xml().unwrap());
}

#[test]
fn activation_response_text_is_stable() {
    insta::assert_snapshot!(activation_response().to_xml());
}

#[test]
fn return_response_text_is_stable() {
    insta::assert_snapshot!(return_response().to_xml());
}

#[test]
fn license_server_role_is_written_and_read() {
    let mut request = activation_request();
    request.role = Role::LicenseServer;
    // A license server's request names the public key its server license will carry.
    assert!(request.to_xml().is_err());
    request.server_key = Some([0x42; 32]);
    let text = request.to_xml().unwrap();
    assert!(text.contains("role=\"license-server\""));
    assert!(text.contains("<server-key>"));
    assert_eq!(parse_activation_request(&text).unwrap(), request);
    let without_key = text
        .lines()
        .filter(|line| !line.contains("server-key"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(parse_activation_request(&without_key).is_err());
    let mut machine = activation_request();
    machine.server_key = Some([0x42; 32]);
    assert!(machine.to_xml().is_err());
}

// ---- reading back ------------------------------------------------------------------------------

#[test]
fn each_file_kind_reads_back() {
    let request = activation_request();
    assert_eq!(
        parse_activation_request(&request.to_xml().unwrap()).unwrap(),
        request
    );
    let request = return_request();
    assert_eq!(
        ReturnRequest::from_xml(request.to_xml().unwrap().as_bytes()).unwrap(),
        request
    );
    let response = activation_response();
    let loaded = parse_activation_response(&response.to_xml()).unwrap();
    assert_eq!(loaded, response);
    assert_eq!(loaded.certificate().claims().license_key, "GCAD-PRO-0001");
    assert_eq!(loaded.update_counter(), 1);
    let response = return_response();
    let loaded = parse_return_response(&response.to_xml()).unwrap();
    assert_eq!(loaded, response);
    assert_eq!(loaded.certificate_serial(), "3f2a9c0d11e4b7a85c6d0e12");
}

#[test]
fn special_characters_are_escaped_and_read_back() {
    let mut request = activation_request();
    request.license_key = "A<B>&'\"C".into();
    request
        .machine
        .components
        .insert("odd <&> \"name\"".into(), "v'&<".into());
    let text = request.to_xml().unwrap();
    assert!(text.contains("A&lt;B&gt;&amp;&apos;&quot;C"));
    assert_eq!(parse_activation_request(&text).unwrap(), request);
}

#[test]
fn character_references_and_crlf_and_bom_are_accepted_in_requests() {
    let text = activation_request()
        .to_xml()
        .unwrap()
        .replace("GCAD-PRO-0001", "GCAD&#x2D;PRO&#45;0001")
        .replace('\n', "\r\n");
    let with_bom = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
    assert_eq!(
        ActivationRequest::from_xml(&with_bom).unwrap(),
        activation_request()
    );
}

#[test]
fn responses_survive_crlf_line_endings_and_a_byte_order_mark() {
    let text = activation_response().to_xml().replace('\n', "\r\n");
    let with_bom = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
    let loaded = ActivationResponse::from_xml(&with_bom, &vendor().verifying_key()).unwrap();
    assert_eq!(loaded, activation_response());
    let text = return_response().to_xml().replace('\n', "\r\n");
    assert!(parse_return_response(&text).is_ok());
}

#[test]
fn writing_refuses_values_that_could_not_be_read_back() {
    let mut request = activation_request();
    request.license_key = "line\nbreak".into();
    assert!(matches!(
        request.to_xml(),
        Err(ExchangeError::InvalidValue { .. })
    ));
    let mut request = activation_request();
    request.license_key = " padded".into();
    assert!(matches!(
        request.to_xml(),
        Err(ExchangeError::InvalidValue { .. })
    ));
    let mut request = activation_request();
    request.machine = Fingerprint::default();
    assert!(matches!(
        request.to_xml(),
        Err(ExchangeError::InvalidValue { .. })
    ));
    let mut request = activation_request();
    request.created_at = at("1969-12-31T23:59:59Z");
    assert!(matches!(
        request.to_xml(),
        Err(ExchangeError::InvalidTimestamp { .. })
    ));
    let mut request = activation_request();
    request.license_key = "K".repeat(MAX_FILE_BYTES);
    assert_eq!(request.to_xml(), Err(ExchangeError::TooLarge));
    let mut request = return_request();
    request.certificate_serial = String::new();
    assert!(matches!(
        request.to_xml(),
        Err(ExchangeError::InvalidValue { .. })
    ));
}

#[test]
fn times_are_written_in_whole_seconds() {
    let mut request = activation_request();
    request.created_at = at("2027-01-04T09:00:00.750Z");
    let text = request.to_xml().unwrap();
    assert!(text.contains("<created-at>2027-01-04T09:00:00Z</created-at>"));
    assert_eq!(
        parse_activation_request(&text).unwrap().created_at,
        at("2027-01-04T09:00:00Z")
    );
}

// ---- issuing ----------------------------------------------------------------------------------

#[test]
fn a_certificate_for_another_machine_or_key_or_vendor_is_not_issued() {
    let request = activation_request();
    let digest = RequestDigest::of(request.to_xml().unwrap().as_bytes());
    let time = at("2027-01-05T10:00:00Z");
    let other_machine = Fingerprint::from_pairs([("cpu", "x")]);
    for certificate in [
        certificate_for(&request.license_key, &other_machine, &vendor()),
        certificate_for("GCAD-PRO-0002", &request.machine, &vendor()),
        certificate_for(
            &request.license_key,
            &request.machine,
            &SigningKey::from_bytes(&[8u8; 32]),
        ),
    ] {
        let error = ActivationResponse::issue(&request, digest, certificate, 1, time, &vendor())
            .unwrap_err();
        assert!(
            matches!(error, ExchangeError::CertificateMismatch(_)),
            "{error}"
        );
        assert_eq!(error.code(), Code::InvalidRequest);
    }
    let certificate = certificate_for(&request.license_key, &request.machine, &vendor());
    assert!(matches!(
        ActivationResponse::issue(&request, digest, certificate, 0, time, &vendor()),
        Err(ExchangeError::InvalidValue { .. })
    ));
}

// ---- tampering -------------------------------------------------------------------------------

fn assert_every_byte_flip_is_rejected(
    text: &str,
    parse: impl Fn(&[u8]) -> Result<(), ExchangeError>,
) {
    let bytes = text.as_bytes();
    assert!(parse(bytes).is_ok());
    for index in 0..bytes.len() {
        let mut tampered = bytes.to_vec();
        tampered[index] ^= 0x01;
        let error = parse(&tampered).expect_err(&format!("byte {index} flipped was accepted"));
        assert!(
            matches!(
                error.code(),
                Code::ExchangeMalformed | Code::ExchangeTampered
            ),
            "byte {index}: {error}"
        );
    }
}

#[test]
fn every_single_byte_change_of_an_activation_response_is_rejected() {
    let public = vendor().verifying_key();
    assert_every_byte_flip_is_rejected(&activation_response().to_xml(), |bytes| {
        ActivationResponse::from_xml(bytes, &public).map(|_| ())
    });
}

#[test]
fn every_single_byte_change_of_a_return_response_is_rejected() {
    let public = vendor().verifying_key();
    assert_every_byte_flip_is_rejected(&return_response().to_xml(), |bytes| {
        ReturnResponse::from_xml(bytes, &public).map(|_| ())
    });
}

#[test]
fn a_changed_readable_field_is_rejected_even_though_the_signature_holds() {
    let text = activation_response().to_xml();
    let error =
        parse_activation_response(&text.replace("<update-counter>1<", "<update-counter>9<"))
            .unwrap_err();
    assert_eq!(error, ExchangeError::FieldMismatch("update-counter"));
    assert_eq!(error.code(), Code::ExchangeTampered);
    let error =
        parse_activation_response(&text.replace("GCAD-PRO-0001</key>", "GCAD-PRO-0009</key>"))
            .unwrap_err();
    assert_eq!(error, ExchangeError::FieldMismatch("key"));
    let error = parse_activation_response(&text.replace("5e8f0d13", "5e8f0d14")).unwrap_err();
    assert_eq!(error, ExchangeError::FieldMismatch("fingerprint"));
    let error =
        parse_activation_response(&text.replace("role=\"machine\"", "role=\"license-server\""))
            .unwrap_err();
    assert_eq!(error, ExchangeError::FieldMismatch("role"));
}

#[test]
fn a_changed_layout_is_rejected() {
    let text = activation_response().to_xml();
    for changed in [
        text.replace("  <key>", "   <key>"),
        text.replace("<key>", "<!-- note --><key>"),
        text.replace("encoding=\"UTF-8\"", "encoding=\"utf-8\""),
        format!("{text}\n"),
        text.replace("GCAD", "&#x47;CAD"),
    ] {
        assert_eq!(
            parse_activation_response(&changed),
            Err(ExchangeError::LayoutAltered)
        );
    }
}

#[test]
fn another_vendor_key_is_rejected() {
    let other = SigningKey::from_bytes(&[8u8; 32]).verifying_key();
    let error = ActivationResponse::from_xml(activation_response().to_xml().as_bytes(), &other)
        .unwrap_err();
    assert_eq!(error, ExchangeError::BadSignature);
    assert_eq!(error.code(), Code::ExchangeTampered);
}

#[test]
fn a_signed_block_of_another_kind_is_rejected() {
    // The signed content of a return response, pasted into an activation response file.
    let activation = activation_response().to_xml();
    let returned = return_response().to_xml();
    let element = |text: &str, name: &str| {
        let start = text.find(&format!("<{name}>")).unwrap();
        let end = text.find(&format!("</{name}>")).unwrap() + name.len() + 3;
        text[start..end].to_owned()
    };
    let forged = activation
        .replace(
            &element(&activation, "signed"),
            &element(&returned, "signed"),
        )
        .replace(
            &element(&activation, "signature"),
            &element(&returned, "signature"),
        );
    let error = parse_activation_response(&forged).unwrap_err();
    assert!(matches!(error, ExchangeError::SignedContent(_)), "{error}");
    assert_eq!(error.code(), Code::ExchangeTampered);
}

#[test]
fn a_response_is_not_read_as_the_other_kind() {
    let error = parse_return_response(&activation_response().to_xml()).unwrap_err();
    assert!(matches!(error, ExchangeError::WrongKind { .. }));
    let error = parse_activation_request(&activation_response().to_xml()).unwrap_err();
    assert!(matches!(error, ExchangeError::WrongKind { .. }));
}

// ---- hostile input -----------------------------------------------------------------------------

fn request_text() -> String {
    activation_request().to_xml().unwrap()
}

fn request_error(text: &str) -> ExchangeError {
    let error = parse_activation_request(text).unwrap_err();
    assert_eq!(error.code(), Code::ExchangeMalformed, "{error}");
    error
}

#[test]
fn oversized_files_are_refused_before_parsing() {
    let mut huge = request_text();
    huge.push_str(&" ".repeat(MAX_FILE_BYTES));
    assert_eq!(request_error(&huge), ExchangeError::TooLarge);
    let garbage = vec![0xFFu8; MAX_FILE_BYTES + 1];
    assert_eq!(
        ActivationRequest::from_xml(&garbage),
        Err(ExchangeError::TooLarge)
    );
    assert_eq!(
        ActivationResponse::from_xml(&garbage, &vendor().verifying_key()),
        Err(ExchangeError::TooLarge)
    );
}

#[test]
fn deep_nesting_is_refused() {
    let depth = 5_000;
    let nested = format!(
        "<licet-activation-request format=\"1\" role=\"machine\">{}{}</licet-activation-request>",
        "<a>".repeat(depth),
        "</a>".repeat(depth)
    );
    assert_eq!(request_error(&nested), ExchangeError::TooDeep);
}

#[test]
fn too_many_elements_are_refused() {
    let many = request_text().replace(
        "<fingerprint>",
        &format!("<fingerprint>{}", "<x/>".repeat(300)),
    );
    assert_eq!(request_error(&many), ExchangeError::TooManyElements);
}

#[test]
fn doctype_and_entity_declarations_are_refused() {
    let text = request_text();
    let with_doctype = text.replacen(
        "<licet-activation-request",
        "<!DOCTYPE licet-activation-request [<!ENTITY key \"GCAD-PRO-0001\">]>\n<licet-activation-request",
        1,
    );
    assert_eq!(request_error(&with_doctype), ExchangeError::DocType);
    let billion_laughs = text.replacen(
        "<licet-activation-request",
        "<!DOCTYPE l [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]>\n<licet-activation-request",
        1,
    );
    assert_eq!(request_error(&billion_laughs), ExchangeError::DocType);
    let external = text.replacen(
        "<licet-activation-request",
        "<!DOCTYPE l SYSTEM \"file:///etc/passwd\">\n<licet-activation-request",
        1,
    );
    assert_eq!(request_error(&external), ExchangeError::DocType);
}

#[test]
fn entity_references_other_than_the_predefined_ones_are_refused() {
    let text = request_text();
    assert_eq!(
        request_error(&text.replace("GCAD-PRO-0001", "&key;")),
        ExchangeError::EntityReference("key".into())
    );
    assert_eq!(
        request_error(&text.replace("name=\"cpu\"", "name=\"&cpu;\"")),
        ExchangeError::EntityReference("cpu".into())
    );
    // The five predefined entities are fine.
    let fine = text.replace("GCAD-PRO-0001", "&lt;&gt;&amp;&apos;&quot;");
    assert_eq!(
        parse_activation_request(&fine).unwrap().license_key,
        "<>&'\""
    );
}

#[test]
fn processing_instructions_are_refused() {
    let text = request_text();
    let with_stylesheet = text.replacen(
        "<licet-activation-request",
        "<?xml-stylesheet href=\"x.xsl\"?>\n<licet-activation-request",
        1,
    );
    assert_eq!(
        request_error(&with_stylesheet),
        ExchangeError::ProcessingInstruction("xml-stylesheet".into())
    );
    let inside = text.replace("<key>", "<?php echo 1 ?><key>");
    assert_eq!(
        request_error(&inside),
        ExchangeError::ProcessingInstruction("php".into())
    );
    let late_declaration = format!("\n{text}");
    assert!(matches!(
        request_error(&late_declaration),
        ExchangeError::Xml(_)
    ));
    let second_declaration = text.replace("<key>", "<?xml version=\"1.0\"?><key>");
    assert!(matches!(
        request_error(&second_declaration),
        ExchangeError::Xml(_) | ExchangeError::ProcessingInstruction(_)
    ));
}

#[test]
fn other_encodings_are_refused() {
    let text = request_text();
    for declared in ["UTF-16", "ISO-8859-1", "windows-1252"] {
        assert_eq!(
            request_error(&text.replace("UTF-8", declared)),
            ExchangeError::UnsupportedEncoding(declared.into())
        );
    }
    // Latin-1 bytes in a file that claims (or defaults to) UTF-8.
    let latin1 = text
        .replace("GCAD", "GCAD\u{e9}")
        .replace('\u{e9}', "\u{1}");
    let mut bytes = latin1.into_bytes();
    let at = bytes.iter().position(|b| *b == 1).unwrap();
    bytes[at] = 0xE9;
    assert_eq!(
        ActivationRequest::from_xml(&bytes),
        Err(ExchangeError::NotUtf8)
    );
    // UTF-16 with its byte order mark.
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    assert_eq!(
        ActivationRequest::from_xml(&utf16),
        Err(ExchangeError::NotUtf8)
    );
    assert!(matches!(
        request_error(&text.replace("version=\"1.0\"", "version=\"1.1\"")),
        ExchangeError::Xml(_)
    ));
}

#[test]
fn missing_duplicated_and_unknown_elements_are_refused() {
    let text = request_text();
    assert_eq!(
        request_error(&text.replace("  <edition>professional</edition>\n", "")),
        ExchangeError::MissingElement("licet-activation-request/edition".into())
    );
    assert_eq!(
        request_error(&text.replace(
            "<edition>professional</edition>",
            "<edition>professional</edition><edition>standard</edition>"
        )),
        ExchangeError::DuplicateElement("licet-activation-request/edition".into())
    );
    assert_eq!(
        request_error(&text.replace("<key>", "<seats>99</seats><key>")),
        ExchangeError::UnknownElement("licet-activation-request/seats".into())
    );
    assert!(matches!(
        request_error(&text.replace("<key>GCAD-PRO-0001</key>", "<key><b>GCAD</b></key>")),
        ExchangeError::UnknownElement(_)
    ));
    assert!(matches!(
        request_error(&text.replace("name=\"mac\"", "name=\"cpu\"")),
        ExchangeError::DuplicateElement(_)
    ));
    assert!(matches!(
        request_error(
            &text
                .replace("<component name=\"mac\">", "<part name=\"mac\">")
                .replace("9a6b31c8</component>", "9a6b31c8</part>")
        ),
        ExchangeError::UnknownElement(_)
    ));
    assert_eq!(
        request_error(&text.replace("<key>", "stray text<key>")),
        ExchangeError::UnexpectedText("licet-activation-request".into())
    );
    assert!(matches!(
        request_error(&format!("{text}<licet-activation-request/>")),
        ExchangeError::Xml(_)
    ));
    assert!(matches!(request_error(""), ExchangeError::Xml(_)));
    assert!(matches!(
        request_error(&text.replace("</licet-activation-request>", "")),
        ExchangeError::Xml(_)
    ));
}

#[test]
fn missing_duplicated_and_unknown_attributes_are_refused() {
    let text = request_text();
    assert_eq!(
        request_error(&text.replace(" role=\"machine\"", "")),
        ExchangeError::MissingAttribute {
            element: "licet-activation-request".into(),
            attribute: "role"
        }
    );
    assert_eq!(
        request_error(&text.replace(" format=\"1\"", "")),
        ExchangeError::MissingAttribute {
            element: "licet-activation-request".into(),
            attribute: "format"
        }
    );
    assert_eq!(
        request_error(&text.replace(
            "role=\"machine\"",
            "role=\"machine\" role=\"license-server\""
        )),
        ExchangeError::DuplicateAttribute {
            element: "licet-activation-request".into(),
            attribute: "role".into()
        }
    );
    assert_eq!(
        request_error(&text.replace("format=\"1\"", "format=\"1\" xmlns=\"urn:x\"")),
        ExchangeError::UnknownAttribute {
            element: "licet-activation-request".into(),
            attribute: "xmlns".into()
        }
    );
    assert!(matches!(
        request_error(&text.replace("name=\"mac\"", "name=\"m<c\"")),
        ExchangeError::Xml(_)
    ));
    assert!(matches!(
        request_error(&text.replace("<key>", "<key id=\"1\">")),
        ExchangeError::UnknownAttribute { .. }
    ));
    assert!(matches!(
        request_error(&text.replace("<component name=\"cpu\">", "<component>")),
        ExchangeError::MissingAttribute { .. }
    ));
    assert!(matches!(
        request_error(&text.replace("role=\"machine\"", "role=\"dongle\"")),
        ExchangeError::InvalidValue { .. }
    ));
}

#[test]
fn unknown_format_versions_are_refused() {
    let text = request_text();
    for version in ["2", "0", "1.0", ""] {
        assert_eq!(
            request_error(&text.replace("format=\"1\"", &format!("format=\"{version}\""))),
            ExchangeError::UnsupportedFormat(version.into())
        );
    }
    let response = activation_response().to_xml();
    assert_eq!(
        parse_activation_response(&response.replace("format=\"1\"", "format=\"2\"")),
        Err(ExchangeError::UnsupportedFormat("2".into()))
    );
}

#[test]
fn bad_timestamps_are_refused() {
    let text = request_text();
    for bad in [
        "2027-01-04 09:00:00",
        "2027-01-04T09:00:00+01:00",
        "2027-01-04T09:00:00.5Z",
        "2027-13-04T09:00:00Z",
        "2027-02-30T09:00:00Z",
        "27-01-04T09:00:00Z",
        "1969-12-31T23:59:59Z",
        "2027-01-04T09:00:60Z",
        "tomorrow",
        "",
    ] {
        let changed = text.replace("2027-01-04T09:00:00Z", bad);
        assert_eq!(
            request_error(&changed),
            ExchangeError::InvalidTimestamp {
                field: "created-at",
                value: bad.into()
            },
            "{bad}"
        );
    }
}

#[test]
fn bad_values_are_refused() {
    let text = request_text();
    let nonce = "11".repeat(32);
    for bad in [
        "11".repeat(31),
        "11".repeat(33),
        "AB".repeat(32),
        "zz".repeat(32),
    ] {
        assert!(
            matches!(
                request_error(&text.replace(&nonce, &bad)),
                ExchangeError::InvalidValue { .. }
            ),
            "{bad}"
        );
    }
    for bad in ["", " GCAD", "GCAD ", "GC&#x9;AD", "GC&#x1;AD"] {
        assert!(
            matches!(
                request_error(&text.replace("GCAD-PRO-0001", bad)),
                ExchangeError::InvalidValue { .. }
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        request_error(&text.replace("GCAD-PRO-0001", "GC&#0;AD")),
        ExchangeError::Xml(_)
    ));
    let empty_fingerprint = {
        let start = text.find("<fingerprint>").unwrap();
        let end = text.find("</fingerprint>").unwrap();
        format!("{}<fingerprint>{}", &text[..start], &text[end..])
    };
    assert!(matches!(
        request_error(&empty_fingerprint),
        ExchangeError::InvalidValue { .. }
    ));
}

#[test]
fn bad_base64_is_refused() {
    let text = activation_response().to_xml();
    let start = text.find("<signature>").unwrap() + "<signature>".len();
    let mut changed = text.clone();
    changed.replace_range(start..start + 4, "!!!!");
    assert_eq!(
        parse_activation_response(&changed),
        Err(ExchangeError::InvalidBase64("signature"))
    );
    let start = text.find("<signed>").unwrap() + "<signed>".len();
    let mut changed = text.clone();
    changed.insert(start, '=');
    assert_eq!(
        parse_activation_response(&changed),
        Err(ExchangeError::InvalidBase64("signed"))
    );
    let short = text.replace(
        &text[text.find("<signature>").unwrap()..text.find("</signature>").unwrap()],
        "<signature>AAAA",
    );
    assert_eq!(
        parse_activation_response(&short),
        Err(ExchangeError::BadSignature)
    );
}

#[test]
fn every_error_has_a_lowercase_message_without_a_period() {
    let errors = [
        ExchangeError::TooLarge,
        ExchangeError::DocType,
        ExchangeError::EntityReference("x".into()),
        ExchangeError::LayoutAltered,
        ExchangeError::WrongMachine,
        ExchangeError::UnknownRequest,
        ExchangeError::ReturnNotPending("K".into()),
        ExchangeError::SerialReturned("s".into()),
    ];
    for error in errors {
        let message = error.to_string();
        assert!(!message.ends_with('.'), "{message}");
        assert!(message.chars().next().unwrap().is_lowercase() || message.starts_with('`'));
    }
}

// ---- properties --------------------------------------------------------------------------------

fn value() -> impl Strategy<Value = String> {
    "[!-~\u{e9}\u{4e2d}]([ -~\u{e9}\u{4e2d}]{0,10}[!-~\u{e9}\u{4e2d}])?"
}

fn time() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..253_402_300_799).prop_map(|seconds| DateTime::from_timestamp(seconds, 0).unwrap())
}

fn fingerprint() -> impl Strategy<Value = Fingerprint> {
    proptest::collection::btree_map(value(), value(), 1..6)
        .prop_map(|components| Fingerprint { components })
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Machine), Just(Role::LicenseServer)]
}

fn arbitrary_activation_request() -> impl Strategy<Value = ActivationRequest> {
    (
        role(),
        proptest::collection::vec(value(), 4),
        fingerprint(),
        any::<[u8; 32]>(),
        time(),
    )
        .prop_map(
            |(role, values, machine, nonce, created_at)| ActivationRequest {
                role,
                license_key: values[0].clone(),
                target: ProductRef {
                    product: values[1].clone(),
                    edition: values[2].clone(),
                    version: values[3].clone(),
                },
                machine,
                nonce: Nonce(nonce),
                created_at,
                server_key: (role == Role::LicenseServer).then_some(nonce),
            },
        )
}

fn arbitrary_return_request() -> impl Strategy<Value = ReturnRequest> {
    (arbitrary_activation_request(), value()).prop_map(|(request, serial)| ReturnRequest {
        role: request.role,
        license_key: request.license_key,
        target: request.target,
        machine: request.machine,
        nonce: request.nonce,
        created_at: request.created_at,
        certificate_serial: serial,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn activation_requests_round_trip(request in arbitrary_activation_request()) {
        let text = request.to_xml().unwrap();
        prop_assert_eq!(ActivationRequest::from_xml(text.as_bytes()).unwrap(), request);
    }

    #[test]
    fn return_requests_round_trip(request in arbitrary_return_request()) {
        let text = request.to_xml().unwrap();
        prop_assert_eq!(ReturnRequest::from_xml(text.as_bytes()).unwrap(), request);
    }

}

proptest! {
    // Each case signs and verifies two signatures; fewer cases keep the debug build quick.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn activation_responses_round_trip(
        request in arbitrary_activation_request(),
        counter in 1u64..,
        issued_at in time(),
    ) {
        let digest = RequestDigest::of(request.to_xml().unwrap().as_bytes());
        let certificate = certificate_for(&request.license_key, &request.machine, &vendor());
        let response =
            ActivationResponse::issue(&request, digest, certificate, counter, issued_at, &vendor())
                .unwrap();
        let loaded = parse_activation_response(&response.to_xml()).unwrap();
        prop_assert_eq!(loaded.nonce(), request.nonce);
        prop_assert_eq!(loaded.request_digest(), digest);
        prop_assert_eq!(loaded.machine(), &request.machine);
        prop_assert_eq!(loaded, response);
    }

    #[test]
    fn return_responses_round_trip(
        request in arbitrary_return_request(),
        counter in 1u64..,
        issued_at in time(),
    ) {
        let digest = RequestDigest::of(request.to_xml().unwrap().as_bytes());
        let response = ReturnResponse::issue(&request, digest, counter, issued_at, &vendor()).unwrap();
        let loaded = parse_return_response(&response.to_xml()).unwrap();
        prop_assert_eq!(loaded.certificate_serial(), request.certificate_serial.as_str());
        prop_assert_eq!(loaded, response);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parsers(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let public = vendor().verifying_key();
        let _ = ActivationRequest::from_xml(&bytes);
        let _ = ReturnRequest::from_xml(&bytes);
        let _ = ActivationResponse::from_xml(&bytes, &public);
        let _ = ReturnResponse::from_xml(&bytes, &public);
    }

    #[test]
    fn mutated_files_never_panic_the_parsers(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let public = vendor().verifying_key();
        for text in [
            activation_request().to_xml().unwrap(),
            return_request().to_xml().unwrap(),
            activation_response().to_xml(),
            return_response().to_xml(),
        ] {
            let mut bytes = text.into_bytes();
            for (index, byte) in &edits {
                let at = index.index(bytes.len());
                bytes[at] = *byte;
            }
            let truncated = &bytes[..cut.index(bytes.len() + 1)];
            for input in [bytes.as_slice(), truncated] {
                let _ = ActivationRequest::from_xml(input);
                let _ = ReturnRequest::from_xml(input);
                let _ = ActivationResponse::from_xml(input, &public);
                let _ = ReturnResponse::from_xml(input, &public);
            }
        }
    }
}

#[test]
fn the_documented_examples_are_valid_files() {
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/exchange-files.md"
    ))
    .unwrap();
    let examples: Vec<String> = docs
        .split("```xml\n")
        .skip(1)
        .map(|block| format!("{}\n", block.split("\n```").next().unwrap()))
        .collect();
    assert_eq!(examples.len(), 4);
    assert_eq!(
        parse_activation_request(&examples[0]).unwrap(),
        activation_request()
    );
    assert_eq!(
        ReturnRequest::from_xml(examples[1].as_bytes()).unwrap(),
        return_request()
    );
    assert_eq!(
        parse_activation_response(&examples[2]).unwrap(),
        activation_response()
    );
    assert_eq!(
        parse_return_response(&examples[3]).unwrap(),
        return_response()
    );
}
