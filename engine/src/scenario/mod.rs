//! Scenario tests for policies: a timeline of requests with the expected decision at each step.
//!
//! A scenario file names a policy, the machines, licenses and orders that exist at the start, and a
//! list of steps. Each step happens at a time (`at:` absolute, `after:` relative to the previous
//! step, or the previous step's time), is made by an actor (`as:`), does one request (`do:`) and
//! states the expected code (`expect:`). [`run`] plays the steps against an in-memory [`Ledger`]
//! that applies each decision's effects the way a host would, so later steps see earlier ones.
//!
//! See `docs/scenarios.md` for the file format.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use crate::certificate::CertificateClaims;
use crate::decide;
use crate::decision::{Code, Decision, Effect};
use crate::fingerprint::Fingerprint;
use crate::offline::{check_certificate, LocalFacts};
use crate::policy::{Method, Policy};
use crate::request::{Action, Actor, ProductRef, Request};
use crate::state::{
    Activation, License, LicenseStatus, LimitedTerms, Order, ReturnedCertificate, SeatLease, State,
    Term, TrialRecord,
};

/// The largest scenario file accepted, in bytes.
pub const MAX_SCENARIO_BYTES: usize = 1024 * 1024;

/// The machine name whose dongle serves network dongle licenses.
pub const SERVER_MACHINE: &str = "server";

/// A parsed scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Path of the policy file, relative to the scenario file.
    pub policy: String,
    /// What the scenario shows.
    #[serde(default)]
    pub description: Option<String>,
    /// When the first step happens, unless it says otherwise.
    pub start: DateTime<Utc>,
    /// Machines by name: component name -> value.
    #[serde(default)]
    pub machines: BTreeMap<String, BTreeMap<String, String>>,
    /// Licenses that exist at the start.
    #[serde(default)]
    pub licenses: Vec<ScenarioLicense>,
    /// Orders that exist at the start (standard model).
    #[serde(default)]
    pub orders: Vec<Order>,
    /// Dongles plugged in at the start: machine name -> dongle serial.
    #[serde(default)]
    pub dongles: BTreeMap<String, String>,
    /// The timeline.
    pub steps: Vec<Step>,
}

/// A license as written in a scenario; product and version default to the policy's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioLicense {
    /// The key.
    pub key: String,
    /// License type name.
    pub license_type: String,
    /// Edition.
    pub edition: String,
    /// Version; the policy's product version when absent.
    #[serde(default)]
    pub version: Option<String>,
    /// Product; the policy's product when absent.
    #[serde(default)]
    pub product: Option<String>,
    /// Perpetual or rental: `perpetual` or `{ rental: { ends_at: ... } }`.
    #[serde(default, with = "serde_yaml::with::singleton_map")]
    pub term: Term,
    /// Seats of a network license.
    #[serde(default)]
    pub seats: Option<u32>,
    /// License-level features.
    #[serde(default)]
    pub features: BTreeMap<String, bool>,
    /// License-level counters.
    #[serde(default)]
    pub counters: BTreeMap<String, i64>,
    /// Dongle serial of a dongle license.
    #[serde(default)]
    pub dongle: Option<String>,
    /// Owning client (standard model).
    #[serde(default)]
    pub client: Option<String>,
    /// Order the license belongs to (standard model).
    #[serde(default)]
    pub order: Option<String>,
}

/// One step of the timeline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Absolute time of the step.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    /// Time after the previous step, like `30d`, `12h`, `90m`, `15s`.
    #[serde(default)]
    pub after: Option<String>,
    /// Who acts: `end-user` (default), `administrator`, or `client:ID`.
    #[serde(default, rename = "as")]
    pub actor: Option<String>,
    /// What is done.
    #[serde(rename = "do", with = "serde_yaml::with::singleton_map")]
    pub action: StepAction,
    /// The expected outcome; required for requests, absent for changes to the environment.
    #[serde(default)]
    pub expect: Option<Expectation>,
}

