//! The shipped `transport-text` plugin, both sides: real exchange files become text blocks and
//! come back byte for byte; typos are refused with their line.

use std::path::Path;

use chrono::{TimeZone, Utc};
use licet_engine::exchange::{ActivationRequest, Nonce, ReturnRequest, Role};
use licet_engine::{Fingerprint, ProductRef};
use licet_plugin_host::{Destination, PluginError, TransportPlugin, WireReply, World};

use crate::support::{host, plugin, urls};

fn text_plugin(dir: &tempfile::TempDir) -> TransportPlugin {
    let plugin_dir = plugin(dir, "transport-text", World::Transport, &[], urls(&[]));
    host().load_transport(&plugin_dir).unwrap()
}

/// An exchange file the engine's snapshot tests keep (signed with their test key).
fn snapshot(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../engine/tests/snapshots")
        .join(format!("exchange_files__{name}_text_is_stable.snap"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut file = text.lines().skip(4).collect::<Vec<_>>().join("\n");
    file.push('\n');
    file.into_bytes()
}

/// A fingerprint like a real machine's: four SHA-256 hex components.
fn machine() -> Fingerprint {
    Fingerprint {
        components: [
            ("cpu", 0x11u8),
            ("disk", 0x22),
            ("mac", 0x33),
            ("machine-id", 0x44),
        ]
        .iter()
        .map(|(name, seed)| {
            let value: String = (0..32u8)
                .map(|index| format!("{:02x}", seed.wrapping_mul(index + 7)))
                .collect();
            ((*name).to_owned(), value)
        })
        .collect(),
    }
}

fn target() -> ProductRef {
    ProductRef {
        product: "gstarcad".into(),
        edition: "professional".into(),
        version: "2027".into(),
    }
}

fn real_requests() -> Vec<Vec<u8>> {
    let created_at = Utc.with_ymd_and_hms(2027, 1, 4, 9, 0, 0).unwrap();
    let activation = ActivationRequest {
        role: Role::Machine,
        license_key: "GCAD-PRO-7K2M-QX9T".into(),
        target: target(),
        machine: machine(),
        nonce: Nonce([0xa5; 32]),
        created_at,
        server_key: None,
    };
    let server = ActivationRequest {
        role: Role::LicenseServer,
        server_key: Some([0x42; 32]),
        ..activation.clone()
    };
    let giving_back = ReturnRequest {
        role: Role::Machine,
        license_key: "GCAD-PRO-7K2M-QX9T".into(),
        target: target(),
        machine: machine(),
        nonce: Nonce([0x5a; 32]),
        created_at,
        certificate_serial: "3f2a9c0d11e4b7a85c6d0e12".into(),
    };
    vec![
        activation.to_xml().unwrap().into_bytes(),
        server.to_xml().unwrap().into_bytes(),
        giving_back.to_xml().unwrap().into_bytes(),
    ]
}

fn reply(block: &[u8]) -> WireReply {
    WireReply {
        status: 0,
        body: block.to_vec(),
    }
}

fn plugin_message(error: &PluginError, expected_code: &str) -> String {
    match error {
        PluginError::Plugin { code, message, .. } if code == expected_code => message.clone(),
        other => panic!("expected a `{expected_code}` plugin error, got {other}"),
    }
}

#[test]
fn requests_become_text_blocks_and_come_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let transport = text_plugin(&dir);
    let mut files = real_requests();
    files.push(snapshot("activation_request"));
    files.push(snapshot("return_request"));
    for file in files {
        let encoded = transport.encode(&file).unwrap();
        let Destination::Text { title } = &encoded.destination else {
            panic!("{:?}", encoded.destination);
        };
        assert!(title.ends_with("request"), "{title}");
        let block = String::from_utf8(encoded.body.clone()).unwrap();
        assert!(block.starts_with("LICET "), "{block}");
        // The block is much smaller than the file, and each line is short enough to read out.
        assert!(
            block.len() * 3 < file.len() * 2,
            "{} of {}",
            block.len(),
            file.len()
        );
        assert!(block.lines().all(|line| line.len() <= 33), "{block}");
        let back = transport
            .decode_request(&encoded.content_type, &encoded.body)
            .unwrap();
        assert_eq!(back, file);
        // The client side does not take a request block.
        let error = transport.decode(&reply(&encoded.body)).unwrap_err();
        assert!(plugin_message(&error, "bad-reply").contains("request"));
    }
}

#[test]
fn responses_become_text_blocks_and_come_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let transport = text_plugin(&dir);
    for name in ["activation_response", "return_response"] {
        let file = snapshot(name);
        let answer = transport.encode_answer(&file).unwrap();
        assert!(answer.content_type.starts_with("text/plain"));
        let block = String::from_utf8(answer.body.clone()).unwrap();
        assert!(
            block.len() < file.len(),
            "{} of {}",
            block.len(),
            file.len()
        );
        assert_eq!(transport.decode(&reply(&answer.body)).unwrap(), file);
        // Pasted lower-case, with dashes between the groups and Windows line ends.
        let relaxed = block.to_lowercase().replace(' ', "-").replace('\n', "\r\n");
        assert_eq!(transport.decode(&reply(relaxed.as_bytes())).unwrap(), file);
        // The server side does not take a response block.
        let error = transport
            .decode_request("text/plain", &answer.body)
            .unwrap_err();
        assert!(plugin_message(&error, "bad-request").contains("response"));
    }
    // What is not a response file is not encoded.
    let error = transport
        .encode_answer(b"{\"code\":\"DENIED\"}")
        .unwrap_err();
    plugin_message(&error, "bad-request");
}

