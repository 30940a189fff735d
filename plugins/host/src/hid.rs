//! USB HID access for dongle checks: the trait plugins reach through the host, the hidapi backend
//! for real dongles, and a software dongle that speaks the same protocol.
//!
//! # The dongle protocol
//!
//! A licet dongle holds an Ed25519 key pair; its serial is derived from the public key
//! ([`licet_engine::dongle::dongle_serial`]). Reports are 64 bytes and the dongle uses no report
//! IDs, so every report is written with a leading report-ID byte 0.
//!
//! - Request: `b'L', 0x02, 32, challenge[32]`, zero-padded.
//! - Answer, two input reports: `b'L', 0x82, status = 0, part = 0, public_key[32],
//!   signature[0..28]`, then `b'L', 0x82, status = 0, part = 1, signature[28..64]`, zero-padded.
//! - Error answer, one report: `b'L', 0x82, status != 0, ...`, zero-padded.
//!
//! The dongle signs [`licet_engine::dongle::signed_message`] of the challenge. The verifier (the
//! host, through [`crate::HardwareCheckPlugin::dongle_check`]) checks the signature with the
//! public key and that the key is the serial's: it holds no secret.
//!
//! # Software dongle files
//!
//! [`SoftwareDongle::write_file`] and [`SoftwareDongle::read_file`] keep a development or test
//! dongle in a text file (mode 0600 on Unix):
//!
//! ```text
//! licet-software-dongle 1
//! vendor-id 0x1209
//! product-id 0x4c43
//! key <64 lower-case hex digits of the 32-byte Ed25519 seed>
//! ```

use licet_engine::report::Report as _;
use std::collections::VecDeque;
use std::fmt;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use ed25519_dalek::{Signer as _, SigningKey};
use licet_engine::dongle::{
    dongle_serial, signed_message, DongleProof, CHALLENGE_LEN, PUBLIC_KEY_LEN,
};

/// Why a HID device could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HidError {
    /// No device with these IDs is present.
    #[error("no HID device {vendor_id:04x}:{product_id:04x} is present")]
    NotFound {
        /// USB vendor ID.
        vendor_id: u16,
        /// USB product ID.
        product_id: u16,
    },
    /// Nothing arrived within the timeout.
    #[error("the HID device did not answer in time")]
    Timeout,
    /// The HID library or the device failed.
    #[error("{0}")]
    Device(String),
}

/// An open HID device.
pub trait HidDevice: Send {
    /// Writes one output report; the first byte is the report ID (0 if the device uses none).
    fn write(&mut self, report: &[u8]) -> Result<(), HidError>;
    /// Reads one input report, waiting at most `timeout`.
    fn read(&mut self, timeout: Duration) -> Result<Vec<u8>, HidError>;
}

/// Opens HID devices. The host checks the plugin's manifest before it asks.
pub trait HidBackend: Send + Sync {
    /// Opens the first device with these IDs.
    fn open(&self, vendor_id: u16, product_id: u16) -> Result<Box<dyn HidDevice>, HidError>;
}

/// Real USB HID devices through hidapi.
pub struct HidApiBackend {
    api: Mutex<hidapi::HidApi>,
}

impl fmt::Debug for HidApiBackend {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("HidApiBackend")
    }
}

/// A HID device found by enumeration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HidDeviceInfo {
    /// USB vendor ID.
    pub vendor_id: u16,
    /// USB product ID.
    pub product_id: u16,
    /// The device's serial number string, if it has one.
    pub serial: Option<String>,
}

impl HidApiBackend {
    /// Initializes hidapi.
    pub fn new() -> Result<HidApiBackend, HidError> {
        let api = hidapi::HidApi::new().map_err(|error| HidError::Device(error.report()))?;
        Ok(HidApiBackend {
            api: Mutex::new(api),
        })
    }

