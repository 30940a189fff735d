//! Starting the server: loading policies and the keys, opening the store, serving HTTP or HTTPS until
//! Ctrl-C or SIGTERM, and creating a new server directory (`licet-server init`), for an
//! activation center or a license server.

use licet_engine::report::Report as _;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::MatchedPath;
use licet_engine::Policy;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower_http::trace::TraceLayer;

use crate::admin::NewLicenses;
use crate::api::transport::{Accepting, Transports};
use crate::api::{self, AppState};
use crate::config::{Config, ServerRole};
use crate::dongle::{DongleCheck, NoDongle, PolledDongle};
use crate::error::StartError;
use crate::keys::{
    generate_key_files, generate_key_pair, public_key_line, read_signing_key, read_verifying_key,
};
use crate::license_server::{
    LicenseServer, LicenseServerSettings, NativeIdentity, PolicySource, ServerIdentity,
};
use crate::listener::{serve_http, HttpSettings};
use crate::ratelimit::RateLimiter;
use crate::service::{Clock, Licensing, Policies};
use crate::store::{Database, Store, StoreOptions};
use crate::tls::TlsConfig;

/// Loads policy files; each licenses one product.
pub fn load_policies(paths: &[PathBuf]) -> Result<Policies, StartError> {
    Ok(load_policy_sources(paths)?
        .into_iter()
        .map(|(product, (policy, _))| (product, policy))
        .collect())
}

/// Loads policy files with their sources, by product.
pub fn load_policy_sources(
    paths: &[PathBuf],
) -> Result<BTreeMap<String, (Arc<Policy>, PolicySource)>, StartError> {
    let mut policies = BTreeMap::new();
    for path in paths {
        let source = std::fs::read_to_string(path).map_err(|source| StartError::Io {
            path: path.clone(),
            source,
        })?;
        let name = path.display().to_string();
        let policy = Policy::from_yaml(&name, &source)
            .map_err(|error| StartError::Policy(error.report()))?;
        let product = policy.product.id.clone();
        let source = PolicySource { name, text: source };
        if policies
            .insert(product.clone(), (Arc::new(policy), source))
            .is_some()
        {
            return Err(StartError::Policy(format!(
                "two policies license product `{product}`"
            )));
        }
    }
    if policies.is_empty() {
        return Err(StartError::Policy(
            "the configuration names no policy".into(),
        ));
    }
    Ok(policies)
}

fn required<'a>(path: &'a Option<PathBuf>, name: &str) -> Result<&'a Path, StartError> {
    path.as_deref()
        .ok_or_else(|| StartError::Role(format!("the configuration names no `{name}`")))
}

/// The vendor's public key: from `vendor_key` on an activation center, `vendor_public_key` on a
/// license server (which never reads a vendor secret).
pub fn vendor_verifying_key(config: &Config) -> Result<ed25519_dalek::VerifyingKey, StartError> {
    match config.role {
        ServerRole::ActivationCenter => {
            Ok(read_signing_key(required(&config.vendor_key, "vendor_key")?)?.verifying_key())
        }
        ServerRole::LicenseServer => {
            read_verifying_key(required(&config.vendor_public_key, "vendor_public_key")?)
        }
    }
}

/// The dongle check the configuration describes: the dongle plugin, polled, or no dongle.
pub fn configured_dongle(config: &Config) -> Result<Arc<dyn DongleCheck>, StartError> {
    let Some(dongle) = &config.dongle else {
        return Ok(Arc::new(NoDongle));
    };
    let failed = |message: String| StartError::Dongle {
        path: dongle.plugin.clone(),
        message,
    };
    config.check_role().map_err(StartError::Role)?;
    let vendor_key = vendor_verifying_key(config)?;
    let hid = licet_plugin_host::hid_backend(dongle.software.as_deref())
        .map_err(|error| failed(error.report()))?;
    let reader = licet_plugin_host::DongleReader::load(
        &dongle.plugin,
        licet_plugin_host::DONGLE_PLUGIN,
        vendor_key,
        hid,
    )
    .map_err(|error| failed(error.report()))?;
    let polled = PolledDongle::start(reader, std::time::Duration::from_secs(dongle.poll_seconds))
        .map_err(|error| failed(error.report()))?;
    Ok(polled)
}

