//! Storage: SQLite (embedded default) or PostgreSQL (several replicas), chosen by one setting.
//!
//! Everything the server stores is read and written through [`Records`], whose two
//! implementations hold all the SQL; the code that decides requests and administers licenses is
//! written once as [`Job`]s, each run in one transaction.

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod migration_tests;
mod migrations;
mod postgres;
pub mod records;
mod sqlite;

use prometheus_client::metrics::histogram::Histogram;
use std::future::Future;
use std::path::PathBuf;

pub(crate) use records::Records;
pub use records::{
    ActivationRecord, AuditEntry, AuditSearch, ClientRecord, DenialCount, LeaseRecord,
    LicenseFilter, LicenseRecord, OrderRecord, ResponseFileRecord, SeatUsage, TokenOwner,
};
pub use sqlite::Synchronous;

use crate::error::StoreError;

/// Work done in one transaction; committed when it returns `Ok`, rolled back otherwise.
pub(crate) trait Job: Send + 'static {
    /// What the job returns.
    type Output: Send + 'static;
    /// Runs the job against the transaction's records.
    fn run<R: Records>(
        self,
        records: &mut R,
    ) -> impl Future<Output = Result<Self::Output, StoreError>> + Send;
}

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string (`postgres://user@host:port/db?options=...`).
    Postgres(String),
}

impl Database {
    /// Parses `sqlite:///path/to/file.db`, `sqlite://relative.db` or `postgres://...`.
    pub fn parse(setting: &str) -> Result<Database, StoreError> {
        if let Some(path) = setting.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::UnsupportedDatabase(setting.to_owned()));
            }
            return Ok(Database::Sqlite(PathBuf::from(path)));
        }
        if setting.starts_with("postgres://") || setting.starts_with("postgresql://") {
            return Ok(Database::Postgres(setting.to_owned()));
        }
        Err(StoreError::UnsupportedDatabase(setting.to_owned()))
    }
}

/// Tuning of the store.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// How SQLite syncs commits.
    pub synchronous: Synchronous,
    /// The most PostgreSQL connections of this server.
    pub max_connections: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            synchronous: Synchronous::Full,
            max_connections: 16,
        }
    }
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

/// An open, migrated store.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    /// How long write transactions take, commit (and on SQLite its sync) included.
    transaction_seconds: Histogram,
}

impl Store {
    /// Opens the database (creating and migrating it as needed).
    pub async fn open(database: &Database, options: StoreOptions) -> Result<Store, StoreError> {
        let backend = match database {
            Database::Sqlite(path) => {
                let path = path.clone();
                let synchronous = options.synchronous;
                let store = tokio::task::spawn_blocking(move || {
                    sqlite::SqliteStore::open(&path, synchronous)
                })
                .await
                .map_err(|_| StoreError::WorkerStopped)??;
                Backend::Sqlite(store)
            }
            Database::Postgres(url) => {
                Backend::Postgres(postgres::PgStore::open(url, options.max_connections).await?)
            }
        };
        Ok(Store {
            backend,
            transaction_seconds: crate::metrics::latency_histogram(),
        })
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// How the connections to the database are secured: `None` for SQLite (a local file), and
    /// for PostgreSQL `plain`, `tls-if-offered` or `tls` (always verified).
    pub fn connection_security(&self) -> Option<&'static str> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(store) => Some(match store.security() {
                postgres::PgSecurity::Plain => "plain",
                postgres::PgSecurity::TlsIfOffered => "tls-if-offered",
                postgres::PgSecurity::Tls => "tls",
            }),
        }
    }

    /// The SQLite file, for the SQLite backend.
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        match &self.backend {
            Backend::Sqlite(store) => Some(store.path()),
            Backend::Postgres(_) => None,
        }
    }

    /// Runs `job`, which only reads, without queueing behind writes: on SQLite on a query-only
    /// connection (no write lock, no sync), on PostgreSQL in one transaction as usual.
    pub(crate) async fn read<J: Job>(&self, job: J) -> Result<J::Output, StoreError> {
        match &self.backend {
            Backend::Sqlite(store) => store.read(job).await,
            Backend::Postgres(store) => store.execute(job).await,
        }
    }

    /// Runs `job` in one transaction.
    pub(crate) async fn execute<J: Job>(&self, job: J) -> Result<J::Output, StoreError> {
        let started = std::time::Instant::now();
        let result = match &self.backend {
            Backend::Sqlite(store) => store.execute(job).await,
            Backend::Postgres(store) => store.execute(job).await,
        };
        self.transaction_seconds
            .observe(started.elapsed().as_secs_f64());
        result
    }

    /// The histogram of write transaction times, shared with whoever registers it.
    pub fn transaction_seconds(&self) -> Histogram {
        self.transaction_seconds.clone()
    }
}

/// Declares a [`Job`]: a struct of inputs and the body run inside the transaction.
macro_rules! job {
    (
        $(#[$meta:meta])*
        $name:ident { $($field:ident : $ty:ty),* $(,)? } -> $output:ty;
        |$this:ident, $records:ident| $body:block
    ) => {
        $(#[$meta])*
        pub(crate) struct $name { $(pub(crate) $field: $ty),* }

        impl $crate::store::Job for $name {
            type Output = $output;
            #[allow(clippy::manual_async_fn)]
            fn run<R: $crate::store::Records>(
                self,
                $records: &mut R,
            ) -> impl ::std::future::Future<Output = Result<$output, $crate::error::StoreError>> + Send {
                let $this = self;
                async move $body
            }
        }
    };
}
pub(crate) use job;
