//! Policies: what a vendor declares about how a product is licensed.
//!
//! A policy is loaded in three stages, each of which can reject it with the file, line and column of
//! the offending node:
//!
//! 1. **parse**: YAML into the raw structures of `raw`, unknown fields rejected;
//! 2. **resolve**: names, numbers and references turned into the typed [`Policy`];
//! 3. **check**: contradictions between sections (borrowing on a standalone key, rental on a dongle
//!    the policy forbids, removal by end users of limited licenses, ...) and custom rule scripts
//!    compiled.
//!
//! Nothing runs before all three stages pass.

mod locate;
mod raw;
mod resolve;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::Duration;

pub use locate::{locate, NodePath, PathSegment, Position};
pub(crate) use resolve::plain_yaml_message;

use crate::request::RequestKind;
use crate::script::{Condition, ScriptEngine};

/// Heartbeat lease length of network license types that do not set `lease_seconds`.
pub const DEFAULT_LEASE_SECONDS: i64 = 300;

/// The current policy format version, the value of the `licet:` key.
pub const FORMAT_VERSION: u32 = 1;

/// A loaded, resolved and checked policy.
#[derive(Debug)]
pub struct Policy {
    /// The policy's identifier, from `id:`.
    pub id: String,
    /// SHA-256 of the policy source, recorded in every certificate issued under it.
    pub hash: [u8; 32],
    /// The licensed product.
    pub product: Product,
    /// Standard (client/order) or web (serial number) model.
    pub model: Model,
    /// The trial, when the product offers one.
    pub trial: Option<TrialPolicy>,
    /// How machine fingerprints are compared.
    pub fingerprint: FingerprintPolicy,
    /// The id of the salt the product's fingerprint values are hashed with
    /// ([`crate::fingerprint::salt_id`] of [`crate::fingerprint::product_salt`]), signed into every
    /// certificate's binding rule.
    pub salt_id: String,
    /// What a machine whose identity the client cannot trust gets (`fingerprint.untrusted_environment`).
    pub untrusted_environment: UntrustedEnvironment,
    /// License types by name.
    pub license_types: BTreeMap<String, LicenseType>,
    /// Whether end users may remove (deactivate) their own licenses.
    pub removal: RemovalPolicy,
    /// Limit on transfers (removal then activation elsewhere), when any.
    pub transfer: Option<TransferLimit>,
    /// Whether administrators may change expiry, features and counters of issued licenses.
    pub extension: ExtensionPolicy,
    /// Limited licenses, when enabled.
    pub limited: Option<LimitedPolicy>,
    /// Periodic validation and offline grace.
    pub validation: ValidationPolicy,
    /// Clock rollback detection.
    pub clock: ClockPolicy,
    pub(crate) rules: Vec<CustomRule>,
    pub(crate) scripts: ScriptEngine,
}

/// The licensed product.
#[derive(Debug, Clone)]
pub struct Product {
    /// Product identifier, e.g. `gstarcad`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Version, e.g. `2027`.
    pub version: String,
    /// Editions, e.g. `professional`, `standard`.
    pub editions: Vec<String>,
    /// Languages the product ships in.
    pub languages: Vec<String>,
    /// Default custom features, the first level of the features cascade.
    pub features: BTreeMap<String, bool>,
    /// Default custom counters, the first level of the counters cascade.
    pub counters: BTreeMap<String, i64>,
}

impl Product {
    /// Whether `edition` is one of the product's editions.
    pub fn has_edition(&self, edition: &str) -> bool {
        self.editions.iter().any(|e| e == edition)
    }
}

/// The licensing model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Client, Product, Order and License; features and counters cascade Product -> Order -> License.
    Standard,
    /// Product and serial number only; each serial grants a number of activations.
    Web {
        /// Activations granted per serial number, 1 to 100.
        activations_per_serial: u32,
    },
}

/// The trial.
#[derive(Debug, Clone)]
pub struct TrialPolicy {
    /// Trial length.
    pub length: Duration,
    /// Whether a machine gets the trial only once.
    pub once_per_machine: bool,
    /// Editions that may be tried; all product editions when empty.
    pub editions: Vec<String>,
    /// Fingerprint components that identify a machine on their own for trials: a machine sharing
    /// any of them (same value) with an earlier trial's machine is that machine, whatever the
    /// other components say. From `trial.strong_components`; `machine-id` and `disk` (those the
    /// fingerprint names) by default.
    pub strong_components: Vec<String>,
}

