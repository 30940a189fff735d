use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::thread;

use licet_plugin_host::{Destination, HttpsClient, PluginError, Slot, WireReply, World};

use crate::support::{host, plugin, urls};

/// One request received by the loopback server: request line and body.
pub struct Received {
    pub request_line: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// Serves exactly one connection on 127.0.0.1 with `status` and a body of `prefix + request body`.
pub fn serve_once(
    status: &'static str,
    prefix: &'static [u8],
) -> (String, thread::JoinHandle<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut content_length = 0;
        let mut content_type = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end().to_string();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => content_length = value.trim().parse().unwrap(),
                "content-type" => content_type = value.trim().to_string(),
                _ => {}
            }
        }
        let mut body = vec![0; content_length];
        reader.read_exact(&mut body).unwrap();
        let mut answer = prefix.to_vec();
        answer.extend_from_slice(&body);
        let mut stream = reader.into_inner();
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            answer.len()
        )
        .unwrap();
        stream.write_all(&answer).unwrap();
        Received {
            request_line: request_line.trim_end().to_string(),
            content_type,
            body,
        }
    });
    (format!("http://{address}/api/activate"), handle)
}

#[test]
fn http_transport_posts_to_the_configured_server_and_decodes_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (url, server) = serve_once("200 OK", b"certificate for ");
    let plugin_dir = plugin(
        &dir,
        "transport-http",
        World::Transport,
        &[("server-url", url.as_str())],
        urls(&[url.as_str()]),
    );
    let transport = host().load_transport(&plugin_dir).unwrap();
    let answer = transport
        .exchange_http(&HttpsClient::default(), br#"{"key":"K-1"}"#)
        .unwrap();
    let received = server.join().unwrap();
    assert_eq!(received.request_line, "POST /api/activate HTTP/1.1");
    assert_eq!(received.content_type, "application/json");
    assert_eq!(received.body, br#"{"key":"K-1"}"#);
    assert_eq!(answer, br#"certificate for {"key":"K-1"}"#);
}

#[test]
fn http_error_answers_become_plugin_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (url, server) = serve_once("403 Forbidden", b"key revoked: ");
    let plugin_dir = plugin(
        &dir,
        "transport-http",
        World::Transport,
        &[("server-url", url.as_str())],
        urls(&[url.as_str()]),
    );
    let transport = host().load_transport(&plugin_dir).unwrap();
    let error = transport
        .exchange_http(&HttpsClient::default(), b"K-2")
        .unwrap_err();
    server.join().unwrap();
    match error {
        PluginError::Plugin { code, message, .. } => {
            assert_eq!(code, "server-error");
            assert!(
                message.contains("403") && message.contains("key revoked"),
                "{message}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_server_url_outside_the_manifest_is_never_contacted() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/api/activate", listener.local_addr().unwrap());
    let plugin_dir = plugin(
        &dir,
        "transport-http",
        World::Transport,
        &[("server-url", url.as_str())],
        urls(&["http://127.0.0.1:9/elsewhere"]),
    );
    let transport = host().load_transport(&plugin_dir).unwrap();
    let error = transport
        .exchange_http(&HttpsClient::default(), b"K-3")
        .unwrap_err();
    assert!(
        matches!(&error, PluginError::NotAllowed { what, .. } if what.contains(&url)),
        "{error}"
    );
    assert!(listener.accept().is_err(), "the server was contacted");
}

#[test]
fn http_transport_without_a_server_url_reports_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin(&dir, "transport-http", World::Transport, &[], urls(&[]));
    let transport = host().load_transport(&plugin_dir).unwrap();
    let error = transport.encode(b"K-4").unwrap_err();
    assert!(
        matches!(&error, PluginError::Plugin { code, .. } if code == "bad-config"),
        "{error}"
    );
}

#[test]
fn file_transport_round_trips_request_and_response_files() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin(&dir, "transport-file", World::Transport, &[], urls(&[]));
    let transport = host().load_transport(&plugin_dir).unwrap();
    let payload = b"offline activation request for K-5, machine M".to_vec();

    let encoded = transport.encode(&payload).unwrap();
    assert_eq!(
        encoded.destination,
        Destination::File {
            extension: "licreq".to_string()
        }
    );
    let request_path = dir.path().join("activation.licreq");
    transport
        .write_request_file(&payload, &request_path)
        .unwrap();
    let text = std::fs::read_to_string(&request_path).unwrap();
    assert!(
        text.starts_with("-----BEGIN LICET REQUEST-----\n"),
        "{text}"
    );
    assert!(text.ends_with("-----END LICET REQUEST-----\n"), "{text}");

    // The vendor's side answers with a response file carrying the same framing.
    let body = text
        .replace("BEGIN LICET REQUEST", "BEGIN LICET RESPONSE")
        .replace("END LICET REQUEST", "END LICET RESPONSE");
    let response_path = dir.path().join("activation.licres");
    std::fs::write(&response_path, body).unwrap();
    assert_eq!(
        transport.read_response_file(&response_path).unwrap(),
        payload
    );

    std::fs::write(&response_path, "not a response").unwrap();
    let error = transport.read_response_file(&response_path).unwrap_err();
    assert!(
        matches!(&error, PluginError::Plugin { code, .. } if code == "bad-reply"),
        "{error}"
    );
    let error = transport
        .decode(&WireReply {
            status: 0,
            body: text.into_bytes(),
        })
        .unwrap_err();
    assert!(matches!(error, PluginError::Plugin { .. }), "{error}");
}

#[test]
fn a_hardware_check_is_not_accepted_as_a_transport() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin(
        &dir,
        "fingerprint",
        World::HardwareCheck,
        &[],
        Default::default(),
    );
    let error = host().load_transport(&plugin_dir).unwrap_err();
    assert!(
        matches!(
            error,
            PluginError::WrongWorld {
                expected: "transport",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_directory_of_plugins_loads_in_name_order_and_only_for_its_slot() {
    let dir = tempfile::tempdir().unwrap();
    plugin(&dir, "transport-file", World::Transport, &[], urls(&[]));
    plugin(
        &dir,
        "transport-http",
        World::Transport,
        &[("server-url", "http://127.0.0.1:1/a")],
        urls(&["http://127.0.0.1:1/a"]),
    );
    std::fs::create_dir(dir.path().join("not-a-plugin")).unwrap();
    let loaded = host().load_all(dir.path(), Slot::TRANSPORT).unwrap();
    let names: Vec<_> = loaded
        .iter()
        .map(|plugin| plugin.manifest().name.as_str())
        .collect();
    assert_eq!(names, ["transport-file", "transport-http"]);

    // A signed hardware check among the transports fails the whole set.
    plugin(
        &dir,
        "fingerprint",
        World::HardwareCheck,
        &[],
        Default::default(),
    );
    let error = host().load_all(dir.path(), Slot::TRANSPORT).unwrap_err();
    assert!(
        matches!(&error, PluginError::WrongWorld { plugin, expected: "transport", found: "hardware-check" }
            if plugin == "fingerprint"),
        "{error}"
    );
}
