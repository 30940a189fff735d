//! Manual request and response files through a product bundle's file transport, end to end: a
//! bundle with a fingerprint and a `files` plugin (the shipped `transport-file`), the real
//! `licet` binary writing the armored activation and return request files, a real
//! `licet-server` with `transports: [transport-file]` answering them on
//! `POST /v1/transport/transport-file` and on the service center's upload forms, and the
//! armored response files loaded through `licet --bundle`. A tampered response file and garbage
//! uploads are refused and change nothing, a `files` plugin that makes no file is refused with
//! nothing pending, and without a `files` plugin the files stay exchange files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{post_bytes, DemoServer, Outcome};
use licet_engine::bundle::PluginRole;
use licet_plugin_host::test_support::install_plugin;
use licet_plugin_host::{Allow, World};

const REQUEST_BEGIN: &str = "-----BEGIN LICET REQUEST-----\n";
const RESPONSE_BEGIN: &str = "-----BEGIN LICET RESPONSE-----\n";

/// The shipped `transport-file` signed by the demo vendor, installed under `into`.
fn file_transport(server: &DemoServer, into: &Path) -> PathBuf {
    install_plugin(
        into,
        "transport-file",
        World::Transport,
        &[],
        Allow::default(),
        &server.vendor_secret(),
    )
    .unwrap()
}

/// A demo server that reads request files through `transport-file`.
fn server_with_file_transport() -> DemoServer {
    let mut server = DemoServer::start();
    let plugin = file_transport(&server, &server.dir.path().join("server-plugins"));
    let mut config = std::fs::read_to_string(server.config_path()).unwrap();
    config.push_str(&format!("transports:\n  - {}\n", plugin.display()));
    std::fs::write(server.config_path(), config).unwrap();
    server.restart();
    server
}

/// Writes the product's bundle (fingerprint, and `files` when `with_files`) as `name`.
fn write_bundle(server: &DemoServer, name: &str, with_files: bool) {
    let files =
        with_files.then(|| file_transport(server, &server.dir.path().join("bundle-plugins")));
    write_bundle_with(server, name, files);
}

/// Writes the product's bundle with the fingerprint plugin and `files` as its `files` plugin.
fn write_bundle_with(server: &DemoServer, name: &str, files: Option<PathBuf>) {
    let key = server.vendor_secret();
    let plugins = server.dir.path().join("bundle-plugins");
    let mut roles = vec![(
        PluginRole::Fingerprint,
        DemoServer::fingerprint_plugin(&plugins, &key),
    )];
    if let Some(files) = files {
        roles.push((PluginRole::Files, files));
    }
    let spec = licet_client::bundle::BundleSpec {
        policy: server.policy.clone(),
        servers: vec![server.url.clone()],
        server_certificate: None,
        plugins: roles,
    };
    let bytes = licet_client::bundle::build_bundle(&spec, &key).unwrap();
    std::fs::write(server.dir.path().join(name), bytes).unwrap();
}

/// Runs `licet ARGS --bundle BUNDLE --vendor-key .. --state-dir STATE` in the server's directory.
fn licet(server: &DemoServer, bundle: &str, state: &str, args: &[&str]) -> Outcome {
    let output = std::process::Command::new(common::binaries().join("licet"))
        .args(args)
        .arg("--bundle")
        .arg(bundle)
        .arg("--vendor-key")
        .arg(server.vendor_key())
        .arg("--state-dir")
        .arg(state)
        .current_dir(server.dir.path())
        .output()
        .unwrap();
    Outcome::from(output)
}

fn read(server: &DemoServer, name: &str) -> String {
    std::fs::read_to_string(server.dir.path().join(name)).unwrap()
}

/// Posts a request file to the file transport's route; the status and the answer as text.
fn through_api(server: &DemoServer, file: &str) -> (u16, String) {
    let (status, body) = post_bytes(
        &server.url,
        "/v1/transport/transport-file",
        "text/plain",
        file.as_bytes(),
    );
    (status, String::from_utf8(body).unwrap())
}

