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

wit_bindgen::generate!({ world: "hardware-check", path: "../../wit" });

include!("check.rs");

export!(DongleHid);
