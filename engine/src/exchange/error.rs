//! Why an exchange file or a step of the exchange was rejected.

use crate::certificate::CertificateError;
use crate::decision::Code;

use super::{MAX_DEPTH, MAX_ELEMENTS, MAX_FILE_BYTES};

/// Why a request or response file, or a step of the exchange, was rejected.
///
/// Every variant maps to a stable [`Code`] with [`ExchangeError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The file is larger than any exchange file (checked before parsing).
    #[error("file is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge,
    /// The bytes are not UTF-8.
    #[error("file is not valid UTF-8")]
    NotUtf8,
    /// The XML declaration names another encoding than UTF-8.
    #[error("unsupported encoding `{0}`, only UTF-8 is accepted")]
    UnsupportedEncoding(String),
    /// The file has a document type declaration (and with it, possibly entity declarations).
    #[error("document type declarations are not allowed")]
    DocType,
    /// An entity reference other than the five predefined ones.
    #[error("entity reference `&{0};` is not allowed")]
    EntityReference(String),
    /// A processing instruction other than the XML declaration.
    #[error("processing instruction `{0}` is not allowed")]
    ProcessingInstruction(String),
    /// Elements nested deeper than any exchange file needs.
    #[error("elements are nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// More elements than any exchange file needs.
    #[error("file has more than {MAX_ELEMENTS} elements")]
    TooManyElements,
    /// The file is not well-formed XML.
    #[error("malformed xml: {0}")]
    Xml(String),
    /// The root element is not the one of the expected kind of file.
    #[error("expected a `{expected}` file, found root element `{found}`")]
    WrongKind {
        /// The root element expected.
        expected: &'static str,
        /// The root element found.
        found: String,
    },
    /// A `format` version this build does not read.
    #[error("unsupported format version `{0}`")]
    UnsupportedFormat(String),
    /// A required element is missing.
    #[error("missing element `{0}`")]
    MissingElement(String),
    /// An element appears more than once.
    #[error("duplicate element `{0}`")]
    DuplicateElement(String),
    /// An element that does not belong there.
    #[error("unknown element `{0}`")]
    UnknownElement(String),
    /// A required attribute is missing.
    #[error("missing attribute `{attribute}` on `{element}`")]
    MissingAttribute {
        /// The element.
        element: String,
        /// The attribute.
        attribute: &'static str,
    },
    /// An attribute appears more than once.
    #[error("duplicate attribute `{attribute}` on `{element}`")]
    DuplicateAttribute {
        /// The element.
        element: String,
        /// The attribute.
        attribute: String,
    },
    /// An attribute that does not belong there.
    #[error("unknown attribute `{attribute}` on `{element}`")]
    UnknownAttribute {
        /// The element.
        element: String,
        /// The attribute.
        attribute: String,
    },
    /// Text where only elements belong.
    #[error("unexpected text in `{0}`")]
    UnexpectedText(String),
    /// A value that is empty, has control characters or surrounding spaces, or is out of range.
    #[error("invalid `{field}`: {reason}")]
    InvalidValue {
        /// The element or attribute.
        field: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A base64 value that does not decode.
    #[error("`{0}` is not valid base64")]
    InvalidBase64(&'static str),
    /// A time that is not `YYYY-MM-DDTHH:MM:SSZ` or is out of range.
    #[error("`{field}` is not a timestamp of the form `YYYY-MM-DDTHH:MM:SSZ`: `{value}`")]
    InvalidTimestamp {
        /// The element.
        field: &'static str,
        /// The text found.
        value: String,
    },
    /// The signature does not verify with the vendor key.
    #[error("signature does not match the vendor key")]
    BadSignature,
    /// The signed content is not a valid signed response of this kind.
    #[error("signed content is invalid: {0}")]
    SignedContent(&'static str),
    /// The embedded certificate is invalid.
    #[error("embedded certificate is invalid: {0}")]
    Certificate(CertificateError),
    /// A readable field says something else than the signed content.
    #[error("`{0}` does not match the signed content")]
    FieldMismatch(&'static str),
    /// The file differs from the layout the vendor's server writes.
    #[error("the file was changed after it was issued")]
    LayoutAltered,
    /// The response was issued for another machine.
    #[error("the response is for another machine")]
    WrongMachine,
    /// The response answers no pending request of this machine (unknown, altered or already used).
    #[error("the response does not answer a pending request of this machine")]
    UnknownRequest,
    /// The response is not newer than the last one accepted for the license.
    #[error(
        "update counter {received} of license `{license_key}` is not newer than {last_accepted}"
    )]
    StaleResponse {
        /// The license key.
        license_key: String,
        /// The response's update counter.
        received: u64,
        /// The last accepted update counter.
        last_accepted: u64,
    },
    /// A return response for a license that has no pending return (it is still in use).
    #[error("license `{0}` has no pending return")]
    ReturnNotPending(String),
    /// The certificate serial belongs to an activation that was returned.
    #[error("certificate `{0}` belongs to a returned activation")]
    SerialReturned(String),
    /// A request was created with the nonce of a request still pending.
    #[error("a request with nonce `{0}` is already pending")]
    NonceReused(String),
    /// The certificate handed to the response does not certify the request.
    #[error("the certificate does not answer the request: {0}")]
    CertificateMismatch(&'static str),
}

impl ExchangeError {
    /// The stable outcome code of the error.
    pub fn code(&self) -> Code {
        match self {
            ExchangeError::TooLarge
            | ExchangeError::NotUtf8
            | ExchangeError::UnsupportedEncoding(_)
            | ExchangeError::DocType
            | ExchangeError::EntityReference(_)
            | ExchangeError::ProcessingInstruction(_)
            | ExchangeError::TooDeep
            | ExchangeError::TooManyElements
            | ExchangeError::Xml(_)
            | ExchangeError::WrongKind { .. }
            | ExchangeError::UnsupportedFormat(_)
            | ExchangeError::MissingElement(_)
            | ExchangeError::DuplicateElement(_)
            | ExchangeError::UnknownElement(_)
            | ExchangeError::MissingAttribute { .. }
            | ExchangeError::DuplicateAttribute { .. }
            | ExchangeError::UnknownAttribute { .. }
            | ExchangeError::UnexpectedText(_)
            | ExchangeError::InvalidValue { .. }
            | ExchangeError::InvalidBase64(_)
            | ExchangeError::InvalidTimestamp { .. } => Code::ExchangeMalformed,
            ExchangeError::BadSignature
            | ExchangeError::SignedContent(_)
            | ExchangeError::Certificate(_)
            | ExchangeError::FieldMismatch(_)
            | ExchangeError::LayoutAltered => Code::ExchangeTampered,
            ExchangeError::WrongMachine => Code::ExchangeWrongMachine,
            ExchangeError::UnknownRequest => Code::ExchangeUnknownRequest,
            ExchangeError::StaleResponse { .. } => Code::ExchangeStale,
            ExchangeError::ReturnNotPending(_) => Code::ExchangeReturnNotPending,
            ExchangeError::SerialReturned(_) => Code::ExchangeSerialReturned,
            ExchangeError::NonceReused(_) | ExchangeError::CertificateMismatch(_) => {
                Code::InvalidRequest
            }
        }
    }
}
