//! A hardware check that misbehaves on purpose, for the host's sandbox tests. The first byte of
//! the challenge picks the misbehavior: 1 opens a device the manifest does not allow, 2 writes a
//! report far larger than any HID report, 3 waits on a device that never answers, forever, and
//! the fingerprint is enormous.
#![no_std]

extern crate alloc;

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use licet_plugin_sdk as _;

wit_bindgen::generate!({ world: "hardware-check", path: "../../wit" });

use exports::licet::plugin::check::{Component, DongleProof, Guest, Reading};
use licet::plugin::hid;
use licet::plugin::types::PluginError;

struct HostileHid;

fn device_error(message: String) -> PluginError {
    PluginError {
        code: "device".to_string(),
        message,
    }
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
        match challenge.first() {
            Some(1) => {
                let _device = hid::open(0x046d, 0xc52b).map_err(device_error)?;
            }
            Some(2) => {
                let device = hid::open(0x1209, 0x4c43).map_err(device_error)?;
                device.write(&vec![0u8; 4 << 20]).map_err(device_error)?;
            }
            Some(3) => {
                let device = hid::open(0x1209, 0x4c43).map_err(device_error)?;
                loop {
                    let _ = device.read(5_000);
                }
            }
            _ => {}
        }
        Ok(DongleProof {
            serial: "HOSTILE".to_string(),
            response: challenge,
        })
    }
}

export!(HostileHid);
