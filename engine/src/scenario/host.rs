//! Where a scenario's requests are decided: the seam between the runner and a host.
//!
//! The runner builds every request and keeps what the machines hold; a [`ScenarioHost`] decides
//! each request on what it has stored and applies the effects of those it allows, the way it
//! would for a real request. [`MemoryHost`] is the in-memory host of `licet policy test`; the
//! server's tests implement the trait over the real service, on every storage backend, so a
//! scenario proves the same behaviour on each.

use chrono::{DateTime, Utc};

use crate::decide;
use crate::decision::Decision;
use crate::effects::MemoryRecords;
use crate::policy::Policy;
use crate::request::Request;
use crate::state::{License, Order};

/// A license a scenario starts with, and the order it belongs to.
#[derive(Debug, Clone)]
pub struct StartingLicense {
    /// The license.
    pub license: License,
    /// Its order (standard model).
    pub order: Option<String>,
}

/// What a host sees of a request besides its records.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    /// The dongle the host's hardware check finds: the server's for seat checkouts and
    /// heartbeats, else the one the client reports.
    pub dongle: Option<String>,
    /// The latest time the requesting machine has seen.
    pub last_seen: Option<DateTime<Utc>>,
    /// The product of the policy under test (what a trial validation names).
    pub product: String,
}

/// Decides a scenario's requests and stores their effects.
pub trait ScenarioHost {
    /// Stores the licenses and orders the scenario starts with (clients are the owners they
    /// name).
    fn prepare(&mut self, licenses: &[StartingLicense], orders: &[Order]) -> Result<(), String>;

    /// Decides `request` at `now`; when it is allowed, applies its effects before answering.
    /// An error is a host failure, not a denial.
    fn decide(
        &mut self,
        request: &Request,
        facts: &HostFacts,
        now: DateTime<Utc>,
    ) -> Result<Decision, String>;
}

/// The in-memory host: every record in memory, changed by the engine's effect rules.
#[derive(Debug)]
pub struct MemoryHost<'p> {
    policy: &'p Policy,
    records: MemoryRecords,
}

impl<'p> MemoryHost<'p> {
    /// An empty host deciding under `policy`.
    pub fn new(policy: &'p Policy) -> Self {
        MemoryHost {
            policy,
            records: MemoryRecords::default(),
        }
    }
}

impl ScenarioHost for MemoryHost<'_> {
    fn prepare(&mut self, licenses: &[StartingLicense], orders: &[Order]) -> Result<(), String> {
        for order in orders {
            self.records.orders.insert(order.id.clone(), order.clone());
        }
        for starting in licenses {
            let key = starting.license.key.clone();
            if let Some(order) = &starting.order {
                self.records
                    .license_orders
                    .insert(key.clone(), order.clone());
            }
            self.records.licenses.insert(key, starting.license.clone());
        }
        Ok(())
    }

    fn decide(
        &mut self,
        request: &Request,
        facts: &HostFacts,
        now: DateTime<Utc>,
    ) -> Result<Decision, String> {
        let key = request.action.key();
        let mut state = self.records.state(key);
        state.dongle = facts.dongle.clone();
        state.last_seen = facts.last_seen;
        let decision = decide(self.policy, &state, request, now);
        if decision.is_allowed() {
            self.records
                .apply(key, &decision.effects, now)
                .map_err(|error| error.to_string())?;
        }
        Ok(decision)
    }
}
