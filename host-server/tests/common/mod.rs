//! Shared test setup: a server on SQLite or on its own PostgreSQL schema, driven without sockets.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request};
use axum::{Extension, Router};
use ed25519_dalek::VerifyingKey;
use licet_client::client::load_text_transport;
use licet_plugin_host::test_support::install_plugin;
use licet_plugin_host::{read_signing_key, Allow, World};
use licet_server::api::transport::{Accepting, Transports};
use licet_server::api::{router, AppState};
use licet_server::dongle::SwitchableDongle;
use licet_server::keys::{generate_key_files, hex, random_bytes, token_hash};
use licet_server::ratelimit::{Rate, RateLimiter, RateLimits};
use licet_server::server::load_policies;
use licet_server::service::{Licensing, OffsetClock};
use licet_server::store::{Database, Store, StoreOptions, Synchronous};
use serde_json::{json, Value};
use tempfile::TempDir;
use tower::ServiceExt;

pub const ADMIN_TOKEN: &str = "lct_admin_test-token-for-the-test-suite";
pub const NETWORK_DONGLE: &str = "ND-0001";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn postgres_url() -> String {
    std::env::var("LICET_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn policy_paths() -> Vec<PathBuf> {
    ["gstarcad", "acen-standard", "acen-web", "acen-limited"]
        .iter()
        .map(|name| repo_root().join("policies").join(format!("{name}.yaml")))
        .collect()
}

/// A fresh PostgreSQL schema; the returned URL selects it.
pub async fn postgres_schema() -> (String, String) {
    let base = postgres_url();
    let schema = format!("licet_t_{}", hex(&random_bytes::<8>().unwrap()));
    let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL must run for the tests (./scripts/postgres starts it)");
    let task = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    drop(client);
    let _ = task.await;
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options=-csearch_path%3D{schema}");
    (url, schema)
}

pub fn drop_schema(schema: &str) {
    let schema = schema.to_owned();
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            if let Ok((client, connection)) =
                tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await
            {
                let task = tokio::spawn(connection);
                let _ = client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await;
                drop(client);
                let _ = task.await;
            }
        });
    })
    .join();
}

pub fn generous_limits() -> RateLimits {
    RateLimits {
        per_key: Rate {
            burst: 100_000,
            per_minute: 100_000,
        },
        per_address: Rate {
            burst: 1_000_000,
            per_minute: 1_000_000,
        },
        max_tracked: 10_000,
    }
}

pub struct TestServer {
    pub backend: Backend,
    pub router: Router,
    pub state: AppState,
    pub clock: Arc<OffsetClock>,
    pub dongle: Arc<SwitchableDongle>,
    pub database: Database,
    pub dir: TempDir,
    schema: Option<String>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(schema) = &self.schema {
            drop_schema(schema);
        }
    }
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        TestServer::start_with(backend, generous_limits()).await
    }

    pub async fn start_with(backend: Backend, limits: RateLimits) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        generate_key_files(dir.path()).unwrap();
        let (database, schema) = match backend {
            Backend::Sqlite => (Database::Sqlite(dir.path().join("licet.db")), None),
            Backend::Postgres => {
                let (url, schema) = postgres_schema().await;
                (Database::Postgres(url), Some(schema))
            }
        };
        let clock = Arc::new(OffsetClock::default());
        let dongle = Arc::new(SwitchableDongle::plugged(NETWORK_DONGLE));
        let state = build(&dir, &database, limits, clock.clone(), dongle.clone()).await;
        TestServer {
            backend,
            router: router(state.clone()),
            state,
            clock,
            dongle,
            database,
            dir,
            schema,
        }
    }

    /// Another server on the same database with its own store and connections.
    pub async fn replica(&self) -> (Router, AppState) {
        let state = build(
            &self.dir,
            &self.database,
            generous_limits(),
            self.clock.clone(),
            self.dongle.clone(),
        )
        .await;
        (router(state.clone()), state)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        call(&self.router, method, path, token, body).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, None, Some(body)).await
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, Some(ADMIN_TOKEN), body).await
    }

    /// Issues one license and returns its key.
    pub async fn issue(&self, body: Value) -> String {
        let (status, answer) = self
            .admin(Method::POST, "/v1/admin/licenses", Some(body))
            .await;
        assert_eq!(status, 201, "{answer}");
        answer["licenses"][0]["key"].as_str().unwrap().to_owned()
    }

    pub async fn network_key(&self, seats: u32) -> String {
        self.issue(json!({
            "product": "gstarcad", "license_type": "network-key", "edition": "professional", "seats": seats
        }))
        .await
    }

    pub async fn standalone_key(&self) -> String {
        self.issue(json!({
            "product": "gstarcad", "license_type": "standalone-key", "edition": "professional"
        }))
        .await
    }
}

