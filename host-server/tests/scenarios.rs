//! Every example scenario, played through the real licensing service on SQLite and on
//! PostgreSQL: the same steps `licet policy test` plays in memory must get the same decisions
//! from the server, so a policy that passes its scenarios behaves the same when served.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use licet_engine::scenario::{self, HostFacts, ScenarioHost, StartingLicense};
use licet_engine::state::Order;
use licet_engine::Fingerprint;
use licet_engine::{Action, Decision, Policy, Request, RequestKind};
use licet_server::admin::{NewLicenses, NewOrder};
use licet_server::dongle::SwitchableDongle;
use licet_server::keys::{generate_key_files, read_signing_key};
use licet_server::license_server::{FixedIdentity, LicenseServer, LicenseServerSettings};
use licet_server::server::{load_policies, load_policy_sources};
use licet_server::service::{Clock, Licensing, Policies, RequestContext};
use licet_server::store::{Database, Store, StoreOptions, Synchronous};

use common::Backend;

/// The key of the license server that activates the scenarios' network licenses.
static LICENSE_SERVER_KEY: std::sync::LazyLock<ed25519_dalek::SigningKey> =
    std::sync::LazyLock::new(|| ed25519_dalek::SigningKey::from_bytes(&[9; 32]));

/// The service's clock, set to each step's time.
#[derive(Debug)]
struct StepClock(Mutex<DateTime<Utc>>);

impl Clock for StepClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// The real service as a scenario host.
struct ServiceHost {
    runtime: tokio::runtime::Runtime,
    licensing: Licensing,
    clock: Arc<StepClock>,
    dongle: Arc<SwitchableDongle>,
    /// The licenses of network types, which a license server activates.
    network_keys: BTreeSet<String>,
    /// The customer's license server, once a network license was activated on it; it serves
    /// the seats of the licenses installed on it.
    license_server: Option<Licensing>,
    backend: Backend,
    dir: tempfile::TempDir,
    schemas: Vec<String>,
}

impl Drop for ServiceHost {
    fn drop(&mut self) {
        for schema in &self.schemas {
            common::drop_schema(schema);
        }
    }
}

/// A database of `backend` for one host: a file in `dir`, or a fresh PostgreSQL schema.
fn database(
    runtime: &tokio::runtime::Runtime,
    backend: Backend,
    dir: &Path,
    name: &str,
    schemas: &mut Vec<String>,
) -> Database {
    match backend {
        Backend::Sqlite => Database::Sqlite(dir.join(format!("{name}.db"))),
        Backend::Postgres => {
            let (url, schema) = runtime.block_on(common::postgres_schema());
            schemas.push(schema);
            Database::Postgres(url)
        }
    }
}

async fn open_store(database: &Database) -> Store {
    Store::open(
        database,
        StoreOptions {
            synchronous: Synchronous::Normal,
            max_connections: 4,
        },
    )
    .await
    .unwrap()
}

impl ServiceHost {
    fn start(backend: Backend, start: DateTime<Utc>) -> ServiceHost {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        generate_key_files(dir.path()).unwrap();
        let mut schemas = Vec::new();
        let database = database(&runtime, backend, dir.path(), "center", &mut schemas);
        let clock = Arc::new(StepClock(Mutex::new(start)));
        let dongle = Arc::new(SwitchableDongle::plugged("none"));
        dongle.unplug();
        let key = read_signing_key(&dir.path().join("vendor.secret")).unwrap();
        let policies = load_policies(&common::policy_paths()).unwrap();
        let licensing = runtime.block_on(async {
            Licensing::new(open_store(&database).await, policies, key, dongle.clone())
                .await
                .unwrap()
                .with_clock(clock.clone())
        });
        ServiceHost {
            runtime,
            licensing,
            clock,
            dongle,
            network_keys: BTreeSet::new(),
            license_server: None,
            backend,
            dir,
            schemas,
        }
    }

