//! USB HID access for dongle checks: the trait plugins reach through the host, the hidapi backend
//! for real dongles, and a software dongle that speaks the same protocol.
//!
//! The dongle protocol (64-byte reports, no report IDs): a challenge request is
//! `b'L', 0x01, 32, challenge[32]`, the answer is `b'L', 0x81, status, 32, mac[32], serial_len,
//! serial` with `mac = HMAC-SHA256(dongle secret, challenge)`.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};

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
        let api = hidapi::HidApi::new().map_err(|error| HidError::Device(error.to_string()))?;
        Ok(HidApiBackend {
            api: Mutex::new(api),
        })
    }

    /// The present devices with these IDs.
    pub fn list(&self, vendor_id: u16, product_id: u16) -> Result<Vec<HidDeviceInfo>, HidError> {
        let mut api = self.lock()?;
        api.refresh_devices()
            .map_err(|error| HidError::Device(error.to_string()))?;
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
            .map_err(|error| HidError::Device(error.to_string()))
    }

    fn read(&mut self, timeout: Duration) -> Result<Vec<u8>, HidError> {
        let mut buffer = [0u8; 64];
        let millis = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        match self.0.read_timeout(&mut buffer, millis) {
            Ok(0) => Err(HidError::Timeout),
            Ok(count) => Ok(buffer[..count.min(buffer.len())].to_vec()),
            Err(error) => Err(HidError::Device(error.to_string())),
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
            .map_err(|error| HidError::Device(error.to_string()))?;
        Ok(Box::new(HidApiDevice(device)))
    }
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block_key = [0u8; BLOCK];
    if key.len() > BLOCK {
        block_key[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block_key[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block_key.map(|key_byte| key_byte ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Whether `response` is the dongle's answer to `challenge` under `secret`, compared in constant
/// time.
pub fn verify_dongle_response(secret: &[u8], challenge: &[u8], response: &[u8]) -> bool {
    let expected = hmac_sha256(secret, challenge);
    response.len() == expected.len()
        && expected
            .iter()
            .zip(response)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

/// A dongle in software: answers challenges like a hardware dongle, for tests and development.
#[derive(Debug, Clone)]
pub struct SoftwareDongle {
    /// USB vendor ID it presents.
    pub vendor_id: u16,
    /// USB product ID it presents.
    pub product_id: u16,
    /// Its serial.
    pub serial: String,
    /// Its secret.
    pub secret: Vec<u8>,
}

struct SoftwareDongleDevice {
    dongle: SoftwareDongle,
    answers: VecDeque<Vec<u8>>,
}

impl HidDevice for SoftwareDongleDevice {
    fn write(&mut self, report: &[u8]) -> Result<(), HidError> {
        let request = report.get(1..).unwrap_or_default();
        let answer = match request {
            [b'L', 0x01, 32, challenge @ ..] if challenge.len() >= 32 => {
                let mac = hmac_sha256(&self.dongle.secret, &challenge[..32]);
                let serial = self.dongle.serial.as_bytes();
                let serial_len = u8::try_from(serial.len().min(26)).unwrap_or(26);
                let mut answer = vec![b'L', 0x81, 0, 32];
                answer.extend_from_slice(&mac);
                answer.push(serial_len);
                answer.extend_from_slice(&serial[..usize::from(serial_len)]);
                answer
            }
            _ => vec![b'L', 0x81, 1],
        };
        let mut padded = answer;
        padded.resize(64, 0);
        self.answers.push_back(padded);
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

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn software_dongle_answers_with_its_secret() {
        let dongle = SoftwareDongle {
            vendor_id: 0x1209,
            product_id: 0x4c43,
            serial: "D-1".to_string(),
            secret: b"dongle secret".to_vec(),
        };
        let mut device = dongle.open(0x1209, 0x4c43).unwrap();
        let mut report = vec![0, b'L', 0x01, 32];
        report.extend_from_slice(&[5; 32]);
        device.write(&report).unwrap();
        let answer = device.read(Duration::from_millis(10)).unwrap();
        assert_eq!(&answer[..4], &[b'L', 0x81, 0, 32]);
        assert!(verify_dongle_response(
            b"dongle secret",
            &[5; 32],
            &answer[4..36]
        ));
        assert!(!verify_dongle_response(b"other", &[5; 32], &answer[4..36]));
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