/// What [`build_state_with`] may be given besides the configuration.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// How a license server identifies its machine ([`NativeIdentity`] by default).
    pub identity: Option<Arc<dyn ServerIdentity>>,
    /// The service's clock (the system clock by default).
    pub clock: Option<Arc<dyn Clock>>,
}

/// Builds the shared state from a configuration.
pub async fn build_state(
    config: &Config,
    dongle: Arc<dyn DongleCheck>,
) -> Result<AppState, StartError> {
    build_state_with(config, dongle, BuildOptions::default()).await
}

/// Builds the shared state from a configuration, with a machine identity and a clock of the
/// caller's choice. An activation center signs with the vendor key; a license server (which
/// refuses a configured `vendor_key`) signs with its own `server_key` and reads and verifies its
/// stored server licenses before it serves.
pub async fn build_state_with(
    config: &Config,
    dongle: Arc<dyn DongleCheck>,
    options: BuildOptions,
) -> Result<AppState, StartError> {
    config.check_role().map_err(StartError::Role)?;
    let policies = load_policies(&config.policies)?;
    let signing_key = match config.role {
        ServerRole::ActivationCenter => {
            read_signing_key(required(&config.vendor_key, "vendor_key")?)?
        }
        ServerRole::LicenseServer => license_server_key(config)?.0,
    };
    let database = Database::parse(&config.database)?;
    create_private_sqlite_file(&database)?;
    let store = Store::open(
        &database,
        StoreOptions {
            synchronous: config.sqlite_synchronous,
            max_connections: config.postgres_max_connections,
        },
    )
    .await?;
    let mut licensing =
        Licensing::new(store.clone(), policies, signing_key, dongle.clone()).await?;
    if let Some(clock) = options.clock {
        licensing = licensing.with_clock(clock);
    }
    if config.role == ServerRole::LicenseServer {
        let identity = options.identity.unwrap_or_else(|| Arc::new(NativeIdentity));
        let server = open_license_server(config, dongle, identity, Some(store)).await?;
        licensing = licensing.with_license_server(Arc::new(server));
    }
    Ok(AppState {
        metrics: Arc::new(crate::metrics::Metrics::new(
            licensing.store().transaction_seconds(),
        )),
        web: Arc::new(crate::web::WebSecret::for_config(config)?),
        licensing,
        limiter: Arc::new(RateLimiter::new(config.rate_limits)),
        admin_tokens: Arc::new(
            config
                .admin_tokens
                .iter()
                .map(|token| (token.sha256.clone(), token.name.clone()))
                .collect(),
        ),
    })
}

/// A license server's own key and the vendor's public key; refuses a server key that is the
/// vendor's.
fn license_server_key(
    config: &Config,
) -> Result<(ed25519_dalek::SigningKey, ed25519_dalek::VerifyingKey), StartError> {
    let own = read_signing_key(required(&config.server_key, "server_key")?)?;
    let vendor = vendor_verifying_key(config)?;
    if own.verifying_key() == vendor {
        return Err(StartError::Role(
            "`server_key` is the vendor's secret key; a license server never holds it (create its own with `licet-server init --role license-server`)".to_owned(),
        ));
    }
    Ok((own, vendor))
}

/// The certificate `center_certificate` pins for the activation center's TLS, when set.
fn center_certificate(
    config: &Config,
) -> Result<Option<licet_client::http::PinnedCertificate>, StartError> {
    let Some(path) = &config.center_certificate else {
        return Ok(None);
    };
    let bytes = std::fs::read(path).map_err(|source| StartError::Io {
        path: path.clone(),
        source,
    })?;
    licet_client::http::PinnedCertificate::from_bytes(&bytes)
        .map(Some)
        .map_err(|error| StartError::Config {
            path: path.clone(),
            message: format!("center_certificate: {}", error.report()),
        })
}

