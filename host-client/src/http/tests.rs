//! Tests of the HTTP transport against small servers on loopback.

mod tls;

use super::*;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;

use licet_engine::{Fingerprint, ProductRef};

fn machine() -> Fingerprint {
    Fingerprint {
        components: BTreeMap::from([
            ("machine-id".to_owned(), "m1".to_owned()),
            ("mac".to_owned(), "a1".to_owned()),
        ]),
    }
}

fn target() -> ProductRef {
    ProductRef {
        product: "gstarcad".to_owned(),
        edition: "professional".to_owned(),
        version: "2027".to_owned(),
    }
}

fn end_user(action: Action) -> Request {
    Request {
        actor: Actor::EndUser,
        action,
    }
}

fn find_head_end(buffer: &[u8]) -> Option<usize> {
    buffer.windows(4).position(|window| window == b"\r\n\r\n")
}

#[test]
fn the_next_page_header_is_read() {
    let (url, server) = serve_once(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLicet-Next: K-1/s 2\r\ncontent-length: 2\r\n\r\n[]"
            .to_vec(),
    );
    let response = HttpTransport::new(&url, "")
        .unwrap()
        .get("/v1/admin/seats")
        .unwrap();
    assert_eq!(response.next_page.as_deref(), Some("K-1/s 2"));
    assert_eq!(response.content_type.as_deref(), Some("application/json"));
    server.join().unwrap();
    let (url, server) = serve_once(http("200 OK", "[]"));
    let response = HttpTransport::new(&url, "")
        .unwrap()
        .get("/v1/admin/seats")
        .unwrap();
    assert_eq!(response.next_page, None);
    server.join().unwrap();
}

/// Serves `answer` to one connection and hands back the request bytes it read.
fn serve_once(answer: Vec<u8>) -> (String, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut request = Vec::new();
        let mut chunk = [0u8; 4096];
        // Read the head, then the body its Content-Length announces.
        loop {
            let read = stream.read(&mut chunk).unwrap();
            request.extend_from_slice(&chunk[..read]);
            if let Some(end) = find_head_end(&request) {
                let head = String::from_utf8_lossy(&request[..end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length: "))
                    .map_or(0, |length| length.trim().parse().unwrap());
                if request.len() >= end + 4 + length {
                    break;
                }
            }
            if read == 0 {
                break;
            }
        }
        stream.write_all(&answer).unwrap();
        request
    });
    (url, handle)
}