    /// Starts the license server on `machine` (the one a network license was just activated
    /// on) and installs the server license the center granted.
    fn install_on_license_server(
        &mut self,
        machine: &Fingerprint,
        server_license: &str,
    ) -> Result<(), String> {
        if self.license_server.is_none() {
            let database = database(
                &self.runtime,
                self.backend,
                self.dir.path(),
                "license-server",
                &mut self.schemas,
            );
            let sources = load_policy_sources(&common::policy_paths()).unwrap();
            let policies: Policies = sources
                .iter()
                .map(|(product, (policy, _))| (product.clone(), policy.clone()))
                .collect();
            let state_dir = self.dir.path().join("license-server");
            std::fs::create_dir_all(&state_dir).unwrap();
            let vendor = self.licensing.verifying_key();
            let dongle = self.dongle.clone();
            let clock = self.clock.clone();
            let licensing = self.runtime.block_on(async {
                let store = open_store(&database).await;
                let server = LicenseServer::new(LicenseServerSettings {
                    signing_key: LICENSE_SERVER_KEY.clone(),
                    vendor,
                    dir: state_dir,
                    center: None,
                    center_certificate: None,
                    revalidate_every: std::time::Duration::from_secs(3600),
                    identity: Arc::new(FixedIdentity(machine.clone())),
                    dongle: dongle.clone(),
                    policies: policies.clone(),
                    sources: sources
                        .into_iter()
                        .map(|(product, (_, source))| (product, source))
                        .collect(),
                    store: Some(store.clone()),
                });
                Licensing::new(store, policies, LICENSE_SERVER_KEY.clone(), dongle)
                    .await
                    .unwrap()
                    .with_clock(clock)
                    .with_license_server(Arc::new(server))
            });
            self.license_server = Some(licensing);
        }
        let now = self.clock.now();
        let server = self
            .license_server
            .as_ref()
            .and_then(|licensing| licensing.license_server())
            .ok_or("no license server")?;
        self.runtime
            .block_on(server.install(server_license, now))
            .map(|_| ())
            .map_err(|error| error.to_string())
    }

    /// The service a request goes to: seat traffic of a license installed on the license
    /// server goes there, everything else to the center.
    fn service_for(&self, request: &Request) -> &Licensing {
        let seat_traffic = matches!(
            request.action.kind(),
            RequestKind::Checkout
                | RequestKind::Heartbeat
                | RequestKind::Release
                | RequestKind::Borrow
                | RequestKind::ReturnBorrowed
        );
        match (&self.license_server, request.action.key()) {
            (Some(server), Some(key)) if seat_traffic => {
                let installed = server
                    .license_server()
                    .is_some_and(|license_server| license_server.entry(key).is_some());
                if installed {
                    return server;
                }
                &self.licensing
            }
            _ => &self.licensing,
        }
    }
}

impl ScenarioHost for ServiceHost {
    fn prepare(&mut self, licenses: &[StartingLicense], orders: &[Order]) -> Result<(), String> {
        for starting in licenses {
            let license = &starting.license;
            let network = self
                .licensing
                .policy(&license.product)
                .ok()
                .and_then(|policy| policy.license_type(&license.license_type))
                .is_some_and(|license_type| license_type.kind.is_network());
            if network {
                self.network_keys.insert(license.key.clone());
            }
        }
        let licensing = &self.licensing;
        self.runtime.block_on(async {
            let owners: BTreeSet<&str> = orders
                .iter()
                .map(|order| order.client.as_str())
                .chain(licenses.iter().filter_map(|l| l.license.client.as_deref()))
                .collect();
            for owner in owners {
                licensing
                    .create_client("administrator:scenario", owner, owner)
                    .await
                    .map_err(|error| error.to_string())?;
            }
            for order in orders {
                let product = licenses
                    .iter()
                    .find(|l| l.order.as_deref() == Some(order.id.as_str()))
                    .map(|l| l.license.product.clone())
                    .ok_or_else(|| format!("order `{}` has no license", order.id))?;
                licensing
                    .create_order(
                        "administrator:scenario",
                        NewOrder {
                            id: Some(order.id.clone()),
                            client: order.client.clone(),
                            product,
                            features: order.features.clone(),
                            counters: order.counters.clone(),
                        },
                    )
                    .await
                    .map_err(|error| error.to_string())?;
            }
            for starting in licenses {
                let license = &starting.license;
                licensing
                    .issue_licenses(
                        "administrator:scenario",
                        NewLicenses {
                            product: license.product.clone(),
                            license_type: license.license_type.clone(),
                            edition: license.edition.clone(),
                            version: Some(license.version.clone()),
                            order: starting.order.clone(),
                            client: license.client.clone().filter(|_| starting.order.is_none()),
                            term: license.term,
                            seats: license.seats,
                            features: license.features.clone(),
                            counters: license.counters.clone(),
                            dongle: license.dongle.clone(),
                            key: Some(license.key.clone()),
                            count: 1,
                        },
                    )
                    .await
                    .map_err(|error| error.to_string())?;
            }
            Ok(())
        })
    }