/// What a step does: an engine request, or a change to the simulated environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum StepAction {
    /// Start the trial.
    StartTrial {
        /// Machine name.
        machine: String,
        /// Edition; the product's first edition when absent.
        #[serde(default)]
        edition: Option<String>,
    },
    /// Validate the trial.
    ValidateTrial {
        /// Machine name.
        machine: String,
    },
    /// Activate a key.
    Activate {
        /// Key.
        key: String,
        /// Machine name.
        machine: String,
        /// Edition asked for; the license's edition when absent.
        #[serde(default)]
        edition: Option<String>,
        /// Version asked for; the policy's version when absent.
        #[serde(default)]
        version: Option<String>,
        /// Online (default) or manual.
        #[serde(default)]
        method: Option<Method>,
    },
    /// Validate an activation.
    Validate {
        /// Key.
        key: String,
        /// Machine name.
        machine: String,
        /// The certificate serial presented; the one of the certificate the machine holds for the
        /// key when absent.
        #[serde(default)]
        serial: Option<String>,
    },
    /// Take a network seat.
    Checkout {
        /// Key.
        key: String,
        /// Machine name.
        machine: String,
        /// Session; the machine name when absent.
        #[serde(default)]
        session: Option<String>,
        /// Edition asked for; the license's edition when absent.
        #[serde(default)]
        edition: Option<String>,
    },
    /// Renew a seat lease.
    Heartbeat {
        /// Key.
        key: String,
        /// Session.
        session: String,
    },
    /// Release a seat.
    Release {
        /// Key.
        key: String,
        /// Session.
        session: String,
    },
    /// Borrow a seat.
    Borrow {
        /// Key.
        key: String,
        /// Machine name.
        machine: String,
        /// Session; the machine name when absent.
        #[serde(default)]
        session: Option<String>,
        /// Borrow for this many days from the step's time.
        #[serde(default)]
        days: Option<i64>,
        /// Or until this time.
        #[serde(default)]
        until: Option<DateTime<Utc>>,
    },
    /// Return a borrowed seat early.
    ReturnBorrowed {
        /// Key.
        key: String,
        /// Session.
        session: String,
        /// The machine giving the seat back; the machine named like the session when absent.
        #[serde(default)]
        machine: Option<String>,
        /// The certificate serial presented; the one of the certificate the machine holds for the
        /// key when absent.
        #[serde(default)]
        serial: Option<String>,
    },
    /// Return (remove) an activation.
    Return {
        /// Key.
        key: String,
        /// Machine name.
        machine: String,
        /// Online (default) or manual.
        #[serde(default)]
        method: Option<Method>,
        /// The certificate serial presented; the one of the certificate the machine holds for the
        /// key when absent.
        #[serde(default)]
        serial: Option<String>,
    },
    /// Move an activation to another machine.
    Transfer {
        /// Key.
        key: String,
        /// Machine giving up the license.
        from: String,
        /// Machine receiving it.
        to: String,
    },
    /// Change expiry, features or counters (administrators).
    Extend {
        /// Key.
        key: String,
        /// New expiry.
        #[serde(default)]
        expires_at: Option<DateTime<Utc>>,
        /// Features to set.
        #[serde(default)]
        features: BTreeMap<String, bool>,
        /// Counters to set.
        #[serde(default)]
        counters: BTreeMap<String, i64>,
        /// New seat count of a network license.
        #[serde(default)]
        seats: Option<u32>,
    },
    /// Revoke a license (administrators).
    Revoke {
        /// Key.
        key: String,
    },
    /// Check offline the last certificate the machine received for the key (or its trial).
    OfflineCheck {
        /// Machine name.
        machine: String,
        /// Key; the trial certificate when absent.
        #[serde(default)]
        key: Option<String>,
    },
    /// Plug a dongle into a machine.
    PlugDongle {
        /// Machine name.
        machine: String,
        /// Dongle serial.
        dongle: String,
    },
    /// Unplug the dongle of a machine.
    UnplugDongle {
        /// Machine name.
        machine: String,
    },
    /// Replace some hardware components of a machine (a new network card, a new disk).
    ChangeHardware {
        /// Machine name.
        machine: String,
        /// Components to set.
        set: BTreeMap<String, String>,
    },
    /// Save a copy of the certificates a machine holds (the end user copies its state).
    Backup {
        /// Machine name.
        machine: String,
    },
    /// Put back the certificates of the machine's last backup (the end user restores its state).
    Restore {
        /// Machine name.
        machine: String,
    },
}

/// The expected outcome of a step.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Expectation {
    /// Just the code.
    Code(String),
    /// The code and facts about the decision.
    Detailed(DetailedExpectation),
}

/// The code and facts about a decision.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailedExpectation {
    /// Expected code.
    pub code: String,
    /// Expected deciding rule.
    #[serde(default)]
    pub rule: Option<String>,
    /// Expected expiry of the issued certificate (`never` for none).
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Expected start of the issued certificate's validity.
    #[serde(default)]
    pub not_before: Option<DateTime<Utc>>,
    /// Expected features of the issued certificate (only these are compared).
    #[serde(default)]
    pub features: BTreeMap<String, bool>,
    /// Expected counters of the issued certificate (only these are compared).
    #[serde(default)]
    pub counters: BTreeMap<String, i64>,
}

