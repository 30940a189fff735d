//! HTTP transport: a request becomes a POST of the payload to the configured server URL, and on
//! the server the posted body is the payload again.
//!
//! Config: `server-url` (required, `http://` or `https://`), `content-type` (default
//! `application/json`). The host sends the POST only if the URL is in the manifest's `allow.urls`,
//! with its own timeouts and size limits. The server side (`accept`) is the identity: the body
//! that arrives is the payload, and the answer payload goes back as the body, with the configured
//! content type.
#![no_std]

extern crate alloc;

wit_bindgen::generate!({ world: "transport", path: "../../wit" });

include!("wire.rs");

use exports::licet::plugin::accept::{Answer, Arrival};

impl exports::licet::plugin::accept::Guest for HttpTransport {
    fn decode_request(
        _config: Vec<(String, String)>,
        arrival: Arrival,
    ) -> Result<Vec<u8>, PluginError> {
        Ok(arrival.body)
    }

    fn encode_answer(
        config: Vec<(String, String)>,
        payload: Vec<u8>,
    ) -> Result<Answer, PluginError> {
        let content_type = config_value(&config, "content-type").unwrap_or("application/json");
        Ok(Answer {
            content_type: content_type.to_string(),
            body: payload,
        })
    }
}

export!(HttpTransport);
