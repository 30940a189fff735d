//! The servers a run measures: the real API on SQLite (a temporary file) or PostgreSQL (a fresh
//! schema, dropped at the end), as two replicas on the same database, and a no-op baseline.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use axum::{Json, Router};
use licet_server::config::Config;
use licet_server::dongle::NoDongle;
use licet_server::keys::{generate_key_files, hex, random_bytes, token_hash};
use licet_server::listener::{serve_http, HttpSettings};
use licet_server::ratelimit::{Rate, RateLimits};
use licet_server::server::{build_state, serve_with};
use licet_server::store::Synchronous;
use serde_json::{json, Value};
use tokio_rustls::TlsAcceptor;

use crate::Failure;

pub const ADMIN_TOKEN: &str = "lct_admin_loadgen";

/// The product of the volume-serial policy the history rows use.
pub const VOLUME_PRODUCT: &str = "acme-viewer";

/// Where the servers keep their records.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A SQLite file in the run's temporary directory.
    Sqlite(PathBuf),
    /// A schema of its own on a PostgreSQL server.
    Postgres {
        /// The connection string given, without the schema option.
        base: String,
        /// The schema made for the run.
        schema: String,
    },
}

impl Backend {
    /// A SQLite file in `dir`, or a fresh schema on the PostgreSQL server at `url`.
    pub async fn create(dir: &Path, url: Option<&str>) -> Result<Backend, Failure> {
        let Some(base) = url else {
            return Ok(Backend::Sqlite(dir.join("licet.db")));
        };
        let bytes =
            random_bytes::<6>().map_err(|error| format!("the random source failed: {error}"))?;
        let schema = format!("licet_loadgen_{}", hex(&bytes));
        let client = connect(base).await?;
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await?;
        Ok(Backend::Postgres {
            base: base.to_owned(),
            schema,
        })
    }

    /// The `database:` setting of the servers.
    pub fn setting(&self) -> String {
        match self {
            Backend::Sqlite(path) => format!("sqlite://{}", path.display()),
            Backend::Postgres { base, schema } => {
                let separator = if base.contains('?') { '&' } else { '?' };
                format!("{base}{separator}options=-csearch_path%3D{schema}")
            }
        }
    }

