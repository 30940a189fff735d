//! HTTPS: the `tls:` section of the configuration, the rustls server configuration it gives
//! (the `ring` provider, TLS 1.3 and 1.2, HTTP/1.1 by ALPN), and the rule for plain HTTP.
//!
//! ```yaml
//! tls:
//!   certificate: /etc/licet/server.pem   # the server's certificate, then any intermediates
//!   key: /etc/licet/server.key           # its private key (PKCS#8, PKCS#1 RSA or SEC1 EC)
//! ```

use licet_engine::report::Report as _;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ServerConfig;
use serde::{Deserialize, Serialize};
use tokio_rustls::TlsAcceptor;

/// The certificate and key the listener serves HTTPS with (`tls:` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the server's certificate, followed by the intermediate certificates that
    /// chain it to a root the clients trust.
    pub certificate: PathBuf,
    /// PEM file of the certificate's private key.
    pub key: PathBuf,
}

/// Why the certificate and key of `tls:` cannot be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("tls.{setting} `{path}`")]
    Read {
        /// `certificate` or `key`.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A file holds a malformed PEM section.
    #[error("tls.{setting} `{path}` is not a valid PEM file: {message}")]
    NotPem {
        /// `certificate` or `key`.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The certificate file holds no certificate.
    #[error("tls.certificate `{path}` holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key.
    #[error(
        "tls.key `{path}` holds no PEM private key (`-----BEGIN PRIVATE KEY-----`, \
         `RSA PRIVATE KEY` or `EC PRIVATE KEY`)"
    )]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The key is not the private key of the certificate.
    #[error("tls.key `{key}` is not the private key of the certificate in tls.certificate `{certificate}`")]
    KeyMismatch {
        /// The certificate file.
        certificate: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The key is of a kind or shape the TLS library cannot sign with.
    #[error("tls.key `{path}` cannot be used: {message}")]
    UnusableKey {
        /// The file.
        path: PathBuf,
        /// What the TLS library said.
        message: String,
    },
    /// The TLS library refused the protocol versions asked of its provider.
    #[error("tls: the TLS library cannot be set up: {0}")]
    Provider(String),
    /// The certificate cannot be parsed.
    #[error("tls.certificate `{path}` cannot be used: {message}")]
    UnusableCertificate {
        /// The file.
        path: PathBuf,
        /// What the TLS library said.
        message: String,
    },
}

impl TlsConfig {
    /// Makes relative paths relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        for path in [&mut self.certificate, &mut self.key] {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// Reads the certificate chain and key and builds the acceptor the listener hands each
    /// connection to; checks that the key is the certificate's.
    pub fn acceptor(&self) -> Result<TlsAcceptor, TlsError> {
        Ok(TlsAcceptor::from(Arc::new(self.server_config()?)))
    }

    /// The rustls server configuration: the `ring` provider with its default cipher suites,
    /// TLS 1.3 and 1.2, no client certificates, and `http/1.1` offered by ALPN.
    pub fn server_config(&self) -> Result<ServerConfig, TlsError> {
        let chain = self.read_chain()?;
        let key = self.read_key()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .map_err(|error| TlsError::Provider(error.report()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|error| self.refused(error))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    fn read_chain(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let bytes = read(&self.certificate, "certificate")?;
        let chain = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| not_pem(&self.certificate, "certificate", error))?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate {
                path: self.certificate.clone(),
            });
        }
        Ok(chain)
    }

    fn read_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        let bytes = read(&self.key, "key")?;
        PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| match error {
            pem::Error::NoItemsFound => TlsError::NoKey {
                path: self.key.clone(),
            },
            other => not_pem(&self.key, "key", other),
        })
    }

    /// What rustls refused, named by the file it concerns.
    fn refused(&self, error: rustls::Error) -> TlsError {
        match error {
            rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
                certificate: self.certificate.clone(),
                key: self.key.clone(),
            },
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                TlsError::UnusableCertificate {
                    path: self.certificate.clone(),
                    message: error.report(),
                }
            }
            other => TlsError::UnusableKey {
                path: self.key.clone(),
                message: other.report(),
            },
        }
    }
}

fn read(path: &Path, setting: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        setting,
        path: path.to_owned(),
        source,
    })
}

fn not_pem(path: &Path, setting: &'static str, error: pem::Error) -> TlsError {
    TlsError::NotPem {
        setting,
        path: path.to_owned(),
        message: error.report(),
    }
}

/// Whether an address serves only this machine, so plain HTTP on it never crosses a network
/// (`127.0.0.0/8`, `::1`, and `::ffff:127.0.0.0/104`).
pub fn is_loopback(address: IpAddr) -> bool {
    address.to_canonical().is_loopback()
}

/// The plain-HTTP rule: without `tls`, the server listens only on a loopback address unless
/// `http.allow_plain` says a TLS-terminating proxy is in front of it. `listen` is the setting
/// as written, for the message.
pub fn check_plain_http(
    listen: &str,
    address: IpAddr,
    tls: bool,
    allow_plain: bool,
) -> Result<(), String> {
    if tls || allow_plain || is_loopback(address) {
        return Ok(());
    }
    Err(format!(
        "`listen: {listen}` is not a loopback address and there is no `tls` section: plain HTTP \
         would carry license keys and tokens in clear over the network. Configure `tls` \
         (`certificate` and `key`, PEM files) to serve HTTPS, or set `http.allow_plain: true` \
         when a TLS-terminating proxy is in front of this server"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_are_told_apart() {
        for loopback in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(
                loopback.parse().unwrap_or(IpAddr::from([0; 4]))
            ));
        }
        for other in [
            "0.0.0.0",
            "10.0.0.1",
            "::",
            "192.168.1.10",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_loopback(
                other.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]))
            ));
        }
    }

    #[test]
    fn plain_http_is_refused_off_loopback_unless_allowed() {
        let public = IpAddr::from([0, 0, 0, 0]);
        let refused = check_plain_http("0.0.0.0:8440", public, false, false);
        assert!(
            refused.is_err_and(|message| message.contains("http.allow_plain")
                && message.contains("`tls`")
                && message.contains("0.0.0.0:8440"))
        );
        assert!(check_plain_http("0.0.0.0:8440", public, true, false).is_ok());
        assert!(check_plain_http("0.0.0.0:8440", public, false, true).is_ok());
        assert!(
            check_plain_http("127.0.0.1:0", IpAddr::from([127, 0, 0, 1]), false, false).is_ok()
        );
    }
}
