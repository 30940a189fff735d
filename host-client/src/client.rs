//! The embeddable client: start-up check, license information, online operations and manual
//! activation and return by files.

mod carried;
mod manual;
mod memory;
mod seats;

use licet_engine::report::Report as _;

pub use carried::{load_text_transport, FileRequest, TextBlock};
pub use manual::{CarriedRefusal, RESPONSE_FILE_INVALID, RETURN_PENDING_RULE, TEXT_BLOCK_INVALID};
pub use seats::{SeatHold, SeatHolder, SeatLoss};

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::VerifyingKey;
use licet_engine::certificate::{
    Binding, Certificate, CertificateClaims, CertificateError, CertificateKind,
};
use licet_engine::offline::{check_certificate, LocalFacts};
use licet_engine::policy::{Method, UntrustedEnvironment, MAX_POLICY_BYTES};
use licet_engine::server_license::{
    verify_served, ServerLicense, ServerLicenseClaims, ServerLicenseError,
};
use licet_engine::{Action, Actor, Code, Decision, Fingerprint, Policy, ProductRef, Request};
use licet_plugin_host::DongleReader;

use crate::bundle::{BundleOpenError, BundleOptions, OpenedBundle, PluginProbe};
use crate::dongle::{load_reader, present_serial, DongleError, DongleProver};
use crate::info::{LicenseInfo, Status};
use crate::keys::{self, KeyError};
use crate::ledger::{default_machine_dir, LedgerStore};
use crate::machine::{Environment, MachineProbe, NativeProbe, ProbeError};
use crate::state::{
    Durability, LocalState, ReturnedLicense, ServerDenial, StateError, StateLoad, StateProblem,
    StateStore,
};
use crate::transport::{Reply, Transport, TransportError};
pub use memory::FROZEN_CLOCK_STARTS;
use memory::{
    check_machine_clock, next_mark, revoked_sentence, untrusted_environment, Seen, REVOKED_RULE,
};

/// How far the clock must have moved since the stored `last_seen` before a start-up check writes
/// the state again. Far below any rollback tolerance, and it keeps most start-ups read-only.
pub const LAST_SEEN_GRANULARITY_SECONDS: i64 = 60;

/// The directory under a bundled client's state directory where its plugins are kept compiled.
pub const PLUGIN_CACHE_DIR: &str = "plugin-cache";

