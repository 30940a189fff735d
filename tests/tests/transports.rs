//! Transports end to end: a real `licet-server` with `transports:` naming the vendor-signed
//! `transport-http` (and `transport-file`) plugins, and the client library sending through
//! `PluginTransport`: activation, validation, return and network seats reach the same decisions
//! as over the direct HTTP API; manual exchange files travel through the file transport's server
//! side. A server refuses to start with a transport that is unsigned, signed by another key or
//! built against `licet:plugin@0.1.0`, which still works on the client side.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::{post_bytes, DemoServer};
use ed25519_dalek::SigningKey;
use licet_client::{PluginTransport, Transport};
use licet_engine::Code;
use licet_plugin_host::test_support::install_plugin;
use licet_plugin_host::{read_signing_key, Allow, PluginHost, WireReply, World};
use serde_json::{json, Value};

fn vendor_secret(server: &DemoServer) -> SigningKey {
    read_signing_key(&server.dir.path().join("server").join("vendor.secret")).unwrap()
}

/// Installs guest `guest` as a transport plugin in `into`, signed with `key`, posting to `url`.
fn transport_plugin(into: &Path, guest: &str, url: &str, key: &SigningKey) -> PathBuf {
    install_plugin(
        into,
        guest,
        World::Transport,
        &[("server-url", url)],
        Allow {
            urls: vec![url.to_owned()],
            hid: Vec::new(),
        },
        key,
    )
    .unwrap()
}

/// Adds `transports:` naming `plugins` to the server's configuration.
fn configure_transports(server: &DemoServer, plugins: &[&Path]) {
    let mut config: String = std::fs::read_to_string(server.config_path())
        .unwrap()
        .lines()
        .take_while(|line| !line.starts_with("transports:"))
        .map(|line| format!("{line}\n"))
        .collect();
    config.push_str("transports:\n");
    for plugin in plugins {
        config.push_str(&format!("  - {}\n", plugin.display()));
    }
    std::fs::write(server.config_path(), config).unwrap();
}

/// A demo server that accepts requests through `transport-http` and `transport-file`.
fn server_with_transports() -> DemoServer {
    let mut server = DemoServer::start();
    let key = vendor_secret(&server);
    // The server side does not post anywhere: the URL its manifest names is not used there.
    let dir = server.dir.path().join("server-plugins");
    let http = transport_plugin(&dir, "transport-http", "https://center/v1/transport", &key);
    let file = transport_plugin(&dir, "transport-file", "https://center/unused", &key);
    configure_transports(&server, &[&http, &file]);
    server.restart();
    server
}

