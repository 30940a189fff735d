//! Manual activation and return by request and response files (`licet_engine::exchange`).
//!
//! The pending requests and the last update counter accepted per license live in the signed local
//! state, so a response loads only on this machine, only for the request that produced it, only
//! once and in order.

use chrono::{DateTime, Utc};
use licet_engine::exchange::{
    ActivationRequest, ActivationResponse, Nonce, ReturnRequest, ReturnResponse, Role,
};
use licet_engine::report::Report as _;
use licet_engine::Code;

use super::{CheckReport, Client, ClientError, Loaded, Trust};
use crate::state::ReturnedLicense;

/// The rule of the start-up denial while a manual return is pending.
pub const RETURN_PENDING_RULE: &str = "exchange.return_pending";

impl Client {
    /// Writes an activation request file for license `key` and `edition` and remembers it as
    /// pending. Returns the file's text, to be carried to the vendor.
    pub fn begin_manual_activation(
        &self,
        key: &str,
        edition: &str,
        now: DateTime<Utc>,
    ) -> Result<String, ClientError> {
        self.begin_activation_as(key, edition, now, Ok)
    }

    /// Makes the activation request file, hands it to `carry` (which turns it into what the user
    /// takes away: the file itself, a text block), and remembers the request as pending only when
    /// `carry` succeeded.
    pub(super) fn begin_activation_as<T>(
        &self,
        key: &str,
        edition: &str,
        now: DateTime<Utc>,
        carry: impl FnOnce(String) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let target = self.target(edition)?;
        let machine = self.probe.fingerprint()?;
        let Loaded { mut state, .. } = self.load(&machine)?;
        let request = ActivationRequest {
            role: Role::Machine,
            license_key: key.to_owned(),
            target,
            machine: machine.clone(),
            nonce: fresh_nonce()?,
            created_at: now,
            server_key: None,
        };
        let file = state.exchange.begin_activation(&request)?;
        let carried = carry(file)?;
        state.observe(now);
        self.store.save(&state, &machine)?;
        Ok(carried)
    }

    /// Loads an activation response file: verifies it with the vendor key, checks that it answers
    /// a pending request of this machine and is newer than any response accepted before, and
    /// installs its certificate. Returns the start-up decision with it installed.
    pub fn load_activation_response(
        &self,
        file: &[u8],
        now: DateTime<Utc>,
    ) -> Result<CheckReport, ClientError> {
        let machine = self.probe.fingerprint()?;
        let Loaded { mut state, trust } = self.load(&machine)?;
        if let Trust::Untrusted(problem) = trust {
            return Err(ClientError::UntrustedState(problem));
        }
        let response = ActivationResponse::from_xml(file, &self.vendor_key)?;
        let certificate = response.certificate();
        // Everything is checked before anything changes.
        let mut exchange = state.exchange.clone();
        exchange.accept_activation(&response, &machine)?;
        self.accept(certificate.claims(), &state, &machine)?;
        state.exchange = exchange;
        state.certificate = Some(certificate.to_armored());
        state.server_license = None;
        state.last_validated = Some(certificate.claims().issued_at);
        state.returned = None;
        state.denial = None;
        state.observe(now);
        self.store.save(&state, &machine)?;
        self.check_at(now)
    }

    /// Writes a return request file for the installed license and marks it return-pending: from
    /// now on the start-up check denies, until the return response is loaded (the license is
    /// gone) or a newer activation response is.
    pub fn begin_manual_return(&self, now: DateTime<Utc>) -> Result<String, ClientError> {
        self.begin_return_as(now, Ok)
    }

