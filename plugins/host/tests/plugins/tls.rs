//! HTTPS through the hosts' shared HTTP agent, against a TLS server on loopback whose certificates
//! the test makes: a pinned CA is trusted, an unknown one is not, and plain HTTP to a remote
//! address is refused before anything is sent.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use licet_plugin_host::http::{
    HttpAgent, HttpError, HttpRequest, HttpSettings, PinnedCertificate, Scheme, ServerUrl,
    TlsFailure,
};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA and a server certificate for 127.0.0.1 and `localhost` it issued.
struct TestPki {
    ca_der: Vec<u8>,
    ca_pem: String,
    server_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    server_key: Vec<u8>,
}

fn pki(name: &str) -> TestPki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} CA"));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &ca).unwrap();
    TestPki {
        ca_der: ca.der().to_vec(),
        ca_pem: ca.pem(),
        server_chain: vec![server_cert.der().clone()],
        server_key: server_key.serialize_der(),
    }
}

/// Serves one TLS connection on 127.0.0.1 with `pki`'s server certificate, answering a request
/// with `200` and a small JSON body; the handle gives back the request's head, or `None` when the
/// handshake failed.
fn serve_tls_once(pki: &TestPki) -> (u16, thread::JoinHandle<Option<String>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            pki.server_chain.clone(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key.clone())),
        )
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let connection = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let mut tls = rustls::StreamOwned::new(connection, stream);
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match tls.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return None,
            }
        }
        let body = br#"{"status":"ok"}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        tls.write_all(answer.as_bytes()).ok()?;
        tls.write_all(body).ok()?;
        tls.conn.send_close_notify();
        tls.flush().ok()?;
        Some(String::from_utf8_lossy(&head).into_owned())
    });
    (port, handle)
}

fn health() -> HttpRequest<'static> {
    HttpRequest {
        method: "GET",
        path: "/v1/health",
        body: None,
        bearer: None,
    }
}

fn pinned(pin: &[u8]) -> HttpAgent {
    HttpAgent::new(HttpSettings {
        pinned_certificate: Some(PinnedCertificate::from_bytes(pin).unwrap()),
        timeout: Duration::from_secs(5),
        ..HttpSettings::default()
    })
}

#[test]
fn https_to_a_server_with_the_pinned_ca_works_in_der_and_pem() {
    let pki = pki("Vendor");
    for pin in [pki.ca_der.clone(), pki.ca_pem.clone().into_bytes()] {
        let (port, server) = serve_tls_once(&pki);
        let url = ServerUrl::parse(&format!("https://127.0.0.1:{port}/licet")).unwrap();
        let answer = pinned(&pin).send(&url, &health()).unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, br#"{"status":"ok"}"#);
        assert_eq!(answer.content_type.as_deref(), Some("application/json"));
        let head = server.join().unwrap().unwrap();
        assert!(
            head.starts_with("GET /licet/v1/health HTTP/1.1\r\n"),
            "{head}"
        );
    }
}

#[test]
fn a_certificate_from_an_unknown_ca_is_not_trusted() {
    let pki = pki("Unknown");
    let (port, server) = serve_tls_once(&pki);
    let url = ServerUrl::parse(&format!("https://127.0.0.1:{port}")).unwrap();
    let agent = HttpAgent::new(HttpSettings {
        timeout: Duration::from_secs(5),
        ..HttpSettings::default()
    });
    let error = agent.send(&url, &health()).unwrap_err();
    assert!(
        matches!(
            &error,
            HttpError::Tls {
                failure: TlsFailure::Untrusted(_),
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(server.join().unwrap(), None);
}

#[test]
fn a_certificate_that_does_not_chain_to_the_pin_is_refused() {
    let server_pki = pki("Server");
    let other = pki("Other");
    let (port, server) = serve_tls_once(&server_pki);
    let url = ServerUrl::parse(&format!("https://127.0.0.1:{port}")).unwrap();
    let error = pinned(&other.ca_der).send(&url, &health()).unwrap_err();
    assert!(
        matches!(
            &error,
            HttpError::Tls {
                failure: TlsFailure::PinMismatch(_),
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(server.join().unwrap(), None);
}

#[test]
fn plain_http_to_a_remote_address_is_refused_unless_allowed() {
    // 192.0.2.1 (TEST-NET-1) is never contacted: the refusal comes before any connection.
    let url = ServerUrl::parse("http://192.0.2.1:8440").unwrap();
    let error = HttpAgent::new(HttpSettings::default())
        .send(&url, &health())
        .unwrap_err();
    assert_eq!(
        error,
        HttpError::PlainHttpRefused {
            host: "192.0.2.1".to_owned()
        }
    );
    // The bare address and port a user types means https there, and http on loopback.
    assert_eq!(
        ServerUrl::parse("192.0.2.1:27000").unwrap().scheme(),
        Scheme::Https
    );
    assert_eq!(
        ServerUrl::parse("127.0.0.1:27000").unwrap().scheme(),
        Scheme::Http
    );
}

#[test]
fn plain_http_on_loopback_needs_no_opt_in() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        stream
            .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            .unwrap();
    });
    let url = ServerUrl::parse(&format!("127.0.0.1:{port}")).unwrap();
    let answer = HttpAgent::new(HttpSettings::default())
        .send(&url, &health())
        .unwrap();
    assert_eq!(answer.status, 204);
    server.join().unwrap();
}