fn http(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn addresses_mean_https_except_on_loopback_and_plain_http_needs_an_opt_in() {
    let url = |text: &str| HttpTransport::new(text, "p").unwrap().url().clone();
    assert_eq!(url("192.168.1.20:27000").scheme(), Scheme::Https);
    assert_eq!(
        url("192.168.1.20:27000"),
        ServerUrl::parse("https://192.168.1.20:27000").unwrap()
    );
    assert_eq!(url("licenses.example.com:8440/licet/").prefix(), "/licet");
    assert_eq!(url("127.0.0.1:8440").scheme(), Scheme::Http);
    assert_eq!(url("https://licenses.example.com").port(), 443);
    for bad in [
        "ftp://example.com",
        "example.com",
        "192.168.1.20",
        "http://user@host",
    ] {
        assert!(
            matches!(
                HttpTransport::new(bad, "p"),
                Err(TransportError::InvalidUrl(_))
            ),
            "{bad}"
        );
    }
    // 192.0.2.1 is TEST-NET-1: the refusal comes before any connection.
    let mut transport = HttpTransport::new("http://192.0.2.1:8440", "gstarcad").unwrap();
    let request = end_user(Action::ValidateTrial { machine: machine() });
    assert_eq!(
        transport.send(&request),
        Err(TransportError::PlainHttpRefused {
            host: "192.0.2.1".to_owned()
        })
    );
    assert!(matches!(
        HttpTransport::new("https://192.0.2.1:8440", "p")
            .unwrap()
            .with_pinned_certificate_bytes(b"not a certificate"),
        Err(TransportError::InvalidPin(_))
    ));
}

#[test]
fn every_end_user_action_maps_to_its_route_and_body() {
    let until = chrono::DateTime::parse_from_rfc3339("2027-02-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let cases = [
        (
            Action::StartTrial {
                target: target(),
                machine: machine(),
            },
            "/v1/trials/start",
            json!({ "target": { "product": "gstarcad", "edition": "professional", "version": "2027" },
                    "machine": { "machine-id": "m1", "mac": "a1" } }),
        ),
        (
            Action::ValidateTrial { machine: machine() },
            "/v1/trials/validate",
            json!({ "product": "gstarcad", "machine": { "machine-id": "m1", "mac": "a1" } }),
        ),
        (
            Action::Activate {
                key: "K".into(),
                target: target(),
                machine: machine(),
                method: Method::Manual,
            },
            "/v1/activate",
            json!({ "key": "K", "target": { "product": "gstarcad", "edition": "professional", "version": "2027" },
                    "machine": { "machine-id": "m1", "mac": "a1" }, "method": "manual" }),
        ),
        (
            Action::Validate {
                key: "K".into(),
                machine: machine(),
                certificate_serial: None,
            },
            "/v1/validate",
            json!({ "key": "K", "machine": { "machine-id": "m1", "mac": "a1" } }),
        ),
        (
            Action::Return {
                key: "K".into(),
                machine: machine(),
                method: Method::Online,
                certificate_serial: Some("S-1".into()),
            },
            "/v1/return",
            json!({ "key": "K", "machine": { "machine-id": "m1", "mac": "a1" }, "method": "online",
                    "certificate_serial": "S-1" }),
        ),
        (
            Action::Borrow {
                key: "K".into(),
                target: target(),
                machine: machine(),
                session: "s".into(),
                until,
            },
            "/v1/seats/borrow",
            json!({ "key": "K", "target": { "product": "gstarcad", "edition": "professional", "version": "2027" },
                    "machine": { "machine-id": "m1", "mac": "a1" }, "session": "s",
                    "until": "2027-02-01T00:00:00Z" }),
        ),
        (
            Action::Heartbeat {
                key: "K".into(),
                session: "s".into(),
            },
            "/v1/seats/heartbeat",
            json!({ "key": "K", "session": "s" }),
        ),
        (
            Action::ReturnBorrowed {
                key: "K".into(),
                session: "s".into(),
                certificate_serial: Some("B-1".into()),
            },
            "/v1/seats/return-borrowed",
            json!({ "key": "K", "session": "s", "certificate_serial": "B-1" }),
        ),
    ];
    for (action, path, body) in cases {
        let (got_path, got_body) = route(&end_user(action), "gstarcad").unwrap();
        assert_eq!((got_path, got_body), (path, body));
    }
}

#[test]
fn administrator_requests_are_not_sent() {
    let revoke = end_user(Action::Revoke { key: "K".into() });
    assert!(matches!(
        route(&revoke, "p"),
        Err(TransportError::Unsupported(_))
    ));
    let as_admin = Request {
        actor: Actor::Administrator,
        action: Action::Validate {
            key: "K".into(),
            machine: machine(),
            certificate_serial: None,
        },
    };
    assert!(matches!(
        route(&as_admin, "p"),
        Err(TransportError::Unsupported(_))
    ));
}

#[test]
fn answers_map_to_replies() {
    let allowed = HttpResponse {
        next_page: None,
        status: 200,
        content_type: None,
        body: br#"{"verdict":"allow","code":"ACTIVATED","rule":"activation.limit","message":"ok","certificate":"CERT","claims":{"x":1}}"#.to_vec(),
    };
    let reply = reply_from_response(&allowed).unwrap();
    assert_eq!(reply.decision.code, Code::Activated);
    assert!(reply.decision.is_allowed());
    assert_eq!(reply.certificate.as_deref(), Some("CERT"));

    let denied = HttpResponse {
        next_page: None,
        status: 409,
        content_type: None,
        body:
            br#"{"code":"ACTIVATION_LIMIT_REACHED","message":"all used","rule":"activation.limit"}"#
                .to_vec(),
    };
    let reply = reply_from_response(&denied).unwrap();
    assert_eq!(
        reply.decision,
        Decision::deny(Code::ActivationLimitReached, "activation.limit", "all used")
    );
    assert_eq!(reply.certificate, None);

    let api_error = HttpResponse {
        next_page: None,
        status: 429,
        content_type: None,
        body: br#"{"code":"RATE_LIMITED","message":"slow down","rule":"rate"}"#.to_vec(),
    };
    assert_eq!(
        reply_from_response(&api_error),
        Err(TransportError::Refused {
            status: 429,
            code: "RATE_LIMITED".into(),
            message: "slow down".into()
        })
    );

    // A 200 must carry an allowed code, an error answer a denial; anything else is invalid.
    for (status, body) in [
        (
            200,
            r#"{"verdict":"allow","code":"REVOKED","rule":"r","message":"m"}"#,
        ),
        (
            200,
            r#"{"verdict":"deny","code":"VALID","rule":"r","message":"m"}"#,
        ),
        (
            200,
            r#"{"verdict":"allow","code":"NOPE","rule":"r","message":"m"}"#,
        ),
        (200, "not json"),
        (403, "<html>"),
        (302, "{}"),
    ] {
        let response = HttpResponse {
            status,
            content_type: None,
            next_page: None,
            body: body.as_bytes().to_vec(),
        };
        assert!(
            matches!(
                reply_from_response(&response),
                Err(TransportError::InvalidReply(_))
            ),
            "{status} {body}"
        );
    }
    let allowed_code_in_refusal = HttpResponse {
        next_page: None,
        status: 403,
        content_type: None,
        body: br#"{"code":"VALID","message":"m","rule":"r"}"#.to_vec(),
    };
    assert!(matches!(
        reply_from_response(&allowed_code_in_refusal),
        Err(TransportError::Refused { .. })
    ));
}

#[test]
fn sends_a_request_over_loopback_and_reads_the_answer() {
    let answer = http(
        "200 OK",
        r#"{"verdict":"allow","code":"VALID","rule":"validation","message":"fine","certificate":"C"}"#,
    );
    let (url, server) = serve_once(answer);
    let mut transport = HttpTransport::new(&format!("{url}/base/"), "gstarcad").unwrap();
    let request = end_user(Action::Validate {
        key: "K-1".into(),
        machine: machine(),
        certificate_serial: None,
    });
    let reply = transport.send(&request).unwrap();
    assert_eq!(reply.decision.code, Code::Valid);
    assert_eq!(reply.certificate.as_deref(), Some("C"));

    let sent = String::from_utf8(server.join().unwrap()).unwrap();
    let (head, body) = sent.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("POST /base/v1/validate HTTP/1.1\r\n"),
        "{head}"
    );
    let head = format!("{}\r\n", head.to_lowercase());
    assert!(
        head.contains("\r\ncontent-type: application/json\r\n"),
        "{head}"
    );
    assert!(
        head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
        "{head}"
    );
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        body,
        json!({ "key": "K-1", "machine": { "machine-id": "m1", "mac": "a1" } })
    );
}

