//! Schema migrations: versioned SQL files, `host-server/migrations/{sqlite,postgres}/V<N>__<name>.sql`,
//! embedded at build time and applied by refinery, each once, in order, in its own transaction.
//!
//! Refinery's history table (`refinery_schema_history`) keeps every applied migration's version,
//! name and checksum; opening a database one of whose applied migrations no longer matches its
//! file fails with [`MigrationError::ChecksumMismatch`]. Databases made before the files existed
//! recorded bare versions in `schema_migrations (version, applied_at)`: their versions are entered
//! into the history without being run again, and that table is dropped.

use licet_engine::report::Report as _;
use refinery::error::Kind;
use refinery::{Migration, Runner, Target};

use crate::error::StoreError;

#[allow(unused_imports)]
mod embedded_sqlite {
    refinery::embed_migrations!("migrations/sqlite");
}

#[allow(unused_imports)]
mod embedded_postgres {
    refinery::embed_migrations!("migrations/postgres");
}

/// The table in which databases made before the migration files recorded their applied versions.
const LEGACY_TABLE: &str = "schema_migrations";
/// Refinery's history table.
pub(crate) const HISTORY_TABLE: &str = "refinery_schema_history";
/// Key of the PostgreSQL advisory lock held while migrating, so replicas starting together
/// migrate one after the other.
const MIGRATION_LOCK: i64 = 0x11ce_7001;

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// An applied migration's file changed after it was applied.
    #[error(
        "applied migration {version} (`{applied}`) no longer matches its file `V{version}__{file}.sql` \
         (its checksum differs): a migration must not change once it was applied"
    )]
    ChecksumMismatch {
        /// The migration's version.
        version: i64,
        /// The name recorded when it was applied.
        applied: String,
        /// The name of its file now.
        file: String,
    },
    /// An applied migration has no file, or a file older than the latest applied one was never
    /// applied.
    #[error(
        "migration {version} (`{name}`) is applied but has no file, or has a file but was skipped"
    )]
    Missing {
        /// The migration's version.
        version: i64,
        /// Its name.
        name: String,
    },
    /// The earlier bookkeeping table records versions that are not 1 to N of the known files.
    #[error("`schema_migrations` records versions {versions:?}, not 1 to N of the {known} migration files")]
    LegacyVersions {
        /// The versions it records.
        versions: Vec<i64>,
        /// How many migration files there are.
        known: usize,
    },
    /// A migration (or reading the history) failed.
    #[error("{0}")]
    Failed(String),
}

impl MigrationError {
    /// The migration concerned, 0 when none is.
    pub fn version(&self) -> i64 {
        match self {
            MigrationError::ChecksumMismatch { version, .. }
            | MigrationError::Missing { version, .. } => *version,
            MigrationError::LegacyVersions { .. } | MigrationError::Failed(_) => 0,
        }
    }
}

impl From<refinery::Error> for MigrationError {
    fn from(error: refinery::Error) -> Self {
        match error.kind() {
            Kind::DivergentVersion(applied, file) => MigrationError::ChecksumMismatch {
                version: i64::from(applied.version()),
                applied: applied.name().to_owned(),
                file: file.name().to_owned(),
            },
            Kind::MissingVersion(migration) => MigrationError::Missing {
                version: i64::from(migration.version()),
                name: migration.name().to_owned(),
            },
            _ => MigrationError::Failed(licet_engine::report::chain(&error).to_string()),
        }
    }
}

impl From<MigrationError> for StoreError {
    fn from(error: MigrationError) -> Self {
        StoreError::Migration {
            version: error.version(),
            message: error.report(),
        }
    }
}

/// The SQLite migrations, in version order.
pub(crate) fn sqlite_files() -> Vec<Migration> {
    sorted(embedded_sqlite::migrations::runner())
}

/// The PostgreSQL migrations, in version order.
pub(crate) fn postgres_files() -> Vec<Migration> {
    sorted(embedded_postgres::migrations::runner())
}

fn sorted(runner: Runner) -> Vec<Migration> {
    let mut migrations = runner.get_migrations().clone();
    migrations.sort_by_key(Migration::version);
    migrations
}

