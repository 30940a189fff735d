//! The migration files: databases made by the earlier bookkeeping upgrade without running old
//! migrations again, a changed applied migration stops the start, replicas migrate one at a time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use licet_engine::certificate::Binding;
use refinery::Migration;

use super::conformance::{drop_schema, fingerprint, postgres_client, postgres_schema};
use super::migrations::{self, HISTORY_TABLE};
use super::records::{activation_components, from_json};
use super::{Database, Store, StoreOptions};
use crate::error::StoreError;

/// The last version the earlier code knew.
const LEGACY_LAST: i32 = 6;

/// Activations of the earlier scheme: binding, anchor (none in rows older than anchors).
fn legacy_activations() -> Vec<(Binding, Option<Binding>)> {
    let a = fingerprint(&[("disk", "d1"), ("mac", "aa"), ("machine-id", "m1")]);
    let drifted = fingerprint(&[("disk", "d1"), ("mac", "a2"), ("machine-id", "m1")]);
    let b = fingerprint(&[("disk", "d2"), ("machine-id", "m2")]);
    vec![
        (drifted, Some(a)),
        (b, None),
        (
            Binding::Dongle("SN-1".into()),
            Some(Binding::Dongle("SN-1".into())),
        ),
    ]
}

/// The index entries the store keeps for the legacy activations, by activation id.
fn expected_index() -> BTreeSet<(i64, String, String, String)> {
    let mut entries = BTreeSet::new();
    for (id, (binding, anchor)) in (1..).zip(legacy_activations()) {
        for (name, value) in activation_components(&binding, anchor.as_ref()) {
            entries.insert((id, "K1".to_owned(), name, value));
        }
    }
    entries
}

fn json(binding: &Binding) -> String {
    serde_json::to_string(binding).unwrap()
}

fn changed(files: &[Migration], version: i32) -> Vec<Migration> {
    files
        .iter()
        .map(|m| match m.version() == version {
            true => Migration::unapplied(
                &format!("V{}__{}", m.version(), m.name()),
                &format!("{}\n-- changed after it was applied\n", m.sql().unwrap()),
            )
            .unwrap(),
            false => m.clone(),
        })
        .collect()
}

fn assert_checksum_error(result: Result<(), StoreError>, version: i64) {
    match result {
        Err(StoreError::Migration {
            version: failed,
            message,
        }) => {
            assert_eq!(failed, version, "{message}");
            assert!(message.contains("checksum"), "{message}");
        }
        other => panic!("expected a checksum mismatch of migration {version}, got {other:?}"),
    }
}

// ---- SQLite -------------------------------------------------------------------------------------

fn sqlite_legacy_database(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .unwrap();
    for file in migrations::sqlite_files()
        .iter()
        .filter(|m| m.version() <= LEGACY_LAST)
    {
        conn.execute_batch(file.sql().unwrap()).unwrap();
        conn.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 1700000000)",
            [file.version()],
        )
        .unwrap();
    }
    for key in ["K1", "K2"] {
        conn.execute(
            "INSERT INTO licenses (key, product, license_type, edition, version, features, counters, \
             status, created_at, updated_at) VALUES (?1, 'p', 'perpetual', 'pro', '1', '{}', '{}', \
             'enabled', 0, 0)",
            [key],
        )
        .unwrap();
    }
    for (binding, anchor) in legacy_activations() {
        conn.execute(
            "INSERT INTO activations (license_key, binding, activated_at, anchor) VALUES ('K1', ?1, 0, ?2)",
            rusqlite::params![json(&binding), anchor.as_ref().map(json)],
        )
        .unwrap();
    }
}

