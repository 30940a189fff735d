//! Stages 2 and 3 of loading: raw structures to a typed, checked [`Policy`].

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;

use super::locate::{locate, NodePath};
use super::raw::{
    RawEarlyReturn, RawKind, RawLicenseType, RawMethod, RawModel, RawPolicy, RawRule, RawTermKind,
    RawUntrustedEnvironment,
};
use super::{
    BorrowingPolicy, ClockPolicy, CustomRule, EarlyReturn, ExtensionPolicy, FingerprintPolicy,
    LicenseKind, LicenseType, LimitedPolicy, Method, Model, Policy, PolicyDiagnostic, PolicyError,
    Product, RemovalPolicy, RuleEffect, TransferLimit, TrialPolicy, UntrustedEnvironment,
    ValidationPolicy, DEFAULT_LEASE_SECONDS, FORMAT_VERSION, MAX_POLICY_BYTES,
};

use crate::certificate::policy_hash;
use crate::fingerprint::{product_salt, salt_id};
use crate::request::RequestKind;
use crate::script::ScriptEngine;

/// The most activations one web serial may grant (a volume serial for a whole site).
const MAX_ACTIVATIONS_PER_SERIAL: i64 = 100_000;

const DEFAULT_COMPONENTS: [&str; 4] = ["machine-id", "mac", "cpu", "disk"];
/// Components that identify a machine on their own for trials, unless the policy says otherwise.
const DEFAULT_STRONG_COMPONENTS: [&str; 2] = ["machine-id", "disk"];
const MAX_SEATS: i64 = 100_000;

pub(super) fn load(file: &str, source: &str) -> Result<Policy, PolicyError> {
    if source.len() > MAX_POLICY_BYTES {
        return Err(PolicyError::Parse(PolicyDiagnostic {
            file: file.to_owned(),
            line: 1,
            column: 1,
            path: String::new(),
            message: format!("policy file is larger than {MAX_POLICY_BYTES} bytes"),
        }));
    }
    let raw: RawPolicy = serde_yaml::from_str(source).map_err(|error| {
        let (line, column) = error
            .location()
            .map_or((1, 1), |location| (location.line(), location.column()));
        PolicyError::Parse(PolicyDiagnostic {
            file: file.to_owned(),
            line,
            column,
            path: String::new(),
            message: plain_yaml_message(&error),
        })
    })?;
    let mut resolver = Resolver::default();
    let policy = resolver.policy(raw, source);
    match policy {
        Some(policy) if resolver.problems.is_empty() => Ok(policy),
        _ => {
            let mut diagnostics: Vec<PolicyDiagnostic> = resolver
                .problems
                .into_iter()
                .map(|(path, message)| {
                    let position = locate(source, &path);
                    PolicyDiagnostic {
                        file: file.to_owned(),
                        line: position.line,
                        column: position.column,
                        path: path.to_string(),
                        message,
                    }
                })
                .collect();
            diagnostics.sort_by_key(|d| (d.line, d.column));
            Err(PolicyError::Invalid(diagnostics))
        }
    }
}

