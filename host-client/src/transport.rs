//! How online requests reach the vendor's activation center or a customer's license server.
//!
//! The client library speaks to the server through a [`Transport`]: it sends an engine
//! [`Request`] and gets back the server's [`Decision`] and, when the decision grants something,
//! the signed certificate in armored form. The activation center signs certificates with the
//! vendor's key; a customer's license server signs its seat and borrow certificates with its own
//! key and sends the vendor-signed server license with them. The client verifies every certificate
//! it receives with the vendor's public key (directly, or through the server license) before it
//! stores it, so a transport is trusted with nothing but delivery.
//! [`HttpTransport`](crate::http::HttpTransport) and
//! [`PluginTransport`](crate::plugin_transport::PluginTransport) (through a WebAssembly transport
//! plugin) implement this trait.

use chrono::{DateTime, Utc};
use licet_engine::dongle::{DongleProof, CHALLENGE_LEN};
use licet_engine::report::Report as _;
use licet_engine::{Decision, Request};
use licet_plugin_host::http::HttpError;
pub use licet_plugin_host::http::TlsFailure;
use serde::{Deserialize, Serialize};

/// The server's answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The server's decision. Effects are the server's business and may be empty.
    pub decision: Decision,
    /// The signed certificate the decision issued, armored.
    pub certificate: Option<String>,
    /// The vendor-signed server license, armored, when the certificate was signed by a customer's
    /// license server (with its own key) rather than by the vendor.
    pub server_license: Option<String>,
}

impl Reply {
    /// A reply with no server license: a decision and the vendor-signed certificate it issued.
    pub fn new(decision: Decision, certificate: Option<String>) -> Reply {
        Reply {
            decision,
            certificate,
            server_license: None,
        }
    }
}

/// What a license server serves, as `GET /v1/seats/query` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatQuery {
    /// One entry per network license the server serves.
    pub licenses: Vec<ServedLicense>,
}

/// One network license a license server serves, with its seats now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedLicense {
    /// The network license key.
    pub key: String,
    /// Product identifier.
    pub product: String,
    /// Edition.
    pub edition: String,
    /// Version.
    pub version: String,
    /// Seats of the pool.
    pub seats: u32,
    /// Seats free now.
    pub free: u32,
    /// Seats borrowed now.
    pub borrowed: u32,
    /// The longest borrow, in days; `None` when seats cannot be borrowed.
    pub borrow_max_days: Option<u32>,
    /// End of the license's term; `None` for perpetual.
    pub expires_at: Option<DateTime<Utc>>,
    /// `serving`, or why not: `CODE: sentence` (e.g. `SERVER_LICENSE_EXPIRED: ...`).
    pub status: String,
}

impl ServedLicense {
    /// Whether the license server serves seats of this license now.
    pub fn is_serving(&self) -> bool {
        self.status == "serving"
    }
}

/// Why a request did not get an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The server could not be reached (no address, connection refused, no answer in time); the
    /// client runs on its offline grace.
    #[error("the license server cannot be reached: {0}")]
    Unreachable(String),
    /// Plain `http://` to a server that is not on this machine, which the caller did not allow
    /// (`HttpTransport::allow_plain_http`, `licet --allow-plain-http`). Nothing was sent.
    #[error(
        "plain HTTP to `{host}` is refused: use https:// (or --allow-plain-http on a trusted network)"
    )]
    PlainHttpRefused {
        /// The server's host.
        host: String,
    },
    /// The TLS handshake failed: the server's certificate is not trusted or does not match the
    /// pinned certificate, or the server does not speak TLS.
    #[error("TLS with the license server `{host}` failed: {failure}")]
    Tls {
        /// The server's host.
        host: String,
        /// What failed.
        failure: TlsFailure,
    },
    /// The server's answer is larger than the transport's limit.
    #[error("the license server's answer is larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The pinned server certificate is neither a DER nor a PEM X.509 certificate.
    #[error("invalid pinned server certificate: {0}")]
    InvalidPin(String),
    /// The server answered something that is not a reply.
    #[error("the license server sent an invalid reply: {0}")]
    InvalidReply(String),
    /// The server refused the request for a reason that is not a licensing decision (rate limit,
    /// storage unavailable, unknown route, ...).
    #[error("the license server refused the request: {code}: {message} (HTTP {status})")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The server's code, e.g. `RATE_LIMITED`.
        code: String,
        /// The server's sentence.
        message: String,
    },
    /// The server address is not one the transport can use.
    #[error("invalid server address {0}")]
    InvalidUrl(String),
    /// The request cannot be sent by this transport.
    #[error("the request cannot be sent: {0}")]
    Unsupported(String),
    /// A transport plugin failed: it refused the request or could not read the reply (its own
    /// error, such as the server's error answer), or the sandbox stopped it.
    #[error("the transport plugin failed: {0}")]
    Plugin(String),
}

impl From<HttpError> for TransportError {
    fn from(error: HttpError) -> TransportError {
        match error {
            HttpError::InvalidUrl(why) => TransportError::InvalidUrl(why),
            HttpError::PlainHttpRefused { host } => TransportError::PlainHttpRefused { host },
            HttpError::Tls { host, failure } => TransportError::Tls { host, failure },
            HttpError::Unreachable(why) => TransportError::Unreachable(why),
            HttpError::TooLarge { limit } => TransportError::TooLarge { limit },
            HttpError::InvalidReply(why) => TransportError::InvalidReply(why),
            HttpError::InvalidRequest(why) => TransportError::Unsupported(why),
            HttpError::InvalidPin(why) => TransportError::InvalidPin(why),
            other => TransportError::InvalidReply(other.report()),
        }
    }
}

/// Delivers requests to the vendor's server.
pub trait Transport {
    /// Sends `request` and waits for the server's reply.
    fn send(&mut self, request: &Request) -> Result<Reply, TransportError>;

    /// A fresh challenge from the server for the machine's dongle to sign (standalone dongle
    /// licenses). Transports that cannot carry dongle proofs answer `Unsupported`.
    fn dongle_challenge(&mut self) -> Result<[u8; CHALLENGE_LEN], TransportError> {
        Err(TransportError::Unsupported(
            "this transport cannot carry dongle proofs".to_owned(),
        ))
    }

    /// Sends `request` with the dongle's answer `proof` to `challenge` (from
    /// [`Transport::dongle_challenge`]).
    fn send_with_dongle(
        &mut self,
        request: &Request,
        challenge: &[u8; CHALLENGE_LEN],
        proof: &DongleProof,
    ) -> Result<Reply, TransportError> {
        let _ = (request, challenge, proof);
        Err(TransportError::Unsupported(
            "this transport cannot carry dongle proofs".to_owned(),
        ))
    }

    /// What the license server serves: its network licenses with their seats. Transports that
    /// cannot ask answer `Unsupported`.
    fn seat_query(&mut self) -> Result<SeatQuery, TransportError> {
        Err(TransportError::Unsupported(
            "this transport cannot query a license server".to_owned(),
        ))
    }
}
