// The client side (`wire`) of the HTTP transport, shared by the 0.2.0 build (`lib.rs`) and the
// 0.1.0 build (`legacy-transport`); the including crate generates the bindings first.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use licet_plugin_sdk::config_value;

use exports::licet::plugin::wire::{Destination, Guest, WireReply, WireRequest};
use licet::plugin::types::PluginError;

struct HttpTransport;

fn error(code: &str, message: String) -> PluginError {
    PluginError {
        code: code.to_string(),
        message,
    }
}

/// The longest part of an error body quoted back in a message.
const QUOTED_BODY: usize = 200;

impl Guest for HttpTransport {
    fn encode(config: Vec<(String, String)>, payload: Vec<u8>) -> Result<WireRequest, PluginError> {
        let url = config_value(&config, "server-url")
            .ok_or_else(|| error("bad-config", "`server-url` is not set".to_string()))?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(error(
                "bad-config",
                format!("`{url}` is not an http:// or https:// URL"),
            ));
        }
        let content_type = config_value(&config, "content-type").unwrap_or("application/json");
        Ok(WireRequest {
            destination: Destination::HttpPost(url.to_string()),
            content_type: content_type.to_string(),
            body: payload,
        })
    }

    fn decode(_config: Vec<(String, String)>, reply: WireReply) -> Result<Vec<u8>, PluginError> {
        match reply.status {
            200 => Ok(reply.body),
            0 => Err(error(
                "bad-reply",
                "the reply did not come over HTTP".to_string(),
            )),
            status => {
                let quoted = &reply.body[..reply.body.len().min(QUOTED_BODY)];
                Err(error(
                    "server-error",
                    format!(
                        "the server answered {status}: {}",
                        String::from_utf8_lossy(quoted)
                    ),
                ))
            }
        }
    }
}
