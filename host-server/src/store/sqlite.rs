//! SQLite backend: one writer thread owns the connection; requests queue up and are committed in
//! groups (one `BEGIN IMMEDIATE ... COMMIT`, one sync, for every request waiting), each request in
//! its own savepoint so a failing one changes nothing. An answer is sent only after its group
//! committed, so an acknowledged change survives a crash.

use licet_engine::report::Report as _;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use chrono::{DateTime, Utc};
use licet_engine::certificate::{Binding, CertificateKind};
use licet_engine::state::{
    Activation, License, Order, ReturnedCertificate, SeatLease, TrialRecord,
};
use rusqlite::{params, Connection, OptionalExtension, Row};
use tokio::sync::{mpsc, oneshot};

use super::migrations;
use super::records::*;
use super::Job;
use crate::error::StoreError;

/// How SQLite syncs commits to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Synchronous {
    /// Every acknowledged commit is synced to disk (survives power loss). The writer commits a
    /// group in WAL mode and hands its answers to a syncer thread, which `fsync`s the WAL and only
    /// then answers; meanwhile the writer runs the next group.
    #[default]
    Full,
    /// WAL commits are synced at checkpoints (survive a process crash, not a power loss).
    Normal,
}

/// The most requests committed together.
const MAX_GROUP: usize = 256;
/// The most requests waiting for the writer.
const QUEUE: usize = 4096;

type Finish = Box<dyn FnOnce(Option<&str>) + Send>;
type Work = Box<dyn FnOnce(&mut Connection) -> Result<Finish, String> + Send>;

/// A handle to the writer thread.
#[derive(Debug, Clone)]
pub(crate) struct SqliteStore {
    sender: mpsc::Sender<Work>,
    path: PathBuf,
    /// A second, query-only connection for lookups that must not wait for (or hold up) the
    /// writer: in WAL mode it reads the last commit while the writer works.
    reader: std::sync::Arc<std::sync::Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file, migrates it and starts the writer.
    pub(crate) fn open(path: &Path, synchronous: Synchronous) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // Checkpoints sync the WAL and the database in NORMAL mode; per-commit durability of
        // `Full` comes from the syncer thread, which syncs the WAL before any answer goes out.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.set_prepared_statement_cache_capacity(64);
        migrations::sqlite(&mut conn)?;
        let reader = Connection::open(path)?;
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        reader.pragma_update(None, "query_only", "ON")?;
        reader.set_prepared_statement_cache_capacity(16);
        let (sender, receiver) = mpsc::channel(QUEUE);
        let syncer = match synchronous {
            Synchronous::Full => {
                let (to_syncer, batches) = std::sync::mpsc::channel::<Synced>();
                let wal = wal_path(path);
                std::thread::Builder::new()
                    .name("licet-sqlite-syncer".into())
                    .spawn(move || syncer(&wal, &batches))
                    .map_err(|error| {
                        StoreError::Commit(format!("cannot start the syncer: {error}"))
                    })?;
                Some(to_syncer)
            }
            Synchronous::Normal => None,
        };
        std::thread::Builder::new()
            .name("licet-sqlite-writer".into())
            .spawn(move || writer(conn, receiver, syncer))
            .map_err(|error| StoreError::Commit(format!("cannot start the writer: {error}")))?;
        Ok(SqliteStore {
            sender,
            path: path.to_owned(),
            reader: std::sync::Arc::new(std::sync::Mutex::new(reader)),
        })
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs a job that only reads on the query-only connection, in a read transaction: it takes
    /// no write lock and syncs nothing (a job that writes fails and changes nothing).
    pub(crate) async fn read<J: Job>(&self, job: J) -> Result<J::Output, StoreError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = reader
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            conn.execute_batch("BEGIN DEFERRED")?;
            let result = run_ready(job.run(&mut SqliteRecords { conn: &mut conn }));
            // Nothing to keep: ending the read transaction either way releases its snapshot.
            let _ = conn.execute_batch("ROLLBACK");
            result?
        })
        .await
        .map_err(|_| StoreError::WorkerStopped)?
    }

    /// Runs `job` in the next commit group and returns its result once the group committed.
    pub(crate) async fn execute<J: Job>(&self, job: J) -> Result<J::Output, StoreError> {
        let (reply, answer) = oneshot::channel::<Result<J::Output, StoreError>>();
        let work: Work = Box::new(move |conn: &mut Connection| {
            conn.execute_batch("SAVEPOINT request")
                .map_err(|error| error.report())?;
            let result = run_ready(job.run(&mut SqliteRecords { conn }));
            let result = match result {
                Ok(Ok(value)) => {
                    conn.execute_batch("RELEASE request")
                        .map_err(|error| error.report())?;
                    Ok(value)
                }
                Ok(Err(error)) | Err(error) => {
                    conn.execute_batch("ROLLBACK TO request; RELEASE request")
                        .map_err(|error| error.report())?;
                    Err(error)
                }
            };
            Ok(Box::new(move |commit_error: Option<&str>| {
                let result = match (result, commit_error) {
                    (Ok(_), Some(error)) => Err(StoreError::Commit(error.to_owned())),
                    (result, _) => result,
                };
                // The caller may have gone away; nothing to do then.
                let _ = reply.send(result);
            }) as Finish)
        });
        self.sender
            .send(work)
            .await
            .map_err(|_| StoreError::WorkerStopped)?;
        answer.await.map_err(|_| StoreError::WorkerStopped)?
    }
}

