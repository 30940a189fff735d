//! USB HID dongle check: sends the host's challenge to the dongle and returns its answer.
//!
//! Protocol (64-byte reports, no report IDs): the request is `b'L', 0x01, 32, challenge[32]`,
//! zero-padded; written with a leading report ID byte 0. The answer is `b'L', 0x81, status,
//! 32, mac[32], serial_len, serial[serial_len]` where `mac = HMAC-SHA256(dongle secret,
//! challenge)` and status 0 means success. The plugin checks the framing; whoever holds the
//! dongle's secret (the vendor's server, or the host with a verifier) checks the MAC.
//!
//! Config: `vendor-id` and `product-id` (hex such as `0x1209` or decimal), `timeout-ms`
//! (default 1000).
#![no_std]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use licet_plugin_sdk::config_value;

wit_bindgen::generate!({ world: "hardware-check", path: "../../wit" });

use exports::licet::plugin::check::{Component, DongleProof, Guest, Reading};
use licet::plugin::hid;
use licet::plugin::types::PluginError;

const MAGIC: u8 = b'L';
const CHALLENGE_COMMAND: u8 = 0x01;
const CHALLENGE_ANSWER: u8 = 0x81;
const CHALLENGE_LEN: usize = 32;
const MAC_LEN: usize = 32;
const REPORT_LEN: usize = 64;

struct DongleHid;

fn error(code: &str, message: String) -> PluginError {
    PluginError {
        code: code.to_string(),
        message,
    }
}

fn id(config: &[(String, String)], name: &str) -> Result<u16, PluginError> {
    let text = config_value(config, name)
        .ok_or_else(|| error("bad-config", format!("`{name}` is not set")))?;
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u16::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| error("bad-config", format!("`{name}` = `{text}` is not a USB ID")))
}

fn request_report(challenge: &[u8]) -> Vec<u8> {
    let mut report = Vec::with_capacity(REPORT_LEN + 1);
    report.push(0); // report ID: the dongle uses none
    report.extend_from_slice(&[MAGIC, CHALLENGE_COMMAND, CHALLENGE_LEN as u8]);
    report.extend_from_slice(challenge);
    report.resize(REPORT_LEN + 1, 0);
    report
}

fn parse_answer(answer: &[u8]) -> Result<DongleProof, PluginError> {
    let bad = |what: &str| error("bad-reply", format!("the dongle's answer {what}"));
    match answer {
        [MAGIC, CHALLENGE_ANSWER, 0, len, rest @ ..] if usize::from(*len) == MAC_LEN => {
            let (mac, rest) = rest
                .split_at_checked(MAC_LEN)
                .ok_or_else(|| bad("is too short"))?;
            let (serial_len, rest) = rest.split_first().ok_or_else(|| bad("has no serial"))?;
            let serial = rest
                .get(..usize::from(*serial_len))
                .ok_or_else(|| bad("has a truncated serial"))?;
            let serial =
                core::str::from_utf8(serial).map_err(|_| bad("has a serial that is not text"))?;
            if serial.is_empty() {
                return Err(bad("has an empty serial"));
            }
            Ok(DongleProof {
                serial: serial.to_string(),
                response: mac.to_vec(),
            })
        }
        [MAGIC, CHALLENGE_ANSWER, status, ..] => Err(error(
            "device",
            format!("the dongle refused the challenge with status {status}"),
        )),
        _ => Err(bad("is not a licet dongle answer")),
    }
}

impl Guest for DongleHid {
    fn fingerprint(
        _config: Vec<(String, String)>,
        _salt: Vec<u8>,
        _readings: Vec<Reading>,
    ) -> Result<Vec<Component>, PluginError> {
        Err(error(
            "unsupported",
            "this plugin takes no fingerprints".to_string(),
        ))
    }

    fn dongle_check(
        config: Vec<(String, String)>,
        challenge: Vec<u8>,
    ) -> Result<DongleProof, PluginError> {
        if challenge.len() != CHALLENGE_LEN {
            return Err(error(
                "bad-config",
                format!(
                    "the challenge must be {CHALLENGE_LEN} bytes, not {}",
                    challenge.len()
                ),
            ));
        }
        let vendor_id = id(&config, "vendor-id")?;
        let product_id = id(&config, "product-id")?;
        let timeout_ms = match config_value(&config, "timeout-ms") {
            Some(text) => text.parse().map_err(|_| {
                error(
                    "bad-config",
                    format!("`timeout-ms` = `{text}` is not a number"),
                )
            })?,
            None => 1000,
        };
        let device =
            hid::open(vendor_id, product_id).map_err(|message| error("device", message))?;
        device
            .write(&request_report(&challenge))
            .map_err(|message| error("device", message))?;
        let answer = device
            .read(timeout_ms)
            .map_err(|message| error("device", message))?;
        parse_answer(&answer)
    }
}

export!(DongleHid);
