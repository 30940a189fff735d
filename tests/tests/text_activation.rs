//! Text activation end to end: a machine where no file can be moved makes its activation and
//! return requests as text blocks with the vendor-signed `transport-text` plugin, a real
//! `licet-server` with `transports: [transport-text]` answers them on
//! `POST /v1/transport/transport-text`, and the typed-back response blocks activate and return
//! the license. Tampered blocks and a response for another request are refused; hostile pastes
//! get a JSON error and change nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;

use common::DemoServer;
use licet_client::client::{load_policy, load_text_transport, TextBlock};
use licet_client::keys::read_verifying_key;
use licet_client::{Client, ClientError, FixedProbe};
use licet_engine::exchange::{ActivationResponse, ReturnResponse};
use licet_engine::{Code, Fingerprint};
use licet_plugin_host::test_support::install_plugin;
use licet_plugin_host::{read_signing_key, Allow, TransportPlugin, WireReply, World};

const ROUTE: &str = "/v1/transport/transport-text";

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// The plugin signed with the demo vendor's key, and the server restarted with it configured.
fn with_text_transport(server: &mut DemoServer) -> PathBuf {
    let key = read_signing_key(&server.dir.path().join("server").join("vendor.secret")).unwrap();
    let plugin = install_plugin(
        &server.dir.path().join("plugins"),
        "transport-text",
        World::Transport,
        &[],
        Allow::default(),
        &key,
    )
    .unwrap();
    let mut config = std::fs::read_to_string(server.config_path()).unwrap();
    config.push_str(&format!("transports:\n  - {}\n", plugin.display()));
    std::fs::write(server.config_path(), config).unwrap();
    server.restart();
    plugin
}

/// A machine with a fingerprint like a real one's (four SHA-256 hex components).
fn machine(server: &DemoServer, name: &str, seed: u8) -> Client {
    let components = ["machine-id", "mac", "cpu", "disk"]
        .iter()
        .enumerate()
        .map(|(index, component)| {
            let value: String = (0..32u8)
                .map(|at| {
                    format!(
                        "{:02x}",
                        seed.wrapping_mul(31).wrapping_add(at * 7 + index as u8)
                    )
                })
                .collect();
            ((*component).to_owned(), value)
        })
        .collect();
    Client::new(
        &server.dir.path().join(name),
        load_policy(&server.policy).unwrap(),
        read_verifying_key(&server.vendor_key()).unwrap(),
        Box::new(FixedProbe::new(Fingerprint { components })),
    )
}

/// Posts a block to the text route; returns the status and the body as text.
fn submit(server: &DemoServer, block: &str) -> (u16, String) {
    let answer = server
        .transport()
        .post(ROUTE, "text/plain", block.as_bytes())
        .unwrap();
    (answer.status, String::from_utf8(answer.body).unwrap())
}

fn answered(server: &DemoServer, block: &TextBlock) -> String {
    let (status, body) = submit(server, &block.text);
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("LICET "), "{body}");
    body
}

/// The plugin's message when it refused a block.
fn refusal(error: ClientError) -> String {
    match error {
        ClientError::Plugin(licet_plugin_host::PluginError::Plugin { message, .. }) => message,
        other => panic!("expected the plugin to refuse the block, got {other}"),
    }
}

fn change_character(block: &str, line: usize) -> String {
    let mut lines: Vec<String> = block.lines().map(str::to_owned).collect();
    let first = lines[line - 1].remove(0);
    lines[line - 1].insert(0, if first == '7' { '8' } else { '7' });
    lines.join("\n")
}

/// Sizes of one exchange: the block, the exchange file it carries, and the signed content.
struct Measured {
    what: &'static str,
    block: usize,
    file: usize,
    signed: Option<usize>,
}

