//! How online requests reach the vendor's server.
//!
//! The client library speaks to the server through a [`Transport`]: it sends an engine
//! [`Request`] and gets back the server's [`Decision`] and, when the decision grants something,
//! the vendor-signed certificate in armored form. The client verifies every certificate it receives
//! with the vendor's public key before it stores it, so a transport is trusted with nothing but
//! delivery. HTTP and the WebAssembly transport plugins implement this trait.

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
}

/// Delivers requests to the vendor's server.
pub trait Transport {
    /// Sends `request` and waits for the server's reply.
    fn send(&mut self, request: &Request) -> Result<Reply, TransportError>;
}