#[test]
fn typos_swapped_lines_and_garbage_are_refused_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let transport = text_plugin(&dir);
    let file = real_requests().remove(0);
    let block = String::from_utf8(transport.encode(&file).unwrap().body).unwrap();
    let lines: Vec<&str> = block.lines().collect();
    let decode = |text: &str| transport.decode_request("text/plain", text.as_bytes());

    // One character of line 3 changed.
    let mut changed: Vec<String> = lines.iter().map(|line| line.to_string()).collect();
    let first = changed[2].remove(0);
    changed[2].insert(0, if first == 'A' { 'B' } else { 'A' });
    let error = decode(&changed.join("\n")).unwrap_err();
    assert!(
        plugin_message(&error, "bad-request").starts_with("line 3:"),
        "{error}"
    );
    // Two neighbouring characters of line 4 swapped.
    let mut swapped: Vec<String> = lines.iter().map(|line| line.to_string()).collect();
    let symbols: Vec<char> = swapped[3].chars().collect();
    let at = (0..symbols.len() - 1)
        .find(|&index| {
            symbols[index] != symbols[index + 1] && !symbols[index..=index + 1].contains(&' ')
        })
        .unwrap();
    let mut symbols = symbols;
    symbols.swap(at, at + 1);
    swapped[3] = symbols.into_iter().collect();
    let error = decode(&swapped.join("\n")).unwrap_err();
    assert!(plugin_message(&error, "bad-request").starts_with("line 4:"));
    // Lines 2 and 3 exchanged.
    let mut moved: Vec<&str> = lines.clone();
    moved.swap(1, 2);
    let error = decode(&moved.join("\n")).unwrap_err();
    assert!(plugin_message(&error, "bad-request").starts_with("line 2:"));
    // A line left out.
    let mut short: Vec<&str> = lines.clone();
    short.remove(lines.len() - 2);
    decode(&short.join("\n")).unwrap_err();
    // Garbage, an empty paste and a huge paste.
    for text in ["hello", "", "LICET ACTIVATION REQUEST\nUUUUU\nSUM 0000"] {
        plugin_message(&decode(text).unwrap_err(), "bad-request");
    }
    let huge = "A".repeat(200 * 1024);
    let message = plugin_message(&decode(&huge).unwrap_err(), "bad-request");
    assert!(message.contains("longer"), "{message}");
}