    fn decide(
        &mut self,
        request: &Request,
        facts: &HostFacts,
        now: DateTime<Utc>,
    ) -> Result<Decision, String> {
        *self.clock.0.lock().unwrap() = now;
        let seat_request = matches!(
            request.action.kind(),
            RequestKind::Checkout | RequestKind::Heartbeat
        );
        match (&facts.dongle, seat_request) {
            (Some(serial), true) => {
                self.dongle.replace(serial.clone());
                self.dongle.plug();
            }
            _ => self.dongle.unplug(),
        }
        // A network license is activated, validated and returned by its license server.
        let by_license_server = matches!(
            request.action,
            Action::Activate { .. } | Action::Validate { .. } | Action::Return { .. }
        ) && request
            .action
            .key()
            .is_some_and(|key| self.network_keys.contains(key));
        let context = RequestContext {
            actor_label: "scenario".to_owned(),
            client_dongle: facts.dongle.clone().filter(|_| !seat_request),
            product: matches!(request.action, Action::ValidateTrial { .. })
                .then(|| facts.product.clone()),
            server_key: by_license_server.then(|| LICENSE_SERVER_KEY.verifying_key().to_bytes()),
        };
        let service = self.service_for(request);
        let outcome = self
            .runtime
            .block_on(service.decide(request.actor.clone(), request.action.clone(), context))
            .map_err(|error| error.to_string())?;
        if let (Some(server_license), Action::Activate { machine, .. }) =
            (&outcome.server_license, &request.action)
        {
            self.install_on_license_server(machine, &server_license.to_armored())?;
        }
        Ok(outcome.decision)
    }
}

fn scenario_files() -> Vec<PathBuf> {
    let dir = common::repo_root().join("policies/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(".scenario.yaml"))
        .collect();
    files.sort();
    files
}

/// Plays every example scenario on `backend`; the failing steps, described.
fn failures_on(backend: Backend) -> Vec<String> {
    let files = scenario_files();
    assert!(
        files.len() >= 6,
        "expected the example scenarios: {files:?}"
    );
    let mut failures = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        let parsed = scenario::parse(&file.display().to_string(), &source).unwrap();
        let policy = policy_of(file, &parsed.policy);
        let mut host = ServiceHost::start(backend, parsed.start);
        let report = scenario::run_on(&policy, &parsed, &mut host)
            .unwrap_or_else(|error| panic!("{}: {error}", file.display()));
        for step in report.steps.iter().filter(|step| !step.passed()) {
            failures.push(format!(
                "{} step {}: {}: {:?}",
                file.display(),
                step.step,
                step.summary,
                step.failures
            ));
        }
    }
    failures
}

fn policy_of(scenario_file: &Path, policy: &str) -> Policy {
    let path = scenario_file.parent().unwrap().join(policy);
    let source = std::fs::read_to_string(&path).unwrap();
    Policy::from_yaml(&path.display().to_string(), &source).unwrap()
}

#[test]
fn every_scenario_passes_on_the_service_over_sqlite() {
    let failures = failures_on(Backend::Sqlite);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_scenario_passes_on_the_service_over_postgresql() {
    let failures = failures_on(Backend::Postgres);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
