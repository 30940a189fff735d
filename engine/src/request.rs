//! Requests: what a client, an end user or an administrator asks of the engine.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::fingerprint::Fingerprint;
use crate::policy::Method;

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Actor {
    /// An end user, authenticated by the license key (or by the machine, for a trial).
    #[default]
    EndUser,
    /// A client account of the standard model; sees and manages only its own licenses.
    Client(String),
    /// A vendor administrator; manages every license.
    Administrator,
}

/// The product, edition and version a request is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRef {
    /// Product identifier.
    pub product: String,
    /// Edition, e.g. `professional`.
    pub edition: String,
    /// Version, e.g. `2027`.
    pub version: String,
}

/// A request with the actor who makes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Who is asking.
    pub actor: Actor,
    /// What is asked.
    pub action: Action,
}

/// What is asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Start the trial on a machine.
    StartTrial {
        /// Product, edition and version to try.
        target: ProductRef,
        /// The machine.
        machine: Fingerprint,
    },
    /// Check that a machine's trial is still running.
    ValidateTrial {
        /// The machine.
        machine: Fingerprint,
    },
    /// Bind a license key to a machine (or a dongle, or a network license server).
    Activate {
        /// The license key.
        key: String,
        /// Product, edition and version being activated.
        target: ProductRef,
        /// The machine.
        machine: Fingerprint,
        /// Online or by request/response files.
        method: Method,
    },
    /// Periodic validation of an activation; picks up administrator changes.
    Validate {
        /// The license key.
        key: String,
        /// The machine.
        machine: Fingerprint,
        /// The serial of the certificate the machine holds for the license, if any; a returned
        /// one is refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        certificate_serial: Option<String>,
    },
    /// Take a seat from a network license's pool.
    Checkout {
        /// The license key.
        key: String,
        /// Product, edition and version being run.
        target: ProductRef,
        /// The client machine.
        machine: Fingerprint,
        /// The client's session identifier; the same session gets the same seat back.
        session: String,
    },
    /// Renew a seat lease.
    Heartbeat {
        /// The license key.
        key: String,
        /// The session holding the seat.
        session: String,
    },
    /// Give a seat back to the pool.
    Release {
        /// The license key.
        key: String,
        /// The session holding the seat.
        session: String,
    },
    /// Take a seat out of the pool until a date, for offline use.
    Borrow {
        /// The license key.
        key: String,
        /// Product, edition and version being run.
        target: ProductRef,
        /// The client machine.
        machine: Fingerprint,
        /// The client's session identifier.
        session: String,
        /// When the seat comes back by itself.
        until: DateTime<Utc>,
    },
    /// Give a borrowed seat back early.
    ReturnBorrowed {
        /// The license key.
        key: String,
        /// The session that borrowed the seat.
        session: String,
        /// The serial of the borrow certificate being given back; end users must present the
        /// borrow's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        certificate_serial: Option<String>,
    },
    /// Return (remove) a standalone activation, freeing the key for another machine.
    Return {
        /// The license key.
        key: String,
        /// The machine whose activation is removed.
        machine: Fingerprint,
        /// Online or by return request/response files.
        method: Method,
        /// The serial of the certificate (or server license) being given back; end users must
        /// present the activation's current one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        certificate_serial: Option<String>,
    },
    /// Move an activation from one machine to another.
    Transfer {
        /// The license key.
        key: String,
        /// The machine giving up the license.
        from: Fingerprint,
        /// The machine receiving it.
        to: Fingerprint,
    },
    /// Change expiry, features or counters of an issued license (administrators only).
    Extend {
        /// The license key.
        key: String,
        /// The new expiry, when it changes.
        expires_at: Option<DateTime<Utc>>,
        /// Features to set.
        features: BTreeMap<String, bool>,
        /// Counters to set.
        counters: BTreeMap<String, i64>,
        /// The new seat count of a network license, when it changes (more seats bought).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seats: Option<u32>,
    },
    /// Revoke a license (administrators only).
    Revoke {
        /// The license key.
        key: String,
    },
}

