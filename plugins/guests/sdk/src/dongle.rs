//! The licet USB dongle protocol, as plugins speak it (feature `dongle`).
//!
//! A dongle holds an Ed25519 key pair. Reports are 64 bytes and the dongle uses no report IDs, so
//! every report is written with a leading report-ID byte 0.
//!
//! - Request: `b'L', 0x02, 32, challenge[32]`, zero-padded.
//! - Answer, two input reports: `b'L', 0x82, status = 0, part = 0, public_key[32],
//!   signature[0..28]`, then `b'L', 0x82, status = 0, part = 1, signature[28..64]`, zero-padded.
//! - Error answer, one report: `b'L', 0x82, status != 0, ...`.
//!
//! The dongle signs `"licet-dongle-challenge-v1\0" || challenge` (the engine's
//! `licet_engine::dongle::signed_message`); the verifier checks the signature. The dongle's serial
//! is derived from its public key ([`dongle_serial`]), exactly as the engine derives it.

use alloc::string::String;
use alloc::vec::Vec;

use sha2::{Digest, Sha256};

/// The first byte of every licet dongle report.
pub const MAGIC: u8 = b'L';
/// The command byte of a challenge request.
pub const CHALLENGE_COMMAND: u8 = 0x02;
/// The command byte of the dongle's answer.
pub const CHALLENGE_ANSWER: u8 = 0x82;
/// The length of a challenge, in bytes.
pub const CHALLENGE_LEN: usize = 32;
/// The length of the dongle's Ed25519 public key, in bytes.
pub const PUBLIC_KEY_LEN: usize = 32;
/// The length of the dongle's Ed25519 signature, in bytes.
pub const SIGNATURE_LEN: usize = 64;
/// The length of a report, without the report-ID byte.
pub const REPORT_LEN: usize = 64;
/// How many signature bytes the first answer report carries.
pub const FIRST_SIGNATURE_PART: usize = REPORT_LEN - 4 - PUBLIC_KEY_LEN;
/// The length of a proof: the public key followed by the signature.
pub const PROOF_LEN: usize = PUBLIC_KEY_LEN + SIGNATURE_LEN;

const SERIAL_CONTEXT: &[u8] = b"licet-dongle-serial-v1\0";
const SERIAL_BYTES: usize = 10;

/// The serial of the dongle with `public_key`: `LD-` and the upper-case hex of the first 10 bytes
/// of `SHA-256("licet-dongle-serial-v1\0" || public_key)`.
pub fn dongle_serial(public_key: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let digest = Sha256::new()
        .chain_update(SERIAL_CONTEXT)
        .chain_update(public_key)
        .finalize();
    let mut serial = String::with_capacity(3 + 2 * SERIAL_BYTES);
    serial.push_str("LD-");
    for byte in &digest[..SERIAL_BYTES] {
        serial.push(char::from(DIGITS[usize::from(byte >> 4)]));
        serial.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    serial
}

/// The challenge request, with its leading report-ID byte 0 (65 bytes).
pub fn request_report(challenge: &[u8; CHALLENGE_LEN]) -> Vec<u8> {
    let mut report = Vec::with_capacity(REPORT_LEN + 1);
    report.push(0);
    report.extend_from_slice(&[MAGIC, CHALLENGE_COMMAND, CHALLENGE_LEN as u8]);
    report.extend_from_slice(challenge);
    report.resize(REPORT_LEN + 1, 0);
    report
}

/// Why a report is not the expected part of a dongle's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerError {
    /// The dongle answered with an error status.
    Status(u8),
    /// The report is not a licet dongle answer (wrong magic or command byte).
    NotAnAnswer,
    /// The report is another part than expected.
    WrongPart {
        /// The part expected.
        expected: u8,
        /// The part found.
        found: u8,
    },
    /// The report is too short to hold its part.
    TooShort(usize),
}

impl core::fmt::Display for AnswerError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AnswerError::Status(status) => {
                write!(
                    formatter,
                    "the dongle refused the challenge with status {status}"
                )
            }
            AnswerError::NotAnAnswer => formatter.write_str("is not a licet dongle answer"),
            AnswerError::WrongPart { expected, found } => {
                write!(formatter, "is part {found}, not part {expected}")
            }
            AnswerError::TooShort(length) => write!(formatter, "is too short ({length} bytes)"),
        }
    }
}

/// The payload of answer part `part` (after its 4 header bytes), checked for framing.
fn answer_part(report: &[u8], part: u8, payload_len: usize) -> Result<&[u8], AnswerError> {
    match report {
        [MAGIC, CHALLENGE_ANSWER, 0, found, payload @ ..] => {
            if *found != part {
                return Err(AnswerError::WrongPart {
                    expected: part,
                    found: *found,
                });
            }
            payload
                .get(..payload_len)
                .ok_or(AnswerError::TooShort(report.len()))
        }
        [MAGIC, CHALLENGE_ANSWER, status, ..] if *status != 0 => Err(AnswerError::Status(*status)),
        _ => Err(AnswerError::NotAnAnswer),
    }
}

/// Reads the first answer report: the public key and the first signature bytes.
pub fn first_answer_part(report: &[u8]) -> Result<Vec<u8>, AnswerError> {
    let payload = answer_part(report, 0, PUBLIC_KEY_LEN + FIRST_SIGNATURE_PART)?;
    let mut proof = Vec::with_capacity(PROOF_LEN);
    proof.extend_from_slice(payload);
    Ok(proof)
}

/// Appends the second answer report's signature bytes to `proof`, the first part's bytes.
pub fn second_answer_part(mut proof: Vec<u8>, report: &[u8]) -> Result<Vec<u8>, AnswerError> {
    let payload = answer_part(report, 1, SIGNATURE_LEN - FIRST_SIGNATURE_PART)?;
    proof.extend_from_slice(payload);
    Ok(proof)
}
