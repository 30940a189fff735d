//! The HTTP transport's client side built against `licet:plugin@0.1.0`, the interface before the
//! server side (`accept`) existed: the tests load it to show that hosts still take 0.1.0
//! transports on the client side, and that a server refuses it.
#![no_std]

extern crate alloc;

wit_bindgen::generate!({ world: "transport", path: "../../wit-0.1.0" });

include!("../../transport-http/src/wire.rs");

export!(HttpTransport);
