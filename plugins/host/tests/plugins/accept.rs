//! The server side of transports (`accept`): decoding what arrives and encoding the answer, under
//! the same limits as every call.

use licet_plugin_host::{Destination, PluginError, TransportPlugin, WireReply, WitVersion, World};

use crate::support::{host, plugin, urls};

fn transport(dir: &tempfile::TempDir, guest: &str, config: &[(&str, &str)]) -> TransportPlugin {
    let plugin_dir = plugin(dir, guest, World::Transport, config, urls(&[]));
    let transport = host().load_transport(&plugin_dir).unwrap();
    assert_eq!(transport.wit_version(), WitVersion::V0_2);
    transport.server_side().unwrap();
    transport
}

#[test]
fn the_http_transport_accepts_the_body_as_the_payload_and_answers_it_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let http = transport(&dir, "transport-http", &[]);
    let payload = http
        .decode_request("application/json", br#"{"method":"POST"}"#)
        .unwrap();
    assert_eq!(payload, br#"{"method":"POST"}"#);
    let answer = http.encode_answer(br#"{"status":200}"#).unwrap();
    assert_eq!(answer.content_type, "application/json");
    assert_eq!(answer.body, br#"{"status":200}"#);
    // What the server encodes, the client side decodes.
    let decoded = http
        .decode(&WireReply {
            status: 200,
            body: answer.body,
        })
        .unwrap();
    assert_eq!(decoded, br#"{"status":200}"#);
}

#[test]
fn the_file_transport_reads_request_files_and_writes_response_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = transport(&dir, "transport-file", &[]);
    let payload = b"<licet-request>...</licet-request>".to_vec();
    let request = file.encode(&payload).unwrap();
    let arrived = file
        .decode_request(&request.content_type, &request.body)
        .unwrap();
    assert_eq!(arrived, payload);

    let answer = file.encode_answer(b"<licet-response/>").unwrap();
    assert_eq!(answer.content_type, "text/plain");
    let text = String::from_utf8(answer.body.clone()).unwrap();
    assert!(
        text.starts_with("-----BEGIN LICET RESPONSE-----\n"),
        "{text}"
    );
    let decoded = file
        .decode(&WireReply {
            status: 0,
            body: answer.body,
        })
        .unwrap();
    assert_eq!(decoded, b"<licet-response/>");

    // A response file is not a request file, nor is anything else.
    for garbage in [text.as_bytes(), b"GET / HTTP/1.1".as_slice(), &[0xff, 0xfe]] {
        let error = file.decode_request("text/plain", garbage).unwrap_err();
        assert!(
            matches!(&error, PluginError::Plugin { code, .. } if code == "bad-request"),
            "{error}"
        );
    }
}

/// The hostile transport still accepts a well-formed request after a failure.
fn still_accepts(transport: &TransportPlugin) {
    assert_eq!(
        transport.decode_request("text/plain", b"hello").unwrap(),
        b"hello"
    );
    assert_eq!(transport.encode_answer(b"bye").unwrap().body, b"bye");
}

#[test]
fn a_hostile_server_side_is_stopped_with_typed_errors_and_the_next_call_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = transport(&dir, "hostile-transport", &[]);
    let fails = |body: &[u8]| hostile.decode_request("text/plain", body).unwrap_err();

    let error = fails(b"loop");
    assert!(matches!(error, PluginError::OutOfFuel { .. }), "{error}");
    still_accepts(&hostile);

    let error = fails(b"panic");
    assert!(
        matches!(&error, PluginError::Trapped { plugin, .. } if plugin == "hostile-transport"),
        "{error}"
    );
    still_accepts(&hostile);

    let error = fails(b"huge");
    assert!(
        matches!(&error, PluginError::PayloadTooLarge { what, size, limit, .. }
            if *what == "a decoded request" && *size >= 8 << 20 && *limit == 1 << 20),
        "{error}"
    );
    still_accepts(&hostile);

    let error = fails(b"memory");
    assert!(matches!(error, PluginError::MemoryLimit { .. }), "{error}");
    still_accepts(&hostile);

    let error = fails(b"recursion");
    assert!(
        matches!(error, PluginError::StackOverflow { .. }),
        "{error}"
    );
    still_accepts(&hostile);

    let error = fails(b"refuse");
    assert!(
        matches!(&error, PluginError::Plugin { code, .. } if code == "bad-request"),
        "{error}"
    );
    still_accepts(&hostile);
}

#[test]
fn a_hostile_answer_encoder_is_stopped_too() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = transport(&dir, "hostile-transport", &[]);
    let error = hostile.encode_answer(b"loop").unwrap_err();
    assert!(matches!(error, PluginError::OutOfFuel { .. }), "{error}");
    still_accepts(&hostile);
    let error = hostile.encode_answer(b"huge").unwrap_err();
    assert!(
        matches!(&error, PluginError::PayloadTooLarge { what, .. } if *what == "an encoded answer"),
        "{error}"
    );
    still_accepts(&hostile);
}

#[test]
fn an_arrival_larger_than_the_payload_limit_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let http = transport(&dir, "transport-http", &[]);
    let limit = host().limits().max_guest_bytes;
    let error = http
        .decode_request("application/json", &vec![b' '; limit + 1])
        .unwrap_err();
    assert!(
        matches!(&error, PluginError::Transport(message) if message.contains("larger than")),
        "{error}"
    );
}

#[test]
fn a_text_destination_reaches_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = transport(&dir, "hostile-transport", &[]);
    let request = hostile.encode(b"text").unwrap();
    assert_eq!(
        request.destination,
        Destination::Text {
            title: "activation request".to_string()
        }
    );
    assert_eq!(request.body, b"text");
    // Text is not HTTP: a host that posts refuses it.
    let error = hostile
        .exchange_http(&licet_plugin_host::HttpsClient::default(), b"text")
        .unwrap_err();
    assert!(matches!(error, PluginError::Transport(_)), "{error}");
}