#[test]
fn a_license_servers_answer_carries_its_server_license() {
    let allowed = HttpResponse {
        next_page: None,
        status: 200,
        content_type: None,
        body: br#"{"verdict":"allow","code":"SEAT_GRANTED","rule":"seats.pool","message":"ok","certificate":"CERT","server_license":"SL"}"#.to_vec(),
    };
    let reply = reply_from_response(&allowed).unwrap();
    assert_eq!(reply.certificate.as_deref(), Some("CERT"));
    assert_eq!(reply.server_license.as_deref(), Some("SL"));
    // The activation center's answers have none.
    let center = HttpResponse {
        next_page: None,
        status: 200,
        content_type: None,
        body: br#"{"verdict":"allow","code":"SEAT_GRANTED","rule":"seats.pool","message":"ok","certificate":"CERT"}"#.to_vec(),
    };
    assert_eq!(reply_from_response(&center).unwrap().server_license, None);
}

#[test]
fn a_seat_query_is_a_get_and_reads_the_licenses() {
    let body = r#"{"licenses":[
        {"key":"NET-1","product":"gstarcad","edition":"professional","version":"2027","seats":5,
         "free":3,"borrowed":1,"borrow_max_days":30,"expires_at":"2027-07-01T00:00:00Z",
         "status":"serving","extra":"ignored"},
        {"key":"NET-2","product":"gstarcad","edition":"standard","version":"2027","seats":2,
         "free":0,"borrowed":0,"borrow_max_days":null,"expires_at":null,
         "status":"SERVER_LICENSE_EXPIRED: revalidate"}]}"#;
    let (url, server) = serve_once(http("200 OK", body));
    let host_port = url.trim_start_matches("http://").to_owned();
    let mut transport = HttpTransport::new(&host_port, "").unwrap();
    let query = transport.seat_query().unwrap();
    assert_eq!(query.licenses.len(), 2);
    let first = &query.licenses[0];
    assert_eq!(
        (first.key.as_str(), first.seats, first.free, first.borrowed),
        ("NET-1", 5, 3, 1)
    );
    assert_eq!(first.borrow_max_days, Some(30));
    assert!(first.is_serving());
    assert_eq!(
        (
            query.licenses[1].borrow_max_days,
            query.licenses[1].expires_at
        ),
        (None, None)
    );
    assert!(!query.licenses[1].is_serving());
    let sent = String::from_utf8(server.join().unwrap()).unwrap();
    assert!(
        sent.starts_with("GET /v1/seats/query HTTP/1.1\r\n"),
        "{sent}"
    );
    assert!(!sent.to_lowercase().contains("content-length"), "{sent}");

    // A server without the route is not a license server.
    let (url, server) = serve_once(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec());
    let error = HttpTransport::new(&url, "")
        .unwrap()
        .query_seats()
        .unwrap_err();
    assert!(
        matches!(&error, TransportError::InvalidReply(why) if why.contains("license server")),
        "{error:?}"
    );
    server.join().unwrap();
}