/// The last version the earlier bookkeeping table records, checked to be 1 to N of `files`.
fn legacy_last(versions: Vec<i64>, files: &[Migration]) -> Result<i32, MigrationError> {
    let consecutive = versions
        .iter()
        .zip(1_i64..)
        .all(|(version, expected)| *version == expected);
    let file_versions: Vec<i64> = files.iter().map(|m| i64::from(m.version())).collect();
    let known = versions
        .iter()
        .all(|version| file_versions.contains(version));
    match versions.last().map(|last| i32::try_from(*last)) {
        Some(Ok(last)) if consecutive && known => Ok(last),
        _ => Err(MigrationError::LegacyVersions {
            versions,
            known: files.len(),
        }),
    }
}

/// Brings a SQLite database up to date with the embedded files.
pub(crate) fn sqlite(conn: &mut rusqlite::Connection) -> Result<(), StoreError> {
    sqlite_with(conn, &sqlite_files())
}

/// Brings a SQLite database up to date with `files`.
pub(crate) fn sqlite_with(
    conn: &mut rusqlite::Connection,
    files: &[Migration],
) -> Result<(), StoreError> {
    let table_exists = |conn: &rusqlite::Connection, name: &str| -> Result<bool, StoreError> {
        Ok(conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [name],
            |row| row.get(0),
        )?)
    };
    if table_exists(conn, LEGACY_TABLE)? {
        let versions = {
            let mut statement = conn.prepare(&format!(
                "SELECT version FROM {LEGACY_TABLE} ORDER BY version"
            ))?;
            let rows = statement.query_map([], |row| row.get::<_, i64>(0))?;
            rows.collect::<Result<Vec<i64>, _>>()?
        };
        let recorded: i64 = if table_exists(conn, HISTORY_TABLE)? {
            conn.query_row(
                &format!("SELECT COUNT(*) FROM {HISTORY_TABLE}"),
                [],
                |row| row.get(0),
            )?
        } else {
            0
        };
        if recorded == 0 && !versions.is_empty() {
            let last = legacy_last(versions, files)?;
            Runner::new(files)
                .set_target(Target::FakeVersion(last))
                .run(conn)
                .map_err(MigrationError::from)?;
        }
        conn.execute_batch(&format!("DROP TABLE {LEGACY_TABLE}"))?;
    }
    Runner::new(files).run(conn).map_err(MigrationError::from)?;
    Ok(())
}

/// Brings a PostgreSQL database up to date with the embedded files, holding the migration lock.
pub(crate) async fn postgres(client: &mut tokio_postgres::Client) -> Result<(), StoreError> {
    postgres_with(client, &postgres_files()).await
}

/// Brings a PostgreSQL database up to date with `files`, holding the migration lock: a replica
/// starting at the same time waits, then finds nothing left to do.
pub(crate) async fn postgres_with(
    client: &mut tokio_postgres::Client,
    files: &[Migration],
) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = postgres_locked(client, files).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    result?;
    unlocked?;
    Ok(())
}

async fn postgres_locked(
    client: &mut tokio_postgres::Client,
    files: &[Migration],
) -> Result<(), StoreError> {
    let table_exists = "SELECT to_regclass($1) IS NOT NULL";
    let legacy: bool = client
        .query_one(table_exists, &[&LEGACY_TABLE])
        .await?
        .try_get(0)?;
    if legacy {
        let versions: Vec<i64> = client
            .query(
                &format!("SELECT version FROM {LEGACY_TABLE} ORDER BY version"),
                &[],
            )
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?;
        let history: bool = client
            .query_one(table_exists, &[&HISTORY_TABLE])
            .await?
            .try_get(0)?;
        let recorded: i64 = if history {
            client
                .query_one(&format!("SELECT COUNT(*) FROM {HISTORY_TABLE}"), &[])
                .await?
                .try_get(0)?
        } else {
            0
        };
        if recorded == 0 && !versions.is_empty() {
            let last = legacy_last(versions, files)?;
            Runner::new(files)
                .set_target(Target::FakeVersion(last))
                .run_async(client)
                .await
                .map_err(MigrationError::from)?;
        }
        client
            .batch_execute(&format!("DROP TABLE {LEGACY_TABLE}"))
            .await?;
    }
    Runner::new(files)
        .run_async(client)
        .await
        .map_err(MigrationError::from)?;
    Ok(())
}