    /// A name for the tables.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "SQLite",
            Backend::Postgres { .. } => "PostgreSQL",
        }
    }

    /// Drops the run's PostgreSQL schema.
    pub async fn drop_schema(&self) -> Result<(), Failure> {
        if let Backend::Postgres { base, schema } = self {
            connect(base)
                .await?
                .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .await?;
        }
        Ok(())
    }

    /// Puts `returned` returned certificate serials and as many removals (spread over the last
    /// three years) on the license `key` directly in the database, as years of use would have
    /// left them.
    pub async fn seed_history(&self, key: &str, returned: usize) -> Result<(), Failure> {
        let count = i64::try_from(returned)?;
        let now = chrono::Utc::now().timestamp();
        let spread: i64 = 3 * 365 * 86_400;
        match self {
            Backend::Sqlite(path) => {
                let connection = rusqlite::Connection::open(path)?;
                connection.busy_timeout(Duration::from_secs(30))?;
                connection.execute(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2) \
                     INSERT INTO returned_serials (license_key, serial, returned_at, kind) \
                     SELECT ?1, 'history-' || i, ?3 - (i * ?4 / ?2), 'activation' FROM n",
                    rusqlite::params![key, count, now, spread],
                )?;
                connection.execute(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2) \
                     INSERT INTO transfers (license_key, at) SELECT ?1, ?3 - (i * ?4 / ?2) FROM n",
                    rusqlite::params![key, count, now, spread],
                )?;
            }
            Backend::Postgres { base, schema } => {
                let client = connect(base).await?;
                client
                    .batch_execute(&format!("SET search_path TO {schema}"))
                    .await?;
                client
                    .execute(
                        "INSERT INTO returned_serials (license_key, serial, returned_at, kind) \
                         SELECT $1, 'history-' || i, $3 - (i * $4 / $2), 'activation' \
                         FROM generate_series(1::bigint, $2) AS i",
                        &[&key, &count, &now, &spread],
                    )
                    .await?;
                client
                    .execute(
                        "INSERT INTO transfers (license_key, at) \
                         SELECT $1, $3 - (i * $4 / $2) FROM generate_series(1::bigint, $2) AS i",
                        &[&key, &count, &now, &spread],
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, Failure> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The volume-serial policy of the history rows: the web model's serial with up to 100,000
/// activations, end-user returns, and a transfer limit (so removals are counted per period).
fn write_volume_policy(dir: &Path) -> Result<PathBuf, Failure> {
    let source = std::fs::read_to_string(repo_policy("acen-web.yaml"))?
        .replace(
            "activations_per_serial: 3",
            "activations_per_serial: 100000",
        )
        .replace(
            "removal:\n  by_end_user: false",
            "removal:\n  by_end_user: true\ntransfer:\n  max: 3\n  period_days: 365",
        );
    let path = dir.join("volume.yaml");
    std::fs::write(&path, source)?;
    Ok(path)
}

/// The network policy of the held rows: the GstarCAD policy with leases that outlast the longest
/// fill, so every seat filled is still held when the pairs and the race run.
fn write_pool_policy(dir: &Path) -> Result<PathBuf, Failure> {
    let lease = format!("lease_seconds: {}", 4 * crate::FILL_SECONDS);
    let source = std::fs::read_to_string(repo_policy("gstarcad.yaml"))?;
    if !source.contains("lease_seconds: 300") {
        return Err("the GstarCAD policy no longer has `lease_seconds: 300`".into());
    }
    let path = dir.join("pool.yaml");
    std::fs::write(&path, source.replace("lease_seconds: 300", &lease))?;
    Ok(path)
}

fn repo_policy(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../policies")
        .join(name)
}

/// Starts `replicas` servers on `backend` (keys in `dir`), each on its own loopback port with its
/// own store and connections, over TLS with `tls`.
pub async fn start_licet(
    dir: &Path,
    backend: &Backend,
    synchronous: Synchronous,
    replicas: usize,
    tls: Option<TlsAcceptor>,
) -> Result<Vec<SocketAddr>, Failure> {
    generate_key_files(dir)?;
    let generous = Rate {
        burst: 10_000_000,
        per_minute: 10_000_000,
    };
    let config = Config {
        listen: "127.0.0.1:0".into(),
        database: backend.setting(),
        policies: vec![write_pool_policy(dir)?, write_volume_policy(dir)?],
        vendor_key: Some(dir.join("vendor.secret")),
        admin_tokens: vec![licet_server::config::AdminTokenConfig {
            name: "loadgen".into(),
            sha256: token_hash(ADMIN_TOKEN),
        }],
        sqlite_synchronous: synchronous,
        postgres_max_connections: 16,
        rate_limits: RateLimits {
            per_key: generous,
            per_address: generous,
            max_tracked: 1000,
        },
        dongle: None,
        sweep_seconds: 60,
        ..Config::default()
    };
    let mut addresses = Vec::new();
    for _ in 0..replicas {
        let state = build_state(&config, Arc::new(NoDongle)).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        addresses.push(listener.local_addr()?);
        tokio::spawn(serve_with(
            listener,
            state,
            Duration::from_secs(60),
            HttpSettings::default(),
            tls.clone(),
            std::future::pending(),
        ));
    }
    Ok(addresses)
}

/// A server answering one no-op JSON route, the baseline of HTTP and JSON alone; with `tls`,
/// of HTTPS and JSON, on the server's own listener.
pub async fn start_noop(tls: Option<TlsAcceptor>) -> Result<SocketAddr, Failure> {
    async fn noop(Json(body): Json<Value>) -> Json<Value> {
        Json(json!({ "verdict": "allow", "code": "NOOP", "echo": body["session"] }))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = Router::new().route("/noop", post(noop));
    tokio::spawn(async move {
        match tls {
            None => axum::serve(listener, app).await,
            Some(tls) => {
                let settings = HttpSettings::default();
                serve_http(listener, app, settings, Some(tls), std::future::pending()).await
            }
        }
    });
    Ok(address)
}

/// An administrator's POST that must answer 201 Created.
pub async fn admin(address: SocketAddr, path: &str, body: Value) -> Result<Value, Failure> {
    let mut client = crate::tls::connect(address).await?;
    let response = client
        .request("POST", path, Some(ADMIN_TOKEN), Some(&body))
        .await?;
    if response.status != 201 {
        return Err(format!(
            "{path}: {} {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        )
        .into());
    }
    Ok(response.json()?)
}

/// Issues one license and answers its key.
pub async fn issue(address: SocketAddr, body: Value) -> Result<String, Failure> {
    let issued = admin(address, "/v1/admin/licenses", body).await?;
    issued["licenses"][0]["key"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "the issued license has no key".into())
}

/// A machine's fingerprint, distinct for every `n`.
pub fn machine(n: usize) -> Value {
    json!({ "machine-id": format!("id-{n}"), "mac": format!("mac-{n}"), "cpu": format!("cpu-{n}"), "disk": format!("disk-{n}") })
}

/// What the gstarcad requests target.
pub fn target() -> Value {
    json!({ "product": "gstarcad", "edition": "professional", "version": "2027" })
}