#[test]
fn a_refusal_over_loopback_is_a_denied_decision() {
    let (url, server) = serve_once(http(
        "404 Not Found",
        r#"{"code":"LICENSE_NOT_FOUND","message":"no license `K`","rule":"license.lookup"}"#,
    ));
    let mut transport = HttpTransport::new(&url, "gstarcad").unwrap();
    let reply = transport
        .send(&end_user(Action::Validate {
            key: "K".into(),
            machine: machine(),
            certificate_serial: None,
        }))
        .unwrap();
    assert_eq!(reply.decision.code, Code::LicenseNotFound);
    assert!(!reply.decision.is_allowed());
    assert_eq!(reply.decision.message, "no license `K`");
    server.join().unwrap();
}

#[test]
fn malformed_truncated_and_oversized_answers_are_refused() {
    let oversized = {
        let body = format!(
            r#"{{"code":"REVOKED","message":"{}","rule":"r"}}"#,
            "x".repeat(5000)
        );
        http("403 Forbidden", &body)
    };
    let invalid = |result: &Result<Reply, TransportError>| {
        matches!(result, Err(TransportError::InvalidReply(_)))
    };
    let too_large = |result: &Result<Reply, TransportError>| {
        matches!(result, Err(TransportError::TooLarge { limit: 4096 }))
    };
    type Expectation = fn(&Result<Reply, TransportError>) -> bool;
    let cases: Vec<(Vec<u8>, Expectation)> = vec![
        (b"SMTP ready\r\n\r\n".to_vec(), invalid),
        (b"HTTP/1.1 2000 OK\r\n\r\n".to_vec(), invalid),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"short\":".to_vec(),
            invalid,
        ),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: nope\r\n\r\n".to_vec(),
            invalid,
        ),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}".to_vec(),
            invalid,
        ),
        (b"HTTP/1.1 200 OK\r\ncontent-le".to_vec(), invalid),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 18446744073709551615\r\n\r\n".to_vec(),
            too_large,
        ),
        (oversized, too_large),
    ];
    for (answer, expected) in cases {
        let shown = String::from_utf8_lossy(&answer[..answer.len().min(60)]).into_owned();
        let (url, server) = serve_once(answer);
        let mut transport = HttpTransport::new(&url, "gstarcad")
            .unwrap()
            .with_max_response_bytes(4096);
        let result = transport.send(&end_user(Action::Validate {
            key: "K".into(),
            machine: machine(),
            certificate_serial: None,
        }));
        assert!(expected(&result), "{shown}: {result:?}");
        server.join().unwrap();
    }
}

#[test]
fn a_chunked_answer_is_read() {
    let (url, server) = serve_once(
        b"HTTP/1.1 403 Forbidden\r\ntransfer-encoding: chunked\r\n\r\n\
          13\r\n{\"code\":\"REVOKED\",\"\r\n\
          2b\r\nmessage\":\"revoked\",\"rule\":\"license.status\"}\r\n0\r\n\r\n"
            .to_vec(),
    );
    let response = HttpTransport::new(&url, "gstarcad")
        .unwrap()
        .post("/v1/validate", "application/json", b"{}")
        .unwrap();
    assert_eq!(
        reply_from_response(&response).unwrap().decision.code,
        Code::Revoked
    );
    server.join().unwrap();
}

#[test]
fn a_body_ended_by_the_connection_close_is_read() {
    let (url, server) = serve_once(
        b"HTTP/1.0 403 Forbidden\r\n\r\n{\"code\":\"REVOKED\",\"message\":\"revoked\",\"rule\":\"license.status\"}".to_vec(),
    );
    let transport = HttpTransport::new(&url, "gstarcad").unwrap();
    let response = transport
        .post("/v1/validate", "application/json", b"{}")
        .unwrap();
    assert_eq!(response.status, 403);
    assert_eq!(
        reply_from_response(&response).unwrap().decision.code,
        Code::Revoked
    );
    server.join().unwrap();
}

