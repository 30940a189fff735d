//! Scenario tests for policies: a timeline of requests with the expected decision at each step.
//!
//! A scenario file names a policy, the machines, licenses and orders that exist at the start, and a
//! list of steps. Each step happens at a time (`at:` absolute, `after:` relative to the previous
//! step, or the previous step's time), is made by an actor (`as:`), does one request (`do:`) and
//! states the expected code (`expect:`). [`run`] plays the steps against the in-memory
//! [`MemoryHost`], which applies each decision's effects by the engine's effect rules
//! ([`crate::effects`]), so later steps see earlier ones; [`run_on`] plays them against any
//! [`ScenarioHost`], such as the real server.
//!
//! See `docs/scenarios.md` for the file format.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use crate::decision::Decision;
use crate::policy::{Method, Policy};
use crate::request::Actor;
use crate::state::{Order, Term};

mod expect;
mod host;
mod runner;

pub use host::{HostFacts, MemoryHost, ScenarioHost, StartingLicense};
use runner::Runner;

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

/// Plays a scenario against a policy on the in-memory host.
pub fn run(policy: &Policy, scenario: &Scenario) -> Result<ScenarioReport, ScenarioError> {
    run_on(policy, scenario, &mut MemoryHost::new(policy))
}

/// Plays a scenario against a policy on `host`, which decides every request and stores its
/// effects.
pub fn run_on<H: ScenarioHost + ?Sized>(
    policy: &Policy,
    scenario: &Scenario,
    host: &mut H,
) -> Result<ScenarioReport, ScenarioError> {
    let mut runner = Runner::new(policy, scenario, host)?;
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
        let report = runner.play(number, now, actor, step).map_err(step_error)?;
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