/// A browser without JavaScript on the service center, over plain TCP.
struct Browser<'a> {
    server: &'a DemoServer,
    cookies: BTreeMap<String, String>,
}

struct Page {
    status: u16,
    head: String,
    body: String,
}

impl Page {
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("the page has a form") + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }

    fn link(&self, prefix: &str) -> String {
        let marker = format!("href=\"{prefix}");
        let start = self.body.find(&marker).expect("the page has the link") + 6;
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }
}

impl Browser<'_> {
    fn send(&mut self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Page {
        let address = self.server.url.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\nCookie: {}\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            cookie.join("; "),
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        for line in head.lines() {
            let Some(value) = line
                .split_once(':')
                .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
                .map(|(_, value)| value.trim())
            else {
                continue;
            };
            let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_owned()
        };
        Page {
            status,
            head: head.to_owned(),
            body,
        }
    }

    fn get(&mut self, path: &str) -> Page {
        self.send("GET", path, "text/plain", b"")
    }

    fn sign_in(&mut self, key: &str) {
        let login = self.get("/service/login");
        assert_eq!(login.status, 200, "{}", login.body);
        let form = format!("csrf={}&key={}", login.csrf(), key);
        let page = self.send(
            "POST",
            "/service/login",
            "application/x-www-form-urlencoded",
            form.as_bytes(),
        );
        assert_eq!(page.status, 303, "{}", page.body);
    }

    /// Uploads `file` as `name` on the form at `path`, with the CSRF token of the page at `from`.
    fn upload(&mut self, from: &str, path: &str, name: &str, file: &[u8]) -> Page {
        let csrf = self.get(from).csrf();
        let boundary = "licet-file-boundary";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        self.send(
            "POST",
            path,
            &format!("multipart/form-data; boundary={boundary}"),
            &body,
        )
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

fn activations(server: &DemoServer, key: &str) -> usize {
    let (status, license) = server.admin(
        "GET",
        &format!("/v1/admin/licenses/{key}"),
        &serde_json::Value::Null,
    );
    assert_eq!(status, 200, "{license}");
    license["activations"].as_array().map_or(0, Vec::len)
}

/// Changes one base64 character in the middle of an armored file.
fn tampered(file: &str) -> String {
    let mut lines: Vec<String> = file.lines().map(str::to_owned).collect();
    let line = &mut lines[2];
    let first = line.remove(0);
    line.insert(0, if first == 'A' { 'B' } else { 'A' });
    lines.join("\n") + "\n"
}

#[test]
fn manual_files_go_through_the_bundles_file_transport_and_the_center() {
    let server = server_with_file_transport();
    write_bundle(&server, "gstarcad.licet-bundle", true);
    let bundle = "gstarcad.licet-bundle";
    let key = server.standalone_key().to_owned();
    let run = |args: &[&str]| licet(&server, bundle, "office", args);

    run(&[
        "activate",
        "--manual",
        "--key",
        &key,
        "--edition",
        "professional",
        "--request-out",
        "office.licreq",
    ])
    .expect(
        0,
        "activation request written to office.licreq through the bundle's file transport \
         `transport-file`",
    );
    let request = read(&server, "office.licreq");
    assert!(request.starts_with(REQUEST_BEGIN), "{request}");
    assert!(!request.contains('<'), "{request}");
    // The request is pending in the signed local state.
    assert!(server.dir.path().join("office/gstarcad.state").is_file());
    run(&["check"]).expect(1, "NOT_ACTIVATED: ");

    // The center answers the request file on its transport route, in the plugin's format.
    let (status, response) = through_api(&server, &request);
    assert_eq!(status, 200, "{response}");
    assert!(response.starts_with(RESPONSE_BEGIN), "{response}");
    std::fs::write(server.dir.path().join("office-resp.licresp"), &response).unwrap();

    // A tampered response file, or the exchange file where the plugin's belongs, is refused and
    // changes nothing.
    std::fs::write(
        server.dir.path().join("tampered.licresp"),
        tampered(&response),
    )
    .unwrap();
    let refused = run(&["activate", "--load-response", "tampered.licresp"]);
    assert_eq!(refused.code, 1, "{refused:#?}");
    assert!(refused.stdout.starts_with("EXCHANGE_"), "{refused:#?}");
    std::fs::write(
        server.dir.path().join("raw.xml"),
        "<licet-activation-response/>",
    )
    .unwrap();
    run(&["activate", "--load-response", "raw.xml"]).expect(
        1,
        "RESPONSE_FILE_INVALID: the file is not a licet response file",
    );
    run(&["check"]).expect(1, "NOT_ACTIVATED: ");

    run(&["activate", "--load-response", "office-resp.licresp"])
        .expect(0, "activated from office-resp.licresp\nVALID: ");
    run(&["check"]).expect(0, "VALID: the certificate is valid");
    // Loaded again, it is a replay.
    run(&["activate", "--load-response", "office-resp.licresp"])
        .expect(1, "EXCHANGE_UNKNOWN_REQUEST: ");

    // Return the same way, answered on the service center's upload form.
    run(&[
        "return",
        "--manual",
        "--request-out",
        "office-return.licreq",
    ])
    .expect(
        0,
        "return request written to office-return.licreq through the bundle's file transport",
    );
    let giving_back = read(&server, "office-return.licreq");
    assert!(giving_back.starts_with(REQUEST_BEGIN), "{giving_back}");
    run(&["check"]).expect(1, "NOT_ACTIVATED: ");
    let mut browser = Browser {
        server: &server,
        cookies: BTreeMap::new(),
    };
    browser.sign_in(&key);
    let answered = browser.upload(
        "/service/licenses",
        "/service/return",
        "office-return.licreq",
        giving_back.as_bytes(),
    );
    assert_eq!(answered.status, 200, "{}", answered.body);
    assert!(
        answered.body.contains("office-resp-return.licresp"),
        "{}",
        answered.body
    );
    let download = browser.get(&answered.link("/service/responses/"));
    assert_eq!(download.status, 200, "{}", download.body);
    assert!(
        download.head.contains("office-resp-return.licresp"),
        "{}",
        download.head
    );
    assert!(
        download.body.starts_with(RESPONSE_BEGIN),
        "{}",
        download.body
    );
    std::fs::write(
        server.dir.path().join("office-resp-return.licresp"),
        &download.body,
    )
    .unwrap();
    run(&["return", "--load-response", "office-resp-return.licresp"]).expect(0, "returned: ");
    run(&["check"]).expect(1, "NOT_ACTIVATED: ");
    assert_eq!(activations(&server, &key), 0);
}

#[test]
fn the_upload_form_answers_an_armored_request_and_refuses_garbage_recording_nothing() {
    let server = server_with_file_transport();
    write_bundle(&server, "gstarcad.licet-bundle", true);
    let bundle = "gstarcad.licet-bundle";
    let key = server.standalone_key().to_owned();
    let run = |args: &[&str]| licet(&server, bundle, "office", args);
    run(&[
        "activate",
        "--manual",
        "--key",
        &key,
        "--edition",
        "professional",
        "--request-out",
        "office.licreq",
    ])
    .expect(0, "activation request written to office.licreq");
    let request = read(&server, "office.licreq");

    let mut browser = Browser {
        server: &server,
        cookies: BTreeMap::new(),
    };
    browser.sign_in(&key);
    // Garbage, an armored file whose payload is not base64 or not a request, and a changed
    // request are refused with the form's clear error; nothing is decided or recorded.
    let not_a_request = {
        use base64::Engine as _;
        let payload = base64::engine::general_purpose::STANDARD.encode("not a request");
        format!("-----BEGIN LICET REQUEST-----\n{payload}\n-----END LICET REQUEST-----\n")
    };
    for (name, file) in [
        ("garbage.licreq", "garbage".to_owned()),
        (
            "broken.licreq",
            "-----BEGIN LICET REQUEST-----\n!!!\n-----END LICET REQUEST-----\n".to_owned(),
        ),
        ("other.licreq", not_a_request),
        ("changed.licreq", tampered(&request)),
    ] {
        let page = browser.upload(
            "/service/activation",
            "/service/activation",
            name,
            file.as_bytes(),
        );
        assert!((400..500).contains(&page.status), "{name}: {}", page.body);
        assert!(page.body.contains("EXCHANGE_"), "{name}: {}", page.body);
    }
    assert_eq!(activations(&server, &key), 0);
    let licenses = browser.get("/service/licenses");
    assert!(
        licenses
            .body
            .contains("No response file was answered here yet."),
        "{}",
        licenses.body
    );

    // The request file as the product wrote it is answered in the plugin's format.
    let answered = browser.upload(
        "/service/activation",
        "/service/activation",
        "office.licreq",
        request.as_bytes(),
    );
    assert_eq!(answered.status, 200, "{}", answered.body);
    let download = browser.get(&answered.link("/service/responses/"));
    assert!(
        download.body.starts_with(RESPONSE_BEGIN),
        "{}",
        download.body
    );
    assert!(
        download.head.to_ascii_lowercase().contains("text/plain"),
        "{}",
        download.head
    );
    std::fs::write(
        server.dir.path().join("office-resp.licresp"),
        &download.body,
    )
    .unwrap();
    run(&["activate", "--load-response", "office-resp.licresp"])
        .expect(0, "activated from office-resp.licresp");
    run(&["check"]).expect(0, "VALID: ");
    assert_eq!(activations(&server, &key), 1);
}

#[test]
fn without_a_files_plugin_the_manual_files_stay_exchange_files() {
    let server = server_with_file_transport();
    write_bundle(&server, "plain.licet-bundle", false);
    let key = server.standalone_key().to_owned();
    let run = |args: &[&str]| licet(&server, "plain.licet-bundle", "plain", args);
    run(&[
        "activate",
        "--manual",
        "--key",
        &key,
        "--edition",
        "professional",
        "--request-out",
        "plain.xml",
    ])
    .expect(0, "activation request written to plain.xml; send it");
    let request = read(&server, "plain.xml");
    assert!(request.starts_with('<'), "{request}");
    // The exchange file is answered on the upload form as before, as an exchange file.
    let mut browser = Browser {
        server: &server,
        cookies: BTreeMap::new(),
    };
    browser.sign_in(&key);
    let answered = browser.upload(
        "/service/activation",
        "/service/activation",
        "plain.xml",
        request.as_bytes(),
    );
    assert_eq!(answered.status, 200, "{}", answered.body);
    assert!(
        answered.body.contains("plain-resp.xml"),
        "{}",
        answered.body
    );
    let download = browser.get(&answered.link("/service/responses/"));
    assert!(download.body.starts_with('<'), "{}", download.body);
    std::fs::write(server.dir.path().join("plain-resp.xml"), &download.body).unwrap();
    run(&["activate", "--load-response", "plain-resp.xml"])
        .expect(0, "activated from plain-resp.xml");
    run(&["check"]).expect(0, "VALID: ");
}

#[test]
fn a_files_plugin_that_makes_no_file_is_refused_and_nothing_is_pending() {
    let server = server_with_file_transport();
    let text = install_plugin(
        &server.dir.path().join("bundle-plugins"),
        "transport-text",
        World::Transport,
        &[],
        Allow::default(),
        &server.vendor_secret(),
    )
    .unwrap();
    write_bundle_with(&server, "text-files.licet-bundle", Some(text));
    let key = server.standalone_key().to_owned();
    let run = |args: &[&str]| licet(&server, "text-files.licet-bundle", "office", args);
    let refused = run(&[
        "activate",
        "--manual",
        "--key",
        &key,
        "--edition",
        "professional",
        "--request-out",
        "office.licreq",
    ]);
    assert_eq!(refused.code, 3, "{refused:#?}");
    assert!(
        refused
            .stderr
            .contains("transport plugin `transport-text` does not make request files"),
        "{refused:#?}"
    );
    assert!(!server.dir.path().join("office.licreq").exists());
    // No state was written: nothing is pending.
    assert!(!server.dir.path().join("office/gstarcad.state").exists());
    run(&["check"]).expect(1, "NOT_ACTIVATED: ");
}
