//! Text transport for machines where no file can be moved: the exchange request becomes a short
//! block of text a person reads out, types or pastes at the vendor's page, and the response comes
//! back the same way.
//!
//! Both sides are here: the client host calls `wire` (`encode` a request file into a block,
//! `decode` a response block into the response file), the server host calls `accept`
//! (`decode-request` a request block into the request file, `encode-answer` the response file
//! into a block). The block format is in [`block`], the packing of the files in [`pack`]; the
//! files that come out are byte for byte the files that went in, so the request's digest and the
//! response's signature hold.
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod block;
pub mod pack;
mod xml;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use block::Kind;

wit_bindgen::generate!({ world: "transport", path: "../../wit" });

use exports::licet::plugin::accept::{self, Answer, Arrival};
use exports::licet::plugin::wire::{self, Destination, WireReply, WireRequest};
use licet::plugin::types::PluginError;

/// The media type of a block.
const CONTENT_TYPE: &str = "text/plain; charset=utf-8";

fn error(code: &str, message: String) -> PluginError {
    PluginError {
        code: code.to_string(),
        message,
    }
}

/// Packs an exchange file of the expected direction into a block.
fn to_block(file: &[u8], requests: bool) -> Result<(Kind, String), String> {
    let kind = pack::kind_of(file)
        .filter(|kind| kind.is_request() == requests)
        .ok_or_else(|| {
            String::from(if requests {
                "the payload is not an activation or return request file"
            } else {
                "the payload is not an activation or return response file"
            })
        })?;
    Ok((kind, block::write(kind, &pack::pack(kind, file))))
}

/// Reads a block of the expected direction back into its exchange file.
fn from_block(text: &[u8], requests: bool) -> Result<Vec<u8>, String> {
    let (kind, bytes) = block::read(text)?;
    if kind.is_request() != requests {
        return Err(format!(
            "this is an {} block; {} is expected here",
            kind.title(),
            if requests { "a request" } else { "a response" }
        ));
    }
    pack::unpack(kind, &bytes)
        .map_err(|reason| format!("the block checks but its content does not read ({reason})"))
}

struct TextTransport;

impl wire::Guest for TextTransport {
    fn encode(
        _config: Vec<(String, String)>,
        payload: Vec<u8>,
    ) -> Result<WireRequest, PluginError> {
        let (kind, text) =
            to_block(&payload, true).map_err(|message| error("bad-request", message))?;
        Ok(WireRequest {
            destination: Destination::Text(kind.title().to_string()),
            content_type: CONTENT_TYPE.to_string(),
            body: text.into_bytes(),
        })
    }

    fn decode(_config: Vec<(String, String)>, reply: WireReply) -> Result<Vec<u8>, PluginError> {
        if reply.status != 0 && reply.status != 200 {
            return Err(error(
                "server-error",
                format!("the server answered {}", reply.status),
            ));
        }
        from_block(&reply.body, false).map_err(|message| error("bad-reply", message))
    }
}

impl accept::Guest for TextTransport {
    fn decode_request(
        _config: Vec<(String, String)>,
        arrival: Arrival,
    ) -> Result<Vec<u8>, PluginError> {
        from_block(&arrival.body, true).map_err(|message| error("bad-request", message))
    }

    fn encode_answer(
        _config: Vec<(String, String)>,
        payload: Vec<u8>,
    ) -> Result<Answer, PluginError> {
        let (_, text) =
            to_block(&payload, false).map_err(|message| error("bad-request", message))?;
        Ok(Answer {
            content_type: CONTENT_TYPE.to_string(),
            body: text.into_bytes(),
        })
    }
}

export!(TextTransport);

#[cfg(test)]
mod tests;
