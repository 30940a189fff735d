//! File transport for machines without a network: the request becomes an armored text file the
//! user carries to a connected machine, and the server's response file is read back the same way.
//!
//! The host chooses where the files live; this plugin only frames and unframes the bytes.
#![no_std]

extern crate alloc;

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use licet_plugin_sdk::{base64_decode, base64_encode};

wit_bindgen::generate!({ world: "transport", path: "../../wit" });

use exports::licet::plugin::wire::{Destination, Guest, WireReply, WireRequest};
use licet::plugin::types::PluginError;

const REQUEST_BEGIN: &str = "-----BEGIN LICET REQUEST-----";
const REQUEST_END: &str = "-----END LICET REQUEST-----";
const RESPONSE_BEGIN: &str = "-----BEGIN LICET RESPONSE-----";
const RESPONSE_END: &str = "-----END LICET RESPONSE-----";
const LINE: usize = 64;

struct FileTransport;

fn error(code: &str, message: &str) -> PluginError {
    PluginError {
        code: code.to_string(),
        message: message.to_string(),
    }
}

impl Guest for FileTransport {
    fn encode(
        _config: Vec<(String, String)>,
        payload: Vec<u8>,
    ) -> Result<WireRequest, PluginError> {
        let encoded = base64_encode(&payload);
        let mut text = String::with_capacity(encoded.len() + encoded.len() / LINE + 64);
        text.push_str(REQUEST_BEGIN);
        text.push('\n');
        for line in encoded.as_bytes().chunks(LINE) {
            text.push_str(&String::from_utf8_lossy(line));
            text.push('\n');
        }
        text.push_str(REQUEST_END);
        text.push('\n');
        Ok(WireRequest {
            destination: Destination::File("licreq".to_string()),
            content_type: "text/plain".to_string(),
            body: text.into_bytes(),
        })
    }

    fn decode(_config: Vec<(String, String)>, reply: WireReply) -> Result<Vec<u8>, PluginError> {
        let text = core::str::from_utf8(&reply.body)
            .map_err(|_| error("bad-reply", "the response file is not text"))?;
        let text = text.trim();
        let inner = text
            .strip_prefix(RESPONSE_BEGIN)
            .and_then(|rest| rest.strip_suffix(RESPONSE_END))
            .ok_or_else(|| error("bad-reply", "the file is not a licet response file"))?;
        base64_decode(inner)
            .ok_or_else(|| error("bad-reply", "the response file's body is not base64"))
    }
}

export!(FileTransport);