/// The license server a `role: license-server` configuration describes, with its stored server
/// licenses read and verified. `store` keeps a license row per served key; the command-line tools
/// that only exchange files with the activation center open it without one.
pub async fn open_license_server(
    config: &Config,
    dongle: Arc<dyn DongleCheck>,
    identity: Arc<dyn ServerIdentity>,
    store: Option<Store>,
) -> Result<LicenseServer, StartError> {
    config.check_role().map_err(StartError::Role)?;
    if config.role != ServerRole::LicenseServer {
        return Err(StartError::Role(
            "this configuration is an activation center's; only a `role: license-server` is activated, renewed and returned".to_owned(),
        ));
    }
    let (signing_key, vendor) = license_server_key(config)?;
    let sources = load_policy_sources(&config.policies)?;
    let dir = config
        .license_server_dir()
        .ok_or_else(|| StartError::Role("the license server has no state directory".to_owned()))?;
    let server = LicenseServer::new(LicenseServerSettings {
        signing_key,
        vendor,
        dir,
        center: config.center.clone(),
        center_certificate: center_certificate(config)?,
        revalidate_every: config.revalidate_interval(),
        identity,
        dongle,
        policies: sources
            .iter()
            .map(|(product, (policy, _))| (product.clone(), policy.clone()))
            .collect(),
        sources: sources
            .into_iter()
            .map(|(product, (_, source))| (product, source))
            .collect(),
        store,
    });
    server
        .reload()
        .await
        .map_err(|error| StartError::Role(format!("server licenses: {}", error.report())))?;
    Ok(server)
}

/// Serves the API on `listener` until `shutdown` completes, with the default
/// [`HttpSettings`]; see [`serve_with`].
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    sweep: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(
        listener,
        state,
        sweep,
        HttpSettings::default(),
        None,
        shutdown,
    )
    .await
}

/// Serves the API on `listener` with the listener's `http` timeouts and limits, over TLS with
/// `tls` (plain HTTP without), until `shutdown` completes, sweeping ended leases every `sweep` in the background; a license
/// server also rereads its server licenses and revalidates them with the activation center in
/// the background. Every request is traced (method, route, status and latency; never the
/// path, which may hold a license key).
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    sweep: Duration,
    http: HttpSettings,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_transports(
        listener,
        state,
        Transports::none(),
        sweep,
        http,
        tls,
        shutdown,
    )
    .await
}

/// [`serve_with`], accepting requests through `transports` at `POST /v1/transport/{name}`
/// ([`crate::api::transport`]; load them with [`crate::api::transport::load_transports`]).
pub async fn serve_with_transports(
    listener: TcpListener,
    state: AppState,
    transports: Transports,
    sweep: Duration,
    http: HttpSettings,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let lifecycle = tokio::spawn(crate::license_server::activation::run_lifecycle(
        state.licensing.clone(),
    ));
    let licensing = state.licensing.clone();
    let sweeper = tokio::spawn(async move {
        let mut interval = tokio::time::interval(sweep.max(Duration::from_secs(1)));
        loop {
            interval.tick().await;
            if let Err(error) = licensing.sweep_leases(licensing.now()).await {
                tracing::warn!("sweeping ended leases failed: {}", error.report());
            }
        }
    });
    // The requests a transport carries go through the same routes, from inside.
    let accepting = Arc::new(Accepting::new(transports, api::router(state.clone())));
    let app = api::router(state).layer(axum::Extension(accepting)).layer(
        TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let route = request
                .extensions()
                .get::<MatchedPath>()
                .map_or("-", MatchedPath::as_str);
            tracing::info_span!("request", method = %request.method(), route)
        }),
    );
    let result = serve_http(listener, app, http, tls, shutdown).await;
    sweeper.abort();
    lifecycle.abort();
    result
}