/// Why a scenario could not run.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The scenario file is not valid.
    #[error("{file}:{line}:{column}: {message}")]
    Parse {
        /// File name.
        file: String,
        /// One-based line.
        line: usize,
        /// One-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A step refers to something the scenario does not define.
    #[error("step {step}: {message}")]
    Step {
        /// One-based step number.
        step: usize,
        /// What is wrong.
        message: String,
    },
}

/// The outcome of one step.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// One-based step number.
    pub step: usize,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The request or environment change, e.g. `activate PRO-1 on office-pc`.
    pub summary: String,
    /// The decision, for requests.
    pub decision: Option<Decision>,
    /// Mismatches between the expectation and the decision; empty when the step passed.
    pub failures: Vec<String>,
}

impl StepReport {
    /// Whether the step met its expectation.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The outcome of a scenario.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    /// Every step, in order.
    pub steps: Vec<StepReport>,
}

impl ScenarioReport {
    /// Whether every step passed.
    pub fn passed(&self) -> bool {
        self.steps.iter().all(StepReport::passed)
    }
}

/// Parses a scenario file. `file` names it in errors.
pub fn parse(file: &str, source: &str) -> Result<Scenario, ScenarioError> {
    if source.len() > MAX_SCENARIO_BYTES {
        return Err(ScenarioError::Parse {
            file: file.to_owned(),
            line: 1,
            column: 1,
            message: format!("scenario file is larger than {MAX_SCENARIO_BYTES} bytes"),
        });
    }
    serde_yaml::from_str(source).map_err(|error| {
        let (line, column) = error
            .location()
            .map_or((1, 1), |location| (location.line(), location.column()));
        let message = crate::policy::plain_yaml_message(&error);
        ScenarioError::Parse {
            file: file.to_owned(),
            line,
            column,
            message,
        }
    })
}

/// Plays a scenario against a policy.
pub fn run(policy: &Policy, scenario: &Scenario) -> Result<ScenarioReport, ScenarioError> {
    let mut ledger = Ledger::new(policy, scenario)?;
    let mut now = scenario.start;
    let mut steps = Vec::with_capacity(scenario.steps.len());
    for (index, step) in scenario.steps.iter().enumerate() {
        let number = index + 1;
        let step_error = |message: String| ScenarioError::Step {
            step: number,
            message,
        };
        now = match (&step.at, &step.after) {
            (Some(_), Some(_)) => return Err(step_error("give `at` or `after`, not both".into())),
            (Some(at), None) => *at,
            (None, Some(after)) => now + parse_duration(after).map_err(step_error)?,
            (None, None) => now,
        };
        let actor = parse_actor(step.actor.as_deref()).map_err(step_error)?;
        let report = ledger.play(number, now, actor, step).map_err(step_error)?;
        steps.push(report);
    }
    Ok(ScenarioReport { steps })
}

/// Parses `30d`, `12h`, `90m` or `15s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.len().saturating_sub(1);
    let (number, unit) = (
        text.get(..split).unwrap_or(""),
        text.get(split..).unwrap_or(""),
    );
    let value: i64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like `30d`, `12h`, `90m` or `15s`"))?;
    let duration = match unit {
        "d" => Duration::try_days(value),
        "h" => Duration::try_hours(value),
        "m" => Duration::try_minutes(value),
        "s" => Duration::try_seconds(value),
        _ => None,
    };
    duration.ok_or_else(|| format!("`{text}` is not a duration like `30d`, `12h`, `90m` or `15s`"))
}

fn parse_actor(text: Option<&str>) -> Result<Actor, String> {
    match text {
        None | Some("end-user") => Ok(Actor::EndUser),
        Some("administrator") => Ok(Actor::Administrator),
        Some(other) => match other.strip_prefix("client:") {
            Some(id) if !id.is_empty() => Ok(Actor::Client(id.to_owned())),
            _ => Err(format!(
                "unknown actor `{other}`, expected `end-user`, `administrator` or `client:ID`"
            )),
        },
    }
}

