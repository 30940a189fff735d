// The dongle check itself, shared by the 0.2.0 build (`lib.rs`) and the 0.1.0 build
// (`legacy-dongle-hid`); the including crate generates the bindings first.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use licet_plugin_sdk::config_value;
use licet_plugin_sdk::dongle::{
    dongle_serial, first_answer_part, request_report, second_answer_part, AnswerError,
    CHALLENGE_LEN, PUBLIC_KEY_LEN,
};

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