/// How machine fingerprints are compared: at least `match_at_least` of `components` must be equal.
#[derive(Debug, Clone)]
pub struct FingerprintPolicy {
    /// Component names, e.g. `machine-id`, `mac`, `cpu`, `disk`.
    pub components: Vec<String>,
    /// How many components must match.
    pub match_at_least: usize,
}

/// The fingerprint component a client adds to a trial request when it found the machine's
/// identity untrustworthy (identity files that are bind mounts, a mount, network or user
/// namespace that is not the machine's); its value is [`UNTRUSTED_ENVIRONMENT_VALUE`]. Policies
/// cannot name it as a fingerprint component.
pub const ENVIRONMENT_COMPONENT: &str = "environment";
/// The value of [`ENVIRONMENT_COMPONENT`] for an untrusted environment.
pub const UNTRUSTED_ENVIRONMENT_VALUE: &str = "untrusted";

/// What an untrusted environment gets (`fingerprint.untrusted_environment`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UntrustedEnvironment {
    /// No trial (the client does not ask, the engine refuses one asked with the environment
    /// marked untrusted); licenses work as anywhere else.
    #[default]
    NoTrial,
    /// Nothing: no trial, no activation, seat or borrow, and the start-up check denies.
    Deny,
}

impl UntrustedEnvironment {
    /// The name used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            UntrustedEnvironment::NoTrial => "no-trial",
            UntrustedEnvironment::Deny => "deny",
        }
    }
}

/// What a license type is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LicenseKind {
    /// A license key bound to one machine.
    Standalone,
    /// A license key serving a pool of seats from a network license server.
    Network,
    /// A license bound to a USB dongle present on the machine.
    StandaloneDongle,
    /// A seat pool served by a network license server while its dongle is present.
    NetworkDongle,
}

impl LicenseKind {
    /// Whether the kind serves seats from a pool.
    pub fn is_network(self) -> bool {
        matches!(self, LicenseKind::Network | LicenseKind::NetworkDongle)
    }

    /// Whether the kind is bound to a dongle.
    pub fn is_dongle(self) -> bool {
        matches!(
            self,
            LicenseKind::StandaloneDongle | LicenseKind::NetworkDongle
        )
    }

    /// The name used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            LicenseKind::Standalone => "standalone",
            LicenseKind::Network => "network",
            LicenseKind::StandaloneDongle => "standalone-dongle",
            LicenseKind::NetworkDongle => "network-dongle",
        }
    }
}

impl fmt::Display for LicenseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a request reaches the vendor: over the network or by request and response files.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Online, directly to the server.
    Online,
    /// By request and response files carried by hand.
    Manual,
}

/// A license type declared in the policy.
#[derive(Debug, Clone)]
pub struct LicenseType {
    /// The type's name, the key under `license_types:`.
    pub name: String,
    /// What the type is.
    pub kind: LicenseKind,
    /// Whether perpetual terms are allowed.
    pub perpetual: bool,
    /// Whether rental terms are allowed.
    pub rental: bool,
    /// Allowed activation methods.
    pub activation: BTreeSet<Method>,
    /// Allowed return methods.
    pub return_methods: BTreeSet<Method>,
    /// Seats of a license of this type when the license does not say.
    pub default_seats: Option<u32>,
    /// Heartbeat lease length for network seats.
    pub lease: Option<Duration>,
    /// Borrowing, when allowed.
    pub borrowing: Option<BorrowingPolicy>,
    /// How long an activation certificate of this type works offline after it is issued (the
    /// exposure after a return, too); the validation interval plus the offline grace when
    /// absent. From `offline_days`.
    pub offline: Option<Duration>,
}

/// Borrowing a network seat for offline use.
#[derive(Debug, Clone, Copy)]
pub struct BorrowingPolicy {
    /// The longest borrow.
    pub max: Duration,
    /// What giving a borrowed seat back before its end does to the pool.
    pub early_return: EarlyReturn,
}

/// What an early return of a borrowed seat does (`borrowing.early_return`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EarlyReturn {
    /// The borrow ends on the client but its seat stays counted until the borrow's end date,
    /// unless an administrator releases it: no copy of the borrowed state can exceed the pool.
    #[default]
    HoldsSeat,
    /// The seat is back in the pool at once; the returned borrow's certificate serial is recorded,
    /// and a request presenting it later is refused (`BORROW_SERIAL_RETURNED`) and stays in the
    /// audit log for administrators.
    FreesSeat,
}

impl EarlyReturn {
    /// The name used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            EarlyReturn::HoldsSeat => "holds-seat",
            EarlyReturn::FreesSeat => "frees-seat",
        }
    }
}