/// An in-memory store that applies decisions' effects the way a host does.
#[derive(Debug)]
pub struct Ledger<'p> {
    policy: &'p Policy,
    machines: BTreeMap<String, Fingerprint>,
    licenses: BTreeMap<String, License>,
    orders: BTreeMap<String, Order>,
    license_orders: BTreeMap<String, String>,
    activations: BTreeMap<String, Vec<Activation>>,
    leases: BTreeMap<String, Vec<SeatLease>>,
    trials: Vec<TrialRecord>,
    transfers: BTreeMap<String, Vec<DateTime<Utc>>>,
    dongles: BTreeMap<String, String>,
    last_seen: BTreeMap<String, DateTime<Utc>>,
    certificates: BTreeMap<(String, String), CertificateClaims>,
    returned: BTreeMap<String, Vec<ReturnedCertificate>>,
    backups: BTreeMap<String, BTreeMap<String, CertificateClaims>>,
}

impl<'p> Ledger<'p> {
    fn new(policy: &'p Policy, scenario: &Scenario) -> Result<Self, ScenarioError> {
        let setup_error = |message: String| ScenarioError::Step { step: 0, message };
        let mut licenses = BTreeMap::new();
        let mut license_orders = BTreeMap::new();
        for license in &scenario.licenses {
            if let Some(order) = &license.order {
                if !scenario.orders.iter().any(|o| &o.id == order) {
                    return Err(setup_error(format!(
                        "license `{}` names unknown order `{order}`",
                        license.key
                    )));
                }
                license_orders.insert(license.key.clone(), order.clone());
            }
            let record = License {
                key: license.key.clone(),
                product: license
                    .product
                    .clone()
                    .unwrap_or_else(|| policy.product.id.clone()),
                license_type: license.license_type.clone(),
                edition: license.edition.clone(),
                version: license
                    .version
                    .clone()
                    .unwrap_or_else(|| policy.product.version.clone()),
                term: license.term,
                seats: license.seats,
                features: license.features.clone(),
                counters: license.counters.clone(),
                status: LicenseStatus::Enabled,
                dongle: license.dongle.clone(),
                client: license.client.clone(),
                limited: None,
            };
            if licenses.insert(license.key.clone(), record).is_some() {
                return Err(setup_error(format!(
                    "license `{}` is listed twice",
                    license.key
                )));
            }
        }
        Ok(Ledger {
            policy,
            machines: scenario
                .machines
                .iter()
                .map(|(name, components)| {
                    (
                        name.clone(),
                        Fingerprint {
                            components: components.clone(),
                        },
                    )
                })
                .collect(),
            licenses,
            orders: scenario
                .orders
                .iter()
                .map(|order| (order.id.clone(), order.clone()))
                .collect(),
            license_orders,
            activations: BTreeMap::new(),
            leases: BTreeMap::new(),
            trials: Vec::new(),
            transfers: BTreeMap::new(),
            dongles: scenario.dongles.clone(),
            last_seen: BTreeMap::new(),
            certificates: BTreeMap::new(),
            returned: BTreeMap::new(),
            backups: BTreeMap::new(),
        })
    }

    fn machine(&self, name: &str) -> Result<Fingerprint, String> {
        self.machines
            .get(name)
            .cloned()
            .ok_or_else(|| format!("unknown machine `{name}`"))
    }

    fn license_edition(&self, key: &str, edition: &Option<String>) -> String {
        edition.clone().unwrap_or_else(|| {
            self.licenses
                .get(key)
                .map(|license| license.edition.clone())
                .or_else(|| self.policy.product.editions.first().cloned())
                .unwrap_or_default()
        })
    }

    fn target(&self, edition: String, version: Option<String>) -> ProductRef {
        ProductRef {
            product: self.policy.product.id.clone(),
            edition,
            version: version.unwrap_or_else(|| self.policy.product.version.clone()),
        }
    }

    /// The state the engine sees for a request about `key` made from `machine`.
    fn state_for(
        &self,
        key: Option<&str>,
        machine: Option<&str>,
        dongle_machine: Option<&str>,
    ) -> State {
        let key = key.unwrap_or_default();
        let license = self.licenses.get(key).cloned();
        let order = self
            .license_orders
            .get(key)
            .and_then(|order| self.orders.get(order))
            .cloned();
        State {
            license,
            order,
            activations: self.activations.get(key).cloned().unwrap_or_default(),
            leases: self.leases.get(key).cloned().unwrap_or_default(),
            // The in-memory ledger gives every lease; the engine counts them.
            held_seats: None,
            trials: self.trials.clone(),
            transfers: self.transfers.get(key).cloned().unwrap_or_default(),
            dongle: dongle_machine.and_then(|name| self.dongles.get(name).cloned()),
            last_seen: machine.and_then(|name| self.last_seen.get(name).copied()),
            returned: self.returned.get(key).cloned().unwrap_or_default(),
        }
    }