    /// The present devices with these IDs.
    pub fn list(&self, vendor_id: u16, product_id: u16) -> Result<Vec<HidDeviceInfo>, HidError> {
        let mut api = self.lock()?;
        api.refresh_devices()
            .map_err(|error| HidError::Device(error.report()))?;
        Ok(api
            .device_list()
            .filter(|info| info.vendor_id() == vendor_id && info.product_id() == product_id)
            .map(|info| HidDeviceInfo {
                vendor_id: info.vendor_id(),
                product_id: info.product_id(),
                serial: info.serial_number().map(str::to_string),
            })
            .collect())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, hidapi::HidApi>, HidError> {
        self.api
            .lock()
            .map_err(|_| HidError::Device("the hidapi handle is poisoned".to_string()))
    }
}

struct HidApiDevice(hidapi::HidDevice);

impl HidDevice for HidApiDevice {
    fn write(&mut self, report: &[u8]) -> Result<(), HidError> {
        self.0
            .write(report)
            .map(|_| ())
            .map_err(|error| HidError::Device(error.report()))
    }

    fn read(&mut self, timeout: Duration) -> Result<Vec<u8>, HidError> {
        let mut buffer = [0u8; 64];
        let millis = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        match self.0.read_timeout(&mut buffer, millis) {
            Ok(0) => Err(HidError::Timeout),
            Ok(count) => Ok(buffer[..count.min(buffer.len())].to_vec()),
            Err(error) => Err(HidError::Device(error.report())),
        }
    }
}

impl HidBackend for HidApiBackend {
    fn open(&self, vendor_id: u16, product_id: u16) -> Result<Box<dyn HidDevice>, HidError> {
        if self.list(vendor_id, product_id)?.is_empty() {
            return Err(HidError::NotFound {
                vendor_id,
                product_id,
            });
        }
        let api = self.lock()?;
        let device = api
            .open(vendor_id, product_id)
            .map_err(|error| HidError::Device(error.report()))?;
        Ok(Box::new(HidApiDevice(device)))
    }
}

/// The USB vendor ID licet dongles present by default (pid.codes).
pub const DEFAULT_DONGLE_VENDOR_ID: u16 = 0x1209;
/// The USB product ID licet dongles present by default.
pub const DEFAULT_DONGLE_PRODUCT_ID: u16 = 0x4c43;

/// The first byte of every licet dongle report.
const MAGIC: u8 = b'L';
/// The command byte of a challenge request.
const CHALLENGE_COMMAND: u8 = 0x02;
/// The command byte of a dongle's answer.
const CHALLENGE_ANSWER: u8 = 0x82;
/// The length of a report, without the report-ID byte.
const REPORT_LEN: usize = 64;
/// How many signature bytes the first answer report carries.
const FIRST_SIGNATURE_PART: usize = REPORT_LEN - 4 - PUBLIC_KEY_LEN;
/// The status of an answer to a request the dongle does not understand.
const STATUS_BAD_REQUEST: u8 = 1;

/// The first line of a software dongle file.
const FILE_HEADER: &str = "licet-software-dongle 1";
/// The most bytes a software dongle file may have.
const MAX_FILE_BYTES: u64 = 4 << 10;

/// Parses a USB vendor or product ID: `0x` and hex digits (`0x1209`), or decimal.
pub fn parse_usb_id(text: &str) -> Option<u16> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|byte| byte.is_ascii_hexdigit()) => {
            u16::from_str_radix(hex, 16).ok()
        }
        Some(_) => None,
        None if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) => {
            text.parse().ok()
        }
        None => None,
    }
}

/// What is wrong in the text of a software dongle file. Lines are numbered from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DongleFileError {
    /// The file is larger than any software dongle file.
    #[error("the file is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge,
    /// The file is not UTF-8 text.
    #[error("the file is not text")]
    NotText,
    /// The first line is not `licet-software-dongle 1`.
    #[error("line 1 is `{found}`, not `{FILE_HEADER}`")]
    Header {
        /// The first line as found.
        found: String,
    },
    /// A line that is none of `vendor-id`, `product-id` and `key`.
    #[error("line {line}: unknown line `{text}`")]
    UnknownLine {
        /// The line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// A field given twice.
    #[error("line {line}: `{field}` is given a second time")]
    DuplicateLine {
        /// The line number of the second one.
        line: usize,
        /// The field.
        field: &'static str,
    },
    /// A field missing.
    #[error("`{field}` is missing")]
    MissingLine {
        /// The field.
        field: &'static str,
    },
    /// A vendor or product ID that is not a 16-bit number.
    #[error("line {line}: `{field}` = `{value}` is not a USB ID")]
    BadId {
        /// The line number.
        line: usize,
        /// `vendor-id` or `product-id`.
        field: &'static str,
        /// The value as found.
        value: String,
    },
    /// The key has characters that are not hex digits.
    #[error("line {line}: the key is not hexadecimal")]
    BadHex {
        /// The line number.
        line: usize,
    },
    /// The key has the wrong number of hex digits.
    #[error("line {line}: the key has {digits} hex digits, not 64")]
    KeyLength {
        /// The line number.
        line: usize,
        /// How many digits it has.
        digits: usize,
    },
}