/// Polls a future that never waits (every SQLite step is synchronous) to completion.
fn run_ready<F: Future>(future: F) -> Result<F::Output, StoreError> {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut context) {
        Poll::Ready(output) => Ok(output),
        Poll::Pending => Err(StoreError::Stalled),
    }
}

/// A committed (or failed) group's answers and its commit error, on their way to the syncer.
type Synced = (Vec<Finish>, Option<String>);

/// The WAL file of the database at `path`.
fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

fn writer(
    mut conn: Connection,
    mut receiver: mpsc::Receiver<Work>,
    syncer: Option<std::sync::mpsc::Sender<Synced>>,
) {
    while let Some(first) = receiver.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(work) => group.push(work),
                Err(_) => break,
            }
        }
        let (finishers, commit_error) = commit_group(&mut conn, group);
        match &syncer {
            // Every group goes through the syncer, in order, so no answer (not even a read of
            // committed data) leaves before the commits it saw are on disk.
            Some(syncer) => {
                if let Err(std::sync::mpsc::SendError((finishers, _))) =
                    syncer.send((finishers, commit_error))
                {
                    for finish in finishers {
                        finish(Some("the syncer stopped"));
                    }
                }
            }
            None => {
                for finish in finishers {
                    finish(commit_error.as_deref());
                }
            }
        }
    }
}

/// Syncs the WAL once for every group waiting, then answers them in order.
fn syncer(wal: &Path, batches: &std::sync::mpsc::Receiver<Synced>) {
    let mut file: Option<std::fs::File> = None;
    while let Ok(first) = batches.recv() {
        let mut waiting = vec![first];
        while let Ok(more) = batches.try_recv() {
            waiting.push(more);
        }
        let sync_error = if waiting.iter().any(|(_, error)| error.is_none()) {
            if file.is_none() {
                file = std::fs::OpenOptions::new().write(true).open(wal).ok();
            }
            match file.as_ref().map(std::fs::File::sync_data) {
                Some(Ok(())) => None,
                Some(Err(error)) => Some(format!("syncing the journal failed: {error}")),
                None => Some("the journal cannot be opened to sync it".to_owned()),
            }
        } else {
            None
        };
        for (finishers, commit_error) in waiting {
            let error = commit_error.or_else(|| sync_error.clone());
            for finish in finishers {
                finish(error.as_deref());
            }
        }
    }
}

fn commit_group(conn: &mut Connection, group: Vec<Work>) -> Synced {
    if let Err(error) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Nothing ran: dropping the work fails every request of the group.
        tracing::error!("cannot begin a transaction: {error}");
        drop(group);
        return (Vec::new(), None);
    }
    let mut finishers = Vec::with_capacity(group.len());
    let mut broken = None;
    for work in group {
        if broken.is_some() {
            drop(work);
            continue;
        }
        match work(conn) {
            Ok(finish) => finishers.push(finish),
            Err(error) => broken = Some(error),
        }
    }
    let commit_error = match broken {
        Some(error) => {
            let _ = conn.execute_batch("ROLLBACK");
            Some(error)
        }
        None => conn.execute_batch("COMMIT").err().map(|error| {
            let _ = conn.execute_batch("ROLLBACK");
            error.report()
        }),
    };
    (finishers, commit_error)
}

fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.code == rusqlite::ErrorCode::ConstraintViolation
    )
}

/// The lease columns of a row, from column `first` on (in [`lease_columns!`] order).
fn lease_row(row: &Row<'_>, first: usize) -> rusqlite::Result<LeaseColumns> {
    Ok(LeaseColumns {
        session: row.get(first)?,
        binding: row.get(first + 1)?,
        leased_at: row.get(first + 2)?,
        expires_at: row.get(first + 3)?,
        borrowed_until: row.get(first + 4)?,
        certificate_serial: row.get(first + 5)?,
        returned_at: row.get(first + 6)?,
    })
}

fn license_columns(row: &Row<'_>) -> rusqlite::Result<LicenseColumns> {
    Ok(LicenseColumns {
        key: row.get(0)?,
        product: row.get(1)?,
        license_type: row.get(2)?,
        edition: row.get(3)?,
        version: row.get(4)?,
        rental_ends_at: row.get(5)?,
        seats: row.get(6)?,
        features: row.get(7)?,
        counters: row.get(8)?,
        status: row.get(9)?,
        dongle: row.get(10)?,
        client: row.get(11)?,
        order: row.get(12)?,
        limited: row.get(13)?,
        created_at: row.get(14)?,
    })
}

fn order_columns(row: &Row<'_>) -> rusqlite::Result<(String, String, String, String, String, i64)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn order_record(
    (id, client, product, features, counters, created_at): (
        String,
        String,
        String,
        String,
        String,
        i64,
    ),
) -> Result<OrderRecord, StoreError> {
    Ok(OrderRecord {
        order: Order {
            id,
            client,
            features: from_json(&features)?,
            counters: from_json(&counters)?,
        },
        product,
        created_at: from_secs(created_at)?,
    })
}

fn client_record(
    (id, name, has_token, created_at): (String, String, bool, i64),
) -> Result<ClientRecord, StoreError> {
    Ok(ClientRecord {
        id,
        name,
        has_token,
        created_at: from_secs(created_at)?,
    })
}