/// The kind of a request, as named in policy rules (`on: [activate, borrow]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestKind {
    /// [`Action::StartTrial`].
    StartTrial,
    /// [`Action::ValidateTrial`].
    ValidateTrial,
    /// [`Action::Activate`].
    Activate,
    /// [`Action::Validate`].
    Validate,
    /// [`Action::Checkout`].
    Checkout,
    /// [`Action::Heartbeat`].
    Heartbeat,
    /// [`Action::Release`].
    Release,
    /// [`Action::Borrow`].
    Borrow,
    /// [`Action::ReturnBorrowed`].
    ReturnBorrowed,
    /// [`Action::Return`].
    Return,
    /// [`Action::Transfer`].
    Transfer,
    /// [`Action::Extend`].
    Extend,
    /// [`Action::Revoke`].
    Revoke,
}

impl RequestKind {
    /// Every request kind.
    pub const ALL: [RequestKind; 13] = [
        RequestKind::StartTrial,
        RequestKind::ValidateTrial,
        RequestKind::Activate,
        RequestKind::Validate,
        RequestKind::Checkout,
        RequestKind::Heartbeat,
        RequestKind::Release,
        RequestKind::Borrow,
        RequestKind::ReturnBorrowed,
        RequestKind::Return,
        RequestKind::Transfer,
        RequestKind::Extend,
        RequestKind::Revoke,
    ];

    /// The name used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::StartTrial => "start-trial",
            RequestKind::ValidateTrial => "validate-trial",
            RequestKind::Activate => "activate",
            RequestKind::Validate => "validate",
            RequestKind::Checkout => "checkout",
            RequestKind::Heartbeat => "heartbeat",
            RequestKind::Release => "release",
            RequestKind::Borrow => "borrow",
            RequestKind::ReturnBorrowed => "return-borrowed",
            RequestKind::Return => "return",
            RequestKind::Transfer => "transfer",
            RequestKind::Extend => "extend",
            RequestKind::Revoke => "revoke",
        }
    }

    /// The kind called `name` in a policy file.
    pub fn from_name(name: &str) -> Option<RequestKind> {
        RequestKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Action {
    /// The kind of this action.
    pub fn kind(&self) -> RequestKind {
        match self {
            Action::StartTrial { .. } => RequestKind::StartTrial,
            Action::ValidateTrial { .. } => RequestKind::ValidateTrial,
            Action::Activate { .. } => RequestKind::Activate,
            Action::Validate { .. } => RequestKind::Validate,
            Action::Checkout { .. } => RequestKind::Checkout,
            Action::Heartbeat { .. } => RequestKind::Heartbeat,
            Action::Release { .. } => RequestKind::Release,
            Action::Borrow { .. } => RequestKind::Borrow,
            Action::ReturnBorrowed { .. } => RequestKind::ReturnBorrowed,
            Action::Return { .. } => RequestKind::Return,
            Action::Transfer { .. } => RequestKind::Transfer,
            Action::Extend { .. } => RequestKind::Extend,
            Action::Revoke { .. } => RequestKind::Revoke,
        }
    }

    /// The license key the action is about, when it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Action::StartTrial { .. } | Action::ValidateTrial { .. } => None,
            Action::Activate { key, .. }
            | Action::Validate { key, .. }
            | Action::Checkout { key, .. }
            | Action::Heartbeat { key, .. }
            | Action::Release { key, .. }
            | Action::Borrow { key, .. }
            | Action::ReturnBorrowed { key, .. }
            | Action::Return { key, .. }
            | Action::Transfer { key, .. }
            | Action::Extend { key, .. }
            | Action::Revoke { key } => Some(key),
        }
    }

    /// The seat session the action names, for seat requests.
    pub fn session(&self) -> Option<&str> {
        match self {
            Action::Checkout { session, .. }
            | Action::Heartbeat { session, .. }
            | Action::Release { session, .. }
            | Action::Borrow { session, .. }
            | Action::ReturnBorrowed { session, .. } => Some(session),
            _ => None,
        }
    }

    /// The certificate serial the action presents, when it presents one.
    pub fn certificate_serial(&self) -> Option<&str> {
        match self {
            Action::Validate {
                certificate_serial, ..
            }
            | Action::Return {
                certificate_serial, ..
            }
            | Action::ReturnBorrowed {
                certificate_serial, ..
            } => certificate_serial.as_deref(),
            _ => None,
        }
    }

    /// The product, edition and version the action names, when it names them.
    pub fn target(&self) -> Option<&ProductRef> {
        match self {
            Action::StartTrial { target, .. }
            | Action::Activate { target, .. }
            | Action::Checkout { target, .. }
            | Action::Borrow { target, .. } => Some(target),
            _ => None,
        }
    }
}
