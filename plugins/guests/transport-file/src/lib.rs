//! File transport for machines without a network: the request becomes an armored text file the
//! user carries to a connected machine, and the server's response file is read back the same way.
//!
//! The host chooses where the files live; this plugin only frames and unframes the bytes. On the
//! server (`accept`) it reads the request file that arrives and frames the answer as the response
//! file.
#![no_std]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use licet_plugin_sdk::{base64_decode, base64_encode};

wit_bindgen::generate!({ world: "transport", path: "../../wit" });

use exports::licet::plugin::accept::{Answer, Arrival};
use exports::licet::plugin::wire::{Destination, Guest, WireReply, WireRequest};
use licet::plugin::types::PluginError;

const REQUEST_BEGIN: &str = "-----BEGIN LICET REQUEST-----";
const REQUEST_END: &str = "-----END LICET REQUEST-----";
const RESPONSE_BEGIN: &str = "-----BEGIN LICET RESPONSE-----";
const RESPONSE_END: &str = "-----END LICET RESPONSE-----";
const LINE: usize = 64;

struct FileTransport;

fn bad(code: &str, message: String) -> PluginError {
    PluginError {
        code: code.to_string(),
        message,
    }
}

/// `payload` in base64 lines between `begin` and `end`.
fn armor(begin: &str, end: &str, payload: &[u8]) -> Vec<u8> {
    let encoded = base64_encode(payload);
    let mut text = String::with_capacity(encoded.len() + encoded.len() / LINE + 64);
    text.push_str(begin);
    text.push('\n');
    for line in encoded.as_bytes().chunks(LINE) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(end);
    text.push('\n');
    text.into_bytes()
}

/// The payload armored between `begin` and `end` in `body`; `what` names the file in errors.
fn unarmor(begin: &str, end: &str, body: &[u8], what: &str) -> Result<Vec<u8>, String> {
    let text = core::str::from_utf8(body).map_err(|_| format!("the {what} file is not text"))?;
    let inner = text
        .trim()
        .strip_prefix(begin)
        .and_then(|rest| rest.strip_suffix(end))
        .ok_or_else(|| format!("the file is not a licet {what} file"))?;
    base64_decode(inner).ok_or_else(|| format!("the {what} file's body is not base64"))
}

impl Guest for FileTransport {
    fn encode(
        _config: Vec<(String, String)>,
        payload: Vec<u8>,
    ) -> Result<WireRequest, PluginError> {
        Ok(WireRequest {
            destination: Destination::File("licreq".to_string()),
            content_type: "text/plain".to_string(),
            body: armor(REQUEST_BEGIN, REQUEST_END, &payload),
        })
    }

    fn decode(_config: Vec<(String, String)>, reply: WireReply) -> Result<Vec<u8>, PluginError> {
        unarmor(RESPONSE_BEGIN, RESPONSE_END, &reply.body, "response")
            .map_err(|problem| bad("bad-reply", problem))
    }
}

impl exports::licet::plugin::accept::Guest for FileTransport {
    fn decode_request(
        _config: Vec<(String, String)>,
        arrival: Arrival,
    ) -> Result<Vec<u8>, PluginError> {
        unarmor(REQUEST_BEGIN, REQUEST_END, &arrival.body, "request")
            .map_err(|problem| bad("bad-request", problem))
    }

    fn encode_answer(
        _config: Vec<(String, String)>,
        payload: Vec<u8>,
    ) -> Result<Answer, PluginError> {
        Ok(Answer {
            content_type: "text/plain".to_string(),
            body: armor(RESPONSE_BEGIN, RESPONSE_END, &payload),
        })
    }
}

export!(FileTransport);
