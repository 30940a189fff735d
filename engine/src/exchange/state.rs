//! The client's exchange state: pending requests and the last update counter per license.
//!
//! The client host persists this state (signed, like its other local state) between the moment a
//! request file is written and the moment its response is loaded. Every method checks everything
//! before it changes anything, so a rejected file leaves the state as it was.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::response::Binds;
use super::{
    ActivationRequest, ActivationResponse, ExchangeError, Nonce, RequestDigest, ReturnRequest,
    ReturnResponse, Role, ServerActivationResponse,
};
use crate::fingerprint::Fingerprint;

/// What the client remembers between writing request files and loading their responses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeState {
    /// Requests written and not answered yet, by nonce.
    #[serde(default)]
    pending: BTreeMap<Nonce, PendingRequest>,
    /// The update counter of the last response accepted, by license key.
    #[serde(default)]
    update_counters: BTreeMap<String, u64>,
}

/// Activation or return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PendingKind {
    /// An activation request.
    Activation,
    /// A return request; the license must not be used while it is pending.
    Return,
}

/// A request file written and not answered yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingRequest {
    /// Activation or return.
    pub kind: PendingKind,
    /// A standalone machine or a network license server.
    pub role: Role,
    /// The license key.
    pub license_key: String,
    /// The digest of the exact file written.
    pub request_digest: RequestDigest,
    /// When the request was made.
    pub created_at: DateTime<Utc>,
    /// For a return, the serial of the certificate being returned.
    #[serde(default)]
    pub certificate_serial: Option<String>,
}

impl ExchangeState {
    /// An empty state: nothing pending, no response accepted yet.
    pub fn new() -> ExchangeState {
        ExchangeState::default()
    }

    /// Writes an activation request file and remembers it as pending; returns the file's text.
    pub fn begin_activation(
        &mut self,
        request: &ActivationRequest,
    ) -> Result<String, ExchangeError> {
        let file = request.to_xml()?;
        self.insert_pending(
            request.nonce,
            PendingRequest {
                kind: PendingKind::Activation,
                role: request.role,
                license_key: request.license_key.clone(),
                request_digest: RequestDigest::of(file.as_bytes()),
                created_at: request.created_at,
                certificate_serial: None,
            },
        )?;
        Ok(file)
    }

    /// Writes a return request file and marks the license return-pending; returns the file's
    /// text. From now on the client must not use the license (see
    /// [`ExchangeState::is_return_pending`]); it is deleted when the return response is accepted.
    pub fn begin_return(&mut self, request: &ReturnRequest) -> Result<String, ExchangeError> {
        let file = request.to_xml()?;
        self.insert_pending(
            request.nonce,
            PendingRequest {
                kind: PendingKind::Return,
                role: request.role,
                license_key: request.license_key.clone(),
                request_digest: RequestDigest::of(file.as_bytes()),
                created_at: request.created_at,
                certificate_serial: Some(request.certificate_serial.clone()),
            },
        )?;
        Ok(file)
    }

    fn insert_pending(
        &mut self,
        nonce: Nonce,
        pending: PendingRequest,
    ) -> Result<(), ExchangeError> {
        if self.pending.contains_key(&nonce) {
            return Err(ExchangeError::NonceReused(nonce.to_string()));
        }
        self.pending.insert(nonce, pending);
        Ok(())
    }

    /// Accepts a verified activation response on `machine` (the machine's current fingerprint).
    ///
    /// Checks, in order: the response was issued for this exact fingerprint
    /// ([`ExchangeError::WrongMachine`]); it answers a pending activation request of this role and
    /// license whose file had exactly the digest the server saw ([`ExchangeError::UnknownRequest`],
    /// also for a response already accepted); its update counter is greater than the last one
    /// accepted for the license ([`ExchangeError::StaleResponse`]). Then the request is no longer
    /// pending, and neither is any return of the license (the server's newest word is that it is
    /// activated); the caller stores [`ActivationResponse::certificate`].
    pub fn accept_activation(
        &mut self,
        response: &ActivationResponse,
        machine: &Fingerprint,
    ) -> Result<(), ExchangeError> {
        self.accept_activation_binds(response.binds(), machine)
    }