/// The YAML library writes " at line L column C" into its messages; that position is reported
/// separately, so it is dropped from the message (other positions, such as where an unclosed
/// construct started, are kept).
/// Whether `value` is `[a-z0-9][a-z0-9-]*` of at most 64 characters: the form of every policy
/// identifier that becomes part of a file name (product, policy, edition and license type).
pub(crate) fn is_identifier(value: &str) -> bool {
    let mut bytes = value.bytes();
    value.len() <= 64
        && bytes
            .next()
            .is_some_and(|first| first.is_ascii_lowercase() || first.is_ascii_digit())
        && bytes.all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

pub(crate) fn plain_yaml_message(error: &serde_yaml::Error) -> String {
    let message = error.to_string();
    let Some(location) = error.location() else {
        return message;
    };
    let repeated = format!(" at line {} column {}", location.line(), location.column());
    message.replacen(&repeated, "", 1)
}

#[derive(Default)]
struct Resolver {
    problems: Vec<(NodePath, String)>,
}

impl Resolver {
    fn problem(&mut self, path: NodePath, message: impl Into<String>) {
        self.problems.push((path, message.into()));
    }

    /// An integer in `range`, or a problem at `path`.
    fn bounded(
        &mut self,
        path: NodePath,
        what: &str,
        value: i64,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        if (min..=max).contains(&value) {
            Some(value)
        } else {
            self.problem(
                path,
                format!("{what} must be between {min} and {max}, not {value}"),
            );
            None
        }
    }

    fn policy(&mut self, raw: RawPolicy, source: &str) -> Option<Policy> {
        let root = NodePath::root();
        if raw.licet != FORMAT_VERSION {
            self.problem(
                root.key("licet"),
                format!(
                    "unsupported policy format version `{}`, expected {FORMAT_VERSION}",
                    raw.licet
                ),
            );
        }
        if raw.id.trim().is_empty() {
            self.problem(root.key("id"), "policy id must not be empty");
        } else {
            self.identifier(root.key("id"), "policy id", &raw.id);
        }
        let _ = raw.description;
        let product = self.product(&raw, &root);
        let model = self.model(&raw, &root);
        let fingerprint = self.fingerprint(&raw, &root);
        let trial = self.trial(&raw, &product, fingerprint.as_ref(), &root);
        let rental_on_dongles = raw
            .terms
            .as_ref()
            .and_then(|terms| terms.rental.as_ref())
            .is_none_or(|rental| rental.on_dongles);
        let mut license_types = BTreeMap::new();
        if raw.license_types.0.is_empty() {
            self.problem(
                root.key("license_types"),
                "a policy needs at least one license type",
            );
        }
        for (name, raw_type) in &raw.license_types.0 {
            let path = root.key("license_types").key(name);
            if let Some(license_type) = self.license_type(name, raw_type, rental_on_dongles, &path)
            {
                license_types.insert(name.clone(), license_type);
            }
        }
        let removal = RemovalPolicy {
            by_end_user: raw
                .removal
                .as_ref()
                .is_some_and(|removal| removal.by_end_user),
        };
        let limited = self.limited(&raw, &root);
        if limited.is_some() && removal.by_end_user {
            self.problem(
                root.key("removal").key("by_end_user"),
                "end users cannot remove limited licenses: set `removal.by_end_user: false` or remove `limited`",
            );
        }
        let transfer = self.transfer(&raw, removal, &root);
        let extension = ExtensionPolicy {
            enabled: raw
                .extension
                .as_ref()
                .is_none_or(|extension| extension.enabled),
        };
        let validation = self.validation(&raw, &root);
        if let Some(validation) = &validation {
            for (name, license_type) in &license_types {
                if license_type
                    .offline
                    .is_some_and(|offline| offline < validation.interval)
                {
                    self.problem(
                        root.key("license_types").key(name).key("offline_days"),
                        format!(
                            "`{name}` certificates must work offline at least as long as the validation interval ({} hours)",
                            validation.interval.num_hours()
                        ),
                    );
                }
            }
        }
        let clock = self.clock(&raw, &root);
        let scripts = ScriptEngine::default();
        let rules = self.rules(&raw.rules, &scripts, &root);
        let product = product?;
        Some(Policy {
            id: raw.id,
            hash: policy_hash(source.as_bytes()),
            salt_id: salt_id(&product_salt(&product.id)),
            untrusted_environment: match raw
                .fingerprint
                .as_ref()
                .and_then(|fingerprint| fingerprint.untrusted_environment)
            {
                None | Some(RawUntrustedEnvironment::NoTrial) => UntrustedEnvironment::NoTrial,
                Some(RawUntrustedEnvironment::Deny) => UntrustedEnvironment::Deny,
            },
            product,
            model: model?,
            trial,
            fingerprint: fingerprint?,
            license_types,
            removal,
            transfer,
            extension,
            limited,
            validation: validation?,
            clock: clock?,
            rules,
            scripts,
        })
    }

    fn product(&mut self, raw: &RawPolicy, root: &NodePath) -> Option<Product> {
        let path = root.key("product");
        let product = &raw.product;
        for (field, value) in [
            ("id", &product.id),
            ("name", &product.name),
            ("version", &product.version),
        ] {
            if value.trim().is_empty() {
                self.problem(
                    path.key(field),
                    format!("product {field} must not be empty"),
                );
            }
        }
        if !product.id.trim().is_empty() {
            self.identifier(path.key("id"), "product id", &product.id);
        }
        if product.editions.is_empty() {
            self.problem(path.key("editions"), "a product needs at least one edition");
        }
        for (index, edition) in product.editions.iter().enumerate() {
            if !edition.trim().is_empty() {
                self.identifier(path.key("editions").index(index), "edition", edition);
            }
        }
        self.unique(&path.key("editions"), "edition", &product.editions);
        for name in product.features.0.keys().chain(product.counters.0.keys()) {
            if name.trim().is_empty() {
                self.problem(path.clone(), "feature and counter names must not be empty");
            }
        }
        self.unique(&path.key("languages"), "language", &product.languages);
        Some(Product {
            id: product.id.clone(),
            name: product.name.clone(),
            version: product.version.clone(),
            editions: product.editions.clone(),
            languages: product.languages.clone(),
            features: product.features.0.clone(),
            counters: product.counters.0.clone(),
        })
    }

    /// Reports `value` unless it is an identifier that is safe in a file name:
    /// `[a-z0-9][a-z0-9-]*`, at most 64 characters.
    fn identifier(&mut self, path: NodePath, what: &str, value: &str) {
        if !is_identifier(value) {
            self.problem(
                path,
                format!(
                    "{what} `{value}` must be 1 to 64 lower-case letters, digits and `-`, starting with a letter or digit"
                ),
            );
        }
    }

    fn unique(&mut self, path: &NodePath, what: &str, values: &[String]) {
        let mut seen = BTreeSet::new();
        for (index, value) in values.iter().enumerate() {
            if value.trim().is_empty() {
                self.problem(path.index(index), format!("{what} name must not be empty"));
            } else if !seen.insert(value) {
                self.problem(
                    path.index(index),
                    format!("{what} `{value}` is listed twice"),
                );
            }
        }
    }

    fn model(&mut self, raw: &RawPolicy, root: &NodePath) -> Option<Model> {
        let path = root.key("activations_per_serial");
        match (raw.model, raw.activations_per_serial) {
            (RawModel::Standard, None) => Some(Model::Standard),
            (RawModel::Standard, Some(_)) => {
                self.problem(
                    path,
                    "`activations_per_serial` applies only to the web model",
                );
                None
            }
            (RawModel::Web, count) => {
                let count = self.bounded(
                    path,
                    "activations per serial",
                    count.unwrap_or(1),
                    1,
                    MAX_ACTIVATIONS_PER_SERIAL,
                )?;
                Some(Model::Web {
                    activations_per_serial: u32::try_from(count).ok()?,
                })
            }
        }
    }

    fn trial(
        &mut self,
        raw: &RawPolicy,
        product: &Option<Product>,
        fingerprint: Option<&FingerprintPolicy>,
        root: &NodePath,
    ) -> Option<TrialPolicy> {
        let trial = raw.trial.as_ref()?;
        let path = root.key("trial");
        let days = self.bounded(path.key("days"), "trial days", trial.days, 1, 3650);
        let editions = trial.editions.clone().unwrap_or_default();
        if let Some(product) = product {
            for (index, edition) in editions.iter().enumerate() {
                if !product.has_edition(edition) {
                    self.problem(
                        path.key("editions").index(index),
                        format!("trial edition `{edition}` is not an edition of the product"),
                    );
                }
            }
        }
        let components = fingerprint.map(|fingerprint| fingerprint.components.as_slice());
        let strong_components = match &trial.strong_components {
            None => DEFAULT_STRONG_COMPONENTS
                .iter()
                .filter(|name| components.is_some_and(|all| all.iter().any(|c| c == *name)))
                .map(|name| (*name).to_owned())
                .collect(),
            Some(strong) => {
                let strong_path = path.key("strong_components");
                self.unique(&strong_path, "strong component", strong);
                if let Some(all) = components {
                    for (index, name) in strong.iter().enumerate() {
                        if !name.trim().is_empty() && !all.contains(name) {
                            self.problem(
                                strong_path.index(index),
                                format!(
                                    "strong component `{name}` is not a fingerprint component ({})",
                                    all.join(", ")
                                ),
                            );
                        }
                    }
                }
                strong.clone()
            }
        };
        Some(TrialPolicy {
            length: Duration::days(days?),
            once_per_machine: trial.once_per_machine,
            editions,
            strong_components,
        })
    }

    fn fingerprint(&mut self, raw: &RawPolicy, root: &NodePath) -> Option<FingerprintPolicy> {
        let Some(fingerprint) = &raw.fingerprint else {
            return Some(FingerprintPolicy {
                components: DEFAULT_COMPONENTS.map(String::from).to_vec(),
                match_at_least: DEFAULT_COMPONENTS.len() - 1,
            });
        };
        let path = root.key("fingerprint");
        if fingerprint.components.is_empty() {
            self.problem(
                path.key("components"),
                "a fingerprint needs at least one component",
            );
            return None;
        }
        self.unique(
            &path.key("components"),
            "component",
            &fingerprint.components,
        );
        if let Some(index) = fingerprint
            .components
            .iter()
            .position(|name| name == super::ENVIRONMENT_COMPONENT)
        {
            self.problem(
                path.key("components").index(index),
                format!(
                    "`{}` is reserved for the client's environment report and cannot be a fingerprint component",
                    super::ENVIRONMENT_COMPONENT
                ),
            );
        }
        let count = i64::try_from(fingerprint.components.len()).ok()?;
        let at_least = self.bounded(
            path.key("match_at_least"),
            "components to match",
            fingerprint.match_at_least,
            1,
            count,
        )?;
        Some(FingerprintPolicy {
            components: fingerprint.components.clone(),
            match_at_least: usize::try_from(at_least).ok()?,
        })
    }

    fn license_type(
        &mut self,
        name: &str,
        raw: &RawLicenseType,
        rental_on_dongles: bool,
        path: &NodePath,
    ) -> Option<LicenseType> {
        let kind = match raw.kind {
            RawKind::Standalone => LicenseKind::Standalone,
            RawKind::Network => LicenseKind::Network,
            RawKind::StandaloneDongle => LicenseKind::StandaloneDongle,
            RawKind::NetworkDongle => LicenseKind::NetworkDongle,
        };
        let mut ok = true;
        if name.trim().is_empty() {
            self.problem(path.clone(), "license type name must not be empty");
            ok = false;
        } else if !is_identifier(name) {
            self.identifier(path.clone(), "license type name", name);
            ok = false;
        }
        if raw.terms.is_empty() {
            self.problem(
                path.key("terms"),
                "a license type needs at least one term (perpetual or rental)",
            );
            ok = false;
        }
        let mut perpetual = false;
        let mut rental = false;
        for (index, term) in raw.terms.iter().enumerate() {
            let seen = match term {
                RawTermKind::Perpetual => std::mem::replace(&mut perpetual, true),
                RawTermKind::Rental => std::mem::replace(&mut rental, true),
            };
            if seen {
                self.problem(path.key("terms").index(index), "term is listed twice");
                ok = false;
            }
            if *term == RawTermKind::Rental && kind.is_dongle() && !rental_on_dongles {
                self.problem(
                    path.key("terms").index(index),
                    format!("rental terms are not allowed on dongles (`terms.rental.on_dongles: false`), but `{name}` is a {kind}"),
                );
                ok = false;
            }
        }
        let activation = self.methods(kind, raw.activation.as_deref(), &path.key("activation"));
        let return_methods = self.methods(kind, raw.return_methods.as_deref(), &path.key("return"));
        let default_seats = match raw.default_seats {
            Some(_) if !kind.is_network() => {
                self.problem(
                    path.key("default_seats"),
                    format!("seats apply only to network licenses, but `{name}` is {kind}"),
                );
                ok = false;
                None
            }
            Some(seats) => self
                .bounded(
                    path.key("default_seats"),
                    "default seats",
                    seats,
                    1,
                    MAX_SEATS,
                )
                .and_then(|seats| u32::try_from(seats).ok()),
            None => None,
        };
        let lease = match raw.lease_seconds {
            Some(_) if !kind.is_network() => {
                self.problem(
                    path.key("lease_seconds"),
                    format!(
                        "heartbeat leases apply only to network licenses, but `{name}` is {kind}"
                    ),
                );
                ok = false;
                None
            }
            Some(seconds) => self
                .bounded(
                    path.key("lease_seconds"),
                    "lease seconds",
                    seconds,
                    10,
                    86_400,
                )
                .map(Duration::seconds),
            None if kind.is_network() => Some(Duration::seconds(DEFAULT_LEASE_SECONDS)),
            None => None,
        };
        let borrowing = match &raw.borrowing {
            Some(_) if kind != LicenseKind::Network => {
                self.problem(
                    path.key("borrowing"),
                    format!("borrowing is only for network license keys, but `{name}` is {kind}"),
                );
                ok = false;
                None
            }
            Some(borrowing) => self
                .bounded(
                    path.key("borrowing").key("max_days"),
                    "borrowing max days",
                    borrowing.max_days,
                    1,
                    365,
                )
                .map(|days| BorrowingPolicy {
                    max: Duration::days(days),
                    early_return: match borrowing.early_return {
                        None | Some(RawEarlyReturn::HoldsSeat) => EarlyReturn::HoldsSeat,
                        Some(RawEarlyReturn::FreesSeat) => EarlyReturn::FreesSeat,
                    },
                }),
            None => None,
        };
        let offline = match raw.offline_days {
            Some(_) if kind == LicenseKind::NetworkDongle => {
                self.problem(
                    path.key("offline_days"),
                    format!(
                        "`{name}` is a network-dongle type, whose seats are never activated offline"
                    ),
                );
                ok = false;
                None
            }
            Some(days) => self
                .bounded(path.key("offline_days"), "offline days", days, 1, 365)
                .map(Duration::days),
            None => None,
        };
        let (Some(activation), Some(return_methods)) = (activation, return_methods) else {
            return None;
        };
        ok.then(|| LicenseType {
            name: name.to_owned(),
            kind,
            perpetual,
            rental,
            activation,
            return_methods,
            default_seats,
            lease,
            borrowing,
            offline,
        })
    }

    fn methods(
        &mut self,
        kind: LicenseKind,
        raw: Option<&[RawMethod]>,
        path: &NodePath,
    ) -> Option<BTreeSet<Method>> {
        let Some(raw) = raw else {
            return Some(if kind.is_dongle() {
                BTreeSet::new()
            } else {
                BTreeSet::from([Method::Online, Method::Manual])
            });
        };
        if kind.is_dongle() {
            self.problem(
                path.clone(),
                format!(
                    "{kind} licenses are activated by the dongle itself, not online or manually"
                ),
            );
            return None;
        }
        let mut methods = BTreeSet::new();
        for (index, method) in raw.iter().enumerate() {
            let method = match method {
                RawMethod::Online => Method::Online,
                RawMethod::Manual => Method::Manual,
            };
            if !methods.insert(method) {
                self.problem(path.index(index), "method is listed twice");
            }
        }
        Some(methods)
    }

    fn limited(&mut self, raw: &RawPolicy, root: &NodePath) -> Option<LimitedPolicy> {
        let limited = raw.limited.as_ref()?;
        let path = root.key("limited");
        let validity = self.bounded(
            path.key("validity_days"),
            "validity days",
            limited.validity_days,
            1,
            36_500,
        );
        let day_of_month = match limited.day_of_month {
            Some(day) => {
                Some(self.bounded(path.key("day_of_month"), "day of month", day, 1, 31)?)
            }
            None => None,
        };
        Some(LimitedPolicy {
            validity: Duration::days(validity?),
            day_of_month: day_of_month.and_then(|day| u32::try_from(day).ok()),
            fixed_window: limited.fixed_window,
        })
    }

    fn transfer(
        &mut self,
        raw: &RawPolicy,
        removal: RemovalPolicy,
        root: &NodePath,
    ) -> Option<TransferLimit> {
        let transfer = raw.transfer.as_ref()?;
        let path = root.key("transfer");
        if !removal.by_end_user {
            self.problem(
                path.clone(),
                "a transfer is a removal then an activation, so transfer limits need `removal.by_end_user: true`",
            );
        }
        let max = self.bounded(
            path.key("max"),
            "transfers per period",
            transfer.max,
            1,
            1000,
        );
        let days = self.bounded(
            path.key("period_days"),
            "transfer period days",
            transfer.period_days,
            1,
            3650,
        );
        Some(TransferLimit {
            max: u32::try_from(max?).ok()?,
            period: Duration::days(days?),
        })
    }

    fn validation(&mut self, raw: &RawPolicy, root: &NodePath) -> Option<ValidationPolicy> {
        let Some(validation) = &raw.validation else {
            return Some(ValidationPolicy {
                interval: Duration::hours(24),
                offline_grace: Duration::days(7),
            });
        };
        let path = root.key("validation");
        let hours = self.bounded(
            path.key("interval_hours"),
            "validation interval hours",
            validation.interval_hours,
            1,
            24 * 365,
        );
        let grace = self.bounded(
            path.key("offline_grace_days"),
            "offline grace days",
            validation.offline_grace_days,
            0,
            365,
        );
        Some(ValidationPolicy {
            interval: Duration::hours(hours?),
            offline_grace: Duration::days(grace?),
        })
    }

    fn clock(&mut self, raw: &RawPolicy, root: &NodePath) -> Option<ClockPolicy> {
        let minutes = match &raw.clock {
            Some(clock) => self.bounded(
                root.key("clock").key("rollback_tolerance_minutes"),
                "rollback tolerance minutes",
                clock.rollback_tolerance_minutes,
                0,
                24 * 60,
            )?,
            None => 60,
        };
        Some(ClockPolicy {
            rollback_tolerance: Duration::minutes(minutes),
        })
    }

    fn rules(
        &mut self,
        raw: &[RawRule],
        scripts: &ScriptEngine,
        root: &NodePath,
    ) -> Vec<CustomRule> {
        let mut ids = BTreeSet::new();
        let mut rules = Vec::new();
        for (index, rule) in raw.iter().enumerate() {
            let path = root.key("rules").index(index);
            if rule.id.trim().is_empty() {
                self.problem(path.key("id"), "rule id must not be empty");
            } else if !ids.insert(rule.id.as_str()) {
                self.problem(
                    path.key("id"),
                    format!("rule id `{}` is used twice", rule.id),
                );
            }
            if rule.message.trim().is_empty() {
                self.problem(path.key("message"), "rule message must not be empty");
            }
            let mut on = BTreeSet::new();
            if rule.on.is_empty() {
                self.problem(
                    path.key("on"),
                    "a rule needs at least one request kind in `on`",
                );
            }
            for (position, name) in rule.on.iter().enumerate() {
                match RequestKind::from_name(name) {
                    Some(kind) => {
                        if !on.insert(kind) {
                            self.problem(
                                path.key("on").index(position),
                                format!("request `{name}` is listed twice"),
                            );
                        }
                    }
                    None => {
                        let known: Vec<&str> =
                            RequestKind::ALL.iter().map(|kind| kind.as_str()).collect();
                        self.problem(
                            path.key("on").index(position),
                            format!(
                                "unknown request `{name}`, expected one of {}",
                                known.join(", ")
                            ),
                        );
                    }
                }
            }
            let (effect, source, field) = match (&rule.deny_when, &rule.require) {
                (Some(source), None) => (RuleEffect::DenyWhen, source, "deny_when"),
                (None, Some(source)) => (RuleEffect::Require, source, "require"),
                _ => {
                    self.problem(
                        path.clone(),
                        "a rule needs exactly one of `deny_when` or `require`",
                    );
                    continue;
                }
            };
            match scripts.compile(source) {
                Ok(condition) => rules.push(CustomRule {
                    id: rule.id.clone(),
                    on,
                    effect,
                    condition,
                    message: rule.message.clone(),
                }),
                Err(message) => self.problem(path.key(field), message),
            }
        }
        rules
    }
}