    fn play(
        &mut self,
        number: usize,
        now: DateTime<Utc>,
        actor: Actor,
        step: &Step,
    ) -> Result<StepReport, String> {
        let environment = |summary: String| StepReport {
            step: number,
            at: now,
            summary,
            decision: None,
            failures: Vec::new(),
        };
        let (action, machine) = match &step.action {
            StepAction::PlugDongle { machine, dongle } => {
                self.dongles.insert(machine.clone(), dongle.clone());
                return Ok(environment(format!("plug dongle {dongle} into {machine}")));
            }
            StepAction::UnplugDongle { machine } => {
                self.dongles.remove(machine);
                return Ok(environment(format!("unplug the dongle of {machine}")));
            }
            StepAction::ChangeHardware { machine, set } => {
                let fingerprint = self
                    .machines
                    .get_mut(machine)
                    .ok_or_else(|| format!("unknown machine `{machine}`"))?;
                fingerprint.components.extend(set.clone());
                return Ok(environment(format!("change hardware of {machine}")));
            }
            StepAction::OfflineCheck { machine, key } => {
                return self.offline_check(number, now, machine, key.as_deref(), step);
            }
            StepAction::Backup { machine } => {
                self.machine(machine)?;
                let copy = self
                    .certificates
                    .iter()
                    .filter(|((holder, _), _)| holder == machine)
                    .map(|((_, key), claims)| (key.clone(), claims.clone()))
                    .collect();
                self.backups.insert(machine.clone(), copy);
                return Ok(environment(format!("back up the state of {machine}")));
            }
            StepAction::Restore { machine } => {
                let copy = self
                    .backups
                    .get(machine)
                    .cloned()
                    .ok_or_else(|| format!("machine `{machine}` has no backup to restore"))?;
                self.certificates.retain(|(holder, _), _| holder != machine);
                for (key, claims) in copy {
                    self.certificates.insert((machine.clone(), key), claims);
                }
                return Ok(environment(format!("restore the state of {machine}")));
            }
            other => self.request_for(other, now)?,
        };
        let key = action.key().map(str::to_owned);
        let dongle_machine = match &action {
            Action::Checkout { .. } | Action::Heartbeat { .. } => Some(SERVER_MACHINE),
            _ => machine.as_deref(),
        };
        let state = self.state_for(key.as_deref(), machine.as_deref(), dongle_machine);
        let request = Request { actor, action };
        let decision = decide(self.policy, &state, &request, now);
        let summary = summarize(&request, machine.as_deref());
        if decision.is_allowed() {
            self.apply(key.as_deref(), machine.as_deref(), now, &decision.effects);
            if let (
                Action::Return { .. } | Action::ReturnBorrowed { .. },
                Some(machine),
                Some(key),
            ) = (&request.action, &machine, &key)
            {
                // The client forgets the certificate it gave back.
                self.certificates.remove(&(machine.clone(), key.clone()));
            }
        }
        if let Some(name) = &machine {
            self.observe(name, now);
        }
        Ok(checked_step(number, now, summary, decision, step))
    }