fn sqlite_schema(conn: &rusqlite::Connection) -> Vec<(String, Option<String>)> {
    let mut statement = conn
        .prepare(
            "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' \
             AND name NOT LIKE 'refinery%' ORDER BY name",
        )
        .unwrap();
    let rows = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

#[tokio::test]
async fn a_sqlite_database_of_the_earlier_bookkeeping_upgrades_without_rerunning_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("legacy.db");
    sqlite_legacy_database(&path);
    for _ in 0..2 {
        Store::open(&Database::Sqlite(path.clone()), StoreOptions::default())
            .await
            .unwrap();
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let legacy: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations')",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(!legacy, "the earlier bookkeeping table is dropped");
    let history: Vec<(i32, String)> = conn
        .prepare(&format!(
            "SELECT version, name FROM {HISTORY_TABLE} ORDER BY version"
        ))
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let files: Vec<(i32, String)> = migrations::sqlite_files()
        .iter()
        .map(|m| (m.version(), m.name().to_owned()))
        .collect();
    assert_eq!(history, files);
    let counts: Vec<(String, i64)> = conn
        .prepare("SELECT key, activation_count FROM licenses ORDER BY key")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(counts, [("K1".to_owned(), 3), ("K2".to_owned(), 0)]);
    let index: BTreeSet<(i64, String, String, String)> = conn
        .prepare("SELECT activation_id, license_key, name, value FROM activation_components")
        .unwrap()
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(index, expected_index());
    let anchors: Vec<Option<String>> = conn
        .prepare("SELECT anchor FROM activations ORDER BY id")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let decoded: Vec<Option<Binding>> = anchors
        .iter()
        .map(|anchor| anchor.as_deref().map(|a| from_json(a).unwrap()))
        .collect();
    let kept: Vec<Option<Binding>> = legacy_activations().into_iter().map(|(_, a)| a).collect();
    assert_eq!(decoded, kept, "the data survives");

    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh_path = fresh_dir.path().join("fresh.db");
    Store::open(
        &Database::Sqlite(fresh_path.clone()),
        StoreOptions::default(),
    )
    .await
    .unwrap();
    let fresh = rusqlite::Connection::open(&fresh_path).unwrap();
    assert_eq!(
        sqlite_schema(&conn),
        sqlite_schema(&fresh),
        "the same final schema"
    );
}

#[tokio::test]
async fn a_changed_applied_sqlite_migration_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("changed.db");
    Store::open(&Database::Sqlite(path.clone()), StoreOptions::default())
        .await
        .unwrap();
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    migrations::sqlite_with(&mut conn, &migrations::sqlite_files()).unwrap();
    let files = changed(&migrations::sqlite_files(), 3);
    assert_checksum_error(migrations::sqlite_with(&mut conn, &files), 3);
    conn.execute(
        &format!("UPDATE {HISTORY_TABLE} SET checksum = '1' WHERE version = 2"),
        [],
    )
    .unwrap();
    let reopened = Store::open(&Database::Sqlite(path), StoreOptions::default())
        .await
        .map(|_| ());
    assert_checksum_error(reopened, 2);
}

// ---- PostgreSQL ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_of_the_earlier_bookkeeping_upgrades_once_with_two_replicas() {
    let (schema, url) = postgres_schema().await;
    let client = postgres_client(&url).await;
    client
        .batch_execute(
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await
        .unwrap();
    for file in migrations::postgres_files()
        .iter()
        .filter(|m| m.version() <= LEGACY_LAST)
    {
        client.batch_execute(file.sql().unwrap()).await.unwrap();
        client
            .execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 1700000000)",
                &[&i64::from(file.version())],
            )
            .await
            .unwrap();
    }
    for key in ["K1", "K2"] {
        client
            .execute(
                "INSERT INTO licenses (key, product, license_type, edition, version, features, \
                 counters, status, created_at, updated_at) VALUES ($1, 'p', 'perpetual', 'pro', '1', \
                 '{}', '{}', 'enabled', 0, 0)",
                &[&key],
            )
            .await
            .unwrap();
    }
    for (binding, anchor) in legacy_activations() {
        client
            .execute(
                "INSERT INTO activations (license_key, binding, activated_at, anchor) VALUES ('K1', $1, 0, $2)",
                &[&json(&binding), &anchor.as_ref().map(json)],
            )
            .await
            .unwrap();
    }
    // Two replicas start at once: one migrates, the other waits and finds nothing to do.
    let database = Database::Postgres(url.clone());
    let (first, second) = tokio::join!(
        Store::open(&database, StoreOptions::default()),
        Store::open(&database, StoreOptions::default()),
    );
    first.unwrap();
    second.unwrap();
    let legacy: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!legacy, "the earlier bookkeeping table is dropped");
    let history: Vec<(i32, String)> = client
        .query(
            &format!("SELECT version, name FROM {HISTORY_TABLE} ORDER BY version"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let files: Vec<(i32, String)> = migrations::postgres_files()
        .iter()
        .map(|m| (m.version(), m.name().to_owned()))
        .collect();
    assert_eq!(history, files);
    let counts: Vec<(String, i64)> = client
        .query(
            "SELECT key, activation_count FROM licenses ORDER BY key",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(counts, [("K1".to_owned(), 3), ("K2".to_owned(), 0)]);
    let index: BTreeSet<(i64, String, String, String)> = client
        .query(
            "SELECT activation_id, license_key, name, value FROM activation_components",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect();
    assert_eq!(index, expected_index());

    let mut direct = postgres_client(&url).await;
    assert_checksum_error(
        migrations::postgres_with(&mut direct, &changed(&migrations::postgres_files(), 7)).await,
        7,
    );
    // The lock was released: a normal start still works.
    Store::open(&database, StoreOptions::default())
        .await
        .unwrap();
    drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_postgres_replicas_starting_together_migrate_once() {
    let (schema, url) = postgres_schema().await;
    let database = Database::Postgres(url.clone());
    let (first, second, third) = tokio::join!(
        Store::open(&database, StoreOptions::default()),
        Store::open(&database, StoreOptions::default()),
        Store::open(&database, StoreOptions::default()),
    );
    first.unwrap();
    second.unwrap();
    third.unwrap();
    let applied: i64 = postgres_client(&url)
        .await
        .query_one(&format!("SELECT COUNT(*) FROM {HISTORY_TABLE}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(applied, migrations::postgres_files().len() as i64);
    drop_schema(&schema).await;
}
