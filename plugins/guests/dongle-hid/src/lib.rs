//! USB HID dongle check: sends the host's challenge to the dongle and returns its signed answer.
//!
//! Protocol (64-byte reports, no report IDs, so every report is written with a leading report-ID
//! byte 0):
//!
//! - request: `b'L', 0x02, 32, challenge[32]`, zero-padded;
//! - answer, two input reports: `b'L', 0x82, status = 0, part = 0, public_key[32],
//!   signature[0..28]`, then `b'L', 0x82, status = 0, part = 1, signature[28..64]`, zero-padded;
//! - error answer, one report: `b'L', 0x82, status != 0, ...`.
//!
//! The dongle signs `"licet-dongle-challenge-v1\0" || challenge` with its Ed25519 key
//! (`licet_engine::dongle::signed_message`). The plugin checks the framing and returns
//! `dongle-proof { serial, response }` with `response = public_key || signature` (96 bytes) and
//! the serial derived from the public key (`LD-` and 20 upper-case hex digits, as
//! `licet_engine::dongle::dongle_serial` derives it). The host verifies the signature over its
//! own challenge and that the serial is the public key's: the plugin holds no secret and cannot
//! vouch for anything.
//!
//! Config: `vendor-id` and `product-id` (hex such as `0x1209` or decimal), `timeout-ms` for each
//! of the two reads (default 1000).
#![no_std]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use licet_plugin_sdk::config_value;
use licet_plugin_sdk::dongle::{
    dongle_serial, first_answer_part, request_report, second_answer_part, AnswerError,
    CHALLENGE_LEN, PUBLIC_KEY_LEN,
};

wit_bindgen::generate!({ world: "hardware-check", path: "../../wit" });

use exports::licet::plugin::check::{Component, DongleProof, Guest, Reading};
use licet::plugin::hid;
use licet::plugin::types::PluginError;

struct DongleHid;

fn error(code: &str, message: String) -> PluginError {
    PluginError {
        code: code.to_string(),
        message,
    }
}

fn answer_error(report: &str, answer: AnswerError) -> PluginError {
    match answer {
        AnswerError::Status(_) => error("device", answer.to_string()),
        _ => error(
            "bad-reply",
            format!("the dongle's {report} answer report {answer}"),
        ),
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
        let challenge: [u8; CHALLENGE_LEN] = challenge.as_slice().try_into().map_err(|_| {
            error(
                "bad-config",
                format!(
                    "the challenge must be {CHALLENGE_LEN} bytes, not {}",
                    challenge.len()
                ),
            )
        })?;
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
        let first = device
            .read(timeout_ms)
            .map_err(|message| error("device", message))?;
        let proof = first_answer_part(&first).map_err(|answer| answer_error("first", answer))?;
        let second = device
            .read(timeout_ms)
            .map_err(|message| error("device", message))?;
        let response =
            second_answer_part(proof, &second).map_err(|answer| answer_error("second", answer))?;
        Ok(DongleProof {
            serial: dongle_serial(&response[..PUBLIC_KEY_LEN]),
            response,
        })
    }
}

export!(DongleHid);
