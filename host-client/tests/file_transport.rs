//! Manual activation and return by request files of the shipped `transport-file` plugin, with
//! the vendor in the test process reading them through the plugin's server side, answering the
//! exchange files inside and framing the response files the same way.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;

use licet_client::client::FileRequest;
use licet_client::{ClientError, Status};
use licet_engine::state::Term;
use licet_engine::Code;
use licet_plugin_host::{PluginError, TransportPlugin};
use support::*;

/// The vendor's side: the request file back into the exchange file, answered, and the response
/// framed by the plugin, as the server's transport route and upload form do.
fn answer(server: &mut FakeServer, plugin: &TransportPlugin, request: &FileRequest) -> Vec<u8> {
    let file = plugin.decode_request("text/plain", &request.bytes).unwrap();
    let text = std::str::from_utf8(&file).unwrap();
    let response = if text.contains("return-request") {
        server.answer_return(&file).unwrap()
    } else {
        server.answer_activation(&file).unwrap()
    };
    plugin.encode_answer(response.as_bytes()).unwrap().body
}

fn nothing_written(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut entries| entries.next().is_none())
}

#[test]
fn file_activation_and_return_through_the_file_transport() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = installed(&dir.path().join("plugins"), "transport-file");
    let client = client_on(&dir.path().join("office"), office_pc());
    let mut server = FakeServer::new(at("2027-01-04T09:00:00Z"));
    server.add_license(license(
        "GSTAR-M-1",
        "standalone-key",
        "standard",
        Term::Perpetual,
    ));
    let now = server.now;

    let request = client
        .begin_file_activation(&plugin, "GSTAR-M-1", "standard", now)
        .unwrap();
    assert_eq!(request.extension, "licreq");
    let text = String::from_utf8(request.bytes.clone()).unwrap();
    assert!(
        text.starts_with("-----BEGIN LICET REQUEST-----\n"),
        "{text}"
    );
    let response = answer(&mut server, &plugin, &request);
    assert!(response.starts_with(b"-----BEGIN LICET RESPONSE-----\n"));

    // The exchange file itself is not the plugin's response file: refused by the plugin.
    let raw = client.load_file_activation_response(&plugin, b"<licet/>", now);
    assert!(
        matches!(
            raw,
            Err(ClientError::Plugin(PluginError::Plugin { ref code, .. })) if code == "bad-reply"
        ),
        "{raw:?}"
    );
    // One character of the payload changed: the exchange file inside no longer verifies.
    let mut tampered = response.clone();
    let at = tampered.len() / 2;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let error = client
        .load_file_activation_response(&plugin, &tampered, now)
        .unwrap_err();
    assert!(
        error
            .exchange_code()
            .is_some_and(|code| code.as_str().starts_with("EXCHANGE_")),
        "{error}"
    );
    assert_eq!(
        client.check_at(now).unwrap().decision.code,
        Code::NotActivated
    );

    let report = client
        .load_file_activation_response(&plugin, &response, now)
        .unwrap();
    assert_eq!(report.decision.code, Code::Valid, "{:?}", report.decision);
    assert_eq!(client.info_at(now).unwrap().status, Status::Enabled);
    // Loaded a second time, it is a replay.
    let error = client
        .load_file_activation_response(&plugin, &response, now)
        .unwrap_err();
    assert_eq!(error.exchange_code(), Some(Code::ExchangeUnknownRequest));

    let giving_back = client.begin_file_return(&plugin, now).unwrap();
    assert_eq!(
        client.check_at(now).unwrap().decision.rule,
        licet_client::client::RETURN_PENDING_RULE
    );
    let returned = answer(&mut server, &plugin, &giving_back);
    // The activation response where the return response belongs is refused.
    client
        .load_file_return_response(&plugin, &response, now)
        .unwrap_err();
    client
        .load_file_return_response(&plugin, &returned, now)
        .unwrap();
    assert_eq!(
        client.check_at(now).unwrap().decision.code,
        Code::NotActivated
    );
}

#[test]
fn a_transport_that_does_not_make_files_is_refused_and_nothing_is_pending() {
    let dir = tempfile::tempdir().unwrap();
    let text_transport = installed(&dir.path().join("plugins"), "transport-text");
    let office = dir.path().join("office");
    let client = client_on(&office, office_pc());
    let now = at("2027-01-04T09:00:00Z");
    let error = client
        .begin_file_activation(&text_transport, "GSTAR-M-1", "standard", now)
        .unwrap_err();
    assert!(
        matches!(error, ClientError::NotFile(ref name) if name == "transport-text"),
        "{error}"
    );
    assert!(nothing_written(&office));
    // The file transport makes the same request and it is remembered.
    let file = installed(&dir.path().join("plugins"), "transport-file");
    client
        .begin_file_activation(&file, "GSTAR-M-1", "standard", now)
        .unwrap();
    assert!(!nothing_written(&office));
}
