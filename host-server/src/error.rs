//! Typed errors of the server library.

use std::path::PathBuf;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("sqlite")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL reported an error.
    #[error("postgresql")]
    Postgres(#[from] tokio_postgres::Error),
    /// The pool of PostgreSQL connections failed (other than by an error of PostgreSQL's).
    #[error("postgresql connection pool: {0}")]
    PostgresPool(String),
    /// TLS to PostgreSQL could not be set up.
    #[error("postgresql TLS: {0}")]
    PostgresTls(String),
    /// The `sslrootcert` file of the database URL holds no usable certificate.
    #[error("postgresql root certificates `{path}`: {reason}")]
    PostgresRootCertificates {
        /// The file named by `sslrootcert`.
        path: PathBuf,
        /// Why its certificates cannot be used.
        reason: String,
    },
    /// A stored value could not be read back.
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// The database setting names no supported backend.
    #[error("database `{0}` is neither `sqlite:///path` nor `postgres://...`")]
    UnsupportedDatabase(String),
    /// The storage worker is gone (the server is shutting down).
    #[error("the storage worker stopped")]
    WorkerStopped,
    /// The record already exists.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The record does not exist.
    #[error("{0} does not exist")]
    NotFound(String),
    /// A write found the store in a state the transaction did not expect; nothing was changed.
    #[error("concurrent change: {0}")]
    Conflict(String),
    /// The transaction could not be committed; nothing it did was kept.
    #[error("commit failed: {0}")]
    Commit(String),
    /// An internal step that must complete at once did not.
    #[error("storage step did not complete")]
    Stalled,
    /// A schema migration failed.
    #[error("migration {version}: {message}")]
    Migration {
        /// The migration's version.
        version: i64,
        /// What went wrong.
        message: String,
    },
}

impl StoreError {
    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(what.to_string())
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A file could not be read or written.
    #[error("`{path}`")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The configuration file is not valid.
    #[error("`{path}`: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A policy file is not valid.
    #[error("{0}")]
    Policy(String),
    /// A key file (the vendor's key, its public key, or a license server's own key) is not valid.
    #[error("key `{path}`: {message}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The store could not be opened.
    #[error("storage")]
    Store(#[from] StoreError),
    /// The keys or settings configured do not fit the server's role, or a license server's
    /// server licenses could not be read.
    #[error("{0}")]
    Role(String),
    /// The certificate or key of `tls` cannot be served.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The dongle plugin could not be loaded.
    #[error("dongle plugin `{path}`: {message}")]
    Dongle {
        /// The plugin directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A transport plugin of `transports:` could not be loaded.
    #[error("transport plugin `{path}`: {message}")]
    Transport {
        /// The plugin directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}