/// The client side of guest `guest`, posting to this server's transport route for `name`.
fn client_transport(server: &DemoServer, guest: &str, name: &str) -> PluginTransport {
    let url = format!("{}/v1/transport/{name}", server.url);
    let dir = server.dir.path().join(format!("client-plugins-{guest}"));
    let plugin_dir = transport_plugin(&dir, guest, &url, &vendor_secret(server));
    let host = PluginHost::new(vendor_secret(server).verifying_key()).unwrap();
    PluginTransport::new(host.load_transport(&plugin_dir).unwrap(), "gstarcad")
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

#[test]
fn activation_validation_return_and_seats_through_the_http_transport_plugin() {
    let server = server_with_transports();
    let mut plugin = client_transport(&server, "transport-http", "transport-http");
    let mut direct = server.transport();
    let key = server.standalone_key();
    let first = server.machine("first");
    let second = server.machine("second");

    let activated = first
        .activate(&mut plugin, key, "professional", now())
        .unwrap();
    assert_eq!(activated.code, Code::Activated, "{activated:?}");
    assert!(first.check().unwrap().decision.is_allowed());
    // The same refusal through the plugin and directly.
    let through_plugin = second
        .activate(&mut plugin, key, "professional", now())
        .unwrap();
    let directly = second
        .activate(&mut direct, key, "professional", now())
        .unwrap();
    assert_eq!(through_plugin.code, Code::ActivationLimitReached);
    assert_eq!(through_plugin.code, directly.code);
    assert_eq!(through_plugin.rule, directly.rule);

    assert_eq!(
        first.validate(&mut plugin, now()).unwrap().code,
        first.validate(&mut direct, now()).unwrap().code
    );
    assert_eq!(
        first.validate(&mut plugin, now()).unwrap().code,
        Code::Valid
    );
    let returned = first.return_license(&mut plugin, now()).unwrap();
    assert_eq!(returned.code, Code::Returned, "{returned:?}");
    assert_eq!(first.check().unwrap().decision.code, Code::NotActivated);
    // The key is free again, for the second machine over the direct API.
    let moved = second
        .activate(&mut direct, key, "professional", now())
        .unwrap();
    assert_eq!(moved.code, Code::Activated, "{moved:?}");

    // Network seats: a checkout and a release through the plugin.
    let network = server.network_key().to_owned();
    let seat = server.machine("seat");
    let granted = seat
        .checkout(&mut plugin, &network, "professional", now())
        .unwrap();
    assert_eq!(granted.code, Code::SeatGranted, "{granted:?}");
    assert_eq!(seat.check().unwrap().decision.code, Code::Valid);
    let renewed = seat.heartbeat(&mut plugin, now()).unwrap();
    assert_eq!(renewed.code, Code::LeaseRenewed, "{renewed:?}");
    let released = seat.release(&mut plugin, now()).unwrap();
    assert_eq!(released.code, Code::SeatReleased, "{released:?}");
    // A seat taken over the direct API is released through the plugin.
    let other = server.machine("other");
    let granted = other
        .checkout(&mut direct, &network, "professional", now())
        .unwrap();
    assert_eq!(granted.code, Code::SeatGranted);
    assert_eq!(
        other.release(&mut plugin, now()).unwrap().code,
        Code::SeatReleased
    );

    // The seat query and the dongle challenge go through too (an activation center serves no
    // license-server seats; its answer is an empty list, as directly).
    assert_eq!(plugin.seat_query().unwrap(), direct.seat_query().unwrap());
    assert_eq!(plugin.dongle_challenge().unwrap().len(), 32);
}

#[test]
fn manual_exchange_files_travel_through_the_file_transport() {
    let server = server_with_transports();
    let transport = client_transport(&server, "transport-file", "transport-file");
    let file = transport.plugin();
    let key = server.standalone_key();
    let machine = server.machine("offline");

    let request = machine
        .begin_manual_activation(key, "professional", now())
        .unwrap();
    // The user carries the transport's request file to a connected machine, which posts it.
    let carried = file.encode(request.as_bytes()).unwrap();
    let (status, answer) = post_bytes(
        &server.url,
        "/v1/transport/transport-file",
        &carried.content_type,
        &carried.body,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let response = file
        .decode(&WireReply {
            status: 0,
            body: answer,
        })
        .unwrap();
    let report = machine.load_activation_response(&response, now()).unwrap();
    assert!(report.decision.is_allowed(), "{report:?}");

    // A request the server refuses answers as POST /v1/exchange does: a JSON error.
    let again = file.encode(b"<licet-activation-request/>").unwrap();
    let (status, body) = post_bytes(
        &server.url,
        "/v1/transport/transport-file",
        &again.content_type,
        &again.body,
    );
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!((400..500).contains(&status), "{status} {body}");
    assert!(body["code"].is_string(), "{body}");
}

#[test]
fn the_transport_route_refuses_unknown_names_garbage_and_other_routes_with_json() {
    let server = server_with_transports();
    let post = |path: &str, body: &[u8]| {
        let (status, body) = post_bytes(&server.url, path, "application/json", body);
        (status, serde_json::from_slice::<Value>(&body).unwrap())
    };
    let (status, body) = post("/v1/transport/no-such-transport", b"{}");
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "NOT_FOUND");

    for garbage in [
        b"{not json".as_slice(),
        br#"{"method":"POST","route":"/v1/admin/licenses","body":{}}"#,
        br#"{"method":"GET","route":"/v1/activate"}"#,
        br#"{"method":"POST","route":"/v1/transport/transport-http","body":{}}"#,
        br#"{"method":"POST","route":"/v1/activate","body":{},"extra":1}"#,
    ] {
        let (status, body) = post("/v1/transport/transport-http", garbage);
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["code"], "TRANSPORT_REQUEST", "{body}");
    }
    // Not an envelope: an exchange file, which this is not.
    let (status, body) = post("/v1/transport/transport-http", b"garbage");
    assert!((400..500).contains(&status), "{status} {body}");
    assert!(body["code"].is_string(), "{body}");
    // The file transport's server side refuses what is not its request file.
    let (status, body) = post("/v1/transport/transport-file", b"plain text");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "TRANSPORT_REQUEST", "{body}");

    // An envelope answers exactly what the API answers, status included.
    let envelope = json!({ "method": "POST", "route": "/v1/activate",
        "body": { "key": "NO-SUCH-KEY" } });
    let (status, wrapped) = post(
        "/v1/transport/transport-http",
        &serde_json::to_vec(&envelope).unwrap(),
    );
    assert_eq!(status, 200, "{wrapped}");
    let (direct_status, direct) = post(
        "/v1/activate",
        &serde_json::to_vec(&envelope["body"]).unwrap(),
    );
    assert_eq!(wrapped["status"], direct_status, "{wrapped} {direct}");
    assert_eq!(wrapped["body"], direct);
}

