//! The effect rules: what the effects of an allowed decision do to the records a host keeps.
//!
//! [`decide`](crate::decide) says *what* changes as a list of [`Effect`]s; this module says
//! *how* each one changes the records, once, for every host. A host implements
//! [`EffectRecords`] over its storage (the server's store inside the request's transaction, the
//! scenario runner's in-memory ledger, a test's fake server) and calls [`apply`]; the license row
//! itself is changed in memory by [`apply`] and saved by the host when
//! [`Applied::license_changed`] says so. Signing is left to the host: [`apply`] hands back the
//! claims of the certificates the decision issues.
//!
//! The record operations are asynchronous because the server's store is; an in-memory host
//! returns ready futures and resolves them with [`resolve_ready`].

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use chrono::{DateTime, Utc};

use crate::certificate::{Binding, CertificateClaims};
use crate::decision::Effect;
use crate::state::{
    Activation, License, LicenseStatus, LimitedTerms, ReturnedCertificate, SeatLease, Term,
    TrialRecord,
};

mod memory;

pub use memory::MemoryRecords;

/// The records of one license (and its product's trials) as the effects change them.
///
/// Methods that change an existing record answer how many records changed; [`apply`] treats
/// anything but one as the record having changed while the request was decided.
pub trait EffectRecords {
    /// Why a record could not be written.
    type Error;