    /// Makes the return request file, hands it to `carry` and marks the license return-pending
    /// only when `carry` succeeded (see [`Client::begin_activation_as`]).
    pub(super) fn begin_return_as<T>(
        &self,
        now: DateTime<Utc>,
        carry: impl FnOnce(String) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let machine = self.probe.fingerprint()?;
        let Loaded { mut state, trust } = self.load(&machine)?;
        if let Trust::Untrusted(problem) = trust {
            return Err(ClientError::UntrustedState(problem));
        }
        let claims = self
            .installed_claims(&state)
            .filter(|claims| !claims.license_key.is_empty())
            .ok_or(ClientError::NoLicense)?;
        let request = ReturnRequest {
            role: Role::Machine,
            license_key: claims.license_key.clone(),
            target: licet_engine::ProductRef {
                product: claims.product.clone(),
                edition: claims.edition.clone(),
                version: claims.version.clone(),
            },
            machine: machine.clone(),
            nonce: fresh_nonce()?,
            created_at: now,
            certificate_serial: claims.serial.clone(),
        };
        let file = state.exchange.begin_return(&request)?;
        let carried = carry(file)?;
        state.observe(now);
        self.store.save(&state, &machine)?;
        Ok(carried)
    }

    /// Loads a return response file: verifies it, checks that it answers this machine's pending
    /// return, and removes the license.
    pub fn load_return_response(&self, file: &[u8], now: DateTime<Utc>) -> Result<(), ClientError> {
        let machine = self.probe.fingerprint()?;
        let Loaded { mut state, trust } = self.load(&machine)?;
        if let Trust::Untrusted(problem) = trust {
            return Err(ClientError::UntrustedState(problem));
        }
        let response = ReturnResponse::from_xml(file, &self.vendor_key)?;
        let mut exchange = state.exchange.clone();
        exchange.accept_return(&response, &machine)?;
        let claims = self.installed_claims(&state);
        if claims
            .as_ref()
            .is_some_and(|claims| claims.serial == response.certificate_serial())
        {
            state.certificate = None;
            state.server_license = None;
        }
        state.exchange = exchange;
        state.returned = Some(ReturnedLicense {
            key: response.license_key().to_owned(),
            edition: claims.map(|claims| claims.edition).unwrap_or_default(),
            at: now,
        });
        state.observe(now);
        Ok(self.store.save(&state, &machine)?)
    }
}

/// The code of a response file the bundle's file transport cannot read (not its response file).
pub const RESPONSE_FILE_INVALID: &str = "RESPONSE_FILE_INVALID";
/// The code of a text block the bundle's text transport cannot read (a typo, naming the line).
pub const TEXT_BLOCK_INVALID: &str = "TEXT_BLOCK_INVALID";

/// A refused response file or text block as the denial both the command line and the C ABI
/// report: its stable code and the sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarriedRefusal {
    /// `EXCHANGE_...` for an exchange file's rejection, else the code the caller named for what
    /// the transport plugin could not read.
    pub code: String,
    /// Why.
    pub message: String,
}

impl ClientError {
    /// A refused response, as a denial: an exchange file's rejection with its code, or what the
    /// bundle's transport plugin could not read with `unreadable` ([`RESPONSE_FILE_INVALID`],
    /// [`TEXT_BLOCK_INVALID`]). `None` for any other failure, which stays an error.
    pub fn carried_refusal(&self, unreadable: &str) -> Option<CarriedRefusal> {
        match self {
            ClientError::Exchange(inner) => Some(CarriedRefusal {
                code: inner.code().as_str().to_owned(),
                message: inner.report(),
            }),
            ClientError::Plugin(licet_plugin_host::PluginError::Plugin { message, .. }) => {
                Some(CarriedRefusal {
                    code: unreadable.to_owned(),
                    message: message.clone(),
                })
            }
            _ => None,
        }
    }

    /// The engine code of an exchange file's rejection, when that is what the error is.
    pub fn exchange_code(&self) -> Option<Code> {
        match self {
            ClientError::Exchange(error) => Some(error.code()),
            _ => None,
        }
    }

    /// The stable engine code of a refusal that has one: an exchange file's (`EXCHANGE_...`), or
    /// a served certificate's (`SERVER_LICENSE_INVALID`, `SERVER_LICENSE_EXPIRED`,
    /// `CERTIFICATE_OUTSIDE_SERVER_LICENSE`).
    pub fn code(&self) -> Option<Code> {
        match self {
            ClientError::Exchange(error) => Some(error.code()),
            ClientError::ServerLicense(error) => Some(error.code()),
            _ => None,
        }
    }
}

fn fresh_nonce() -> Result<Nonce, ClientError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| ClientError::Random(error.to_string()))?;
    Ok(Nonce(bytes))
}
