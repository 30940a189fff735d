//! A hardware check that misbehaves on purpose, for the host's sandbox tests. The first byte of
//! the challenge picks the misbehavior:
//!
//! - 1 opens a device the manifest does not allow;
//! - 2 writes a report far larger than any HID report;
//! - 3 waits on a device that never answers, forever;
//! - 4 makes up an answer without asking the dongle (serial `HOSTILE`, the challenge as response);
//! - 5 relays the dongle's genuine answer but claims another dongle's serial;
//! - 6 has the dongle sign another challenge than the host's and returns that answer;
//! - anything else relays the dongle's answer faithfully.
//!
//! The fingerprint is enormous.
#![no_std]

extern crate alloc;

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use licet_plugin_sdk::dongle::{
    dongle_serial, first_answer_part, request_report, second_answer_part, CHALLENGE_LEN,
    PUBLIC_KEY_LEN,
};

wit_bindgen::generate!({ world: "hardware-check", path: "../../wit" });

use exports::licet::plugin::check::{Component, DongleProof, Guest, Reading};
use licet::plugin::hid;
use licet::plugin::types::PluginError;

struct HostileHid;

const DONGLE: (u16, u16) = (0x1209, 0x4c43);

fn device_error(message: String) -> PluginError {
    PluginError {
        code: "device".to_string(),
        message,
    }
}

/// Has the dongle sign `challenge` and returns its public key and signature.
fn ask_dongle(challenge: &[u8; CHALLENGE_LEN]) -> Result<Vec<u8>, PluginError> {
    let device = hid::open(DONGLE.0, DONGLE.1).map_err(device_error)?;
    device
        .write(&request_report(challenge))
        .map_err(device_error)?;
    let first = device.read(1_000).map_err(device_error)?;
    let proof = first_answer_part(&first).map_err(|error| device_error(error.to_string()))?;
    let second = device.read(1_000).map_err(device_error)?;
    second_answer_part(proof, &second).map_err(|error| device_error(error.to_string()))
}

impl Guest for HostileHid {
    fn fingerprint(
        _config: Vec<(String, String)>,
        _salt: Vec<u8>,
        _readings: Vec<Reading>,
    ) -> Result<Vec<Component>, PluginError> {
        Ok((0..40_000)
            .map(|_| Component {
                name: "component".to_string(),
                value: "x".repeat(32),
            })
            .collect())
    }

    fn dongle_check(
        _config: Vec<(String, String)>,
        challenge: Vec<u8>,
    ) -> Result<DongleProof, PluginError> {
        let mut own_challenge = [0u8; CHALLENGE_LEN];
        for (target, byte) in own_challenge.iter_mut().zip(&challenge) {
            *target = *byte;
        }
        match challenge.first() {
            Some(1) => {
                let _device = hid::open(0x046d, 0xc52b).map_err(device_error)?;
            }
            Some(2) => {
                let device = hid::open(DONGLE.0, DONGLE.1).map_err(device_error)?;
                device.write(&vec![0u8; 4 << 20]).map_err(device_error)?;
            }
            Some(3) => {
                let device = hid::open(DONGLE.0, DONGLE.1).map_err(device_error)?;
                loop {
                    let _ = device.read(5_000);
                }
            }
            Some(4) => {}
            Some(5) => {
                let response = ask_dongle(&own_challenge)?;
                return Ok(DongleProof {
                    serial: dongle_serial(&[0x11; PUBLIC_KEY_LEN]),
                    response,
                });
            }
            Some(6) => {
                own_challenge[CHALLENGE_LEN - 1] ^= 0xff;
                let response = ask_dongle(&own_challenge)?;
                return Ok(DongleProof {
                    serial: dongle_serial(&response[..PUBLIC_KEY_LEN]),
                    response,
                });
            }
            _ => {
                let response = ask_dongle(&own_challenge)?;
                return Ok(DongleProof {
                    serial: dongle_serial(&response[..PUBLIC_KEY_LEN]),
                    response,
                });
            }
        }
        Ok(DongleProof {
            serial: "HOSTILE".to_string(),
            response: challenge,
        })
    }
}

export!(HostileHid);
