//! Manual activation and return by text blocks through the shipped `transport-text` plugin, with
//! the vendor in the test process answering the request files the blocks carry.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use licet_client::client::TextBlock;
use licet_client::{ClientError, Status};
use licet_engine::state::Term;
use licet_engine::Code;
use licet_plugin_host::{TransportPlugin, WireReply};
use support::*;

/// The vendor's side: the block back into the request file, answered, and the response file
/// into a block, as the server's transport route does.
fn answer(server: &mut FakeServer, plugin: &TransportPlugin, block: &TextBlock) -> String {
    let file = plugin
        .decode_request("text/plain", block.text.as_bytes())
        .unwrap();
    let response = if block.title == "return request" {
        server.answer_return(&file).unwrap()
    } else {
        server.answer_activation(&file).unwrap()
    };
    let answer = plugin.encode_answer(response.as_bytes()).unwrap();
    String::from_utf8(answer.body).unwrap()
}

fn refused_line(result: Result<impl std::fmt::Debug, ClientError>) -> String {
    match result {
        Err(ClientError::Plugin(licet_plugin_host::PluginError::Plugin { message, .. })) => message,
        other => panic!("expected the plugin to refuse the block, got {other:?}"),
    }
}

#[test]
fn text_activation_and_return_load_like_files() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = installed(&dir.path().join("plugins"), "transport-text");
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
        .begin_text_activation(&plugin, "GSTAR-M-1", "standard", now)
        .unwrap();
    assert_eq!(request.title, "activation request");
    assert!(request.text.starts_with("LICET ACTIVATION REQUEST\n"));
    let response = answer(&mut server, &plugin, &request);

    // A typo is refused with its line and changes nothing.
    let mut lines: Vec<String> = response.lines().map(str::to_owned).collect();
    let first = lines[3].remove(0);
    lines[3].insert(0, if first == '7' { '8' } else { '7' });
    let message =
        refused_line(client.load_text_activation_response(&plugin, &lines.join("\n"), now));
    assert!(message.starts_with("line 4:"), "{message}");
    assert_eq!(
        client.check_at(now).unwrap().decision.code,
        Code::NotActivated
    );
    // Another machine's client refuses it as a file of another machine.
    let home = client_on(&dir.path().join("home"), home_pc());
    let error = home
        .load_text_activation_response(&plugin, &response, now)
        .unwrap_err();
    assert_eq!(error.exchange_code(), Some(Code::ExchangeWrongMachine));

    let report = client
        .load_text_activation_response(&plugin, &response.to_lowercase(), now)
        .unwrap();
    assert_eq!(report.decision.code, Code::Valid, "{:?}", report.decision);
    assert_eq!(client.info_at(now).unwrap().status, Status::Enabled);
    // Typed in a second time, it is a replay.
    let error = client
        .load_text_activation_response(&plugin, &response, now)
        .unwrap_err();
    assert_eq!(error.exchange_code(), Some(Code::ExchangeUnknownRequest));

    let giving_back = client.begin_text_return(&plugin, now).unwrap();
    assert_eq!(giving_back.title, "return request");
    let returned = answer(&mut server, &plugin, &giving_back);
    // An activation response where the return response belongs is refused.
    client
        .load_text_return_response(&plugin, &response, now)
        .unwrap_err();
    client
        .load_text_return_response(&plugin, &returned, now)
        .unwrap();
    assert_eq!(
        client.check_at(now).unwrap().decision.code,
        Code::NotActivated
    );
}

#[test]
fn a_transport_that_does_not_make_text_is_refused_and_nothing_is_pending() {
    let dir = tempfile::tempdir().unwrap();
    let file_transport = installed(&dir.path().join("plugins"), "transport-file");
    let client = client_on(&dir.path().join("office"), office_pc());
    let now = at("2027-01-04T09:00:00Z");
    let error = client
        .begin_text_activation(&file_transport, "GSTAR-M-1", "standard", now)
        .unwrap_err();
    assert!(
        matches!(error, ClientError::NotText(ref name) if name == "transport-file"),
        "{error}"
    );
    // Nothing was remembered: the state was not written.
    let written: Vec<_> = std::fs::read_dir(dir.path().join("office"))
        .map(|entries| entries.map(|entry| entry.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(written.is_empty(), "{written:?}");
    // With the text transport the same request is made and remembered.
    let text = installed(&dir.path().join("plugins"), "transport-text");
    client
        .begin_text_activation(&text, "GSTAR-M-1", "standard", now)
        .unwrap();
    assert!(
        std::fs::read_dir(dir.path().join("office"))
            .unwrap()
            .count()
            > 0
    );
    let reply = WireReply {
        status: 0,
        body: b"LICET ACTIVATION RESPONSE\nSUM 0000".to_vec(),
    };
    assert!(text.decode(&reply).is_err());
}