#[test]
fn text_activation_and_return_through_the_server() {
    let mut server = DemoServer::start();
    let plugin_dir = with_text_transport(&mut server);
    let key = server.standalone_key().to_owned();
    let vendor = read_verifying_key(&server.vendor_key()).unwrap();
    let plugin: TransportPlugin = load_text_transport(&plugin_dir, vendor).unwrap();
    let office = machine(&server, "office", 1);
    let mut sizes = Vec::new();
    let file_of_request = |block: &str| {
        plugin
            .decode_request("text/plain", block.as_bytes())
            .unwrap()
    };
    let file_of_response = |block: &str| {
        plugin
            .decode(&WireReply {
                status: 0,
                body: block.as_bytes().to_vec(),
            })
            .unwrap()
    };

    let request = office
        .begin_text_activation(&plugin, &key, "professional", now())
        .unwrap();
    assert_eq!(request.title, "activation request");
    assert_eq!(
        office.check_at(now()).unwrap().decision.code,
        Code::NotActivated
    );
    sizes.push(Measured {
        what: "activation request",
        block: request.text.len(),
        file: file_of_request(&request.text).len(),
        signed: None,
    });
    let response = answered(&server, &request);
    let response_file = file_of_response(&response);
    let signed = ActivationResponse::from_xml(&response_file, &vendor).unwrap();
    sizes.push(Measured {
        what: "activation response",
        block: response.len(),
        file: response_file.len(),
        signed: Some(signed.signed_bytes().len() + 64),
    });

    // A typo in the pasted response is refused with its line, and so are lines out of order.
    let typo = refusal(
        office
            .load_text_activation_response(&plugin, &change_character(&response, 5), now())
            .unwrap_err(),
    );
    assert!(typo.starts_with("line 5:"), "{typo}");
    let mut lines: Vec<&str> = response.lines().collect();
    lines.swap(2, 3);
    let moved = refusal(
        office
            .load_text_activation_response(&plugin, &lines.join("\n"), now())
            .unwrap_err(),
    );
    assert!(moved.starts_with("line 3:"), "{moved}");
    // Another machine's response is refused by the exchange rules.
    let other = machine(&server, "other", 2);
    let other_key = {
        let (status, body) = server.admin(
            "POST",
            "/v1/admin/licenses",
            &serde_json::json!({ "product": "gstarcad", "license_type": "standalone-key",
                                 "edition": "professional" }),
        );
        assert_eq!(status, 201, "{body}");
        body["licenses"][0]["key"].as_str().unwrap().to_owned()
    };
    let other_request = other
        .begin_text_activation(&plugin, &other_key, "professional", now())
        .unwrap();
    let other_response = answered(&server, &other_request);
    let error = office
        .load_text_activation_response(&plugin, &other_response, now())
        .unwrap_err();
    assert!(
        error
            .code()
            .is_some_and(|code| code.as_str().starts_with("EXCHANGE_")),
        "{error}"
    );

    // The right block activates.
    let report = office
        .load_text_activation_response(&plugin, &response, now())
        .unwrap();
    assert!(report.decision.is_allowed(), "{:?}", report.decision);
    let check = office.check_at(now()).unwrap();
    assert!(check.decision.is_allowed(), "{:?}", check.decision);
    // Typed in again, it is refused: it was answered.
    office
        .load_text_activation_response(&plugin, &response, now())
        .unwrap_err();

    // Return the same way.
    let giving_back = office.begin_text_return(&plugin, now()).unwrap();
    assert_eq!(giving_back.title, "return request");
    sizes.push(Measured {
        what: "return request",
        block: giving_back.text.len(),
        file: file_of_request(&giving_back.text).len(),
        signed: None,
    });
    let returned = answered(&server, &giving_back);
    let returned_file = file_of_response(&returned);
    let signed = ReturnResponse::from_xml(&returned_file, &vendor).unwrap();
    sizes.push(Measured {
        what: "return response",
        block: returned.len(),
        file: returned_file.len(),
        signed: Some(signed.signed_bytes().len() + 64),
    });
    office
        .load_text_return_response(&plugin, &returned, now())
        .unwrap();
    assert_eq!(
        office.check_at(now()).unwrap().decision.code,
        Code::NotActivated
    );

    for size in &sizes {
        eprintln!(
            "{}: block {} characters, file {} bytes, signed content {}",
            size.what,
            size.block,
            size.file,
            size.signed
                .map_or("-".to_owned(), |bytes| format!("{bytes} bytes")),
        );
    }
    for size in &sizes {
        assert!(size.block * 3 < size.file * 2, "{}", size.what);
    }
}

