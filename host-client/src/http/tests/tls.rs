//! HTTPS through the transport, against a TLS server on loopback with a CA the test makes.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;
use std::time::Duration;

use licet_engine::{Action, Code};

use super::{end_user, find_head_end, http, machine};
use crate::http::HttpTransport;
use crate::transport::{TlsFailure, Transport, TransportError};

/// Serves one TLS connection on 127.0.0.1 with a certificate for `127.0.0.1` issued by a fresh
/// CA, answering `answer`; gives back the port, the CA in PEM and the request's head (`None`
/// when the handshake failed).
fn serve_tls_once(answer: Vec<u8>) -> (u16, String, JoinHandle<Option<String>>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use std::sync::Arc;

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let certificate = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![certificate.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let connection = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let mut tls = rustls::StreamOwned::new(connection, stream);
        let mut request = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = loop {
            match tls.read(&mut chunk) {
                Ok(read) if read > 0 => request.extend_from_slice(&chunk[..read]),
                _ => return None,
            }
            if let Some(end) = find_head_end(&request) {
                break end;
            }
        };
        let head = String::from_utf8_lossy(&request[..end]).into_owned();
        let length: usize = head
            .to_lowercase()
            .lines()
            .find_map(|line| line.strip_prefix("content-length: ").map(str::to_owned))
            .map_or(0, |length| length.trim().parse().unwrap());
        while request.len() < end + 4 + length {
            match tls.read(&mut chunk) {
                Ok(read) if read > 0 => request.extend_from_slice(&chunk[..read]),
                _ => return None,
            }
        }
        tls.write_all(&answer).ok()?;
        tls.conn.send_close_notify();
        tls.flush().ok()?;
        Some(head)
    });
    (port, ca.pem(), handle)
}

#[test]
fn https_with_the_pinned_ca_carries_a_decision_and_an_unpinned_one_is_untrusted() {
    let answer = http(
        "200 OK",
        r#"{"verdict":"allow","code":"VALID","rule":"validation","message":"fine","certificate":"C"}"#,
    );
    let request = end_user(Action::Validate {
        key: "K-1".into(),
        machine: machine(),
        certificate_serial: None,
    });
    let (port, ca, server) = serve_tls_once(answer.clone());
    let mut transport = HttpTransport::new(&format!("https://127.0.0.1:{port}"), "gstarcad")
        .unwrap()
        .with_pinned_certificate_bytes(ca.as_bytes())
        .unwrap();
    let reply = transport.send(&request).unwrap();
    assert_eq!(reply.decision.code, Code::Valid);
    assert_eq!(reply.certificate.as_deref(), Some("C"));
    let head = server.join().unwrap().unwrap();
    assert!(head.starts_with("POST /v1/validate HTTP/1.1\r\n"), "{head}");

    // Without the pin the test CA is no public root.
    let (port, _, server) = serve_tls_once(answer.clone());
    let mut transport =
        HttpTransport::new(&format!("https://127.0.0.1:{port}"), "gstarcad").unwrap();
    let error = transport.send(&request).unwrap_err();
    assert!(
        matches!(
            &error,
            TransportError::Tls {
                failure: TlsFailure::Untrusted(_),
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(server.join().unwrap(), None);

    // Pinned to another CA: the server's certificate does not match.
    let (other_port, other_ca, other) = serve_tls_once(answer.clone());
    drop(std::net::TcpStream::connect(("127.0.0.1", other_port)).unwrap());
    assert_eq!(other.join().unwrap(), None);
    let (port, _, server) = serve_tls_once(answer);
    let mut transport = HttpTransport::new(&format!("https://127.0.0.1:{port}"), "gstarcad")
        .unwrap()
        .with_pinned_certificate_bytes(other_ca.as_bytes())
        .unwrap();
    let error = transport.send(&request).unwrap_err();
    assert!(
        matches!(
            &error,
            TransportError::Tls {
                failure: TlsFailure::PinMismatch(_),
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(server.join().unwrap(), None);
}
