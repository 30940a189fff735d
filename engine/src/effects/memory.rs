//! Records kept in memory, changed by the effect rules: the scenario runner's store and the
//! store of test hosts.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::{ready, Future};

use chrono::{DateTime, Utc};

use super::{apply, resolve_ready, Applied, ApplyError, EffectRecords};
use crate::certificate::Binding;
use crate::decision::Effect;
use crate::state::{
    Activation, License, Order, ReturnedCertificate, SeatLease, State, TrialRecord,
};

/// Licenses, orders and everything stored about them, in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryRecords {
    /// Licenses by key.
    pub licenses: BTreeMap<String, License>,
    /// Orders by identifier.
    pub orders: BTreeMap<String, Order>,
    /// The order of each license that belongs to one.
    pub license_orders: BTreeMap<String, String>,
    /// Per-license records.
    per_license: BTreeMap<String, LicenseRows>,
    /// Trials of the product.
    trials: Vec<TrialRecord>,
}

/// What is stored about one license besides the license itself.
#[derive(Debug, Clone, Default)]
struct LicenseRows {
    activations: Vec<Activation>,
    leases: Vec<SeatLease>,
    transfers: Vec<DateTime<Utc>>,
    returned: Vec<ReturnedCertificate>,
}

impl MemoryRecords {
    /// The state the engine decides a request about `key` on: the license, its order and all its
    /// records (the engine counts seats and activations itself), and every trial.
    pub fn state(&self, key: Option<&str>) -> State {
        let key = key.unwrap_or_default();
        let rows = self.per_license.get(key).cloned().unwrap_or_default();
        State {
            license: self.licenses.get(key).cloned(),
            order: self
                .license_orders
                .get(key)
                .and_then(|order| self.orders.get(order))
                .cloned(),
            activations: rows.activations,
            leases: rows.leases,
            trials: self.trials.clone(),
            transfers: rows.transfers,
            returned: rows.returned,
            ..State::default()
        }
    }

    /// Applies an allowed decision's effects on `key`'s records (and the product's trials).
    pub fn apply<'d>(
        &mut self,
        key: Option<&str>,
        effects: &'d [Effect],
        now: DateTime<Utc>,
    ) -> Result<Applied<'d>, ApplyError<Infallible>> {
        let key = key.unwrap_or_default().to_owned();
        let mut license = self.licenses.remove(&key);
        let mut writer = LicenseWriter {
            rows: self.per_license.entry(key.clone()).or_default(),
            trials: &mut self.trials,
        };
        let applied = resolve_ready(apply(&mut writer, license.as_mut(), effects, now));
        if let Some(license) = license {
            self.licenses.insert(key, license);
        }
        applied.unwrap_or(Err(ApplyError::Changed("in-memory record")))
    }
}

/// The records of one license, as the effect rules write them.
struct LicenseWriter<'a> {
    rows: &'a mut LicenseRows,
    trials: &'a mut Vec<TrialRecord>,
}

type Done<T> = std::future::Ready<Result<T, Infallible>>;

fn done<T>(value: T) -> Done<T> {
    ready(Ok(value))
}

fn count(changed: usize) -> u64 {
    u64::try_from(changed).unwrap_or(u64::MAX)
}

impl LicenseWriter<'_> {
    fn with_session(&mut self, session: &str, change: impl Fn(&mut SeatLease)) -> u64 {
        let mut changed = 0;
        for lease in &mut self.rows.leases {
            if lease.session == session {
                change(lease);
                changed += 1;
            }
        }
        count(changed)
    }

    fn with_binding(&mut self, binding: &Binding, change: impl Fn(&mut Activation)) -> u64 {
        let mut changed = 0;
        for activation in &mut self.rows.activations {
            if activation.binding == *binding {
                change(activation);
                changed += 1;
            }
        }
        count(changed)
    }
}

impl EffectRecords for LicenseWriter<'_> {
    type Error = Infallible;

    fn insert_activation(
        &mut self,
        activation: &Activation,
    ) -> impl Future<Output = Result<(), Infallible>> + Send {
        self.rows.activations.push(activation.clone());
        done(())
    }

    fn set_activation_serial(
        &mut self,
        binding: &Binding,
        serial: &str,
    ) -> impl Future<Output = Result<u64, Infallible>> + Send {
        done(self.with_binding(binding, |activation| {
            activation.certificate_serial = Some(serial.to_owned());
        }))
    }

    fn rebind_activation(
        &mut self,
        from: &Binding,
        to: &Binding,
    ) -> impl Future<Output = Result<u64, Infallible>> + Send {
        done(self.with_binding(from, |activation| activation.binding = to.clone()))
    }

    fn delete_activation(
        &mut self,
        binding: &Binding,
    ) -> impl Future<Output = Result<u64, Infallible>> + Send {
        let before = self.rows.activations.len();
        self.rows
            .activations
            .retain(|activation| activation.binding != *binding);
        done(count(before - self.rows.activations.len()))
    }

    fn put_lease(
        &mut self,
        lease: &SeatLease,
    ) -> impl Future<Output = Result<(), Infallible>> + Send {
        self.rows
            .leases
            .retain(|held| held.session != lease.session);
        self.rows.leases.push(lease.clone());
        done(())
    }

    fn renew_lease(
        &mut self,
        session: &str,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, Infallible>> + Send {
        done(self.with_session(session, |lease| lease.expires_at = expires_at))
    }

    fn end_borrow(
        &mut self,
        session: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, Infallible>> + Send {
        done(self.with_session(session, |lease| lease.returned_at = Some(at)))
    }

    fn delete_lease(
        &mut self,
        session: &str,
    ) -> impl Future<Output = Result<u64, Infallible>> + Send {
        let before = self.rows.leases.len();
        self.rows.leases.retain(|lease| lease.session != session);
        done(count(before - self.rows.leases.len()))
    }

    fn insert_returned(
        &mut self,
        returned: &ReturnedCertificate,
    ) -> impl Future<Output = Result<(), Infallible>> + Send {
        if !self
            .rows
            .returned
            .iter()
            .any(|known| known.serial == returned.serial)
        {
            self.rows.returned.push(returned.clone());
        }
        done(())
    }

    fn insert_trial(
        &mut self,
        trial: &TrialRecord,
    ) -> impl Future<Output = Result<(), Infallible>> + Send {
        self.trials.push(trial.clone());
        done(())
    }

    fn insert_transfer(
        &mut self,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), Infallible>> + Send {
        self.rows.transfers.push(at);
        done(())
    }
}
