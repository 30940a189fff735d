//! Manual activation and return by request and response files.
//!
//! On a machine without a connection, the client writes an **activation request** file (license
//! key, product, edition, version, the machine's fingerprint, a fresh nonce and the time). The user
//! carries it to the vendor (web page, e-mail, API); the server parses it, turns it into an engine
//! [`Request`](crate::Request) with [`ActivationRequest::engine_request`], decides, and answers with
//! an **activation response** file holding the certificate. The client loads the response and is
//! activated. Returning a license works the same way with a **return request** and a **return
//! response**; the license is gone locally only once the server has confirmed the return. A
//! network license server activates and returns its network key with the same files and the role
//! [`Role::LicenseServer`].
//!
//! Requests are plain XML; nothing in them is trusted. Responses are signed with the vendor's
//! Ed25519 key over canonical bytes (never over XML): the file carries readable fields for people
//! and the signed bytes in base64 with their signature. The loader checks the file's structure,
//! verifies the signature over the exact decoded bytes, decodes only those, and rejects the file
//! when a readable field, or any byte of the layout, differs from what the signed content says.
//! The signed content binds the digest of the exact request file, the request's nonce, the
//! machine's fingerprint, the license key, the server's per-license update counter and the issue
//! time, and for an activation the certificate bound to that machine.
//!
//! [`ExchangeState`] is the client's record of pending requests and of the last update counter
//! accepted per license: a response loads only on the machine and for the request that produced
//! it, only once, and in order. Like the rest of the engine, this module does no I/O and reads no
//! clock: nonces and times are inputs. The file formats are described in `docs/exchange-files.md`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

mod error;
mod request;
mod response;
mod state;
mod xml;

pub use error::ExchangeError;
pub use request::{ActivationRequest, ReturnRequest};
pub use response::{ActivationResponse, ReturnResponse, ServerActivationResponse};
pub use state::{ExchangeState, PendingKind, PendingRequest};

/// The largest exchange file accepted, in bytes; checked before parsing.
pub const MAX_FILE_BYTES: usize = 64 * 1024;
/// The deepest element nesting accepted (files use three levels).
pub const MAX_DEPTH: usize = 8;
/// The most elements a file may have.
pub const MAX_ELEMENTS: usize = 256;
/// The most fingerprint components a file may carry.
pub const MAX_COMPONENTS: usize = 64;
/// The file format version written, and the only one read.
pub const FORMAT_VERSION: &str = "1";

/// Who the exchange is for: an end user's machine or a network license server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A standalone license on an end user's machine.
    Machine,
    /// A network license bound to the machine running the network license server.
    LicenseServer,
}

impl Role {
    /// The name written in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Machine => "machine",
            Role::LicenseServer => "license-server",
        }
    }

    fn from_name(name: &str) -> Result<Role, ExchangeError> {
        match name {
            "machine" => Ok(Role::Machine),
            "license-server" => Ok(Role::LicenseServer),
            _ => Err(ExchangeError::InvalidValue {
                field: "@role".to_owned(),
                reason: "must be `machine` or `license-server`",
            }),
        }
    }

    fn tag(self) -> u8 {
        match self {
            Role::Machine => 1,
            Role::LicenseServer => 2,
        }
    }

    fn from_tag(tag: u8) -> Option<Role> {
        match tag {
            1 => Some(Role::Machine),
            2 => Some(Role::LicenseServer),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! hex32 {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The 32 bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&xml::hex(&self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl FromStr for $name {
            type Err = ExchangeError;

            /// Parses 64 lowercase hexadecimal digits.
            fn from_str(text: &str) -> Result<Self, ExchangeError> {
                xml::parse_hex32($field, text).map($name)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hex32!(
    /// A request's nonce: 32 random bytes chosen by the client for each request, written as 64
    /// lowercase hexadecimal digits. The engine takes it as an input and never makes one.
    Nonce,
    "nonce"
);

hex32!(
    /// SHA-256 of the exact bytes of a request file, written as 64 lowercase hexadecimal digits.
    RequestDigest,
    "request-digest"
);

impl RequestDigest {
    /// The digest of a request file's exact bytes.
    pub fn of(file: &[u8]) -> RequestDigest {
        RequestDigest(Sha256::digest(file).into())
    }
}

/// The server's check that a certificate serial presented to it (in a validation or a return
/// request) does not belong to an activation that was already returned.
///
/// When the server issues a return response it records the returned certificate serial; a
/// machine that kept the license anyway (restored from a backup, say) is found here with
/// [`ExchangeError::SerialReturned`] (`EXCHANGE_SERIAL_RETURNED`).
pub fn check_serial_not_returned<'a>(
    serial: &str,
    returned_serials: impl IntoIterator<Item = &'a str>,
) -> Result<(), ExchangeError> {
    if returned_serials
        .into_iter()
        .any(|returned| returned == serial)
    {
        return Err(ExchangeError::SerialReturned(serial.to_owned()));
    }
    Ok(())
}

/// Parses a file and checks its root element, format version and role.
fn open_root(file: &[u8], expected: &'static str) -> Result<(xml::Element, Role), ExchangeError> {
    let root = xml::parse_document(file)?;
    if root.name != expected {
        return Err(ExchangeError::WrongKind {
            expected,
            found: root.name,
        });
    }
    let attributes = root.attributes(&["format", "role"])?;
    let format = root.required(&attributes, "format")?;
    if format != FORMAT_VERSION {
        return Err(ExchangeError::UnsupportedFormat(format.to_owned()));
    }
    let role = Role::from_name(root.required(&attributes, "role")?)?;
    Ok((root, role))
}
