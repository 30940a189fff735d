//! PostgreSQL backend for several replicas: a `deadpool-postgres` pool of connections, over TLS
//! unless the database is on this machine; every request runs in one transaction and locks the
//! license row (`SELECT ... FOR UPDATE`) before it reads anything else, so decisions about one
//! license are serialized across all replicas.

use licet_engine::report::Report as _;
mod records;
mod tls;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};

use self::records::PgRecords;
use super::migrations;
use super::Job;
use crate::error::StoreError;

pub(crate) use self::tls::PgSecurity;

/// A pool of connections to one PostgreSQL database.
#[derive(Clone)]
pub(crate) struct PgStore {
    pool: Pool,
    security: PgSecurity,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects, migrates, and keeps up to `max_connections` connections.
    pub(crate) async fn open(url: &str, max_connections: usize) -> Result<Self, StoreError> {
        let settings = tls::settings(url)?;
        let manager = Manager::from_config(
            settings.config,
            settings.connector,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections.max(1))
            .build()
            .map_err(|error| StoreError::PostgresPool(error.report()))?;
        let store = PgStore {
            pool,
            security: settings.security,
        };
        let mut client = store.client().await?;
        migrations::postgres(&mut client).await?;
        Ok(store)
    }

    /// How this store's connections are secured.
    pub(crate) fn security(&self) -> PgSecurity {
        self.security
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(|error| match error {
            PoolError::Backend(error) => StoreError::Postgres(error),
            PoolError::Closed => StoreError::WorkerStopped,
            other => StoreError::PostgresPool(other.report()),
        })
    }

    /// Runs `job` in one transaction: committed when it succeeds, rolled back when it fails.
    pub(crate) async fn execute<J: Job>(&self, job: J) -> Result<J::Output, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let mut records = PgRecords { tx: &transaction };
        match job.run(&mut records).await {
            Ok(output) => {
                transaction
                    .commit()
                    .await
                    .map_err(|error| StoreError::Commit(error.report()))?;
                Ok(output)
            }
            Err(error) => {
                transaction.rollback().await?;
                Err(error)
            }
        }
    }
}
