//! How the server reaches PostgreSQL: the connection string's `sslmode` (libpq's names), its
//! default when absent (plain on loopback, TLS required anywhere else), and the certificates a
//! TLS connection trusts: the file named by `sslrootcert`, or the Mozilla roots. The server's
//! certificate is always verified, name included, whatever the mode: `prefer` and `require` both
//! refuse a certificate that does not verify.

use licet_engine::report::Report as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::StoreError;

/// How a store's connections are secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PgSecurity {
    /// Plain TCP or a Unix socket (`sslmode=disable`, or the default on loopback).
    Plain,
    /// TLS when the server offers it, verified (`sslmode=prefer`).
    TlsIfOffered,
    /// TLS, verified (`sslmode=require`, or the default off loopback).
    Tls,
}

/// A connection string read: what tokio-postgres is given and how TLS is done.
pub(super) struct Settings {
    pub(super) config: tokio_postgres::Config,
    pub(super) connector: MakeRustlsConnect,
    pub(super) security: PgSecurity,
}

/// Reads a `postgres://` URL (or a `key=value` connection string) into [`Settings`].
pub(super) fn settings(url: &str) -> Result<Settings, StoreError> {
    let (rest, root_file, mode_given) = split_options(url)?;
    let mut config = tokio_postgres::Config::from_str(&rest)?;
    if !mode_given {
        config.ssl_mode(if all_local(&config) {
            SslMode::Disable
        } else {
            SslMode::Require
        });
    }
    let security = match config.get_ssl_mode() {
        SslMode::Disable => PgSecurity::Plain,
        SslMode::Prefer => PgSecurity::TlsIfOffered,
        _ => PgSecurity::Tls,
    };
    let roots = match &root_file {
        Some(path) => roots_from(path)?,
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| StoreError::PostgresTls(error.report()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Settings {
        config,
        connector: MakeRustlsConnect::new(tls),
        security,
    })
}

/// The connection string without `sslrootcert` (which tokio-postgres does not know), the file it
/// named, and whether `sslmode` was given.
fn split_options(url: &str) -> Result<(String, Option<PathBuf>, bool), StoreError> {
    if !url.contains("://") {
        let mode_given = url
            .split_whitespace()
            .any(|option| option.trim_start().starts_with("sslmode"));
        return Ok((url.to_owned(), None, mode_given));
    }
    let mut parsed = url::Url::parse(url)
        .map_err(|error| StoreError::PostgresTls(format!("the database URL: {error}")))?;
    let mut root_file = None;
    let mut mode_given = false;
    let mut kept = Vec::new();
    for (name, value) in parsed.query_pairs() {
        match name.as_ref() {
            "sslrootcert" => root_file = Some(PathBuf::from(value.as_ref())),
            "sslmode" => {
                mode_given = true;
                kept.push((name.into_owned(), value.into_owned()));
            }
            _ => kept.push((name.into_owned(), value.into_owned())),
        }
    }
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok((parsed.to_string(), root_file, mode_given))
}

/// Whether every host of `config` is this machine: a Unix socket, `localhost` or a loopback
/// address.
fn all_local(config: &tokio_postgres::Config) -> bool {
    let hosts = config.get_hosts();
    !hosts.is_empty()
        && hosts.iter().all(|host| match host {
            Host::Unix(_) => true,
            Host::Tcp(name) => {
                name == "localhost"
                    || name
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<IpAddr>()
                        .is_ok_and(|address| address.is_loopback())
            }
        })
}

/// The certificates of the PEM file `path`, as the only roots trusted.
fn roots_from(path: &Path) -> Result<RootCertStore, StoreError> {
    let unreadable = |reason: String| StoreError::PostgresRootCertificates {
        path: path.to_owned(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    let certificates =
        CertificateDer::pem_file_iter(path).map_err(|error| unreadable(error.report()))?;
    for certificate in certificates {
        let certificate = certificate.map_err(|error| unreadable(error.report()))?;
        roots
            .add(certificate)
            .map_err(|error| unreadable(error.report()))?;
    }
    if roots.is_empty() {
        return Err(unreadable("no certificate in the file".to_owned()));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn security(url: &str) -> PgSecurity {
        match settings(url) {
            Ok(settings) => settings.security,
            Err(error) => panic!("{url}: {error}"),
        }
    }

    #[test]
    fn plain_by_default_only_on_this_machine() {
        assert_eq!(
            security("postgres://postgres@127.0.0.1:5432/test"),
            PgSecurity::Plain
        );
        assert_eq!(
            security("postgres://postgres@localhost/test"),
            PgSecurity::Plain
        );
        assert_eq!(
            security("postgres://postgres@[::1]:5432/test"),
            PgSecurity::Plain
        );
        assert_eq!(
            security("postgres://postgres@db.example.com/licet"),
            PgSecurity::Tls
        );
        assert_eq!(
            security("postgres://postgres@10.0.0.5/licet"),
            PgSecurity::Tls
        );
        assert_eq!(
            security("host=db.example.com user=postgres dbname=licet"),
            PgSecurity::Tls
        );
        assert_eq!(
            security("host=/run/postgresql user=postgres"),
            PgSecurity::Plain
        );
    }

    #[test]
    fn the_mode_given_wins() {
        assert_eq!(
            security("postgres://postgres@127.0.0.1/test?sslmode=require"),
            PgSecurity::Tls
        );
        assert_eq!(
            security("postgres://postgres@127.0.0.1/test?sslmode=prefer"),
            PgSecurity::TlsIfOffered
        );
        assert_eq!(
            security("postgres://postgres@db.example.com/licet?sslmode=disable"),
            PgSecurity::Plain
        );
    }

    #[test]
    fn the_root_file_is_taken_out_of_the_url_and_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let url = format!(
            "postgres://postgres@db.example.com/licet?sslmode=require&sslrootcert={}&application_name=licet",
            missing.display()
        );
        let (rest, file, mode_given) = split_options(&url).unwrap();
        assert!(mode_given);
        assert_eq!(file.as_deref(), Some(missing.as_path()));
        assert!(!rest.contains("sslrootcert"), "{rest}");
        assert!(rest.contains("application_name=licet"), "{rest}");
        assert!(matches!(
            settings(&url),
            Err(StoreError::PostgresRootCertificates { .. })
        ));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let url = format!(
            "postgres://postgres@db.example.com/licet?sslrootcert={}",
            empty.display()
        );
        assert!(matches!(
            settings(&url),
            Err(StoreError::PostgresRootCertificates { .. })
        ));
    }
}

/// Against the local PostgreSQL server of the tests, which has TLS on (Debian's default, with its
/// self-signed `localhost` certificate).
#[cfg(test)]
mod server_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn base() -> String {
        std::env::var("LICET_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
    }

    /// The server's certificate file, as the server reports it.
    async fn server_certificate() -> PathBuf {
        let (client, connection) = tokio_postgres::connect(&base(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let on: String = client.query_one("SHOW ssl", &[]).await.unwrap().get(0);
        assert_eq!(
            on, "on",
            "the test PostgreSQL has TLS off (`ssl = on` in postgresql.conf)"
        );
        let file: String = client
            .query_one("SHOW ssl_cert_file", &[])
            .await
            .unwrap()
            .get(0);
        PathBuf::from(file)
    }

    /// Connects with `url` and says whether the session runs over TLS.
    async fn session_over_tls(url: &str) -> Result<bool, tokio_postgres::Error> {
        let settings = settings(url).unwrap();
        let (client, connection) = settings.config.connect(settings.connector).await?;
        tokio::spawn(connection);
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await?;
        Ok(row.get(0))
    }

    #[tokio::test]
    async fn tls_is_verified_against_the_named_roots_and_the_host_name() {
        let certificate = server_certificate().await;
        let trusted = format!(
            "postgres://postgres@localhost:5432/test?sslmode=require&sslrootcert={}",
            certificate.display()
        );
        assert!(session_over_tls(&trusted).await.unwrap());
        // The default on loopback is plain.
        assert!(!session_over_tls("postgres://postgres@localhost:5432/test")
            .await
            .unwrap());
        // Not among the default roots: refused, not downgraded.
        let untrusted = "postgres://postgres@localhost:5432/test?sslmode=require";
        assert!(session_over_tls(untrusted).await.is_err());
        let preferred = "postgres://postgres@localhost:5432/test?sslmode=prefer";
        assert!(session_over_tls(preferred).await.is_err());
        // The certificate names `localhost`, not the address.
        let wrong_name = format!(
            "postgres://postgres@127.0.0.1:5432/test?sslmode=require&sslrootcert={}",
            certificate.display()
        );
        assert!(session_over_tls(&wrong_name).await.is_err());
    }
}