/// Why a software dongle could not be made, read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SoftwareDongleError {
    /// The file could not be read or written (an existing file is not overwritten unless asked).
    #[error("`{path}`")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a software dongle file.
    #[error("`{path}` is not a licet software dongle file")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: DongleFileError,
    },
    /// The system's random source failed.
    #[error("cannot draw a random dongle key: {0}")]
    Random(String),
}

/// A dongle in software: answers challenges like a hardware dongle, for tests and development.
#[derive(Clone)]
pub struct SoftwareDongle {
    /// USB vendor ID it presents.
    pub vendor_id: u16,
    /// USB product ID it presents.
    pub product_id: u16,
    /// Its Ed25519 key; the serial is derived from the public half.
    pub signing_key: SigningKey,
}

impl fmt::Debug for SoftwareDongle {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SoftwareDongle")
            .field("vendor_id", &format_args!("{:#06x}", self.vendor_id))
            .field("product_id", &format_args!("{:#06x}", self.product_id))
            .field("serial", &self.serial())
            .finish_non_exhaustive()
    }
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|digit| u8::try_from(digit).ok())
}

impl SoftwareDongle {
    /// A dongle with a fresh random key.
    pub fn generate(
        vendor_id: u16,
        product_id: u16,
    ) -> Result<SoftwareDongle, SoftwareDongleError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|error| SoftwareDongleError::Random(error.to_string()))?;
        let signing_key = SigningKey::from_bytes(&seed);
        seed.fill(0);
        Ok(SoftwareDongle {
            vendor_id,
            product_id,
            signing_key,
        })
    }

    /// Its Ed25519 public key.
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.signing_key.verifying_key().to_bytes()
    }

    /// Its serial, derived from its public key.
    pub fn serial(&self) -> String {
        dongle_serial(&self.public_key())
    }

    /// Its answer to `challenge`, as a hardware dongle would give it.
    pub fn answer(&self, challenge: &[u8; CHALLENGE_LEN]) -> DongleProof {
        DongleProof {
            public_key: self.public_key(),
            signature: self.signing_key.sign(&signed_message(challenge)).to_bytes(),
        }
    }

    /// The file form (see the [module documentation](self)).
    pub fn to_text(&self) -> String {
        let mut key = String::with_capacity(64);
        for byte in self.signing_key.as_bytes() {
            key.push_str(&format!("{byte:02x}"));
        }
        format!(
            "{FILE_HEADER}\nvendor-id {:#06x}\nproduct-id {:#06x}\nkey {key}\n",
            self.vendor_id, self.product_id
        )
    }

    /// Reads the file form. Every field must appear exactly once; blank lines are ignored.
    pub fn from_text(text: &str) -> Result<SoftwareDongle, DongleFileError> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(index, line)| (index + 1, line));
        let header = lines
            .next()
            .map(|(_, line)| line.trim())
            .unwrap_or_default();
        if header != FILE_HEADER {
            return Err(DongleFileError::Header {
                found: header.chars().take(80).collect(),
            });
        }
        let mut vendor_id = None;
        let mut product_id = None;
        let mut seed: Option<[u8; 32]> = None;
        for (line, text) in lines {
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let (name, value) = text.split_once(' ').unwrap_or((text, ""));
            let value = value.trim();
            match name {
                "vendor-id" | "product-id" => {
                    let field = if name == "vendor-id" {
                        "vendor-id"
                    } else {
                        "product-id"
                    };
                    let slot = if name == "vendor-id" {
                        &mut vendor_id
                    } else {
                        &mut product_id
                    };
                    if slot.is_some() {
                        return Err(DongleFileError::DuplicateLine { line, field });
                    }
                    *slot = Some(parse_usb_id(value).ok_or_else(|| DongleFileError::BadId {
                        line,
                        field,
                        value: value.chars().take(80).collect(),
                    })?);
                }
                "key" => {
                    if seed.is_some() {
                        return Err(DongleFileError::DuplicateLine { line, field: "key" });
                    }
                    let digits = value.as_bytes();
                    if !digits.iter().all(u8::is_ascii_hexdigit) {
                        return Err(DongleFileError::BadHex { line });
                    }
                    if digits.len() != 64 {
                        return Err(DongleFileError::KeyLength {
                            line,
                            digits: digits.len(),
                        });
                    }
                    let mut bytes = [0u8; 32];
                    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
                        let (Some(high), Some(low)) = (hex_digit(pair[0]), hex_digit(pair[1]))
                        else {
                            return Err(DongleFileError::BadHex { line });
                        };
                        *byte = (high << 4) | low;
                    }
                    seed = Some(bytes);
                }
                _ => {
                    return Err(DongleFileError::UnknownLine {
                        line,
                        text: text.chars().take(80).collect(),
                    })
                }
            }
        }
        let vendor_id = vendor_id.ok_or(DongleFileError::MissingLine { field: "vendor-id" })?;
        let product_id = product_id.ok_or(DongleFileError::MissingLine {
            field: "product-id",
        })?;
        let mut seed = seed.ok_or(DongleFileError::MissingLine { field: "key" })?;
        let signing_key = SigningKey::from_bytes(&seed);
        seed.fill(0);
        Ok(SoftwareDongle {
            vendor_id,
            product_id,
            signing_key,
        })
    }

    /// Writes the dongle to a new file at `path` (mode 0600 on Unix); an existing file is an
    /// error.
    pub fn write_file(&self, path: &Path) -> Result<(), SoftwareDongleError> {
        self.write_new_file(path)
    }

    /// Writes the dongle to `path` (mode 0600 on Unix), replacing any file there.
    pub fn overwrite_file(&self, path: &Path) -> Result<(), SoftwareDongleError> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(SoftwareDongleError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
        self.write_new_file(path)
    }

    fn write_new_file(&self, path: &Path) -> Result<(), SoftwareDongleError> {
        let io = |source| SoftwareDongleError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io)?;
        file.write_all(self.to_text().as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Reads a dongle file written by [`SoftwareDongle::write_file`].
    pub fn read_file(path: &Path) -> Result<SoftwareDongle, SoftwareDongleError> {
        let io = |source| SoftwareDongleError::Io {
            path: path.to_path_buf(),
            source,
        };
        let malformed = |source| SoftwareDongleError::File {
            path: path.to_path_buf(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .map_err(io)?
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(malformed(DongleFileError::TooLarge));
        }
        let text = String::from_utf8(bytes).map_err(|_| malformed(DongleFileError::NotText))?;
        SoftwareDongle::from_text(&text).map_err(malformed)
    }
}

struct SoftwareDongleDevice {
    dongle: SoftwareDongle,
    answers: VecDeque<Vec<u8>>,
}

fn padded_report(mut report: Vec<u8>) -> Vec<u8> {
    report.resize(REPORT_LEN, 0);
    report
}

impl HidDevice for SoftwareDongleDevice {
    fn write(&mut self, report: &[u8]) -> Result<(), HidError> {
        let request = report.get(1..).unwrap_or_default();
        match request {
            [MAGIC, CHALLENGE_COMMAND, length, challenge @ ..]
                if usize::from(*length) == CHALLENGE_LEN && challenge.len() >= CHALLENGE_LEN =>
            {
                let mut exact = [0u8; CHALLENGE_LEN];
                exact.copy_from_slice(&challenge[..CHALLENGE_LEN]);
                let proof = self.dongle.answer(&exact);
                let (first_signature, second_signature) =
                    proof.signature.split_at(FIRST_SIGNATURE_PART);
                let mut first = vec![MAGIC, CHALLENGE_ANSWER, 0, 0];
                first.extend_from_slice(&proof.public_key);
                first.extend_from_slice(first_signature);
                let mut second = vec![MAGIC, CHALLENGE_ANSWER, 0, 1];
                second.extend_from_slice(second_signature);
                self.answers.push_back(padded_report(first));
                self.answers.push_back(padded_report(second));
            }
            _ => {
                self.answers.push_back(padded_report(vec![
                    MAGIC,
                    CHALLENGE_ANSWER,
                    STATUS_BAD_REQUEST,
                ]));
            }
        }
        Ok(())
    }

    fn read(&mut self, _timeout: Duration) -> Result<Vec<u8>, HidError> {
        self.answers.pop_front().ok_or(HidError::Timeout)
    }
}

impl HidBackend for SoftwareDongle {
    fn open(&self, vendor_id: u16, product_id: u16) -> Result<Box<dyn HidDevice>, HidError> {
        if (vendor_id, product_id) != (self.vendor_id, self.product_id) {
            return Err(HidError::NotFound {
                vendor_id,
                product_id,
            });
        }
        Ok(Box::new(SoftwareDongleDevice {
            dongle: self.clone(),
            answers: VecDeque::new(),
        }))
    }
}

/// A software dongle kept in a file and read again at every open: the dongle is "plugged in"
/// while the file exists, and removing the file unplugs it. For development and tests of hosts
/// that run for a long time, such as a network license server with a network dongle.
#[derive(Debug, Clone)]
pub struct SoftwareDongleFile {
    path: PathBuf,
}

impl SoftwareDongleFile {
    /// The dongle in `path`. A file that exists must be a valid dongle file now; a missing one is
    /// an unplugged dongle.
    pub fn new(path: &Path) -> Result<SoftwareDongleFile, SoftwareDongleError> {
        if path.exists() {
            SoftwareDongle::read_file(path)?;
        }
        Ok(SoftwareDongleFile {
            path: path.to_path_buf(),
        })
    }
}

impl HidBackend for SoftwareDongleFile {
    fn open(&self, vendor_id: u16, product_id: u16) -> Result<Box<dyn HidDevice>, HidError> {
        match SoftwareDongle::read_file(&self.path) {
            Ok(dongle) => dongle.open(vendor_id, product_id),
            Err(SoftwareDongleError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Err(HidError::NotFound {
                    vendor_id,
                    product_id,
                })
            }
            Err(error) => Err(HidError::Device(error.report())),
        }
    }
}

/// A machine with no HID devices at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHid;

impl HidBackend for NoHid {
    fn open(&self, vendor_id: u16, product_id: u16) -> Result<Box<dyn HidDevice>, HidError> {
        Err(HidError::NotFound {
            vendor_id,
            product_id,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn dongle() -> SoftwareDongle {
        SoftwareDongle {
            vendor_id: DEFAULT_DONGLE_VENDOR_ID,
            product_id: DEFAULT_DONGLE_PRODUCT_ID,
            signing_key: SigningKey::from_bytes(&[0x17; 32]),
        }
    }

    fn request(challenge: &[u8; 32]) -> Vec<u8> {
        let mut report = vec![0, b'L', 0x02, 32];
        report.extend_from_slice(challenge);
        report.resize(65, 0);
        report
    }

    #[test]
    fn software_dongle_answers_in_two_reports_that_verify() {
        let dongle = dongle();
        let mut device = dongle.open(0x1209, 0x4c43).unwrap();
        device.write(&request(&[5; 32])).unwrap();
        let first = device.read(Duration::from_millis(10)).unwrap();
        let second = device.read(Duration::from_millis(10)).unwrap();
        assert_eq!((first.len(), second.len()), (64, 64));
        assert_eq!(&first[..4], &[b'L', 0x82, 0, 0]);
        assert_eq!(&second[..4], &[b'L', 0x82, 0, 1]);
        assert!(second[4 + 36..].iter().all(|byte| *byte == 0));
        let mut wire = first[4..].to_vec();
        wire.extend_from_slice(&second[4..4 + 36]);
        let proof = DongleProof::from_bytes(&wire).unwrap();
        assert_eq!(proof.public_key, dongle.public_key());
        assert_eq!(proof.verify(&[5; 32]).unwrap(), dongle.serial());
        assert!(proof.verify(&[6; 32]).is_err());
        assert_eq!(
            device.read(Duration::from_millis(10)),
            Err(HidError::Timeout)
        );
        assert!(matches!(
            dongle.open(0x1209, 1),
            Err(HidError::NotFound { .. })
        ));
    }

    #[test]
    fn software_dongle_refuses_requests_it_does_not_understand() {
        let mut device = dongle().open(0x1209, 0x4c43).unwrap();
        let mut old_protocol = request(&[5; 32]);
        old_protocol[2] = 0x01;
        let mut short_challenge = request(&[5; 32]);
        short_challenge[3] = 16;
        for report in [old_protocol, short_challenge, vec![0, b'L'], Vec::new()] {
            device.write(&report).unwrap();
            let answer = device.read(Duration::from_millis(10)).unwrap();
            assert_eq!(&answer[..3], &[b'L', 0x82, 1]);
            assert_eq!(
                device.read(Duration::from_millis(10)),
                Err(HidError::Timeout)
            );
        }
    }

    #[test]
    fn generated_dongles_differ_and_have_derived_serials() {
        let one = SoftwareDongle::generate(0x1209, 0x4c43).unwrap();
        let two = SoftwareDongle::generate(0x1209, 0x4c43).unwrap();
        assert_ne!(one.serial(), two.serial());
        assert_eq!(one.serial(), dongle_serial(&one.public_key()));
        assert!(one.serial().starts_with("LD-") && one.serial().len() == 23);
        let text = one.to_text();
        let seed = text.lines().nth(3).unwrap().strip_prefix("key ").unwrap();
        assert_eq!(seed.len(), 64);
        assert!(!format!("{one:?}").contains(seed));
    }

    #[test]
    fn a_dongle_file_round_trips_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.dongle");
        let dongle = SoftwareDongle {
            vendor_id: 0x1209,
            product_id: 0x0001,
            ..dongle()
        };
        dongle.write_file(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!(
                "licet-software-dongle 1\nvendor-id 0x1209\nproduct-id 0x0001\nkey {}\n",
                "17".repeat(32)
            )
        );
        let read = SoftwareDongle::read_file(&path).unwrap();
        assert_eq!(
            (read.vendor_id, read.product_id, read.serial()),
            (0x1209, 0x0001, dongle.serial())
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        // An existing file is kept unless overwriting is asked for.
        let other = SoftwareDongle::generate(0x1209, 0x4c43).unwrap();
        let error = other.write_file(&path).unwrap_err();
        assert!(
            matches!(&error, SoftwareDongleError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::AlreadyExists),
            "{error}"
        );
        assert_eq!(
            SoftwareDongle::read_file(&path).unwrap().serial(),
            dongle.serial()
        );
        other.overwrite_file(&path).unwrap();
        assert_eq!(
            SoftwareDongle::read_file(&path).unwrap().serial(),
            other.serial()
        );

        let error = SoftwareDongle::read_file(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(error, SoftwareDongleError::Io { .. }), "{error}");
        std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
        let error = SoftwareDongle::read_file(&path).unwrap_err();
        assert!(
            matches!(
                error,
                SoftwareDongleError::File {
                    source: DongleFileError::NotText,
                    ..
                }
            ),
            "{error}"
        );
        std::fs::write(&path, "x".repeat(5000)).unwrap();
        let error = SoftwareDongle::read_file(&path).unwrap_err();
        assert!(
            matches!(
                error,
                SoftwareDongleError::File {
                    source: DongleFileError::TooLarge,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn each_malformed_dongle_file_is_a_typed_error() {
        let key = "ab".repeat(32);
        let file = |lines: &[&str]| lines.join("\n");
        let header = "licet-software-dongle 1";
        let cases: Vec<(String, DongleFileError)> = vec![
            (
                String::new(),
                DongleFileError::Header {
                    found: String::new(),
                },
            ),
            (
                file(&["licet-software-dongle 2", "vendor-id 0x1209"]),
                DongleFileError::Header {
                    found: "licet-software-dongle 2".to_string(),
                },
            ),
            (
                file(&[header, "vendor-id 0x1209", "colour blue"]),
                DongleFileError::UnknownLine {
                    line: 3,
                    text: "colour blue".to_string(),
                },
            ),
            (
                file(&[header, "vendor-id 0x1209", "vendor-id 0x1209"]),
                DongleFileError::DuplicateLine {
                    line: 3,
                    field: "vendor-id",
                },
            ),
            (
                file(&[header, "product-id 1", "", "product-id 2"]),
                DongleFileError::DuplicateLine {
                    line: 4,
                    field: "product-id",
                },
            ),
            (
                file(&[header, &format!("key {key}"), &format!("key {key}")]),
                DongleFileError::DuplicateLine {
                    line: 3,
                    field: "key",
                },
            ),
            (
                file(&[header, "product-id 0x4c43", &format!("key {key}")]),
                DongleFileError::MissingLine { field: "vendor-id" },
            ),
            (
                file(&[header, "vendor-id 0x1209", &format!("key {key}")]),
                DongleFileError::MissingLine {
                    field: "product-id",
                },
            ),
            (
                file(&[header, "vendor-id 0x1209", "product-id 0x4c43"]),
                DongleFileError::MissingLine { field: "key" },
            ),
            (
                file(&[header, "vendor-id 0x12090"]),
                DongleFileError::BadId {
                    line: 2,
                    field: "vendor-id",
                    value: "0x12090".to_string(),
                },
            ),
            (
                file(&[header, "vendor-id 0x1209", "product-id -1"]),
                DongleFileError::BadId {
                    line: 3,
                    field: "product-id",
                    value: "-1".to_string(),
                },
            ),
            (
                file(&[header, "product-id"]),
                DongleFileError::BadId {
                    line: 2,
                    field: "product-id",
                    value: String::new(),
                },
            ),
            (
                file(&[header, &format!("key {}zz", &key[2..])]),
                DongleFileError::BadHex { line: 2 },
            ),
            (
                file(&[header, &format!("key {}é", &key[2..])]),
                DongleFileError::BadHex { line: 2 },
            ),
            (
                file(&[header, &format!("key {key}00")]),
                DongleFileError::KeyLength {
                    line: 2,
                    digits: 66,
                },
            ),
            (
                file(&[header, "key"]),
                DongleFileError::KeyLength { line: 2, digits: 0 },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                SoftwareDongle::from_text(&text).unwrap_err(),
                expected,
                "{text}"
            );
        }
        let good = file(&[
            header,
            "",
            "product-id 19523",
            &format!("key {}", key.to_uppercase()),
            "vendor-id 0X1209",
            "",
        ]);
        let dongle = SoftwareDongle::from_text(&good).unwrap();
        assert_eq!((dongle.vendor_id, dongle.product_id), (0x1209, 0x4c43));
        assert_eq!(dongle.signing_key.to_bytes(), [0xab; 32]);
    }

    #[test]
    fn usb_ids_are_hex_with_0x_or_decimal() {
        assert_eq!(parse_usb_id("0x1209"), Some(0x1209));
        assert_eq!(parse_usb_id("4660"), Some(4660));
        assert_eq!(parse_usb_id("65535"), Some(u16::MAX));
        for bad in ["", "0x", "65536", "0x10000", "+1", "1209h", "0x-1", " 1"] {
            assert_eq!(parse_usb_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn hidapi_finds_no_dongle_on_a_machine_without_one() {
        // hidapi may fail to initialize where there is no device tree at all (containers);
        // either way no dongle is reported present and opening one is a clear error.
        match HidApiBackend::new() {
            Ok(backend) => {
                assert_eq!(backend.list(0x1209, 0x4c43).unwrap(), Vec::new());
                assert!(matches!(
                    backend.open(0x1209, 0x4c43),
                    Err(HidError::NotFound { .. })
                ));
            }
            Err(error) => assert!(matches!(error, HidError::Device(_))),
        }
    }
}