    fn request_for(
        &self,
        action: &StepAction,
        now: DateTime<Utc>,
    ) -> Result<(Action, Option<String>), String> {
        Ok(match action {
            StepAction::StartTrial { machine, edition } => {
                let edition = edition
                    .clone()
                    .or_else(|| self.policy.product.editions.first().cloned())
                    .unwrap_or_default();
                (
                    Action::StartTrial {
                        target: self.target(edition, None),
                        machine: self.machine(machine)?,
                    },
                    Some(machine.clone()),
                )
            }
            StepAction::ValidateTrial { machine } => (
                Action::ValidateTrial {
                    machine: self.machine(machine)?,
                },
                Some(machine.clone()),
            ),
            StepAction::Activate {
                key,
                machine,
                edition,
                version,
                method,
            } => (
                Action::Activate {
                    key: key.clone(),
                    target: self.target(self.license_edition(key, edition), version.clone()),
                    machine: self.machine(machine)?,
                    method: method.unwrap_or(Method::Online),
                },
                Some(machine.clone()),
            ),
            StepAction::Validate {
                key,
                machine,
                serial,
            } => (
                Action::Validate {
                    key: key.clone(),
                    machine: self.machine(machine)?,
                    certificate_serial: self.presented(machine, key, serial),
                },
                Some(machine.clone()),
            ),
            StepAction::Checkout {
                key,
                machine,
                session,
                edition,
            } => (
                Action::Checkout {
                    key: key.clone(),
                    target: self.target(self.license_edition(key, edition), None),
                    machine: self.machine(machine)?,
                    session: session.clone().unwrap_or_else(|| machine.clone()),
                },
                Some(machine.clone()),
            ),
            StepAction::Heartbeat { key, session } => (
                Action::Heartbeat {
                    key: key.clone(),
                    session: session.clone(),
                },
                None,
            ),
            StepAction::Release { key, session } => (
                Action::Release {
                    key: key.clone(),
                    session: session.clone(),
                },
                None,
            ),
            StepAction::Borrow {
                key,
                machine,
                session,
                days,
                until,
            } => {
                let until = match (days, until) {
                    (Some(days), None) => {
                        now + Duration::try_days(*days).ok_or("borrow days out of range")?
                    }
                    (None, Some(until)) => *until,
                    _ => return Err("a borrow needs exactly one of `days` or `until`".to_owned()),
                };
                (
                    Action::Borrow {
                        key: key.clone(),
                        target: self.target(self.license_edition(key, &None), None),
                        machine: self.machine(machine)?,
                        session: session.clone().unwrap_or_else(|| machine.clone()),
                        until,
                    },
                    Some(machine.clone()),
                )
            }
            StepAction::ReturnBorrowed {
                key,
                session,
                machine,
                serial,
            } => {
                let machine = match machine {
                    Some(machine) => Some(self.machine(machine).map(|_| machine.clone())?),
                    None => self.machines.contains_key(session).then(|| session.clone()),
                };
                let certificate_serial = match &machine {
                    Some(machine) => self.presented(machine, key, serial),
                    None => serial.clone(),
                };
                (
                    Action::ReturnBorrowed {
                        key: key.clone(),
                        session: session.clone(),
                        certificate_serial,
                    },
                    machine,
                )
            }
            StepAction::Return {
                key,
                machine,
                method,
                serial,
            } => (
                Action::Return {
                    key: key.clone(),
                    machine: self.machine(machine)?,
                    method: method.unwrap_or(Method::Online),
                    certificate_serial: self.presented(machine, key, serial),
                },
                Some(machine.clone()),
            ),
            StepAction::Transfer { key, from, to } => (
                Action::Transfer {
                    key: key.clone(),
                    from: self.machine(from)?,
                    to: self.machine(to)?,
                },
                Some(to.clone()),
            ),
            StepAction::Extend {
                key,
                expires_at,
                features,
                counters,
                seats,
            } => (
                Action::Extend {
                    key: key.clone(),
                    expires_at: *expires_at,
                    features: features.clone(),
                    counters: counters.clone(),
                    seats: *seats,
                },
                None,
            ),
            StepAction::Revoke { key } => (Action::Revoke { key: key.clone() }, None),
            StepAction::OfflineCheck { .. }
            | StepAction::PlugDongle { .. }
            | StepAction::UnplugDongle { .. }
            | StepAction::ChangeHardware { .. }
            | StepAction::Backup { .. }
            | StepAction::Restore { .. } => return Err("not a request".to_owned()),
        })
    }

    /// The certificate serial a request about `key` from `machine` presents: the step's, else
    /// the one of the certificate the machine holds for the key.
    fn presented(&self, machine: &str, key: &str, serial: &Option<String>) -> Option<String> {
        serial.clone().or_else(|| {
            self.certificates
                .get(&(machine.to_owned(), key.to_owned()))
                .map(|claims| claims.serial.clone())
        })
    }

    fn offline_check(
        &mut self,
        number: usize,
        now: DateTime<Utc>,
        machine: &str,
        key: Option<&str>,
        step: &Step,
    ) -> Result<StepReport, String> {
        let fingerprint = self.machine(machine)?;
        let certificate_key = (machine.to_owned(), key.unwrap_or_default().to_owned());
        let claims = self.certificates.get(&certificate_key).ok_or_else(|| {
            format!(
                "machine `{machine}` holds no certificate for `{}`",
                key.unwrap_or("its trial")
            )
        })?;
        let facts = LocalFacts {
            machine: fingerprint,
            dongle: self.dongles.get(machine).cloned(),
            last_seen: self.last_seen.get(machine).copied(),
            salt_id: Some(self.policy.salt_id.clone()),
        };
        let decision = check_certificate(self.policy, claims, &facts, now);
        self.observe(machine, now);
        let summary = format!(
            "offline check of {} on {machine}",
            key.unwrap_or("the trial")
        );
        Ok(checked_step(number, now, summary, decision, step))
    }