/// Starts the server from its configuration and expects it to refuse with `needle` on stderr.
fn refuses_to_start(server: &DemoServer, needle: &str) {
    let output = std::process::Command::new(common::binaries().join("licet-server"))
        .arg("--config")
        .arg(server.config_path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("transport plugin"), "{stderr}");
    assert!(stderr.contains(needle), "{stderr}");
}

#[test]
fn a_server_refuses_to_start_with_an_unsigned_foreign_or_0_1_0_transport() {
    let mut server = DemoServer::start();
    server.stop();
    let url = "https://center/v1/transport";
    let foreign = transport_plugin(
        &server.dir.path().join("foreign"),
        "transport-http",
        url,
        &SigningKey::from_bytes(&[9; 32]),
    );
    configure_transports(&server, &[&foreign]);
    refuses_to_start(&server, "does not verify with the vendor key");

    let unsigned = transport_plugin(
        &server.dir.path().join("unsigned"),
        "transport-http",
        url,
        &vendor_secret(&server),
    );
    std::fs::remove_file(unsigned.join("plugin.sig")).unwrap();
    configure_transports(&server, &[&unsigned]);
    refuses_to_start(&server, "not signed");

    let legacy = transport_plugin(
        &server.dir.path().join("legacy"),
        "legacy-transport",
        url,
        &vendor_secret(&server),
    );
    configure_transports(&server, &[&legacy]);
    refuses_to_start(&server, "no server side");
}

#[test]
fn a_0_1_0_transport_activates_on_the_client_side() {
    let server = server_with_transports();
    // The 0.1.0 build of the HTTP transport's client side, posting to the server's 0.2.0
    // `transport-http`.
    let mut legacy = client_transport(&server, "legacy-transport", "transport-http");
    assert_eq!(
        legacy.plugin().wit_version(),
        licet_plugin_host::WitVersion::V0_1
    );
    let machine = server.machine("legacy");
    let activated = machine
        .activate(&mut legacy, server.standalone_key(), "professional", now())
        .unwrap();
    assert_eq!(activated.code, Code::Activated, "{activated:?}");
    assert_eq!(
        machine.validate(&mut legacy, now()).unwrap().code,
        Code::Valid
    );
}
