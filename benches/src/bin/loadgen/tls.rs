//! `--tls`: the servers speak HTTPS with a certificate made for the run (rcgen: a root CA and a
//! `localhost` certificate it signed), and every client connects over TLS trusting only that CA.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use licet_server::loopback::LoopbackClient;
use licet_server::tls::TlsConfig;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::Failure;

/// The clients' TLS settings, once `--tls` made them.
static CONNECTOR: OnceLock<TlsConnector> = OnceLock::new();

/// Makes the run's CA and server certificate in `dir`, sets the clients to trust the CA, and
/// answers the servers' acceptor (read from the PEM files like a configured `tls:` section).
pub fn enable(dir: &Path) -> Result<TlsAcceptor, Failure> {
    let mut root = CertificateParams::new(Vec::<String>::new())?;
    root.distinguished_name
        .push(DnType::CommonName, "licet-loadgen CA");
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let root = CertifiedIssuer::self_signed(root, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let server = CertificateParams::new(vec!["localhost".to_owned()])?.signed_by(&key, &root)?;
    let certificate = dir.join("loadgen-server.pem");
    std::fs::write(&certificate, server.pem())?;
    let key_file = dir.join("loadgen-server.key");
    std::fs::write(&key_file, key.serialize_pem())?;
    let acceptor = TlsConfig {
        certificate,
        key: key_file,
    }
    .acceptor()?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.der().clone())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    CONNECTOR
        .set(TlsConnector::from(Arc::new(config)))
        .map_err(|_| "the TLS settings were made twice")?;
    Ok(acceptor)
}

/// A keep-alive client of `address`: over TLS after [`enable`], plain HTTP otherwise.
pub async fn connect(address: SocketAddr) -> io::Result<LoopbackClient> {
    match CONNECTOR.get() {
        Some(connector) => LoopbackClient::connect_tls(address, connector).await,
        None => LoopbackClient::connect(address).await,
    }
}