#[test]
fn a_request_carries_its_method_body_and_bearer_token() {
    let (url, server) = serve_once(http("200 OK", r#"{"code":"EXTENDED"}"#));
    let transport = HttpTransport::new(&format!("{url}/base"), "").unwrap();
    let response = transport
        .request(
            "PATCH",
            "/v1/admin/licenses/K-1",
            Some(("application/json", br#"{"seats":7}"#)),
            Some("lct_admin_0123"),
        )
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, br#"{"code":"EXTENDED"}"#);
    let sent = String::from_utf8(server.join().unwrap()).unwrap();
    let (head, body) = sent.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("PATCH /base/v1/admin/licenses/K-1 HTTP/1.1\r\n"),
        "{head}"
    );
    let head = format!("{}\r\n", head.to_lowercase());
    assert!(
        head.contains("\r\nauthorization: bearer lct_admin_0123\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\ncontent-length: 11\r\n"), "{head}");
    assert_eq!(body, r#"{"seats":7}"#);

    // Without a body or a token, neither header is sent.
    let (url, server) = serve_once(http("404 Not Found", r#"{"code":"NOT_FOUND"}"#));
    let transport = HttpTransport::new(&url, "").unwrap();
    let response = transport
        .request("DELETE", "/v1/admin/licenses/K/seats/s", None, None)
        .unwrap();
    assert_eq!(response.status, 404);
    let sent = String::from_utf8(server.join().unwrap()).unwrap();
    assert!(
        sent.starts_with("DELETE /v1/admin/licenses/K/seats/s HTTP/1.1\r\n"),
        "{sent}"
    );
    let lower = sent.to_lowercase();
    assert!(
        !lower.contains("authorization") && !lower.contains("content-length"),
        "{sent}"
    );
}

#[test]
fn a_method_or_token_that_would_break_the_head_is_refused_before_connecting() {
    let transport = HttpTransport::new("http://127.0.0.1:9", "").unwrap();
    for (method, token) in [
        ("GET /x HTTP/1.1\r\nX-Evil: 1\r\n\r\nGET", None),
        ("get", None),
        ("", None),
        ("GET", Some("lct_admin_1\r\nX-Evil: 1")),
        ("GET", Some("two words")),
        ("GET", Some("")),
    ] {
        assert!(
            matches!(
                transport.request(method, "/v1/admin/seats", None, token),
                Err(TransportError::Unsupported(_))
            ),
            "{method:?} {token:?}"
        );
    }
}

#[test]
fn header_injection_is_refused_before_connecting() {
    // The checks come before any connection is made.
    let transport = HttpTransport::new("http://127.0.0.1:9", "gstarcad").unwrap();
    for (path, content_type) in [
        ("/v1/x\r\nX-Evil: 1", "application/json"),
        ("v1/x", "application/json"),
        ("/v1/x y", "application/json"),
        ("/v1/x", "text/plain\r\nX-Evil: 1"),
    ] {
        assert!(
            matches!(
                transport.post(path, content_type, b""),
                Err(TransportError::Unsupported(_))
            ),
            "{path:?} {content_type:?}"
        );
    }
}

#[test]
fn an_answer_without_length_is_capped() {
    let mut answer = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    answer.extend(std::iter::repeat_n(b'x', 20_000));
    let (url, server) = serve_once(answer);
    let transport = HttpTransport::new(&url, "gstarcad")
        .unwrap()
        .with_max_response_bytes(4096);
    let result = transport.post("/v1/validate", "application/json", b"{}");
    assert!(
        matches!(result, Err(TransportError::TooLarge { limit: 4096 })),
        "{result:?}"
    );
    let _ = server.join();
}

#[test]
fn no_server_is_unreachable_and_silence_times_out() {
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let mut transport = HttpTransport::new(&url, "gstarcad").unwrap();
    let request = end_user(Action::ValidateTrial { machine: machine() });
    assert!(matches!(
        transport.send(&request),
        Err(TransportError::Unreachable(_))
    ));

    // A server that accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let mut transport = HttpTransport::new(&url, "gstarcad")
        .unwrap()
        .with_timeout(Duration::from_millis(200));
    assert!(matches!(
        transport.send(&request),
        Err(TransportError::Unreachable(_))
    ));
    drop(silent);
}

#[test]
fn a_redirect_is_not_followed() {
    let (url, server) = serve_once(
        b"HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:1/elsewhere\r\ncontent-length: 2\r\n\r\n{}"
            .to_vec(),
    );
    let mut transport = HttpTransport::new(&url, "gstarcad").unwrap();
    let request = end_user(Action::ValidateTrial { machine: machine() });
    assert!(matches!(
        transport.send(&request),
        Err(TransportError::InvalidReply(why)) if why.contains("302")
    ));
    server.join().unwrap();
}