    /// Accepts a verified server license response on the license server with fingerprint
    /// `machine`, with the checks of [`ExchangeState::accept_activation`]; the caller stores
    /// [`ServerActivationResponse::server_license`].
    pub fn accept_server_activation(
        &mut self,
        response: &ServerActivationResponse,
        machine: &Fingerprint,
    ) -> Result<(), ExchangeError> {
        self.accept_activation_binds(response.binds(), machine)
    }

    /// The checks and bookkeeping of an accepted activation response, whatever it grants.
    fn accept_activation_binds(
        &mut self,
        binds: &Binds,
        machine: &Fingerprint,
    ) -> Result<(), ExchangeError> {
        self.check_answer(PendingKind::Activation, binds, machine)?;
        let key = binds.license_key.as_str();
        self.pending.remove(&binds.nonce);
        self.pending.retain(|_, pending| {
            !(pending.kind == PendingKind::Return && pending.license_key == key)
        });
        self.update_counters
            .insert(key.to_owned(), binds.update_counter);
        Ok(())
    }

    /// Accepts a verified return response on `machine`; the caller then deletes the license.
    ///
    /// Checks, in order: the response was issued for this exact fingerprint
    /// ([`ExchangeError::WrongMachine`]); a return of the license is pending
    /// ([`ExchangeError::ReturnNotPending`]: the license is still in use); the response answers
    /// one of the pending returns exactly ([`ExchangeError::UnknownRequest`]); its update counter
    /// is newer than the last accepted ([`ExchangeError::StaleResponse`]).
    pub fn accept_return(
        &mut self,
        response: &ReturnResponse,
        machine: &Fingerprint,
    ) -> Result<(), ExchangeError> {
        let key = response.license_key();
        if response.machine() != machine {
            return Err(ExchangeError::WrongMachine);
        }
        if !self.is_return_pending(key) {
            return Err(ExchangeError::ReturnNotPending(key.to_owned()));
        }
        self.check_answer(PendingKind::Return, response.binds(), machine)?;
        let serial_matches = self.pending.get(&response.nonce()).is_some_and(|pending| {
            pending.certificate_serial.as_deref() == Some(response.certificate_serial())
        });
        if !serial_matches {
            return Err(ExchangeError::UnknownRequest);
        }
        self.pending.retain(|_, pending| {
            !(pending.kind == PendingKind::Return && pending.license_key == key)
        });
        self.update_counters
            .insert(key.to_owned(), response.update_counter());
        Ok(())
    }

    fn check_answer(
        &self,
        kind: PendingKind,
        binds: &Binds,
        machine: &Fingerprint,
    ) -> Result<(), ExchangeError> {
        let license_key = binds.license_key.as_str();
        if binds.machine != *machine {
            return Err(ExchangeError::WrongMachine);
        }
        let answers = self.pending.get(&binds.nonce).is_some_and(|pending| {
            pending.kind == kind
                && pending.role == binds.role
                && pending.license_key == license_key
                && pending.request_digest == binds.request_digest
        });
        if !answers {
            return Err(ExchangeError::UnknownRequest);
        }
        if let Some(&last_accepted) = self.update_counters.get(license_key) {
            if binds.update_counter <= last_accepted {
                return Err(ExchangeError::StaleResponse {
                    license_key: license_key.to_owned(),
                    received: binds.update_counter,
                    last_accepted,
                });
            }
        }
        Ok(())
    }

    /// Whether a return of the license is pending: the client must not use the license.
    pub fn is_return_pending(&self, license_key: &str) -> bool {
        self.pending.values().any(|pending| {
            pending.kind == PendingKind::Return && pending.license_key == license_key
        })
    }

    /// The requests written and not answered yet, by nonce.
    pub fn pending(&self) -> impl Iterator<Item = (&Nonce, &PendingRequest)> {
        self.pending.iter()
    }

    /// The update counter of the last response accepted for the license.
    pub fn last_update_counter(&self, license_key: &str) -> Option<u64> {
        self.update_counters.get(license_key).copied()
    }
}