#[test]
fn hostile_text_requests_get_a_json_error_and_change_nothing() {
    let mut server = DemoServer::start();
    let plugin_dir = with_text_transport(&mut server);
    let key = server.standalone_key().to_owned();
    let vendor = read_verifying_key(&server.vendor_key()).unwrap();
    let plugin = load_text_transport(&plugin_dir, vendor).unwrap();
    let office = machine(&server, "office", 3);
    let request = office
        .begin_text_activation(&plugin, &key, "professional", now())
        .unwrap();

    let huge = "7".repeat(300 * 1024);
    for (block, status) in [
        (change_character(&request.text, 2), 400),
        ("garbage".to_owned(), 400),
        (String::new(), 400),
        (huge, 413),
    ] {
        let (got, body) = submit(&server, &block);
        assert_eq!(got, status, "{body}");
        let error: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(error["code"].is_string(), "{body}");
    }
    // Nothing was activated: the real block still activates the first time.
    let (_, license) = server.admin(
        "GET",
        &format!("/v1/admin/licenses/{key}"),
        &serde_json::Value::Null,
    );
    assert_eq!(
        license["activations"].as_array().map(Vec::len),
        Some(0),
        "{license}"
    );
    let response = answered(&server, &request);
    let report = office
        .load_text_activation_response(&plugin, &response, now())
        .unwrap();
    assert!(report.decision.is_allowed());
}

/// Runs `licet ARGS` (state, policy and vendor key as [`DemoServer::licet`]) with `input` on its
/// standard input.
fn licet_with_input(server: &DemoServer, args: &[&str], input: &str) -> common::Outcome {
    use std::io::Write as _;
    let mut child = std::process::Command::new(common::binaries().join("licet"))
        .args(args)
        .arg("--state-dir")
        .arg(server.dir.path().join("cli-state"))
        .arg("--policy")
        .arg(&server.policy)
        .arg("--vendor-key")
        .arg(server.vendor_key())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    common::Outcome::from(child.wait_with_output().unwrap())
}

/// The block the command printed: from its `LICET ` header on.
fn printed_block(stdout: &str) -> String {
    let start = stdout.find("LICET ").unwrap_or_else(|| panic!("{stdout}"));
    stdout[start..].to_owned()
}

#[test]
fn text_activation_and_return_from_the_command_line() {
    let mut server = DemoServer::start();
    let plugin_dir = with_text_transport(&mut server);
    let plugin = plugin_dir.to_str().unwrap();
    let key = server.standalone_key().to_owned();

    let asked = server.licet(
        &[
            "activate",
            "--text-plugin",
            plugin,
            "--key",
            &key,
            "--edition",
            "professional",
        ],
        false,
    );
    asked.expect(0, "activation request: ");
    server.licet(&["check"], false).expect(1, "NOT_ACTIVATED: ");
    let (status, response) = submit(&server, &printed_block(&asked.stdout));
    assert_eq!(status, 200, "{response}");

    // A typo is refused with its line; the right block activates.
    let typo = licet_with_input(
        &server,
        &["activate", "--text-plugin", plugin, "--text-response"],
        &change_character(&response, 4),
    );
    typo.expect(1, "TEXT_BLOCK_INVALID: line 4:");
    licet_with_input(
        &server,
        &["activate", "--text-plugin", plugin, "--text-response"],
        &response,
    )
    .expect(0, "activated from the response block");
    server
        .licet(&["check"], false)
        .expect(0, "VALID: the certificate is valid");
    // The same block again is a replay.
    licet_with_input(
        &server,
        &["activate", "--text-plugin", plugin, "--text-response"],
        &response,
    )
    .expect(1, "EXCHANGE_UNKNOWN_REQUEST: ");

    let asked = server.licet(&["return", "--text-plugin", plugin], false);
    asked.expect(0, "return request: ");
    server.licet(&["check"], false).expect(1, "NOT_ACTIVATED: ");
    let (status, returned) = submit(&server, &printed_block(&asked.stdout));
    assert_eq!(status, 200, "{returned}");
    licet_with_input(
        &server,
        &["return", "--text-plugin", plugin, "--text-response"],
        &returned,
    )
    .expect(0, "returned: ");
    server.licet(&["check"], false).expect(1, "NOT_ACTIVATED: ");
}
