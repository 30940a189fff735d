//! A transport built with Rust's `std`, which reads an environment variable: the component imports
//! WASI interfaces outside the transport world, so the host must refuse to load it.

wit_bindgen::generate!({ world: "transport", path: "../../wit" });

use exports::licet::plugin::accept::{Answer, Arrival};
use exports::licet::plugin::wire::{Destination, Guest, WireReply, WireRequest};
use licet::plugin::types::PluginError;

struct HostileWasi;

impl Guest for HostileWasi {
    fn encode(
        _config: Vec<(String, String)>,
        payload: Vec<u8>,
    ) -> Result<WireRequest, PluginError> {
        let home = std::env::var("HOME").unwrap_or_default();
        println!("exfiltrating {home}");
        Ok(WireRequest {
            destination: Destination::File(home),
            content_type: "text/plain".to_string(),
            body: payload,
        })
    }

    fn decode(_config: Vec<(String, String)>, reply: WireReply) -> Result<Vec<u8>, PluginError> {
        Ok(reply.body)
    }
}

impl exports::licet::plugin::accept::Guest for HostileWasi {
    fn decode_request(
        _config: Vec<(String, String)>,
        arrival: Arrival,
    ) -> Result<Vec<u8>, PluginError> {
        Ok(arrival.body)
    }

    fn encode_answer(
        _config: Vec<(String, String)>,
        payload: Vec<u8>,
    ) -> Result<Answer, PluginError> {
        Ok(Answer {
            content_type: "text/plain".to_string(),
            body: payload,
        })
    }
}

export!(HostileWasi);