    /// Records that `machine` has seen the time `now` (clocks only move forward).
    fn observe(&mut self, machine: &str, now: DateTime<Utc>) {
        let seen = self.last_seen.entry(machine.to_owned()).or_insert(now);
        *seen = (*seen).max(now);
    }

    fn apply(
        &mut self,
        key: Option<&str>,
        machine: Option<&str>,
        now: DateTime<Utc>,
        effects: &[Effect],
    ) {
        let key = key.unwrap_or_default().to_owned();
        for effect in effects {
            match effect {
                Effect::CreateActivation {
                    binding,
                    activated_at,
                } => {
                    self.activations
                        .entry(key.clone())
                        .or_default()
                        .push(Activation::new(binding.clone(), *activated_at));
                }
                Effect::SetCurrentCertificate { binding, serial } => {
                    if let Some(activation) = self
                        .activations
                        .entry(key.clone())
                        .or_default()
                        .iter_mut()
                        .find(|activation| &activation.binding == binding)
                    {
                        activation.certificate_serial = Some(serial.clone());
                    }
                }
                Effect::RebindActivation { from, to } => {
                    if let Some(activation) = self
                        .activations
                        .entry(key.clone())
                        .or_default()
                        .iter_mut()
                        .find(|activation| &activation.binding == from)
                    {
                        activation.binding = to.clone();
                    }
                }
                Effect::RemoveActivation { binding } => {
                    self.activations
                        .entry(key.clone())
                        .or_default()
                        .retain(|a| &a.binding != binding);
                }
                Effect::FixLimitedTerms {
                    not_before,
                    expires_at,
                    features,
                    counters,
                } => {
                    if let Some(license) = self.licenses.get_mut(&key) {
                        license.limited = Some(LimitedTerms {
                            not_before: *not_before,
                            expires_at: *expires_at,
                            features: features.clone(),
                            counters: counters.clone(),
                        });
                    }
                }
                Effect::LeaseSeat {
                    session,
                    binding,
                    expires_at,
                } => {
                    let leases = self.leases.entry(key.clone()).or_default();
                    leases.retain(|lease| &lease.session != session);
                    leases.push(SeatLease {
                        session: session.clone(),
                        binding: binding.clone(),
                        leased_at: now,
                        expires_at: *expires_at,
                        borrowed_until: None,
                        certificate_serial: None,
                        returned_at: None,
                    });
                }
                Effect::RenewLease {
                    session,
                    expires_at,
                } => {
                    for lease in self.leases.entry(key.clone()).or_default() {
                        if &lease.session == session {
                            lease.expires_at = *expires_at;
                        }
                    }
                }
                Effect::ReleaseSeat { session } => {
                    self.leases
                        .entry(key.clone())
                        .or_default()
                        .retain(|lease| &lease.session != session);
                }
                Effect::BorrowSeat {
                    session,
                    binding,
                    until,
                    serial,
                } => {
                    let leases = self.leases.entry(key.clone()).or_default();
                    leases.retain(|lease| &lease.session != session);
                    leases.push(SeatLease {
                        session: session.clone(),
                        binding: binding.clone(),
                        leased_at: now,
                        expires_at: *until,
                        borrowed_until: Some(*until),
                        certificate_serial: Some(serial.clone()),
                        returned_at: None,
                    });
                }
                Effect::EndBorrow { session, at } => {
                    for lease in self.leases.entry(key.clone()).or_default() {
                        if &lease.session == session {
                            lease.returned_at = Some(*at);
                        }
                    }
                }
                Effect::RecordReturnedCertificate { serial, kind, at } => {
                    self.returned
                        .entry(key.clone())
                        .or_default()
                        .push(ReturnedCertificate {
                            serial: serial.clone(),
                            kind: *kind,
                            returned_at: *at,
                        });
                }
                Effect::RecordTrial {
                    binding,
                    edition,
                    started_at,
                    ends_at,
                } => self.trials.push(TrialRecord {
                    binding: binding.clone(),
                    edition: edition.clone(),
                    started_at: *started_at,
                    ends_at: *ends_at,
                }),
                Effect::RecordTransfer { at } => {
                    self.transfers.entry(key.clone()).or_default().push(*at)
                }
                Effect::UpdateLicense {
                    expires_at,
                    features,
                    counters,
                    seats,
                } => {
                    if let Some(license) = self.licenses.get_mut(&key) {
                        apply_update(license, *expires_at, features, counters, *seats);
                    }
                }
                Effect::RevokeLicense => {
                    if let Some(license) = self.licenses.get_mut(&key) {
                        license.status = LicenseStatus::Revoked;
                    }
                }
                Effect::IssueCertificate(claims) => {
                    if let Some(machine) = machine {
                        self.certificates.insert(
                            (machine.to_owned(), claims.license_key.clone()),
                            claims.as_ref().clone(),
                        );
                    }
                }
            }
        }
    }
}