/// Why a client operation failed (as opposed to being denied, which is a [`Decision`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The policy file could not be read or is invalid.
    #[error("policy `{path}`: {message}")]
    Policy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The policy text given in memory is invalid.
    #[error("embedded policy: {0}")]
    PolicyText(String),
    /// The vendor key file could not be read.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A file could not be read.
    #[error("`{path}`")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The machine could not be identified.
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// The local state could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// The server could not be asked.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The dongle reader could not be set up.
    #[error(transparent)]
    Dongle(#[from] DongleError),
    /// A certificate does not verify with the vendor key or is malformed.
    #[error("certificate rejected")]
    Certificate(#[from] CertificateError),
    /// A certificate verified but cannot be used here.
    #[error("certificate rejected: {0}")]
    CertificateNotForThisMachine(String),
    /// A certificate this machine saw revoked (the server answered `REVOKED` to its validation)
    /// was offered again, by a file or a server. See [`ClientError::code`].
    #[error("certificate rejected: {0}")]
    Revoked(String),
    /// A certificate signed by a license server was refused: its server license is not the
    /// vendor's or was altered, the certificate is not signed by the server license's key or
    /// grants more than the server license, or the server license is not in force. See
    /// [`ClientError::code`].
    #[error("{code}: certificate rejected", code = .0.code())]
    ServerLicense(#[from] ServerLicenseError),
    /// The server allowed a request that grants a certificate but sent none.
    #[error("the server granted `{0}` but sent no certificate")]
    MissingCertificate(Code),
    /// The operation needs a license on this machine and there is none.
    #[error("no license is installed on this machine")]
    NoLicense,
    /// The operation needs a trusted local state.
    #[error("{}", .0.sentence())]
    UntrustedState(StateProblem),
    /// An exchange file was rejected (malformed, altered, for another machine, replayed, ...).
    #[error("{code}", code = .0.code())]
    Exchange(#[from] licet_engine::exchange::ExchangeError),
    /// A product bundle was refused.
    #[error(transparent)]
    Bundle(#[from] BundleOpenError),
    /// A transport plugin could not be loaded, or refused what it was given (a text block with
    /// a typo: the plugin names the line; a file that is not its response file).
    #[error(transparent)]
    Plugin(#[from] licet_plugin_host::PluginError),
    /// The transport plugin does not encode requests as text.
    #[error("transport plugin `{0}` does not make text blocks")]
    NotText(String),
    /// The transport plugin does not encode requests as files.
    #[error("transport plugin `{0}` does not make request files")]
    NotFile(String),
    /// The system's random source failed.
    #[error("the system random source failed: {0}")]
    Random(String),
    /// The product has no such edition or language.
    #[error("the product has no {kind} `{name}`")]
    Unknown {
        /// `edition` or `language`.
        kind: &'static str,
        /// The name given.
        name: String,
    },
}

/// Whether the local state verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// The state verified.
    Verified,
    /// There is no state yet (nothing installed).
    Absent,
    /// The state did not verify; nothing in it is used.
    Untrusted(StateProblem),
}

impl Trust {
    /// Whether the state verified.
    pub fn is_trusted(self) -> bool {
        self == Trust::Verified
    }

    /// `verified`, `absent` or `untrusted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trust::Verified => "verified",
            Trust::Absent => "absent",
            Trust::Untrusted(_) => "untrusted",
        }
    }
}

/// The result of the start-up check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    /// Allowed (`VALID`) or denied with the engine's code, rule and sentence.
    pub decision: Decision,
    /// Whether the local state verified.
    pub trust: Trust,
    /// Whether the policy's validation interval has passed since the last online validation.
    pub validation_due: bool,
    /// The verified certificate's claims, when there is one.
    pub claims: Option<CertificateClaims>,
    /// The claims of the vendor-signed server license the certificate was served under, when a
    /// customer's license server signed it.
    pub server_license: Option<ServerLicenseClaims>,
}

/// The outcome of [`Client::validate_if_due`].
#[derive(Debug, Clone, PartialEq)]
pub enum Validation {
    /// Nothing to do before `next`.
    NotDue {
        /// When the next validation is due.
        next: DateTime<Utc>,
    },
    /// The server answered; a fresh certificate (or its denial) is stored.
    Done(Decision),
    /// The server could not be reached; the product runs on its offline grace until
    /// `offline_until` (the certificate's), after which the start-up check answers
    /// `VALIDATION_REQUIRED`.
    Offline {
        /// Why the server could not be reached.
        error: TransportError,
        /// The end of the offline grace, when the certificate has one.
        offline_until: Option<DateTime<Utc>>,
    },
}

/// How far the server's clock may be behind this machine's when a certificate is compared with a
/// denial the server gave earlier: a certificate issued more than this before the denial is an
/// old one replayed and is refused.
pub const SERVER_CLOCK_SKEW_SECONDS: i64 = 300;

/// The client host of one product on one machine.
///
/// It owns the state directory, the product's policy (for the offline checks) and the vendor's
/// public key, and identifies the machine through a [`MachineProbe`].
#[derive(Debug)]
pub struct Client {
    policy: Policy,
    vendor_key: VerifyingKey,
    probe: Box<dyn MachineProbe + Send + Sync>,
    /// The dongle on this machine, when the product uses dongles.
    dongle: Option<Arc<dyn DongleProver>>,
    store: StateStore,
    /// What must survive the state file: revocations seen, the latest times seen, the clock's
    /// mark; in the state directory and a per-machine directory.
    ledger: LedgerStore,
    /// The start-up check's pending write of `last_seen`, made off the caller's path.
    pending: Mutex<Option<JoinHandle<Result<(), StateError>>>>,
    /// Held by the start-up check from reading the state to handing its save to the writer, and
    /// by the seat operations (which a [`SeatHolder`] runs on its own thread) while they store
    /// their outcome, so neither overwrites the other's write.
    exclusive: Mutex<()>,
    /// The product bundle the client was opened from: servers, pinned certificate, transports.
    bundle: Option<Arc<OpenedBundle>>,
}

/// A loaded state with the trust it was loaded with.
struct Loaded {
    state: LocalState,
    trust: Trust,
}

/// A certificate whose signatures verified: signed by the vendor, or signed by a license server
/// whose vendor-signed server license admits it.
struct Verified {
    certificate: Certificate,
    server_license: Option<ServerLicense>,
}

impl Verified {
    fn claims(&self) -> &CertificateClaims {
        self.certificate.claims()
    }

    /// Stores the certificate, with its server license or none, as the state's certificate.
    fn install_into(&self, state: &mut LocalState) {
        state.certificate = Some(self.certificate.to_armored());
        state.server_license = self.server_license.as_ref().map(ServerLicense::to_armored);
    }
}

impl Client {
    /// A client over `state_dir` for the product of `policy`, identifying the machine with `probe`.
    pub fn new(
        state_dir: &Path,
        policy: Policy,
        vendor_key: VerifyingKey,
        probe: Box<dyn MachineProbe + Send + Sync>,
    ) -> Client {
        let store = StateStore::new(state_dir, &policy.product.id, vendor_key.to_bytes());
        let ledger = LedgerStore::new(state_dir, None, &policy.product.id, vendor_key.to_bytes());
        Client {
            policy,
            vendor_key,
            probe,
            dongle: None,
            store,
            ledger,
            pending: Mutex::new(None),
            exclusive: Mutex::new(()),
            bundle: None,
        }
    }

    /// A client from a policy file and a vendor public key file, with the native machine probe
    /// and the machine ledger's second copy in the machine directory
    /// ([`default_machine_dir`]). The command line opens its clients this way.
    pub fn open(
        state_dir: &Path,
        policy_path: &Path,
        vendor_key_path: &Path,
    ) -> Result<Client, ClientError> {
        let policy = load_policy(policy_path)?;
        let vendor_key = keys::read_verifying_key(vendor_key_path)?;
        Ok(Client::native(state_dir, policy, vendor_key))
    }

    /// A client from the policy's text and the vendor's public key bytes held in memory (compiled
    /// into the product, so no file on the machine can replace them), identifying the machine
    /// with `probe`. Like [`Client::new`], its machine ledger has no second copy until
    /// [`Client::with_machine_dir`] gives it one.
    pub fn from_parts(
        state_dir: &Path,
        policy_yaml: &str,
        vendor_key: &[u8; 32],
        probe: Box<dyn MachineProbe + Send + Sync>,
    ) -> Result<Client, ClientError> {
        let policy = policy_from_text(policy_yaml)?;
        let vendor_key = keys::verifying_key_from_bytes(vendor_key)?;
        Ok(Client::new(state_dir, policy, vendor_key, probe))
    }

    /// A client from the policy's text and the text of the vendor's public key file
    /// (`licet-ed25519-public:...`) held in memory, with the native machine probe and the machine
    /// directory, as [`Client::open`] has them: the form a vendor compiles into the product.
    pub fn from_embedded(
        state_dir: &Path,
        policy_yaml: &str,
        vendor_key_text: &str,
    ) -> Result<Client, ClientError> {
        let vendor_key = keys::parse_verifying_key(vendor_key_text)?;
        Client::from_embedded_key(state_dir, policy_yaml, vendor_key.as_bytes())
    }

    /// A client from the policy's text and the vendor's public key bytes held in memory, with the
    /// native machine probe and the machine directory: what the C ABI's
    /// `licet_client_open_embedded` opens.
    pub fn from_embedded_key(
        state_dir: &Path,
        policy_yaml: &str,
        vendor_key: &[u8; 32],
    ) -> Result<Client, ClientError> {
        let policy = policy_from_text(policy_yaml)?;
        let vendor_key = keys::verifying_key_from_bytes(vendor_key)?;
        Ok(Client::native(state_dir, policy, vendor_key))
    }

    /// A client from a vendor-signed product bundle ([`crate::bundle`]) and the vendor's public
    /// key compiled into the product: the policy, the plugins, the servers and the pinned server
    /// certificate all come from the bundle. The machine is identified through the bundle's
    /// fingerprint plugin (the native probe when it has none), the dongle reached through its
    /// dongle plugin, and the compiled plugins are kept in `state_dir/plugin-cache`. A bundle of
    /// another vendor, changed by one byte, or naming a plugin it does not carry is refused.
    pub fn open_bundle(
        state_dir: &Path,
        bundle: &[u8],
        vendor_key: &[u8; 32],
    ) -> Result<Client, ClientError> {
        Client::open_bundle_with(state_dir, bundle, vendor_key, &BundleOptions::default())
    }

    /// [`Client::open_bundle`] with options (a software dongle, no compiled cache).
    pub fn open_bundle_with(
        state_dir: &Path,
        bundle: &[u8],
        vendor_key: &[u8; 32],
        options: &BundleOptions,
    ) -> Result<Client, ClientError> {
        let vendor_key = keys::verifying_key_from_bytes(vendor_key)?;
        let cache = (!options.no_compiled_cache).then(|| state_dir.join(PLUGIN_CACHE_DIR));
        let (policy, fingerprint, mut opened) =
            crate::bundle::open(bundle, &vendor_key, cache.as_deref())?;
        let probe: Box<dyn MachineProbe + Send + Sync> = match fingerprint {
            Some(plugin) => Box::new(PluginProbe::new(plugin, &policy.product.id)),
            None => Box::new(NativeProbe::for_product(&policy.product.id)),
        };
        let mut client = Client::new(state_dir, policy, vendor_key, probe)
            .with_machine_dir(default_machine_dir().as_deref());
        if let Some(plugin) = opened.dongle.take() {
            let hid = licet_plugin_host::hid_backend(options.software_dongle.as_deref())
                .map_err(|error| DongleError::Reader(error.report()))?;
            client = client.with_dongle(Arc::new(DongleReader::new(plugin, hid)));
        }
        client.bundle = Some(Arc::new(opened));
        Ok(client)
    }

    /// The product bundle this client was opened from, if it was.
    pub fn bundle(&self) -> Option<&OpenedBundle> {
        self.bundle.as_deref()
    }

    fn native(state_dir: &Path, policy: Policy, vendor_key: VerifyingKey) -> Client {
        let probe = NativeProbe::for_product(&policy.product.id);
        Client::new(state_dir, policy, vendor_key, Box::new(probe))
            .with_machine_dir(default_machine_dir().as_deref())
    }

    /// The same client keeping the second copy of its machine ledger (revocations seen, the
    /// latest times seen, the clock's mark) in `machine_dir`, or nowhere but the state directory
    /// (`None`). See [`crate::ledger`].
    pub fn with_machine_dir(mut self, machine_dir: Option<&Path>) -> Client {
        self.ledger = self.ledger.clone().with_machine_dir(machine_dir);
        self
    }

    /// The paths of the machine ledger's copies.
    pub fn ledger_paths(&self) -> Vec<&Path> {
        self.ledger.paths()
    }

    /// Whether the machine's identity can be trusted where the client runs (see
    /// [`MachineProbe::environment`]).
    pub fn environment(&self) -> Environment {
        self.probe.environment()
    }

    /// The refusal of `what` (`a trial`, `an activation`, ...) in an untrusted environment: always
    /// for a trial, for everything under `fingerprint.untrusted_environment: deny`.
    fn environment_refusal(&self, what: &str, trial: bool) -> Option<Decision> {
        if !trial && self.policy.untrusted_environment != UntrustedEnvironment::Deny {
            return None;
        }
        let environment = self.probe.environment();
        (!environment.is_trusted()).then(|| untrusted_environment(&environment, what))
    }

    /// The same client reaching the machine's dongle through `prover`: certificates bound to a
    /// dongle then pass the start-up check while that dongle proves its presence, and online
    /// activation, validation and return carry the dongle's answer to the server's challenge.
    pub fn with_dongle(mut self, prover: Arc<dyn DongleProver>) -> Client {
        self.dongle = Some(prover);
        self
    }

    /// The same client reaching the machine's dongle through the vendor-signed dongle plugin in
    /// `plugin_dir`, over USB HID or the software dongle file `software_dongle` (development).
    pub fn with_dongle_plugin(
        self,
        plugin_dir: &Path,
        software_dongle: Option<&Path>,
    ) -> Result<Client, ClientError> {
        let reader = load_reader(plugin_dir, self.vendor_key, software_dongle)?;
        Ok(self.with_dongle(Arc::new(reader)))
    }

    /// The serial of the dongle present now (proven by a fresh challenge), when there is one.
    pub fn dongle_serial(&self) -> Result<String, DongleError> {
        match &self.dongle {
            Some(prover) => present_serial(prover.as_ref()),
            None => Err(DongleError::Absent(
                "no dongle reader is configured".to_owned(),
            )),
        }
    }

    /// The product's policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The state file's path.
    pub fn state_path(&self) -> &Path {
        self.store.path()
    }

    /// The machine's current fingerprint.
    pub fn fingerprint(&self) -> Result<Fingerprint, ClientError> {
        Ok(self.probe.fingerprint()?)
    }

    /// Waits for the start-up check's pending state write, if any, and reports its failure.
    ///
    /// Every other operation waits for it first, and dropping the client waits for it too.
    pub fn flush(&self) -> Result<(), ClientError> {
        let pending = match self.pending.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        match pending.map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(error))) => Err(error.into()),
            Some(Err(_)) => Err(ClientError::State(StateError::Encode(
                "the state writer stopped unexpectedly".to_owned(),
            ))),
        }
    }

    /// Serializes a read-modify-write of the state with the other threads using this client.
    fn exclusive(&self) -> std::sync::MutexGuard<'_, ()> {
        match self.exclusive.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn load(&self, machine: &Fingerprint) -> Result<Loaded, ClientError> {
        // A write still in flight must land before the state is read again; a failed one left
        // the previous state in place, which is read instead.
        let _ = self.flush();
        Ok(match self.store.load(machine, &self.policy.fingerprint)? {
            StateLoad::Trusted(state) => Loaded {
                state: *state,
                trust: Trust::Verified,
            },
            StateLoad::Missing => Loaded {
                state: LocalState::new(&self.policy.product.id),
                trust: Trust::Absent,
            },
            StateLoad::Untrusted(problem) => Loaded {
                state: LocalState::new(&self.policy.product.id),
                trust: Trust::Untrusted(problem),
            },
        })
    }

    /// The start-up check at the current time. See [`Client::check_at`].
    pub fn check(&self) -> Result<CheckReport, ClientError> {
        self.check_at(Utc::now())
    }

    /// The start-up check: reads the signed local state, verifies the stored certificate with the
    /// vendor key (or, when a license server signed it, through its stored server license) and
    /// decides offline with the machine's facts
    /// ([`check_certificate`]). Moves the stored `last_seen` forward when the clock advanced at
    /// least [`LAST_SEEN_GRANULARITY_SECONDS`]; that write runs in the background (see
    /// [`Client::flush`]).
    pub fn check_at(&self, now: DateTime<Utc>) -> Result<CheckReport, ClientError> {
        let machine = self.probe.fingerprint()?;
        let clock = self.probe.clock();
        let _exclusive = self.exclusive();
        let Loaded { mut state, trust } = self.load(&machine)?;
        let mut ledger = self.ledger.load();
        let mark = next_mark(ledger.clock.as_ref(), &clock, now);
        let seen = Seen {
            ledger: &ledger,
            clock: &clock,
            mark: &mark,
        };
        let report = self.evaluate(&state, trust, &machine, &seen, now);
        let granularity = Duration::seconds(LAST_SEEN_GRANULARITY_SECONDS);
        let stale = state.last_seen.is_none_or(|seen| now - seen >= granularity);
        let write_state = trust.is_trusted() && stale && state.observe(now);
        let issued_at = report.claims.as_ref().map(|claims| claims.issued_at);
        let write_ledger = ledger
            .last_seen
            .is_none_or(|seen| now - seen >= granularity)
            || issued_at > ledger.newest_issued_at
            || ledger
                .clock
                .as_ref()
                .is_none_or(|old| old.boot_id != mark.boot_id || old.stalls != mark.stalls);
        if write_ledger {
            ledger.observe(now, issued_at);
            ledger.clock = Some(mark);
        }
        if write_state || write_ledger {
            // The decision does not wait for the writes (an fsync each); the next operation,
            // `flush` or dropping the client does.
            let store = self.store.clone();
            let ledgers = self.ledger.clone();
            let writer = std::thread::Builder::new()
                .name("licet-state".to_owned())
                .spawn(move || {
                    if write_ledger {
                        ledgers.save(&ledger)?;
                    }
                    if write_state {
                        store.save_with(&state, &machine, Durability::Atomic)?;
                    }
                    Ok(())
                })
                .map_err(|source| StateError::Io {
                    path: self.store.path().to_path_buf(),
                    source,
                })?;
            match self.pending.lock() {
                Ok(mut slot) => *slot = Some(writer),
                Err(poisoned) => *poisoned.into_inner() = Some(writer),
            }
        }
        Ok(report)
    }

    fn evaluate(
        &self,
        state: &LocalState,
        trust: Trust,
        machine: &Fingerprint,
        seen: &Seen<'_>,
        now: DateTime<Utc>,
    ) -> CheckReport {
        let served = |verified: &Verified| {
            verified
                .server_license
                .as_ref()
                .map(|license| license.claims().clone())
        };
        let report = |decision: Decision,
                      claims: Option<CertificateClaims>,
                      server_license: Option<ServerLicenseClaims>| {
            let validation_due =
                claims.is_some() && self.validation_due_at(state, claims.as_ref()) <= now;
            CheckReport {
                decision,
                trust,
                validation_due,
                claims,
                server_license,
            }
        };
        if let Trust::Untrusted(problem) = trust {
            return report(
                Decision::deny(
                    Code::ValidationRequired,
                    "state.integrity",
                    format!(
                        "{}; activate the license or start the trial again",
                        problem.sentence()
                    ),
                ),
                None,
                None,
            );
        }
        let Some(text) = &state.certificate else {
            let message = match &state.returned {
                Some(returned) => format!(
                    "license `{}` was returned from this machine at {}",
                    returned.key, returned.at
                ),
                None => "no license is installed on this machine".to_owned(),
            };
            return report(
                Decision::deny(Code::NotActivated, "state.certificate", message),
                None,
                None,
            );
        };
        // A certificate served by a license server is checked against its server license (the
        // chain vendor -> server license -> certificate) but not against the server license's own
        // end: the certificate was admitted only if issued while the server license was in force
        // and ending no later than it, so a borrow stays valid until its own end.
        let verified = match self.verify(text, state.server_license.as_deref()) {
            Ok(verified) => verified,
            Err(ClientError::ServerLicense(error)) => {
                return report(
                    Decision::deny(
                        error.code(),
                        SERVER_LICENSE_RULE,
                        format!("the stored certificate is not valid: {}", error.report()),
                    ),
                    None,
                    None,
                )
            }
            Err(error) => {
                return report(
                    Decision::deny(
                        Code::NotActivated,
                        "certificate.signature",
                        format!("the stored certificate is not valid: {}", error.report()),
                    ),
                    None,
                    None,
                )
            }
        };
        let claims = verified.claims().clone();
        let server_license = served(&verified);
        if let Some(revoked) = seen.ledger.is_revoked(
            &claims.serial,
            &claims.license_key,
            claims.issued_at,
            Duration::seconds(SERVER_CLOCK_SKEW_SECONDS),
        ) {
            return report(
                Decision::deny(
                    Code::Revoked,
                    REVOKED_RULE,
                    revoked_sentence(&claims, revoked.at),
                ),
                Some(claims),
                server_license,
            );
        }
        if let Some(denial) = self.environment_refusal("use of the product", false) {
            return report(denial, Some(claims), server_license);
        }
        let tolerance =
            Duration::try_seconds(claims.rollback_tolerance_seconds).unwrap_or_default();
        if let Err(denial) = check_machine_clock(seen, tolerance, now) {
            return report(denial, Some(claims), server_license);
        }
        if let Some(denial) = &state.denial {
            return report(
                Decision::deny(denial.code, "server.validation", denial.message.clone()),
                Some(claims),
                server_license,
            );
        }
        if state.exchange.is_return_pending(&claims.license_key) && !claims.license_key.is_empty() {
            return report(
                Decision::deny(
                    Code::NotActivated,
                    manual::RETURN_PENDING_RULE,
                    format!(
                        "a return of license `{}` is pending; load the return response",
                        claims.license_key
                    ),
                ),
                Some(claims),
                server_license,
            );
        }
        let facts = LocalFacts {
            machine: machine.clone(),
            dongle: match claims.binding {
                Binding::Dongle(_) => self.dongle_serial().ok(),
                Binding::Fingerprint(_) => None,
            },
            // A certificate is never issued in the future: its issue time is a floor for the clock
            // even when the state was lost.
            last_seen: Some(
                state
                    .last_seen
                    .map_or(claims.issued_at, |seen| seen.max(claims.issued_at)),
            ),
            // The machine is matched with the certificate's signed binding rule; the probe's
            // salt id is not compared yet.
            salt_id: None,
        };
        let decision = check_certificate(&self.policy, &claims, &facts, now);
        report(decision, Some(claims), server_license)
    }

    /// Verifies an armored certificate: with the vendor key when it comes without a server
    /// license, else through the server license (vendor -> server license -> certificate,
    /// [`verify_served`]). A license server signs only seat and borrow certificates, whatever its
    /// server license says.
    fn verify(
        &self,
        certificate: &str,
        server_license: Option<&str>,
    ) -> Result<Verified, ClientError> {
        let Some(server_license) = server_license else {
            return Ok(Verified {
                certificate: Certificate::from_armored(certificate, &self.vendor_key)?,
                server_license: None,
            });
        };
        let (certificate, server_license) =
            verify_served(certificate, server_license, &self.vendor_key)?;
        if !matches!(
            certificate.claims().kind,
            CertificateKind::Seat | CertificateKind::Borrow
        ) {
            return Err(ServerLicenseError::Outside(
                "a license server signs only seat and borrow certificates".to_owned(),
            )
            .into());
        }
        Ok(Verified {
            certificate,
            server_license: Some(server_license),
        })
    }

    /// Verifies a certificate just received from a server. One served by a license server must
    /// also come while its server license is in force by this machine's clock (started, not
    /// expired, revalidated within its offline period), which a license server cannot backdate.
    fn verify_received(
        &self,
        certificate: &str,
        server_license: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Verified, ClientError> {
        let verified = self.verify(certificate, server_license)?;
        if let Some(license) = &verified.server_license {
            // The start is the server's business (the certificate's issue time is checked
            // against it); a clock a little behind the server's must not refuse a fresh one.
            license.check_in_force(now.max(license.claims().not_before))?;
        }
        Ok(verified)
    }

    /// The installed certificate, when it verifies.
    fn installed(&self, state: &LocalState) -> Option<Verified> {
        let text = state.certificate.as_deref()?;
        self.verify(text, state.server_license.as_deref()).ok()
    }

    /// The claims of the installed certificate, when it verifies.
    fn installed_claims(&self, state: &LocalState) -> Option<CertificateClaims> {
        self.installed(state)
            .map(|verified| verified.claims().clone())
    }

    fn validation_due_at(
        &self,
        state: &LocalState,
        claims: Option<&CertificateClaims>,
    ) -> DateTime<Utc> {
        let since = state
            .last_validated
            .or(claims.map(|claims| claims.issued_at))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        since
            .checked_add_signed(self.policy.validation.interval)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// License information at the current time. See [`Client::info_at`].
    pub fn info(&self) -> Result<LicenseInfo, ClientError> {
        self.info_at(Utc::now())
    }

    /// Product, edition, version, language, key, status, expiry and trust, as of `now`.
    pub fn info_at(&self, now: DateTime<Utc>) -> Result<LicenseInfo, ClientError> {
        let machine = self.probe.fingerprint()?;
        let clock = self.probe.clock();
        let Loaded { state, trust } = self.load(&machine)?;
        let ledger = self.ledger.load();
        let mark = next_mark(ledger.clock.as_ref(), &clock, now);
        let seen = Seen {
            ledger: &ledger,
            clock: &clock,
            mark: &mark,
        };
        let report = self.evaluate(&state, trust, &machine, &seen, now);
        let environment = self.probe.environment();
        let status = Status::from_report(&report, state.returned.is_some());
        let claims = report.claims.as_ref();
        let product = &self.policy.product;
        Ok(LicenseInfo {
            product: product.id.clone(),
            product_name: product.name.clone(),
            edition: claims
                .map(|c| c.edition.clone())
                .or_else(|| state.returned.as_ref().map(|r| r.edition.clone())),
            version: product.version.clone(),
            language: state
                .language
                .clone()
                .or_else(|| product.languages.first().cloned()),
            license_key: claims
                .map(|c| c.license_key.clone())
                .filter(|key| !key.is_empty())
                .or_else(|| state.returned.as_ref().map(|r| r.key.clone())),
            license_type: claims
                .map(|c| c.license_type.clone())
                .filter(|name| !name.is_empty()),
            status,
            code: report.decision.code,
            message: report.decision.message.clone(),
            expires_at: claims.and_then(|c| c.expires_at),
            offline_until: claims.and_then(|c| c.offline_until),
            last_validated: state.last_validated,
            validation_due: report.validation_due,
            trusted: trust.is_trusted(),
            trust: trust.as_str().to_owned(),
            features: claims.map(|c| c.features.clone()).unwrap_or_default(),
            counters: claims.map(|c| c.counters.clone()).unwrap_or_default(),
            server_license: report
                .server_license
                .as_ref()
                .map(|license| license.serial.clone()),
            environment: environment.summary(),
        })
    }

    /// Sets the language the end user chose; it must be one of the product's languages.
    pub fn set_language(&self, language: &str, now: DateTime<Utc>) -> Result<(), ClientError> {
        if !self.policy.product.languages.iter().any(|l| l == language) {
            return Err(ClientError::Unknown {
                kind: "language",
                name: language.to_owned(),
            });
        }
        let machine = self.probe.fingerprint()?;
        let mut loaded = self.trusted_or_new(&machine)?;
        loaded.state.language = Some(language.to_owned());
        loaded.state.observe(now);
        Ok(self.store.save(&loaded.state, &machine)?)
    }

    /// Installs a vendor-signed certificate delivered as a file (armored text). Certificates a
    /// license server signs come only online, with their server license.
    ///
    /// The certificate must verify with the vendor key, be for this product and version, be bound
    /// to this machine (or its dongle), and be no older than the one installed or than the last
    /// denial the server gave. Returns the start-up decision with it installed.
    pub fn install_certificate(
        &self,
        armored: &str,
        now: DateTime<Utc>,
    ) -> Result<CheckReport, ClientError> {
        let machine = self.probe.fingerprint()?;
        let mut loaded = self.trusted_or_new(&machine)?;
        let verified = self.verify(armored, None)?;
        self.accept(verified.claims(), &loaded.state, &machine)?;
        verified.install_into(&mut loaded.state);
        loaded.state.last_validated = Some(verified.claims().issued_at);
        loaded.state.returned = None;
        loaded.state.denial = None;
        loaded.state.observe(now);
        self.store.save(&loaded.state, &machine)?;
        self.check_at(now)
    }

    /// A trusted state, or a fresh one when there is none or it did not verify (an untrusted
    /// state is replaced by the next thing the vendor grants).
    fn trusted_or_new(&self, machine: &Fingerprint) -> Result<Loaded, ClientError> {
        self.load(machine)
    }

    /// Checks that the claims of a verified certificate may be stored on this machine.
    fn accept(
        &self,
        claims: &CertificateClaims,
        state: &LocalState,
        machine: &Fingerprint,
    ) -> Result<(), ClientError> {
        let rejected = |reason: String| Err(ClientError::CertificateNotForThisMachine(reason));
        let product = &self.policy.product;
        if claims.product != product.id || claims.version != product.version {
            return rejected(format!(
                "it is for `{} {}`, not `{} {}`",
                claims.product, claims.version, product.id, product.version
            ));
        }
        match &claims.binding {
            Binding::Fingerprint(components) => {
                // Matched with the rule signed into the certificate, never the local policy's.
                let matches = claims
                    .binding_rule
                    .as_ref()
                    .is_some_and(|rule| rule.matches(components, &machine.components));
                if !matches {
                    return rejected("it is bound to another machine".to_owned());
                }
            }
            Binding::Dongle(serial) => {
                if self.dongle_serial().ok().as_deref() != Some(serial.as_str()) {
                    return rejected(format!(
                        "it is bound to dongle `{serial}`, which is not present"
                    ));
                }
            }
        }
        if let Some(revoked) = self.ledger.load().is_revoked(
            &claims.serial,
            &claims.license_key,
            claims.issued_at,
            Duration::seconds(SERVER_CLOCK_SKEW_SECONDS),
        ) {
            return Err(ClientError::Revoked(revoked_sentence(claims, revoked.at)));
        }
        if let Some(current) = self.installed(state) {
            if claims.issued_at < current.claims().issued_at {
                return rejected("it is older than the installed certificate".to_owned());
            }
        }
        if let Some(denial) = &state.denial {
            // `denial.at` is this machine's clock and `issued_at` the server's, in whole seconds:
            // a certificate issued right after the denial, by a server whose clock is a little
            // behind, is not older than it.
            if claims.issued_at + Duration::seconds(SERVER_CLOCK_SKEW_SECONDS) < denial.at {
                return rejected(format!(
                    "it is older than the server's `{}` of {}",
                    denial.code, denial.at
                ));
            }
        }
        Ok(())
    }

    /// The dongle whose proof goes with `action`: every activation when the client has a dongle
    /// reader, and validations and returns of a certificate bound to a dongle.
    fn dongle_for(&self, action: &Action, state: &LocalState) -> Option<&dyn DongleProver> {
        let prover = self.dongle.as_deref()?;
        let bound_to_dongle = || {
            self.installed_claims(state)
                .is_some_and(|claims| matches!(claims.binding, Binding::Dongle(_)))
        };
        match action {
            Action::Activate { .. } => Some(prover),
            Action::Validate { .. } | Action::Return { .. } if bound_to_dongle() => Some(prover),
            _ => None,
        }
    }

    fn target(&self, edition: &str) -> Result<ProductRef, ClientError> {
        let product = &self.policy.product;
        if !product.has_edition(edition) {
            return Err(ClientError::Unknown {
                kind: "edition",
                name: edition.to_owned(),
            });
        }
        Ok(ProductRef {
            product: product.id.clone(),
            edition: edition.to_owned(),
            version: product.version.clone(),
        })
    }

    /// Sends `action`; stores the certificate an allowed reply carries.
    fn exchange(
        &self,
        transport: &mut dyn Transport,
        machine: &Fingerprint,
        state: &mut LocalState,
        action: Action,
        now: DateTime<Utc>,
    ) -> Result<Decision, ClientError> {
        let request = Request {
            actor: Actor::EndUser,
            action,
        };
        let reply = match self.dongle_for(&request.action, state) {
            Some(prover) => send_with_dongle(transport, prover, &request)?,
            None => transport.send(&request)?,
        };
        let decision = reply.decision;
        if decision.is_allowed() && grants_certificate(decision.code) {
            let text = reply
                .certificate
                .ok_or(ClientError::MissingCertificate(decision.code))?;
            let verified = self.verify_received(&text, reply.server_license.as_deref(), now)?;
            self.accept(verified.claims(), state, machine)?;
            verified.install_into(state);
            state.last_validated = Some(now);
            state.returned = None;
            state.denial = None;
        }
        state.observe(now);
        Ok(decision)
    }

    /// Starts the trial of `edition` online. The server records the trial against the machine, so
    /// a machine that already had it gets its original end back (or `TRIAL_ALREADY_USED`), never a
    /// second trial.
    pub fn start_trial(
        &self,
        transport: &mut dyn Transport,
        edition: &str,
        now: DateTime<Utc>,
    ) -> Result<Decision, ClientError> {
        let target = self.target(edition)?;
        if let Some(denial) = self.environment_refusal("a trial", true) {
            return Ok(denial);
        }
        let machine = self.probe.fingerprint()?;
        let mut loaded = self.trusted_or_new(&machine)?;
        let action = Action::StartTrial {
            target,
            machine: machine.clone(),
        };
        let decision = self.exchange(transport, &machine, &mut loaded.state, action, now)?;
        self.store.save(&loaded.state, &machine)?;
        Ok(decision)
    }

    /// Activates license `key` for `edition` online.
    pub fn activate(
        &self,
        transport: &mut dyn Transport,
        key: &str,
        edition: &str,
        now: DateTime<Utc>,
    ) -> Result<Decision, ClientError> {
        let target = self.target(edition)?;
        if let Some(denial) = self.environment_refusal("an activation", false) {
            return Ok(denial);
        }
        let machine = self.probe.fingerprint()?;
        let mut loaded = self.trusted_or_new(&machine)?;
        let action = Action::Activate {
            key: key.to_owned(),
            target,
            machine: machine.clone(),
            method: Method::Online,
        };
        let decision = self.exchange(transport, &machine, &mut loaded.state, action, now)?;
        self.store.save(&loaded.state, &machine)?;
        Ok(decision)
    }

    /// Validates the installed license (or trial) online and stores the fresh certificate, which
    /// carries any change an administrator made (expiry, features, counters). A denial (revoked,
    /// expired, removed) is stored and answered by the start-up check until a later validation
    /// succeeds.
    pub fn validate(
        &self,
        transport: &mut dyn Transport,
        now: DateTime<Utc>,
    ) -> Result<Decision, ClientError> {
        let machine = self.probe.fingerprint()?;
        let Loaded { mut state, trust } = self.load(&machine)?;
        if let Trust::Untrusted(problem) = trust {
            return Err(ClientError::UntrustedState(problem));
        }
        let claims = self
            .installed_claims(&state)
            .ok_or(ClientError::NoLicense)?;
        let action = if claims.license_key.is_empty() {
            Action::ValidateTrial {
                machine: machine.clone(),
            }
        } else {
            Action::Validate {
                key: claims.license_key.clone(),
                machine: machine.clone(),
                certificate_serial: Some(claims.serial.clone()),
            }
        };
        let decision = self.exchange(transport, &machine, &mut state, action, now)?;
        if decision.code == Code::Revoked {
            // Remembered beyond the state file: the certificate stays refused even when the
            // state is deleted and the certificate installed again.
            let mut ledger = self.ledger.load();
            ledger.revoke(&claims.serial, &claims.license_key, now);
            self.ledger.save(&ledger)?;
        }
        if !decision.is_allowed() && is_authoritative(decision.code) {
            state.denial = Some(ServerDenial {
                code: decision.code,
                message: decision.message.clone(),
                at: now,
            });
        }
        self.store.save(&state, &machine)?;
        Ok(decision)
    }

    /// Validates when the policy's interval has passed since the last validation. When the server
    /// cannot be reached the product keeps running on its offline grace.
    pub fn validate_if_due(
        &self,
        transport: &mut dyn Transport,
        now: DateTime<Utc>,
    ) -> Result<Validation, ClientError> {
        let report = self.check_at(now)?;
        let Some(claims) = &report.claims else {
            return Err(ClientError::NoLicense);
        };
        if !report.validation_due && report.decision.code != Code::ValidationRequired {
            let machine = self.probe.fingerprint()?;
            let loaded = self.load(&machine)?;
            return Ok(Validation::NotDue {
                next: self.validation_due_at(&loaded.state, Some(claims)),
            });
        }
        match self.validate(transport, now) {
            Ok(decision) => Ok(Validation::Done(decision)),
            Err(ClientError::Transport(error)) => Ok(Validation::Offline {
                error,
                offline_until: claims.offline_until,
            }),
            Err(error) => Err(error),
        }
    }

    /// Returns the installed license online, freeing the key for another machine. When the server
    /// allows it the certificate is removed and the return remembered.
    pub fn return_license(
        &self,
        transport: &mut dyn Transport,
        now: DateTime<Utc>,
    ) -> Result<Decision, ClientError> {
        let machine = self.probe.fingerprint()?;
        let Loaded { mut state, trust } = self.load(&machine)?;
        if let Trust::Untrusted(problem) = trust {
            return Err(ClientError::UntrustedState(problem));
        }
        let claims = self
            .installed_claims(&state)
            .filter(|claims| !claims.license_key.is_empty())
            .ok_or(ClientError::NoLicense)?;
        let action = Action::Return {
            key: claims.license_key.clone(),
            machine: machine.clone(),
            method: Method::Online,
            certificate_serial: Some(claims.serial.clone()),
        };
        let decision = self.exchange(transport, &machine, &mut state, action, now)?;
        if decision.is_allowed() {
            state.certificate = None;
            state.server_license = None;
            state.returned = Some(ReturnedLicense {
                key: claims.license_key,
                edition: claims.edition,
                at: now,
            });
        }
        self.store.save(&state, &machine)?;
        Ok(decision)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Sends `request` with the dongle's answer to a challenge of the server. When the dongle does
/// not answer, the request goes without a proof and the server decides (`DONGLE_ABSENT` for a
/// dongle license).
fn send_with_dongle(
    transport: &mut dyn Transport,
    prover: &dyn DongleProver,
    request: &Request,
) -> Result<Reply, ClientError> {
    let challenge = transport.dongle_challenge()?;
    Ok(match prover.prove(&challenge) {
        Ok(proof) => transport.send_with_dongle(request, &challenge, &proof)?,
        Err(_) => transport.send(request)?,
    })
}

/// The rule of a start-up denial for a stored certificate its server license does not admit.
pub const SERVER_LICENSE_RULE: &str = "certificate.server_license";

/// Whether an allowed decision with `code` comes with a certificate.
fn grants_certificate(code: Code) -> bool {
    matches!(
        code,
        Code::Valid
            | Code::Activated
            | Code::TrialStarted
            | Code::SeatGranted
            | Code::LeaseRenewed
            | Code::Borrowed
    )
}

/// Whether a validation denial says something about the license itself (and so is kept), rather
/// than about the request.
fn is_authoritative(code: Code) -> bool {
    !matches!(code, Code::ClockRollback | Code::InvalidRequest)
}

/// Parses policy text held in memory (compiled into the product), with the size limit of a
/// policy file.
pub fn policy_from_text(policy_yaml: &str) -> Result<Policy, ClientError> {
    if policy_yaml.len() > MAX_POLICY_BYTES {
        return Err(ClientError::PolicyText(format!(
            "larger than {MAX_POLICY_BYTES} bytes"
        )));
    }
    Policy::from_yaml("embedded policy", policy_yaml)
        .map_err(|error| ClientError::PolicyText(error.report()))
}

/// Reads and loads a policy file.
pub fn load_policy(path: &Path) -> Result<Policy, ClientError> {
    let io = |source| ClientError::Io {
        path: path.to_path_buf(),
        source,
    };
    let size = fs::metadata(path).map_err(io)?.len();
    if size > MAX_POLICY_BYTES as u64 {
        return Err(ClientError::Policy {
            path: path.to_path_buf(),
            message: format!("larger than {MAX_POLICY_BYTES} bytes"),
        });
    }
    let source = fs::read_to_string(path).map_err(io)?;
    Policy::from_yaml(&path.display().to_string(), &source).map_err(|error| ClientError::Policy {
        path: path.to_path_buf(),
        message: error.report(),
    })
}