/// Serves the open metrics address (`metrics.listen`): `GET /metrics` without a token, plain
/// HTTP with the default listener settings, until `shutdown` completes.
pub async fn serve_metrics(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_http(
        listener,
        crate::metrics::open_router(state),
        HttpSettings::default(),
        None,
        shutdown,
    )
    .await
}

/// Creates the SQLite file of `database` readable and writable by its owner only (mode 0600)
/// when it does not exist yet; SQLite gives its journal files the same mode.
fn create_private_sqlite_file(database: &Database) -> Result<(), StartError> {
    let Database::Sqlite(path) = database else {
        return Ok(());
    };
    if path.exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        // Another process created it in between.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StartError::Io {
            path: path.clone(),
            source,
        }),
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// What `init` created.
#[derive(Debug, Clone)]
pub struct Initialized {
    /// The configuration file.
    pub config_path: PathBuf,
    /// The administrator token (shown once; only its hash is stored).
    pub admin_token: String,
    /// Example licenses issued for trying the server: `(license type, key)`.
    pub example_keys: Vec<(String, String)>,
}

/// Where and how the server of a new directory listens.
#[derive(Debug, Clone, Default)]
pub struct ListenSettings {
    /// The address (`listen`).
    pub address: String,
    /// The certificate and key of HTTPS (`tls`), made absolute.
    pub tls: Option<TlsConfig>,
    /// Plain HTTP on an address other than loopback (`http.allow_plain`).
    pub allow_plain: bool,
}

impl ListenSettings {
    /// Plain HTTP on `address` (a loopback address, or refused by [`init`]).
    pub fn plain(address: &str) -> Self {
        ListenSettings {
            address: address.to_owned(),
            ..ListenSettings::default()
        }
    }

    /// Puts these settings in `config` and checks them, before anything is created: the
    /// plain-HTTP rule, and that the certificate and key can be served.
    fn apply(&self, config: &mut Config, config_path: &Path) -> Result<(), StartError> {
        config.listen = self.address.clone();
        config.http.allow_plain = self.allow_plain;
        config.tls = match &self.tls {
            Some(tls) => {
                let absolute = |path: &Path| {
                    std::path::absolute(path).map_err(|source| StartError::Io {
                        path: path.to_owned(),
                        source,
                    })
                };
                let tls = TlsConfig {
                    certificate: absolute(&tls.certificate)?,
                    key: absolute(&tls.key)?,
                };
                tls.server_config()?;
                Some(tls)
            }
            None => None,
        };
        config
            .check_listen_security()
            .map_err(|message| StartError::Config {
                path: config_path.to_owned(),
                message,
            })
    }
}

