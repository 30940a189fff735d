//! The engine's effect rules applied to the store: the records of one license, inside the
//! request's transaction.

use chrono::{DateTime, Utc};
use licet_engine::certificate::Binding;
use licet_engine::effects::{ApplyError, EffectRecords};
use licet_engine::report::Report as _;
use licet_engine::state::{Activation, ReturnedCertificate, SeatLease, TrialRecord};

use crate::error::StoreError;
use crate::store::Records;

/// One license's records in the store, as [`licet_engine::effects::apply`] writes them.
pub(crate) struct LicenseRecords<'r, R> {
    /// The transaction.
    pub records: &'r mut R,
    /// The license the request is about.
    pub key: &'r str,
    /// The product whose trials a trial request records.
    pub product: &'r str,
    /// The request comes from a network license server: the activation's current certificate is
    /// the server license granted for the certificate the engine issued, whose serial it presents.
    pub for_license_server: bool,
}

impl<R: Records> EffectRecords for LicenseRecords<'_, R> {
    type Error = StoreError;

    async fn insert_activation(&mut self, activation: &Activation) -> Result<(), StoreError> {
        self.records.insert_activation(self.key, activation).await
    }

    async fn set_activation_serial(
        &mut self,
        binding: &Binding,
        serial: &str,
    ) -> Result<u64, StoreError> {
        let current = match self.for_license_server {
            true => licet_engine::server_license::serial_for(serial),
            false => serial.to_owned(),
        };
        self.records
            .set_activation_serial(self.key, binding, &current)
            .await
    }

    async fn rebind_activation(&mut self, from: &Binding, to: &Binding) -> Result<u64, StoreError> {
        self.records.rebind_activation(self.key, from, to).await
    }

    async fn delete_activation(&mut self, binding: &Binding) -> Result<u64, StoreError> {
        self.records.delete_activation(self.key, binding).await
    }

    async fn put_lease(&mut self, lease: &SeatLease) -> Result<(), StoreError> {
        self.records.put_lease(self.key, lease).await
    }

    async fn renew_lease(
        &mut self,
        session: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.records
            .renew_lease(self.key, session, expires_at)
            .await
    }

    async fn end_borrow(&mut self, session: &str, at: DateTime<Utc>) -> Result<u64, StoreError> {
        self.records.end_borrow(self.key, session, at).await
    }

    async fn delete_lease(&mut self, session: &str) -> Result<u64, StoreError> {
        self.records.delete_lease(self.key, session).await
    }

    async fn insert_returned(&mut self, returned: &ReturnedCertificate) -> Result<(), StoreError> {
        self.records
            .insert_returned_serial(
                self.key,
                &returned.serial,
                returned.kind,
                returned.returned_at,
            )
            .await
    }

    async fn insert_trial(&mut self, trial: &TrialRecord) -> Result<(), StoreError> {
        self.records.insert_trial(self.product, trial).await
    }

    async fn insert_transfer(&mut self, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.records.insert_transfer(self.key, at).await
    }
}

impl From<ApplyError<StoreError>> for StoreError {
    fn from(error: ApplyError<StoreError>) -> Self {
        match error {
            ApplyError::Records(error) => error,
            other => StoreError::Conflict(other.report()),
        }
    }
}