/// Removal (deactivation) by end users.
#[derive(Debug, Clone, Copy)]
pub struct RemovalPolicy {
    /// Whether end users may remove their own (non-limited) licenses.
    pub by_end_user: bool,
}

/// At most `max` transfers (end-user removals) per `period`.
#[derive(Debug, Clone, Copy)]
pub struct TransferLimit {
    /// Allowed transfers per period.
    pub max: u32,
    /// The sliding period.
    pub period: Duration,
}

/// Administrator extension of issued licenses.
#[derive(Debug, Clone, Copy)]
pub struct ExtensionPolicy {
    /// Whether administrators may change expiry, features and counters.
    pub enabled: bool,
}

/// Limited licenses: expiry computed from the activation date.
#[derive(Debug, Clone, Copy)]
pub struct LimitedPolicy {
    /// Default validity period from activation.
    pub validity: Duration,
    /// Snap the expiry forward to this day of the month (1 to 31, clamped to the month's length).
    pub day_of_month: Option<u32>,
    /// Whether the license carries a fixed date window starting the day before activation.
    pub fixed_window: bool,
}

/// Periodic online validation.
#[derive(Debug, Clone, Copy)]
pub struct ValidationPolicy {
    /// How often the client validates online.
    pub interval: Duration,
    /// How long past the interval the client may run without a successful validation.
    pub offline_grace: Duration,
}

/// Clock rollback detection.
#[derive(Debug, Clone, Copy)]
pub struct ClockPolicy {
    /// How far the clock may move back before a request is refused.
    pub rollback_tolerance: Duration,
}

/// Whether a custom rule denies when its condition holds or when it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuleEffect {
    DenyWhen,
    Require,
}

/// A vendor rule with a Rhai condition, compiled at load.
#[derive(Debug)]
pub(crate) struct CustomRule {
    pub id: String,
    pub on: BTreeSet<RequestKind>,
    pub effect: RuleEffect,
    pub condition: Condition,
    pub message: String,
}

/// One problem found in a policy, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDiagnostic {
    /// The file name as given to the loader.
    pub file: String,
    /// One-based line.
    pub line: usize,
    /// One-based column.
    pub column: usize,
    /// Path of the offending node, e.g. `license_types.standalone-key.borrowing`.
    pub path: String,
    /// A plain sentence.
    pub message: String,
}

impl fmt::Display for PolicyDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Why a policy was rejected.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file is not valid YAML or does not have the policy's shape.
    #[error("{0}")]
    Parse(PolicyDiagnostic),
    /// The file parsed but says something invalid or contradictory.
    #[error("{}", DiagnosticList(.0))]
    Invalid(Vec<PolicyDiagnostic>),
}

impl PolicyError {
    /// Every diagnostic, in file order.
    pub fn diagnostics(&self) -> Vec<PolicyDiagnostic> {
        match self {
            PolicyError::Parse(diagnostic) => vec![diagnostic.clone()],
            PolicyError::Invalid(diagnostics) => diagnostics.clone(),
        }
    }
}

struct DiagnosticList<'a>(&'a [PolicyDiagnostic]);

impl fmt::Display for DiagnosticList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, diagnostic) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

/// The largest policy file accepted, in bytes.
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;

impl Policy {
    /// Loads a policy from YAML source. `file` names the source in diagnostics.
    pub fn from_yaml(file: &str, source: &str) -> Result<Policy, PolicyError> {
        resolve::load(file, source)
    }

    /// The license type called `name`.
    pub fn license_type(&self, name: &str) -> Option<&LicenseType> {
        self.license_types.get(name)
    }

    /// How many custom rules the policy has.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The rule a fingerprint binding issued under this policy is matched with: the fingerprint
    /// components (ascending), how many must match, and the salt id.
    pub fn binding_rule(&self) -> crate::certificate::BindingRule {
        let mut components = self.fingerprint.components.clone();
        components.sort();
        components.dedup();
        crate::certificate::BindingRule {
            components,
            match_at_least: u32::try_from(self.fingerprint.match_at_least).unwrap_or(u32::MAX),
            salt_id: self.salt_id.clone(),
        }
    }

    /// How long an activation certificate of `license_type` works offline after it is issued:
    /// the type's `offline_days`, else the validation interval plus the offline grace.
    pub fn offline_period(&self, license_type: &LicenseType) -> Duration {
        license_type
            .offline
            .unwrap_or(self.validation.interval + self.validation.offline_grace)
    }
}