/// Creates a server directory: a vendor key pair, a SQLite database with an administrator token,
/// and `licet-server.yaml` naming `policies`, listening as `listen` says. With `examples`, issues one license of each
/// non-dongle type of each product.
pub async fn init(
    dir: &Path,
    policies: &[PathBuf],
    listen: &ListenSettings,
    examples: bool,
) -> Result<Initialized, StartError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| StartError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let dir = dir.canonicalize().map_err(io(dir))?;
    let config_path = dir.join("licet-server.yaml");
    if config_path.exists() {
        return Err(StartError::Config {
            path: config_path,
            message: "exists already; start the server with --config".into(),
        });
    }
    let policies: Vec<PathBuf> = policies
        .iter()
        .map(|path| path.canonicalize().map_err(io(path)))
        .collect::<Result<_, _>>()?;
    let loaded = load_policies(&policies)?;
    let mut config = Config {
        database: format!("sqlite://{}", dir.join("licet.db").display()),
        policies,
        vendor_key: Some(dir.join("vendor.secret")),
        ..Config::default()
    };
    listen.apply(&mut config, &config_path)?;
    generate_key_files(&dir)?;
    let state = build_state(&config, Arc::new(NoDongle)).await?;
    let admin_token = state
        .licensing
        .create_admin_token("licet-server init", "initial")
        .await
        .map_err(|error| StartError::Policy(error.report()))?;
    let mut example_keys = Vec::new();
    if examples {
        for policy in loaded.values() {
            let Some(edition) = policy.product.editions.first() else {
                continue;
            };
            for (name, license_type) in &policy.license_types {
                if license_type.kind.is_dongle() || !license_type.perpetual {
                    continue;
                }
                let issued = state
                    .licensing
                    .issue_licenses(
                        "licet-server init",
                        NewLicenses {
                            product: policy.product.id.clone(),
                            license_type: name.clone(),
                            edition: edition.clone(),
                            version: None,
                            order: None,
                            client: None,
                            term: Default::default(),
                            seats: None,
                            features: Default::default(),
                            counters: Default::default(),
                            dongle: None,
                            key: None,
                            count: 1,
                        },
                    )
                    .await
                    .map_err(|error| StartError::Policy(error.report()))?;
                for record in issued {
                    example_keys.push((name.clone(), record.license.key));
                }
            }
        }
    }
    let yaml = serde_yaml::to_string(&config).map_err(|error| StartError::Config {
        path: config_path.clone(),
        message: error.report(),
    })?;
    std::fs::write(&config_path, yaml).map_err(io(&config_path))?;
    Ok(Initialized {
        config_path,
        admin_token,
        example_keys,
    })
}

/// Creates a license server directory: the server's own key pair (`server.secret`, `server.pub`),
/// a copy of the vendor's public key (`vendor.pub`), a SQLite database with an administrator
/// token, and `licet-server.yaml` with `role: license-server`. No vendor secret is created or
/// read. Activate it with `licet-server activate` before it serves seats.
pub async fn init_license_server(
    dir: &Path,
    policies: &[PathBuf],
    listen: &ListenSettings,
    vendor_public_key: &Path,
    center: Option<&str>,
) -> Result<Initialized, StartError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| StartError::Io { path, source }
    };
    let vendor = read_verifying_key(vendor_public_key)?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let dir = dir.canonicalize().map_err(io(dir))?;
    let config_path = dir.join("licet-server.yaml");
    if config_path.exists() {
        return Err(StartError::Config {
            path: config_path,
            message: "exists already; start the server with --config".into(),
        });
    }
    let policies: Vec<PathBuf> = policies
        .iter()
        .map(|path| path.canonicalize().map_err(io(path)))
        .collect::<Result<_, _>>()?;
    load_policies(&policies)?;
    let mut config = Config {
        role: ServerRole::LicenseServer,
        database: format!("sqlite://{}", dir.join("licet.db").display()),
        policies,
        server_key: Some(dir.join("server.secret")),
        vendor_public_key: Some(dir.join("vendor.pub")),
        center: center.map(str::to_owned),
        ..Config::default()
    };
    listen.apply(&mut config, &config_path)?;
    config.check_role().map_err(|message| StartError::Config {
        path: config_path.clone(),
        message,
    })?;
    let vendor_path = dir.join("vendor.pub");
    std::fs::write(&vendor_path, format!("{}\n", public_key_line(&vendor)))
        .map_err(io(&vendor_path))?;
    generate_key_pair(&dir, "server")?;
    let state = build_state(&config, Arc::new(NoDongle)).await?;
    let admin_token = state
        .licensing
        .create_admin_token("licet-server init", "initial")
        .await
        .map_err(|error| StartError::Policy(error.report()))?;
    config.admin_tokens = Vec::new();
    let yaml = serde_yaml::to_string(&config).map_err(|error| StartError::Config {
        path: config_path.clone(),
        message: error.report(),
    })?;
    std::fs::write(&config_path, yaml).map_err(io(&config_path))?;
    Ok(Initialized {
        config_path,
        admin_token,
        example_keys: Vec::new(),
    })
}