    /// Records a new activation.
    fn insert_activation(
        &mut self,
        activation: &Activation,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Records `serial` as the current certificate of the activation bound to `binding`.
    fn set_activation_serial(
        &mut self,
        binding: &Binding,
        serial: &str,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;
    /// Moves an activation's current binding from `from` to `to` (its anchor stays).
    fn rebind_activation(
        &mut self,
        from: &Binding,
        to: &Binding,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;
    /// Removes the activation bound to `binding`.
    fn delete_activation(
        &mut self,
        binding: &Binding,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;
    /// Stores a session's lease or borrow, replacing any the session had.
    fn put_lease(
        &mut self,
        lease: &SeatLease,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Moves a session's lapse time.
    fn renew_lease(
        &mut self,
        session: &str,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;
    /// Marks a session's borrow returned early at `at` (its seat may stay counted).
    fn end_borrow(
        &mut self,
        session: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;
    /// Removes a session's lease or borrow.
    fn delete_lease(
        &mut self,
        session: &str,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;
    /// Records a returned certificate (the first return of a serial wins).
    fn insert_returned(
        &mut self,
        returned: &ReturnedCertificate,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Records a trial started on a machine.
    fn insert_trial(
        &mut self,
        trial: &TrialRecord,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Records an end-user removal, transfer or accepted drift, which the transfer limit counts.
    fn insert_transfer(
        &mut self,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Why the effects of a decision could not be applied; the host rolls everything back.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError<E> {
    /// The host's records failed.
    #[error("the license's records could not be written")]
    Records(#[source] E),
    /// A record the decision was made on is gone or was changed by someone else meanwhile.
    #[error("the {0} changed while the request was decided")]
    Changed(&'static str),
    /// The decision changes the license, and the host gave none to change.
    #[error("the decision changes a license the host did not load")]
    NoLicense,
}

/// What applying a decision's effects left for the host to do.
#[derive(Debug, Default)]
pub struct Applied<'d> {
    /// The license was changed in memory and must be saved.
    pub license_changed: bool,
    /// When the seat lease (or borrow) taken or renewed now ends.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The certificates the decision issues, for the host to sign.
    pub certificates: Vec<&'d CertificateClaims>,
}

/// Applies `effects` in order: writes through `records`, changes `license` in memory. `now` is
/// the time the decision was made at (when leases and borrows start).
pub async fn apply<'d, R: EffectRecords>(
    records: &mut R,
    mut license: Option<&mut License>,
    effects: &'d [Effect],
    now: DateTime<Utc>,
) -> Result<Applied<'d>, ApplyError<R::Error>> {
    let mut applied = Applied::default();
    for effect in effects {
        match effect {
            Effect::CreateActivation {
                binding,
                activated_at,
            } => records
                .insert_activation(&Activation::new(binding.clone(), *activated_at))
                .await
                .map_err(ApplyError::Records)?,
            Effect::SetCurrentCertificate { binding, serial } => one(
                records.set_activation_serial(binding, serial).await,
                "activation",
            )?,
            Effect::RebindActivation { from, to } => {
                one(records.rebind_activation(from, to).await, "activation")?
            }
            Effect::RemoveActivation { binding } => {
                one(records.delete_activation(binding).await, "activation")?
            }
            Effect::LeaseSeat {
                session,
                binding,
                expires_at,
            } => {
                let lease = SeatLease {
                    session: session.clone(),
                    binding: binding.clone(),
                    leased_at: now,
                    expires_at: *expires_at,
                    borrowed_until: None,
                    certificate_serial: None,
                    returned_at: None,
                };
                records
                    .put_lease(&lease)
                    .await
                    .map_err(ApplyError::Records)?;
                applied.lease_expires_at = Some(*expires_at);
            }
            Effect::RenewLease {
                session,
                expires_at,
            } => {
                one(
                    records.renew_lease(session, *expires_at).await,
                    "seat lease",
                )?;
                applied.lease_expires_at = Some(*expires_at);
            }
            Effect::ReleaseSeat { session } => {
                one(records.delete_lease(session).await, "seat lease")?
            }
            Effect::BorrowSeat {
                session,
                binding,
                until,
                serial,
            } => {
                let lease = SeatLease {
                    session: session.clone(),
                    binding: binding.clone(),
                    leased_at: now,
                    expires_at: *until,
                    borrowed_until: Some(*until),
                    certificate_serial: Some(serial.clone()),
                    returned_at: None,
                };
                records
                    .put_lease(&lease)
                    .await
                    .map_err(ApplyError::Records)?;
                applied.lease_expires_at = Some(*until);
            }
            Effect::EndBorrow { session, at } => {
                one(records.end_borrow(session, *at).await, "borrow")?
            }
            Effect::RecordReturnedCertificate { serial, kind, at } => records
                .insert_returned(&ReturnedCertificate {
                    serial: serial.clone(),
                    kind: *kind,
                    returned_at: *at,
                })
                .await
                .map_err(ApplyError::Records)?,
            Effect::RecordTrial {
                binding,
                edition,
                started_at,
                ends_at,
            } => records
                .insert_trial(&TrialRecord {
                    binding: binding.clone(),
                    edition: edition.clone(),
                    started_at: *started_at,
                    ends_at: *ends_at,
                })
                .await
                .map_err(ApplyError::Records)?,
            Effect::RecordTransfer { at } => records
                .insert_transfer(*at)
                .await
                .map_err(ApplyError::Records)?,
            Effect::FixLimitedTerms {
                not_before,
                expires_at,
                features,
                counters,
            } => {
                let license = license.as_deref_mut().ok_or(ApplyError::NoLicense)?;
                license.limited = Some(LimitedTerms {
                    not_before: *not_before,
                    expires_at: *expires_at,
                    features: features.clone(),
                    counters: counters.clone(),
                });
                applied.license_changed = true;
            }
            Effect::UpdateLicense {
                expires_at,
                features,
                counters,
                seats,
            } => {
                let license = license.as_deref_mut().ok_or(ApplyError::NoLicense)?;
                update_license(license, *expires_at, features, counters, *seats);
                applied.license_changed = true;
            }
            Effect::RevokeLicense => {
                let license = license.as_deref_mut().ok_or(ApplyError::NoLicense)?;
                license.status = LicenseStatus::Revoked;
                applied.license_changed = true;
            }
            Effect::IssueCertificate(claims) => applied.certificates.push(claims),
        }
    }
    Ok(applied)
}

fn one<E>(changed: Result<u64, E>, what: &'static str) -> Result<(), ApplyError<E>> {
    match changed.map_err(ApplyError::Records)? {
        1 => Ok(()),
        _ => Err(ApplyError::Changed(what)),
    }
}

/// Applies an administrator's change to a license: a limited license's fixed terms change (and its
/// rental end, so the new expiry is the one that counts), else the license's own expiry (which
/// makes it a rental), features and counters; the seats when given.
pub fn update_license(
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

/// Whether an effect only concerns seats (what a license server, which serves seats within a
/// server license and keeps no activations, trials or license terms, may apply).
pub fn is_seat_effect(effect: &Effect) -> bool {
    matches!(
        effect,
        Effect::LeaseSeat { .. }
            | Effect::RenewLease { .. }
            | Effect::ReleaseSeat { .. }
            | Effect::BorrowSeat { .. }
            | Effect::EndBorrow { .. }
            | Effect::RecordReturnedCertificate { .. }
            | Effect::IssueCertificate(_)
    )
}

/// The output of a future that is ready at once (an in-memory host's record operations), or
/// `None` when it is not.
pub fn resolve_ready<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}