/// Applies an administrator's change to a license: a limited license's fixed terms change (and its
/// rental end, so the new expiry is the one that counts), else the license's own expiry (which
/// makes it a rental), features and counters.
pub fn apply_update(
    license: &mut License,
    expires_at: Option<DateTime<Utc>>,
    features: &BTreeMap<String, bool>,
    counters: &BTreeMap<String, i64>,
    seats: Option<u32>,
) {
    if seats.is_some() {
        license.seats = seats;
    }
    match &mut license.limited {
        Some(limited) => {
            if let Some(expires_at) = expires_at {
                limited.expires_at = expires_at;
                // The license's window ends at the earlier of its limited expiry and rental end.
                if let Term::Rental { ends_at } = &mut license.term {
                    *ends_at = expires_at;
                }
            }
            limited.features.extend(features.clone());
            limited.counters.extend(counters.clone());
        }
        None => {
            if let Some(ends_at) = expires_at {
                license.term = Term::Rental { ends_at };
            }
            license.features.extend(features.clone());
            license.counters.extend(counters.clone());
        }
    }
}

/// The report of a step that made a decision, compared with what the step expects.
fn checked_step(
    number: usize,
    at: DateTime<Utc>,
    summary: String,
    decision: Decision,
    step: &Step,
) -> StepReport {
    let failures = match &step.expect {
        Some(expectation) => compare(expectation, &decision),
        None => vec!["a step that makes a decision needs `expect`".to_owned()],
    };
    StepReport {
        step: number,
        at,
        summary,
        decision: Some(decision),
        failures,
    }
}

fn summarize(request: &Request, machine: Option<&str>) -> String {
    let kind = request.action.kind();
    match (request.action.key(), machine) {
        (Some(key), Some(machine)) => format!("{kind} {key} on {machine}"),
        (Some(key), None) => format!("{kind} {key}"),
        (None, Some(machine)) => format!("{kind} on {machine}"),
        (None, None) => kind.to_string(),
    }
}

fn compare(expectation: &Expectation, decision: &Decision) -> Vec<String> {
    let mut failures = Vec::new();
    let (code, detail) = match expectation {
        Expectation::Code(code) => (code, None),
        Expectation::Detailed(detail) => (&detail.code, Some(detail)),
    };
    match Code::from_name(code) {
        None => failures.push(format!("`{code}` is not a decision code")),
        Some(code) if code != decision.code => {
            failures.push(format!(
                "expected {code}, got {} ({}: {})",
                decision.code, decision.rule, decision.message
            ));
        }
        Some(_) => {}
    }
    let Some(detail) = detail else {
        return failures;
    };
    if let Some(rule) = &detail.rule {
        if rule != &decision.rule {
            failures.push(format!("expected rule `{rule}`, got `{}`", decision.rule));
        }
    }
    let wants_certificate = detail.expires_at.is_some()
        || detail.not_before.is_some()
        || !detail.features.is_empty()
        || !detail.counters.is_empty();
    if !wants_certificate {
        return failures;
    }
    let Some(claims) = decision.certificate() else {
        failures.push("expected a certificate, none was issued".to_owned());
        return failures;
    };
    if let Some(expected) = &detail.expires_at {
        let actual = claims
            .expires_at
            .map_or_else(|| "never".to_owned(), |at| at.to_rfc3339());
        let matches = match expected.parse::<DateTime<Utc>>() {
            Ok(at) => claims.expires_at == Some(at),
            Err(_) => expected == &actual,
        };
        if !matches {
            failures.push(format!("expected expiry {expected}, got {actual}"));
        }
    }
    if let Some(not_before) = detail.not_before {
        if claims.not_before != not_before {
            failures.push(format!(
                "expected not-before {not_before}, got {}",
                claims.not_before
            ));
        }
    }
    for (name, value) in &detail.features {
        if claims.features.get(name) != Some(value) {
            failures.push(format!(
                "expected feature `{name}` = {value}, got {:?}",
                claims.features.get(name)
            ));
        }
    }
    for (name, value) in &detail.counters {
        if claims.counters.get(name) != Some(value) {
            failures.push(format!(
                "expected counter `{name}` = {value}, got {:?}",
                claims.counters.get(name)
            ));
        }
    }
    failures
}