/// An audit row: id, time, actor and action, license key, verdict to detail.
type AuditRow = (i64, i64, [String; 2], Option<String>, [String; 5]);

fn audit_entry(row: &Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        [row.get(2)?, row.get(3)?],
        row.get(4)?,
        [
            row.get(5)?,
            row.get(6)?,
            row.get(7)?,
            row.get(8)?,
            row.get(9)?,
        ],
    ))
}

/// The transaction view of the writer's connection.
struct SqliteRecords<'c> {
    conn: &'c mut Connection,
}

impl SqliteRecords<'_> {
    fn license_where(&self, key: &str) -> Result<Option<LicenseRecord>, StoreError> {
        let mut statement = self.conn.prepare_cached(concat!(
            "SELECT ",
            license_columns!(),
            " FROM licenses WHERE key = ?1"
        ))?;
        let columns = statement.query_row([key], license_columns).optional()?;
        columns.map(LicenseColumns::into_record).transpose()
    }
}

impl SqliteRecords<'_> {
    /// Writes the index entries of activation `id`.
    fn index_activation(
        &mut self,
        id: i64,
        key: &str,
        binding: &Binding,
        anchor: Option<&Binding>,
    ) -> Result<(), StoreError> {
        let mut statement = self.conn.prepare_cached(
            "INSERT INTO activation_components (activation_id, license_key, name, value) \
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (name, value) in activation_components(binding, anchor) {
            statement.execute(params![id, key, name, value])?;
        }
        Ok(())
    }
}

/// An activation row: id, binding, time, anchor, certificate serial.
type ActivationRow = (i64, String, i64, Option<String>, Option<String>);

fn activation_row(row: &Row<'_>) -> rusqlite::Result<ActivationRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn activation_record(
    (id, binding, activated_at, anchor, serial): ActivationRow,
) -> Result<ActivationRecord, StoreError> {
    Ok(ActivationRecord {
        id,
        activation: activation_from(&binding, activated_at, anchor.as_deref(), serial)?,
    })
}

