//! Starting the server: loading policies and the key, opening the store, serving HTTP until
//! Ctrl-C or SIGTERM, and creating a new server directory (`licet-server init`).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use licet_engine::Policy;
use tokio::net::TcpListener;

use crate::admin::NewLicenses;
use crate::api::{self, AppState};
use crate::config::Config;
use crate::dongle::{DongleCheck, NoDongle, PolledDongle};
use crate::error::StartError;
use crate::keys::{generate_key_files, read_signing_key};
use crate::ratelimit::RateLimiter;
use crate::service::{Licensing, Policies};
use crate::store::{Database, Store, StoreOptions};

/// Loads policy files; each licenses one product.
pub fn load_policies(paths: &[PathBuf]) -> Result<Policies, StartError> {
    let mut policies = BTreeMap::new();
    for path in paths {
        let source = std::fs::read_to_string(path).map_err(|source| StartError::Io {
            path: path.clone(),
            source,
        })?;
        let policy = Policy::from_yaml(&path.display().to_string(), &source)
            .map_err(|error| StartError::Policy(error.to_string()))?;
        let product = policy.product.id.clone();
        if policies.insert(product.clone(), Arc::new(policy)).is_some() {
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

/// The dongle check the configuration describes: the dongle plugin, polled, or no dongle.
pub fn configured_dongle(config: &Config) -> Result<Arc<dyn DongleCheck>, StartError> {
    let Some(dongle) = &config.dongle else {
        return Ok(Arc::new(NoDongle));
    };
    let failed = |message: String| StartError::Dongle {
        path: dongle.plugin.clone(),
        message,
    };
    let vendor_key = read_signing_key(&config.vendor_key)?.verifying_key();
    let hid = licet_plugin_host::hid_backend(dongle.software.as_deref())
        .map_err(|error| failed(error.to_string()))?;
    let reader = licet_plugin_host::DongleReader::load(&dongle.plugin, vendor_key, hid)
        .map_err(|error| failed(error.to_string()))?;
    let polled = PolledDongle::start(reader, std::time::Duration::from_secs(dongle.poll_seconds))
        .map_err(|error| failed(error.to_string()))?;
    Ok(polled)
}

/// Builds the shared state from a configuration.
pub async fn build_state(
    config: &Config,
    dongle: Arc<dyn DongleCheck>,
) -> Result<AppState, StartError> {
    let policies = load_policies(&config.policies)?;
    let signing_key = read_signing_key(&config.vendor_key)?;
    let database = Database::parse(&config.database)?;
    let store = Store::open(
        &database,
        StoreOptions {
            synchronous: config.sqlite_synchronous,
            max_connections: config.postgres_max_connections,
        },
    )
    .await?;
    let licensing = Licensing::new(store, policies, signing_key, dongle).await?;
    Ok(AppState {
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

/// Serves the API on `listener` until `shutdown` completes, sweeping ended leases every
/// `sweep` in the background.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    sweep: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let licensing = state.licensing.clone();
    let sweeper = tokio::spawn(async move {
        let mut interval = tokio::time::interval(sweep.max(Duration::from_secs(1)));
        loop {
            interval.tick().await;
            if let Err(error) = licensing.sweep_leases(licensing.now()).await {
                tracing::warn!("sweeping ended leases failed: {error}");
            }
        }
    });
    let app = api::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    sweeper.abort();
    result
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

/// Creates a server directory: a vendor key pair, a SQLite database with an administrator token,
/// and `licet-server.yaml` naming `policies`. With `examples`, issues one license of each
/// non-dongle type of each product.
pub async fn init(
    dir: &Path,
    policies: &[PathBuf],
    listen: &str,
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
    generate_key_files(&dir)?;
    let config = Config {
        listen: listen.to_owned(),
        database: format!("sqlite://{}", dir.join("licet.db").display()),
        policies,
        vendor_key: dir.join("vendor.secret"),
        admin_tokens: Vec::new(),
        sqlite_synchronous: Default::default(),
        postgres_max_connections: 16,
        rate_limits: Default::default(),
        dongle: None,
        sweep_seconds: 60,
    };
    let state = build_state(&config, Arc::new(NoDongle)).await?;
    let admin_token = state
        .licensing
        .create_admin_token("licet-server init", "initial")
        .await
        .map_err(|error| StartError::Policy(error.to_string()))?;
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
                    .map_err(|error| StartError::Policy(error.to_string()))?;
                for record in issued {
                    example_keys.push((name.clone(), record.license.key));
                }
            }
        }
    }
    let yaml = serde_yaml::to_string(&config).map_err(|error| StartError::Config {
        path: config_path.clone(),
        message: error.to_string(),
    })?;
    std::fs::write(&config_path, yaml).map_err(io(&config_path))?;
    Ok(Initialized {
        config_path,
        admin_token,
        example_keys,
    })
}
