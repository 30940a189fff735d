//! Plays a scenario's steps: builds each request from the step, has the host decide it, keeps
//! what the machines hold (certificates, backups, the latest time each has seen, plugged
//! dongles) and compares each decision with the step's expectation.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::expect::{checked_step, summarize};
use super::host::{HostFacts, ScenarioHost, StartingLicense};
use super::{Scenario, ScenarioError, Step, StepAction, StepReport, SERVER_MACHINE};
use crate::certificate::CertificateClaims;
use crate::decision::Effect;
use crate::fingerprint::Fingerprint;
use crate::offline::{check_certificate, LocalFacts};
use crate::policy::{Method, Policy};
use crate::request::{Action, Actor, ProductRef, Request};
use crate::state::{License, LicenseStatus};

/// The machines' side of a scenario, and the host that decides its requests.
pub(super) struct Runner<'p, 'h, H: ScenarioHost + ?Sized> {
    policy: &'p Policy,
    host: &'h mut H,
    machines: BTreeMap<String, Fingerprint>,
    editions: BTreeMap<String, String>,
    dongles: BTreeMap<String, String>,
    last_seen: BTreeMap<String, DateTime<Utc>>,
    certificates: BTreeMap<(String, String), CertificateClaims>,
    backups: BTreeMap<String, BTreeMap<String, CertificateClaims>>,
}

impl<'p, 'h, H: ScenarioHost + ?Sized> Runner<'p, 'h, H> {
    /// Checks the scenario's starting licenses and orders and stores them in the host.
    pub(super) fn new(
        policy: &'p Policy,
        scenario: &Scenario,
        host: &'h mut H,
    ) -> Result<Self, ScenarioError> {
        let setup_error = |message: String| ScenarioError::Step { step: 0, message };
        let mut licenses: Vec<StartingLicense> = Vec::new();
        for license in &scenario.licenses {
            if let Some(order) = &license.order {
                if !scenario.orders.iter().any(|o| &o.id == order) {
                    return Err(setup_error(format!(
                        "license `{}` names unknown order `{order}`",
                        license.key
                    )));
                }
            }
            if licenses
                .iter()
                .any(|known| known.license.key == license.key)
            {
                return Err(setup_error(format!(
                    "license `{}` is listed twice",
                    license.key
                )));
            }
            licenses.push(StartingLicense {
                license: License {
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
                },
                order: license.order.clone(),
            });
        }
        host.prepare(&licenses, &scenario.orders)
            .map_err(setup_error)?;
        Ok(Runner {
            policy,
            host,
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
            editions: licenses
                .into_iter()
                .map(|starting| (starting.license.key, starting.license.edition))
                .collect(),
            dongles: scenario.dongles.clone(),
            last_seen: BTreeMap::new(),
            certificates: BTreeMap::new(),
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
            self.editions
                .get(key)
                .cloned()
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
    pub(super) fn play(
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
        let facts = HostFacts {
            dongle: dongle_machine.and_then(|name| self.dongles.get(name).cloned()),
            last_seen: machine
                .as_deref()
                .and_then(|name| self.last_seen.get(name).copied()),
            product: self.policy.product.id.clone(),
        };
        let request = Request { actor, action };
        let decision = self.host.decide(&request, &facts, now)?;
        let summary = summarize(&request, machine.as_deref());
        if decision.is_allowed() {
            if let Some(machine) = &machine {
                // The machine keeps the certificates it was given.
                for effect in &decision.effects {
                    if let Effect::IssueCertificate(claims) = effect {
                        self.certificates.insert(
                            (machine.clone(), claims.license_key.clone()),
                            claims.as_ref().clone(),
                        );
                    }
                }
            }
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
}