impl Records for SqliteRecords<'_> {
    async fn lock_license(&mut self, key: &str) -> Result<Option<LicenseRecord>, StoreError> {
        // The writer thread is the only writer: holding it is the lock.
        self.license_where(key)
    }

    async fn lock_product(&mut self, _product: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn license(&mut self, key: &str) -> Result<Option<LicenseRecord>, StoreError> {
        self.license_where(key)
    }

    async fn licenses(&mut self, filter: &LicenseFilter) -> Result<Vec<LicenseRecord>, StoreError> {
        let mut statement = self.conn.prepare_cached(concat!(
            "SELECT ",
            license_columns!(),
            " FROM licenses l WHERE \
             (?1 IS NULL OR product = ?1) AND \
             (?2 IS NULL OR client_id = ?2 OR order_id IN (SELECT id FROM orders WHERE client_id = ?2)) AND \
             (?3 IS NULL OR order_id = ?3) AND (?4 IS NULL OR key > ?4) ORDER BY key LIMIT ?5"
        ))?;
        let rows = statement.query_map(
            params![
                filter.product,
                filter.client,
                filter.order,
                filter.after,
                filter.limit
            ],
            license_columns,
        )?;
        rows.map(|row| row?.into_record()).collect()
    }

    async fn insert_license(&mut self, record: &LicenseRecord) -> Result<(), StoreError> {
        let license = &record.license;
        let mut statement = self.conn.prepare_cached(
            "INSERT INTO licenses (key, product, license_type, edition, version, rental_ends_at, seats, \
             features, counters, status, dongle, client_id, order_id, limited, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15)",
        )?;
        let result = statement.execute(params![
            license.key,
            license.product,
            license.license_type,
            license.edition,
            license.version,
            rental_end(license.term),
            license.seats.map(i64::from),
            to_json(&license.features)?,
            to_json(&license.counters)?,
            status_name(license.status),
            license.dongle,
            license.client,
            record.order,
            limited_json(&license.limited)?,
            to_secs(record.created_at),
        ]);
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_unique_violation(&error) => Err(StoreError::AlreadyExists(format!(
                "license `{}`",
                license.key
            ))),
            Err(error) => Err(error.into()),
        }
    }

    async fn save_license(
        &mut self,
        license: &License,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut statement = self.conn.prepare_cached(
            "UPDATE licenses SET rental_ends_at = ?2, features = ?3, counters = ?4, status = ?5, \
             limited = ?6, updated_at = ?7, seats = ?8 WHERE key = ?1",
        )?;
        let changed = statement.execute(params![
            license.key,
            rental_end(license.term),
            to_json(&license.features)?,
            to_json(&license.counters)?,
            status_name(license.status),
            limited_json(&license.limited)?,
            to_secs(now),
            license.seats.map(i64::from),
        ])?;
        if changed != 1 {
            return Err(StoreError::Conflict(format!(
                "license `{}` vanished",
                license.key
            )));
        }
        Ok(())
    }

    async fn order(&mut self, id: &str) -> Result<Option<OrderRecord>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT id, client_id, product, features, counters, created_at FROM orders WHERE id = ?1",
        )?;
        let row = statement.query_row([id], order_columns).optional()?;
        row.map(order_record).transpose()
    }

    async fn insert_order(&mut self, record: &OrderRecord) -> Result<(), StoreError> {
        let mut statement = self.conn.prepare_cached(
            "INSERT INTO orders (id, client_id, product, features, counters, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let result = statement.execute(params![
            record.order.id,
            record.order.client,
            record.product,
            to_json(&record.order.features)?,
            to_json(&record.order.counters)?,
            to_secs(record.created_at),
        ]);
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_unique_violation(&error) => Err(StoreError::AlreadyExists(format!(
                "order `{}`",
                record.order.id
            ))),
            Err(error) => Err(error.into()),
        }
    }

    async fn save_order(&mut self, order: &Order) -> Result<(), StoreError> {
        let mut statement = self
            .conn
            .prepare_cached("UPDATE orders SET features = ?2, counters = ?3 WHERE id = ?1")?;
        statement.execute(params![
            order.id,
            to_json(&order.features)?,
            to_json(&order.counters)?
        ])?;
        Ok(())
    }

    async fn client(&mut self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT id, name, token_hash IS NOT NULL, created_at FROM clients WHERE id = ?1",
        )?;
        let row = statement
            .query_row([id], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .optional()?;
        row.map(client_record).transpose()
    }

    async fn insert_client(
        &mut self,
        record: &ClientRecord,
        token_hash: &str,
    ) -> Result<(), StoreError> {
        let mut statement = self.conn.prepare_cached(
            "INSERT INTO clients (id, name, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let result = statement.execute(params![
            record.id,
            record.name,
            token_hash,
            to_secs(record.created_at)
        ]);
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_unique_violation(&error) => {
                Err(StoreError::AlreadyExists(format!("client `{}`", record.id)))
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn set_client_token(&mut self, id: &str, token_hash: &str) -> Result<bool, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached("UPDATE clients SET token_hash = ?2 WHERE id = ?1")?;
        Ok(statement.execute(params![id, token_hash])? == 1)
    }

    async fn insert_admin_token(
        &mut self,
        name: &str,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut statement = self.conn.prepare_cached(
            "INSERT INTO admin_tokens (name, token_hash, created_at) VALUES (?1, ?2, ?3)",
        )?;
        statement.execute(params![name, token_hash, to_secs(now)])?;
        Ok(())
    }

    async fn token_owner(&mut self, token_hash: &str) -> Result<Option<TokenOwner>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT name FROM admin_tokens WHERE token_hash = ?1")?;
        if let Some(name) = statement
            .query_row([token_hash], |row| row.get::<_, String>(0))
            .optional()?
        {
            return Ok(Some(TokenOwner::Administrator(name)));
        }
        let mut statement = self
            .conn
            .prepare_cached("SELECT id FROM clients WHERE token_hash = ?1")?;
        Ok(statement
            .query_row([token_hash], |row| row.get::<_, String>(0))
            .optional()?
            .map(TokenOwner::Client))
    }

    async fn upsert_product(
        &mut self,
        id: &str,
        name: &str,
        version: &str,
        policy_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut statement = self.conn.prepare_cached(
            "INSERT INTO products (id, name, version, policy_hash, updated_at) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, version = excluded.version, \
             policy_hash = excluded.policy_hash, updated_at = excluded.updated_at",
        )?;
        statement.execute(params![id, name, version, policy_hash, to_secs(now)])?;
        Ok(())
    }

    async fn insert_activation(
        &mut self,
        key: &str,
        activation: &Activation,
    ) -> Result<(), StoreError> {
        let id: i64 = self
            .conn
            .prepare_cached(
                "INSERT INTO activations (license_key, binding, activated_at, anchor, certificate_serial) \
                 VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            )?
            .query_row(
                params![
                    key,
                    to_json(&activation.binding)?,
                    to_secs(activation.activated_at),
                    to_json(activation.anchor())?,
                    activation.certificate_serial,
                ],
                |row| row.get(0),
            )?;
        self.index_activation(id, key, &activation.binding, Some(activation.anchor()))?;
        self.conn
            .prepare_cached(
                "UPDATE licenses SET activation_count = activation_count + 1 WHERE key = ?1",
            )?
            .execute([key])?;
        Ok(())
    }

    async fn set_activation_serial(
        &mut self,
        key: &str,
        binding: &Binding,
        serial: &str,
    ) -> Result<u64, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "UPDATE activations SET certificate_serial = ?3 WHERE license_key = ?1 AND binding = ?2",
        )?;
        Ok(statement.execute(params![key, to_json(binding)?, serial])? as u64)
    }

    async fn rebind_activation(
        &mut self,
        key: &str,
        from: &Binding,
        to: &Binding,
    ) -> Result<u64, StoreError> {
        let rebound = {
            let mut statement = self.conn.prepare_cached(
                "UPDATE activations SET binding = ?3 WHERE license_key = ?1 AND binding = ?2 \
                 RETURNING id, anchor",
            )?;
            let rows = statement.query_map(params![key, to_json(from)?, to_json(to)?], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, Option<String>>(1)?))
            })?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        for (id, anchor) in &rebound {
            let anchor: Option<Binding> = anchor.as_deref().map(from_json).transpose()?;
            self.conn
                .prepare_cached("DELETE FROM activation_components WHERE activation_id = ?1")?
                .execute([id])?;
            self.index_activation(*id, key, to, anchor.as_ref())?;
        }
        Ok(rebound.len() as u64)
    }

    async fn delete_activation(&mut self, key: &str, binding: &Binding) -> Result<u64, StoreError> {
        // Index entries go with their activation (ON DELETE CASCADE).
        let deleted = self
            .conn
            .prepare_cached("DELETE FROM activations WHERE license_key = ?1 AND binding = ?2")?
            .execute(params![key, to_json(binding)?])?;
        if deleted > 0 {
            self.conn
                .prepare_cached(
                    "UPDATE licenses SET activation_count = activation_count - ?2 WHERE key = ?1",
                )?
                .execute(params![key, deleted as i64])?;
        }
        Ok(deleted as u64)
    }

    async fn activation_count(&mut self, key: &str) -> Result<u64, StoreError> {
        let count: i64 = self
            .conn
            .prepare_cached("SELECT activation_count FROM licenses WHERE key = ?1")?
            .query_row([key], |row| row.get(0))
            .optional()?
            .unwrap_or(0);
        u64::try_from(count).map_err(|_| StoreError::corrupt(format!("activation count `{count}`")))
    }

    async fn activations_sharing(
        &mut self,
        key: &str,
        binding: &Binding,
    ) -> Result<Vec<ActivationRecord>, StoreError> {
        let components: BTreeMap<String, String> =
            indexed_components(binding).into_iter().collect();
        // The components drive the join, each an equality lookup of the index.
        let mut statement = self.conn.prepare_cached(
            "SELECT id, binding, activated_at, anchor, certificate_serial FROM activations \
             WHERE id IN (SELECT c.activation_id FROM json_each(?2) j \
             CROSS JOIN activation_components c \
             ON c.license_key = ?1 AND c.name = j.key AND c.value = j.value) ORDER BY id",
        )?;
        let rows = statement.query_map(params![key, to_json(&components)?], activation_row)?;
        rows.map(|row| activation_record(row?)).collect()
    }

    async fn held_seats(&mut self, key: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let ended = self
            .conn
            .prepare_cached(
                "UPDATE leases SET counted = 0 WHERE license_key = ?1 AND counted = 1 \
                 AND COALESCE(borrowed_until, expires_at) <= ?2",
            )?
            .execute(params![key, to_secs(now)])?;
        if ended > 0 {
            self.conn
                .prepare_cached("UPDATE licenses SET seats_held = seats_held - ?2 WHERE key = ?1")?
                .execute(params![key, ended as i64])?;
        }
        let held: i64 = self
            .conn
            .prepare_cached("SELECT seats_held FROM licenses WHERE key = ?1")?
            .query_row([key], |row| row.get(0))
            .optional()?
            .unwrap_or(0);
        Ok(u64::try_from(held).unwrap_or(0))
    }

    async fn lease(&mut self, key: &str, session: &str) -> Result<Option<SeatLease>, StoreError> {
        let mut statement = self.conn.prepare_cached(concat!(
            "SELECT ",
            lease_columns!(),
            " FROM leases WHERE license_key = ?1 AND session = ?2"
        ))?;
        statement
            .query_row([key, session], |row| lease_row(row, 0))
            .optional()?
            .map(LeaseColumns::into_lease)
            .transpose()
    }

    async fn borrowed_leases(
        &mut self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<SeatLease>, StoreError> {
        let mut statement = self.conn.prepare_cached(concat!(
            "SELECT ",
            lease_columns!(),
            " FROM leases WHERE license_key = ?1 AND counted = 1 AND borrowed_until > ?2 \
             AND returned_at IS NULL ORDER BY leased_at, session"
        ))?;
        let rows = statement.query_map(params![key, to_secs(now)], |row| lease_row(row, 0))?;
        rows.map(|row| row?.into_lease()).collect()
    }

    async fn put_lease(&mut self, key: &str, lease: &SeatLease) -> Result<(), StoreError> {
        // A lease written is held (its end is ahead): it counts, once.
        let counted: Option<i64> = self
            .conn
            .prepare_cached("SELECT counted FROM leases WHERE license_key = ?1 AND session = ?2")?
            .query_row([key, lease.session.as_str()], |row| row.get(0))
            .optional()?;
        if counted != Some(1) {
            self.conn
                .prepare_cached("UPDATE licenses SET seats_held = seats_held + 1 WHERE key = ?1")?
                .execute([key])?;
        }
        let mut statement = self.conn.prepare_cached(
            "INSERT INTO leases (license_key, session, binding, leased_at, expires_at, borrowed_until, \
             certificate_serial, returned_at, counted) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1) ON CONFLICT (license_key, session) DO UPDATE SET \
             binding = excluded.binding, leased_at = excluded.leased_at, \
             expires_at = excluded.expires_at, borrowed_until = excluded.borrowed_until, \
             certificate_serial = excluded.certificate_serial, returned_at = excluded.returned_at, \
             counted = 1",
        )?;
        statement.execute(params![
            key,
            lease.session,
            to_json(&lease.binding)?,
            to_secs(lease.leased_at),
            to_secs(lease.expires_at),
            lease.borrowed_until.map(to_secs),
            lease.certificate_serial,
            lease.returned_at.map(to_secs),
        ])?;
        Ok(())
    }

    async fn end_borrow(
        &mut self,
        key: &str,
        session: &str,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "UPDATE leases SET returned_at = ?3 WHERE license_key = ?1 AND session = ?2 \
             AND borrowed_until IS NOT NULL",
        )?;
        Ok(statement.execute(params![key, session, to_secs(at)])? as u64)
    }

    async fn renew_lease(
        &mut self,
        key: &str,
        session: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "UPDATE leases SET expires_at = ?3 WHERE license_key = ?1 AND session = ?2",
        )?;
        Ok(statement.execute(params![key, session, to_secs(expires_at)])? as u64)
    }

    async fn delete_lease(&mut self, key: &str, session: &str) -> Result<u64, StoreError> {
        // One lookup by primary key; the count drops only for a lease that still counted.
        let flags = self
            .conn
            .prepare_cached(
                "DELETE FROM leases WHERE license_key = ?1 AND session = ?2 RETURNING counted",
            )?
            .query_map(params![key, session], |row| row.get::<_, i64>(0))?
            .collect::<Result<Vec<i64>, _>>()?;
        let counted = flags.iter().filter(|flag| **flag == 1).count() as i64;
        if counted > 0 {
            self.conn
                .prepare_cached("UPDATE licenses SET seats_held = seats_held - ?2 WHERE key = ?1")?
                .execute(params![key, counted])?;
        }
        Ok(flags.len() as u64)
    }

    async fn sweep_leases(&mut self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        // Leases that ended long ago and still count (no request for their license since) stop
        // counting before they are deleted.
        self.conn
            .prepare_cached(
                "UPDATE licenses SET seats_held = seats_held - (SELECT COUNT(*) FROM leases s \
                 WHERE s.license_key = licenses.key AND s.counted = 1 \
                 AND COALESCE(s.borrowed_until, s.expires_at) < ?1) \
                 WHERE key IN (SELECT license_key FROM leases WHERE counted = 1 \
                 AND COALESCE(borrowed_until, expires_at) < ?1)",
            )?
            .execute([to_secs(cutoff)])?;
        let mut statement = self
            .conn
            .prepare_cached("DELETE FROM leases WHERE COALESCE(borrowed_until, expires_at) < ?1")?;
        Ok(statement.execute([to_secs(cutoff)])? as u64)
    }

    async fn transfers_since(
        &mut self,
        key: &str,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT at FROM transfers WHERE license_key = ?1 AND at > ?2 ORDER BY at DESC LIMIT ?3",
        )?;
        let rows = statement.query_map(params![key, to_secs(since), limit], |row| {
            row.get::<_, i64>(0)
        })?;
        rows.map(|row| from_secs(row?)).collect()
    }

    async fn insert_transfer(&mut self, key: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut statement = self
            .conn
            .prepare_cached("INSERT INTO transfers (license_key, at) VALUES (?1, ?2)")?;
        statement.execute(params![key, to_secs(at)])?;
        Ok(())
    }

    async fn trials(
        &mut self,
        product: &str,
        components: &BTreeMap<String, String>,
    ) -> Result<Vec<TrialRecord>, StoreError> {
        let mut ids = std::collections::BTreeSet::new();
        {
            let mut statement = self.conn.prepare_cached(
                "SELECT trial_id FROM trial_components WHERE product = ?1 AND name = ?2 AND value = ?3",
            )?;
            for (name, value) in components {
                let rows = statement
                    .query_map(params![product, name, value], |row| row.get::<_, i64>(0))?;
                for id in rows {
                    ids.insert(id?);
                }
            }
        }
        let mut statement = self.conn.prepare_cached(
            "SELECT binding, edition, started_at, ends_at FROM trials WHERE id = ?1",
        )?;
        let mut trials = Vec::with_capacity(ids.len());
        for id in ids {
            let (binding, edition, started_at, ends_at) = statement.query_row([id], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                ))
            })?;
            trials.push(TrialRecord {
                binding: from_json(&binding)?,
                edition,
                started_at: from_secs(started_at)?,
                ends_at: from_secs(ends_at)?,
            });
        }
        Ok(trials)
    }

    async fn insert_trial(&mut self, product: &str, trial: &TrialRecord) -> Result<(), StoreError> {
        let id: i64 = {
            let mut statement = self.conn.prepare_cached(
                "INSERT INTO trials (product, binding, edition, started_at, ends_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            )?;
            statement.query_row(
                params![
                    product,
                    to_json(&trial.binding)?,
                    trial.edition,
                    to_secs(trial.started_at),
                    to_secs(trial.ends_at)
                ],
                |row| row.get(0),
            )?
        };
        let mut statement = self.conn.prepare_cached(
            "INSERT INTO trial_components (trial_id, product, name, value) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (name, value) in binding_components(&trial.binding) {
            statement.execute(params![id, product, name, value])?;
        }
        Ok(())
    }

    async fn bump_update_counter(&mut self, key: &str) -> Result<i64, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "UPDATE licenses SET update_counter = update_counter + 1 WHERE key = ?1 RETURNING update_counter",
        )?;
        Ok(statement.query_row([key], |row| row.get(0))?)
    }

    async fn returned_certificate(
        &mut self,
        key: &str,
        serial: &str,
    ) -> Result<Option<ReturnedCertificate>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT kind, returned_at FROM returned_serials WHERE license_key = ?1 AND serial = ?2",
        )?;
        let row = statement
            .query_row(params![key, serial], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })
            .optional()?;
        row.map(|(kind, at)| {
            Ok(ReturnedCertificate {
                serial: serial.to_owned(),
                kind: returned_kind_from(&kind)?,
                returned_at: from_secs(at)?,
            })
        })
        .transpose()
    }

    async fn insert_returned_serial(
        &mut self,
        key: &str,
        serial: &str,
        kind: CertificateKind,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut statement = self.conn.prepare_cached(
            "INSERT INTO returned_serials (license_key, serial, returned_at, kind) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (license_key, serial) DO NOTHING",
        )?;
        statement.execute(params![key, serial, to_secs(at), returned_kind_name(kind)])?;
        Ok(())
    }

    async fn append_audit(&mut self, entry: &AuditEntry) -> Result<i64, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "INSERT INTO audit (at, actor, action, license_key, verdict, code, rule, message, detail) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
        )?;
        Ok(statement.query_row(
            params![
                to_secs(entry.at),
                entry.actor,
                entry.action,
                entry.license_key,
                entry.verdict,
                entry.code,
                entry.rule,
                entry.message,
                entry.detail
            ],
            |row| row.get(0),
        )?)
    }

    async fn audit(
        &mut self,
        license_key: Option<&str>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT id, at, actor, action, license_key, verdict, code, rule, message, detail FROM audit \
             WHERE (?1 IS NULL OR license_key = ?1) AND id > ?2 ORDER BY id LIMIT ?3",
        )?;
        let rows = statement.query_map(params![license_key, after, limit], audit_entry)?;
        rows.map(|row| {
            let (id, at, [actor, action], license_key, [verdict, code, rule, message, detail]) =
                row?;
            Ok(AuditEntry {
                id,
                at: from_secs(at)?,
                actor,
                action,
                license_key,
                verdict,
                code,
                rule,
                message,
                detail,
            })
        })
        .collect()
    }

    async fn search_audit(&mut self, search: &AuditSearch) -> Result<Vec<AuditEntry>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT id, at, actor, action, license_key, verdict, code, rule, message, detail FROM audit \
             WHERE (?1 IS NULL OR license_key = ?1) AND \
             (?2 IS NULL OR license_key IN (SELECT key FROM licenses WHERE client_id = ?2 OR \
               order_id IN (SELECT id FROM orders WHERE client_id = ?2)) OR \
               substr(actor, 1, length(?2) + 8) = 'client:' || ?2 || '@') AND \
             (?3 IS NULL OR code = ?3) AND (?4 IS NULL OR id < ?4) ORDER BY id DESC LIMIT ?5",
        )?;
        let rows = statement.query_map(
            params![
                search.license_key,
                search.client,
                search.code,
                search.before,
                search.limit
            ],
            audit_entry,
        )?;
        rows.map(|row| audit_from(row?)).collect()
    }

    async fn seat_events(
        &mut self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        license_key: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT id, at, actor, action, license_key, verdict, code, rule, message, detail FROM audit \
             WHERE at >= ?1 AND at < ?2 AND verdict = 'allow' AND \
             action IN ('checkout', 'heartbeat', 'release', 'borrow', 'return-borrowed') AND \
             (?3 IS NULL OR license_key = ?3) ORDER BY id LIMIT ?4",
        )?;
        let rows = statement.query_map(
            params![to_secs(from), to_secs(to), license_key, limit],
            audit_entry,
        )?;
        rows.map(|row| audit_from(row?)).collect()
    }

    async fn denial_counts(
        &mut self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        license_key: Option<&str>,
    ) -> Result<Vec<DenialCount>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT code, COUNT(*), MAX(at) FROM audit \
             WHERE at >= ?1 AND at < ?2 AND verdict = 'deny' AND (?3 IS NULL OR license_key = ?3) \
             GROUP BY code ORDER BY COUNT(*) DESC, code",
        )?;
        let rows =
            statement.query_map(params![to_secs(from), to_secs(to), license_key], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })?;
        rows.map(|row| {
            let (code, count, last_at) = row?;
            Ok(DenialCount {
                code,
                count,
                last_at: from_secs(last_at)?,
            })
        })
        .collect()
    }

    async fn client_password(&mut self, id: &str) -> Result<Option<Option<String>>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT password_hash FROM clients WHERE id = ?1")?;
        Ok(statement
            .query_row([id], |row| row.get::<_, Option<String>>(0))
            .optional()?)
    }

    async fn set_client_password(
        &mut self,
        id: &str,
        password_hash: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached("UPDATE clients SET password_hash = ?2 WHERE id = ?1")?;
        Ok(statement.execute(params![id, password_hash])? == 1)
    }

    async fn insert_response_file(
        &mut self,
        record: &ResponseFileRecord,
    ) -> Result<i64, StoreError> {
        let id = {
            let mut statement = self.conn.prepare_cached(
                "INSERT INTO response_files (license_key, kind, name, file, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            )?;
            statement.query_row(
                params![
                    record.license_key,
                    record.kind,
                    record.name,
                    record.file,
                    to_secs(record.created_at)
                ],
                |row| row.get::<_, i64>(0),
            )?
        };
        let mut prune = self.conn.prepare_cached(
            "DELETE FROM response_files WHERE license_key = ?1 AND id NOT IN \
             (SELECT id FROM response_files WHERE license_key = ?1 ORDER BY id DESC LIMIT ?2)",
        )?;
        prune.execute(params![record.license_key, KEPT_RESPONSE_FILES])?;
        Ok(id)
    }

    async fn response_files(
        &mut self,
        key: &str,
        limit: i64,
    ) -> Result<Vec<ResponseFileRecord>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT id, license_key, kind, name, file, created_at FROM response_files \
             WHERE license_key = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = statement.query_map(params![key, limit], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                [
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                ],
                row.get::<_, i64>(5)?,
            ))
        })?;
        rows.map(|row| {
            let (id, [license_key, kind, name, file], created_at) = row?;
            Ok(ResponseFileRecord {
                id,
                license_key,
                kind,
                name,
                file,
                created_at: from_secs(created_at)?,
            })
        })
        .collect()
    }

    async fn clients_page(
        &mut self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT id, name, token_hash IS NOT NULL, created_at FROM clients \
             WHERE (?1 IS NULL OR id > ?1) ORDER BY id LIMIT ?2",
        )?;
        let rows = statement.query_map(params![after, limit], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?;
        rows.map(|row| client_record(row?)).collect()
    }

    async fn orders_page(
        &mut self,
        client: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT id, client_id, product, features, counters, created_at FROM orders \
             WHERE (?1 IS NULL OR client_id = ?1) AND (?2 IS NULL OR id > ?2) \
             ORDER BY id LIMIT ?3",
        )?;
        let rows = statement.query_map(params![client, after, limit], order_columns)?;
        rows.map(|row| order_record(row?)).collect()
    }

    async fn activations_page(
        &mut self,
        key: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ActivationRecord>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT id, binding, activated_at, anchor, certificate_serial FROM activations \
             WHERE license_key = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        )?;
        let rows = statement.query_map(params![key, after, limit], activation_row)?;
        rows.map(|row| activation_record(row?)).collect()
    }

    async fn activation_by_id(
        &mut self,
        key: &str,
        id: i64,
    ) -> Result<Option<ActivationRecord>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT id, binding, activated_at, anchor, certificate_serial FROM activations \
             WHERE license_key = ?1 AND id = ?2",
        )?;
        statement
            .query_row(params![key, id], activation_row)
            .optional()?
            .map(activation_record)
            .transpose()
    }

    async fn leases_page(
        &mut self,
        key: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SeatLease>, StoreError> {
        let mut statement = self.conn.prepare_cached(concat!(
            "SELECT ",
            lease_columns!(),
            " FROM leases WHERE license_key = ?1 AND (?2 IS NULL OR session > ?2) \
             ORDER BY session LIMIT ?3"
        ))?;
        let rows = statement.query_map(params![key, after, limit], |row| lease_row(row, 0))?;
        rows.map(|row| row?.into_lease()).collect()
    }

    async fn held_leases_page(
        &mut self,
        product: Option<&str>,
        now: DateTime<Utc>,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<LeaseRecord>, StoreError> {
        let (after_key, after_session) = after.unzip();
        let mut statement = self.conn.prepare_cached(concat!(
            "SELECT s.license_key, ",
            lease_columns!(s),
            " FROM leases s JOIN licenses l ON l.key = s.license_key \
             WHERE (?1 IS NULL OR l.product = ?1) AND \
             ((s.borrowed_until IS NULL AND s.expires_at > ?2) OR s.borrowed_until > ?2) AND \
             (?3 IS NULL OR s.license_key > ?3 OR (s.license_key = ?3 AND s.session > ?4)) \
             ORDER BY s.license_key, s.session LIMIT ?5"
        ))?;
        let rows = statement.query_map(
            params![product, to_secs(now), after_key, after_session, limit],
            |row| Ok((row.get::<_, String>(0)?, lease_row(row, 1)?)),
        )?;
        rows.map(|row| {
            let (license_key, columns) = row?;
            Ok(LeaseRecord {
                license_key,
                lease: columns.into_lease()?,
            })
        })
        .collect()
    }

    async fn borrowed_seats(
        &mut self,
        key: &str,
        now: DateTime<Utc>,
        at_most: i64,
    ) -> Result<u64, StoreError> {
        let count: i64 = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*) FROM (SELECT 1 FROM leases WHERE license_key = ?1 \
                 AND counted = 1 AND borrowed_until > ?2 AND returned_at IS NULL LIMIT ?3)",
            )?
            .query_row(params![key, to_secs(now), at_most], |row| row.get(0))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn seat_usage(
        &mut self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<SeatUsage>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT l.key, l.seats, \
                 (SELECT COUNT(*) FROM leases s WHERE s.license_key = l.key AND \
                  ((s.borrowed_until IS NULL AND s.expires_at > ?1) OR s.borrowed_until > ?1)), \
                 (SELECT COUNT(*) FROM leases s WHERE s.license_key = l.key AND s.counted = 1 \
                  AND s.borrowed_until > ?1 AND s.returned_at IS NULL) \
                 FROM licenses l WHERE l.seats IS NOT NULL ORDER BY l.key LIMIT ?2",
        )?;
        let rows = statement.query_map(params![to_secs(now), limit], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })?;
        rows.map(|row| {
            let (license_key, seats, held, borrowed) = row?;
            Ok(SeatUsage {
                license_key,
                seats: u64::try_from(seats).unwrap_or(0),
                held: u64::try_from(held).unwrap_or(0),
                borrowed: u64::try_from(borrowed).unwrap_or(0),
            })
        })
        .collect()
    }
}

fn audit_from(
    (id, at, [actor, action], license_key, [verdict, code, rule, message, detail]): AuditRow,
) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        id,
        at: from_secs(at)?,
        actor,
        action,
        license_key,
        verdict,
        code,
        rule,
        message,
        detail,
    })
}