async fn build(
    dir: &TempDir,
    database: &Database,
    limits: RateLimits,
    clock: Arc<OffsetClock>,
    dongle: Arc<SwitchableDongle>,
) -> AppState {
    let policies = load_policies(&policy_paths()).unwrap();
    let key = licet_server::keys::read_signing_key(&dir.path().join("vendor.secret")).unwrap();
    let store = Store::open(
        database,
        StoreOptions {
            synchronous: Synchronous::Normal,
            max_connections: 8,
        },
    )
    .await
    .unwrap();
    let licensing = Licensing::new(store, policies, key, dongle)
        .await
        .unwrap()
        .with_clock(clock);
    let mut admin_tokens = BTreeMap::new();
    admin_tokens.insert(token_hash(ADMIN_TOKEN), "tests".to_owned());
    AppState {
        metrics: Arc::new(licet_server::metrics::Metrics::new(
            licensing.store().transaction_seconds(),
        )),
        web: Arc::new(licet_server::web::WebSecret::from_bytes([7; 32])),
        licensing,
        limiter: Arc::new(RateLimiter::new(limits)),
        admin_tokens: Arc::new(admin_tokens),
    }
}

pub async fn call(
    router: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = match body {
        Some(body) => request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap(),
        None => request.body(Body::empty()).unwrap(),
    };
    raw(router, request).await
}

pub async fn raw(router: &Router, request: Request<Body>) -> (u16, Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
        .await
        .unwrap();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, value)
}

/// A machine fingerprint; `n` names the machine.
pub fn machine(n: usize) -> Value {
    json!({ "machine-id": format!("id-{n}"), "mac": format!("mac-{n}"), "cpu": format!("cpu-{n}"), "disk": format!("disk-{n}") })
}

pub fn gstarcad(edition: &str) -> Value {
    json!({ "product": "gstarcad", "edition": edition, "version": "2027" })
}

/// Runs the test body once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($server:ident) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $server = common::TestServer::start(common::Backend::Sqlite).await;
                    $body
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $server = common::TestServer::start(common::Backend::Postgres).await;
                    $body
                }
            )*
        }
    };
}

/// The vendor-signed `transport-text` plugin installed in `server`'s directory, the vendor's
/// public key, and `server`'s router accepting requests through that plugin (as `licet-server`
/// does with `transports` in its configuration).
pub fn with_text_transport(server: &TestServer) -> (PathBuf, VerifyingKey, Router) {
    let vendor_secret = read_signing_key(&server.dir.path().join("vendor.secret")).unwrap();
    let plugin_dir = install_plugin(
        &server.dir.path().join("plugins"),
        "transport-text",
        World::Transport,
        &[],
        Allow::default(),
        &vendor_secret,
    )
    .unwrap();
    let vendor = vendor_secret.verifying_key();
    let plugin = load_text_transport(&plugin_dir, vendor).unwrap();
    let accepting = Accepting::new(
        Transports::from_plugins([plugin]),
        router(server.state.clone()),
    );
    let app = router(server.state.clone()).layer(Extension(Arc::new(accepting)));
    (plugin_dir, vendor, app)
}

/// How many transport plugin calls `server` has counted (`licet_plugin_calls_total`, all labels).
pub fn plugin_calls(server: &TestServer) -> u64 {
    let metrics = server.state.metrics.encode().unwrap();
    metrics
        .lines()
        .filter(|line| line.starts_with("licet_plugin_calls_total{"))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// A text block pasted to `app`'s transport route `POST /v1/transport/transport-text`, from
/// `address` (the router's own `local` peer when `None`).
pub async fn paste_text(app: &Router, address: Option<&str>, block: &str) -> (u16, Value) {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/v1/transport/transport-text")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(block.to_owned()))
        .unwrap();
    if let Some(address) = address {
        let peer: std::net::SocketAddr = format!("{address}:40000").parse().unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
    }
    raw(app, request).await
}
