//! How online requests reach the vendor's server.
//!
//! The client library speaks to the server through a [`Transport`]: it sends an engine
//! [`Request`] and gets back the server's [`Decision`] and, when the decision grants something,
//! the vendor-signed certificate in armored form. The client verifies every certificate it receives
//! with the vendor's public key before it stores it, so a transport is trusted with nothing but
//! delivery. [`HttpTransport`](crate::http::HttpTransport) and the WebAssembly transport plugins
//! implement this trait.

use licet_engine::dongle::{DongleProof, CHALLENGE_LEN};
use licet_engine::{Decision, Request};

/// The server's answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The server's decision. Effects are the server's business and may be empty.
    pub decision: Decision,
    /// The signed certificate the decision issued, armored.
    pub certificate: Option<String>,
}

/// Why a request did not get an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The server could not be reached; the client runs on its offline grace.
    #[error("the license server cannot be reached: {0}")]
    Unreachable(String),
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
}
